"""Indexed FASTA access (plain or bgzip-compressed) through :mod:`pysam`.

Coordinates are 0-based, half-open. :meth:`Genome.fetch` returns the letters as stored
(soft-masked lower case kept): upper-casing and IUPAC counting belong to the tokenizer
(:class:`genaannot.tokenize.SequenceStats`). :func:`find_n_runs` locates runs of ``N``
(either case) so that long assembly gaps can be left out of a scan.

Checks
------
An index is only trusted after :func:`check_index` has compared it with the FASTA's bytes
(cheap: a few bytes around every sequence, not a pass over the sequence): a stale ``.fai``
would otherwise feed line breaks and the next header to the model, or scan only part of a
sequence that has grown. Duplicate and empty sequence names are refused, naming the lines.
:meth:`Genome.fetch` refuses letters that are not IUPAC nucleotide codes (:data:`IUPAC`,
either case: digits, ``*``, ``-``, ``.``, ``X``…), naming the sequence and position.
"""

from __future__ import annotations

import bisect
import os
import re
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

# N runs are found by the pure planner; re-exported for callers that read a Genome
from ..windows import NRun, find_n_runs, scan_n_runs  # noqa: F401
from .atomic import AtomicFile
from .text import is_bgzf, is_gzip

__all__ = ["FastaError", "Genome", "IUPAC", "check_index", "open_genome", "find_n_runs", "scan_n_runs"]

#: the letters a FASTA sequence may hold (either case): IUPAC nucleotide codes, U included
IUPAC = "ACGTURYKMSWBDHVN"
_IUPAC_BYTES = (IUPAC + IUPAC.lower()).encode("ascii")
_NOT_IUPAC = re.compile(f"[^{IUPAC}{IUPAC.lower()}]")
#: at most this many bytes are read between two sequences (a header line) or after the last
_GAP_LIMIT = 1 << 16


#: set by the command line: htslib's own ``[E::fai_build_core]`` lines are not shown, the
#: FastaError that follows names the file in one line
QUIET_HTSLIB = False


def _quiet(pysam) -> None:
    if QUIET_HTSLIB:
        pysam.set_verbosity(0)


class FastaError(OSError):
    """A FASTA file (or its index) that cannot be opened, indexed or read."""


def _index_paths(path: Path, *, gz: bool) -> list[Path]:
    """The index files htslib reads beside ``path``: ``NAME.fai``, and ``NAME.gzi`` when it is
    compressed (decided from its bytes: a bgzipped ``genome.fa`` has ``genome.fa.gzi`` too)."""
    return [Path(str(path) + ".fai")] + ([Path(str(path) + ".gzi")] if gz else [])


def _dir_writable(directory: Path) -> bool:
    """Whether an index can be written beside the FASTA (a read-only mount fails even for root)."""
    if not os.access(directory, os.W_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".genaannot-probe-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def cache_dir() -> Path:
    """Per-user cache (``$GENAANNOT_CACHE``, else ``$XDG_CACHE_HOME/genaannot``, else ``~/.cache/genaannot``)."""
    env = os.environ.get("GENAANNOT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genaannot"


def _cached_index(path: Path, *, gz: bool) -> tuple[Path, Path]:
    """Build (once) the ``.fai`` (and ``.gzi``) of a FASTA whose directory is read-only in the cache.

    The cache key is the FASTA's absolute path, size and modification time, so an edited
    FASTA gets a new index. Files are written under temporary names and renamed (the
    ``.gzi`` first: a ``.fai`` in place means the index is complete).
    """
    import hashlib

    import pysam

    _quiet(pysam)
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_dir() / "fai"
    fai, gzi = folder / f"{key}_{path.name}.fai", folder / f"{key}_{path.name}.gzi"
    if fai.is_file() and (not gz or gzi.is_file()):
        return fai, gzi
    files: list[AtomicFile] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files.append(AtomicFile(fai, mode=None, check=False))
        args = [str(path), "--fai-idx", str(files[0].tmp)]
        if gz:
            files.append(AtomicFile(gzi, mode=None, check=False))
            args += ["--gzi-idx", str(files[1].tmp)]
        pysam.faidx(*args)
        for f in reversed(files):
            f.commit()
    except (OSError, pysam.SamtoolsError) as err:
        raise FastaError(
            f"{path}: no index beside it, its directory is not writable, and the index could not be "
            f"built in the cache {folder} ({err}); run `samtools faidx {path}` where you can write, "
            "set GENAANNOT_CACHE to a writable directory, or copy the FASTA"
        ) from None
    finally:
        for f in files:
            f.abort()  # after the commits: leftovers only
    warnings.warn(f"{path}: directory not writable; FASTA index kept in {fai}", stacklevel=3)
    return fai, gzi


class _Raw:
    """The uncompressed bytes of a FASTA at any offset: a plain file, or BGZF blocks found
    through the ``.gzi`` (compressed, uncompressed offsets of every block after the first)."""

    def __init__(self, path: Path, gzi: Path | None) -> None:
        self.path = path
        self._c: list[int] = [0]
        self._u: list[int] = [0]
        self._gz = gzi is not None
        if gzi is not None:
            data = gzi.read_bytes()
            n = struct.unpack_from("<Q", data)[0] if len(data) >= 8 else -1
            if n < 0 or len(data) != 8 + 16 * n:
                raise ValueError(f"{gzi} is not a .gzi index ({len(data)} bytes)")
            for c, u in struct.iter_unpack("<QQ", data[8:]):
                self._c.append(c)
                self._u.append(u)
        self._fh = open(path, "rb")
        self._cache: tuple[int, bytes] = (0, b"")

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes from ``offset`` (fewer at the end of the file)."""
        start, buf = self._cache
        if start <= offset and offset + n <= start + len(buf):
            return buf[offset - start : offset - start + n]
        if not self._gz:  # a window of 64 KiB: many small sequences take one read
            self._fh.seek(offset)
            buf = self._fh.read(max(n, 1 << 16))
            self._cache = (offset, buf)
            return buf[:n]
        i = bisect.bisect_right(self._u, offset) - 1
        start, parts, size = self._u[i], [], 0
        self._fh.seek(self._c[i])
        while start + size < offset + n:
            head = self._fh.read(18)
            if len(head) < 18:
                break
            if head[:4] != b"\x1f\x8b\x08\x04":
                raise ValueError("not a BGZF block where the .gzi points")
            block = head + self._fh.read(struct.unpack_from("<H", head, 16)[0] + 1 - 18)
            parts.append(zlib.decompress(block, 31))
            size += len(parts[-1])
        buf = b"".join(parts)
        self._cache = (start, buf)
        return buf[offset - start : offset - start + n]

    def newlines_before(self, offset: int) -> int:
        """Line breaks before byte ``offset`` (error messages only: reads the file up to it)."""
        count, pos = 0, 0
        while pos < offset:
            chunk = self.read(pos, min(1 << 20, offset - pos))
            if not chunk:
                break
            count += chunk.count(b"\n")
            pos += len(chunk)
        return count

    def close(self) -> None:
        self._fh.close()


def _read_fai(fai: Path) -> list[tuple[str, int, int, int, int]]:
    """``(name, length, offset, line bases, line bytes)`` of every ``.fai`` row."""
    rows = []
    for k, line in enumerate(fai.read_text(errors="surrogateescape").splitlines(), 1):
        f = line.split("\t")
        try:
            name, length, offset, lb, lw = f[0], *(int(x) for x in f[1:5])
        except (ValueError, IndexError):
            raise ValueError(f"line {k} is not a .fai row (NAME, LENGTH, OFFSET, LINEBASES, LINEWIDTH)") from None
        if length < 0 or offset < 0 or (length > 0 and not 0 < lb <= lw):
            raise ValueError(f"line {k} ({name}) has impossible numbers")
        rows.append((name, length, offset, lb, lw))
    return rows


def _header_name(line: bytes) -> str | None:
    """The name of a ``>`` header line (up to the first blank, as samtools reads it); None
    when the name is empty (``>`` alone or ``> text``)."""
    rest = line[1:].rstrip(b"\r")
    if not rest or rest[:1].isspace():
        return None
    return rest.split()[0].decode("utf-8", "surrogateescape")


def check_index(path: str | Path, fai: str | Path, gzi: str | Path | None = None) -> None:
    """Check that ``fai`` (and ``gzi`` for bgzip) describes the FASTA at ``path``.

    For every sequence, the bytes before it must be exactly its own ``>`` header line (after
    blank lines), its first line must end where the index says, and after the last sequence
    only blank lines may follow. A header with no bases (an empty sequence: samtools leaves
    it out of the index) is allowed. Reads a few bytes per sequence (one BGZF block per
    sequence at most), not the sequence itself: about 10 µs per sequence in all.

    Raises
    ------
    FastaError
        A sequence without a name or a name given twice (naming the lines), or an index
        that does not match (naming the index and how to rebuild it).
    """
    path, fai = Path(path), Path(fai)
    gzi = Path(gzi) if gzi is not None else None
    index = f"{fai}" + (f" / {gzi}" if gzi is not None else "")

    def stale(detail: str) -> FastaError:
        return FastaError(
            f"{path}: its index {index} does not match the file ({detail}): it is stale or damaged; delete "
            f"{fai}{f' and {gzi}' if gzi is not None else ''} (genaannot then rebuilds it) or rebuild it with "
            f"`samtools faidx {path}`")

    try:
        rows = sorted(_read_fai(fai), key=lambda r: r[2])
        raw = _Raw(path, gzi)
    except (OSError, ValueError) as err:
        raise stale(str(err)) from None
    try:
        _check_rows(raw, rows, stale)
    except FastaError as err:
        if "does not match the file" in str(err):
            _refuse_nul(raw, path)  # a NUL byte misleads htslib's indexer: say that, not "stale"
        raise err from None
    except (OSError, ValueError, zlib.error) as err:
        raise stale(f"cannot read where it points: {err}") from None
    finally:
        raw.close()


def _refuse_nul(raw: _Raw, path: Path, *, chunk: int = 1 << 22) -> None:
    """Raise a FastaError naming the line of the first NUL byte in the file (error path only:
    it reads the whole file)."""
    offset = 0
    while True:
        block = raw.read(offset, chunk)
        if not block:
            return
        i = block.find(b"\0")
        if i >= 0:
            raise FastaError(f"{path}: line {raw.newlines_before(offset + i) + 1} holds a NUL byte: this is not a "
                             "text FASTA (binary or damaged); remove the byte or regenerate the file")
        offset += len(block)


def _check_rows(raw: _Raw, rows: list[tuple[str, int, int, int, int]], stale) -> None:
    path = raw.path
    names = {r[0]: r[2] for r in rows}
    seen: set[str] = set()

    def headers(gap: bytes, at: int) -> list[tuple[int, bytes]]:
        """``(absolute offset, line)`` of the non-blank lines of ``gap`` read at ``at``."""
        out, pos = [], 0
        for line in gap.split(b"\n"):
            if line.strip():
                out.append((at + pos, line))
            pos += len(line) + 1
        return out

    def line_no(offset: int) -> int:
        return raw.newlines_before(offset) + 1

    def look(gap: bytes, at: int, expected: str | None) -> None:
        if expected:  # the usual case, quickly: blank lines, then ">NAME[ text]\n"
            head = gap.lstrip(b"\r\n")
            key = b">" + expected.encode("utf-8", "surrogateescape")
            if head.startswith(key) and head.count(b"\n") == 1 and head.endswith(b"\n") and head[len(key):][:1].isspace():
                return
        nul = gap.find(b"\0")
        if nul >= 0:  # htslib reads up to a NUL and stops: a binary or damaged file, not a stale index
            raise FastaError(f"{path}: line {line_no(at + nul)} holds a NUL byte: this is not a text FASTA "
                             "(binary or damaged); remove the byte or regenerate the file")
        lines = headers(gap, at)
        for pos, line in lines:
            if line[:1] != b">":
                continue
            name = _header_name(line)
            if name is None:
                raise FastaError(f"{path}: line {line_no(pos)}: sequence header {line[:40].decode(errors='replace')!r} "
                                 "has no name (the name follows '>' directly); name every sequence")
            if name != expected and name in names:
                first = raw.newlines_before(names[name])  # the line of its header (1-based)
                raise FastaError(f"{path}: sequence name {name!r} is used twice (lines {first} and {line_no(pos)}); "
                                 "only the first would be read: rename or remove one")
        # header lines with no bases between them are empty sequences, which samtools leaves out
        if expected is None:
            if any(line[:1] != b">" for _, line in lines) or len(gap) >= _GAP_LIMIT:
                raise stale("the file goes on after the last sequence the index knows")
            return
        if not lines or any(line[:1] != b">" for _, line in lines) or not gap.endswith(b"\n"):
            raise stale(f"no single header line right before sequence {expected!r}")
        if _header_name(lines[-1][1]) != expected:
            raise stale(f"the header before sequence {expected!r} is {lines[-1][1][:40].decode(errors='replace')!r}")

    prev = 0
    for name, length, offset, lb, lw in rows:
        if name in seen:  # samtools skips a repeated name: an index written otherwise
            raise stale(f"sequence {name!r} is listed twice")
        seen.add(name)
        if offset < prev:
            raise stale(f"sequence {name!r} overlaps the one before it")
        look(raw.read(prev, min(offset - prev, _GAP_LIMIT)), prev, name)
        ending = raw.read(offset + min(lb, length), lw - lb) if length else b""
        if b"\0" in ending:  # htslib counts NUL bytes at a line's end as part of its line break
            raise FastaError(f"{raw.path}: line {raw.newlines_before(offset) + 1} holds a NUL byte: this is not a "
                             "text FASTA (binary or damaged); remove the byte or regenerate the file")
        if length > lb and ending.strip(b"\r\n"):
            raise stale(f"the first line of {name!r} is not {lb} bases long")
        full, part = divmod(length, lb) if length else (0, 0)
        prev = offset + full * lw + part
    look(raw.read(prev, _GAP_LIMIT), prev, None)


class Genome:
    """An open indexed FASTA.

    Attributes
    ----------
    path : Path
    sizes : dict[str, int]
        Sequence lengths in ``.fai`` order (the order every output follows).

    A missing ``.fai`` (``.gzi`` for bgzip) is created beside the FASTA, or, when that
    directory is not writable (shared reference data), in the per-user cache
    (:func:`cache_dir`). The index is checked against the file (:func:`check_index`)
    unless ``verify`` is false (a worker process opening a genome its parent checked).
    """

    def __init__(self, path: str | Path, *, verify: bool = True) -> None:
        import pysam

        _quiet(pysam)
        self.path = Path(path)
        p = self.path
        if not p.exists():
            raise FastaError(f"{p}: FASTA file not found")
        if not p.is_file() or not os.access(p, os.R_OK):
            raise FastaError(f"{p}: not a readable file")
        if is_gzip(p) and not is_bgzf(p):
            raise FastaError(
                f"{p}: compressed with plain gzip, which cannot be indexed; FASTA must be plain or "
                f"bgzip-compressed: `zcat {p} | bgzip > OUT.fa.gz` (bgzip is in htslib/tabix)"
            )
        gz = is_gzip(p)  # from the bytes: a bgzipped FASTA needs its .gzi whatever its name
        wanted = _index_paths(p, gz=gz)
        missing = [i for i in wanted if not i.exists()]
        #: where the index was read from (beside the FASTA, or the per-user cache)
        self.index_path = wanted[0]
        #: every index file read (``.fai``, and ``.gzi`` for bgzip): inputs no output may replace
        self.index_files: list[Path] = list(wanted)
        kwargs: dict[str, str] = {}
        if missing and not _dir_writable(p.parent):
            fai, gzi = _cached_index(p, gz=gz)
            self.index_path = fai
            self.index_files = [fai, gzi] if gz else [fai]
            kwargs = {"filepath_index": str(fai)}
            if gz:
                kwargs["filepath_index_compressed"] = str(gzi)
        try:
            self._fa = pysam.FastaFile(str(p), **kwargs)
        except (OSError, ValueError) as err:
            msg = str(err)
            raise FastaError(
                f"{p}: cannot open as an indexed FASTA ({msg}); if {p}.fai is stale or damaged, "
                "delete it so that it is rebuilt"
            ) from None
        names = list(self._fa.references)
        lengths = list(self._fa.lengths)
        if not names:
            self._fa.close()
            raise FastaError(f"{p}: no sequences found (is it a FASTA file?)")
        if verify:
            try:
                check_index(p, self.index_files[0], self.index_files[1] if gz else None)
            except FastaError:
                self._fa.close()
                raise
        self.sizes: dict[str, int] = dict(zip(names, (int(n) for n in lengths)))

    def identity(self) -> dict[str, int | str]:
        """What identifies the genome's content cheaply (no pass over the sequence): the
        FASTA's size and modification time (ns) and a SHA-256 of its ``.fai`` (every
        sequence's name, length and offsets). An edited FASTA gets a new mtime even when
        its lengths stay; a copy of the same file (new mtime) counts as changed too."""
        import hashlib

        try:
            st = self.path.stat()
            fai = hashlib.sha256(self.index_path.read_bytes()).hexdigest()
        except OSError as err:
            raise FastaError(f"{self.path}: cannot stat the FASTA or read its index ({err.strerror})") from None
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "fai_sha256": fai}

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Letters of ``chrom[start:end)`` exactly as stored (case kept)."""
        if chrom not in self.sizes:
            raise FastaError(f"{self.path}: no sequence named {chrom!r}")
        if not 0 <= start <= end <= self.sizes[chrom]:
            raise FastaError(
                f"{self.path}: {chrom}:{start}-{end} lies outside the sequence (length {self.sizes[chrom]})"
            )
        if start == end:
            return ""
        try:
            seq = self._fa.fetch(chrom, start, end)
        except (OSError, ValueError) as err:
            raise FastaError(f"{self.path}: cannot read {chrom}:{start}-{end} ({err})") from None
        if len(seq) != end - start:  # htslib stops at a NUL byte (or a file shorter than its index)
            raise FastaError(
                f"{self.path}: reading {chrom}:{start + 1}-{end} stopped after {len(seq):,} of {end - start:,} bases, "
                f"at {chrom}:{start + len(seq) + 1}: the file holds a byte that is not text there (a NUL?) or is "
                f"shorter than its index {self.index_path} says; fix the FASTA, or delete the index if it is stale")
        # bytes.translate runs in C (~1 ns per base); the position is looked for only on error
        if not seq.isascii() or seq.encode("ascii").translate(None, _IUPAC_BYTES):
            self._refuse(seq, chrom, start)
        return seq

    def _refuse(self, seq: str, chrom: str, start: int) -> None:
        m = _NOT_IUPAC.search(seq)
        assert m is not None
        pos, c = start + m.start() + 1, m.group()
        if c in "\r\n>":  # the index points at line breaks or a header: it does not fit the file
            raise FastaError(
                f"{self.path}: reading {chrom}:{pos} gave {c!r}, not a base: its index {self.index_path} does not "
                f"match the file (stale or damaged); delete it (genaannot rebuilds it) or rebuild it with "
                f"`samtools faidx {self.path}`")
        raise FastaError(
            f"{self.path}: {chrom}:{pos} (1-based) holds {c!r}, which is not a nucleotide letter (IUPAC "
            f"{IUPAC}, either case); fix the FASTA there (e.g. N for an unknown base)")

    def close(self) -> None:
        self._fa.close()

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_genome(path: str | Path, *, verify: bool = True) -> Genome:
    """Open ``path`` (plain or bgzipped FASTA), creating ``.fai``/``.gzi`` when missing and
    checking them against the file (``verify``; :func:`check_index`).

    Raises :class:`FastaError` with a message naming the file and what to do.
    """
    return Genome(path, verify=verify)

