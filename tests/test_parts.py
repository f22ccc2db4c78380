"""genaannot.io.parts: the parts store (settings, atomic parts, shard bases)."""

from __future__ import annotations

import numpy as np
import pytest

from genaannot.io.parts import (
    Part,
    PartsError,
    PartsStore,
    SettingsMismatch,
    is_parts_dir,
    settings_changes,
)


def _part(k: float) -> Part:
    runs = {("+", 0): (np.array([0, 5]), np.array([5, 9]), np.array([k, k + 1], dtype=np.float32)),
            ("-", 0): (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))}
    return Part(runs, {"bp": 9, "windows": 2})


def test_prepare_save_load_and_resume(tmp_path):
    store = PartsStore(tmp_path / "o.parts")
    store.prepare({"a": 1, "units": [("c", 0, 9)]}, keep=False)
    assert is_parts_dir(store.directory) and store.settings() == {"a": 1, "units": [["c", 0, 9]]}
    store.save("000000", _part(0.5))
    got = store.load("000000", tracks=[("+", 0), ("-", 0)])
    assert got.meta == {"bp": 9, "windows": 2} and got.runs[("+", 0)][2].tolist() == [0.5, 1.5]
    assert store.has("000000") and not store.has("000001")
    store.prepare({"a": 1, "units": [("c", 0, 9)]}, keep=True)  # same settings (tuples read back as lists)
    assert store.has("000000")
    with pytest.raises(SettingsMismatch, match=r"different settings \(a 1 → 2\)"):
        store.prepare({"a": 2, "units": [("c", 0, 9)]}, keep=True)
    store.prepare({"a": 2}, keep=False)  # a fresh run with other settings starts afresh
    assert not store.has("000000") and store.settings() == {"a": 2}


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
