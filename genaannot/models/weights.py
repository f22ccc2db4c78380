"""Fitting checkpoint weights strictly onto a module.

The weight files are read by :mod:`genaannot.io.weights` (``WEIGHT_FILES``,
``find_weight_file`` and ``read_weights`` are re-exported here, where callers import them
from).

:func:`load_strict` refuses to load anything that does not fit: it lists missing keys,
unexpected keys and shape mismatches in one :class:`~genaannot.models.base.ModelError`,
instead of silently leaving randomly initialised layers behind (what ``strict=False``
loaders do when a head is missing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..io.weights import WEIGHT_FILES, find_weight_file, read_weights
from .base import ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["WEIGHT_FILES", "find_weight_file", "read_weights", "load_strict", "check_strict", "LoadReport", "n_parameters"]


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_strict` did besides the 1:1 copies."""

    filled_tied: tuple[str, ...]  # keys absent from the file, taken from a tied twin
    ignored: tuple[str, ...]  # file keys dropped because they match ``ignore``


def _tied_groups(module: nn.Module, own: Mapping[str, torch.Tensor]) -> list[list[str]]:
    """Groups of state-dict keys that are one tensor in the module (tied weights)."""
    if any(v.is_meta for v in own.values()):
        # meta tensors have no storage to compare: group the names of one Parameter/buffer object
        by_id: dict[int, list[str]] = {}
        named = [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
        for k, v in named:
            if k in own:
                by_id.setdefault(id(v), []).append(k)
        return [g for g in by_id.values() if len(g) > 1]
    by_ptr: dict[tuple[int, int, tuple[int, ...]], list[str]] = {}
    for k, v in own.items():
        by_ptr.setdefault((v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)), []).append(k)
    return [g for g in by_ptr.values() if len(g) > 1]


def _fmt(keys: Iterable[str], n: int = 25) -> str:
    keys = list(keys)
    text = ", ".join(keys[:n])
    return text + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def check_strict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    ignore: Iterable[str] = (),
    shown_prefix: str = "",
    hint: str | None = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The check of :func:`load_strict` without the copy; ``module`` may live on the ``meta``
    device (:func:`genaannot.models.validate.check_on_meta`).

    Returns
    -------
    state : dict
        ``state`` with tied twins filled in and ignored keys dropped.
    report : LoadReport

    Raises
    ------
    ModelError
        As :func:`load_strict`.
    """
    import torch

    ignore = tuple(ignore)

    def ignored(k: str) -> bool:
        return any(k == s or k.endswith("." + s) for s in ignore)

    own = module.state_dict()
    state = dict(state)
    filled: list[str] = []
    mismatched_ties: list[str] = []
    for group in _tied_groups(module, own):
        present = [k for k in group if k in state]
        if not present:
            continue
        ref = state[present[0]]
        for k in group:
            if k not in state:
                state[k] = ref
                filled.append(k)
            elif state[k].shape == ref.shape and not torch.equal(state[k], ref):
                mismatched_ties.append(f"{k} != {present[0]}")
    dropped = [k for k in state if k not in own and ignored(k)]
    for k in dropped:
        del state[k]
    pre = shown_prefix
    missing = [pre + k for k in own if k not in state and not ignored(k)]
    unexpected = [pre + k for k in state if k not in own]
    shapes = [
        f"{pre}{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    mismatched_ties = [pre + t.replace(" != ", " != " + pre) for t in mismatched_ties]
    problems = []
    if missing:
        problems.append(f"missing keys: {_fmt(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_fmt(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_fmt(shapes, 10)}")
    if mismatched_ties:
        problems.append(f"tied weights stored with different values: {_fmt(mismatched_ties)}")
    if problems:
        raise ModelError(
            f"{source}: weights do not fit {type(module).__name__}: " + "; ".join(problems)
            + (f" ({hint})" if hint else "")
        )
    return state, LoadReport(filled_tied=tuple(filled), ignored=tuple(dropped))


def load_strict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    ignore: Iterable[str] = (),
    shown_prefix: str = "",
    hint: str | None = None,
) -> LoadReport:
    """Copy ``state`` into ``module``, refusing anything that does not fit exactly.

    Parameters
    ----------
    module
        The freshly built network.
    state
        Tensors read from the checkpoint (keys already renamed to the module's names).
    source
        Shown in error messages (the file).
    ignore
        Key suffixes that may be present in the file without a counterpart in the module
        and vice versa (non-learned buffers such as ``embeddings.position_ids``).
    shown_prefix
        Prepended to every key named in an error, when the file stores the keys under a
        prefix the caller removed (RMT trainer checkpoints: ``model.``), so that the
        message names the keys as they are in the file.
    hint
        Appended to the error message (what the mismatch probably means).

    Raises
    ------
    ModelError
        Listing every missing key, unexpected key and shape mismatch. Tied weights (the MLM
        decoder sharing the word embeddings) may be stored once; a tied twin stored with a
        different value is an error.
    """
    import torch

    state, report = check_strict(module, state, source=source, ignore=ignore, shown_prefix=shown_prefix, hint=hint)
    own = module.state_dict()
    # buffers the module has but the file may lack (ignored) keep their built values
    for k in own:
        if k not in state:
            state[k] = own[k]
    with torch.no_grad():
        module.load_state_dict(state, strict=True)
    return report


def n_parameters(module: nn.Module) -> int:
    """Learned parameters, tied ones counted once."""
    return sum(p.numel() for p in module.parameters())
