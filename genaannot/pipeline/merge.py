"""``merge``: combine the partial results of sharded ``scan`` or ``score`` runs.

Coordinates are 0-based, half-open (scan parts, bigWig, BED).

* **Scan partials** are the ``OUT.parts/`` directories that ``scan --shard I/N`` leaves
  (one per shard when each shard has its own ``-o``, or one shared directory). All must
  hold parts of the same scan (identical ``settings.json``: same weights, genome file,
  batch size and other settings; a difference is named); together they must hold
  every work unit. The parts are assembled exactly as a single run assembles its own, so
  the bigWig and BED files are byte-identical to a single-process run and the manifest
  equal apart from ``run_seconds``/``model_seconds`` (sums over the shards here).
* **Score partials** are the VCFs that ``score --shard I/N`` writes: shard ``I`` holds one
  contiguous stretch of the genome with about ``1/N`` of the records (a position-sorted
  input), or the ``I``-th of ``N`` contiguous record ranges (an unsorted one; see
  :func:`genaannot.shards.plan_score_shard`), and says so in a ``##genaannotShard``
  header line. All ``N`` shards of one run must be given; their records are concatenated
  in shard order (= input order) into one bgzipped, tabix-indexed VCF (sorted: when the
  input was not sorted, the records are sorted by header contig order and position,
  stably, in memory). The TSVs named in the shard headers are concatenated alike (input
  order).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import check_not_inputs
from ..io.lock import OutputBusy, output_lock
from ..io.naming import parts_dir
from ..io.parts import PartsStore, is_parts_dir, settings_changes
from ..io.tracks import check_writable
from ..windows import Unit
from .assemble import finish_scan, set_names

__all__ = ["MergeError", "merge", "merge_scan", "merge_score", "ScoreMergeResult", "partial_kind"]


class MergeError(ValueError):
    """Partials that do not belong together or do not cover the whole run."""


@dataclass
class ScoreMergeResult:
    """What :func:`merge_score` wrote."""

    vcf: Path
    tsv: Path | None
    records: int
    shards: int
    sorted_in_memory: bool = False
    notes: list[str] = field(default_factory=list)


def _parts_dir(path: Path) -> Path | None:
    """``path`` itself when it is a parts directory, else ``<OUT without .bw>.parts``."""
    if is_parts_dir(path):
        return path
    cand = parts_dir(path)
    return cand if is_parts_dir(cand) else None


def partial_kind(path: str | Path) -> str:
    """``"scan"`` (a parts directory, or the ``-o`` of a shard), ``"score"`` (a VCF) or an error."""
    p = Path(path)
    if _parts_dir(p) is not None:
        return "scan"
    name = p.name.lower()
    if p.is_file() and name.endswith((".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")):
        return "score"
    if not p.exists():
        raise MergeError(f"{p}: no such partial result (neither a scan's .parts directory nor a VCF)")
    raise MergeError(f"{p}: not a partial result: expected a `scan --shard` OUT.parts/ directory or a "
                     "`score --shard` VCF")


def merge(partials: list[str | Path], *, output: str | Path, tsv: str | Path | None = None,
          quiet: bool = False) -> Any:
    """Merge scan partials (→ :class:`~genaannot.pipeline.assemble.ScanResult`) or score partials
    (→ :class:`ScoreMergeResult`); the kind is detected from the inputs."""
    if not partials:
        raise MergeError("no partial results given")
    kinds = {partial_kind(p) for p in partials}
    if len(kinds) > 1:
        raise MergeError("cannot merge scan parts and VCFs together; run merge once per kind")
    if kinds == {"scan"}:
        if tsv is not None:
            raise MergeError("--tsv only applies to merging `score` VCFs")
        return merge_scan(partials, output=output)
    return merge_score(partials, output=output, tsv=tsv)


def merge_scan(partials: list[str | Path], *, output: str | Path):
    """Assemble the parts of a sharded scan into ``output`` (see module docstring)."""

    t0 = time.time()
    output = check_writable(Path(output))
    dirs: list[Path] = []
    for p in partials:
        d = _parts_dir(Path(p))
        if d is None:
            raise MergeError(f"{p}: not a scan parts directory")
        if d not in dirs:
            dirs.append(d)
    settings = None
    bases: list[tuple[Path, dict]] = []
    for d in dirs:
        store = PartsStore(d)
        s = store.settings()
        if settings is None:
            settings = s
        elif s != settings:
            raise MergeError(f"{d} holds parts of a different scan than {dirs[0]} "
                             f"({'; '.join(settings_changes(settings, s))})")
        bases.extend(store.shards())
    if not bases:
        raise MergeError(f"{', '.join(map(str, dirs))}: no shard-I-of-N.json; were they made by `scan --shard`?")
    volatile = {"shard", "units_done", "run_seconds", "model_seconds"}

    def _key(b: dict) -> dict:
        k = {x: v for x, v in b.items() if x not in volatile}
        k["model"] = {x: v for x, v in b["model"].items() if x != "device"}
        return k

    ref = _key(bases[0][1])
    for f, b in bases[1:]:
        if _key(b) != ref:
            diff = sorted(x for x in set(ref) | set(_key(b)) if ref.get(x) != _key(b).get(x))
            raise MergeError(f"{f}: shard of a scan with other settings than {bases[0][0]} ({', '.join(diff)})")
    units = [Unit(i, c, s, e, s, e) for i, (c, s, e) in enumerate(settings["units"])]  # type: ignore[index]
    files: dict[str, Path] = {}
    for u in units:
        for d in dirs:
            if PartsStore(d).has(u.key):
                files[u.key] = PartsStore(d).path(u.key)
                break
    missing = [u for u in units if u.key not in files]
    if missing:
        shards = sorted({f"{b['shard'][0]}/{b['shard'][1]}" for _, b in bases})
        u = missing[0]
        raise MergeError(
            f"{len(missing)} of {len(units)} work units are in none of the partials (first: unit {u.key}, "
            f"{u.chrom}:{u.start}-{u.end}); shards found: {', '.join(shards)}. Run the missing shard(s) first."
        )
    base = dict(bases[0][1])
    devices = list(dict.fromkeys(str(b["model"].get("device")) for _, b in bases))
    base["model"] = {**base["model"], "device": devices[0] if len(devices) == 1 else ",".join(devices)}
    seen: dict[tuple, float] = {}
    for _, b in bases:  # one figure per shard (a re-run shard counts once)
        seen[tuple(b["shard"])] = (b.get("run_seconds", 0.0), b.get("model_seconds", 0.0))
    run_s = sum(v[0] for v in seen.values()) + (time.time() - t0)
    model_s = sum(v[1] for v in seen.values())
    sizes = {c: int(n) for c, n in settings["sizes"]}  # type: ignore[index]
    check_not_inputs(set_names(output, base), [("scan partial", d) for d in dirs])
    try:
        with output_lock(output):  # as a whole scan: no other run writes these files meanwhile
            return finish_scan(files, units, base=base, output=output, sizes=sizes, run_seconds=run_s,
                               model_seconds=model_s)
    except OutputBusy as err:
        raise MergeError(str(err)) from None


def merge_score(partials: list[str | Path], *, output: str | Path, tsv: str | Path | None = None) -> ScoreMergeResult:
    """Concatenate the VCFs (and TSVs) of a sharded score run (see module docstring)."""
    from ..io.vcf import concat_tables, merge_vcfs, read_shard_header

    infos = []
    for p in partials:
        info = read_shard_header(p)
        if info is None:
            raise MergeError(f"{p}: no ##genaannotShard header line; was it written by `score --shard I/N`?")
        infos.append((Path(p), info))
    own = ("index", "first", "end", "span", "count", "tsv")  # the fields that differ between shards
    run = {k: v for k, v in infos[0][1].items() if k not in own}
    by_index: dict[int, tuple[Path, dict]] = {}
    for p, info in infos:
        other = {k: v for k, v in info.items() if k not in own}
        if other != run:
            raise MergeError(f"{p}: shard of another score run than {infos[0][0]} ({other} vs {run})")
        i = int(info["index"])
        if i in by_index:
            raise MergeError(f"{p} and {by_index[i][0]} are both shard {i}/{run['of']}")
        by_index[i] = (p, info)
    n = int(run["of"])
    missing = [i for i in range(1, n + 1) if i not in by_index]
    if missing:
        raise MergeError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing; all {n} shards are needed")
    ordered = [by_index[i] for i in range(1, n + 1)]
    total = int(run["records"])
    expect = [int(i["count"]) if "count" in i else int(i["end"]) - int(i["first"]) for _, i in ordered]
    if sum(expect) != int(run["records"]):
        raise MergeError(f"the shards' headers add up to {sum(expect):,} records but the input had {run['records']}")
    srcs = []
    if tsv is not None:
        for p, info in ordered:
            name = info.get("tsv")
            if not name:
                raise MergeError(f"{p}: this shard wrote no TSV (score --tsv), so --tsv cannot be merged")
            srcs.append(p.parent / name)
    check_not_inputs([output, f"{output}.tbi", tsv],
                     [*(("partial VCF", p) for p, _ in ordered),
                      *(("partial VCF index", f"{p}{ext}") for p, _ in ordered for ext in (".tbi", ".csi")),
                      *(("partial TSV", t) for t in srcs)])
    result = merge_vcfs([p for p, _ in ordered], output, expect=expect)
    if result["records"] != total:
        raise MergeError(f"merged {result['records']} records but the input had {total}")
    tsv_out = None
    if tsv is not None:
        concat_tables(srcs, tsv)
        tsv_out = Path(tsv)
    return ScoreMergeResult(vcf=Path(output), tsv=tsv_out, records=total, shards=n,
                            sorted_in_memory=result["sorted_in_memory"])
