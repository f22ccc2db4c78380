"""Signal tracks: bigWig (:mod:`genaannot.io.bigwig`) and bedGraph writers, bigWig region reads, JSON/npz loads.

Coordinates are 0-based, half-open (as in bigWig, bedGraph and BED).

Every writer writes through :class:`genaannot.io.atomic.AtomicFile`: a temporary file in
the destination directory, moved into place on :meth:`commit`; :meth:`abort` (or an
exception) removes it, so a failed run never leaves a half-written output under the final
name. Given ``tmp=`` (a path staged by :class:`genaannot.io.atomic.OutputSet`), a writer
writes there instead and :meth:`commit` only finishes (closes and fsyncs) the file: the
set moves it into place with the run's other outputs. A write error is an
:class:`OutputError` naming the final file. The atomic-write helpers (``AtomicFile``,
``write_text_atomic``, ``write_json_atomic``, ``write_lines_atomic``, ``save_npz_atomic``, ``check_writable``, ``OutputError``) are
defined in :mod:`genaannot.io.atomic` and re-exported here.

bigWig files get a header with *every* FASTA sequence in ``.fai`` order with its true
length (so browsers and ``pybigtools`` see the whole genome even when only some regions
were scanned); entries must be added in that chromosome order, sorted and
non-overlapping, and are stored as float32 with zoom levels.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

# the atomic-write primitives live in .atomic; re-exported here, where callers import them from
from .atomic import (
    AtomicFile,
    OutputError,
    _os_errors,
    check_writable,
    save_npz_atomic,
    write_json_atomic,
    write_lines_atomic,
    write_text_atomic,
)

__all__ = [
    "OutputError",
    "AtomicFile",
    "TrackWriter",
    "BigWigWriter",
    "BedGraphWriter",
    "WRITERS",
    "write_text_atomic",
    "write_json_atomic",
    "write_lines_atomic",
    "save_npz_atomic",
    "check_writable",
    "load_json",
    "load_npz",
    "read_bigwig_region",
    "read_track",
]


class TrackWriter:
    """Interface: ``add(chrom, starts, ends, values)`` in genome order, then ``commit``.

    ``tmp``: write into this staged path (owned by an :class:`~genaannot.io.atomic.OutputSet`)
    instead of an own temporary file; ``commit`` then finishes the file without moving it,
    ``abort`` removes it.
    """

    suffix = ""

    def __init__(self, path: str | Path, *, sizes: dict[str, int], name: str = "", tmp: Path | None = None) -> None:
        raise NotImplementedError

    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _OrderCheck:
    """Refuse entries out of ``.fai`` order or overlapping (a bug upstream, not a user error)."""

    def __init__(self, path: Path, sizes: dict[str, int]) -> None:
        self.path, self.sizes = path, sizes
        self.rank = {c: i for i, c in enumerate(sizes)}
        self.chrom_rank, self.pos = -1, 0

    def check(self, chrom: str, starts: np.ndarray, ends: np.ndarray) -> None:
        r = self.rank.get(chrom)
        if r is None:
            raise OutputError(f"{self.path}: sequence {chrom!r} is not in the genome header")
        if r != self.chrom_rank:
            if r < self.chrom_rank:
                raise OutputError(f"{self.path}: {chrom} entries after a later sequence")
            self.chrom_rank, self.pos = r, 0
        if len(starts) == 0:
            return
        if starts[0] < self.pos or np.any(starts[1:] < ends[:-1]) or np.any(ends <= starts):
            raise OutputError(f"{self.path}: unsorted or overlapping entries on {chrom} near {int(starts[0])}")
        if ends[-1] > self.sizes[chrom]:
            raise OutputError(f"{self.path}: entry past the end of {chrom}")
        self.pos = int(ends[-1])


class BigWigWriter(TrackWriter):
    """Streaming bigWig writer (:class:`genaannot.io.bigwig.BigWigFile`): float32 values,
    exact zoom levels, memory independent of sequence length, write errors raised.

    ``digits``: round values to this many decimals before writing (None: as given).
    ``tmp``: write there and leave the move into place to the caller (an
    :class:`~genaannot.io.atomic.OutputSet`); else an :class:`AtomicFile` of its own.
    """

    suffix = ".bw"

    def __init__(self, path: str | Path, *, sizes: dict[str, int], name: str = "", tmp: Path | None = None,
                 digits: int | None = None) -> None:
        from .bigwig import BigWigFile

        self._f = AtomicFile(path) if tmp is None else None
        self.path = self._f.path if self._f is not None else Path(path)
        self.tmp = self._f.tmp if self._f is not None else Path(tmp)  # type: ignore[arg-type]
        self._order = _OrderCheck(self.path, sizes)
        try:
            self._bw = BigWigFile(self.tmp, sizes=sizes, digits=digits, name=self.path)
        except BaseException:
            self._remove()
            raise

    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        self._order.check(chrom, starts, ends)
        if len(starts) == 0:
            return
        self._bw.add(chrom, starts, ends, values)

    def commit(self) -> None:
        """Finish the file (indexes, zoom levels, fsync); then move it into place, unless an
        :class:`~genaannot.io.atomic.OutputSet` owns it."""
        try:
            self._bw.close()
        except OutputError:
            self.abort()
            raise
        if self._f is not None:
            with _os_errors(self.path):
                self._f.commit()

    def abort(self) -> None:
        self._bw.abort()
        self._remove()

    def _remove(self) -> None:
        if self._f is not None:
            self._f.abort()
        else:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


class BedGraphWriter(TrackWriter):
    """bedGraph (4 columns, ``%.6g`` values) with a ``track`` line."""

    suffix = ".bedGraph"

    def __init__(self, path: str | Path, *, sizes: dict[str, int], name: str = "", tmp: Path | None = None) -> None:
        self._f = AtomicFile(path) if tmp is None else None
        self.path = self._f.path if self._f is not None else Path(path)
        self.tmp = self._f.tmp if self._f is not None else Path(tmp)  # type: ignore[arg-type]
        self._order = _OrderCheck(self.path, sizes)
        with _os_errors(self.path):
            try:
                self._fh = open(self.tmp, "w")  # noqa: SIM115 - closed in commit/abort
                self._fh.write(f'track type=bedGraph name="{name or self.path.stem}"\n')
            except OSError:
                self.abort()
                raise

    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        self._order.check(chrom, starts, ends)
        with _os_errors(self.path):
            self._fh.writelines(
                f"{chrom}\t{int(s)}\t{int(e)}\t{float(v):.6g}\n" for s, e, v in zip(starts, ends, values)
            )

    def commit(self) -> None:
        """Close (flush) the file; then move it into place, unless an OutputSet owns it."""
        with _os_errors(self.path):
            try:
                self._fh.close()  # buffered: a full disk may only show here
            except OSError:
                self.abort()
                raise
            if self._f is not None:
                self._f.commit()

    def abort(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()
        if self._f is not None:
            self._f.abort()
        else:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


#: output format name -> writer class
WRITERS: dict[str, type[TrackWriter]] = {"bigwig": BigWigWriter, "bedgraph": BedGraphWriter}


def load_json(path: str | Path) -> Any:
    """Read a JSON file; :class:`OutputError` naming the file when it is missing or broken."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OutputError(f"{path}: cannot read ({err})") from None


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def read_bigwig_region(path: str | Path, chrom: str, start: int, end: int) -> np.ndarray:
    """Values of a bigWig over ``[start, end)``; float64 ``[end - start]``, NaN without data.

    A chromosome the file does not have gives all-NaN (the track is simply empty there).
    Raises :class:`OSError` naming the file when it is not a bigWig.
    """
    import pyBigWig

    try:  # the magic number first: libBigWig prints its own lines to stderr on a file it cannot parse
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise OSError(f"{path}: cannot read the bigWig ({err.strerror or err})") from None
    if magic not in (b"\x26\xfc\x8f\x88", b"\x88\x8f\xfc\x26"):
        raise OSError(f"{path}: not a bigWig file")
    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError:  # pyBigWig's only signal for a file it cannot parse
        bw = None
    if bw is None:
        raise OSError(f"{path}: not a bigWig file")
    try:
        if chrom not in bw.chroms():
            return np.full(end - start, np.nan)
        stop = min(end, bw.chroms()[chrom])
        vals = np.full(end - start, np.nan)
        if stop > start:
            vals[: stop - start] = np.asarray(bw.values(chrom, start, stop, numpy=True), dtype=float)
        return vals
    finally:
        bw.close()


def read_track(path: str | Path, region: Any) -> np.ndarray:
    """Values of a bigWig track over a region: float32 ``[end - start]``, NaN without data.

    Parameters
    ----------
    path
        A bigWig (a ``scan`` track: ``OUT.<label>.<plus|minus>.bw``).
    region
        ``"Chr5:4,400-4,600"`` (1-based inclusive, samtools style; ``"Chr5"``: the whole
        sequence; ``5``/``chr5`` aliases resolved against the file's sequences) or an
        :class:`~genaannot.regions.Interval` (0-based half-open).

    Raises
    ------
    OSError
        The file is not a bigWig (naming it).
    RegionError
        The region does not fit the file's sequences.
    """
    import pyBigWig

    from ..regions import Interval, RegionError, parse_region

    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError:  # pyBigWig's only signal for a file it cannot parse
        bw = None
    if bw is None:
        raise OSError(f"{path}: not a bigWig file" if Path(path).exists() else f"{path}: file not found")
    try:
        sizes = dict(bw.chroms())
    finally:
        bw.close()
    if isinstance(region, Interval):
        if region.chrom not in sizes or region.end > sizes[region.chrom]:
            raise RegionError(f"{path}: region {region.ucsc()} is not inside its sequences")
        iv = region
    else:
        try:
            iv = parse_region(str(region), sizes=sizes)
        except RegionError as err:
            raise RegionError(f"{path}: {err}") from None
    return read_bigwig_region(path, iv.chrom, iv.start, iv.end).astype(np.float32)
