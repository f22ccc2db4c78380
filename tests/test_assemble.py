"""genaannot.pipeline.assemble: parts into tracks, calls and counts (the Assembler)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genaannot.io.atomic import OutputSet
from genaannot.io.parts import Part
from genaannot.pipeline.assemble import Assembler, TrackSpec
from genaannot.windows import Unit

SIZES = {"c1": 30_000, "c2": 12_000}
STRANDS = ("+", "-")


def _units() -> list[Unit]:
    cuts = {"c1": [0, 9_000, 18_000, 30_000], "c2": [0, 5_000, 12_000]}
    out = []
    for chrom, c in cuts.items():
        out += [Unit(len(out) + i, chrom, a, b, 0, SIZES[chrom]) for i, (a, b) in enumerate(zip(c[:-1], c[1:]))]
    return out


def _part(u: Unit, seed: int) -> Part:
    """Runs of varying length and value (some equal neighbours across unit edges, some
    gaps), and the runs at or above 0.5 as call runs."""
    rng = np.random.default_rng(seed)
    runs, calls = {}, {}
    for strand in STRANDS:
        edges = np.unique(np.r_[u.start, rng.integers(u.start + 1, u.end, 200), u.end])
        s, e = edges[:-1], edges[1:]
        v = np.round(rng.random(len(s)), 1).astype(np.float32)
        v[0] = v[-1] = 0.7  # equal runs meet at the unit edges
        keep = rng.random(len(s)) > 0.1  # gaps (no data)
        s, e, v = s[keep], e[keep], v[keep]
        runs[(strand, 0)] = (s, e, v)
        hi = v >= 0.5
        calls[(strand, 0)] = (s[hi], e[hi], v[hi])
    return Part(runs, {"bp": u.end - u.start, "windows": 3, "lowercase": 0, "n_scanned": 0, "iupac": {}}, calls)


def _assembler(d: Path, *, bedgraph: bool) -> Assembler:
    d.mkdir()
    specs = [TrackSpec("lab", 0, s, d / f"o.lab.{'plus' if s == '+' else 'minus'}.bw") for s in STRANDS]
    return Assembler(specs, sizes=SIZES, bedgraph=bedgraph, calls_path=d / "o.calls.bed", thresholds={"lab": 0.5},
                     strand_specific=True, out=OutputSet(d / "o.json"))


def _files(a: Assembler) -> dict[str, bytes]:
    return {final.name: staged.read_bytes() for final, staged in a.out.staged.items()}


@pytest.mark.parametrize("bedgraph", [False, True])
def test_the_last_part_fed_by_finish_or_follow_gives_the_same_bytes(tmp_path, bedgraph):
    """finish(last=...) feeds the last part track by track beside the files' finishing, and
    follow() finishes with it: the files and counts are those of feeding every part first."""
    units = _units()
    parts = [_part(u, i) for i, u in enumerate(units)]

    fed = _assembler(tmp_path / "fed", bedgraph=bedgraph)
    for u, p in zip(units, parts):
        fed.feed(u, p)
    counts = fed.finish()

    last = _assembler(tmp_path / "last", bedgraph=bedgraph)
    for u, p in zip(units[:-1], parts[:-1]):
        last.feed(u, p)
    assert last.finish(last=(units[-1], parts[-1])) == counts

    followed = _assembler(tmp_path / "followed", bedgraph=bedgraph)
    by_key = {u.key: p for u, p in zip(units, parts)}
    followed.follow(units, wait=lambda u: by_key[u.key])
    assert followed.finish() == counts  # finished by follow(): the counts again
    assert counts["units"] == len(units) and counts["bp_scanned"] == sum(SIZES.values()) and counts["calls"] > 0

    ref = _files(fed)
    assert len(ref) == (5 if bedgraph else 3)
    assert _files(last) == ref and _files(followed) == ref


def test_follow_stopped_early_finishes_nothing(tmp_path):
    """wait() returning None (the scan was cancelled) stops the follower before the last
    part: nothing is finished (finish_scan would then refuse: its unit count)."""
    units = _units()
    a = _assembler(tmp_path / "a", bedgraph=False)
    a.follow(units, wait=lambda u: None if u.index == 2 else _part(u, u.index))
    assert a.n_units == 2 and a._counts is None
    a.abort()
    assert not list((tmp_path / "a").iterdir())
