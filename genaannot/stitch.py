"""Stitch per-window model outputs into per-base tracks (pure numpy).

Coordinates are 0-based, half-open; window and span coordinates given here are relative
to the start of the stitched span.

* ``center``: each base takes its value from the window that owns it
  (:func:`genaannot.windows.center_cuts`): independent of batch size and window order, and a
  span that fits one window gives exactly that window's prediction.
* ``mean``: each base averages every window covering it (window edges included).

Token outputs are painted onto base pairs through the token spans; sequence outputs (one
vector per window) cover the window's owned interval (``center``: the central bin, about
one stride wide) or the whole window (``mean``).

Under ``center`` a track is constant over each token (or owned bin), so the scan's writer
never paints bases: :func:`center_pieces` gives one piece per token and :func:`piece_runs`
run-length encodes them, equal to :func:`runs` of :func:`stitch`'s per-base array. With a
token per base the pieces are the bases: :func:`center_dense` gives them as that array,
copied window by window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STITCH_MODES", "WindowOutput", "rc_to_forward", "paint", "paint_tokens", "to_forward", "stitch", "runs",
           "round_values", "join_runs", "DEFAULT_TRACK_DIGITS", "center_pieces", "center_dense", "clip_pieces",
           "piece_runs",
           "paint_pieces"]

STITCH_MODES = ("center", "mean")
#: digits kept in scan track values by default (``--track-digits``; :func:`round_values`),
#: chosen on measurement (docs/scale.md): a base-resolution human track ~1.2 GB instead of
#: ~12 GB, average precision from the tracks within 0.003; calls use unrounded values
DEFAULT_TRACK_DIGITS = 2


@dataclass
class WindowOutput:
    """Activated output of one window, in forward coordinates.

    Attributes
    ----------
    start, end : int
        Window extent within the stitched span.
    values : float32 [n_tokens, n_channels] (token head) or [n_channels] (sequence head)
    spans : int64 [n_tokens, 2] or None
        Token spans relative to the window start, ascending and contiguous.
    """

    start: int
    end: int
    values: np.ndarray
    spans: np.ndarray | None


def rc_to_forward(values: np.ndarray, spans: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Map token outputs of a reverse-complemented window back to forward coordinates.

    A token at rc ``[s, e)`` covers forward ``[length - e, length - s)``; the token order is
    reversed so spans ascend. Per base: the value at forward ``p`` is the rc value at
    ``length - 1 - p``.
    """
    fwd = np.empty_like(spans)
    fwd[:, 0] = length - spans[::-1, 1]
    fwd[:, 1] = length - spans[::-1, 0]
    return values[::-1], fwd


def paint_tokens(values: np.ndarray, spans: np.ndarray, *, length: int | None = None) -> np.ndarray:
    """Per-base values of consecutive tokens: each token's row on every base of its span.

    Parameters
    ----------
    values : [n_tokens, n_channels]
    spans : int64 [n_tokens, 2]
        Ascending and contiguous (a window's tokens, or a slice of them).
    length : int, optional
        When given, the spans must start at 0 and cover exactly ``length`` bp.

    Returns
    -------
    float32 [spans[-1, 1] - spans[0, 0], n_channels]
    """
    if len(spans) and (np.any(spans[1:, 0] != spans[:-1, 1]) or np.any(spans[:, 1] <= spans[:, 0])):
        raise ValueError("token spans are not contiguous")
    if length is not None:
        covered = int(spans[-1, 1] - spans[0, 0]) if len(spans) else 0
        if covered != length or (len(spans) and spans[0, 0] != 0):
            raise ValueError(f"token spans cover {covered} bp of a {length} bp window")
    return np.repeat(np.asarray(values).astype(np.float32, copy=False), spans[:, 1] - spans[:, 0], axis=0)


def paint(out: WindowOutput) -> np.ndarray:
    """Per-base values of one window: float32 ``[end - start, n_channels]``."""
    width = out.end - out.start
    if out.spans is None:
        return np.broadcast_to(out.values.astype(np.float32, copy=False), (width, out.values.shape[-1]))
    return paint_tokens(out.values, out.spans, length=width)


def to_forward(track: np.ndarray, strand: str) -> np.ndarray:
    """A per-base track of an input read on ``strand`` (``-``: the reverse complement), in
    forward order: the value at forward ``p`` is the input's at ``length - 1 - p``."""
    return track[::-1] if strand == "-" else track


def stitch(
    outputs: list[WindowOutput],
    *,
    length: int,
    n_channels: int,
    mode: str = "center",
    own: np.ndarray | None = None,
) -> np.ndarray:
    """Stitch window outputs over a span of ``length`` bp.

    Parameters
    ----------
    outputs : list[WindowOutput]
        Windows covering ``[0, length)`` without gaps (any order for ``mean``; for
        ``center`` in the order of ``own``). Under ``center`` a token output's ``spans``
        may cover only the tokens overlapping its owned interval.
    own : int64 [n_windows, 2]
        Owned intervals (``center`` only), from :func:`genaannot.windows.center_cuts`.

    Returns
    -------
    float32 [length, n_channels]
    """
    if mode == "center":
        if own is None:
            raise ValueError("center stitching needs the owned intervals")
        res = np.full((length, n_channels), np.nan, dtype=np.float32)
        for out, (a, b) in zip(outputs, own):
            if b <= a:
                continue
            if out.spans is None:
                res[a:b] = out.values
            else:
                # the spans may cover only the tokens around [a, b) (run_network's keep_rows)
                off = out.start + int(out.spans[0, 0])
                res[a:b] = paint_tokens(out.values, out.spans)[a - off : b - off]
        return res
    if mode == "mean":
        acc = np.zeros((length, n_channels), dtype=np.float64)
        cnt = np.zeros(length, dtype=np.int32)
        # accumulate in a fixed order (by window start) so float sums do not depend on input order
        for out in sorted(outputs, key=lambda o: (o.start, o.end)):
            acc[out.start : out.end] += paint(out)
            cnt[out.start : out.end] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            res = (acc / cnt[:, None]).astype(np.float32)
        return res
    raise ValueError(f"unknown stitch mode {mode!r}; choose {', '.join(STITCH_MODES)}")


def center_pieces(
    win_starts: np.ndarray,
    win_ends: np.ndarray,
    own: np.ndarray,
    values: np.ndarray,
    spans: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    *,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Centre stitching as constant pieces: what :func:`stitch` paints, one entry per token.

    A token's value is constant over its span, so the centre-stitched track is a sequence
    of pieces, one per token (clipped to its window's owned interval) or per window (a
    sequence head), instead of one value per base: :func:`paint_pieces` of the result equals
    :func:`stitch` ``(mode="center")`` of the same windows, bit for bit (tested), and
    :func:`piece_runs` equals :func:`runs` of it.

    Parameters
    ----------
    win_starts, win_ends : int64 [n_windows]
        Window extents within the stitched span, ascending.
    own : int64 [n_windows, 2]
        Owned intervals (:func:`genaannot.windows.center_cuts`), ascending and disjoint.
    values : float32 [n_rows, n_channels]
        Activated values: every window's token rows, concatenated in window order, each
        window's in the model's order (the reverse complement's for ``reverse``); for a
        sequence head (``spans`` None) one row per window.
    spans : int64 or int32 [n_rows, 2], optional
        The rows' token spans relative to their window's start, in the model's
        orientation, ascending and contiguous within a window.
    counts : int64 [n_windows], optional
        Rows per window (with ``spans``).
    reverse : bool
        The windows were read on the reverse complement (:func:`rc_to_forward` per window).

    Returns
    -------
    (starts, ends, values) or None
        Pieces sorted and disjoint (int64, int64, float32 ``[n, n_channels]``), owned
        intervals without a piece left out; ``None`` when the rows of a window do not
        cover its owned interval contiguously (the caller then paints per base, as
        :func:`stitch` does).
    """
    ws = np.asarray(win_starts, dtype=np.int64)
    own = np.asarray(own, dtype=np.int64).reshape(-1, 2)
    vals = np.asarray(values, dtype=np.float32)
    has = _owned(own)
    if has is None:
        return None  # overlapping or out of order: stitch's later-wins painting
    if spans is None:
        return own[has, 0].copy(), own[has, 1].copy(), vals[has]
    counts = np.asarray(counts, dtype=np.int64)
    sp = np.asarray(spans)
    sp = (sp if sp.dtype == np.int32 else sp.astype(np.int64, copy=False)).reshape(-1, 2)  # int32: no copy
    if counts.sum() != len(sp) or len(vals) != len(sp) or len(counts) != len(ws):
        raise ValueError("spans, values and counts do not match")
    n = len(sp)
    if n == 0:
        e = np.empty(0, dtype=np.int64)
        return (e, e.copy(), vals[:0]) if not has.any() else None
    if np.any(has & (counts == 0)):  # an owned interval without rows: paint would not fill it
        return None
    we = np.asarray(win_ends, dtype=np.int64)
    # whole windows at a time, about CENTER_CHUNK_ROWS rows: the temporaries stay small
    first_row = np.cumsum(counts) - counts
    cut = np.flatnonzero(np.diff(first_row // CENTER_CHUNK_ROWS)) + 1
    bounds = np.concatenate(([0], cut, [len(counts)]))
    out_s, out_e = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    out_v = np.empty((n, vals.shape[1]), dtype=np.float32)
    k = 0
    for w0, w1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        r0, r1 = int(first_row[w0]), int(first_row[w1 - 1] + counts[w1 - 1])
        got = _center_rows(ws[w0:w1], we[w0:w1], own[w0:w1], has[w0:w1], counts[w0:w1], sp[r0:r1], reverse)
        if got is None:
            return None
        cs, ce, rows = got
        m = len(cs)
        out_s[k : k + m], out_e[k : k + m], out_v[k : k + m] = cs, ce, vals[r0:r1][rows]
        k += m
    return out_s[:k], out_e[:k], out_v[:k]


def _owned(own: np.ndarray) -> np.ndarray | None:
    """Which windows own bases (bool ``[n_windows]``), or ``None`` when the non-empty owned
    intervals overlap or are out of order (painting, later wins, would then differ from pieces)."""
    has = own[:, 1] > own[:, 0]
    nonempty = own[has]
    if len(nonempty) > 1 and np.any(nonempty[1:, 0] < nonempty[:-1, 1]):
        return None
    return has


#: rows per group of windows in :func:`center_pieces` (a dozen int64 temporaries of this
#: length: ~1.5 MB, touched afresh after each unit's heap trim; 32 windows of 510 tokens)
CENTER_CHUNK_ROWS = 1 << 14


def _center_rows(ws: np.ndarray, we: np.ndarray, own: np.ndarray, has: np.ndarray, counts: np.ndarray,
                 sp: np.ndarray, reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`center_pieces` for whole windows with their rows ``sp`` (int64 or int32 ``[n, 2]``):
    the pieces' starts and ends and the rows they take their values from, or ``None``."""
    n = len(sp)
    win = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts  # first row of each window
    # contiguous and ascending within each window (as paint_tokens requires)
    inner = np.ones(n, dtype=bool)
    inner[first[counts > 0]] = False
    if np.any(sp[:, 1] <= sp[:, 0]) or np.any((sp[1:, 0] != sp[:-1, 1]) & inner[1:]):
        return None
    if reverse:  # rc [s, e) of a window of length L is forward [L - e, L - s); rows reversed per window
        order = 2 * first[win] + counts[win] - 1 - np.arange(n)
        win = win[order]
        end = we[win]
        s, e = end - sp[order, 1], end - sp[order, 0]
    else:
        order = None
        s, e = ws[win] + sp[:, 0], ws[win] + sp[:, 1]
    some = counts > 0  # rows ascend within a window: its first row starts it, its last ends it
    lo, hi = s[first[some]], e[first[some] + counts[some] - 1]
    if np.any(has[some] & ((lo > own[some, 0]) | (hi < own[some, 1]))):
        return None  # the rows do not cover the owned interval: paint would not fill it
    np.maximum(s, own[win, 0], out=s)
    np.minimum(e, own[win, 1], out=e)
    keep = np.flatnonzero(e > s)
    return s[keep], e[keep], keep if order is None else order[keep]


def center_dense(
    win_starts: np.ndarray,
    win_ends: np.ndarray,
    own: np.ndarray,
    values: np.ndarray,
    spans: np.ndarray,
    counts: np.ndarray,
    *,
    reverse: bool = False,
    lo: int,
    hi: int,
) -> np.ndarray | None:
    """:func:`center_pieces` of one-base tokens, painted over ``[lo, hi)``: for a model with a
    token per base a piece is a base, so the per-base array is the smallest form of them
    (no starts and ends, 8 bytes a base fewer, and whole windows copied as slices).

    Equal, bit for bit, to :func:`paint_pieces` of :func:`clip_pieces` of
    :func:`center_pieces` of the same arguments (tested). ``None`` where a row spans other
    than one base, or where :func:`center_pieces` gives ``None`` (the caller then takes
    the pieces, or paints per base).

    Parameters
    ----------
    win_starts, win_ends, own, values, spans, counts, reverse
        As for :func:`center_pieces` (``spans`` int32 or int64 ``[n_rows, 2]``).
    lo, hi : int
        The span to return, within the stitched span.

    Returns
    -------
    float32 [hi - lo, n_channels] or None
        NaN where no window's owned interval lies.
    """
    sp = np.asarray(spans).reshape(-1, 2)
    counts = np.asarray(counts, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float32)
    n = len(sp)
    if n == 0 or hi < lo or len(vals) != n or len(counts) != len(win_starts) or int(counts.sum()) != n:
        return None
    if np.any(sp[:64, 1] - sp[:64, 0] != 1):  # a multi-base tokenizer: at once, before whole passes
        return None
    s0 = sp[:, 0]  # the starts alone decide: a row is one base where the next row starts one later
    own = np.asarray(own, dtype=np.int64).reshape(-1, 2)
    has = _owned(own)
    if has is None or np.any(has & (counts == 0)):
        return None  # as center_pieces
    first = np.cumsum(counts) - counts
    # one base a row, ascending by one within each window: a step other than +1 only where a
    # window starts. (A window's last row is not checked: the owned interval is then checked
    # against one base a row, so a wider last row gives None, or is read only at one of its
    # bases, whose value it is.)
    step = np.flatnonzero(np.diff(s0) != 1) + 1
    if len(step) and not np.isin(step, first[counts > 0]).all():
        return None
    out = np.full((hi - lo, vals.shape[1]), np.nan, dtype=np.float32)
    a0 = s0[np.minimum(first, n - 1)].tolist()  # each window's first row's start (model orientation)
    for f, c, o0, o1, w0, w1, r0 in zip(first.tolist(), counts.tolist(), own[:, 0].tolist(), own[:, 1].tolist(),
                                        np.asarray(win_starts).tolist(), np.asarray(win_ends).tolist(), a0):
        if o1 <= o0:
            continue
        # the window's rows cover [c0, c0 + c) forward; on the reverse strand the rows run backwards
        c0 = w1 - r0 - c if reverse else w0 + r0
        if c0 > o0 or c0 + c < o1:
            return None  # the rows do not cover the owned interval, as center_pieces
        a, b = max(o0, lo), min(o1, hi)
        if b <= a:
            continue
        if reverse:  # forward base x is row f + (c0 + c - 1 - x)
            out[a - lo : b - lo] = vals[f + c0 + c - b : f + c0 + c - a][::-1]
        else:
            out[a - lo : b - lo] = vals[f + a - c0 : f + b - c0]
    return out


def clip_pieces(starts: np.ndarray, ends: np.ndarray, values: np.ndarray, lo: int, hi: int,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted, disjoint pieces of ``[lo, hi)``, cut at its edges."""
    i, j = int(np.searchsorted(ends, lo, side="right")), int(np.searchsorted(starts, hi, side="left"))
    j = max(i, j) if hi > lo else i
    s, e = starts[i:j].copy(), ends[i:j].copy()
    if len(s):
        s[0], e[-1] = max(int(s[0]), lo), min(int(e[-1]), hi)
    return s, e, values[i:j]


def paint_pieces(starts: np.ndarray, ends: np.ndarray, values: np.ndarray, *, length: int,
                 offset: int = 0) -> np.ndarray:
    """Pieces painted per base over ``[offset, offset + length)``: float32 ``[length, n_channels]``,
    NaN where no piece lies."""
    v = np.asarray(values, dtype=np.float32)
    out = np.full((length, v.shape[1]), np.nan, dtype=np.float32)
    for s, e, row in zip((np.asarray(starts) - offset).tolist(), (np.asarray(ends) - offset).tolist(), v):
        out[s:e] = row
    return out


def piece_runs(starts: np.ndarray, ends: np.ndarray, values: np.ndarray, *, offset: int = 0,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encode one channel of sorted, disjoint pieces (NaN = no data, left out):
    equal to :func:`runs` of the pieces painted per base (:func:`paint_pieces`), without the
    painting. Touching pieces of the same float32 bits are joined.

    Parameters
    ----------
    starts, ends : int64 [n]
    values : float32 [n]

    Returns
    -------
    starts, ends : int64 [n_runs] (``+ offset``)
    vals : float32 [n_runs]
    """
    v = np.asarray(values, dtype=np.float32)
    s, e = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    if v.size == 0:
        x = np.empty(0, dtype=np.int64)
        return x, x.copy(), np.empty(0, dtype=np.float32)
    bits = np.ascontiguousarray(v).view(np.uint32)  # compare bit patterns: exact, and NaN == NaN
    change = np.flatnonzero((bits[1:] != bits[:-1]) | (s[1:] != e[:-1])) + 1
    first = np.concatenate(([0], change))
    last = np.concatenate((change - 1, [v.size - 1]))
    vals = v[first]
    keep = ~np.isnan(vals)
    return s[first[keep]] + offset, e[last[keep]] + offset, vals[keep]


def runs(values: np.ndarray, *, offset: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encode a per-base float32 vector (NaN = no data, left out).

    Returns
    -------
    starts, ends : int64 [n_runs]
    vals : float32 [n_runs]
    """
    v = np.asarray(values, dtype=np.float32)
    if v.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e.copy(), np.empty(0, dtype=np.float32)
    bits = v.view(np.uint32)  # compare bit patterns: exact, and NaN == NaN
    change = np.flatnonzero(bits[1:] != bits[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change, [v.size])).astype(np.int64)
    vals = v[starts]
    keep = ~np.isnan(vals)
    return starts[keep] + offset, ends[keep] + offset, vals[keep]


def round_values(values: np.ndarray, *, digits: int | None, probability: bool = False) -> np.ndarray:
    """``values`` rounded for storage in a track, as float32 (``digits=None``: unchanged).

    Values are rounded to ``digits`` decimals. With ``probability`` (sigmoid/softmax outputs,
    in [0, 1]) values of 0.5 and above keep ``digits`` significant digits of their distance
    to 1 instead, so that 0.99, 0.999 and 0.9999 stay apart: the top of the ranking, where
    splice sites and promoters score, keeps its order (measured: average precision from
    the demo's rounded tracks within 0.003 of the unrounded at ``digits=2``, docs/scale-log.md, "The output path at genome scale"),
    while the near-zero background, most of a genome, collapses into long runs.

    Rounding is idempotent, and ``-0.0`` becomes ``0.0`` so that equal-looking neighbours
    form one run.

    Parameters
    ----------
    values : array [n]
    digits : int or None
    probability : bool

    Returns
    -------
    float32 array [n]
    """
    v = np.asarray(values, dtype=np.float32)
    if digits is None:
        return v
    out = np.round(v, digits).astype(np.float32, copy=False)  # float32 in, float32 out: no second copy
    if probability:
        hi = v >= 0.5
        if hi.any():
            d = 1.0 - v[hi].astype(np.float64)
            pos = d > 0
            e = np.floor(np.log10(d[pos]))
            scale = 10.0 ** (digits - 1 - e)
            d[pos] = np.round(d[pos] * scale) / scale
            out[hi] = (1.0 - d).astype(np.float32)
    out[out == 0] = 0.0
    return out


def join_runs(starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join touching runs of equal value (rounding makes many); sorted, non-overlapping input.

    Returns
    -------
    starts, ends, values : arrays [n_joined]
    """
    s, e, v = starts, ends, values
    if len(s) < 2:
        return s, e, v
    brk = np.flatnonzero((s[1:] != e[:-1]) | (v[1:] != v[:-1])) + 1
    if len(brk) == len(s) - 1:
        return s, e, v
    first = np.concatenate(([0], brk))
    last = np.concatenate((brk - 1, [len(s) - 1]))
    return s[first], e[last], v[first]
