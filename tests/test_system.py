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
    monkeypatch.setattr(system, "_TRIMMED_RSS", 0)  # no trim before: the first call trims
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_the_heap_is_trimmed_once_resident_memory_has_grown_by_the_slack(monkeypatch):
    """Units that free less than HEAP_TRIM_SLACK reuse their pages (no trim, no page faults
    afresh); a trim follows once resident memory has grown that much since the last one,
    and at every forced call."""
    calls: list[int] = []
    rss = [500 << 20]
    monkeypatch.setattr(system, "_HEAP_SET", True)
    monkeypatch.setattr(system, "_TRIMMED_RSS", 0)
    monkeypatch.setattr(system, "_LIBC", type("L", (), {"malloc_trim": lambda self, pad: calls.append(pad) or 1})())
    monkeypatch.setattr(system, "_resident_bytes", lambda: rss[0])
    slack = system.HEAP_TRIM_SLACK
    assert 0 < slack <= 64 << 20
    system.release_free_heap()  # the first: no trim to measure from
    assert len(calls) == 1
    rss[0] += slack - 4096
    system.release_free_heap()
    assert len(calls) == 1
    system.release_free_heap(force=True)
    assert len(calls) == 2
    rss[0] += slack
    system.release_free_heap()
    assert len(calls) == 3  # grown by the slack since the forced trim
    rss[0] = 0  # resident memory unknown: trim as before
    system.release_free_heap()
    assert len(calls) == 4


def test_resident_bytes_reads_this_process():
    if not sys.platform.startswith("linux"):
        assert system._resident_bytes() == 0
        return
    import numpy as np

    before = system._resident_bytes()
    # 128 MiB touched: above any mmap threshold, so mapped afresh (free heap pages that are
    # still resident, which a smaller array could reuse, do not hide it)
    a = np.ones(1 << 24)
    assert system._resident_bytes() - before >= 96 << 20
    del a
