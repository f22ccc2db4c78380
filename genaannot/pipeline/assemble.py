"""Finished parts → bigWig / bedGraph tracks, BED calls and the manifest (``scan`` and ``merge``).

Coordinates are 0-based, half-open. Parts are streamed in unit (= ``.fai``) order into
the writers and the call makers; equal runs meeting at a unit boundary are written as
one entry, so how the values are cut into parts leaves no trace in the files: they do not
depend on the shard count or the devices, and the unit size changes only values that
depend on where windows start (it is a setting recorded in ``settings.json``).

The tracks, their bedGraph twins, the calls BED and the manifest are one
:class:`~genaannot.io.atomic.OutputSet`: written to staged temporary names and committed
together, the manifest last, so the manifest's presence means the whole set is from one run.
A whole scan feeds its :class:`Assembler` while it computes (:meth:`Assembler.follow`), and
the assembler finishes the files when the last part comes (that part fed track by track,
each track then finishing its file, side by side), while the scan ends: the manifest and
the commit remain.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..calls import CallMaker, CallStream, format_call
from ..io.atomic import OutputError, OutputSet
from ..io.naming import bedgraph_name, calls_name, manifest_name, track_names, track_stem
from ..io.parts import Part, load_part
from ..io.tracks import WRITERS, load_json
from ..windows import Unit
from .workers import cpu_cores

__all__ = ["ScanResult", "TrackSpec", "track_specs", "finish_scan", "Assembler", "new_assembler", "output_set", "set_names",
           "MANIFEST_PRIVATE"]

#: manifest-base entries that steer assembly but are not written to the manifest
MANIFEST_PRIVATE = frozenset({"threshold", "thresholds", "threshold_source", "bedgraph", "strand_specific",
                              "n_bp_skipped", "n_gaps", "shard", "units_done", "run_seconds", "model_seconds"})


@dataclass(frozen=True)
class TrackSpec:
    """One output track: a label's channel on one strand."""

    label: str
    channel: int  # position among the read labels (the part's channel index)
    strand: str  # "+" | "-"
    path: Path


@dataclass
class ScanResult:
    """What a scan wrote.

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


def _base_thresholds(base: dict) -> dict[str, float]:
    """Per-label thresholds of a manifest base (older shards recorded one ``threshold``)."""
    if "thresholds" in base:
        return {k: float(v) for k, v in base["thresholds"].items()}
    return {lab: float(base["threshold"]) for lab in base["labels"]}


def track_specs(output: Path, base: dict) -> list[TrackSpec]:
    """Output tracks of a scan described by its manifest base (labels, strands)."""
    names = track_names(output, list(base["labels"]), list(base["strands"]))
    return [TrackSpec(lab, k, s, names[(lab, s)]) for k, lab in enumerate(base["labels"]) for s in base["strands"]]


def set_names(output: Path, base: dict) -> list[Path]:
    """Every file of the output set of ``base``'s scan (tracks, twins, calls, manifest)."""
    specs = track_specs(output, base)
    return [*(sp.path for sp in specs), *(bedgraph_name(sp.path) for sp in specs), calls_name(output),
            manifest_name(output)]


def output_set(output: Path, base: dict) -> OutputSet:
    """The output set of a scan written to ``output``, after :meth:`~OutputSet.recover`: a
    commit that a killed run left half done is finished, its temporary files removed."""
    out = OutputSet(manifest_name(output))
    out.recover(set_names(output, base))
    return out


def _old_members(output: Path) -> list[Path]:
    """The files an existing manifest lists (an older run's set, maybe other labels): removed
    with it. Only plain names beside it that start with the output's stem are taken."""
    manifest = manifest_name(output)
    if not manifest.is_file():
        return []
    try:
        old = load_json(manifest)
        names = [f[k] for f in old.get("files", []) for k in ("bigwig", "bedgraph") if k in f]
        names.append(old["calls"]["path"])
    except (OutputError, KeyError, TypeError, AttributeError):  # not a manifest of ours: remove only it
        return []
    stem = track_stem(output).name
    return [manifest.with_name(n) for n in names
            if isinstance(n, str) and "/" not in n and (n == output.name or n.startswith(stem + "."))]


def finish_scan(part_files: dict[str, Path], units: list[Unit], *, base: dict, output: Path,
                sizes: dict[str, int], run_seconds: float, model_seconds: float,
                assembler: Assembler | None = None) -> ScanResult:
    """Assemble finished parts (``unit key -> .npz``) into the tracks, calls and manifest.

    All are written to staged names and committed as one
    :class:`~genaannot.io.atomic.OutputSet` (manifest last), replacing an older run's set.

    Parameters
    ----------
    base : dict
        The manifest without what assembly adds (files, calls, counts, timings); see
        :func:`genaannot.pipeline.scan.manifest_base`.
    assembler : Assembler, optional
        One that followed the scan (:meth:`Assembler.follow`): fed every unit and
        finished its files; ``part_files`` are then not read.

    Raises
    ------
    OutputError
        A write failed (disk full, quota, I/O error): nothing new is left under the final
        names, and the parts are kept.
    """
    last = None
    if assembler is None:
        assembler = new_assembler(output, base, sizes=sizes)
        try:
            for u in units[:-1]:
                assembler.feed(u, load_part(part_files[u.key], tracks=assembler.tracks))
            last = (units[-1], load_part(part_files[units[-1].key], tracks=assembler.tracks)) if units else None
        except BaseException:
            assembler.abort()
            raise
    out = assembler.out
    with out:  # any error: everything staged is removed
        counts = assembler.finish(last=last)
        if counts["units"] != len(units):  # a caller's slip (say, a follower stopped early)
            raise RuntimeError(f"assembled {counts['units']} of {len(units)} units")
        result = _manifest(counts, base=base, output=output, run_seconds=run_seconds, model_seconds=model_seconds,
                           out=out)
        out.commit(remove=_old_members(output))
    return result


def _manifest(counts: dict[str, Any], *, base: dict, output: Path, run_seconds: float, model_seconds: float,
              out: OutputSet) -> ScanResult:
    """Stage the manifest (the set's marker) and describe the result."""
    specs = track_specs(output, base)
    calls_path, manifest_path = calls_name(output), manifest_name(output)
    bedgraph = bool(base["bedgraph"])
    counts["n_bp_skipped"] = base["n_bp_skipped"]
    counts["n_gaps"] = base["n_gaps"]
    files = [{"label": sp.label, "strand": sp.strand, "bigwig": sp.path.name} for sp in specs]
    if bedgraph:
        for f, sp in zip(files, specs):
            f["bedgraph"] = bedgraph_name(sp.path).name
    manifest: dict[str, Any] = {}
    for k, v in base.items():
        if k in MANIFEST_PRIVATE:
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
    out.stage_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return ScanResult(
        tracks=[sp.path for sp in specs],
        bedgraphs=[bedgraph_name(sp.path) for sp in specs] if bedgraph else [],
        calls=calls_path,
        manifest=manifest_path,
        complete=True,
        counts=counts,
        seconds=run_seconds,
        model_seconds=model_seconds,
    )


def new_assembler(output: Path, base: dict, *, sizes: dict[str, int]) -> Assembler:
    """An :class:`Assembler` for the outputs of the scan that ``base`` describes, writing into
    a fresh :func:`output_set` (which first cleans up what a killed run left)."""
    return Assembler(track_specs(output, base), sizes=sizes, bedgraph=bool(base["bedgraph"]),
                     calls_path=calls_name(output), thresholds=_base_thresholds(base),
                     strand_specific=base["strand_specific"], out=output_set(output, base))


class Assembler:
    """Parts, fed in unit (= ``.fai``) order, into the track writers and the call makers.

    :meth:`feed` one part per unit in order but the last, then :meth:`finish` with the last
    (calls staged, files finished; the caller commits ``out``), or :meth:`follow` the
    parts store while the scan runs, which does both; or :meth:`abort`. Every file is
    written to a path staged in ``out``. Equal runs meeting at a unit boundary are written
    as one entry.
    """

    def __init__(self, specs: list[TrackSpec], *, sizes: dict[str, int], bedgraph: bool, calls_path: Path,
                 thresholds: dict[str, float], strand_specific: bool, out: OutputSet) -> None:
        self.specs, self.sizes, self.calls_path, self.out = specs, sizes, calls_path, out
        self.tracks = [(sp.strand, sp.channel) for sp in specs]
        self.per = 2 if bedgraph else 1
        self.writers: list = []
        try:
            for sp in specs:
                self.writers.append(WRITERS["bigwig"](sp.path, sizes=sizes, name=sp.path.stem, tmp=out.stage(sp.path)))
                if bedgraph:
                    bg = bedgraph_name(sp.path)
                    self.writers.append(WRITERS["bedgraph"](bg, sizes=sizes, name=sp.path.stem, tmp=out.stage(bg)))
        except BaseException:
            self.abort()
            raise
        self.thresholds = [thresholds[sp.label] for sp in specs]
        self.makers = [CallMaker(name=sp.label, strand=sp.strand if strand_specific else ".",
                                 threshold=thresholds[sp.label]) for sp in specs]
        # calls go to the staged BED as they become final (in order): none is held to the end
        self.calls = CallStream(self.makers, {c: i for i, c in enumerate(sizes)})
        try:
            self.calls_out = out.open_lines(calls_path)
        except BaseException:
            self.abort()
            raise
        self.held: list[tuple | None] = [None] * len(specs)
        # every key from the start: a scan of nothing (all N) has the same counts, as zeros
        self.totals: Counter = Counter(dict.fromkeys(("bp_scanned", "windows", "lowercase", "n_bp_scanned"), 0))
        self.iupac: Counter = Counter()
        self.n_units = 0
        self.cpu_seconds = 0.0
        self._counts: dict[str, Any] | None = None  # set when finished

    def _emit(self, t: int, chrom: str, s: np.ndarray, e: np.ndarray, v: np.ndarray) -> None:
        if len(s):
            for w in self.writers[t * self.per : (t + 1) * self.per]:
                w.add(chrom, s, e, v)

    def _emit_held(self, t: int) -> None:
        """Write track ``t``'s held-back run, if any (it can no longer grow)."""
        h = self.held[t]
        if h is not None:
            self._emit(t, h[0], np.array([h[1]]), np.array([h[2]]), np.array([h[3]], dtype=np.float32))

    def feed(self, u: Unit, part: Part) -> None:
        """Add the part of unit ``u`` (units in order)."""
        t0 = time.thread_time()
        self._count(part)
        for t in range(len(self.tracks)):
            self._feed_track(t, u, part)
        self.calls_out.write(map(format_call, self.calls.ready(u.chrom, u.end)))
        self.cpu_seconds += time.thread_time() - t0

    def _count(self, part: Part) -> None:
        meta = part.meta
        self.totals.update({"bp_scanned": meta["bp"], "windows": meta["windows"], "lowercase": meta["lowercase"],
                            "n_bp_scanned": meta["n_scanned"]})
        self.iupac.update(meta["iupac"])
        self.n_units += 1

    def _feed_track(self, t: int, u: Unit, part: Part) -> None:
        """Track ``t``'s runs of ``u``'s part into its writers and call maker (touches only
        what belongs to track ``t``: tracks can be fed side by side)."""
        key = self.tracks[t]
        s, e, v = part.track(key)
        call_runs = part.call_runs(key)
        if call_runs is not None:
            cs, ce, cv = call_runs
            if len(cs):
                self.makers[t].feed(u.chrom, cs, ce, cv)
        elif len(s):  # a part without call runs (older layout): calls from the track's runs
            hi = v >= self.thresholds[t]
            self.makers[t].feed(u.chrom, s[hi], e[hi], v[hi])
        if not len(s):
            return
        # hold back the last run so that equal runs meeting at a unit boundary are
        # written as one entry: part boundaries leave no trace in the files
        h = self.held[t]
        if h is not None and h[0] == u.chrom and h[2] == s[0] and h[3] == v[0]:
            s = s.copy()
            s[0] = h[1]
        else:
            self._emit_held(t)
        self.held[t] = (u.chrom, int(s[-1]), int(e[-1]), v[-1])
        self._emit(t, u.chrom, s[:-1], e[:-1], v[:-1])

    def follow(self, units: list[Unit], *, wait: Callable[[Unit], Part | None]) -> None:
        """Feed ``units`` in order as ``wait(unit)`` hands their parts over (None: stop);
        with the last part, :meth:`finish` (the files finished, still under staged names).

        Runs beside the scan (a thread), so that when the last part is written only that
        part and the indexes, zoom levels and calls remain, and they are written while the
        scan ends (its worker processes exit); the caller's :meth:`finish` then returns
        the counts.
        """
        for i, u in enumerate(units):
            part = wait(u)
            if part is None:
                return
            if i == len(units) - 1:
                self.finish(last=(u, part))
            else:
                self.feed(u, part)

    def finish(self, *, last: tuple[Unit, Part] | None = None) -> dict[str, Any]:
        """Feed ``last`` (the last unit and its part, if not fed yet), stage the calls, finish
        every file (still under staged names); the counts. Once finished (say, by
        :meth:`follow`), the counts again."""
        if self._counts is not None:
            return self._counts
        if last is not None:
            self._count(last[1])

        def finish_track(t: int) -> float:
            t0 = time.thread_time()
            if last is not None:
                self._feed_track(t, *last)
            self._emit_held(t)
            for w in self.writers[t * self.per : (t + 1) * self.per]:
                w.commit()
            return time.thread_time() - t0

        # the tracks are independent, and their last runs, blocks, zoom levels and indexes
        # are mostly zlib and numpy (which release the GIL): finished side by side, this
        # is most of what a scan has left after its last unit (docs/scale.md)
        with ThreadPoolExecutor(max_workers=max(1, min(len(self.tracks), cpu_cores())),
                                thread_name_prefix="genaannot-finish") as pool:
            done = [pool.submit(finish_track, t) for t in range(len(self.tracks))]
        failed = [f.exception() for f in done if f.exception() is not None]
        if failed:  # every writer has stopped: none writes while the others are removed
            self.abort()  # nothing new under the final names
            raise failed[0]
        self.cpu_seconds += sum(f.result() for f in done)
        try:
            if last is not None:
                self.calls_out.write(map(format_call, self.calls.ready(last[0].chrom, last[0].end)))
            self.calls_out.write(map(format_call, self.calls.finish()))
            self.calls_out.close()
        except BaseException:
            self.abort()
            raise
        self._counts = {**dict(self.totals), "units": self.n_units, "calls": self.calls_out.count,
                        "iupac": dict(sorted(self.iupac.items())), "iupac_total": int(sum(self.iupac.values()))}
        return self._counts

    def abort(self) -> None:
        """Remove everything written (staged files and the writers' scratch files)."""
        for w in self.writers:
            w.abort()
        if getattr(self, "calls_out", None) is not None:
            self.calls_out.discard()
        self.out.abort()
