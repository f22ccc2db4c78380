"""Model weight files: ``model.safetensors``, ``pytorch_model.bin``, sharded checkpoints with a
``*.index.json`` (safetensors or pickled shards), and trainer ``.pth`` files.

Pickled files are always read with ``torch.load(..., weights_only=True)`` so that no code in
them runs; safetensors cannot carry code at all and are preferred. Fitting the tensors onto
a network is :func:`genaannot.models.weights.load_strict`'s business.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..models.base import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["WEIGHT_FILES", "find_weight_file", "read_weights", "has_weights"]

#: file names tried in a checkpoint directory, in order of preference (safetensors first:
#: it cannot carry code and loads without unpickling)
WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def find_weight_file(directory: Path) -> Path:
    """Return the preferred weight file of a checkpoint directory.

    Raises :class:`ModelError` naming the files looked for when there is none.
    """
    directory = Path(directory)
    for name in WEIGHT_FILES:
        p = directory / name
        if p.is_file():
            return p
    raise ModelError(f"{directory}: no weights found (looked for {', '.join(WEIGHT_FILES)})")


def _read_one(path: Path) -> dict[str, torch.Tensor]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # noqa: BLE001 - report any reader failure the same way
            raise ModelError(f"{path}: cannot read safetensors file ({err})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ModelError(
            f"{path}: cannot read with torch.load(weights_only=True) ({type(err).__name__}: {err}); "
            "only plain tensor checkpoints are accepted"
        ) from None
    if not isinstance(obj, Mapping):
        raise ModelError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return dict(obj)


def read_weights(path: str | Path, *, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from a file or a checkpoint directory.

    Parameters
    ----------
    path
        A directory (see :data:`WEIGHT_FILES`), a ``.safetensors``/``.bin``/``.pth`` file, or a
        sharded ``*.index.json``.
    key
        For trainer checkpoints that wrap the state dict (``{"model_state_dict": {...}, ...}``):
        the entry to return. When ``None`` and the file holds exactly such a wrapper under
        ``model_state_dict`` or ``state_dict``, that entry is returned.

    Returns
    -------
    dict of str -> Tensor, on CPU, in the dtype stored.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        path = find_weight_file(path)
    if not path.is_file():
        raise ModelError(f"{path}: weight file not found")
    if path.name.endswith(".index.json"):
        try:
            index = json.loads(path.read_text())
            shards = sorted(set(index["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as err:
            raise ModelError(f"{path}: not a valid shard index ({err})") from None
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_read_one(path.parent / shard))
        missing = sorted(set(index["weight_map"]) - set(state))
        if missing:
            raise ModelError(f"{path}: shards lack {len(missing)} indexed tensors, e.g. {missing[:5]}")
        return state
    state = _read_one(path)
    if key is None:
        for k in ("model_state_dict", "state_dict"):
            if isinstance(state.get(k), Mapping):
                key = k
                break
    if key is not None:
        if not isinstance(state.get(key), Mapping):
            raise ModelError(f"{path}: no {key!r} entry (has {sorted(state)[:10]})")
        state = dict(state[key])
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"{path}: entries that are not tensors: {bad[:10]}")
    return state


def has_weights(directory: str | Path) -> bool:
    """Whether ``directory`` holds one of :data:`WEIGHT_FILES`."""
    return any((Path(directory) / n).is_file() for n in WEIGHT_FILES)
