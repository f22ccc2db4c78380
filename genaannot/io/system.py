"""What the operating system allows this process: the cgroup CPU quota (files under /sys)."""

from __future__ import annotations

import math

__all__ = ["cgroup_cpu_quota"]


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
