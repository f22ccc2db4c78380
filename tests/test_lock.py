"""genaannot.io.lock: one writer per -o, shards side by side, no stale locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from genaannot.io.lock import OutputBusy, output_lock, take_lock
from genaannot.io.naming import lock_name


def test_lock_names_sit_beside_the_outputs(tmp_path):
    assert lock_name(tmp_path / "o.bw") == tmp_path / ".o.lock"
    assert lock_name(tmp_path / "o.bw", "shard-1-of-2") == tmp_path / ".o.shard-1-of-2.lock"


def test_exclusive_shared_and_release(tmp_path):
    out = tmp_path / "o.bw"
    with output_lock(out):
        assert json.loads(lock_name(out).read_text())["pid"] == os.getpid()
        with pytest.raises(OutputBusy, match=rf"another genaannot scan is writing .*o \(pid {os.getpid()}"):
            with output_lock(out):
                pass
    assert not lock_name(out).exists()  # removed by its holder
    with output_lock(out, shard=(1, 2)), output_lock(out, shard=(2, 2)):  # shards share
        with pytest.raises(OutputBusy, match=r"scan --shard 2/2 is writing"):
            with output_lock(out, shard=(2, 2)):
                pass
        with pytest.raises(OutputBusy, match=rf"pid {os.getpid()}.*; pid {os.getpid()}"):  # both shards named
            with output_lock(out):
                pass
    assert not list(tmp_path.iterdir())


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path):
    out = tmp_path / "o.bw"
    code = ("import os, sys; from genaannot.io.lock import take_lock; "
            f"take_lock({str(lock_name(out))!r}); os._exit(0)")  # dies holding it, file left behind
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert lock_name(out).exists()
    with output_lock(out):
        pass
    lk = take_lock(lock_name(out))
    assert lk is not None and take_lock(lock_name(out)) is None
    lk.release()
