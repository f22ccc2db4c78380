"""Weight files (genaannot.io.weights): preference order, shards, wrappers, and no code runs."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from genaannot.io.weights import WEIGHT_FILES, find_weight_file, has_weights, read_weights
from genaannot.models import ModelError
from genaannot.models import weights as models_weights

STATE = {"a.weight": torch.arange(6.0).reshape(2, 3), "b.bias": torch.ones(2)}


def _same(got, want=STATE):
    return got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_models_weights_reexports_the_io_functions():
    # callers (train.py, tests) still import these from genaannot.models.weights
    assert (models_weights.read_weights, models_weights.find_weight_file, models_weights.WEIGHT_FILES) == \
        (read_weights, find_weight_file, WEIGHT_FILES)


def test_directory_prefers_safetensors(tmp_path):
    assert not has_weights(tmp_path)
    with pytest.raises(ModelError, match="no weights found.*model.safetensors"):
        find_weight_file(tmp_path)
    torch.save({k: v + 1 for k, v in STATE.items()}, tmp_path / "pytorch_model.bin")
    assert find_weight_file(tmp_path).name == "pytorch_model.bin" and has_weights(tmp_path)
    save_file(STATE, str(tmp_path / "model.safetensors"))
    assert find_weight_file(tmp_path).name == "model.safetensors"
    assert _same(read_weights(tmp_path))
    with pytest.raises(ModelError, match="weight file not found"):
        read_weights(tmp_path / "nope.bin")


def test_sharded_index(tmp_path):
    save_file({"a.weight": STATE["a.weight"]}, str(tmp_path / "s1.safetensors"))
    save_file({"b.bias": STATE["b.bias"]}, str(tmp_path / "s2.safetensors"))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a.weight": "s1.safetensors", "b.bias": "s2.safetensors"}}))
    assert _same(read_weights(tmp_path))
    index.write_text(json.dumps({"weight_map": {"a.weight": "s1.safetensors", "c": "s1.safetensors"}}))
    with pytest.raises(ModelError, match=r"shards lack 1 indexed tensors, e.g. \['c'\]"):
        read_weights(index)
    index.write_text("{broken")
    with pytest.raises(ModelError, match="not a valid shard index"):
        read_weights(index)


def test_trainer_wrappers(tmp_path):
    torch.save({"model_state_dict": STATE, "iteration": 3}, tmp_path / "x.pth")
    assert _same(read_weights(tmp_path / "x.pth"))
    torch.save({"state_dict": STATE}, tmp_path / "y.pth")
    assert _same(read_weights(tmp_path / "y.pth"))
    torch.save({"ema": STATE, "step": 1}, tmp_path / "z.pth")
    assert _same(read_weights(tmp_path / "z.pth", key="ema"))
    with pytest.raises(ModelError, match="no 'model' entry"):
        read_weights(tmp_path / "z.pth", key="model")
    with pytest.raises(ModelError, match=r"entries that are not tensors: \['ema', 'step'\]"):
        read_weights(tmp_path / "z.pth")


def test_a_trainer_checkpoint_with_numpy_metrics_loads(tmp_path):
    # sklearn's metrics are numpy scalars: a trainer that stores them was refused as unsafe
    import numpy as np

    torch.save({"model_state_dict": STATE, "metrics": {"f1": np.float64(0.5), "n": np.int64(3), "ok": np.bool_(True),
                                                       "h": np.float32(0.25)}}, tmp_path / "model_best.pth")
    assert _same(read_weights(tmp_path / "model_best.pth"))


def test_unreadable_files(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot read safetensors file"):
        read_weights(tmp_path)
    torch.save([1, 2], tmp_path / "list.bin")
    with pytest.raises(ModelError, match="expected a dict of tensors, found list"):
        read_weights(tmp_path / "list.bin")


class _Evil:
    def __reduce__(self):
        return (print, ("executed",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "pytorch_model.bin"
    with open(path, "wb") as fh:
        pickle.dump({"w": _Evil()}, fh, protocol=2)  # torch.save's protocol: torch warns about others
    with pytest.raises(ModelError, match="refused for safety") as err:
        read_weights(path)
    assert "weights_only" not in str(err.value)  # never torch's advice to load it unsafely
    assert "executed" not in capsys.readouterr().out


def test_checkpoint_and_state_sha256(tmp_path):
    from genaannot.io.weights import checkpoint_files, checkpoint_sha256, state_sha256

    save_file(STATE, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not part of the model")
    assert [p.name for p in checkpoint_files(tmp_path)] == ["model.safetensors", "config.json"]
    first = checkpoint_sha256(tmp_path)
    assert checkpoint_sha256(tmp_path, chunk=7) == first  # streaming does not change it
    (tmp_path / "notes.txt").write_text("edited")
    assert checkpoint_sha256(tmp_path) == first
    (tmp_path / "config.json").write_text('{"problem_type": "regression"}')
    assert checkpoint_sha256(tmp_path) != first  # config.json changes outputs
    assert checkpoint_sha256(tmp_path / "notes.txt") is None and checkpoint_files(tmp_path / "x") is None
    net = torch.nn.Linear(3, 2)
    h = state_sha256(net)
    assert state_sha256(net) == h
    with torch.no_grad():
        net.bias[0] += 1
    assert state_sha256(net) != h
