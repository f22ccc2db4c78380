"""``scan_genome``: FASTA → work units → the span path → parts → bigWig/BED/manifest.

Coordinates are 0-based, half-open.

This module only chains stages around two frozen objects: the :class:`~genaannot.readout.Readout`
(task × model) and :class:`ScanSettings` (everything that decides the output bytes, the
model's weights and the genome's content identified; written to ``OUT.parts/settings.json``
and, whole, to the manifest's ``settings``). The stages live elsewhere:

1. layout (:func:`genaannot.windows.layout_scan`): the scanned regions minus runs of N of
   at least ``min_gap`` bp, cut into deterministic work units (~80,000 token positions a strand: 500 kb of BPE, 80 kb for a model
   with a token per base; ≥ 32 windows, ≤ 1 Mb);
2. per unit, the span path (:mod:`genaannot.span`): planning and tokenising in
   ``workers`` host processes (:mod:`.workers`), the model on this thread, stitching on a
   writer thread at most two units behind;
3. each finished unit is a part in the parts store (:mod:`genaannot.io.parts`), written
   atomically: the unit of ``--resume``, ``--shard`` and ``--devices``;
4. when every part exists, :func:`genaannot.pipeline.assemble.finish_scan` streams them,
   in ``.fai`` order, into the writers (:mod:`genaannot.io.tracks`).

Peak memory is the model plus one unit's letters and tokenisation plus the kept outputs of
the units waiting for the writer, which stitches them as token pieces
(:func:`genaannot.span.span_pieces`; per-base float32 arrays, one strand at a time, for a
model with a token per base, where the pieces are the bases, and for mean stitching). ``resume=True`` keeps the parts of an interrupted run made with the
same settings (another model file content, genome file or batch size is refused, naming
what differs); ``shard=(i, n)`` computes only units ``k`` with ``k % n == i - 1`` (a later
run with ``resume=True``, or the last shard to finish, assembles the outputs). A run holds
``OUT``'s lock (:mod:`genaannot.io.lock`) from before the parts directory is prepared until
the outputs are written: a second run on the same ``-o`` is refused at once, while the
shards of one run may work side by side.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..calls import resolve_thresholds, threshold_mismatch
from ..conventions import model_convention
from ..io.atomic import OutputError, check_not_inputs, output_error
from ..io.fasta import Genome, open_genome
from ..io.lock import OutputBusy, assembly_lock, output_lock
from ..io.naming import calls_name, manifest_name, parts_dir
from ..io.parts import PARTS_FORMAT, Part, PartsError, PartsStore, SettingsMismatch
from ..io.system import release_free_heap, steady_heap
from ..io.tracks import check_writable
from ..io.weights import checkpoint_sha256, state_sha256
from ..readout import Readout, ReadoutError, resolve_readout
from ..regions import Interval, RegionError, is_region_string, parse_regions, resolve_chrom
from ..shards import parse_shard
from ..span import (
    PackedPredictions,
    SpanTimer,
    SpanWork,
    plan_span,
    predict_span,
    predict_span_stream,
    scan_layout,
    span_pieces,
    stitch_span,
)
from ..stitch import DEFAULT_TRACK_DIGITS, STITCH_MODES, piece_runs, round_values, runs
from ..tasks import TASKS, Task, get_task
from ..windows import ScanLayout, Unit, stride_tokens
from .assemble import (
    Assembler,
    ScanResult,
    TrackSpec,
    finish_scan,
    new_assembler,
    set_names,
    track_specs,
)
from .devices import (
    DeviceError,
    load_for_device,
    model_config,
    model_spec,
    parse_devices,
    run_on_devices,
    uses_cuda,
)
from .workers import ahead, check_can_spawn, cpu_cores, default_threads, torch_threads, worker_state

if TYPE_CHECKING:
    from ..models.base import Model
    from ..predict import Predictor, WindowsPredictor

__all__ = [
    "scan_genome",
    "region_intervals",
    "ScanError",
    "ScanResult",
    "ScanSettings",
    "TrackSpec",
    "default_workers",
    "default_batch_size",
    "DEFAULT_TRACK_DIGITS",
    "finish_scan",
    "track_specs",
    "manifest_base",
    "model_sha256",
]

#: a device process whose units hold at least this many bp tokenises with
#: ``tokenizer.for_long_input()`` (for BPE: the compiled encoder of genaannot.bpe, which
#: costs 1.3-1.4 CPU-s and ~100 MB per process to start and about 0.3 of ``tokenizers``'
#: CPU per base after: a scan of 0.5 Mb pays under a second more, one of 1-2 Mb breaks even)
LONG_INPUT_BP = 500_000


class ScanError(ReadoutError):
    """Settings that do not fit together (model vs task, labels, strands, outputs), or parts /
    an ``-o`` that belong to another run; a :class:`~genaannot.readout.ReadoutError`, as
    ``score`` raises for the same mismatches."""


@dataclass(frozen=True)
class ScanSettings:
    """What decides a scan's output bytes; a resumed run or a merged shard must have the same.

    :meth:`to_json` is ``OUT.parts/settings.json`` and the manifest's ``settings``.

    Attributes
    ----------
    genome, genome_file
        The FASTA's resolved path and :meth:`~genaannot.io.fasta.Genome.identity` (size,
        mtime, ``.fai`` hash): an edited genome with the same lengths is another scan.
    model
        :func:`_model_description`, with ``sha256`` (:func:`model_sha256`) of the weights.
    batch_size
        Inputs per forward pass: batching may change the last bits of the values.
    thresholds
        Per label: the calls depend on them.
    bedgraph
        Whether ``.bedGraph`` twins are written.
    track_digits
        Decimals kept in track values (None: float32 as computed); parts store rounded runs.
    """

    genome: str
    genome_file: dict[str, Any]
    sizes: tuple[tuple[str, int], ...]
    task: str
    model: dict[str, Any]
    readout: Readout
    overlap: float
    stitch: str
    layout: ScanLayout
    batch_size: int
    thresholds: tuple[tuple[str, float], ...]
    bedgraph: bool
    track_digits: int | None

    def to_json(self) -> dict[str, Any]:
        r = self.readout
        return {
            "genaannot": __version__,
            "genome": self.genome,
            "genome_file": dict(self.genome_file),
            "sizes": [list(x) for x in self.sizes],
            "task": self.task,
            "model": self.model,
            "readout": r.head,
            "activation": r.activation,
            "labels": list(r.labels),
            "channels": list(r.channels),
            "strands": list(r.strands),
            "window_tokens": r.window_tokens,
            "overlap": self.overlap,
            "stitch": self.stitch,
            "min_gap_bp": self.layout.min_gap,  # the manifest's name too (was ``min_gap`` here)
            "unit_bp": self.layout.unit_bp,
            "batch_size": self.batch_size,
            "thresholds": dict(self.thresholds),
            "bedgraph": self.bedgraph,
            "units": [[u.chrom, u.start, u.end] for u in self.layout.units],
            "track_digits": self.track_digits,
            "parts_format": PARTS_FORMAT,  # how parts store runs: parts of another layout are not resumed
        }


@dataclass(frozen=True)
class ScanRequest:
    """A checked :func:`scan_genome` call: what is scanned and how the run goes (the
    arguments that are not the genome, model, task or readout)."""

    output: Path
    regions: Any
    chroms: list[str] | None
    overlap: float
    stitch: str
    batch_size: int
    threshold: float | None
    resume: bool
    bedgraph: bool
    quiet: bool
    shard: tuple[int, int] | None
    min_gap: int | None
    unit_bp: int | None
    workers: int
    devices: list[str] | None
    track_digits: int | None
    threads: int | None = None
    #: ``(what, path)`` of every input file, which no output may overwrite
    inputs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class _Job:
    """What computing units needs, in this process or a device process (picklable)."""

    readout: Readout
    overlap: float
    stitch: str
    batch_size: int
    workers: int
    genome: str
    parts: str
    thresholds: tuple[float, ...] = ()  # per read channel: part files keep the runs at or above
    track_digits: int | None = None


def default_workers(*, devices: list[str] | str | None = None) -> int:
    """Host processes per device process that plan, tokenise and write while the model runs.

    On CUDA the host must keep up with the GPU: an H200 would compute ≈ 4 × 10⁶ token
    positions/s (a projection from FLOPs: no GPU was measured). At that rate, on this
    project's 2-core machine (2026-12-07, ``bench/host_pipeline.py --real-mb 128
    --device-tokens-per-s 4e6``, GENA t2t tokenizer, real DNA), the workers' share of the
    host work needs 1.0–1.25 cores, more than one worker process can give: with one worker
    the emulated device was 0.73–0.86 busy, with two 0.97–0.99 after the scan's start
    (docs/scale-log.md, "BPE at 4 × 10⁶ token positions/s: two workers"). So each of D GPUs
    gets ``min(8, (cores - D) // D)`` workers, and at least 2 where there is a core beside
    the device processes. On CPU the model needs the cores itself: ``min(4, cores - 1)``.
    """
    cores = cpu_cores()
    if uses_cuda(devices):
        d = 1 if isinstance(devices, str) else len(devices or [])
        share = min(8, (cores - d) // d)
        return max(share, 2) if cores > d else 0
    return max(0, min(4, cores - 1))


#: token positions per batch of a scan on CUDA (:func:`default_batch_size`): 64 windows of 512 tokens
CUDA_BATCH_TOKENS = 1 << 15
#: windows per batch on CUDA at most, and everywhere at least (the batch size before it)
CUDA_MAX_BATCH, MIN_BATCH = 64, 8


def default_batch_size(*, devices: list[str] | str | None = None, window_tokens: int) -> int:
    """Windows per batch when none is given: on CUDA, :data:`CUDA_BATCH_TOKENS` token
    positions (64 windows of 512 tokens, 8 of 4,096), between 8 and 64 windows; elsewhere 8.

    The host's work per batch is fixed: launching it, collating it, taking its outputs.
    At 8 windows of 510 tokens the thread that feeds the device would need 0.73–0.77 of a
    core at 4 × 10⁶ token positions/s with a null network (more with a real one, whose
    eager forward launches a kernel per layer), 0.41–0.46 at 64 (docs/scale-log.md, "Windows
    per batch on a GPU"). Windows of up to 4,096 tokens get batches of at most 8 × 4,096
    token positions — what a BigBird scan put through at the former default of 8 — and
    longer windows keep 8, so no batch needs more device memory than one of the former
    default did. On a CPU the model's own work dwarfs the per-batch cost, and larger
    batches only hold more memory.
    """
    if uses_cuda(devices):
        return max(MIN_BATCH, min(CUDA_MAX_BATCH, CUDA_BATCH_TOKENS // max(1, window_tokens)))
    return MIN_BATCH


def _targets(genome: Genome, regions: Any, chroms: Sequence[str] | None) -> list[Interval]:
    try:
        return _checked_targets(genome, regions, chroms)
    except RegionError as err:
        line = getattr(genome, "empty", {}).get(err.unknown)
        if line is not None:  # in the file, without bases: not what "not in the genome" says
            raise RegionError(f"sequence {err.unknown!r} ({genome.path}, line {line}) has no bases: there is "
                              "nothing of it to scan, and it is in no output") from None
        raise


def _checked_targets(genome: Genome, regions: Any, chroms: Sequence[str] | None) -> list[Interval]:
    sizes = genome.sizes
    keep = [_chrom_name(c, sizes) for c in chroms] if chroms else None
    if regions is not None:
        ivs = region_intervals(regions, sizes=sizes)
        if keep is not None:
            ivs = [iv for iv in ivs if iv.chrom in set(keep)]
        return ivs
    return [Interval(c, 0, sizes[c]) for c in (keep or sizes)]


def _chrom_name(name: str, sizes: dict[str, int]) -> str:
    """``resolve_chrom``, saying what to do with a region string given as a sequence name."""
    try:
        return resolve_chrom(name, sizes)
    except RegionError:
        if is_region_string(name):
            raise RegionError(f"{name!r} is a region, not a sequence name: give it as --region {name} "
                              f"(Python: regions=[{name!r}])") from None
        raise


def region_intervals(regions: Any, *, sizes: dict[str, int]) -> list[Interval]:
    """What ``scan_genome(regions=...)`` takes, as intervals checked against the genome.

    ``regions`` is a BED path (str or Path), or a sequence whose items are
    :class:`~genaannot.regions.Interval` (0-based half-open), region strings
    (``"Chr5"``, ``"Chr5:1,001-2,000"``: 1-based inclusive, as samtools; one string may
    list several, comma-separated: :func:`~genaannot.regions.split_regions`) or
    :class:`~pathlib.Path` objects (BED files). A lone string with coordinates that is no
    file (``regions="Chr5:1,001-2,000"``) is a region string, as ``score_variants`` reads it.
    """
    from ..io.bed import read_bed

    if isinstance(regions, str) and not Path(regions).exists() and is_region_string(regions):
        return parse_regions(regions, sizes=sizes)
    if isinstance(regions, (str, Path)):
        return read_bed(regions, sizes=sizes)
    ivs: list[Interval] = []
    for item in regions:
        if isinstance(item, Path):
            ivs.extend(read_bed(item, sizes=sizes))
        elif isinstance(item, str):
            ivs.extend(parse_regions(item, sizes=sizes))
        elif isinstance(item, Interval):
            if item.chrom not in sizes:
                raise RegionError(f"region {item.ucsc()}: chromosome not in the genome")
            if item.end > sizes[item.chrom]:
                raise RegionError(f"region {item.ucsc()} runs past the end of {item.chrom} ({sizes[item.chrom]:,})")
            ivs.append(item)
        else:
            raise RegionError(f"regions: {item!r} is not an Interval, a region string or a BED Path")
    return ivs


def _bed_files(regions: Any) -> list[Any]:
    if regions is None:
        return []
    if isinstance(regions, (str, Path)):
        return [regions]
    return [x for x in regions if isinstance(x, Path)]


def model_sha256(model: Model) -> str:
    """The identity of ``model``'s weights: SHA-256 of the checkpoint files it was loaded from
    (:func:`genaannot.io.weights.checkpoint_sha256`; computed once, kept on the model: the
    files are never written to), or of its tensors when it has no files (a model built in
    memory: hashed at every call, since its tensors may change in place)."""
    cached = getattr(model, "weights_sha256", None)
    if cached:
        return cached
    digest = checkpoint_sha256(model.info.source)
    if digest is None:
        return state_sha256(model.network)
    try:
        model.weights_sha256 = digest
    except AttributeError:  # a wrapper without the attribute: recomputed next time
        pass
    return digest


def _model_description(model: Model) -> dict[str, Any]:
    info = model.info
    options = dict(getattr(model, "load_options", None) or {})
    safe = {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v) for k, v in sorted(options.items())}
    # the precision decides values well beyond float rounding (bf16 against fp32), so a run
    # is that precision's; the device and its thread count change at most the last bits
    return {"source": str(info.source), "sha256": model_sha256(model), "family": info.family,
            "architecture": info.architecture, "n_params": info.n_params, "labels": list(info.labels),
            "tokenizer": info.tokenizer, "precision": str(getattr(model, "precision", "fp32")),
            **({"options": safe} if safe else {})}


def manifest_base(settings: ScanSettings, model: Model, *, thresholds: dict[str, float],
                  threshold_source: dict[str, str], regions_given: bool, bedgraph: bool,
                  devices: list[str] | None, empty: dict[str, int] | None = None) -> dict[str, Any]:
    """Everything in the manifest that does not come from assembling the parts; a shard keeps
    it beside its parts so that ``genaannot merge`` writes the same manifest. ``empty``: the
    FASTA's sequences without bases (name → header line), in no output."""
    r, lay = settings.readout, settings.layout
    stride = stride_tokens(r.window_tokens, settings.overlap)
    sites = {}
    task = TASKS.get(settings.task)
    if task is not None and task.site_convention:  # which base of a junction the tracks and calls peak on
        conv, source = model_convention(model.info)
        sites = {"site_convention": conv.describe(source=source)}
    device = ",".join(devices) if devices and len(devices) > 1 else getattr(model, "device", None)
    return {
        "genaannot": __version__,
        "command": "scan",
        "genome": settings.genome,
        "task": settings.task,
        "model": {**settings.model, "device": device, "precision": getattr(model, "precision", None),
                  "compiled": False},
        "labels": list(r.labels),
        **sites,
        "strands": list(r.strands),
        "thresholds": thresholds,
        "threshold_source": threshold_source,
        "readout": r.head,
        "activation": r.activation,
        "resolution": (
            f"one value per window painted over its central bin (about {stride} tokens = the stride)"
            if r.head == "sequence"
            else ("per base" if r.resolution == "base" else "per token (piecewise constant over each token's bases)")
        ),
        "window_tokens": r.window_tokens,
        "overlap": settings.overlap,
        "stride_tokens": stride,
        "stitch": settings.stitch,
        "min_gap_bp": lay.min_gap,
        "unit_bp": lay.unit_bp,
        "regions": [iv.ucsc() for iv in lay.targets] if regions_given else None,
        "coordinates": "0-based half-open",
        "bedgraph": bool(bedgraph),
        "track_digits": settings.track_digits,
        "strand_specific": r.strand_specific,
        "n_bp_skipped": lay.n_bp_skipped,
        "n_gaps": lay.n_gaps,
        "empty_sequences": dict(empty or {}),
        "batch_size": settings.batch_size,
        "settings": settings.to_json(),  # the whole record, as compared by --resume and merge
    }


def scan_genome(
    genome: str | Path | Genome,
    *,
    model: Model | str | Path,
    task: str | Task,
    output: str | Path,
    strand: str | None = None,
    regions: str | Path | Sequence[Interval | str | Path] | None = None,
    chroms: list[str] | None = None,
    window_tokens: int | None = None,
    overlap: float = 0.5,
    stitch: str = "center",
    batch_size: int | None = None,
    labels: list[str] | None = None,
    threshold: float | None = None,
    resume: bool = False,
    bedgraph: bool = False,
    quiet: bool = False,
    shard: tuple[int, int] | str | None = None,
    min_gap: int | None = None,
    unit_bp: int | None = None,
    workers: int | None = 0,
    devices: list[str] | str | None = None,
    device: str | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    compile: bool | dict[str, Any] = False,
    model_options: dict[str, Any] | None = None,
    track_digits: int | None = DEFAULT_TRACK_DIGITS,
    predictor: Predictor | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """Scan a genome with a model and write one bigWig per label and strand, calls and a manifest.

    Parameters
    ----------
    genome
        FASTA path (plain or bgzipped; ``.fai`` created when missing) or an open :class:`Genome`.
    model
        A loaded :class:`~genaannot.models.base.Model`, or a path / name / hub id for
        :func:`genaannot.load_model` (loaded with ``device``, ``precision``, ``compile`` and
        ``model_options``).
    task
        Task name (``promoter``, ``splice``, ``chromatin``, ``generic``) or :class:`Task`.
    output
        ``OUT.bw``. A single track is written to ``OUT.bw``; several to
        ``OUT.<label>.<plus|minus>.bw``. Also ``OUT.calls.bed`` (narrowPeak layout),
        ``OUT.json`` (manifest) and, with ``bedgraph``, ``.bedGraph`` twins of the tracks
        (:mod:`genaannot.io.naming`).
    strand, labels, window_tokens
        What is read (:func:`genaannot.readout.resolve_readout`): ``both``/``+``/``-``
        (default ``both`` for strand-specific tasks, else ``+``); a subset of the outputs
        (names or 0-based indices); content tokens per window (default: the task's,
        capped at the model's capacity).
    regions, chroms
        Restrict the scan to regions / sequences (others still appear in the bigWig header,
        without data). ``regions``: a BED path, or a list of region strings
        (``"Chr5:4,400-4,600"``, 1-based inclusive as samtools; ``"Chr5"``),
        :class:`~genaannot.regions.Interval` objects (0-based half-open) and BED
        :class:`~pathlib.Path` objects, scanned as their union (:func:`region_intervals`).
        ``chroms`` keeps only these sequences (of the regions, when both are given).
        Chromosome aliases (``5``/``chr5``) are resolved against the FASTA.
    overlap
        Fraction of each window shared with the next, in ``[0, 1)``.
    stitch
        ``center`` (nearest window centre) or ``mean`` (average of overlapping windows).
    threshold
        Calls are stretches with value ``>= threshold``. Default (None): the checkpoint's own
        per-label thresholds (``genaannot.json`` ``thresholds``, chosen on validation data),
        else the task's (0.5); see :func:`genaannot.calls.resolve_thresholds`.
    resume
        Keep finished parts of an interrupted run with the same settings: same weights
        (file content), genome file (size, mtime, ``.fai``), batch size, thresholds… A
        difference raises :class:`ScanError` naming it.
    shard
        ``(i, n)`` or ``"i/n"``: compute only every n-th unit (1-based i); the parts
        directory is then a partial result for :func:`genaannot.pipeline.merge.merge`.
        Shards of one run may share ``output`` and run at the same time; a run without
        ``shard`` on an ``output`` that another run is writing raises :class:`ScanError`.
    min_gap
        N runs of at least this many bp are not scanned (default: ``window_tokens`` bp).
    unit_bp
        Work-unit size (default :func:`~genaannot.windows.default_unit_bp`: 500 kb for BPE
        models, 80 kb for one-token-per-base models, at least 32 windows and at most 1 Mb;
        less when many tracks are written).
    batch_size
        Windows per forward pass (None: :func:`default_batch_size`: 8, and on CUDA about
        32,768 token positions, up to 64 windows). Recorded with the run (resume and
        shards need the same): on a GPU the batching may change the last bits of values.
    workers
        Host processes that read, plan and tokenise units while the model runs (0: in this
        process; None: :func:`default_workers` for the device). Files do not depend on it.
    devices
        Several devices (``["cuda:0", "cuda:1"]``, ``"0,1"``, ``"cpu,cpu"``): one process per
        device, each loading the model and taking every D-th work unit, each with
        ``workers`` host processes. Files are identical to a one-device run.
    threads
        torch's CPU threads in each process that runs the model (None:
        :func:`~genaannot.pipeline.workers.default_threads`, from the free cores and
        ``workers``; restored when the call returns). Files do not depend on it.
    track_digits
        Digits kept in track values (default :data:`DEFAULT_TRACK_DIGITS`; None: full
        float32): decimals, and for probability tasks significant digits of ``1 - value``
        above 0.5 (:func:`genaannot.stitch.round_values`). Near-constant stretches then
        become one bigWig entry, which keeps a base-resolution human track small; calls are
        made from the unrounded values, so they do not change.
    predictor
        What runs the model (default: ``model.predict_encoded``); for tests and wrappers.
    progress
        Called with base pairs done (default: a tqdm bar unless ``quiet``).
    """
    t_start = time.time()
    steady_heap()  # flat memory over a long scan, few page faults (glibc; see its docstring)
    task = get_task(task) if isinstance(task, str) else task
    if stitch not in STITCH_MODES:
        raise ScanError(f"--stitch must be one of {', '.join(STITCH_MODES)}, not {stitch!r}")
    if not 0 <= overlap < 1:
        raise ScanError(f"--overlap must be in [0, 1), not {overlap}")
    if batch_size is not None and batch_size < 1:
        raise ScanError("--batch-size must be at least 1")
    if workers is not None and workers < 0:
        raise ScanError("--workers must be 0 (in-process) or more")
    if track_digits is not None and not 0 <= track_digits <= 7:
        raise ScanError(f"--track-digits must be 0-7 (float32 holds about 7), or none, not {track_digits}")
    try:
        shard_t = parse_shard(shard)
        device_list = parse_devices(devices)
    except (ValueError, DeviceError) as err:
        raise ScanError(str(err)) from None
    if (workers or 0) > 0 or (device_list is not None and len(device_list) > 1):
        check_can_spawn("worker and device processes (workers=N, devices=...)")  # before any output exists
    own_genome = not isinstance(genome, Genome)
    gen = open_genome(genome) if own_genome else genome
    try:
        output = check_writable(_output_path(output))  # after the FASTA: a failed run leaves no new directory
        inputs = [("FASTA", gen.path), *(("FASTA index", f) for f in gen.index_files),
                  *(("regions BED", f) for f in _bed_files(regions)),
                  ("model", model if isinstance(model, (str, Path)) else None)]
        # the names that do not depend on the labels, before the model is loaded
        check_not_inputs([output, calls_name(output), manifest_name(output)], inputs)
        spec = None
        if not hasattr(model, "predict_encoded"):
            from ..models import load_model
            from ..models.catalog import check_task

            check_task(str(model), task if isinstance(task, str) else task.name)
            spec = str(model)
            several = device_list is not None and len(device_list) > 1
            # several devices: this process only needs the model's description and tokenizer
            one = "cpu" if several else (device_list[0] if device_list else device)
            model = load_model(model, device=one, dtype=precision, compile=compile, **(model_options or {}))
        if device_list and len(device_list) > 1:
            spec = spec or model_spec(model)
        try:
            readout = resolve_readout(task, model.info, labels=labels, strand=strand, window_tokens=window_tokens)
        except ReadoutError as err:
            raise ScanError(str(err)) from None
        if workers is None:
            workers = default_workers(devices=device_list or [str(model.device)])
        if batch_size is None:
            batch_size = default_batch_size(devices=device_list or [str(model.device)],
                                            window_tokens=readout.window_tokens)
        req = ScanRequest(output=output, regions=regions, chroms=chroms, overlap=overlap, stitch=stitch,
                          batch_size=batch_size, threshold=threshold, resume=resume, bedgraph=bedgraph, quiet=quiet,
                          shard=shard_t, min_gap=min_gap, unit_bp=unit_bp, workers=workers, devices=device_list,
                          track_digits=track_digits, threads=threads,
                          inputs=(*inputs, ("model", getattr(model.info, "source", None))))
        n_threads = threads or default_threads(workers=workers, device=str(model.device))
        with torch_threads(n_threads):
            return _scan(gen, model=model, task=task, readout=readout, req=req, model_spec=spec, predictor=predictor,
                         progress=progress, t_start=t_start)
    finally:
        if own_genome:
            gen.close()


def _output_path(output: str | Path) -> Path:
    """``-o`` as a path, refused when it cannot name the track file (empty, or a directory:
    ``Path("o6/")`` would drop the slash and write ``o6.*.bw`` beside the directory)."""
    text = os.fspath(output)
    if not text.strip():
        raise ScanError("-o is empty: give the track's file name, e.g. -o out/scan.bw (the other files are named after it)")
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        raise ScanError(f"-o {text}: is a directory; -o takes the track's file name (the other files are named "
                        f"after it), e.g. -o {Path(text) / 'scan.bw'}")
    if text.lower().endswith(_OTHER_FORMATS):
        warnings.warn(f"-o {text} ends like another format's file, but a scan writes bigWig tracks named after it "
                      f"({Path(text).name}.<label>.<strand>.bw, or {Path(text).name} itself for a single track); "
                      "-o OUT.bw names them OUT.*", stacklevel=3)
    return Path(text)


#: ``-o`` endings of other formats: a scan given one writes bigWigs under that name (warned)
_OTHER_FORMATS = (".vcf", ".vcf.gz", ".bcf", ".bed", ".bed.gz", ".bb", ".bigbed", ".fa", ".fasta", ".fa.gz", ".fna",
                  ".gff", ".gff3", ".gtf", ".tsv", ".csv", ".txt", ".json", ".html", ".bam", ".sam", ".cram")


def _scan(gen: Genome, *, model: Model, task: Task, readout: Readout, req: ScanRequest, model_spec: str | None,
          predictor: Predictor | None, progress: Callable[[int], None] | None, t_start: float) -> ScanResult:
    output, regions, devices = req.output, req.regions, req.devices
    layout = scan_layout(gen, _targets(gen, regions, req.chroms), tokenizer=model.tokenizer, readout=readout,
                         min_gap=req.min_gap, unit_bp=req.unit_bp)
    meta = model.info.extra.get("genaannot") or {}
    thresholds, source = resolve_thresholds(list(readout.labels), task=task.name, default=task.call_threshold,
                                            threshold=req.threshold, checkpoint=meta)
    if "checkpoint" in source.values():
        mismatch = threshold_mismatch(meta, overlap=req.overlap, stitch_mode=req.stitch)
        if mismatch:
            warnings.warn(mismatch, stacklevel=3)
    settings = ScanSettings(genome=str(Path(gen.path).resolve()), genome_file=gen.identity(),
                            sizes=tuple(gen.sizes.items()), task=task.name, model=_model_description(model),
                            readout=readout, overlap=req.overlap, stitch=req.stitch, layout=layout,
                            batch_size=req.batch_size, thresholds=tuple((k, float(v)) for k, v in thresholds.items()),
                            bedgraph=bool(req.bedgraph), track_digits=req.track_digits)
    base = manifest_base(settings, model, thresholds=thresholds, threshold_source=source, empty=getattr(gen, "empty", None),
                         regions_given=regions is not None or bool(req.chroms), bedgraph=req.bedgraph,
                         devices=devices)
    check_not_inputs(set_names(output, base), req.inputs)
    for name in set_names(output, base):
        if name.is_dir():  # else found only when the finished files are moved in
            raise ScanError(f"{name}: is a directory, where this scan writes a file; remove it or choose another -o")
    for sp in track_specs(output, base):
        check_writable(sp.path)
    try:
        # held from before the parts directory is prepared until the outputs are written
        with output_lock(output, shard=req.shard):
            try:
                return _scan_locked(gen, model=model, task=task, readout=readout, req=req, settings=settings,
                                    base=base, model_spec=model_spec, predictor=predictor, progress=progress,
                                    t_start=t_start)
            except OutputError as err:
                raise _kept_parts_hint(err, parts_dir(output), shard=req.shard) from None
    except OutputBusy as err:
        raise ScanError(str(err)) from None


def _kept_parts_hint(err: OutputError, directory: Path, *, shard: tuple[int, int] | None) -> OutputError:
    """``err`` (a write error while assembling or committing) saying that the finished parts
    are kept and how to go on from them, so that a full disk does not cost the computation;
    ``err`` itself when it is more specific (a part that could not be saved says so itself:
    :class:`~genaannot.io.parts.PartsError`), or when there are no parts."""
    if type(err) is not OutputError or not any(Path(directory).glob("*.npz")):
        return err
    again = "rerun the same command" if shard is not None else "rerun with --resume"
    out = OutputError(f"{err}; the finished parts are kept in {directory}: once there is room, {again} "
                      "to go on from them")
    out.errno = err.errno
    return out


def _scan_locked(gen: Genome, *, model: Model, task: Task, readout: Readout, req: ScanRequest, settings: ScanSettings,
                 base: dict[str, Any], model_spec: str | None, predictor: Predictor | None,
                 progress: Callable[[int], None] | None, t_start: float) -> ScanResult:
    output, shard, devices = req.output, req.shard, req.devices
    store = PartsStore(parts_dir(output))
    try:
        cleared = store.prepare(settings.to_json(), keep=req.resume or shard is not None)
    except SettingsMismatch as err:
        hint = f" (a --shard run always keeps parts: delete {store.directory} to start afresh)" if shard else ""
        raise ScanError(f"{err}{hint}") from None
    if cleared:  # hours of an interrupted run may be in them: not removed without a word
        warnings.warn(f"{store.directory}: removed {cleared} finished part(s) of an earlier run that did not "
                      "finish; this run starts afresh (--resume continues such a run with the same settings)",
                      stacklevel=4)
    units = settings.layout.units
    mine = [u for u in units if shard is None or u.index % shard[1] == shard[0] - 1]
    todo = [u for u in mine if not store.has(u.key)]
    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        total_bp = sum(u.end - u.start for u in mine)
        bar = tqdm(total=total_bp, initial=total_bp - sum(u.end - u.start for u in todo), unit="bp",
                   unit_scale=True, disable=req.quiet, desc=f"scan {task.name}", dynamic_ncols=True, leave=False)
        progress = bar.update
    job = _Job(readout=readout, overlap=req.overlap, stitch=req.stitch, batch_size=req.batch_size,
               workers=req.workers, genome=str(gen.path), parts=str(store.directory),
               thresholds=tuple(dict(settings.thresholds)[lab] for lab in readout.labels),
               track_digits=req.track_digits)
    # a whole run assembles while it computes (a thread follows the parts store in unit order,
    # and finishes the files with the last part while the scan ends); a shard cannot:
    # it does not have every unit
    # parts computed here are handed to the assembler in memory; device processes only save theirs
    handed = todo if not (devices and len(devices) > 1) else []
    follower = (_Follower(store, units, new_assembler(output, base, sizes=gen.sizes), handed=handed)
                if shard is None else None)
    try:
        if devices and len(devices) > 1:
            model_seconds, compiled = _run_devices(todo, devices=devices, job=job,
                                                   model_cfg=model_config(model, model_spec, threads=req.threads), progress=progress,
                                                   on_part=follower.check if follower else None)
        else:
            timer = SpanTimer()
            # the model's packed path unless a stand-in predictor was given
            compute_units(todo, job=job, genome=gen, tokenizer=model.tokenizer,
                          **({"predictor": predictor} if predictor is not None else _model_path(model)),
                          progress=progress, timer=timer, on_saved=follower.notify if follower else None)
            model_seconds = timer.seconds
            compiled = bool(getattr(model, "compiled", False))  # False after a fallback to eager
        base["model"]["compiled"] = compiled
        if follower is not None:
            follower.join()
    except BaseException:
        if follower is not None:
            follower.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
    run_seconds = time.time() - t_start
    if shard is not None:
        store.write_shard(shard, {**base, "shard": list(shard), "units_done": [u.index for u in mine],
                                  "run_seconds": round(run_seconds, 3), "model_seconds": round(model_seconds, 3)})
    missing = [u for u in units if not store.has(u.key)]
    if missing:
        return ScanResult([], [], None, None, complete=False,
                          counts={"units": len(units), "units_missing": len(missing)},
                          seconds=run_seconds, model_seconds=model_seconds)
    if shard is None:
        res = finish_scan({u.key: store.path(u.key) for u in units}, units, base=base, output=output,
                          sizes=gen.sizes, run_seconds=run_seconds, model_seconds=model_seconds,
                          assembler=follower.assembler if follower else None)
        store.remove()
        return res
    # shards share OUT's lock: two finishing together take turns (the second writes the same bytes);
    # a shard's parts stay: they are its partial result for `genaannot merge`
    with assembly_lock(output):
        return finish_scan({u.key: store.path(u.key) for u in units}, units, base=base, output=output,
                           sizes=gen.sizes, run_seconds=run_seconds, model_seconds=model_seconds)


class _Follower:
    """A thread that feeds an :class:`Assembler` the parts of ``units`` in order, as they appear
    in the store (written by this process's writer thread, which also hands them over in
    memory, or by device processes, whose parts are read back)."""

    def __init__(self, store: PartsStore, units: list[Unit], assembler: Assembler, *,
                 handed: Sequence[Unit] = ()) -> None:
        self.store, self.assembler = store, assembler
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._ready: dict[str, Part] = {}
        # parts of ``handed`` come through notify(): their files appear on disk before the part
        # reaches this process (a worker saves it, then sends it back), so the store is no sign
        # that they are ready; one is read back only when notify() did not keep it
        self._handed = {u.key for u in handed}
        self._on_disk: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-assemble")
        try:
            self._future = self._pool.submit(assembler.follow, units, wait=self._wait)
        except BaseException:
            assembler.abort()
            raise

    def _wait(self, unit: Unit) -> Part | None:
        with self._cv:
            while True:
                part = self._ready.pop(unit.key, None)
                if part is not None:
                    return part  # handed over in memory: not read back from disk
                if unit.key in self._on_disk or (unit.key not in self._handed and self.store.has(unit.key)):
                    self._on_disk.discard(unit.key)
                    break
                if self._stop.is_set():
                    return None
                self._cv.wait(timeout=0.5)  # device processes write parts without notifying
        return self.store.load(unit.key, tracks=self.assembler.tracks)

    def notify(self, unit: Unit | None = None, part: Part | None = None) -> None:
        """A part was saved (and, from this process, handed over: at most two are kept, so a
        lagging assembler reads the rest from disk); raises the assembler's error, if it failed,
        to stop the scan."""
        with self._cv:
            if unit is not None and part is not None:
                if len(self._ready) < 2:
                    self._ready[unit.key] = part
                else:
                    self._on_disk.add(unit.key)
            self._cv.notify_all()
        self.check()

    def check(self, *_: Any) -> None:
        if self._future.done() and self._future.exception() is not None:
            raise self._future.exception()

    def join(self) -> None:
        try:
            self._future.result()
        except BaseException:
            self.assembler.abort()
            raise
        finally:
            self._pool.shutdown(wait=True)

    def cancel(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        self._pool.shutdown(wait=True)
        self.assembler.abort()


# --------------------------------------------------------------------------- computing units


def _setup_worker(state: dict[str, Any]) -> None:
    steady_heap()
    state["genome_obj"] = open_genome(state["genome"], verify=False)  # the parent checked it


def _plan_remote(unit: Unit) -> SpanWork:
    st = worker_state
    g = st["genome_obj"]
    work = plan_span(unit, fetch=lambda s, e: g.fetch(unit.chrom, s, e), tokenizer=st["tokenizer"],
                     readout=st["readout"], overlap=st["overlap"], stitch_mode=st["stitch"],
                     compact=bool(st.get("compact")))
    # the packed paths' inputs made here: the device process takes them as they come
    return work.with_inputs(st["readout"]) if st.get("compact") else work


def write_part(work: SpanWork, preds: dict[str, list] | PackedPredictions, *, job: _Job) -> Part:
    """Stitch one predicted unit, run-length encode it and save its part file: the writer's
    work, on the writer thread or in a worker process. A part that cannot be saved (disk
    full, quota) is an :class:`~genaannot.io.atomic.OutputError` naming it."""
    r = job.readout
    runs: dict[tuple[str, int], Any] = {}
    calls: dict[tuple[str, int], Any] = {}
    for strand in r.strands:  # one strand's arrays at a time: the writer's peak memory halves
        # one piece per token (no per-base painting) where the windows allow, else per base
        values = span_pieces(work, preds, readout=r, stitch_mode=job.stitch, strands=(strand,))
        if values is None:
            values = stitch_span(work, preds, readout=r, stitch_mode=job.stitch, strands=(strand,))
        one = _part(work, values, r, thresholds=job.thresholds, digits=job.track_digits)
        del values
        runs.update(one.runs)
        calls.update(one.calls or {})
    # packed (gaps and lengths): as it is saved, travels back from a worker and waits for the assembler
    part = Part(runs, work.meta, calls).packed_form()
    del runs, calls
    store = PartsStore(job.parts)
    try:
        store.save(work.unit.key, part)
    except OSError as err:  # finished parts stay: say so, as a message rather than a traceback
        e = output_error(store.path(work.unit.key), err, doing="cannot save part")
        kept = PartsError(f"{e}; finished parts are kept in {store.directory} for --resume")
        kept.errno = e.errno
        raise kept from None
    release_free_heap()
    return part


def _write_remote(work: SpanWork, packed: PackedPredictions) -> Part:
    return write_part(work, packed, job=worker_state["job"])


def _part(work: SpanWork, values: dict[str, Any], readout: Readout, *, thresholds: Sequence[float],
          digits: int | None) -> Part:
    """Run-length encode a unit's stitched values per strand and read channel: the track's
    runs (rounded to ``digits``) and the unrounded runs at or above each channel's call threshold.

    ``values[strand]`` is a per-base float32 ``[bp, n_labels]`` array (:func:`stitch_span`,
    or :func:`span_pieces` for a token per base) or ``(starts, ends, values)`` pieces
    relative to the unit's start (:func:`span_pieces`): the runs are the same."""
    out, calls = {}, {}
    probability = readout.activation in ("sigmoid", "softmax")
    for strand, vals in values.items():
        if isinstance(vals, tuple):
            ps, pe, pv = vals
            pv = np.ascontiguousarray(pv.T)  # one contiguous row per channel
        for k in range(len(readout.labels)):
            if isinstance(vals, tuple):
                # the track's runs straight from the (rounded) pieces and the call runs from the
                # pieces at or above the threshold: the runs of the per-base branch below,
                # without a run per token first (a value per base for 1-bp-token models).
                # Rounding never makes -0.0, so equal bits are equal values, as join_runs
                # compares them; pieces are non-empty, so touching pieces are neighbours
                hi = pv[k] >= thresholds[k]
                calls[(strand, k)] = piece_runs(ps[hi], pe[hi], pv[k][hi], offset=work.unit.start)
                out[(strand, k)] = piece_runs(ps, pe, round_values(pv[k], digits=digits, probability=probability),
                                              offset=work.unit.start)
                continue
            # per base (a token per base, or painted): the rounded bases' runs are the rounded
            # runs joined, and the call runs those of the bases at or above the threshold
            col = vals[:, k]
            hi = np.flatnonzero(col >= thresholds[k])
            calls[(strand, k)] = piece_runs(hi, hi + 1, col[hi], offset=work.unit.start)
            out[(strand, k)] = runs(round_values(col, digits=digits, probability=probability), offset=work.unit.start)
    return Part(out, work.meta, calls)


def compute_units(
    todo: list[Unit],
    *,
    job: _Job,
    genome: Genome,
    tokenizer,
    predictor: Predictor | None = None,
    windows_predictor: WindowsPredictor | None = None,
    windows_stream: Callable[..., Iterator[tuple[Any, Any]]] | None = None,
    progress: Callable[[int], None] | None,
    timer: SpanTimer | None = None,
    on_saved: Callable[[Unit, Part], None] | None = None,
) -> None:
    """Plan (host workers), predict (this thread), then stitch and save each unit of ``todo``
    (:func:`write_part`) while the next is predicted, so the device is fed while a finished
    unit is written. The model runs through ``windows_predictor`` (a model's
    ``predict_windows``: packed outputs, no object per window, so the thread that feeds the
    device does little per window) or, for a stand-in, ``predictor`` (``predict_encoded``'s
    signature); the files are the same. With ``windows_stream`` (a model's
    ``predict_windows_stream``, what the scan uses) all units go through the model as one
    stream of batches (:func:`~genaannot.span.predict_span_stream`): a unit is handed to its
    writer while the next unit's batches run, so a GPU does not wait for the host between
    units; the batches, and so the files, are the same.

    With worker processes (``job.workers`` ≥ 1) the writing runs on them too, behind their
    planning: this process only feeds the model and sends each unit's kept outputs, so that
    no thread of it has to keep up with the device's output alone (docs/scale.md). With
    none, a writer thread of this process writes. At most ``max(2, workers)`` units wait
    to be written (bounded memory); ``on_saved(unit, part)`` is called as each is saved
    (from a helper thread); a writer error is raised here, and the units already finished
    stay in the parts store (kept by ``--resume``). A part that cannot be saved (disk
    full, quota) is an :class:`~genaannot.io.atomic.OutputError` naming it.
    """
    r = job.readout
    # what loading the model and the genome left freed (a checkpoint's temporaries) is not
    # held through the scan: the heap is given back once per unit from here on anyway
    release_free_heap(force=True)
    if sum(u.end - u.start for u in todo) >= LONG_INPUT_BP:
        tokenizer = tokenizer.for_long_input()  # the compiled BPE encoder (genaannot.bpe) from the start

    # the packed paths read tokens as row ranges: planned units wait (and travel) as int32
    compact = predictor is None

    def plan_here(unit: Unit) -> SpanWork:
        work = plan_span(unit, fetch=lambda s, e: genome.fetch(unit.chrom, s, e), tokenizer=tokenizer, readout=r,
                         overlap=job.overlap, stitch_mode=job.stitch, compact=compact)
        return work.with_inputs(r) if compact else work

    errors: list[BaseException] = []

    def hand_over(unit: Unit) -> Callable[[Future], None]:
        def done(fut: Future) -> None:  # on the thread that finished the future
            if on_saved is None or fut.cancelled() or fut.exception() is not None:
                return
            try:
                on_saved(unit, fut.result())
            except BaseException as err:  # the assembler failed: raised by the loop below
                errors.append(err)
        return done

    def written(fut: Future) -> None:
        fut.result()  # the writer's error
        if errors:
            raise errors[0]

    state = {"genome": job.genome, "tokenizer": tokenizer, "readout": r, "overlap": job.overlap, "stitch": job.stitch,
             "job": job, "compact": compact}
    with ahead(todo, local=plan_here, remote=_plan_remote, workers=job.workers, setup=_setup_worker,
               state=state) as planned, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-writer") as writer:
        limit = max(2, job.workers)
        pending: deque[Future] = deque()
        if windows_stream is not None:  # one stream of batches over all units (see the docstring)
            results: Iterator[tuple[SpanWork, Any]] = predict_span_stream(
                map(itemgetter(1), planned), windows_stream=windows_stream, readout=r,
                batch_size=job.batch_size, progress=progress, timer=timer)
        else:
            results = _unit_at_a_time(planned, predictor=predictor, windows_predictor=windows_predictor, readout=r,
                                      batch_size=job.batch_size, progress=progress, timer=timer)
        for work, preds in results:
            # the tokens are not needed any more: units waiting for the writer, and this one
            # while the next is planned, hold only their windows and kept outputs
            work = work.without_tokens()
            if planned.processes and not isinstance(preds, PackedPredictions):
                preds = PackedPredictions.pack(preds)  # a few arrays travel, not an object per window
            if isinstance(preds, PackedPredictions):
                preds = preds.compact()  # int32 spans while it waits and travels
            if planned.processes:
                fut = planned.submit(_write_remote, work, preds)
            else:
                fut = writer.submit(write_part, work, preds, job=job)
            fut.add_done_callback(hand_over(work.unit))
            pending.append(fut)
            del work, preds
            release_free_heap()
            while len(pending) > limit or (pending and pending[0].done()):
                written(pending.popleft())
        while pending:
            written(pending.popleft())


def _unit_at_a_time(planned: Iterator[tuple[Unit, SpanWork]], **kw: Any) -> Iterator[tuple[SpanWork, Any]]:
    """``(work, predict_span(work, **kw))`` for each planned unit, holding nothing while the
    caller works on one or the next is planned (a suspended generator keeps its locals)."""
    for _unit, work in planned:
        out = work, predict_span(work, **kw)
        del _unit, work
        yield out
        del out


def _model_path(model: Model) -> dict[str, Any]:
    """How :func:`compute_units` runs ``model``: one stream of batches over all units on an
    asynchronous device (CUDA), a unit at a time elsewhere (the same batches and values);
    ``predict_encoded`` for a model object without the packed path."""
    if getattr(model, "asynchronous", False) and hasattr(model, "predict_windows_stream"):
        return {"windows_stream": model.predict_windows_stream}
    if hasattr(model, "predict_windows"):
        return {"windows_predictor": model.predict_windows}
    return {"predictor": model.predict_encoded}


def _device_job(device: str, job: dict, report) -> tuple[float, bool]:
    """One device process of :func:`_run_devices`: compute ``job["units"]``' parts."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its host workers tokenise
    steady_heap()  # before the model's threads take malloc arenas of their own
    model = load_for_device(job["model"], device, n_devices=job["n_devices"])
    timer = SpanTimer()
    with open_genome(job["job"].genome, verify=False) as gen:  # the parent checked it
        compute_units(job["units"], job=job["job"], genome=gen, tokenizer=model.tokenizer,
                      **_model_path(model), progress=lambda n: report("bp", float(n)), timer=timer)
    return timer.seconds, model.compiled


def _run_devices(todo: list[Unit], *, devices: list[str], job: _Job, model_cfg: dict,
                 progress: Callable[[int], None], on_part: Callable[..., None] | None = None) -> tuple[float, bool]:
    """Units ``k``-th, ``k + D``-th, … of ``todo`` on device ``k``, one process each; parts are
    per unit, so the assembled files do not depend on the device count. Returns the summed
    model seconds and whether every device ran a compiled network."""
    jobs = [{"model": model_cfg, "job": job, "n_devices": len(devices), "units": todo[r :: len(devices)]}
            for r in range(len(devices))]
    results = run_on_devices(_device_job, jobs, devices=devices, error=ScanError,
                             on_message=lambda kind, rank, val: (progress(val), on_part and on_part())
                             if kind == "bp" else None)
    return float(sum(r[0] for r in results)), all(r[1] for r in results)

