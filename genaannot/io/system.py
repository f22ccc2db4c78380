"""The operating system: the cgroup CPU quota (files under /sys), glibc's heap policy."""

from __future__ import annotations

import math
import os

__all__ = ["cgroup_cpu_quota", "steady_heap", "release_free_heap"]


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
_LIBC: object | None = None

#: glibc ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8

#: the heap policy of a scanning process (``steady_heap``): measured with ``bench/scale.py``
#: (docs/scale.md, "Heap")
HEAP_ARENAS = 1
HEAP_MMAP_THRESHOLD = 32 * 1024 * 1024
#: :func:`release_free_heap` trims once resident memory has grown this much since its last trim
HEAP_TRIM_SLACK = 16 * 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _glibc():
    """glibc through ctypes, or None (not Linux, or a C library without ``mallopt``)."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util
        import sys

        _LIBC = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.mallopt, libc.malloc_trim  # noqa: B018  (musl and others lack them)
                _LIBC = libc
            except (OSError, AttributeError):
                pass
    return _LIBC or None


def steady_heap() -> bool:
    """Set glibc's heap policy for a long scan, once per process: :data:`HEAP_ARENAS` malloc
    arenas at most, and fixed mmap and trim thresholds of :data:`HEAP_MMAP_THRESHOLD` bytes.

    A scan allocates and frees work arrays of 0.1–10 MB thousands of times. glibc's default
    raises its mmap threshold as such blocks are freed (up to 32 MiB) and gives each
    thread an arena of its own, so resident memory crept up with the number of work units
    (fragmentation spread over several arenas). Mapping every block above 128 KiB instead
    (this function's earlier policy) kept memory flat but made the kernel map, zero and
    fault in every array afresh: 15 % of a scan's CPU as system time. Now the arrays come
    from one shared arena with fixed thresholds (no adjustment), and :func:`release_free_heap`
    hands its free pages back between work units. Process-wide; False (and nothing done)
    where the C library is not glibc.

    Call it early: a thread that has already allocated keeps its own arena. ``genaannot scan``
    calls it first thing, device and worker processes at their start, and
    :func:`~genaannot.pipeline.scan.scan_genome` when it starts (late in a script that
    loaded a model before: measured, 256-Mb chromosome, 472–474 MB peak against 454 MB when
    called first; docs/scale-log.md).
    """
    global _HEAP_SET
    if _HEAP_SET:
        return True
    libc = _glibc()
    if libc is None:
        return False
    ok = all(libc.mallopt(param, value) for param, value in ((_M_ARENA_MAX, HEAP_ARENAS),
                                                            (_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD),
                                                            (_M_TRIM_THRESHOLD, HEAP_MMAP_THRESHOLD)))
    _HEAP_SET = ok
    return ok


_TRIMMED_RSS = 0  # resident bytes right after the last trim (0: none yet)


def _resident_bytes() -> int:
    """The process's resident memory (Linux ``/proc/self/statm``), or 0 where unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def release_free_heap(*, force: bool = False) -> None:
    """Give the heap's free pages back to the operating system (glibc ``malloc_trim``;
    nothing elsewhere) once resident memory has grown :data:`HEAP_TRIM_SLACK` bytes since
    the last time (every call with ``force``, or where resident memory cannot be read).

    A scan calls it once per work unit, so that what units freed does not pile up. Trimming
    at every call made the next unit fault its temporaries in afresh: with a token per base
    (80-kb units) 2.7 million page faults and ~30 % of the host CPU as system time over a
    64-Mb chromosome; units that free less than the slack now reuse their pages
    (docs/scale.md, "Heap")."""
    global _TRIMMED_RSS
    if not _HEAP_SET:
        return
    if not force and _TRIMMED_RSS:
        rss = _resident_bytes()
        if rss and rss - _TRIMMED_RSS < HEAP_TRIM_SLACK:
            return
    _glibc().malloc_trim(0)
    _TRIMMED_RSS = _resident_bytes()
