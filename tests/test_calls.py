"""Calls: thresholded, merged features streamed across chunks equal a per-base reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from genaannot.calls import Call, CallMaker, CallStream, format_call, sort_calls
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


def _feed_units(makers, units, values, thr):
    """Feed ``makers`` unit by unit as the scan's assembler does: each track's runs at or
    above ``thr`` (a maker without any in a unit is not fed); yields after each unit."""
    for chrom, a, b in units:
        for m, vals in zip(makers, values[chrom]):
            s, e, v = runs(vals[a:b], offset=a)
            hi = v >= thr
            if hi.any():
                m.feed(chrom, s[hi], e[hi], v[hi])
        yield chrom, b


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n_tracks=st.integers(1, 4), n_chroms=st.integers(1, 3))
def test_call_stream_gives_the_sorted_calls_as_soon_as_final(data, n_tracks, n_chroms):
    names = data.draw(st.lists(st.sampled_from(["donor", "acceptor"]), min_size=n_tracks, max_size=n_tracks))
    strands = data.draw(st.lists(st.sampled_from(["+", "-", "."]), min_size=n_tracks, max_size=n_tracks))
    values, units = {}, []
    for c in range(n_chroms):
        chrom = f"c{c}"
        n = data.draw(st.integers(1, 40))
        values[chrom] = [np.array(data.draw(st.lists(st.sampled_from([0.1, 0.6, 0.9, np.nan]), min_size=n, max_size=n)),
                                  dtype=np.float32) for _ in range(n_tracks)]
        cuts = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=5))) | {0, n})
        for a, b in zip(cuts[:-1], cuts[1:]):
            if data.draw(st.booleans()) or (a, b) == (0, n):  # some stretches are gaps between units
                units.append((chrom, a, b))
    rank = {c: i for i, c in enumerate(values)}
    ref = [CallMaker(name=nm, strand=sd, threshold=0.5) for nm, sd in zip(names, strands)]
    for _ in _feed_units(ref, units, values, 0.5):
        pass
    expected = sort_calls([c for m in ref for c in m.finish()], rank)

    makers = [CallMaker(name=nm, strand=sd, threshold=0.5) for nm, sd in zip(names, strands)]
    stream = CallStream(makers, rank)
    got = []
    for chrom, end in _feed_units(makers, units, values, 0.5):
        got += stream.ready(chrom, end)
        # a call is held back only while an open call (which may still grow) would come before it
        opens = [m._open[1] for m in makers if m._open is not None]
        assert all(opens and c.start >= min(opens) for _, c in stream._pending)
    got += stream.finish()
    assert got == expected


def test_call_stream_holds_only_what_is_not_final():
    """Calls of finished units are given out at once; an open call (it may continue into the
    next unit) holds back only the calls of other tracks that start after it."""
    a, b = CallMaker(name="donor", strand="+", threshold=0.5), CallMaker(name="acceptor", strand="+", threshold=0.5)
    stream = CallStream([a, b], {"c": 0})
    a.feed("c", np.array([0, 30]), np.array([5, 40]), np.array([0.9, 0.8], np.float32))  # [30, 40) touches the end
    b.feed("c", np.array([10, 35]), np.array([12, 36]), np.array([0.7, 0.7], np.float32))
    assert [(c.name, c.start) for c in stream.ready("c", 40)] == [("donor", 0), ("acceptor", 10)]
    a.feed("c", np.array([40]), np.array([45]), np.array([0.95], np.float32))  # grows into the next unit
    assert [(c.name, c.start, c.end) for c in stream.ready("c", 80)] == [("donor", 30, 45), ("acceptor", 35, 36)]
    assert stream.finish() == []
