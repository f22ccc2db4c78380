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

    monkeypatch.setattr(system, "_HEAP_SET", False)
    ok = system.return_large_frees_to_the_os()
    assert system.return_large_frees_to_the_os() is ok  # idempotent
    a = np.ones(1 << 22)  # 32 MiB: still allocates and frees normally
    assert a.sum() == 1 << 22
