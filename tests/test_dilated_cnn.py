"""genaannot.models.dilated_cnn: receptive field, padding, config checks, the scan window."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_families import make_dilated_cnn_dir, random_dna

from genaannot.models import load_model
from genaannot.models.base import ModelError
from genaannot.models.dilated_cnn import DilatedCNNConfig, parse_blocks
from genaannot.models.families import TrainError
from genaannot.readout import resolve_readout


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_dilated_cnn_dir(tmp_path_factory.mktemp("cnn") / "m", blocks="3:1x2,5:3x1")


def test_receptive_field_is_what_the_config_says(tiny):
    """Changing one base moves outputs exactly within +-(field - 1)/2 of it, never beyond."""
    model = load_model(tiny, device="cpu")
    field = model.info.extra["receptive_field_bp"]
    assert field == 1 + 2 * (2 * 1 * 2 + 4 * 3 * 1) == 33
    half = (field - 1) // 2
    seq = random_dna(200, seed=3)
    for pos in (0, 57, 100, 199):
        alt = seq[:pos] + ("A" if seq[pos] != "A" else "C") + seq[pos + 1:]
        a, b = (p.logits for p in model.predict([seq, alt]))
        moved = np.nonzero(np.abs(a - b).max(axis=1) > 0)[0]
        assert moved.min() >= pos - half and moved.max() <= pos + half
        assert pos in moved  # the base itself is read


def test_padding_in_a_batch_reads_as_the_end_of_an_input_alone(tiny):
    model = load_model(tiny, device="cpu")
    seqs = [random_dna(n, seed=n) for n in (7, 64, 150)]
    together = model.predict(seqs, batch_size=3)
    for s, got in zip(seqs, together, strict=True):
        alone = model.predict([s], batch_size=1)[0]
        np.testing.assert_allclose(got.logits, alone.logits, rtol=1e-5, atol=1e-6)


def test_lowercase_and_n_are_read(tiny):
    model = load_model(tiny, device="cpu")
    s = random_dna(80, seed=1)
    up, low = model.predict([s, s.lower()])
    np.testing.assert_array_equal(up.logits, low.logits)
    withn = model.predict([s[:40] + "N" * 5 + s[45:]])[0]
    assert withn.logits.shape == up.logits.shape and not np.allclose(withn.logits[40:45], up.logits[40:45])


def test_the_checkpoint_sets_the_scan_window(tiny, tmp_path):
    model = load_model(tiny, device="cpu")
    assert model.info.window_tokens == json.loads((tiny / "config.json").read_text())["window_tokens"]
    r = resolve_readout("splice", model.info)
    assert r.window_tokens == model.info.window_tokens
    assert resolve_readout("splice", model.info, window_tokens=100).window_tokens == 100
    assert load_model(tiny, device="cpu", window_tokens=300).info.window_tokens == 300


def test_fresh_stores_a_window_that_covers_half_the_field_at_half_overlap():
    from genaannot.models import dilated_cnn
    from genaannot.models.families import ArchConfig, HeadSpec

    head = HeadSpec("token", ("none", "acceptor", "donor"), "multi_label_classification")
    setup = dilated_cnn.fresh(head=head, tokenizer=None, window_tokens=100, arch=ArchConfig(), options={})
    field = setup.config["receptive_field_bp"]
    assert field == 401 and setup.config["window_tokens"] == 800  # a quarter window = 200 = half the field
    big = dilated_cnn.fresh(head=head, tokenizer=None, window_tokens=1000, arch=ArchConfig(), options={})
    assert big.config["window_tokens"] == 1000


@pytest.mark.parametrize(("text", "want"), [("11:1x4,11:4x4", ((11, 1, 4), (11, 4, 4))), ("3:2x1", ((3, 2, 1),))])
def test_parse_blocks(text, want):
    assert parse_blocks(text) == want


@pytest.mark.parametrize("text", ["11:1", "4:1x1", "11:0x2", "a:bxc", ""])
def test_parse_blocks_refuses(text):
    with pytest.raises(TrainError, match="dilated_cnn: blocks part"):
        parse_blocks(text)


@pytest.mark.parametrize(("edit", "match"), [
    ({"blocks": [[4, 1, 1]]}, "every kernel must be odd"),
    ({"blocks": []}, "blocks must be a non-empty list"),
    ({"blocks": [[3, 1]]}, "blocks must be a non-empty list"),
    ({"channels": "8"}, "channels must be a whole number"),
    ({"architectures": ["BertForMaskedLM"]}, "architectures must be one of"),
    ({"vocab_size": 9}, "vocab_size 9"),
])
def test_bad_configs_are_refused_naming_the_file(tiny, tmp_path, edit, match):
    import shutil

    d = tmp_path / "bad"
    shutil.copytree(tiny, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(edit)
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=match) as err:
        load_model(d, device="cpu")
    assert "config.json" in str(err.value)


def test_unknown_options_are_refused():
    from genaannot.models import dilated_cnn
    from genaannot.models.families import ArchConfig, HeadSpec

    head = HeadSpec("token", ("none", "acceptor", "donor"), "multi_label_classification")
    with pytest.raises(TrainError, match="unknown training option"):
        dilated_cnn.fresh(head=head, tokenizer=None, window_tokens=10, arch=ArchConfig(), options={"kernel": 3})
    with pytest.raises(TrainError, match="channels"):
        dilated_cnn.fresh(head=head, tokenizer=None, window_tokens=10, arch=ArchConfig(), options={"channels": "x"})


def test_config_round_trip():
    cfg = DilatedCNNConfig.from_dict({"channels": 4, "blocks": [[3, 1, 2]], "num_labels": 3})
    assert cfg.receptive_field == 9 and cfg.num_labels == 3 and cfg.window_tokens == 2000
