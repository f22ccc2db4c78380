"""BED input: the one BED line reader, for regions (BED3+) and narrowPeak calls (BED6+4).

Coordinates are 0-based, half-open, as in BED.

Every BED file genaannot reads goes through :func:`parse_bed_lines`: blank lines, ``#``
comments and ``track``/``browser`` lines (those words alone: a sequence named ``track1``
is data) are skipped, fields are tab-separated (a line with fewer
than three tab-separated fields is split on whitespace, as hand-written files often are),
and each data line keeps its ``file:line`` for error messages. Files may be gzip- or
bgzip-compressed (sniffed by :func:`genaannot.io.text.open_text`).

* :func:`read_bed`: regions to scan, checked against the genome (:class:`RegionError`);
* :func:`read_calls` / :func:`parse_calls`: calls as written by ``genaannot scan``
  (narrowPeak: ``chrom start end name score strand signalValue pValue qValue peak``), with
  their value: ``signalValue`` (column 7), else ``score`` (column 5), else 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..regions import Interval, RegionError, resolve_chrom
from .text import open_text, text_errors

__all__ = [
    "BedError",
    "BedRecord",
    "BedCall",
    "parse_bed_lines",
    "read_bed_records",
    "read_bed",
    "parse_calls",
    "read_calls",
]

#: starts of lines that carry no interval
_SKIP = ("#", "track", "browser")


def _header(line: str) -> bool:
    """Whether ``line`` (starting with one of :data:`_SKIP`) is a comment or a ``track`` /
    ``browser`` line: those words alone, so that a sequence named ``track1`` is data."""
    return line.startswith("#") or line.split(None, 1)[0] in ("track", "browser")


class BedError(ValueError):
    """A BED file that cannot be parsed; the message names the file and line."""


@dataclass(frozen=True)
class BedRecord:
    """One data line of a BED file.

    Attributes
    ----------
    where : str
        ``file:line`` (1-based line number), for messages.
    fields : tuple of str
        The columns as written (at least one).
    """

    where: str
    fields: tuple[str, ...]


def parse_bed_lines(lines: Iterable[str], *, source: str) -> Iterator[BedRecord]:
    """The data lines of a BED text, split into fields.

    Parameters
    ----------
    lines : iterable of str
        Lines with or without their line ends.
    source : str
        Shown in :attr:`BedRecord.where` (the file name).
    """
    for no, line in enumerate(lines, 1):
        if no == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
        if not line.strip() or (line.startswith(_SKIP) and _header(line)):
            continue
        f = line.rstrip("\n\r").split("\t")
        if len(f) < 3:
            f = line.split()
        yield BedRecord(f"{source}:{no}", tuple(f))


def read_bed_records(path: str | Path) -> Iterator[BedRecord]:
    """The data lines of a BED file (plain or gzip), streamed (see :func:`parse_bed_lines`)."""
    with text_errors(path, BedError, what="BED"), open_text(path) as fh:
        yield from parse_bed_lines(fh, source=str(path))


def _interval(rec: BedRecord) -> tuple[str, int, int]:
    f = rec.fields
    if len(f) < 3:
        raise BedError(f"{rec.where}: a BED line needs chrom, start, end (tab-separated)")
    try:
        return f[0], int(f[1]), int(f[2])
    except ValueError:
        raise BedError(f"{rec.where}: start/end {f[1]!r}, {f[2]!r} are not integers") from None


def read_bed(path: str | Path, *, sizes: dict[str, int]) -> list[Interval]:
    """Intervals of a regions BED file, checked against the genome.

    Chromosome aliases (``1``/``chr1``) are resolved; column 4, when present, is the name.

    Parameters
    ----------
    path : str or Path
    sizes : dict of str -> int
        Sequence lengths of the genome.

    Raises
    ------
    RegionError
        Naming the file and line: a missing file, an unknown chromosome, bad coordinates,
        an interval past the sequence end, or no interval at all.
    """
    path = Path(path)
    if not path.is_file():
        raise RegionError(f"{path}: regions BED file not found")
    try:
        out = _read_regions(path, sizes)
    except BedError as err:  # binary or truncated: a bad regions file like any other
        raise RegionError(str(err)) from None
    if not out:
        raise RegionError(f"{path}: no intervals in the regions file")
    return out


def _read_regions(path: Path, sizes: dict[str, int]) -> list[Interval]:
    out: list[Interval] = []
    for rec in read_bed_records(path):
        f = rec.fields
        if len(f) < 3:
            raise RegionError(f"{rec.where}: a BED line needs chrom, start, end (tab-separated)")
        name = f[0]
        try:
            chrom = resolve_chrom(name, sizes)
        except RegionError as err:
            raise RegionError(f"{rec.where}: {err}", unknown=err.unknown) from None
        try:
            start, end = int(f[1]), int(f[2])
        except ValueError:
            raise RegionError(f"{rec.where}: start/end {f[1]!r}, {f[2]!r} are not integers") from None
        if start < 0 or end <= start:
            raise RegionError(f"{rec.where}: empty or reversed interval {name}:{start}-{end} (BED is 0-based, half-open)")
        if end > sizes[chrom]:
            raise RegionError(
                f"{rec.where}: {name}:{start}-{end} runs past the end of {chrom} (length {sizes[chrom]:,})"
            )
        out.append(Interval(chrom, start, end, f[3] if len(f) > 3 else ""))
    return out


@dataclass(frozen=True)
class BedCall:
    """One call of a narrowPeak (or shorter BED) file.

    Attributes
    ----------
    chrom : str
    start, end : int
        0-based, half-open.
    name : str
        Column 4 (the label for genaannot's calls); ``""`` when absent.
    strand : str
        Column 6; ``"."`` when absent.
    value : float
        ``signalValue`` (column 7), else ``score`` (column 5, unless ``.``), else 0.
    fields : tuple of str
        All columns as written (what a converter such as ``bedToBigBed`` gets).
    """

    chrom: str
    start: int
    end: int
    name: str
    strand: str
    value: float
    fields: tuple[str, ...]


def _call(rec: BedRecord) -> BedCall:
    chrom, start, end = _interval(rec)
    if start < 0 or end < start:
        raise BedError(f"{rec.where}: start {start}, end {end} is not an interval (BED is 0-based, half-open: "
                       "0 <= start <= end)")
    f = rec.fields
    raw = f[6] if len(f) > 6 else f[4] if len(f) > 4 and f[4] != "." else "0"
    try:
        value = float(raw)
    except ValueError:
        raise BedError(f"{rec.where}: value {raw!r} is not a number") from None
    return BedCall(chrom, start, end, f[3] if len(f) > 3 else "", f[5] if len(f) > 5 else ".", value, f)


def parse_calls(lines: Iterable[str], *, source: str = "calls") -> list[BedCall]:
    """The calls of a narrowPeak text, in file order (see :class:`BedCall`).

    Raises
    ------
    BedError
        Naming ``source`` and the line: fewer than three columns, or non-numeric
        coordinates or value.
    """
    return [_call(rec) for rec in parse_bed_lines(lines, source=source)]


def read_calls(path: str | Path, *, region: tuple[str, int, int] | None = None) -> list[BedCall]:
    """The calls of a narrowPeak (BED) file, in file order.

    Parameters
    ----------
    path : str or Path
        Plain or gzip.
    region : (chrom, start, end), optional
        Keep only the calls overlapping ``[start, end)`` of ``chrom`` (0-based, half-open).

    Raises
    ------
    BedError
        See :func:`parse_calls`.
    """
    out = []
    for rec in read_bed_records(path):
        c = _call(rec)
        if region is None or (c.chrom == region[0] and c.end > region[1] and c.start < region[2]):
            out.append(c)
    return out
