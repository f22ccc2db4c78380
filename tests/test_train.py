"""Tokenizers, a few training steps, checkpoint load/predict, exact resume, promoter training."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from toy_genome import char_tok, toy_data

from genaannot.io.tokenizers import read_bpe_tokenizer
from genaannot.labels import TASK_SPECS
from genaannot.regions import Interval
from genaannot.train import (
    ArchConfig,
    TrainConfig,
    build_fresh,
    train_bpe_tokenizer_json,
    train_model,
)


def test_char_tokenizer_is_single_base(tmp_path):
    tok = char_tok(tmp_path)
    enc = tok.encode("acgtNR")
    assert enc.spans.tolist() == [[i, i + 1] for i in range(6)]
    assert enc.ids[-1] == tok.unk_id and tok.max_token_bp == 1


def test_bpe_tokenizer_trains(tmp_path):
    genome, _ = toy_data()
    chunks = [genome.fetch("c1", s, s + 500) for s in range(0, 6000, 500)]
    p = tmp_path / "tokenizer.json"
    p.write_text(train_bpe_tokenizer_json(chunks, vocab_size=64))
    tok = read_bpe_tokenizer(p)
    enc = tok.encode(genome.fetch("c2", 0, 300))
    assert tok.vocab_size == 64 and len(enc) < 300 and enc.spans[-1, 1] == 300


def _setup(tmp_path):
    tok = char_tok(tmp_path)
    return build_fresh(tokenizer=tok, tokenizer_kind="char", spec=TASK_SPECS["splice"],
                       arch=ArchConfig(hidden_size=16, layers=1, heads=2), window_tokens=62)


def _train(tmp_path, out, *, resume=False, setup=None, site_convention="exon"):
    genome, ann = toy_data()
    torch.manual_seed(0)
    cfg = TrainConfig(task="splice", window_tokens=62, steps=4, batch_size=4, lr=1e-3, seed=7, device="cpu",
                      save_every=2, eval_every=2, valid_windows=8, site_convention=site_convention)
    return train_model(genome=genome, annotation=ann, setup=setup or _setup(tmp_path), config=cfg,
                       train_regions=[Interval("c1", 0, 6000)], valid_regions=[Interval("c2", 0, 6000)],
                       model_dir=out, resume=resume, progress=False)


def test_train_checkpoint_loads_and_predicts(tmp_path):
    from genaannot import load_model

    res = _train(tmp_path, tmp_path / "m")
    assert res.steps == 4 and len(res.history) == 2 and res.window_bp == 62
    model = load_model(tmp_path / "m", device="cpu")
    assert model.info.task == "splice"
    assert model.info.labels == ("none", "acceptor", "donor")
    with pytest.warns(UserWarning, match="1 input\\(s\\) longer than the model's 62 content tokens were cut"):
        pred = model.predict(["ACGT" * 20])[0]
    assert pred.logits.shape == (62, 3)  # cut at the model's 62 content tokens
    assert (tmp_path / "m" / "checkpoints" / "last").read_text().strip() == "step-0000004"
    # labelled in SpliceAI's convention by default, and it says so
    meta = model.info.extra["genaannot"]
    assert meta["site_convention"] == "exon" and meta["train"]["site_convention"] == "exon"
    assert meta["site_definitions"]["donor"] == "last exon base before the intron (transcript orientation)"


def test_resume_refuses_another_site_convention(tmp_path):
    from genaannot.train import TrainError

    _train(tmp_path, tmp_path / "m", site_convention="intron")
    with pytest.raises(TrainError, match="labelled in site convention 'intron'.*--site-convention intron"):
        _train(tmp_path, tmp_path / "m", resume=True)


def test_resume_reproduces_uninterrupted_run(tmp_path):
    import shutil

    _train(tmp_path, tmp_path / "a")
    _train(tmp_path, tmp_path / "b")
    ck = tmp_path / "b" / "checkpoints"
    shutil.rmtree(ck / "step-0000004")  # as if killed after step 2
    (ck / "last").write_text("step-0000002\n")
    _train(tmp_path, tmp_path / "b", resume=True)
    wa = load_file(tmp_path / "a" / "checkpoints" / "step-0000004" / "model.safetensors")
    wb = load_file(ck / "step-0000004" / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)


def test_resume_without_checkpoint_fails(tmp_path):
    from genaannot.train import TrainError

    with pytest.raises(TrainError, match="no checkpoint"):
        _train(tmp_path, tmp_path / "empty", resume=True)


def test_promoter_training_and_evaluation(tmp_path):
    from genaannot import load_model
    from genaannot.evaluate import evaluate_promoter

    genome, ann = toy_data()
    tok = char_tok(tmp_path)
    setup = build_fresh(tokenizer=tok, tokenizer_kind="char", spec=TASK_SPECS["promoter"],
                        arch=ArchConfig(hidden_size=16, layers=1, heads=2), window_tokens=62)
    cfg = TrainConfig(task="promoter", window_tokens=62, steps=3, batch_size=4, seed=0, device="cpu",
                      save_every=3, eval_every=3, valid_windows=8)
    train_model(genome=genome, annotation=ann, setup=setup, config=cfg, train_regions=[Interval("c1", 0, 6000)],
                valid_regions=[Interval("c2", 0, 6000)], model_dir=tmp_path / "p", progress=False)
    model = load_model(tmp_path / "p", device="cpu")
    assert model.info.task == "promoter" and model.info.head == "sequence"
    rep = evaluate_promoter(model, genome=genome, annotation=ann, regions=[Interval("c2", 0, 6000)])
    m = rep.metrics["promoter"]
    assert m["n_pos"] == len(ann.sites("c2", "tss")) and m["n_neg"] == m["n_pos"]
    assert 0.0 <= m["auroc"] <= 1.0 and 0.0 <= m["f1"] <= 1.0


def test_extend_positions_grows_a_base_models_position_table(tmp_path):
    from genaannot.models.gena_bert import save_pretrained
    from genaannot.train import TrainError, build_from_base

    base = _setup(tmp_path)  # window 62: 64 positions
    save_pretrained(base.network, tmp_path / "base", tokenizer=base.tokenizer, config=base.config, metadata={})
    spec = TASK_SPECS["splice"]
    with pytest.raises(TrainError, match="does not fit"):
        build_from_base(str(tmp_path / "base"), spec=spec, tokenizer=None, window_tokens=126)
    grown = build_from_base(str(tmp_path / "base"), spec=spec, tokenizer=None, window_tokens=126, extend_positions=True)
    old = base.network.bert.embeddings.position_embeddings.weight.detach()
    new = grown.network.bert.embeddings.position_embeddings.weight.detach()
    assert grown.config.max_position_embeddings == 128 and new.shape == (128, old.shape[1])
    assert torch.equal(new[:64], old)  # the trained rows are kept
    assert new[64:].abs().sum() > 0 and not torch.equal(new[64:128], new[:64])  # new rows: the sin/cos table
    assert grown.base_head == "kept"
    # every other weight is the base model's
    a, b = base.network.state_dict(), grown.network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if "position_embeddings" not in k)
    # a window that fits needs no extension and changes nothing
    same = build_from_base(str(tmp_path / "base"), spec=spec, tokenizer=None, window_tokens=62, extend_positions=True)
    assert same.config.max_position_embeddings == 64
