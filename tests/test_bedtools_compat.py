"""Scan outputs are bedtools-compatible: sorted, non-overlapping per track, outside gaps.

Uses pybedtools (a declared dependency) and the bedtools binary behind it; skips only when
the binary is not on PATH.
"""

from __future__ import annotations

import shutil

import pybedtools
import pytest
from toy import make_toy_model

from genaannot.pipeline.scan import scan_genome

pytestmark = pytest.mark.skipif(
    shutil.which("bedtools") is None,
    reason="the bedtools binary is not on PATH (pybedtools runs it): apt-get install bedtools, "
           "or conda install -c bioconda bedtools",
)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    d = tmp_path_factory.mktemp("bt")
    fa = d / "g.fa"
    # toy splice model: acceptor = sigmoid(base value) -> G and T (0.57, 0.60) are called at 0.55
    fa.write_text(">c1\n" + "ACGTTGCA" * 40 + "N" * 300 + "GGTTAACC" * 30 + "\n>c2\nTTTTAAAACCCCGGGG" * 1 + "\n")
    res = scan_genome(
        fa, model=make_toy_model("token", max_tokens=64), task="splice", output=d / "out.bw",
        threshold=0.55, bedgraph=True, quiet=True, min_gap=100,
    )
    return d, res


def _sorted_like_bedtools(path) -> None:
    bt = pybedtools.BedTool(str(path))
    original = [tuple(f.fields[:3]) for f in bt]
    assert original, f"{path} is empty"
    resorted = [tuple(f.fields[:3]) for f in bt.sort()]
    # bedtools orders ties on start arbitrarily: compare (chrom, start) order and the rows as a set
    assert [r[:2] for r in resorted] == [r[:2] for r in original]
    assert sorted(resorted) == sorted(original)


def _disjoint(bt) -> bool:
    """No two entries share a base, by bedtools and by hand; book-ended entries are disjoint.

    ``merge -d -1`` joins only entries that overlap by at least 1 bp, so on sorted input it
    returns exactly one record per entry iff none overlaps (``merge`` alone would also join
    the book-ended runs a bedGraph is made of).
    """
    rows = [(f.chrom, int(f.start), int(f.end)) for f in bt]
    by_hand = all(not (a[0] == b[0] and b[1] < a[2]) for a, b in zip(rows, rows[1:]))
    by_bedtools = len(bt.merge(d=-1)) == len(rows)
    assert by_hand == by_bedtools, (by_hand, by_bedtools)
    return by_hand


def test_disjointness_check_catches_overlaps():
    """Negative control for _disjoint: an overlap is caught, book-ended runs are not flagged."""
    bedgraph = "c1\t0\t10\t0.5\nc1\t10\t20\t0.7\nc1\t30\t40\t0.1\nc2\t0\t40\t0.2\n"
    assert _disjoint(pybedtools.BedTool(bedgraph, from_string=True))
    assert not _disjoint(pybedtools.BedTool(bedgraph.replace("c1\t30\t", "c1\t19\t"), from_string=True))


def test_calls_sorted_and_non_overlapping_per_track(scanned):
    d, _ = scanned
    calls = d / "out.calls.bed"
    _sorted_like_bedtools(calls)
    bt = pybedtools.BedTool(str(calls))
    tracks = {(f.name, f.strand) for f in bt}
    assert len(tracks) >= 2
    for name, strand in tracks:
        sub = bt.filter(lambda f, n=name, s=strand: f.name == n and f.strand == s).saveas()
        # maximal runs: bedtools merge (which also joins book-ended features) changes nothing
        assert len(sub.merge()) == len(sub)


def test_calls_avoid_the_gap(scanned):
    d, _ = scanned
    gap = pybedtools.BedTool("c1 320 620", from_string=True)
    assert len(pybedtools.BedTool(str(d / "out.calls.bed")).intersect(gap, u=True)) == 0


def test_bedgraphs_sorted_and_disjoint(scanned):
    d, _ = scanned
    graphs = sorted(d.glob("*.bedGraph"))
    assert len(graphs) == 4  # acceptor/donor x plus/minus
    for g in graphs:
        _sorted_like_bedtools(g)
        bt = pybedtools.BedTool(str(g))
        assert _disjoint(bt), f"{g.name}: overlapping entries"
        assert len(bt.merge()) < len(bt)  # ...while adjacent runs are book-ended (so merge -d -1 matters)
        assert all(int(f.end) > int(f.start) for f in bt)
        assert len(bt.intersect(pybedtools.BedTool("c1 320 620", from_string=True), u=True)) == 0
