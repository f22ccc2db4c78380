"""``genaannot scan``: tile a genome through a model and write bigWig/BED tracks.

Heavy imports (torch, pysam, pyBigWig) happen inside the command so ``genaannot --help``
stays fast. Coordinates in outputs are 0-based, half-open (bigWig/BED conventions).
"""

from __future__ import annotations

import sys

import click

from ..pipeline.scan import scan_genome
from ..readout import STRANDS
from ..stitch import STITCH_MODES
from ..tasks import TASKS
from .options import (
    RegistryChoice,
    compute_options,
    finite,
    label_list,
    library_default,
    no_stdout,
    parse_options,
)


def _default(name: str):
    return library_default(scan_genome, name)


def _stranded() -> str:
    return ", ".join(n for n, t in TASKS.items() if t.strand_specific)


def _digits_text(value: int | None) -> str:
    return "full" if value is None else str(value)


def _digits(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value.lower() in ("full", "none"):
        return None
    try:
        d = int(value)
    except ValueError:
        d = -1
    if not 0 <= d <= 7:
        raise click.BadParameter(f"{value!r}: give 0-7 decimals, or 'full' for unrounded float32")
    return d


@click.command(
    "scan",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Outputs: one bigWig per label and strand, named OUT.<label>.<plus|minus>.bw (OUT without "
        "its .bw suffix); when the scan yields a single track it is written to OUT itself. Beside "
        "them: OUT.calls.bed (narrowPeak BED6+4 calls), OUT.json (manifest) and, with --bedgraph, "
        "a .bedGraph twin of every track. Runs of N at least one window (in tokens, as bp) long are "
        "not scanned and have no data. Work in progress is kept in OUT.parts/ until the end."
    ),
)
@click.argument("genome", type=click.Path(dir_okay=False))
@click.option("--task", "task_name", type=RegistryChoice(lambda: TASKS), required=True,
              help="What to predict; decides readout, activation, labels and default model.")
@click.option("--model", "model_path", default=None, metavar="PATH|ID",
              help="Checkpoint directory, catalogue name or cached hub id [default: the task's published checkpoint].")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="OUT.bw", callback=no_stdout,
              help="Output bigWig (see naming rule below).")
@click.option("-r", "--region", "region_list", multiple=True, metavar="CHR[:START-END]",
              help="Scan only this region: 1-based inclusive as samtools, thousands separators allowed "
                   "(Chr5:4,400-4,600); repeatable, or a comma-separated list; chr5/5 aliases resolved.")
@click.option("--regions", type=click.Path(dir_okay=False), default=None, metavar="BED",
              help="Scan only these intervals (BED, 0-based half-open); with --region, both.")
@click.option("--chrom", "chroms", multiple=True, metavar="NAME",
              help="Scan only this sequence (repeatable); with --region/--regions, only theirs on it.")
@click.option("--strand", type=click.Choice(STRANDS), default=_default("strand"),
              help=f"[default: both for strand-specific tasks ({_stranded()}), else +]")
@click.option("--window-tokens", type=click.IntRange(min=1), default=_default("window_tokens"),
              help="Content tokens per window [default: the task's, at most the model's capacity].")
@click.option("--overlap", type=click.FloatRange(0, 1, max_open=True), default=_default("overlap"), show_default=True,
              help="Fraction of each window shared with the next.")
@click.option("--stitch", type=click.Choice(STITCH_MODES), default=_default("stitch"), show_default=True,
              help="center: each base from the window with the nearest centre; mean: average overlaps.")
@compute_options(scan_genome)
@click.option("--labels", "labels", default=None, metavar="A,B", callback=label_list,
              help="Comma-separated subset of the task's labels to write.")
@click.option("--threshold", type=float, default=_default("threshold"), callback=finite, help="Call threshold on track values, for every label [default: the checkpoint's per-label thresholds from genaannot.json, else 0.5].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run (same settings) from OUT.parts/.")
@click.option("--shard", default=None, metavar="I/N",
              help="Compute only every N-th work unit (I = 1..N) and keep OUT.parts/ as a partial result; "
                   "combine the partials with `genaannot merge` (or share one OUT.parts/ and rerun with --resume).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Host processes that tokenise while the model runs (0: in-process) [default: CUDA min(8, (cores - D) // D) per device, at least 2 where cores > D; CPU min(4, cores - 1)].")
@click.option("--devices", default=None, metavar="0,1|cpu,cpu",
              help="One process per device over the work units (e.g. 0,1 = cuda:0,cuda:1); overrides --device.")
@click.option("--bedgraph", is_flag=True, help="Also write a bedGraph for every track.")
@click.option("--track-digits", default=_digits_text(_default("track_digits")), show_default=True, metavar="0-7|full",
              callback=_digits,
              help="Digits kept in track values: decimals, and for probabilities >= 0.5 significant "
                   "digits of 1 - value (0.99, 0.999 stay apart). Near-constant stretches become one bigWig "
                   "entry: a base-resolution human track ~1.2 GB instead of ~12 GB. 'full': float32 as "
                   "computed. Calls are made from unrounded values.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def scan(genome, task_name, model_path, output, region_list, regions, chroms, strand, window_tokens, overlap, stitch,
         batch_size, device, threads, precision, compile_, model_options, labels, threshold, resume, shard, workers, devices, bedgraph,
         track_digits, quiet) -> None:
    """Scan GENOME (FASTA, plain or bgzipped) with a model; write bigWig tracks and calls."""
    from pathlib import Path

    from ..io.system import steady_heap

    steady_heap()  # first: threads that torch or the model start keep malloc arenas of their own
    from ..io.atomic import OutputIsInput
    from ..io.fasta import FastaError
    from ..io.naming import parts_dir
    from ..io.tracks import OutputError
    from ..models.base import ModelError
    from ..pipeline.scan import ScanError, scan_genome
    from ..regions import RegionError, is_region_string
    from ..tokenize import TokenizerError

    for name in chroms:
        if is_region_string(name):
            raise click.UsageError(f"--chrom takes a sequence name; for a stretch of one use --region {name}")
    model_id = model_path or TASKS[task_name].default_model_id
    if model_id is None:
        raise click.UsageError(f"--task {task_name} has no default checkpoint; pass --model PATH")
    if region_list:
        regions = [*([Path(regions)] if regions else []), *region_list]
    try:
        result = scan_genome(
            genome, model=model_id, task=task_name, output=output, strand=strand, regions=regions,
            chroms=list(chroms) or None, window_tokens=window_tokens, overlap=overlap, stitch=stitch,
            batch_size=batch_size, labels=[x for x in labels.split(",") if x] if labels else None,
            threshold=threshold, resume=resume, bedgraph=bedgraph, quiet=quiet, shard=shard, workers=workers,
            devices=devices, device=device, threads=threads, precision=precision, compile=compile_,
            model_options=parse_options(model_options), track_digits=track_digits,
        )
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (FastaError, OutputError, ModelError, ScanError, RegionError, TokenizerError) as err:
        raise click.ClickException(str(err)) from None
    except RuntimeError as err:  # e.g. --device cuda without CUDA
        raise click.ClickException(str(err)) from None
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the finished parts are the run's hours so far
        parts = parts_dir(output)
        try:
            kept = any(parts.glob("*.npz"))
        except OSError:
            kept = False
        if not kept:
            raise
        click.echo(f"genaannot: the finished parts are kept in {parts}: rerun the same command with --resume "
                   "to go on from them", err=True)
        raise
    if not result.complete:
        c = result.counts
        click.echo(f"shard done; {c['units_missing']} of {c['units']} work units still missing. When all "
                   "shards have finished, combine their OUT.parts/ directories with `genaannot merge "
                   "PARTS... -o OUT.bw` (or, with one shared OUT.parts/, rerun with --resume and no --shard).",
                   err=True)
        return
    if not quiet:
        c = result.counts
        rate = c.get("bp_scanned", 0) / max(result.seconds, 1e-9)
        click.echo(
            f"scanned {c.get('bp_scanned', 0):,} bp in {c.get('windows', 0):,} windows "
            f"({rate:,.0f} bp/s); {len(result.tracks)} track(s), {c.get('calls', 0):,} calls; "
            f"manifest {result.manifest}",
            err=True,
        )
    sys.stdout.flush()
