"""Read BED intervals (regions to scan). Coordinates are 0-based, half-open, as in BED."""

from __future__ import annotations

from pathlib import Path

from ..regions import Interval, RegionError, resolve_chrom

__all__ = ["read_bed"]


def read_bed(path: str | Path, *, sizes: dict[str, int]) -> list[Interval]:
    """Intervals of a BED file, checked against the genome.

    ``track``/``browser``/``#`` lines and blank lines are skipped. Chromosome aliases
    (``1``/``chr1``) are resolved. Raises :class:`RegionError` naming the file and line for
    an unknown chromosome, bad coordinates, or an interval past the sequence end.
    """
    path = Path(path)
    if not path.is_file():
        raise RegionError(f"{path}: regions BED file not found")
    out: list[Interval] = []
    with open(path) as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n\r").split("\t")
            if len(f) < 3:
                f = line.split()
            where = f"{path}:{no}"
            if len(f) < 3:
                raise RegionError(f"{where}: a BED line needs chrom, start, end (tab-separated)")
            try:
                chrom = resolve_chrom(f[0], sizes)
            except RegionError as err:
                raise RegionError(f"{where}: {err}") from None
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError:
                raise RegionError(f"{where}: start/end {f[1]!r}, {f[2]!r} are not integers") from None
            if start < 0 or end <= start:
                raise RegionError(f"{where}: empty or reversed interval {f[0]}:{start}-{end} (BED is 0-based, half-open)")
            if end > sizes[chrom]:
                raise RegionError(
                    f"{where}: {f[0]}:{start}-{end} runs past the end of {chrom} (length {sizes[chrom]:,})"
                )
            name = f[3] if len(f) > 3 else ""
            out.append(Interval(chrom, start, end, name))
    if not out:
        raise RegionError(f"{path}: no intervals in the regions file")
    return out
