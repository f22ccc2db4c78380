"""Atomic output: the one place where temporary files are created and moved into place.

Every writer in :mod:`genaannot.io` writes into a temporary file in the destination
directory and moves it onto the final name with :func:`os.replace` (atomic on POSIX within
one file system), so a reader, or a run that is killed, never sees a half-written file under
the final name. A failed write removes its temporary file. An output named through a
symbolic link replaces the file the link names; one that is a device, FIFO or socket
(``/dev/null``, ``>(cmd)``) is written into once finished, never renamed over.

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
* :class:`OutputSet`: several files committed together (a run's tracks, calls and
  manifest): staged, journalled, old set removed, renamed in with the manifest last;
  :meth:`OutputSet.recover` finishes or cleans up after a run killed mid-commit;
* :func:`check_writable` and :class:`OutputError`: fail early with a clear message;
* :func:`check_not_inputs` and :class:`OutputIsInput`: no output may be one of the run's
  input files (same path, or the same file through a hard or symbolic link);
  :func:`output_error`: an :class:`OSError` while writing as an :class:`OutputError` that
  names the file (with a hint when the disk or a quota is full).

File modes
----------
``mode=0o644`` (the default) gives ``rw-r--r--`` whatever the umask (track, report and hub
outputs); ``mode=None`` gives what a plain ``open(path, "w")`` would (``0o666`` minus the
umask: tables, VCFs, checkpoints, FASTA indexes).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "OutputError",
    "OutputIsInput",
    "OutputSet",
    "StagedLines",
    "check_not_inputs",
    "input_files",
    "output_error",
    "is_write_failure",
    "check_writable",
    "is_stream",
    "through_links",
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


class OutputIsInput(OutputError):
    """An output that would overwrite one of the run's inputs (a usage error: choose another name)."""


#: errno values that mean "no room": disk full, quota exceeded, file-size limit
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
FULL_HINT = "disk full or quota exceeded: free space or choose another -o"


#: how libraries that do not raise OSError (torch.save, safetensors) say the disk is full
_FULL_TEXT = re.compile(r"no space left|os error (28|122)|quota exceeded|file write failed|unexpected pos", re.I)


def is_write_failure(err: BaseException) -> bool:
    """Whether ``err`` is a failed write: an :class:`OSError`, or the ``RuntimeError`` /
    ``SafetensorError`` torch and safetensors raise when the disk fills up."""
    return isinstance(err, OSError) or bool(
        (isinstance(err, RuntimeError) or "Safetensor" in type(err).__name__) and _FULL_TEXT.search(str(err)))


def output_error(path: str | Path, err: BaseException, *, doing: str = "cannot write") -> OutputError:
    """``err`` as an :class:`OutputError` naming ``path`` and the OS reason.

    An :class:`OutputError` is returned as it is. ENOSPC, EDQUOT and EFBIG (or a torch /
    safetensors error that says the disk is full, see :func:`is_write_failure`) get the hint
    :data:`FULL_HINT`; the result keeps ``err``'s ``errno``.

    Parameters
    ----------
    path : str or Path
        The output the user asked for (not the temporary file).
    err : BaseException
        What the write raised.
    doing : str
        What failed, e.g. ``"cannot write"``, ``"cannot save part"``.
    """
    if isinstance(err, OutputError):
        return err
    code = getattr(err, "errno", None)
    reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    reason = re.sub(r"\s*\n\s*", " ", str(reason)).strip()
    msg = f"{path}: {doing} ({reason})"
    if code in _FULL or (not isinstance(err, OSError) and _FULL_TEXT.search(reason)):
        msg += f"; {FULL_HINT}"
    out = OutputError(msg)
    out.errno = code
    return out


@contextlib.contextmanager
def _os_errors(path: str | Path, *, doing: str = "cannot write") -> Iterator[None]:
    """Turn an :class:`OSError` raised in the block into :func:`output_error`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise output_error(path, err, doing=doing) from None


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


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same inode (hard or symbolic links
    included), or, when one does not exist yet, the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def input_files(path: str | Path | None) -> list[Path]:
    """The files a run reads at ``path``: the file itself, or a directory's files (a
    checkpoint directory, a scan's parts directory); nothing for ``None``, ``-`` (stdin),
    a hub id or a missing path."""
    if path is None or str(path) == "-":
        return []
    p = Path(path)
    try:
        if p.is_dir():
            return sorted(e for e in p.iterdir() if e.is_file())
    except OSError:
        return []
    return [p] if p.is_file() else []


def check_not_inputs(outputs: Iterable[str | Path | None],
                     inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Refuse to write any of ``outputs`` onto one of ``inputs``, or two outputs onto one
    file, before anything is written.

    An atomic rename onto an input would replace the user's data with the run's result
    (``score in.vcf --tsv in.vcf``, ``scan g.fa -o g.fa``), and one output onto another
    would lose the first (``score -o x.vcf --tsv x.vcf``, ``--tsv x.vcf.gz.tbi``); a hard
    or symbolic link to a file counts as the file. Streams (:func:`is_stream`) may repeat.

    Parameters
    ----------
    outputs : iterable of str, Path or None
        Every file the run will write (``None`` and ``-``, stdout, are skipped).
    inputs : iterable of (str, str or Path or None)
        ``(what, path)``: what the input is (``"FASTA"``, ``"VCF index"``…) and its path;
        ``None``, ``-`` and paths that do not exist are skipped; a directory stands for
        its files (:func:`input_files`).

    Raises
    ------
    OutputIsInput
        Naming the output, the input and what it is.
    """
    files = [(what, f) for what, path in inputs for f in input_files(path)]
    seen: list[Path] = []
    for out in outputs:
        if out is None or str(out) == "-":
            continue
        o = Path(out)
        if not is_stream(o):  # -o /dev/null --tsv /dev/null is fine
            for earlier in seen:
                if _same_file(o, earlier):
                    raise OutputIsInput(f"{o}: also the run's output {earlier}; one would overwrite the other: "
                                        "give each output its own name")
            seen.append(o)
        for what, f in files:
            if _same_file(o, f):
                same = "" if os.path.abspath(o) == os.path.abspath(f) else " (the same file)"
                raise OutputIsInput(f"{o}: this output would overwrite the input {what} {f}{same}; "
                                    "choose another output name")


def is_stream(path: str | Path) -> bool:
    """Whether ``path`` is an existing file that cannot be replaced by a rename: a device
    (``/dev/null``, ``/dev/stdout``), a FIFO (``mkfifo``, a shell's ``>(...)``) or a socket.
    Such an output is written into (:class:`AtomicFile`), never renamed over."""
    try:
        st = os.stat(path)  # through links: /dev/stdout and /dev/fd/N are links to such files
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


def through_links(path: str | Path) -> Path:
    """The file a symbolic link ``path`` points to (a chain followed to its end), else ``path``:
    an output written through a link replaces the file it names and keeps the link."""
    p = Path(path)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


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
        The final name. A symbolic link is written through (the file it names is replaced,
        the link kept); a device, FIFO or socket (:func:`is_stream`: ``/dev/null``,
        ``/dev/stdout``, ``>(cmd)``) is written into on commit, from a temporary file in the
        system's temporary directory: it cannot be renamed over (as root that would replace
        ``/dev/null`` itself with a regular file).
    mode : int or None
        Permission bits given on commit (see :func:`publish`; not for a stream).
    suffix : str
        End of the temporary name (``.{name}.XXXXXXXX{suffix}``); tools that choose a format
        by the suffix (pysam, tabix) need the final one.
    check : bool
        Run :func:`check_writable` first (which creates a missing directory). Writers with
        their own message for a missing directory check it themselves and pass ``False``.

    Attributes
    ----------
    path : Path
        The final name (a link's target).
    stream : bool
        The final name is a stream (device, FIFO, socket): written into, no companions.
    tmp : Path
        The temporary file (created empty, mode 0o600).

    Used as a context manager, the file is committed when the block ends normally and
    removed when it raises.
    """

    def __init__(self, path: str | Path, *, mode: int | None = 0o644, suffix: str = ".tmp", check: bool = True) -> None:
        self.stream = is_stream(path)
        if self.stream:
            self.path, where = Path(path), None  # the system's temporary directory
        else:
            target = through_links(path)
            self.path = check_writable(target) if check else target
            where = self.path.parent or "."
        self.mode = mode
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=where)
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
        src = self.tmp if source is None else source
        if not self.stream:
            publish(src, self.path, mode=self.mode)
            return
        with open(src, "rb") as fin, open(self.path, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)

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


#: the random part of a temporary name: 12 hex digits (OutputSet), or mkstemp's 8 characters
#: (AtomicFile): what recover() recognises as a temporary file of one of its names
_RUN_RE = r"(?:[0-9a-f]{12}|[a-z0-9_]{8})"


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class StagedLines:
    """Lines written to a staged file of an :class:`OutputSet` as they come (each gets a
    newline), so that they need not be held until the end; :meth:`close` before the set's
    commit. A write error is an :class:`OutputError` naming the final file. ``count``: the
    lines written (the header not counted)."""

    def __init__(self, tmp: Path, *, name: Path, header: str | None = None) -> None:
        self.tmp, self.name = tmp, name
        with _os_errors(name):
            self._fh = open(tmp, "w")  # noqa: SIM115 - closed in close()
            if header:
                self._fh.write(header + "\n")
        self.count = 0

    def write(self, lines: Iterable[str]) -> None:
        with _os_errors(self.name):
            for line in lines:
                self._fh.write(line + "\n")
                self.count += 1

    def close(self) -> None:
        """Flush and close (the set's commit fsyncs it); again: nothing."""
        if not self._fh.closed:
            with _os_errors(self.name):
                self._fh.close()

    def discard(self) -> None:
        """Close without reporting errors (the set's abort removes the file)."""
        with contextlib.suppress(OSError):
            self._fh.close()


class OutputSet:
    """Several files of one run committed together, with a *marker* file (the manifest) last.

    Writers write into :meth:`stage` paths (hidden names ``.{name}.{run}.tmp`` beside the
    final ones); :meth:`commit` then

    a. fsyncs every staged file (and gives it its mode),
    b. writes and fsyncs the journal ``.{marker}.commit`` (staged → final pairs),
    c. removes the old marker first, then the old members of the set (the new finals and
       ``remove``), and fsyncs the directory,
    d. renames each staged file onto its final name, the marker last,
    e. fsyncs the directory,
    f. removes the journal.

    A crash at any point leaves the old set, or members of one set without a marker; never
    a marker beside files of another run, and never old and new members side by side (all
    old members are gone before the first new one appears). :meth:`recover`, at the start
    of the next run, rolls a journal forward (all staged files were complete when it was
    written) and removes temporary files that killed runs left under this set's names.
    An :class:`OSError` at any step becomes an :class:`OutputError` naming the file, after
    everything new (staged, renamed, journal) is removed.

    Parameters
    ----------
    marker : str or Path
        The file whose presence says that the set is complete (a scan's manifest); every
        member lives in its directory (one file system, so renames are atomic).

    Notes
    -----
    Two runs writing the same output at the same time are not supported: each one's
    :meth:`recover` would remove the other's temporary files.
    """

    def __init__(self, marker: str | Path) -> None:
        self.marker = Path(marker)
        self.directory = self.marker.parent
        self.journal = self.directory / f".{self.marker.name}.commit"
        self.run = secrets.token_hex(6)
        self._staged: dict[Path, tuple[Path, int | None]] = {}  # final -> (staged, mode)
        self._journal_tmp = self.directory / f".{self.marker.name}.commit.{self.run}.tmp"
        self._placed: list[Path] = []
        self._done = False

    # -- staging ----------------------------------------------------------------------------
    def stage(self, final: str | Path, *, suffix: str = "", mode: int | None = 0o644) -> Path:
        """The temporary path a writer writes ``final`` to (not created here).

        Parameters
        ----------
        final : str or Path
            A member of the set, in the marker's directory.
        suffix : str
            Appended to the temporary name, for tools that choose a format by it.
        mode : int or None
            Permission bits given on commit (see :func:`publish`).
        """
        final = Path(final)
        if final.parent != self.directory:
            raise ValueError(f"{final}: not in the output set's directory {self.directory}")
        if is_stream(final):  # a rename would replace the device or FIFO itself
            raise OutputError(f"{final}: is a device, FIFO or socket, not a file; the files of a run are "
                              "committed together by renaming: choose a file name for the output")
        if final in self._staged:
            return self._staged[final][0]
        tmp = self.directory / f".{final.name}.{self.run}.tmp{suffix}"
        self._staged[final] = (tmp, mode)
        return tmp

    def stage_text(self, final: str | Path, text: str) -> Path:
        """Stage ``final`` with ``text`` (the locale's encoding, as ``Path.write_text``)."""
        tmp = self.stage(final)
        with _os_errors(final):
            tmp.write_text(text)
        return tmp

    def stage_lines(self, final: str | Path, lines: Iterable[str], *, header: str | None = None) -> Path:
        """Stage ``final`` with ``lines`` (each gets a newline) after an optional ``header`` line."""
        out = self.open_lines(final, header=header)
        try:
            out.write(lines)
        except BaseException:
            out.discard()
            raise
        out.close()
        return out.tmp

    def open_lines(self, final: str | Path, *, header: str | None = None) -> StagedLines:
        """Stage ``final`` and open it for lines written as they come (:class:`StagedLines`),
        after an optional ``header`` line; :meth:`abort` removes it like any staged file."""
        return StagedLines(self.stage(final), name=Path(final), header=header)

    @property
    def staged(self) -> dict[Path, Path]:
        """Final name -> staged temporary path, in staging order."""
        return {f: tmp for f, (tmp, _mode) in self._staged.items()}

    @property
    def finals(self) -> list[Path]:
        """The staged members' final names, the marker last."""
        return sorted(self._staged, key=lambda p: p == self.marker)

    # -- commit -----------------------------------------------------------------------------
    def commit(self, *, remove: Iterable[str | Path] = ()) -> None:
        """Move the staged files in together, the marker last (see the class docstring).

        Parameters
        ----------
        remove : iterable of str or Path
            Old members that are not in the new set (an older run's other tracks); removed
            with the old set, after the old marker.

        Raises
        ------
        OutputError
            Naming the file that failed; nothing new is left under the final names.
        """
        if self.marker not in self._staged:
            raise ValueError(f"{self.marker}: the marker must be staged before commit")
        finals = self.finals
        old = [Path(p) for p in remove if Path(p) not in self._staged and Path(p) != self.marker]
        current = self.marker
        try:
            for final in finals:  # (a) complete on disk before the journal vouches for them
                current = final
                tmp, mode = self._staged[final]
                os.chmod(tmp, _umask_mode() if mode is None else mode)
                _fsync_path(tmp)
            current = self.journal  # (b)
            body = {"run": self.run, "marker": self.marker.name, "remove": [p.name for p in old],
                    "pairs": [[self._staged[f][0].name, f.name] for f in finals]}
            with open(self._journal_tmp, "w") as fh:
                fh.write(json.dumps(body) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(self._journal_tmp, self.journal)
            _fsync_path(self.directory, directory=True)
            # (c) the marker first: from here on no marker claims an old or mixed set
            for p in [self.marker, *old, *finals]:
                current = p
                _unlink(p)
            current = self.directory
            _fsync_path(self.directory, directory=True)
            for final in finals:  # (d) the marker last
                current = final
                os.replace(self._staged[final][0], final)
                self._placed.append(final)
            current = self.directory  # (e)
            _fsync_path(self.directory, directory=True)
            current = self.journal  # (f)
            os.unlink(self.journal)
        except OSError as err:
            self._rollback()
            raise output_error(current, err) from None
        except BaseException:
            self._rollback()
            raise
        self._done = True

    def _rollback(self) -> None:
        # the marker first, so that a half-removed set never claims completeness
        for p in sorted(self._placed, key=lambda p: p != self.marker):
            with contextlib.suppress(OSError):
                _unlink(p)
        self._placed.clear()
        self.abort()
        with contextlib.suppress(OSError):
            _unlink(self.journal)

    def abort(self) -> None:
        """Remove every staged file and a journal being written (never a final name)."""
        for tmp, _mode in self._staged.values():
            with contextlib.suppress(OSError):
                _unlink(tmp)
        with contextlib.suppress(OSError):
            _unlink(self._journal_tmp)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Abort unless committed; a plain :class:`OSError` becomes an :class:`OutputError`."""
        if exc_type is None or self._done:
            return
        self.abort()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise output_error(getattr(exc, "filename", None) or self.marker, exc) from None

    # -- recovery ---------------------------------------------------------------------------
    def recover(self, finals: Iterable[str | Path] = ()) -> None:
        """Finish or undo what a killed run left, before this run writes anything.

        A journal is rolled forward when every member is there, staged or renamed (its staged
        files were complete when it was written); otherwise the staged files and the marker
        are removed (members without a marker: an incomplete set). Then temporary files of
        the marker, the journal and ``finals`` (``.{name}.{12 hex or 8 mkstemp characters}
        .tmp[suffix]``) are removed; nothing else is touched, and this set's own staged
        files are kept.

        Parameters
        ----------
        finals : iterable of str or Path
            The set's members (their names in the marker's directory are used).

        Raises
        ------
        OutputError
            When the directory cannot be changed.
        """
        with _os_errors(self.journal, doing="cannot recover an interrupted commit"):
            if self.journal.is_file():
                self._roll_forward()
            # the journal's own temporary file is .{marker}.commit.{run}.tmp
            names = {self.marker.name, f"{self.marker.name}.commit"} | {Path(f).name for f in finals}
            stale = re.compile(
                "|".join(rf"\.{re.escape(n)}\.{_RUN_RE}\.tmp(?:\..*)?" for n in sorted(names)), re.DOTALL)
            own = {tmp.name for tmp, _ in self._staged.values()} | {self._journal_tmp.name}
            if not self.directory.is_dir():
                return
            for entry in os.scandir(self.directory):
                if entry.name not in own and stale.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    _unlink(Path(entry.path))

    def _roll_forward(self) -> None:
        d = self.directory
        try:
            body = json.loads(self.journal.read_text())
            pairs = [(d / s, d / f) for s, f in body["pairs"]]
            old = [d / n for n in body.get("remove", [])]
            marker = d / body["marker"]
        except (ValueError, KeyError, TypeError):  # written by rename, so never half: not ours
            _unlink(self.journal)
            return
        if all("/" not in p.name and p.parent == d for p, _ in pairs) and all(
            s.exists() or f.exists() for s, f in pairs
        ):
            if any(s.exists() for s, _ in pairs):
                for p in [marker, *old, *(f for s, f in pairs if s.exists())]:
                    _unlink(p)
                _fsync_path(d, directory=True)
                for s, f in pairs:  # journal order: the marker last
                    if s.exists():
                        os.replace(s, f)
                _fsync_path(d, directory=True)
        else:  # a member is lost (a rollback was killed): no marker may claim the set
            _unlink(marker)
            for s, _ in pairs:
                _unlink(s)
        os.unlink(self.journal)


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
    with _os_errors(path), AtomicFile(path, mode=mode, check=check) as f, open(f.tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return f.path


def write_text_atomic(path: str | Path, text: str, *, mode: int | None = 0o644, check: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (the locale's encoding, as ``Path.write_text``)."""
    with _os_errors(path), AtomicFile(path, mode=mode, check=check) as f:
        f.tmp.write_text(text)
    return f.path


def write_json_atomic(path: str | Path, obj: Any, *, mode: int | None = 0o644) -> Path:
    """Write ``obj`` as indented JSON with a final newline, atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", mode=mode)


def write_lines_atomic(path: str | Path, lines: Iterable[str], *, header: str | None = None) -> Path:
    """Write ``lines`` (no newlines; each gets one) after an optional ``header`` line, atomically."""
    with _os_errors(path), AtomicFile(path) as f, open(f.tmp, "w") as fh:
        if header:
            fh.write(header + "\n")
        for line in lines:
            fh.write(line + "\n")
    return f.path


def save_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray], *, level: int = 1) -> Path:
    """Write a deflated npz atomically (fsynced): its presence marks a finished part.

    ``level`` is the zlib level (numpy's ``savez_compressed`` uses 6, several times slower
    for a few per cent smaller parts); :func:`numpy.load` reads either.

    Raises
    ------
    OutputError
        Naming ``path`` (with a hint when the disk or a quota is full); nothing is left
        under ``path`` or in a temporary file.
    """
    import zipfile

    import numpy as np

    with _os_errors(path, doing="cannot save"), AtomicFile(path) as f, open(f.tmp, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
            for name, arr in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return f.path
