"""Options shared by several commands."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["compute_options", "finite", "label_list", "model_option", "no_stdout", "parse_options", "threads_option"]

#: ``--model-option KEY=VALUE`` (repeatable): family loader options for :func:`genaannot.load_model`
model_option = click.option(
    "--model-option", "model_options", multiple=True, metavar="KEY=VALUE",
    help="Model loader option (repeatable), e.g. segment_size=512 or max_n_segments=8 (RMT), "
         "tile_tokens=2048 (BigBird), tokenizer=DIR (per family: docs/models.md).",
)


#: ``--threads N``: torch's CPU threads in each process that runs the model (every model command)
threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None, metavar="N",
    help="CPU threads for the model [default: the cores left free by other programs (1-minute load) "
         "less one per two --workers, at least 1; 1 on CUDA]. More threads than free cores makes a run slower.",
)


def compute_options(f):
    """``--batch-size``, ``--device``, ``--threads``, ``--precision``, ``--model-option`` and
    ``--compile`` (``scan`` and ``score``: how and where the model runs)."""
    for opt in reversed([
        click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 [default: CUDA when available]."),
        threads_option,
        click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True),
        model_option,
        click.option("--compile", "compile_", is_flag=True,
                     help="Run the network through torch.compile (GPU; falls back to eager with a warning)."),
    ]):
        f = opt(f)
    return f


def parse_options(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("a=1", "b=x")`` → ``{"a": 1, "b": "x"}`` (ints and floats converted)."""
    out: dict[str, Any] = {}
    for text in values:
        if "=" not in text:
            raise click.BadParameter(f"{text!r}: expected KEY=VALUE")
        key, value = (x.strip() for x in text.split("=", 1))
        if not key:
            raise click.BadParameter(f"{text!r}: expected KEY=VALUE")
        for conv in (int, float):
            try:
                out[key] = conv(value)
                break
            except ValueError:
                pass
        else:
            out[key] = value
    return out


def no_stdout(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse ``-`` for an output that is one or several files (``scan -o -`` would write
    ``./-.acceptor.plus.bw``): a usage error."""
    if value is not None and str(value) == "-":
        raise click.BadParameter("'-' (standard output) is not possible here: this command writes files; "
                                 "give a file name")
    return value


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Refuse ``nan`` and ``inf`` for a number option (a usage error)."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number")
    return value


def label_list(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a comma-separated list that names nothing (``--labels ,``)."""
    if value is not None and not [x for x in value.split(",") if x.strip()]:
        raise click.BadParameter(f"{value!r} names no label; give comma-separated names, or leave the option out")
    return value
