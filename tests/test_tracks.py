"""Track writers: whole-genome bigWig header, order checks, atomic commit/abort; bigWig reads.

The atomic-write primitives themselves are tested in test_atomic.py.
"""

from __future__ import annotations

import numpy as np
import pybigtools
import pyBigWig
import pytest

from genaannot.io.tracks import WRITERS, OutputError, load_npz, read_bigwig_region, save_npz_atomic

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


def test_read_bigwig_region(tmp_path):
    path = tmp_path / "t.bw"
    w = WRITERS["bigwig"](path, sizes=SIZES)
    w.add("chr1", np.array([100, 103]), np.array([102, 104]), np.array([0.25, 0.5], np.float32))
    w.commit()
    v = read_bigwig_region(path, "chr1", 99, 105)
    assert np.isnan(v[[0, 3, 5]]).all() and v[[1, 2, 4]].tolist() == [0.25, 0.25, 0.5]
    tail = read_bigwig_region(path, "chr1", 498, 503)  # past the sequence end: NaN
    assert tail.shape == (5,) and np.isnan(tail).all()
    assert np.isnan(read_bigwig_region(path, "chrX", 0, 4)).all()
    (tmp_path / "x.bw").write_text("not a bigwig")
    with pytest.raises(OSError):
        read_bigwig_region(tmp_path / "x.bw", "chr1", 0, 4)


def test_npz_parts_round_trip(tmp_path):
    save_npz_atomic(tmp_path / "p.npz", {"x": np.arange(3), "meta": np.array("{}")})
    z = load_npz(tmp_path / "p.npz")
    assert z["x"].tolist() == [0, 1, 2] and str(z["meta"]) == "{}"
    assert _leftovers(tmp_path) == []


_FSIZE_CHILD = """
import resource, signal, sys
from pathlib import Path
import numpy as np
from genaannot.io.tracks import WRITERS, OutputError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
d, limit = Path(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
w = WRITERS["bigwig"](d / "t.bw", sizes={sizes!r}, tmp=d / ".t.bw.0123456789ab.tmp")
try:
    w.add("chr2", np.array([0, 10]), np.array([10, 20]), np.array([0.25, 0.5], np.float32))
    w.commit()
except OutputError as err:
    print(err)
    sys.exit(3)
"""


@pytest.mark.parametrize("short", [4, 200])
def test_bigwig_truncated_by_a_write_error_is_refused(tmp_path, short):
    """A real EFBIG (RLIMIT_FSIZE) while the bigWig is written, up to its last bytes: the writer
    raises a message naming the file (never the temporary name), and removes what it wrote."""
    import os
    import subprocess
    import sys

    ref = WRITERS["bigwig"](tmp_path / "ref.bw", sizes=SIZES)
    ref.add("chr2", np.array([0, 10]), np.array([10, 20]), np.array([0.25, 0.5], np.float32))
    ref.commit()
    limit = (tmp_path / "ref.bw").stat().st_size - short
    d = tmp_path / "d"
    d.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    r = subprocess.run([sys.executable, "-c", _FSIZE_CHILD.format(sizes=SIZES), str(d), str(limit)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert str(d / "t.bw") in r.stdout and "disk full or quota exceeded" in r.stdout and ".tmp" not in r.stdout
    assert list(d.iterdir()) == []
