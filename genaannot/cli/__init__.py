"""Command-line interface: a click group whose subcommands are imported only when run.

Each subcommand lives in its own module (``genaannot/cli/<name>.py``), parses options and
calls one library function. Keeping imports lazy keeps ``genaannot --help`` fast (no torch).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import threading
import warnings
from importlib import import_module
from typing import Any

import click

from .. import __version__

#: command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "scan": "genaannot.cli.scan:scan",
    "score": "genaannot.cli.score:score",
    "models": "genaannot.cli.models:models",
    "train": "genaannot.cli.train:train",
    "evaluate": "genaannot.cli.train:evaluate",
    "merge": "genaannot.cli.merge:merge",
    "ism": "genaannot.cli.interpret:ism",
    "attribute": "genaannot.cli.interpret:attribute",
    "hub": "genaannot.cli.browser:hub",
    "report": "genaannot.cli.browser:report",
    "plot": "genaannot.cli.browser:plot",
}

SHORT_HELP: dict[str, str] = {
    "scan": "Tile a genome through a model and write bigWig/BED tracks.",
    "score": "Annotate a VCF with ref/alt model deltas.",
    "models": "List known checkpoints or inspect one.",
    "train": "Fine-tune or train a model from a genome + annotation.",
    "evaluate": "Evaluate a checkpoint on held-out annotated regions.",
    "merge": "Combine sharded scan/score partial results.",
    "ism": "In-silico saturation mutagenesis of a region.",
    "attribute": "Integrated-gradients attribution track of a region.",
    "hub": "Write a UCSC track hub and IGV session for a scan.",
    "report": "Write a self-contained HTML report of a scan.",
    "plot": "Plot tracks, calls and genes in a region.",
}


def _available(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(COMMANDS[name].split(":")[0]) is not None


#: set to 1 to see the traceback of an unexpected error instead of the one-line message
TRACEBACK_ENV = "GENAANNOT_TRACEBACK"

#: what to do about an OS error, by errno
_OS_HINTS: dict[int, str] = {
    errno.EACCES: "check its permissions, or choose another path",
    errno.EPERM: "check its permissions, or choose another path",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file, not a directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory; check the path",
    errno.ENOSPC: "disk full or quota exceeded: free space or choose another output",
    errno.EDQUOT: "disk full or quota exceeded: free space or choose another output",
    errno.EFBIG: "file too large for this file system: choose another output",
    errno.EROFS: "read-only file system: choose another output",
    errno.EIO: "input/output error: check the disk or the network file system",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
}


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", "; ", str(text).strip()) or "(no message)"


def os_error_message(err: OSError) -> str:
    """One line for an :class:`OSError` that escaped a command: the file, the reason, a hint.

    genaannot's own errors that are ``OSError`` subclasses (:class:`~genaannot.io.atomic.OutputError`,
    :class:`~genaannot.io.fasta.FastaError` ...) already name their file and are returned as they are.
    """
    if err.filename is None or type(err).__module__.startswith("genaannot"):
        text = _one_line(str(err))
        hint = _OS_HINTS.get(err.errno or -1) if err.strerror and str(err).startswith("[Errno") else None
        return f"{text}; {hint}" if hint else text
    where = str(err.filename) + (f" -> {err.filename2}" if err.filename2 is not None else "")
    msg = f"{where}: {err.strerror or type(err).__name__}"
    hint = _OS_HINTS.get(err.errno or -1)
    return f"{msg}; {hint}" if hint else msg


def unexpected_error_message(err: BaseException) -> str:
    """The one line for an exception genaannot did not expect (a bug)."""
    text = _one_line(str(err)) if str(err).strip() else "(no message)"
    return (f"internal error: {type(err).__name__}: {text} — please report it; "
            f"set {TRACEBACK_ENV}=1 to see the traceback")


def _quiet_htslib() -> None:
    """htslib prints its own ``[E::...]`` lines to stderr; genaannot says what went wrong in one
    line of its own, so they are silenced (unless ``GENAANNOT_TRACEBACK`` is set). pysam itself
    is not imported here: ``--help`` stays fast."""
    if os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0"):
        return
    from ..io import fasta

    fasta.QUIET_HTSLIB = True


class InternalError(click.ClickException):
    """An unexpected exception, shown as ``genaannot: internal error: ...`` (exit 1)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"genaannot: {self.format_message()}", err=True, file=file)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler's time limit or pre-emption), raised in the main
    thread: it unwinds like Ctrl-C, so a command removes what it staged, a scan keeps its
    finished parts for ``--resume`` and stops its worker processes; exit 143 (128 + 15)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None) -> str:
    """genaannot's own warnings as one line for the user (``genaannot: warning: ...``), not
    Python's ``file:line: UserWarning:`` and a line of its source; others as Python shows them."""
    if os.path.abspath(filename).startswith(_PACKAGE + os.sep):
        return f"genaannot: warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)


_python_format_warning = warnings.formatwarning


class LazyGroup(click.Group):
    """Subcommands imported when run; whatever escapes a subcommand ends in one line.

    An :class:`OSError` names its file and says what to do; genaannot's own typed errors keep
    their message; anything else is an internal error (re-raised with a traceback when
    ``GENAANNOT_TRACEBACK=1``); all exit 1. Ctrl-C exits 130 with one line, SIGTERM 143
    (:class:`Terminated`: the same clean-up as Ctrl-C).
    """

    def invoke(self, ctx: click.Context) -> Any:
        _quiet_htslib()
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
        shown_as, warnings.formatwarning = warnings.formatwarning, _format_warning
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit, SystemExit):
            raise
        except Terminated:
            click.echo("genaannot: terminated (SIGTERM)", err=True)
            raise click.exceptions.Exit(143) from None
        except KeyboardInterrupt:
            click.echo("genaannot: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as err:  # noqa: BLE001 - the safety net: one line, never a traceback
            if os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0"):
                raise
            if isinstance(err, OSError):
                raise click.ClickException(os_error_message(err)) from None
            if type(err).__module__.startswith("genaannot."):  # a typed library error: its message is for the user
                raise click.ClickException(_one_line(str(err))) from None
            raise InternalError(unexpected_error_message(err)) from None
        finally:
            warnings.formatwarning = shown_as
            if previous is not None:  # None: not the main thread, or a handler set outside Python
                signal.signal(signal.SIGTERM, previous)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if _available(n)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, SHORT_HELP.get(n, "")) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genaannot")
def main() -> None:
    """Annotate genomes and score variants with DNA language models (GENA-LM, HyenaDNA, modernGENA).

    Coordinates are 0-based half-open inside; region strings on the command line
    (chr1:1001-2000) are 1-based inclusive like samtools.
    """
