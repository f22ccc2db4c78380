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

import json
import shutil
import time
from collections import Counter
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
    center_cuts,
    plan_units,
    plan_windows,
    stride_tokens,
    subtract_gaps,
)

if TYPE_CHECKING:
    from ..models.base import Model

__all__ = ["scan_genome", "ScanResult", "ScanError", "TrackSpec", "resolve_setup", "output_names"]

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


class _Runner:
    """Computes one unit's part: plan windows, predict both strands, stitch, RLE."""

    def __init__(self, *, genome: Genome, model: Model, setup: Setup, overlap: float, stitch_mode: str,
                 batch_size: int, n_tracks: int, progress) -> None:
        self.genome, self.model, self.setup = genome, model, setup
        self.overlap, self.stitch_mode, self.batch_size = overlap, stitch_mode, batch_size
        self.progress = progress
        self.model_seconds = 0.0
        self.tok = model.tokenizer
        # first halo guess: one window at up to 8 bp/token (doubled until it is enough)
        self.halo0 = setup.window_tokens * min(8, max(1, int(self.tok.max_token_bp)))

    def _plan(self, unit: Unit):
        halo = self.halo0
        while True:
            cs, ce = max(unit.seg_start, unit.start - halo), min(unit.seg_end, unit.end + halo)
            seq = self.genome.fetch(unit.chrom, cs, ce)
            plan = plan_windows(seq, tokenizer=self.tok, window_tokens=self.setup.window_tokens,
                                overlap=self.overlap, both_strands=True)
            u0, u1 = unit.start - cs, unit.end - cs
            # a window cut short by the artificial context edge must not reach into the unit
            ok_left = cs == unit.seg_start or plan.ends[0] <= u0
            ok_right = ce == unit.seg_end or plan.starts[-1] >= u1
            if ok_left and ok_right:
                return cs, seq, plan, u0, u1
            halo *= 2

    def _predict(self, encs, head: str) -> list:
        t = time.perf_counter()
        preds = self.model.predict_encoded(encs, batch_size=self.batch_size)
        self.model_seconds += time.perf_counter() - t
        for p in preds:
            if p.n_tokens_dropped:
                raise RuntimeError("a planned window exceeded the model's capacity (tokenizer/model mismatch)")
        return preds

    def run(self, unit: Unit) -> dict[str, np.ndarray]:
        setup = self.setup
        cs, seq, plan, u0, u1 = self._plan(unit)
        own = center_cuts(plan.starts, plan.ends, lo=0, hi=len(seq))
        if self.stitch_mode == "center":
            sel = np.flatnonzero((own[:, 1] > own[:, 0]) & (own[:, 1] > u0) & (own[:, 0] < u1))
        else:
            sel = np.flatnonzero((plan.ends > u0) & (plan.starts < u1))
        chans = np.asarray(setup.channels)
        n_ch = len(chans)
        arrays: dict[str, np.ndarray] = {}
        chunk = max(1, self.batch_size) * 8
        results: dict[str, np.ndarray] = {}
        for strand in setup.strands:
            outs: list[WindowOutput] = []
            done_bp = 0
            for c0 in range(0, len(sel), chunk):
                idx = sel[c0 : c0 + chunk]
                encs = [(plan.plus if strand == "+" else plan.minus)[i] for i in idx]
                preds = self._predict(encs, setup.readout)
                for i, p in zip(idx, preds):
                    a, b = int(plan.starts[i]), int(plan.ends[i])
                    vals = activate(p.logits, setup.activation)[..., chans]
                    spans = p.spans
                    if setup.readout == "token" and strand == "-":
                        vals, spans = rc_to_forward(vals, spans, b - a)
                    outs.append(WindowOutput(a, b, vals, spans if setup.readout == "token" else None))
                if self.progress is not None:
                    # progress in bp of the unit, shared between strands
                    hi_i = idx[-1]
                    hi_bp = min(u1, int(own[hi_i, 1] if self.stitch_mode == "center" else plan.ends[hi_i]))
                    if c0 + chunk >= len(sel):
                        hi_bp = u1
                    step = max(0, hi_bp - u0 - done_bp)
                    done_bp += step
                    self.progress.update(step / len(setup.strands))
            vals = stitch(outs, length=len(seq), n_channels=n_ch, mode=self.stitch_mode,
                          own=own[sel] if self.stitch_mode == "center" else None)[u0:u1]
            results[strand] = vals
        for strand, vals in results.items():
            for k in range(n_ch):
                s, e, v = runs(vals[:, k], offset=unit.start)
                arrays[f"{strand}{k}_s"], arrays[f"{strand}{k}_e"], arrays[f"{strand}{k}_v"] = s, e, v
        stats = SequenceStats()
        useq = seq[u0:u1]
        stats.update(useq)
        n_in = useq.count("N") + useq.count("n")
        meta = {"windows": int(len(sel)), "bp": int(u1 - u0), "lowercase": stats.lowercase,
                "iupac": dict(stats.iupac), "n_scanned": n_in, "chrom": unit.chrom, "start": unit.start,
                "end": unit.end}
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        return arrays


def _parse_shard(shard: Any) -> tuple[int, int] | None:
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise ScanError(f"--shard must look like I/N (e.g. 2/8), not {shard!r}") from None
    else:
        i, n = shard
    if not 1 <= i <= n:
        raise ScanError(f"--shard {i}/{n}: I must be between 1 and N")
    return i, n


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
        Calls are stretches with value ``>= threshold`` (default: the task's, 0.5).
    resume
        Keep finished parts of an interrupted run with the same settings.
    shard
        ``(i, n)`` or ``"i/n"``: compute only every n-th unit (1-based i).
    min_gap
        N runs of at least this many bp are not scanned (default: ``window_tokens`` bp).
    unit_bp
        Work-unit size (default 1 Mb, less when many tracks are written).
    """
    t_start = time.time()
    task = get_task(task) if isinstance(task, str) else task
    if stitch not in STITCH_MODES:
        raise ScanError(f"--stitch must be one of {', '.join(STITCH_MODES)}, not {stitch!r}")
    if not 0 <= overlap < 1:
        raise ScanError(f"--overlap must be in [0, 1), not {overlap}")
    if batch_size < 1:
        raise ScanError("--batch-size must be at least 1")
    shard_t = _parse_shard(shard)
    output = Path(output)
    check_writable(output)
    own_genome = not isinstance(genome, Genome)
    gen = open_genome(genome) if own_genome else genome
    try:
        if not hasattr(model, "predict_encoded"):
            from ..models import load_model

            model = load_model(model)
        setup = resolve_setup(task, model, strand=strand, labels=labels, window_tokens=window_tokens)
        return _scan(gen, model=model, task=task, setup=setup, output=output, regions=regions, chroms=chroms,
                     overlap=overlap, stitch_mode=stitch, batch_size=batch_size, threshold=threshold,
                     resume=resume, bedgraph=bedgraph, quiet=quiet, shard=shard_t, min_gap=min_gap,
                     unit_bp=unit_bp, t_start=t_start)
    finally:
        if own_genome:
            gen.close()


def _scan(gen: Genome, *, model: Model, task: Task, setup: Setup, output: Path, regions, chroms, overlap,
          stitch_mode, batch_size, threshold, resume, bedgraph, quiet, shard, min_gap, unit_bp,
          t_start) -> ScanResult:
    sizes = gen.sizes
    names = output_names(output, list(setup.labels), list(setup.strands))
    specs = [TrackSpec(lab, k, s, names[(lab, s)]) for k, lab in enumerate(setup.labels) for s in setup.strands]
    for sp in specs:
        check_writable(sp.path)
    stem = _stem(output)
    calls_path = stem.with_name(stem.name + ".calls.bed")
    manifest_path = stem.with_name(stem.name + ".json")
    parts = stem.with_name(stem.name + ".parts")
    min_gap = int(min_gap or setup.window_tokens)
    n_tracks = len(specs)
    if unit_bp is None:
        unit_bp = int(min(1_000_000, max(20_000, _WORK_BYTES // (12 * n_tracks))))
    targets = _targets(gen, regions, chroms)
    segments, skipped, n_gaps = _segments(gen, targets, min_gap)
    units = plan_units(segments, unit_bp=unit_bp)
    info = model.info
    settings = {
        "genaannot": __version__,
        "genome": str(Path(gen.path).resolve()),
        "sizes": list(sizes.items()),
        "task": task.name,
        "model": {"source": str(info.source), "family": info.family, "architecture": info.architecture,
                  "n_params": info.n_params, "labels": list(info.labels), "tokenizer": info.tokenizer},
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
    _prepare_parts(parts, settings, keep=resume or shard is not None)

    todo = [u for u in units if shard is None or u.index % shard[1] == shard[0] - 1]
    todo = [u for u in todo if not (parts / f"{u.key}.npz").exists()]
    total_bp = sum(u.end - u.start for u in units if shard is None or u.index % shard[1] == shard[0] - 1)
    from tqdm.auto import tqdm

    progress = tqdm(total=total_bp, initial=total_bp - sum(u.end - u.start for u in todo), unit="bp",
                    unit_scale=True, disable=quiet, desc=f"scan {task.name}", dynamic_ncols=True, leave=False)
    runner = _Runner(genome=gen, model=model, setup=setup, overlap=overlap, stitch_mode=stitch_mode,
                     batch_size=batch_size, n_tracks=n_tracks, progress=progress)
    try:
        for u in todo:
            arrays = runner.run(u)
            save_npz_atomic(parts / f"{u.key}.npz", arrays)
    finally:
        progress.close()
    missing = [u for u in units if not (parts / f"{u.key}.npz").exists()]
    if missing:
        return ScanResult([], [], None, None, complete=False,
                          counts={"units": len(units), "units_missing": len(missing)},
                          seconds=time.time() - t_start, model_seconds=runner.model_seconds)
    thr = task.call_threshold if threshold is None else float(threshold)
    counts = _assemble(parts, units, specs, sizes=sizes, bedgraph=bedgraph, calls_path=calls_path,
                       threshold=thr, strand_specific=task.strand_specific)
    counts["n_bp_skipped"] = skipped
    counts["n_gaps"] = n_gaps
    seconds = time.time() - t_start
    files = [{"label": sp.label, "strand": sp.strand, "bigwig": sp.path.name} for sp in specs]
    if bedgraph:
        for f, sp in zip(files, specs):
            f["bedgraph"] = _bedgraph_path(sp.path).name
    stride = stride_tokens(setup.window_tokens, overlap)
    manifest = {
        "genaannot": __version__,
        "command": "scan",
        "genome": settings["genome"],
        "task": task.name,
        "model": {**settings["model"], "device": getattr(model, "device", None),
                  "precision": getattr(model, "precision", None)},
        "labels": list(setup.labels),
        "strands": list(setup.strands),
        "files": files,
        "calls": {"path": calls_path.name, "format": "narrowPeak (BED6+4)", "threshold": thr},
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
        "run_seconds": round(seconds, 3),
        "model_seconds": round(runner.model_seconds, 3),
        "counts": counts,
    }
    write_json_atomic(manifest_path, manifest)
    shutil.rmtree(parts, ignore_errors=True)
    return ScanResult(
        tracks=[sp.path for sp in specs],
        bedgraphs=[_bedgraph_path(sp.path) for sp in specs] if bedgraph else [],
        calls=calls_path,
        manifest=manifest_path,
        complete=True,
        counts=counts,
        seconds=seconds,
        model_seconds=runner.model_seconds,
    )


def _bedgraph_path(bw: Path) -> Path:
    return bw.with_name(_stem(bw).name + ".bedGraph")


def _prepare_parts(parts: Path, settings: dict, *, keep: bool) -> None:
    sfile = parts / "settings.json"
    if parts.exists():
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


def _assemble(parts: Path, units: list[Unit], specs: list[TrackSpec], *, sizes: dict[str, int],
              bedgraph: bool, calls_path: Path, threshold: float, strand_specific: bool) -> dict[str, Any]:
    """Stream finished parts, in unit (= .fai) order, into the writers and the call makers."""
    writers = []
    try:
        for sp in specs:
            writers.append(WRITERS["bigwig"](sp.path, sizes=sizes, name=sp.path.stem))
            if bedgraph:
                writers.append(WRITERS["bedgraph"](_bedgraph_path(sp.path), sizes=sizes, name=sp.path.stem))
        per = 2 if bedgraph else 1
        makers = [CallMaker(name=sp.label, strand=sp.strand if strand_specific else ".", threshold=threshold)
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
            path = parts / f"{u.key}.npz"
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
