"""``models ensemble``: combine trained dilated-CNN checkpoints into one model.

The members are loaded, checked to be models of one task (same labels, head, problem type,
site convention and data split), and written as one ``dilated_cnn`` checkpoint whose network
averages its members' outputs (:class:`genaannot.models.dilated_cnn.DilatedCNNEnsemble`).
Every command then loads it like any other checkpoint.

Call thresholds are not carried over (the members' were chosen for each member's values, not
for their mean): choose the ensemble's on the members' validation regions with
``genaannot evaluate --write-thresholds``; until then a scan writes tracks and uses the task's
default threshold for calls.

The recorded split is the members' shared one: every member must have been trained on regions
that no member validated or tested on, so that the ensemble's ``valid_regions`` and
``test_regions`` are held out from all of its weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.checkpoint import read_config, read_metadata, write_model_dir
from ..io.weights import checkpoint_sha256
from ..regions import RegionError, parse_region

__all__ = ["EnsembleError", "EnsembleResult", "ensemble_models"]

#: genaannot.json keys that every member must agree on (a model of one task, one site convention)
_SAME = ("task", "labels", "site_convention")


class EnsembleError(ValueError):
    """Members that cannot be combined, or an output that cannot be written; the message says why."""


@dataclass
class EnsembleResult:
    """What :func:`ensemble_models` wrote."""

    model_dir: Path
    members: list[str]
    combine: str
    window_tokens: int
    n_params: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _silent(_msg: str) -> None:
    pass


def _regions(meta: dict[str, Any], key: str, member: str) -> list[Any]:
    out = []
    for text in meta.get(key) or []:
        try:
            out.append(parse_region(str(text)))
        except RegionError as err:
            raise EnsembleError(f"{member}: genaannot.json {key} entry {text!r}: {err}") from None
    return out


def _check_split(metas: list[tuple[str, dict[str, Any]]]) -> None:
    """Refuse members trained on what another member validated or tested on."""
    held = [(name, key, iv) for name, m in metas for key in ("valid_regions", "test_regions")
            for iv in _regions(m, key, name)]
    for name, m in metas:
        for tr in _regions(m, "train_regions", name):
            for other, key, iv in held:
                if tr.chrom == iv.chrom and tr.start < iv.end and iv.start < tr.end:
                    raise EnsembleError(
                        f"{name} was trained on {tr.ucsc()}, which {other} holds out ({key.split('_')[0]} "
                        f"{iv.ucsc()}); members must share one split so that the ensemble's held-out regions "
                        "are held out from every member")


def _union(metas: list[dict[str, Any]], key: str) -> list[str]:
    seen: dict[str, None] = {}
    for m in metas:
        for text in m.get(key) or []:
            seen.setdefault(str(text), None)
    return list(seen)


def ensemble_models(
    *,
    members: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    combine: str = "probability",
    window_tokens: int | None = None,
    say: Callable[[str], None] = _silent,
) -> EnsembleResult:
    """Write one ``dilated_cnn`` checkpoint that averages ``members``.

    Parameters
    ----------
    members : two or more checkpoint paths or catalogue names (``dilated_cnn`` models of one
        task, trained by ``genaannot train --family dilated_cnn``)
    output : new model directory
    combine : ``probability`` (mean of the members' sigmoid/softmax outputs) or ``logit``
        (:data:`genaannot.models.dilated_cnn.COMBINES`)
    window_tokens : the ensemble's scan window; default the largest of the members'
    say : receives one line per step

    Returns
    -------
    EnsembleResult

    Raises
    ------
    EnsembleError
        Fewer than two members, a member given twice, an output that exists or is a member,
        members of different tasks/labels/site conventions or splits (naming the member).
    genaannot.models.base.ModelError
        A member that does not load, is of another family, or is itself an ensemble.
    """
    from ..models import load_model, resolve_checkpoint
    from ..models.dilated_cnn import COMBINES, combine_members

    if combine not in COMBINES:
        raise EnsembleError(f"combine {combine!r}: one of {', '.join(COMBINES)}")
    if len(members) < 2:
        raise EnsembleError(f"an ensemble needs at least two members, not {len(members)}")
    out = Path(output)
    paths = [resolve_checkpoint(str(m)) for m in members]
    for i, p in enumerate(paths):
        if p in paths[:i]:
            raise EnsembleError(f"{members[i]} is given twice (as {p}); each member counts once in the mean")
        if out.resolve() == p.resolve():
            raise EnsembleError(f"-o {out} is member {members[i]}; write the ensemble to a new directory")
    if (out / "config.json").exists():
        raise EnsembleError(f"{out} already holds a model (config.json); choose a new directory")
    loaded = []
    metas: list[tuple[str, dict[str, Any]]] = []
    for name, path in zip(members, paths, strict=True):
        model = load_model(path, device="cpu")
        if model.info.family != "dilated_cnn":
            raise EnsembleError(f"{name} is a {model.info.family} model; `models ensemble` combines dilated_cnn "
                                "checkpoints (genaannot train --family dilated_cnn)")
        loaded.append((read_config(path), model))
        metas.append((str(name), read_metadata(path)))
        say(f"member {len(loaded)}: {name} ({model.info.n_params:,} parameters, "
            f"{model.info.extra.get('receptive_field_bp')}-bp field)")
    first_name, first = metas[0]
    for name, meta in metas[1:]:
        for key in _SAME:
            if meta.get(key) != first.get(key):
                raise EnsembleError(f"{name}: genaannot.json {key} {meta.get(key)!r} differs from {first_name}'s "
                                    f"{first.get(key)!r}; members must be models of one task and site convention")
    _check_split(metas)
    network, config, tensors = combine_members([(c, m.network) for c, m in loaded], combine=combine,
                                               window_tokens=window_tokens)
    plain = [m for _, m in metas]
    common = {k: first[k] for k in ("task", "labels", "site_convention", "site_definitions", "genome", "annotation")
              if k in first and all(m.get(k) == first[k] for m in plain)}
    field_bp = int(config["receptive_field_bp"])
    metadata: dict[str, Any] = {
        **common,
        "window_tokens": int(config["window_tokens"]),
        "window_bp": int(config["window_tokens"]),
        "family": "dilated_cnn",
        "family_details": {"receptive_field_bp": field_bp, "members": len(loaded), "combine": combine},
        "tokenizer_kind": "own",
        "train_regions": _union(plain, "train_regions"),
        "valid_regions": _union(plain, "valid_regions"),
        "test_regions": _union(plain, "test_regions"),
        "ensemble": {
            "combine": combine,
            "members": [
                {"source": name, "weights_sha256": checkpoint_sha256(path),
                 "receptive_field_bp": m.info.extra.get("receptive_field_bp"), "n_params": m.info.n_params,
                 **{k: meta[k] for k in ("best_step", "valid_score", "train", "family_options") if k in meta}}
                for (name, meta), path, (_, m) in zip(metas, paths, loaded, strict=True)
            ],
        },
    }
    write_model_dir(out, tensors=tensors, config=config, tokenizer=loaded[0][1].tokenizer, metadata=metadata)
    n_params = sum(p.numel() for p in network.parameters())
    say(f"wrote {out}: {len(loaded)} members, combine {combine}, {n_params:,} parameters, scan window "
        f"{config['window_tokens']} bp; choose its call thresholds with `genaannot evaluate --write-thresholds` "
        f"on its validation regions ({', '.join(metadata['valid_regions']) or 'none recorded'})")
    return EnsembleResult(model_dir=out, members=[str(m) for m in members], combine=combine,
                          window_tokens=int(config["window_tokens"]), n_params=n_params, metadata=metadata)
