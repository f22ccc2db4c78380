"""GFF3/GTF parsing: coordinates, strands, site definitions, errors naming file:line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pysam
import pytest

from genaannot.io.annotation import AnnotationError, read_annotation

GFF3 = """##gff-version 3
c1\tt\tgene\t11\t100\t.\t+\t.\tID=g1
c1\tt\tmRNA\t11\t100\t.\t+\t.\tID=t1;Parent=g1
c1\tt\texon\t11\t20\t.\t+\t.\tParent=t1
c1\tt\texon\t31\t40\t.\t+\t.\tParent=t1
c1\tt\tCDS\t15\t20\t.\t+\t0\tParent=t1,t1-Protein
c1\tt\texon\t61\t100\t.\t+\t.\tParent=t1
c1\tt\tprotein\t15\t70\t.\t+\t.\tID=t1-Protein;Derives_from=t1
c1\tRNASeq\tintron\t21\t30\t5\t+\t.\tID=junk
c1\tt\tgene\t201\t300\t.\t-\t.\tID=g2
c1\tt\tmRNA\t201\t300\t.\t-\t.\tID=t2;Parent=g2
c1\tt\texon\t251\t300\t.\t-\t.\tParent=t2
c1\tt\texon\t201\t230\t.\t-\t.\tParent=t2
"""

GTF = """c1\tt\texon\t11\t20\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
c1\tt\texon\t31\t40\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
c1\tt\texon\t61\t100\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
c1\tt\texon\t251\t300\t.\t-\t.\tgene_id "g2"; transcript_id "t2";
c1\tt\texon\t201\t230\t.\t-\t.\tgene_id "g2"; transcript_id "t2";
"""


@pytest.mark.parametrize("name,text", [("a.gff3", GFF3), ("a.gtf", GTF), ("a.gff3.gz", GFF3)])
def test_transcripts_and_sites(tmp_path, name, text):
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    ann = read_annotation(p)
    ts = ann.transcripts["c1"]
    assert [t.id for t in ts] == ["t1", "t2"]  # the protein is not a transcript
    t1, t2 = ts
    assert t1.exons == ((10, 20), (30, 40), (60, 100))  # 1-based inclusive -> 0-based half-open
    assert t1.introns == ((20, 30), (40, 60))
    assert t2.introns == ((230, 250),)
    assert t1.gene_id == "g1"
    # + strand: donor = first intron base, acceptor = last intron base
    d, a, tss = ann.sites("c1", "donor"), ann.sites("c1", "acceptor"), ann.sites("c1", "tss")
    assert d.on("+").tolist() == [20, 40] and a.on("+").tolist() == [29, 59]
    # - strand: transcript orientation runs right to left
    assert d.on("-").tolist() == [249] and a.on("-").tolist() == [230]
    assert tss.on("+").tolist() == [10] and tss.on("-").tolist() == [299]
    assert ann.introns("c1") == [(20, 30, "+"), (40, 60, "+"), (230, 250, "-")]


def test_a_site_kind_is_a_registry_entry(tmp_path, monkeypatch):
    """``Annotation.sites`` serves whatever :data:`SITE_KINDS` holds (here a transcript end), nothing else."""
    from genaannot.io.annotation import SITE_KINDS

    p = tmp_path / "a.gff3"
    p.write_text(GFF3)
    ann = read_annotation(p)
    with pytest.raises(ValueError, match="unknown site kind 'tes'; choose donor, acceptor, tss"):
        ann.sites("c1", "tes")
    monkeypatch.setitem(SITE_KINDS, "tes", lambda t: [t.end - 1 if t.strand == "+" else t.start])
    tes = ann.sites("c1", "tes")
    assert tes.on("+").tolist() == [99] and tes.on("-").tolist() == [200]


def test_real_athaliana_sites_are_canonical():
    # the bundled copy of TAIR10 1% (indexed in the repository: nothing is written beside it)
    base = Path(__file__).resolve().parent.parent / "examples/athaliana"
    ann = read_annotation(base / "athaliana_1pct.gff3.gz")
    fa = pysam.FastaFile(str(base / "athaliana_1pct.fa.gz"))
    from genaannot.windows import reverse_complement as revcomp

    dinucs = {"donor": [], "acceptor": []}
    d = ann.sites("Chr5", "donor")
    for p, s in zip(d.pos, d.strand):
        dinucs["donor"].append(fa.fetch("Chr5", p, p + 2) if s == "+" else revcomp(fa.fetch("Chr5", p - 1, p + 1)))
    a = ann.sites("Chr5", "acceptor")
    for p, s in zip(a.pos, a.strand):
        dinucs["acceptor"].append(fa.fetch("Chr5", p - 1, p + 1) if s == "+" else revcomp(fa.fetch("Chr5", p, p + 2)))
    assert np.mean([x in ("GT", "GC") for x in dinucs["donor"]]) > 0.99
    assert np.mean([x == "AG" for x in dinucs["acceptor"]]) > 0.99


@pytest.mark.parametrize(
    "line,msg",
    [
        ("c1\tt\texon\t11\t20\t.\t+\t.", "expected 9 tab-separated columns"),
        ("c1\tt\texon\tx\t20\t.\t+\t.\tParent=t1", "not integers"),
        ("c1\tt\texon\t30\t20\t.\t+\t.\tParent=t1", "invalid interval"),
        ("c1\tt\texon\t10\t20\t.\t*\t.\tParent=t1", "strand"),
        ("c1\tt\texon\t10\t20\t.\t+\t.\tID=e1", "no Parent"),
    ],
)
def test_errors_name_file_and_line(tmp_path, line, msg):
    p = tmp_path / "bad.gff3"
    p.write_text("##gff-version 3\n" + line + "\n")
    with pytest.raises(AnnotationError, match=rf"bad.gff3:2: .*{msg}"):
        read_annotation(p)


def test_transcript_on_two_strands_is_an_error(tmp_path):
    p = tmp_path / "x.gtf"
    p.write_text(GTF + 'c1\tt\texon\t500\t600\t.\t-\t.\tgene_id "g1"; transcript_id "t1";\n')
    with pytest.raises(AnnotationError, match=r"x.gtf:6: transcript 't1'"):
        read_annotation(p)


def test_unknown_extension(tmp_path):
    with pytest.raises(AnnotationError, match="unknown annotation format"):
        read_annotation(tmp_path / "a.bed")


# the tester's hand-made genome: a + gene (exons 101-200, 301-400) and a - gene (1001-1100,
# 1201-1300) on a 3,000-bp chromosome
GENOME_GFF3 = """##gff-version 3
chr1\tt\tgene\t101\t400\t.\t+\t.\tID=g1
chr1\tt\tmRNA\t101\t400\t.\t+\t.\tID=t1;Parent=g1
chr1\tt\texon\t101\t200\t.\t+\t.\tParent=t1
chr1\tt\texon\t301\t400\t.\t+\t.\tParent=t1
chr1\tt\tgene\t1001\t1300\t.\t-\t.\tID=g3
chr1\tt\tmRNA\t1001\t1300\t.\t-\t.\tID=t3;Parent=g3
chr1\tt\texon\t1001\t1100\t.\t-\t.\tParent=t3
chr1\tt\texon\t1201\t1300\t.\t-\t.\tParent=t3
"""
GENOME_GTF = """chr1\tt\texon\t101\t200\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chr1\tt\texon\t301\t400\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chr1\tt\texon\t1001\t1100\t.\t-\t.\tgene_id "g3"; transcript_id "t3";
chr1\tt\texon\t1201\t1300\t.\t-\t.\tgene_id "g3"; transcript_id "t3";
"""


def _write(tmp_path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "name,extra,msg",
    [
        # t1 again, under another gene: its exons would join t1's, inventing the intron [400, 1999)
        ("dup.gff3", "chr1\tt\tmRNA\t2001\t2400\t.\t+\t.\tID=t1;Parent=g2\n"
                     "chr1\tt\texon\t2001\t2100\t.\t+\t.\tParent=t1\nchr1\tt\texon\t2301\t2400\t.\t+\t.\tParent=t1\n",
         r"dup.gff3:10: transcript 't1' belongs to gene g2 here but to g1 at line 3: IDs must be unique"),
        # the same mRNA line twice is a duplicate ID too
        ("dup.gff3", "chr1\tt\tmRNA\t101\t400\t.\t+\t.\tID=t1;Parent=g1\n",
         r"dup.gff3:10: transcript 't1' is defined again here \(first at line 3\): IDs must be unique"),
        ("dup.gtf", 'chr1\tt\texon\t2001\t2100\t.\t+\t.\tgene_id "g2"; transcript_id "t1";\n',
         r"dup.gtf:5: transcript 't1' belongs to gene g2 here but to g1 at line 1: IDs must be unique"),
    ],
)
def test_a_reused_transcript_id_is_an_error(tmp_path, name, extra, msg):
    p = _write(tmp_path, name, (GENOME_GFF3 if name.endswith(".gff3") else GENOME_GTF) + extra)
    with pytest.raises(AnnotationError, match=msg):
        read_annotation(p)


def test_a_discontinuous_feature_may_repeat_its_id(tmp_path):
    """GFF3 lets the parts of one feature share an ID (E. coli RefSeq: the two CDS lines of prfB)."""
    p = _write(tmp_path, "cds.gff3", "##gff-version 3\n"
               "chr1\tt\tgene\t101\t400\t.\t+\t.\tID=g1\n"
               "chr1\tt\tCDS\t101\t200\t.\t+\t0\tID=cds1;Parent=g1\n"
               "chr1\tt\tCDS\t301\t400\t.\t+\t0\tID=cds1;Parent=g1\n")
    (t,) = read_annotation(p).transcripts["chr1"]
    assert t.id == "g1" and t.exons == ((100, 200), (300, 400))


@pytest.mark.parametrize("parent", ["Parent=", "Parent=t1,", "Parent=,t1", "Parent=t1,,t3"])
def test_an_empty_parent_is_an_error(tmp_path, parent):
    p = _write(tmp_path, "bad.gff3", GENOME_GFF3 + f"chr1\tt\texon\t2101\t2200\t.\t+\t.\t{parent}\n")
    with pytest.raises(AnnotationError, match=r"bad.gff3:10: empty Parent"):
        read_annotation(p)


@pytest.mark.parametrize("name,text", [("bom.gff3", GENOME_GFF3), ("bom.gtf", GENOME_GTF), ("bom.gff3.gz", GENOME_GFF3)])
def test_a_byte_order_mark_is_not_text(tmp_path, name, text):
    data = b"\xef\xbb\xbf" + text.encode()  # what Windows editors write first
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    ann = read_annotation(p)
    assert ann.chroms == ["chr1"] and [t.id for t in ann.transcripts["chr1"]] == ["t1", "t3"]


def test_what_is_left_out_or_changed_is_counted(tmp_path):
    p = _write(tmp_path, "odd.gff3", GENOME_GFF3
               # line 10-12: an unstranded transcript is left out
               + "chr2\tt\tmRNA\t101\t400\t.\t.\t.\tID=u1;Parent=g4\n"
               "chr2\tt\texon\t101\t200\t.\t.\t.\tParent=u1\n"
               "chr2\tt\texon\t301\t400\t.\t.\t.\tParent=u1\n"
               # line 13-14: overlapping exons become one
               "chr3\tt\texon\t101\t200\t.\t+\t.\tParent=o1\n"
               "chr3\tt\texon\t150\t250\t.\t+\t.\tParent=o1\n"
               # line 15-16: a 1-bp gap (ribosomal slippage) is no intron
               "chr3\tt\tCDS\t1001\t1100\t.\t-\t0\tID=c1;Parent=s1\n"
               "chr3\tt\tCDS\t1102\t1300\t.\t-\t0\tID=c1;Parent=s1\n")
    ann = read_annotation(p)
    assert "u1" not in {t.id for ts in ann.transcripts.values() for t in ts}
    o1, s1 = ann.transcripts["chr3"]
    assert o1.exons == ((100, 250),) and s1.exons == ((1000, 1300),) and not s1.introns
    assert ann.skipped == {"unstranded": (1, 11, "u1"), "overlapping_exons": (1, 14, "o1"),
                           "short_gaps": (1, 16, "s1")}
    assert ann.notes == [
        f"{p}: 1 transcript on strand '.' or '?' left out (no strand: no splice site or TSS) (first: line 11, "
        "transcript u1)",
        f"{p}: 1 transcript with overlapping or touching exons: merged into one exon (first: line 14, transcript o1)",
        f"{p}: 1 gap under 10 bp between exons read as no intron (exons joined; a frameshift, ribosomal slippage "
        "or genome indel, not splicing) (first: line 16, transcript s1)",
    ]
    # a gap of MIN_INTRON bp is an intron; renaming keeps the record
    from genaannot.io.annotation import MIN_INTRON

    q = _write(tmp_path, "ok.gff3", f"c\tt\texon\t1\t10\t.\t+\t.\tParent=t\nc\tt\texon\t{11 + MIN_INTRON}\t40\t.\t+\t.\tParent=t\n")
    assert read_annotation(q).transcripts["c"][0].introns == ((10, 10 + MIN_INTRON),)
    assert read_annotation(q).notes == [] and ann.rename({"chr3": "3"}).notes == ann.notes


TRNA_GFF3 = GENOME_GFF3 + (
    "chr1\tt\tgene\t2001\t2090\t.\t+\t.\tID=g5;gene_biotype=tRNA\n"
    "chr1\tt\ttRNA\t2001\t2090\t.\t+\t.\tID=r5;Parent=g5\n"
    "chr1\tt\texon\t2001\t2038\t.\t+\t.\tParent=r5\n"
    "chr1\tt\texon\t2053\t2090\t.\t+\t.\tParent=r5\n"
)
TRNA_GTF = GENOME_GTF + (
    'chr1\tt\texon\t2001\t2038\t.\t+\t.\tgene_id "g5"; transcript_id "r5"; gene_biotype "tRNA";\n'
    'chr1\tt\texon\t2053\t2090\t.\t+\t.\tgene_id "g5"; transcript_id "r5"; gene_biotype "tRNA";\n'
)
# UCSC's ensGene GTF (genomepy's sacCer3) records no biotype: only Ensembl's yeast IDs say tRNA
TRNA_ID_GTF = GENOME_GTF + (
    'chr1\tt\texon\t2001\t2038\t.\t+\t.\tgene_id "tK(UUU)D"; transcript_id "tK(UUU)D_tRNA";\n'
    'chr1\tt\texon\t2053\t2090\t.\t+\t.\tgene_id "tK(UUU)D"; transcript_id "tK(UUU)D_tRNA";\n'
)


@pytest.mark.parametrize("name,text,line", [("t.gff3", TRNA_GFF3, 13), ("t.gtf", TRNA_GTF, 6),
                                            ("i.gtf", TRNA_ID_GTF, 6)])
def test_trna_introns_give_no_splice_sites(tmp_path, name, text, line):
    ann = read_annotation(_write(tmp_path, name, text))
    t = ann.transcripts["chr1"][-1]
    assert t.exons == ((2000, 2038), (2052, 2090)) and not t.spliced and t.introns == ()
    assert ann.introns("chr1") == [(200, 300, "+"), (1100, 1200, "-")]  # the mRNAs' only
    assert ann.sites("chr1", "donor").on("+").tolist() == [200]
    assert ann.sites("chr1", "tss").on("+").tolist() == [100, 2000]  # a tRNA still has a TSS
    assert ann.skipped == {"non_spliceosomal": (1, line, t.id)}


def test_an_mrna_named_like_a_trna_is_spliced(tmp_path):
    """The ID suffix is read only when the file records no biotype."""
    text = TRNA_ID_GTF.replace('";\n', '"; transcript_biotype "protein_coding";\n')
    t = read_annotation(_write(tmp_path, "x.gtf", text)).transcripts["chr1"][-1]
    assert t.spliced and t.introns == ((2038, 2052),)


def test_real_trna_introns_and_slippage(shared):
    yeast = shared / "data/genomepy/tests/data/sacCer3/sacCer3.annotation.gtf"
    coli = shared / "data/KorfLab_Exam_WGB/data/GCF_000005845.2_ASM584v2_genomic.gff.gz"
    if not (yeast.is_file() and coli.is_file()):
        pytest.skip(f"needs {yeast} and {coli}")
    ann = read_annotation(yeast)  # 39 gaps, 5 of them in tRNA genes (AA..AT, GC..CA, ...)
    assert len(ann.introns("chrIV")) == 34 and ann.skipped["non_spliceosomal"][0] == 5
    assert all(not t.introns for t in ann.transcripts["chrIV"] if t.id.endswith("_tRNA"))
    ann = read_annotation(coli)  # prfB: two CDS 1 bp apart (ribosomal slippage), no intron
    (prfb,) = [t for t in ann.transcripts["NC_000913.3"] if t.id == "gene-b2891"]
    assert prfb.introns == () and ann.skipped["short_gaps"][:2] == (1, 6237)


def test_score_prints_what_reading_left_out(tmp_path):
    """score's notes on the annotation carry :attr:`Annotation.notes`."""
    from types import SimpleNamespace

    from genaannot.pipeline.score import _genes

    p = _write(tmp_path, "t.gff3", TRNA_GFF3)
    genes, notes = _genes(str(p), SimpleNamespace(sizes={"chr1": 3000}), mask=False)
    assert notes == [f"{p}: 3 genes on 1 FASTA chromosomes", *read_annotation(p).notes]
    assert "1 intron of tRNA/rRNA transcripts giving no splice site" in notes[-1]
