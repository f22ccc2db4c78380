"""RMT: segmentation, memory, parity with upstream traces, tiny trainer checkpoints."""

from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tinymodels import assert_close, make_rmt_dir, parity_fixture, random_dna

from genaannot.models import ModelError, load_model
from genaannot.models.rmt import chunk_bounds


@pytest.fixture(scope="module")
def fixture(shared):
    return parity_fixture(shared)


@pytest.mark.parametrize("name", ["rmt_seqcls", "rmt_tokcls"])
@pytest.mark.parametrize("entry", ["dir", "pth"])
def test_parity_rmt(fixture, name, entry):
    root, exp, cases = fixture
    d = root / "models" / name
    model = load_model(d if entry == "dir" else d / "model_best.pth", device="cpu")
    net = model.network
    assert model.info.max_tokens == 480 == net.max_content_tokens
    assert model.info.tokenizer == "t2t_1000h_multi_32k"  # bundled fallback: the dir has none
    for case, seq in cases.items():
        key = f"{name}/{case}/"
        enc = model.tokenizer.encode(seq)
        np.testing.assert_array_equal(np.concatenate([[1], enc.ids, [2]]), exp[key + "input_ids"])
        assert len(enc) == int(exp[key + "n_content_tokens"])
        content = enc.ids[: net.max_content_tokens]
        assert len(content) == int(exp[key + "n_content_tokens_used"])
        out, tr = net.trace([content])
        np.testing.assert_array_equal(tr.segment_bounds[0], exp[key + "segment_bounds"])
        np.testing.assert_array_equal(tr.segment_input_ids[0], exp[key + "segment_input_ids"])
        np.testing.assert_array_equal(tr.segment_attention_mask[0], exp[key + "segment_attention_mask"])
        assert_close(tr.segment_logits[0], exp[key + "segment_logits"], key + "segment_logits")
        assert_close(tr.memory_in[0], exp[key + "memory_in"], key + "memory_in")
        assert_close(tr.memory_out[0], exp[key + "memory_out"], key + "memory_out")
        assert_close(out[0], exp[key + "logits"], key + "logits")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = model.predict([seq])[0]
        if net.head == "sequence":
            assert_close(pred.logits, exp[key + "logits"], key + "predict")
        else:
            mask = exp[key + "content_mask"].astype(bool)
            assert_close(pred.logits, exp[key + "logits"][mask], key + "predict")
            assert pred.spans.shape[0] == pred.logits.shape[0]
        assert pred.n_tokens_dropped == len(enc) - len(content)


def test_long_input_is_cut_and_reported(fixture):
    root, _, cases = fixture
    model = load_model(root / "models" / "rmt_tokcls", device="cpu")
    with pytest.warns(UserWarning, match="were cut"):
        pred = model.predict([cases["long_4000"]])[0]
    assert pred.n_tokens_total == 653 and pred.n_tokens_dropped == 173 and pred.logits.shape == (480, 3)


def test_batch_equals_single(fixture):
    root, _, cases = fixture
    seqs = list(cases.values())
    for name in ("rmt_seqcls", "rmt_tokcls"):
        model = load_model(root / "models" / name, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batched = model.predict(seqs, batch_size=7)
            for s, b in zip(seqs, batched):
                np.testing.assert_allclose(b.logits, model.predict([s])[0].logits, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- self-contained


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 600), seg=st.integers(1, 130), k=st.integers(1, 6))
def test_chunk_bounds_like_torch_chunk(n, seg, k):
    b = chunk_bounds(n, segment_size=seg, max_n_segments=k)
    used = min(n, seg * k)
    if used == 0:
        assert b.tolist() == [[0, 0]]
        return
    chunks = torch.chunk(torch.arange(used), math.ceil(used / seg))
    assert b.tolist() == [[int(c[0]), int(c[-1]) + 1] for c in chunks]
    assert len(b) <= k and (b[:, 1] - b[:, 0]).max() <= seg


def test_plain_2000_layout():
    assert chunk_bounds(328, segment_size=120, max_n_segments=4).tolist() == [[0, 110], [110, 220], [220, 328]]


@pytest.mark.parametrize("head", ["token", "sequence"])
def test_tiny_rmt_checkpoint(tmp_path, head):
    d = make_rmt_dir(tmp_path / "rmt", head=head, num_mem_tokens=3, input_size=32, max_n_segments=3)
    model = load_model(d, device="cpu")
    p = model.info.extra["rmt"]
    assert p["segment_size"] == 32 - 3 - 3 and model.info.max_tokens == 26 * 3
    assert p["segment_pad_token_id"] == (0 if head == "sequence" else 3)
    seqs = [random_dna(n, seed=n) for n in (30, 200, 700)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        preds = model.predict(seqs, batch_size=3)
        singles = [model.predict([s])[0] for s in seqs]
    for a, b in zip(preds, singles):
        np.testing.assert_allclose(a.logits, b.logits, atol=1e-5, rtol=1e-5)
        if head == "token":
            assert a.logits.shape == (a.n_tokens_total - a.n_tokens_dropped, 3)
    assert preds[2].n_tokens_dropped > 0
    # memory matters: the final segment's output depends on the earlier segments
    net = model.network
    content = model.tokenizer.encode(seqs[2]).ids[: net.max_content_tokens]
    _, tr = net.trace([content])
    assert len(tr.memory_in[0]) > 1
    np.testing.assert_allclose(tr.memory_in[0][1:], tr.memory_out[0][:-1], atol=1e-6)
    assert not np.allclose(tr.memory_in[0][0], tr.memory_in[0][1])


def test_tiny_rmt_options_and_errors(tmp_path):
    # without rmt.json a directory is not recognisable as RMT: pass the .pth file
    d = make_rmt_dir(tmp_path / "rmt", write_rmt_json=False) / "model_best.pth"
    with pytest.raises(ModelError, match="input_size is unknown"):
        load_model(d, device="cpu")
    model = load_model(d, device="cpu", input_size=24, max_n_segments=2, segment_size=10)
    assert model.info.max_tokens == 20
    with pytest.raises(ModelError, match="memory tokens were asked for"):
        load_model(d, device="cpu", input_size=24, max_n_segments=2, num_mem_tokens=4)
    with pytest.raises(ModelError, match="exceed input_size"):
        load_model(d, device="cpu", input_size=24, max_n_segments=2, segment_size=22)
    with pytest.raises(ModelError, match="unknown options"):
        load_model(d, device="cpu", input_size=24, max_n_segments=2, bogus=1)


def test_tiny_rmt_tokenizer_lookup(tmp_path):
    d = make_rmt_dir(tmp_path / "rmt")
    tok_copy = tmp_path / "tok"
    tok_copy.mkdir()
    shutil.move(str(d / "tokenizer.json"), tok_copy / "tokenizer.json")
    with pytest.raises(ModelError, match="no tokenizer.json"):
        load_model(d, device="cpu")
    assert load_model(d, device="cpu", tokenizer=tok_copy).info.tokenizer == "tok"
    # a bundled name, as the message offers it, is taken too
    from genaannot.models.rmt import BUNDLED_TOKENIZERS

    name = next(iter(BUNDLED_TOKENIZERS))
    with pytest.raises(ModelError, match=r"--model-option tokenizer=\.\.\."):
        load_model(d, device="cpu")
    assert load_model(d, device="cpu", tokenizer=name).info.tokenizer == name


def test_tiny_rmt_strict_error_names_the_file_keys(tmp_path):
    """Only classifier.weight missing: the error names it as stored (model.classifier.weight), nothing else."""
    d = make_rmt_dir(tmp_path / "rmt", head="sequence")
    ckpt = torch.load(d / "model_best.pth", weights_only=True)
    del ckpt["model_state_dict"]["model.classifier.weight"]
    torch.save(ckpt, d / "model_best.pth")
    with pytest.raises(ModelError) as err:
        load_model(d, device="cpu")
    msg = str(err.value)
    assert "missing keys: model.classifier.weight (" in msg, msg
    assert "pooler" not in msg and "unexpected" not in msg and "classifier.bias" not in msg
