"""Track writers: whole-genome bigWig header, order checks, atomic commit/abort."""

from __future__ import annotations

import os

import numpy as np
import pybigtools
import pyBigWig
import pytest

from genaannot.io.tracks import (
    WRITERS,
    OutputError,
    check_writable,
    load_npz,
    save_npz_atomic,
    write_json_atomic,
    write_lines_atomic,
)

SIZES = {"chr2": 1000, "chr1": 500, "chrM": 16}


def _leftovers(d):
    return [p.name for p in d.iterdir() if p.name.startswith(".")]


def test_bigwig_header_values_and_pybigtools(tmp_path):
    path = tmp_path / "t.bw"
    w = WRITERS["bigwig"](path, sizes=SIZES)
    w.add("chr2", np.array([0, 10, 500]), np.array([10, 20, 1000]), np.array([0.25, 0.5, 1.0], np.float32))
    w.add("chr1", np.array([100]), np.array([101]), np.array([0.125], np.float32))
    assert not path.exists()  # nothing under the final name before commit
    w.commit()
    bw = pyBigWig.open(str(path))
    assert bw.chroms() == SIZES and list(bw.chroms()) == list(SIZES)
    assert bw.intervals("chr2") == ((0, 10, 0.25), (10, 20, 0.5), (500, 1000, 1.0))
    assert bw.intervals("chrM") is None
    assert bw.stats("chr2", 0, 1000, type="max")[0] == 1.0
    bw.close()
    b = pybigtools.open(str(path))
    assert dict(b.chroms()) == SIZES
    got = list(b.records("chr2"))
    assert [(int(s), int(e), float(v)) for s, e, v in got] == [(0, 10, 0.25), (10, 20, 0.5), (500, 1000, 1.0)]
    assert _leftovers(tmp_path) == []


def test_bigwig_refuses_disorder_and_aborts(tmp_path):
    path = tmp_path / "t.bw"
    w = WRITERS["bigwig"](path, sizes=SIZES)
    w.add("chr1", np.array([0]), np.array([5]), np.array([1.0], np.float32))
    with pytest.raises(OutputError, match="after a later"):
        w.add("chr2", np.array([0]), np.array([5]), np.array([1.0], np.float32))
    with pytest.raises(OutputError, match="overlapping"):
        w.add("chr1", np.array([3]), np.array([8]), np.array([1.0], np.float32))
    with pytest.raises(OutputError, match="past the end"):
        w.add("chr1", np.array([490]), np.array([501]), np.array([1.0], np.float32))
    with pytest.raises(OutputError, match="not in the genome"):
        w.add("chrX", np.array([0]), np.array([1]), np.array([1.0], np.float32))
    w.abort()
    assert not path.exists() and _leftovers(tmp_path) == []


def test_bedgraph(tmp_path):
    path = tmp_path / "t.bedGraph"
    w = WRITERS["bedgraph"](path, sizes=SIZES, name="x")
    w.add("chr2", np.array([0, 7]), np.array([5, 9]), np.array([0.5, 1 / 3], np.float32))
    w.commit()
    lines = path.read_text().splitlines()
    assert lines[0].startswith("track type=bedGraph")
    assert lines[1:] == ["chr2\t0\t5\t0.5", "chr2\t7\t9\t0.333333"]


def test_small_files_and_parts(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "m.json").read_text().strip().startswith("{")
    write_lines_atomic(tmp_path / "c.bed", ["a\t1\t2"], header=None)
    assert (tmp_path / "c.bed").read_text() == "a\t1\t2\n"
    save_npz_atomic(tmp_path / "p.npz", {"x": np.arange(3), "meta": np.array("{}")})
    z = load_npz(tmp_path / "p.npz")
    assert z["x"].tolist() == [0, 1, 2] and str(z["meta"]) == "{}"
    assert _leftovers(tmp_path) == []


def test_unwritable_output(tmp_path, monkeypatch):
    # a missing output directory is created, as `-o out/x.bw` on a fresh checkout expects
    assert check_writable(tmp_path / "missing" / "deeper" / "x.bw") == tmp_path / "missing" / "deeper" / "x.bw"
    assert (tmp_path / "missing" / "deeper").is_dir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="cannot create output directory"):
        check_writable(tmp_path / "afile" / "x.bw")
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr("genaannot.io.tracks.os.access",
                        lambda p, m: False if str(p) == str(ro) else real(p, m))
    with pytest.raises(OutputError, match="not writable"):
        check_writable(ro / "x.bw")
