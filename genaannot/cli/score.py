"""``genaannot score``: annotate a VCF with ref/alt model deltas.

Heavy imports (torch, pysam) happen inside the command so ``genaannot --help`` stays fast.
"""

from __future__ import annotations

import warnings

import click

from ..genes import OUTSIDE_GENES
from ..pipeline.score import score_variants
from ..readout import STRANDS
from ..tasks import TASKS
from .options import RegistryChoice, compute_options, label_list, library_default, parse_options


def _default(name: str):
    return library_default(score_variants, name)


def _stranded() -> str:
    return ", ".join(n for n, t in TASKS.items() if t.strand_specific)


@click.command(
    "score",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Every record is written, in input order (with -r/-R: every record overlapping the regions; the "
        "summary counts the others). Each ALT gets scores in INFO/GENA_<TASK> "
        "(pipe-separated subfields, described in the header) or a reason code in INFO/GENA_REASON "
        "(NO_CONTIG, SYMBOLIC, BAD_ALLELE, EDGE, N_REGION, REF_MISMATCH, TOO_LONG, NO_GENE), and its numbers "
        "again in numeric Number=A fields GENA_<TASK>_<SUBFIELD> for bcftools filter/query. Windows are "
        "sized in tokens (--window-tokens; default the checkpoint's stated window, else the model capacity) and centred on the variant (shifted inward at "
        "sequence ends). Chromosome names 1/chr1 are matched automatically. VARIANTS and -o may be "
        "'-' (stdin/stdout); .vcf.gz output is bgzipped and tabix-indexed."
    ),
)
@click.argument("variants", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--genome", required=True, type=click.Path(dir_okay=False), metavar="GENOME.fa",
              help="Reference FASTA (plain or bgzipped; indexed or in a writable directory).")
@click.option("--task", "task_name", type=RegistryChoice(lambda: TASKS), required=True,
              help="What the model predicts; decides readout, activation, labels and default model.")
@click.option("--model", "model_path", default=None, metavar="PATH|ID",
              help="Checkpoint directory, catalogue name or cached hub id [default: the task's published checkpoint].")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              metavar="OUT.vcf[.gz]", help="Annotated VCF (.vcf, .vcf.gz, .bcf or - for stdout).")
@click.option("--distance", type=click.IntRange(min=0), default=_default("distance"), show_default=True,
              help="Token heads (splice): search gains/losses within this many bp of the REF allele.")
@click.option("--window-tokens", type=click.IntRange(min=1), default=_default("window_tokens"),
              help="Content tokens per variant window [default: the window the checkpoint states, else the "
                   "model's capacity]. Set it for long-context models (HyenaDNA-1m reads 1,000,000 tokens "
                   "per variant otherwise).")
@click.option("--labels", default=None, metavar="A,B", callback=label_list,
              help="Comma-separated subset of the task's outputs to score [default: all].")
@click.option("--tsv", type=click.Path(dir_okay=False, allow_dash=True), default=None, metavar="OUT.tsv",
              help="Also write a table: one row per ALT with every raw number.")
@compute_options(score_variants)
@click.option("--strand", type=click.Choice(STRANDS), default=_default("strand"),
              help=f"[default: both for strand-specific tasks ({_stranded()}), else +]")
@click.option("--shard", default=None, metavar="I/N",
              help="Score only shard I of N (I = 1..N): a contiguous stretch of the genome with about 1/N "
                   "of the records (read through the index when the VCF has one), or, for an unsorted "
                   "VCF, the I-th of N record ranges. Combine the N partial VCFs with `genaannot merge`.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Processes that plan and tokenise records while the model runs (0: a helper thread) "
                   "[default: on CUDA min(4, cores // D - 1) per device, on CPU 0].")
@click.option("--devices", default=None, metavar="0,1|cpu,cpu",
              help="One process per device (e.g. 0,1 = cuda:0,cuda:1), each scoring 1/D of the records "
                   "(a region shard); the output has one process's records, header, order and format, "
                   "numbers equal up to float rounding. Overrides --device.")
@click.option("-A", "--annotation", default=None, type=click.Path(dir_okay=False), metavar="GENES.gff3|gtf|txt",
              help="Genes (GFF3, GTF, or SpliceAI's gene table grch37.txt/grch38.txt): each ALT is scored per "
                   "overlapping gene, on the gene's strand, with its symbol in INFO/GENA_<TASK>_GENE, the "
                   "SpliceAI field and the TSV.")
@click.option("-M", "--mask", is_flag=True,
              help="With --annotation (splice): zero gains at the gene's annotated sites of that kind and losses "
                   "at unannotated positions, as SpliceAI -M 1.")
@click.option("--outside-genes", type=click.Choice(OUTSIDE_GENES), default=_default("outside_genes"), show_default=True,
              help="With --annotation: variants in no gene are scored on both strands (gene '.'), or get the "
                   "reason NO_GENE.")
@click.option("--spliceai-info", is_flag=True,
              help="Splice: also write INFO/SpliceAI=ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL "
                   "(per ALT and gene, 2 decimals, SpliceAI's header), and search deletions within POS±distance "
                   "as SpliceAI does.")
@click.option("-r", "--regions", "regions", multiple=True, metavar="CHR[:START-END],...",
              help="Score only records whose REF overlaps these regions (bcftools -r: comma-separated, "
                   "1-based inclusive, thousands separators allowed; repeatable). Records outside are "
                   "not written; the summary counts them.")
@click.option("-R", "--regions-file", type=click.Path(dir_okay=False), default=None, metavar="BED",
              help="As -r, from a BED file (0-based half-open); with -r, both.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary (records left out by -r/-R are still counted in a note).")
def score(variants, genome, task_name, model_path, output, distance, window_tokens, labels, tsv, batch_size, device, threads,
          precision, compile_, model_options, strand, shard, workers, devices, annotation, mask, outside_genes,
          spliceai_info, regions, regions_file, quiet) -> None:
    """Score every ALT allele of VARIANTS (VCF, VCF.gz, BCF or -) against GENOME with a model."""
    from ..io.annotation import AnnotationError
    from ..io.atomic import OutputIsInput
    from ..io.fasta import FastaError
    from ..io.table import TableError
    from ..io.vcf import VcfError
    from ..models.base import ModelError
    from ..tokenize import TokenizerError

    model_id = model_path or TASKS[task_name].default_model_id
    if model_id is None:
        raise click.UsageError(f"--task {task_name} has no default checkpoint; pass --model PATH")
    if str(output) == "-" and tsv is not None and str(tsv) == "-":
        raise click.UsageError("-o - and --tsv - cannot both go to standard output; give one of them a file name")
    if annotation is None and (mask or outside_genes != "score"):
        raise click.UsageError("--mask and --outside-genes need --annotation GENES")
    if annotation is not None and strand not in (None, "both") and TASKS[task_name].strand_specific:
        raise click.UsageError("--annotation scores each gene's strand; leave out --strand")
    label_list = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
    try:
        from ..pipeline.score import score_variants

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = score_variants(
                variants, genome=genome, model=model_id, task=task_name, output=output,
                distance=distance, window_tokens=window_tokens, labels=label_list, tsv=tsv, batch_size=batch_size,
                strand=strand, quiet=quiet, shard=shard, devices=devices, workers=workers,
                device=device, threads=threads, precision=precision, compile=compile_,
                model_options=parse_options(model_options),
                annotation=annotation, mask=mask, outside_genes=outside_genes, spliceai_info=spliceai_info,
                regions=list(regions) or None, regions_file=regions_file,
            )
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (VcfError, FastaError, ModelError, TokenizerError, TableError, AnnotationError, ValueError, RuntimeError,
            OSError) as err:
        raise click.ClickException(str(err)) from None
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    if quiet and summary.records_outside:  # never left out without a word
        click.echo(f"note: {summary.records_outside:,} records outside the regions (-r/-R) were not written",
                   err=True)
    if not quiet:
        for note in summary.notes:
            click.echo(f"note: {note}", err=True)
        click.echo(summary.format(), err=True)
