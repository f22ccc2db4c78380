"""Host work ahead of the device: an ordered map with bounded look-ahead.

``scan`` plans work units and ``score`` plans chunks of records (FASTA reads, BPE) while
the model runs. Both go through :func:`ahead`: results come back in input order, at most
``lookahead`` items are in flight (bounded memory), and an error in a worker is raised
in the consumer. Worker processes are started with ``spawn`` (they never inherit the
model, CUDA state or the parent's threads) and set up once by an initializer, which
keeps the genome open and the settings at hand.

Worker processes die with their parent, ``kill -9`` included: each one asks the kernel
for SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``, set only when the parent's
main thread starts it, since the signal follows the starting *thread*) and also watches
its parent pid once a second (every platform, any starting thread); see
:func:`die_with_parent`. Spawned processes re-run the calling script's top-level code, so
a script that starts workers outside ``if __name__ == "__main__":`` is refused at once
with :class:`MainGuardError` (:func:`check_can_spawn`) instead of recursing or hanging.
"""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import sys
import threading
import time
import tokenize
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = [
    "Ahead", "ahead", "cpu_cores", "default_threads", "torch_threads", "worker_state", "die_with_parent",
    "check_can_spawn", "MainGuardError", "ProcessStartError", "start_error", "leave_now",
]

T = TypeVar("T")
R = TypeVar("R")

#: what a worker process's initializer set up (its genome, tokenizer, settings)
worker_state: dict[str, Any] = {}


def cpu_cores() -> int:
    """Cores this process may use: its affinity on Linux, capped by a cgroup CPU quota
    (a container or a cluster job often sees every core of the node but may use a few)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, quota)) if quota else cores


def _cgroup_cpu_quota() -> int | None:
    from ..io.system import cgroup_cpu_quota

    return cgroup_cpu_quota()


def default_threads(*, workers: int, device: str = "cpu", n_devices: int = 1) -> int:
    """Torch intra-op threads for a process that runs the model, when the user gave none.

    On CUDA the network runs on the GPU and torch's CPU threads would only compete with the
    host workers: 1. On CPU: the cores not taken by other programs (the 1-minute load
    average, rounded down), less one for every two host worker processes (they tokenise in
    bursts while the model runs), shared by the ``n_devices`` model processes; at least 1.
    Measured on this 2-core machine (``bench/threads.py``, docs/performance.md): with two
    busy programs, torch's old default (every core) took 1.2–2.8× the wall time and 3× the
    CPU of one thread, because its threads wait at every barrier for a core another program
    holds; idle, two threads beside one worker were 25 % faster than one.
    """
    if str(device).startswith("cuda"):
        return 1
    try:
        busy = int(os.getloadavg()[0])
    except (AttributeError, OSError):  # not Unix
        busy = 0
    free = cpu_cores() - busy - max(0, workers) // 2
    return max(1, free // max(1, n_devices))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with torch's intra-op threads set to ``n`` (restored afterwards, so a
    library call from a notebook leaves the caller's setting as it was)."""
    import torch

    if n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class MainGuardError(RuntimeError):
    """Worker or device processes requested from a script's unguarded top-level code."""


class ProcessStartError(RuntimeError):
    """Worker or device processes could not be started (their queues' semaphores, or the
    processes themselves)."""


def start_error(what: str, err: OSError) -> ProcessStartError:
    """A :class:`ProcessStartError` for ``err`` raised while starting ``what``: Python says
    only ``[Errno 0] Error`` when a full ``/dev/shm`` refuses multiprocessing's semaphores."""
    detail = f"{err.strerror or err} (errno {err.errno})" if err.errno else "the system gave no reason ([Errno 0])"
    return ProcessStartError(
        f"genaannot: cannot start {what}: {detail}. Their queues need POSIX "
        "semaphores in /dev/shm: it is usually full, missing or read-only (in a container, give it more "
        "with `docker run --shm-size=1g`), or a file-size limit (ulimit -f) is set. Free /dev/shm, or "
        "pass workers=0 / --workers 0 (and one device) to compute in this process"
    )


#: seconds between a child's checks that its parent is still alive
PARENT_POLL_S = 1.0


def _set_pdeathsig() -> bool:
    """Ask Linux to SIGKILL this process when the thread that started it exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        import signal

        pr_set_pdeathsig = 1  # <linux/prctl.h>
        return ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int, *, pdeathsig: bool, poll_s: float = PARENT_POLL_S) -> None:
    """Make this (spawned) process exit when process ``parent_pid`` dies, however it dies.

    Called first in every worker and device process. A parent killed with SIGKILL runs no
    clean-up, and its children would otherwise wait forever on its pipes.

    Parameters
    ----------
    parent_pid
        ``os.getpid()`` of the parent, taken when it started this process.
    pdeathsig
        Also set Linux's ``PR_SET_PDEATHSIG`` (immediate). Only safe when the parent's
        main thread started this process: the kernel sends the signal when the starting
        *thread* exits, which for another thread can be long before the parent does.
    poll_s
        How often a daemon thread compares ``os.getppid()`` with ``parent_pid`` (a child
        is re-parented when its parent dies); it calls ``os._exit`` on a change.
    """
    if pdeathsig:
        _set_pdeathsig()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="genaannot-parent-watch", daemon=True).start()


def parent_link() -> dict[str, Any]:
    """What :func:`die_with_parent` needs, as seen by the thread about to start a child."""
    return {"parent_pid": os.getpid(), "pdeathsig": threading.current_thread() is threading.main_thread()}


def _guarded(source: str, lineno: int) -> bool:
    """Whether line ``lineno`` of a script lies in an ``if`` that tests ``__name__``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and node.lineno <= lineno <= (node.end_lineno or node.lineno) and any(
                isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(node.test)):
            return True
    return False


def _unguarded_call_site() -> tuple[str, int] | None:
    """``(script, line)`` when the main script's top-level code, outside a ``__name__``
    guard, is what is running now (spawned children would re-run it); else None."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None:  # interactive, -c, an embedding host
        return None
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None and (name == "__main__" or name.endswith(".__main__")):
        return None  # spawn does not re-run a package's __main__ (python -m genaannot)
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:  # the script's top-level code has finished (or is not on the stack)
        return None
    try:
        with tokenize.open(frame.f_code.co_filename) as fh:
            guarded = _guarded(fh.read(), frame.f_lineno)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None  # no source to judge by; the child-side check below still applies
    return None if guarded else (frame.f_code.co_filename, frame.f_lineno)


def check_can_spawn(what: str) -> None:
    """Raise :class:`MainGuardError` where spawning ``what`` would re-run the caller.

    With the ``spawn`` start method every child re-imports the main script; top-level code
    outside ``if __name__ == "__main__":`` then runs again in the child, which would start
    children of its own (multiprocessing refuses, the pool breaks) or redo the whole job.
    Checked in the parent (the script's source at the calling line) and in a child that is
    still importing the script (multiprocessing's bootstrapping flag).
    """
    import multiprocessing as mp

    bootstrapping = bool(getattr(mp.current_process(), "_inheriting", False))
    site = None if bootstrapping else _unguarded_call_site()
    if not bootstrapping and site is None:
        return
    where = f" ({site[0]}, line {site[1]})" if site else ""
    raise MainGuardError(
        f"genaannot: {what} need the calling script's top-level code inside "
        f"`if __name__ == \"__main__\":`{where}, because Python's spawn start method re-imports the "
        "script in every new process; add the guard, or pass workers=0 (and no devices)"
    )


def leave_now(code: int = 0) -> None:
    """End this process at once with ``code``, after flushing ``sys.stdout`` and ``sys.stderr``,
    without the interpreter's teardown.

    For a worker or device process whose results have reached the parent: tearing down
    the libraries it loaded takes longer than the last unit's work (LLVM's, loaded by the
    compiled BPE encoder, 0.1–0.3 s; torch's 0.5 s; a CUDA context more), and the parent
    waits for it before the scan can finish. Nothing else is finished: files must be
    closed (every output of a scan is, before its result is sent), queues flushed, and
    Python's ``atexit`` handlers do not run unless this is itself one (a worker registers
    it first, so it runs after the handlers of the libraries it loads).
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def settle_child_process() -> None:
    """Set up a worker or device process: SIGINT ignored, tqdm's lock a thread lock.

    A terminal's Ctrl-C reaches the whole process group: each child would print its own
    ``KeyboardInterrupt`` traceback, while the parent, which gets it too, already stops
    them (pool shutdown, ``terminate``) and keeps what is finished. tqdm's default lock is a
    multiprocessing ``RLock``, a named semaphore that a child leaving through
    :func:`leave_now` never unlinks: the resource tracker then warned of "leaked semaphore
    objects" at the end of every ``--devices`` run.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())  # this process's bars, if any, are its own threads'


def init_worker(state: dict[str, Any], setup: Callable[[dict[str, Any]], None] | None = None,
                link: dict[str, Any] | None = None) -> None:
    """Initializer of a worker process: tie it to its parent (``link``: :func:`parent_link`),
    one core each, then ``setup(state)`` fills :data:`worker_state`.

    When the pool shuts it down the worker leaves through :func:`leave_now` (an ``atexit``
    handler registered first, so it runs last): the scan waits for its workers to exit,
    and a worker that had loaded the compiled BPE encoder spent 0.24–0.28 s in LLVM's
    teardown, a third of a 16-Mb scan's tail (docs/scale-log.md, "The workers' exit"). The exit status is then 0;
    the pool does not read it (a worker that dies early breaks the pool through its pipe).
    """
    import atexit

    settle_child_process()
    atexit.register(leave_now)
    if link is not None:
        die_with_parent(link["parent_pid"], pdeathsig=link["pdeathsig"])
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    worker_state.clear()
    worker_state.update(state)
    if setup is not None:
        setup(worker_state)


class Ahead(Iterator[tuple[T, R]], Generic[T, R]):
    """What :func:`ahead` yields: ``(item, f(item))`` in input order; with worker processes,
    :meth:`submit` also runs other work on them (the scan's writer work)."""

    def __init__(self, it: Iterator[tuple[T, R]], pool: Executor | None) -> None:
        self._it, self._pool = it, pool

    def __next__(self) -> tuple[T, R]:
        return next(self._it)

    @property
    def processes(self) -> bool:
        """Whether :meth:`submit` runs in worker processes."""
        return self._pool is not None

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        """``fn(*args)`` (a module-level function; it reads :data:`worker_state`) on the
        workers, queued behind the planning already submitted.

        ``args`` are handed over: once they are pickled for the worker this process keeps no
        reference to them (:class:`_Handoff`), so a unit's outputs waiting in the pipe to a
        busy worker are held once, as bytes, not also as the arrays they were made from.
        """
        if self._pool is None:
            raise RuntimeError("no worker processes to submit to")
        return self._pool.submit(_run_handed, _Handoff(fn, args))


class _Handoff:
    """A call for a worker process that lets go of its arguments once pickled.

    A process pool keeps every submitted call's arguments until its result is back, and
    its queue holds them pickled until the worker takes them: two copies of a large
    argument per call waiting for a busy worker. Pickling this object (once, on the
    queue's feeder thread) takes the payload out of it; the worker receives the plain
    ``(fn, args)`` tuple (:func:`_run_handed`).
    """

    __slots__ = ("payload",)

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.payload: tuple[Callable[..., Any], tuple[Any, ...]] | None = (fn, args)

    def __reduce__(self) -> tuple[Any, ...]:
        payload, self.payload = self.payload, None
        if payload is None:
            raise RuntimeError("a call handed to a worker process was pickled twice")
        return (tuple, (payload,))


def _run_handed(call: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    """In the worker: the :class:`_Handoff`'s call, unpickled as a plain tuple."""
    fn, args = call
    return fn(*args)


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
) -> Iterator[Ahead[T, R]]:
    """``(item, f(item))`` in input order, computed ahead of the consumer (an :class:`Ahead`).

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
        Items in flight at most (default ``workers + 1``: a call per worker and one result
        waiting, which kept a scan's emulated device as busy as ``2 × workers`` with fewer
        planned units held, docs/scale-log.md; 1 for a helper thread).
    send
        What of an item travels to a worker (default: the item); the consumer gets the
        original item back.
    """
    if workers <= 0 and not thread:
        yield Ahead(((item, local(item)) for item in items), None)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool: Executor
    link: dict[str, Any] = {}
    if workers > 0:
        if remote is None:
            raise ValueError("workers > 0 needs a module-level remote function")
        check_can_spawn("worker processes (workers=N, --workers)")
        # initargs are pickled when a worker starts, which is inside submit() on the
        # consuming thread: ``link`` is refreshed before each submit to name that thread
        try:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                       initializer=init_worker, initargs=(state or {}, setup, link))
        except OSError as err:
            raise start_error("worker processes (workers=N, --workers)", err) from None
        fn, limit = remote, lookahead or workers + 1
    else:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-plan")
        fn, limit = local, lookahead or 1
    encode = send or (lambda x: x)

    def gen() -> Iterator[tuple[T, R]]:
        pending: deque[tuple[T, Future]] = deque()

        def take() -> tuple[T, R]:
            # the future goes with this frame: a suspended generator keeps its locals, and a
            # finished future its result, which the consumer may want to let go of meanwhile
            first, fut = pending.popleft()
            return first, fut.result()  # a worker's error is raised here

        for item in items:
            link.update(parent_link())
            pending.append((item, pool.submit(fn, encode(item) if workers > 0 else item)))
            if len(pending) > limit:
                yield take()
        while pending:
            yield take()

    try:
        yield Ahead(gen(), pool if workers > 0 else None)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
