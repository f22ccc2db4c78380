"""Gene annotations (GFF3, GTF; plain or gzip) → transcripts, exons, introns, splice sites, TSS.

GFF/GTF coordinates are 1-based inclusive; they are converted **here, once**, to the package
convention (0-based half-open). Everything returned is 0-based half-open on the forward
strand of the chromosome.

What is read
------------
Only ``exon`` lines and the transcripts they belong to. A transcript is whatever an exon's
``Parent`` (GFF3) or ``transcript_id`` (GTF) names; its gene is that feature's ``Parent`` /
``gene_id``. Transcripts without ``exon`` lines fall back to the union of their ``CDS`` and
UTR lines. Stand-alone ``intron`` lines (e.g. RNA-seq junctions in TAIR10 files) are ignored:
introns are always the gaps between consecutive exons of one transcript.

A transcript ID belongs to one transcript: one reused under another gene (GFF3 ``Parent``,
GTF ``gene_id``), or a GFF3 transcript line repeated, is an error naming both lines (GFF3
repeats an ID only on the parts of one discontinuous feature, e.g. the CDS lines of one
protein). An empty ``Parent`` (or an empty element of a ``Parent`` list) is an error.

What is left out or changed is counted in :attr:`Annotation.skipped` and said in
:attr:`Annotation.notes` (count and first line of each kind, see :data:`SKIP_KINDS`):

* transcripts on strand ``.`` or ``?`` are left out (no strand: no splice site, no TSS);
* overlapping (or touching) exons of one transcript are merged into one exon (CDS/UTR
  pieces of a transcript without exon lines are merged without a note: they touch by design,
  and a bacterial gene's CDSs of two proteins overlap);
* a gap shorter than :data:`MIN_INTRON` bp between two exons is no intron (the exons are
  joined): it is a frameshift, a ribosomal slippage site (E. coli *prfB*) or a genome
  indel the annotation steps over, not splicing;
* tRNA and rRNA transcripts (GFF3 feature type, ``biotype``/``gene_biotype``/
  ``transcript_biotype``/``*_type`` attributes; when the file records none, an Ensembl
  yeast ID ending ``_tRNA``/``_rRNA``) keep their exons but give no introns: their introns are
  removed by tRNA-splicing endonuclease or self-splice (group I), not by the spliceosome,
  and have no GT..AG.

Site definitions (in transcript orientation, one base each)
-----------------------------------------------------------
donor
    first base of the intron (the G of a canonical GT);
acceptor
    last base of the intron (the G of a canonical AG);
TSS
    first base of the transcript.

On the forward strand an intron ``[s, e)`` has donor ``s`` and acceptor ``e - 1``; on the
minus strand donor ``e - 1`` and acceptor ``s``. A TSS is ``start`` (+) or ``end - 1`` (-).
The kinds are the keys of :data:`SITE_KINDS` (a task's ``Training.site_kinds`` name them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from .text import open_text, text_errors

__all__ = [
    "AnnotationError",
    "Transcript",
    "Annotation",
    "SiteSet",
    "SITE_KINDS",
    "SKIP_KINDS",
    "MIN_INTRON",
    "read_annotation",
    "read_gff3",
    "read_gtf",
    "read_gene_table",
]

_TRANSCRIPT_PARTS = ("CDS", "five_prime_UTR", "three_prime_UTR", "UTR", "5UTR", "3UTR")
_EXON_TYPES = ("exon", "pseudogenic_exon")

#: shortest gap between two exons read as an intron (bp). Known spliceosomal introns are
#: 15 bp and longer (*Stentor*; 18-21 bp in nucleomorphs, ~30 bp in mammals) and a GT..AG
#: intron with its branch point needs more than a few bases, while the gaps that CDS pieces
#: leave at frameshifts, ribosomal slippage (E. coli *prfB*: 1 bp) and genome indels are a few bp.
MIN_INTRON = 10

#: biotypes / feature types whose introns are not spliceosomal: tRNA (tRNA-splicing
#: endonuclease) and rRNA (group I self-splicing), nuclear or mitochondrial, genes or pseudogenes
_NON_SPLICEOSOMAL = re.compile(r"(?i)(mt_)?[tr]rna(_.*)?")
#: Ensembl's S. cerevisiae transcript IDs (``YDL248W_mRNA``, ``tK(UUU)D_tRNA``): the only
#: biotype a GTF without biotype attributes (UCSC's ensGene) still carries
_ID_BIOTYPE = re.compile(r"_([tr]RNA)$")

#: what :attr:`Annotation.skipped` counts, and how :attr:`Annotation.notes` says it: the
#: thing counted (one, several), then what happened to it
SKIP_KINDS: dict[str, tuple[str, str, str]] = {
    "unstranded": ("transcript", "transcripts", "on strand '.' or '?' left out (no strand: no splice site or TSS)"),
    "overlapping_exons": ("transcript", "transcripts", "with overlapping or touching exons: merged into one exon"),
    "short_gaps": ("gap", "gaps", f"under {MIN_INTRON} bp between exons read as no intron (exons joined; a "
                   "frameshift, ribosomal slippage or genome indel, not splicing)"),
    "non_spliceosomal": ("intron", "introns", "of tRNA/rRNA transcripts giving no splice site (not spliceosomal)"),
}


class AnnotationError(ValueError):
    """An annotation file that cannot be parsed; the message names file and line."""


@dataclass(frozen=True)
class Transcript:
    """One transcript; ``exons`` are sorted, non-overlapping, 0-based half-open intervals."""

    id: str
    gene_id: str
    chrom: str
    strand: str  # "+" | "-"
    exons: tuple[tuple[int, int], ...]
    biotype: str = ""
    gene_name: str = ""  # symbol (GFF3 gene Name / gene attribute, GTF gene_name); "" when none
    #: False for a tRNA/rRNA transcript: its exons are kept (drawn) but its gaps are no
    #: spliceosomal introns, so it has no introns and no splice sites
    spliced: bool = True

    @property
    def start(self) -> int:
        return self.exons[0][0]

    @property
    def end(self) -> int:
        return self.exons[-1][1]

    @property
    def introns(self) -> tuple[tuple[int, int], ...]:
        """Gaps between consecutive exons (0-based half-open); zero-length gaps are skipped;
        none when the transcript is not spliced by the spliceosome (``spliced`` False)."""
        if not self.spliced:
            return ()
        return tuple((a[1], b[0]) for a, b in zip(self.exons, self.exons[1:]) if b[0] > a[1])

    @property
    def tss(self) -> int:
        """First transcribed base (forward-strand coordinate)."""
        return self.start if self.strand == "+" else self.end - 1


@dataclass
class SiteSet:
    """Unique one-base sites of one kind on one chromosome.

    Attributes
    ----------
    pos : int64 [n]
        Forward-strand 0-based positions, sorted by (strand, position).
    strand : <U1 [n]
        ``"+"`` or ``"-"``.
    """

    pos: np.ndarray
    strand: np.ndarray

    def on(self, strand: str) -> np.ndarray:
        """Sorted positions of the sites on ``strand``; int64 [k]."""
        return self.pos[self.strand == strand]

    def __len__(self) -> int:
        return int(self.pos.shape[0])


def _donors(t: Transcript) -> list[int]:
    return [s if t.strand == "+" else e - 1 for s, e in t.introns]


def _acceptors(t: Transcript) -> list[int]:
    return [e - 1 if t.strand == "+" else s for s, e in t.introns]


def _tss(t: Transcript) -> list[int]:
    return [t.tss]


#: site kind -> the forward 0-based bases of that kind in one transcript (splice sites
#: intron-side, see the module docstring; :mod:`genaannot.conventions` moves them)
SITE_KINDS: dict[str, Callable[[Transcript], list[int]]] = {"donor": _donors, "acceptor": _acceptors, "tss": _tss}


@dataclass
class Annotation:
    """Transcripts of one annotation file, by chromosome (in first-seen order)."""

    path: str
    transcripts: dict[str, list[Transcript]] = field(default_factory=dict)
    #: False for a gene table without exon columns (transcripts are then one exon: no sites)
    exons_known: bool = True
    #: what reading left out or changed: :data:`SKIP_KINDS` key -> (count, first line, an
    #: example transcript ID); kinds that did not occur are absent
    skipped: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    @property
    def notes(self) -> list[str]:
        """One line per :attr:`skipped` kind, for a caller to print (nothing is dropped unsaid)."""
        return [f"{self.path}: {n:,} {SKIP_KINDS[k][n != 1]} {SKIP_KINDS[k][2]} (first: line {line}, transcript {tid})"
                for k, (n, line, tid) in self.skipped.items()]

    @property
    def chroms(self) -> list[str]:
        return list(self.transcripts)

    def n_transcripts(self) -> int:
        return sum(len(v) for v in self.transcripts.values())

    def introns(self, chrom: str) -> list[tuple[int, int, str]]:
        """Unique introns ``(start, end, strand)`` of ``chrom``, sorted."""
        out = {(s, e, t.strand) for t in self.transcripts.get(chrom, []) for s, e in t.introns}
        return sorted(out)

    def sites(self, chrom: str, kind: str) -> SiteSet:
        """Unique sites of ``kind`` (a :data:`SITE_KINDS` key: ``donor``, ``acceptor``, ``tss``)
        on ``chrom`` (see module docstring)."""
        where = SITE_KINDS.get(kind) if isinstance(kind, str) else None
        if where is None:
            raise ValueError(f"unknown site kind {kind!r}; choose {', '.join(SITE_KINDS)}")
        found = {(t.strand, p) for t in self.transcripts.get(chrom, []) for p in where(t)}
        items = sorted(found)
        return SiteSet(
            pos=np.array([p for _, p in items], dtype=np.int64),
            strand=np.array([s for s, _ in items], dtype="<U1"),
        )

    def rename(self, mapping: dict[str, str]) -> Annotation:
        """A copy with chromosomes renamed (e.g. onto the genome's names); unmapped are dropped."""
        out: dict[str, list[Transcript]] = {}
        for chrom, ts in self.transcripts.items():
            if chrom in mapping:
                new = mapping[chrom]
                out.setdefault(new, []).extend(replace(t, chrom=new) for t in ts)
        return Annotation(self.path, out, self.exons_known, dict(self.skipped))


# --------------------------------------------------------------------------- parsing


def _open_text(path: Path):
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    return open_text(path, errors="replace")


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".gz", ".bgz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(".gtf") or name.endswith(".gff2"):
        return "gtf"
    if name.endswith(".gff3") or name.endswith(".gff"):
        return "gff3"
    if name.endswith(".txt") or name.endswith(".tsv"):
        return "genetable"
    raise AnnotationError(f"{path}: unknown annotation format; expected .gff3, .gff, .gtf or a SpliceAI gene "
                          "table .txt (optionally .gz)")


def read_annotation(path: str | Path, *, fmt: str | None = None) -> Annotation:
    """Read a GFF3 or GTF file (format from the extension unless ``fmt`` is given)."""
    path = Path(path)
    fmt = fmt or _format_of(path)
    if fmt == "gtf":
        return read_gtf(path)
    if fmt == "gff3":
        return read_gff3(path)
    if fmt == "genetable":
        return read_gene_table(path)
    raise AnnotationError(f"{path}: unknown format {fmt!r}; choose gff3, gtf or genetable")


def _fields(path: Path, lineno: int, line: str) -> tuple[str, str, int, int, str, str] | None:
    """Split a GFF/GTF line; returns (chrom, type, start0, end0, strand, attributes)."""
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) != 9:
        raise AnnotationError(
            f"{path}:{lineno}: expected 9 tab-separated columns, found {len(cols)} "
            "(is the file space-separated or truncated?)"
        )
    chrom, _source, ftype, start, end, _score, strand, _phase, attrs = cols
    try:
        s1, e1 = int(start), int(end)
    except ValueError:
        raise AnnotationError(f"{path}:{lineno}: start/end {start!r}/{end!r} are not integers") from None
    if s1 < 1 or e1 < s1:
        raise AnnotationError(f"{path}:{lineno}: invalid interval {start}-{end} (1-based inclusive, start <= end)")
    if strand not in ("+", "-", ".", "?"):
        raise AnnotationError(f"{path}:{lineno}: strand {strand!r} is not +, -, . or ?")
    return chrom, ftype, s1 - 1, e1, strand, attrs  # 1-based inclusive -> 0-based half-open


class _Builder:
    """Collects exon (and fallback CDS/UTR) intervals per transcript while parsing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.exons: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # tid -> (start, end, line)
        self.parts: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        self.where: dict[str, tuple[str, str, int]] = {}  # tid -> chrom, strand, first line
        self.gene: dict[str, str] = {}
        self.name: dict[str, str] = {}  # tid -> gene symbol
        self.biotype: dict[str, str] = {}
        self.unspliced: set[str] = set()  # tRNA/rRNA transcripts: no spliceosomal introns
        self.order: list[str] = []
        self.skipped: dict[str, tuple[int, int, str]] = {}

    def add(self, tid: str, chrom: str, strand: str, start: int, end: int, lineno: int, *, exon: bool) -> None:
        if tid not in self.where:
            self.where[tid] = (chrom, strand, lineno)
            self.order.append(tid)
        else:
            c0, s0, l0 = self.where[tid]
            if c0 != chrom or s0 != strand:
                raise AnnotationError(
                    f"{self.path}:{lineno}: transcript {tid!r} is on {chrom} {strand} here but on "
                    f"{c0} {s0} at line {l0}"
                )
        (self.exons if exon else self.parts)[tid].append((start, end, lineno))

    def skip(self, kind: str, lineno: int, tid: str, n: int = 1) -> None:
        """Count ``n`` of ``kind`` (a :data:`SKIP_KINDS` key), keeping the earliest line as the example."""
        n0, l0, t0 = self.skipped.get(kind, (0, lineno, tid))
        self.skipped[kind] = (n0 + n, *((lineno, tid) if lineno < l0 else (l0, t0)))

    def _exons(self, tid: str) -> list[list[int]]:
        """Sorted, merged ``[start, end, line]`` of ``tid``; overlaps and short gaps counted."""
        from_exons = tid in self.exons
        merged: list[list[int]] = []
        overlap = 0  # first line of an exon overlapping (or touching) the one before
        for s, e, line in sorted(self.exons.get(tid) or self.parts.get(tid) or []):
            gap = s - merged[-1][1] if merged else MIN_INTRON
            if gap <= 0 and from_exons:  # exon lines that overlap or touch: an annotation fault
                overlap = min(overlap or line, line)
            elif 0 < gap < MIN_INTRON:
                self.skip("short_gaps", line, tid)
            if gap < MIN_INTRON:  # CDS+UTR pieces touch, a gene's CDSs overlap (bacteria): one exon, no note
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e, line])
        if overlap:
            self.skip("overlapping_exons", overlap, tid)
        return merged

    def build(self) -> tuple[dict[str, list[Transcript]], dict[str, tuple[int, int, str]]]:
        out: dict[str, list[Transcript]] = {}
        for tid in self.order:
            chrom, strand, lineno = self.where[tid]
            if strand not in ("+", "-"):
                self.skip("unstranded", lineno, tid)  # cannot define splice sites or TSS
                continue
            merged = self._exons(tid)
            if not merged:
                continue
            spliced = tid not in self.unspliced
            if not spliced and len(merged) > 1:
                self.skip("non_spliceosomal", min(x[2] for x in merged[1:]), tid, len(merged) - 1)
            out.setdefault(chrom, []).append(
                Transcript(tid, self.gene.get(tid, tid), chrom, strand, tuple((s, e) for s, e, _ in merged),
                           self.biotype.get(tid, ""), self.name.get(tid, ""), spliced)
            )
        for ts in out.values():
            ts.sort(key=lambda t: (t.start, t.end, t.id))
        return out, self.skipped


#: feature types that say nothing about a transcript's biotype
_GENERIC_TYPES = ("gene", "transcript", "")


def _unspliced(hints: list[str | None], tid: str) -> bool:
    """Whether biotype ``hints`` (feature types, biotype attributes) name a tRNA or rRNA;
    with no hint, whether ``tid`` is an Ensembl yeast tRNA/rRNA ID (``tK(UUU)D_tRNA``)."""
    known = [h for h in hints if h and h not in _GENERIC_TYPES]
    if known:
        return any(_NON_SPLICEOSOMAL.fullmatch(h) for h in known)
    return bool(_ID_BIOTYPE.search(tid))


def _gff3_attrs(path: Path, lineno: int, text: str) -> dict[str, str]:
    """``key=value`` pairs; a ``;`` that should have been escaped (``Note=a;b``) stays in the value."""
    out: dict[str, str] = {}
    last = None
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            if last is None:
                raise AnnotationError(f"{path}:{lineno}: attribute {part.strip()!r} is not key=value "
                                      "(is this a GTF file?)")
            out[last] += ";" + part
            continue
        k, v = part.split("=", 1)
        last = k.strip()
        out[last] = v.strip()
    return out


#: biotype attributes (Ensembl GFF3/GTF ``biotype``/``*_biotype``, GENCODE ``*_type``)
_BIOTYPE_KEYS = ("biotype", "transcript_biotype", "transcript_type", "gene_biotype", "gene_type")


def read_gff3(path: str | Path) -> Annotation:
    """Read a GFF3 file; see the module docstring for what becomes a transcript."""
    path = Path(path)
    b = _Builder(path)
    feature_parent: dict[str, str] = {}  # feature ID -> its first Parent (transcript -> gene)
    feature_type: dict[str, str] = {}
    feature_name: dict[str, str] = {}  # gene Name, or a feature's gene= / gene_name= symbol
    feature_hints: dict[str, list[str | None]] = {}  # feature ID -> its type and biotype attributes
    first_line: dict[str, tuple[str, str, int]] = {}  # feature ID -> type, Parent, first line
    repeated: dict[str, tuple[str, int]] = {}  # feature ID -> Parent, line of its first repeat
    with text_errors(path, AnnotationError, what="annotation"), _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("##FASTA"):
                break
            if not line.strip() or line.startswith("#"):
                continue
            chrom, ftype, s, e, strand, attr_text = _fields(path, lineno, line)
            attrs = _gff3_attrs(path, lineno, attr_text)
            parents = [unquote(p.strip()) for p in attrs["Parent"].split(",")] if "Parent" in attrs else []
            if "Parent" in attrs and not all(parents):  # `Parent=` or `Parent=a,` would name transcript ''
                raise AnnotationError(f"{path}:{lineno}: empty Parent ({'Parent=' + attrs['Parent']!r}): give the "
                                      f"ID(s) of the feature(s) this {ftype} belongs to, comma-separated")
            fid = attrs.get("ID")
            symbol = attrs.get("gene") or attrs.get("gene_name")
            if fid is not None:
                fid = unquote(fid)
                if fid in first_line:
                    t0 = first_line[fid][0]
                    # one discontinuous feature (the CDS lines of one protein) repeats its ID legally
                    if not (ftype == t0 and (ftype in _EXON_TYPES or ftype in _TRANSCRIPT_PARTS)):
                        repeated.setdefault(fid, (",".join(parents), lineno))
                else:
                    first_line[fid] = (ftype, ",".join(parents), lineno)
                feature_type.setdefault(fid, ftype)
                feature_hints.setdefault(fid, [ftype, *(attrs.get(k) for k in _BIOTYPE_KEYS)])
                if ftype == "gene" and "Name" in attrs:
                    feature_name.setdefault(fid, unquote(attrs["Name"]))
                elif symbol:
                    feature_name.setdefault(fid, unquote(symbol))
                if parents:
                    feature_parent.setdefault(fid, parents[0])
            is_exon = ftype in _EXON_TYPES
            if not is_exon and ftype not in _TRANSCRIPT_PARTS:
                continue
            if not parents:
                raise AnnotationError(f"{path}:{lineno}: {ftype} line has no Parent attribute")
            for parent in parents:
                b.add(parent, chrom, strand, s, e, lineno, exon=is_exon)
                if symbol:
                    feature_name.setdefault(parent, unquote(symbol))
    # CDS lines also name their protein (TAIR10: Parent=T.1,T.1-Protein); a protein is no transcript
    b.order = [t for t in b.order if t in b.exons or feature_type.get(t) not in ("protein", "polypeptide")]
    for tid in b.order:
        if tid in repeated:  # a reused transcript ID would merge two transcripts, inventing an intron
            p0, l0 = first_line[tid][1:]
            p1, l1 = repeated[tid]
            said = (f"belongs to gene {p1} here but to {p0} at line {l0}" if p0 and p1 and p0 != p1
                    else f"is defined again here (first at line {l0})")
            raise AnnotationError(f"{path}:{l1}: transcript {tid!r} {said}: IDs must be unique (only the parts "
                                  "of one discontinuous feature, such as the CDS lines of one protein, share an ID)")
        b.gene[tid] = feature_parent.get(tid, tid)
        b.biotype[tid] = feature_type.get(tid, "")
        b.name[tid] = feature_name.get(b.gene[tid]) or feature_name.get(tid, "")
        gene = b.gene[tid] if b.gene[tid] != tid else None
        if _unspliced(feature_hints.get(tid, []) + feature_hints.get(gene or "", []), tid):
            b.unspliced.add(tid)
    transcripts, skipped = b.build()
    return Annotation(str(path), transcripts, skipped=skipped)


#: one GTF attribute: key, then a quoted value (``;`` and escaped quotes allowed inside) or a bare one
_GTF_ATTR = re.compile(r'\s*([^\s;"]+)\s+("(?:[^"\\]|\\.)*"|[^;"\s][^;]*?)\s*(?:;|$)')


def _gtf_attrs(path: Path, lineno: int, text: str) -> dict[str, str]:
    """``key "value";`` pairs; a ``;`` inside a quoted value is part of the value."""
    out: dict[str, str] = {}
    text = text.strip()
    pos = 0
    while pos < len(text):
        if text[pos] in "; \t":
            pos += 1
            continue
        m = _GTF_ATTR.match(text, pos)
        if m is None or m.end() == pos:
            part = text[pos:].split(";", 1)[0].strip()
            raise AnnotationError(f"{path}:{lineno}: attribute {part!r} is not `key \"value\"` (an unclosed quote? "
                                  "is this a GFF3 file?)")
        v = m.group(2)
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1].replace('\\"', '"')
        out.setdefault(m.group(1), v)
        pos = m.end()
    return out


def read_gtf(path: str | Path) -> Annotation:
    """Read a GTF (GFF2) file: exons grouped by ``transcript_id``, genes by ``gene_id``."""
    path = Path(path)
    b = _Builder(path)
    hints: dict[str, list[str | None]] = {}  # tid -> biotype attributes of its first line
    with text_errors(path, AnnotationError, what="annotation"), _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith("#"):
                continue
            chrom, ftype, s, e, strand, attr_text = _fields(path, lineno, line)
            is_exon = ftype == "exon"
            if not is_exon and ftype not in _TRANSCRIPT_PARTS:
                continue
            attrs = _gtf_attrs(path, lineno, attr_text)
            tid = attrs.get("transcript_id")
            if not tid:
                raise AnnotationError(f"{path}:{lineno}: {ftype} line has no transcript_id attribute")
            b.add(tid, chrom, strand, s, e, lineno, exon=is_exon)
            gid = attrs.get("gene_id", tid)
            if b.gene.setdefault(tid, gid) != gid:  # a reused transcript ID would merge two genes' exons
                raise AnnotationError(f"{path}:{lineno}: transcript {tid!r} belongs to gene {gid} here but to "
                                      f"{b.gene[tid]} at line {b.where[tid][2]}: IDs must be unique")
            if attrs.get("gene_name"):
                b.name.setdefault(tid, attrs["gene_name"])
            b.biotype.setdefault(tid, attrs.get("transcript_biotype", attrs.get("transcript_type", "")))
            hints.setdefault(tid, [attrs.get(k) for k in _BIOTYPE_KEYS])
    b.unspliced = {tid for tid in b.order if _unspliced(hints[tid], tid)}
    transcripts, skipped = b.build()
    return Annotation(str(path), transcripts, skipped=skipped)


def read_gene_table(path: str | Path) -> Annotation:
    """Read SpliceAI's gene table (``spliceai/annotations/grch37.txt``): tab-separated
    ``#NAME CHROM STRAND TX_START TX_END [EXON_START EXON_END]``, ``TX_START`` and exon starts
    0-based, ends 1-based inclusive (so ``[start, end)`` here), exon lists comma-separated.

    Without the exon columns each gene is one exon (no splice sites; ``exons_known`` False).
    """
    path = Path(path)
    out: dict[str, list[Transcript]] = {}
    cols: list[str] | None = None
    exons_known = True
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            f = line.rstrip("\r\n").split("\t")
            if cols is None:
                cols = [c.lstrip("#").upper() for c in f]
                need = ["NAME", "CHROM", "STRAND", "TX_START", "TX_END"]
                if cols[:5] != need:
                    raise AnnotationError(f"{path}:{lineno}: expected a header line #NAME CHROM STRAND TX_START "
                                          f"TX_END [EXON_START EXON_END] (SpliceAI's gene table), found {line.strip()!r}")
                exons_known = cols[5:7] == ["EXON_START", "EXON_END"]
                continue
            if len(f) < len(cols):
                raise AnnotationError(f"{path}:{lineno}: expected {len(cols)} tab-separated columns, found {len(f)}")
            name, chrom, strand = f[0], f[1], f[2]
            if strand not in ("+", "-"):
                raise AnnotationError(f"{path}:{lineno}: strand {strand!r} is not + or -")
            try:
                s0, e0 = int(f[3]), int(f[4])
                if exons_known:
                    starts = [int(x) for x in f[5].split(",") if x.strip()]
                    ends = [int(x) for x in f[6].split(",") if x.strip()]
                else:
                    starts, ends = [s0], [e0]
            except ValueError:
                raise AnnotationError(f"{path}:{lineno}: coordinates are not integers") from None
            if len(starts) != len(ends) or not starts or e0 <= s0 or any(b <= a for a, b in zip(starts, ends)):
                raise AnnotationError(f"{path}:{lineno}: invalid gene or exon coordinates for {name}")
            exons = tuple(sorted(zip(starts, ends)))
            out.setdefault(chrom, []).append(Transcript(name, name, chrom, strand, exons, "", name))
    if cols is None:
        raise AnnotationError(f"{path}: empty gene table")
    return Annotation(str(path), out, exons_known)
