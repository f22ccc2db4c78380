"""Checkpoint directories on disk (genaannot.io.checkpoint): steps, pointer, metadata, model files."""

from __future__ import annotations

import json

import pytest
import torch

from genaannot.io.checkpoint import (
    METADATA,
    TRAINER_STATE,
    last_checkpoint,
    load_training_state,
    read_config,
    read_metadata,
    read_rmt_meta,
    save_step,
    update_metadata,
    write_model_dir,
)
from genaannot.models import ModelError


class _Boom(Exception):
    pass


def _model_writer(text):
    def write(d):
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(text)

    return write


def _hidden(d):
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


def test_save_step_pointer_and_pruning(tmp_path):
    root = tmp_path / "checkpoints"
    state = {"step": 1, "w": torch.arange(3.0)}
    for step in (1, 2, 3):
        save_step(root, step=step, write_model=_model_writer(f"{step}"), state={**state, "step": step}, keep=2)
    assert sorted(p.name for p in root.iterdir()) == ["last", "step-0000002", "step-0000003"]
    assert (root / "last").read_text() == "step-0000003\n"
    last = last_checkpoint(root)
    assert last == root / "step-0000003" and (last / "config.json").read_text() == "3"
    got = load_training_state(last)
    assert got["step"] == 3 and torch.equal(got["w"], torch.arange(3.0))
    # the same step again replaces the directory as a whole
    save_step(root, step=3, write_model=_model_writer("again"), state=state, keep=2)
    assert (root / "step-0000003" / "config.json").read_text() == "again"
    assert _hidden(root) == []


def test_failed_step_leaves_the_previous_one(tmp_path):
    root = tmp_path / "checkpoints"
    save_step(root, step=1, write_model=_model_writer("1"), state={"step": 1}, keep=3)

    def crash(d):
        _model_writer("half")(d)
        raise _Boom("killed while writing the model")

    with pytest.raises(_Boom):
        save_step(root, step=2, write_model=crash, state={"step": 2}, keep=3)
    assert sorted(p.name for p in root.iterdir()) == ["last", "step-0000001"]
    assert last_checkpoint(root) == root / "step-0000001"
    (root / "last").write_text("step-0000009\n")  # stale pointer
    assert last_checkpoint(root) is None


def test_pickled_code_in_trainer_state_is_refused(tmp_path):
    d = tmp_path / "step"
    d.mkdir()
    torch.save({"f": _Boom}, d / TRAINER_STATE)  # a class: needs code to unpickle
    with pytest.raises(ModelError, match="refused for safety, not a genaannot trainer state") as err:
        load_training_state(d)
    assert "weights_only" not in str(err.value)  # never torch's advice to load it unsafely


def test_metadata(tmp_path):
    assert read_metadata(tmp_path) == {}
    path = update_metadata(tmp_path, {"task": "splice", "threshold": 0.5})
    assert path == tmp_path / METADATA
    update_metadata(tmp_path, {"threshold": 0.75})
    assert read_metadata(tmp_path) == {"task": "splice", "threshold": 0.75}
    assert path.read_text() == json.dumps({"task": "splice", "threshold": 0.75}, indent=2) + "\n"
    (tmp_path / "model_best.pth").write_bytes(b"")
    assert read_metadata(tmp_path / "model_best.pth")["task"] == "splice"  # a file: its directory
    assert _hidden(tmp_path) == []


def test_read_config_and_rmt_meta(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    assert read_config(tmp_path) == {"model_type": "bert"}
    (tmp_path / "model_best.pth").write_bytes(b"")
    assert read_config(tmp_path / "model_best.pth") == {"model_type": "bert"}  # a file: its directory
    from genaannot.models import read_config as shortcut

    assert shortcut(tmp_path) == {"model_type": "bert"}
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ModelError, match="config.json: not valid JSON"):
        read_config(tmp_path)
    assert read_rmt_meta(tmp_path) == {}
    (tmp_path / "rmt.json").write_text('{"segment_size": 10}')
    assert read_rmt_meta(tmp_path) == {"segment_size": 10}
    (tmp_path / "rmt.json").write_text("[")
    with pytest.raises(ModelError, match="rmt.json: not valid JSON"):
        read_rmt_meta(tmp_path)


def test_write_model_dir(tmp_path):
    from safetensors.torch import load_file
    from tinymodels import make_tokenizer

    from genaannot.io.tokenizers import read_bpe_tokenizer

    tok = read_bpe_tokenizer(make_tokenizer(tmp_path / "tok"))
    out = tmp_path / "model"
    w = torch.arange(4.0)
    write_model_dir(out, tensors={"w": w}, config={"model_type": "bert"}, tokenizer=tok, metadata={"task": "x"})
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", METADATA, "model.safetensors", "special_tokens_map.json", "tokenizer.json",
        "tokenizer_config.json"]
    assert torch.equal(load_file(str(out / "model.safetensors"))["w"], w)
    assert (out / "config.json").read_text() == json.dumps({"model_type": "bert"}, indent=2) + "\n"
    assert read_metadata(out) == {"task": "x"}
    assert (out / "tokenizer.json").read_text() == tok.files()["tokenizer.json"]


def test_write_model_dir_crash_leaves_the_old_files(tmp_path):
    class Broken:
        def files(self):
            raise _Boom("tokenizer cannot be written")

    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("old")
    with pytest.raises(_Boom):
        write_model_dir(out, tensors={"w": torch.zeros(1)}, config={"new": 1}, tokenizer=Broken())
    assert [p.name for p in out.iterdir()] == ["config.json"] and (out / "config.json").read_text() == "old"
