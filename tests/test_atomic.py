"""Atomic writes (genaannot.io.atomic): nothing half-written under a final name, modes, cleanup."""

from __future__ import annotations

import errno
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
    OutputSet,
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


# --------------------------------------------------------------------------- OutputSet

MEMBERS = ("o.a.plus.bw", "o.a.minus.bw", "o.calls.bed")


def _old_set(d, *, extra=True):
    """A complete old set: members and manifest say "old" (plus a member the new set lacks)."""
    for n in (*MEMBERS, *(("o.b.plus.bw",) if extra else ())):
        (d / n).write_text("old")
    (d / "o.json").write_text("old")


def _new_set(d):
    out = OutputSet(d / "o.json")
    out.recover([d / n for n in MEMBERS])
    for n in MEMBERS:
        out.stage(d / n).write_text("new")
    out.stage_text(d / "o.json", "new")
    return out


def _visible(d):
    return {p.name: p.read_text() for p in d.iterdir() if not p.name.startswith(".")}


def _check_invariant(d):
    """Never a manifest beside a mixed or incomplete set; never old and new members together."""
    vis = _visible(d)
    members = {n: v for n, v in vis.items() if n != "o.json"}
    assert len(set(members.values())) <= 1, vis  # no old and new side by side
    if "o.json" in vis:
        run = vis["o.json"]
        assert all(members.get(n) == run for n in MEMBERS), vis  # the manifest vouches for the set
    return vis


def test_output_set_commits_together_with_the_manifest_last(tmp_path, monkeypatch, umask):
    umask(0o077)
    _old_set(tmp_path)
    out = _new_set(tmp_path)
    assert _visible(tmp_path)["o.json"] == "old"  # staged files are invisible
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in out.staged.values())
    events = []
    real_replace, real_unlink = os.replace, os.unlink
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append(("mv", os.path.basename(b))),
                                                            real_replace(a, b))[1])
    monkeypatch.setattr(atomic.os, "unlink", lambda p: (events.append(("rm", os.path.basename(p))), real_unlink(p))[1])
    out.commit(remove=[tmp_path / "o.b.plus.bw"])
    journal = ".o.json.commit"
    assert events[0] == ("mv", journal)
    removed = [n for k, n in events if k == "rm"]
    assert removed[0] == "o.json" and "o.b.plus.bw" in removed  # old marker first, then old members
    moved = [n for k, n in events if k == "mv" and n != journal]
    assert moved[-1] == "o.json" and sorted(moved) == sorted([*MEMBERS, "o.json"])
    assert events.index(("mv", moved[0])) > max(i for i, (k, _) in enumerate(events[:-1]) if k == "rm")
    assert events[-1] == ("rm", journal)
    assert _visible(tmp_path) == {n: "new" for n in (*MEMBERS, "o.json")}
    assert _hidden(tmp_path) == []
    assert (tmp_path / "o.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("call", ["fsync", "replace", "unlink", "open"])
def test_output_set_write_error_at_every_step(tmp_path, monkeypatch, call):
    """ENOSPC at the k-th call of each kind during commit, for every k: an OutputError naming
    the file with the hint; nothing new under the final names, no temporary file left."""
    real = {"fsync": os.fsync, "replace": os.replace, "unlink": os.unlink, "open": open}
    failures = 0
    for k in range(1, 40):
        d = tmp_path / f"k{k}"
        d.mkdir()
        _old_set(d)
        out = _new_set(d)
        n = {"calls": 0}

        def failing(*args, _k=k, _n=n, **kw):
            _n["calls"] += 1
            if _n["calls"] == _k:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real[call](*args, **kw)

        with monkeypatch.context() as m:
            if call == "open":
                m.setattr("builtins.open", failing)
            else:
                m.setattr(atomic.os, call, failing)
            try:
                out.commit(remove=[d / "o.b.plus.bw"])
            except OutputError as err:
                failures += 1
                assert "No space left on device" in str(err) and "disk full or quota exceeded" in str(err)
                assert str(d) in str(err) and err.errno == errno.ENOSPC
                vis = _check_invariant(d)
                assert "new" not in vis.values(), vis  # nothing new under a final name
                # before the old set's removal began: it is intact; after: no manifest
                assert vis == {n: "old" for n in (*MEMBERS, "o.b.plus.bw", "o.json")} or "o.json" not in vis
                assert _hidden(d) == []
                continue
        assert _visible(d) == {n: "new" for n in (*MEMBERS, "o.json")} and _hidden(d) == []
        break
    else:
        pytest.fail("commit never succeeded")
    assert failures >= 1  # the injected error was hit at least once


_KILL_CHILD = """
import os, signal, sys
from pathlib import Path
from genaannot.io.atomic import OutputSet
d, k = Path(sys.argv[1]), int(sys.argv[2])
members = {members!r}
out = OutputSet(d / "o.json")
for n in members:
    out.stage(d / n).write_text("new")
out.stage_text(d / "o.json", "new")
steps = {{"n": 0}}
def killing(real):
    def f(*a, **kw):
        r = real(*a, **kw)
        steps["n"] += 1
        if steps["n"] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return r
    return f
os.replace, os.unlink = killing(os.replace), killing(os.unlink)
out.commit(remove=[d / "o.b.plus.bw"])
"""


def test_output_set_kill_9_after_every_rename_and_removal(tmp_path):
    """SIGKILL right after the k-th rename or removal of a commit, for every k: the final names
    never show a manifest beside a mixed set, nor old and new members together; the next
    run's recover() leaves a complete set (the new one once the journal was written) and no
    temporary files; a following commit succeeds."""
    code = _KILL_CHILD.format(members=MEMBERS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    killed = 0
    for k in range(1, 40):
        d = tmp_path / f"k{k}"
        d.mkdir()
        _old_set(d)
        r = subprocess.run([sys.executable, "-c", code, str(d), str(k)], capture_output=True, env=env)
        if r.returncode == 0:
            assert _visible(d) == {n: "new" for n in (*MEMBERS, "o.json")} and _hidden(d) == []
            break
        assert r.returncode == -9, r.stderr.decode()
        killed += 1
        _check_invariant(d)
        journal = (d / ".o.json.commit").exists()
        OutputSet(d / "o.json").recover([d / n for n in MEMBERS])
        vis = _check_invariant(d)
        assert _hidden(d) == []
        if journal:  # rolled forward
            assert vis == {n: "new" for n in (*MEMBERS, "o.json")}, (k, vis)
        else:  # killed before the journal was in place (old set untouched) or after its removal
            assert vis in ({n: "old" for n in (*MEMBERS, "o.b.plus.bw", "o.json")},
                           {n: "new" for n in (*MEMBERS, "o.json")}), (k, vis)
        _new_set(d).commit()
        assert {n: v for n, v in _visible(d).items() if n != "o.b.plus.bw"} == {n: "new" for n in (*MEMBERS, "o.json")}
        assert _hidden(d) == []
    else:
        pytest.fail("the commit never finished")
    assert killed >= len(MEMBERS) + 3  # journal, removals, renames were each interrupted


def test_recover_removes_only_this_sets_temporary_files(tmp_path):
    stale = [".o.json.0123456789ab.tmp", ".o.a.plus.bw.abcdefgh.tmp", ".o.calls.bed.0123456789ab.tmp.bed",
             ".o.json.commit.0123456789ab.tmp"]
    keep = [".other.bw.0123456789ab.tmp", "o.a.plus.bw.tmp", ".o.a.plus.bw.keep", ".o.a.plus.bw.0123456789ab",
            ".o.a.plus.bw.x.tmp", ".o.bw.0123456789ab.tmp", "o.json"]
    for n in stale + keep:
        (tmp_path / n).write_text("x")
    out = OutputSet(tmp_path / "o.json")
    own = out.stage(tmp_path / "o.a.plus.bw")
    own.write_text("mine")
    out.recover([tmp_path / n for n in MEMBERS])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, own.name])
    out.abort()
    assert not own.exists()


def test_output_set_journal_without_all_members_removes_the_marker(tmp_path):
    # a rollback killed half way: a member is neither staged nor in place
    (tmp_path / ".o.json.r.tmp").write_text("new")
    (tmp_path / "o.a.plus.bw").write_text("new")
    (tmp_path / "o.json").write_text("old")
    (tmp_path / ".o.json.commit").write_text(json.dumps(
        {"run": "r", "marker": "o.json", "remove": [],
         "pairs": [[".o.a.plus.bw.r.tmp", "o.a.plus.bw"], [".o.calls.bed.r.tmp", "o.calls.bed"],
                   [".o.json.r.tmp", "o.json"]]}))
    OutputSet(tmp_path / "o.json").recover()
    assert _visible(tmp_path) == {"o.a.plus.bw": "new"} and _hidden(tmp_path) == []


def test_save_npz_atomic_error_names_the_file(tmp_path, monkeypatch):
    def full(*a, **kw):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(np.lib.format, "write_array", full)
    with pytest.raises(OutputError, match=r"p\.npz: cannot save \(Disk quota exceeded\); disk full or quota"):
        save_npz_atomic(tmp_path / "p.npz", {"x": np.arange(3)})
    assert list(tmp_path.iterdir()) == []


def test_check_not_inputs_same_path_and_links(tmp_path):
    from genaannot.io.atomic import OutputIsInput, check_not_inputs

    src = tmp_path / "in.vcf"
    src.write_text("x")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.safetensors").write_text("w")
    os.symlink(src, tmp_path / "sym")
    os.link(src, tmp_path / "hard")
    inputs = [("VCF", src), ("model", tmp_path / "model"), ("stdin", "-"), ("absent", tmp_path / "no"), ("none", None)]
    check_not_inputs([tmp_path / "out.vcf", "-", None, tmp_path / "no"], inputs)  # nothing clashes
    for out, words in [(src, ["input VCF"]), (tmp_path / "sub" / ".." / "in.vcf", ["input VCF"]),
                       (tmp_path / "sym", ["the same file"]), (tmp_path / "hard", ["the same file"]),
                       (tmp_path / "model" / "w.safetensors", ["input model"])]:
        with pytest.raises(OutputIsInput) as e:
            check_not_inputs([tmp_path / "ok", out], inputs)
        assert str(out) in str(e.value) and all(w in str(e.value) for w in words)
    assert src.read_text() == "x"
    # two outputs onto one file: the second would replace the first
    for outs in ([tmp_path / "x.vcf", tmp_path / "x.vcf"], [tmp_path / "y.vcf.gz", tmp_path / "y.vcf.gz.tbi",
                                                            tmp_path / "sub" / ".." / "y.vcf.gz.tbi"],
                 [src.with_name("z"), None, tmp_path / "hard2"]):
        if outs[-1].name == "hard2":
            outs[0].write_text("z")
            os.link(outs[0], outs[-1])
        with pytest.raises(OutputIsInput, match="one would overwrite the other") as e:
            check_not_inputs(outs, [])
        assert str(outs[-1]) in str(e.value)
    check_not_inputs(["/dev/null", "/dev/null", "-", "-"], [])


def test_staged_lines_are_written_as_they_come_and_fail_naming_the_final_file(tmp_path):
    out = OutputSet(tmp_path / "o.json")
    lines = out.open_lines(tmp_path / "o.calls.bed", header="#h")
    lines.write(["a", "b"])
    lines.write(iter(["c"]))
    lines.close()
    lines.close()  # again: nothing
    assert lines.count == 3 and out.staged[tmp_path / "o.calls.bed"].read_text() == "#h\na\nb\nc\n"
    out.stage_text(tmp_path / "o.json", "{}")
    out.commit()
    assert (tmp_path / "o.calls.bed").read_text() == "#h\na\nb\nc\n" and _hidden(tmp_path) == []

    # a write error (here: the file is gone under it and the handle refuses) names the final file;
    # abort leaves nothing
    out = OutputSet(tmp_path / "p.json")
    lines = out.open_lines(tmp_path / "p.calls.bed")

    class Full:
        closed = False

        def write(self, _):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    real, lines._fh = lines._fh, Full()
    with pytest.raises(OutputError, match="p.calls.bed") as err:
        lines.write(["x"])
    assert err.value.errno == errno.ENOSPC
    lines.discard()  # no error raised
    real.close()
    out.abort()
    assert not list(tmp_path.glob("p.*")) and _hidden(tmp_path) == []


def test_a_fifo_is_written_into_not_renamed_over(tmp_path):
    import stat
    import threading

    assert not atomic.is_stream(tmp_path) and not atomic.is_stream(tmp_path / "x")

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    with AtomicFile(fifo) as f:
        assert f.stream and f.tmp.parent != tmp_path
        f.tmp.write_bytes(b"a" * 300_000)
    reader.join(60)
    assert got == [b"a" * 300_000]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not f.tmp.exists()
    assert sorted(os.listdir(tmp_path)) == ["fifo"]

    with pytest.raises(OutputError, match="device, FIFO or socket"):
        OutputSet(tmp_path / "run.json").stage(fifo)


def test_a_symbolic_link_is_written_through(tmp_path):
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "out.txt"
    real.write_text("old\n")
    link = tmp_path / "out.txt"
    link.symlink_to(real)
    chain = tmp_path / "again.txt"
    chain.symlink_to(link)
    write_text_atomic(chain, "new\n")
    assert link.is_symlink() and chain.is_symlink() and real.read_text() == "new\n"
    dangling = tmp_path / "later.txt"
    dangling.symlink_to(tmp_path / "data" / "later.txt")
    write_text_atomic(dangling, "made\n")
    assert dangling.is_symlink() and (tmp_path / "data" / "later.txt").read_text() == "made\n"
    assert sorted(os.listdir(tmp_path / "data")) == ["later.txt", "out.txt"]


def test_a_device_is_written_into_not_renamed_over(null_device):
    # as root, a rename onto -o /dev/null replaced /dev/null itself with a regular file
    import stat

    assert atomic.is_stream(null_device)
    write_text_atomic(null_device, "gone\n")
    assert stat.S_ISCHR(os.stat(null_device).st_mode)
    assert os.listdir(null_device.parent) == ["null"]
