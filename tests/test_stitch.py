"""Stitching: painting through spans, rc mapping, centre/mean, run-length encoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genaannot.stitch import WindowOutput, paint, rc_to_forward, runs, stitch
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
