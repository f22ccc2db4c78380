"""Command-line interface: a click group whose subcommands are imported only when run.

Each subcommand lives in its own module (``genaannot/cli/<name>.py``), parses options and
calls one library function. Keeping imports lazy keeps ``genaannot --help`` fast (no torch).
"""

from __future__ import annotations

from importlib import import_module

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


class LazyGroup(click.Group):
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
