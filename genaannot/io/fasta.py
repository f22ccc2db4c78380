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
A mismatch is called a stale index only when it is one (not for an index just built, nor for
one samtools writes again unchanged). A FASTA that htslib cannot index gets the first line that
breaks samtools' layout and a fix (:mod:`genaannot.io.fasta_layout`); a file that is no FASTA at
all (a GFF3, VCF, BED… given as the genome, plain or compressed) is called that, from its first
few KiB, rather than given advice for a FASTA (:func:`not_fasta`). Sequences with no bases
(left out of the index) are named in a warning and in :attr:`Genome.empty`.
:meth:`Genome.fetch` refuses letters that are not IUPAC nucleotide codes (:data:`IUPAC`,
either case: digits, ``*``, ``-``, ``.``, ``X``…), naming the sequence and position.
"""

from __future__ import annotations

import bisect
import gzip
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
from .fasta_layout import REWRAP, diagnose
from .text import is_bgzf, is_gzip

__all__ = ["FastaError", "Genome", "IUPAC", "check_index", "not_fasta", "open_genome", "find_n_runs", "scan_n_runs"]

#: the letters a FASTA sequence may hold (either case): IUPAC nucleotide codes, U included
IUPAC = "ACGTURYKMSWBDHVN"
_IUPAC_BYTES = (IUPAC + IUPAC.lower()).encode("ascii")
_NOT_IUPAC = re.compile(f"[^{IUPAC}{IUPAC.lower()}]")
#: at most this many bytes are read between two sequences (a header line) or after the last
_GAP_LIMIT = 1 << 16
#: what htslib does not count as a base (C's isgraph() is false)
_NOT_BASE = bytes(range(0x21)) + bytes(range(0x7F, 0x100))


#: set by the command line: htslib's own ``[E::fai_build_core]`` lines are not shown, the
#: FastaError that follows names the file in one line
QUIET_HTSLIB = False


def _quiet(pysam) -> None:
    if QUIET_HTSLIB:
        pysam.set_verbosity(0)


class FastaError(OSError):
    """A FASTA file (or its index) that cannot be opened, indexed or read."""


#: how much of a file (decompressed) is read to tell whether it is a FASTA at all
_SNIFF = 1 << 13
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_GTF_ATTR = re.compile(rb'^\s*\w+ "[^"]*"\s*;')


def _looks_like(head: bytes) -> str | None:
    """What the first bytes of a file that is not a FASTA look like (None: nothing known).
    A guess for the message only: the header lines of the usual formats, else the columns of
    the first data line (GFF/GTF: 9 with numeric 4th and 5th; BED: numeric 2nd and 3rd)."""
    for magic, kind in ((b"BAM\x01", "a BAM file"), (b"BCF\x02", "a BCF file"), (b"CRAM", "a CRAM file")):
        if head.startswith(magic):
            return kind
    lines = [line.rstrip(b"\r") for line in head.split(b"\n") if line.strip()]
    if not lines:
        return None
    first = lines[0]
    if first.startswith(b"##gff-version"):
        return "GFF3" if first.split()[1:2] == [b"3"] else "GFF"
    if first.startswith((b"##fileformat=VCF", b"#CHROM\tPOS")):
        return "VCF"
    if first.startswith((b"@HD\t", b"@SQ\t")):
        return "SAM"
    if first.startswith(b"@") and len(lines) >= 3 and lines[2].startswith(b"+"):
        return "FASTQ"
    if first.startswith((b"track ", b"browser ")):
        return "BED"
    data = next((line for line in lines if not line.startswith(b"#")), None)
    if data is None:
        return None
    cols = data.split(b"\t")
    if len(cols) >= 9 and cols[3].isdigit() and cols[4].isdigit() and cols[6] in (b"+", b"-", b".", b"?"):
        return "GTF" if _GTF_ATTR.match(cols[8]) else "GFF3" if b"=" in cols[8] else "GFF"
    if len(cols) >= 3 and cols[1].isdigit() and cols[2].isdigit():
        return "BED"
    return None


def not_fasta(path: str | Path, *, gz: bool, known_only: bool = False) -> str | None:
    """Why ``path`` is not a FASTA at all, from its first 8 KiB (decompressed): its first
    non-blank line does not start with ``>``. One line naming the file, that line and what the
    file looks like (GFF3, GTF, VCF, BED, SAM, FASTQ, BAM…); None when it may be a FASTA (a
    ``>`` line, a ``;`` comment or a byte-order mark first: :mod:`~genaannot.io.fasta_layout`
    says what is wrong then) or cannot be read.

    Parameters
    ----------
    path : str or Path
    gz : bool
        Whether it is compressed (gzip or BGZF, decided from its bytes).
    known_only : bool
        Answer only when the format is recognised (a file htslib could not index: the layout
        diagnosis of :func:`~genaannot.io.fasta_layout.diagnose` names other cases better).
    """
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            head = fh.read(_SNIFF)
    except (OSError, EOFError, zlib.error):
        return None  # damaged or truncated: the caller's own checks say so
    if head.startswith(b"\xef\xbb\xbf"):
        return None
    kind = _looks_like(head)
    if kind is None and known_only:
        return None
    lines = head.split(b"\n")
    if len(head) == _SNIFF and len(lines) > 1:
        lines = lines[:-1]  # cut off by the read: not a whole line
    n, line = next(((k, ln) for k, ln in enumerate(lines, 1) if ln.strip()), (0, b""))
    if not n or line.lstrip()[:1] in (b">", b";"):
        return None
    looks = f" (it looks like {kind})" if kind else ""
    if _CONTROL.search(line):
        return (f"{path}: line {n} holds control characters: it is not a text FASTA file{looks} (binary, or "
                "damaged); give the genome's FASTA file (plain or bgzip-compressed)")
    text = line.rstrip(b"\r")
    shown = repr(text[:30].decode("utf-8", "replace")) + ("…" if len(text) > 30 else "")
    return (f"{path}: line {n} {shown} comes before any '>' header line: it is not a FASTA file{looks}; give the "
            "genome's FASTA file (plain or bgzip-compressed; a FASTA record starts with `>NAME`)")


def _unindexable(path: Path, *, gz: bool) -> str | None:
    """Why htslib cannot index ``path`` (error path only): not a FASTA at all, or the first line
    that breaks samtools' layout."""
    return not_fasta(path, gz=gz, known_only=True) or diagnose(path, gz=gz)


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
        why = _unindexable(path, gz=gz) if isinstance(err, pysam.SamtoolsError) else None
        if why:  # the FASTA itself cannot be indexed, wherever the index goes
            raise FastaError(why) from None
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


class _Mismatch(Exception):
    """The index and the file disagree (``detail``) at ``offset``: the sequence ``name``, or
    (None) after the last one; ``record`` is the index row of the sequence whose lines are
    suspect (the one before a gap that does not hold its header), if any."""

    def __init__(self, detail: str, offset: int, name: str | None,
                 record: tuple[str, int, int, int, int] | None = None) -> None:
        super().__init__(detail)
        self.detail, self.offset, self.name, self.record = detail, offset, name, record


def check_index(path: str | Path, fai: str | Path, gzi: str | Path | None = None, *,
                built: bool = False) -> list[tuple[str, int]]:
    """Check that ``fai`` (and ``gzi`` for bgzip) describes the FASTA at ``path``.

    For every sequence, the bytes before it must be exactly its own ``>`` header line (after
    blank lines, and after blanks that end the previous sequence's last line), its first line
    must end where the index says (blanks before the line break are allowed: htslib skips
    them), and after the last sequence only blank lines may follow. A header with no bases (an
    empty sequence: samtools leaves it out of the index) is allowed and returned. Reads a few
    bytes per sequence (one BGZF block per sequence at most), not the sequence itself: about
    10 µs per sequence in all.

    Parameters
    ----------
    path, fai, gzi : str or Path
        The FASTA and its index files.
    built : bool
        Whether ``fai`` was built from the file just now. A mismatch then cannot mean a stale
        index (nor can it when samtools builds the same index again, which is tried otherwise):
        the message says so and does not advise deleting the index.

    Returns
    -------
    list of (str, int)
        The empty sequences: name and the 1-based line of the header, in file order.

    Raises
    ------
    FastaError
        A sequence without a name or a name given twice (naming the lines), an index that does
        not match (naming the index and how to rebuild it), or a layout the check cannot follow
        (naming the line, and how to rewrite the file).
    """
    path, fai = Path(path), Path(fai)
    gzi = Path(gzi) if gzi is not None else None
    try:
        rows = sorted(_read_fai(fai), key=lambda r: r[2])
        raw = _Raw(path, gzi)
    except (OSError, ValueError) as err:
        raise _stale(path, fai, gzi, str(err)) from None
    try:
        return _check_rows(raw, rows)
    except _Mismatch as err:
        _refuse_nul(raw, path)  # a NUL byte misleads htslib's indexer: say that, not "stale"
        raise _mismatch_error(raw, fai, gzi, err, built=built) from None
    except FastaError:
        raise
    except (OSError, ValueError, zlib.error) as err:
        raise _stale(path, fai, gzi, f"cannot read where it points: {err}") from None
    finally:
        raw.close()


def _stale(path: Path, fai: Path, gzi: Path | None, detail: str) -> FastaError:
    index = f"{fai}" + (f" / {gzi}" if gzi is not None else "")
    return FastaError(
        f"{path}: its index {index} does not match the file ({detail}): it is stale or damaged; delete "
        f"{fai}{f' and {gzi}' if gzi is not None else ''} (genaannot then rebuilds it) or rebuild it with "
        f"`samtools faidx {path}`")


def _index_is_current(path: Path, fai: Path, gzi: Path | None) -> bool | None:
    """Whether samtools writes this very index for the file as it is now; None when it cannot
    index the file at all. Error path only: builds an index in a temporary directory."""
    import pysam

    with tempfile.TemporaryDirectory(prefix="genaannot-fai-") as tmp:
        args = [str(path), "--fai-idx", os.path.join(tmp, "i.fai")]
        if gzi is not None:
            args += ["--gzi-idx", os.path.join(tmp, "i.gzi")]
        try:
            pysam.faidx(*args)
        except pysam.SamtoolsError:
            return None
        try:
            return (Path(tmp, "i.fai").read_bytes() == fai.read_bytes()
                    and (gzi is None or Path(tmp, "i.gzi").read_bytes() == gzi.read_bytes()))
        except OSError:
            return False


def _mismatch_error(raw: _Raw, fai: Path, gzi: Path | None, err: _Mismatch, *, built: bool) -> FastaError:
    """The message for an index that does not fit the file: stale (delete it), a file samtools
    can no longer index (why), or a layout this check cannot follow (rewrite the file)."""
    path = raw.path
    current = True if built else _index_is_current(path, fai, gzi)
    if current is None:
        why = _unindexable(path, gz=gzi is not None) or f"{path}: samtools cannot index it as it is now"
        return FastaError(f"{why} (its index {fai} is older than this content: delete it too)")
    if not current:
        return _stale(path, fai, gzi, err.detail)
    # the index is what samtools writes today: deleting it changes nothing; say where and why
    odd = _odd_line(raw, err.record) if err.record is not None else None
    if odd is not None:
        at, bases, size = odd
        name, _, _, lb, lw = err.record  # type: ignore[misc]
        return FastaError(
            f"{path}: line {raw.newlines_before(at) + 1} of sequence {name!r} holds {bases:,} bases in {size:,} bytes, "
            f"its first line {lb:,} in {lw:,} (blanks or other characters that are not bases inside some lines): "
            f"the index ({fai}, what samtools writes for it: deleting it would not help) would read the wrong "
            f"bases from there on; write the FASTA again with plain, equally long lines (`{REWRAP}`) and use that")
    line = raw.newlines_before(err.offset) + 1
    where = f"line {line} (sequence {err.name!r})" if err.name else f"line {line} (after the last sequence)"
    return FastaError(
        f"{path}: {where}: genaannot cannot confirm that the index fits the file there ({err.detail}), although "
        f"{fai} is what samtools writes for it (deleting it would not help): the lines are not laid out "
        f"uniformly; write the FASTA again with plain, equally long lines (`{REWRAP}`) and use that")


def _odd_line(raw: _Raw, record: tuple[str, int, int, int, int]) -> tuple[int, int, int] | None:
    """``(offset, bases, bytes with the line break)`` of the first line of ``record`` that is
    not its last and differs from its first line in bases or in bytes (error path only: reads
    the sequence)."""
    _, _, offset, lb, lw = record
    pos, carry = offset, b""
    line: tuple[int, int, int] | None = None  # the line before: reported once another follows it
    while True:
        chunk = raw.read(pos, 1 << 20)
        start = pos - len(carry)
        if chunk:
            texts = (carry + chunk).split(b"\n")
            carry = texts.pop()
            pos += len(chunk)
        else:
            texts = [carry] if carry else []
        for text in texts:
            if text[:1] == b">" or not text:  # the next header, or a blank line: the sequence ended
                return None
            if line is not None and (line[1] != lb or line[2] != lw):
                return line
            line = (start, len(text.translate(None, _NOT_BASE)), len(text) + 1)
            start += len(text) + 1
        if not chunk:
            return None


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


#: blanks at the start of a line (htslib's ``isspace`` less the line break)
_BLANKS = re.compile(rb"[ \t\r\f\v]*")


def _read_gap(raw: _Raw, start: int, end: int | None) -> bytes:
    """The bytes from ``start`` to ``end`` (None: the end of the file), which should hold only
    blanks, blank lines and ``>`` header lines. A long gap (a header over 64 KiB, many empty
    sequences) is read in pieces, and reading stops after the piece where a line of anything
    else begins (a stale index: sequence where a header should be), so that a wrong offset
    never reads a whole chromosome."""
    if end is not None and end - start <= _GAP_LIMIT:
        return raw.read(start, end - start)  # the usual case: one read
    parts, pos, in_header = [], start, False
    while end is None or pos < end:
        piece = raw.read(pos, _GAP_LIMIT if end is None else min(_GAP_LIMIT, end - pos))
        if not piece:
            break
        parts.append(piece)
        pos += len(piece)
        i = 0
        while i < len(piece):
            if in_header:
                k = piece.find(b"\n", i)
                if k < 0:
                    break
                in_header, i = False, k + 1
                continue
            j = _BLANKS.match(piece, i).end()  # type: ignore[union-attr]
            if j == len(piece):
                break
            if piece[j] not in b"\n>":
                return b"".join(parts)  # not a gap: the caller names what is wrong
            in_header, i = piece[j] == ord(">"), j + 1
    return b"".join(parts)


def _check_rows(raw: _Raw, rows: list[tuple[str, int, int, int, int]]) -> list[tuple[str, int]]:
    path = raw.path
    names = {r[0]: r[2] for r in rows}
    seen: set[str] = set()
    empty: list[tuple[str, int]] = []

    def headers(gap: bytes, at: int, lines_at: int) -> list[tuple[int, int, bytes]]:
        """``(absolute offset, line number, line)`` of the non-blank lines of ``gap`` read at
        ``at``, after ``lines_at`` line breaks in the file."""
        out, pos = [], 0
        for k, line in enumerate(gap.split(b"\n")):
            if line.strip():
                out.append((at + pos, lines_at + k + 1, line))
            pos += len(line) + 1
        return out

    def line_no(offset: int) -> int:
        return raw.newlines_before(offset) + 1

    def look(gap: bytes, at: int, lines_at: int, expected: str | None, offset: int,
             before: tuple[str, int, int, int, int] | None) -> None:
        if expected:  # the usual case, quickly: blanks and blank lines, then ">NAME[ text]\n"
            head = gap.lstrip()
            key = b">" + expected.encode("utf-8", "surrogateescape")
            if head.startswith(key) and head.count(b"\n") == 1 and head.endswith(b"\n") and head[len(key):][:1].isspace():
                return
        nul = gap.find(b"\0")
        if nul >= 0:  # htslib reads up to a NUL and stops: a binary or damaged file, not a stale index
            raise FastaError(f"{path}: line {line_no(at + nul)} holds a NUL byte: this is not a text FASTA "
                             "(binary or damaged); remove the byte or regenerate the file")
        lines = headers(gap, at, lines_at)
        for pos, _, line in lines:
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
        if expected is None:
            if any(line[:1] != b">" for _, _, line in lines):
                raise _Mismatch("the file goes on after the last sequence the index knows", at, None, before)
        elif not lines or any(line[:1] != b">" for _, _, line in lines) or not gap.endswith(b"\n"):
            raise _Mismatch(f"no single header line right before sequence {expected!r}", offset, expected, before)
        elif _header_name(lines[-1][2]) != expected:
            raise _Mismatch(f"the header before sequence {expected!r} is "
                            f"{lines[-1][2][:40].decode(errors='replace')!r}", offset, expected)
        else:
            lines = lines[:-1]
        # header lines with no bases after them are empty sequences, which samtools leaves out
        empty.extend((_header_name(line) or "", k) for _, k, line in lines)

    prev = newlines = 0  # newlines: line breaks before prev (counted, not read again)
    before: tuple[str, int, int, int, int] | None = None
    for row in rows:
        name, length, offset, lb, lw = row
        if name in seen:  # samtools skips a repeated name: an index written otherwise
            raise _Mismatch(f"sequence {name!r} is listed twice", offset, name)
        seen.add(name)
        if offset < prev:
            raise _Mismatch(f"sequence {name!r} overlaps the one before it", offset, name)
        gap = _read_gap(raw, prev, offset)
        look(gap, prev, newlines, name, offset, before)
        newlines += gap.count(b"\n")
        ending = raw.read(offset + min(lb, length), lw - lb) if length else b""
        if b"\0" in ending:  # htslib counts NUL bytes at a line's end as part of its line break
            raise FastaError(f"{raw.path}: line {raw.newlines_before(offset) + 1} holds a NUL byte: this is not a "
                             "text FASTA (binary or damaged); remove the byte or regenerate the file")
        # blanks before the line break (a trailing space) are skipped by htslib: the bases stay right
        if length > lb and not (ending.endswith(b"\n") and ending.count(b"\n") == 1 and not ending.strip()):
            raise _Mismatch(f"the first line of {name!r} does not end after its {lb} bases", offset, name, row)
        full, part = divmod(length, lb) if length else (0, 0)
        prev = offset + full * lw + part
        newlines += full  # every full line ends in one line break
        before = row
    look(_read_gap(raw, prev, None), prev, newlines, None, prev, before)
    return empty


def _open_error(path: Path, *, gz: bool, err: Exception, old_fai: Path | None) -> FastaError:
    """Why htslib could not open (index) ``path``: the first line that breaks samtools' layout,
    or, when the file is fine, the index that existed before (stale or damaged)."""
    why = _unindexable(path, gz=gz)
    if why:
        return FastaError(why + (f" (its index {old_fai} could not be read either: delete it too)" if old_fai else ""))
    if old_fai is not None:
        return FastaError(
            f"{path}: its index {old_fai} could not be read ({err}): it is stale or damaged; delete it "
            f"(genaannot then rebuilds it) or rebuild it with `samtools faidx {path}`")
    return FastaError(f"{path}: htslib could not index it ({err}); `samtools faidx {path}` says why")


def _warn_empty(path: Path, found: list[tuple[str, int]]) -> None:
    shown = ", ".join(f"{name!r} (line {line})" for name, line in found[:5])
    more = f" and {len(found) - 5:,} more" if len(found) > 5 else ""
    what = "sequence" if len(found) == 1 else f"{len(found):,} sequences"
    warnings.warn(
        f"{path}: {what} {shown}{more} {'has' if len(found) == 1 else 'have'} no bases: samtools leaves "
        f"{'it' if len(found) == 1 else 'them'} out of the index, so no output has {'it' if len(found) == 1 else 'them'} "
        "(a track cannot hold a sequence of length 0) and --chrom/--region cannot select "
        f"{'it' if len(found) == 1 else 'them'}; remove the header or give it bases to silence this",
        stacklevel=4)


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
            # a gzipped GFF3 or VCF given as the genome is not a FASTA to bgzip: say what it is
            why = not_fasta(p, gz=True)
            if why:
                raise FastaError(why)
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
        #: sequences with no bases (samtools leaves them out of the index, so they are in no
        #: output): name → 1-based line of the header; found by the check (empty without ``verify``)
        self.empty: dict[str, int] = {}
        kwargs: dict[str, str] = {}
        built = bool(missing)  # htslib builds what is missing: such an index cannot be stale
        old_fai = None if wanted[0] in missing else wanted[0]  # an index from before: maybe stale
        if missing and not _dir_writable(p.parent):
            fai, gzi = _cached_index(p, gz=gz)  # keyed by size and mtime: made from this content
            self.index_path = fai
            self.index_files = [fai, gzi] if gz else [fai]
            kwargs = {"filepath_index": str(fai)}
            if gz:
                kwargs["filepath_index_compressed"] = str(gzi)
            missing, built, old_fai = [], True, fai
        try:
            self._fa = pysam.FastaFile(str(p), **kwargs)
        except (OSError, ValueError) as err:
            for leftover in missing:  # a failed build can leave a .gzi behind: it is ours, and wrong
                if leftover.exists():
                    leftover.unlink(missing_ok=True)
            raise _open_error(p, gz=gz, err=err, old_fai=old_fai) from None
        names = list(self._fa.references)
        lengths = list(self._fa.lengths)
        if not names:
            self._fa.close()
            raise FastaError(f"{p}: no sequences found (is it a FASTA file?)")
        if verify:
            try:
                found = check_index(p, self.index_files[0], self.index_files[1] if gz else None, built=built)
            except FastaError:
                self._fa.close()
                raise
            self.empty = dict(found)
            if found:
                _warn_empty(p, found)
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

