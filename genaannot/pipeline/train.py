"""``train_genome`` and ``evaluate_checkpoint``: genome + annotation → trained, evaluated checkpoint.

The steps behind ``genaannot train``, in order:

1. open the genome (FASTA) and the annotation (GFF3/GTF) and rename the annotation's
   chromosomes onto the genome's (``chr1``/``1``, :func:`genaannot.regions.match_chroms`);
   chromosomes the FASTA lacks and transcripts past a chromosome's end are left out, with a note;
2. resolve the regions of each role (train, valid, test) from chromosome names, region
   strings, a BED file or intervals (:func:`resolve_regions`);
3. check the held-out rule: no region of one role overlaps a region of another
   (:func:`check_disjoint`), and that the validation and test regions hold annotated sites
   of each of the task's site kinds (else their scores would be NaN, found after training);
4. set up the network and its tokenizer: fresh (``char`` or a ``bpe`` tokenizer trained on the
   training regions), from a base model, or the interrupted run's (``resume``);
5. train (:func:`genaannot.train.train_model`);
6. tasks evaluated by ``sites`` (splice): choose per-label call thresholds (max F1 at
   base-pair resolution) on the validation regions and store them in the checkpoint's
   ``genaannot.json``;
7. evaluate on the test regions with the task's evaluation (``Training.evaluation``,
   :data:`genaannot.evaluate.EVALUATIONS`; splice: with a PWM baseline fitted on the training
   regions), write ``REPORT.json`` / ``REPORT.png`` and record the test metrics in
   ``genaannot.json``.

What differs between tasks is read from the task's registry entry
(:data:`genaannot.tasks.TASKS`), never from its name.

``evaluate_checkpoint`` (``genaannot evaluate``) runs steps 1-3 and 7 for any checkpoint;
with ``write_thresholds`` it runs step 6 on the regions given, which must then be
validation data: regions that overlap the checkpoint's recorded training or test regions
are refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..conventions import (
    DEFAULT_CONVENTION,
    SITE_CONVENTIONS,
    SiteConvention,
    get_convention,
    model_convention,
)
from ..evaluate import (
    EVALUATIONS,
    EvalReport,
    call_thresholds,
    evaluate_sites,
    write_eval_report,
)
from ..io.annotation import Annotation, AnnotationError, Transcript, read_annotation
from ..io.atomic import OutputIsInput, check_not_inputs, check_writable
from ..io.bed import read_bed
from ..io.checkpoint import read_metadata, update_metadata
from ..labels import TASK_SPECS, GenomeReader, SiteIndex, TaskSpec
from ..models.families import FAMILIES
from ..regions import Interval, RegionError, match_chroms, parse_region, resolve_chrom
from ..train import (
    ArchConfig,
    TrainConfig,
    TrainError,
    TrainResult,
    TrainSetup,
    build_fresh,
    build_from_base,
    build_resumed,
    char_tokenizer_json,
    train_bpe_tokenizer_json,
    train_model,
)

if TYPE_CHECKING:
    from ..models.base import Model, ModelInfo

__all__ = [
    "train_genome",
    "evaluate_checkpoint",
    "TrainRun",
    "EvaluationRun",
    "SplitError",
    "EvaluateError",
    "Regions",
    "resolve_regions",
    "check_disjoint",
]

#: Regions of one role: a BED file (``str`` or ``Path``), or a sequence of chromosome names /
#: ``chrom:start-end`` strings (1-based, inclusive), or of :class:`~genaannot.regions.Interval`.
Regions = str | os.PathLike | Sequence[str] | Sequence[Interval]


class SplitError(ValueError):
    """Regions that break the held-out rule or are missing.

    Raised for overlapping train/validation/test (or test/baseline) regions, for a run
    without training or evaluation regions, and for call thresholds asked for on regions a
    checkpoint was trained or tested on. The message names both regions of an overlap.
    """


class EvaluateError(ValueError):
    """An evaluation that cannot be done: unknown or untrainable task, regions without
    annotated sites of one of the task's site kinds (validation, test or evaluation regions:
    NaN metrics, no call thresholds), or thresholds asked for where they cannot be stored
    (not a local checkpoint directory of a task evaluated by ``sites``)."""


@dataclass
class EvaluationRun:
    """What :func:`evaluate_checkpoint` did.

    Attributes
    ----------
    report : EvalReport
        Metrics (``sites``: model and PWM baseline per site type; ``windows``: window level).
    report_json, report_png : Path
        ``OUTPUT_DIR/STEM.json`` and ``OUTPUT_DIR/STEM.png`` (precision-recall curves).
    thresholds : dict of label -> float
        Call thresholds written into the checkpoint (``write_thresholds``); empty otherwise.
    metadata : Path or None
        The checkpoint's ``genaannot.json`` when it was updated.
    """

    report: EvalReport
    report_json: Path
    report_png: Path
    thresholds: dict[str, float] = field(default_factory=dict)
    metadata: Path | None = None


@dataclass
class TrainRun:
    """What :func:`train_genome` did.

    Attributes
    ----------
    model_dir : Path
        The checkpoint directory (best model on the validation data; ``checkpoints/`` inside).
    training : TrainResult
        Steps, best step and validation score, history.
    regions : dict of role -> list of Interval
        The resolved ``train``, ``valid`` and ``test`` regions.
    thresholds : dict of label -> float
        Call thresholds chosen on the validation regions (tasks evaluated by ``sites``; empty
        without validation regions).
    evaluation : EvaluationRun or None
        The test-set evaluation (``None`` without test regions or with ``evaluate=False``).
    """

    model_dir: Path
    training: TrainResult
    regions: dict[str, list[Interval]]
    thresholds: dict[str, float] = field(default_factory=dict)
    evaluation: EvaluationRun | None = None


def _silent(_msg: str) -> None:
    pass


# --------------------------------------------------------------------------- inputs and regions


def _open_inputs(
    genome: str | os.PathLike | GenomeReader,
    annotation: str | os.PathLike | Annotation,
    stack: contextlib.ExitStack,
    say: Callable[[str], None],
) -> tuple[GenomeReader, Annotation]:
    """The genome (opened on ``stack`` when a path) and the annotation on the genome's chromosome names.

    Annotation chromosomes missing from the FASTA are left out, and transcripts that run
    past their chromosome's end are dropped (the annotation is of another assembly there:
    their sites would be half counted); both with a note to ``say``.
    """
    from ..io.fasta import open_genome

    if isinstance(genome, (str, os.PathLike)):
        genome = stack.enter_context(open_genome(genome))
    source = str(annotation) if isinstance(annotation, (str, os.PathLike)) else annotation.path
    ann = read_annotation(annotation) if isinstance(annotation, (str, os.PathLike)) else annotation
    for note in ann.notes:  # transcripts the reader left out or changed (unstranded, tRNA introns, ...)
        say(note)  # it names the file
    m = match_chroms(ann.chroms, genome.sizes)
    if not m.mapping:
        raise AnnotationError(
            f"{source}: no chromosome name matches the genome ({', '.join(ann.chroms[:5])} vs "
            f"{', '.join(list(genome.sizes)[:5])})"
        )
    if m.unmatched:
        say(f"{source}: chromosomes not in the FASTA, ignored: {', '.join(m.unmatched[:5])}"
            + (f" … ({len(m.unmatched)} in all)" if len(m.unmatched) > 5 else ""))
    ann = ann.rename(m.mapping)
    kept: dict[str, list[Transcript]] = {}
    past: list[str] = []
    for chrom, ts in ann.transcripts.items():
        size = genome.sizes[chrom]
        kept[chrom] = [t for t in ts if t.end <= size]
        past += [f"{t.id} ({chrom}:{t.start + 1}-{t.end}, {chrom} is {size:,} bp)" for t in ts if t.end > size]
    if past:
        say(f"{source}: {len(past)} transcript(s) run past the end of their chromosome in the FASTA, dropped "
            f"(their sites are not counted; is the annotation of another assembly?): {', '.join(past[:5])}"
            + (" …" if len(past) > 5 else ""))
        ann = Annotation(ann.path, {c: ts for c, ts in kept.items() if ts}, ann.exons_known, ann.skipped)
    return genome, ann


#: files ``train`` writes at the top of its model directory (any family)
_MODEL_DIR_FILES = ("config.json", "model.safetensors", "model_best.pth", "rmt.json", "tokenizer.json",
                    "special_tokens_map.json", "tokenizer_config.json", "genaannot.json", "REPORT.json", "REPORT.png")


def _run_inputs(genome: Any, annotation: Any, regions: Sequence[Any], model: Any) -> list[tuple[str, Any]]:
    """The files a train/evaluate run reads (for :func:`check_not_inputs`): the FASTA and its
    index, the annotation, region BEDs and the model's files."""
    def path(x: Any) -> Any:
        return x if isinstance(x, (str, os.PathLike)) else getattr(x, "path", None)

    g = path(genome)
    out: list[tuple[str, Any]] = [("FASTA", g)]
    out += [("FASTA index", f) for f in getattr(genome, "index_files", ())]
    if g is not None:
        out += [("FASTA index", f"{g}.fai"), ("FASTA index", f"{g}.gzi")]
    out.append(("annotation", path(annotation)))
    out += [("regions BED", r) for r in regions if isinstance(r, (str, os.PathLike))]
    m = model if isinstance(model, (str, os.PathLike)) else getattr(getattr(model, "info", None), "source", None)
    out.append(("model", m))
    return out


def _check_train_output(model_dir: Path, *, genome: Any, annotation: Any, regions: Sequence[Any],
                        base_model: Any, tokenizer: Any, resume: bool) -> None:
    """The model directory may be neither the base model nor hold an input under a name train writes."""
    if not resume and base_model is not None and model_dir.is_dir() and Path(str(base_model)).is_dir():
        if os.path.samefile(model_dir, str(base_model)):
            raise OutputIsInput(f"{model_dir}: this output directory is the base model {base_model}; "
                                "training would overwrite it: choose another -o")
    tok = tokenizer if tokenizer is not None and str(tokenizer) not in ("char", "bpe") else None
    inputs = _run_inputs(genome, annotation, regions, None if resume else base_model)
    inputs.append(("tokenizer", tok))
    check_not_inputs([model_dir / n for n in _MODEL_DIR_FILES], inputs)


def resolve_regions(regions: Regions | None, *, sizes: Mapping[str, int]) -> list[Interval]:
    """Intervals of one role, checked against the genome.

    Parameters
    ----------
    regions : str, PathLike, sequence of str, sequence of Interval, or None
        A BED file (0-based, half-open; :func:`genaannot.io.bed.read_bed`); chromosome names
        (whole chromosomes; aliases such as ``1`` for ``chr1`` resolved) or ``chrom:start-end``
        strings (1-based, inclusive); or intervals. ``None`` means no regions.
    sizes : mapping of str -> int
        The genome's sequence lengths.

    Returns
    -------
    list of Interval
        In the order given, on the genome's chromosome names (names and strands dropped).

    Raises
    ------
    RegionError
        For an unknown chromosome, an interval past a sequence end, or an unreadable BED line.
    """
    if regions is None:
        return []
    if isinstance(regions, (str, os.PathLike)):
        return [Interval(iv.chrom, iv.start, iv.end) for iv in read_bed(regions, sizes=dict(sizes))]
    out = []
    for r in regions:
        if isinstance(r, Interval):
            name = resolve_chrom(r.chrom, sizes)
            if r.end > sizes[name]:
                raise RegionError(f"region {r.ucsc()} runs past the end of {name} (length {sizes[name]:,})")
            out.append(Interval(name, r.start, r.end))
        elif isinstance(r, str):
            try:
                name = resolve_chrom(r.strip(), sizes)
            except RegionError:
                if ":" not in r:
                    raise
                out.append(parse_region(r, sizes=sizes))
            else:
                out.append(Interval(name, 0, sizes[name]))
        else:
            raise TypeError(f"a region is a chromosome name, a region string or an Interval, not {type(r).__name__}")
    return out


def check_disjoint(named: Mapping[str, Sequence[Interval]]) -> None:
    """Raise :class:`SplitError` when a region of one role overlaps a region of another.

    Parameters
    ----------
    named : mapping of role -> intervals
        e.g. ``{"train": [...], "valid": [...], "test": [...]}``. Regions of the same role
        may overlap each other; empty intervals hold no bases and never overlap.

    Raises
    ------
    SplitError
        Naming the roles and both regions of the first overlap found (chromosomes by name,
        then by start), e.g. ``train region c1:1-6000 overlaps test region c1:1-6000;
        held-out data must be unseen``.
    """
    order = {k: i for i, k in enumerate(named)}
    items = sorted(
        ((iv.chrom, iv.start, order[k], iv.end, k, iv) for k, ivs in named.items() for iv in ivs if len(iv) > 0),
        key=lambda t: t[:4],
    )
    reach: dict[str, Interval] = {}  # per role: the interval seen so far that ends furthest on this chromosome
    chrom = None
    for c, _start, _i, _end, kb, b in items:
        if c != chrom:
            chrom, reach = c, {}
        for ka, a in reach.items():
            if ka != kb and a.end > b.start:  # and a.start <= b.start < b.end: an overlap
                (k1, r1), (k2, r2) = sorted(((ka, a), (kb, b)), key=lambda t: order[t[0]])
                raise SplitError(f"{k1} region {r1.ucsc()} overlaps {k2} region {r2.ucsc()}; held-out data must be unseen")
        if kb not in reach or b.end > reach[kb].end:
            reach[kb] = b


def _regions_text(regions: Sequence[Interval]) -> str:
    """Regions for a message: the first few, then a count."""
    shown = ", ".join(iv.ucsc() for iv in regions[:4])
    return shown + (f" … ({len(regions)} regions)" if len(regions) > 4 else "")


def _check_sites(
    annotation: Annotation,
    regions: Sequence[Interval],
    *,
    spec: TaskSpec,
    convention: str | SiteConvention,
    role: str,
    advice: str,
) -> dict[str, int]:
    """Count the annotated sites of each of ``spec``'s site kinds in ``regions``; refuse any kind without one.

    Metrics of a kind with no positives are NaN and no call threshold can be chosen for it,
    so this is checked before any model is trained or run.

    Parameters
    ----------
    annotation : Annotation
        On the genome's chromosome names.
    regions : sequence of Interval
        The regions of one role.
    spec : TaskSpec
        The task (its ``site_kinds``: splice ``acceptor``, ``donor``; promoter ``tss``).
    convention : str or SiteConvention
        Where splice sites are placed (a site counts when its base in this convention is inside).
    role : str
        What the regions are, for the message (``"validation"``, ``"test"``, ``"evaluation"``).
    advice : str
        How to fix it, appended to the message.

    Returns
    -------
    dict of kind -> int
        Sites per kind, both strands.

    Raises
    ------
    EvaluateError
        Naming the kinds without sites and the regions.
    """
    idx = SiteIndex(annotation, regions, spec.site_kinds, convention=convention)
    counts = {k: idx.count(k) for k in spec.site_kinds}
    missing = [k for k, n in counts.items() if n == 0]
    if missing:
        where = getattr(annotation, "path", None) or "the annotation"
        raise EvaluateError(f"{where}: no {'/'.join(missing)} sites of the annotation fall in the {role} regions "
                            f"({_regions_text(regions)}), so the {role} metrics would be NaN; {advice}")
    return counts


def _check_split_sites(ann: Annotation, splits: Mapping[str, Sequence[Interval]], *, spec: TaskSpec,
                       site_convention: str, evaluate: bool) -> None:
    """Refuse validation (and, when evaluated, test) regions without annotated sites before training."""
    try:
        conv = get_convention(site_convention)
    except ValueError as err:
        raise TrainError(str(err)) from None
    if splits["valid"]:
        _check_sites(ann, splits["valid"], spec=spec, convention=conv, role="validation",
                     advice="give validation regions that hold annotated genes (--valid-chroms/--valid-regions), "
                            "or leave them out to train without validation (then no call thresholds are chosen)")
    if splits["test"] and evaluate:
        _check_sites(ann, splits["test"], spec=spec, convention=conv, role="test",
                     advice="give test regions that hold annotated genes (--test-chroms/--test-regions), "
                            "or leave them out (or --no-eval) to skip the held-out evaluation")


# --------------------------------------------------------------------------- training


def _train_setup(
    *,
    spec: TaskSpec,
    config: TrainConfig,
    arch: ArchConfig,
    genome: GenomeReader,
    train_regions: Sequence[Interval],
    model_dir: Path,
    base_model: str | os.PathLike | None,
    tokenizer: str | os.PathLike | None,
    vocab_size: int,
    resume: bool,
    family: str | None = None,
    family_options: dict[str, Any] | None = None,
) -> TrainSetup:
    """Network and tokenizer: the interrupted run's, a base model's, or a fresh one (see :func:`train_genome`)."""
    from ..io.checkpoint import write_tokenizer_json
    from ..io.tokenizers import load_tokenizer, read_bpe_tokenizer

    if resume:  # the tokenizer and config of the interrupted run
        return build_resumed(model_dir, spec=spec)
    kind = None if tokenizer is None else str(tokenizer)
    tok = None
    fam = FAMILIES.get(family or "gena_bert")
    if base_model is None and fam is not None and fam.fixed_vocabulary:
        # a fixed vocabulary (Family.fixed_vocabulary): the family brings its own tokenizer
        if kind not in (None, "char"):
            raise TrainError(f"--tokenizer {kind}: a fresh {family} model has its own fixed vocabulary; "
                             "leave --tokenizer out")
        return build_fresh(tokenizer=None, tokenizer_kind="own", spec=spec, arch=arch,
                           window_tokens=config.window_tokens, family=family or "gena_bert", options=family_options)
    if kind not in (None, "char", "bpe"):
        tok = load_tokenizer(kind)
    elif kind in ("char", "bpe") or base_model is None:
        kind = kind or "char"
        if kind == "char":
            text = char_tokenizer_json()
        else:
            chunks = [genome.fetch(iv.chrom, s, min(iv.end, s + 1000)) for iv in train_regions
                      for s in range(iv.start, iv.end, 1000)]
            text = train_bpe_tokenizer_json(chunks, vocab_size=vocab_size)
        tok = read_bpe_tokenizer(write_tokenizer_json(model_dir / "checkpoints" / "tokenizer", text))
    if base_model:
        setup = build_from_base(str(base_model), spec=spec, tokenizer=tok, window_tokens=config.window_tokens,
                                family=family, options=family_options)
        if tok is not None:  # --tokenizer replaced the base model's own
            setup.tokenizer_kind = kind if kind in ("char", "bpe") else "file"
        return setup
    return build_fresh(tokenizer=tok, tokenizer_kind=kind, spec=spec, arch=arch, window_tokens=config.window_tokens,
                       family=family or "gena_bert", options=family_options)


def train_genome(
    *,
    genome: str | os.PathLike | GenomeReader,
    annotation: str | os.PathLike | Annotation,
    task: str,
    output: str | os.PathLike,
    train: Regions,
    valid: Regions | None = None,
    test: Regions | None = None,
    base_model: str | os.PathLike | None = None,
    tokenizer: str | os.PathLike | None = None,
    vocab_size: int = 4096,
    config: TrainConfig | None = None,
    arch: ArchConfig | None = None,
    resume: bool = False,
    evaluate: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    family: str | None = None,
    family_options: dict[str, Any] | None = None,
) -> TrainRun:
    """Train a model for a task of :data:`genaannot.tasks.TASKS` on a genome and its annotation,
    then evaluate it on held-out data.

    Windows are drawn from the ``train`` regions as the task's registry entry says
    (:class:`genaannot.tasks.Training`); the model with the best validation score on
    ``valid`` is kept in ``output``. Tasks evaluated by ``sites`` (splice), with validation
    regions: per-label call thresholds (max F1 at base-pair resolution on ``valid``) are
    stored in ``output/genaannot.json`` for the scanner. With ``test`` regions (and ``evaluate``), the
    model is evaluated there (splice: with a PWM baseline fitted on ``train``): ``REPORT.json``
    and ``REPORT.png`` in ``output``, and ``test_metrics`` / ``test_baseline`` in
    ``genaannot.json``.

    Parameters
    ----------
    genome : str, PathLike or GenomeReader
        FASTA (plain or bgzip; opened and closed here) or an open genome.
    annotation : str, PathLike or Annotation
        GFF3 or GTF (optionally gzipped) or a parsed annotation; its chromosome names are
        matched onto the genome's.
    task : str
        A trainable task of :data:`genaannot.tasks.TASKS` (``splice``, ``promoter``, or one
        added there); replaces ``config.task``.
    output : str or PathLike
        Model directory to write (``checkpoints/`` inside holds the resumable steps).
    train, valid, test : Regions
        Training, validation and test regions (see :func:`resolve_regions`); no region of
        one may overlap a region of another.
    base_model : str or PathLike, optional
        Checkpoint of any family (path, catalogue name or cached hub id) to fine-tune, with a
        new task head when it has none that fits; default: a fresh model shaped by ``arch``.
    tokenizer : str or PathLike, optional
        ``"char"`` (one token per base), ``"bpe"`` (a BPE of ``vocab_size`` tokens trained on
        the training regions) or a directory / ``tokenizer.json``; default: the base model's
        own, else ``"char"``.
    vocab_size : int
        Vocabulary of a ``"bpe"`` tokenizer.
    config : TrainConfig, optional
        Optimisation and sampling settings (default ``TrainConfig()``).
    arch : ArchConfig, optional
        Shape of a fresh model (default ``ArchConfig()``); recorded in ``genaannot.json``.
    resume : bool
        Continue from ``output/checkpoints/last`` with its tokenizer and config.
    evaluate : bool
        Evaluate on ``test`` at the end.
    progress : bool
        Progress bars.
    log : callable, optional
        Receives one line per event (notes on the annotation and on a run without validation,
        validation scores, thresholds, metrics, files written).
    family : str, optional
        Model family to train (:data:`genaannot.models.families.FAMILIES`): default the base
        model's own, else ``gena_bert``. ``rmt`` with a GENA BERT base wraps it in a
        Recurrent Memory Transformer.
    family_options : dict, optional
        The family's training options (RMT: ``num_mem_tokens``, ``input_size``,
        ``segment_size``, ``max_n_segments``); recorded in ``genaannot.json``.

    Returns
    -------
    TrainRun

    Raises
    ------
    SplitError
        No training regions, ``valid`` or ``test`` given as an empty list (``None`` means
        none), or regions of two roles overlap (nothing is written).
    RegionError
        A region that does not fit the genome.
    TrainError
        Training cannot start or continue (no sites in the training regions, bad
        ``steps``, a base model that does not fit, ``resume`` without a checkpoint, ...).
    EvaluateError
        Validation regions, or test regions to be evaluated, without annotated sites of one
        of the task's site kinds (checked before training; nothing is written).
    OutputError
        ``output`` cannot be created or written (checked before training starts).
    ModelError
        A checkpoint that cannot be read (``--resume``: a trainer state refused for safety).
    """
    say = log or _silent
    if task not in TASK_SPECS:
        raise TrainError(f"task must be one of {', '.join(TASK_SPECS)}, not {task!r}")
    config = replace(config or TrainConfig(), task=task)
    arch = arch or ArchConfig()
    model_dir = Path(output)
    with contextlib.ExitStack() as stack:
        gen, ann = _open_inputs(genome, annotation, stack, say)
        splits = {role: resolve_regions(r, sizes=gen.sizes) for role, r in (("train", train), ("valid", valid),
                                                                             ("test", test))}
        if not splits["train"]:
            raise SplitError("no training regions")
        for role, given in (("valid", valid), ("test", test)):
            if given is not None and not splits[role]:  # None means "none"; an empty list is a mistake
                raise SplitError(f"{role}: an empty list of regions; give {role} regions, or None for no "
                                 f"{'validation' if role == 'valid' else 'test'} data")
        check_disjoint(splits)
        _check_split_sites(ann, splits, spec=TASK_SPECS[task], site_convention=config.site_convention,
                           evaluate=evaluate)
        _check_train_output(model_dir, genome=genome, annotation=annotation, regions=[train, valid, test],
                            base_model=base_model, tokenizer=tokenizer, resume=resume)
        check_writable(model_dir / "checkpoints" / "last")  # a read-only or impossible -o fails before any work
        setup = _train_setup(spec=TASK_SPECS[task], config=config, arch=arch, genome=gen, train_regions=splits["train"],
                             model_dir=model_dir, base_model=base_model, tokenizer=tokenizer, vocab_size=vocab_size,
                             resume=resume, family=family, family_options=family_options)
        if not splits["valid"]:  # said once the run is set up: an error before it stays one line
            say("no validation regions: the model of the last step is kept (no validation score to pick the best "
                "by)" + (" and no call thresholds are chosen (scan calls at the task's default threshold)"
                         if TASK_SPECS[task].evaluation == "sites" else ""))
        extra = {
            "test_regions": [iv.ucsc() for iv in splits["test"]],
            "genome": _file_name(genome),
            "annotation": _file_name(annotation),
            "family_options": dict(family_options or {}),
        }
        if setup.base_model is None:  # the shape asked for a fresh model (a base model keeps its own)
            fields = FAMILIES[setup.family].arch_fields
            shape = {"hidden_size": arch.hidden_size, "layers": arch.layers, "heads": arch.heads, "dropout": arch.dropout}
            # only what the family read (a dilated CNN's shape is its family options)
            extra["architecture"] = {k: v for k, v in shape.items() if fields is None or k in fields}
        result = train_model(genome=gen, annotation=ann, setup=setup, config=config, train_regions=splits["train"],
                             valid_regions=splits["valid"], model_dir=model_dir, resume=resume, progress=progress,
                             log=log, extra_metadata=extra)
        say(f"best model (step {result.best_step}, valid {result.best_valid}) in {model_dir}")
        run = TrainRun(model_dir, result, splits)
        # call thresholds from the validation data, never the test data
        if splits["valid"] and TASK_SPECS[task].evaluation == "sites":
            from ..models import load_model

            report = evaluate_sites(load_model(str(model_dir), device=config.device), task=task, genome=gen,
                                    annotation=ann, regions=splits["valid"], batch_size=config.batch_size,
                                    progress=progress)
            run.thresholds, _ = _store_thresholds(model_dir, report, splits["valid"], say)
        if splits["test"] and evaluate:
            run.evaluation = _evaluate(str(model_dir), gen, ann, splits["test"], baseline_regions=splits["train"],
                                       output_dir=model_dir, stem="REPORT", batch_size=16, device=config.device,
                                       overlap=0.5, stitch="center", progress=progress, say=say, task=task)
            # held-out metrics go into the checkpoint's own metadata too
            run.evaluation.metadata = update_metadata(
                model_dir, {"test_metrics": run.evaluation.report.metrics, "test_baseline": run.evaluation.report.baseline}
            )
    return run


def _file_name(source: Any) -> str | None:
    """Base name of an input given as a path, or of the file an open object was read from."""
    path = source if isinstance(source, (str, os.PathLike)) else getattr(source, "path", None)
    return os.path.basename(str(path)) if path is not None else None


# --------------------------------------------------------------------------- evaluation


def _evaluation_task(info: ModelInfo, name: str, task: str | None) -> TaskSpec:
    """The task to evaluate: the one asked for, else the checkpoint's own (``genaannot.json``)."""
    task = task or info.task
    choices = " or ".join(f"--task {t}" for t in TASK_SPECS)
    if task is None:
        raise EvaluateError(f"{name}: the checkpoint does not say which task it was trained for; "
                            f"pass the task ({choices})")
    if task not in TASK_SPECS:
        raise EvaluateError(f"{name}: evaluate supports the tasks genaannot trains ({', '.join(TASK_SPECS)}), "
                            f"not {task!r}")
    return TASK_SPECS[task]


def _summary_lines(report: EvalReport) -> list[str]:
    """One line per site type: the model's metrics, and the PWM baseline's beside them."""
    lines = []
    for kind, m in report.metrics.items():
        base = report.baseline.get(kind, {})
        line = "  ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))
        if base:
            line += "   | PWM " + "  ".join(f"{k} {v:.4f}" for k, v in base.items() if isinstance(v, float))
        lines.append(f"{kind:>9}: {line}")
    return lines


def _counts_line(report: EvalReport, spec: TaskSpec, regions: Sequence[Interval]) -> str:
    """What was scored: per label the positives, and the bases (``sites``) or windows (``windows``)."""
    labels = [k for k in report.metrics if k != "mean"]
    where = _regions_text(regions)
    if spec.evaluation == "sites":
        n = report.details.get("n_bases", 0)
        skipped = report.details.get("n_bases_not_scanned", 0)
        per = ", ".join(f"{k} {report.metrics[k].get('n_pos', 0):,} sites" for k in labels)
        return (f"scored {n:,} bases (both strands{f'; {skipped:,} in runs of N not scanned' if skipped else ''}) "
                f"of {where}: {per}")
    per = ", ".join(f"{k} {report.metrics[k].get('n_pos', 0):,} site windows and "
                    f"{report.metrics[k].get('n_neg', 0):,} background windows" for k in labels)
    return f"scored on {where}: {per}"


def _evaluate(
    model: str | Model,
    genome: GenomeReader,
    annotation: Annotation,
    regions: Sequence[Interval],
    *,
    baseline_regions: Sequence[Interval] | None,
    output_dir: str | os.PathLike,
    stem: str,
    batch_size: int,
    device: str | None,
    overlap: float,
    stitch: str,
    progress: bool,
    say: Callable[[str], None],
    task: str | None = None,
    site_convention: str | None = None,
) -> EvaluationRun:
    """Evaluate on ``regions``, write ``STEM.json``/``STEM.png`` and log the metrics."""
    from ..models import load_model

    name = model if isinstance(model, str) else str(model.info.source)
    if site_convention is not None and site_convention not in SITE_CONVENTIONS:
        raise EvaluateError(f"unknown site convention {site_convention!r}; choose one of {', '.join(SITE_CONVENTIONS)}")
    m = load_model(model, device=device) if isinstance(model, str) else model
    spec = _evaluation_task(m.info, name, task)
    # regions without annotated sites give NaN metrics: refuse before scoring them
    try:
        conv = model_convention(m.info, override=site_convention)[0] if spec.evaluation == "sites" else None
    except ValueError as err:
        raise EvaluateError(f"{name}: {err}") from None
    _check_sites(annotation, regions, spec=spec, convention=conv or DEFAULT_CONVENTION, role="evaluation",
                 advice="give regions that hold annotated genes (--chroms/--regions), and check that the annotation "
                        "is the genome's (chromosome names, assembly)")
    report = EVALUATIONS[spec.evaluation](
        m, task=spec.name, genome=genome, annotation=annotation, regions=regions, baseline_regions=baseline_regions,
        batch_size=batch_size, progress=progress, overlap=overlap, stitch=stitch, site_convention=site_convention)
    if "site_convention" in report.details:
        say(f"sites in convention {report.details['site_convention']!r} "
            f"({report.details['site_convention_source']}): "
            + "; ".join(f"{k} = {v}" for k, v in report.details["site_definitions"].items()))
    js, png = write_eval_report(report, output_dir, stem=stem)
    say(_counts_line(report, spec, regions))
    for line in _summary_lines(report):
        say(line)
    say(f"wrote {js} and {png}")
    return EvaluationRun(report, js, png)


def _store_thresholds(
    model_dir: Path, report: EvalReport, regions: Sequence[Interval], say: Callable[[str], None]
) -> tuple[dict[str, float], Path]:
    """Write the report's per-label max-F1 call thresholds into ``model_dir/genaannot.json``."""
    thresholds = call_thresholds(report)
    if not thresholds:
        raise EvaluateError(f"no annotated sites in {', '.join(iv.ucsc() for iv in regions)[:200]}: no thresholds")
    selection = {
        "criterion": "maximum F1 at base-pair resolution (both strands; call = score >= threshold)",
        "regions": [iv.ucsc() for iv in regions],
        # scans with other settings get a warning (genaannot.pipeline.scan.threshold_mismatch)
        "scan_settings": {"overlap": report.details.get("overlap", 0.5), "stitch": report.details.get("stitch", "center")},
        **{k: {"f1": report.metrics[k]["max_f1"], "precision": report.metrics[k]["max_f1_precision"],
               "recall": report.metrics[k]["max_f1_recall"]} for k in thresholds},
    }
    updates: dict[str, Any] = {"thresholds": thresholds, "threshold_selection": selection}
    if report.details.get("site_convention"):  # the convention the thresholds were chosen in, made explicit
        updates["site_convention"] = report.details["site_convention"]
    path = update_metadata(model_dir, updates)
    shown = ", ".join(f"{k} {t:.4g} (F1 {selection[k]['f1']:.3f})" for k, t in thresholds.items())
    say(f"call thresholds on {', '.join(selection['regions'])[:120]}: {shown} -> {path}")
    return thresholds, path


def _held_out_overlap(meta: dict, regions: Sequence[Interval], sizes: Mapping[str, int]) -> str | None:
    """The first recorded training/test region of a checkpoint that ``regions`` overlap."""
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


def _threshold_target(model: str | Model, regions: Sequence[Interval], sizes: Mapping[str, int]) -> Path:
    """The checkpoint directory that call thresholds chosen on ``regions`` may be written to."""
    from ..models import resolve_checkpoint

    name = model if isinstance(model, str) else str(model.info.source)
    path = resolve_checkpoint(name)
    if not path.is_dir():
        raise EvaluateError(f"--write-thresholds: {name} is not a checkpoint directory ({path})")
    meta = read_metadata(path)
    spec = TASK_SPECS.get(meta.get("task")) if meta.get("task") is not None else None
    if meta.get("task") is not None and (spec is None or spec.evaluation != "sites"):
        with_sites = ", ".join(n for n, s in TASK_SPECS.items() if s.evaluation == "sites")
        raise EvaluateError(f"--write-thresholds supports checkpoints of tasks evaluated per site ({with_sites}); "
                            f"{name} is a {meta['task']} model")
    clash = _held_out_overlap(meta, regions, sizes)
    if clash:
        valid = ", ".join(meta.get("valid_regions") or []) or "its validation regions"
        raise SplitError(
            f"--write-thresholds: {clash}; thresholds must be chosen on validation data, not on the data the model "
            f"was trained or tested on (this checkpoint's validation regions: {valid})"
        )
    return path


def evaluate_checkpoint(
    *,
    model: str | os.PathLike | Model,
    genome: str | os.PathLike | GenomeReader,
    annotation: str | os.PathLike | Annotation,
    regions: Regions,
    task: str | None = None,
    baseline_regions: Regions | None = None,
    output_dir: str | os.PathLike = ".",
    stem: str = "REPORT",
    batch_size: int = 16,
    device: str | None = None,
    overlap: float = 0.5,
    stitch: str = "center",
    write_thresholds: bool = False,
    site_convention: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> EvaluationRun:
    """Evaluate a checkpoint on annotated held-out regions; optionally store call thresholds.

    The evaluation is the task's (``Training.evaluation``): ``sites`` (splice) scores every
    base of ``regions`` on both strands (:func:`genaannot.evaluate.evaluate_sites`, with the
    scanner's ``overlap`` and ``stitch``), with a PWM baseline fitted on ``baseline_regions``
    when given; ``windows`` (promoter) site-centred and background windows
    (:func:`genaannot.evaluate.evaluate_windows`).

    Parameters
    ----------
    model : str, PathLike or Model
        Checkpoint path, catalogue name or cached hub id (loaded on ``device``), or a loaded model.
    genome : str, PathLike or GenomeReader
        FASTA (plain or bgzip; opened and closed here) or an open genome.
    annotation : str, PathLike or Annotation
        GFF3 or GTF (optionally gzipped) or a parsed annotation.
    regions : Regions
        Held-out regions (see :func:`resolve_regions`).
    task : str, optional
        A trainable task of :data:`genaannot.tasks.TASKS`. Default: the checkpoint's own (``genaannot.json``, written by ``genaannot train``); a
        checkpoint that does not record it needs it given (nothing is guessed from labels).
    baseline_regions : Regions, optional
        Splice: where the PWM baseline is fitted (the training regions); must not overlap ``regions``.
    output_dir : str or PathLike
        Directory for ``STEM.json`` and ``STEM.png`` (created when missing).
    stem : str
        Report file name stem.
    batch_size : int
        Windows per forward pass.
    device : str, optional
        ``cpu``, ``cuda``, ``cuda:1``; default: CUDA when available (ignored for a loaded model).
    overlap : float
        Splice: window overlap, as ``scan_genome(overlap=)``.
    stitch : {"center", "mean"}
        Splice: stitching, as ``scan_genome(stitch=)``.
    write_thresholds : bool
        Splice: store the max-F1 call thresholds found on ``regions`` in the checkpoint's
        ``genaannot.json`` (used by the scanner). ``regions`` must be validation data: the
        checkpoint must be a local directory, and regions overlapping its recorded training
        or test regions are refused before anything is computed. The site convention the
        thresholds hold for is written beside them (``site_convention``).
    site_convention : {"exon", "intron"}, optional
        Splice: where the true sites are placed (:data:`genaannot.conventions.SITE_CONVENTIONS`);
        default: the checkpoint's (:func:`genaannot.conventions.checkpoint_convention`).
    progress : bool
        Progress bar (splice).
    log : callable, optional
        Receives notes on the annotation (chromosomes not in the FASTA, transcripts past a
        chromosome's end), what was scored (per label: sites, and bases or windows), the
        metrics (one line per site type) and the files written.

    Returns
    -------
    EvaluationRun

    Raises
    ------
    SplitError
        No regions, ``baseline_regions`` given as an empty list (``None`` means no baseline),
        ``regions`` overlapping ``baseline_regions``, or (``write_thresholds``) regions the
        checkpoint was trained or tested on.
    RegionError
        A region that does not fit the genome.
    EvaluateError
        The task cannot be told, ``regions`` hold no annotated site of one of the task's site
        kinds (checked before scoring), or (``write_thresholds``) the checkpoint is no local
        splice checkpoint directory.
    ModelError
        The checkpoint cannot be found or loaded.
    """
    say = log or _silent
    ref = model if not isinstance(model, os.PathLike) else str(model)
    with contextlib.ExitStack() as stack:
        gen, ann = _open_inputs(genome, annotation, stack, say)
        held_out = resolve_regions(regions, sizes=gen.sizes)
        if not held_out:
            raise SplitError("no regions to evaluate on")
        out_dir = Path(output_dir)
        check_not_inputs([out_dir / f"{stem}.json", out_dir / f"{stem}.png"],
                         _run_inputs(genome, annotation, [regions, baseline_regions], ref))
        target = _threshold_target(ref, held_out, gen.sizes) if write_thresholds else None
        base = resolve_regions(baseline_regions, sizes=gen.sizes) or None
        if baseline_regions is not None and not base:  # None means "no baseline"; an empty list is a mistake
            raise SplitError("baseline: an empty list of regions; give the regions to fit the PWM baseline on, "
                             "or None for no baseline")
        if base:
            check_disjoint({"test": held_out, "baseline": base})
        run = _evaluate(ref, gen, ann, held_out, baseline_regions=base, output_dir=output_dir, stem=stem,
                        batch_size=batch_size, device=device, overlap=overlap, stitch=stitch, progress=progress, say=say,
                        task=task, site_convention=site_convention)
        if target is not None:
            run.thresholds, run.metadata = _store_thresholds(target, run.report, held_out, say)
    return run
