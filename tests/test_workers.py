"""genaannot.pipeline.workers: ordered look-ahead map (in process, on a thread, in processes)."""

from __future__ import annotations

import threading
import time

import pytest

from genaannot.pipeline.workers import ahead, worker_state


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
