"""modernGENA (stock ModernBERT): parity with ../shared fixtures and self-contained checks."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_families import make_modernbert_dir, random_dna

from genaannot.io.tokenizers import read_bpe_tokenizer
from genaannot.models import ModelError, load_model
from genaannot.models.compat import config_layout
from genaannot.models.modernbert import read_layout, transformers_config

MODELS = ("tokcls_edge", "seqcls")
ATTN = ("eager", "sdpa")


def assert_close(got, exp, what: str, *, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """The fixture README's rule: |got - exp| <= atol + rtol * |exp|."""
    got, exp = np.asarray(got, dtype=np.float64), np.asarray(exp, dtype=np.float64)
    assert got.shape == exp.shape, f"{what}: shape {got.shape} vs {exp.shape}"
    bad = np.abs(got - exp) > atol + rtol * np.abs(exp)
    assert not bad.any(), f"{what}: {int(bad.sum())} elements off, max |diff| {np.abs(got - exp).max():.3g}"


@pytest.fixture(scope="module")
def fixture(shared: Path):
    root = shared / "fixtures" / "moderngena_parity"
    expected = dict(np.load(root / "expected.npz"))
    cases = {c["name"]: c["sequence"] for c in json.loads((root / "cases.json").read_text())}
    assert "long_8000" in cases and len(cases) > 1, sorted(cases)  # the tests loop over them
    return root, expected, cases


def _dir_with_config(src: Path, config: Path, dst: Path) -> Path:
    """A checkpoint directory = ``src``'s files with another config.json (links, no copies)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name != "config.json":
            os.symlink(f, dst / f.name)
    (dst / "config.json").write_text(config.read_text())
    return dst


@pytest.fixture(scope="module", params=["v4", "v5"])
def model_dirs(request, fixture, tmp_path_factory):
    root, _, _ = fixture
    if request.param == "v4":
        return {m: root / "models" / m for m in MODELS}
    tmp = tmp_path_factory.mktemp("v5")
    return {
        m: _dir_with_config(root / "models" / m, root / "configs_transformers5" / f"{m}.config.json", tmp / m)
        for m in MODELS
    }


# --------------------------------------------------------------------------- fixture parity


def test_tokenizer_ids_and_offsets_exact(fixture):
    root, expected, cases = fixture
    tok = read_bpe_tokenizer(root / "models" / "tokcls_edge" / "tokenizer.json")
    for case, seq in cases.items():
        enc = tok.encode(seq)  # upper-cased, no special tokens
        ids = np.concatenate([[tok.cls_id], enc.ids, [tok.sep_id]])
        np.testing.assert_array_equal(ids, expected[f"tokenizer_t2t/{case}/upper_input_ids"], err_msg=case)
        for m in MODELS:
            np.testing.assert_array_equal(ids, expected[f"{m}/{case}/input_ids"], err_msg=case)
        raw = expected[f"tokenizer_t2t/{case}/upper_offsets"][1:-1]
        np.testing.assert_array_equal(enc.spans[:, 1], raw[:, 1], err_msg=case)  # ends are the raw ones
        # as-is (no upper-casing) through the same tokenizer file, offsets raw
        asis = tok._tok.encode(seq, add_special_tokens=True)
        np.testing.assert_array_equal(asis.ids, expected[f"tokenizer_t2t/{case}/asis_input_ids"], err_msg=case)
        np.testing.assert_array_equal(
            np.asarray(asis.offsets).reshape(-1, 2), expected[f"tokenizer_t2t/{case}/asis_offsets"], err_msg=case
        )


@pytest.mark.parametrize("attn", ATTN)
@pytest.mark.parametrize("model", MODELS)
def test_logits_through_load_model(fixture, model_dirs, model, attn):
    _, expected, cases = fixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long_8000 exceeds the 1024-token window: allowed with a warning
        m = load_model(model_dirs[model], device="cpu", attn_implementation=attn, max_tokens=4096)
    names = sorted(cases)
    preds = m.predict([cases[c] for c in names], batch_size=4)  # batched with right padding
    for case, pred in zip(names, preds):
        exp = expected[f"{model}/{case}/logits_{attn}"]
        assert_close(pred.logits, exp[1:-1] if model == "tokcls_edge" else exp, f"{model}/{case}/{attn}")


@pytest.mark.parametrize("model", MODELS)
def test_fixed_padding_and_other_pooling(fixture, model_dirs, model):
    _, expected, cases = fixture
    for attn in ATTN:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = load_model(model_dirs[model], device="cpu", attn_implementation=attn, max_tokens=4096)
        for case, seq in cases.items():
            m.network.pad_to = int(expected[f"{model}/{case}/fixedpad_length"])
            got = m.predict([seq])[0].logits
            exp = expected[f"{model}/{case}/logits_fixedpad_{attn}"]
            assert_close(got, exp[1:-1] if model == "tokcls_edge" else exp, f"{model}/{case} fixedpad {attn}")
            assert np.isfinite(got).all()
        if model == "seqcls":
            m.network.pad_to = None
            m.network.model.config.classifier_pooling = "cls"
            for case, seq in cases.items():
                exp = expected[f"{model}/{case}/logits_other_pooling_{attn}"]
                assert_close(m.predict([seq])[0].logits, exp, f"{case} cls pooling {attn}")


@pytest.mark.parametrize("model", MODELS)
def test_hidden_states_and_pooled(fixture, model_dirs, model):
    _, expected, cases = fixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = load_model(model_dirs[model], device="cpu", attn_implementation="eager", max_tokens=4096)
    hf = m.network.model
    seen: list[torch.Tensor] = []
    pooled: list[torch.Tensor] = []
    hooks = [hf.model.embeddings.register_forward_hook(lambda mod, a, out: seen.append(out[0]))]
    # a layer returns its hidden states (transformers 5) or a tuple led by them (4.x)
    hooks += [layer.register_forward_hook(lambda mod, a, out: seen.append((out[0] if isinstance(out, tuple) else out)[0]))
              for layer in hf.model.layers]
    if model == "seqcls":
        hooks.append(hf.head.register_forward_hook(lambda mod, a, out: pooled.append(a[0][0])))
    try:
        for case in cases:
            seen.clear()
            pooled.clear()
            ids = torch.from_numpy(expected[f"{model}/{case}/input_ids"].astype(np.int64))[None]
            with torch.inference_mode():
                last = hf.model(input_ids=ids, attention_mask=torch.ones_like(ids))[0][0]
                if model == "seqcls":
                    m.network(input_ids=ids, attention_mask=torch.ones_like(ids))
            assert_close(last, expected[f"{model}/{case}/last_hidden_state_eager"], f"{case} last")
            assert_close(torch.stack(seen[: len(hf.model.layers) + 1]), expected[f"{model}/{case}/hidden_states_eager"], f"{case} hs")
            if model == "seqcls":
                assert_close(pooled[0], expected[f"{model}/{case}/pooled_eager"], f"{case} pooled")
    finally:
        for h in hooks:
            h.remove()


def test_transformers5_layout_reads_the_same_values(fixture):
    root, _, _ = fixture
    for m in MODELS:
        old_cfg = json.loads((root / "models" / m / "config.json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            new_cfg = json.loads((root / "configs_transformers5" / f"{m}.config.json").read_text())
            assert read_layout(new_cfg) == read_layout(old_cfg), m
        # either file, written for either release, says the same thing
        for layout in ("v4", "v5"):
            a, b = transformers_config(old_cfg, layout=layout), transformers_config(new_cfg, layout=layout)
            keys = ("global_rope_theta", "local_rope_theta", "global_attn_every_n_layers") if layout == "v4" \
                else ("rope_parameters", "layer_types")
            for key in (*keys, "local_attention"):
                assert a[key] == b[key], (m, layout, key)
        assert "rope_parameters" not in transformers_config(new_cfg, layout="v4")
        assert "global_rope_theta" not in transformers_config(old_cfg, layout="v5")


def test_installed_release_reads_the_layout_it_is_given():
    """The config class of the installed transformers gets the keys it understands."""
    from transformers import ModernBertConfig

    d = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
         "vocab_size": 64, "max_position_embeddings": 128, "norm_eps": 1e-5, "local_attention": 16,
         "hidden_activation": "gelu", "global_attn_every_n_layers": 3, "global_rope_theta": 40000.0,
         "local_rope_theta": 5000.0}
    hf = ModernBertConfig.from_dict(transformers_config(d))
    if config_layout() == "v5":
        assert hf.layer_types == ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
        assert hf.rope_parameters["full_attention"]["rope_theta"] == 40000.0
        assert hf.rope_parameters["sliding_attention"]["rope_theta"] == 5000.0
    else:
        assert (hf.global_rope_theta, hf.local_rope_theta, hf.global_attn_every_n_layers) == (40000.0, 5000.0, 3)


# --------------------------------------------------------------------------- self-contained


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("mb")
    kw = dict(local_attention=16, global_every=3, num_layers=4, global_theta=40000.0, local_theta=5000.0, seed=7)
    return {
        "token_v4": make_modernbert_dir(base / "tv4", head="token", layout="v4", **kw),
        "token_v5": make_modernbert_dir(base / "tv5", head="token", layout="v5", **kw),
        "seq_v4": make_modernbert_dir(base / "sv4", head="sequence", layout="v4", biases=True, seed=8),
        "seq_v5": make_modernbert_dir(base / "sv5", head="sequence", layout="v5", biases=True, seed=8),
    }


def test_tiny_both_layouts_identical(tiny):
    seqs = [random_dna(n, seed=n) for n in (2500, 300, 40)]
    for head in ("token", "seq"):
        a = load_model(tiny[f"{head}_v4"], device="cpu").predict(seqs, batch_size=3)
        b = load_model(tiny[f"{head}_v5"], device="cpu").predict(seqs, batch_size=3)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.logits, y.logits)


def test_tiny_info_window_and_batch_layout(tiny):
    m = load_model(tiny["token_v4"], device="cpu")
    assert m.info.family == "modernbert" and m.info.resolution == "token"
    assert m.max_tokens == 1022 and m.info.labels == ("TSS+", "TSS-", "PolyA+", "PolyA-")
    assert m.info.extra["attn_implementation"] == "sdpa"
    assert m.tokenizer.vocab_size == 32000 and m.network.model.get_input_embeddings().weight.shape[0] == 32768
    batch = m.network.collate([np.array([5, 6, 7]), np.array([8])])
    assert set(batch) == {"input_ids", "attention_mask"}  # never token_type_ids
    assert batch["input_ids"].tolist() == [[1, 5, 6, 7, 2], [1, 8, 2, 3, 3]]
    with pytest.warns(UserWarning, match="RoPE"):
        assert load_model(tiny["token_v4"], device="cpu", max_tokens=2000).max_tokens == 2000
    with pytest.raises(ModelError, match="unknown load option"):
        load_model(tiny["token_v4"], device="cpu", bidirectional=True)
    with pytest.raises(ModelError, match="attn_implementation"):
        load_model(tiny["token_v4"], device="cpu", attn_implementation="magic")


def test_flash_attention_only_when_installed(tiny):
    from transformers.utils import is_flash_attn_2_available

    if is_flash_attn_2_available():
        pytest.skip("flash-attn is installed: this test checks the error raised where it is not")
    with pytest.raises(ModelError, match="flash-attn is not installed"):
        load_model(tiny["token_v4"], device="cpu", attn_implementation="flash_attention_2")


def test_fixed_padding_far_beyond_the_window_has_no_nan(tiny):
    """float64 eager: the stock model turns fully masked pad rows into NaN that leak into
    real tokens; the pad-row guard keeps the real tokens' logits equal to the unpadded run."""
    m = load_model(tiny["token_v4"], device="cpu", attn_implementation="eager", pad_to=600, max_tokens=598)
    m.network.double()
    seq = random_dna(400, seed=3)
    ids = m.tokenizer.encode(seq).ids
    with torch.inference_mode():
        padded = m.network(**m.network.collate([ids]))
        m.network.pad_to = None
        plain = m.network(**m.network.collate([ids]))
    n = len(ids) + 2
    assert padded.shape[1] == 600 and torch.isfinite(padded).all()
    assert torch.allclose(padded[0, :n], plain[0], atol=1e-10)


def test_batched_equals_single(tiny):
    for name in ("token_v4", "seq_v4"):
        m = load_model(tiny[name], device="cpu")
        seqs = [random_dna(n, seed=n) for n in (3000, 700, 25)]
        batched = m.predict(seqs, batch_size=3)
        for seq, b in zip(seqs, batched):
            np.testing.assert_allclose(b.logits, m.predict([seq])[0].logits, atol=2e-5)


def test_strict_loading_and_config_errors(tmp_path):
    d = make_modernbert_dir(tmp_path / "m", head="token", num_layers=2, seed=1)
    sd = load_file(str(d / "model.safetensors"))
    save_file({k: v for k, v in sd.items() if k != "classifier.weight"}, str(d / "model.safetensors"))
    with pytest.raises(ModelError, match="no classifier.weight"):
        load_model(d, device="cpu")
    save_file({k: v for k, v in sd.items() if k != "model.final_norm.weight"}, str(d / "model.safetensors"))
    with pytest.raises(ModelError, match=r"missing keys: model\.final_norm\.weight"):
        load_model(d, device="cpu")
    save_file(sd, str(d / "model.safetensors"))
    cfg = json.loads((d / "config.json").read_text())

    def with_config(**changes) -> None:
        new = {**cfg, **changes}
        (d / "config.json").write_text(json.dumps({k: v for k, v in new.items() if v is not None}))

    with_config(attention_bias=True)
    with pytest.raises(ModelError, match=r"missing keys: model\.layers\.0\.attn\.Wqkv\.bias.*attention_bias"):
        load_model(d, device="cpu")
    with_config(global_rope_theta=None)
    with pytest.raises(ModelError, match="neither global_rope_theta"):
        load_model(d, device="cpu")
    with_config(global_attn_every_n_layers=None, layer_types=["sliding_attention", "full_attention"])
    if config_layout() == "v4":  # transformers 4.x cannot express this pattern; 5.x can
        with pytest.raises(ModelError, match="not 'global every n-th layer"):
            load_model(d, device="cpu")
    else:
        m = load_model(d, device="cpu")
        assert m.info.extra["layer_types"] == ["sliding_attention", "full_attention"]
        assert [layer.attention_type for layer in m.network.model.model.layers] == ["sliding_attention", "full_attention"]
    with_config(global_attn_every_n_layers=None)
    with pytest.raises(ModelError, match="neither global_attn_every_n_layers"):
        load_model(d, device="cpu")
    with_config(rope_parameters={"full_attention": {"rope_theta": 1e4, "rope_type": "yarn"}})
    with pytest.raises(ModelError, match="only default RoPE"):
        load_model(d, device="cpu")
    with_config(norm_eps=None)
    with pytest.raises(ModelError, match="lacks norm_eps"):
        load_model(d, device="cpu")
    with_config(pad_token_id=0)
    with pytest.raises(ModelError, match="pad_token_id=0 but the tokenizer's id is 3"):
        load_model(d, device="cpu")
