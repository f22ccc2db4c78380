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


@pytest.mark.parametrize("family", ["hyena", "rmt"])
def test_resume_reproduces_uninterrupted_run_of_other_families(tmp_path, family):
    """Resuming reads the step's model back through its family (HyenaDNA: shared Sin frequency
    stored once; RMT: trainer .pth + rmt.json) and ends bit-identical to an uninterrupted run."""
    import shutil

    from tiny_families import make_hyena_dir
    from tinymodels import make_gena_dir

    from genaannot.io.weights import read_weights
    from genaannot.train import build_from_base, build_resumed

    if family == "hyena":
        base, options = make_hyena_dir(tmp_path / "lm", head="lm", d_model=8, max_seq_len=70, filter_order=8), {}
    else:
        base = make_gena_dir(tmp_path / "mlm", head="mlm", hidden=16, layers=1, heads=2, max_positions=32)
        options = {"num_mem_tokens": 2}
    genome, ann = toy_data()
    cfg = TrainConfig(task="splice", window_tokens=50, steps=4, batch_size=2, lr=1e-3, seed=3, device="cpu",
                      save_every=2, eval_every=2, valid_windows=4)

    def run(out, *, resume=False):
        torch.manual_seed(0)
        setup = build_from_base(str(base), spec=TASK_SPECS["splice"], tokenizer=None, window_tokens=50, family=family,
                                options=options)
        if resume:
            setup = build_resumed(out, spec=TASK_SPECS["splice"])
            assert setup.family == family and setup.base_head == "kept"
        train_model(genome=genome, annotation=ann, setup=setup, config=cfg, train_regions=[Interval("c1", 0, 6000)],
                    valid_regions=[Interval("c2", 0, 6000)], model_dir=out, resume=resume, progress=False)

    run(tmp_path / "a")
    run(tmp_path / "b")
    ck = tmp_path / "b" / "checkpoints"
    shutil.rmtree(ck / "step-0000004")  # as if killed after step 2
    (ck / "last").write_text("step-0000002\n")
    run(tmp_path / "b", resume=True)
    wa = read_weights(tmp_path / "a" / "checkpoints" / "step-0000004" / ("model_best.pth" if family == "rmt" else ""))
    wb = read_weights(ck / "step-0000004" / ("model_best.pth" if family == "rmt" else ""))
    assert wa.keys() == wb.keys() and len(wa) > 10
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)


def test_a_family_trains_only_from_its_bases(tmp_path):
    from tiny_families import make_hyena_dir

    from genaannot.train import TrainError, build_from_base

    base = make_hyena_dir(tmp_path / "lm", head="lm", d_model=8, max_seq_len=70, filter_order=8)
    spec = TASK_SPECS["splice"]
    with pytest.raises(TrainError, match="is a hyena checkpoint; rmt trains from rmt, gena_bert checkpoints"):
        build_from_base(str(base), spec=spec, tokenizer=None, window_tokens=30, family="rmt")
    with pytest.raises(TrainError, match="unknown model family 'gpt'"):
        build_from_base(str(base), spec=spec, tokenizer=None, window_tokens=30, family="gpt")
    with pytest.raises(TrainError, match="--window-tokens 80 does not fit .*hyena: at most 69 content tokens"):
        build_from_base(str(base), spec=spec, tokenizer=None, window_tokens=80)
    with pytest.raises(TrainError, match="hyena: unknown training option\\(s\\) num_mem_tokens"):
        build_from_base(str(base), spec=spec, tokenizer=None, window_tokens=30, options={"num_mem_tokens": 2})


@pytest.mark.parametrize(("field", "value"), [
    ("batch_size", 0), ("window_tokens", -1), ("steps", 0), ("epochs", 0.0), ("lr", 0.0), ("lr", float("nan")),
    ("pos_weight", -1.0), ("warmup_fraction", 1.5), ("site_fraction", -0.1), ("eval_every", 0), ("batch_size", 2.5),
    ("valid_windows", True),
])
def test_train_config_refuses_what_the_cli_would(field, value):
    from genaannot.train import TrainConfig, TrainError

    with pytest.raises(TrainError, match=f"TrainConfig.{field} must be"):
        TrainConfig(**{field: value})
    TrainConfig(steps=None, epochs=0.5)  # epochs instead of steps is fine
