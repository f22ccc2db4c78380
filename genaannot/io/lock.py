"""Advisory locks on a scan's ``-o``: one writer per output, shards of one run side by side.

Lock files live beside the outputs (:func:`genaannot.io.naming.lock_name`), not inside
``OUT.parts/``, so that they survive the parts directory being cleared and recreated:

``.OUT.lock``
    held exclusively by a whole run (``scan`` without ``--shard``, ``merge -o OUT``) from
    before the parts directory is prepared until the outputs are committed; held *shared*
    by every ``--shard I/N`` run, so that shards of one run (disjoint parts) work
    concurrently while a whole run on the same ``-o`` is refused, and vice versa.
``.OUT.shard-I-of-N.lock``
    held exclusively by shard ``I/N``: the same shard twice is refused.
``.OUT.assemble.lock``
    held exclusively while a shard that found every part assembles the outputs (another
    shard finishing at the same moment waits for it, then writes the same bytes again).

The locks are :func:`fcntl.flock` locks: they die with the process (``kill -9``
included), so a lock file left behind is never "stale" and needs no detection; a holder
removes its file when it lets go, and a taker checks that the file it locked is still the
one at that path (else it retries), so removal races are harmless. ``flock`` works on
local file systems and on NFS (Linux emulates it with NFS byte-range locks, which need
lockd / NFSv4). Where the file system refuses locks (``ENOLCK``, ``EOPNOTSUPP``), the run
goes on *unlocked* with a warning: concurrent runs on one ``-o`` are then not detected.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .atomic import OutputError
from .naming import lock_name, track_stem

__all__ = ["OutputBusy", "FileLock", "take_lock", "output_lock", "assembly_lock"]

#: errors that mean "this file system does not lock", not "someone holds it"
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


class OutputBusy(OutputError):
    """Another process holds the lock of this ``-o``."""


@dataclass
class FileLock:
    """A held flock lock (``fd`` None: the file system does not lock; nothing is held)."""

    path: Path
    fd: int | None
    shared: bool

    def release(self) -> None:
        """Let go; the file is removed when nobody else can hold it (an exclusive lock)."""
        import fcntl

        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            exclusive = not self.shared
            if self.shared:  # only an exclusive holder may unlink: try to become one
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    exclusive = True
                except OSError:
                    pass
            if exclusive:
                try:
                    if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                        os.unlink(self.path)  # while held: a taker re-checks the inode
                except OSError:
                    pass
        finally:
            os.close(fd)


def _holder(path: Path) -> dict | None:
    try:
        text = path.read_text()
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def take_lock(path: str | Path, *, shared: bool = False, wait: bool = False) -> FileLock | None:
    """Lock ``path`` (created when missing); ``None`` when another process holds it and not ``wait``.

    An exclusive holder writes its pid, host and start time into the file (for the
    message another run shows); a shared holder empties it.
    """
    import fcntl

    path = Path(path)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise OutputError(f"{path}: cannot create the lock file ({err.strerror})") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            if err.errno in _NO_LOCKS:
                warnings.warn(f"{path}: this file system does not support locks ({err.strerror}); running "
                              "unlocked: a second run on the same -o would not be detected", stacklevel=3)
                return FileLock(path, None, shared)
            raise OutputError(f"{path}: cannot lock ({err.strerror})") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # its holder removed it between our open and flock: lock the new file
            os.close(fd)
            continue
        # an exclusive holder says who it is; a shared one clears what a dead holder left
        info = "" if shared else json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        return FileLock(path, fd, shared)


def _who(path: Path, output: Path) -> str:
    holders = [h for h in [_holder(path)] if h]
    if not holders:  # shared holders (shards) leave the main file empty: ask their own files
        stem = lock_name(output)
        holders = [h for f in sorted(stem.parent.glob(f"{stem.name[:-len('.lock')]}.shard-*.lock"))
                   for h in [_holder(f)] if h]
    if not holders:
        return ""
    return " (" + "; ".join(f"pid {h.get('pid')} on {h.get('host')}, started {h.get('started')}"
                            for h in holders) + ")"


def _busy(path: Path, output: Path, what: str) -> OutputBusy:
    return OutputBusy(f"another genaannot {what} is writing {track_stem(output)}{_who(path, output)}; wait for it "
                      "or choose another -o")


@contextmanager
def output_lock(output: str | Path, *, shard: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold ``output``'s lock for a whole run, or for shard ``(i, n)`` of one (module docstring).

    Raises
    ------
    OutputBusy
        At once (no waiting) when a run that cannot share ``output`` holds it.
    """
    output = Path(output)
    main = lock_name(output)
    held: list[FileLock] = []
    try:
        lk = take_lock(main, shared=shard is not None)
        if lk is None:
            raise _busy(main, output, "scan")
        held.append(lk)
        if shard is not None:
            own = lock_name(output, f"shard-{shard[0]}-of-{shard[1]}")
            lk = take_lock(own)
            if lk is None:
                raise _busy(own, output, f"scan --shard {shard[0]}/{shard[1]}")
            held.append(lk)
        yield
    finally:
        for lk in reversed(held):
            lk.release()


@contextmanager
def assembly_lock(output: str | Path) -> Iterator[None]:
    """Hold the lock under which a shard assembles ``output``'s files (waits for another shard)."""
    lk = take_lock(lock_name(output, "assemble"), wait=True)
    try:
        yield
    finally:
        if lk is not None:
            lk.release()
