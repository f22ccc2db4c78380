"""Why htslib could not index a FASTA: the first line that breaks the layout ``samtools faidx``
needs, named with its record and a command that fixes it.

htslib's indexer (``fai_build_core``) says what is wrong on stderr only (silenced by the
command line) and its wording is terse (``Format error, unexpected "A" at line 4`` for a short
line earlier in the record). :func:`diagnose` follows the same rules line by line in Python and
explains the first line that breaks them. It runs only after indexing has failed: it reads the
file up to that line (about 1 s per GB), never on the normal path.

htslib's rules (FASTA): outside a record only ``>`` header lines and blank lines (``\\n``,
``\\r\\n``) may stand; a record's first sequence line sets the width in bytes; a shorter line
ends the record (so the next line must be a header or blank), a longer one is an error; an
empty line ends the record; a file may not end with a header that has no sequence lines.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["diagnose", "REWRAP"]

#: what to run on a FASTA whose lines are not uniform (re-wraps every record, drops blank lines)
REWRAP = "seqkit seq -w 60 IN.fa > OUT.fa"

_BOM = b"\xef\xbb\xbf"
#: bytes that C's isgraph() rejects: htslib does not count them as bases
_NOT_GRAPH = bytes(range(0x21)) + bytes(range(0x7F, 0x100))
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LONE_CR = re.compile(rb"\r(?!\n|$)")
_PIECE = 1 << 20


def _lines(fh: BinaryIO) -> Iterator[tuple[bytes, int, int, bool, bool]]:
    """``(start, bytes, bases, eol, crlf)`` for every line: its first 4 KiB, its length with
    the line break, its isgraph count, whether it ends in ``\\n`` and whether in ``\\r\\n``.
    Long lines (an unwrapped chromosome, a file with CR-only breaks) are read in pieces."""
    while True:
        piece = fh.readline(_PIECE)
        if not piece:
            return
        head, size, graph, last = piece[:4096], len(piece), len(piece.translate(None, _NOT_GRAPH)), piece
        while not last.endswith(b"\n"):
            more = fh.readline(_PIECE)
            if not more:
                break
            size += len(more)
            graph += len(more.translate(None, _NOT_GRAPH))
            last = last[-1:] + more
        yield head, size, graph, last.endswith(b"\n"), last.endswith(b"\r\n")


def _show(head: bytes) -> str:
    text = head.rstrip(b"\r\n")
    return repr(text[:30].decode("utf-8", "replace")) + ("…" if len(text) > 30 else "")


def _name(head: bytes) -> str:
    parts = head[1:].split()
    return parts[0].decode("utf-8", "replace") if parts else ""


def diagnose(path: str | Path, *, gz: bool) -> str | None:
    """The first reason why ``samtools faidx`` cannot index ``path``, as one line naming the
    file, the line, the record and a fix; None when none is found (the caller then says what
    htslib said).

    Parameters
    ----------
    path : str or Path
        The FASTA, plain or BGZF.
    gz : bool
        Whether it is compressed (decided from its bytes, not its name).
    """
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            why = _first_offence(fh)  # type: ignore[arg-type]
    except EOFError:  # gzip: the stream stops before its end (htslib: a short BGZF block)
        return (f"{path}: the compressed file ends early (truncated by an interrupted download or copy?); "
                "fetch or copy it again, or compress the plain FASTA again with `bgzip`")
    except (OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        if not gz:
            return None
        return (f"{path}: the compressed data is damaged ({err}); fetch or copy it again, or compress the "
                "plain FASTA again with `bgzip`")
    return f"{path}: samtools cannot index it: {why}" if why else None


def _first_offence(fh: BinaryIO) -> str | None:  # noqa: C901 - one state machine, as in htslib
    in_seq = False  # inside a record: after its header, before a line that ends it
    name: str | None = None
    header = 0  # line of the current record's header
    width = 0  # bytes of the record's first sequence line (with its line break); 0: none yet
    first = (0, 0, False)  # that line: number, bases, CRLF
    ended: tuple[int, int, int, bool] | None = None  # the line that ended the record early
    n = 0
    for n, (head, size, graph, eol, crlf) in enumerate(_lines(fh), 1):
        if n == 1 and head.startswith(_BOM):
            return ("line 1 starts with a UTF-8 byte-order mark (BOM, bytes EF BB BF), which FASTA indexes do "
                    "not allow; remove it: `sed '1s/^\\xEF\\xBB\\xBF//' IN.fa > OUT.fa`")
        if _LONE_CR.search(head):
            return (f"line {n}: its line breaks are carriage returns alone (CR, classic Mac OS), which samtools "
                    "does not read as line breaks; convert them: `tr '\\r' '\\n' < IN.fa > OUT.fa`")
        if in_seq and head[:1] != b">":
            if head == b"\n":  # htslib: an empty line ends the record
                in_seq, ended = False, (n, 0, 1, False)
                continue
            if _CONTROL.search(head):
                return _binary(n)
            if head.startswith(b";"):  # htslib would take it for bases: a real problem either way
                return _comment(n, head)
            ll = size + (not eol)  # htslib counts a missing last line break as one
            if not width:
                width, first = ll, (n, graph, crlf)
            elif ll > width:
                return _longer(n, name, graph, crlf, first)
            elif ll < width:
                in_seq, ended = False, (n, graph, ll, crlf)
            continue
        if head[:1] == b">":
            name, header, width, ended, in_seq = _name(head), n, 0, None, True
            if not eol:
                return (f"line {n}: the last record {name!r} has no sequence (the file ends in its header line); "
                        "remove that header or add its bases")
            continue
        if head in (b"\n", b"\r\n"):
            continue
        return _unexpected(n, head, name, header, ended, width, first)
    if n == 0:
        return "the file is empty; give a FASTA file with at least one '>' record"
    if name is None:
        return "the file holds only blank lines, no '>' record; give a FASTA file"
    if in_seq and not width:
        return (f"line {header}: the last record {name!r} has no sequence lines, and samtools cannot index a file "
                "that ends with an empty record; remove that header line or add its bases")
    return None


def _binary(n: int) -> str:
    return (f"line {n} holds control characters: this is not a text FASTA (binary, or damaged); give the "
            "plain-text FASTA (or `bgzip` it)")


def _comment(n: int, head: bytes) -> str:
    return (f"line {n} is a ';' comment line {_show(head)}, which FASTA indexes do not allow; "
            "remove comment lines: `grep -v '^;' IN.fa > OUT.fa`")


def _longer(n: int, name: str | None, graph: int, crlf: bool, first: tuple[int, int, bool]) -> str:
    if crlf and not first[2]:
        return _mixed(name, first[0], n)
    return (f"line {n} of record {name!r} holds {graph:,} bases, more than its first line (line {first[0]}: "
            f"{first[1]:,}): "
            f"samtools needs equally long lines in a record; re-wrap it: `{REWRAP}`")


def _mixed(name: str | None, crlf_line: int, lf_line: int) -> str:
    a, b = sorted((crlf_line, lf_line))
    return (f"record {name!r} mixes Windows (CRLF) and Unix (LF) line breaks (lines {a} and {b}), so its lines "
            "differ in length; convert them all: `tr -d '\\r' < IN.fa > OUT.fa`")


def _unexpected(n: int, head: bytes, name: str | None, header: int,
                ended: tuple[int, int, int, bool] | None, width: int, first: tuple[int, int, bool]) -> str:
    """Why line ``n`` (not a header, not blank) stands where htslib allows neither sequence nor text."""
    if head.startswith(b";"):
        return _comment(n, head)
    if _CONTROL.search(head):
        return _binary(n)
    if name is None:
        return (f"line {n} {_show(head)} comes before any '>' header line: a FASTA record starts with "
                "`>NAME`; add a header line, or give the FASTA file")
    if ended is not None:
        k, bases, ll, crlf = ended
        if bases == 0:
            return (f"line {k} is blank inside record {name!r} (header on line {header}): samtools ends the "
                    f"record there and cannot read line {n}; remove blank lines inside records: `{REWRAP}`")
        if ll == width - 1 and first[2] and not crlf:
            return _mixed(name, first[0], k)
        return (f"line {k} of record {name!r} holds {bases:,} bases, fewer than its first line (line {first[0]}: "
                f"{first[1]:,}), but is not its last line (line {n} goes on): samtools needs equally long lines "
                f"in a record, only the last may be shorter; re-wrap it: `{REWRAP}`")
    return f"line {n} {_show(head)} stands between records, where only '>' header lines and blank lines may"
