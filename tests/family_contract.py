"""The model-family contract as executable checks (used by ``test_families.py``).

Each ``check_*`` raises ``AssertionError`` naming the check and the family when the family
breaks the contract of :mod:`genaannot.models.families` (any exception inside a check is a
breach). :func:`run_contract` runs them all on one family; :func:`use_registry` swaps the
registry's contents for a test-local one (families under test must be found by name, as
``load_model`` and ``train`` find them).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from genaannot.models import detect_family, load_model, read_config
from genaannot.models.base import Loaded, Model, ModelError, normalize_problem_type
from genaannot.models.families import FAMILIES, Family, family_module

__all__ = ["use_registry", "run_contract", "check_load", "check_predict_spans", "check_batch_independence",
           "check_strict_loading", "check_training", "SEQS", "Maker"]

#: ``maker(directory, head)`` writes a tiny checkpoint of the family (head ``token``, or
#: ``base``: the family's pretrained-LM head where it has one) and returns its path
Maker = Callable[[Path, str], Path]

#: inputs of several lengths (batch mates of different padding), soft-masked and with N
SEQS = ["ACGTTGCAAGGCTTAACGGATCCA" * 3, "acgtNNACGTTTGA", "GATTACA" * 9, "CCGGAATT"]


@contextlib.contextmanager
def use_registry(registry: Mapping[str, Family]) -> Iterator[None]:
    """Make ``registry`` the family registry for the duration (restored afterwards)."""
    saved = dict(FAMILIES)
    FAMILIES.clear()
    FAMILIES.update(registry)
    try:
        yield
    finally:
        FAMILIES.clear()
        FAMILIES.update(saved)


@contextlib.contextmanager
def _check(what: str, name: str) -> Iterator[None]:
    try:
        yield
    except AssertionError as err:
        raise AssertionError(f"family {name!r} breaks the contract ({what}): {err}") from None
    except Exception as err:  # noqa: BLE001 - any failure is a breach of the contract
        raise AssertionError(f"family {name!r} breaks the contract ({what}): {type(err).__name__}: {err}") from None


def _load(path: Path) -> Model:
    return load_model(path, device="cpu")


def check_load(name: str, path: Path) -> Model:
    """Detected as ``name``, loaded by the family's ``load`` into a token-head model."""
    with _check("load", name):
        family_module(name)  # the module provides every function of the contract
        assert detect_family(path, read_config(path)) == name, f"{path} is detected as another family"
        model = _load(path)
        assert model.info.family == name, f"ModelInfo.family is {model.info.family!r}"
        assert model.info.head == "token" and model.info.labels, (model.info.head, model.info.labels)
        return model


def check_predict_spans(name: str, model: Model) -> None:
    """One logits row per token, spans contiguous over the whole input (token head)."""
    with _check("predict spans", name):
        preds = model.predict(SEQS, batch_size=2)
        assert len(preds) == len(SEQS)
        for seq, p in zip(SEQS, preds, strict=True):
            assert p.logits.ndim == 2 and p.logits.shape == (len(p.spans), len(model.info.labels)), p.logits.shape
            assert p.n_tokens_dropped == 0
            spans = np.asarray(p.spans)
            assert spans[0, 0] == 0 and spans[-1, 1] == len(seq), f"spans do not cover {len(seq)} bp"
            assert (spans[1:, 0] == spans[:-1, 1]).all() and (spans[:, 1] > spans[:, 0]).all(), "spans not contiguous"
            assert np.isfinite(p.logits).all()


def check_batch_independence(name: str, model: Model) -> None:
    """An input's outputs do not depend on its batch mates (padding, order)."""
    with _check("batch independence", name):
        alone = [model.predict([s], batch_size=1)[0].logits for s in SEQS]
        together = [p.logits for p in model.predict(SEQS, batch_size=len(SEQS))]
        reordered = [p.logits for p in model.predict(SEQS[::-1], batch_size=len(SEQS))][::-1]
        for a, b, c in zip(alone, together, reordered, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-5)


def check_content_offset(name: str, model: Model) -> None:
    """A declared ``content_offset`` says where ``split`` takes an input's content rows (the
    model layer then gathers them itself): ``split(out)[i] == out[i, off : off + n]``."""
    off = getattr(model.network, "content_offset", None)
    if off is None or model.network.head == "sequence":
        return
    with _check("content offset", name):
        out = torch.randn(3, 24, 4, generator=torch.Generator().manual_seed(0))
        lengths = [5, 21 - off, 1]
        parts = model.network.split(out, lengths)
        for i, n in enumerate(lengths):
            assert torch.equal(parts[i], out[i, off : off + n]), f"input {i}: split is not out[i, {off}:{off} + n]"


def check_packed_windows(name: str, model: Model) -> None:
    """The scan's packed path (``predict_windows``: windows as row ranges of one
    tokenisation) gives exactly ``predict_encoded``'s values on the same windows."""
    from genaannot.tokenize import Encoding

    with _check("packed windows", name):
        tokens = model.tokenizer.encode_batch(["".join(SEQS)])[0]
        n = len(tokens)
        ranges = np.array([(0, min(n, 12)), (min(5, n - 1), min(n, 20)), (max(0, n - 9), n)], dtype=np.int64)
        encs = [Encoding(tokens.ids[a:b], tokens.spans[a:b] - tokens.spans[a, 0]) for a, b in ranges]
        listed = model.predict_encoded(encs, batch_size=2, keep_rows=[(1, 6), None, (0, 3)])
        packed = model.predict_windows(tokens, ranges, batch_size=2, keep_rows=np.array([(1, 6), (0, n), (0, 3)]))
        np.testing.assert_array_equal(packed.logits, np.concatenate([p.logits for p in listed]))
        np.testing.assert_array_equal(packed.spans, np.concatenate([p.spans for p in listed]))
        assert packed.counts[:, 0].tolist() == [len(p.logits) for p in listed]


def _weight_file(directory: Path) -> Path:
    for pattern in ("model.safetensors", "pytorch_model.bin", "*.pth"):
        hits = sorted(directory.glob(pattern))
        if hits:
            return hits[0]
    raise AssertionError(f"no weight file in {directory}")


def _rewrite(directory: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    """Apply ``edit`` to the state dict stored in ``directory``, keeping the file's format."""
    path = _weight_file(directory)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file, save_file

        state = load_file(str(path))
        edit(state)
        save_file(state, str(path), metadata={"format": "pt"})
        return
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj["model_state_dict"] if "model_state_dict" in obj else obj
    edit(state)
    torch.save(obj, path)


def check_strict_loading(name: str, path: Path, tmp: Path) -> None:
    """A weight file with an unexpected tensor, or without one it needs, is refused."""
    with _check("strict loading", name):
        extra, short = tmp / "extra", tmp / "short"
        for d in (extra, short):
            shutil.copytree(path, d)

        def add(state: dict[str, torch.Tensor]) -> None:
            key = next(k for k in state if k.endswith("weight"))
            state[key.rsplit(".", 1)[0] + ".bogus_extra"] = torch.zeros(3)

        def drop(state: dict[str, torch.Tensor]) -> None:
            # a layer's matrix; a family without "layer" in its names (a CNN's units): any weight of >= 2 dims
            key = (sorted(k for k, v in state.items() if "layer" in k and k.endswith("weight") and v.ndim == 2)
                   or sorted(k for k, v in state.items() if k.endswith("weight") and v.ndim >= 2))[0]
            del state[key]

        _rewrite(extra, add)
        _rewrite(short, drop)
        for d, what in ((extra, "an unexpected tensor"), (short, "a missing tensor")):
            try:
                _load(d)
            except ModelError:
                continue
            raise AssertionError(f"a checkpoint with {what} was loaded")


def check_training(name: str, base: Path, task: str, tmp: Path, *, window_tokens: int = 24,
                   options: Mapping | None = None, base_family: str | None = None) -> Model:
    """From ``base``: a task head added (or kept), a few steps trained, saved in the
    family's format, loaded back by ``load_model`` with the task's head and labels and the
    trained network's outputs."""
    from toy_genome import toy_data

    from genaannot.labels import TASK_SPECS
    from genaannot.regions import Interval
    from genaannot.train import TrainConfig, build_from_base, train_model

    spec = TASK_SPECS[task]
    with _check(f"training a {spec.head} head ({task})", name):
        genome, ann = toy_data(n=2000)
        torch.manual_seed(0)
        setup = build_from_base(str(base), spec=spec, tokenizer=None, window_tokens=window_tokens, family=name,
                                options=dict(options or {}))
        assert setup.family == name and setup.network.head == spec.head, (setup.family, setup.network.head)
        assert setup.base_head in ("kept", "new")
        cfg = TrainConfig(task=task, window_tokens=window_tokens, steps=2, batch_size=2, lr=1e-3, seed=0,
                          device="cpu", save_every=2, eval_every=2, valid_windows=2)
        out = tmp / f"{name}-{task}"
        train_model(genome=genome, annotation=ann, setup=setup, config=cfg, train_regions=[Interval("c1", 0, 2000)],
                    valid_regions=[], model_dir=out, progress=False)
        model = _load(out)
        info = model.info
        assert info.family == name, f"the trained checkpoint loads as {info.family!r}"
        assert info.head == spec.head and info.labels == tuple(spec.labels), (info.head, info.labels)
        assert info.task == task and info.extra["genaannot"]["family"] == name
        seqs = SEQS[:2]
        got = model.predict(seqs)
        trained = Model(Loaded(setup.network, setup.tokenizer, normalize_problem_type(info)), device="cpu")
        want = trained.predict(seqs)
        for g, w in zip(got, want, strict=True):
            shape = (len(g.spans), len(spec.labels)) if spec.head == "token" else (len(spec.labels),)
            assert g.logits.shape == shape, (g.logits.shape, shape)
            np.testing.assert_allclose(g.logits, w.logits, rtol=1e-4, atol=1e-5,
                                       err_msg="the saved checkpoint does not predict what the trained network does")
        return model


def run_contract(name: str, maker: Maker, tmp: Path) -> None:
    """Every check on family ``name`` (its tiny checkpoints from ``maker``)."""
    tiny = maker(tmp / f"{name}-token", "token")
    model = check_load(name, tiny)
    check_predict_spans(name, model)
    check_batch_independence(name, model)
    check_content_offset(name, model)
    check_packed_windows(name, model)
    check_strict_loading(name, tiny, tmp / "strict")
    base = maker(tmp / f"{name}-base", "base")
    for task in ("splice", "promoter"):
        check_training(name, base, task, tmp)
