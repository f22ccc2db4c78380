"""Everything that opens files: the file formats live here, and only here.

Compute modules (tokenize, windows, stitching, calls, models, plot, hub text) are pure and
never touch the file system; they get text, bytes or arrays from these modules and give
back text, bytes or arrays for them to write. Coordinates are 0-based, half-open throughout.

Infrastructure
    :mod:`.atomic` (every write: temporary file + ``os.replace``), :mod:`.text` (gzip/BGZF
    sniffing, ``open_text``).
Inputs
    :mod:`.fasta`, :mod:`.bed` (regions and narrowPeak calls), :mod:`.annotation` (GFF3/GTF),
    :mod:`.vcf` (also its output), :mod:`.weights`, :mod:`.tokenizers`, :mod:`.checkpoint`.
Outputs
    :mod:`.tracks` (bigWig/bedGraph), :mod:`.table` (TSV), :mod:`.hub` (track hub, 2bit,
    IGV session), :mod:`.report` (HTML), :mod:`.evaluation` (JSON + PNG).
"""

from __future__ import annotations

__all__ = [
    "annotation", "atomic", "bed", "checkpoint", "evaluation", "fasta", "hub", "report", "table", "text",
    "tokenizers", "tracks", "vcf", "weights",
]
