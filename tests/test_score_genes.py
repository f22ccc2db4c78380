"""score: numeric per-ALT INFO fields (real bcftools filter/query), --annotation (genes, strands,
masking, variants outside genes), --spliceai-info (SpliceAI's layout, checked against SpliceAI's
published output) and multi-allelic records scored as their split form."""

from __future__ import annotations

import re
import shutil
import subprocess

import pysam
import pytest
from test_score import SEQ, write_vcf
from toy import make_toy_model

from genaannot.io.annotation import read_annotation
from genaannot.pipeline.score import score_variants

MODEL = make_toy_model("token", max_tokens=64)
WIDE = make_toy_model("token", max_tokens=160)
needs_bcftools = pytest.mark.skipif(shutil.which("bcftools") is None, reason="needs bcftools on PATH")


@pytest.fixture
def genome(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">chr2\n" + SEQ + "\n")
    return fa


def header_line(path, key: str) -> str:
    return next(ln for ln in str(pysam.VariantFile(str(path)).header).splitlines() if f"<ID={key}," in ln)


def tsv_rows(path) -> list[dict]:
    lines = path.read_text().splitlines()
    cols = lines[0].split("\t")
    return [dict(zip(cols, ln.split("\t"))) for ln in lines[1:]]


@needs_bcftools
def test_numeric_fields_work_with_bcftools_filter_and_query(tmp_path, genome):
    rows = [("2", p, SEQ[p - 1], "A,C,G,T".replace(SEQ[p - 1] + ",", "").replace("," + SEQ[p - 1], ""))
            for p in (98, 100, 104)] + [("2", 150, SEQ[149], "<DEL>")]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "o.vcf.gz"
    score_variants(vcf, genome=genome, model=MODEL, task="splice", output=out, distance=5, quiet=True)
    # header Descriptions end with the field list, as SpliceAI's and VEP's
    assert re.search(r'Description=".*\. Format: ALLELE\|STRAND\|DS_AG\|DS_AL\|DS_DG\|DS_DL\|DP_AG\|DP_AL\|'
                     r'DP_DG\|DP_DL">$', header_line(out, "GENA_SPLICE"))
    assert header_line(out, "GENA_REASON").endswith('Format: CODE">')
    assert "Number=A,Type=Float" in header_line(out, "GENA_SPLICE_DS_AG")
    assert "Number=A,Type=Integer" in header_line(out, "GENA_SPLICE_DP_AG")
    q = subprocess.run(["bcftools", "query", "-f", "%POS\\t%ALT\\t%INFO/GENA_SPLICE_DS_MAX\\t%INFO/GENA_SPLICE\\n",
                        str(out)], check=True, capture_output=True, text=True).stdout
    by_pos = {}
    for line in q.splitlines():
        pos, alts, ds_max, strings = line.split("\t")
        by_pos[int(pos)] = (alts.split(","), ds_max.split(","), strings.split(","))
    assert by_pos[150][1] == ["."]  # not scored: missing, not 0
    values = []
    for pos in (98, 100, 104):
        alts, ds_max, strings = by_pos[pos]
        assert len(ds_max) == len(alts) == 3
        for m, s in zip(ds_max, strings):  # the numeric field repeats the string's numbers
            assert float(m) == pytest.approx(max(float(x) for x in s.split("|")[2:6]), abs=1e-4)
            values.append((pos, float(m)))
    best = {p: max(v for q, v in values if q == p) for p in (98, 100, 104)}
    cut = min(best.values())  # Number=A: a record passes when one of its ALTs does
    kept = subprocess.run(["bcftools", "filter", "-i", f"INFO/GENA_SPLICE_DS_MAX>{cut}", str(out)],
                          check=True, capture_output=True, text=True).stdout
    want = sorted(p for p, v in best.items() if v > cut)
    assert [int(ln.split("\t")[1]) for ln in kept.splitlines() if not ln.startswith("#")] == want
    assert 0 < len(want) < 3


def test_multiallelic_record_scores_as_its_split_form(tmp_path, genome):
    p = 120
    b = SEQ[p - 1]
    others = [x for x in "ACGT" if x != b]
    alts = [*others, "AT" if b != "A" else "CT", b + "AA"]  # SNVs, a complex allele and an insertion
    multi = write_vcf(tmp_path / "multi.vcf", [("2", p, b, ",".join(alts))])
    split = write_vcf(tmp_path / "split.vcf", [("2", p, b, a) for a in alts])
    for name, vcf in (("m", multi), ("s", split)):
        score_variants(vcf, genome=genome, model=MODEL, task="splice", output=tmp_path / f"{name}.vcf",
                       tsv=tmp_path / f"{name}.tsv", distance=5, quiet=True)
    m, s = tsv_rows(tmp_path / "m.tsv"), tsv_rows(tmp_path / "s.tsv")
    assert [r["alt"] for r in m] == [r["alt"] for r in s] == alts
    for a, c in zip(m, s):
        assert (a["window_start"], a["window_end"]) == (c["window_start"], c["window_end"])
        for k in a:
            if k.endswith(("_plus", "_minus")):
                assert float(a[k]) == pytest.approx(float(c[k]), abs=1e-6), (a["alt"], k)
    # the toy donor channel depends on the window: a window shared with the longest ALT differed
    assert len({(r["window_start"], r["window_end"]) for r in m}) > 1


GFF = """##gff-version 3
chr2\tt\tgene\t30\t200\t.\t+\t.\tID=gP;Name=PLUS1
chr2\tt\tmRNA\t30\t200\t.\t+\t.\tID=tP;Parent=gP
chr2\tt\texon\t30\t80\t.\t+\t.\tParent=tP
chr2\tt\texon\t{a}\t200\t.\t+\t.\tParent=tP;Note=ends at 200;
chr2\tt\tgene\t100\t160\t.\t-\t.\tID=gM;Name=MINUS1
chr2\tt\tmRNA\t100\t160\t.\t-\t.\tID=tM;Parent=gM
chr2\tt\texon\t100\t{a_minus}\t.\t-\t.\tParent=tM
chr2\tt\texon\t131\t160\t.\t-\t.\tParent=tM
"""


def _spliceai_entries(path, pos):
    for r in pysam.VariantFile(str(path)):
        if r.pos == pos:
            return [v.split("|") for v in r.info.get("SpliceAI", ())], r
    raise AssertionError(pos)


def test_annotation_genes_strands_mask_and_outside_genes(tmp_path, genome):
    p = 121  # in PLUS1 (30-200) and MINUS1 (100-160)
    b = SEQ[p - 1]
    alt = "A" if b != "A" else "C"
    # both genes have an acceptor at POS: PLUS1's intron is 81..POS (acceptor = its last base),
    # MINUS1's is POS..130 (on the minus strand the acceptor is the intron's first base on the genome)
    gff = tmp_path / "genes.gff3"
    gff.write_text(GFF.format(a=p + 1, a_minus=p - 1))
    vcf = write_vcf(tmp_path / "in.vcf", [("2", p, b, alt), ("2", 20, SEQ[19], "A" if SEQ[19] != "A" else "C")])
    out = tmp_path / "o.vcf"
    s = score_variants(vcf, genome=genome, model=MODEL, task="splice", output=out, tsv=tmp_path / "o.tsv",
                       distance=5, quiet=True, annotation=gff, spliceai_info=True)
    assert any("2 genes" in n for n in s.notes)
    entries, rec = _spliceai_entries(out, p)
    assert [(e[0], e[1]) for e in entries] == [(alt, "PLUS1"), (alt, "MINUS1")]
    assert rec.info["GENA_SPLICE_GENE"][0] in ("PLUS1", "MINUS1")
    rows = tsv_rows(tmp_path / "o.tsv")
    assert [(r["gene"], r["strand"]) for r in rows[:2]] == [("PLUS1", "+"), ("MINUS1", "-")]
    assert rows[0]["acceptor_gain_minus"] == "NA" and rows[1]["acceptor_gain_plus"] == "NA"
    # outside genes, default: both strands, gene '.'
    outside, rec20 = _spliceai_entries(out, 20)
    assert [e[1] for e in outside] == ["."] and rec20.info["GENA_SPLICE_GENE"] == (".",)
    assert rows[2]["gene"] == "NA" and rows[2]["acceptor_gain_plus"] != "NA" and rows[2]["acceptor_gain_minus"] != "NA"
    # masking: a change at the annotated acceptor (POS, DP 0) is a loss kept, a gain zeroed
    masked = tmp_path / "m.vcf"
    s = score_variants(vcf, genome=genome, model=MODEL, task="splice", output=masked, distance=5, quiet=True,
                       annotation=gff, spliceai_info=True, mask=True, outside_genes="reason")
    plain = {e[1]: e for e in entries}
    got = {e[1]: e for e in _spliceai_entries(masked, p)[0]}
    # b = G, alt = A: on + the acceptor channel drops at POS (a loss at an annotated acceptor:
    # kept); on - the complement rises at POS (a gain at an annotated acceptor: zeroed)
    assert (b, alt) == ("G", "A")
    for gene in ("PLUS1", "MINUS1"):
        assert got[gene][6:] == plain[gene][6:]  # positions unchanged
    assert plain["PLUS1"][7] == "0" and float(plain["PLUS1"][3]) > 0.04 and got["PLUS1"][3] == plain["PLUS1"][3]
    assert plain["MINUS1"][6] == "0" and float(plain["MINUS1"][2]) > 0.04 and got["MINUS1"][2] == "0.00"
    assert all(x == "0.00" for x in got["PLUS1"][4:6] + got["MINUS1"][4:6])  # no donor at the losses
    assert s.reasons == {"NO_GENE": 1}
    assert [r.info.get("GENA_REASON") for r in pysam.VariantFile(str(masked))] == [None, ("NO_GENE",)]


def test_gtf_value_with_a_semicolon_and_gene_names(tmp_path):
    gtf = tmp_path / "g.gtf"
    gtf.write_text('c1\tt\texon\t10\t20\t.\t+\t.\tgene_id "g1"; transcript_id "t1"; gene_name "AB;C"; '
                   'note "x; y";\n'
                   'c1\tt\texon\t31\t40\t.\t+\t.\tgene_id "g1"; transcript_id "t1"; gene_name "AB;C";\n')
    ann = read_annotation(gtf)  # (a 10-bp intron: shorter gaps are no intron, see MIN_INTRON)
    (t,) = ann.transcripts["c1"]
    assert t.gene_name == "AB;C" and t.exons == ((9, 20), (30, 40)) and t.introns == ((20, 30),)


def test_spliceai_gene_table_without_exons_refuses_mask(tmp_path, genome):
    table = tmp_path / "genes.txt"
    table.write_text("#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\nG1\t2\t-\t99\t160\n")
    vcf = write_vcf(tmp_path / "in.vcf", [("2", 121, SEQ[120], "A" if SEQ[120] != "A" else "C")])
    out = tmp_path / "o.vcf"
    score_variants(vcf, genome=genome, model=MODEL, task="splice", output=out, distance=5, quiet=True,
                   annotation=table, tsv=tmp_path / "o.tsv")
    assert [(r["gene"], r["strand"]) for r in tsv_rows(tmp_path / "o.tsv")] == [("G1", "-")]
    with pytest.raises(ValueError, match="no exon columns"):
        score_variants(vcf, genome=genome, model=MODEL, task="splice", output=out, distance=5, quiet=True,
                       annotation=table, mask=True)
    with pytest.raises(ValueError, match="leave out --strand"):
        score_variants(vcf, genome=genome, model=MODEL, task="splice", output=out, quiet=True,
                       annotation=table, strand="+")


def test_spliceai_layout_matches_spliceai_output(shared, tmp_path):
    """Field by field against SpliceAI v1.3.1's expected output for its batch test (same
    genome slice, its grch37 gene table): header text, genes per ALT, field count, formats."""
    d = shared / "data" / "SpliceAI"
    out = tmp_path / "o.vcf"
    score_variants(d / "tests" / "fixtures" / "batch_test.vcf", genome=d / "tests" / "data" / "chr19_grch37_small.fa",
                   model=WIDE, task="splice", output=out, quiet=True, distance=50,
                   annotation=d / "spliceai" / "annotations" / "grch37.txt", spliceai_info=True)
    theirs = pysam.VariantFile(str(d / "tests" / "fixtures" / "batch_test_expected.vcf"))
    ours = pysam.VariantFile(str(out))
    mine, ref = header_line(out, "SpliceAI"), header_line(d / "tests" / "fixtures" / "batch_test_expected.vcf",
                                                           "SpliceAI")
    assert mine.split("Description=")[0] == ref.split("Description=")[0] == "##INFO=<ID=SpliceAI,Number=.,Type=String,"
    tail = ref[ref.index("These include"):]
    assert mine.endswith(tail) and tail.endswith('Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL">')
    score_re = re.compile(r"^-?\d+\.\d\d$")
    compared = 0
    for a, b in zip(ours, theirs):
        assert (a.pos, a.ref, a.alts) == (b.pos, b.ref, b.alts)
        want = list(b.info.get("SpliceAI", ()))
        got = list(a.info.get("SpliceAI", ()))
        # SpliceAI writes '.' scores for MNPs (GG>CC); genaannot scores them
        assert [v.split("|")[:2] for v in got] == [v.split("|")[:2] for v in want], a.pos
        for g, w in zip(got, want):
            gf, wf = g.split("|"), w.split("|")
            assert len(gf) == len(wf) == 10
            assert all(score_re.match(x) for x in gf[2:6]), g
            assert all(re.fullmatch(r"-?\d+", x) for x in gf[6:]), g
            if wf[2] != ".":
                assert all(score_re.match(x) for x in wf[2:6]) and all(abs(int(x)) <= 50 for x in gf[6:])
                compared += 1
    assert compared >= 20


@pytest.mark.filterwarnings("ignore:.*not indexed")
def test_annotation_with_shards_devices_and_workers_writes_the_one_process_run(tmp_path, genome):
    """-A combined with --shard (+ merge), --devices and --workers: the same genes, strands and
    reason codes as one process; numbers equal up to float rounding (batches differ)."""
    from test_score import _text, assert_same_up_to_rounding
    from tinymodels import make_gena_dir

    from genaannot.models import load_model
    from genaannot.pipeline.merge import merge

    gff = tmp_path / "genes.gff3"
    gff.write_text(GFF.format(a=122, a_minus=120))
    positions = (10, 20, 40, 60, 90, 110, 121, 140, 170, 210, 230)
    rows = [("2", p, SEQ[p - 1], "ACGT".replace(SEQ[p - 1], "")[k % 3]) for k, p in enumerate(positions)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    model = load_model(make_gena_dir(tmp_path / "m", head="token", num_labels=3), device="cpu")
    kw = dict(genome=genome, model=model, task="splice", distance=8, quiet=True, annotation=gff,
              outside_genes="reason", spliceai_info=True, shard_bin_bp=50)
    one = score_variants(vcf, output=tmp_path / "one.vcf", tsv=tmp_path / "one.tsv", **kw)
    assert one.reasons == {"NO_GENE": 4}  # 10, 20, 210, 230
    want_vcf, want_tsv = _text(tmp_path / "one.vcf"), _text(tmp_path / "one.tsv")
    assert "PLUS1" in want_vcf and "MINUS1" in want_vcf

    parts = []
    for i in (1, 2):
        out = tmp_path / f"shard{i}.vcf.gz"
        score_variants(vcf, output=out, tsv=tmp_path / f"shard{i}.tsv", shard=f"{i}/2", **kw)
        parts.append(out)
    assert all(_text(p).count("\n2\t") >= 3 for p in parts)  # both shards hold records
    merge(parts, output=tmp_path / "merged.vcf", tsv=tmp_path / "merged.tsv")
    got = {
        "devices": score_variants(vcf, output=tmp_path / "dev.vcf", tsv=tmp_path / "dev.tsv", devices="cpu,cpu", **kw),
        "workers": score_variants(vcf, output=tmp_path / "wrk.vcf", tsv=tmp_path / "wrk.tsv", workers=1, **kw),
    }
    for name in ("merged", "dev", "wrk"):
        body = [ln for ln in _text(tmp_path / f"{name}.vcf").splitlines() if not ln.startswith("##genaannotShard")]
        assert_same_up_to_rounding("\n".join(ln for ln in want_vcf.splitlines() if not ln.startswith("##genaannot")),
                                   "\n".join(ln for ln in body if not ln.startswith("##genaannot")))
        assert_same_up_to_rounding(want_tsv, _text(tmp_path / f"{name}.tsv"))
    for s in got.values():
        assert s.reasons == one.reasons and s.scored == one.scored
