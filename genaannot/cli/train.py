"""``genaannot train`` and ``genaannot evaluate``: options in, library calls out."""

from __future__ import annotations

import os
from pathlib import Path

import click

_CHROMS_HELP = "comma-separated chromosome names"


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _regions(genome, *, chroms: str | None, bed: str | None, what: str):
    """Intervals from a chromosome list or a BED file, checked against the genome."""
    from ..io.bed import read_bed
    from ..regions import Interval, RegionError, resolve_chrom

    if chroms and bed:
        raise click.UsageError(f"give either --{what}-chroms or --{what}-regions, not both")
    try:
        if bed:
            return [Interval(iv.chrom, iv.start, iv.end) for iv in read_bed(bed, sizes=genome.sizes)]
        out = []
        for c in _split(chroms):
            name = resolve_chrom(c, genome.sizes)
            out.append(Interval(name, 0, genome.sizes[name]))
        return out
    except (RegionError, ValueError) as err:
        raise click.UsageError(str(err)) from None


def _check_disjoint(named: dict[str, list]) -> None:
    items = [(k, iv) for k, ivs in named.items() for iv in ivs]
    for i, (ka, a) in enumerate(items):
        for kb, b in items[i + 1 :]:
            if ka != kb and a.chrom == b.chrom and a.start < b.end and b.start < a.end:
                raise click.UsageError(f"{ka} region {a.ucsc()} overlaps {kb} region {b.ucsc()}; held-out data must be unseen")


def _open_inputs(genome_path: str, annotation_path: str):
    from ..io.annotation import AnnotationError, read_annotation
    from ..io.fasta import FastaError, open_genome
    from ..regions import match_chroms

    try:
        genome = open_genome(genome_path)
        ann = read_annotation(annotation_path)
    except (FastaError, AnnotationError) as err:
        raise click.ClickException(str(err)) from None
    m = match_chroms(ann.chroms, genome.sizes)
    if not m.mapping:
        raise click.ClickException(
            f"{annotation_path}: no chromosome name matches the genome ({', '.join(ann.chroms[:5])} vs "
            f"{', '.join(list(genome.sizes)[:5])})"
        )
    return genome, ann.rename(m.mapping)


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _echo_report(report) -> None:
    for kind, m in report.metrics.items():
        base = report.baseline.get(kind, {})
        line = "  ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))
        if base:
            line += "   | PWM " + "  ".join(f"{k} {v:.4f}" for k, v in base.items() if isinstance(v, float))
        click.echo(f"{kind:>9}: {line}")


@click.command(context_settings={"show_default": True})
@click.option("--task", type=click.Choice(["splice", "promoter"]), required=True)
@click.option("--genome", "genome_path", required=True, type=click.Path(exists=True, dir_okay=False), help="FASTA (plain or bgzip)")
@click.option("--annotation", "annotation_path", required=True, type=click.Path(exists=True, dir_okay=False), help="GFF3 or GTF (optionally .gz)")
@click.option("-o", "--output", "model_dir", required=True, type=click.Path(file_okay=False), help="model directory to write")
@click.option("--base-model", default=None, help="GENA BERT checkpoint (path or id) to fine-tune; default: a fresh model")
@click.option("--hidden-size", default=128, type=int, help="fresh model: hidden size")
@click.option("--layers", default=4, type=int, help="fresh model: transformer layers")
@click.option("--heads", default=4, type=int, help="fresh model: attention heads")
@click.option("--dropout", default=0.1, type=float, help="fresh model: hidden and attention dropout")
@click.option("--tokenizer", "tokenizer_opt", default=None,
              help="'char' (one token per base), 'bpe' (train a BPE on the training chromosomes), or a "
                   "directory/tokenizer.json; default: the base model's own, else 'char'")
@click.option("--vocab-size", default=4096, type=int, help="vocabulary of a BPE tokenizer trained with --tokenizer bpe")
@click.option("--train-chroms", default=None, help=_CHROMS_HELP)
@click.option("--valid-chroms", default=None, help=_CHROMS_HELP)
@click.option("--test-chroms", default=None, help=_CHROMS_HELP)
@click.option("--train-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of training regions")
@click.option("--valid-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of validation regions")
@click.option("--test-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of test regions")
@click.option("--window-tokens", default=510, type=int, help="content tokens per window")
@click.option("--steps", default=None, type=int, help="optimisation steps (default 1000 unless --epochs)")
@click.option("--epochs", default=None, type=float, help="epochs of 2*train_bp/window_bp windows (instead of --steps)")
@click.option("--lr", default=5e-4, type=float)
@click.option("--batch-size", default=16, type=int)
@click.option("--pos-weight", default=10.0, type=float, help="splice: loss weight of site tokens (sites are rare)")
@click.option("--seed", default=0, type=int)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
@click.option("--precision", default="fp32", type=click.Choice(["fp32", "bf16", "fp16"]))
@click.option("--save-every", default=200, type=int, help="checkpoint every N steps")
@click.option("--eval-every", default=200, type=int, help="validate every N steps")
@click.option("--valid-windows", default=64, type=int, help="validation windows (fixed, seeded) scored at each validation")
@click.option("--threads", default=None, type=int, help="torch CPU threads")
@click.option("--resume", is_flag=True, help="continue from MODEL_DIR/checkpoints/last")
@click.option("--no-eval", is_flag=True, help="skip the held-out evaluation at the end")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar")
def train(**o) -> None:
    """Train a splice or promoter model from GENOME + ANNOTATION; evaluate it on held-out data.

    Windows come from the training chromosomes/regions; the best model on the validation
    set is kept in MODEL_DIR. Splice: per-label call thresholds (max F1 at base-pair
    resolution on the validation data) are stored in MODEL_DIR/genaannot.json for `scan`.
    At the end the model is evaluated on the test chromosomes (never seen in training)
    together with a PWM baseline (splice): REPORT.json and REPORT.png.
    """
    from ..train import (
        TrainConfig,
        TrainError,
        train_model,
    )

    _threads(o["threads"])
    genome, ann = _open_inputs(o["genome_path"], o["annotation_path"])
    tr = _regions(genome, chroms=o["train_chroms"], bed=o["train_regions"], what="train")
    va = _regions(genome, chroms=o["valid_chroms"], bed=o["valid_regions"], what="valid")
    te = _regions(genome, chroms=o["test_chroms"], bed=o["test_regions"], what="test")
    if not tr:
        raise click.UsageError("give the training data: --train-chroms or --train-regions")
    _check_disjoint({"train": tr, "valid": va, "test": te})
    if o["steps"] is None and o["epochs"] is None:
        o["steps"] = 1000
    cfg = TrainConfig(
        task=o["task"], window_tokens=o["window_tokens"], steps=o["steps"], epochs=o["epochs"], batch_size=o["batch_size"],
        lr=o["lr"], seed=o["seed"], device=o["device"], precision=o["precision"], save_every=o["save_every"],
        eval_every=o["eval_every"], pos_weight=o["pos_weight"], valid_windows=o["valid_windows"],
    )
    model_dir = Path(o["model_dir"])
    try:
        setup = _setup(o, cfg, genome, tr, model_dir)
        result = train_model(
            genome=genome, annotation=ann, setup=setup, config=cfg, train_regions=tr, valid_regions=va,
            model_dir=model_dir, resume=o["resume"], progress=not o["quiet"], log=click.echo,
            extra_metadata={"test_regions": [iv.ucsc() for iv in te], "genome": os.path.basename(o["genome_path"]),
                            "annotation": os.path.basename(o["annotation_path"]),
                            "architecture": {"hidden_size": o["hidden_size"], "layers": o["layers"], "heads": o["heads"],
                                             "dropout": o["dropout"]}},
        )
    except TrainError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"best model (step {result.best_step}, valid {result.best_valid}) in {model_dir}")
    if va and cfg.task == "splice":  # call thresholds from the validation data, never the test data
        _write_thresholds(model_dir, genome, ann, va, device=o["device"], quiet=o["quiet"], batch_size=o["batch_size"])
    if te and not o["no_eval"]:
        _run_evaluation(model_dir, genome, ann, te, baseline_regions=tr, device=o["device"], out_dir=model_dir,
                        quiet=o["quiet"], record=True)


def _setup(o, cfg, genome, tr, model_dir: Path):
    from ..tokenize import BPETokenizer, load_tokenizer
    from ..train import (
        TASK_SPECS,
        ArchConfig,
        build_fresh,
        build_from_base,
        char_tokenizer_json,
        train_bpe_tokenizer_json,
    )

    spec = TASK_SPECS[cfg.task]
    if o["resume"]:  # the tokenizer and config of the interrupted run
        from ..io.checkpoint import last_checkpoint, read_metadata
        from ..models import read_config
        from ..models.gena_bert import GenaBertConfig, build_network
        from ..train import TrainError, TrainSetup

        ck = last_checkpoint(model_dir / "checkpoints")
        if ck is None:
            raise TrainError(f"--resume: no checkpoint under {model_dir / 'checkpoints'}")
        gcfg = GenaBertConfig.from_dict(read_config(ck))
        gcfg.architectures = []
        tok = load_tokenizer(ck)
        meta = read_metadata(ck)
        net = build_network(gcfg, head=spec.head, cls_id=tok.cls_id, sep_id=tok.sep_id)
        return TrainSetup(net, tok, gcfg, meta.get("base_model"), meta.get("tokenizer_kind", "checkpoint"))
    kind = o["tokenizer_opt"]
    tok = None
    if kind not in (None, "char", "bpe"):
        tok = load_tokenizer(kind)
    elif kind in ("char", "bpe") or o["base_model"] is None:
        from ..io.checkpoint import write_tokenizer_json

        kind = kind or "char"
        if kind == "char":
            text = char_tokenizer_json()
        else:
            chunks = [genome.fetch(iv.chrom, s, min(iv.end, s + 1000)) for iv in tr for s in range(iv.start, iv.end, 1000)]
            text = train_bpe_tokenizer_json(chunks, vocab_size=o["vocab_size"])
        tok = BPETokenizer(write_tokenizer_json(model_dir / "checkpoints" / "tokenizer", text))
    if o["base_model"]:
        return build_from_base(o["base_model"], spec=spec, tokenizer=tok, window_tokens=cfg.window_tokens)
    arch = ArchConfig(hidden_size=o["hidden_size"], layers=o["layers"], heads=o["heads"], dropout=o["dropout"])
    return build_fresh(tokenizer=tok, tokenizer_kind=kind, spec=spec, arch=arch, window_tokens=cfg.window_tokens)


def _held_out_overlap(meta: dict, regions, sizes: dict[str, int]) -> str | None:
    """The first recorded training/test region of a checkpoint that ``regions`` overlap."""
    from ..regions import RegionError, parse_region

    for key in ("test_regions", "train_regions"):
        for text in meta.get(key) or []:
            try:
                iv = parse_region(text, sizes=sizes)
            except RegionError:
                continue
            for r in regions:
                if r.chrom == iv.chrom and r.start < iv.end and iv.start < r.end:
                    return f"{r.ucsc()} overlaps the checkpoint's {key.split('_')[0]} region {text}"
    return None


def _write_thresholds(model_ref, genome, ann, regions, *, device, quiet: bool, batch_size: int, report=None) -> None:
    """Store per-label call thresholds (max F1 at bp resolution on ``regions``) in genaannot.json."""
    from ..evaluate import call_thresholds, evaluate_splice
    from ..io.checkpoint import update_metadata
    from ..models import load_model

    if report is None:
        model = load_model(str(model_ref), device=device)
        report = evaluate_splice(model, genome=genome, annotation=ann, regions=regions, batch_size=batch_size,
                                 progress=not quiet)
    thresholds = call_thresholds(report)
    if not thresholds:
        raise click.ClickException(f"no annotated sites in {', '.join(iv.ucsc() for iv in regions)[:200]}: no thresholds")
    selection = {
        "criterion": "maximum F1 at base-pair resolution (both strands; call = score >= threshold)",
        "regions": [iv.ucsc() for iv in regions],
        # scans with other settings get a warning (genaannot.pipeline.scan.threshold_mismatch)
        "scan_settings": {"overlap": report.details.get("overlap", 0.5), "stitch": report.details.get("stitch", "center")},
        **{k: {"f1": report.metrics[k]["max_f1"], "precision": report.metrics[k]["max_f1_precision"],
               "recall": report.metrics[k]["max_f1_recall"]} for k in thresholds},
    }
    path = update_metadata(model_ref, {"thresholds": thresholds, "threshold_selection": selection})
    shown = ", ".join(f"{k} {t:.4g} (F1 {selection[k]['f1']:.3f})" for k, t in thresholds.items())
    click.echo(f"call thresholds on {', '.join(selection['regions'])[:120]}: {shown} -> {path}")


def _run_evaluation(model_ref, genome, ann, regions, *, baseline_regions, device, out_dir: Path, quiet: bool,
                    record: bool, stem: str = "REPORT", batch_size: int = 16, overlap: float = 0.5,
                    stitch_mode: str = "center"):
    from ..evaluate import evaluate_promoter, evaluate_splice, write_eval_report
    from ..models import load_model

    model = load_model(str(model_ref), device=device)
    task = model.info.task or ("splice" if "acceptor" in model.info.labels else None)
    if task == "splice":
        report = evaluate_splice(model, genome=genome, annotation=ann, regions=regions, baseline_regions=baseline_regions,
                                 batch_size=batch_size, progress=not quiet, overlap=overlap, stitch_mode=stitch_mode)
    elif task == "promoter" or model.info.head == "sequence":
        report = evaluate_promoter(model, genome=genome, annotation=ann, regions=regions, batch_size=batch_size)
    else:
        raise click.ClickException(f"{model_ref}: cannot tell the task (labels {model.info.labels}); evaluate supports splice and promoter")
    js, png = write_eval_report(report, out_dir, stem=stem)
    _echo_report(report)
    click.echo(f"wrote {js} and {png}")
    if record:  # held-out metrics go into the checkpoint's own metadata too
        from ..io.checkpoint import update_metadata

        update_metadata(model_ref, {"test_metrics": report.metrics, "test_baseline": report.baseline})
    return report


@click.command(context_settings={"show_default": True})
@click.option("--model", "model_ref", required=True, help="checkpoint path, catalogue name or cached hub id")
@click.option("--genome", "genome_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--annotation", "annotation_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--regions", "regions_bed", default=None, type=click.Path(exists=True, dir_okay=False), help="BED of held-out regions")
@click.option("--chroms", default=None, help="held-out chromosomes, " + _CHROMS_HELP)
@click.option("--baseline-chroms", default=None, help="fit the PWM baseline on these chromosomes (splice)")
@click.option("--baseline-regions", default=None, type=click.Path(exists=True, dir_okay=False), help="BED to fit the PWM baseline on")
@click.option("-o", "--output", "out_dir", default=".", type=click.Path(file_okay=False), help="directory for REPORT.json/.png")
@click.option("--stem", default="REPORT", help="report file name stem")
@click.option("--batch-size", default=16, type=int)
@click.option("--device", default=None)
@click.option("--threads", default=None, type=int)
@click.option("--overlap", default=0.5, type=click.FloatRange(0, 1, max_open=True),
              help="splice: window overlap, as `scan --overlap` (metrics and thresholds hold for scans made alike)")
@click.option("--stitch", default="center", type=click.Choice(["center", "mean"]),
              help="splice: stitching, as `scan --stitch`")
@click.option("--write-thresholds", is_flag=True,
              help="splice: store the max-F1 call thresholds found on these regions in the checkpoint's "
                   "genaannot.json (used by `scan`); give the VALIDATION regions, never the test set")
@click.option("-q", "--quiet", is_flag=True)
def evaluate(**o) -> None:
    """Evaluate any checkpoint on annotated held-out regions (splice: + PWM baseline).

    With --write-thresholds (splice), the regions must be validation data: the per-label call
    thresholds with the highest F1 there are written into the checkpoint's genaannot.json.
    """
    _threads(o["threads"])
    genome, ann = _open_inputs(o["genome_path"], o["annotation_path"])
    regions = _regions(genome, chroms=o["chroms"], bed=o["regions_bed"], what="test")
    if not regions:
        raise click.UsageError("give the held-out data: --chroms or --regions")
    if o["write_thresholds"]:
        _check_threshold_target(o["model_ref"], regions, genome.sizes)
    base = _regions(genome, chroms=o["baseline_chroms"], bed=o["baseline_regions"], what="baseline") or None
    if base:
        _check_disjoint({"test": regions, "baseline": base})
    report = _run_evaluation(o["model_ref"], genome, ann, regions, baseline_regions=base, device=o["device"],
                             out_dir=Path(o["out_dir"]), quiet=o["quiet"], record=False, stem=o["stem"],
                             batch_size=o["batch_size"], overlap=o["overlap"], stitch_mode=o["stitch"])
    if o["write_thresholds"]:
        _write_thresholds(_local_checkpoint(o["model_ref"]), genome, ann, regions, device=o["device"], quiet=o["quiet"],
                          batch_size=o["batch_size"], report=report)


def _local_checkpoint(model_ref: str) -> Path:
    from ..models import ModelError, resolve_checkpoint

    try:
        path = resolve_checkpoint(model_ref)
    except ModelError as err:
        raise click.ClickException(str(err)) from None
    if not path.is_dir():
        raise click.ClickException(f"--write-thresholds: {model_ref} is not a checkpoint directory ({path})")
    return path


def _check_threshold_target(model_ref: str, regions, sizes: dict[str, int]) -> None:
    """--write-thresholds: the model must be a splice checkpoint directory and ``regions``
    must not touch its recorded training or test regions."""
    from ..io.checkpoint import read_metadata

    path = _local_checkpoint(model_ref)
    meta = read_metadata(path)
    if meta.get("task") not in (None, "splice"):
        raise click.UsageError(f"--write-thresholds supports splice checkpoints; {model_ref} is a {meta['task']} model")
    clash = _held_out_overlap(meta, regions, sizes)
    if clash:
        valid = ", ".join(meta.get("valid_regions") or []) or "its validation regions"
        raise click.UsageError(
            f"--write-thresholds: {clash}; thresholds must be chosen on validation data, not on the data the model "
            f"was trained or tested on (this checkpoint's validation regions: {valid})"
        )
