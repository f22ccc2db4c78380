"""``scan_genome``: FASTA → windows → model → stitched per-base tracks → bigWig/BED.

Coordinates are 0-based, half-open.

Flow and memory bound
---------------------
The scanned regions (whole sequences, ``chroms``, or a BED of ``regions``) minus runs of
``N`` of at least ``min_gap`` bp are cut into deterministic work units
(:func:`genaannot.windows.plan_units`, ``unit_bp`` ≤ 1 Mb, smaller for many tracks). One
unit at a time is read (unit ± a halo of at least one window), tiled into token windows,
predicted on each strand, stitched, run-length encoded and saved as a compressed part
``OUT.parts/<unit>.npz`` (written atomically: its presence is the done-marker). When all
parts exist they are streamed, in ``.fai`` order, into the writers. Peak memory is one
unit's letters plus ``unit_bp × tracks × 12`` bytes of float32 work arrays plus the model.

``resume=True`` keeps the parts of an interrupted run (made with the same settings) and
computes only the missing ones, so the final files are identical to an uninterrupted
run. ``shard=(i, n)`` computes only units ``k`` with ``k % n == i - 1``; a later run with
``resume=True`` (or the last shard to finish) assembles the outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..calls import CallMaker, format_call, sort_calls
from ..io.fasta import Genome, open_genome, scan_n_runs
from ..io.tracks import (
    WRITERS,
    OutputError,
    check_writable,
    load_npz,
    save_npz_atomic,
    write_json_atomic,
    write_lines_atomic,
)
from ..regions import Interval, RegionError, resolve_chrom
from ..stitch import STITCH_MODES, WindowOutput, rc_to_forward, runs, stitch
from ..tasks import Task, activate, chromatin_labels, get_task
from ..tokenize import SequenceStats
from ..windows import (
    Segment,
    Unit,
    WindowPlan,
    center_cuts,
    parse_shard,
    plan_units,
    plan_windows,
    reverse_complement,
    reverse_plan,
    stride_tokens,
    subtract_gaps,
)
from .devices import load_for_device, model_config, parse_devices, run_on_devices
from .devices import model_spec as _model_spec

if TYPE_CHECKING:
    from ..models.base import Model, ModelInfo

__all__ = [
    "scan_genome",
    "resolve_thresholds",
    "ScanResult",
    "ScanError",
    "TrackSpec",
    "resolve_setup",
    "output_names",
    "prepare_unit",
    "default_workers",
    "threshold_mismatch",
    "parse_devices",
    "finish_scan",
    "track_specs",
]

STRAND_NAMES = {"+": "plus", "-": "minus"}
_WORK_BYTES = 512 * 1024 * 1024  # budget for per-unit float32 work arrays


class ScanError(ValueError):
    """Settings that do not fit together (model vs task, labels, strands, outputs)."""


@dataclass(frozen=True)
class TrackSpec:
    """One output track: a label's channel on one strand."""

    label: str
    channel: int
    strand: str  # "+" | "-"
    path: Path


@dataclass
class ScanResult:
    """What :func:`scan_genome` wrote.

    ``complete`` is False when a shard finished but other units are still missing.
    """

    tracks: list[Path]
    bedgraphs: list[Path]
    calls: Path | None
    manifest: Path | None
    complete: bool
    counts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    model_seconds: float = 0.0


@dataclass(frozen=True)
class Setup:
    """Task × model resolved: readout, activation, channels to write."""

    readout: str  # token | sequence
    activation: str
    labels: tuple[str, ...]
    channels: tuple[int, ...]
    strands: tuple[str, ...]
    window_tokens: int


def _stem(output: Path) -> Path:
    name = output.name
    for suf in (".bw", ".bigwig", ".bigWig", ".bedGraph", ".bedgraph"):
        if name.endswith(suf) and len(name) > len(suf):
            return output.with_name(name[: -len(suf)])
    return output


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label) or "label"


def output_names(output: str | Path, labels: list[str], strands: list[str]) -> dict[tuple[str, str], Path]:
    """Track file of each (label, strand): ``OUT`` itself for a single track, else
    ``<OUT without .bw>.<label>.<plus|minus>.bw``."""
    output = Path(output)
    pairs = [(lab, s) for lab in labels for s in strands]
    if len(pairs) == 1:
        return {pairs[0]: output}
    stem = _stem(output)
    out: dict[tuple[str, str], Path] = {}
    seen: set[str] = set()
    for lab, s in pairs:
        base = _safe(lab)
        name = f"{stem.name}.{base}.{STRAND_NAMES[s]}.bw"
        k = 2
        while name in seen:
            name = f"{stem.name}.{base}_{k}.{STRAND_NAMES[s]}.bw"
            k += 1
        seen.add(name)
        out[(lab, s)] = stem.with_name(name)
    return out


def resolve_setup(
    task: Task,
    model: Model,
    *,
    strand: str | None,
    labels: list[str] | None,
    window_tokens: int | None,
) -> Setup:
    """Check that ``model`` can serve ``task`` and decide what to write; :class:`ScanError` if not."""
    info = model.info
    head = info.head
    if head not in ("token", "sequence"):
        raise ScanError(
            f"model {info.source} has a {head!r} head; scanning needs a token or sequence "
            "classifier (fine-tune one with `genaannot train`)"
        )
    readout = head if task.readout == "auto" else task.readout
    if readout != head:
        what = {"token": "one value per token", "sequence": "one value per window"}
        raise ScanError(
            f"task {task.name!r} reads {what[readout]} ({readout} head) but model {info.source} "
            f"has a {head} head; use a {readout}-classification checkpoint for --task {task.name}"
        )
    if info.task and task.name != "generic" and info.task != task.name:
        raise ScanError(f"model {info.source} was trained for task {info.task!r}, not {task.name!r}")
    n_out = len(info.labels)
    if task.channels:
        need = max(task.channels.values()) + 1
        if n_out < need:
            raise ScanError(
                f"task {task.name!r} needs {need} output labels (channels {task.channels}) but model "
                f"{info.source} has {n_out} ({', '.join(info.labels)}); label count mismatch"
            )
        names, chans = list(task.channels), [task.channels[k] for k in task.channels]
    elif task.name == "chromatin":
        deepsea, _ = chromatin_labels()
        if n_out != len(deepsea):
            raise ScanError(
                f"task 'chromatin' needs {len(deepsea)} DeepSEA outputs but model {info.source} has {n_out}"
            )
        generic = all(lab.startswith("LABEL_") for lab in info.labels)
        names, chans = (deepsea if generic else list(info.labels)), list(range(n_out))
    else:
        names, chans = list(info.labels), list(range(n_out))
        if not names:
            raise ScanError(f"model {info.source} declares no output labels")
    if labels:
        index = {n: i for i, n in enumerate(names)}
        unknown = [lab for lab in labels if lab not in index]
        if unknown:
            raise ScanError(
                f"--labels {', '.join(unknown)} not among the task's labels: {', '.join(names[:20])}"
                + (" …" if len(names) > 20 else "")
            )
        pick = [index[lab] for lab in dict.fromkeys(labels)]
        names, chans = [names[i] for i in pick], [chans[i] for i in pick]
    act = task.activation
    if act == "auto":
        pt = info.problem_type
        act = {"multi_label_classification": "sigmoid", "regression": "identity"}.get(
            pt or "", "softmax" if n_out > 1 else "sigmoid"
        )
    if strand in (None, ""):
        strand = "both" if task.strand_specific else "+"
    strands = {"both": ("+", "-"), "+": ("+",), "-": ("-",)}.get(strand)
    if strands is None:
        raise ScanError(f"--strand must be both, + or -, not {strand!r}")
    wt = window_tokens or min(task.window_tokens, model.max_tokens)
    if wt < 1 or wt > model.max_tokens:
        raise ScanError(f"--window-tokens {wt} outside 1..{model.max_tokens} (the model's content tokens per input)")
    return Setup(readout, act, tuple(names), tuple(chans), strands, wt)


def _targets(genome: Genome, regions: Any, chroms: list[str] | None) -> list[Interval]:
    sizes = genome.sizes
    rank = {c: i for i, c in enumerate(sizes)}
    if chroms:
        keep = [resolve_chrom(c, sizes) for c in chroms]
    else:
        keep = None
    if regions is not None:
        if isinstance(regions, (str, Path)):
            from ..io.bed import read_bed

            ivs = read_bed(regions, sizes=sizes)
        else:
            ivs = list(regions)
            for iv in ivs:
                if iv.chrom not in sizes:
                    raise RegionError(f"region {iv.ucsc()}: chromosome not in the genome")
                if iv.end > sizes[iv.chrom]:
                    raise RegionError(f"region {iv.ucsc()} runs past the end of {iv.chrom} ({sizes[iv.chrom]:,})")
        if keep is not None:
            ivs = [iv for iv in ivs if iv.chrom in set(keep)]
    else:
        ivs = [Interval(c, 0, sizes[c]) for c in (keep or sizes)]
    ivs = sorted(ivs, key=lambda iv: (rank[iv.chrom], iv.start, iv.end))
    merged: list[Interval] = []
    for iv in ivs:  # merge overlapping/adjacent regions so no base is scanned twice
        if merged and merged[-1].chrom == iv.chrom and iv.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.chrom, last.start, max(last.end, iv.end))
        else:
            merged.append(Interval(iv.chrom, iv.start, iv.end))
    return merged


def _segments(genome: Genome, targets: list[Interval], min_gap: int) -> tuple[list[Segment], int, int]:
    """Targets minus long N runs; returns segments, N bp skipped, number of gaps met."""
    segs: list[Segment] = []
    skipped = n_gaps = 0
    by_chrom: dict[str, list[Interval]] = {}
    for t in targets:
        by_chrom.setdefault(t.chrom, []).append(t)
    for chrom, ivs in by_chrom.items():
        gaps = [(r.start, r.end) for r in scan_n_runs(genome, chrom, min_len=min_gap)]
        for t in ivs:
            pieces = subtract_gaps(t.start, t.end, gaps)
            covered = sum(e - s for s, e in pieces)
            skipped += len(t) - covered
            n_gaps += sum(1 for gs, ge in gaps if gs < t.end and ge > t.start)
            segs.extend(Segment(chrom, s, e) for s, e in pieces)
    return segs, skipped, n_gaps


@dataclass
class _StrandWork:
    """One strand of a unit, ready for the model (picklable: made in a worker process).

    Coordinates are forward-strand and relative to this strand's context
    ``[cs, cs + length)``; the unit is ``[u0, u1)`` in them. ``plan`` holds only the windows
    that contribute to the unit (their tokens as the model sees them: the reverse
    complement's for ``-``, as row ranges of one token array, cheap to send between
    processes); ``own`` ``[n, 2]`` is what each owns under centre stitching and ``rows`` the
    token rows each contributes (centre stitching, token head; ``None``: all rows).
    """

    length: int
    u0: int
    u1: int
    plan: WindowPlan
    own: np.ndarray | None
    rows: list[tuple[int, int]] | None

    @property
    def starts(self) -> np.ndarray:
        return self.plan.starts

    @property
    def ends(self) -> np.ndarray:
        return self.plan.ends


@dataclass
class _Prepared:
    """Host work for one unit: one :class:`_StrandWork` per scanned strand, and counts."""

    unit: Unit
    strands: dict[str, _StrandWork]
    meta: dict[str, Any]


def _token_rows(spans: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """Rows of ``spans`` (ascending, contiguous) that overlap ``[lo, hi)``."""
    return int(np.searchsorted(spans[:, 1], lo, side="right")), int(np.searchsorted(spans[:, 0], hi, side="left"))


def _plan_strand(unit: Unit, strand: str, *, fetch, tokenizer, window_tokens: int, overlap: float,
                 stitch_mode: str, readout: str) -> _StrandWork:
    """Plan one strand of ``unit``: windows over the unit and a halo, those that matter kept.

    The halo starts at one window of ``max_token_bp``-bp tokens (at most 8) and is doubled
    until the windows anchored at an artificial context edge (the first one, which starts
    there, and the last, cut short there) do not reach into the unit, so the result
    depends only on the genome, the tokenizer and the settings — not on the other strand.
    """
    halo = window_tokens * min(8, max(1, int(tokenizer.max_token_bp)))
    while True:
        cs, ce = max(unit.seg_start, unit.start - halo), min(unit.seg_end, unit.end + halo)
        seq = fetch(cs, ce)
        n = len(seq)
        if strand == "+":
            plan = plan_windows(seq, tokenizer=tokenizer, window_tokens=window_tokens, overlap=overlap)
        else:
            plan = reverse_plan(plan_windows(reverse_complement(seq), tokenizer=tokenizer,
                                             window_tokens=window_tokens, overlap=overlap), n)
        u0, u1 = unit.start - cs, unit.end - cs
        if (cs == unit.seg_start or plan.ends[0] <= u0) and (ce == unit.seg_end or plan.starts[-1] >= u1):
            break
        halo *= 2
    own_all = center_cuts(plan.starts, plan.ends, lo=0, hi=n)
    if stitch_mode == "center":
        sel = np.flatnonzero((own_all[:, 1] > own_all[:, 0]) & (own_all[:, 1] > u0) & (own_all[:, 0] < u1))
        own = own_all[sel]
    else:
        sel = np.flatnonzero((plan.ends > u0) & (plan.starts < u1))
        own = None
    kept = plan.subset(sel)
    starts, ends = kept.starts, kept.ends
    rows = None
    if own is not None and readout == "token":
        rows = []
        for k in range(len(kept)):
            a, length = int(starts[k]), int(ends[k] - starts[k])
            lo, hi = int(own[k, 0]) - a, int(own[k, 1]) - a
            if strand == "-":  # owned bases in the reverse complement's coordinates
                lo, hi = length - hi, length - lo
            t0, t1 = int(kept.ranges[k, 0]), int(kept.ranges[k, 1])
            rows.append(_token_rows(kept.tokens.spans[t0:t1] - kept.tokens.spans[t0, 0], lo, hi))
    return _StrandWork(n, u0, u1, kept, own, rows)


def prepare_unit(unit: Unit, *, genome: Genome, tokenizer, window_tokens: int, overlap: float, stitch_mode: str,
                 strands: tuple[str, ...], readout: str) -> _Prepared:
    """Read a unit, plan and tokenise its windows on each strand (no model involved)."""
    fetched: dict[tuple[int, int], str] = {}

    def fetch(cs: int, ce: int) -> str:  # both strands usually plan over the same context
        if (cs, ce) not in fetched:
            fetched[(cs, ce)] = genome.fetch(unit.chrom, cs, ce)
        return fetched[(cs, ce)]

    work = {strand: _plan_strand(unit, strand, fetch=fetch, tokenizer=tokenizer, window_tokens=window_tokens,
                                 overlap=overlap, stitch_mode=stitch_mode, readout=readout)
            for strand in strands}
    stats = SequenceStats()
    (cs, _ce), context = next(iter(fetched.items()))  # any strand's context holds the unit
    useq = context[unit.start - cs : unit.end - cs]
    stats.update(useq)
    meta = {"windows": sum(len(w.plan) for w in work.values()), "bp": int(unit.end - unit.start),
            "lowercase": stats.lowercase, "iupac": dict(stats.iupac),
            "n_scanned": useq.count("N") + useq.count("n"), "chrom": unit.chrom, "start": unit.start,
            "end": unit.end}
    return _Prepared(unit, work, meta)


# --------------------------------------------------------------------------- host workers

_WORKER: dict[str, Any] = {}


def _worker_init(genome_path: str, tokenizer, kwargs: dict) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker
    _WORKER["genome"] = open_genome(genome_path)
    _WORKER["tokenizer"] = tokenizer
    _WORKER["kwargs"] = kwargs


def _worker_prepare(unit: Unit) -> _Prepared:
    return prepare_unit(unit, genome=_WORKER["genome"], tokenizer=_WORKER["tokenizer"], **_WORKER["kwargs"])


def default_workers(*, devices: list[str] | str | None = None) -> int:
    """Host processes per device process that tokenise while the model runs.

    On CUDA the host must keep up with the GPU: measured (``bench/host_pipeline.py``, GENA
    t2t tokenizer) one core prepares ≈ 8 × 10⁵ token positions/s, an H200 computes ≈ 4 × 10⁶,
    so each GPU gets ``min(8, (cores - D) // D)`` workers for D devices. On CPU the model
    needs the cores itself: ``min(4, cores - 1)``.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    items = [devices] if isinstance(devices, str) else list(devices or ["cpu"])
    if any(str(d).startswith("cuda") for d in items):
        d = len(items)
        return max(0, min(8, (cores - d) // d))
    return max(0, min(4, cores - 1))


@contextlib.contextmanager
def _prepared_stream(todo: list[Unit], *, genome: Genome, tokenizer, kwargs: dict,
                     workers: int) -> Iterator[Iterator[_Prepared]]:
    """Prepared units in ``todo`` order; with ``workers`` > 0 they are made by that many
    worker processes, at most ``2 × workers`` units ahead of the consumer (bounded memory)."""
    if workers <= 0:
        yield (prepare_unit(u, genome=genome, tokenizer=tokenizer, **kwargs) for u in todo)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn: workers never inherit the model, CUDA state or the parent's threads
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init, initargs=(str(genome.path), tokenizer, kwargs))

    def gen() -> Iterator[_Prepared]:
        ahead = 2 * workers
        pending: deque = deque(pool.submit(_worker_prepare, u) for u in todo[:ahead])
        nxt = ahead
        while pending:
            res = pending.popleft().result()  # a worker's error is raised here
            if nxt < len(todo):
                pending.append(pool.submit(_worker_prepare, todo[nxt]))
                nxt += 1
            yield res

    try:
        yield gen()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Runner:
    """The model side of one unit (:meth:`infer`: both strands' windows in one length-sorted
    stream) and its assembly (:meth:`assemble`: activate, map the minus strand, stitch, RLE),
    which :func:`_compute` runs on a writer thread while the model works on the next unit."""

    def __init__(self, *, model: Model, setup: Setup, stitch_mode: str, batch_size: int, progress) -> None:
        self.model, self.setup = model, setup
        self.stitch_mode, self.batch_size = stitch_mode, batch_size
        self.progress = progress
        self.model_seconds = 0.0
        # elementwise activations commute with channel selection: only those channels travel
        self.keep_channels = list(setup.channels) if setup.activation in ("sigmoid", "identity") else None

    def infer(self, prep: _Prepared) -> dict[str, list]:
        """Predictions of every kept window, per strand (in window order)."""
        strands = self.setup.strands
        encs: list = []
        rows: list[tuple[int, int] | None] = []
        for strand in strands:
            work = prep.strands[strand]
            encs.extend(work.plan.encs)
            rows.extend(work.rows if work.rows is not None else [None] * len(work.plan))
        unit_bp = prep.unit.end - prep.unit.start
        on_batch = None
        if self.progress is not None:
            if not encs:
                self.progress.update(unit_bp)
            else:
                done = {"windows": 0, "bp": 0}

                def on_batch(k: int) -> None:  # whole bp, so the bar ends exactly at the total
                    done["windows"] += k
                    bp = unit_bp * min(done["windows"], len(encs)) // len(encs)
                    self.progress.update(bp - done["bp"])
                    done["bp"] = bp
        t = time.perf_counter()
        preds = self.model.predict_encoded(encs, batch_size=self.batch_size, keep_channels=self.keep_channels,
                                           keep_rows=rows if any(r is not None for r in rows) else None,
                                           on_batch=on_batch) if encs else []
        self.model_seconds += time.perf_counter() - t
        if any(p.n_tokens_dropped for p in preds):
            raise RuntimeError("a planned window exceeded the model's capacity (tokenizer/model mismatch)")
        out, pos = {}, 0
        for strand in strands:
            n = len(prep.strands[strand].plan)
            out[strand], pos = preds[pos : pos + n], pos + n
        return out

    def assemble(self, prep: _Prepared, preds: dict[str, list]) -> dict[str, np.ndarray]:
        """Per-base values of the unit, run-length encoded per strand and channel."""
        setup = self.setup
        chans = np.asarray(setup.channels) if self.keep_channels is None else slice(None)
        n_ch = len(setup.channels)
        arrays: dict[str, np.ndarray] = {}
        for strand in setup.strands:
            work = prep.strands[strand]
            outs: list[WindowOutput] = []
            for a, b, p in zip(work.starts.tolist(), work.ends.tolist(), preds[strand]):
                vals = activate(p.logits, setup.activation)[..., chans]
                spans = p.spans
                if setup.readout == "token" and strand == "-":
                    vals, spans = rc_to_forward(vals, spans, b - a)
                outs.append(WindowOutput(a, b, vals, spans if setup.readout == "token" else None))
            vals = stitch(outs, length=work.length, n_channels=n_ch, mode=self.stitch_mode,
                          own=work.own)[work.u0 : work.u1]
            for k in range(n_ch):
                s, e, v = runs(vals[:, k], offset=prep.unit.start)
                arrays[f"{strand}{k}_s"], arrays[f"{strand}{k}_e"], arrays[f"{strand}{k}_v"] = s, e, v
        arrays["meta"] = np.array(json.dumps(prep.meta, sort_keys=True))
        return arrays


def _parse_shard(shard: Any) -> tuple[int, int] | None:
    try:
        return parse_shard(shard)
    except ValueError as err:
        raise ScanError(str(err)) from None


def scan_genome(
    genome: str | Path | Genome,
    *,
    model: Model | str | Path,
    task: str | Task,
    output: str | Path,
    strand: str | None = None,
    regions: str | Path | list[Interval] | None = None,
    chroms: list[str] | None = None,
    window_tokens: int | None = None,
    overlap: float = 0.5,
    stitch: str = "center",
    batch_size: int = 8,
    labels: list[str] | None = None,
    threshold: float | None = None,
    resume: bool = False,
    bedgraph: bool = False,
    quiet: bool = False,
    shard: tuple[int, int] | str | None = None,
    min_gap: int | None = None,
    unit_bp: int | None = None,
    workers: int = 0,
    devices: list[str] | str | None = None,
) -> ScanResult:
    """Scan a genome with a model and write one bigWig per label and strand, calls and a manifest.

    Parameters
    ----------
    genome
        FASTA path (plain or bgzipped; ``.fai`` created when missing) or an open :class:`Genome`.
    model
        A loaded :class:`~genaannot.models.base.Model`, or a path / name for :func:`genaannot.load_model`.
    task
        Task name (``promoter``, ``splice``, ``chromatin``, ``generic``) or :class:`Task`.
    output
        ``OUT.bw``. A single track is written to ``OUT.bw``; several to
        ``OUT.<label>.<plus|minus>.bw``. Also ``OUT.calls.bed`` (narrowPeak layout),
        ``OUT.json`` (manifest) and, with ``bedgraph``, ``.bedGraph`` twins of the tracks.
    strand
        ``both``, ``+`` or ``-``; default ``both`` for strand-specific tasks, else ``+``.
    regions, chroms
        Restrict the scan to BED intervals / sequences (others still appear in the bigWig
        header, without data).
    window_tokens
        Content tokens per window (default: the task's, capped at the model's capacity).
    overlap
        Fraction of each window shared with the next, in ``[0, 1)``.
    stitch
        ``center`` (nearest window centre) or ``mean`` (average of overlapping windows).
    threshold
        Calls are stretches with value ``>= threshold``. Default (None): the checkpoint's own
        per-label thresholds (``genaannot.json`` ``thresholds``, chosen on validation data),
        else the task's (0.5); see :func:`resolve_thresholds`. The manifest's ``calls``
        records the threshold used per label and its source.
    resume
        Keep finished parts of an interrupted run with the same settings.
    shard
        ``(i, n)`` or ``"i/n"``: compute only every n-th unit (1-based i); the parts
        directory is then a partial result for :func:`genaannot.pipeline.merge.merge`.
    min_gap
        N runs of at least this many bp are not scanned (default: ``window_tokens`` bp).
    unit_bp
        Work-unit size (default 1 Mb, less when many tracks are written).
    workers
        Host processes that read, plan and tokenise units while the model runs (0: in this
        process; :func:`default_workers` is the CLI's default). Files do not depend on it.
    devices
        Several devices (``["cuda:0", "cuda:1"]``, ``"0,1"``, ``"cpu,cpu"``): one process per
        device, each loading the model and taking every D-th work unit, each with
        ``workers`` host processes. Files are identical to a one-device run.
    """
    t_start = time.time()
    task = get_task(task) if isinstance(task, str) else task
    if stitch not in STITCH_MODES:
        raise ScanError(f"--stitch must be one of {', '.join(STITCH_MODES)}, not {stitch!r}")
    if not 0 <= overlap < 1:
        raise ScanError(f"--overlap must be in [0, 1), not {overlap}")
    if batch_size < 1:
        raise ScanError("--batch-size must be at least 1")
    if workers < 0:
        raise ScanError("--workers must be 0 (in-process) or more")
    shard_t = _parse_shard(shard)
    device_list = parse_devices(devices)
    output = Path(output)
    check_writable(output)
    own_genome = not isinstance(genome, Genome)
    gen = open_genome(genome) if own_genome else genome
    try:
        model_spec = None
        if not hasattr(model, "predict_encoded"):
            from ..models import load_model

            model_spec = str(model)
            # several devices: this process only needs the model's description and tokenizer
            one = device_list[0] if device_list and len(device_list) == 1 else None
            model = load_model(model, device="cpu" if device_list and len(device_list) > 1 else one)
        if device_list:
            model_spec = model_spec or _model_spec(model)
        setup = resolve_setup(task, model, strand=strand, labels=labels, window_tokens=window_tokens)
        return _scan(gen, model=model, task=task, setup=setup, output=output, regions=regions, chroms=chroms,
                     overlap=overlap, stitch_mode=stitch, batch_size=batch_size, threshold=threshold,
                     resume=resume, bedgraph=bedgraph, quiet=quiet, shard=shard_t, min_gap=min_gap,
                     unit_bp=unit_bp, t_start=t_start, workers=workers, devices=device_list,
                     model_spec=model_spec)
    finally:
        if own_genome:
            gen.close()


def _json_safe(options: dict) -> dict:
    """Loader options as they go into settings.json (paths and other objects as strings)."""
    return {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v) for k, v in sorted(options.items())}


def _scan(gen: Genome, *, model: Model, task: Task, setup: Setup, output: Path, regions, chroms, overlap,
          stitch_mode, batch_size, threshold, resume, bedgraph, quiet, shard, min_gap, unit_bp,
          t_start, workers, devices, model_spec) -> ScanResult:
    sizes = gen.sizes
    stem = _stem(output)
    parts = stem.with_name(stem.name + ".parts")
    min_gap = int(min_gap or setup.window_tokens)
    n_tracks = len(setup.labels) * len(setup.strands)
    if unit_bp is None:
        unit_bp = int(min(1_000_000, max(20_000, _WORK_BYTES // (12 * n_tracks))))
    targets = _targets(gen, regions, chroms)
    segments, skipped, n_gaps = _segments(gen, targets, min_gap)
    units = plan_units(segments, unit_bp=unit_bp)
    info = model.info
    load_options = dict(getattr(model, "load_options", None) or {})
    settings = {
        "genaannot": __version__,
        "genome": str(Path(gen.path).resolve()),
        "sizes": list(sizes.items()),
        "task": task.name,
        "model": {"source": str(info.source), "family": info.family, "architecture": info.architecture,
                  "n_params": info.n_params, "labels": list(info.labels), "tokenizer": info.tokenizer,
                  **({"options": _json_safe(load_options)} if load_options else {})},
        "readout": setup.readout,
        "activation": setup.activation,
        "labels": list(setup.labels),
        "channels": list(setup.channels),
        "strands": list(setup.strands),
        "window_tokens": setup.window_tokens,
        "overlap": overlap,
        "stitch": stitch_mode,
        "min_gap": min_gap,
        "unit_bp": unit_bp,
        "units": [[u.chrom, u.start, u.end] for u in units],
    }
    thresholds, threshold_source = resolve_thresholds(task, list(setup.labels), threshold=threshold, info=info)
    if "checkpoint" in threshold_source.values():
        mismatch = threshold_mismatch(info, overlap=overlap, stitch_mode=stitch_mode)
        if mismatch:
            warnings.warn(mismatch, stacklevel=3)
    stride = stride_tokens(setup.window_tokens, overlap)
    # everything in the manifest that does not come from assembling the parts; a shard
    # keeps it beside its parts so that `genaannot merge` writes the same manifest
    base = {
        "genaannot": __version__,
        "command": "scan",
        "genome": settings["genome"],
        "task": task.name,
        "model": {**settings["model"], "device": getattr(model, "device", None),
                  "precision": getattr(model, "precision", None),
                  "compiled": False},
        "labels": list(setup.labels),
        "strands": list(setup.strands),
        "thresholds": thresholds,
        "threshold_source": threshold_source,
        "readout": setup.readout,
        "activation": setup.activation,
        "resolution": (
            f"one value per window painted over its central bin (about {stride} tokens = the stride)"
            if setup.readout == "sequence"
            else ("per base" if info.resolution == "base" else "per token (piecewise constant over each token's bases)")
        ),
        "window_tokens": setup.window_tokens,
        "overlap": overlap,
        "stride_tokens": stride,
        "stitch": stitch_mode,
        "min_gap_bp": min_gap,
        "unit_bp": unit_bp,
        "regions": [iv.ucsc() for iv in targets] if (regions is not None or chroms) else None,
        "coordinates": "0-based half-open",
        "bedgraph": bool(bedgraph),
        "strand_specific": bool(task.strand_specific),
        "n_bp_skipped": skipped,
        "n_gaps": n_gaps,
    }
    if devices and len(devices) > 1:
        base["model"]["device"] = ",".join(devices)
    specs = track_specs(output, base)
    for sp in specs:
        check_writable(sp.path)
    _prepare_parts(parts, settings, keep=resume or shard is not None)

    mine = [u for u in units if shard is None or u.index % shard[1] == shard[0] - 1]
    todo = [u for u in mine if not (parts / f"{u.key}.npz").exists()]
    total_bp = sum(u.end - u.start for u in mine)
    from tqdm.auto import tqdm

    progress = tqdm(total=total_bp, initial=total_bp - sum(u.end - u.start for u in todo), unit="bp",
                    unit_scale=True, disable=quiet, desc=f"scan {task.name}", dynamic_ncols=True, leave=False)
    kwargs = dict(window_tokens=setup.window_tokens, overlap=overlap, stitch_mode=stitch_mode,
                  strands=setup.strands, readout=setup.readout)
    try:
        if devices and len(devices) > 1:
            model_seconds, compiled = _run_devices(
                todo, devices=devices, genome=gen, model_cfg=model_config(model, model_spec), setup=setup,
                kwargs=kwargs, stitch_mode=stitch_mode, batch_size=batch_size, workers=workers, parts=parts,
                progress=progress)
        else:
            runner = _Runner(model=model, setup=setup, stitch_mode=stitch_mode, batch_size=batch_size,
                             progress=progress)
            _compute(todo, runner=runner, genome=gen, tokenizer=model.tokenizer, kwargs=kwargs,
                     workers=workers, parts=parts)
            model_seconds = runner.model_seconds
            compiled = bool(getattr(model, "compiled", False))  # False after a fallback to eager
        base["model"]["compiled"] = compiled
    finally:
        progress.close()
    run_seconds = time.time() - t_start
    if shard is not None:
        write_json_atomic(parts / f"shard-{shard[0]}-of-{shard[1]}.json",
                          {**base, "shard": list(shard), "units_done": [u.index for u in mine],
                           "run_seconds": round(run_seconds, 3), "model_seconds": round(model_seconds, 3)})
    missing = [u for u in units if not (parts / f"{u.key}.npz").exists()]
    if missing:
        return ScanResult([], [], None, None, complete=False,
                          counts={"units": len(units), "units_missing": len(missing)},
                          seconds=run_seconds, model_seconds=model_seconds)
    res = finish_scan({u.key: parts / f"{u.key}.npz" for u in units}, units, base=base, output=output,
                      sizes=sizes, run_seconds=run_seconds, model_seconds=model_seconds)
    if shard is None:  # a shard's parts stay: they are its partial result for `genaannot merge`
        shutil.rmtree(parts, ignore_errors=True)
    return res


def _compute(todo: list[Unit], *, runner: _Runner, genome: Genome, tokenizer, kwargs: dict, workers: int,
             parts: Path) -> None:
    """Prepare (host workers), predict (this thread), then stitch and save each unit of
    ``todo`` on a writer thread, so the device is fed while a finished unit is written.

    At most two units wait for the writer (bounded memory); a writer error is raised here.
    """
    from concurrent.futures import ThreadPoolExecutor

    def finish(prep: _Prepared, preds: dict[str, list]) -> None:
        save_npz_atomic(parts / f"{prep.unit.key}.npz", runner.assemble(prep, preds))

    with _prepared_stream(todo, genome=genome, tokenizer=tokenizer, kwargs=kwargs, workers=workers) as stream, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-writer") as writer:
        # on an error the writer still saves the units already predicted (kept by --resume)
        pending: deque = deque()
        for prep in stream:
            pending.append(writer.submit(finish, prep, runner.infer(prep)))
            while len(pending) > 2 or (pending and pending[0].done()):
                pending.popleft().result()
        while pending:
            pending.popleft().result()


def _device_job(device: str, job: dict, report) -> tuple[float, bool]:
    """One device process of :func:`_run_devices`: compute ``job["units"]``' parts."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its host workers tokenise
    model = load_for_device(job["model"], device, n_devices=job["n_devices"])

    class _Progress:
        def update(self, n: float) -> None:
            report("bp", float(n))

    runner = _Runner(model=model, setup=job["setup"], stitch_mode=job["stitch_mode"],
                     batch_size=job["batch_size"], progress=_Progress())
    with open_genome(job["genome"]) as gen:
        _compute(job["units"], runner=runner, genome=gen, tokenizer=model.tokenizer, kwargs=job["kwargs"],
                 workers=job["workers"], parts=Path(job["parts"]))
    return runner.model_seconds, model.compiled


def _run_devices(todo: list[Unit], *, devices: list[str], genome: Genome, model_cfg: dict,
                 setup: Setup, kwargs: dict, stitch_mode: str, batch_size: int, workers: int, parts: Path,
                 progress) -> tuple[float, bool]:
    """Units ``k``-th, ``k + D``-th, … of ``todo`` on device ``k``, one process each; parts are
    per unit, so the assembled files do not depend on the device count. Returns the summed
    model seconds and whether every device ran a compiled network."""
    common = {"model": model_cfg, "setup": setup, "stitch_mode": stitch_mode, "batch_size": batch_size,
              "kwargs": kwargs, "workers": workers, "parts": str(parts), "genome": str(genome.path),
              "n_devices": len(devices)}
    jobs = [{**common, "units": todo[r :: len(devices)]} for r in range(len(devices))]
    results = run_on_devices(_device_job, jobs, devices=devices, error=ScanError,
                             on_message=lambda kind, rank, val: progress.update(val) if kind == "bp" else None)
    return float(sum(r[0] for r in results)), all(r[1] for r in results)


def resolve_thresholds(task: Task, labels: list[str], *, threshold: float | None,
                       info: ModelInfo) -> tuple[dict[str, float], dict[str, str]]:
    """The call threshold of each label, and where it came from.

    In order: ``threshold`` when given (``--threshold``); else the checkpoint's own per-label
    threshold, ``info.extra["genaannot"]["thresholds"][label]`` (written by ``genaannot
    train`` / ``genaannot evaluate --write-thresholds``, only used when the checkpoint was
    trained for ``task``); else the task's default (``task.call_threshold``).

    Returns
    -------
    thresholds : dict of label -> float
    source : dict of label -> ``"--threshold"`` | ``"checkpoint"`` | ``"task default"``
    """
    if threshold is not None:
        return {lab: float(threshold) for lab in labels}, {lab: "--threshold" for lab in labels}
    meta = info.extra.get("genaannot") or {}
    own = (meta.get("thresholds") or {}) if meta.get("task") == task.name else {}
    thresholds, source = {}, {}
    for lab in labels:
        if isinstance(own.get(lab), (int, float)):
            thresholds[lab], source[lab] = float(own[lab]), "checkpoint"
        else:
            thresholds[lab], source[lab] = float(task.call_threshold), "task default"
    return thresholds, source


def threshold_mismatch(info: ModelInfo, *, overlap: float, stitch_mode: str) -> str | None:
    """A warning when the checkpoint's call thresholds were chosen for other scan settings.

    ``genaannot evaluate --write-thresholds`` records the ``--overlap``/``--stitch`` it
    evaluated with (``threshold_selection.scan_settings``); thresholds written before that
    was recorded were chosen with the only settings evaluate had then, centre stitching at
    overlap 0.5.
    """
    meta = info.extra.get("genaannot") or {}
    chosen = (meta.get("threshold_selection") or {}).get("scan_settings") or {"overlap": 0.5, "stitch": "center"}
    c_ov, c_st = float(chosen.get("overlap", 0.5)), str(chosen.get("stitch", "center"))
    if abs(c_ov - overlap) < 1e-9 and c_st == stitch_mode:
        return None
    return (f"the checkpoint's call thresholds were chosen on scans with --stitch {c_st} --overlap {c_ov:g}; "
            f"this scan uses --stitch {stitch_mode} --overlap {overlap:g}, so calls may be miscalibrated. "
            f"Re-choose them on validation data with `genaannot evaluate --write-thresholds --stitch {stitch_mode} "
            f"--overlap {overlap:g} ...`, or pass --threshold.")


def _base_thresholds(base: dict) -> dict[str, float]:
    """Per-label thresholds of a manifest base (older shards recorded one ``threshold``)."""
    if "thresholds" in base:
        return {k: float(v) for k, v in base["thresholds"].items()}
    return {lab: float(base["threshold"]) for lab in base["labels"]}


def track_specs(output: Path, base: dict) -> list[TrackSpec]:
    """Output tracks of a scan described by its manifest base (labels, strands)."""
    names = output_names(output, list(base["labels"]), list(base["strands"]))
    return [TrackSpec(lab, k, s, names[(lab, s)]) for k, lab in enumerate(base["labels"]) for s in base["strands"]]


def finish_scan(part_files: dict[str, Path], units: list[Unit], *, base: dict, output: Path,
                sizes: dict[str, int], run_seconds: float, model_seconds: float) -> ScanResult:
    """Assemble finished parts (``unit key -> .npz``) into the tracks, calls and manifest."""
    specs = track_specs(output, base)
    stem = _stem(output)
    calls_path = stem.with_name(stem.name + ".calls.bed")
    manifest_path = stem.with_name(stem.name + ".json")
    bedgraph = bool(base["bedgraph"])
    counts = _assemble(part_files, units, specs, sizes=sizes, bedgraph=bedgraph, calls_path=calls_path,
                       thresholds=_base_thresholds(base), strand_specific=base["strand_specific"])
    counts["n_bp_skipped"] = base["n_bp_skipped"]
    counts["n_gaps"] = base["n_gaps"]
    files = [{"label": sp.label, "strand": sp.strand, "bigwig": sp.path.name} for sp in specs]
    if bedgraph:
        for f, sp in zip(files, specs):
            f["bedgraph"] = _bedgraph_path(sp.path).name
    private = {"threshold", "thresholds", "threshold_source", "bedgraph", "strand_specific", "n_bp_skipped", "n_gaps", "shard", "units_done",
               "run_seconds", "model_seconds"}
    manifest: dict[str, Any] = {}
    for k, v in base.items():
        if k in private:
            continue
        manifest[k] = v
        if k == "strands":
            manifest["files"] = files
            manifest["calls"] = {"path": calls_path.name, "format": "narrowPeak (BED6+4)",
                                 "thresholds": _base_thresholds(base),
                                 "threshold_source": base.get("threshold_source") or {}}
    manifest["run_seconds"] = round(run_seconds, 3)
    manifest["model_seconds"] = round(model_seconds, 3)
    manifest["counts"] = counts
    write_json_atomic(manifest_path, manifest)
    return ScanResult(
        tracks=[sp.path for sp in specs],
        bedgraphs=[_bedgraph_path(sp.path) for sp in specs] if bedgraph else [],
        calls=calls_path,
        manifest=manifest_path,
        complete=True,
        counts=counts,
        seconds=run_seconds,
        model_seconds=model_seconds,
    )


def _bedgraph_path(bw: Path) -> Path:
    return bw.with_name(_stem(bw).name + ".bedGraph")


def _prepare_parts(parts: Path, settings: dict, *, keep: bool) -> None:
    sfile = parts / "settings.json"
    if parts.is_dir() and not any(parts.iterdir()):
        pass  # an empty directory (e.g. made by a workflow manager) is a fresh start
    elif parts.exists():
        if not sfile.is_file():
            raise OutputError(
                f"{parts} exists but is not a genaannot parts directory (no settings.json); move it away"
            )
        try:
            old = json.loads(sfile.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        now = json.loads(json.dumps(settings))  # tuples -> lists, as read back
        if keep and old == now:
            return
        if keep:
            diff = sorted(k for k in now if not isinstance(old, dict) or old.get(k) != now[k])
            raise ScanError(
                f"{parts} holds parts of a scan with different settings ({', '.join(diff)}); rerun "
                "without --resume to start afresh, or with the same settings"
            )
        shutil.rmtree(parts)
    try:
        parts.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{parts}: cannot create the working directory ({err.strerror})") from None
    write_json_atomic(sfile, settings)


def _assemble(part_files: dict[str, Path], units: list[Unit], specs: list[TrackSpec], *, sizes: dict[str, int],
              bedgraph: bool, calls_path: Path, thresholds: dict[str, float], strand_specific: bool) -> dict[str, Any]:
    """Stream finished parts, in unit (= .fai) order, into the writers and the call makers."""
    writers = []
    try:
        for sp in specs:
            writers.append(WRITERS["bigwig"](sp.path, sizes=sizes, name=sp.path.stem))
            if bedgraph:
                writers.append(WRITERS["bedgraph"](_bedgraph_path(sp.path), sizes=sizes, name=sp.path.stem))
        per = 2 if bedgraph else 1
        makers = [CallMaker(name=sp.label, strand=sp.strand if strand_specific else ".", threshold=thresholds[sp.label])
                  for sp in specs]
        held: list[tuple | None] = [None] * len(specs)

        def _emit_arrays(t: int, chrom: str, s: np.ndarray, e: np.ndarray, v: np.ndarray) -> None:
            if len(s):
                for w in writers[t * per : (t + 1) * per]:
                    w.add(chrom, s, e, v)
                makers[t].feed(chrom, s, e, v)

        def _emit(t: int, h: tuple) -> None:
            _emit_arrays(t, h[0], np.array([h[1]]), np.array([h[2]]), np.array([h[3]], dtype=np.float32))

        totals: Counter = Counter()
        iupac: Counter = Counter()
        for u in units:
            path = part_files[u.key]
            try:
                arr = load_npz(path)
            except Exception as err:  # noqa: BLE001 - damaged part: say which and what to do
                raise OutputError(f"{path}: unreadable part ({err}); delete it and rerun with --resume") from None
            meta = json.loads(str(arr["meta"]))
            totals.update({"bp_scanned": meta["bp"], "windows": meta["windows"], "lowercase": meta["lowercase"],
                           "n_bp_scanned": meta["n_scanned"]})
            iupac.update(meta["iupac"])
            for t, sp in enumerate(specs):
                k = f"{sp.strand}{sp.channel}"
                s, e, v = arr[k + "_s"], arr[k + "_e"], arr[k + "_v"]
                if not len(s):
                    continue
                # hold back the last run so that equal runs meeting at a unit boundary are
                # written as one entry: files do not depend on the unit size
                h = held[t]
                if h is not None and h[0] == u.chrom and h[2] == s[0] and h[3] == v[0]:
                    s = s.copy()
                    s[0] = h[1]
                elif h is not None:
                    _emit(t, h)
                held[t] = (u.chrom, int(s[-1]), int(e[-1]), v[-1])
                _emit_arrays(t, u.chrom, s[:-1], e[:-1], v[:-1])
        for t, h in enumerate(held):
            if h is not None:
                _emit(t, h)
        calls = [c for m in makers for c in m.finish()]
        rank = {c: i for i, c in enumerate(sizes)}
        write_lines_atomic(calls_path, (format_call(c) for c in sort_calls(calls, rank)))
    except BaseException:
        for w in writers:
            w.abort()
        raise
    for w in writers:
        w.commit()
    return {**dict(totals), "units": len(units), "calls": len(calls),
            "iupac": dict(sorted(iupac.items())), "iupac_total": int(sum(iupac.values()))}
