"""Reduced precision (autocast) on CPU: bf16/fp16 agree with fp32 within the tolerance
stated in docs/performance.md, weights stay float32, outputs come back float32, and
impossible settings are refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tinymodels import make_gena_dir, random_dna

from genaannot.models import load_model
from genaannot.predict import check_precision
from genaannot.tasks import activate

#: documented tolerances (docs/performance.md, "Precision"): max |low - fp32| of the logits
#: relative to the largest |fp32 logit| of the input, and absolute on softmax probabilities
LOGIT_REL = {"bf16": 0.03, "fp16": 0.005}
PROB_ABS = {"bf16": 0.02, "fp16": 0.003}


@pytest.fixture(scope="module")
def gena_dir(tmp_path_factory):
    # wider than the default tiny model so matmuls accumulate over more terms
    return make_gena_dir(tmp_path_factory.mktemp("prec") / "tok", head="token", num_labels=3,
                         hidden=64, layers=3, heads=4, seed=11)


def _seqs() -> list[str]:
    return [random_dna(n, seed=200 + n) for n in (60, 250, 400, 520)]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cpu_autocast_agrees_with_fp32(gena_dir, precision):
    ref = load_model(gena_dir, device="cpu")
    low = load_model(gena_dir, device="cpu", dtype=precision)
    assert low.precision == precision
    seqs = _seqs()
    with pytest.warns(UserWarning, match="2 input\\(s\\) longer than the model's 128 content tokens were cut"):
        preds = list(zip(ref.predict(seqs), low.predict(seqs, batch_size=3)))  # 400 and 520 bp are cut
    for a, b in preds:
        assert b.logits.dtype == np.float32 and b.logits.shape == a.logits.shape
        err = np.abs(b.logits - a.logits).max()
        assert err <= LOGIT_REL[precision] * np.abs(a.logits).max(), err
        assert err > 0  # autocast really ran in reduced precision
        pa, pb = activate(a.logits, "softmax"), activate(b.logits, "softmax")
        assert np.abs(pa - pb).max() <= PROB_ABS[precision]
    # weights are untouched: autocast casts per operation
    assert all(p.dtype == torch.float32 for p in low.network.parameters())


def test_torch_dtype_names_accepted(gena_dir):
    assert load_model(gena_dir, device="cpu", dtype=torch.bfloat16).precision == "bf16"
    assert load_model(gena_dir, device="cpu", dtype="float16").precision == "fp16"


def test_unknown_precision_refused_at_load(gena_dir):
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        load_model(gena_dir, device="cpu", dtype="int8")
    with pytest.raises(ValueError, match="choose fp32, bf16, fp16"):
        check_precision(device="cpu", precision="fp64")


def test_cuda_without_gpu_refused(monkeypatch):
    from genaannot.predict import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # runs on GPU machines too
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda:1")
    assert resolve_device("auto") == resolve_device(None) == "cpu"
