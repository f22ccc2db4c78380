"""Genomic intervals and chromosome-name matching.

Coordinate convention (the whole package): **0-based, half-open** ``[start, end)``.
Region strings typed by users (``chr1:1001-2000``) follow the samtools convention
(1-based, inclusive) and are converted here, once, by :func:`parse_region`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Interval", "IntervalSet", "parse_region", "parse_regions", "split_regions", "is_region_string", "match_chroms", "ChromMatch", "RegionError"]


class RegionError(ValueError):
    """A region or chromosome name that does not fit the genome; ``unknown``: the sequence
    name the genome lacks, when that is the reason (a caller may know more of it)."""

    def __init__(self, message: str, *, unknown: str | None = None) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass(frozen=True, order=True)
class Interval:
    """A 0-based half-open interval on one chromosome."""

    chrom: str
    start: int
    end: int
    name: str = ""
    strand: str = "."

    def __post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            raise RegionError(f"invalid interval {self.chrom}:{self.start}-{self.end}")

    def __len__(self) -> int:
        return self.end - self.start

    def ucsc(self) -> str:
        """Format as a 1-based inclusive ``chrom:start-end`` string."""
        return f"{self.chrom}:{self.start + 1}-{self.end}"


class IntervalSet:
    """Intervals merged per chromosome, for fast overlap tests (0-based half-open)."""

    def __init__(self, intervals: Iterable[Interval]) -> None:
        by: dict[str, list[tuple[int, int]]] = {}
        for iv in intervals:
            by.setdefault(iv.chrom, []).append((iv.start, iv.end))
        self._starts: dict[str, list[int]] = {}
        self._ends: dict[str, list[int]] = {}
        for chrom, ivs in by.items():
            merged: list[list[int]] = []
            for s, e in sorted(ivs):
                if merged and s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            self._starts[chrom] = [m[0] for m in merged]
            self._ends[chrom] = [m[1] for m in merged]

    def overlaps(self, chrom: str, start: int, end: int) -> bool:
        """Whether ``[start, end)`` (at least one base: ``end`` is raised to ``start + 1``)
        overlaps an interval."""
        ends = self._ends.get(chrom)
        if not ends:
            return False
        end = max(end, start + 1)
        i = bisect_left(ends, start + 1)  # the first interval ending after start
        return i < len(ends) and self._starts[chrom][i] < end


_RANGE_RE = re.compile(r"^(?P<start>[\d,]+)-(?P<end>[\d,]+)$")
_BRACED_RE = re.compile(r"^\{(?P<chrom>[^{}]+)\}(?::(?P<range>.*))?$")


def _split_region(text: str, sizes: Mapping[str, int] | None) -> tuple[str, str | None]:
    """``(name, range text or None)`` of a region string, as samtools reads it: a name in
    braces (``{HLA-A*01:01:01:01}:1-100``) is taken as it is; else the whole text when it
    is a sequence of the genome; else what precedes the last ``:`` when a range follows it.
    Names may hold ``:`` (GRCh38's HLA contigs); a text that reads both ways is refused."""
    b = _BRACED_RE.match(text)
    if b:
        return b.group("chrom"), b.group("range")
    head, sep, tail = text.rpartition(":")
    ranged = bool(sep and head and re.fullmatch(r"[\d,]+-?[\d,]*", tail))
    if sizes is not None and text in sizes:
        if ranged and _known(head, sizes):
            raise RegionError(f"region {text!r} is ambiguous: the genome has a sequence of that name and one named "
                              f"{head!r}; write {{{text}}} for the first, {{{head}}}:{tail} for a stretch of the second")
        return text, None
    return (head, tail) if ranged else (text, None)


def _known(name: str, sizes: Mapping[str, int]) -> bool:
    try:
        resolve_chrom(name, sizes)
    except RegionError:
        return False
    return True


def parse_region(text: str, *, sizes: Mapping[str, int] | None = None) -> Interval:
    """Parse ``chrom`` or ``chrom:start-end`` (1-based inclusive) into an :class:`Interval`.

    A name may hold ``:`` (``HLA-A*01:01:01:01``, ``HLA-A*01:01:01:01:1-100``); ``{name}``
    and ``{name}:start-end`` (samtools' braces) say where the name ends.

    Parameters
    ----------
    text
        Region string as typed on a command line.
    sizes
        Chromosome lengths; when given the chromosome must exist (aliases such as
        ``1`` for ``chr1`` are resolved) and the region must lie inside it.
    """
    t = text.strip()
    chrom, rng = _split_region(t, sizes)
    if not chrom or re.search(r"\s", chrom):
        raise RegionError(f"cannot parse region {text!r}; expected CHROM or CHROM:START-END")
    m = _RANGE_RE.match(rng) if rng is not None else None
    if rng is not None and m is None:
        one = re.fullmatch(r"([\d,]+)-?", rng)
        if one:  # samtools reads CHR:POS as POS to the end, bcftools as the one base: neither guessed
            pos = one.group(1)
            raise RegionError(f"region {text!r} has no END; give {chrom}:{pos}-{pos} for the one base "
                              f"(coordinates are 1-based, inclusive)")
        raise RegionError(f"cannot parse region {text!r}; expected CHROM or CHROM:START-END")
    if sizes is not None:
        try:
            chrom = resolve_chrom(chrom, sizes)
        except RegionError:
            if ":" in t and m is None and not t.startswith("{"):
                raise RegionError(f"cannot parse region {text!r}; expected CHROM or CHROM:START-END "
                                  f"(and no sequence is named {t!r})") from None
            raise
    if m is None:
        if sizes is None:
            raise RegionError(f"region {text!r} has no coordinates and no genome to take its length from")
        return Interval(chrom, 0, sizes[chrom])
    start = int(m.group("start").replace(",", "")) - 1
    end = int(m.group("end").replace(",", ""))
    if start < 0 or end <= start:
        raise RegionError(f"region {text!r} is empty or reversed (coordinates are 1-based, inclusive)")
    if sizes is not None and end > sizes[chrom]:
        raise RegionError(f"region {text!r} runs past the end of {chrom} (length {sizes[chrom]:,})")
    return Interval(chrom, start, end)


def parse_regions(texts: str | Iterable[str], *, sizes: Mapping[str, int]) -> list[Interval]:
    """Region strings (each maybe a comma-separated list, :func:`split_regions`) → intervals,
    checked against the genome (:func:`parse_region`), in the order given."""
    items = [texts] if isinstance(texts, str) else list(texts)
    return [parse_region(r, sizes=sizes) for t in items for r in split_regions(t)]


def is_region_string(text: str) -> bool:
    """Whether ``text`` is ``CHROM:START-END`` (a region with coordinates, not a bare name)."""
    _, rng = _split_region(text.strip(), None)
    return rng is not None and _RANGE_RE.match(rng) is not None


_THOUSANDS = re.compile(r"^\d{3}(?:-[\d,]*)?$")


def split_regions(text: str) -> list[str]:
    """Split a comma-separated region list (bcftools ``-r``), keeping thousands separators.

    A comma starts a new region unless the text before it has coordinates and the piece
    after it is a group of exactly three digits (``Chr5:1,000-2,000,Chr1`` is two regions).
    """
    out: list[str] = []
    for piece in text.split(","):
        if out and ":" in out[-1] and _THOUSANDS.match(piece):
            out[-1] += "," + piece
        else:
            out.append(piece)
    return [x.strip() for x in out if x.strip()]


def _strip_chr(name: str) -> str:
    low = name.lower()
    base = name[3:] if low.startswith("chr") else name
    return {"M": "MT", "m": "MT"}.get(base, base).upper()


def resolve_chrom(name: str, sizes: Mapping[str, int]) -> str:
    """Return the genome's spelling of ``name`` (``1`` ↔ ``chr1``, ``MT`` ↔ ``chrM``).

    Raises :class:`RegionError` when the name is unknown or ambiguous.
    """
    if name in sizes:
        return name
    key = _strip_chr(name)
    hits = [c for c in sizes if _strip_chr(c) == key]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise RegionError(f"chromosome {name!r} is not in the genome (it has {_preview(sizes)})", unknown=name)
    raise RegionError(f"chromosome {name!r} matches several genome sequences: {', '.join(hits)}")


def _preview(names: Iterable[str], n: int = 6) -> str:
    names = list(names)
    head = ", ".join(names[:n])
    return head + (f", … ({len(names)} in all)" if len(names) > n else "")


@dataclass(frozen=True)
class ChromMatch:
    """How the chromosome names of one file map onto the genome's."""

    mapping: dict[str, str]
    unmatched: tuple[str, ...]
    renamed: dict[str, str]


def match_chroms(
    names: Iterable[str],
    genome_sizes: Mapping[str, int],
    *,
    lengths: Mapping[str, int] | None = None,
) -> ChromMatch:
    """Map names from another file (VCF, BED) onto the genome's names.

    ``chr1``/``1`` and ``chrM``/``MT``/``M`` are matched when the match is unique. Mitochondrial
    names are matched only when ``lengths`` (e.g. VCF ``##contig`` lengths) are given and
    agree, since GRCh37 ``MT`` and hg19 ``chrM`` are different sequences.
    """
    mapping: dict[str, str] = {}
    unmatched: list[str] = []
    renamed: dict[str, str] = {}
    for name in names:
        if name in genome_sizes:
            mapping[name] = name
            continue
        try:
            target = resolve_chrom(name, genome_sizes)
        except RegionError:
            unmatched.append(name)
            continue
        if _strip_chr(name) == "MT":
            known = (lengths or {}).get(name)
            if known is None or known != genome_sizes[target]:
                unmatched.append(name)
                continue
        mapping[name] = target
        renamed[name] = target
    return ChromMatch(mapping, tuple(unmatched), renamed)
