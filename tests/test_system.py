"""genaannot.io.system: cgroup CPU quota, glibc heap policy."""

from __future__ import annotations

import sys

import pytest

from genaannot.io import system


@pytest.mark.parametrize("files, expected", [
    ({"/sys/fs/cgroup/cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: rounded up
    ({"/sys/fs/cgroup/cpu.max": "max 100000\n"}, None),
    ({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "400000\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 4),
    ({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"/sys/fs/cgroup/cpu.max": "garbage\n"}, None),
    ({}, None),
])
def test_cgroup_cpu_quota(monkeypatch, files, expected):
    def words(path: str) -> list[str]:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path].split()

    monkeypatch.setattr(system, "_first_words", words)
    assert system.cgroup_cpu_quota() == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_heap_policy_is_set_once(monkeypatch):
    import numpy as np

    calls = []
    monkeypatch.setattr(system, "_HEAP_SET", False)
    release = system.release_free_heap
    release()  # before the policy: nothing to do, no error
    ok = system.steady_heap()
    libc = system._glibc()
    if libc is not None:
        assert ok
        monkeypatch.setattr(system, "_LIBC", type("L", (), {"malloc_trim": lambda self, pad: calls.append(pad) or 1,
                                                           "mallopt": libc.mallopt})())
    assert system.steady_heap() is ok  # idempotent
    a = np.ones(1 << 23)  # 64 MiB, above the mmap threshold: still allocates and frees normally
    b = np.ones(1 << 20)  # 8 MiB, from the heap
    assert a.sum() == 1 << 23 and b.sum() == 1 << 20
    del a, b
    release()
    assert calls == ([0] if libc is not None else [])
