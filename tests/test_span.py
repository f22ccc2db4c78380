"""genaannot.span: the one prediction path of a span (plan → predict → stitch → strand map)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from toy import BASE_VALUE, make_toy_model

from genaannot.predict import Prediction
from genaannot.readout import resolve_readout
from genaannot.span import (
    PackedPredictions,
    SpanTimer,
    plan_span,
    predict_span,
    predict_span_stream,
    span_tracks,
    stitch_span,
)
from genaannot.tasks import activate
from genaannot.windows import Unit, reverse_complement

MODEL = make_toy_model("token", max_tokens=64)


def _unit(n, start=0, end=None, seg=(0, None)):
    end = n if end is None else end
    return Unit(0, "c", start, end, seg[0], n if seg[1] is None else seg[1])


def _tracks(seq, unit, **kw):
    ro = resolve_readout("splice", MODEL.info, window_tokens=kw.pop("window_tokens", 16))
    return span_tracks(unit, fetch=lambda s, e: seq[s:e], tokenizer=MODEL.tokenizer, predictor=MODEL.predict_encoded,
                       readout=ro, **kw)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=st.text("ACGT", min_size=1, max_size=300), overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75]),
       cut=st.floats(0, 1), mode=st.sampled_from(["center", "mean"]))
@example(seq="A" * 26, overlap=0.25, cut=0.0, mode="center")  # a base exactly between two window centres
def test_every_base_valued_and_strands_are_reverse_complements(seq, overlap, cut, mode):
    """Both strands cover every base; channel 1 is the base's own value (the toy model), so the
    minus strand must hold the complement's value at each position; and cutting the span into
    two units anywhere still values every base once, with its own base's value (channel 1;
    channel 2 depends on where windows start, which a unit boundary moves: the unit size is
    a setting of the output, recorded in settings.json)."""
    n = len(seq)
    out = _tracks(seq, _unit(n), overlap=overlap, stitch_mode=mode)
    comp = reverse_complement(seq)[::-1]
    assert out["+"].shape == (n, 2) and not np.isnan(out["+"]).any() and not np.isnan(out["-"]).any()
    np.testing.assert_allclose(out["+"][:, 0], activate(np.array([BASE_VALUE[c] for c in seq]), "sigmoid"), rtol=1e-6)
    np.testing.assert_allclose(out["-"][:, 0], activate(np.array([BASE_VALUE[c] for c in comp]), "sigmoid"), rtol=1e-6)
    # minus strand = the plus strand of the reverse complement, read backwards (channel 2 too)
    rc = _tracks(reverse_complement(seq), _unit(n), overlap=overlap, stitch_mode=mode)
    np.testing.assert_allclose(out["-"], rc["+"][::-1], rtol=1e-6)
    if mode == "center" and n > 1:
        k = max(1, min(n - 1, int(cut * n)))
        left = _tracks(seq, _unit(n, 0, k), overlap=overlap)
        right = _tracks(seq, _unit(n, k, n), overlap=overlap)
        for s in "+-":
            np.testing.assert_array_equal(np.concatenate([left[s], right[s]])[:, 0], out[s][:, 0])


def test_a_span_that_fits_one_window_is_that_window():
    seq = "ACGTTGCAGT" * 3
    out = _tracks(seq, _unit(len(seq)), window_tokens=64)
    (p,) = MODEL.predict([seq])
    np.testing.assert_array_equal(out["+"], activate(p.logits, "sigmoid")[:, [1, 2]])


def test_predict_span_progress_adds_up_and_keeps_only_owned_rows():
    seq = "ACGT" * 100
    ro = resolve_readout("splice", MODEL.info, window_tokens=16)
    work = plan_span(_unit(len(seq), 100, 300), fetch=lambda s, e: seq[s:e], tokenizer=MODEL.tokenizer, readout=ro,
                     overlap=0.5, stitch_mode="center")
    seen: list[int] = []
    calls: list[dict] = []

    def predictor(encs, **kw):
        calls.append(kw)
        return MODEL.predict_encoded(encs, **kw)

    preds = predict_span(work, predictor=predictor, readout=ro, batch_size=3, progress=seen.append)
    assert sum(seen) == 200 and len(calls) == 1  # one stream for both strands
    assert calls[0]["keep_channels"] == [1, 2] and calls[0]["keep_rows"] is not None
    for s in "+-":  # centre stitching: only the tokens of each window's owned bases come back
        own = work.strands[s].own
        assert np.array_equal(own[1:, 0], own[:-1, 1])  # owned intervals tile the span, disjoint
        assert own[0, 0] <= work.strands[s].u0 and own[-1, 1] >= work.strands[s].u1
        assert sum(len(p.logits) for p in preds[s]) == int((own[:, 1] - own[:, 0]).sum())
    vals = stitch_span(work, preds, readout=ro, stitch_mode="center")
    assert vals["+"].shape == (200, 2) and not np.isnan(vals["+"]).any()


@pytest.mark.parametrize("head", ["token", "sequence"])
@pytest.mark.parametrize("stitch_mode", ["center", "mean"])
def test_the_packed_path_gives_the_listed_values(head, stitch_mode):
    """predict_span through a model's predict_windows (the scan's path): the values of the
    listed path, packed; span_pieces and stitch_span give the same from either."""
    from genaannot.span import span_pieces

    model = MODEL if head == "token" else make_toy_model("sequence", max_tokens=64)
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGT"), size=500))
    ro = resolve_readout("splice" if head == "token" else "promoter", model.info, window_tokens=16)
    work = plan_span(_unit(len(seq), 60, 420), fetch=lambda s, e: seq[s:e], tokenizer=model.tokenizer, readout=ro,
                     overlap=0.5, stitch_mode=stitch_mode)
    listed = predict_span(work, predictor=model.predict_encoded, readout=ro, batch_size=3)
    seen: list[int] = []
    packed = predict_span(work, windows_predictor=model.predict_windows, readout=ro, batch_size=3,
                          progress=seen.append)
    assert isinstance(packed, PackedPredictions) and sum(seen) == 360
    ref = PackedPredictions.pack(listed)
    for s in ro.strands:
        for a, b in zip(ref.strands[s], packed.strands[s]):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
    one, two = (stitch_span(work, p, readout=ro, stitch_mode=stitch_mode) for p in (listed, packed))
    for s in ro.strands:
        np.testing.assert_array_equal(one[s], two[s])
    one, two = (span_pieces(work, p, readout=ro, stitch_mode=stitch_mode) for p in (listed, packed))
    assert (one is None) == (two is None) == (stitch_mode == "mean")
    for s in (one or {}):
        for a, b in zip(one[s], two[s]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="predictor or windows_predictor"):
        predict_span(work, predictor=model.predict_encoded, windows_predictor=model.predict_windows, readout=ro,
                     batch_size=3)


@pytest.mark.parametrize("head", ["token", "sequence"])
def test_compact_work_and_predictions_give_the_same_values(head):
    """SpanWork.compact (int32 tokens: planned units waiting for the model; plan_span's
    ``compact``, the same from the tokenizer on) and
    PackedPredictions.compact (int32 spans: units waiting for the writer) change no value:
    the packed predictions, the pieces, per strand or both, and the per-base stitching."""
    from genaannot.span import span_pieces

    model = MODEL if head == "token" else make_toy_model("sequence", max_tokens=64)
    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGT"), size=500))
    ro = resolve_readout("splice" if head == "token" else "promoter", model.info, window_tokens=16)
    work = plan_span(_unit(len(seq), 60, 420), fetch=lambda s, e: seq[s:e], tokenizer=model.tokenizer, readout=ro,
                     overlap=0.5, stitch_mode="center")
    small = work.compact()
    planned = plan_span(_unit(len(seq), 60, 420), fetch=lambda s, e: seq[s:e], tokenizer=model.tokenizer, readout=ro,
                        overlap=0.5, stitch_mode="center", compact=True)  # int32 from the tokenizer on
    for s in ro.strands:
        a, b = small.strands[s], planned.strands[s]
        assert b.plan.tokens.ids.dtype == b.plan.tokens.spans.dtype == np.int32
        for x, y in ((a.plan.tokens.ids, b.plan.tokens.ids), (a.plan.tokens.spans, b.plan.tokens.spans),
                     (a.plan.starts, b.plan.starts), (a.plan.ends, b.plan.ends), (a.plan.ranges, b.plan.ranges),
                     (a.own, b.own), (a.rows, b.rows)):
            assert (x is None) == (y is None) and (x is None or (np.array_equal(x, y) and x.dtype == y.dtype))
        assert (a.length, a.u0, a.u1) == (b.length, b.u0, b.u1)
    assert small.meta == planned.meta
    for s in ro.strands:
        t, c = work.strands[s].plan.tokens, small.strands[s].plan.tokens
        assert c.ids.dtype == c.spans.dtype == np.int32 and t.ids.dtype == np.int64
        np.testing.assert_array_equal(t.ids, c.ids)
        np.testing.assert_array_equal(t.spans, c.spans)
    ref, got = (predict_span(w, windows_predictor=model.predict_windows, readout=ro, batch_size=3)
                for w in (work, small))
    packed = got.compact()
    for s in ro.strands:
        for a, b, c in zip(ref.strands[s], got.strands[s], packed.strands[s]):
            if a is not None:
                np.testing.assert_array_equal(a, b)
                np.testing.assert_array_equal(a, c)
        if head == "token":
            assert ref.strands[s].spans.dtype == np.int64 and packed.strands[s].spans.dtype == np.int32
    whole = span_pieces(work, ref, readout=ro, stitch_mode="center")
    for s in ro.strands:
        one = span_pieces(work, packed, readout=ro, stitch_mode="center", strands=(s,))
        assert list(one) == [s]
        for a, b in zip(whole[s], one[s]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(stitch_span(work, ref, readout=ro, stitch_mode="center")[s],
                                      stitch_span(work, packed, readout=ro, stitch_mode="center", strands=(s,))[s])


@pytest.mark.parametrize("head", ["token", "sequence"])
def test_the_stream_of_units_gives_each_units_values(head):
    """predict_span_stream (the scan's path: every unit through one stream of batches) hands
    out each unit, in order, with the values predict_span gives it alone; progress adds up
    to every unit's length; the timer leaves out the time spent waiting for the next unit."""
    import time

    model = MODEL if head == "token" else make_toy_model("sequence", max_tokens=64)
    rng = np.random.default_rng(4)
    seq = "".join(rng.choice(list("ACGT"), size=900))
    ro = resolve_readout("splice" if head == "token" else "promoter", model.info, window_tokens=16)
    units = [_unit(len(seq), a, b) for a, b in [(0, 300), (300, 301), (301, 700), (700, 900)]]
    works = [plan_span(u, fetch=lambda s, e: seq[s:e], tokenizer=model.tokenizer, readout=ro, overlap=0.5,
                       stitch_mode="center") for u in units]

    def slow_works():
        for w in works:
            time.sleep(0.3)
            yield w

    seen: list[int] = []
    timer = SpanTimer()
    got = list(predict_span_stream(slow_works(), windows_stream=model.predict_windows_stream, readout=ro,
                                   batch_size=3, progress=seen.append, timer=timer))
    assert [w.unit for w, _ in got] == units and sum(seen) == 900
    assert timer.seconds < 0.6  # the 1.2 s of waiting for units is not model time
    for work, (w2, packed) in zip(works, got):
        alone = predict_span(work, windows_predictor=model.predict_windows, readout=ro, batch_size=3)
        assert w2.unit == work.unit and len(w2.strands["+"].plan.tokens) == 0  # handed out without tokens
        for s in ro.strands:
            for a, b in zip(alone.strands[s], packed.strands[s]):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("head", ["token", "sequence"])
def test_work_with_its_inputs_made_where_it_was_planned_gives_the_same_values(head):
    """SpanWork.with_inputs (a scan's worker joins the strands' tokens for the model, so the
    process feeding the device neither copies them nor holds them twice): the strands' own
    tokens are gone, the inputs are those the model path would make (the tokens held as
    their lengths), and predict_span and the stream give each unit the values of its plain work."""
    from genaannot.span import _packed_inputs
    from genaannot.tokenize import LengthEncoding

    model = MODEL if head == "token" else make_toy_model("sequence", max_tokens=64)
    rng = np.random.default_rng(6)
    seq = "".join(rng.choice(list("ACGT"), size=700))
    ro = resolve_readout("splice" if head == "token" else "promoter", model.info, window_tokens=16)
    works = [plan_span(_unit(len(seq), a, b), fetch=lambda s, e: seq[s:e], tokenizer=model.tokenizer, readout=ro,
                       overlap=0.5, stitch_mode="center", compact=True) for a, b in [(0, 250), (250, 700)]]
    ready = [w.with_inputs(ro) for w in works]
    for w, r in zip(works, ready):
        assert all(len(r.strands[s].plan.tokens) == 0 for s in ro.strands) and r.meta == w.meta
        assert isinstance(r.inputs[0], LengthEncoding) and len(r.inputs[0].jump_at) == len(ro.strands)
        for x, y in zip(_packed_inputs(w, ro), r.inputs):
            if isinstance(x, np.ndarray) or x is None:
                assert (x is None) == (y is None) and (x is None or np.array_equal(x, y))
            else:
                np.testing.assert_array_equal(x.ids, y.ids)
                np.testing.assert_array_equal(x.spans, y.spans)
        assert r.without_tokens().inputs is None  # a unit waiting to be written holds no tokens
        assert r.with_inputs(ro) is r  # made once
    streamed = list(predict_span_stream(iter(ready), windows_stream=model.predict_windows_stream, readout=ro,
                                        batch_size=3))
    for w, r, (_, packed) in zip(works, ready, streamed):
        ref = predict_span(w, windows_predictor=model.predict_windows, readout=ro, batch_size=3)
        alone = predict_span(r, windows_predictor=model.predict_windows, readout=ro, batch_size=3)
        for s in ro.strands:
            for a, b, c in zip(ref.strands[s], alone.strands[s], packed.strands[s]):
                assert (a is None) == (b is None) == (c is None)
                if a is not None:
                    np.testing.assert_array_equal(a, b)
                    np.testing.assert_array_equal(a, c)


def test_non_finite_outputs_in_the_stream_name_the_window():
    from toy import CHAR_IDS

    model = make_toy_model("token", max_tokens=64)
    model.network.table[CHAR_IDS["T"]] = float("nan")
    seq = "CG" * 100 + "T" + "CG" * 100  # no T on the minus strand (it reads an A there)
    ro = resolve_readout("splice", model.info, window_tokens=16)
    works = [plan_span(_unit(len(seq), a, b), fetch=lambda s, e: seq[s:e], tokenizer=model.tokenizer, readout=ro,
                       overlap=0.5, stitch_mode="center") for a, b in [(0, 150), (150, 250), (250, len(seq))]]
    with pytest.raises(RuntimeError, match="non-finite") as e:
        list(predict_span_stream(iter(works), windows_stream=model.predict_windows_stream, readout=ro, batch_size=4))
    import re

    a, b = (int(x.replace(",", "")) for x in re.search(r"the window c:([\d,]+)-([\d,]+)", str(e.value)).groups())
    assert a <= 201 <= b  # located on the genome: the window that holds the T (1-based 201)


def test_a_window_past_the_capacity_is_an_error():
    seq = "ACGT" * 40
    ro = resolve_readout("splice", MODEL.info, window_tokens=16)
    work = plan_span(_unit(len(seq)), fetch=lambda s, e: seq[s:e], tokenizer=MODEL.tokenizer, readout=ro, overlap=0.5,
                     stitch_mode="center")
    small = make_toy_model("token", max_tokens=8)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="exceeded the model's capacity"):
        predict_span(work, predictor=small.predict_encoded, readout=ro, batch_size=4)


def test_region_tracks_equal_what_scan_writes(tmp_path):
    """region_tracks (what evaluate uses) tiles as scan_genome does: same values on every base,
    N runs of at least a window skipped by both, short ones scanned by both."""
    import pyBigWig
    from tinymodels import random_dna

    from genaannot.io.fasta import open_genome
    from genaannot.pipeline.scan import scan_genome
    from genaannot.regions import Interval
    from genaannot.span import region_tracks

    seq = random_dna(700, seed=4) + "N" * 40 + random_dna(300, seed=5) + "N" * 5 + random_dna(500, seed=6)
    fa = tmp_path / "g.fa"
    fa.write_text(f">c\n{seq}\n>d\n{random_dna(200, seed=7)}\n")
    regions = [Interval("c", 100, 1300), Interval("c", 1250, 1500), Interval("d", 0, 150)]
    kw = dict(overlap=0.5, stitch="center", window_tokens=24, unit_bp=250)
    res = scan_genome(fa, model=MODEL, task="splice", output=tmp_path / "o.bw", regions=regions, quiet=True,
                      track_digits=None, **kw)  # unrounded: --track-digits only rounds storage
    ro = resolve_readout("splice", MODEL.info, window_tokens=24)
    with open_genome(fa) as g:
        layout, tracks = region_tracks(g, regions, tokenizer=MODEL.tokenizer, predictor=MODEL.predict_encoded,
                                       readout=ro, overlap=0.5, stitch_mode="center", unit_bp=250)
    assert [(t.chrom, t.start, t.end) for t in layout.targets] == [("c", 100, 1500), ("d", 0, 150)]
    n_seen = 0
    for path in res.tracks:
        label, strand = path.name.split(".")[1], {"plus": "+", "minus": "-"}[path.name.split(".")[2]]
        k = ro.labels.index(label)
        bw = pyBigWig.open(str(path))
        for t, tr in zip(layout.targets, tracks):
            want = np.array(bw.values(t.chrom, t.start, t.end), dtype=np.float32)
            np.testing.assert_array_equal(tr[strand][:, k], want)
            n_seen += int(np.isfinite(want).sum())
        bw.close()
    gap = slice(700 - 100, 740 - 100)  # the 40-N run is skipped (min_gap = 24), the 5-N run is not
    assert np.isnan(tracks[0]["+"][gap]).all() and np.isfinite(tracks[0]["+"][1040 - 100 : 1045 - 100]).all()
    assert n_seen == 4 * (1400 - 40 + 150)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3000), seed=st.integers(0, 1000), w=st.integers(2, 40),
       overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75]), minus=st.booleans(), cut=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_owned_rows_of_all_windows_equal_the_per_window_search(n, seed, w, overlap, minus, cut):
    """_owned_rows (every window at once, on the strand's one tokenisation) = _token_rows of
    each window's own spans: a BPE tokenizer (tokens of 1-10+ bp), windows kept for a part."""
    from tinymodels import random_dna

    from genaannot.span import _owned_rows, _token_rows
    from genaannot.windows import center_cuts, plan_windows, reverse_plan

    tok = _t2t()
    seq = random_dna(n, seed=seed)
    if minus:
        plan = reverse_plan(plan_windows(reverse_complement(seq), tokenizer=tok, window_tokens=w, overlap=overlap), n)
    else:
        plan = plan_windows(seq, tokenizer=tok, window_tokens=w, overlap=overlap)
    own_all = center_cuts(plan.starts, plan.ends, lo=0, hi=n, ties="earlier" if minus else "later")
    u0, u1 = sorted(int(x * n) for x in cut)
    sel = np.flatnonzero((own_all[:, 1] > own_all[:, 0]) & (own_all[:, 1] > u0) & (own_all[:, 0] < u1))
    kept, own = plan.subset(sel), own_all[sel]
    want = []
    for k in range(len(kept)):
        a, length = int(kept.starts[k]), int(kept.ends[k] - kept.starts[k])
        lo, hi = int(own[k, 0]) - a, int(own[k, 1]) - a
        if minus:
            lo, hi = length - hi, length - lo
        t0, t1 = int(kept.ranges[k, 0]), int(kept.ranges[k, 1])
        want.append(_token_rows(kept.tokens.spans[t0:t1] - kept.tokens.spans[t0, 0], lo, hi))
    got = _owned_rows(kept, own, minus=minus)
    assert got.dtype == np.int64 and got.shape == (len(want), 2) and got.tolist() == [list(r) for r in want]


_T2T = []


def _t2t():
    if not _T2T:
        from pathlib import Path

        from genaannot.io.tokenizers import load_tokenizer

        _T2T.append(load_tokenizer(Path(__file__).resolve().parent.parent / "genaannot/data/tokenizers/t2t_1000h_multi_32k"))
    return _T2T[0]


def test_packed_predictions_round_trip():
    """What travels to a worker process: the same predictions back, for token heads (ragged
    windows, dropped-token counts), sequence heads and a strand without windows."""
    import pickle

    rng = np.random.default_rng(3)
    token = [Prediction(rng.random((n, 2), dtype=np.float32), np.cumsum(rng.integers(1, 9, (n, 2)), axis=0),
                        n_tokens_total=n + d, n_tokens_dropped=d) for n, d in ((5, 0), (1, 2), (7, 0))]
    seq = [Prediction(rng.random(3, dtype=np.float32), None, 4, 0) for _ in range(3)]
    for preds in ({"+": token, "-": token[::-1]}, {"+": seq, "-": []}):
        back = pickle.loads(pickle.dumps(PackedPredictions.pack(preds))).unpack()
        assert list(back) == list(preds)
        for strand, ps in preds.items():
            assert len(back[strand]) == len(ps)
            for a, b in zip(ps, back[strand]):
                np.testing.assert_array_equal(a.logits, b.logits)
                assert a.logits.dtype == b.logits.dtype and a.logits.shape == b.logits.shape
                if a.spans is None:
                    assert b.spans is None
                else:
                    np.testing.assert_array_equal(a.spans, b.spans)
                assert (a.n_tokens_total, a.n_tokens_dropped) == (b.n_tokens_total, b.n_tokens_dropped)
