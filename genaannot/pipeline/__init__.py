"""The only place where stages are chained (FASTA → windows → model → stitch → writers)."""

from __future__ import annotations

__all__ = ["scan_genome", "score_variants"]


def __getattr__(name: str):
    if name == "scan_genome":
        from .scan import scan_genome

        return scan_genome
    if name == "score_variants":
        from .score import score_variants

        return score_variants
    raise AttributeError(name)
