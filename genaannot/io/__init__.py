"""Everything that opens files: FASTA input (:mod:`.fasta`) and track output (:mod:`.tracks`).

Compute modules (windows, stitching, calls) are pure and never touch the file system.
Coordinates are 0-based, half-open throughout.
"""

from __future__ import annotations

__all__ = ["fasta", "tracks"]
