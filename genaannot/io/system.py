"""The operating system: the cgroup CPU quota (files under /sys), glibc's heap policy."""

from __future__ import annotations

import math

__all__ = ["cgroup_cpu_quota", "return_large_frees_to_the_os"]


def _first_words(path: str) -> list[str]:
    with open(path) as fh:
        return fh.read().split()


def cgroup_cpu_quota() -> int | None:
    """Whole CPUs allowed by the cgroup (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None
    when there is no quota (or no cgroup file to read)."""
    try:
        quota, period = _first_words("/sys/fs/cgroup/cpu.max")[:2]
    except (OSError, ValueError):
        try:
            quota = _first_words("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")[0]
            period = _first_words("/sys/fs/cgroup/cpu/cpu.cfs_period_us")[0]
        except (OSError, IndexError):
            return None
    try:
        if quota in ("max", "-1"):
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


_HEAP_SET = False

#: glibc ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def return_large_frees_to_the_os(threshold: int = 128 * 1024) -> bool:
    """Make glibc serve allocations of ``threshold`` bytes and more with ``mmap`` for the rest
    of the process, so that a freed array goes back to the operating system at once.

    glibc's default raises this threshold each time such a block is freed (up to 32 MiB), after
    which big numpy arrays come from the heap and a long scan's resident memory creeps up
    with the number of work units it has seen (fragmentation), not with what it holds.
    Setting the threshold explicitly turns that adjustment off. Process-wide and
    idempotent; False (and nothing done) where the C library is not glibc.
    """
    global _HEAP_SET
    if _HEAP_SET:
        return True
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
    _HEAP_SET = ok
    return ok
