"""GENA BERT: parity with upstream GENA-LM outputs, and self-contained round trips."""

from __future__ import annotations

import json
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from tinymodels import assert_close, make_gena_dir, parity_fixture, random_dna, randomize_

from genaannot.io.tokenizers import load_tokenizer
from genaannot.models import load_model
from genaannot.models.gena_bert import GenaBertConfig, build_network, load, save_pretrained

BERT_MODELS = ["bert_preln_nolastln_mlm", "bert_preln_lastln_seqcls", "bert_preln_tokcls_splice", "bert_preln_seqcls_multilabel"]


@pytest.fixture(scope="module")
def fixture(shared):
    return parity_fixture(shared)


def _fixture_ids(model, seq: str) -> np.ndarray:
    enc = model.tokenizer.encode(seq)
    return np.concatenate([[model.tokenizer.cls_id], enc.ids[:510], [model.tokenizer.sep_id]])


@pytest.mark.parametrize("name", BERT_MODELS)
def test_parity_bert(fixture, name):
    root, exp, cases = fixture
    model = load_model(root / "models" / name, device="cpu")
    assert model.info.max_tokens == 510
    for case, seq in cases.items():
        key = f"{name}/{case}/"
        ids = _fixture_ids(model, seq)
        np.testing.assert_array_equal(ids, exp[key + "input_ids"])
        with torch.no_grad():
            logits, enc = model.network.forward_full(
                torch.from_numpy(ids)[None], torch.ones(1, len(ids), dtype=torch.long), output_hidden_states=True
            )
        logits = logits[0].numpy()
        if model.info.head == "mlm":
            hs = torch.stack(enc.hidden_states)[:, 0].numpy()
            assert_close(hs, exp[key + "hidden_states"], key + "hidden_states")
            assert_close(enc.last_hidden_state[0], exp[key + "last_hidden_state"], key + "last_hidden_state")
            assert_close(torch.logsumexp(torch.from_numpy(logits), -1), exp[key + "logits_lse"], key + "lse")
            assert_close(logits[:, exp[key + "logits_col_ids"]], exp[key + "logits_cols"], key + "cols")
            # argmax only where the top-2 gap exceeds the tolerance
            top2 = np.sort(logits, axis=-1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > 1e-3
            np.testing.assert_array_equal(logits.argmax(-1)[clear], exp[key + "logits_argmax"][clear])
            if key + "logits_full_rows" in exp:
                rows = exp[key + "logits_full_row_ids"]
                assert_close(logits[rows], exp[key + "logits_full_rows"], key + "full rows")
        else:
            assert_close(logits, exp[key + "logits"], key + "logits")
        # public path: content rows (token/mlm) or the sequence logits
        n_drop = max(0, len(model.tokenizer.encode(seq)) - 510)
        with pytest.warns(UserWarning, match="1 input\\(s\\) longer") if n_drop else nullcontext():
            pred = model.predict([seq])[0]
        if model.info.head == "sequence":
            assert_close(pred.logits, exp[key + "logits"], key + "predict")
            assert pred.spans is None
        elif model.info.head == "token":
            assert_close(pred.logits, exp[key + "logits"][1:-1], key + "predict")
            assert pred.spans.shape == (len(ids) - 2, 2)
        else:
            assert pred.logits.shape == (len(ids) - 2, model.tokenizer.vocab_size)
            assert_close(pred.logits[:, exp[key + "logits_col_ids"]], exp[key + "logits_cols"][1:-1], key + "predict")
        assert pred.n_tokens_dropped == n_drop


def test_parity_seqcls_bin_and_safetensors(fixture):
    root, exp, cases = fixture
    d = root / "models" / "bert_preln_lastln_seqcls"
    cfg = json.loads((d / "config.json").read_text())
    outs = []
    for weights in ("pytorch_model.bin", "model.safetensors"):
        model = load(d, config=cfg, weights=d / weights)
        model.network.eval()
        outs.append(model)
        for case, seq in cases.items():
            ids = torch.from_numpy(_fixture_ids(model, seq))[None]
            with torch.no_grad():
                got = model.network(ids, torch.ones_like(ids))[0]
            assert_close(got, exp[f"bert_preln_lastln_seqcls/{case}/logits"], weights + case)
    assert outs[0].network.config.has_last_layer_ln  # absent last_layer_norm -> pre_layer_norm
    # the two files hold the same weights
    a, b = (m.network.state_dict() for m in outs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_batched_predict_equals_single(fixture):
    root, exp, cases = fixture
    model = load_model(root / "models" / "bert_preln_tokcls_splice", device="cpu")
    seqs = list(cases.values())
    with pytest.warns(UserWarning, match="were cut"):  # a fixture case is longer than the 510 tokens
        batched = model.predict(seqs, batch_size=4)
        singles = [model.predict([seq])[0] for seq in seqs]
    assert any(b.n_tokens_dropped for b in batched)
    for single, b in zip(singles, batched):
        np.testing.assert_allclose(b.logits, single.logits, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- self-contained


@pytest.mark.parametrize("head", ["token", "sequence", "mlm"])
def test_roundtrip_save_load(tmp_path, head):
    d = make_gena_dir(tmp_path / head, head=head, num_labels=4, seed=3, metadata={"task": "splice"})
    assert (d / "genaannot.json").is_file() and (d / "model.safetensors").is_file()
    model = load_model(d, device="cpu")
    assert model.info.head == head and model.info.family == "gena_bert"
    assert model.info.task == "splice"
    assert model.info.max_tokens == 128
    # save again from the loaded network: identical tensors and outputs
    cfg = model.network.config
    d2 = save_pretrained(model.network, tmp_path / "again", tokenizer=model.tokenizer, config=cfg)
    model2 = load_model(d2, device="cpu")
    sd1, sd2 = model.network.state_dict(), model2.network.state_dict()
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    seqs = [random_dna(400, seed=1), random_dna(90, seed=2) + "NNNNNNNNNNNN" + "acgtRYK"]
    with pytest.warns(UserWarning, match="1 input\\(s\\) longer than the model's 128 content tokens were cut"):
        a, b = model.predict(seqs), model2.predict(seqs)  # the 400-bp input is cut, by both alike
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.logits, y.logits)
    if head == "mlm":  # tied decoder is stored once and re-tied
        net = model.network
        assert net.cls.predictions.decoder.weight is net.bert.embeddings.word_embeddings.weight


def test_padding_does_not_change_results(tmp_path):
    model = load_model(make_gena_dir(tmp_path / "m", head="token"), device="cpu")
    seqs = [random_dna(n, seed=n) for n in (50, 300, 120)]
    batched = model.predict(seqs, batch_size=3)
    for s, b in zip(seqs, batched):
        np.testing.assert_allclose(b.logits, model.predict([s])[0].logits, atol=1e-5)


def test_post_ln_and_activations(tmp_path):
    tok = load_tokenizer(make_gena_dir(tmp_path / "t", head="token").parent / ".t-tokenizer")
    ids = torch.tensor([[1, 5, 6, 7, 8, 2]])
    outputs = {}
    for act in ("gelu", "gelu_new", "relu"):
        cfg = GenaBertConfig(vocab_size=tok.vocab_size, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16, max_position_embeddings=32, hidden_act=act,
                             pre_layer_norm=False, id2label={0: "a", 1: "b"})
        net = build_network(cfg, head="sequence")
        randomize_(net, seed=1)
        assert "bert.encoder.layer.0.attention.output.LayerNorm.weight" in net.state_dict()
        assert "bert.encoder.layer.0.pre_attention_ln.weight" not in net.state_dict()
        d = save_pretrained(net, tmp_path / act, tokenizer=tok, config=cfg)
        again = load_model(d, device="cpu").network
        net.eval()
        with torch.no_grad():
            outputs[act] = net(ids)
            assert torch.equal(outputs[act], again(ids))
    # the same weights (same seed) under each activation: the configured activation is used
    assert not torch.allclose(outputs["gelu"], outputs["relu"])
    assert not torch.equal(outputs["gelu"], outputs["gelu_new"])  # exact erf vs tanh approximation


def test_last_layer_norm_semantics():
    base = {"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2}
    assert GenaBertConfig.from_dict({**base, "pre_layer_norm": True}).has_last_layer_ln
    assert not GenaBertConfig.from_dict({**base, "pre_layer_norm": True, "last_layer_norm": False}).has_last_layer_ln
    assert not GenaBertConfig.from_dict({**base}).has_last_layer_ln  # post-LN never has one
    cfg = GenaBertConfig.from_dict({**base, "pre_layer_norm": True, "layer_norm_eps": 1e-5, "num_labels": 3})
    assert cfg.labels == ("LABEL_0", "LABEL_1", "LABEL_2") and cfg.layer_norm_eps == 1e-5
    again = GenaBertConfig.from_dict(cfg.to_dict())
    assert again.has_last_layer_ln and again.labels == cfg.labels


def test_train_mode_gradients_and_dropout(tmp_path):
    cfg = GenaBertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=32, pre_layer_norm=True,
                         hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5, id2label={0: "a", 1: "b", 2: "c"})
    net = build_network(cfg, head="token")
    batch = net.collate([np.array([5, 6, 7, 8]), np.array([9, 10])])
    net.train()
    torch.manual_seed(0)
    a = net(**batch)
    b = net(**batch)
    assert not torch.equal(a, b)  # dropout active
    a.sum().backward()
    assert net.bert.embeddings.word_embeddings.weight.grad is not None
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(**batch), net(**batch))
