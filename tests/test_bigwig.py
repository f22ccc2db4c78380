"""genaannot.io.bigwig: the streaming bigWig writer, read back by two independent readers
(libBigWig through pyBigWig, bigtools through pybigtools): values, exact zoom summaries,
bytes independent of how the runs are handed over, large trees, write errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pybigtools
import pyBigWig
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genaannot.io.bigwig as bigwig
from genaannot.io.bigwig import BigWigFile, zoom_reductions
from genaannot.stitch import round_values, runs


def _signal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-base values like a model's: smooth low background, sharp peaks, a constant stretch, a gap."""
    v = np.repeat(rng.random(n // 7 + 1) * 0.02, 7)[:n].astype(np.float32)
    v += (rng.random(n) * 1e-4).astype(np.float32)
    peaks = rng.integers(0, n, max(1, n // 5000))
    v[peaks] = rng.random(len(peaks)).astype(np.float32)
    v[n // 3 : n // 3 + 2000] = np.nan
    v[n // 2 : n // 2 + 3000] = 0.25
    return v


def _write(path, sizes, tracks, *, chunk, digits=None):
    w = BigWigFile(path, sizes=sizes, digits=digits)
    for chrom, v in tracks.items():
        for a in range(0, len(v), chunk):
            s, e, x = runs(v[a : a + chunk], offset=a)
            w.add(chrom, s, e, x)
    w.close()
    return path


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    rng = np.random.default_rng(11)
    sizes = {"chr1": 400_000, "chr2": 123_457, "chrM": 1_000, "chrUn": 5_000}
    tracks = {c: _signal(rng, n) for c, n in sizes.items() if c != "chrUn"}
    path = _write(tmp_path_factory.mktemp("bw") / "t.bw", sizes, tracks, chunk=65_000)
    return path, sizes, tracks


def test_values_and_header_in_both_readers(genome):
    path, sizes, tracks = genome
    bw = pyBigWig.open(str(path))
    assert list(bw.chroms().items()) == list(sizes.items())  # .fai order
    for c, v in tracks.items():
        np.testing.assert_array_equal(bw.values(c, 0, sizes[c], numpy=True), v)
    assert bw.intervals("chrUn") is None
    bw.close()
    b = pybigtools.open(str(path))
    assert dict(b.chroms()) == sizes
    for c, v in tracks.items():
        np.testing.assert_array_equal(b.values(c, 0, sizes[c], fillna=np.nan), v)
    covered = sum(int((~np.isnan(v)).sum()) for v in tracks.values())
    assert b.info()["summary"]["basesCovered"] == covered
    total = sum(float(np.nansum(v.astype(np.float64))) for v in tracks.values())
    assert b.info()["summary"]["sum"] == pytest.approx(total, rel=1e-12)


def test_blocks_are_zlib_level_1_and_the_same_bytes_every_run(genome, tmp_path, monkeypatch):
    """Every data and zoom block is zlib's level-1 deflate of its bytes, so a file's bytes
    depend on its data only (ISA-L's deflate encoded one block two ways in two runs, which
    broke the scan's identical files across workers: docs/scale-log.md, "Deflate: zlib again")."""
    import zlib

    assert bigwig._deflate is zlib
    path, sizes, tracks = genome
    seen: list[tuple[bytes, int, bytes]] = []

    class Recorder:
        @staticmethod
        def compress(raw, level):
            out = zlib.compress(raw, level)
            seen.append((bytes(raw), level, out))
            return out

    monkeypatch.setattr(bigwig, "_deflate", Recorder)
    again = _write(tmp_path / "again.bw", sizes, tracks, chunk=65_000)
    assert again.read_bytes() == path.read_bytes()
    assert len(seen) > 10 and {level for _, level, _ in seen} == {1}
    data = again.read_bytes()
    assert all(out in data and zlib.decompress(out) == raw for raw, _, out in seen)


def test_zoom_records_are_exact(genome):
    """Every zoom record of every level equals the full-resolution data of its bin (count,
    min, max exactly; sum and sum of squares to float32 precision)."""
    path, sizes, tracks = genome
    b = pybigtools.open(str(path))
    levels = b.zooms()
    assert levels == zoom_reductions(max(sizes.values()))
    for r in levels:
        for c, v in tracks.items():
            recs = list(b.zoom_records(r, c, 0, sizes[c]))
            assert recs, (r, c)
            for start, end, summ in recs:
                assert start % r == 0 and end == min(start + r, sizes[c])
                x = v[start:end]
                x = x[~np.isnan(x)].astype(np.float64)
                assert summ["bases_covered"] == len(x)
                assert summ["min_val"] == x.min() and summ["max_val"] == x.max()
                assert summ["sum"] == pytest.approx(x.sum(), rel=1e-6, abs=1e-6)
                assert summ["sum_squares"] == pytest.approx((x * x).sum(), rel=1e-6, abs=1e-6)
            # no bin with data is missing
            have = {s for s, _, _ in recs}
            bins_with_data = {i * r for i in range(-(-sizes[c] // r)) if (~np.isnan(v[i * r : (i + 1) * r])).any()}
            assert have == bins_with_data


def test_mean_and_max_summaries_match_full_resolution(genome):
    """What IGV and bigWigSummary show (zoom-based mean/max/min over a range) is exact."""
    path, sizes, tracks = genome
    bw = pyBigWig.open(str(path))
    for c, v in tracks.items():
        for r in (256, 1024, 4096):
            for a in range(0, sizes[c] - 4 * r, sizes[c] // 5):
                a = a // r * r
                b_ = a + 4 * r
                x = v[a:b_]
                x = x[~np.isnan(x)]
                if not len(x):
                    continue
                assert bw.stats(c, a, b_, type="mean")[0] == pytest.approx(float(x.mean()), rel=1e-6)
                assert bw.stats(c, a, b_, type="max")[0] == pytest.approx(float(x.max()), rel=1e-7)
                assert bw.stats(c, a, b_, type="min")[0] == pytest.approx(float(x.min()), rel=1e-7)
    bw.close()


# 90 kb of ~1-bp runs: more than one 65,536-run batch, so batch boundaries are crossed
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.integers(1, 50_000), min_size=1, max_size=6), seed=st.integers(0, 3))
def test_bytes_do_not_depend_on_how_runs_are_handed_over(tmp_path_factory, chunks, seed):
    d = tmp_path_factory.mktemp("c")
    rng = np.random.default_rng(seed)
    sizes = {"a": 90_000, "b": 3_000}
    tracks = {"a": _signal(rng, 90_000), "b": _signal(rng, 3_000)}
    ref = _write(d / "ref.bw", sizes, tracks, chunk=10**9).read_bytes()
    w = BigWigFile(d / "x.bw", sizes=sizes)
    for c, v in tracks.items():
        a, i = 0, 0
        while a < len(v):
            step = chunks[i % len(chunks)]
            s, e, x = runs(v[a : a + step], offset=a)
            w.add(c, s, e, x)
            a, i = a + step, i + 1
    w.close()
    assert (d / "x.bw").read_bytes() == ref


def test_runs_waiting_for_a_batch_hold_no_view_of_what_was_handed_over(tmp_path):
    """The writer encodes a batch at a time out of the runs handed over (no copy of them all),
    and what waits for the next batch is its own copy: a view would keep a caller's whole
    arrays (a unit's runs) alive until the next batch."""
    from genaannot.io.bigwig import BATCH

    n = 2 * BATCH + 1000
    s = np.arange(n, dtype=np.int64) * 2
    v = np.arange(n, dtype=np.float32)
    w = BigWigFile(tmp_path / "x.bw", sizes={"a": 2 * n + 10})
    w.add("a", s, s + 1, v)
    assert w._n_pend == n - 1 - 2 * BATCH  # the last run is held back (it may join the next)
    assert all(a.base is None and not np.shares_memory(a, b) for a, b in zip(w._pend[0], (s, s + 1, v)))
    w.close()
    bw = pyBigWig.open(str(tmp_path / "x.bw"))
    got = bw.intervals("a")
    bw.close()
    assert len(got) == n and got[BATCH] == (2 * BATCH, 2 * BATCH + 1, float(BATCH)) and got[-1][0] == 2 * (n - 1)


@settings(max_examples=200, deadline=None)
@given(v=st.lists(st.floats(0, 1, width=32), min_size=1, max_size=50), digits=st.integers(1, 5))
def test_round_values_rules(v, digits):
    """Rounding is idempotent, monotone (never reorders values), within half a unit of the
    kept digit, and keeps probabilities near 1 apart (significant digits of 1 - v)."""
    x = np.array(v, dtype=np.float32)
    r = round_values(x, digits=digits, probability=True)
    assert np.array_equal(round_values(r, digits=digits, probability=True), r)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(r[order].astype(np.float64)) >= 0)
    lo = x < 0.5
    assert np.all(np.abs(r[lo].astype(np.float64) - x[lo]) <= 0.5 * 10.0**-digits + 1e-7)
    hi = ~lo
    d, dr = 1 - x[hi].astype(np.float64), 1 - r[hi].astype(np.float64)
    assert np.all(np.abs(dr - d) <= 0.5 * 10.0 ** (np.floor(np.log10(np.maximum(d, 1e-12))) - digits + 1) + 1e-6)
    assert np.array_equal(round_values(np.float32([0.99, 0.999, 0.9999]), digits=1, probability=True),
                          np.float32([0.99, 0.999, 0.9999]))


def test_digits_round_and_join_runs(tmp_path):
    rng = np.random.default_rng(3)
    v = _signal(rng, 50_000)
    full = _write(tmp_path / "full.bw", {"a": 50_000}, {"a": v}, chunk=7_000)
    small = _write(tmp_path / "r3.bw", {"a": 50_000}, {"a": v}, chunk=7_000, digits=3)
    assert small.stat().st_size < full.stat().st_size / 2
    bw = pyBigWig.open(str(small))
    np.testing.assert_array_equal(bw.values("a", 0, 50_000, numpy=True), round_values(v, digits=3))
    iv = bw.intervals("a")
    # no two touching entries with the same value
    assert all(not (x[1] == y[0] and x[2] == y[2]) for x, y in zip(iv, iv[1:]))
    bw.close()


def test_many_sequences_and_blocks_make_multi_level_trees(tmp_path, monkeypatch):
    """> 256 data blocks (a two-level R-tree) and a sorted multi-level chromosome B+ tree."""
    monkeypatch.setattr(bigwig, "SINGLE_LEAF_MAX", 10)  # force the sorted tree below 65,536 names
    rng = np.random.default_rng(5)
    sizes = {f"scaffold_{i}": int(n) for i, n in enumerate(rng.integers(300, 3_000, 700))}
    sizes["big"] = 600_000
    tracks = {c: (rng.random(n) if c == "big" else np.full(n, i % 7 / 7)).astype(np.float32)
              for i, (c, n) in enumerate(sizes.items())}
    path = _write(tmp_path / "many.bw", sizes, tracks, chunk=10**9)
    bw = pyBigWig.open(str(path))
    assert bw.chroms() == sizes
    for c in ("scaffold_0", "scaffold_345", "scaffold_699", "big"):
        np.testing.assert_array_equal(bw.values(c, 0, sizes[c], numpy=True), tracks[c])
    bw.close()
    b = pybigtools.open(str(path))
    assert dict(b.chroms()) == sizes
    np.testing.assert_array_equal(b.values("big", 123_456, 456_789, fillna=np.nan), tracks["big"][123_456:456_789])


def test_data_index_spilled_to_scratch_gives_the_same_bytes_and_leaves_nothing(tmp_path, monkeypatch):
    """The data index goes to a scratch file every SPILL_BLOCKS entries (a genome's would grow
    with it in memory): the same file, and no scratch file left after close or abort."""
    rng = np.random.default_rng(3)
    sizes = {"a": 300_000, "b": 50_000}
    tracks = {c: rng.random(n).astype(np.float32) for c, n in sizes.items()}  # ~340 blocks
    ref = _write(tmp_path / "ref.bw", sizes, tracks, chunk=70_000).read_bytes()
    for k in (1, 7, 100):
        monkeypatch.setattr(bigwig, "SPILL_BLOCKS", k)
        assert _write(tmp_path / f"s{k}.bw", sizes, tracks, chunk=70_000).read_bytes() == ref
    w = BigWigFile(tmp_path / "x.bw", sizes=sizes)
    s, e, x = runs(tracks["a"])
    w.add("a", s, e, x)
    assert w.blocks._spilled > 0 and (tmp_path / "x.bw.index").is_file()
    w.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.bw", "s1.bw", "s100.bw", "s7.bw"]


@pytest.mark.parametrize("block", [256, 4, 3])
def test_the_index_is_written_node_by_node_from_chunks(tmp_path, monkeypatch, block):
    """close() writes the data index's R-tree node by node, reading the scratch file
    INDEX_CHUNK entries at a time (a genome's index is never whole in memory): the same
    bytes whatever the chunk (which need not hold whole nodes), and with small nodes (a
    tree of many levels, fed from spilled and in-memory entries) both readers find every value."""
    monkeypatch.setattr(bigwig, "BLOCK_SIZE", block)
    monkeypatch.setattr(bigwig, "SPILL_BLOCKS", 50)
    rng = np.random.default_rng(4)
    sizes = {"a": 300_000, "b": 50_000, "c": 10}
    tracks = {c: rng.random(n).astype(np.float32) for c, n in sizes.items()}  # ~340 blocks
    ref = _write(tmp_path / "ref.bw", sizes, tracks, chunk=70_000).read_bytes()
    for k in (1, 7, 256, 10**6):
        monkeypatch.setattr(bigwig, "INDEX_CHUNK", k)
        assert _write(tmp_path / f"c{k}.bw", sizes, tracks, chunk=70_000).read_bytes() == ref
    bw = pyBigWig.open(str(tmp_path / "ref.bw"))
    b = pybigtools.open(str(tmp_path / "ref.bw"))
    for c, n in sizes.items():
        np.testing.assert_array_equal(bw.values(c, 0, n, numpy=True), tracks[c])
        np.testing.assert_array_equal(b.values(c, n // 3, n, fillna=np.nan), tracks[c][n // 3 :])
    assert bw.stats("a", 1_000, 299_000, type="max", exact=False)[0] == pytest.approx(float(tracks["a"][1_000:299_000].max()), abs=1e-6)
    bw.close()


def test_close_holds_a_chunk_of_the_data_index_not_all_of_it(tmp_path, monkeypatch):
    """A human track of a 1-bp-token model has millions of data blocks (48 bytes each in the
    index): close() reads them back INDEX_CHUNK at a time, so its peak (traced allocations)
    stays far below the index's size (it held the index twice, and the tree, before)."""
    import tracemalloc

    monkeypatch.setattr(bigwig, "ITEMS_PER_SLOT", 4)  # many blocks from few runs
    monkeypatch.setattr(bigwig, "INDEX_CHUNK", 2048)
    n = 400_000
    w = BigWigFile(tmp_path / "x.bw", sizes={"a": 3 * n})
    values = np.random.default_rng(0).random(n).astype(np.float32)
    for a in range(0, n, 100_000):
        s = np.arange(a, a + 100_000, dtype=np.int64) * 3
        w.add("a", s, s + 2, values[a : a + 100_000])
    w._flush(final=True)
    index_bytes = 48 * len(w.blocks)
    assert index_bytes > 4_000_000
    tracemalloc.start()
    try:
        w.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < index_bytes / 4, (peak, index_bytes)
    bw = pyBigWig.open(str(tmp_path / "x.bw"))  # every block found through the tree
    got = bw.values("a", 0, 3 * n, numpy=True)
    bw.close()
    np.testing.assert_array_equal(got[0::3], values)
    np.testing.assert_array_equal(got[1::3], values)
    assert np.isnan(got[2::3]).all()


def test_a_write_error_names_the_file_and_leaves_nothing(tmp_path):
    """A real EFBIG (file-size limit, as a quota would give ENOSPC/EDQUOT), no privileges needed."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        from genaannot.io.tracks import WRITERS, OutputError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        w = WRITERS["bigwig"]({str(tmp_path / "out.bw")!r}, sizes={{"a": 2_000_000}})
        rng = np.random.default_rng(0)
        try:
            for a in range(0, 2_000_000, 100_000):
                s = np.arange(a, a + 100_000)
                w.add("a", s, s + 1, rng.random(100_000).astype(np.float32))
            w.commit()
        except OutputError as err:
            w.abort()
            print(err)
            sys.exit(1)
        sys.exit(0)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "out.bw: cannot write" in res.stdout and "disk full or quota exceeded" in res.stdout
    assert list(tmp_path.iterdir()) == []  # no final file, no temporary file


def test_bench_track_size_runs(tmp_path, capsys):
    """bench/track_size.py on two small full-precision tracks: printed = returned, rounding
    shrinks the file and its error stays within half a unit of the kept digit."""
    from benchutil import load_bench

    mod = load_bench("track_size")
    rng = np.random.default_rng(2)
    files = [_write(tmp_path / f"t{i}.bw", {"a": 40_000}, {"a": _signal(rng, 40_000)}, chunk=10**9) for i in range(2)]
    res = mod.main([str(f) for f in files])
    out = capsys.readouterr().out
    for k, row in res.items():
        for name, v in row.items():
            assert f"digits={k} {name}: {v:.4g}" in out
    assert res["2"]["bytes_per_mb_track"] < res["full"]["bytes_per_mb_track"] < res["pyBigWig"]["bytes_per_mb_track"]
    assert res["full"]["max_abs_error"] == 0 and 0 < res["2"]["max_abs_error"] <= 0.005 + 1e-7


def test_a_track_without_data_is_a_valid_file(tmp_path):
    """All-N genome or nothing scanned: a header-only file both readers open."""
    path = tmp_path / "e.bw"
    w = BigWigFile(path, sizes={"a": 1000, "b": 50})
    w.close()
    bw = pyBigWig.open(str(path))
    assert bw.chroms() == {"a": 1000, "b": 50} and bw.intervals("a") is None
    bw.close()
    assert list(pybigtools.open(str(path)).records("a")) == []
    assert [p.name for p in tmp_path.iterdir()] == ["e.bw"]  # no scratch file left
