"""Calls: thresholded, merged features streamed across chunks equal a per-base reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from genaannot.calls import Call, CallMaker, format_call, sort_calls
from genaannot.stitch import runs


def _reference(values, thr):
    out, i, n = [], 0, len(values)
    while i < n:
        if not np.isnan(values[i]) and values[i] >= thr:
            j = i
            while j < n and not np.isnan(values[j]) and values[j] >= thr:
                j += 1
            seg = values[i:j]
            out.append((i, j, float(seg.max()), i + int(np.argmax(seg))))
            i = j
        else:
            i += 1
    return out


@settings(max_examples=80, deadline=None)
@given(vals=st.lists(st.sampled_from([0.1, 0.5, 0.7, 0.9, np.nan]), min_size=1, max_size=60),
       cuts=st.lists(st.integers(1, 59), max_size=4))
def test_streamed_calls_match_reference(vals, cuts):
    v = np.array(vals, dtype=np.float32)
    maker = CallMaker(name="x", strand="+", threshold=0.5)
    bounds = sorted({0, len(v), *[c for c in cuts if c < len(v)]})
    for a, b in zip(bounds[:-1], bounds[1:]):  # feed in chunks, as units are
        s, e, r = runs(v[a:b], offset=a)
        maker.feed("c", s, e, r)
    got = [(c.start, c.end, round(c.signal, 5), c.peak) for c in maker.finish()]
    exp = [(s, e, round(m, 5), p) for s, e, m, p in _reference(v, 0.5)]
    assert got == exp


def test_format_and_sort():
    c = Call("chr2", 10, 20, "donor", "-", 0.8767, 15)
    assert format_call(c) == "chr2\t10\t20\tdonor\t877\t-\t0.8767\t-1\t-1\t5"
    calls = [c, Call("chr1", 5, 6, "a", "+", 1.5, 5), Call("chr1", 1, 2, "a", "+", -0.2, 1)]
    out = sort_calls(calls, {"chr1": 0, "chr2": 1})
    assert [(x.chrom, x.start) for x in out] == [("chr1", 1), ("chr1", 5), ("chr2", 10)]
    assert out[1].score == 1000 and out[0].score == 0


def test_new_chrom_closes_call():
    m = CallMaker(name="x", strand=".", threshold=0.5)
    m.feed("a", np.array([0]), np.array([10]), np.array([0.9], np.float32))
    m.feed("b", np.array([10]), np.array([20]), np.array([0.9], np.float32))
    assert [(c.chrom, c.start, c.end) for c in m.finish()] == [("a", 0, 10), ("b", 10, 20)]


def test_thresholds_of_a_checkpoint_trained_for_another_task_are_not_used():
    from genaannot.calls import resolve_thresholds

    meta = {"task": "promoter", "thresholds": {"acceptor": 0.0}}
    thr, src = resolve_thresholds(["acceptor", "donor"], task="splice", default=0.5, threshold=None, checkpoint=meta)
    assert thr == {"acceptor": 0.5, "donor": 0.5} and set(src.values()) == {"task default"}
    thr, src = resolve_thresholds(["acceptor", "donor"], task="promoter", default=0.5, threshold=None, checkpoint=meta)
    assert thr == {"acceptor": 0.0, "donor": 0.5} and src == {"acceptor": "checkpoint", "donor": "task default"}
    thr, src = resolve_thresholds(["acceptor"], task="promoter", default=0.5, threshold=0.2, checkpoint=meta)
    assert thr == {"acceptor": 0.2} and src == {"acceptor": "--threshold"}
