"""score_variants end to end with toy models (exact deltas) and the shared test VCFs
(the genomes of ../shared's VCFs: SpliceAI's chr19 slice from ../shared, TAIR10 1% bundled)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pysam
import pytest
from toy import BASE_VALUE, make_toy_model

from genaannot.pipeline.score import score_variants


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


SEQ = ("ACGTTGCAAC" * 12) + "GATTACA" + ("CCGGTTAAGT" * 12)  # 247 bp, no N


@pytest.fixture
def genome(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">chr2\n" + SEQ + "\n>chrN\n" + "A" * 50 + "N" * 20 + "C" * 50 + "\n")
    return fa


def write_vcf(path, rows, header_extra=""):
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=2>", "##contig=<ID=N>", "##contig=<ID=X>"]
    lines += [header_extra] if header_extra else []
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    for chrom, pos, ref, alt in rows:
        lines.append(f"{chrom}\t{pos}\tv{pos}\t{ref}\t{alt}\t.\t.\t.")
    path.write_text("\n".join(lines) + "\n")
    return path


def info_map(path, key):
    out = []
    for rec in pysam.VariantFile(str(path)):
        out.append(rec.info.get(key))
    return out


def parse_splice(value: str) -> dict:
    f = value.split("|")
    names = ["ALLELE", "STRAND", "DS_AG", "DS_AL", "DS_DG", "DS_DL", "DP_AG", "DP_AL", "DP_DG", "DP_DL"]
    return dict(zip(names, f))


def test_exact_snv_mnp_indel_deltas(tmp_path, genome):
    # positions (1-based) inside SEQ; SEQ[150] etc. checked below
    p = 151
    ref_b = SEQ[p - 1]
    rows = [
        ("2", p, ref_b, "G" if ref_b != "G" else "A"),  # SNV
        ("2", p, SEQ[p - 1 : p + 1], "TT" if SEQ[p - 1 : p + 1] != "TT" else "AA"),  # MNP
        ("2", p, SEQ[p - 1 : p + 1], SEQ[p - 1]),  # deletion of SEQ[p]
        ("2", p, ref_b, ref_b + "TTT"),  # insertion
        ("2", p, ref_b, "A,C,G,T".replace(ref_b + ",", "").replace("," + ref_b, "")),  # multi-allelic
    ]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "out.vcf"
    m = make_toy_model("token", max_tokens=64)
    s = score_variants(vcf, genome=genome, model=m, task="splice", output=out, distance=5,
                       strand="+", quiet=True, tsv=tmp_path / "o.tsv")
    assert s.records == 5 and s.alts == 4 + 3 and s.scored == 7
    assert s.renamed == {"2": "chr2"}
    vals = info_map(out, "GENA_SPLICE")
    v = BASE_VALUE
    # SNV: acceptor channel = per-base value → single-position change at offset 0
    snv = parse_splice(vals[0][0])
    alt = rows[0][3]
    d = sig(v[alt]) - sig(v[ref_b])
    key, other = ("DS_AG", "DS_AL") if d > 0 else ("DS_AL", "DS_AG")
    assert float(snv[key]) == pytest.approx(abs(d), abs=1e-4)
    assert int(snv["DP_" + key[3:]]) == 0
    assert float(snv[other]) == 0
    assert float(snv["DS_DG"]) == 0 and float(snv["DS_DL"]) == 0  # same length: position channel unchanged
    # deletion: the deleted base takes 0 → loss of sigmoid(value) at offset 1
    dele = parse_splice(vals[2][0])
    assert float(dele["DS_AL"]) == pytest.approx(sig(v[SEQ[p]]), abs=1e-4)
    assert int(dele["DP_AL"]) == 1
    # insertion: REF base and inserted TTT collapse to max → gain sigmoid(.4) - sigmoid(ref) at 0
    ins = parse_splice(vals[3][0])
    assert v[ref_b] < v["T"]  # SEQ[150] is G: the check below runs (it was conditional)
    assert float(ins["DS_AG"]) == pytest.approx(sig(v["T"]) - sig(v[ref_b]), abs=1e-4)
    assert int(ins["DP_AG"]) == 0
    # multi-allelic: one value per ALT, in ALT order, each its own SNV delta
    rec_alts = rows[4][3].split(",")
    assert len(vals[4]) == 3
    for alt, val in zip(rec_alts, vals[4]):
        f = parse_splice(val)
        assert f["ALLELE"] == alt
        dd = sig(v[alt]) - sig(v[ref_b])
        assert float(f["DS_AG"]) - float(f["DS_AL"]) == pytest.approx(dd, abs=2e-4)
    # TSV: one row per ALT with raw numbers
    rows_tsv = (tmp_path / "o.tsv").read_text().splitlines()
    assert len(rows_tsv) == 1 + 7
    hdr = rows_tsv[0].split("\t")
    first = dict(zip(hdr, rows_tsv[1].split("\t")))
    assert first["status"] == "scored" and first["genome_chrom"] == "chr2"
    assert float(first["acceptor_gain_plus"]) - float(first["acceptor_loss_plus"]) == pytest.approx(d, abs=1e-5)


def test_minus_strand_maps_back(tmp_path, genome):
    p = 151
    ref_b = SEQ[p - 1]
    alt = "A" if ref_b != "A" else "C"
    vcf = write_vcf(tmp_path / "in.vcf", [("2", p, ref_b, alt)])
    out = tmp_path / "o.vcf"
    score_variants(vcf, genome=genome, model=make_toy_model("token", max_tokens=64), task="splice",
                   output=out, distance=5, strand="-", quiet=True)
    f = parse_splice(info_map(out, "GENA_SPLICE")[0][0])
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    d = sig(BASE_VALUE[comp[alt]]) - sig(BASE_VALUE[comp[ref_b]])  # the model saw the complement
    assert f["STRAND"] == "-"
    assert float(f["DS_AG"]) - float(f["DS_AL"]) == pytest.approx(d, abs=2e-4)
    assert int(f["DP_AG" if d > 0 else "DP_AL"]) == 0


def test_reasons_and_order(tmp_path, genome):
    rows = [
        ("X", 5, "A", "C"),  # NO_CONTIG
        ("2", 10, SEQ[9], "*"),  # SYMBOLIC
        ("2", 10, SEQ[9], "<DEL>"),
        ("2", 10, "Z", "A"),  # BAD_ALLELE (not a base)
        ("2", 10, "A" if SEQ[9] != "A" else "C", "G"),  # REF_MISMATCH
        ("N", 55, "N", "A"),  # N_REGION
        ("2", 300, "A", "C"),  # EDGE: past the 247-bp sequence
        ("2", 60, SEQ[59:130], "A"),  # TOO_LONG: 71-bp REF + 2*distance > 64 tokens
        ("2", 2, SEQ[1], "G" if SEQ[1] != "G" else "T"),  # scored (window shifted inward)
    ]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "o.vcf.gz"
    with pytest.warns(UserWarning, match="not indexed"):  # input not sorted (chroms X, 2, N, 2)
        s = score_variants(vcf, genome=genome, model=make_toy_model("token", max_tokens=64), task="splice",
                           output=out, distance=5, quiet=True)
    reasons = info_map(out, "GENA_REASON")
    assert [r[0] if r else None for r in reasons] == [
        "NO_CONTIG", "SYMBOLIC", "SYMBOLIC", "BAD_ALLELE", "REF_MISMATCH", "N_REGION", "EDGE", "TOO_LONG", None]
    assert s.reasons == {"NO_CONTIG": 1, "SYMBOLIC": 2, "BAD_ALLELE": 1, "REF_MISMATCH": 1, "N_REGION": 1, "EDGE": 1,
                         "TOO_LONG": 1}
    assert [r.pos for r in pysam.VariantFile(str(out))] == [r[1] for r in rows]
    assert not (tmp_path / "o.vcf.gz.tbi").exists()
    assert s.scored == 1


def test_sequence_task_gc_diff(tmp_path, genome):
    p = 151
    ref_b = SEQ[p - 1]
    alt = "G" if ref_b in "AT" else "A"
    vcf = write_vcf(tmp_path / "in.vcf", [("2", p, ref_b, alt)])
    out = tmp_path / "o.vcf"
    m = make_toy_model("sequence", max_tokens=40)
    score_variants(vcf, genome=genome, model=m, task="promoter", output=out, strand="+", quiet=True,
                   tsv=tmp_path / "o.tsv")
    f = info_map(out, "GENA_PROMOTER")[0][0].split("|")
    assert f[0] == alt and f[2] == "promoter"
    ref_p, alt_p, diff = float(f[3]), float(f[4]), float(f[5])
    n = 39  # odd window filling 40 tokens
    seq = SEQ[p - 1 - 19 : p + 19]
    assert len(seq) == n
    gc = sum(c in "GC" for c in seq) / n
    gc_alt = gc + (1 if alt in "GC" else -1) / n
    softmax1 = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731 - 2-class softmax of [0, x]
    assert ref_p == pytest.approx(softmax1(gc), abs=1e-4)
    assert alt_p == pytest.approx(softmax1(gc_alt), abs=1e-4)
    assert diff == pytest.approx(softmax1(gc_alt) - softmax1(gc), abs=1e-4)


def test_chunking_and_cache_do_not_change_results(tmp_path, genome):
    rows = [("2", p, SEQ[p - 1], "A,C" if SEQ[p - 1] not in "AC" else "G,T") for p in range(100, 130, 3)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    m = make_toy_model("token", max_tokens=64)
    a = score_variants(vcf, genome=genome, model=m, task="splice", output=tmp_path / "a.vcf", quiet=True,
                       distance=10)
    b = score_variants(vcf, genome=genome, model=m, task="splice", output=tmp_path / "b.vcf", quiet=True,
                       distance=10, chunk_size=3, batch_size=1, cache_size=2)
    assert info_map(tmp_path / "a.vcf", "GENA_SPLICE") == info_map(tmp_path / "b.vcf", "GENA_SPLICE")
    # ALTs of a record share their reference window: 2 strands x 10 records
    assert a.windows_predicted == 10 * 2 + 20 * 2
    assert a.cache_hits == b.cache_hits == 20 * 2 - 10 * 2


def test_batch_test_vcf(shared, tmp_path):
    d = shared / "data" / "SpliceAI"
    vcf = d / "tests" / "fixtures" / "batch_test.vcf"
    out = tmp_path / "o.vcf.gz"
    s = score_variants(vcf, genome=d / "tests" / "data" / "chr19_grch37_small.fa",
                       model=make_toy_model("token", max_tokens=64), task="splice", output=out,
                       tsv=tmp_path / "o.tsv", quiet=True, distance=20)
    recs = list(pysam.VariantFile(str(out)))
    assert len(recs) == 18 and s.records == 18 and s.alts == 23
    assert s.renamed == {"19": "chr19"}
    by = {(r.pos, r.ref, r.alts): r for r in recs}
    for pos in (1, 2, 3):
        assert by[(pos, "C", ("A",))].info["GENA_REASON"] == ("N_REGION",)
    # REF 'Z' and the malformed ALT 'T/*' are not bases (docs/score.md's BAD_ALLELE example)
    assert by[(1228434, "Z", ("A",))].info["GENA_REASON"] == ("BAD_ALLELE",)
    assert by[(1228443, "G", ("T/*",))].info["GENA_REASON"] == ("BAD_ALLELE",)
    assert s.reasons == {"N_REGION": 3, "BAD_ALLELE": 2}
    assert s.scored == 23 - 5
    for r in recs:
        if "GENA_REASON" not in r.info:
            assert len(r.info["GENA_SPLICE"]) == len(r.alts)
    assert (tmp_path / "o.vcf.gz.tbi").exists()
    assert len((tmp_path / "o.tsv").read_text().splitlines()) == 1 + 23


def test_arabidopsis_vep_vcf(shared, tmp_path):
    # only the VCF is reference data: the genome is the bundled, indexed TAIR10 1% copy
    # (the same sequence as ../shared's KorfLab 1pct.fa)
    fa = Path(__file__).resolve().parent.parent / "examples" / "athaliana" / "athaliana_1pct.fa.gz"
    vcf = shared / "data" / "ensembl-vep" / "examples" / "arabidopsis_thaliana.TAIR10.vcf"
    out = tmp_path / "o.vcf"
    s = score_variants(vcf, genome=fa, model=make_toy_model("token", max_tokens=64), task="splice",
                       output=out, quiet=True, distance=20)
    assert s.records == 22 and s.renamed == {"1": "Chr1"}
    assert any("##CHROM" in n for n in s.notes)
    # all 22 SNVs lie in the first 8.8 kb of Chr1 (304 kb in the 1% FASTA): all scored
    assert s.scored == 22 and not s.reasons
    recs = list(pysam.VariantFile(str(out)))
    assert [r.samples["10001"]["GT"] for r in recs] == [(1, 1)] * 22
    assert [r.info["DP"] for r in recs][:2] == [("5",), ("5",)]  # undeclared INFO kept as written (String)


def test_records_without_alt_and_output_to_existing(tmp_path, genome):
    # ALT '.' and an empty ALT column (htslib reads one allele '.') are both records without ALT:
    # passed through unannotated, with no TSV row (a Number=A value there has no ALT to belong to)
    vcf = write_vcf(tmp_path / "in.vcf", [("2", 10, SEQ[9], "."), ("2", 11, SEQ[10], "")])
    for name in ("o.vcf", "o.bcf"):
        out = tmp_path / name
        out.write_text("old")
        s = score_variants(vcf, genome=genome, model=make_toy_model("token", max_tokens=64), task="splice",
                           output=out, quiet=True, tsv=tmp_path / "o.tsv")
        assert s.records == 2 and s.records_without_alt == 2 and s.alts == 0 and not s.reasons
        lines = [str(r).rstrip("\n").split("\t") for r in pysam.VariantFile(str(out))]
        assert [x[3:] for x in lines] == [[SEQ[9], ".", ".", ".", "."], [SEQ[10], ".", ".", ".", "."]]
        assert (tmp_path / "o.tsv").read_text().count("\n") == 1  # the header line only
    assert not list(tmp_path.glob(".o.*"))  # no temporary left


def test_incompatible_model_and_labels(tmp_path, genome):
    vcf = write_vcf(tmp_path / "in.vcf", [("2", 10, SEQ[9], "A")])
    with pytest.raises(ValueError, match="has a sequence head; use a token-classification checkpoint"):
        score_variants(vcf, genome=genome, model=make_toy_model("sequence"), task="splice",
                       output=tmp_path / "o.vcf", quiet=True)
    with pytest.raises(ValueError, match="--labels"):
        score_variants(vcf, genome=genome, model=make_toy_model("token"), task="splice",
                       output=tmp_path / "o.vcf", labels=["nope"], quiet=True)
    assert not (tmp_path / "o.vcf").exists()


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _text(path) -> str:
    import gzip

    with gzip.open(path, "rt") if str(path).endswith(".gz") else open(path) as fh:
        return fh.read()


def assert_same_up_to_rounding(a: str, b: str, *, tol: float = 2e-4) -> None:
    """Same text except that numbers may differ by ``tol`` (last printed digits)."""
    la, lb = a.splitlines(), b.splitlines()
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert _NUMBER.sub("#", x) == _NUMBER.sub("#", y), (x, y)
        for u, v in zip(_NUMBER.findall(x), _NUMBER.findall(y)):
            assert float(u) == pytest.approx(float(v), abs=tol), (x, y)


@pytest.mark.filterwarnings("ignore:.*not indexed")
@pytest.mark.parametrize("layout", ["sorted", "unsorted"])
def test_devices_write_what_one_process_writes(tmp_path, layout):
    """score_variants(devices=...): one region shard per device process, concatenated in
    input order; the files are a one-process run's, up to float rounding (batches differ)."""
    import numpy as np
    from tinymodels import make_gena_dir, random_dna

    from genaannot.models import load_model

    seq, seq2 = random_dna(3000, seed=9), random_dna(1500, seed=10)
    fa = tmp_path / "g.fa"
    fa.write_text(f">chr1\n{seq}\n>chr2\n{seq2}\n")
    rng = np.random.default_rng(4)
    rows = [("1", int(p), seq[p - 1], "ACGT".replace(seq[p - 1], "")[k % 3])
            for k, p in enumerate(sorted(rng.choice(np.arange(80, 2900), size=21, replace=False)))]
    rows.insert(5, ("1", rows[4][1], rows[4][2], "<DEL>"))
    rows += [("2", p, seq2[p - 1 : p + 1], seq2[p - 1]) for p in (90, 700, 1400)]
    if layout == "unsorted":
        rows = rows[13:] + rows[:13]
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.1\n##contig=<ID=1,length=3000>\n##contig=<ID=2,length=1500>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"{c}\t{p}\t.\t{r}\t{a}\t.\t.\t.\n" for c, p, r, a in rows))
    model = load_model(make_gena_dir(tmp_path / "m", head="token", num_labels=3), device="cpu")
    suffix = ".vcf.gz" if layout == "sorted" else ".vcf"
    kw = dict(genome=fa, model=model, task="splice", distance=15, quiet=True, shard_bin_bp=500)
    one = score_variants(vcf, output=tmp_path / f"one{suffix}", tsv=tmp_path / "one.tsv", **kw)
    seen = []
    two = score_variants(vcf, output=tmp_path / f"two{suffix}", tsv=tmp_path / "two.tsv", devices="cpu,cpu",
                         progress=lambda done, total: seen.append((done, total)), **kw)
    for name in (suffix, ".tsv"):
        assert_same_up_to_rounding(_text(tmp_path / f"one{name}"), _text(tmp_path / f"two{name}"))
    assert _text(tmp_path / f"two{suffix}").startswith("##fileformat=VCFv4.1\n")  # the input's version
    if layout == "sorted":
        with pysam.TabixFile(str(tmp_path / "two.vcf.gz")) as tb:
            assert len(list(tb.fetch("1"))) == 22 and len(list(tb.fetch("2"))) == 3
    assert (two.records, two.alts, two.scored, two.reasons) == (one.records, one.alts, one.scored, one.reasons)
    assert two.reasons == {"SYMBOLIC": 1} and two.renamed == {"1": "chr1", "2": "chr2"}
    assert two.indexed == (layout == "sorted")
    assert seen[-1] == (len(rows), len(rows))
    assert any("range of records" in n for n in two.notes) == (layout == "unsorted")
    assert not list(tmp_path.glob(".genaannot-score-*"))  # the partials are gone


def test_devices_refuse_stdin_and_shard(tmp_path, genome):
    vcf = write_vcf(tmp_path / "in.vcf", [("2", 60, SEQ[59], "A")])
    kw = dict(genome=genome, model=make_toy_model("token", max_tokens=64), task="splice",
              output=tmp_path / "o.vcf", devices="cpu,cpu")
    with pytest.raises(ValueError, match="cannot be combined"):
        score_variants(vcf, shard="1/2", **kw)
    with pytest.raises(ValueError, match="not standard input"):
        score_variants("-", **kw)
    assert not (tmp_path / "o.vcf").exists()


def test_a_failing_device_leaves_nothing_behind(tmp_path, genome):
    import torch
    from tinymodels import make_gena_dir

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA (the cuda:0 process must fail)")
    vcf = write_vcf(tmp_path / "in.vcf", [("2", 60, SEQ[59], "A"), ("2", 160, SEQ[159], "A")])
    model = make_gena_dir(tmp_path / "m", head="token", num_labels=3)
    pysam.faidx(str(genome))
    before = sorted(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="device cuda:0: "):
        score_variants(vcf, genome=genome, model=model, task="splice", output=tmp_path / "o.vcf.gz",
                       devices="cpu,cuda:0", quiet=True)
    assert sorted(tmp_path.iterdir()) == before  # no output, no partials


def test_planning_workers_do_not_change_files(tmp_path):
    """workers=N plans chunks in spawned processes (records travel without their pysam
    object and are re-attached for writing): the same bytes as the in-process planner."""
    from tinymodels import make_gena_dir, random_dna

    from genaannot.models import load_model

    seq = random_dna(2500, seed=3)
    fa = tmp_path / "g.fa"
    fa.write_text(f">chr1\n{seq}\n")
    rows = [("chr1", p, seq[p - 1], "ACGT".replace(seq[p - 1], "")[p % 3]) for p in range(90, 2400, 97)]
    rows.insert(3, ("chr1", 400, seq[399:402], seq[399]))
    rows.append(("chrX", 5, "A", "G"))  # NO_CONTIG
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=2500>\n##contig=<ID=chrX>\n"
                   "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
                   + "".join(f"{c}\t{p}\tid{p}\t{r}\t{a}\t.\tPASS\t.\tGT\t0/1\n" for c, p, r, a in rows))
    model = load_model(make_gena_dir(tmp_path / "m", head="token", num_labels=3), device="cpu")
    kw = dict(genome=fa, model=model, task="splice", distance=15, quiet=True, chunk_size=7)
    score_variants(vcf, output=tmp_path / "a.vcf", tsv=tmp_path / "a.tsv", **kw)
    s = score_variants(vcf, output=tmp_path / "b.vcf", tsv=tmp_path / "b.tsv", workers=2, **kw)
    assert (tmp_path / "a.vcf").read_text() == (tmp_path / "b.vcf").read_text()
    assert (tmp_path / "a.tsv").read_text() == (tmp_path / "b.tsv").read_text()
    assert s.records == len(rows) and s.reasons == {"NO_CONTIG": 1}
    assert "\tGT\t0/1" in (tmp_path / "b.vcf").read_text()  # samples written from the original records
    with pytest.raises(ValueError, match="--workers"):
        score_variants(vcf, output=tmp_path / "c.vcf", workers=-1, **kw)


def test_workers_from_a_script_without_a_main_guard_are_refused_before_any_output(tmp_path):
    """Spawned workers re-run an unguarded script; score refuses before it reads or writes anything."""
    from procs import assert_unguarded_script_refused

    assert_unguarded_script_refused(tmp_path, (
        "from genaannot.pipeline.score import score_variants\n"
        "score_variants('missing.vcf', genome='missing.fa', model='missing-model', task='splice', output='out.vcf',\n"
        "               workers=1)\n"))


def test_return_table_and_regions(tmp_path, genome):
    """return_table=True: the --tsv rows, unrounded, in the summary (and as a DataFrame);
    regions: records whose REF overlaps none are left out and counted."""
    import pandas as pd

    from genaannot.regions import Interval

    rows = [("2", 10, SEQ[9], "A" if SEQ[9] != "A" else "C"), ("X", 5, "A", "C"),
            ("2", 60, SEQ[59:62], SEQ[59]), ("2", 100, SEQ[99], "<DEL>"), ("N", 55, "N", "A")]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    kw = dict(genome=genome, model=make_toy_model("token", max_tokens=64), task="splice", distance=5, quiet=True)
    s = score_variants(vcf, output=tmp_path / "o.vcf", tsv=tmp_path / "o.tsv", return_table=True, **kw)
    assert "rows=" not in repr(s) and "records=5" in repr(s)  # a summary, not every row
    tsv = [ln.split("\t") for ln in (tmp_path / "o.tsv").read_text().splitlines()]
    assert s.columns == tsv[0] and len(s.rows) == len(tsv) - 1 == 5
    df = s.to_frame()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == tsv[0] and df.shape[0] == 5
    assert list(df["pos"]) == [10, 5, 60, 100, 55] and list(df["status"])[1] == "NO_CONTIG"
    num = [c for c in s.columns if c.startswith("acceptor_") and c.endswith("_plus")][0]
    k = tsv[0].index(num)
    assert float(tsv[1][k]) == pytest.approx(s.rows[0][num], abs=1e-5)  # the TSV prints 6 digits
    r = score_variants(vcf, output=tmp_path / "r.vcf", regions=["chr2:11-61", Interval("chrN", 0, 10)],
                       return_table=True, **kw)
    assert [x.pos for x in pysam.VariantFile(str(tmp_path / "r.vcf"))] == [60]  # its REF spans 60-62
    assert (r.records, r.records_outside, len(r.rows)) == (1, 4, 1)
    assert "4 records outside the regions" in r.format()
    with pytest.raises(ValueError, match="return_table=True"):
        s.__class__().to_frame()


def test_devices_with_regions_and_table(tmp_path):
    """devices: each process leaves out its records outside the regions; the concatenated
    files and rows are a one-process run's."""
    from tinymodels import make_gena_dir, random_dna

    from genaannot.models import load_model

    seq = random_dna(2000, seed=9)
    fa = tmp_path / "g.fa"
    fa.write_text(f">chr1\n{seq}\n")
    pos = list(range(100, 1900, 150))
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=2000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"chr1\t{p}\t.\t{seq[p - 1]}\t{'ACGT'.replace(seq[p - 1], '')[0]}\t.\t.\t.\n" for p in pos))
    model = load_model(make_gena_dir(tmp_path / "m", head="token", num_labels=3), device="cpu")
    kw = dict(genome=fa, model=model, task="splice", distance=10, quiet=True, shard_bin_bp=500,
              regions="chr1:1-500,chr1:1,200-1,500", return_table=True)
    one = score_variants(vcf, output=tmp_path / "one.vcf", **kw)
    two = score_variants(vcf, output=tmp_path / "two.vcf", devices="cpu,cpu", **kw)
    kept = [p for p in pos if p <= 500 or 1200 <= p <= 1500]
    for name in ("one", "two"):
        assert [r.pos for r in pysam.VariantFile(str(tmp_path / f"{name}.vcf"))] == kept
    assert (two.records, two.records_outside) == (one.records, one.records_outside) == (len(kept), len(pos) - len(kept))
    assert [r["pos"] for r in two.rows] == [r["pos"] for r in one.rows] == kept


def test_a_checkpoint_that_states_its_window_is_scored_with_it(tmp_path):
    """A dilated CNN reads any length (capacity 1,000,000); a variant's windows are the
    checkpoint's own window, not a megabase (which made `score` crawl)."""
    from tiny_families import make_dilated_cnn_dir, random_dna

    from genaannot.models import load_model

    seq = random_dna(3000, seed=5)
    fa = tmp_path / "g.fa"
    fa.write_text(">chr2\n" + seq + "\n")
    model = load_model(make_dilated_cnn_dir(tmp_path / "cnn"), device="cpu")
    assert model.info.max_tokens == 1_000_000 and model.info.window_tokens < 200
    p = 1500
    vcf = write_vcf(tmp_path / "in.vcf", [("2", p, seq[p - 1], "A" if seq[p - 1] != "A" else "C")])
    out = tmp_path / "o.vcf"
    s = score_variants(vcf, genome=fa, model=model, task="splice", output=out, quiet=True, distance=10,
                       tsv=tmp_path / "o.tsv")
    assert s.scored == 1
    header, row = (line.split("\t") for line in (tmp_path / "o.tsv").read_text().splitlines()[:2])
    cols = dict(zip(header, row))
    assert int(cols["ref_tokens"]) <= model.info.window_tokens and int(cols["ref_tokens"]) >= model.info.window_tokens - 1
    assert f"max_tokens={model.info.window_tokens}" in out.read_text()


def test_window_tokens_sets_the_variant_windows_within_the_capacity(tmp_path):
    """`window_tokens` overrides the checkpoint's window (a long-context model need not read
    its whole capacity per variant); above the capacity it is refused before any record is
    read; a window too short for ±distance is TOO_LONG, written with the reason."""
    from tiny_families import make_dilated_cnn_dir, random_dna

    from genaannot.models import load_model

    seq = random_dna(3000, seed=5)
    fa = tmp_path / "g.fa"
    fa.write_text(">chr2\n" + seq + "\n")
    model = load_model(make_dilated_cnn_dir(tmp_path / "cnn"), device="cpu")
    p = 1500
    vcf = write_vcf(tmp_path / "in.vcf", [("2", p, seq[p - 1], "A" if seq[p - 1] != "A" else "C")])
    for w in (60, 300):
        out = tmp_path / f"o{w}.vcf"
        s = score_variants(vcf, genome=fa, model=model, task="splice", output=out, quiet=True, distance=10,
                           window_tokens=w, tsv=tmp_path / f"o{w}.tsv")
        assert s.scored == 1
        header, row = (line.split("\t") for line in (tmp_path / f"o{w}.tsv").read_text().splitlines()[:2])
        # 1-bp tokens, equal flanks around a 1-bp REF: the window, or one less when it is even
        assert w - 1 <= int(dict(zip(header, row))["ref_tokens"]) <= w
        assert f"max_tokens={w}" in out.read_text()
    s = score_variants(vcf, genome=fa, model=model, task="splice", output=tmp_path / "short.vcf", quiet=True,
                       distance=50, window_tokens=60)
    assert s.scored == 0 and "GENA_REASON=TOO_LONG" in (tmp_path / "short.vcf").read_text()
    with pytest.raises(ValueError, match="between 1 and the model's capacity of 1,000,000 tokens"):
        score_variants(vcf, genome=fa, model=model, task="splice", output=tmp_path / "x.vcf", quiet=True,
                       window_tokens=1_000_001)
    assert not (tmp_path / "x.vcf").exists()
