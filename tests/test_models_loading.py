"""Finding, reading and strictly fitting checkpoints; the failure modes users will meet."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tinymodels import make_gena_dir, random_dna

from genaannot.models import ModelError, load_model, resolve_checkpoint
from genaannot.models.weights import load_strict, read_weights

FIXTURE_MODELS = {
    "bert_preln_nolastln_mlm": ("gena_bert", "mlm", 510),
    "bert_preln_lastln_seqcls": ("gena_bert", "sequence", 510),
    "bert_preln_tokcls_splice": ("gena_bert", "token", 510),
    "bert_preln_seqcls_multilabel": ("gena_bert", "sequence", 510),
    "bigbird_tokcls": ("bigbird", "token", 1022),
    "rmt_seqcls": ("rmt", "sequence", 480),
    "rmt_tokcls": ("rmt", "token", 480),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_MODELS))
def test_all_fixture_models_load(shared, name):
    family, head, max_tokens = FIXTURE_MODELS[name]
    d = shared / "fixtures" / "gena_parity" / "models" / name
    model = load_model(d, device="cpu")
    assert (model.info.family, model.info.head, model.info.max_tokens) == (family, head, max_tokens)
    assert model.info.n_params > 0
    if family == "rmt":  # the .pth file itself works too
        assert load_model(d / "model_best.pth", device="cpu").info.max_tokens == 480


@pytest.fixture()
def tiny(tmp_path):
    return make_gena_dir(tmp_path / "tiny", head="token", num_labels=3)


def _edit_weights(d, fn):
    state = load_file(str(d / "model.safetensors"))
    state = fn(state)
    save_file(state, str(d / "model.safetensors"))


def test_missing_head_weights(tiny):
    _edit_weights(tiny, lambda s: {k: v for k, v in s.items() if not k.startswith("classifier.")})
    with pytest.raises(ModelError, match=r"missing keys: classifier\.weight, classifier\.bias \(config\.json says "
                       "BertForTokenClassification"):
        load_model(tiny, device="cpu")


def test_only_the_missing_key_is_named(tmp_path):
    """A sequence checkpoint without classifier.weight: exactly that key, not the pooler."""
    d = make_gena_dir(tmp_path / "m", head="sequence", num_labels=2)
    _edit_weights(d, lambda s: {k: v for k, v in s.items() if k != "classifier.weight"})
    with pytest.raises(ModelError) as err:
        load_model(d, device="cpu")
    msg = str(err.value)
    assert "missing keys: classifier.weight (" in msg and "pooler" not in msg and "unexpected" not in msg


def test_head_claimed_but_other_head_present(tmp_path):
    d = make_gena_dir(tmp_path / "m", head="token")
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["BertForMaskedLM"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="cls.predictions"):
        load_model(d, device="cpu")


def test_wrong_shapes(tiny):
    cfg = json.loads((tiny / "config.json").read_text())
    cfg["id2label"] = {str(i): f"L{i}" for i in range(5)}
    cfg.pop("label2id")
    (tiny / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"shape mismatches: classifier.weight: checkpoint \(3, 16\) vs model \(5, 16\)"):
        load_model(tiny, device="cpu")


def test_unexpected_and_missing_keys(tiny):
    def edit(s):
        s["bert.encoder.layer.0.extra.weight"] = torch.zeros(2)
        del s["bert.encoder.layer.1.intermediate.dense.bias"]
        return s

    _edit_weights(tiny, edit)
    with pytest.raises(ModelError) as err:
        load_model(tiny, device="cpu")
    msg = str(err.value)
    assert "unexpected keys: bert.encoder.layer.0.extra.weight" in msg
    assert "missing keys: bert.encoder.layer.1.intermediate.dense.bias" in msg


def test_position_ids_buffer_ignored(tiny):
    _edit_weights(tiny, lambda s: {**s, "bert.embeddings.position_ids": torch.arange(130)[None]})
    assert load_model(tiny, device="cpu").info.head == "token"


def test_foreign_model_type(tiny):
    cfg = json.loads((tiny / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (tiny / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="unsupported model_type 'gpt2'"):
        load_model(tiny, device="cpu")


def test_missing_config(tiny):
    (tiny / "config.json").unlink()
    with pytest.raises(ModelError, match="no config.json"):
        load_model(tiny, device="cpu")


def test_missing_weights(tiny):
    (tiny / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no weights found"):
        load_model(tiny, device="cpu")


def test_hub_id_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelError, match="'someone/not-a-model'.*not in the local Hugging Face cache"):
        resolve_checkpoint("someone/not-a-model")


def test_bin_pth_and_sharded_reading(tiny, tmp_path):
    state = load_file(str(tiny / "model.safetensors"))
    ref = load_model(tiny, device="cpu")
    seq = random_dna(200, seed=9)
    want = ref.predict([seq])[0].logits

    # pytorch_model.bin only
    (tiny / "model.safetensors").unlink()
    torch.save(state, tiny / "pytorch_model.bin")
    np.testing.assert_array_equal(load_model(tiny, device="cpu").predict([seq])[0].logits, want)

    # sharded safetensors with an index
    (tiny / "pytorch_model.bin").unlink()
    keys = sorted(state)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    for fname, ks in shards.items():
        save_file({k: state[k] for k in ks}, str(tiny / fname))
    index = {"metadata": {}, "weight_map": {k: f for f, ks in shards.items() for k in ks}}
    (tiny / "model.safetensors.index.json").write_text(json.dumps(index))
    np.testing.assert_array_equal(load_model(tiny, device="cpu").predict([seq])[0].logits, want)

    # trainer-style .pth wrapper
    torch.save({"model_state_dict": state, "iteration": 3}, tmp_path / "x.pth")
    assert read_weights(tmp_path / "x.pth").keys() == state.keys()


def test_load_strict_tied_twins():
    lin = torch.nn.Module()
    lin.a = torch.nn.Linear(2, 3, bias=False)
    lin.b = torch.nn.Linear(2, 3, bias=False)
    lin.b.weight = lin.a.weight
    w = torch.randn(3, 2)
    report = load_strict(lin, {"a.weight": w}, source="test")
    assert report.filled_tied == ("b.weight",) and torch.equal(lin.b.weight, w)
    with pytest.raises(ModelError, match="tied weights stored with different values"):
        load_strict(lin, {"a.weight": w, "b.weight": w + 1}, source="test")


def test_bundled_model_missing_says_where_it_lives(monkeypatch):
    """An installed package without examples/: the bundled demo's name explains how to get it."""
    from dataclasses import replace

    from genaannot.models import catalog

    entry = catalog.CATALOG["demo-splice-athaliana"]
    assert entry.hub_id == "" and entry.local_path() is not None  # bundled in this checkout
    gone = replace(entry, bundled="examples/models/not-installed-here")
    monkeypatch.setitem(catalog.CATALOG, "demo-splice-athaliana", gone)
    with pytest.raises(ModelError) as err:
        resolve_checkpoint("demo-splice-athaliana")
    msg = str(err.value)
    assert "bundled with the genaannot source repository" in msg
    assert "examples/models/not-installed-here" in msg
    assert "Clone the genaannot repository" in msg and "--model PATH" in msg
    assert "no model at ''" not in msg
