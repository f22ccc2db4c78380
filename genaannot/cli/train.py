"""``genaannot train`` and ``genaannot evaluate``: options in, one library call out.

The work is done by :func:`genaannot.pipeline.train.train_genome` and
:func:`genaannot.pipeline.train.evaluate_checkpoint`; library errors become click errors here
(bad or overlapping regions: usage errors; everything else: plain errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..conventions import SITE_CONVENTIONS
from ..models.families import FAMILIES
from ..pipeline.train import evaluate_checkpoint, train_genome
from ..stitch import STITCH_MODES
from ..tasks import trainable_tasks
from ..train import ArchConfig, TrainConfig
from .options import (
    RegistryChoice,
    finite,
    library_default,
    no_stdout,
    parse_options,
    precision_option,
    threads_option,
)

_CHROMS_HELP = "comma-separated chromosome names"


def _cfg(name: str):
    """The library's default of a :class:`~genaannot.train.TrainConfig` field."""
    return library_default(TrainConfig, name)


def _arch(name: str):
    """The library's default of an :class:`~genaannot.train.ArchConfig` field."""
    return library_default(ArchConfig, name)


def _ev(name: str):
    """The library's default of an :func:`~genaannot.pipeline.train.evaluate_checkpoint` keyword."""
    return library_default(evaluate_checkpoint, name)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _regions(chroms: str | None, bed: str | None, *, chroms_opt: str, bed_opt: str,
             if_left_out: str | None) -> str | list[str] | None:
    """A BED path or chromosome names for the library (``None``: neither given).

    A chromosome list given but empty (``''``, ``','``) is refused: left out, the option
    means ``if_left_out`` (``None``: the data are required), which an empty list must not
    silently turn into.
    """
    if chroms is not None and bed:
        raise click.UsageError(f"give either {chroms_opt} or {bed_opt}, not both")
    if chroms is None:
        return bed
    names = _split(chroms)
    if not names:
        raise click.UsageError(f"{chroms_opt} {chroms!r} names no chromosome; give comma-separated names "
                               "(e.g. chr2,chr3)" + (f", or leave {chroms_opt} out for {if_left_out}"
                                                     if if_left_out else ""))
    return names


#: what leaving out a role's regions means (``genaannot train``; ``None``: required)
_LEFT_OUT: dict[str, str | None] = {
    "train": None,
    "valid": "no validation (the last step's model is kept; splice: no call thresholds are chosen)",
    "test": "no held-out evaluation",
}


def _role(o: dict, what: str) -> str | list[str] | None:
    return _regions(o[f"{what}_chroms"], o[f"{what}_regions"], chroms_opt=f"--{what}-chroms",
                    bed_opt=f"--{what}-regions", if_left_out=_LEFT_OUT[what])


@contextmanager
def _library_errors() -> Iterator[None]:
    from ..io.annotation import AnnotationError
    from ..io.atomic import OutputError, OutputIsInput
    from ..io.fasta import FastaError
    from ..models.base import ModelError
    from ..pipeline.train import EvaluateError, SplitError
    from ..regions import RegionError
    from ..tokenize import TokenizerError
    from ..train import TrainError

    try:
        yield
    except (SplitError, RegionError, OutputIsInput) as err:
        raise click.UsageError(str(err)) from None
    except (TrainError, EvaluateError, FastaError, AnnotationError, ModelError, TokenizerError, OutputError) as err:
        raise click.ClickException(str(err)) from None


def _stem(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A file name stem: not empty, no directory part, not hidden."""
    if not value.strip() or "/" in value or "\\" in value or value.startswith(".") or "\x00" in value:
        raise click.BadParameter(f"{value!r}: give a plain file name stem (no '/', not empty, not starting with '.')")
    return value


def _threads(n: int | None) -> None:
    """torch's CPU threads for this command's process (None: the free cores, as scan/score)."""
    import torch

    from ..pipeline.workers import default_threads

    torch.set_num_threads(n or default_threads(workers=0))


@click.command(context_settings={"show_default": True})
@click.option("--task", type=RegistryChoice(trainable_tasks), required=True,
              help="a task of genaannot.tasks.TASKS with a training spec")
@click.option("--genome", "genome_path", required=True, type=click.Path(exists=True, dir_okay=False), help="FASTA (plain or bgzip)")
@click.option("--annotation", "annotation_path", required=True, type=click.Path(exists=True, dir_okay=False), help="GFF3 or GTF (optionally .gz)")
@click.option("-o", "--output", "model_dir", required=True, type=click.Path(file_okay=False), callback=no_stdout,
              help="model directory to write")
@click.option("--base-model", default=None,
              help="checkpoint of any family (path, catalogue name or cached hub id) to fine-tune, with a new task "
                   "head when it has none that fits; default: a fresh model")
@click.option("--family", default=library_default(train_genome, "family"), type=click.Choice(list(FAMILIES)),
              help="model family to train [default: the base model's, else gena_bert]; rmt with a GENA BERT "
                   "--base-model wraps it in a Recurrent Memory Transformer; hyena without one is a fresh HyenaDNA")
@click.option("--family-option", "family_options", multiple=True, metavar="KEY=VALUE",
              help="family training option (repeatable), e.g. num_mem_tokens=10, input_size=512, "
                   "max_n_segments=4 (rmt); see docs/train.md")
@click.option("--hidden-size", default=_arch("hidden_size"), type=click.IntRange(min=1),
              help="fresh model: hidden size (hyena: d_model)")
@click.option("--layers", default=_arch("layers"), type=click.IntRange(min=1), help="fresh model: layers")
@click.option("--heads", default=_arch("heads"), type=click.IntRange(min=1), help="fresh model: attention heads (not hyena)")
@click.option("--dropout", default=_arch("dropout"), type=click.FloatRange(0, 1, max_open=True),
              help="fresh model: hidden and attention dropout")
@click.option("--tokenizer", "tokenizer_opt", default=None,
              help="'char' (one token per base), 'bpe' (train a BPE on the training chromosomes), or a "
                   "directory/tokenizer.json; default: the base model's own, else 'char'")
@click.option("--vocab-size", default=library_default(train_genome, "vocab_size"), type=click.IntRange(min=16), help="vocabulary of a BPE tokenizer trained with --tokenizer bpe")
@click.option("--train-chroms", default=None, help=_CHROMS_HELP)
@click.option("--valid-chroms", default=None, help=_CHROMS_HELP)
@click.option("--test-chroms", default=None, help=_CHROMS_HELP)
@click.option("--train-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of training regions")
@click.option("--valid-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of validation regions")
@click.option("--test-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of test regions")
@click.option("--window-tokens", default=_cfg("window_tokens"), type=click.IntRange(min=1), help="content tokens per window")
@click.option("--steps", default=None, type=click.IntRange(min=1),
              help=f"optimisation steps (default {_cfg('steps')} unless --epochs)")
@click.option("--epochs", default=_cfg("epochs"), type=click.FloatRange(min=0, min_open=True), callback=finite,
              help="epochs of 2*train_bp/window_bp windows (instead of --steps)")
@click.option("--lr", default=_cfg("lr"), type=click.FloatRange(min=0, min_open=True), callback=finite)
@click.option("--batch-size", default=_cfg("batch_size"), type=click.IntRange(min=1))
@click.option("--pos-weight", default=_cfg("pos_weight"), type=click.FloatRange(min=0, min_open=True), callback=finite,
              help="bce loss (splice): loss weight of site tokens (sites are rare)")
@click.option("--seed", default=_cfg("seed"), type=int)
@click.option("--device", default=_cfg("device"), help="cpu, cuda, cuda:1 (default: cuda when available)")
@precision_option(TrainConfig)
@click.option("--save-every", default=_cfg("save_every"), type=click.IntRange(min=1), help="checkpoint every N steps")
@click.option("--eval-every", default=_cfg("eval_every"), type=click.IntRange(min=1), help="validate every N steps")
@click.option("--valid-windows", default=_cfg("valid_windows"), type=click.IntRange(min=1),
              help="validation windows (fixed, seeded) scored at each validation")
@click.option("--site-convention", default=_cfg("site_convention"), type=click.Choice(SITE_CONVENTIONS),
              help="splice: which base of a junction is the site: exon = SpliceAI's (donor = last exon base, "
                   "acceptor = first exon base), intron = donor G of GT, acceptor G of AG; recorded in genaannot.json")
@threads_option
@click.option("--resume", is_flag=True, help="continue from MODEL_DIR/checkpoints/last")
@click.option("--no-eval", is_flag=True, help="skip the held-out evaluation at the end")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar")
def train(**o) -> None:
    """Train a model for a task (splice, promoter, ...) from GENOME + ANNOTATION; evaluate it on held-out data.

    Any family trains: fresh (GENA BERT by default, --family hyena/rmt/bigbird/modernbert/dilated_cnn) or
    fine-tuned from --base-model (a pretrained LM gets the task head here).

    Windows come from the training chromosomes/regions; the best model on the validation
    set is kept in MODEL_DIR. Splice: per-label call thresholds (max F1 at base-pair
    resolution on the validation data) are stored in MODEL_DIR/genaannot.json for `scan`.
    At the end the model is evaluated on the test chromosomes (never seen in training)
    together with a PWM baseline (splice): REPORT.json and REPORT.png.
    """
    _threads(o["threads"])
    train, valid, test = (_role(o, what) for what in ("train", "valid", "test"))
    if not train:
        raise click.UsageError("give the training data: --train-chroms or --train-regions")
    if o["steps"] is None and o["epochs"] is None:
        o["steps"] = _cfg("steps")
    cfg = TrainConfig(
        task=o["task"], window_tokens=o["window_tokens"], steps=o["steps"], epochs=o["epochs"], batch_size=o["batch_size"],
        lr=o["lr"], seed=o["seed"], device=o["device"], precision=o["precision"], save_every=o["save_every"],
        eval_every=o["eval_every"], pos_weight=o["pos_weight"], valid_windows=o["valid_windows"],
        site_convention=o["site_convention"],
    )
    arch = ArchConfig(hidden_size=o["hidden_size"], layers=o["layers"], heads=o["heads"], dropout=o["dropout"])
    _arch_options_read(o)
    family_options = parse_options(o["family_options"])
    with _library_errors():
        train_genome(
            genome=o["genome_path"], annotation=o["annotation_path"], task=o["task"], output=o["model_dir"],
            train=train, valid=valid, test=test, base_model=o["base_model"], tokenizer=o["tokenizer_opt"],
            vocab_size=o["vocab_size"], config=cfg, arch=arch, resume=o["resume"], evaluate=not o["no_eval"],
            progress=not o["quiet"], log=click.echo, family=o["family"], family_options=family_options,
        )


def _arch_options_read(o: dict) -> None:
    """Refuse --hidden-size/--layers/--heads/--dropout given for a fresh family that does not
    read them (its registry entry's ``arch_fields``), rather than ignore them."""
    if o["base_model"]:
        return
    name = o["family"] or "gena_bert"
    fields = FAMILIES[name].arch_fields
    if fields is None:
        return
    ctx = click.get_current_context()
    keys = ("hidden_size", "layers", "heads", "dropout")
    reads = [f"--{k.replace('_', '-')}" for k in keys if k in fields]
    for key in keys:
        if key not in fields and ctx.get_parameter_source(key) is not click.core.ParameterSource.DEFAULT:
            raise click.UsageError(
                f"--{key.replace('_', '-')} does not apply to a fresh {name}, which reads "
                f"{'only ' + ', '.join(reads) if reads else 'none'} of the size options "
                "(family shapes: --family-option, docs/train.md)")


@click.command(context_settings={"show_default": True})
@click.option("--model", "model_ref", required=True, help="checkpoint path, catalogue name or cached hub id")
@click.option("--task", type=RegistryChoice(trainable_tasks), default=_ev("task"),
              help="what to evaluate [default: the task the checkpoint was trained for (genaannot.json)]")
@click.option("--genome", "genome_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--annotation", "annotation_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--regions", "regions_bed", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of held-out regions")
@click.option("--chroms", default=None, help="held-out chromosomes, " + _CHROMS_HELP)
@click.option("--baseline-chroms", default=None, help="fit the PWM baseline on these chromosomes (splice)")
@click.option("--baseline-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED to fit the PWM baseline on")
@click.option("-o", "--output", "out_dir", default=_ev("output_dir"), type=click.Path(file_okay=False), callback=no_stdout,
              help="directory for REPORT.json/.png")
@click.option("--stem", default=_ev("stem"), callback=_stem, help="report file name stem (a name, not a path)")
@click.option("--batch-size", default=_ev("batch_size"), type=click.IntRange(min=1))
@click.option("--device", default=_ev("device"))
@threads_option
@click.option("--overlap", default=_ev("overlap"), type=click.FloatRange(0, 1, max_open=True),
              help="splice: window overlap, as `scan --overlap` (metrics and thresholds hold for scans made alike)")
@click.option("--stitch", default=_ev("stitch"), type=click.Choice(STITCH_MODES),
              help="splice: stitching, as `scan --stitch`")
@click.option("--write-thresholds", is_flag=True,
              help="splice: store the max-F1 call thresholds found on these regions in the checkpoint's "
                   "genaannot.json (used by `scan`); give the VALIDATION regions, never the test set")
@click.option("--site-convention", default=_ev("site_convention"), type=click.Choice(SITE_CONVENTIONS),
              help="splice: where the true sites are placed (exon = SpliceAI's, intron = G of GT / G of AG) "
                   "[default: the checkpoint's site_convention; without one: intron for a genaannot train "
                   "checkpoint, else exon]")
@click.option("-q", "--quiet", is_flag=True)
def evaluate(**o) -> None:
    """Evaluate any checkpoint on annotated held-out regions (splice: + PWM baseline).

    With --write-thresholds (splice), the regions must be validation data: the per-label call
    thresholds with the highest F1 there are written into the checkpoint's genaannot.json.
    """
    _threads(o["threads"])
    regions = _regions(o["chroms"], o["regions_bed"], chroms_opt="--chroms", bed_opt="--regions",
                       if_left_out=None)
    if not regions:
        raise click.UsageError("give the held-out data: --chroms or --regions")
    baseline = _regions(o["baseline_chroms"], o["baseline_regions"], chroms_opt="--baseline-chroms",
                        bed_opt="--baseline-regions", if_left_out="no PWM baseline")
    with _library_errors():
        evaluate_checkpoint(
            model=o["model_ref"], task=o["task"], genome=o["genome_path"], annotation=o["annotation_path"], regions=regions,
            baseline_regions=baseline, output_dir=o["out_dir"], stem=o["stem"], batch_size=o["batch_size"],
            device=o["device"], overlap=o["overlap"], stitch=o["stitch"], write_thresholds=o["write_thresholds"],
            site_convention=o["site_convention"], progress=not o["quiet"], log=click.echo,
        )
