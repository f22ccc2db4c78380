"""VCF/BCF input and annotated-VCF output through :mod:`pysam` (htslib).

This is the only place where VCF's 1-based ``POS`` is converted: :class:`VcfRecord.start`
is ``POS - 1`` (0-based), and the REF allele occupies ``[start, start + len(REF))``.

Reading
-------
VCF, VCF.gz (bgzip or gzip) and BCF; ``-`` reads standard input, which is first spooled
to a temporary file (so that it can be read twice: once to count records for the progress
bar, once to score). htslib reads only bgzip, so a plain-gzip file is read through a
temporary uncompressed copy (with a note). A header whose column line is written
``##CHROM`` instead of ``#CHROM`` (as in the Ensembl VEP Arabidopsis example) is repaired
on a temporary copy and the repair is reported; any other unreadable file or record fails
with one message naming the file, the line or record and what to do. Contigs used by
records but absent from the header are added to it (name only). INFO, FORMAT and FILTER
ids used but not declared are declared on a temporary copy as htslib and bcftools would
(``Type=String,Number=.``; an INFO key never given a value ``Flag``; ``INFO/END`` Integer),
so that their values are written back byte for byte, with a note for each.
:meth:`VariantReader.drop_own` removes an earlier run's own INFO fields and header lines.

Writing
-------
Records are written in input order with all original columns, INFO, FORMAT and sample
fields as htslib round-trips them; only the declared INFO fields are added. ``.vcf.gz`` /
``.vcf.bgz`` output is bgzipped and tabix-indexed, ``.bcf`` is BCF, anything else plain
VCF, ``-`` standard output. Files are written to a temporary name beside the target and
moved into place on success (:meth:`VariantWriter.close`); on failure nothing is left.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import re
import shutil
import sys
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import AtomicFile, output_error, publish
from .text import is_bgzf, is_gzip, open_text

__all__ = [
    "VcfError", "VcfRecord", "InfoField", "RecordLayout", "VariantReader", "VariantWriter", "open_variants",
    "open_writer",
]


class VcfError(ValueError):
    """A VCF/BCF file that cannot be read or written."""


@dataclass
class VcfRecord:
    """One VCF record.

    Attributes
    ----------
    chrom : str
        As written in the VCF.
    pos : int
        VCF ``POS`` (1-based), kept for display only.
    start : int
        0-based start of the REF allele.
    ref : str
    alts : tuple of str
        Empty when ALT is ``.``.
    id : str or None
    """

    chrom: str
    pos: int
    start: int
    ref: str
    alts: tuple[str, ...]
    id: str | None
    _rec: object = field(repr=False, default=None)

    @property
    def end(self) -> int:
        return self.start + len(self.ref)

    @property
    def reach(self) -> int:
        """0-based end of what the record covers: the REF allele's, or ``INFO/END``'s when it
        reaches further (a gVCF block, a symbolic deletion), as htslib's ``rlen`` and
        bcftools' ``-r`` read it."""
        stop = getattr(self._rec, "stop", None)
        return max(self.end, stop) if isinstance(stop, int) else self.end


@dataclass
class RecordLayout:
    """Where a file's records lie, counted while opening it (used to shard by region).

    Attributes
    ----------
    contigs : list of str
        Contig names in order of first appearance in the records.
    sorted : bool
        Records are grouped by contig and their ``POS`` never decreases within one (what
        ``bcftools sort`` writes and tabix needs).
    bin_bp : int
        Width of the position bins.
    counts : dict[str, dict[int, int]]
        Records per contig and bin; a record's bin is ``max(start, 0) // bin_bp``.
    min_start : int
        Smallest 0-based start (``-1`` when a record has ``POS`` 0).
    """

    contigs: list[str] = field(default_factory=list)
    sorted: bool = True
    bin_bp: int = 10_000
    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    min_start: int = 0

    def bin_of(self, start: int) -> int:
        return max(start, 0) // self.bin_bp


@dataclass(frozen=True)
class InfoField:
    """An INFO field to declare in the output header."""

    id: str
    description: str
    number: str = "A"
    type: str = "String"


@contextlib.contextmanager
def _quiet_htslib():
    """Silence htslib's own stderr messages (we report errors ourselves)."""
    import pysam

    old = pysam.set_verbosity(0)
    try:
        yield
    finally:
        pysam.set_verbosity(old)


def _repair_header(path: Path, tmpdir: Path) -> tuple[Path, list[str]] | None:
    """Fix a ``##CHROM`` column line on a temporary plain-text copy; ``None`` if nothing to fix."""
    notes: list[str] = []
    try:
        with open_text(path) as fh:
            header: list[str] = []
            for line in fh:
                if not line.startswith("#"):
                    break
                header.append(line)
    except (OSError, UnicodeDecodeError, EOFError):
        return None  # binary (BCF) or unreadable: nothing we can repair
    if any(h.startswith("#CHROM") for h in header):
        return None
    fixed = False
    for i, h in enumerate(header):
        if h.startswith("##CHROM") and "POS" in h:
            header[i] = h[1:].replace(" ", "\t") if "\t" not in h else h[1:]
            notes.append(f"{path}: header line {i + 1} starts with '##CHROM' instead of '#CHROM'; read as the column line")
            fixed = True
            break
    if not fixed:
        return None
    out = tmpdir / "repaired.vcf"
    with open_text(path) as src, open(out, "w", encoding="utf-8") as dst:
        n = 0
        for line in src:
            n += 1
            if n <= len(header):
                dst.write(header[n - 1])
            else:
                dst.write(line)
    return out, notes


_INFO_ID = re.compile(r"##INFO=<ID=([^,>]+)")
_DECL = re.compile(r"##(INFO|FORMAT|FILTER)=<ID=([^,>]+)")
#: what the header of a VCF must hold: the 8 fixed columns, tab-separated
_COLUMNS = "#CHROM POS ID REF ALT QUAL FILTER INFO"
_INT32 = 2**31 - 9  # htslib reserves the lowest int32 values (missing, vector end)
#: errno values of a failed write (the parts read are this run's own temporary files)
_WRITE_FAILED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _gunzip(src: Path, dst: Path, *, shown: str) -> Path:
    """Decompress a plain-gzip file to ``dst`` (a damaged one fails with one message)."""
    try:
        with gzip.open(src, "rb") as fin, open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    except (OSError, EOFError, zlib.error) as err:
        raise VcfError(f"{shown}: damaged or truncated gzip file ({err}); re-download or re-create it "
                       "(`gzip -t FILE` tests it)") from None
    return dst


def _open_problem(shown: str, src: Path, err: Exception) -> str:
    """One line saying why htslib could not open ``src`` as VCF/BCF, and what to do."""
    if is_bgzf(src) and "EOF marker" in str(err):
        return (f"{shown}: truncated bgzip file (no BGZF end-of-file marker); re-download or re-create it "
                "(`bgzip -t FILE` tests it)")
    try:
        with open_text(src) as fh:
            head = fh.read(1 << 16)
    except (OSError, EOFError, zlib.error):
        return f"{shown}: damaged or truncated compressed file; re-download or re-create it (`bgzip -t FILE` tests it)"
    except UnicodeDecodeError:
        head = "\0"
    if "\0" in head:
        return f"{shown}: not a readable VCF/BCF: binary content that is neither VCF text (plain or bgzipped) nor BCF"
    lines = head.splitlines()
    if not lines or not lines[0].startswith("##fileformat=VCF"):
        return (f"{shown}: not a readable VCF: line 1 is not '##fileformat=VCFv4.x', the first line of every VCF; "
                f"add it (validate with `bcftools view -h FILE`)")
    for i, line in enumerate(lines, 1):
        if not line.startswith("#"):
            return (f"{shown}: not a readable VCF: no '{_COLUMNS}' column line (tab-separated) before the first record "
                    f"(line {i}); add it")
        if line.startswith("#CHROM"):
            break
    dup = _repeated_sample(src)
    if dup is not None:
        return (f"{shown}: not a readable VCF: sample name {dup!r} appears more than once in the #CHROM line; "
                "sample names must be unique (rename one, e.g. with `bcftools reheader -s NAMES.txt`)")
    return f"{shown}: not a readable VCF/BCF header ({err}); validate it with `bcftools view -h FILE`"


def _repeated_sample(src: Path) -> str | None:
    """The first sample name that repeats in a text VCF's ``#CHROM`` line, or None."""
    try:
        with open_text(src) as fh:
            for line in fh:
                if line.startswith("#CHROM"):
                    seen: set[str] = set()
                    for name in line.rstrip("\r\n").split("\t")[9:]:
                        if name in seen:
                            return name
                        seen.add(name)
                    return None
                if not line.startswith("#"):
                    return None
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        pass
    return None


def _record_problem(shown: str, src: Path, n: int, err: Exception) -> str:
    """One line saying what is wrong with record ``n`` (1-based) of a text VCF, when we can tell."""
    where, what = f"record {n}", str(err)
    try:
        with open_text(src) as fh:
            k = 0
            for i, line in enumerate(fh, 1):
                if line.startswith("#") or not line.strip():  # blank lines are not records (skipped)
                    continue
                k += 1
                if k < n:
                    continue
                cols = line.rstrip("\r\n").split("\t")
                where = f"record {n} (line {i})"
                if len(cols) < 8:
                    what = (f"{len(cols)} tab-separated column(s), a record needs at least 8 ({_COLUMNS[1:]})"
                            + ("; the columns look space-separated, use tabs" if len(line.split()) >= 8 else ""))
                elif not cols[1].isdigit():
                    what = f"POS {cols[1]!r} is not a whole number >= 0"
                break
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        pass
    if what == "truncated file" and where == f"record {n}":
        what = "truncated or damaged file"
    return f"{shown}: {where}: {what}; fix or remove it (`bcftools view FILE` shows the same problem)"


def _without_blank_lines(src: Path, dst: Path) -> int:
    """Copy the text VCF ``src`` to ``dst`` without blank (or whitespace-only) lines after the
    header; returns how many there were (0: nothing written)."""
    try:
        with open_text(src) as fh:
            blank = sum(1 for line in fh if not line.strip())
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        return 0
    if not blank:
        return 0
    with open_text(src) as fin, open(dst, "w", encoding="utf-8") as fout:
        fout.writelines(line for line in fin if line.strip())
    return blank


def _declared_ids(src: Path) -> dict[str, set[str]] | None:
    """INFO, FORMAT and FILTER ids declared in a text VCF's header; None for BCF/unreadable."""
    out: dict[str, set[str]] = {"INFO": set(), "FORMAT": set(), "FILTER": set()}
    try:
        with open_text(src) as fh:
            for line in fh:
                if not line.startswith("##"):
                    break
                m = _DECL.match(line)
                if m:
                    out[m.group(1)].add(m.group(2))
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        return None
    return out


def _declare(src: Path, undeclared: dict[str, list[str]], *, shown: str) -> tuple[list[str], list[str]]:
    """Header lines declaring ``undeclared`` ids as htslib and bcftools would.

    ``Type=String,Number=.``, so that every value is written back byte for byte (a numeric
    type would rewrite ``0012345``, ``1.0`` or ``1e5``); an INFO key never given a value is a
    ``Flag``. Two ids keep the type the VCF specification gives them: ``INFO/END`` (Integer,
    which htslib needs; values that are not whole numbers are an error) and ``FORMAT/GT``.
    """
    info = set(undeclared.get("INFO", ()))
    valued: set[str] = set()  # INFO keys given a value somewhere (else: Flag)
    bad_end: str | None = None
    with open_text(src, errors="replace") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            cols = line.rstrip("\r\n").split("\t")
            if info and len(cols) > 7 and cols[7] != ".":
                for item in cols[7].split(";"):
                    key, eq, value = item.partition("=")
                    if key in info and eq:
                        valued.add(key)
                        if key == "END" and bad_end is None and not _whole(value):
                            bad_end = value
    why = "added by genaannot: used in the input but not declared in its header"
    lines, notes = [], []
    for kind in ("INFO", "FORMAT", "FILTER"):
        for key in undeclared.get(kind, ()):
            if kind == "FILTER":
                lines.append(f'##FILTER=<ID={key},Description="{why}">')
                notes.append(f"{shown}: FILTER/{key} is used but not declared in the header; declared it")
                continue
            if kind == "INFO" and key == "END":
                if bad_end is not None:
                    raise VcfError(f"{shown}: INFO/END has values that are not whole numbers ({bad_end!r}); END is "
                                   "the variant's 1-based end position: fix or remove them "
                                   "(`bcftools annotate -x INFO/END`)")
                number, typ = "1", "Integer"
            elif kind == "FORMAT" and key == "GT":
                number, typ = "1", "String"
            elif kind == "INFO" and key not in valued:
                number, typ = "0", "Flag"
            else:
                number, typ = ".", "String"
            lines.append(f'##{kind}=<ID={key},Number={number},Type={typ},Description="{why}">')
            notes.append(f"{shown}: {kind}/{key} is used but not declared in the header; "
                         f"declared it as Number={number},Type={typ}")
    return lines, notes


def _whole(text: str) -> bool:
    """Whether ``text`` is ``.`` or one whole number that fits htslib's int32 (``INFO/END``)."""
    try:
        return text == "." or abs(int(text)) <= _INT32
    except ValueError:
        return False


def _insert_header_lines(src: Path, dst: Path, lines: list[str]) -> Path:
    """A plain-text copy of ``src`` with ``lines`` added just before its ``#CHROM`` line."""
    with open_text(src, errors="replace") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            if line.startswith("#CHROM"):
                fout.writelines(f"{x}\n" for x in lines)
                fout.write(line)
                break
            fout.write(line)
        shutil.copyfileobj(fin, fout, 1 << 20)
    return dst


def _parse_header(text: str, tmpdir: Path):
    """A ``pysam.VariantHeader`` parsed by htslib from header ``text``."""
    import pysam

    fd, name = tempfile.mkstemp(prefix="header.", suffix=".vcf", dir=tmpdir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    try:
        with _quiet_htslib(), pysam.VariantFile(name) as hv:
            return hv.header.copy()
    finally:
        os.unlink(name)


class VariantReader:
    """Stream the records of a VCF/BCF file (see module docstring).

    Attributes
    ----------
    path : str
        As given (``-`` for standard input).
    notes : list of str
        Repairs made while opening, for the user.
    n_records : int
        Number of records (counted when opening).
    layout : RecordLayout
        Contig order, sortedness and records per ``bin_bp`` bin (counted when opening).
    contig_lengths : dict[str, int | None]
        ``##contig`` lines of the header.
    """

    def __init__(self, path: str | Path, *, bin_bp: int = 10_000) -> None:
        self.path = str(path)
        self.notes: list[str] = []
        self._strip: tuple[str, ...] = ()  # INFO ids removed from every record (see drop_own)
        self._tmp = tempfile.TemporaryDirectory(prefix="genaannot-vcf-")
        try:
            self._open(Path(self._tmp.name), bin_bp)
        except BaseException:
            self.close()
            raise
        self.contig_lengths: dict[str, int | None] = {
            name: (c.length if c.length else None) for name, c in self.header.contigs.items()
        }

    def _open(self, tmpdir: Path, bin_bp: int) -> None:
        import pysam

        if self.path == "-":
            src = tmpdir / "stdin.vcf"
            with open(src, "wb") as dst:
                shutil.copyfileobj(sys.stdin.buffer, dst, 1 << 20)
            if src.stat().st_size == 0:
                raise VcfError("standard input is empty; pipe a VCF/BCF into `-`")
        else:
            src = Path(self.path)
            if not src.is_file():
                raise VcfError(f"{src}: VCF file not found")
            if src.stat().st_size == 0:
                raise VcfError(f"{src}: empty file; give a VCF (text, bgzipped) or BCF file")
        if is_gzip(src) and not is_bgzf(src):
            # htslib reads only BGZF; a plain-gzip VCF is read through an uncompressed copy
            src = _gunzip(src, tmpdir / "gunzipped.vcf", shown=self.path)
            self.notes.append(f"{self.path}: gzip, not bgzip: read through a temporary uncompressed copy "
                              "(`zcat FILE | bgzip > FILE.vcf.gz` makes one that htslib reads and indexes directly)")
        self._src = src
        try:
            with _quiet_htslib():
                self._vf = pysam.VariantFile(str(src))
        except (OSError, ValueError, NotImplementedError) as err:
            repaired = _repair_header(src, tmpdir)
            if repaired is None:
                raise VcfError(_open_problem(self.path, src, err)) from None
            self._src, notes = repaired
            self.notes.extend(notes)
            try:
                with _quiet_htslib():
                    self._vf = pysam.VariantFile(str(self._src))
            except (OSError, ValueError) as err2:
                raise VcfError(f"{self.path}: not a readable VCF/BCF even after repairing its header ({err2})") from None
        self._lines = self._src  # the file whose line numbers messages give (a repair keeps them)
        first_note = len(self.notes)
        try:
            undeclared = self._prepass(bin_bp)
        except VcfError:
            # htslib stops at a blank line (one at the end of the file, too); blank lines are
            # not records, so they are left out of a text copy, with a note
            blank = _without_blank_lines(self._src, tmpdir / "noblank.vcf") if self._vf.format == "VCF" else 0
            if not blank:
                raise
            self.notes.append(f"{self.path}: {blank:,} blank line(s) skipped (they hold no record)")
            first_note = len(self.notes)
            self._vf.close()
            self._src = tmpdir / "noblank.vcf"
            with _quiet_htslib():
                self._vf = pysam.VariantFile(str(self._src))
            undeclared = self._prepass(bin_bp)
        if undeclared:
            del self.notes[first_note:]  # the second pass makes them again
            # declared in the file's own header (a text copy), so the output says that
            # genaannot added them; String, as htslib assumes: a numeric type would rewrite values
            lines, notes = _declare(self._src, undeclared, shown=self.path)
            self._vf.close()
            self._src = _insert_header_lines(self._src, tmpdir / "declared.vcf", lines)
            self.notes.extend(notes)
            with _quiet_htslib():
                self._vf = pysam.VariantFile(str(self._src))
            self._prepass(bin_bp)
        self.header = self._vf.header

    def _prepass(self, bin_bp: int) -> dict[str, list[str]]:
        """Count records and lay them out; declare what records use but the header lacks.

        Returns the undeclared INFO, FORMAT and FILTER ids of a text VCF (to be declared as
        htslib would, by the caller); contigs and, for symbolic ALTs, INFO/END are declared here.
        """
        import pysam

        n = 0
        lay = self.layout = RecordLayout(bin_bp=bin_bp)
        header = self._vf.header
        declared = _declared_ids(self._src) if self._vf.format == "VCF" else None  # BCF declares all
        last_chrom, last_pos = None, -1
        bins: dict[int, int] = {}
        try:
            with _quiet_htslib(), pysam.VariantFile(str(self._src)) as vf:
                symbolic = False
                for rec in vf:
                    n += 1
                    if not symbolic and any(a.startswith("<") for a in rec.alts or ()):
                        symbolic = True
                    chrom, pos = rec.chrom, rec.pos
                    if chrom != last_chrom:
                        if chrom in lay.counts:
                            lay.sorted = False
                            bins = lay.counts[chrom]
                        else:
                            lay.contigs.append(chrom)
                            bins = lay.counts[chrom] = {}
                        last_chrom, last_pos = chrom, -1
                    elif pos < last_pos:
                        lay.sorted = False
                    last_pos = pos
                    lay.min_start = min(lay.min_start, pos - 1)
                    b = lay.bin_of(pos - 1)
                    bins[b] = bins.get(b, 0) + 1
                seen = vf.header
        except (OSError, ValueError) as err:
            raise VcfError(_record_problem(self.path, self._lines, n + 1, err)) from None
        self.n_records = n
        undeclared: dict[str, list[str]] = {}
        if declared is not None:
            for kind, got in (("INFO", seen.info), ("FORMAT", seen.formats), ("FILTER", seen.filters)):
                missing = [k for k in got if k not in declared[kind] and not (kind == "FILTER" and k == "PASS")]
                if missing:
                    undeclared[kind] = missing
        for name in seen.contigs:
            if name not in header.contigs:
                header.contigs.add(name)
                self.notes.append(f"{self.path}: contig {name!r} is used but not declared in the header; declared it")
        end = header.info.get("END")
        if end is not None and end.type != "Integer" and "END" not in undeclared.get("INFO", ()):
            # htslib sets END from the record's length and fails on any other type
            raise VcfError(f"{self.path}: INFO/END is declared Type={end.type}, but END is the variant's 1-based end "
                           "position (Type=Integer in the VCF specification); fix its ##INFO=<ID=END,...> line")
        if symbolic and "END" not in header.info and "END" not in undeclared.get("INFO", ()):
            # htslib writes INFO/END for symbolic alleles and fails when it is undeclared
            header.info.add("END", "1", "Integer", "End position of the variant (1-based, inclusive)")
            self.notes.append(f"{self.path}: symbolic ALT alleles but no INFO/END declaration; declared it")
        return undeclared

    def drop_own(self, *, info_prefix: str, meta_keys: Sequence[str], info_ids: Sequence[str] = ()) -> list[str]:
        """Remove an earlier run's annotations from what will be written.

        INFO ids starting with ``info_prefix`` or listed in ``info_ids`` lose their
        declaration and their values on every record; ``##KEY=...`` header lines of
        ``meta_keys`` are dropped. Call it before :meth:`add_info`/:meth:`add_meta`. Returns
        what was removed (for a note).
        """
        ids = [k for k in self.header.info if k.startswith(info_prefix) or k in info_ids]
        lines = str(self.header).splitlines(keepends=True)

        def own(line: str) -> bool:
            m = _INFO_ID.match(line)
            return (m is not None and m.group(1) in ids) or any(line.startswith(f"##{k}=") for k in meta_keys)

        keep = [ln for ln in lines if not own(ln)]
        if len(keep) == len(lines):
            return []
        metas = [ln.split("=", 1)[0][2:] for ln in lines if own(ln) and not _INFO_ID.match(ln)]
        self.header = _parse_header("".join(keep), Path(self._tmp.name))
        self._strip = tuple(ids)
        return [f"INFO/{k}" for k in ids] + [f"{metas.count(k)} ##{k} line(s)" for k in dict.fromkeys(metas)]

    def add_info(self, f: InfoField) -> None:
        """Declare an INFO field; reuse an existing identical declaration."""
        if f.id in self.header.info:
            old = self.header.info[f.id]
            if str(old.number) != f.number or old.type != f.type:
                raise VcfError(
                    f"{self.path}: INFO/{f.id} is already declared as Number={old.number},Type={old.type}; "
                    f"remove it first (`bcftools annotate -x INFO/{f.id}`)"
                )
            return
        self.header.info.add(f.id, f.number, f.type, f.description)

    def add_meta(self, key: str, value: str) -> None:
        self.header.add_meta(key, value)

    @property
    def indexed(self) -> bool:
        """Whether htslib found a tabix/CSI index, so that regions can be read directly."""
        return getattr(self._vf, "index", None) is not None

    def records_in(self, regions: list[tuple[str, int, int]]) -> Iterator[VcfRecord]:
        """The records whose start lies in one of ``regions``, in file order.

        ``regions`` are ``(contig, start, end)``, 0-based half-open, in file order; a record's
        start is ``POS - 1`` (0 for ``POS`` 0), so bin-aligned regions take exactly the records
        that ``layout`` counts in their bins. With an index and a sorted file only those
        regions are read; otherwise the whole file is streamed and filtered.
        """
        want: dict[str, list[tuple[int, int]]] = {}
        for c, s, e in regions:
            want.setdefault(c, []).append((s, e))

        def keep(rec: VcfRecord) -> bool:
            x = max(rec.start, 0)
            return any(s <= x < e for s, e in want.get(rec.chrom, ()))

        if self.indexed and self.layout.sorted and self.layout.min_start >= 0:
            for c, s, e in regions:
                try:
                    with _quiet_htslib():
                        it = self._vf.fetch(c, s, e)
                except (OSError, ValueError) as err:
                    raise VcfError(f"{self.path}: cannot read region {c}:{s + 1}-{e} through its index ({err}); "
                                   "re-index it (`tabix -f -p vcf FILE` or `bcftools index -f FILE`)") from None
                yield from (r for r in self._wrap(it) if s <= r.start < e)
        else:
            yield from (r for r in self._wrap(iter(self._vf)) if keep(r))

    def __iter__(self) -> Iterator[VcfRecord]:
        return self._wrap(iter(self._vf))

    def _wrap(self, it) -> Iterator[VcfRecord]:
        n = 0
        while True:
            try:
                with _quiet_htslib():
                    rec = next(it)
            except StopIteration:
                return
            except (OSError, ValueError) as err:
                raise VcfError(f"{self.path}: cannot parse record {n + 1} ({err})") from None
            n += 1
            alts = tuple(rec.alts or ())
            if len(alts) == 1 and alts[0] in (".", ""):
                # an empty ALT column: htslib reads one allele '.', but it is ALT '.' (no ALT),
                # and is written as that; Number=A values on it would have no ALT to belong to
                alts = ()
            yield VcfRecord(
                chrom=rec.chrom,
                pos=rec.pos,
                start=rec.pos - 1,
                ref=rec.ref or "",
                alts=alts,
                id=rec.id,
                _rec=rec,
            )

    def close(self) -> None:
        vf = getattr(self, "_vf", None)
        if vf is not None:
            vf.close()
            self._vf = None
        self._tmp.cleanup()

    def __enter__(self) -> VariantReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_variants(path: str | Path, *, bin_bp: int = 10_000) -> VariantReader:
    """Open a VCF/VCF.gz/BCF file or ``-`` (see :class:`VariantReader`)."""
    return VariantReader(path, bin_bp=bin_bp)


def _mode(path: str) -> tuple[str, bool]:
    """pysam write mode and whether to tabix-index."""
    low = path.lower()
    if low.endswith((".vcf.gz", ".vcf.bgz", ".gz", ".bgz")):
        return "wz", True
    if low.endswith(".bcf"):
        return "wb", False
    return "w", False


class VariantWriter:
    """Write records of a :class:`VariantReader` with added INFO values (atomic).

    The header is ``reader``'s (as extended by ``add_info``/``add_meta``), or ``header`` (a
    ``pysam.VariantHeader``) when given instead.
    """

    def __init__(self, path: str | Path, reader: VariantReader | None = None, *, header=None) -> None:
        import pysam

        if (reader is None) == (header is None):
            raise TypeError("VariantWriter needs either a reader or a header")
        if header is None:
            header = reader.header
        # an earlier run's INFO values to drop; records then move to the new header's ids
        self._strip = reader._strip if reader is not None else ()
        self._header = header

        self.path = str(path)
        self._shown = "standard output" if self.path == "-" else self.path  # in messages
        self.indexed = False
        mode, self._index = _mode(self.path)
        self._file: AtomicFile | None = None
        if self.path == "-":
            target = "-"
            mode, self._index = "w", False
        else:
            final = Path(self.path)
            if not final.parent.is_dir():
                raise VcfError(f"{final}: output directory {final.parent} does not exist")
            # pysam and tabix look at the suffix: the temporary name keeps the final one
            suffix = "".join(final.suffixes[-2:]) or ".vcf"
            self._file = AtomicFile(final, mode=None, suffix=suffix, check=False)
            if self._file.stream:  # /dev/null, a FIFO: no index can sit beside it
                self._index = False
            self._tmp_tbi = self._file.companion(".tbi")  # where tabix puts the index
            target = str(self._file.tmp)
        try:
            with _quiet_htslib():
                self._vf = pysam.VariantFile(target, mode, header=header)
        except (OSError, ValueError) as err:
            self.abort()
            raise VcfError(f"{self.path}: cannot write ({err})") from None

    def write(self, record: VcfRecord, info: dict[str, list[str]]) -> None:
        """Write ``record`` with ``info`` (INFO id -> one string per ALT) set."""
        rec = record._rec
        try:
            if self._strip:
                for key in self._strip:
                    if key in rec.info:
                        del rec.info[key]
                rec.translate(self._header)
            for key, values in info.items():
                if None in values and self._string(key):
                    # pysam writes None in a String vector as an empty value ('+,,'), not '.'
                    values = ["." if v is None else v for v in values]
                rec.info[key] = tuple(values)  # None: missing ('.')
            self._vf.write(rec)
        except OSError as err:  # the disk, not the record: no hint about INFO declarations
            raise output_error(self._shown, err, doing=f"cannot write record {record.chrom}:{record.pos}") from None
        except (ValueError, TypeError) as err:
            raise VcfError(f"{self.path}: cannot write record {record.chrom}:{record.pos} ({err}); "
                           "check its INFO fields against their header declarations (`bcftools view` the input)"
                           ) from None

    def _string(self, key: str) -> bool:
        """Whether INFO ``key`` is declared ``Type=String`` in this file's header."""
        meta = self._header.info.get(key)
        return meta is not None and meta.type == "String"

    def write_record(self, rec) -> None:
        """Write a ``pysam.VariantRecord`` as it is (its header must match this file's)."""
        try:
            self._vf.write(rec)
        except OSError as err:
            raise output_error(self._shown, err, doing=f"cannot write record {rec.chrom}:{rec.pos}") from None
        except ValueError as err:
            raise VcfError(f"{self.path}: cannot write record {rec.chrom}:{rec.pos} ({err})") from None

    def close(self) -> None:
        """Finish the file: bgzip/tabix when asked, then move it into place."""
        import pysam

        try:
            with _quiet_htslib():
                self._vf.close()  # flushes: a full disk shows here
        except OSError as err:
            raise output_error(self._shown, err) from None
        f = self._file
        if f is None:
            return
        final = Path(self.path)
        tbi = Path(str(final) + ".tbi")
        if self._index:
            try:
                with _quiet_htslib():
                    pysam.tabix_index(str(f.tmp), preset="vcf", force=True)
                self.indexed = True
            except (OSError, ValueError) as err:
                warnings.warn(
                    f"{final}: written but not indexed ({err}); the input is probably not sorted "
                    "(`bcftools sort` it, or index the output with `tabix -p vcf`)",
                    stacklevel=2,
                )
        try:
            f.commit()  # a device or FIFO is written into only now
            if self.indexed:
                publish(self._tmp_tbi, tbi, mode=None)
            elif tbi.exists():
                tbi.unlink()  # a stale index of an older file would be wrong
        except OSError as err:
            raise output_error(self._shown, err) from None
        f.abort()  # leftovers only
        self._file = None

    def abort(self) -> None:
        """Drop the partial output (nothing is left at the target path)."""
        vf = getattr(self, "_vf", None)
        if vf is not None:
            with contextlib.suppress(Exception):
                vf.close()
        if self._file is not None:
            self._file.abort()
            self._file = None


def open_writer(path: str | Path, reader: VariantReader) -> VariantWriter:
    """Open an annotated-VCF writer with ``reader``'s (extended) header."""
    return VariantWriter(path, reader)


# --------------------------------------------------------------------------- shard partials

SHARD_META = "genaannotShard"


def shard_meta_value(fields: dict[str, object]) -> str:
    """``<k=v,...>`` for a ``##genaannotShard`` line (``,<>=`` in values replaced by ``_``)."""
    clean = {k: "".join("_" if c in ",<>=\"" else c for c in str(v)) for k, v in fields.items()}
    return "<" + ",".join(f"{k}={v}" for k, v in clean.items()) + ">"


def read_shard_header(path: str | Path) -> dict[str, str] | None:
    """Fields of the ``##genaannotShard`` header line of a VCF, or None when it has none."""
    import pysam

    try:
        with _quiet_htslib(), pysam.VariantFile(str(path)) as vf:
            text = str(vf.header)
    except (OSError, ValueError) as err:
        raise VcfError(f"{path}: not a readable VCF/BCF ({err})") from None
    for line in text.splitlines():
        if line.startswith(f"##{SHARD_META}=<") and line.endswith(">"):
            body = line[len(SHARD_META) + 4 : -1]
            return dict(kv.split("=", 1) for kv in body.split(",") if "=" in kv)
    return None


def merge_vcfs(paths: list[str | Path], output: str | Path, *, expect: list[int] | None = None) -> dict:
    """Concatenate VCF shards (in the given order) into ``output`` (``.vcf.gz``: bgzipped and
    tabix-indexed; ``.vcf``: plain). The ``##genaannotShard`` line is dropped; the header is
    the first shard's. When the concatenation is not sorted as tabix needs (contigs grouped,
    ``POS`` non-decreasing within each) the records are sorted stably in memory by header
    contig order, then position. Atomic: temporary names in the
    output directory, moved into place at the end.

    Returns ``{"records": n, "sorted_in_memory": bool}``.
    """
    import pysam

    out = Path(output)
    low = out.name.lower()
    if not low.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
        raise VcfError(f"{out}: merged output must be .vcf.gz (bgzipped + tabix index) or .vcf")
    gz = low.endswith((".gz", ".bgz"))
    if not out.parent.is_dir():
        raise VcfError(f"{out}: output directory {out.parent} does not exist")
    # plain text first; tabix_index bgzips it into the .gz companion and indexes that
    f = AtomicFile(out, suffix=".vcf", check=False)
    tmp, tmp_gz, tmp_tbi = f.tmp, f.companion(".gz"), f.companion(".gz.tbi")
    n = 0
    unsorted = False
    try:
        with open(tmp, "w") as fh:
            last: tuple[str | None, int] = (None, -1)
            done: set[str | None] = set()
            for k, path in enumerate(paths):
                with _quiet_htslib(), pysam.VariantFile(str(path)) as vf:
                    if k == 0:
                        header = [ln for ln in str(vf.header).splitlines(keepends=True)
                                  if not ln.startswith(f"##{SHARD_META}=")]
                        fh.writelines(header)
                    m = 0
                    for rec in vf:
                        # what tabix needs: contigs grouped, POS non-decreasing within each
                        if rec.chrom != last[0]:
                            unsorted = unsorted or rec.chrom in done
                            done.add(last[0])
                        elif rec.pos < last[1]:
                            unsorted = True
                        last = (rec.chrom, rec.pos)
                        fh.write(str(rec))
                        m += 1
                if expect is not None and m != expect[k]:
                    raise VcfError(f"{path}: {m} records, but its shard header says {expect[k]}")
                n += m
        if unsorted:
            _sort_vcf_text(tmp)
        if gz:
            with _quiet_htslib():
                pysam.tabix_index(str(tmp), preset="vcf", force=True)
            f.commit(source=tmp_gz)
            if not f.stream:  # no index beside a device or FIFO
                publish(tmp_tbi, str(out) + ".tbi", mode=None)
        else:
            f.commit()
    finally:
        f.abort()  # after a commit: leftovers only
    return {"records": n, "sorted_in_memory": unsorted}


def concat_vcfs(paths: list[str | Path], output: str | Path, *, expect: list[int] | None = None) -> bool:
    """Concatenate the partial VCFs of one run's shards, in the given order, into ``output``
    exactly as :class:`VariantWriter` writes a one-process run (any of its formats, ``-``
    too; records in input order, not re-sorted). The ``##genaannotShard`` line is dropped;
    the header is the first file's. Returns whether a tabix index was written.
    """
    import pysam

    try:
        with _quiet_htslib(), pysam.VariantFile(str(paths[0])) as first:
            text = str(first.header)
    except (OSError, ValueError) as err:
        raise VcfError(f"{paths[0]}: not a readable VCF ({err})") from None
    # the header without the shard line, parsed by htslib as the reader's was (version line
    # included); pysam's record.remove() would drop every line without an ID of that kind
    text = "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith(f"##{SHARD_META}="))
    fd, head_name = tempfile.mkstemp(prefix=".header.", suffix=".vcf", dir=Path(paths[0]).parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    try:
        with _quiet_htslib(), pysam.VariantFile(head_name) as hv:
            header = hv.header.copy()
    finally:
        os.unlink(head_name)
    writer = VariantWriter(output, header=header)
    try:
        for k, path in enumerate(paths):
            m = 0
            with _quiet_htslib(), pysam.VariantFile(str(path)) as vf:
                for rec in vf:
                    writer.write_record(rec)
                    m += 1
            if expect is not None and m != expect[k]:
                raise VcfError(f"{path}: {m} records, but its shard was planned with {expect[k]}")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer.indexed


def _sort_vcf_text(path: Path) -> None:
    """Sort a plain VCF's records by (header contig order, POS), stably, in memory."""
    lines = path.read_text().splitlines(keepends=True)
    head = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    order = {}
    for ln in head:
        if ln.startswith("##contig=<ID="):
            order.setdefault(ln[13:].split(",", 1)[0].rstrip(">\n"), len(order))

    def key(ln: str) -> tuple[int, int]:
        chrom, pos = ln.split("\t", 2)[:2]
        return order.get(chrom, len(order)), int(pos)

    body.sort(key=key)
    path.write_text("".join(head + body))


def concat_tables(paths: list[str | Path], output: str | Path) -> None:
    """Concatenate tab-separated tables with one header line (identical in all), atomically
    (``-``: to standard output)."""
    try:
        if str(output) == "-":
            _copy_tables(paths, sys.stdout)
            sys.stdout.flush()
            return
        with AtomicFile(output, check=False) as f, open(f.tmp, "w") as dst:
            _copy_tables(paths, dst)
    except OSError as err:
        if err.errno not in _WRITE_FAILED:
            raise
        raise output_error("standard output" if str(output) == "-" else output, err) from None  # name the table


def _copy_tables(paths: list[str | Path], dst) -> None:
    first = None
    for p in paths:
        with open(p) as src:
            head = src.readline()
            if first is None:
                first = head
                dst.write(head)
            elif head != first:
                raise VcfError(f"{p}: table header differs from {paths[0]}'s")
            shutil.copyfileobj(src, dst)
