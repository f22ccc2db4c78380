"""Stitching: painting through spans, rc mapping, centre/mean, run-length encoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genaannot.stitch as stitch_mod
from genaannot.stitch import (
    WindowOutput,
    center_dense,
    center_pieces,
    clip_pieces,
    join_runs,
    paint,
    paint_pieces,
    piece_runs,
    rc_to_forward,
    round_values,
    runs,
    stitch,
)
from genaannot.windows import center_cuts


def test_paint_and_rc():
    spans = np.array([[0, 2], [2, 3], [3, 6]])
    vals = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    per_base = paint(WindowOutput(0, 6, vals, spans))[:, 0]
    assert per_base.tolist() == [1, 1, 2, 3, 3, 3]
    # treat the same tokens as rc output: forward p takes rc value at L-1-p
    fv, fs = rc_to_forward(vals, spans, 6)
    fwd = paint(WindowOutput(0, 6, fv, fs))[:, 0]
    assert fwd.tolist() == per_base[::-1].tolist()
    assert fs.tolist() == [[0, 3], [3, 4], [4, 6]]


def test_paint_rejects_bad_spans():
    with pytest.raises(ValueError):
        paint(WindowOutput(0, 5, np.zeros((1, 1), np.float32), np.array([[0, 4]])))


def _windows(n, w, step):
    starts = list(range(0, max(1, n - w) + 1, step))
    if starts[-1] + w < n:
        starts.append(n - w)
    starts = np.array(starts)
    ends = np.minimum(starts + w, n)
    return starts, ends


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 200), w=st.integers(1, 40), step=st.integers(1, 40), seed=st.integers(0, 9))
def test_center_and_mean(n, w, step, seed):
    w = min(w, n)
    step = min(step, w)
    starts, ends = _windows(n, w, step)
    rng = np.random.default_rng(seed)
    outs = [WindowOutput(int(s), int(e), rng.random((e - s, 2), dtype=np.float32),
                         np.stack([np.arange(e - s), np.arange(1, e - s + 1)], 1)) for s, e in zip(starts, ends)]
    own = center_cuts(starts, ends, lo=0, hi=n)
    c = stitch(outs, length=n, n_channels=2, mode="center", own=own)
    assert not np.isnan(c).any()
    for (a, b), o in zip(own, outs):  # every base comes from its owner, unchanged
        assert np.array_equal(c[a:b], o.values[a - o.start : b - o.start])
    m = stitch(outs, length=n, n_channels=2, mode="mean")
    m_rev = stitch(outs[::-1], length=n, n_channels=2, mode="mean")
    assert np.array_equal(m, m_rev)  # independent of window order
    ref = np.zeros((n, 2))
    cnt = np.zeros(n)
    for o in outs:
        ref[o.start : o.end] += o.values
        cnt[o.start : o.end] += 1
    np.testing.assert_allclose(m, ref / cnt[:, None], rtol=1e-6)


def test_sequence_head_center_paints_owned_bin():
    starts, ends = np.array([0, 10, 20]), np.array([20, 30, 40])
    outs = [WindowOutput(int(s), int(e), np.array([float(i)], np.float32), None) for i, (s, e) in enumerate(zip(starts, ends))]
    own = center_cuts(starts, ends, lo=0, hi=40)
    v = stitch(outs, length=40, n_channels=1, mode="center", own=own)[:, 0]
    assert v[:15].tolist() == [0] * 15 and v[15:25].tolist() == [1] * 10 and v[25:].tolist() == [2] * 15


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0, np.nan]), min_size=0, max_size=50), st.integers(0, 1000))
def test_runs_roundtrip(vals, off):
    v = np.array(vals, dtype=np.float32)
    s, e, r = runs(v, offset=off)
    back = np.full(len(v), np.nan, dtype=np.float32)
    for a, b, x in zip(s, e, r):
        back[a - off : b - off] = x
    np.testing.assert_array_equal(back, v)
    assert np.all(s[1:] >= e[:-1])
    if len(r) > 1:  # adjacent runs differ
        adj = s[1:] == e[:-1]
        assert np.all(r[1:][adj] != r[:-1][adj])


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), w=st.integers(1, 60), step=st.integers(1, 60), seed=st.integers(0, 10_000),
       reverse=st.booleans(), trim=st.booleans(), levels=st.sampled_from([2, 3, 50]),
       cut=st.tuples(st.floats(0, 1), st.floats(0, 1)), int32=st.booleans(), chunk=st.sampled_from([None, 1, 5, 40]))
def test_center_pieces_equal_per_base_stitching(n, w, step, seed, reverse, trim, levels, cut, int32, chunk):
    """Centre stitching on token pieces = painting every base, then run-length encoding:
    random windows of random token spans (model orientation; ``reverse``: read on the
    reverse complement), only the rows around each owned interval kept (``trim``, as
    keep_rows does), few distinct values (so runs join across tokens and windows), NaN,
    -0.0 and 0.0 (different bits: never joined), a clip to a sub-span (a unit inside its
    context), spans as int64 or int32 (the compact form waiting for the writer), and the
    windows taken in groups of a few rows (``chunk``; the default groups ~65,536)."""
    w = min(w, n)
    step = min(step, w)
    starts, ends = _windows(n, w, step)
    rng = np.random.default_rng(seed)
    own = center_cuts(starts, ends, lo=0, hi=n, ties="earlier" if reverse else "later")
    pool = np.array([0.0, -0.0, np.nan, 0.25, 1.0] + list(rng.random(levels)), dtype=np.float32)
    outs, vals, spans, counts = [], [], [], []
    for (s, e), (a, b) in zip(zip(starts, ends), own):
        length = int(e - s)
        cuts = np.unique(np.concatenate(([0, length], rng.integers(1, max(2, length), rng.integers(0, length + 1)))))
        sp = np.stack([cuts[:-1], cuts[1:]], 1).astype(np.int64)
        v = pool[rng.integers(0, len(pool), (len(sp), 2))]
        fv, fs = rc_to_forward(v, sp, length) if reverse else (v, sp)
        if trim and b > a:  # the rows overlapping the owned interval (run_network's keep_rows)
            rows = np.flatnonzero((fs[:, 1] + s > a) & (fs[:, 0] + s < b))
            fv, fs = fv[rows[0] : rows[-1] + 1], fs[rows[0] : rows[-1] + 1]
            v, sp = rc_to_forward(fv, fs, length) if reverse else (fv, fs)
        outs.append(WindowOutput(int(s), int(e), fv, fs))
        vals.append(v)
        spans.append(sp)
        counts.append(len(sp))
    ref = stitch(outs, length=n, n_channels=2, mode="center", own=own)
    default = stitch_mod.CENTER_CHUNK_ROWS
    try:
        stitch_mod.CENTER_CHUNK_ROWS = chunk or default
        pieces = center_pieces(starts, ends, own, np.concatenate(vals),
                               np.concatenate(spans).astype(np.int32 if int32 else np.int64), np.array(counts),
                               reverse=reverse)
    finally:
        stitch_mod.CENTER_CHUNK_ROWS = default
    assert pieces is not None
    ps, pe, pv = pieces
    assert np.all(pe > ps) and np.all(ps[1:] >= pe[:-1])  # sorted, disjoint
    np.testing.assert_array_equal(_bits(paint_pieces(ps, pe, pv, length=n)), _bits(ref))
    lo, hi = sorted(int(x * n) for x in cut)
    cs, ce, cv = clip_pieces(ps, pe, pv, lo, hi)
    for k in range(2):
        want = runs(ref[lo:hi, k], offset=lo + 7)
        got = piece_runs(cs, ce, cv[:, k], offset=7)
        for x, y in zip(got, want):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(_bits(x) if x.dtype == np.float32 else x,
                                          _bits(y) if y.dtype == np.float32 else y)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 300), w=st.integers(1, 60), step=st.integers(1, 60), seed=st.integers(0, 10_000),
       reverse=st.booleans(), trim=st.booleans(), cut=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       int32=st.booleans(), gap=st.booleans(), wide=st.booleans())
def test_center_dense_paints_the_pieces_of_one_base_tokens(n, w, step, seed, reverse, trim, cut, int32, gap, wide):
    """A token per base (the character tokenizer): center_dense gives, bit for bit, the pieces
    of center_pieces clipped to a sub-span and painted (NaN where no window owns a base: a
    window left out, as around a run of N), both orientations, trimmed rows, int32 or int64
    spans, NaN, -0.0 and 0.0 among the values. With a token of two bases ending some windows
    (``wide``) it gives either None or those same values."""
    w = min(w, n)
    step = min(step, w)
    starts, ends = _windows(n, w, step)
    rng = np.random.default_rng(seed)
    own = center_cuts(starts, ends, lo=0, hi=n, ties="earlier" if reverse else "later")
    if gap and len(own) > 2:  # a window without an owned interval: its bases are not read
        own = own.copy()
        own[1] = own[1, 0]
    pool = np.array([0.0, -0.0, np.nan, 0.25, 1.0, *rng.random(3)], dtype=np.float32)
    vals, spans, counts = [], [], []
    for (s, e), (a, b) in zip(zip(starts, ends), own):
        length = int(e - s)
        sp = np.stack([np.arange(length), np.arange(1, length + 1)], 1)
        if trim and b > a:  # the rows of the owned interval (in the model's orientation)
            lo_, hi_ = (e - b, e - a) if reverse else (a - s, b - s)
            sp = sp[lo_:hi_]
        if wide and len(sp) > 1 and rng.random() < 0.5:  # the window's last two bases one token
            sp = np.concatenate((sp[:-2], [[sp[-2, 0], sp[-1, 1]]]))
        vals.append(pool[rng.integers(0, len(pool), (len(sp), 2))])
        spans.append(sp)
        counts.append(len(sp))
    args = (starts, ends, own, np.concatenate(vals), np.concatenate(spans).astype(np.int32 if int32 else np.int64),
            np.array(counts))
    lo, hi = sorted(int(x * n) for x in cut)
    dense = center_dense(*args, reverse=reverse, lo=lo, hi=hi)
    ps, pe, pv = center_pieces(*args, reverse=reverse)
    want = paint_pieces(*clip_pieces(ps, pe, pv, lo, hi), length=hi - lo, offset=lo)
    if wide and dense is None:
        return
    assert dense is not None and dense.dtype == np.float32 and dense.shape == (hi - lo, 2)
    assert _bits(dense).tobytes() == _bits(want).tobytes()


def test_center_dense_gives_way_to_pieces_and_painting():
    """Rows of more than one base: None (the pieces); the cases where center_pieces gives
    None (rows short of the owned interval, not contiguous, owned intervals overlapping): None."""
    starts, ends = np.array([0, 4]), np.array([8, 12])
    own = np.array([[0, 6], [6, 12]])
    one = np.stack([np.r_[0:8, 0:8], np.r_[1:9, 1:9]], 1)
    vals = np.arange(16, dtype=np.float32)[:, None]
    counts = np.array([8, 8])
    got = center_dense(starts, ends, own, vals, one, counts, lo=0, hi=12)
    np.testing.assert_array_equal(got[:, 0], np.r_[0:6, 10:16].astype(np.float32))
    assert center_dense(starts, ends, own, vals[:4], np.array([[0, 4], [4, 8], [2, 4], [4, 8]]), np.array([2, 2]),
                        lo=0, hi=12) is None  # BPE-like rows
    short = one[np.r_[0:5, 8:16]]  # the first window's rows stop at 5 < 6
    assert center_dense(starts, ends, own, vals[:13], short, np.array([5, 8]), lo=0, hi=12) is None
    holed = one.copy()
    holed[3:8] += 1  # a base skipped inside the first window
    assert center_dense(starts, ends, own, vals, holed, counts, lo=0, hi=12) is None
    assert center_dense(starts, ends, np.array([[0, 7], [6, 12]]), vals, one, counts, lo=0, hi=12) is None
    for bad in (short, holed):  # as center_pieces
        c = np.array([5, 8]) if bad is short else counts
        assert center_pieces(starts, ends, own, vals[: len(bad)], bad, c) is None


@settings(max_examples=200, deadline=None)
@given(v=st.lists(st.sampled_from([0.001, 0.004, 0.006, 0.3, 0.5, 0.51, 0.994, 0.996, 0.9991, np.nan, -0.001,
                                   -0.0, 0.0, 2.5]), max_size=60),
       digits=st.sampled_from([None, 0, 1, 2, 3]), probability=st.booleans(), thr=st.sampled_from([0.0, 0.3, 0.5]))
def test_runs_of_rounded_bases_are_the_rounded_runs_joined(v, digits, probability, thr):
    """What the scan's writer does with a per-base array (``scan._part``): the runs of the
    rounded bases are the bases' runs rounded and joined, and the bases at or above a
    threshold, as one-base pieces, give the runs at or above it, bit for bit."""
    col = np.array(v, dtype=np.float32)
    S, E, V = runs(col, offset=7)
    hi = V >= thr
    want = ((S[hi], E[hi], V[hi]),
            (S, E, V) if digits is None else join_runs(S, E, round_values(V, digits=digits, probability=probability)))
    at = np.flatnonzero(col >= thr)
    got = (piece_runs(at, at + 1, col[at], offset=7),
           runs(round_values(col, digits=digits, probability=probability), offset=7))
    for w3, g3 in zip(want, got):
        for a, b in zip(w3, g3):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_center_pieces_of_a_sequence_head_are_the_owned_bins():
    starts, ends = np.array([0, 10, 20]), np.array([20, 30, 40])
    own = center_cuts(starts, ends, lo=0, hi=40)
    vals = np.array([[0.0], [1.0], [2.0]], np.float32)
    s, e, v = center_pieces(starts, ends, own, vals)
    assert s.tolist() == [0, 15, 25] and e.tolist() == [15, 25, 40] and v[:, 0].tolist() == [0, 1, 2]
    outs = [WindowOutput(int(a), int(b), x, None) for a, b, x in zip(starts, ends, vals)]
    np.testing.assert_array_equal(paint_pieces(s, e, v, length=40),
                                  stitch(outs, length=40, n_channels=1, mode="center", own=own))


def test_center_pieces_give_way_where_painting_would_differ():
    """Rows that do not cover their owned interval, or overlapping owned intervals: None (the
    caller paints per base, as before)."""
    starts, ends = np.array([0, 4]), np.array([8, 12])
    own = np.array([[0, 6], [6, 12]])
    spans = np.array([[0, 4], [4, 8], [2, 4], [4, 8]])  # the second window's rows start at 6, own at 6: fine
    vals = np.zeros((4, 1), np.float32)
    assert center_pieces(starts, ends, own, vals, spans, np.array([2, 2])) is not None
    short = np.array([[0, 4], [4, 5], [2, 4], [4, 8]])  # the first window's rows stop at 5 < 6
    assert center_pieces(starts, ends, own, vals, short, np.array([2, 2])) is None
    gap = np.array([[0, 4], [5, 8], [2, 4], [4, 8]])  # not contiguous
    assert center_pieces(starts, ends, own, vals, gap, np.array([2, 2])) is None
    assert center_pieces(starts, ends, np.array([[0, 7], [6, 12]]), vals, spans, np.array([2, 2])) is None


@settings(max_examples=200, deadline=None)
@given(data=st.data(), digits=st.integers(0, 3), probability=st.booleans(), thr=st.sampled_from([0.0, 0.3, 0.5]))
def test_runs_of_rounded_pieces_are_the_rounded_runs_joined(data, digits, probability, thr):
    """What the scan's writer relies on to skip a run per token (``scan._part``): the runs of
    the rounded pieces are the pieces' runs rounded and joined, and the runs of the pieces at
    or above a threshold are the pieces' runs at or above it, bit for bit (NaN, -0.0, gaps)."""
    n = data.draw(st.integers(0, 40))
    lens = np.array(data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)), dtype=np.int64)
    gaps = np.array(data.draw(st.lists(st.sampled_from([0, 0, 0, 1, 3]), min_size=n, max_size=n)), dtype=np.int64)
    s = np.cumsum(gaps + np.concatenate(([0], lens[:-1]))).astype(np.int64) if n else np.zeros(0, np.int64)
    e = s + lens
    v = np.array(data.draw(st.lists(st.sampled_from([0.001, 0.004, 0.006, 0.3, 0.5, 0.51, 0.994, 0.996, 0.9991,
                                                     np.nan, -0.001, -0.0, 0.0, 2.5]), min_size=n, max_size=n)),
                 dtype=np.float32)
    S, E, V = piece_runs(s, e, v, offset=7)
    hi = V >= thr
    want = (S[hi], E[hi], V[hi]), join_runs(S, E, round_values(V, digits=digits, probability=probability))
    h = v >= thr
    got = (piece_runs(s[h], e[h], v[h], offset=7),
           piece_runs(s, e, round_values(v, digits=digits, probability=probability), offset=7))
    for w3, g3 in zip(want, got):
        for a, b in zip(w3, g3):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
