"""Tiling plan: work units and token-sized windows (pure; no files, no model).

Coordinates are 0-based, half-open.

Two levels:

* **Work units** (:func:`plan_units`): each scanned segment (a region with long ``N`` runs
  removed) is cut at fixed multiples of ``unit_bp`` from its start. A unit's windows are
  planned over the unit plus a halo on either side (:func:`unit_context`), so a unit's
  result depends only on the genome, the model's tokenizer and the settings — units can be
  computed in any order, on different machines (``--shard``), or again after a crash
  (``--resume``) and give identical bytes.
* **Windows** (:func:`plan_windows`): sized in *tokens*, never truncated. Each strand's
  planned span is tokenised **once** (:func:`tokenize_long`: chunks with a look-ahead, equal
  to one pass over the whole span); window ``i`` is tokens ``[i × stride, i × stride +
  window_tokens)`` of it (``stride = window_tokens - round(overlap × window_tokens)``), so
  every window holds exactly ``window_tokens`` tokens except the last. The minus strand is
  planned the same way on the reverse complement (:func:`reverse_plan` maps it back), so
  each base is tokenised about twice (once per strand) whatever the overlap.
* **Ownership** (:func:`center_cuts`): under ``center`` stitching each base takes its value
  from the covering window whose centre is nearest; windows therefore own contiguous
  intervals and their edges are discarded except at the ends of the planned span.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .regions import Interval

if TYPE_CHECKING:
    from .tokenize import DNATokenizer, Encoding


class GenomeReader(Protocol):
    """What planning needs from a genome (:class:`genaannot.io.fasta.Genome` is one)."""

    sizes: dict[str, int]

    def fetch(self, chrom: str, start: int, end: int) -> str: ...

__all__ = [
    "Segment",
    "Unit",
    "WindowPlan",
    "plan_units",
    "unit_context",
    "plan_windows",
    "center_cuts",
    "reverse_complement",
    "subtract_gaps",
    "stride_tokens",
    "tokenize_long",
    "resync_bp",
    "reverse_plan",
    "GenomeReader",
    "NRun",
    "find_n_runs",
    "scan_n_runs",
    "ScanLayout",
    "merge_targets",
    "layout_scan",
    "default_unit_bp",
    "halo_bp_per_token",
    "WORK_BYTES",
    "BPE_UNIT_BP",
    "BASE_UNIT_BP",
    "MAX_UNIT_BP",
    "UNIT_WINDOWS",
]

#: budget of one work unit's float32 work arrays (sets the default unit size)
WORK_BYTES = 512 * 1024 * 1024

#: the default work unit (:func:`default_unit_bp`) holds about 80,000 token positions a
#: strand: 500 kb of GENA BPE (~83,000 on real DNA), 80 kb of a model with a token per base.
#: Smaller units keep less in flight; each costs a little host work (docs/scale-log.md, "Work
#: units of ~80,000 token positions")
BPE_UNIT_BP = 500_000
BASE_UNIT_BP = 80_000

#: the largest default unit (long windows: see :data:`UNIT_WINDOWS`)
MAX_UNIT_BP = 1_000_000

#: a default work unit holds at least this many windows, so its halo costs little
UNIT_WINDOWS = 32

#: bp per chunk of :func:`tokenize_long` (long enough that the look-ahead costs little, short
#: enough that BPE's per-word cost stays linear)
CHUNK_BP = 8192

_COMP = str.maketrans("ACGTRYKMBVDHNSWacgtrykmbvdhnsw", "TGCAYRMKVBHDNSWtgcayrmkvbhdnsw")


def reverse_complement(seq: str) -> str:
    """Reverse complement, IUPAC-aware, case kept."""
    return seq.translate(_COMP)[::-1]


def stride_tokens(window_tokens: int, overlap: float) -> int:
    """Tokens between consecutive window starts."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    return max(1, window_tokens - round(overlap * window_tokens))


@dataclass(frozen=True)
class Segment:
    """A stretch of one chromosome to scan (no long ``N`` run inside)."""

    chrom: str
    start: int
    end: int


@dataclass(frozen=True)
class Unit:
    """One deterministic piece of work: write ``[start, end)`` of ``segment``."""

    index: int
    chrom: str
    start: int
    end: int
    seg_start: int
    seg_end: int

    @property
    def key(self) -> str:
        return f"{self.index:06d}"


def subtract_gaps(start: int, end: int, gaps: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[start, end)`` minus sorted, non-overlapping ``gaps``; empty pieces dropped."""
    out, pos = [], start
    for gs, ge in gaps:
        if ge <= pos or gs >= end:
            continue
        if gs > pos:
            out.append((pos, gs))
        pos = max(pos, ge)
    if pos < end:
        out.append((pos, end))
    return out


def plan_units(segments: list[Segment], *, unit_bp: int) -> list[Unit]:
    """Cut segments into units of at most ``unit_bp`` bp, numbered in input order."""
    if unit_bp < 1:
        raise ValueError("unit_bp must be positive")
    units: list[Unit] = []
    for seg in segments:
        for s in range(seg.start, seg.end, unit_bp):
            units.append(Unit(len(units), seg.chrom, s, min(seg.end, s + unit_bp), seg.start, seg.end))
    return units


def unit_context(unit: Unit, halo: int) -> tuple[int, int]:
    """The span whose windows are planned for ``unit``: the unit ± ``halo``, inside its segment."""
    return max(unit.seg_start, unit.start - halo), min(unit.seg_end, unit.end + halo)


@dataclass
class WindowPlan:
    """Windows over one strand's sequence (coordinates relative to that sequence).

    The windows' tokens are not copied: each is a row range of the strand's one
    tokenisation (small to pickle from a worker process; :meth:`encoding` builds a window's
    :class:`~genaannot.tokenize.Encoding` on demand).

    Attributes
    ----------
    starts, ends : int64 [n_windows]
        Window extents; starts strictly increasing, ends strictly increasing, each window
        starts inside or at the end of the previous one (no gaps).
    tokens : Encoding
        The tokenisation the windows are sliced from (for a plan mapped by
        :func:`reverse_plan`, the reverse complement's, in its own coordinates).
    ranges : int64 [n_windows, 2]
        Token rows ``[t0, t1)`` of ``tokens`` in each window (at most ``window_tokens``).
    """

    starts: np.ndarray
    ends: np.ndarray
    tokens: Encoding
    ranges: np.ndarray

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def encoding(self, i: int) -> Encoding:
        """Window ``i``'s tokens, spans relative to its own first base."""
        from .tokenize import Encoding

        t0, t1 = int(self.ranges[i, 0]), int(self.ranges[i, 1])
        spans = self.tokens.spans[t0:t1]
        return Encoding(self.tokens.ids[t0:t1], spans - spans[0, 0])

    @property
    def encs(self) -> list[Encoding]:
        """Every window's :meth:`encoding`, in window order."""
        from .tokenize import Encoding

        ids, spans = self.tokens.ids, self.tokens.spans  # one loop without numpy scalars: the device
        out = []                                         # process's main thread builds these
        for t0, t1 in self.ranges.tolist():
            s = spans[t0:t1]
            out.append(Encoding(ids[t0:t1], s - s[0, 0]))
        return out

    def subset(self, index: np.ndarray) -> WindowPlan:
        """The windows ``index`` (ascending) only, with the token rows they use: views of
        this plan's tokenisation, or copies where that frees at least an eighth of it."""
        from .tokenize import Encoding

        ranges = self.ranges[index]
        lo, hi = (int(ranges[:, 0].min()), int(ranges[:, 1].max())) if len(ranges) else (0, 0)
        ids, spans = self.tokens.ids[lo:hi], self.tokens.spans[lo:hi]
        if 8 * (hi - lo) < 7 * len(self.tokens):  # copied only when that frees at least an eighth
            ids, spans = ids.copy(), spans.copy()  # (a unit's halo is usually less: views, no copy)
        return WindowPlan(self.starts[index], self.ends[index], Encoding(ids, spans), ranges - lo)


def resync_bp(tokenizer: DNATokenizer) -> int:
    """Look-ahead past each chunk of :func:`tokenize_long` (0 for 1-bp tokenizers).

    A cut changes a BPE tokenisation only within a few tokens of it; ``4 × max_token_bp``
    bp (256 for the GENA tokenizers) is far beyond that (half of it already reproduced the
    one-pass tokenisation of every TAIR10 chromosome in the bundled genome, both strands).
    """
    longest = int(getattr(tokenizer, "max_token_bp", 1))
    return 0 if longest <= 1 else 4 * longest


_NOT_N = re.compile("[^Nn]")


def tokenize_long(seq: str, *, tokenizer: DNATokenizer, chunk_bp: int = CHUNK_BP, compact: bool = False) -> Encoding:
    """Tokenise a long sequence in chunks, as one pass over all of it would.

    Each chunk is tokenised with :func:`resync_bp` bp of look-ahead, and only its tokens
    that end before the look-ahead are kept; the next chunk starts at the last kept token
    boundary. A chunk never ends inside a run of ``N`` (which BPE tokenizers turn into one
    gap token however long it is). The result equals the single-pass tokenisation (checked on real genomes for
    the GENA tokenizer, both strands) while BPE's cost stays linear in ``len(seq)``. A
    tokenizer with a token per letter (``per_letter``: the character tokenizer) tokenises
    ``seq`` in one call.

    With ``compact`` (and ``seq`` under 2³¹ letters) the ids and spans are int32, the form
    a scan's planned units keep (:meth:`genaannot.span.SpanWork.compact`); a tokenizer with
    a token per letter makes them so directly, without int64 arrays first.

    Returns
    -------
    Encoding
        ``ids`` int64 [n_tokens], ``spans`` int64 [n_tokens, 2] over ``seq`` (int32 with ``compact``).
    """
    from .tokenize import Encoding

    n = len(seq)
    small = compact and n < 2**31
    if getattr(tokenizer, "per_letter", False):  # a token per letter: chunks would only be copied together
        return tokenizer.encode(seq, dtype=np.int32) if small else tokenizer.encode(seq)
    pad = resync_bp(tokenizer)
    ids: list[np.ndarray] = []
    spans: list[np.ndarray] = []
    pos = 0
    while pos < n:
        cut = min(n, pos + chunk_bp)
        if 0 < cut < n and seq[cut - 1] in "Nn" and seq[cut] in "Nn":
            # never cut a run of N: the tokenizer makes a long run one gap token
            m = _NOT_N.search(seq, cut)
            cut = m.start() if m else n
        hi = min(n, cut + pad)
        enc = tokenizer.encode(seq[pos:hi])
        if hi == n:
            k = len(enc)
        else:
            k = max(1, int(np.searchsorted(enc.spans[:, 1], cut - pos, side="right")))
        ids.append(enc.ids[:k])
        spans.append(enc.spans[:k] + pos)
        pos += int(enc.spans[k - 1, 1])
    dt = np.int32 if small else np.int64
    if not ids:
        return Encoding(np.zeros(0, dtype=dt), np.zeros((0, 2), dtype=dt))
    return Encoding(np.concatenate(ids, dtype=dt), np.concatenate(spans, dtype=dt))


def plan_windows(seq: str, *, tokenizer: DNATokenizer, window_tokens: int, overlap: float,
                 compact: bool = False) -> WindowPlan:
    """Tile one strand's sequence with windows of at most ``window_tokens`` content tokens.

    ``seq`` is tokenised once (:func:`tokenize_long`); window ``i`` is tokens
    ``[i × stride, i × stride + window_tokens)`` of that tokenisation, the last one running
    to the end. A window's tokens are therefore exactly what the model gets, never
    truncated, and equal to tokenising the window's bases on their own whenever the
    tokenizer is local at token boundaries (measured: every window of a 300-kb TAIR10
    stretch, both strands, GENA t2t tokenizer). A sequence that fits one window gives
    exactly one window ``[0, len(seq))``.

    Parameters
    ----------
    seq : str
        The letters to tile (any case); for the minus strand, the reverse complement.
    tokenizer : DNATokenizer
        The model's tokenizer.
    window_tokens : int
        Content tokens per window (at most the model's ``max_tokens``).
    overlap : float
        Fraction of a window shared with the next, in ``[0, 1)``.
    compact : bool
        The tokenisation as int32 (:func:`tokenize_long`); window starts and ends stay int64.
    """
    if window_tokens < 1:
        raise ValueError("window_tokens must be positive")
    step = stride_tokens(window_tokens, overlap)
    whole = tokenize_long(seq, tokenizer=tokenizer, compact=compact)
    n_tok = len(whole)
    t0 = np.arange(0, max(1, n_tok - window_tokens + step), step, dtype=np.int64) if n_tok else \
        np.zeros(0, dtype=np.int64)
    t1 = np.minimum(t0 + window_tokens, n_tok)
    if not n_tok:
        return WindowPlan(t0, t0, whole, np.stack([t0, t1], axis=1))
    return WindowPlan(whole.spans[t0, 0].astype(np.int64, copy=False),
                      whole.spans[t1 - 1, 1].astype(np.int64, copy=False), whole,
                      np.stack([t0, t1], axis=1))


def reverse_plan(plan: WindowPlan, length: int) -> WindowPlan:
    """A plan made on the reverse complement, in forward coordinates (starts ascending).

    The encodings stay those of the reverse-complement windows (spans in their own
    coordinates), which is what the model sees and what :func:`~genaannot.stitch.rc_to_forward`
    maps back.
    """
    return WindowPlan(length - plan.ends[::-1], length - plan.starts[::-1], plan.tokens, plan.ranges[::-1])


def center_cuts(starts: np.ndarray, ends: np.ndarray, *, lo: int, hi: int, ties: str = "later") -> np.ndarray:
    """Intervals owned by each window under nearest-centre stitching.

    Base ``p`` (centre ``p + 0.5``) goes to the covering window with the nearest centre
    ``(start + end) / 2``; a tie goes to the later window (``ties="later"``) or the earlier
    one (``"earlier"``). The minus strand's windows are given in forward coordinates, so it
    uses ``"earlier"``: the later window in its own orientation, which makes its values the
    reverse complement's read backwards, ties included. The first window owns from ``lo``
    and the last up to ``hi`` (edges are kept only at the ends of the planned span).

    Returns
    -------
    int64 [n_windows, 2]
        ``[own_start, own_end)`` per window; contiguous, covering ``[lo, hi)``.
    """
    if ties not in ("later", "earlier"):
        raise ValueError(f"ties must be 'later' or 'earlier', not {ties!r}")
    n = len(starts)
    cuts = np.empty(n + 1, dtype=np.int64)
    cuts[0], cuts[n] = lo, hi
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    if n > 1:
        total = s[:-1] + e[:-1] + s[1:] + e[1:]
        # p belongs to window i iff p + 0.5 < total / 4  <=>  p < (total + 1) // 4 (ties later),
        # or iff p + 0.5 <= total / 4  <=>  p < (total + 2) // 4 (ties earlier)
        mid = (total + (1 if ties == "later" else 2)) // 4
        mid = np.minimum(np.maximum(mid, s[1:]), e[:-1])
        cuts[1:n] = np.maximum.accumulate(np.maximum(mid, lo))
        cuts[1:n] = np.minimum(cuts[1:n], hi)
    return np.stack([cuts[:-1], cuts[1:]], axis=1)


# --------------------------------------------------------------------------- N runs


@dataclass(frozen=True)
class NRun:
    """A run of ``N``/``n``: 0-based half-open ``[start, end)``."""

    start: int
    end: int


def find_n_runs(seq: str, *, min_len: int = 1, offset: int = 0) -> list[NRun]:
    """Runs of ``N`` (either case) of at least ``min_len`` bp in ``seq``.

    Parameters
    ----------
    seq : str
    min_len : int
    offset : int
        Added to the returned coordinates (position of ``seq[0]`` in its chromosome).
    """
    if not seq:
        return []
    b = np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)
    isn = (b == ord("N")) | (b == ord("n"))
    if not isn.any():
        return []
    # int8 throughout (a list's 0 would make it int64: 16 bytes per base of a 4-Mb chunk)
    d = np.diff(np.concatenate((np.zeros(1, np.int8), isn.view(np.int8), np.zeros(1, np.int8))))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    keep = (ends - starts) >= min_len
    return [NRun(int(s) + offset, int(e) + offset) for s, e in zip(starts[keep], ends[keep])]


def scan_n_runs(genome: GenomeReader, chrom: str, *, min_len: int, chunk: int = 4_000_000) -> Iterator[NRun]:
    """Runs of ``N`` of at least ``min_len`` bp along a whole chromosome, read in chunks.

    Memory is bounded by ``chunk`` letters; runs crossing chunk boundaries are joined.
    """
    size = genome.sizes[chrom]
    open_start: int | None = None  # run touching the previous chunk's end
    open_end = 0
    for pos in range(0, size, chunk):
        end = min(size, pos + chunk)
        runs = find_n_runs(genome.fetch(chrom, pos, end), offset=pos)
        for r in runs:
            if open_start is not None and r.start == open_end:
                open_end = r.end
                continue
            if open_start is not None and open_end - open_start >= min_len:
                yield NRun(open_start, open_end)
            open_start, open_end = r.start, r.end
        if open_start is not None and open_end < end:
            if open_end - open_start >= min_len:
                yield NRun(open_start, open_end)
            open_start = None
    if open_start is not None and open_end - open_start >= min_len:
        yield NRun(open_start, open_end)


# --------------------------------------------------------------------------- scan layout


def merge_targets(intervals: Iterable[Interval], *, order: Sequence[str]) -> list[Interval]:
    """Sort intervals by ``order`` (the ``.fai`` order) and position, merging overlapping and
    adjacent ones, so that no base is scanned twice."""
    rank = {c: i for i, c in enumerate(order)}
    merged: list[Interval] = []
    for iv in sorted(intervals, key=lambda iv: (rank[iv.chrom], iv.start, iv.end)):
        if merged and merged[-1].chrom == iv.chrom and iv.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.chrom, last.start, max(last.end, iv.end))
        else:
            merged.append(Interval(iv.chrom, iv.start, iv.end))
    return merged


def halo_bp_per_token(max_token_bp: int) -> int:
    """Bases a token is counted as when a unit's halo (and its least size) is set from a
    window's tokens: ``max_token_bp``, at most 8 (a BPE token's longest span overstates)."""
    return min(8, max(1, int(max_token_bp)))


def default_unit_bp(n_tracks: int, *, max_token_bp: int, window_tokens: int) -> int:
    """Work-unit size for a model with ``n_tracks`` output tracks.

    About 80,000 token positions a strand: :data:`BPE_UNIT_BP` (500 kb) for tokens of several
    bases (GENA BPE: ~83,000 on real DNA), :data:`BASE_UNIT_BP` (80 kb) for a token per base
    (``max_token_bp`` 1: HyenaDNA, the bundled CNNs) — but never less than
    :data:`UNIT_WINDOWS` windows (counting ``min(8, max_token_bp)`` bp a token, as the halo
    does), so that a unit's halo stays a few per cent of its work (a HyenaDNA model with
    32-kb windows, a BigBird one with 4,096 tokens: :data:`MAX_UNIT_BP`, 1 Mb). Less when
    many tracks make one unit's work arrays large (``12`` bytes per base and track); never
    below 20 kb.
    """
    per_token = halo_bp_per_token(max_token_bp)
    floor = BASE_UNIT_BP if max_token_bp <= 1 else BPE_UNIT_BP
    unit = min(MAX_UNIT_BP, max(floor, UNIT_WINDOWS * int(window_tokens) * per_token))
    return int(min(unit, max(20_000, WORK_BYTES // (12 * max(1, n_tracks)))))


@dataclass(frozen=True)
class ScanLayout:
    """Where a scan (or an evaluation, which tiles alike) puts its work.

    Attributes
    ----------
    targets : list of Interval
        Merged regions asked for, in ``.fai`` order.
    segments : list of Segment
        Targets minus runs of N of at least ``min_gap`` bp.
    units : list of Unit
        Segments cut every ``unit_bp`` bp from their starts, numbered in order.
    n_bp_skipped, n_gaps : int
        Bases in the skipped N runs, and how many runs met the targets.
    """

    targets: list[Interval]
    segments: list[Segment]
    units: list[Unit]
    min_gap: int
    unit_bp: int
    n_bp_skipped: int
    n_gaps: int


def layout_scan(
    genome: GenomeReader, targets: Sequence[Interval], *, min_gap: int, unit_bp: int
) -> ScanLayout:
    """Segments and work units of ``targets`` (merged; see :func:`merge_targets`).

    N runs of at least ``min_gap`` bp are found by reading ``genome`` in chunks
    (:func:`scan_n_runs`); they are not scanned and have no data.
    """
    targets = merge_targets(targets, order=list(genome.sizes))
    segs: list[Segment] = []
    skipped = n_gaps = 0
    by_chrom: dict[str, list[Interval]] = {}
    for t in targets:
        by_chrom.setdefault(t.chrom, []).append(t)
    for chrom, ivs in by_chrom.items():
        gaps = [(r.start, r.end) for r in scan_n_runs(genome, chrom, min_len=min_gap)]
        for t in ivs:
            pieces = subtract_gaps(t.start, t.end, gaps)
            skipped += len(t) - sum(e - s for s, e in pieces)
            n_gaps += sum(1 for gs, ge in gaps if gs < t.end and ge > t.start)
            segs.extend(Segment(chrom, s, e) for s, e in pieces)
    return ScanLayout(targets, segs, plan_units(segs, unit_bp=unit_bp), int(min_gap), int(unit_bp), skipped, n_gaps)


