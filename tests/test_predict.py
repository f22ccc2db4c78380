"""genaannot.predict: batch-size/order independence, kept channels/rows, prefetch, padding
plan, torch.compile option and its fallback (tiny GENA BERT models, CPU)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from tinymodels import make_gena_dir, random_dna

from genaannot.models import load_model
from genaannot.predict import batch_plan, run_network

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def gena_token(tmp_path_factory):
    return make_gena_dir(tmp_path_factory.mktemp("pred") / "tok", head="token", num_labels=3, seed=3)


@pytest.fixture(scope="module")
def gena_seq(tmp_path_factory):
    return make_gena_dir(tmp_path_factory.mktemp("pred") / "seq", head="sequence", num_labels=2, seed=4)


def _seqs(n: int = 9) -> list[str]:
    # lengths differ so batches are padded and sorting matters
    return [random_dna(40 + 37 * i, seed=100 + i) for i in range(n)]


def _encs(model, seqs):
    return model.tokenizer.encode_batch(seqs)


def _run(model, encs, **kw):
    kw.setdefault("batch_size", 8)
    return run_network(model.network, encs, max_tokens=model.max_tokens, device="cpu", **kw)


@pytest.mark.parametrize("path_fixture", ["gena_token", "gena_seq"])
def test_batch_size_and_order_independent(request, path_fixture):
    model = load_model(request.getfixturevalue(path_fixture), device="cpu")
    seqs = _seqs()
    encs = _encs(model, seqs)
    ref = _run(model, encs, batch_size=1)
    perm = np.random.default_rng(0).permutation(len(encs))
    shuf = _run(model, [encs[i] for i in perm], batch_size=7)
    for j, i in enumerate(perm):
        a, b = ref[i], shuf[j]
        assert b.logits.dtype == np.float32
        assert a.logits.shape == b.logits.shape
        np.testing.assert_allclose(b.logits, a.logits, **TOL)
        if a.spans is not None:
            np.testing.assert_array_equal(a.spans, b.spans)
        assert (a.n_tokens_total, a.n_tokens_dropped) == (b.n_tokens_total, b.n_tokens_dropped)


def test_prefetch_matches_serial(gena_token):
    model = load_model(gena_token, device="cpu")
    encs = _encs(model, _seqs())
    a = _run(model, encs, batch_size=2, prefetch=True)
    b = _run(model, encs, batch_size=2, prefetch=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.logits, y.logits)


def test_on_batch_reports_every_input_once(gena_token):
    model = load_model(gena_token, device="cpu")
    encs = _encs(model, _seqs(11))
    seen: list[int] = []
    _run(model, encs, batch_size=4, on_batch=seen.append)
    assert sum(seen) == 11 and len(seen) == 3 and max(seen) <= 4
    seen.clear()
    model.predict_encoded(encs, batch_size=5, on_batch=seen.append)
    assert sum(seen) == 11


def test_default_unchanged_vs_model_predict(gena_token):
    model = load_model(gena_token, device="cpu")
    seqs = _seqs(4)
    via_model = model.predict(seqs, batch_size=3)
    direct = _run(model, _encs(model, seqs), batch_size=3)
    for x, y in zip(via_model, direct):
        np.testing.assert_array_equal(x.logits, y.logits)
        assert x.logits.shape[1] == 3


def test_keep_channels_and_rows(gena_token):
    model = load_model(gena_token, device="cpu")
    encs = _encs(model, _seqs(5))
    full = _run(model, encs, batch_size=2)
    rows = [(2, 10), None, (0, 1), (5, 10_000), (-3, 4)]
    part = model.predict_encoded(encs, batch_size=2, keep_channels=[2, 0], keep_rows=rows)
    for f, p, r, e in zip(full, part, rows, encs):
        n = len(e)
        a, b = (0, n) if r is None else (min(max(r[0], 0), n), min(max(r[1], 0), n))
        np.testing.assert_allclose(p.logits, f.logits[a:b][:, [2, 0]], **TOL)
        np.testing.assert_array_equal(p.spans, f.spans[a:b])
        assert p.logits.flags.c_contiguous and p.logits.dtype == np.float32
    with pytest.raises(ValueError, match="keep_rows"):
        model.predict_encoded(encs, keep_rows=[None])


def test_keep_channels_sequence_head(gena_seq):
    model = load_model(gena_seq, device="cpu")
    seqs = _seqs(3)
    full = model.predict(seqs)
    one = model.predict(seqs, keep_channels=[1])
    for f, o in zip(full, one):
        assert o.logits.shape == (1,) and o.spans is None
        np.testing.assert_allclose(o.logits, f.logits[[1]], **TOL)


def test_results_do_not_alias(gena_token):
    model = load_model(gena_token, device="cpu")
    preds = _run(model, _encs(model, _seqs(4)), batch_size=4)
    for p in preds:  # each result owns its memory (no view of a shared batch buffer)
        assert p.logits.base is None or p.logits.base.size == p.logits.size


def test_empty_and_cut_inputs(gena_token):
    model = load_model(gena_token, device="cpu")
    assert _run(model, []) == []
    long = random_dna(3000, seed=9)  # far more than the 128 content tokens
    with pytest.warns(UserWarning, match="were cut"):
        (p,) = model.predict([long])
    assert p.logits.shape[0] == model.max_tokens
    assert p.n_tokens_dropped == p.n_tokens_total - model.max_tokens > 0


def test_collate_error_propagates(gena_token):
    model = load_model(gena_token, device="cpu")
    encs = _encs(model, _seqs(4))

    class Boom(RuntimeError):
        pass

    net = model.network
    orig = net.collate
    calls = []

    def collate(content):
        calls.append(len(content))
        if len(calls) == 2:
            raise Boom("second batch")
        return orig(content)

    net.collate = collate
    try:
        with pytest.raises(Boom):
            _run(model, encs, batch_size=1)
    finally:
        del net.collate


@pytest.mark.parametrize(
    "lengths,bs",
    [([5, 1, 9, 3, 7, 2, 8], 3), ([1, 1, 1, 1, 1, 50, 60, 70], 3), ([9, 2, 2, 2, 2, 2, 2, 1], 3), ([4] * 5, 2), ([1, 100, 2, 99, 3, 98], 2), ([3], 4)],
)
def test_batch_plan_minimises_padding(lengths, bs):
    import itertools

    plan = batch_plan(lengths, batch_size=bs)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    assert all(len(b) <= bs for b in plan)

    def area(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    got = area(plan)
    # brute force over all orderings cut into consecutive batches of bs
    best = min(
        area([list(p[k : k + bs]) for k in range(0, len(p), bs)])
        for p in itertools.permutations(range(len(lengths)))
    )
    assert got == best


def test_compile_option_eager_backend(gena_token):
    """compile=... goes through torch.compile (eager backend: no C++ toolchain needed)."""
    from genaannot.models import Model

    ref = load_model(gena_token, device="cpu")
    m = Model(_loaded(gena_token), device="cpu", compile={"backend": "eager"})
    assert m.compiled
    seqs = _seqs(3)
    for a, b in zip(ref.predict(seqs), m.predict(seqs)):
        np.testing.assert_allclose(b.logits, a.logits, **TOL)


def test_compile_failure_falls_back(gena_token, monkeypatch):
    from genaannot.models import Model

    ref = load_model(gena_token, device="cpu")

    class Broken(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.head, self.collate, self.split = net.head, net.collate, net.split

        def forward(self, **batch):
            raise RuntimeError("simulated inductor failure")

    monkeypatch.setattr(torch, "compile", lambda net, **kw: Broken(net))
    m = Model(_loaded(gena_token), device="cpu", compile=True)
    assert m.compiled
    seqs = _seqs(2)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        got = m.predict(seqs)
    assert not m.compiled
    for a, b in zip(ref.predict(seqs), got):
        np.testing.assert_array_equal(b.logits, a.logits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.predict(seqs)  # eager from now on, no further warning

    def refuse(net, **kw):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(torch, "compile", refuse)
    with pytest.warns(UserWarning, match="torch.compile unavailable"):
        m2 = Model(_loaded(gena_token), device="cpu", compile=True)
    assert not m2.compiled


def test_compile_error_after_a_good_first_call_is_raised(gena_token, monkeypatch):
    """Only the first compiled call may fall back to eager: a later error (an OOM half-way
    through a genome) is raised, and the model stays compiled."""
    from genaannot.models import Model

    class LaterFailure(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.calls = net, 0
            self.head, self.collate, self.split = net.head, net.collate, net.split

        def forward(self, **batch):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("CUDA out of memory (simulated)")
            return self.net(**batch)

    monkeypatch.setattr(torch, "compile", lambda net, **kw: LaterFailure(net))
    m = Model(_loaded(gena_token), device="cpu", compile=True)
    seqs = _seqs(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.predict(seqs)
    with pytest.raises(RuntimeError, match="out of memory"):
        m.predict(seqs)
    assert m.compiled


def _loaded(path):
    from genaannot.models import read_config  # type: ignore[attr-defined]
    from genaannot.models.gena_bert import load

    return load(path, config=read_config(path))


@pytest.mark.gpu
def test_cuda_matches_cpu_and_keeps_float32(gena_token):
    cpu = load_model(gena_token, device="cpu")
    gpu = load_model(gena_token, device="cuda")
    encs = _encs(cpu, _seqs())
    a = _run(cpu, encs, batch_size=3)
    b = run_network(gpu.network, encs, max_tokens=gpu.max_tokens, device="cuda", batch_size=3,
                    keep_channels=[1], keep_rows=[(1, 20)] * len(encs))
    for x, y in zip(a, b):
        assert y.logits.dtype == np.float32
        np.testing.assert_allclose(y.logits, x.logits[1:20, [1]], rtol=1e-4, atol=1e-4)
    assert all(p.dtype == torch.float32 for p in gpu.network.parameters())


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_agrees(gena_token, precision):
    ref = load_model(gena_token, device="cuda")
    low = load_model(gena_token, device="cuda", dtype=precision)
    seqs = _seqs()
    for a, b in zip(ref.predict(seqs), low.predict(seqs, batch_size=4)):
        assert b.logits.dtype == np.float32
        scale = float(np.abs(a.logits).max())
        assert float(np.abs(b.logits - a.logits).max()) <= 0.03 * scale


# --------------------------------------------------------------------------- bench smoke tests
# The bench scripts print figures (never asserted); here they only have to run at tiny size.


def _bench(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_bench_model_forward_runs_on_cpu(capsys):
    mf = _bench("model_forward")
    # the analytic count at the GENA BERT-base shape (issue: ~190 MFLOP/token at 512)
    base = mf.flops_per_token(hidden=768, layers=12, intermediate=3072, tokens=512, labels=3)
    assert 185e6 < base < 195e6
    res = mf.main(["--device", "cpu", "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32",
                   "--positions", "34", "--vocab", "64", "--batch-size", "2", "--iters", "1", "--warmup", "0",
                   "--precision", "bf16"])
    assert res["forward_tokens_per_s"] > 0 and res["precision"] == "bf16"
    assert "GPU figures need a GPU" in capsys.readouterr().out


def test_bench_host_pipeline_runs():
    hp = _bench("host_pipeline")  # default genome: the bundled, indexed examples/athaliana copy
    res = hp.main(["--max-bp", "15000", "--no-profile"])
    assert res["bp_scanned"] == 15000 and res["host_tokens_per_s"] > 0
    slow = hp.main(["--max-bp", "15000", "--no-profile", "--device-tokens-per-s", "1e5"])
    # the emulated device's time is the token positions at that rate, and part of the wall time
    assert slow["device_s"] == pytest.approx(slow["host_tokens_per_s"] * slow["wall_s"] / 1e5)
    assert 0 < slow["device_busy_fraction"] <= 1


def test_bench_score_host_runs():
    res = _bench("score_host").main(["--variants", "40"])
    assert res["alts"] == res["scored"] == 40 and 1000 < res["tokens_per_variant"] <= 4 * 512
    slow = _bench("score_host").main(["--variants", "40", "--device-tokens-per-s", "1e5"])
    assert slow["device_s"] == pytest.approx(slow["tokens_per_variant"] * 40 / 1e5, rel=0.02)
    assert 0 < slow["device_busy_fraction"] <= 1


def test_bench_overlap_runs():
    ov = _bench("overlap")
    res = ov.main(["--max-bp", "8000", "--overlaps", "0.5,0.75"])
    ref = res["rows"][-1]
    assert ref["max_abs_diff"] == 0.0  # the reference against itself


def test_bench_gpu_scan_runs_on_cpu():
    gs = _bench("gpu_scan")
    res = gs.main(["--device", "cpu", "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32",
                   "--positions", "130", "--max-bp", "20000", "--repeat", "1", "--variants", "6",
                   "--batch-size", "4", "--workers", "0"])
    assert res["scan_bp"] == 20000 and res["scan_tokens_per_s"] > 0 and res["nvml_busy_mean"] == "n/a"
    assert 0 < res["busy_fraction_from_rate"] and res["score_alts"] >= 5 and res["score_busy_fraction_from_rate"] > 0


def test_bench_overlap_accuracy_runs():
    oa = _bench("overlap_accuracy")  # the bundled demo model on held-out Chr5
    rows = oa.main(["--max-bp", "20000", "--overlaps", "0,0.5", "--stitch", "center"])
    assert [r["overlap"] for r in rows] == [0.0, 0.5] and rows[1]["windows"] > rows[0]["windows"]
    assert all(0 < r["ap_acceptor"] <= 1 and 0 < r["ap_donor"] <= 1 for r in rows)
    assert rows[1]["max_ap_diff_vs_densest"] == 0.0
