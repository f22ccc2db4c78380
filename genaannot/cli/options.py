"""Options shared by several commands."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import click

from ..predict import PRECISIONS

__all__ = [
    "RegistryChoice",
    "compute_options",
    "finite",
    "label_list",
    "library_default",
    "model_option",
    "no_stdout",
    "parse_options",
    "threads_option",
]


class RegistryChoice(click.Choice):
    """A :class:`click.Choice` whose choices are read from a library registry each time they are
    needed (help, completion, checking), so that an entry added to the registry (a task added
    to :data:`genaannot.tasks.TASKS`) is offered without touching the command line.

    Parameters
    ----------
    keys : callable () -> iterable of str
        Returns the current choices, e.g. ``lambda: TASKS``.
    """

    def __init__(self, keys: Callable[[], Iterable[str]], *, case_sensitive: bool = True) -> None:
        self._keys = keys
        super().__init__((), case_sensitive=case_sensitive)

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return tuple(self._keys())

    @choices.setter
    def choices(self, value: Any) -> None:  # click.Choice.__init__ assigns; the registry is the source
        pass


def library_default(owner: Any, name: str) -> Any:
    """The library's default for ``name``: a dataclass field's default (``TrainConfig``) or a
    function's keyword default (``scan_genome``). Options whose default mirrors the library
    read it from here, so the command line and the library cannot drift apart
    (``tests/test_cli_options.py`` checks every option against its source).

    Raises
    ------
    KeyError
        ``owner`` has no such field or parameter, or it has no default.
    """
    if dataclasses.is_dataclass(owner):
        for f in dataclasses.fields(owner):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                break
        raise KeyError(f"{owner.__name__}.{name} has no default")
    p = inspect.signature(owner).parameters.get(name)
    if p is None or p.default is inspect.Parameter.empty:
        raise KeyError(f"{getattr(owner, '__name__', owner)}({name}=) has no default")
    return p.default

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


def precision_option(library: Callable[..., Any]) -> Callable[[Any], Any]:
    """``--precision`` with the choices of :data:`genaannot.predict.PRECISIONS` and ``library``'s default."""
    return click.option("--precision", type=click.Choice(PRECISIONS), default=library_default(library, "precision"),
                        show_default=True)


def compute_options(library: Callable[..., Any]) -> Callable[[Any], Any]:
    """``--batch-size``, ``--device``, ``--threads``, ``--precision``, ``--model-option`` and
    ``--compile`` (``scan`` and ``score``: how and where the model runs), their defaults those
    of the library function ``library`` (``scan_genome``, ``score_variants``)."""

    batch = library_default(library, "batch_size")

    def decorate(f: Any) -> Any:
        for opt in reversed([
            click.option("--batch-size", type=click.IntRange(min=1), default=batch, show_default=batch is not None,
                         help=None if batch is not None else
                         "Windows per forward pass [default: 8; on CUDA 32,768 token positions, 8-64 windows]."),
            click.option("--device", default=library_default(library, "device"),
                         help="cpu, cuda, cuda:1 [default: CUDA when available]."),
            threads_option,
            precision_option(library),
            model_option,
            click.option("--compile", "compile_", is_flag=True,
                         help="Run the network through torch.compile (GPU; falls back to eager with a warning)."),
        ]):
            f = opt(f)
        return f

    return decorate


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
