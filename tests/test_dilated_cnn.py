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


# --------------------------------------------------------------------------- ensembles


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _meta(directory, **edits):
    meta = {"task": "splice", "labels": ["none", "acceptor", "donor"], "site_convention": "exon",
            "train_regions": ["c1:1-100"], "valid_regions": ["c2:1-100"], "test_regions": ["c3:1-100"], **edits}
    (directory / "genaannot.json").write_text(json.dumps(meta))
    return directory


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    base = tmp_path_factory.mktemp("members")
    a = _meta(make_dilated_cnn_dir(base / "a", blocks="3:1x2,5:3x1", seed=1))
    b = _meta(make_dilated_cnn_dir(base / "b", channels=4, blocks="5:1x1", seed=2))
    return a, b


@pytest.mark.parametrize("combine", ["probability", "logit"])
def test_an_ensemble_is_the_mean_of_its_members(members, tmp_path, combine):
    from genaannot.pipeline.ensemble import ensemble_models

    run = ensemble_models(members=list(members), output=tmp_path / "e", combine=combine)
    ens = load_model(run.model_dir, device="cpu")
    parts = [load_model(m, device="cpu") for m in members]
    assert ens.info.family == "dilated_cnn" and ens.info.n_params == sum(p.info.n_params for p in parts)
    assert ens.info.extra["combine"] == combine and len(ens.info.extra["members"]) == 2
    assert ens.info.extra["receptive_field_bp"] == max(p.info.extra["receptive_field_bp"] for p in parts) == 33
    assert ens.info.window_tokens == max(p.info.window_tokens for p in parts)
    seqs = [random_dna(n, seed=n) for n in (9, 70, 130)]
    got = [p.logits for p in ens.predict(seqs, batch_size=3)]
    each = [[p.logits for p in m.predict(seqs, batch_size=3)] for m in parts]
    for i, g in enumerate(got):
        if combine == "logit":
            np.testing.assert_allclose(g, (each[0][i] + each[1][i]) / 2, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_allclose(_sig(g), (_sig(each[0][i]) + _sig(each[1][i])) / 2, rtol=1e-5, atol=1e-6)
    # a member's output alone is not the ensemble's (the test can fail)
    assert not np.allclose(_sig(got[1]), _sig(each[0][1]), atol=1e-3)
    meta = json.loads((run.model_dir / "genaannot.json").read_text())
    assert meta["site_convention"] == "exon" and meta["valid_regions"] == ["c2:1-100"]
    assert [m["source"] for m in meta["ensemble"]["members"]] == [str(m) for m in members]
    assert all(len(m["weights_sha256"]) == 64 for m in meta["ensemble"]["members"])
    assert "thresholds" not in meta


def test_a_softmax_sequence_ensemble_averages_probabilities(tmp_path):
    from genaannot.pipeline.ensemble import ensemble_models

    labels = ("background", "promoter")
    a = make_dilated_cnn_dir(tmp_path / "a", head="sequence", labels=labels, seed=3)
    b = make_dilated_cnn_dir(tmp_path / "b", head="sequence", labels=labels, blocks="5:2x1", seed=4)
    ens = load_model(ensemble_models(members=[a, b], output=tmp_path / "e").model_dir, device="cpu")
    seqs = [random_dna(n, seed=n) for n in (40, 90)]

    def soft(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    got = soft(np.stack([p.logits for p in ens.predict(seqs)]))
    each = [soft(np.stack([p.logits for p in load_model(m, device="cpu").predict(seqs)])) for m in (a, b)]
    np.testing.assert_allclose(got, (each[0] + each[1]) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, each[0], atol=1e-4)


def test_an_ensemble_keeps_the_family_contract(members, tmp_path):
    """Spans, batch independence, the packed scan path and strict loading, as every family."""
    from family_contract import (
        check_batch_independence,
        check_content_offset,
        check_packed_windows,
        check_predict_spans,
        check_strict_loading,
    )

    from genaannot.pipeline.ensemble import ensemble_models

    path = ensemble_models(members=list(members), output=tmp_path / "e").model_dir
    model = load_model(path, device="cpu")
    for check in (check_predict_spans, check_batch_independence, check_content_offset, check_packed_windows):
        check("dilated_cnn ensemble", model)
    check_strict_loading("dilated_cnn ensemble", path, tmp_path)


def test_integrated_gradients_reads_an_ensemble_through_one_input(members, tmp_path):
    from genaannot.interpret import (
        centered_window,
        find_input_embeddings,
        integrated_gradients,
        resolve_target,
    )
    from genaannot.pipeline.ensemble import ensemble_models
    from genaannot.tasks import get_task

    model = load_model(ensemble_models(members=list(members), output=tmp_path / "e").model_dir, device="cpu")
    assert find_input_embeddings(model.network, model.tokenizer.vocab_size) is model.network.get_input_embeddings()
    chrom = random_dna(400, seed=9)
    w = centered_window(fetch=lambda c, s, e: chrom[s:e], chrom="c1", chrom_size=400, focus=(150, 170),
                        tokenizer=model.tokenizer, window_tokens=64, strand="+")
    att = integrated_gradients(model, w, resolve_target(model, get_task("splice")), site=160, steps=64)
    delta = att.f_input - att.f_baseline
    assert abs(delta) > 1e-4 and att.completeness_error < 0.01 * abs(delta) + 1e-6


def test_members_that_do_not_belong_together_are_refused(members, tmp_path):
    from genaannot.pipeline.ensemble import EnsembleError, ensemble_models

    a, b = members
    with pytest.raises(EnsembleError, match="at least two"):
        ensemble_models(members=[a], output=tmp_path / "x")
    with pytest.raises(EnsembleError, match="given twice"):
        ensemble_models(members=[a, a], output=tmp_path / "x")
    with pytest.raises(EnsembleError, match="is member"):
        ensemble_models(members=[a, b], output=a)
    import shutil

    other = tmp_path / "other"
    shutil.copytree(b, other)
    _meta(other, site_convention="intron")
    with pytest.raises(EnsembleError, match="site_convention 'intron' differs"):
        ensemble_models(members=[a, other], output=tmp_path / "x")
    _meta(other, train_regions=["c1:1-100", "c2:50-80"])
    with pytest.raises(EnsembleError, match=r"trained on c2:50-80, which .* holds out \(valid c2:1-100\)"):
        ensemble_models(members=[a, other], output=tmp_path / "x")
    labels = make_dilated_cnn_dir(tmp_path / "labels", labels=("none", "acceptor"), seed=5)
    with pytest.raises(ModelError, match="member 2: id2label"):
        ensemble_models(members=[make_dilated_cnn_dir(tmp_path / "plain", seed=6), labels], output=tmp_path / "x")
    ens = ensemble_models(members=[a, b], output=tmp_path / "e").model_dir
    with pytest.raises(ModelError, match="member 1 is an ensemble"):
        ensemble_models(members=[ens, b], output=tmp_path / "x")
    with pytest.raises(EnsembleError, match="already holds a model"):
        ensemble_models(members=[a, b], output=ens)
    assert not (tmp_path / "x").exists()


def test_an_ensemble_is_not_trained_further(members, tmp_path):
    from genaannot.models.dilated_cnn import from_checkpoint
    from genaannot.models.families import HeadSpec
    from genaannot.pipeline.ensemble import ensemble_models

    path = ensemble_models(members=list(members), output=tmp_path / "e").model_dir
    config = json.loads((path / "config.json").read_text())
    with pytest.raises(TrainError, match="ensemble of 2 dilated CNNs; train a member"):
        from_checkpoint(path, config=config, head=HeadSpec("token", ("none", "acceptor", "donor"),
                                                           "multi_label_classification"),
                        tokenizer=None, window_tokens=16, options={})


def test_the_cli_writes_an_ensemble_that_inspect_describes(members, tmp_path):
    from click.testing import CliRunner

    from genaannot.cli import main

    out = tmp_path / "e"
    r = CliRunner().invoke(main, ["models", "ensemble", *map(str, members), "-o", str(out), "--combine", "logit"])
    assert r.exit_code == 0, r.output
    assert "2 members, combine logit" in r.output and "--write-thresholds" in r.output
    r = CliRunner().invoke(main, ["models", "inspect", str(out)])
    assert r.exit_code == 0, r.output
    assert "combine" in r.output and "members             2: 33-bp field (6 channels), 9-bp field (4 channels)" in r.output
    r = CliRunner().invoke(main, ["models", "ensemble", str(members[0]), "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "at least two members" in r.output
