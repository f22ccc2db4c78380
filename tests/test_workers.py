"""genaannot.pipeline.workers: ordered look-ahead map (in process, on a thread, in processes)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from genaannot.pipeline import workers as workers_mod
from genaannot.pipeline.workers import ahead, default_threads, torch_threads, worker_state


def _square_remote(x: int) -> int:  # module level: pickled by name into spawned workers
    if x == 13:
        raise ValueError("unlucky")
    return x * x + worker_state["offset"]


def _setup(state: dict) -> None:
    state["offset"] = state["base"] * 10


@pytest.mark.parametrize("workers,thread", [(0, False), (0, True), (2, False)])
def test_order_and_values(workers, thread):
    items = list(range(12))
    with ahead(items, local=lambda x: x * x + 10, remote=_square_remote, workers=workers, thread=thread,
               setup=_setup, state={"base": 1}) as out:
        got = list(out)
    assert got == [(x, x * x + 10) for x in items]


def _pid_and_state(tag: str) -> tuple[str, int, int]:
    return tag, os.getpid(), worker_state["offset"]


@pytest.mark.parametrize("workers,thread", [(0, False), (0, True), (1, False)])
def test_submit_runs_other_work_on_the_same_workers(workers, thread):
    """The scan's writer work goes to the planning workers (set up once: their state)."""
    with ahead(range(4), local=lambda x: x, remote=_square_remote, workers=workers, thread=thread,
               setup=_setup, state={"base": 2}) as out:
        assert out.processes is (workers > 0)
        got, futs = [], []
        for x, v in out:
            got.append(v)
            if out.processes:
                futs.append(out.submit(_pid_and_state, f"w{x}"))
            else:
                with pytest.raises(RuntimeError, match="no worker processes"):
                    out.submit(_pid_and_state, "x")
        done = [f.result() for f in futs]
    if workers:
        assert got == [x * x + 20 for x in range(4)]
        assert [d[0] for d in done] == ["w0", "w1", "w2", "w3"] and {d[2] for d in done} == {20}
        assert all(pid != os.getpid() for _, pid, _ in done) and len({pid for _, pid, _ in done}) == 1
    else:
        assert got == list(range(4)) and not done


def _local(x: int) -> int:
    if x == 13:
        raise ValueError("unlucky")
    return x


@pytest.mark.parametrize("workers", [0, 2])
def test_errors_reach_the_consumer(workers):
    seen = []
    with pytest.raises(ValueError, match="unlucky"):
        with ahead(range(20), local=_local, remote=_square_remote, workers=workers, thread=True, setup=_setup,
                   state={"base": 0}) as out:
            seen.extend(x for x, _ in out)
    assert seen == list(range(13))  # everything before the failing item was delivered, in order


def test_lookahead_is_bounded_on_a_thread():
    started: list[int] = []
    lock = threading.Lock()

    def slow(x: int) -> int:
        with lock:
            started.append(x)
        return x

    with ahead(range(50), local=slow, thread=True, lookahead=1) as out:
        for x, _ in out:
            time.sleep(0.002)
            with lock:
                assert max(started) <= x + 2  # the item, the next one, at most one more queued


# --- a worker leaves without the interpreter's teardown ---

LEAVING = '''
import atexit, ctypes, multiprocessing, sys
from pathlib import Path
from genaannot.pipeline.workers import ahead, worker_state

def task(x):
    # a C library's teardown (LLVM's static destructors, say): here one that aborts
    libc = ctypes.CDLL(None)
    libc.__cxa_atexit(ctypes.cast(libc.abort, ctypes.c_void_p), None, None)
    atexit.register(Path(f"{worker_state['dir']}/atexit").write_text, "ran")  # after the worker started
    sys.stdout.write(f"unflushed {x}")  # no newline, no flush: stdout is a pipe
    return x

if __name__ == "__main__":
    with ahead([7], local=task, remote=task, workers=1, state={"dir": sys.argv[1]}) as out:
        print(list(out), file=sys.stderr)
        kids = multiprocessing.active_children()
    print("exit codes", [p.exitcode for p in kids], file=sys.stderr)
'''


def test_a_worker_leaves_without_the_teardown_but_flushed_and_with_its_atexit_handlers(tmp_path):
    """The pool's workers end through ``leave_now`` (the scan waits for them; LLVM's teardown
    alone took 0.24–0.28 s): Python atexit handlers registered later still run and the
    output is flushed, but the C libraries' teardown (C ``atexit``, static destructors) is skipped."""
    from procs import run_script

    (tmp_path / "leaving.py").write_text(LEAVING)
    res = run_script(tmp_path / "leaving.py", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "[(7, 7)]" in res.stderr
    assert "unflushed 7" in res.stdout  # flushed before os._exit
    assert (tmp_path / "atexit").read_text() == "ran"
    assert "exit codes [0]" in res.stderr  # not -6: the C library's teardown never ran


# --- worker processes die with their parent; a script without a __main__ guard is refused ---

KILLED_PARENT = '''
import os, sys, threading, time
from pathlib import Path
from genaannot.pipeline.workers import ahead

def setup(state):
    Path(state["dir"], f"{os.getpid()}.pid").write_text("")

def slow(x):
    time.sleep(0.05)
    return x

def consume(d):
    with ahead(range(10**9), local=slow, remote=slow, workers=2, setup=setup, state={"dir": d}) as out:
        for _ in out:
            pass

if __name__ == "__main__":
    if sys.argv[2] == "main-thread":
        consume(sys.argv[1])
    else:  # workers started by another thread: no PR_SET_PDEATHSIG, the watchdog alone
        t = threading.Thread(target=consume, args=(sys.argv[1],))
        t.start()
        t.join()
'''


@pytest.mark.parametrize("starter", ["main-thread", "side-thread"])
def test_workers_die_when_their_parent_is_killed(tmp_path, starter):
    import signal

    from procs import kill_all, start_script, wait_for_pids, wait_gone

    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT)
    proc = start_script(script, str(tmp_path), starter)
    try:
        pids = wait_for_pids(tmp_path, 2, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        left = wait_gone(pids, timeout=5)  # the watchdog polls once a second
        kill_all(left)
        assert not left, f"worker processes {left} outlived their killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pdeathsig(x: int) -> tuple[int, int]:
    import ctypes

    sig = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
    return os.getpid(), sig.value


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_started_by_a_short_lived_thread_outlive_it():
    """The kernel's parent-death signal follows the starting *thread*: it is armed only for
    workers the main thread starts, so a helper thread that ends does not take them along."""
    assert threading.current_thread() is threading.main_thread()
    with ahead(range(3), local=_pdeathsig, remote=_pdeathsig, workers=2, lookahead=1) as out:
        main_started = list(out)
    assert {sig for _, (_, sig) in main_started} == {signal.SIGKILL}

    with ahead(range(30), local=_pdeathsig, remote=_pdeathsig, workers=2, lookahead=2) as out:
        it = iter(out)
        first: list = []
        t = threading.Thread(target=lambda: first.append(next(it)))  # starts both workers, then ends
        t.start()
        t.join()
        time.sleep(0.5)
        rest = list(it)  # BrokenProcessPool here if they had died with the thread
    got = first + rest
    assert [x for x, _ in got] == list(range(30))
    assert {sig for _, (_, sig) in got} == {0}


NO_GUARD = '''
from genaannot.pipeline.workers import ahead

def square(x):
    return x * x

with ahead(range(5), local=square, remote=square, workers=1) as out:
    print(sum(v for _, v in out))
'''

GUARDED = '''
from genaannot.pipeline.workers import ahead

def square(x):
    return x * x

def main():
    with ahead(range(5), local=square, remote=square, workers=1) as out:
        print(sum(v for _, v in out))

with open(__file__):  # the guard need not be a top-level statement
    if __name__ == "__main__":
        main()
'''


def test_a_script_without_a_main_guard_fails_at_once_with_the_fix(tmp_path):
    from procs import run_script

    (tmp_path / "guarded.py").write_text(GUARDED)
    ok = run_script(tmp_path / "guarded.py")
    assert ok.returncode == 0 and ok.stdout.strip() == "30", ok.stderr

    (tmp_path / "unguarded.py").write_text(NO_GUARD)
    t0 = time.monotonic()
    bad = run_script(tmp_path / "unguarded.py", timeout=60)  # a hang fails the test
    assert bad.returncode != 0
    assert time.monotonic() - t0 < 30
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("genaannot.pipeline.workers.MainGuardError: genaannot: worker processes"), bad.stderr
    assert 'inside `if __name__ == "__main__":`' in last and "unguarded.py, line 7" in last and "workers=0" in last
    assert "BrokenProcessPool" not in bad.stderr  # refused in the parent, before any worker started


NO_SEMAPHORES = """
import resource, signal
from genaannot.pipeline.workers import ahead
def f(x):
    return x
if __name__ == "__main__":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))  # /dev/shm refuses the queues' semaphores
    with ahead([1, 2], local=f, remote=f, workers=1) as it:
        print(list(it))
"""


def test_workers_that_cannot_start_say_why_and_what_to_do(tmp_path):
    """Python says only "[Errno 0] Error" when /dev/shm (or a file-size limit) refuses the
    worker queues' semaphores; the error names the cause and the way out."""
    from procs import run_script

    (tmp_path / "noshm.py").write_text(NO_SEMAPHORES)
    bad = run_script(tmp_path / "noshm.py", timeout=60)
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("genaannot.pipeline.workers.ProcessStartError: genaannot: cannot start worker processes")
    assert "/dev/shm" in last and "--workers 0" in last and "[Errno 0]" in last


def test_without_the_source_a_child_still_refuses_with_the_fix(tmp_path):
    """A script run from its .pyc cannot be read for a guard; the worker, re-running it, says why."""
    import py_compile

    from procs import run_script

    src = tmp_path / "unguarded.py"
    src.write_text(NO_GUARD)
    pyc = tmp_path / "unguarded.pyc"
    py_compile.compile(str(src), cfile=str(pyc), doraise=True)
    src.unlink()
    bad = run_script(pyc, timeout=60)
    assert bad.returncode != 0
    assert "MainGuardError: genaannot: worker processes" in bad.stderr
    assert "BrokenProcessPool" in bad.stderr.strip().splitlines()[-1]  # what the parent saw


@pytest.mark.parametrize("source,line,guarded", [
    ("main()\n", 1, False),
    ("if __name__ == '__main__':\n    main()\n", 2, True),
    ("if '__main__' == __name__ and True:\n    x = 1\n    main()\n", 3, True),
    ("try:\n    if __name__ == '__main__':\n        main()\nexcept KeyError:\n    pass\n", 3, True),
    ("if __name__ == '__main__':\n    pass\nmain()\n", 3, False),
    ("if DEBUG:\n    main()\n", 2, False),
])
def test_guard_detection(source, line, guarded):
    from genaannot.pipeline.workers import _guarded

    assert _guarded(source, line) is guarded


def test_default_threads_leave_the_workers_and_the_busy_cores_alone(monkeypatch):
    monkeypatch.setattr(workers_mod, "cpu_cores", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.0, 0.0))
    assert default_threads(workers=0) == 8
    assert default_threads(workers=1) == 8  # one worker tokenises in bursts: no core of its own
    assert default_threads(workers=4) == 6
    assert default_threads(workers=4, n_devices=2) == 3
    assert default_threads(workers=0, device="cuda:0") == 1  # the GPU computes; CPU threads would fight workers
    monkeypatch.setattr(os, "getloadavg", lambda: (6.7, 0.0, 0.0))  # six cores taken by other programs
    assert default_threads(workers=0) == 2
    assert default_threads(workers=2) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (40.0, 0.0, 0.0))
    assert default_threads(workers=4) == 1  # never below one
    monkeypatch.setattr(workers_mod, "cpu_cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.1, 0.0, 0.0))  # a loaded 2-core machine: one thread
    assert default_threads(workers=1) == 1


def test_torch_threads_are_restored():
    import torch

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass


def test_cgroup_quota_caps_the_cores(monkeypatch, tmp_path):
    monkeypatch.setattr(workers_mod, "_cgroup_cpu_quota", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert workers_mod.cpu_cores() == 2
    monkeypatch.setattr(workers_mod, "_cgroup_cpu_quota", lambda: None)
    assert workers_mod.cpu_cores() == 16


# --- what is submitted to a worker is not held here once it is sent ---

def _plus_one(x: int) -> int:
    return x + 1


def _wait_for_file_then_size(path: str, arr) -> int:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(arr.nbytes)


def test_arguments_submitted_to_a_worker_are_let_go_of_once_sent(tmp_path):
    """Ahead.submit hands its arguments over: once pickled for the worker, this process keeps
    no reference to them, while the call still runs (a process pool would keep them until
    the result is back). Pickled twice is an error, never an empty call."""
    import gc
    import pickle
    import weakref

    import numpy as np

    go = tmp_path / "go"
    with ahead([2], local=_plus_one, remote=_plus_one, workers=1) as out:
        assert [y for _, y in out] == [3]  # the worker is up
        arr = np.ones(1 << 20)
        ref = weakref.ref(arr)
        fut = out.submit(_wait_for_file_then_size, str(go), arr)
        del arr
        deadline = time.monotonic() + 30
        while ref() is not None and time.monotonic() < deadline:
            gc.collect()
            time.sleep(0.01)
        assert ref() is None and not fut.done()  # let go of while the worker still waits
        go.write_text("go")
        assert fut.result(timeout=60) == 8 << 20
    once = workers_mod._Handoff(_plus_one, (3,))
    fn, args = pickle.loads(pickle.dumps(once))
    assert fn is _plus_one and args == (3,) and workers_mod._run_handed((fn, args)) == 4
    with pytest.raises(RuntimeError, match="pickled twice"):
        pickle.dumps(once)


@pytest.mark.parametrize("workers, thread", [(1, False), (0, True)])
def test_a_delivered_result_is_not_kept_alive_by_the_look_ahead(workers, thread):
    """What ahead() yields is the consumer's alone: the look-ahead keeps no reference to a
    delivered result (its future, in a suspended generator's frame), so a consumer that
    keeps only part of it frees the rest while the next items are computed."""
    import gc
    import weakref

    with ahead(range(3), local=_holder, remote=_holder, workers=workers, thread=thread, lookahead=1) as out:
        refs = []
        for _x, res in out:
            refs.append(weakref.ref(res))
            del res
            gc.collect()
            assert all(r() is None for r in refs)


class _Held:  # weak-referenceable, picklable by name
    pass


def _holder(x: int) -> _Held:
    return _Held()


INTERRUPTED = '''
import sys
from pathlib import Path
from genaannot.pipeline.workers import ahead

def setup(state):
    import os
    Path(state["dir"], f"{os.getpid()}.pid").write_text("")

def quick(x):
    return x

if __name__ == "__main__":
    import time
    try:
        with ahead(range(10**9), local=quick, remote=quick, workers=2, setup=setup, state={"dir": sys.argv[1]}) as out:
            for _ in out:
                time.sleep(0.05)  # the workers wait for work, as a scan's do while the model runs
    except KeyboardInterrupt:
        print("parent interrupted", file=sys.stderr)
        sys.exit(130)
'''


def test_ctrl_c_to_the_process_group_is_left_to_the_parent(tmp_path):
    # a terminal's Ctrl-C reaches every process of the group: the workers printed a
    # KeyboardInterrupt traceback each, beside the parent's own clean stop
    import subprocess

    from procs import script_env, wait_for_pids

    script = tmp_path / "parent.py"
    script.write_text(INTERRUPTED)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=script_env(), cwd=tmp_path, start_new_session=True)
    try:
        wait_for_pids(tmp_path, 2, proc)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip() == "parent interrupted", err
