"""genaannot.models.families: the family contract, checked on every registered family.

Every family in ``FAMILIES`` must have a tiny checkpoint maker below and pass every check of
``family_contract.py`` (load, prediction spans, batch independence, strict loading, training
a token head for splice and a sequence head for promoter that ``load_model`` reads back). A
family added to the registry without that fails here; deliberately broken families in a
test-local registry show that each check can fail.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from family_contract import (
    check_batch_independence,
    check_content_offset,
    check_load,
    check_packed_windows,
    check_predict_spans,
    check_strict_loading,
    check_training,
    run_contract,
    use_registry,
)
from tiny_families import make_dilated_cnn_dir, make_hyena_dir, make_modernbert_dir
from tinymodels import make_bigbird_dir, make_gena_dir, make_rmt_dir

from genaannot.models import gena_bert
from genaannot.models.base import Loaded, ModelError, ModelInfo, collate_cls_sep
from genaannot.models.families import CONTRACT, FAMILIES, Family, check_module, family_module


def _gena(d: Path, head: str) -> Path:
    return make_gena_dir(d, head="mlm" if head == "base" else head, hidden=16, layers=1, heads=2, max_positions=64)


def _bigbird(d: Path, head: str) -> Path:
    return make_bigbird_dir(d, head="mlm" if head == "base" else head)


def _rmt(d: Path, head: str) -> Path:
    if head == "base":  # RMT trains from a GENA BERT (wrapped) as from its own checkpoints
        return _gena(d, "base")
    return make_rmt_dir(d, head="token", input_size=32, max_n_segments=3)


def _hyena(d: Path, head: str) -> Path:
    return make_hyena_dir(d, head="lm" if head == "base" else "token", d_model=8, max_seq_len=130, filter_order=8)


def _modernbert(d: Path, head: str) -> Path:
    # no tiny MLM maker: the token checkpoint is the base (its head is kept for splice, replaced for promoter)
    return make_modernbert_dir(d, head="token", hidden_size=16, num_layers=2, num_heads=2, intermediate_size=24,
                               labels=["none", "acceptor", "donor"])


def _dilated_cnn(d: Path, head: str) -> Path:
    # the base has a 2-label token head: splice (3 labels) and promoter (sequence) both get a new one
    return make_dilated_cnn_dir(d, labels=("a", "b") if head == "base" else ("none", "acceptor", "donor"))


#: a tiny checkpoint maker per registered family (a new family must add one)
TINY = {"gena_bert": _gena, "bigbird": _bigbird, "rmt": _rmt, "hyena": _hyena, "modernbert": _modernbert,
        "dilated_cnn": _dilated_cnn}


def test_every_registered_family_has_a_tiny_maker():
    assert set(FAMILIES) == set(TINY), "add a tiny checkpoint maker for the new family to TINY"


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    """(name, tiny token-head checkpoint, its loaded model): built once per family."""
    name = request.param
    tiny = TINY[name](tmp_path_factory.mktemp(name) / f"{name}-token", "token")
    return name, tiny, check_load(name, tiny)


def test_load_predict_spans_batch_independence(family):
    name, _, model = family
    check_predict_spans(name, model)
    check_batch_independence(name, model)
    check_content_offset(name, model)
    check_packed_windows(name, model)


def test_strict_loading(family, tmp_path):
    name, tiny, _ = family
    check_strict_loading(name, tiny, tmp_path / "strict")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_training_adds_a_task_head_and_saves_a_loadable_checkpoint(name, tmp_path):
    base = TINY[name](tmp_path / f"{name}-base", "base")
    token = check_training(name, base, "splice", tmp_path)
    seq = check_training(name, base, "promoter", tmp_path)
    assert token.info.head == "token" and seq.info.head == "sequence"
    meta = token.info.extra["genaannot"]
    # a pretrained LM (MLM / causal LM) gets a new head; modernGENA's tiny base has a 3-label token head
    assert meta["base_head"] == ("kept" if name == "modernbert" else "new")


def test_rmt_continues_an_rmt_checkpoint(tmp_path):
    base = TINY["rmt"](tmp_path / "rmt", "token")
    model = check_training("rmt", base, "splice", tmp_path, window_tokens=60)
    meta = model.info.extra["genaannot"]
    assert meta["base_head"] == "kept" and meta["family_details"]["rmt"]["num_mem_tokens"] == 3
    assert model.info.extra["rmt"]["max_n_segments"] == 3  # 60 tokens in segments of 26


def test_rmt_over_gena_bert_segments_a_longer_window(tmp_path):
    base = TINY["gena_bert"](tmp_path / "bert", "base")
    model = check_training("rmt", base, "splice", tmp_path, window_tokens=100,
                           options={"num_mem_tokens": 4, "input_size": 40})
    rmt = model.info.extra["rmt"]
    assert rmt == {"num_mem_tokens": 4, "input_size": 40, "segment_size": 33, "max_n_segments": 4,
                   "segment_pad_token_id": 3}
    assert model.info.max_tokens == 132 and model.info.extra["genaannot"]["base_model"] == str(base)


# --------------------------------------------------------------------------- the contract can fail


def _broken(monkeypatch, name: str, **overrides) -> dict[str, Family]:
    """A module named ``name``: GENA BERT's functions with ``overrides``; a registry holding only it."""
    mod = types.ModuleType(name)
    for f in CONTRACT:
        setattr(mod, f, getattr(gena_bert, f))
    for k, v in overrides.items():
        if v is None:
            delattr(mod, k)
        else:
            setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)
    return {name: Family(name, model_types=("bert",))}


def _as(name, fn):
    """Wrap a GENA BERT builder so that the Trainable says it belongs to ``name``."""
    import functools

    @functools.wraps(fn)  # the contract's signature, as inspect.signature sees it
    def wrapped(*args, **kw):
        t = fn(*args, **kw)
        t.family = name
        return t
    return wrapped


def _relabel(name, loaded):
    from dataclasses import replace

    loaded.info = replace(loaded.info, family=name)
    return loaded


def _load_as(name):
    """GENA BERT's ``load``, reporting ``name`` as the family."""
    def load(path, *, config, **options):
        return _relabel(name, gena_bert.load(path, config=config, **options))
    return load


def test_a_family_without_a_contract_function_is_refused(monkeypatch):
    reg = _broken(monkeypatch, "broken_nofresh", fresh=None)
    with pytest.raises(ModelError, match="lacks fresh"):
        check_module("broken_nofresh", sys.modules["broken_nofresh"])
    with use_registry(reg), pytest.raises(ModelError, match="lacks fresh"):
        family_module("broken_nofresh")


def test_non_strict_loading_breaks_the_contract(monkeypatch, tmp_path):
    name = "broken_lenient"

    def lenient(path, *, config, **options):
        from genaannot.io.tokenizers import load_tokenizer
        from genaannot.io.weights import read_weights

        cfg = gena_bert.GenaBertConfig.from_dict(config)
        state = gena_bert.add_prefix_if_bare(read_weights(path))
        head = gena_bert.choose_head(cfg, state, source=str(path))
        tok = load_tokenizer(path)
        net = gena_bert.build_network(cfg, head=head, cls_id=tok.cls_id, sep_id=tok.sep_id)
        net.load_state_dict(state, strict=False)  # the breach: missing/unexpected tensors pass
        info = ModelInfo(family=name, architecture="BertForTokenClassification", head=head, labels=cfg.labels,
                         problem_type=cfg.problem_type, max_tokens=net.max_content_tokens, resolution="token",
                         n_params=0, source=str(path), tokenizer=tok.name)
        return Loaded(net.eval(), tok, info)

    reg = _broken(monkeypatch, name, load=lenient)
    tiny = _gena(tmp_path / "t", "token")
    with use_registry(reg):
        check_load(name, tiny)  # loads fine ...
        with pytest.raises(AssertionError, match="strict loading.*was loaded"):
            check_strict_loading(name, tiny, tmp_path / "s")  # ... but takes any file


def test_padding_that_leaks_into_outputs_breaks_the_contract(monkeypatch, tmp_path):
    name = "broken_unmasked"

    def unmasked(path, *, config, **options):
        loaded = gena_bert.load(path, config=config, **options)
        net = loaded.network
        # the breach: padding is attended (no mask), so an input's output depends on its batch mates
        net.collate = lambda content: {"input_ids": collate_cls_sep(content, cls_id=net.cls_id, sep_id=net.sep_id,
                                                                    pad_id=net.pad_id)["input_ids"]}
        return _relabel(name, loaded)

    reg = _broken(monkeypatch, name, load=unmasked)
    with use_registry(reg):
        model = check_load(name, _gena(tmp_path / "t", "token"))
        check_predict_spans(name, model)
        with pytest.raises(AssertionError, match="batch independence"):
            check_batch_independence(name, model)


def test_a_wrong_content_offset_breaks_the_contract(monkeypatch, tmp_path):
    name = "broken_offset"

    def shifted(path, *, config, **options):
        loaded = gena_bert.load(path, config=config, **options)
        loaded.network.content_offset = 0  # the breach: its split starts after [CLS]
        return _relabel(name, loaded)

    reg = _broken(monkeypatch, name, load=shifted)
    with use_registry(reg):
        model = check_load(name, _gena(tmp_path / "t", "token"))
        with pytest.raises(AssertionError, match="content offset"):
            check_content_offset(name, model)


def test_a_save_that_loses_the_head_breaks_the_contract(monkeypatch, tmp_path):
    name = "broken_headless"

    def headless(trainable, directory, *, metadata):
        from genaannot.io.checkpoint import write_model_dir

        d = gena_bert.save_trainable(trainable, directory, metadata=metadata)
        from safetensors.torch import load_file

        state = {k: v for k, v in load_file(str(d / "model.safetensors")).items() if not k.startswith("classifier.")}
        return write_model_dir(d, tensors=state, config=trainable.config.to_dict() | {"architectures": []},
                               tokenizer=trainable.tokenizer, metadata=metadata)

    reg = _broken(monkeypatch, name, save_trainable=headless, from_checkpoint=_as(name, gena_bert.from_checkpoint),
                  load=_load_as(name))
    with use_registry(reg), pytest.raises(AssertionError, match=r"training a token head \(splice\)\): ModelError: .*"
                                                                 "no head weights"):
        check_training(name, _gena(tmp_path / "b", "base"), "splice", tmp_path)


def test_run_contract_fails_a_family_whose_trainable_is_another_family(monkeypatch, tmp_path):
    name = "broken_wrong_family"
    # the breach: the trainable it builds says it is another family (train would save it as that)
    reg = _broken(monkeypatch, name, load=_load_as(name))
    with use_registry(reg), pytest.raises(AssertionError, match="training a token head .*'gena_bert'"):
        run_contract(name, TINY["gena_bert"], tmp_path / "broken")


def test_fresh_models_of_every_family_save_and_load_back(tmp_path):
    """``fresh`` builds each family from scratch (HyenaDNA with its own vocabulary); what
    ``save_trainable`` writes loads back with the same outputs."""
    from toy_genome import char_tok

    from genaannot.labels import TASK_SPECS
    from genaannot.models import load_model
    from genaannot.models.base import Model, normalize_problem_type
    from genaannot.train import ArchConfig, build_fresh, save_model

    arch = ArchConfig(hidden_size=8, layers=1, heads=2)
    tok = char_tok(tmp_path)
    options = {"bigbird": {"block_size": 8, "num_random_blocks": 1}, "rmt": {"input_size": 24, "num_mem_tokens": 2},
               "modernbert": {"local_attention": 8}, "hyena": {"filter_order": 8},
               "dilated_cnn": {"channels": 4, "blocks": "3:1x1,3:2x1"}}
    for i, name in enumerate(sorted(FAMILIES)):
        for task in (("splice", "promoter")[i % 2],):  # both heads over the families, one save each
            torch.manual_seed(0)
            spec = TASK_SPECS[task]
            setup = build_fresh(tokenizer=None if FAMILIES[name].fixed_vocabulary else tok, tokenizer_kind="char", spec=spec,
                                arch=arch, window_tokens=40, family=name, options=options.get(name))
            assert setup.family == name and setup.base_model is None and setup.network.max_content_tokens >= 40
            out = save_model(setup, tmp_path / f"{name}-{task}", metadata={"task": task})
            model = load_model(out, device="cpu")
            assert (model.info.family, model.info.head, model.info.labels) == (name, spec.head, tuple(spec.labels))
            trained = Model(Loaded(setup.network, setup.tokenizer, normalize_problem_type(model.info)), device="cpu")
            seqs = ["ACGTTGCAAGGCTTAACGGATCCATTGA", "GATTACA"]
            for got, want in zip(model.predict(seqs), trained.predict(seqs), strict=True):
                torch.testing.assert_close(torch.from_numpy(got.logits), torch.from_numpy(want.logits),
                                           rtol=1e-4, atol=1e-5)


def test_a_contract_function_with_other_parameters_is_refused(monkeypatch):
    def fresh(head, tokenizer, window_tokens, arch, options):  # positional, not keyword-only
        raise AssertionError("never called")

    def save_trainable(trainable, directory, metadata, extra):  # an extra required parameter
        raise AssertionError("never called")

    _broken(monkeypatch, "broken_fresh_args", fresh=fresh)
    with pytest.raises(ModelError, match=r"fresh\(\) does not take the contract's parameters: head \(keyword-only\)"):
        check_module("broken_fresh_args", sys.modules["broken_fresh_args"])
    _broken(monkeypatch, "broken_save_args", save_trainable=save_trainable)
    with pytest.raises(ModelError, match="metadata \\(keyword-only\\), unexpected required extra"):
        check_module("broken_save_args", sys.modules["broken_save_args"])
    for name in FAMILIES:  # every registered family passes
        family_module(name)


@pytest.mark.parametrize(("name", "fixture", "task", "head"), [
    ("gena_bert", "gena_parity/models/bert_preln_nolastln_mlm", "splice", "new"),
    ("rmt", "gena_parity/models/rmt_seqcls", "promoter", "kept"),
    ("hyena", "hyena_parity/models/hyenadna_lm", "splice", "new"),
])
def test_training_from_checkpoints_written_by_upstream_code(shared, tmp_path, name, fixture, task, head):
    """Reference checkpoints saved by upstream code, not by genaannot (GENA-LM's
    pytorch_model.bin MLM, the RMT trainer's .pth, the HyenaDNA hub port's LM; the tiny
    BigBird and modernGENA makers already save through transformers): each family trains from
    them."""
    model = check_training(name, shared / "fixtures" / fixture, task, tmp_path, window_tokens=40)
    assert model.info.extra["genaannot"]["base_head"] == head
