"""The compiled loop of :func:`genaannot.stitch.center_pieces` (imports ``numba``; imported lazily).

One pass over a strand's token rows instead of a dozen whole-array numpy passes (each
with its own temporary): the scan's writer cut its time for a 1-Mb unit from ≈ 36 to a few
ms and no longer holds ~15 MB of temporaries. Compiled once per machine (``cache=True``, as
:mod:`genaannot._bpe_kernel`).
"""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def pieces(ws, we, own, counts, spans, reverse, out_s, out_e, out_row):
    """Fill ``out_*`` with the centre-stitched pieces; return how many, or -1 where
    :func:`genaannot.stitch.center_pieces` gives way to painting.

    Parameters
    ----------
    ws, we : int64 [n_windows]
        Window extents.
    own : int64 [n_windows, 2]
        Owned intervals (already checked ascending and disjoint).
    counts : int64 [n_windows]
        Rows per window (summing to ``n_rows``).
    spans : int64 or int32 [n_rows, 2]
        Rows' spans relative to their window, in the model's orientation.
    reverse : bool
        Rows are in the reverse complement's orientation: mapped back, each window's rows reversed.
    out_s, out_e : int64 [n_rows]
    out_row : int64 [n_rows]
        The pieces' forward extents and the row each takes its values from.
    """
    k = 0
    first = 0
    for w in range(ws.shape[0]):
        c = counts[w]
        a = own[w, 0]
        b = own[w, 1]
        has = b > a
        if c == 0:
            if has:
                return -1
            continue
        # the rows are non-empty and contiguous within the window (as paint_tokens requires)
        for r in range(first, first + c):
            if spans[r, 1] <= spans[r, 0] or (r > first and spans[r, 0] != spans[r - 1, 1]):
                return -1
        length = we[w] - ws[w]
        if reverse:  # rc [s, e) of a window of length L is forward [L - e, L - s)
            lo = ws[w] + length - spans[first + c - 1, 1]
            hi = ws[w] + length - spans[first, 0]
        else:
            lo = ws[w] + spans[first, 0]
            hi = ws[w] + spans[first + c - 1, 1]
        if has and (lo > a or hi < b):  # the rows must cover the owned interval
            return -1
        for j in range(c):
            r = first + c - 1 - j if reverse else first + j
            if reverse:
                s = ws[w] + length - spans[r, 1]
                e = ws[w] + length - spans[r, 0]
            else:
                s = ws[w] + spans[r, 0]
                e = ws[w] + spans[r, 1]
            cs = max(s, a)
            ce = min(e, b)
            if ce > cs:
                out_s[k] = cs
                out_e[k] = ce
                out_row[k] = r
                k += 1
        first += c
    return k


def center_pieces(ws, we, own, counts, spans, reverse):
    """``(starts, ends, rows)`` of the pieces (int64), or ``None``: :func:`pieces` with its buffers."""
    n = spans.shape[0]
    out_s, out_e, out_row = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    k = pieces(np.ascontiguousarray(ws, dtype=np.int64), np.ascontiguousarray(we, dtype=np.int64),
               np.ascontiguousarray(own, dtype=np.int64), np.ascontiguousarray(counts, dtype=np.int64),
               np.ascontiguousarray(spans, dtype=spans.dtype if spans.dtype == np.int32 else np.int64), bool(reverse),
               out_s, out_e, out_row)
    if k < 0:
        return None
    return out_s[:k], out_e[:k], out_row[:k]
