"""genaannot.predict: batch-size/order independence, kept channels/rows, prefetch, padding
plan, torch.compile option and its fallback (tiny GENA BERT models, CPU)."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tinymodels import make_gena_dir, random_dna

from genaannot.models import load_model
from genaannot.predict import (
    NonFiniteOutputError,
    PackedOutput,
    WindowsJob,
    batch_plan,
    run_network,
    run_windows,
    run_windows_stream,
)
from genaannot.tokenize import Encoding

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
    # the sequence model cuts the longest input (its 128 tokens): the cut must not depend on batching either
    cut = pytest.warns(UserWarning, match="1 input\\(s\\) longer") if path_fixture == "gena_seq" else nullcontext()
    with cut:
        ref = _run(model, encs, batch_size=1)
        perm = np.random.default_rng(0).permutation(len(encs))
        shuf = _run(model, [encs[i] for i in perm], batch_size=7)
    assert any(p.n_tokens_dropped for p in ref) == (path_fixture == "gena_seq")
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


def test_the_collating_thread_runs_only_beside_an_asynchronous_device(gena_token):
    """On a CPU the model computes on the host's own cores: the next batch is collated in
    line (a helper thread only handed the GIL around); asked for, or for a model whose
    device computes beside the host (CUDA; ``Model.asynchronous``), on a helper thread."""
    import threading

    model = load_model(gena_token, device="cpu")
    encs = _encs(model, _seqs())
    names: list[set[str]] = []

    def seen(_k: int) -> None:
        names.append({t.name.split("_")[0] for t in threading.enumerate()})

    def helper_ran() -> bool:
        ran = any("genaannot-collate" in n for n in names)
        names.clear()
        return ran

    _run(model, encs, batch_size=2, on_batch=seen)
    assert not helper_ran()
    _run(model, encs, batch_size=2, on_batch=seen, prefetch=True)
    assert helper_ran()
    assert not model.asynchronous
    model.predict_encoded(encs, batch_size=2, on_batch=seen)
    assert not helper_ran()
    model.asynchronous = True  # what a CUDA model is (and bench/host_pipeline.py's emulated device)
    model.predict_encoded(encs, batch_size=2, on_batch=seen)
    assert helper_ran()


def test_on_batch_reports_every_input_once(gena_token):
    model = load_model(gena_token, device="cpu")
    encs = _encs(model, _seqs(11))
    seen: list[int] = []
    with pytest.warns(UserWarning, match="2 input\\(s\\) longer"):  # the two longest are cut, and still reported
        _run(model, encs, batch_size=4, on_batch=seen.append)
    assert sum(seen) == 11 and len(seen) == 3 and max(seen) <= 4
    seen.clear()
    with pytest.warns(UserWarning, match="2 input\\(s\\) longer"):
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


@pytest.mark.parametrize("path_fixture", ["gena_token", "gena_seq"])
def test_run_windows_gives_run_network_values_packed(request, path_fixture):
    """Windows given as row ranges of one tokenisation come back packed with exactly the
    values run_network gives their encodings (same batches), spans counted from each
    window's start, a window over the capacity cut alike."""
    model = load_model(request.getfixturevalue(path_fixture), device="cpu")
    tokens = model.tokenizer.encode_batch([random_dna(2500, seed=5)])[0]
    n = len(tokens)
    ranges = np.array([(0, 40), (20, 90), (50, 50 + model.max_tokens + 30), (100, 101), (n - 30, n), (7, 60)])
    encs = [Encoding(tokens.ids[a:b], tokens.spans[a:b] - tokens.spans[a, 0]) for a, b in ranges]
    token = path_fixture == "gena_token"
    rows = [(2, 10), None, (5, 10_000), (-3, 4), (0, 0), (3, 3_000)] if token else None
    kw = dict(max_tokens=model.max_tokens, device="cpu", batch_size=3, keep_channels=[1, 0])
    with pytest.warns(UserWarning, match="1 input\\(s\\) longer"):
        listed = run_network(model.network, encs, keep_rows=rows, **kw)
    keep = None if rows is None else np.array([r if r is not None else (0, 10**9) for r in rows])
    with pytest.warns(UserWarning, match="1 input\\(s\\) longer"):
        packed = run_windows(model.network, tokens, ranges, keep_rows=keep, **kw)
    assert isinstance(packed, PackedOutput) and packed.logits.dtype == np.float32
    if token:
        np.testing.assert_array_equal(packed.logits, np.concatenate([p.logits for p in listed]))
        np.testing.assert_array_equal(packed.spans, np.concatenate([p.spans for p in listed]))
    else:
        np.testing.assert_array_equal(packed.logits, np.stack([p.logits for p in listed]))
        assert packed.spans is None
    want = [[len(p.logits) if token else 0, p.n_tokens_total, p.n_tokens_dropped] for p in listed]
    assert packed.counts.tolist() == want and want[2][2] == 30
    empty = run_windows(model.network, tokens, np.zeros((0, 2), dtype=np.int64), **kw)
    assert empty.logits.shape[0] == 0 and empty.counts.shape == (0, 3)
    with pytest.raises(ValueError, match="keep_rows"):
        run_windows(model.network, tokens, ranges, keep_rows=np.zeros((2, 2)), **kw)


@pytest.mark.parametrize("path_fixture", ["gena_token", "gena_seq"])
@pytest.mark.parametrize("ahead", [0, 1, 500, None])
def test_run_windows_stream_gives_each_jobs_run_windows_values(request, path_fixture, ahead):
    """A stream of jobs yields, in order and with their tags, exactly what run_windows gives
    each job alone (batches never mix jobs), jobs without windows included, whatever the
    number of outputs kept queued."""
    model = load_model(request.getfixturevalue(path_fixture), device="cpu")
    token = path_fixture == "gena_token"
    kw = dict(max_tokens=model.max_tokens, device="cpu", batch_size=3, keep_channels=[1, 0])
    jobs = []
    for j, (size, n_win) in enumerate([(900, 5), (300, 0), (1500, 7), (200, 1), (400, 0)]):
        tokens = model.tokenizer.encode_batch([random_dna(size, seed=20 + j)])[0]
        n = len(tokens)
        starts = np.linspace(0, max(n - 40, 0), n_win).astype(np.int64)
        ranges = np.stack([starts, np.minimum(starts + 10 + 7 * np.arange(n_win), n)], axis=1).reshape(-1, 2)
        rows = np.array([(1 + k % 3, 8 + k) for k in range(n_win)], dtype=np.int64).reshape(-1, 2) if token else None
        jobs.append(WindowsJob(f"job{j}", tokens, ranges, rows))
    alone = [run_windows(model.network, job.tokens, job.ranges, keep_rows=job.keep_rows, **kw) for job in jobs]
    streamed = list(run_windows_stream(model.network, iter(jobs), ahead_elements=ahead, **kw))
    assert [tag for tag, _ in streamed] == [job.tag for job in jobs]
    for (_, got), want in zip(streamed, alone):
        np.testing.assert_array_equal(got.logits, want.logits)
        np.testing.assert_array_equal(got.counts, want.counts)
        if token:
            np.testing.assert_array_equal(got.spans, want.spans)
        else:
            assert got.spans is None and want.spans is None
    assert list(run_windows_stream(model.network, iter([]), **kw)) == []


def test_run_windows_stream_keeps_the_device_queued_across_jobs():
    """What keeps a GPU busy between work units: the next job is taken only after the
    current job's last batch was launched, and a job is handed out only after batches of
    the next one are launched (so the caller's work on it overlaps the device's); with
    ahead_elements=0 one batch runs ahead (run_windows' own pipelining)."""
    from toy import make_toy_model

    model = make_toy_model("token")
    events: list[tuple[str, object]] = []
    forward = model.network.forward

    def recording_forward(*a, **k):
        out = forward(*a, **k)
        events.append(("launch", out.shape[0]))
        return out

    model.network.forward = recording_forward
    tok = model.tokenizer

    def jobs():
        for j in range(3):
            tokens = tok.encode_batch(["ACGTACGTAC" * 8])[0]
            events.append(("take", j))
            yield WindowsJob(j, tokens, np.array([[k, k + 20] for k in range(0, 50, 10)]))  # 5 windows: 3 batches

    kw = dict(max_tokens=model.max_tokens, device="cpu", batch_size=2, prefetch=False)
    for ahead in (None, 200, 10**9):  # the default, about two batches' outputs, everything
        events.clear()
        for tag, out in run_windows_stream(model.network, jobs(), ahead_elements=ahead, **kw):
            events.append(("yield", tag))
            assert out.counts.shape == (5, 3)
        at = {e: i for i, e in enumerate(events) if e[0] != "launch"}
        launches = [i for i, e in enumerate(events) if e[0] == "launch"]
        assert len(launches) == 9 and [e[1] for e in events if e[0] == "yield"] == [0, 1, 2]
        for j in range(3):
            mine = [i for i in launches if at[("take", j)] < i < at.get(("take", j + 1), len(events))]
            assert len(mine) == 3  # all of job j's batches launched before job j + 1 is taken
            if j < 2:  # job j handed out only once job j + 1's first batch is launched
                assert at[("yield", j)] > min(i for i in launches if i > at[("take", j + 1)])
    events.clear()
    for tag, _ in run_windows_stream(model.network, jobs(), ahead_elements=0, **kw):
        events.append(("yield", tag))
    kinds = [e[0] if e[0] != "launch" else "L" for e in events]
    # one batch ahead: job 0's last batch is finished after job 1's first is launched
    assert kinds == ["take", "L", "L", "L", "take", "L", "yield", "L", "L", "take", "L", "yield", "L", "L",
                     "yield"], kinds


def test_non_finite_outputs_in_a_stream_name_their_job():
    from toy import CHAR_IDS, make_toy_model

    model = make_toy_model("token")
    model.network.table[CHAR_IDS["T"]] = float("nan")
    tok = model.tokenizer
    jobs = [WindowsJob(name, tok.encode_batch([seq])[0], np.array([[0, 4]]))
            for name, seq in [("a", "ACGA"), ("b", "CCCC"), ("c", "GGTA")]]
    got = []
    with pytest.raises(NonFiniteOutputError) as e:
        for tag, _ in run_windows_stream(model.network, iter(jobs), max_tokens=model.max_tokens, keep_channels=[1],
                                         ahead_elements=0):
            got.append(tag)
    assert e.value.tag == "c" and e.value.count == 1 and got == ["a", "b"]


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


class _BrokenCompiled(torch.nn.Module):
    """What torch.compile gives when the compiler fails at the first call."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.head, self.collate, self.split = net.head, net.collate, net.split

    def forward(self, **batch):
        raise RuntimeError("simulated inductor failure")


def test_compile_failure_falls_back(gena_token, monkeypatch):
    from genaannot.models import Model

    ref = load_model(gena_token, device="cpu")

    monkeypatch.setattr(torch, "compile", lambda net, **kw: _BrokenCompiled(net))
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


def test_a_stream_falls_back_to_eager_at_its_first_job(gena_token, monkeypatch):
    """Model.predict_windows_stream: a compile failure at the first job falls back to the
    eager network, as predict does, and every job still gets its values."""
    from genaannot.models import Model

    ref = load_model(gena_token, device="cpu")

    monkeypatch.setattr(torch, "compile", lambda net, **kw: _BrokenCompiled(net))
    m = Model(_loaded(gena_token), device="cpu", compile=True)
    tokens = ref.tokenizer.encode_batch([random_dna(1200, seed=8)])[0]
    jobs = [WindowsJob(k, tokens, np.array([[k, k + 30], [k + 5, k + 60]])) for k in range(3)]
    with pytest.warns(UserWarning, match="torch.compile failed"):
        got = list(m.predict_windows_stream(iter(jobs), batch_size=2))
    assert not m.compiled and [tag for tag, _ in got] == [0, 1, 2]
    for job, (_, out) in zip(jobs, got):
        want = ref.predict_windows(job.tokens, job.ranges, batch_size=2)
        np.testing.assert_array_equal(out.logits, want.logits)
        np.testing.assert_array_equal(out.spans, want.spans)


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


def test_the_copy_to_the_host_is_awaited_on_its_own_gpus_stream(monkeypatch):
    # a bare Event.record() takes the current device's stream: for a model on cuda:1 that is
    # cuda:0's, and waiting on it would not wait for the copy
    from genaannot import predict

    recorded = []

    class Event:
        def record(self, stream=None):
            recorded.append(stream)

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: ("stream of", device))
    predict._after_queued_work(torch.device("cuda", 1))
    assert recorded == [("stream of", torch.device("cuda", 1))]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_a_model_on_the_second_gpu_matches_the_cpu(gena_token):
    cpu = load_model(gena_token, device="cpu")
    gpu = load_model(gena_token, device="cuda:1")
    assert torch.cuda.current_device() == 0
    seqs = _seqs()
    for _ in range(3):  # a copy read before it lands would differ now and then
        for a, b in zip(cpu.predict(seqs), gpu.predict(seqs, batch_size=2)):
            np.testing.assert_allclose(b.logits, a.logits, rtol=1e-4, atol=1e-4)


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
# Every bench script runs at tiny size. No time is asserted (figures depend on the machine);
# what is checked is what cannot depend on it: the printed lines are the returned figures,
# rates are positive, fractions lie in [0, 1], and figures relate to each other as the
# scripts' docstrings say (FLOP counts, projections, emulated device time, window counts).


def _bench(name: str):
    from benchutil import load_bench

    return load_bench(name)


def _printed(out: str) -> dict[str, str]:
    """The ``name: value`` lines a bench script printed."""
    rows = {}
    for line in out.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name and " " not in name:
            rows[name] = value
    return rows


def _assert_printed_is_returned(out: str, res: dict) -> None:
    """Every returned figure is printed, floats as ``:.4g``, others as ``str``."""
    printed = _printed(out)
    assert set(res) <= set(printed), set(res) - set(printed)
    for k, v in res.items():
        want = f"{v:.4g}" if isinstance(v, float) else str(v)
        assert printed[k] == want, (k, printed[k], want)


def test_bench_gpu_check_dry_run(tmp_path):
    """bench/gpu_check.sh (the one command a session lent a GPU runs) goes through its steps
    on a CPU at tiny sizes: the figures and test output land in $OUT, and it says so."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GPU_CHECK_DRY": "1", "OUT": str(tmp_path), "PYTHON": sys.executable}
    r = subprocess.run(["bash", str(repo / "bench/gpu_check.sh")], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "gpu_check: all steps passed" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_scan.txt", "machine.txt", "model_forward.txt",
                                                          "pytest_gpu.txt"]
    assert "casts_per_forward:" in (tmp_path / "model_forward.txt").read_text()
    assert "busy_fraction_from_rate" in (tmp_path / "gpu_scan.txt").read_text()


def test_bench_model_forward_runs_on_cpu(capsys):
    mf = _bench("model_forward")
    # the docstring's figure at the GENA BERT-base shape and L = 512 (issue: ~190 MFLOP/token)
    base = mf.flops_per_token(hidden=768, layers=12, intermediate=3072, tokens=512, labels=3)
    assert base == 188_748_288 and round(base / 1e6, 1) == 188.7
    res = mf.main(["--device", "cpu", "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32",
                   "--positions", "34", "--vocab", "64", "--batch-size", "2", "--iters", "1", "--warmup", "0",
                   "--precision", "bf16"])
    out = capsys.readouterr().out
    assert "GPU figures need a GPU" in out
    _assert_printed_is_returned(out, res)
    assert res["precision"] == "bf16" and res["batch_size"] == 2 and res["device"] == "cpu (CPU)"
    # the docstring's formula by hand: P = 4*16*16 + 2*16*32 = 2048; F = 2*(1*P + 16*3) + 1*4*34*16
    fpt = 2 * (2048 + 16 * 3) + 4 * 34 * 16
    assert res["mflop_per_token"] == pytest.approx(fpt / 1e6) and res["mflop_per_token_base_shape_512"] == pytest.approx(188.748288)
    tps = res["forward_tokens_per_s"]
    assert tps > 0 and res["run_network_tokens_per_s"] > 0
    assert tps == pytest.approx(2 * 34 / (res["forward_ms_per_batch"] / 1e3))  # batch x positions per batch
    assert res["achieved_tflops"] == pytest.approx(tps * fpt / 1e12)
    assert res["mfu"] == pytest.approx(res["achieved_tflops"] / 989.0) and 0 < res["mfu"] < 1
    # projection: 3.1e9 bp / 6.5 bp per token, x 32/16 windows per base at overlap 0.5, x 34/32 for [CLS]/[SEP]
    positions = 3.1e9 / 6.5 * 2 * 34 / 32
    assert res["genome_hours_per_strand_measured"] == pytest.approx(positions / tps / 3600)
    assert res["genome_hours_per_strand_at_100pct_mfu"] == pytest.approx(positions / (989e12 / fpt) / 3600)
    # --count-ops: under autocast only the inputs of the 6 linear layers (Q, K, V, out, FFN
    # in and out; the classifier) are cast at each call: their weights and biases were cast at load
    args = ["--device", "cpu", "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32",
            "--positions", "34", "--vocab", "64", "--batch-size", "2", "--iters", "1", "--warmup", "0",
            "--skip-run-network", "--count-ops"]
    fp32, bf16 = mf.main([*args, "--precision", "fp32"]), mf.main([*args, "--precision", "bf16"])
    capsys.readouterr()
    assert fp32["casts_per_forward"] == 0 and bf16["casts_per_forward"] == 7
    assert 0 < fp32["aten_ops_per_forward"] < bf16["aten_ops_per_forward"]
    # the base shape at 100 % MFU: its own 512-position windows (510 content, stride 255)
    base_positions = 3.1e9 / 6.5 * 2 * 512 / 510
    assert res["genome_hours_per_strand_base_shape_at_100pct_mfu"] == pytest.approx(
        base_positions / (989e12 / 188_748_288) / 3600)
    assert "(2.00x tokens)" in res["projection_basis"]


def test_bench_host_pipeline_runs(capsys):
    hp = _bench("host_pipeline")  # default genome: the bundled, indexed examples/athaliana copy
    res = hp.main(["--max-bp", "15000"])  # with the profile (a second, profiled scan)
    _assert_printed_is_returned(capsys.readouterr().out, res)
    assert res["bp_scanned"] == 15000 and res["strands"] == "both" and res["overlap"] == 0.5  # scanner default
    assert res["host_tokens_per_s"] > 0 and res["cpu_s"] > 0 and res["tokenizer_bp_per_s_single_pass"] > 0
    assert 0 < res["model_layer_s"] <= res["wall_s"]
    # GENA t2t BPE on A. thaliana: a few bp per token (model_forward assumes 6.5 for human)
    assert 4 < res["bp_per_token"] < 9
    # each strand's 15 kb (~2,200 tokens) in 510-token windows at stride 255
    assert 6 <= res["windows_per_strand"] <= 12
    shares = {k: v for k, v in res.items() if k.startswith("share_")}
    assert {"share_tokenise_plan", "share_model_layer", "share_other"} <= set(shares)
    assert all(0 <= v <= 1 for v in shares.values()), shares
    assert sum(v for k, v in shares.items() if k != "share_other") <= 1.05, shares  # buckets do not double count
    slow = hp.main(["--max-bp", "15000", "--no-profile", "--device-tokens-per-s", "1e5"])
    _assert_printed_is_returned(capsys.readouterr().out, slow)
    # the emulated device's time is the token positions at that rate, part of the model layer's time
    assert slow["device_s"] == pytest.approx(slow["host_tokens_per_s"] * slow["wall_s"] / 1e5)
    assert slow["device_s"] <= slow["model_layer_s"] <= slow["wall_s"]
    assert slow["device_busy_fraction"] == pytest.approx(slow["device_s"] / slow["wall_s"])
    assert 0 < slow["device_busy_fraction"] <= 1
    # start-up (spawn, imports, first unit) comes before the first batch; the device is busy after it
    assert 0 < slow["startup_s"] < slow["wall_s"]
    assert slow["device_busy_fraction"] <= slow["device_busy_fraction_after_startup"] <= 1.001
    # cores for --target-tokens-per-s: CPU per token position times the rate, split by process
    assert slow["target_tokens_per_s"] == 4e6 and slow["worker_cpu_s"] < 0.05  # --workers 0: all in this process
    assert slow["host_cores_for_target"] == pytest.approx(
        slow["worker_cores_for_target"] + slow["device_process_cores_for_target"])
    assert slow["host_cores_for_target"] == pytest.approx(4e6 / slow["host_tokens_per_cpu_s"])
    assert (slow["bp_per_computed_token"], slow["windows_per_strand"]) == (res["bp_per_computed_token"], res["windows_per_strand"])
    # steady: from the first batch's launch to the last batch's end, what a long genome sees
    assert slow["device_busy_fraction"] <= slow["device_busy_fraction_steady"] <= 1.001
    assert 0 <= slow["tail_s"] < slow["wall_s"]
    real = hp.main(["--real-mb", "0.05", "--no-profile"])  # real DNA repeated: TAIR10's token lengths
    capsys.readouterr()
    assert real["bp_scanned"] == 50_000 and 5.5 < real["bp_per_token"] < 7
    # --tokenizer base: a token per base (HyenaDNA's and the bundled CNNs' character tokenizer)
    base = hp.main(["--max-bp", "15000", "--no-profile", "--tokenizer", "base", "--device-tokens-per-s", "1e6"])
    capsys.readouterr()
    assert base["tokenizer"] == "base" and res["tokenizer"] == "bpe"
    assert base["bp_per_token"] == pytest.approx(1, abs=0.05) and base["windows_per_strand"] > 5 * res["windows_per_strand"]
    assert 0 < base["device_busy_fraction"] <= base["device_busy_fraction_steady"] <= 1.001
    # --forward-host-ms: each batch's forward charges its thread that much CPU (a real forward's launches)
    busy = hp.main(["--max-bp", "15000", "--no-profile", "--forward-host-ms", "5"])
    capsys.readouterr()
    assert busy["batches"] >= 1 and busy["forward_host_ms"] == 5
    assert busy["forward_host_s"] >= busy["batches"] * 0.005 and slow["forward_host_s"] == 0


def test_the_emulated_device_is_asynchronous_like_a_cuda_stream():
    """bench/host_pipeline.EmulatedDevice: batches run back to back from their launch; the
    host waits only when it takes a batch's outputs (the ready event _to_host hands out).
    Only lower bounds on waits, and a launch far shorter than a batch: robust on a busy machine."""
    import time

    import genaannot.predict as predict

    hp = _bench("host_pipeline")
    dev = hp.EmulatedDevice(1e3)  # 200 positions: 0.2 s
    t0 = time.perf_counter()
    assert dev.launch(200) == pytest.approx(0.2)
    first_end = dev.free_at
    assert dev.launch(200) == pytest.approx(0.2)
    assert time.perf_counter() - t0 < 0.1  # launching does not wait for the device
    assert dev.free_at - first_end == pytest.approx(0.2)  # the second runs after the first
    _, ready = predict._to_host([torch.zeros(3)], cuda=False)  # the first batch's outputs
    ready.synchronize()
    assert time.perf_counter() >= first_end
    _, ready = predict._to_host([torch.zeros(3)], cuda=False)
    ready.synchronize()
    assert time.perf_counter() >= first_end + 0.2 - 1e-6
    predict._to_host.active = None  # type: ignore[attr-defined]
    assert predict._to_host([torch.zeros(3)], cuda=False)[1] is None  # no device: a CPU batch, ready


def test_bench_bpe_runs(capsys):
    """bench/bpe.py on 20 kb: both encoders, ids and spans compared, the start measured."""
    res = _bench("bpe").main(["--max-bp", "20000", "--repeats", "1"])
    _assert_printed_is_returned(capsys.readouterr().out, res)
    assert res["identical"] is True and res["mb_per_strand_pass"] == pytest.approx(0.02)
    assert res["tokenizers_cpu_s_per_mb"] > 0 and res["compiled_cpu_s_per_mb"] > 0 and res["start_cpu_s"] > 0


def test_bench_stage_cpu_runs_and_puts_the_functions_back(capsys):
    """bench/stage_cpu.py on 50 kb, 1-bp tokens, the GPU path: every stage of the writer and
    the assembler clocked, and the functions it wrapped are the library's again after it."""
    import genaannot.pipeline.scan as scan
    from genaannot.io.parts import PartsStore

    before = (scan.plan_span, scan.span_pieces, PartsStore.save)
    res = _bench("stage_cpu").main(["--mb", "0.05", "--tokenizer", "base", "--device-tokens-per-s", "1e9"])
    out = capsys.readouterr().out
    assert f"scan CPU {res['total']:.2f} s" in out
    assert res["total"] > 0 and res["writer: part file"] > 0 and res["assembler: feed (bigWig blocks, zooms)"] > 0
    assert res["main:   null network forward (random outputs)"] > 0  # the GPU path ran the network
    assert (scan.plan_span, scan.span_pieces, PartsStore.save) == before


def test_bench_tail_runs_splits_the_tail_and_puts_the_functions_back(capsys):
    """bench/tail.py on 50 kb, twice: the tail is the last part's arrival, the finishing and
    what follows it, the printed figures are the returned ones, and the functions it
    time-stamped are the library's again after it."""
    import genaannot.pipeline.assemble as assemble
    import genaannot.pipeline.scan as scan
    from genaannot.io.atomic import OutputSet

    before = (assemble.Assembler.finish, scan.compute_units, OutputSet.commit)
    res = _bench("tail").main(["--mb", "0.05", "--workers", "0", "--device-tokens-per-s", "1e9", "--repeat", "2"])
    out = capsys.readouterr().out
    assert (assemble.Assembler.finish, scan.compute_units, OutputSet.commit) == before
    assert len(res["runs"]) == 2
    for i, row in enumerate(res["runs"]):
        assert row["tail_ms"] == pytest.approx(row["last_part_ms"] + row["finish_ms"] + row["after_ms"])
        assert min(row.values()) >= 0 and row["commit_ms"] <= row["after_ms"] and row["tail_ms"] < 1000 * row["wall_s"]
        assert f"run={i + 1} tail_ms: {row['tail_ms']:.4g}" in out
    assert f"median finish_ms: {res['median']['finish_ms']:.4g}" in out


def test_bench_deflate_runs_and_compares_the_scans_blocks(capsys):
    """bench/deflate.py on 50 kb: a scan's blocks recorded (the writer's compressor put back
    after), each installed compressor's output inflates back, the printed figures returned."""
    import genaannot.io.bigwig as bigwig

    before = bigwig._deflate
    res = _bench("deflate").main(["--mb", "0.05", "--repeat", "1"])
    out = capsys.readouterr().out
    assert bigwig._deflate is before
    assert res["blocks"] > 4 and res["raw_bytes"] > 0
    assert {"zlib 1", "zlib 6"} <= set(res["results"])  # isal and zlib_ng where installed
    for name, r in res["results"].items():
        assert 0 < r["ratio"] < 1 and f"{name}: {r['ms']:.1f} ms" in out


def test_bench_feed_thread_runs(capsys):
    """bench/feed_thread.py on a 20-kb unit: both paths timed, the figures printed are returned."""
    res = _bench("feed_thread").main(["--batch-sizes", "8", "--repeat", "1", "--unit-bp", "20000"])
    out = capsys.readouterr().out
    assert set(res) == {8} and set(res[8]) == {"listed", "packed"}
    assert all(v > 0 and f"batch_size=8 {k}_ms_per_unit: {v:.1f}" in out for k, v in res[8].items())


def test_bench_score_host_runs(capsys):
    res = _bench("score_host").main(["--variants", "40"])
    assert _printed(capsys.readouterr().out) == {k: str(v) for k, v in res.items()}
    # 40 random SNVs/indels, all scored; per ALT: ref + alt on both strands, at most 512 positions each
    assert res["alts"] == res["scored"] == 40 and 1000 < res["tokens_per_variant"] <= 4 * 512
    assert res["variants_per_cpu_s"] > 0 and res["variants_per_s_wall"] > 0 and res["cpu_s"] > 0
    slow = _bench("score_host").main(["--variants", "40", "--device-tokens-per-s", "1e5"])
    capsys.readouterr()
    assert slow["tokens_per_variant"] == res["tokens_per_variant"]  # the emulated device computes the same
    assert slow["device_s"] == pytest.approx(slow["tokens_per_variant"] * 40 / 1e5, rel=0.02)
    assert slow["device_s"] <= slow["wall_s"] and 0 < slow["device_busy_fraction"] <= 1


def test_bench_overlap_runs(capsys):
    ov = _bench("overlap")
    strong = ov.main(["--max-bp", "30000", "--overlaps", "0.75,0,0.5"])
    out = capsys.readouterr().out
    assert "reference: overlap 0.75" in out
    rows = strong["rows"]
    assert [r["overlap"] for r in rows] == [0.0, 0.5, 0.75] and strong["window_tokens"] == 510
    assert [r["stride_tokens"] for r in rows] == [510, 255, 128]  # stride = window x (1 - overlap), in tokens
    # the printed table is the returned rows
    table = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["0.5"], ["0.75"])]
    assert [[float(x) for x in t] for t in table] == [
        [float(f"{r['overlap']:.4g}"), r["stride_tokens"], r["windows"], round(r["cost_vs_0"], 2), round(r["seconds"], 2),
         round(r["max_abs_diff"], 4), round(r["mean_abs_diff"], 5), round(r["frac_gt_0.01"], 4)] for r in rows]
    # cost: more windows with overlap, about window/stride times those at overlap 0
    windows = [r["windows"] for r in rows]
    assert windows[0] >= 5 and windows == sorted(windows)
    for r in rows[1:]:
        ratio = 510 / r["stride_tokens"]
        assert r["cost_vs_0"] == pytest.approx(r["windows"] / windows[0]) and 0.75 * ratio <= r["cost_vs_0"] <= ratio + 0.1
    # diffs against the reference: a context-dependent random model moves with the window
    weak = ov.main(["--max-bp", "30000", "--overlaps", "0,0.5,0.75", "--context-scale", "0.1"])["rows"]
    capsys.readouterr()
    for r, w in zip(rows[:-1], weak[:-1]):
        for x in (r, w):
            assert 0 < x["mean_abs_diff"] <= x["max_abs_diff"] <= 1 and 0 < x["frac_gt_0.01"] <= 1
        assert w["mean_abs_diff"] < 0.5 * r["mean_abs_diff"]  # context scale 0.1: outputs mostly local
        assert w["windows"] == r["windows"]


def test_bench_gpu_scan_runs_on_cpu(capsys):
    gs = _bench("gpu_scan")
    res = gs.main(["--device", "cpu", "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32",
                   "--positions", "130", "--max-bp", "20000", "--repeat", "1", "--variants", "6",
                   "--batch-size", "4", "--workers", "0"])
    _assert_printed_is_returned(capsys.readouterr().out, res)
    assert res["scan_bp"] == 20000 and res["scan_tokens_per_s"] > 0 and res["nvml_busy_mean"] == "n/a"
    assert res["workers"] == 0 and res["precision"] == "fp32" and res["device"] == "cpu (CPU)"
    assert res["forward_tokens_per_s"] > 0 and 0 < res["mfu_forward"] < 1 and 0 < res["mfu_scan"] < 1
    # analytic FLOPs per token are the same for the bare forward and the scan: the MFUs relate as the rates
    assert res["mfu_scan"] / res["mfu_forward"] == pytest.approx(res["busy_fraction_from_rate"])
    assert 0 < res["busy_fraction_from_rate"] and 0 < res["model_seconds_share"] <= 1
    assert 5 <= res["score_alts"] <= 6 and res["score_variants_per_s"] > 0 and res["score_busy_fraction_from_rate"] > 0


def test_bench_overlap_accuracy_runs(capsys):
    import json

    oa = _bench("overlap_accuracy")  # the bundled demo model on held-out Chr5
    # the demo model's thresholds were chosen at overlap 0.5: the overlap-0 scan says its calls may be off
    # (this bench compares the bigWigs' AP, not the calls)
    with pytest.warns(UserWarning, match="--stitch center --overlap 0.5; this scan uses --stitch center --overlap 0,"):
        rows = oa.main(["--max-bp", "20000", "--overlaps", "0,0.5", "--stitch", "center"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert printed == rows
    assert [(r["stitch"], r["overlap"]) for r in rows] == [("center", 0.0), ("center", 0.5)]
    w = rows[0]["window_tokens"]
    assert rows[1]["window_tokens"] == w and rows[0]["stride_tokens"] == w and rows[1]["stride_tokens"] == w // 2
    assert 1.8 <= rows[1]["windows"] / rows[0]["windows"] <= 2.0  # half the stride: twice the windows
    # the trained model ranks sites far above chance (a random ranking's AP is the site prevalence, ~0.001)
    assert all(r["ap_acceptor"] > 0.2 and r["ap_donor"] > 0.2 for r in rows)
    # the documented comparison: the largest |AP difference| from the densest setting (overlap 0.5)
    dense = rows[1]
    want = round(max(abs(rows[0]["ap_acceptor"] - dense["ap_acceptor"]), abs(rows[0]["ap_donor"] - dense["ap_donor"])), 4)
    assert rows[0]["max_ap_diff_vs_densest"] == want > 0


def test_bench_scan_runs(capsys):
    import json

    assert _bench("scan").main(["--max-bp", "20000"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["fasta"].endswith("examples/athaliana/athaliana_1pct.fa.gz")  # the bundled genome by default
    assert res["bp_scanned"] == 20000 and res["strands"] == ["+", "-"] and res["task"] == "splice"
    assert res["window_tokens"] == 128  # the tiny tests/tinymodels.py checkpoint's 128 content tokens
    assert res["windows"] > 2 * 20000 / 6 / 128  # both strands, overlapping windows of ~128 tokens
    assert res["bp_per_s"] > 0 and 0 < res["model_forward_share"] <= 1 and res["peak_rss_mb"] > 0


def test_bench_score_runs(capsys, monkeypatch):
    import re
    import sys

    monkeypatch.setattr(sys, "argv", ["score.py", "--variants", "30", "--hidden", "16", "--layers", "1",
                                      "--max-positions", "66"])
    _bench("score").main()
    out = capsys.readouterr().out
    head = re.search(r"(\d+) records, (\d+) ALTs", out)
    assert head and int(head.group(1)) == 30
    n_alts = int(head.group(2))
    assert n_alts == 30 + 30 // 5  # every fifth record is a two-ALT SNV
    runs = re.findall(r"([\d.]+) ALT/s +([\d.]+) records/s +\(([\d.]+) s, (\d+) windows, (\d+) ref reuses, scored (\d+)\)", out)
    assert len(runs) == 2, out
    for alt_s, rec_s, _secs, _win, _reuse, scored in runs:
        assert float(alt_s) > 0 and float(rec_s) > 0 and int(scored) == n_alts
    # batching changes the speed, not the work: the same windows and reference reuses
    assert runs[0][3:] == runs[1][3:]


@pytest.mark.slow
def test_bench_attention_scaling_runs(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench" / "attention_scaling.py"
    plot = tmp_path / "a.png"
    # several OpenMP threads: a forked measurement child used to deadlock there (it is spawned now)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    p = subprocess.run([sys.executable, str(script), "--max-len", "2048", "--width", "16", "--depth", "1",
                        "--budget-s", "20", "--plot", str(plot)], capture_output=True, text=True, timeout=300,
                       env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = {int(line.split("|")[0]): line for line in p.stdout.splitlines() if line.split("|")[0].strip().isdigit()}
    assert sorted(rows) == [1024, 2048]
    for line in rows.values():
        for part in line.split("|")[1:]:
            secs, mib = (float(x) for x in part.split())
            assert secs > 0 and mib >= 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_demo_calls_counts_hits_within_slack(tmp_path, capsys):
    from pathlib import Path

    from genaannot.io.annotation import read_annotation

    ann_path = Path(__file__).resolve().parent.parent / "examples" / "athaliana" / "athaliana_1pct.gff3.gz"
    ann = read_annotation(ann_path)
    every = np.concatenate([ann.sites("Chr5", k).on(s) for k in ("acceptor", "donor") for s in "+-"])

    def isolated(kind, strand):  # sites with no other site of any type/strand within 10 bp
        return [int(x) for x in np.sort(ann.sites("Chr5", kind).on(strand))
                if np.sum(np.abs(every - x) <= 10) == 1]

    acc, don = isolated("acceptor", "+"), isolated("donor", "-")
    assert len(acc) >= 4 and len(don) >= 1
    n_site = {k: sum(len(ann.sites("Chr5", k).on(s)) for s in "+-") for k in ("acceptor", "donor")}
    # acceptor: peaks 2 bp either side of a site (hits), 3 bp off (a miss), on the wrong strand
    # (a miss); donor: one exact hit; Chr1: counted genome-wide, not held out
    rows = [("Chr5", acc[0] + 2, "acceptor", "+"), ("Chr5", acc[1] - 2, "acceptor", "+"),
            ("Chr5", acc[2] + 3, "acceptor", "+"), ("Chr5", acc[3], "acceptor", "-"),
            ("Chr5", don[0], "donor", "-"), ("Chr1", 100, "donor", "+")]
    bed = tmp_path / "x.calls.bed"
    bed.write_text("".join(f"{c}\t{p - 5}\t{p + 5}\t{n}\t0\t{st}\t1\t-1\t-1\t5\n" for c, p, n, st in rows))
    res = _bench("demo_calls").main([str(bed), "--annotation", str(ann_path), "--chroms", "Chr5"])
    out = capsys.readouterr().out
    assert res["calls"] == {"acceptor": 4, "donor": 2}
    assert res["sites"]["acceptor"] == sum(len(ann.sites(c, "acceptor")) for c in ann.chroms)
    h, d = res["held_out"]["acceptor"], res["held_out"]["donor"]
    assert (h["calls"], h["hit_calls"], h["sites"], h["sites_found"]) == (4, 2, n_site["acceptor"], 2)
    assert (d["calls"], d["hit_calls"], d["sites"], d["sites_found"]) == (1, 1, n_site["donor"], 1)
    assert h["precision"] == 0.5 and h["recall"] == 2 / n_site["acceptor"]
    assert "  0.500 (2/4)" in out
    # a wider slack turns the 3-bp miss into a hit
    wide = _bench("demo_calls").main([str(bed), "--annotation", str(ann_path), "--slack", "3"])
    assert wide["held_out"]["acceptor"]["hit_calls"] == 3


def test_bench_scale_runs(capsys):
    """bench/scale.py at two tiny sizes: the figures it prints are the ones it returns, and relate
    as its docstring says (no time or rate is asserted)."""
    res = _bench("scale").main(["--sizes-mb", "0.03,0.06", "--tokenizer", "bpe"])
    out = capsys.readouterr().out
    printed = {}
    for line in out.splitlines():
        head, sep, value = line.partition(": ")
        if sep and head.startswith("size_mb="):
            printed[head] = value
    assert set(res) == {0.03, 0.06}
    for mb, row in res.items():
        for k, v in row.items():
            assert printed[f"size_mb={mb:g} {k}"] == f"{v:.4g}"
        assert row["peak_rss_mb"] > 0 and row["cpu_s"] > 0 and row["bytes_per_mb_track"] > 0
        # the scan's own peak (the set-up's high-water mark reset; Linux) is within the process's
        assert 0 < row["scan_peak_rss_mb"] <= row["peak_rss_mb"] or np.isnan(row["scan_peak_rss_mb"])
        assert 0 <= row["tail_s"] <= row["wall_s"] and row["tail_fraction"] == pytest.approx(row["tail_s"] / row["wall_s"])
        assert row["cpu_s_per_mb_strand"] == pytest.approx(row["cpu_s"] / (2 * row["mb_scanned"]))
        assert 0 < row["mb_scanned"] <= mb
    streamed = _bench("scale").main(["--sizes-mb", "0.03", "--tokenizer", "bpe", "--device-tokens-per-s", "1e9"])
    assert streamed[0.03]["bytes_per_mb_track"] == res[0.03]["bytes_per_mb_track"]  # the GPU's path, the same files
    # a token per base (the character tokenizer), in work units of 10 kb
    base = _bench("scale").main(["--sizes-mb", "0.03", "--tokenizer", "base", "--unit-bp", "10000"])[0.03]
    assert base["bytes_per_mb_track"] > res[0.03]["bytes_per_mb_track"]  # a value per base, not per token
    # a genome of two such chromosomes: twice the bases, per-Mb figures of the whole
    two = _bench("scale").main(["--sizes-mb", "0.03", "--tokenizer", "bpe", "--chroms", "2"])[0.03]
    assert two["mb_scanned"] == pytest.approx(2 * res[0.03]["mb_scanned"], rel=0.05)
    assert two["cpu_s_per_mb_strand"] == pytest.approx(two["cpu_s"] / (2 * two["mb_scanned"]))


def test_non_finite_outputs_raise_naming_the_input():
    """NaN from the network is an error naming the first input holding one, not silent NaN
    tracks; only kept channels count (a NaN in a dropped channel is harmless)."""
    from toy import CHAR_IDS, make_toy_model

    model = make_toy_model("token")
    model.network.table[CHAR_IDS["T"]] = float("nan")  # channel 1 of every T is NaN
    encs = model.tokenizer.encode_batch(["ACGA", "CCCC", "GGTT", "AATA"])
    with pytest.raises(NonFiniteOutputError) as e:
        model.predict_encoded(encs, batch_size=2, keep_channels=[1])
    # batches [ACGA, CCCC], [GGTT, AATA]: three NaN in the second, the first in GGTT
    assert e.value.count == 3 and e.value.index == 2 and "non-finite" in str(e.value)
    located = e.value.located("the window chr1:1-4")
    assert "the window chr1:1-4" in str(located) and located.count == 3
    ok = model.predict_encoded(encs, batch_size=2, keep_channels=[0, 2])
    assert all(np.isfinite(p.logits).all() for p in ok)


def test_bench_threads_runs(capsys):
    """bench/threads.py at a tiny size (one run: the real CLI, ~10 s of start-up): figures printed as returned."""
    res = _bench("threads").main(["--busy", "0", "--repeats", "1", "--max-bp", "3000", "--settings", "1",
                                  "--settle", "1000"])
    out = capsys.readouterr().out
    assert set(res) == {"wall_s_median[1]", "cpu_s_median[1]"}
    assert all(v > 0 for v in res.values())
    assert "identical_outputs: True" in out
    for k, v in res.items():
        assert f"{k}: {v:.1f}" in out


def _batch_plan_quadratic(lengths, *, batch_size):
    """batch_plan as first written (every placement summed afresh): the reference."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    step = max(1, batch_size)
    n = len(order)
    rem = n % step
    if rem == 0 or n <= step:
        return [order[b : b + step] for b in range(0, n, step)]
    n_full = n // step
    best, best_k = None, n_full
    for k in range(n_full, -1, -1):
        full = [j * step for j in range(k)] + [k * step + rem + j * step for j in range(n_full - k)]
        area = step * sum(lengths[order[s]] for s in full) + rem * lengths[order[k * step]]
        if best is None or area < best:
            best, best_k = area, k
    cut = best_k * step
    head = [order[b : b + step] for b in range(0, cut, step)]
    tail = [order[b : b + step] for b in range(cut + rem, n, step)]
    return [*head, order[cut : cut + rem], *tail]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=0, max_size=120), st.integers(1, 12))
def test_batch_plan_equals_the_quadratic_reference(lengths, bs):
    """Prefix sums choose the same placement (ties included) as summing every candidate."""
    assert batch_plan(lengths, batch_size=bs) == _batch_plan_quadratic(lengths, batch_size=bs)


def test_predict_refuses_text_that_is_not_bases(gena_token):
    """A README example copied with its '...' is refused, naming the input, 1-based position and
    character (a genome FASTA refuses it too); IUPAC letters in either case and '-' pass."""
    from genaannot.tokenize import SequenceError

    model = load_model(gena_token, device="cpu")
    ok = random_dna(40, seed=1)
    with pytest.raises(SequenceError, match=r"sequences\[1\]: position 13 \(1-based\) holds '\.'"):
        model.predict([ok, "ACGTAGGTAAGT..."])
    with pytest.raises(ValueError, match=r"sequences\[0\]: position 3 \(1-based\) holds 'X'"):
        model.predict(["acXgt"])
    with pytest.raises(SequenceError, match="one str"):
        model.predict(ok)
    with pytest.raises(SequenceError, match=r"sequences\[0\] is a bytes"):
        model.predict([ok.encode()])
    assert len(model.predict([ok, "ACGTURYKMSWBDHVNacgturykmswbdhvn-"])) == 2
