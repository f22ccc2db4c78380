"""HyenaDNA: parity with the upstream hub port (../shared fixtures) and self-contained checks."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_families import make_hyena_dir, random_dna

from genaannot.models import ModelError, load_model
from genaannot.models.hyena import fftconv
from genaannot.models.hyena import load as load_hyena
from genaannot.tokenize import HYENA_CHAR_VOCAB, CharTokenizer, SequenceStats, TokenizerError

MODELS = ("hyenadna_lm", "hyenadna_seqcls")


# --------------------------------------------------------------------------- helpers


def assert_scaled_close(got, exp, what: str, *, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """The fixture README's rule: |got - exp| <= atol * max(1, max|exp|) + rtol * |exp|."""
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    assert got.shape == exp.shape, f"{what}: shape {got.shape} vs {exp.shape}"
    tol = atol * max(1.0, float(np.abs(exp).max(initial=0.0))) + rtol * np.abs(exp)
    bad = np.abs(got - exp) > tol
    assert not bad.any(), f"{what}: {int(bad.sum())} elements off, max |diff| {np.abs(got - exp).max():.3g}"


@pytest.fixture(scope="module")
def fixture(shared: Path):
    root = shared / "fixtures" / "hyena_parity"
    expected = dict(np.load(root / "expected.npz"))
    cases = {c["name"]: c["sequence"] for c in json.loads((root / "cases.json").read_text())}
    return root, expected, cases


@pytest.fixture(scope="module")
def loaded(fixture):
    root, _, _ = fixture
    out = {}
    for name in MODELS:
        d = root / "models" / name
        out[name] = load_hyena(d, config=json.loads((d / "config.json").read_text()))
    return out


def _cases(expected: dict) -> list[str]:
    cases = sorted({k.split("/")[1] for k in expected if k.startswith("tokenizer/") and "batch" not in k})
    assert "long_1600" in cases and len(cases) > 1, cases  # the loops over cases check something
    return cases


# --------------------------------------------------------------------------- fixture parity


def test_tokenizer_ids_exact(fixture):
    _, expected, cases = fixture
    tok = CharTokenizer()
    assert tok.vocab == HYENA_CHAR_VOCAB
    for case in _cases(expected):
        seq = cases[case]
        ids = np.append(tok.encode(seq).ids, tok.sep_id)  # [SEP] appended by collate
        np.testing.assert_array_equal(ids, expected[f"tokenizer/{case}/upper_input_ids"], err_msg=case)
        trunc = np.append(tok.encode(seq).ids[:1025], tok.sep_id)
        np.testing.assert_array_equal(trunc, expected[f"tokenizer/{case}/upper_input_ids_truncated"], err_msg=case)
        # upstream without upper-casing: soft-masked bases become [UNK]; genaannot upper-cases
        asis = expected[f"tokenizer/{case}/asis_input_ids"]
        lower = np.array([c.islower() for c in seq] + [False])
        assert (asis[lower] == tok.unk_id).all()
        np.testing.assert_array_equal(asis[~lower], ids[~lower], err_msg=case)


def test_collate_matches_right_padded_ids(fixture, loaded):
    _, expected, cases = fixture
    net = loaded["hyenadna_lm"].network
    tok = loaded["hyenadna_lm"].tokenizer
    content = [tok.encode(cases["plain_300"]).ids, tok.encode(cases["iupac_600"]).ids]
    batch = net.collate(content)
    np.testing.assert_array_equal(batch["input_ids"].numpy(), expected["tokenizer/batch/rightpad_input_ids"])
    np.testing.assert_array_equal(batch["input_ids"].numpy(), expected["hyenadna_lm/batch_rightpad/input_ids"])
    assert batch["last_index"].tolist() == [300, 600]
    # upstream's tokenizer returns no attention mask, and genaannot's collate builds none either
    # (a causal model with right padding needs none: the [SEP] position is passed instead)
    assert str(expected["tokenizer/batch/returned_keys"]) == "input_ids"
    assert set(batch) == {"input_ids", "last_index"}


@pytest.mark.parametrize("model", MODELS)
def test_filters(fixture, loaded, model):
    _, expected, _ = fixture
    layers = loaded[model].network.hyena.backbone.layers
    with torch.inference_mode():
        k = torch.stack([layer.mixer.filter_fn.filter(1026)[0] for layer in layers])
    assert_scaled_close(k.numpy(), expected[f"{model}/_filters/filter_k"], f"{model} filter_k")


@pytest.mark.parametrize("model", MODELS)
def test_hidden_states_and_mixer_outputs(fixture, loaded, model):
    _, expected, _ = fixture
    net = loaded[model].network
    mixers = []
    hooks = [
        layer.mixer.register_forward_hook(lambda m, a, out: mixers.append(out[0].clone()))
        for layer in net.hyena.backbone.layers
    ]
    try:
        for case in _cases(expected):
            ids = torch.from_numpy(expected[f"{model}/{case}/input_ids"].astype(np.int64))[None]
            mixers.clear()
            with torch.inference_mode():
                last, states = net.hyena.backbone(ids, output_hidden_states=True)
                assert_scaled_close(last[0], expected[f"{model}/{case}/last_hidden_state"], f"{model}/{case} last")
                if model == "hyenadna_lm":
                    hs = torch.stack([s[0] for s in states])
                    assert_scaled_close(hs, expected[f"{model}/{case}/hidden_states"], f"{model}/{case} hidden")
                    assert_scaled_close(torch.stack(mixers), expected[f"{model}/{case}/mixer_out"], f"{case} mixer")
                else:
                    all_pos = net.score(last)[0]
                    assert_scaled_close(all_pos, expected[f"{model}/{case}/logits_all_positions"], f"{case} all")
                    pos = int(net.pool_positions(ids)[0])
                    assert pos == int(expected[f"{model}/{case}/pooled_position"])
    finally:
        for h in hooks:
            h.remove()


@pytest.mark.parametrize("model", MODELS)
def test_logits_through_load_model(fixture, model):
    root, expected, cases = fixture
    m = load_model(root / "models" / model, device="cpu")
    assert m.info.family == "hyena" and m.info.resolution == "base"
    assert m.max_tokens == 1025  # max_seq_len - 1: [SEP] takes the last position
    names = _cases(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long_1600 is cut to the model's capacity
        preds = m.predict([cases[c] for c in names], batch_size=3)
    for case, pred in zip(names, preds):
        exp = expected[f"{model}/{case}/logits"]
        if model == "hyenadna_lm":
            exp = exp[:-1]  # content positions; the row at [SEP] is not a base
        assert_scaled_close(pred.logits, exp, f"{model}/{case} logits")
    long = dict(zip(names, preds))["long_1600"]
    assert long.n_tokens_total == 1600 and long.n_tokens_dropped == 575


@pytest.mark.parametrize("model", MODELS)
def test_left_vs_right_padding(fixture, loaded, model):
    """Upstream pads on the LEFT: with no attention mask and causal filters, the pad
    embeddings flow into the real tokens. genaannot pads on the RIGHT, which a causal model
    never sees. Both upstream batches are reproduced; only the right-padded one equals the
    single-sequence run."""
    _, expected, _ = fixture
    net = loaded[model].network
    single = {}
    for side in ("leftpad", "rightpad"):
        ids = torch.from_numpy(expected[f"{model}/batch_{side}/input_ids"].astype(np.int64))
        with torch.inference_mode():
            out = net(ids)  # no last_index: upstream's pooling rule, argmax(ids == pad) - 1
        assert_scaled_close(out, expected[f"{model}/batch_{side}/logits"], f"{model} {side}")
        if model == "hyenadna_seqcls":
            np.testing.assert_array_equal(net.pool_positions(ids), expected[f"{model}/batch_{side}/pooled_position"])
        single[side] = out
    exp300 = expected[f"{model}/plain_300/logits"]
    if model == "hyenadna_lm":
        right = single["rightpad"][0, :301].numpy()
        left = single["leftpad"][0, -301:].numpy()
    else:
        right, left = single["rightpad"][0].numpy(), single["leftpad"][0].numpy()
    assert_scaled_close(right, exp300, "right padding is exact")
    assert np.abs(left - exp300).max() > 1e-2, "left padding was expected to change the outputs"


def test_over_length_input_is_refused(loaded):
    net = loaded["hyenadna_lm"].network
    with pytest.raises(ModelError, match="exceeds max_seq_len 1026"):
        net(torch.full((1, 1601), 7, dtype=torch.long))


# --------------------------------------------------------------------------- self-contained


def test_char_tokenizer_spans_and_stats():
    tok = CharTokenizer()
    stats = SequenceStats()
    enc = tok.encode("ACgtN-RyU", stats=stats)
    np.testing.assert_array_equal(enc.ids, [7, 8, 9, 10, 11, 6, 6, 6, 6])
    np.testing.assert_array_equal(enc.spans, np.stack([np.arange(9), np.arange(1, 10)], 1))
    assert stats.lowercase == 3 and stats.iupac == {"-": 1, "R": 1, "Y": 1, "U": 1}
    assert len(tok.encode("").ids) == 0
    assert tok.encode("aé").ids.tolist() == [7, 6]


def test_fftconv_is_the_causal_convolution():
    g = torch.Generator().manual_seed(0)
    u, k, skip = torch.randn(2, 3, 50, generator=g), torch.randn(3, 50, generator=g), torch.randn(3, generator=g)
    got = fftconv(u, k, skip).double().numpy()
    un, kn = u.double().numpy(), k.double().numpy()
    ref = np.stack([[np.convolve(un[b, c], kn[c])[:50] + skip[c].item() * un[b, c] for c in range(3)] for b in range(2)])
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_chunked_fft_equals_full_fft_on_a_long_input():
    """200k positions, channels in groups of 1 under a tiny budget vs all at once."""
    g = torch.Generator().manual_seed(1)
    length = 200_000
    u, k, skip = torch.randn(1, 4, length, generator=g), torch.randn(4, length, generator=g) / 100, torch.randn(4)
    full = fftconv(u, k, skip, max_bytes=None)
    chunked = fftconv(u, k, skip, max_bytes=1)
    assert torch.allclose(chunked, full, atol=1e-5 * float(full.abs().max()), rtol=0)


def test_positionwise_mlp_chunking_is_exact(tmp_path):
    d = make_hyena_dir(tmp_path / "m", head="lm", max_seq_len=600, seed=5)
    net = load_hyena(d, config=json.loads((d / "config.json").read_text())).network
    ids = torch.from_numpy(CharTokenizer().encode(random_dna(500, seed=2)).ids)[None]
    with torch.inference_mode():
        ref = net(ids)
        for layer in net.hyena.backbone.layers:
            layer.mlp_chunk = 64
        chunked = net(ids)
    assert torch.allclose(ref, chunked, atol=1e-6)


@pytest.mark.parametrize("head", ["token", "sequence", "lm"])
def test_tiny_checkpoint_loads_and_right_padding_is_exact(tmp_path, head):
    d = make_hyena_dir(tmp_path / head, head=head, max_seq_len=258, seed=11)
    m = load_model(d, device="cpu")
    assert m.info.head == head and m.info.max_tokens == 257
    assert m.info.architecture == json.loads((d / "config.json").read_text())["architectures"][0]
    seqs = [random_dna(n, seed=n) for n in (257, 40, 3, 120)]
    batched = m.predict(seqs, batch_size=4)
    for seq, b in zip(seqs, batched):
        single = m.predict([seq])[0]
        np.testing.assert_allclose(b.logits, single.logits, atol=1e-5)
        if head != "sequence":
            assert b.logits.shape[0] == len(seq)
    # causal: a prefix gives the same per-base outputs as the full sequence
    if head != "sequence":
        full, prefix = m.predict([seqs[0], seqs[0][:100]])
        np.testing.assert_allclose(prefix.logits, full.logits[:100], atol=1e-5)


def test_a_label_count_in_config_must_agree_with_the_classifier(tmp_path):
    # GENA and ModernBERT refuse the mismatch; HyenaDNA cut or padded the names to fit
    d = make_hyena_dir(tmp_path / "s", head="sequence", max_seq_len=258, seed=11)
    cfg = json.loads((d / "config.json").read_text())
    n = len(load_model(d, device="cpu").info.labels)
    cfg.update(num_labels=n + 1, id2label={str(i): f"l{i}" for i in range(n + 1)})
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=f"config.json has {n + 1} labels, score.weight has {n}"):
        load_model(d, device="cpu")


def test_tokenizer_config_must_agree_with_the_fixed_vocabulary(tmp_path):
    d = make_hyena_dir(tmp_path / "h", head="token", max_seq_len=34, seed=3)
    tc = json.loads((d / "tokenizer_config.json").read_text())
    ok = {str(i): {"content": t} for t, i in HYENA_CHAR_VOCAB.items()}
    (d / "tokenizer_config.json").write_text(json.dumps({**tc, "added_tokens_decoder": ok}))
    assert load_model(d, device="cpu").info.head == "token"
    bad = {**ok, "5": {"content": "[SEP]"}}
    (d / "tokenizer_config.json").write_text(json.dumps({**tc, "added_tokens_decoder": bad}))
    with pytest.raises(ModelError, match=r"tokenizer_config.json: \[SEP\] has id 5, .* has 1"):
        load_model(d, device="cpu")
    (d / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="tokenizer_config.json: not valid JSON"):
        load_model(d, device="cpu")


def test_bidirectional_averages_forward_and_reverse_complement(tmp_path):
    d = make_hyena_dir(tmp_path / "t", head="token", max_seq_len=130, seed=2)
    fwd = load_model(d, device="cpu")
    both = load_model(d, device="cpu", bidirectional=True)
    seq = random_dna(100, seed=9) + "NN"
    rc = seq[::-1].translate(str.maketrans("ACGTN", "TGCAN"))
    a, b = fwd.predict([seq, rc])
    got = both.predict([seq, seq[:50]])
    np.testing.assert_allclose(got[0].logits, (a.logits + b.logits[::-1]) / 2, atol=1e-5)
    assert got[1].logits.shape == (50, 3)
    assert both.info.extra["bidirectional"]


def test_max_tokens_option(tmp_path):
    d = make_hyena_dir(tmp_path / "s", head="sequence", max_seq_len=130)
    assert load_model(d, device="cpu", max_tokens=64).max_tokens == 64
    with pytest.raises(ModelError, match="1..129"):
        load_model(d, device="cpu", max_tokens=200)
    with pytest.raises(ModelError, match="unknown load option"):
        load_model(d, device="cpu", segment_size=3)


def test_strict_loading_messages(tmp_path):
    d = make_hyena_dir(tmp_path / "m", head="token", max_seq_len=130, seed=1)
    sd = load_file(str(d / "model.safetensors"))
    assert "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.1.freq" in sd
    assert "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.3.freq" not in sd  # alias, stored once
    load_model(d, device="cpu")

    def write(mutated: dict) -> None:
        save_file(mutated, str(d / "model.safetensors"))

    write({k: v for k, v in sd.items() if not k.endswith("pos_emb.z")})
    with pytest.raises(ModelError, match=r"missing keys:.*pos_emb\.z"):
        load_model(d, device="cpu")
    write({**sd, "hyena.backbone.extra.weight": torch.zeros(2)})
    with pytest.raises(ModelError, match=r"unexpected keys: hyena\.backbone\.extra\.weight"):
        load_model(d, device="cpu")
    bad = dict(sd)
    bad["hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.3.freq"] = sd[
        "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.1.freq"
    ] + 1
    write(bad)
    with pytest.raises(ModelError, match="tied weights stored with different values.*implicit_filter"):
        load_model(d, device="cpu")
    write(sd)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "d_inner": 32}))
    with pytest.raises(ModelError, match="shape mismatches.*mlp.fc1.weight"):
        load_model(d, device="cpu")
    (d / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "emb_dim"}))
    with pytest.raises(ModelError, match="lacks emb_dim"):
        load_model(d, device="cpu")
    (d / "config.json").write_text(json.dumps({**cfg, "architectures": ["HyenaDNAModel"]}))
    with pytest.raises(ModelError, match="cannot tell the HyenaDNA head"):
        load_model(d, device="cpu")


def test_pytorch_bin_is_read_with_weights_only(tmp_path):
    d = make_hyena_dir(tmp_path / "m", head="sequence", max_seq_len=130, seed=4)
    ref = load_model(d, device="cpu").predict(["ACGTACGTTT"])[0].logits
    sd = load_file(str(d / "model.safetensors"))
    (d / "model.safetensors").unlink()
    torch.save(sd, d / "pytorch_model.bin")
    np.testing.assert_array_equal(load_model(d, device="cpu").predict(["ACGTACGTTT"])[0].logits, ref)
