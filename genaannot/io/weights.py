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
from typing import TYPE_CHECKING, Any

from ..models.base import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["WEIGHT_FILES", "IDENTITY_FILES", "find_weight_file", "read_weights", "has_weights", "checkpoint_files",
           "checkpoint_sha256", "state_sha256", "check_not_lfs_pointer", "LFS_POINTER_START", "refused_pickle_message"]

#: file names tried in a checkpoint directory, in order of preference (safetensors first:
#: it cannot carry code and loads without unpickling)
WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

#: files beside the weights that change a model's outputs (architecture, tokenizer, thresholds,
#: RMT wrapper): part of its identity (:func:`checkpoint_sha256`) when present
IDENTITY_FILES: tuple[str, ...] = ("config.json", "genaannot.json", "rmt.json", "tokenizer.json",
                                   "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
#: suffixes of a single weight file given instead of a directory
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")

#: how a git-lfs pointer file begins (what `git clone` without git-lfs leaves instead of the file)
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1"


def check_not_lfs_pointer(path: str | Path) -> None:
    """Raise :class:`ModelError` when ``path`` is a git-lfs pointer file, not the file itself.

    A ``git clone`` of a model repository without git-lfs leaves ~130-byte text files in
    place of the weights (and of any other file kept in LFS); read as weights they fail
    with confusing errors (an "unsafe pickle", a "header too large").
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(len(LFS_POINTER_START))
    except OSError:
        return  # unreadable: the reader reports it
    if head == LFS_POINTER_START:
        d = path.parent
        raise ModelError(
            f"{path} is a git-lfs pointer, not the file itself: run `git lfs pull` in {d} "
            f"(or download with `hf download OWNER/NAME --local-dir {d}`)"
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
    import pickle
    import warnings

    import torch

    check_not_lfs_pointer(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # noqa: BLE001 - report any reader failure the same way
            raise ModelError(f"{path}: cannot read safetensors file ({err}); the file is damaged or incomplete, "
                             "download it again") from None
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_numpy_scalar_globals()):
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; the outcome is what counts
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ModelError(refused_pickle_message(path, err)) from None
    except Exception as err:  # noqa: BLE001
        raise ModelError(
            f"{path}: not a readable PyTorch weight file ({type(err).__name__}: {_first_line(err)}); "
            "the file is damaged or incomplete, download it again"
        ) from None
    if not isinstance(obj, Mapping):
        raise ModelError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return dict(obj)


def _numpy_scalar_globals() -> list[Any]:
    """What unpickling numpy number scalars needs (a trainer's ``.pth`` keeps its metrics as
    ``np.float64``): numpy's scalar constructor and dtypes. They build numbers and nothing
    else, so ``weights_only=True`` stays a loader that runs no code from the file."""
    import numpy as np

    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
             np.float16, np.float32, np.float64)
    return [np.float64(0).__reduce__()[0], np.dtype, *{type(np.dtype(k)) for k in kinds}]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else ""


def refused_pickle_message(
    path: str | Path,
    err: BaseException,
    *,
    what: str = "a plain tensor file",
    advice: str = "use the model's model.safetensors, or re-save plain tensors on a machine you trust",
) -> str:
    """The message for a pickle that ``torch.load(weights_only=True)`` refused.

    torch's own text advises retrying with ``weights_only=False``, which would run whatever
    code the file carries; it is never quoted. The message names what the file asked to
    import, when torch says so, and what to do instead.
    """
    import re

    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    why = (f"it asks to import {found.group(1)} when loaded, i.e. it would run code" if found
           else "it holds more than tensors (or is damaged), and unpickling it could run code")
    return f"{path}: refused for safety, not {what}: {why}. genaannot never loads such files; {advice}"


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
        check_not_lfs_pointer(path)
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            shards = sorted(set(index["weight_map"].values()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError, TypeError) as err:
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


def _shards(index: Path) -> list[Path]:
    try:
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (OSError, json.JSONDecodeError, KeyError, AttributeError, TypeError):
        return []  # an unreadable index is hashed as it is; loading it reports the problem
    return [index.parent / n for n in names]


def checkpoint_files(source: str | Path) -> list[Path] | None:
    """The files whose bytes decide a checkpoint's outputs: its weights (every shard of a
    sharded one) and the :data:`IDENTITY_FILES` beside them; ``None`` when ``source`` is
    neither a checkpoint directory nor a weight file (an in-memory model's made-up source)."""
    p = Path(source)
    if p.is_dir() and has_weights(p):
        weights = find_weight_file(p)
        directory = p
    elif p.is_file() and (p.name.endswith(".index.json") or p.suffix in _WEIGHT_SUFFIXES):
        weights, directory = p, p.parent
    else:
        return None
    files = [weights, *(_shards(weights) if weights.name.endswith(".index.json") else [])]
    files += [directory / n for n in IDENTITY_FILES if (directory / n).is_file()]
    return list(dict.fromkeys(files))


def checkpoint_sha256(source: str | Path, *, chunk: int = 1 << 20) -> str | None:
    """SHA-256 over the :func:`checkpoint_files` of ``source`` (name, size and bytes of each,
    read in ``chunk``-byte pieces: a multi-GB checkpoint costs seconds, not its size in
    memory); ``None`` when ``source`` has no files (see :func:`state_sha256`)."""
    import hashlib

    files = checkpoint_files(source)
    if files is None:
        return None
    h = hashlib.sha256()
    for f in files:
        try:
            with f.open("rb") as fh:
                h.update(f"{f.name}\0{f.stat().st_size}\0".encode())
                while block := fh.read(chunk):
                    h.update(block)
        except OSError as err:
            raise ModelError(f"{f}: cannot read to identify the model ({err.strerror})") from None
    return h.hexdigest()


def state_sha256(network: torch.nn.Module) -> str:
    """SHA-256 of a network's state (class, then each tensor's name, dtype, shape and bytes on
    CPU, names sorted): the identity of a model that was never a file (tests, wrappers)."""
    import hashlib

    import torch

    h = hashlib.sha256(f"{type(network).__module__}.{type(network).__qualname__}\0".encode())
    state = network.state_dict()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}\0{t.dtype}\0{tuple(state[name].shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
