"""BigBird: fixed tiles, attention-type reset, parity with the fixture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tinymodels import assert_close, make_bigbird_dir, parity_fixture, random_dna

from genaannot.models import ModelError, load_model

NAME = "bigbird_tokcls"


@pytest.fixture(scope="module")
def fixture(shared):
    return parity_fixture(shared)


@pytest.fixture(scope="module")
def model(fixture):
    return load_model(fixture[0] / "models" / NAME, device="cpu")


def test_parity_fixedpad_via_predict(fixture, model):
    _, exp, cases = fixture
    assert model.info.max_tokens == 1022 and model.info.extra["tile_tokens"] == 1024
    for case, seq in cases.items():
        key = f"{NAME}/{case}/"
        assert int(exp[key + "fixedpad_length"]) == model.network.tile
        enc = model.tokenizer.encode(seq)
        np.testing.assert_array_equal(np.concatenate([[1], enc.ids[:1022], [2]]), exp[key + "input_ids"])
        pred = model.predict([seq])[0]
        assert_close(pred.logits, exp[key + "logits_fixedpad"][1:-1], key + "fixedpad")
        assert model.network.model.base_model.attention_type == str(exp[key + "attention_type_used_fixedpad"])


def test_parity_unpadded_lower_level(fixture, model):
    """Stock behaviour on unpadded input: short inputs switch to full attention (for good)."""
    _, exp, cases = fixture
    net = model.network
    for case in cases:
        key = f"{NAME}/{case}/"
        ids = torch.from_numpy(exp[key + "input_ids"].astype(np.int64))[None]
        net.reset_attention_type()
        with torch.no_grad():
            out = net.model(input_ids=ids).logits[0]
        assert net.model.base_model.attention_type == str(exp[key + "attention_type_used"])
        assert_close(out, exp[key + "logits"], key + "logits")
    # the network restores block_sparse before its own forward
    batch = net.collate([np.array([10, 11, 12])])
    with torch.no_grad():
        net(**batch)
    assert net.model.base_model.attention_type == "block_sparse"


def test_batch_equals_single(fixture, model):
    seqs = list(fixture[2].values())[:4]
    batched = model.predict(seqs, batch_size=4)
    for s, b in zip(seqs, batched):
        np.testing.assert_allclose(b.logits, model.predict([s])[0].logits, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- self-contained


def _tiny_bigbird(tmp_path, *, mlm: bool = False):
    return make_bigbird_dir(tmp_path / "bb", head="mlm" if mlm else "token")


def test_tiny_bigbird_tiles(tmp_path):
    d = _tiny_bigbird(tmp_path)
    model = load_model(d, device="cpu")
    assert model.info.max_tokens == 254
    seqs = [random_dna(40, seed=1), random_dna(600, seed=2)]
    out = model.predict(seqs)
    assert out[0].logits.shape[1] == 3
    # a short input alone gives the same result as in a batch: the tile is fixed
    np.testing.assert_allclose(model.predict(seqs[:1])[0].logits, out[0].logits, atol=1e-5)
    assert model.network.model.base_model.attention_type == "block_sparse"
    small = load_model(d, device="cpu", tile_tokens=128)
    assert small.info.max_tokens == 126
    with pytest.raises(ModelError, match="multiple of block_size"):
        load_model(d, device="cpu", tile_tokens=100)
    with pytest.raises(ModelError, match="too short"):
        load_model(d, device="cpu", tile_tokens=56)
    with pytest.raises(ModelError, match="exceeds max_position_embeddings"):
        load_model(d, device="cpu", tile_tokens=512)


def test_tiny_bigbird_mlm_and_missing_head(tmp_path):
    d = _tiny_bigbird(tmp_path, mlm=True)
    assert load_model(d, device="cpu").info.head == "mlm"
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["BigBirdForTokenClassification"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"missing keys: classifier\.weight, classifier\.bias; unexpected keys: cls\.predictions"):
        load_model(d, device="cpu")


def test_cpu_reduced_precision_runs_or_is_refused_at_load(tmp_path):
    """transformers 5.x's block-sparse attention fails under CPU autocast (softmax stays in the
    reduced dtype there, and its ``scatter_`` wants the context's): with such a transformers
    ``load_model(dtype=bf16|fp16)`` on a CPU is refused at load, saying what to do; with one
    that runs it (4.x) the model predicts. Which one is installed decides the branch: CI
    tests both (pinned and latest)."""
    import warnings

    from genaannot.models.bigbird import _block_sparse_cpu_autocast_error

    d = make_bigbird_dir(tmp_path / "bb", head="token")
    for precision in ("bf16", "fp16"):
        err = _block_sparse_cpu_autocast_error(precision)
        if err is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = load_model(d, device="cpu", dtype=precision).predict([random_dna(150, seed=2)])[0]
            assert np.isfinite(pred.logits).all()
        else:
            assert "dtype" in err
            with pytest.raises(ValueError, match=rf"precision {precision} on CPU: BigBird's block-sparse attention fails "
                                                 r"under CPU autocast with transformers .*use --precision fp32"):
                load_model(d, device="cpu", dtype=precision)
    assert load_model(d, device="cpu").precision == "fp32"  # never probed


def test_reduced_precision_refusal_is_for_cpu_block_sparse_only(tmp_path, monkeypatch):
    """The refusal path whatever transformers is installed (the probe made to fail): CPU
    bf16 refused; fp32, a CUDA device and full attention are not probed."""
    import genaannot.models.bigbird as bb

    monkeypatch.setattr(bb, "_block_sparse_cpu_autocast_error", lambda precision: "scatter(): dtypes differ")
    d = make_bigbird_dir(tmp_path / "bb", head="token")
    with pytest.raises(ValueError, match=r"precision bf16 on CPU: .*\(scatter\(\): dtypes differ\); use --precision fp32"):
        load_model(d, device="cpu", dtype="bf16")
    net = load_model(d, device="cpu").network
    net.check_precision(device="cpu", precision="fp32")
    net.check_precision(device="cuda:0", precision="bf16")
    net.attention_type = "original_full"
    net.check_precision(device="cpu", precision="bf16")
