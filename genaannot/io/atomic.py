"""Atomic output: the one place where temporary files are created and moved into place.

Every writer in :mod:`genaannot.io` writes into a temporary file in the destination
directory and moves it onto the final name with :func:`os.replace` (atomic on POSIX within
one file system), so a reader, or a run that is killed, never sees a half-written file under
the final name. A failed write removes its temporary file.

* :class:`AtomicFile`: one file (plus *companions*, files that tools derive from the
  temporary name, such as bgzip's ``.gz`` or tabix's ``.tbi``);
* :func:`publish`: chmod a finished temporary file and move it into place (used by
  :class:`AtomicFile`, and for a companion that gets a final name of its own);
* :func:`write_bytes_atomic`, :func:`write_text_atomic`, :func:`write_json_atomic`,
  :func:`write_lines_atomic`, :func:`save_npz_atomic`: whole files at once;
* :class:`AtomicDir`: a directory written under a temporary name and renamed;
* :func:`staged_files`: several files written into a staging directory and moved in one
  by one;
* :func:`scratch_dir`: a hidden working directory beside an output, removed in any case
  (partial results that are combined into the output);
* :func:`check_writable` and :class:`OutputError`: fail early with a clear message.

File modes
----------
``mode=0o644`` (the default) gives ``rw-r--r--`` whatever the umask (track, report and hub
outputs); ``mode=None`` gives what a plain ``open(path, "w")`` would (``0o666`` minus the
umask: tables, VCFs, checkpoints, FASTA indexes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "OutputError",
    "check_writable",
    "publish",
    "AtomicFile",
    "AtomicDir",
    "staged_files",
    "scratch_dir",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "write_lines_atomic",
    "save_npz_atomic",
]


class OutputError(OSError):
    """An output that cannot be written."""


def check_writable(path: str | Path) -> Path:
    """Fail early, with a clear message, when ``path``'s directory cannot take new files.

    A missing output directory is created (``mkdir -p``), as ``-o out/run.bw`` on a fresh
    checkout expects; a path whose parent exists as a file, or cannot be created, is an error.

    Parameters
    ----------
    path : str or Path
        The output file.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputError
        The directory cannot be created or is not writable.
    """
    path = Path(path)
    d = path.parent if str(path.parent) else Path(".")
    if not d.is_dir():
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"{path}: cannot create output directory {d} ({err.strerror or err})") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: output directory {d} is not writable; choose another -o")
    return path


def _umask_mode() -> int:
    # os.umask can only be read by setting it; put the old value straight back
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def publish(tmp: str | Path, final: str | Path, *, mode: int | None = 0o644) -> None:
    """Give a finished temporary file its mode and move it onto ``final`` (atomic).

    Parameters
    ----------
    tmp : str or Path
        The finished file, in ``final``'s directory.
    final : str or Path
        The name it gets; an existing file there is replaced.
    mode : int or None
        Permission bits; ``None``: ``0o666`` minus the umask (what ``open`` would give).
    """
    # mkstemp creates 0o600 files: without the chmod, outputs would be private to the user
    os.chmod(tmp, _umask_mode() if mode is None else mode)
    os.replace(tmp, final)


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on :meth:`commit`.

    Parameters
    ----------
    path : str or Path
        The final name.
    mode : int or None
        Permission bits given on commit (see :func:`publish`).
    suffix : str
        End of the temporary name (``.{name}.XXXXXXXX{suffix}``); tools that choose a format
        by the suffix (pysam, tabix) need the final one.
    check : bool
        Run :func:`check_writable` first (which creates a missing directory). Writers with
        their own message for a missing directory check it themselves and pass ``False``.

    Attributes
    ----------
    path : Path
        The final name.
    tmp : Path
        The temporary file (created empty, mode 0o600).

    Used as a context manager, the file is committed when the block ends normally and
    removed when it raises.
    """

    def __init__(self, path: str | Path, *, mode: int | None = 0o644, suffix: str = ".tmp", check: bool = True) -> None:
        self.path = check_writable(path) if check else Path(path)
        self.mode = mode
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent or ".")
        os.close(fd)
        self.tmp = Path(name)
        self._companions: list[Path] = []

    def companion(self, suffix: str) -> Path:
        """``tmp`` + ``suffix``: a file a tool derives from the temporary name (removed by :meth:`abort`)."""
        p = Path(str(self.tmp) + suffix)
        self._companions.append(p)
        return p

    def commit(self, *, source: str | Path | None = None) -> None:
        """Move the finished file onto :attr:`path`.

        Parameters
        ----------
        source : str or Path, optional
            A companion to publish instead of :attr:`tmp` (a tool wrote the output there);
            :meth:`abort` removes what is left afterwards.
        """
        publish(self.tmp if source is None else source, self.path, mode=self.mode)

    def abort(self) -> None:
        """Remove the temporary file and its companions (after :meth:`commit`: the leftovers)."""
        for p in (self.tmp, *self._companions):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.abort()


class AtomicDir:
    """A directory written as ``.{name}.tmp`` beside ``path`` and renamed onto it on :meth:`commit`.

    The temporary directory is not created (the writer makes it, e.g. with ``mkdir(exist_ok=True)``);
    one left behind by a killed run is removed first. :meth:`commit` removes an existing
    ``path`` and renames the new one into place.

    Parameters
    ----------
    path : str or Path
        The final directory; its parent must exist.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def commit(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.replace(self.tmp, self.path)  # the directory appears complete or not at all

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def staged_files(directory: str | Path) -> Iterator[Path]:
    """A staging directory inside ``directory``; its files are moved in when the block ends.

    Every file is written completely before the first is moved, then each is moved onto
    ``directory/NAME`` with :func:`os.replace` (in name order), so a crash never leaves a
    half-written file; the staging directory is removed in any case. File modes are those
    the writer gave them.

    Parameters
    ----------
    directory : str or Path
        Created when missing.

    Yields
    ------
    Path
        The staging directory (``directory/.tmp-save-XXXXXXXX``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-save-", dir=directory))
    try:
        yield tmp
        for p in sorted(tmp.iterdir()):
            os.replace(p, directory / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(directory: str | Path, *, prefix: str = ".genaannot-") -> Iterator[Path]:
    """A hidden working directory inside ``directory`` (which must exist), removed when the
    block ends, whether it succeeded or not.

    Raises
    ------
    OutputError
        When ``directory`` does not exist or cannot take a new directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise OutputError(f"output directory {directory} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    except OSError as err:
        raise OutputError(f"{directory}: cannot create a working directory ({err.strerror or err})") from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(
    path: str | Path, data: bytes, *, mode: int | None = 0o644, fsync: bool = False, check: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
    data : bytes
    mode : int or None
        See :func:`publish`.
    fsync : bool
        Flush to disk before the rename (the file's presence then means it is complete even
        after a power cut).
    check : bool
        See :class:`AtomicFile`.

    Returns
    -------
    Path
        ``path``.
    """
    with AtomicFile(path, mode=mode, check=check) as f, open(f.tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return f.path


def write_text_atomic(path: str | Path, text: str, *, mode: int | None = 0o644, check: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (the locale's encoding, as ``Path.write_text``)."""
    with AtomicFile(path, mode=mode, check=check) as f:
        f.tmp.write_text(text)
    return f.path


def write_json_atomic(path: str | Path, obj: Any, *, mode: int | None = 0o644) -> Path:
    """Write ``obj`` as indented JSON with a final newline, atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", mode=mode)


def write_lines_atomic(path: str | Path, lines: Iterable[str], *, header: str | None = None) -> Path:
    """Write ``lines`` (no newlines; each gets one) after an optional ``header`` line, atomically."""
    with AtomicFile(path) as f, open(f.tmp, "w") as fh:
        if header:
            fh.write(header + "\n")
        for line in lines:
            fh.write(line + "\n")
    return f.path


def save_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray], *, level: int = 1) -> Path:
    """Write a deflated npz atomically (fsynced): its presence marks a finished part.

    ``level`` is the zlib level (numpy's ``savez_compressed`` uses 6, several times slower
    for a few per cent smaller parts); :func:`numpy.load` reads either.
    """
    import zipfile

    import numpy as np

    with AtomicFile(path) as f, open(f.tmp, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
            for name, arr in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return f.path
