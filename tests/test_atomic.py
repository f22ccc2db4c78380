"""Atomic writes (genaannot.io.atomic): nothing half-written under a final name, modes, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from genaannot.io import atomic
from genaannot.io.atomic import (
    AtomicDir,
    AtomicFile,
    OutputError,
    check_writable,
    publish,
    save_npz_atomic,
    staged_files,
    write_bytes_atomic,
    write_json_atomic,
    write_lines_atomic,
    write_text_atomic,
)


def _hidden(d):
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


class _Boom(Exception):
    pass


@pytest.fixture
def umask():
    old = os.umask(0o022)

    def set_(value: int) -> None:
        os.umask(value)

    yield set_
    os.umask(old)


def test_exception_mid_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "t.txt"
    out.write_text("old\n")

    def lines():
        yield "first"
        raise _Boom("disk full")

    with pytest.raises(_Boom):
        write_lines_atomic(out, lines())
    assert out.read_text() == "old\n" and _hidden(tmp_path) == []
    with pytest.raises(_Boom), AtomicFile(tmp_path / "new.bin") as f:
        f.tmp.write_bytes(b"partial")
        raise _Boom("killed")
    assert not (tmp_path / "new.bin").exists() and _hidden(tmp_path) == []


def test_killed_process_leaves_no_file_under_the_final_name(tmp_path):
    # SIGKILL halfway through: no cleanup can run, only the temporary file may remain
    code = textwrap.dedent(f"""
        import os, signal
        from genaannot.io.atomic import write_lines_atomic
        def lines():
            for i in range(1000):
                if i == 500:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield "x" * 100
        write_lines_atomic({str(tmp_path / "out.txt")!r}, lines())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == -9, r.stderr.decode()
    assert not (tmp_path / "out.txt").exists()
    assert [n for n in _hidden(tmp_path) if n.startswith(".out.txt.") and n.endswith(".tmp")]


def test_final_file_appears_whole_on_commit(tmp_path):
    out = tmp_path / "d.bin"
    f = AtomicFile(out)
    with open(f.tmp, "wb") as fh:
        fh.write(b"a" * 100_000)
        assert not out.exists()
    assert not out.exists()  # written, not committed
    f.commit()
    assert out.read_bytes() == b"a" * 100_000
    f.abort()  # after commit: tidies leftovers only
    assert out.is_file() and _hidden(tmp_path) == []


def test_modes(tmp_path, umask):
    umask(0o077)
    write_text_atomic(tmp_path / "fixed.txt", "x")
    assert (tmp_path / "fixed.txt").stat().st_mode & 0o777 == 0o644  # whatever the umask
    umask(0o027)
    write_text_atomic(tmp_path / "plain.txt", "x", mode=None)
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o640  # like open(path, "w")
    write_bytes_atomic(tmp_path / "m.bin", b"x", mode=0o600)
    assert (tmp_path / "m.bin").stat().st_mode & 0o777 == 0o600


def test_whole_file_writers(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"a": [1, 2]})
    assert (tmp_path / "m.json").read_text() == json.dumps({"a": [1, 2]}, indent=2) + "\n"
    write_lines_atomic(tmp_path / "c.bed", ["a\t1\t2", "b\t3\t4"], header="track x")
    assert (tmp_path / "c.bed").read_text() == "track x\na\t1\t2\nb\t3\t4\n"
    assert write_bytes_atomic(tmp_path / "b", b"\x00\xff", fsync=True).read_bytes() == b"\x00\xff"
    save_npz_atomic(tmp_path / "p.npz", {"x": np.arange(3)})
    with np.load(tmp_path / "p.npz") as z:
        assert z["x"].tolist() == [0, 1, 2]
    write_text_atomic(tmp_path / "deep" / "er" / "t.txt", "made the directory")
    assert (tmp_path / "deep" / "er" / "t.txt").read_text() == "made the directory"
    assert _hidden(tmp_path) == []


def test_no_check_leaves_a_missing_directory_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        AtomicFile(tmp_path / "missing" / "x", check=False)
    assert not (tmp_path / "missing").exists()


def test_companions_and_commit_from_one(tmp_path):
    f = AtomicFile(tmp_path / "x.vcf.gz", suffix=".vcf.gz", check=False)
    assert f.tmp.name.startswith(".x.vcf.gz.") and f.tmp.name.endswith(".vcf.gz")
    tbi = f.companion(".tbi")
    bb = f.companion(".bb")
    bb.write_bytes(b"from the tool")
    tbi.write_bytes(b"index")
    f.commit(source=bb)
    publish(tbi, tmp_path / "x.vcf.gz.tbi", mode=None)
    f.abort()
    assert (tmp_path / "x.vcf.gz").read_bytes() == b"from the tool"
    assert (tmp_path / "x.vcf.gz.tbi").read_bytes() == b"index"
    assert _hidden(tmp_path) == []
    g = AtomicFile(tmp_path / "y")
    g.companion(".gz").write_bytes(b"x")
    g.abort()
    assert _hidden(tmp_path) == [] and not (tmp_path / "y").exists()


def test_atomic_dir(tmp_path):
    final = tmp_path / "step-1"
    final.mkdir()
    (final / "old").write_text("old")
    (tmp_path / ".step-1.tmp").mkdir()  # left by a killed run
    (tmp_path / ".step-1.tmp" / "junk").write_text("x")
    d = AtomicDir(final)
    assert not d.tmp.exists()
    d.tmp.mkdir()
    (d.tmp / "new").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["old"]
    d.commit()
    assert sorted(p.name for p in final.iterdir()) == ["new"] and _hidden(tmp_path) == []
    e = AtomicDir(final)
    e.tmp.mkdir()
    (e.tmp / "half").write_text("x")
    e.abort()
    assert sorted(p.name for p in final.iterdir()) == ["new"] and _hidden(tmp_path) == []


def test_staged_files(tmp_path, monkeypatch):
    out = tmp_path / "model"
    with pytest.raises(_Boom), staged_files(out) as stage:
        (stage / "config.json").write_text("{}")
        raise _Boom("crash before the weights")
    assert list(out.iterdir()) == []
    moved = []
    real = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (moved.append(os.path.basename(b)), real(a, b)))
    with staged_files(out) as stage:
        for name in ("b.txt", "c.txt", "a.txt"):
            (stage / name).write_text(name)
        assert list(out.iterdir()) == [stage]  # nothing in place before the block ends
    assert moved == ["a.txt", "b.txt", "c.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt", "c.txt"]


def test_check_writable(tmp_path, monkeypatch):
    # a missing output directory is created, as `-o out/x.bw` on a fresh checkout expects
    assert check_writable(tmp_path / "missing" / "deeper" / "x.bw") == tmp_path / "missing" / "deeper" / "x.bw"
    assert (tmp_path / "missing" / "deeper").is_dir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="cannot create output directory"):
        check_writable(tmp_path / "afile" / "x.bw")
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(atomic.os, "access", lambda p, m: False if str(p) == str(ro) else real(p, m))
    with pytest.raises(OutputError, match="not writable"):
        check_writable(ro / "x.bw")
    with pytest.raises(OutputError, match="not writable"):
        AtomicFile(ro / "x.bw")
