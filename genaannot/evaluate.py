"""Held-out evaluation of trained tasks, and a PWM baseline for splice sites.

A task's registry entry names its evaluation (``Training.evaluation``, a key of
:data:`EVALUATIONS`): ``sites`` (:func:`evaluate_sites`; ``splice``) or ``windows``
(:func:`evaluate_windows`; ``promoter``). :func:`evaluate_splice` and
:func:`evaluate_promoter` are those two for the built-in tasks.

Sites (base-pair resolution; splice)
------------------------------------
Every base of the evaluated regions, on both strands, is one example per site type (each
of the task's labels is an annotation site kind: ``acceptor``, ``donor``, ``tss``).
Positives are the annotated acceptor (donor) bases (see :mod:`genaannot.io.annotation`)
placed in the model's site convention (:mod:`genaannot.conventions`: ``exon``, SpliceAI's,
or ``intron``; the checkpoint's ``site_convention``, or as given); everything else,
including the other site type, is negative. The model is run on each strand
(minus strand reverse-complemented) exactly as the scanner tiles and stitches
(:func:`genaannot.span.region_tracks`): windows of the scanner's ``window_tokens`` (never
truncated), by default half-window overlap and each base keeping the score of the window
whose centre is nearest (``overlap`` / ``stitch_mode``, as in scan), a token's score painted
on every base of its span; bases in the runs of N the scanner skips score ``-inf`` and still
count. Metrics per site type: average
precision (area under the precision-recall curve, step-wise as in scikit-learn), AUROC
(ties get average ranks), SpliceAI top-k accuracy (k = number of positives: fraction of
the k highest-scoring bases that are sites), and the call threshold with the highest F1
(``max_f1_threshold``; with F1, precision and recall there). On validation regions that
threshold is what ``genaannot train`` / ``genaannot evaluate --write-thresholds`` store in a
checkpoint's ``genaannot.json`` for the scanner's calls.

Baseline (donor and acceptor only): a position weight matrix log-odds score around
canonical dinucleotides (donor GT/GC at the first two intron bases, acceptor AG at the last
two), with site and decoy frequencies counted on the training regions only, scored at the
site base of the same convention as the model; bases without the dinucleotide score ``-inf``.

Windows (window level; promoter)
--------------------------------
One window centred on every held-out site of the task's kinds (positive; promoter: every
TSS) and ``negatives_per_positive`` random background windows per positive (no same-strand
site inside); AUROC, AUPRC and F1 at the task's call threshold (promoter: probability 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .conventions import DEFAULT_CONVENTION, SiteConvention, get_convention, model_convention
from .io.annotation import Annotation
from .labels import TASK_SPECS, GenomeReader, SiteIndex, WindowSampler, oriented_positions
from .metrics import average_precision, pr_curve, roc_auc, site_metrics
from .regions import Interval
from .tasks import Task, get_task
from .windows import reverse_complement

__all__ = [
    "call_thresholds",
    "PWM",
    "fit_pwm",
    "score_pwm",
    "evaluate_sites",
    "evaluate_windows",
    "evaluate_splice",
    "evaluate_promoter",
    "EVALUATIONS",
    "EvalReport",
    "write_eval_report",
]

# --------------------------------------------------------------------------- call thresholds


def call_thresholds(report: EvalReport) -> dict[str, float]:
    """Per-label call thresholds of a ``sites`` report: the model's max-F1 threshold per site type.

    Returns
    -------
    dict of label -> float
        e.g. ``{"acceptor": 0.93, "donor": 0.91}``; labels without a finite threshold are left out.
    """
    out = {}
    for kind, m in report.metrics.items():
        t = m.get("max_f1_threshold") if isinstance(m, dict) else None
        if kind != "mean" and t is not None and math.isfinite(t):
            out[kind] = float(t)
    return out


# --------------------------------------------------------------------------- PWM baseline

_CODE = np.full(256, 4, dtype=np.int8)
for _i, _c in enumerate("ACGT"):
    _CODE[ord(_c)] = _i
    _CODE[ord(_c.lower())] = _i

#: motif extent relative to the intron-side site base (oriented), and allowed dinucleotides
#: (offset of the dinucleotide's first base relative to that base); other conventions move
#: both by their shift (:func:`_motif`)
MOTIFS: dict[str, dict[str, Any]] = {
    "donor": {"lo": -3, "hi": 6, "dinucs": ("GT", "GC"), "di_off": 0},
    "acceptor": {"lo": -20, "hi": 3, "dinucs": ("AG",), "di_off": -1},
}


def _motif(kind: str, convention: SiteConvention) -> tuple[int, int, int]:
    """``(lo, hi, di_off)`` of ``kind``'s motif relative to its base in ``convention``."""
    m, d = MOTIFS[kind], convention.shift.get(kind, 0)
    return m["lo"] - d, m["hi"] - d, m["di_off"] - d


def _codes(seq: str) -> np.ndarray:
    return _CODE[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


@dataclass
class PWM:
    """Log-odds position weight matrix of one site type.

    Attributes
    ----------
    kind : "donor" | "acceptor"
    lo, hi : motif offsets ``[lo, hi)`` relative to the site base, in transcript orientation
    convention : the site convention (:data:`genaannot.conventions.SITE_CONVENTIONS`) of that base
    logodds : float64 [hi - lo, 5]  log P(base | site) - log P(base | decoy); column 4 = N/other (0)
    n_sites, n_decoys : training counts
    """

    kind: str
    lo: int
    hi: int
    logodds: np.ndarray
    n_sites: int
    n_decoys: int
    convention: str = DEFAULT_CONVENTION

    @property
    def di_off(self) -> int:
        """Offset of the dinucleotide's first base relative to the site base."""
        return _motif(self.kind, get_convention(self.convention))[2]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["logodds"] = np.round(self.logodds[:, :4], 4).tolist()
        return d


def _candidates(codes: np.ndarray, kind: str, *, off: int) -> np.ndarray:
    """Positions q of an oriented sequence where ``kind``'s dinucleotide sits at ``q + off``; int64 [k]."""
    m = MOTIFS[kind]
    n = codes.size
    hit = np.zeros(n, dtype=bool)
    for di in m["dinucs"]:
        a, b = "ACGT".index(di[0]), "ACGT".index(di[1])
        q = np.arange(max(0, -off), n - max(0, off + 1))
        ok = (codes[q + off] == a) & (codes[q + off + 1] == b)
        hit[q[ok]] = True
    return np.flatnonzero(hit)


def _windows(codes: np.ndarray, q: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Motif windows ``codes[q+lo : q+hi]`` (out of range → 4); int8 [k, hi-lo]."""
    idx = q[:, None] + np.arange(lo, hi)[None, :]
    ok = (idx >= 0) & (idx < codes.size)
    out = np.full(idx.shape, 4, dtype=np.int8)
    out[ok] = codes[idx[ok]]
    return out


def _oriented(genome: GenomeReader, iv: Interval, strand: str) -> str:
    seq = genome.fetch(iv.chrom, iv.start, iv.end)
    return seq if strand == "+" else reverse_complement(seq)


def fit_pwm(genome: GenomeReader, annotation: Annotation, regions: Sequence[Interval], *, kind: str,
            pseudocount: float = 1.0, convention: str | SiteConvention = DEFAULT_CONVENTION) -> PWM:
    """Fit a log-odds PWM for ``kind`` on ``regions`` (sites vs non-site dinucleotide decoys),
    its columns relative to the site base of ``convention``."""
    conv = get_convention(convention)
    lo, hi, off = _motif(kind, conv)
    idx = SiteIndex(annotation, regions, (kind,), convention=conv)
    site_counts = np.full((hi - lo, 5), pseudocount)
    decoy_counts = np.full((hi - lo, 5), pseudocount)
    n_sites = n_decoys = 0
    for iv in regions:
        for strand in "+-":
            codes = _codes(_oriented(genome, iv, strand))
            sites = idx.in_window(iv.chrom, strand, kind, iv.start, iv.end)
            q_sites = oriented_positions(sites, start=iv.start, end=iv.end, strand=strand)
            cand = _candidates(codes, kind, off=off)
            decoys = np.setdiff1d(cand, q_sites)
            for q, counts in ((q_sites, site_counts), (decoys, decoy_counts)):
                if q.size == 0:
                    continue
                w = _windows(codes, q, lo, hi)
                for j in range(hi - lo):
                    counts[j] += np.bincount(w[:, j], minlength=5)
            n_sites += int(q_sites.size)
            n_decoys += int(decoys.size)
    p_site = site_counts[:, :4] / site_counts[:, :4].sum(1, keepdims=True)
    p_decoy = decoy_counts[:, :4] / decoy_counts[:, :4].sum(1, keepdims=True)
    logodds = np.zeros((hi - lo, 5))
    logodds[:, :4] = np.log(p_site) - np.log(p_decoy)
    return PWM(kind, lo, hi, logodds, n_sites, n_decoys, conv.name)


def score_pwm(pwm: PWM, oriented_seq: str) -> np.ndarray:
    """PWM score at every base of an oriented sequence; ``-inf`` where no dinucleotide. float64 [n]."""
    codes = _codes(oriented_seq)
    out = np.full(codes.size, -np.inf)
    q = _candidates(codes, pwm.kind, off=pwm.di_off)
    if q.size:
        w = _windows(codes, q, pwm.lo, pwm.hi)
        out[q] = pwm.logodds[np.arange(pwm.hi - pwm.lo)[None, :], w].sum(1)
    return out


# --------------------------------------------------------------------------- reports


@dataclass
class EvalReport:
    """Result of one evaluation (written as JSON by :func:`write_eval_report`)."""

    task: str
    model: str
    regions: list[str]
    metrics: dict[str, dict[str, float]]
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: PR curves for plotting: name -> (precision, recall); not written to JSON
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("curves")
        return d


def evaluate_sites(
    model: Any,
    *,
    task: str | Task,
    genome: GenomeReader,
    annotation: Annotation,
    regions: Sequence[Interval],
    baseline_regions: Sequence[Interval] | None = None,
    window_tokens: int | None = None,
    batch_size: int = 16,
    progress: bool = False,
    overlap: float = 0.5,
    stitch_mode: str = "center",
    site_convention: str | None = None,
) -> EvalReport:
    """Base-pair-resolution site metrics of ``model`` for a token ``task`` (and the PWM baseline) on ``regions``.

    Each of the task's labels (splice: ``acceptor``, ``donor``) is an annotation site kind
    (:meth:`genaannot.io.annotation.Annotation.sites`). The model's scores are what
    ``scan_genome(task=task)`` writes for the same
    ``regions``, ``window_tokens`` (default: the scanner's), ``overlap`` and ``stitch_mode``:
    the same readout (:func:`genaannot.readout.resolve_readout`), layout, work units and
    prediction path (:func:`genaannot.span.region_tracks`), so the call thresholds chosen
    here hold for such scans. Bases the scanner skips (runs of N of at least a window) have
    no score (``-inf``). Overlapping regions are merged (each base counts once).
    ``baseline_regions``: where the PWM is fitted (the training regions); no baseline when None
    (and none for kinds without a motif in :data:`MOTIFS`, e.g. ``tss``).
    ``site_convention``: where the true sites are placed (:data:`genaannot.conventions.SITE_CONVENTIONS`);
    default: the model's (:func:`genaannot.conventions.model_convention`). A model scored in
    the other convention than it predicts in gets AP near 0: its peaks sit 1 bp off.

    Returns
    -------
    EvalReport
        ``metrics`` and ``baseline`` per site kind plus ``mean``; ``details`` with the convention,
        tiling and PWMs.

    Raises
    ------
    ValueError
        The model has no readout for ``task``, a label is no annotation site kind, or
        ``site_convention`` / the checkpoint's names no convention.
    """
    from tqdm.auto import tqdm

    from .readout import ReadoutError, resolve_readout
    from .span import region_tracks

    task = get_task(task)
    try:
        readout = resolve_readout(task, model.info, window_tokens=window_tokens, strand="both")
    except ReadoutError as err:
        raise ValueError(str(err)) from None
    kinds = list(readout.labels)  # the task's channels (splice: acceptor, donor), each a site kind
    if task.training is not None and not set(kinds) <= set(task.training.site_kinds):
        raise ValueError(f"task {task.name!r}: labels {', '.join(kinds)} are not all among its site kinds "
                         f"{', '.join(task.training.site_kinds)}")
    conv, conv_source = model_convention(model.info, override=site_convention)
    pwms = ({k: fit_pwm(genome, annotation, baseline_regions, kind=k, convention=conv) for k in kinds if k in MOTIFS}
            if baseline_regions else {})
    total = 2 * sum(len(iv) for iv in regions)
    with tqdm(total=total, disable=not progress, desc="evaluate", unit="bp", unit_scale=True, leave=False) as bar:
        layout, tracks = region_tracks(genome, regions, tokenizer=model.tokenizer, predictor=model.predict_encoded,
                                       readout=readout, overlap=overlap, stitch_mode=stitch_mode,
                                       batch_size=batch_size, progress=bar.update)
    targets = layout.targets
    idx = SiteIndex(annotation, targets, tuple(kinds), convention=conv)
    scores: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    base: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    truth: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    for iv, per_strand in zip(targets, tracks):
        for strand in "+-":
            probs = per_strand[strand] if strand == "+" else per_strand[strand][::-1]  # oriented 5'->3'
            seq = _oriented(genome, iv, strand) if pwms else None
            for k, kind in enumerate(kinds):
                sites = idx.in_window(iv.chrom, strand, kind, iv.start, iv.end)
                y = np.zeros(len(iv), dtype=bool)
                y[oriented_positions(sites, start=iv.start, end=iv.end, strand=strand)] = True
                sc = probs[:, k].astype(np.float64)
                scores[kind].append(np.where(np.isnan(sc), -np.inf, sc))
                truth[kind].append(y)
                if kind in pwms:
                    base[kind].append(score_pwm(pwms[kind], seq))
    report = EvalReport(task.name, str(model.info.source), [iv.ucsc() for iv in regions], {})
    for kind in kinds:
        y = np.concatenate(truth[kind])
        sc = np.concatenate(scores[kind])
        report.metrics[kind] = asdict(site_metrics(sc, y))
        report.curves[f"model {kind}"] = pr_curve(sc, y)
        if kind in pwms:
            b = np.concatenate(base[kind])
            report.baseline[kind] = asdict(site_metrics(b, y))
            report.curves[f"PWM {kind}"] = pr_curve(b, y)
    for d in (report.metrics, report.baseline):
        if d:
            d["mean"] = {m: float(np.mean([d[k][m] for k in kinds if k in d]))
                         for m in ("average_precision", "auroc", "topk_accuracy")}
    report.details = {
        "resolution": "base pair; token scores painted on their spans",
        "site_convention": conv.name,
        "site_convention_source": conv_source,
        "site_definitions": {k: conv.definitions[k] for k in kinds},
        "tiling": "as scan_genome: runs of N of at least min_gap_bp not scanned (score -inf), work units of unit_bp",
        "window_tokens": readout.window_tokens,
        "overlap": overlap,
        "stitch": stitch_mode,
        "min_gap_bp": layout.min_gap,
        "unit_bp": layout.unit_bp,
        "n_bases": int(2 * sum(len(iv) for iv in targets)),
        "n_bases_not_scanned": int(2 * layout.n_bp_skipped),
        "pwm": {k: p.to_dict() for k, p in pwms.items()},
        "baseline_regions": [iv.ucsc() for iv in baseline_regions] if baseline_regions else [],
    }
    return report


def evaluate_splice(model: Any, **kwargs: Any) -> EvalReport:
    """:func:`evaluate_sites` for ``task="splice"`` (same keyword arguments)."""
    return evaluate_sites(model, task="splice", **kwargs)


def evaluate_windows(
    model: Any,
    *,
    task: str | Task,
    genome: GenomeReader,
    annotation: Annotation,
    regions: Sequence[Interval],
    window_bp: int | None = None,
    negatives_per_positive: int = 1,
    seed: int = 12345,
    batch_size: int = 16,
) -> EvalReport:
    """Window-level metrics of a sequence ``task`` on ``regions`` (see the module docstring); the
    score is what ``scan --task TASK`` reads (:func:`genaannot.readout.resolve_readout`).

    Returns
    -------
    EvalReport
        ``metrics[label]`` (the task's first label; promoter: ``promoter``): auroc,
        average_precision, f1 at the task's call threshold, n_pos, n_neg.
    """
    from .readout import ReadoutError, resolve_readout

    task = get_task(task)
    try:
        readout = resolve_readout(task, model.info)
    except ReadoutError as err:
        raise ValueError(str(err)) from None
    try:
        spec = TASK_SPECS[task.name]
    except KeyError:
        raise ValueError(f"task {task.name!r} has no training spec (site kinds) to evaluate windows by") from None
    meta = model.info.extra.get("genaannot") or {}
    window_bp = int(window_bp or meta.get("window_bp") or model.max_tokens)
    idx = SiteIndex(annotation, regions, spec.site_kinds)
    sampler = WindowSampler(genome=genome, sites=idx, regions=regions, tokenizer=model.tokenizer, spec=spec,
                            window_bp=window_bp, window_tokens=model.max_tokens, site_fraction=0.0, promoter_jitter=0)
    wins = [sampler.site_window(chrom, strand, pos, offset=window_bp // 2) for chrom, strand, _k, pos in idx.flat]
    n_pos = len(wins)
    rng = np.random.default_rng(seed)
    tries = 0
    while len(wins) < n_pos * (1 + negatives_per_positive) and tries < 100 * max(1, n_pos):
        tries += 1
        w = sampler.draw(rng)
        if not sampler.has_site(w[0], w[3], w[1], w[2]):
            wins.append(w)
    y = np.array([1] * n_pos + [0] * (len(wins) - n_pos), dtype=bool)
    seqs = [genome.fetch(c, s, e) if st == "+" else reverse_complement(genome.fetch(c, s, e)) for c, s, e, st in wins]
    preds = model.predict(seqs, batch_size=batch_size)
    p = np.array([readout.values(pr.logits)[0] for pr in preds], dtype=np.float64)
    call = p >= task.call_threshold
    tp, fp, fn = int((call & y).sum()), int((call & ~y).sum()), int((~call & y).sum())
    f1 = 2 * tp / max(1, 2 * tp + fp + fn)
    label = readout.labels[0]
    report = EvalReport(task.name, str(model.info.source), [iv.ucsc() for iv in regions], {})
    report.metrics[label] = {
        "auroc": roc_auc(p, y), "average_precision": average_precision(p, y), "f1": f1,
        "n_pos": int(y.sum()), "n_neg": int((~y).sum()),
    }
    report.curves[f"model {label}"] = pr_curve(p, y)
    report.details = {"window_bp": window_bp, "negatives_per_positive": negatives_per_positive, "seed": seed}
    return report


def evaluate_promoter(model: Any, **kwargs: Any) -> EvalReport:
    """:func:`evaluate_windows` for ``task="promoter"`` (same keyword arguments)."""
    return evaluate_windows(model, task="promoter", **kwargs)


def _run_sites(model: Any, *, task: str | Task, genome: GenomeReader, annotation: Annotation,
               regions: Sequence[Interval], baseline_regions: Sequence[Interval] | None, batch_size: int,
               progress: bool, overlap: float, stitch: str, site_convention: str | None) -> EvalReport:
    return evaluate_sites(model, task=task, genome=genome, annotation=annotation, regions=regions,
                          baseline_regions=baseline_regions, batch_size=batch_size, progress=progress,
                          overlap=overlap, stitch_mode=stitch, site_convention=site_convention)


def _run_windows(model: Any, *, task: str | Task, genome: GenomeReader, annotation: Annotation,
                 regions: Sequence[Interval], baseline_regions: Sequence[Interval] | None, batch_size: int,
                 progress: bool, overlap: float, stitch: str, site_convention: str | None) -> EvalReport:
    return evaluate_windows(model, task=task, genome=genome, annotation=annotation, regions=regions,
                            batch_size=batch_size)


#: ``Training.evaluation`` name -> the evaluation, called with the keyword arguments ``task``,
#: ``genome``, ``annotation``, ``regions``, ``baseline_regions``, ``batch_size``, ``progress``,
#: ``overlap``, ``stitch``, ``site_convention`` (those it does not use are ignored); keys:
#: :data:`genaannot.tasks.EVALUATIONS`
EVALUATIONS: dict[str, Callable[..., EvalReport]] = {"sites": _run_sites, "windows": _run_windows}


def write_eval_report(report: EvalReport, directory: str | Path, *, stem: str = "REPORT") -> tuple[Path, Path]:
    """Write ``STEM.json`` and ``STEM.png`` (precision-recall curves) into ``directory``.

    The figure is built by :func:`genaannot.plot.pr_figure` and rendered here (110 dpi); the
    files are written by :func:`genaannot.io.evaluation.write_evaluation`.

    Returns
    -------
    (Path, Path)
        The JSON and PNG paths.
    """
    from .io.evaluation import write_evaluation
    from .plot import figure_bytes, pr_figure

    fig = pr_figure(task=report.task, curves=report.curves, metrics=report.metrics, baseline=report.baseline,
                    title=", ".join(report.regions))
    return write_evaluation(report.to_dict(), figure_bytes(fig, fmt="png", dpi=110), directory, stem=stem)
