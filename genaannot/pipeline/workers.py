"""Host work ahead of the device: an ordered map with bounded look-ahead.

``scan`` plans work units and ``score`` plans chunks of records (FASTA reads, BPE) while
the model runs. Both go through :func:`ahead`: results come back in input order, at most
``lookahead`` items are in flight (bounded memory), and an error in a worker is raised
in the consumer. Worker processes are started with ``spawn`` (they never inherit the
model, CUDA state or the parent's threads) and set up once by an initializer, which
keeps the genome open and the settings at hand.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["ahead", "cpu_cores", "worker_state"]

T = TypeVar("T")
R = TypeVar("R")

#: what a worker process's initializer set up (its genome, tokenizer, settings)
worker_state: dict[str, Any] = {}


def cpu_cores() -> int:
    """Cores this process may use (its affinity on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def init_worker(state: dict[str, Any], setup: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Initializer of a worker process: one core each, then ``setup(state)`` fills :data:`worker_state`."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    worker_state.clear()
    worker_state.update(state)
    if setup is not None:
        setup(worker_state)


@contextlib.contextmanager
def ahead(
    items: Iterable[T],
    *,
    local: Callable[[T], R],
    remote: Callable[[T], R] | None = None,
    workers: int = 0,
    setup: Callable[[dict[str, Any]], None] | None = None,
    state: dict[str, Any] | None = None,
    lookahead: int | None = None,
    thread: bool = False,
    send: Callable[[T], Any] | None = None,
) -> Iterator[Iterator[tuple[T, R]]]:
    """``(item, f(item))`` in input order, computed ahead of the consumer.

    Parameters
    ----------
    local
        ``f`` in this process (``workers`` = 0).
    remote
        ``f`` in a worker process (a module-level function; it reads :data:`worker_state`).
    workers
        Worker processes; 0: in this process, lazily, or on one helper thread (``thread``).
    setup, state
        ``init_worker(state, setup)`` runs once in each worker process.
    lookahead
        Items in flight at most (default ``2 × workers``, or 1 for a helper thread).
    send
        What of an item travels to a worker (default: the item); the consumer gets the
        original item back.
    """
    if workers <= 0 and not thread:
        yield ((item, local(item)) for item in items)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool: Executor
    if workers > 0:
        if remote is None:
            raise ValueError("workers > 0 needs a module-level remote function")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=init_worker, initargs=(state or {}, setup))
        fn, limit = remote, lookahead or 2 * workers
    else:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-plan")
        fn, limit = local, lookahead or 1
    encode = send or (lambda x: x)

    def gen() -> Iterator[tuple[T, R]]:
        pending: deque[tuple[T, Future]] = deque()
        for item in items:
            pending.append((item, pool.submit(fn, encode(item) if workers > 0 else item)))
            if len(pending) > limit:
                first, fut = pending.popleft()
                yield first, fut.result()  # a worker's error is raised here
        while pending:
            first, fut = pending.popleft()
            yield first, fut.result()

    try:
        yield gen()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
