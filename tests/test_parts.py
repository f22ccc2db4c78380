"""genaannot.io.parts: the parts store (settings, atomic parts, shard bases)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genaannot.io.parts import (
    Part,
    PartsError,
    PartsStore,
    SettingsMismatch,
    is_parts_dir,
    pack_runs,
    settings_changes,
    unpack_runs,
)


def _part(k: float) -> Part:
    runs = {("+", 0): (np.array([0, 5]), np.array([5, 9]), np.array([k, k + 1], dtype=np.float32)),
            ("-", 0): (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))}
    return Part(runs, {"bp": 9, "windows": 2})


def test_prepare_save_load_and_resume(tmp_path):
    store = PartsStore(tmp_path / "o.parts")
    assert store.prepare({"a": 1, "units": [("c", 0, 9)]}, keep=False) == 0
    assert is_parts_dir(store.directory) and store.settings() == {"a": 1, "units": [["c", 0, 9]]}
    store.save("000000", _part(0.5))
    got = store.load("000000", tracks=[("+", 0), ("-", 0)])
    assert got.meta == {"bp": 9, "windows": 2} and got.runs[("+", 0)][2].tolist() == [0.5, 1.5]
    assert store.has("000000") and not store.has("000001")
    assert store.prepare({"a": 1, "units": [("c", 0, 9)]}, keep=True) == 0  # same settings (tuples read back as lists)
    assert store.has("000000")
    with pytest.raises(SettingsMismatch, match=r"different settings \(a 1 → 2\)"):
        store.prepare({"a": 2, "units": [("c", 0, 9)]}, keep=True)
    # a fresh run starts afresh, and says how many finished parts it cleared
    assert store.prepare({"a": 2}, keep=False) == 1
    assert not store.has("000000") and store.settings() == {"a": 2}


def test_a_packed_part_reads_and_saves_as_the_plain_one(tmp_path):
    """Part.packed_form (how a part travels back from a worker and waits for the assembler:
    12 bytes a run, not 20): track() and call_runs() give the plain part's runs, and the
    saved file holds the same arrays."""
    plain = _part(0.25)
    plain.calls = {key: (s[v >= 1], e[v >= 1], v[v >= 1]) for key, (s, e, v) in plain.runs.items()}
    packed = plain.packed_form()
    assert packed.packed and packed.packed_form() is packed and not plain.packed
    for key in plain.runs:
        for a, b in zip(plain.track(key), packed.track(key)):
            assert a.tolist() == b.tolist()
        for a, b in zip(plain.call_runs(key), packed.call_runs(key)):
            assert a.tolist() == b.tolist()
    assert packed.runs[("+", 0)][0].dtype == np.uint32  # gaps and lengths
    store = PartsStore(tmp_path / "o.parts")
    store.prepare({"a": 1}, keep=False)
    store.save("000000", plain)
    store.save("000001", packed)
    a, b = (np.load(store.path(k)) for k in ("000000", "000001"))
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        assert np.array_equal(a[name], b[name]) and a[name].dtype == b[name].dtype
    assert Part(plain.runs, plain.meta).call_runs(("+", 0)) is None


def test_refuses_what_is_not_a_parts_directory(tmp_path):
    d = tmp_path / "o.parts"
    d.mkdir()
    (d / "precious.txt").write_text("keep me")
    with pytest.raises(PartsError, match="not a genaannot parts directory"):
        PartsStore(d).prepare({"a": 1}, keep=False)
    assert (d / "precious.txt").read_text() == "keep me"
    empty = tmp_path / "e.parts"
    empty.mkdir()
    PartsStore(empty).prepare({"a": 1}, keep=True)  # an empty directory is a fresh start
    assert is_parts_dir(empty)


def test_damaged_part_names_the_file_and_what_to_do(tmp_path):
    store = PartsStore(tmp_path / "o.parts")
    store.prepare({"a": 1}, keep=False)
    store.path("000003").write_bytes(b"half-written")
    with pytest.raises(PartsError, match=r"000003\.npz: unreadable part .*rerun with --resume"):
        store.load("000003", tracks=[("+", 0)])


def test_shard_bases(tmp_path):
    store = PartsStore(tmp_path / "o.parts")
    store.prepare({"a": 1}, keep=False)
    store.write_shard((2, 3), {"shard": [2, 3]})
    store.write_shard((1, 3), {"shard": [1, 3]})
    assert [b["shard"] for _, b in store.shards()] == [[1, 3], [2, 3]]
    store.remove()
    assert not store.directory.exists()


def test_settings_changes_are_named_in_words():
    old = {"genome": "/d/g.fa", "genome_file": {"size": 10, "mtime_ns": 1, "fai_sha256": "f1"},
           "model": {"source": "m", "sha256": "1a2b3c4d5e"}, "batch_size": 8, "units": [["c", 0, 9]],
           "min_gap": 24}
    new = {"genome": "/d/g.fa", "genome_file": {"size": 10, "mtime_ns": 2, "fai_sha256": "f1"},
           "model": {"source": "m", "sha256": "3c4d5e6f7a"}, "batch_size": 16, "units": [["c", 0, 9]],
           "min_gap_bp": 24}
    assert settings_changes(old, new) == [
        "batch_size 8 → 16",
        "genome file changed (size/mtime of g.fa)",
        "min_gap recorded but no longer a setting",
        "min_gap_bp not recorded (parts of genaannot ?)",
        "model weights changed (sha256 1a2b3c4d… → 3c4d5e6f…)",
    ]
    assert settings_changes(new, new) == []
    store_err = SettingsMismatch("x", settings_changes(old, new))
    assert "batch_size 8 → 16" in store_err.changes


@st.composite
def _sorted_runs(draw):
    """Sorted, disjoint runs: gaps and lengths up to beyond 2**32 (a sequence longer than 4 Gb)."""
    big = draw(st.booleans())
    gap = st.integers(0, 2**33 if big else 50)
    n = draw(st.integers(0, 30))
    gaps, lens = draw(st.lists(gap, min_size=n, max_size=n)), draw(st.lists(st.integers(1, 2**33 if big else 20),
                                                                          min_size=n, max_size=n))
    ends = np.cumsum(np.array(gaps, dtype=np.int64) + np.array(lens, dtype=np.int64))
    values = np.array(draw(st.lists(st.floats(width=32, allow_nan=False), min_size=n, max_size=n)), dtype=np.float32)
    return ends - np.array(lens, dtype=np.int64), ends, values


@settings(max_examples=200, deadline=None)
@given(_sorted_runs())
def test_packed_runs_round_trip_exactly(runs):
    s, e, v = runs
    g, n, pv = pack_runs(s, e, v)
    # uint32 where every value fits (a scan's units always), int64 otherwise
    assert g.dtype == (np.uint32 if not len(s) or int(g.max()) < 2**32 else np.int64)
    assert n.dtype == (np.uint32 if not len(s) or int(n.max()) < 2**32 else np.int64)
    s2, e2, v2 = unpack_runs(g, n, pv)
    assert s2.dtype == e2.dtype == np.int64 and v2.dtype == np.float32
    assert s2.tolist() == s.tolist() and e2.tolist() == e.tolist()
    assert v2.view(np.uint32).tolist() == v.view(np.uint32).tolist()


def test_a_part_file_stores_gaps_and_lengths_and_reads_back_runs(tmp_path):
    store = PartsStore(tmp_path / "o.parts")
    store.prepare({"a": 1}, keep=False)
    start = 3_000_000_000  # past 2**31: int32 would wrap
    runs = {("+", 1): (np.array([start, start + 7, start + 9]), np.array([start + 7, start + 9, start + 20]),
                       np.array([0.1, 0.2, 0.3], dtype=np.float32))}
    calls = {("+", 1): (np.array([start + 9]), np.array([start + 20]), np.array([0.3125], dtype=np.float32))}
    store.save("000000", Part(runs, {"bp": 20}, calls))
    with np.load(store.path("000000")) as z:
        assert sorted(z.files) == ["+1_cg", "+1_cn", "+1_cv", "+1_g", "+1_n", "+1_v", "meta"]
        assert z["+1_g"].tolist() == [start, 0, 0] and z["+1_n"].tolist() == [7, 2, 11]
        assert z["+1_g"].dtype == np.uint32 and z["+1_cg"].tolist() == [start + 9]
    got = store.load("000000", tracks=[("+", 1)])
    assert [a.tolist() for a in got.runs[("+", 1)]] == [a.tolist() for a in runs[("+", 1)]]
    assert [a.tolist() for a in got.calls[("+", 1)]] == [a.tolist() for a in calls[("+", 1)]]
