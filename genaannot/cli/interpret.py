"""``genaannot ism`` and ``genaannot attribute``: explain one model output over a region.

Heavy imports happen inside the commands so ``genaannot --help`` stays fast.
"""

from __future__ import annotations

import click

from ..interpret import BASELINES
from ..pipeline.interpret import attribute_region, ism_region
from ..readout import STRANDS
from ..tasks import TASKS
from .options import RegistryChoice, library_default, no_stdout, precision_option, threads_option

#: --strand: one strand (the window is read on it)
_ONE_STRAND = [k for k, v in STRANDS.items() if len(v) == 1]

_COMMON = [
    click.argument("genome", type=click.Path(dir_okay=False)),
    click.option("--region", required=True, metavar="CHR:START-END",
                 help="Region, 1-based inclusive (samtools style)."),
    click.option("--task", "task_name", type=RegistryChoice(lambda: TASKS), required=True,
                 help="Task whose output is explained (labels, activation, default model)."),
    click.option("--model", "model_path", default=None, metavar="PATH|ID",
                 help="Checkpoint directory, catalogue name or cached hub id [default: the task's]."),
    click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="OUT", callback=no_stdout,
                 help="Output prefix (a .bw/.tsv/.npz suffix is dropped)."),
    click.option("--label", default=None, help="Label (channel) to explain [default: the task's first]."),
    click.option("--site", type=click.IntRange(min=1), default=None, metavar="POS",
                 help="Token heads: 1-based position whose token is read [default: strongest in the region]."),
    click.option("--strand", type=click.Choice(_ONE_STRAND), default=library_default(ism_region, "strand"), show_default=True,
                 help="-: the model reads the reverse complement (results stay on + coordinates)."),
    click.option("--logit", is_flag=True, help="Explain the raw logit instead of the activated score."),
    click.option("--window-tokens", type=click.IntRange(min=1), default=None,
                 help="Content tokens of the model window [default: the task's, at most the model's]."),
    click.option("--device", default=None, help="cpu, cuda, cuda:1 [default: CUDA when available]."),
    threads_option,
]


def _common(f):
    for deco in reversed(_COMMON):
        f = deco(f)
    return f


def _run(fn, genome, model_path, task_name, device, precision, **kw):
    from ..interpret import InterpretError
    from ..io.atomic import OutputIsInput
    from ..io.fasta import FastaError
    from ..io.tracks import OutputError
    from ..models.base import ModelError
    from ..readout import ReadoutError
    from ..regions import RegionError
    from ..tokenize import TokenizerError

    try:
        return fn(genome, model_path, task=task_name, device=device,
                  **({"precision": precision} if precision else {}), **kw)
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (FastaError, OutputError, ModelError, RegionError, TokenizerError, InterpretError, ReadoutError) as err:
        raise click.ClickException(str(err)) from None
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None


@click.command("ism", context_settings={"help_option_names": ["-h", "--help"]}, epilog=(
    "Every base of the region (at most 2,000 bp) is changed to each of the three other bases and "
    "the model re-run on the same window; effect = f(alt) - f(ref). Writes OUT.max_abs.bw, "
    "OUT.mean.bw, OUT.tsv (3 rows per base), OUT.npz (effects [L,4], alt A/C/G/T, NaN at ref) "
    "and OUT.json."))
@_common
@precision_option(ism_region)
@click.option("--batch-size", type=click.IntRange(min=1), default=library_default(ism_region, "batch_size"), show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ism(genome, region, task_name, model_path, output, label, site, strand, logit, window_tokens, device,
        threads, precision, batch_size, quiet) -> None:
    """In-silico saturation mutagenesis of a region of GENOME."""
    run = _run(ism_region, genome, model_path, task_name, device, precision, region=region, output=output,
               label=label, site=site, strand=strand, logit=logit, window_tokens=window_tokens,
               batch_size=batch_size, quiet=quiet, threads=threads)
    m = run.meta
    if not quiet:
        click.echo(f"{m['n_mutants']:,} mutants of {m['region']}; largest |effect| {m['max_abs_effect']:.4g}; "
                   f"metadata {run.files['json']}", err=True)


@click.command("attribute", context_settings={"help_option_names": ["-h", "--help"]}, epilog=(
    "Integrated gradients w.r.t. the word embeddings of the window's tokens (baseline: all-zero "
    "embedding, or the [PAD] embedding), trapezoid rule over STEPS+1 points, summed over the hidden "
    "dimension and split evenly over each token's bases. Writes OUT.bw and OUT.bedGraph over the "
    "whole model window, and OUT.json with f(input), f(baseline) and the completeness error."))
@_common
@click.option("--steps", type=click.IntRange(min=1), default=library_default(attribute_region, "steps"), show_default=True,
              help="Integration steps (the path is evaluated at STEPS+1 points).")
@click.option("--baseline", type=click.Choice(BASELINES), default=library_default(attribute_region, "baseline"),
              show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=library_default(attribute_region, "batch_size"),
              show_default=True,
              help="Path points per forward/backward pass.")
@click.option("--quiet", "-q", is_flag=True)
def attribute(genome, region, task_name, model_path, output, label, site, strand, logit, window_tokens,
              device, threads, steps, baseline, batch_size, quiet) -> None:
    """Integrated-gradients attribution track around a region of GENOME."""
    run = _run(attribute_region, genome, model_path, task_name, device, None, region=region, output=output,
               label=label, site=site, strand=strand, logit=logit, window_tokens=window_tokens, steps=steps,
               baseline=baseline, batch_size=batch_size, threads=threads)
    m = run.meta
    if not quiet:
        click.echo(
            f"f(input) {m['f_input']:.4g}, f(baseline) {m['f_baseline']:.4g}, sum of attributions "
            f"{m['sum_attributions']:.4g} (completeness error {m['completeness_error']:.2g}); "
            f"metadata {run.files['json']}", err=True)
