"""``genaannot models list``, ``models inspect`` and ``models ensemble``.

Nothing here touches the network: ``list`` looks into the local Hugging Face cache only,
``inspect`` loads a local checkpoint (or a cached hub id) on CPU, ``ensemble`` combines local
dilated-CNN checkpoints (:func:`genaannot.pipeline.ensemble.ensemble_models`).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..pipeline.ensemble import ensemble_models
from ..tasks import TASKS
from .options import RegistryChoice, library_default, parse_options

__all__ = ["models"]


@click.group()
def models() -> None:
    """List known checkpoints or inspect one."""


def _format_held_out(h: dict) -> str:
    parts = []
    for label, m in h.get("model", {}).items():
        base = h.get("baseline", {}).get(label, {})
        ap = f"{label} AP {m.get('average_precision', float('nan')):.3f}"
        if "average_precision" in base:
            ap += f" (PWM {base['average_precision']:.3f})"
        parts.append(ap)
    where = ", ".join(h.get("regions", []))
    return "; ".join(parts) + (f" on {where}" if where else "")


@models.command("list")
@click.option("--task", default=None, help=f"Only entries of this task ({', '.join(TASKS)}).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(task: str | None, as_json: bool) -> None:
    """Known checkpoints per task, and whether each is available locally (nothing is downloaded)."""
    from ..models.catalog import list_models

    rows = list_models(task=task)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no catalogue entries for task {task!r}")
        return
    rows.sort(key=lambda r: (r["task"], r["name"]))
    cols = ["name", "task", "family", "local", "hub_id"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in cols) + "  DESCRIPTION")
    for r in rows:
        click.echo("  ".join(r[c].ljust(widths[c]) for c in cols) + "  " + r["description"])
        click.echo(" " * widths["name"] + "  use: " + r["serves"])
        if r["held_out"]:
            click.echo(" " * widths["name"] + "  held-out: " + _format_held_out(r["held_out"]))
    click.echo("\nlocal: bundled = shipped with genaannot, cached = in the Hugging Face cache, - = not available "
               "(download on a machine with network: hf download ID --revision BRANCH --local-dir DIR, "
               "then --model DIR; older huggingface_hub: huggingface-cli download)")


@models.command("inspect")
@click.argument("model")
@click.option("--model-option", "options", multiple=True, metavar="KEY=VALUE",
              help="Family option (as scan/score --model-option), e.g. max_n_segments=8 (RMT), tile_tokens=2048 "
                   "(BigBird), tokenizer=DIR.")
@click.option("--revision", default=None, help="Branch/revision of a hub id.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(model: str, options: tuple[str, ...], revision: str | None, as_json: bool) -> None:
    """Load MODEL (path, catalogue name or cached hub id) and describe it."""
    from dataclasses import asdict

    from ..models import ModelError, load_model
    from ..tokenize import TokenizerError

    opts = parse_options(options)
    try:
        m = load_model(model, device="cpu", revision=revision, **opts)
    except (ModelError, TokenizerError) as err:
        raise click.ClickException(str(err)) from None
    info = asdict(m.info)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    labels = list(info["labels"])
    shown = ", ".join(labels[:12]) + (f", … ({len(labels)} in all)" if len(labels) > 12 else "")
    lines = [
        ("family", info["family"]),
        ("architecture", info["architecture"]),
        ("head", info["head"]),
        ("labels", f"{len(labels)}: {shown}" if labels else "-"),
        ("problem type", info["problem_type"] or "-"),
        ("parameters", f"{info['n_params']:,}"),
        ("max tokens", f"{info['max_tokens']:,} content tokens per input"),
        *([("scan window", f"{info['window_tokens']:,} tokens (the checkpoint's; --window-tokens overrides)")]
          if info.get("window_tokens") else []),
        ("resolution", info["resolution"]),
        ("tokenizer", info["tokenizer"]),
        ("task", info["task"] or "-"),
        ("source", info["source"]),
    ]
    task = TASKS.get(info["task"]) if isinstance(info["task"], str) else None
    if task is not None and task.site_convention:
        from ..conventions import model_convention

        conv, source = model_convention(m.info)
        lines.append(("site convention", f"{conv.name} ({source}): {conv.summary}"))
    extra = dict(info["extra"])
    rmt = extra.pop("rmt", None)
    if rmt:
        lines.append(("RMT", ", ".join(f"{k}={v}" for k, v in rmt.items())))
    extra.pop("genaannot", None)
    members = extra.pop("members", None)
    if isinstance(members, list):  # an ensemble (dilated_cnn): one short entry per member
        lines.append(("members", f"{len(members)}: " + ", ".join(
            f"{m.get('receptive_field_bp')}-bp field ({m.get('channels')} channels)" if isinstance(m, dict) else str(m)
            for m in members)))
    for k, v in extra.items():
        lines.append((k.replace("_", " "), str(v)))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        click.echo(f"{k.ljust(width)}  {v}")


def _combines() -> tuple[str, ...]:
    from ..models.dilated_cnn import COMBINES

    return COMBINES


@models.command("ensemble")
@click.argument("members", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New model directory to write.")
@click.option("--combine", type=RegistryChoice(_combines), show_default=True,
              default=library_default(ensemble_models, "combine"),
              help="probability: mean of the members' sigmoid/softmax outputs; logit: mean of their logits.")
@click.option("--window-tokens", type=click.IntRange(min=1), default=library_default(ensemble_models, "window_tokens"),
              help="The ensemble's scan window [default: the largest of the members'].")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def ensemble_cmd(members: tuple[str, ...], output: Path, combine: str, window_tokens: int | None, quiet: bool) -> None:
    """Combine two or more dilated_cnn checkpoints (MEMBERS: paths or catalogue names) of one
    task into one model that averages their outputs; every command then loads it as one
    checkpoint. Choose its call thresholds afterwards on its validation regions with
    `genaannot evaluate --write-thresholds` (docs/train.md, Ensembles)."""
    from ..models import ModelError
    from ..pipeline.ensemble import EnsembleError

    try:
        ensemble_models(members=list(members), output=output, combine=combine, window_tokens=window_tokens,
                        say=(lambda _m: None) if quiet else click.echo)
    except (EnsembleError, ModelError) as err:
        raise click.ClickException(str(err)) from None
