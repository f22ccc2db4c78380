"""Helpers for tests that run a Python script in a subprocess and watch the processes it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def script_env() -> dict[str, str]:
    """The environment for a script that imports this checkout's genaannot."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_script(path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python path args`` to the end; a run past ``timeout`` raises (the test fails)."""
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout,
                          env=script_env(), cwd=path.parent)


def start_script(path: Path, *args: str) -> subprocess.Popen:
    """Start ``python path args`` in the background, its output discarded."""
    return subprocess.Popen([sys.executable, str(path), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=script_env(), cwd=path.parent)


def wait_for_pids(directory: Path, n: int, proc: subprocess.Popen, *, timeout: float = 30) -> list[int]:
    """The pids named by ``<pid>.pid`` files in ``directory``, once there are ``n`` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = sorted(int(p.stem) for p in directory.glob("*.pid"))
        if len(pids) >= n:
            return pids
        assert proc.poll() is None, f"the script exited early (code {proc.returncode})"
        time.sleep(0.05)
    raise AssertionError(f"{n} processes did not start within {timeout} s")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], *, timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to end; the ones still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill_all(pids: list[int]) -> None:
    """Clean up after a failed test: SIGKILL what is left of ``pids``."""
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def assert_unguarded_script_refused(directory: Path, source: str) -> None:
    """Run ``source`` as an unguarded script in ``directory``: it must fail with
    MainGuardError before writing anything beside itself."""
    script = directory / "unguarded.py"
    script.write_text(source)
    bad = run_script(script, timeout=60)
    assert bad.returncode != 0
    assert "MainGuardError: genaannot: worker and device processes" in bad.stderr.strip().splitlines()[-1]
    assert sorted(p.name for p in directory.iterdir()) == ["unguarded.py"]
