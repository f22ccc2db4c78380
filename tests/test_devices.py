"""pipeline/devices: device lists, and what the parent does when a device process fails."""

from __future__ import annotations

import os

import pytest

from genaannot.pipeline.devices import DeviceError, parse_devices, run_on_devices


def test_parse_devices():
    assert parse_devices(None) is None
    assert parse_devices("0,1") == ["cuda:0", "cuda:1"]
    assert parse_devices(" cpu , cpu ") == ["cpu", "cpu"]
    assert parse_devices(["cuda:2", "cuda"]) == ["cuda:2", "cuda"]
    for bad in ("gpu0", "cuda:x", "0,mps"):
        with pytest.raises(DeviceError, match="is not a device"):
            parse_devices(bad)
    with pytest.raises(DeviceError, match="empty"):
        parse_devices(" , ")


# targets run in spawned processes, so they live at module level


def _echo(device, job, report):
    report("seen", (device, job))
    return job * 10


def _fail_on_second(device, job, report):
    if job == 2:
        raise ValueError("bad shard")
    return job


def _die(device, job, report):
    if job == 2:
        os._exit(3)  # no word to the parent
    return job


def _big(device, job, report):
    for i in range(50):
        report("chunk", bytes([i]) * 100_000)  # 5 MB of messages, far more than a pipe holds
    return bytes([job]) * (8 << 20)


def test_everything_a_device_process_sends_arrives_before_it_leaves():
    """A device process leaves without the interpreter's teardown (``leave_now``), after its
    queue is flushed: no message and no part of a large result is lost."""
    got: list = []
    out = run_on_devices(_big, [3, 5], devices=["cpu", "cpu"], on_message=lambda k, r, v: got.append((r, v[0], len(v))))
    assert out == [bytes([3]) * (8 << 20), bytes([5]) * (8 << 20)]
    assert sorted(got) == sorted((r, i, 100_000) for r in (0, 1) for i in range(50))


def test_results_and_messages_in_device_order():
    seen = []
    out = run_on_devices(_echo, [1, 2], devices=["cpu", "cpu"], on_message=lambda k, r, v: seen.append((k, r, v)))
    assert out == [10, 20]
    assert sorted(seen) == [("seen", 0, ("cpu", 1)), ("seen", 1, ("cpu", 2))]


def test_an_error_names_the_device_and_its_cause():
    with pytest.raises(RuntimeError, match=r"device cpu: ValueError: bad shard"):
        run_on_devices(_fail_on_second, [1, 2], devices=["cpu", "cpu"], error=RuntimeError)


def test_a_process_that_dies_silently_is_noticed():
    with pytest.raises(DeviceError, match=r"exited \(exit code 3\) without finishing"):
        run_on_devices(_die, [1, 2], devices=["cpu", "cpu"])


# --- device processes (and the workers they start) die with their parent; a guard is required ---

KILLED_PARENT = '''
import os, sys, time
from pathlib import Path
from genaannot.pipeline.devices import run_on_devices
from genaannot.pipeline.workers import ahead

def mark(state):
    Path(state["dir"], f"{os.getpid()}.pid").write_text("")

def slow(x):
    time.sleep(0.05)
    return x

def device(dev, d, report):  # each device process marks itself, then runs a pool of one worker
    mark({"dir": d})
    with ahead(range(10**9), local=slow, remote=slow, workers=1, setup=mark, state={"dir": d}) as out:
        for _ in out:
            pass

if __name__ == "__main__":
    run_on_devices(device, [sys.argv[1]] * 2, devices=["cpu", "cpu"])
'''


def test_device_processes_and_their_workers_die_when_the_parent_is_killed(tmp_path):
    import signal

    from procs import kill_all, start_script, wait_for_pids, wait_gone

    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT)
    proc = start_script(script, str(tmp_path))
    try:
        pids = wait_for_pids(tmp_path, 4, proc)  # two device processes, a worker under each
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        left = wait_gone(pids, timeout=5)
        kill_all(left)
        assert not left, f"processes {left} outlived their killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


NO_GUARD = '''
from genaannot.pipeline.devices import run_on_devices

def job(device, x, report):
    return x + 1

print(run_on_devices(job, [1, 2], devices=["cpu", "cpu"]))
'''


def test_a_script_without_a_main_guard_fails_at_once_with_the_fix(tmp_path):
    from procs import run_script

    (tmp_path / "guarded.py").write_text(NO_GUARD.replace("print(", 'if __name__ == "__main__":\n    print('))
    ok = run_script(tmp_path / "guarded.py")
    assert ok.returncode == 0 and ok.stdout.strip() == "[2, 3]", ok.stderr

    (tmp_path / "unguarded.py").write_text(NO_GUARD)
    bad = run_script(tmp_path / "unguarded.py", timeout=60)  # a hang fails the test
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("genaannot.pipeline.workers.MainGuardError: genaannot: device processes"), bad.stderr
    assert 'inside `if __name__ == "__main__":`' in last and "unguarded.py, line 7" in last


def test_a_cuda_device_process_makes_its_gpu_the_current_device(monkeypatch):
    # else pinned buffers, streams and events take cuda:0, and every device process opens a
    # CUDA context there as well as on its own GPU
    import torch

    import genaannot.models as models
    from genaannot.pipeline.devices import load_for_device

    current: list[object] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: current.append(torch.device(d)))
    monkeypatch.setattr(models, "load_model", lambda spec, **kw: (spec, kw["device"]))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    cfg = {"model_spec": "m", "precision": "fp32", "load_options": {}}
    assert load_for_device(cfg, "cuda:1") == ("m", "cuda:1")
    assert current == [torch.device("cuda", 1)]
    load_for_device(cfg, "cpu")
    load_for_device(cfg, "cuda")  # no index: the current device already
    assert current == [torch.device("cuda", 1)]


DEVICE_BARS = '''
from genaannot.pipeline.devices import run_on_devices

def bars(device, job, report):
    from tqdm import tqdm
    for _ in tqdm(range(3), disable=True):
        pass
    return job

if __name__ == "__main__":
    print(run_on_devices(bars, [1, 2], devices=["cpu", "cpu"]))
'''


def test_device_processes_leave_no_semaphore_behind(tmp_path):
    # tqdm's default lock is a named semaphore: a device process leaving through os._exit left
    # it to the resource tracker, which warned of "leaked semaphore objects" after every run
    import subprocess
    import sys

    from procs import script_env

    script = tmp_path / "run.py"
    script.write_text(DEVICE_BARS)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=script_env(),
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[1, 2]", r.stderr
    assert "leaked" not in r.stderr, r.stderr
