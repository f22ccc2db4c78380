"""Find a checkpoint, pick its family, and load it behind one interface.

Sources, tried in order:

1. a local path: a Hugging Face–format directory (``config.json`` + ``model.safetensors`` /
   ``pytorch_model.bin`` / a sharded index), or an RMT trainer checkpoint (``*.pth`` with
   ``rmt.json`` beside it);
2. a name from :data:`genaannot.models.catalog.CATALOG` (bundled demo models, published ids);
3. a hub id ``owner/name`` (optionally ``owner/name@branch``) found in the local Hugging Face
   cache. Nothing is downloaded; a missing id fails with instructions.

No code is ever executed from a checkpoint directory (no ``trust_remote_code``), and pickled
weights are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from .base import Loaded, Model, ModelError, ModelInfo, Prediction, normalize_problem_type
from .families import FAMILIES, Family, family_module

__all__ = ["load_model", "resolve_checkpoint", "detect_family", "FAMILIES", "Family", "family_module", "Model", "ModelError",
           "ModelInfo", "Prediction"]

#: config.json `model_type` -> family (derived from the registry's entries)
MODEL_TYPES: dict[str, str] = {mt: name for name, fam in FAMILIES.items() for mt in fam.model_types}


def resolve_checkpoint(path_or_id: str | Path, *, revision: str | None = None) -> Path:
    """Return the local path of a checkpoint (directory or ``.pth`` file).

    Raises :class:`ModelError` naming the id and how to provide the files when it is not
    available locally.
    """
    text = str(path_or_id)
    p = Path(text).expanduser()
    if p.exists():
        return p
    from .catalog import CATALOG, local_for_task

    # a catalogue entry, by name or by its hub id (a task's default): what is here instead
    hub, _, rev = text.partition("@")
    known = CATALOG.get(text) or next((e for e in CATALOG.values() if e.hub_id == hub and (e.revision or "") == rev
                                       and e.hub_id), None)
    others = local_for_task(known.task, besides=known.name) if known is not None else []
    here = f" Available here for {known.task} without a download: {', '.join(others)}." if others else ""
    if text in CATALOG:
        entry = CATALOG[text]
        local = entry.local_path()
        if local is not None:
            return local
        if not entry.hub_id:  # bundled only: nothing to look for in the hub cache
            looked = ", ".join(str(p) for p in entry.search_paths())
            raise ModelError(
                f"model {text!r} is bundled with the genaannot source repository, in {entry.bundled}/, "
                f"and this installation does not include it (looked in {looked}). Clone the genaannot "
                f"repository and pass the directory with --model PATH/TO/genaannot/{entry.bundled} "
                "(or load_model(that path)), or install genaannot from the clone (`pip install -e .`) "
                "so that the name resolves."
            )
        text, revision = entry.hub_id, revision or entry.revision
    if "@" in text:
        text, revision = text.split("@", 1)
    if text.count("/") == 1 and not text.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(text, revision=revision, local_files_only=True))
        except Exception as err:  # noqa: BLE001 - any failure means "not cached"
            rev = f" (revision {revision})" if revision else ""
            raise ModelError(
                f"model {text!r}{rev} is not in the local Hugging Face cache and nothing is downloaded. "
                f"On a machine with network run `hf download {text}"
                + (f" --revision {revision}" if revision else "")
                + " --local-dir DIR` (huggingface_hub < 1.0: `huggingface-cli download`; or `git lfs install && "
                + "git clone" + (f" -b {revision}" if revision else "")
                + f" https://huggingface.co/{text}`) and pass the directory with --model DIR, or copy it into the "
                f"HF cache (HF_HOME). [{type(err).__name__}]{here}"
            ) from None
    import difflib

    near = difflib.get_close_matches(text, list(CATALOG), n=3, cutoff=0.8)
    raise ModelError(
        f"no model at {text!r}: not a file or directory, not a known name "
        "(see `genaannot models list`), and not a hub id of the form owner/name"
        + (f"; did you mean {' or '.join(near)}?" if near else "")
    )


def read_config(path: Path) -> dict[str, Any]:
    """A checkpoint's ``config.json`` (read by :func:`genaannot.io.checkpoint.read_config`)."""
    # io imports models.base, so models/__init__ imports io only when called
    from ..io.checkpoint import read_config as read

    return read(path)


def detect_family(path: Path, config: dict[str, Any], *, registry: Mapping[str, Family] | None = None) -> str:
    """Pick the family from the files and ``config.json`` (never from ``auto_map``).

    Each entry's ``claims`` predicate (files such as RMT's ``rmt.json`` / ``*.pth``) is tried
    first, then ``model_type`` against the entries' ``model_types``.
    """
    registry = FAMILIES if registry is None else registry
    for name, fam in registry.items():
        if fam.claims:
            module_name, func = fam.claims.split(":")
            if getattr(import_module(module_name), func)(path, config):
                return name
    mt = config.get("model_type")
    for name, fam in registry.items():
        if mt in fam.model_types:
            return name
    types = [t for fam in registry.values() for t in fam.model_types]
    claims = [n for n, fam in registry.items() if fam.claims]
    raise ModelError(
        f"{path}: unsupported model_type {mt!r} (architectures {config.get('architectures')}); "
        f"supported: {', '.join(types)}" + (f" and the checkpoint layouts of {', '.join(claims)}" if claims else "")
    )


def read_task_metadata(path: Path) -> dict[str, Any]:
    """``genaannot.json`` written beside checkpoints made by ``genaannot train`` (may be absent)."""
    from ..io.checkpoint import read_metadata

    return read_metadata(path)


def load_model(
    path_or_id: str | Path,
    *,
    device: str | None = None,
    dtype: str | None = None,
    revision: str | None = None,
    **options: Any,
) -> Model:
    """Load any supported checkpoint and return a :class:`Model`.

    Parameters
    ----------
    path_or_id
        Local directory / ``.pth`` file, a catalogue name (``genaannot models list``), or a
        cached hub id ``owner/name[@branch]``.
    device
        ``cpu``, ``cuda``, ``cuda:1``; default: CUDA when available.
    dtype
        Compute precision: ``fp32`` (default), ``bf16`` or ``fp16`` (autocast; linear and conv1d
        weights held in that dtype, the rest fp32).
    options
        ``compile=True`` (or a dict of ``torch.compile`` arguments) compiles the network,
        falling back to eager with a warning; everything else goes to the family loader
        (e.g. RMT ``segment_size``, ``max_n_segments``; BigBird ``tile_tokens``).
    """
    compile_opt = options.pop("compile", False)
    path = resolve_checkpoint(path_or_id, revision=revision)
    config = read_config(path)
    family = detect_family(path, config)
    loaded: Loaded = family_module(family).load(path, config=config, **options)
    meta = read_task_metadata(path)
    if meta:  # genaannot.json: task, thresholds, site_convention (a hand-written one may hold no task)
        from dataclasses import replace

        task = loaded.info.task or meta.get("task")
        loaded.info = replace(loaded.info, task=task, extra={**loaded.info.extra, "genaannot": meta})
    loaded.info = normalize_problem_type(loaded.info)  # once, for every family
    model = Model(loaded, device=device, precision=_precision(dtype), compile=compile_opt)
    model.load_options = dict(options)  # so that other processes (scan --devices) load the same model
    return model


def _precision(dtype: Any) -> str:
    if dtype is None:
        return "fp32"
    text = str(dtype).replace("torch.", "")
    return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(text, text)
