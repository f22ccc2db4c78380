"""Hostile and broken checkpoints (issue 20): one clear line naming the file and what to do,
never a traceback, never a network built from a config that the weights contradict."""

from __future__ import annotations

import errno
import json
import os
import pickle
import resource
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tiny_families import make_hyena_dir, make_modernbert_dir
from tinymodels import make_bigbird_dir, make_gena_dir, make_rmt_dir

from genaannot import load_model
from genaannot.cli import main
from genaannot.io.checkpoint import TRAINER_STATE, TRAINER_STATE_KEYS, load_training_state
from genaannot.models import ModelError
from genaannot.tokenize import TokenizerError

LFS = "version https://git-lfs.github.com/spec/v1\noid sha256:0123abcd\nsize 123456\n"


@pytest.fixture(scope="module")
def gena(tmp_path_factory):
    return make_gena_dir(tmp_path_factory.mktemp("g") / "m", head="token")


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_config(d, **changes):
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))


def _inspect(d) -> str:
    res = CliRunner().invoke(main, ["models", "inspect", str(d)])
    assert res.exit_code == 1, res.output
    assert not isinstance(res.exception, SystemExit) or res.exception.code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def test_a_million_layers_is_refused_before_anything_is_built(gena, tmp_path):
    d = _copy(gena, tmp_path / "m")
    _edit_config(d, num_hidden_layers=10**6)
    t0 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelError, match=r"config\.json: num_hidden_layers is 1000000 but .* holds 2 "):
        load_model(d, device="cpu")
    assert time.perf_counter() - t0 < 10  # was: minutes, gigabytes, then a traceback
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # KiB
    assert "num_hidden_layers is 1000000" in _inspect(d)


@pytest.mark.parametrize(("changes", "message"), [
    ({"hidden_size": "16"}, r"config\.json: hidden_size must be a whole number >= 1, not '16'"),
    ({"intermediate_size": -64}, r"config\.json: intermediate_size must be a whole number >= 1, not -64"),
    ({"num_attention_heads": 0}, r"num_attention_heads must be a whole number >= 1, not 0"),
    ({"vocab_size": 16.5}, r"vocab_size must be a whole number"),
    ({"pre_layer_norm": "false"}, r"pre_layer_norm must be true or false, not a string"),
    ({"id2label": ["a", "b", "c"]}, r"id2label must be an object"),
    ({"num_labels": 10**12, "id2label": None}, r"num_labels 1000000000000 is implausible"),
    # sizes the weights contradict: refused on the meta device, before the real allocation
    ({"hidden_size": 10**7}, r"word_embeddings\.weight: checkpoint \(\d+, 16\) vs model \(\d+, 10000000\)"),
    ({"vocab_size": 10**9}, r"checkpoint \(\d+, 16\) vs model \(1000000000, 16\)"),
    ({"intermediate_size": 10**9}, r"intermediate\.dense\.weight: checkpoint \(64, 16\) vs model \(1000000000, 16\)"),
])
def test_gena_config_types_and_sizes(gena, tmp_path, changes, message):
    d = _copy(gena, tmp_path / "m")
    _edit_config(d, **changes)
    with pytest.raises(ModelError, match=message):
        load_model(d, device="cpu")


@pytest.mark.parametrize(("name", "text", "message"), [
    ("config.json", "[1, 2]", r"config\.json: expected a JSON object \{\.\.\.\}, found a list"),
    ("config.json", "{nope", r"config\.json: not valid JSON"),
    ("genaannot.json", "{nope", r"genaannot\.json: not valid JSON .*fix or remove genaannot\.json"),
    ("genaannot.json", '["splice"]', r"genaannot\.json: expected a JSON object"),
    ("genaannot.json", '{"task": 5}', r"genaannot\.json: task must be str, not int"),
    ("genaannot.json", '{"task": "splice", "thresholds": {"donor": "high"}}', r"thresholds\.donor must be a number"),
    ("tokenizer.json", "{nope", r"tokenizer\.json: not valid JSON .*--tokenizer DIR"),
    ("tokenizer.json", "[]", r"tokenizer\.json: not a Hugging Face tokenizers file"),
    ("tokenizer.json", '{"model": {"type": "Nonsense"}}', r"tokenizer\.json: not a usable tokenizer"),
    ("model.safetensors", LFS, r"model\.safetensors is a git-lfs pointer, not the file itself: run `git lfs pull` in "),
    ("tokenizer.json", LFS, r"tokenizer\.json is a git-lfs pointer"),
])
def test_broken_files_one_line(gena, tmp_path, name, text, message):
    d = _copy(gena, tmp_path / "m")
    (d / name).write_text(text)
    with pytest.raises((ModelError, TokenizerError), match=message):
        load_model(d, device="cpu")
    assert "Traceback" not in _inspect(d)


def test_lfs_pointer_bin_names_the_fix_and_never_torch_advice(gena, tmp_path):
    d = _copy(gena, tmp_path / "m")
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_text(LFS)
    line = _inspect(d)
    assert f"{d / 'pytorch_model.bin'} is a git-lfs pointer" in line
    assert f"`git lfs pull` in {d}" in line and f"hf download OWNER/NAME --local-dir {d}" in line
    assert "weights_only" not in line


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_that_would_run_code(gena, tmp_path, capfd):
    d = _copy(gena, tmp_path / "m")
    (d / "model.safetensors").unlink()
    torch.save({"w": _RunsCode()}, d / "pytorch_model.bin")
    line = _inspect(d)
    assert "refused for safety" in line and "would run code" in line and "system" in line
    assert "weights_only" not in line and "will likely succeed" not in line
    assert "pwned" not in capfd.readouterr().out


def test_hostile_trainer_state(tmp_path, capfd):
    step = tmp_path / "step-0000001"
    step.mkdir()
    with open(step / TRAINER_STATE, "wb") as fh:
        pickle.dump({"step": _RunsCode()}, fh)
    with pytest.raises(ModelError, match="refused for safety, not a genaannot trainer state") as err:
        load_training_state(step, required=TRAINER_STATE_KEYS)
    assert "weights_only" not in str(err.value) and "without --resume" in str(err.value)
    assert "pwned" not in capfd.readouterr().out
    torch.save({"step": 1}, step / TRAINER_STATE)
    with pytest.raises(ModelError, match="not a genaannot trainer state \\(no total, optimizer"):
        load_training_state(step, required=TRAINER_STATE_KEYS)
    torch.save([1, 2], step / TRAINER_STATE)
    with pytest.raises(ModelError, match="a list, not a dict"):
        load_training_state(step)
    (step / TRAINER_STATE).write_bytes(b"\x00truncated")
    with pytest.raises(ModelError, match="refused for safety|damaged"):
        load_training_state(step)


def test_train_resume_with_hostile_state_is_one_line(tmp_path):
    from toy_genome import write_inputs

    fa, gff = write_inputs(tmp_path)
    out = tmp_path / "model"
    args = ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff), "-o", str(out),
            "--train-chroms", "c1", "--hidden-size", "16", "--layers", "1", "--heads", "2", "--window-tokens", "62",
            "--steps", "2", "--save-every", "1", "--batch-size", "2", "--device", "cpu", "-q", "--no-eval"]
    assert CliRunner().invoke(main, args).exit_code == 0
    last = out / "checkpoints" / (out / "checkpoints" / "last").read_text().strip()
    with open(last / TRAINER_STATE, "wb") as fh:
        pickle.dump({"step": _RunsCode()}, fh)
    res = CliRunner().invoke(main, [*args, "--resume"])
    assert res.exit_code == 1, res.output
    # the error is one line (the run's notes, such as having no validation regions, may come before it)
    lines = [x for x in res.output.strip().splitlines() if not x.startswith("no validation regions")]
    assert len(lines) == 1 and "refused for safety, not a genaannot trainer state" in lines[0], res.output
    assert "Traceback" not in res.output


def test_train_output_that_cannot_be_created(tmp_path):
    from toy_genome import write_inputs

    fa, gff = write_inputs(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(blocker / "model"), "--train-chroms", "c1", "--hidden-size", "16",
                                    "--layers", "1", "--heads", "2", "--window-tokens", "62", "--steps", "1",
                                    "--batch-size", "2", "--device", "cpu", "-q", "--no-eval"])
    assert res.exit_code in (1, 2), res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and str(blocker) in lines[-1], res.output


def test_disk_full_while_saving_a_part(tmp_path, monkeypatch):
    from genaannot.io import atomic
    from genaannot.io.atomic import OutputError, save_npz_atomic

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    target = tmp_path / "out.parts" / "chr1-0.npz"
    target.parent.mkdir()
    with pytest.raises(OutputError, match=r"chr1-0\.npz: cannot save .*No space left on device.*(disk|quota)") as err:
        save_npz_atomic(target, {"a": np.arange(3)})
    assert "\n" not in str(err.value)
    assert list(target.parent.iterdir()) == []  # no part, no temporary file


# --------------------------------------------------------------------------- other families


def test_rmt_layers_and_options(tmp_path):
    d = make_rmt_dir(tmp_path / "r")
    _edit_config(d, num_hidden_layers=10**6)
    with pytest.raises(ModelError, match=r"config\.json: num_hidden_layers is 1000000 but .*model_best\.pth holds 2"):
        load_model(d, device="cpu")
    _edit_config(d, num_hidden_layers=2)
    (d / "rmt.json").write_text(json.dumps({"num_mem_tokens": 3, "input_size": "big", "max_n_segments": 3}))
    with pytest.raises(ModelError, match=r"rmt\.json: input_size must be a whole number >= 0, not 'big'"):
        load_model(d, device="cpu")
    (d / "rmt.json").write_text("[]")
    with pytest.raises(ModelError, match=r"rmt\.json: expected a JSON object"):
        load_model(d, device="cpu")


def test_bigbird_layers_and_sizes(tmp_path):
    d = make_bigbird_dir(tmp_path / "b")
    _edit_config(d, num_hidden_layers=10**6)
    with pytest.raises(ModelError, match=r"num_hidden_layers is 1000000 but .* holds 1 "):
        load_model(d, device="cpu")
    _edit_config(d, num_hidden_layers=1, hidden_size=10**7)
    with pytest.raises(ModelError, match=r"shape mismatches: .*vs model \(96, 10000000\)"):
        load_model(d, device="cpu")
    _edit_config(d, hidden_size="8")
    assert "hidden_size must be a whole number" in _inspect(d)


def test_hyena_layers_filters_and_vocab(tmp_path):
    d = make_hyena_dir(tmp_path / "h", head="token", max_seq_len=34)
    _edit_config(d, n_layer=10**6)
    with pytest.raises(ModelError, match=r"n_layer is 1000000 but .* holds 2 "):
        load_model(d, device="cpu")
    _edit_config(d, n_layer=2, num_inner_mlps=10**6)
    with pytest.raises(ModelError, match=r"num_inner_mlps is 1000000 \(so 1000002 ×"):
        load_model(d, device="cpu")
    _edit_config(d, num_inner_mlps=2, vocab_size=10**12)
    with pytest.raises(ModelError, match=r"vocab_size 1000000000000 .* word embeddings of 16 rows"):
        load_model(d, device="cpu")
    _edit_config(d, vocab_size=12, max_seq_len=10**9)
    with pytest.raises(ModelError, match=r"pos_emb\.z: checkpoint \(1, 34, 5\) vs model \(1, 1000000000, 5\)"):
        load_model(d, device="cpu")
    _edit_config(d, max_seq_len=34, d_model=[16])
    assert "d_model must be a whole number >= 1, not a list" in _inspect(d)


def test_modernbert_layers_and_types(tmp_path):
    d = make_modernbert_dir(tmp_path / "mb", num_layers=2, global_every=1)
    _edit_config(d, num_hidden_layers=10**6)
    with pytest.raises(ModelError, match=r"num_hidden_layers is 1000000 but .* holds 2 "):
        load_model(d, device="cpu")
    _edit_config(d, num_hidden_layers=2, intermediate_size=10**9)
    with pytest.raises(ModelError, match=r"shape mismatches: .*Wi\.weight"):
        load_model(d, device="cpu")
    _edit_config(d, intermediate_size=24, norm_eps="tiny")
    assert "norm_eps must be a number, not a string" in _inspect(d)
