"""genaannot.io.naming: output file names derived from -o."""

from __future__ import annotations

from pathlib import Path

from genaannot.io.naming import (
    bedgraph_name,
    calls_name,
    manifest_name,
    parts_dir,
    strip_suffix,
    track_names,
)


def test_single_track_is_the_output_itself():
    assert track_names("out/x.bw", ["promoter"], ["+"]) == {("promoter", "+"): Path("out/x.bw")}


def test_several_tracks_and_file_safe_unique_names():
    names = track_names("out/x.bw", ["acc/1", "acc:1", "donor"], ["+", "-"])
    got = sorted(p.name for p in names.values())
    assert got == sorted(["x.acc_1.plus.bw", "x.acc_1.minus.bw", "x.acc_1_2.plus.bw", "x.acc_1_2.minus.bw",
                          "x.donor.plus.bw", "x.donor.minus.bw"])
    assert len(set(names.values())) == 6


def test_companions():
    assert calls_name("a/run.bw") == Path("a/run.calls.bed")
    assert manifest_name("a/run.bigWig") == Path("a/run.json")
    assert parts_dir("a/run.bedGraph") == Path("a/run.parts")
    assert bedgraph_name("a/run.acceptor.plus.bw") == Path("a/run.acceptor.plus.bedGraph")
    assert parts_dir("a/run") == Path("a/run.parts")  # no suffix: kept
    assert strip_suffix(".bw", (".bw",)) == Path(".bw")  # a bare suffix is a name
