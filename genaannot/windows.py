"""Tiling plan: work units and token-sized windows (pure; no files, no model).

Coordinates are 0-based, half-open.

Two levels:

* **Work units** (:func:`plan_units`): each scanned segment (a region with long ``N`` runs
  removed) is cut at fixed multiples of ``unit_bp`` from its start. A unit's windows are
  planned over the unit plus a halo on either side (:func:`unit_context`), so a unit's
  result depends only on the genome, the model's tokenizer and the settings — units can be
  computed in any order, on different machines (``--shard``), or again after a crash
  (``--resume``) and give identical bytes.
* **Windows** (:func:`plan_windows`): sized in *tokens*, never silently truncated. The
  planned span is tokenised **once**, in chunks, only to find token boundaries. Each window
  starts at a token boundary; its bp end is read off those boundaries (``window_tokens``
  tokens, minus a small margin for BPE tokenizers, see :func:`window_margin`), then the
  exact window is tokenised on its own, forward *and* reverse complement (one plan serves
  both strands); in the rare case that either overflows, the window is shrunk and
  re-tokenised until both fit. The next window starts ``stride_tokens`` tokens further on
  in the window's own tokenisation
  (``stride_tokens = window_tokens - round(overlap * window_tokens)``). Each base is thus
  tokenised about ``1 + 2 × 2`` times at overlap 0.5 (chunk pass, two windows, two strands).
* **Ownership** (:func:`center_cuts`): under ``center`` stitching each base takes its value
  from the covering window whose centre is nearest; windows therefore own contiguous
  intervals and their edges are discarded except at the ends of the planned span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .tokenize import DNATokenizer, Encoding

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
    "window_margin",
    "token_boundaries",
]

#: bp per chunk of the boundary pass (long enough that chunk edges are rare, short enough
#: that BPE's per-word cost stays linear)
CHUNK_BP = 16384

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
    """Windows over one sequence (coordinates relative to that sequence).

    Attributes
    ----------
    starts, ends : int64 [n_windows]
        Window extents; starts strictly increasing, ends strictly increasing, each window
        starts inside or at the end of the previous one (no gaps).
    plus : list[Encoding]
        Tokenisation of each window (forward strand), at most ``window_tokens`` tokens.
    minus : list[Encoding] or None
        Tokenisation of each window's reverse complement (when planned for both strands).
    """

    starts: np.ndarray
    ends: np.ndarray
    plus: list[Encoding]
    minus: list[Encoding] | None

    def __len__(self) -> int:
        return int(self.starts.shape[0])


def _fit(seq: str, start: int, end: int, tokenizer: DNATokenizer, window_tokens: int, both: bool):
    """Shrink ``[start, end)`` until its forward (and rc) tokenisation fits; return encodings."""
    while True:
        wseq = seq[start:end]
        plus = tokenizer.encode(wseq)
        if len(plus) > window_tokens:
            end = start + int(plus.spans[window_tokens - 1, 1])
            continue
        if not both:
            return end, plus, None
        minus = tokenizer.encode(reverse_complement(wseq))
        excess = len(minus) - window_tokens
        if excess > 0:
            # the rc's first tokens are the forward window's last bases: cut them off
            end -= int(minus.spans[excess - 1, 1])
            continue
        return end, plus, minus


def window_margin(tokenizer: DNATokenizer, window_tokens: int) -> int:
    """Tokens kept free when a window's end is read off the chunk boundaries.

    A window tokenised on its own (and its reverse complement) can need a few more tokens
    than the chunk's tokenisation of the same bases. 1-bp tokenizers never differ (margin
    0); for BPE tokenizers ``max(1, window_tokens // 32)`` makes overflow rare (measured:
    0.7 % of 510-token windows on *A. thaliana* with the GENA t2t tokenizer, against 55 %
    with no margin), so almost every window is tokenised exactly once per strand.
    """
    if int(getattr(tokenizer, "max_token_bp", 1)) <= 1:
        return 0
    return max(1, window_tokens // 32)


def token_boundaries(seq: str, *, tokenizer: DNATokenizer, chunk_bp: int = CHUNK_BP) -> np.ndarray:
    """Token ends of ``seq`` tokenised in consecutive ``chunk_bp`` pieces, with a leading 0.

    Returns
    -------
    int64 [n_tokens + 1]
        Strictly increasing, ``[0]`` first and ``len(seq)`` last.
    """
    parts = [np.zeros(1, dtype=np.int64)]
    for c0 in range(0, len(seq), chunk_bp):
        piece = seq[c0 : c0 + chunk_bp]
        enc = tokenizer.encode(piece)
        parts.append(c0 + enc.spans[:, 1] if len(enc) else np.array([c0 + len(piece)], dtype=np.int64))
    return np.concatenate(parts)


def plan_windows(
    seq: str,
    *,
    tokenizer: DNATokenizer,
    window_tokens: int,
    overlap: float,
    both_strands: bool = True,
) -> WindowPlan:
    """Tile ``seq`` with windows of at most ``window_tokens`` content tokens.

    A sequence that fits one window gives exactly one window ``[0, len(seq))``.

    Parameters
    ----------
    seq : str
        The letters to tile (any case).
    tokenizer : DNATokenizer
        The model's tokenizer; each window is tokenised on its own.
    window_tokens : int
        Content tokens per window (at most the model's ``max_tokens``).
    overlap : float
        Fraction of a window shared with the next, in ``[0, 1)``.
    both_strands : bool
        Also make every window's reverse complement fit (one plan for both strands).
    """
    if window_tokens < 1:
        raise ValueError("window_tokens must be positive")
    n = len(seq)
    step = stride_tokens(window_tokens, overlap)
    target = max(1, window_tokens - window_margin(tokenizer, window_tokens))
    bounds = token_boundaries(seq, tokenizer=tokenizer)
    last = len(bounds) - 1
    starts: list[int] = []
    ends: list[int] = []
    plus: list[Encoding] = []
    minus: list[Encoding] = []
    start = 0
    while start < n:
        # the chunk pass's `target`-th token after `start` (a partial token counts as one)
        j = int(np.searchsorted(bounds, start, side="left"))
        partial = 1 if bounds[j] > start else 0
        k = j + target - partial
        # the rest fits a whole window: try it (the margin only guards cut windows)
        end = n if k >= last or last - j + partial <= window_tokens else int(bounds[k])
        end, ep, em = _fit(seq, start, end, tokenizer, window_tokens, both_strands)
        if not ends or end > ends[-1]:  # a window inside the previous one adds nothing
            starts.append(start)
            ends.append(end)
            plus.append(ep)
            if em is not None:
                minus.append(em)
        if end >= n:
            break
        nxt = start + int(ep.spans[step - 1, 1]) if len(ep) > step else end
        start = max(start + 1, min(nxt, end))
    return WindowPlan(
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        plus,
        minus if both_strands else None,
    )


def center_cuts(starts: np.ndarray, ends: np.ndarray, *, lo: int, hi: int) -> np.ndarray:
    """Intervals owned by each window under nearest-centre stitching.

    Base ``p`` (centre ``p + 0.5``) goes to the covering window with the nearest centre
    ``(start + end) / 2``; a tie goes to the later window. The first window owns from ``lo``
    and the last up to ``hi`` (edges are kept only at the ends of the planned span).

    Returns
    -------
    int64 [n_windows, 2]
        ``[own_start, own_end)`` per window; contiguous, covering ``[lo, hi)``.
    """
    n = len(starts)
    cuts = np.empty(n + 1, dtype=np.int64)
    cuts[0], cuts[n] = lo, hi
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    if n > 1:
        total = s[:-1] + e[:-1] + s[1:] + e[1:]
        # p belongs to window i iff p + 0.5 < total / 4  <=>  p < (total + 1) // 4
        mid = (total + 1) // 4
        mid = np.minimum(np.maximum(mid, s[1:]), e[:-1])
        cuts[1:n] = np.maximum.accumulate(np.maximum(mid, lo))
        cuts[1:n] = np.minimum(cuts[1:n], hi)
    return np.stack([cuts[:-1], cuts[1:]], axis=1)


def parse_shard(shard: tuple[int, int] | str | None) -> tuple[int, int] | None:
    """``"i/n"`` or ``(i, n)`` → ``(i, n)`` with ``1 <= i <= n``; ``ValueError`` otherwise."""
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise ValueError(f"--shard must look like I/N (e.g. 2/8), not {shard!r}") from None
    else:
        i, n = (int(x) for x in shard)
    if not 1 <= i <= n:
        raise ValueError(f"--shard {i}/{n}: I must be between 1 and N")
    return i, n
