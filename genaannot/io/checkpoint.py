"""Model and training checkpoints on disk: a model directory's ``config.json``, ``rmt.json``
and ``genaannot.json``, step directories, trainer state and the ``last`` pointer.

Weight files are read by :mod:`genaannot.io.weights`, tokenizer files by
:mod:`genaannot.io.tokenizers` (``write_tokenizer_json`` is re-exported here).

Layout (``genaannot train -o MODEL_DIR``)::

    MODEL_DIR/                      best model (config.json, model.safetensors, tokenizer, genaannot.json)
    MODEL_DIR/checkpoints/step-NNNNNNN/   a complete model directory + trainer_state.pt
    MODEL_DIR/checkpoints/last      pointer file: the name of the newest step directory
    MODEL_DIR/checkpoints/tokenizer/tokenizer.json   a tokenizer made for the run

Every file appears complete or not at all (:mod:`genaannot.io.atomic`): a step directory
is written under a temporary name and renamed (:class:`~genaannot.io.atomic.AtomicDir`); a
model directory's files are staged and moved in one by one
(:func:`~genaannot.io.atomic.staged_files`); ``last``, ``tokenizer.json`` and
``genaannot.json`` are written to a temporary file and moved into place. Files get the mode
a plain ``open`` would give (``0o666`` minus the umask). Trainer state is read back with
``torch.load(..., weights_only=True)`` (no code from a checkpoint runs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..conventions import SITE_CONVENTIONS
from ..models.base import ModelError
from .atomic import (
    AtomicDir,
    OutputError,
    is_write_failure,
    output_error,
    staged_files,
    write_bytes_atomic,
)
from .tokenizers import write_tokenizer_files, write_tokenizer_json
from .weights import check_not_lfs_pointer, refused_pickle_message

__all__ = [
    "CONFIG",
    "RMT_META",
    "read_config",
    "read_rmt_meta",
    "write_model_dir",
    "TRAINER_STATE",
    "METADATA",
    "save_step",
    "last_checkpoint",
    "load_training_state",
    "TRAINER_STATE_KEYS",
    "write_tokenizer_json",
    "read_metadata",
    "update_metadata",
]

#: trainer state file inside a step directory
TRAINER_STATE = "trainer_state.pt"
#: genaannot's own metadata file inside a checkpoint directory
METADATA = "genaannot.json"
#: a Hugging Face model directory's configuration
CONFIG = "config.json"
#: RMT wrapper parameters beside a trainer checkpoint (``*.pth``)
RMT_META = "rmt.json"


def _read_json_object(path: Path, *, what: str) -> dict[str, Any]:
    """A JSON file that must hold an object; :class:`ModelError` naming ``path`` otherwise."""
    check_not_lfs_pointer(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelError(f"{path}: not valid JSON ({err}); {what}") from None
    except UnicodeDecodeError:
        raise ModelError(f"{path}: not a text file (not UTF-8); {what}") from None
    except OSError as err:
        raise ModelError(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string"}.get(type(value), type(value).__name__)
        raise ModelError(f"{path}: expected a JSON object {{...}}, found {kind}; {what}")
    return value


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint directory, or of the directory holding ``path``.

    Raises
    ------
    ModelError
        There is no ``config.json``, or it is not a JSON object.
    """
    path = Path(path)
    cfg = path / CONFIG if path.is_dir() else path.parent / CONFIG
    if not cfg.is_file():
        raise ModelError(f"{path}: no config.json; a checkpoint directory needs config.json and weights")
    return _read_json_object(cfg, what="use the config.json that came with the model")


def read_rmt_meta(directory: str | Path) -> dict[str, Any]:
    """``directory/rmt.json`` (``{}`` when there is none).

    Raises
    ------
    ModelError
        The file is not a JSON object.
    """
    path = Path(directory) / RMT_META
    if not path.is_file():
        return {}
    return _read_json_object(path, what="fix rmt.json or remove it and pass the RMT options")


def _atomic_bytes(path: Path, data: bytes) -> None:
    # the directory exists (callers make it); the mode is what open() would give
    write_bytes_atomic(path, data, mode=None, check=False)


def write_model_dir(
    directory: str | Path,
    *,
    tensors: dict[str, Any],
    config: dict[str, Any],
    tokenizer: Any,
    metadata: dict[str, Any] | None = None,
    weights_file: str = "model.safetensors",
    json_files: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write a Hugging Face–layout model directory: ``model.safetensors`` (``tensors``, name ->
    CPU tensor), ``config.json``, the tokenizer's files (``tokenizer.files()``) and, when
    ``metadata`` is given, ``genaannot.json``.

    ``weights_file`` ending in ``.pth`` writes an RMT trainer checkpoint instead:
    ``{"model_state_dict": tensors}`` saved with ``torch.save`` (tensors only, so it loads
    with ``weights_only=True``). ``json_files`` (name -> object) are written beside
    (``rmt.json``).

    The files are written into a staging directory inside ``directory`` and moved in one by
    one (:func:`genaannot.io.atomic.staged_files`), so a crash never leaves a half-written file.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    try:
        with staged_files(directory) as tmp:
            if weights_file.endswith(".pth"):
                import torch

                torch.save({"model_state_dict": tensors}, tmp / weights_file)
            else:
                save_file(tensors, str(tmp / weights_file), metadata={"format": "pt"})
            (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            for name, obj in (json_files or {}).items():
                (tmp / name).write_text(json.dumps(obj, indent=2) + "\n")
            write_tokenizer_files(tmp, tokenizer)
            if metadata is not None:
                (tmp / METADATA).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    except Exception as err:
        if is_write_failure(err):  # disk full, quota, I/O error: the staging directory is gone
            raise output_error(directory, err, doing="cannot save the model") from None
        raise
    return directory


def save_step(
    ckpt_root: str | Path,
    *,
    step: int,
    write_model: Callable[[Path], Any],
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``ckpt_root/step-NNNNNNN`` (model + trainer state) and point ``last`` at it.

    Parameters
    ----------
    ckpt_root : str or Path
        The ``checkpoints`` directory (created when missing).
    step : int
        Optimiser step; the directory is ``step-{step:07d}``.
    write_model : callable
        ``write_model(directory)`` writes the model files into ``directory`` (e.g.
        :func:`genaannot.models.gena_bert.save_pretrained`).
    state : dict
        Trainer state (optimiser/scheduler state dicts, step, RNG states, history): tensors,
        numbers, strings, lists and dicts only, so that it loads with ``weights_only=True``.
    keep : int
        Step directories to keep (the oldest beyond this are removed).

    Returns
    -------
    Path
        The step directory.
    """
    import torch

    ckpt_root = Path(ckpt_root)
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    final = ckpt_root / name
    d = AtomicDir(final)  # the step directory appears complete or not at all
    try:
        write_model(d.tmp)
        torch.save(state, d.tmp / TRAINER_STATE)
        d.commit()
    except BaseException as err:
        d.abort()
        if isinstance(err, OutputError):  # from write_model: name the step, not its temporary directory
            out = OutputError(str(err).replace(str(d.tmp), str(final)))
            out.errno = err.errno
            raise out from None
        if isinstance(err, Exception) and is_write_failure(err):  # disk full, quota, I/O error
            raise output_error(final, err, doing="cannot save the checkpoint") from None
        raise
    try:
        _atomic_bytes(ckpt_root / "last", (name + "\n").encode())
    except OSError as err:
        raise output_error(ckpt_root / "last", err, doing="cannot save the checkpoint pointer") from None
    steps = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def last_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The step directory ``ckpt_root/last`` points at, or None (no pointer, or a stale one)."""
    ckpt_root = Path(ckpt_root)
    ptr = ckpt_root / "last"
    if not ptr.is_file():
        return None
    p = ckpt_root / ptr.read_text().strip()
    return p if (p / TRAINER_STATE).is_file() else None


#: what ``genaannot train`` writes into ``trainer_state.pt`` (and needs back to resume)
TRAINER_STATE_KEYS = ("step", "total", "optimizer", "scheduler", "numpy_rng", "torch_rng", "best", "best_step", "history")

#: ``genaannot.json`` keys genaannot reads, and their JSON kinds
_METADATA_KINDS: dict[str, tuple[type, ...]] = {
    "task": (str,), "thresholds": (dict,), "threshold_selection": (dict,), "window_bp": (int,),
    "base_model": (str,), "tokenizer_kind": (str,), "test_regions": (list,), "valid_regions": (list,),
    "train_regions": (list,), "test_metrics": (dict,), "test_baseline": (dict,), "site_convention": (str,),
}


def load_training_state(step_dir: str | Path, *, required: Iterable[str] = ()) -> dict[str, Any]:
    """Trainer state of a step directory, read with ``torch.load(weights_only=True)`` on the CPU.

    Parameters
    ----------
    step_dir : str or Path
        The step directory.
    required : iterable of str
        Keys the state must have (the trainer passes :data:`TRAINER_STATE_KEYS`).

    Raises
    ------
    ModelError
        The file is refused by the safe loader (it would run code, or is damaged), is not
        a dict, or lacks a ``required`` key.
    """
    import pickle
    import warnings

    import torch

    path = Path(step_dir) / TRAINER_STATE
    what = "a genaannot trainer state"
    again = "train again without --resume (or from another checkpoint with --base-model)"
    check_not_lfs_pointer(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ModelError(refused_pickle_message(path, err, what=what, advice=again)) from None
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file
        raise ModelError(f"{path}: not {what} ({type(err).__name__}: the file is damaged); {again}") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not {what} (a {type(state).__name__}, not a dict); {again}")
    missing = [k for k in required if k not in state]
    if missing:
        raise ModelError(f"{path}: not {what} (no {', '.join(missing[:4])}); {again}")
    return state


def read_metadata(model_dir: str | Path) -> dict[str, Any]:
    """A checkpoint's ``genaannot.json`` (``{}`` when it has none).

    ``model_dir`` may also be a file inside the checkpoint (a ``.pth``); its directory is used.

    Raises
    ------
    ModelError
        The file is not a JSON object, or a key genaannot reads has the wrong kind.
    """
    model_dir = Path(model_dir)
    path = (model_dir if model_dir.is_dir() else model_dir.parent) / METADATA
    if not path.is_file():
        return {}
    fix = "fix or remove genaannot.json (it holds the task and call thresholds written by genaannot)"
    meta = _read_json_object(path, what=fix)
    for key, kinds in _METADATA_KINDS.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ModelError(f"{path}: {key} must be {' or '.join(k.__name__ for k in kinds)}, "
                             f"not {type(value).__name__}; {fix}")
    if meta.get("site_convention") is not None and meta["site_convention"] not in SITE_CONVENTIONS:
        raise ModelError(f"{path}: site_convention {meta['site_convention']!r} is not one of "
                         f"{', '.join(SITE_CONVENTIONS)}; {fix}")
    thresholds = meta.get("thresholds") or {}
    bad = [k for k, v in thresholds.items() if not isinstance(v, (int, float)) or isinstance(v, bool)]
    if bad:
        raise ModelError(f"{path}: thresholds.{bad[0]} must be a number; {fix}")
    return meta


def update_metadata(model_dir: str | Path, updates: dict[str, Any]) -> Path:
    """Merge ``updates`` (top-level keys replaced) into ``model_dir/genaannot.json``; atomic.

    Returns
    -------
    Path
        The ``genaannot.json`` written (created when missing).
    """
    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    meta.update(updates)
    path = model_dir / METADATA
    _atomic_bytes(path, (json.dumps(meta, indent=2, default=float) + "\n").encode())
    return path
