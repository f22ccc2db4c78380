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
