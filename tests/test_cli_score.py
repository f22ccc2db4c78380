"""`genaannot score` command line, with a tiny real GENA checkpoint."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import pysam
import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir

from genaannot.cli import main

SEQ = "ACGTTGCAAC" * 40
VCF = (
    "##fileformat=VCFv4.2\n##contig=<ID=1,length=400>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    f"1\t100\t.\t{SEQ[99]}\tA,C\t.\t.\t.\n"
    f"1\t200\t.\t{SEQ[199:202]}\t{SEQ[199]}\t.\t.\t.\n"
    f"1\t300\t.\t{SEQ[299]}\t{SEQ[299]}GGT\t.\t.\t.\n"
    "1\t390\t.\tA\t*\t.\t.\t.\n"
)
CLI = [sys.executable, "-c", "from genaannot.cli import main; main()"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "g.fa").write_text(">chr1\n" + SEQ + "\n")
    (d / "in.vcf").write_text(VCF)
    make_gena_dir(d / "splice", head="token", num_labels=3)
    make_gena_dir(d / "prom", head="sequence", num_labels=2)
    return d


def test_score_splice_vcf_gz_and_tsv(files, tmp_path):
    out = tmp_path / "o.vcf.gz"
    r = CliRunner().invoke(main, [
        "score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task", "splice",
        "--model", str(files / "splice"), "-o", str(out), "--tsv", str(tmp_path / "o.tsv"),
        "--distance", "20", "--batch-size", "3", "--device", "cpu",
    ])
    assert r.exit_code == 0, r.output
    assert "4 records, 5 ALT alleles: 4 scored, 1 with a reason code" in r.output
    assert "SYMBOLIC" in r.output and "chromosome 1 -> chr1" in r.output
    recs = list(pysam.VariantFile(str(out)))
    assert [len(x.info["GENA_SPLICE"]) for x in recs[:3]] == [2, 1, 1]
    assert recs[3].info["GENA_REASON"] == ("SYMBOLIC",)
    fields = recs[0].info["GENA_SPLICE"][0].split("|")
    assert fields[0] == "A" and fields[1] in "+-" and len(fields) == 10
    assert (tmp_path / "o.vcf.gz.tbi").exists()
    assert len((tmp_path / "o.tsv").read_text().splitlines()) == 6


def test_score_promoter_labels_strand(files, tmp_path):
    out = tmp_path / "o.vcf"
    r = CliRunner().invoke(main, [
        "score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task", "promoter",
        "--model", str(files / "prom"), "-o", str(out), "--strand", "+", "--quiet",
    ])
    assert r.exit_code == 0, r.output
    recs = list(pysam.VariantFile(str(out)))
    f = recs[0].info["GENA_PROMOTER"][0].split("|")
    assert f[:3] == ["A", "+", "promoter"] and len(f) == 8
    assert float(f[5]) == pytest.approx(float(f[4]) - float(f[3]), abs=2e-4)


def test_stdin_to_stdout(files):
    p = subprocess.run(
        [*CLI, "score", "-", "--genome", str(files / "g.fa"), "--task", "splice", "--model",
         str(files / "splice"), "-o", "-", "--distance", "10", "-q"],
        input=VCF, capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    body = [x for x in p.stdout.splitlines() if not x.startswith("#")]
    assert [x.split("\t")[1] for x in body] == ["100", "200", "300", "390"]
    assert "GENA_SPLICE=A|" in body[0] and "GENA_REASON=SYMBOLIC" in body[3]


def test_clear_errors(files, tmp_path):
    bad = tmp_path / "bad.vcf"
    bad.write_text("not a vcf\n")
    r = CliRunner().invoke(main, ["score", str(bad), "--genome", str(files / "g.fa"), "--task", "splice",
                                  "--model", str(files / "splice"), "-o", str(tmp_path / "o.vcf")])
    assert r.exit_code == 1 and "bad.vcf: not a readable VCF" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task",
                                  "splice", "--model", str(files / "prom"), "-o", str(tmp_path / "o.vcf")])
    assert r.exit_code == 1 and "has a sequence head; use a token-classification checkpoint" in r.output
    assert not (tmp_path / "o.vcf").exists()
    # --window-tokens: within the model's capacity (the tiny GENA model's), and it reaches the scorer
    base = ["score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task", "splice",
            "--model", str(files / "splice"), "-o", str(tmp_path / "w.vcf"), "--distance", "5"]
    r = CliRunner().invoke(main, [*base, "--window-tokens", "100000"])
    assert r.exit_code == 1 and "--window-tokens must be between 1 and the model's capacity" in r.output
    assert not (tmp_path / "w.vcf").exists()
    r = CliRunner().invoke(main, [*base, "--window-tokens", "16", "-q"])
    assert r.exit_code == 0, r.output
    assert "max_tokens=16>" in (tmp_path / "w.vcf").read_text()


def test_help_does_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; from genaannot.cli import main; "
            "r = CliRunner().invoke(main, ['score', '--help']); assert r.exit_code == 0, r.output; "
            "assert '--distance' in r.output; assert 'torch' not in sys.modules and 'pysam' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_score_model_option(files, tmp_path):
    """--model-option reaches the family loader (RMT: two segments instead of rmt.json's three)."""
    from tinymodels import make_rmt_dir

    rmt = make_rmt_dir(tmp_path / "rmt", head="token", num_labels=3, input_size=32, max_n_segments=3)
    heads = {}
    for name, extra in (("default", []), ("two", ["--model-option", "max_n_segments=2"])):
        out = tmp_path / f"{name}.vcf"
        r = CliRunner().invoke(main, ["score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task",
                                      "splice", "--model", str(rmt), "-o", str(out), "--device", "cpu", "-q", *extra])
        assert r.exit_code == 0, r.output
        heads[name] = [ln for ln in out.read_text().splitlines() if ln.startswith("##genaannotScore")][0]
    assert "max_tokens=78>" in heads["default"] and "max_tokens=52>" in heads["two"]


@pytest.mark.slow
def test_devices(files, tmp_path):
    """--devices cpu,cpu: one process per device; BCF and stdout output as with one process."""
    args = [str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task", "splice", "--model",
            str(files / "splice"), "--distance", "20", "-q"]
    runs = {}
    for name, extra in (("one", ["--device", "cpu"]), ("two", ["--devices", "cpu,cpu"])):
        out = tmp_path / f"{name}.bcf"
        r = CliRunner().invoke(main, ["score", *args, "-o", str(out), *extra])
        assert r.exit_code == 0, r.output
        runs[name] = [str(rec) for rec in pysam.VariantFile(str(out))]
        p = subprocess.run([*CLI, "score", *args, "-o", "-", *extra], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        runs[name + "-stdout"] = p.stdout.splitlines()
    assert len(runs["one"]) == 4 and "GENA_REASON=SYMBOLIC" in runs["one"][3]
    for name in ("", "-stdout"):  # 4-decimal VCF values: equal unless rounding sits on a boundary
        a, b = runs["one" + name], runs["two" + name]
        assert len(a) == len(b) and sum(x == y for x, y in zip(a, b)) >= len(a) - 1
    r = CliRunner().invoke(main, ["score", "-", *args[1:], "-o", str(tmp_path / "x.vcf"), "--devices", "cpu,cpu"],
                           input=VCF)
    assert r.exit_code == 1 and "not standard input" in r.output


def test_annotation_spliceai_info_and_usage_errors(files, tmp_path):
    gtf = tmp_path / "g.gtf"
    gtf.write_text('chr1\tt\texon\t50\t120\t.\t-\t.\tgene_id "g1"; transcript_id "t1"; gene_name "GENE1"; '
                   'note "a; b";\n')
    out = tmp_path / "o.vcf"
    base = ["score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task", "splice",
            "--model", str(files / "splice"), "-o", str(out), "-q"]
    r = CliRunner().invoke(main, [*base, "-A", str(gtf), "--spliceai-info", "--outside-genes", "reason"])
    assert r.exit_code == 0, r.output
    recs = list(pysam.VariantFile(str(out)))
    assert [v.split("|")[:2] for v in recs[0].info["SpliceAI"]] == [["A", "GENE1"], ["C", "GENE1"]]
    assert recs[0].info["GENA_SPLICE_STRAND"] == ("-", "-") and recs[1].info["GENA_REASON"] == ("NO_GENE",)
    r = CliRunner().invoke(main, [*base, "-M"])
    assert r.exit_code == 2 and "need --annotation" in r.output
    r = CliRunner().invoke(main, [*base, "-A", str(gtf), "--strand", "+"])
    assert r.exit_code == 2 and "leave out --strand" in r.output
    bad = tmp_path / "bad.gtf"
    bad.write_text("chr1\tt\texon\t50\t120\t.\t-\t.\tgene_id\n")
    r = CliRunner().invoke(main, [*base, "-A", str(bad)])
    assert r.exit_code == 1 and "bad.gtf:1" in r.output and "Traceback" not in r.output


def _positions(path):
    return [r.pos for r in pysam.VariantFile(str(path))]


@pytest.mark.parametrize("args, kept", [
    (["-r", "chr1:150-200,1:390-390"], [200, 390]),
    (["-r", "chr1:202-250"], [200]),  # the 3-bp REF at 200 overlaps 202
    (["-r", "chr1:101-199"], []),
    (["-R", "BED"], [100]),
    (["-R", "BED", "--regions", "chr1:300-300"], [100, 300]),
])
def test_score_regions_like_bcftools(files, tmp_path, args, kept):
    (tmp_path / "r.bed").write_text("1\t99\t100\n")
    out = tmp_path / "o.vcf"
    args = [str(tmp_path / "r.bed") if x == "BED" else x for x in args]
    r = CliRunner().invoke(main, [
        "score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task", "splice",
        "--model", str(files / "splice"), "-o", str(out), "--distance", "10", "--device", "cpu", *args])
    assert r.exit_code == 0, r.output
    assert _positions(out) == kept
    assert f"{4 - len(kept)} records outside the regions (-r/-R): not written" in r.output
    assert f"{len(kept)} records," in r.output
    header = str(pysam.VariantFile(str(out)).header)
    assert "##genaannotRegions=" in header


def test_score_regions_count_info_end_like_bcftools(files, tmp_path):
    # a symbolic deletion or gVCF block reaches INFO/END: bcftools -r keeps it where END overlaps
    vcf = tmp_path / "sv.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=1,length=400>\n"
                   '##INFO=<ID=END,Number=1,Type=Integer,Description="End">\n'
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"1\t250\tdel\t{SEQ[249]}\t<DEL>\t.\t.\tEND=320\n"
                   f"1\t260\tsnv\t{SEQ[259]}\tA\t.\t.\t.\n")
    out = tmp_path / "o.vcf"
    r = CliRunner().invoke(main, ["score", str(vcf), "--genome", str(files / "g.fa"), "--task", "splice",
                                  "--model", str(files / "splice"), "-o", str(out), "--device", "cpu",
                                  "-r", "chr1:300-300"])
    assert r.exit_code == 0, r.output
    recs = list(pysam.VariantFile(str(out)))
    assert [(x.id, x.stop) for x in recs] == [("del", 320)]
    assert recs[0].info["GENA_REASON"] == ("SYMBOLIC",)
    assert "1 records outside the regions (-r/-R): not written" in r.output


def test_score_regions_quiet_still_says_and_errors(files, tmp_path):
    base = ["score", str(files / "in.vcf"), "--genome", str(files / "g.fa"), "--task", "splice",
            "--model", str(files / "splice"), "-o", str(tmp_path / "o.vcf"), "--device", "cpu"]
    r = CliRunner().invoke(main, [*base, "-q", "-r", "chr1:1-150"])
    assert r.exit_code == 0 and "3 records outside the regions (-r/-R) were not written" in r.output
    for extra, message in ((["-r", "chr9:1-10"], "'chr9' is not in the genome"),
                           (["-r", "chr1:1-401"], "runs past the end of chr1"),
                           (["-r", "chr1:390"], "give chr1:390-390 for the one base"),
                           (["-R", str(tmp_path / "none.bed")], "not found"),
                           (["-r", "chr1", "--shard", "1/2"], "cannot be combined with --shard")):
        (tmp_path / "o.vcf").unlink(missing_ok=True)
        r = CliRunner().invoke(main, [*base, *extra])
        assert r.exit_code == 1 and message in r.output, (extra, r.output)
        assert not (tmp_path / "o.vcf").exists()


def test_missing_per_alt_values_are_dots_and_a_full_table_is_named(files, tmp_path, monkeypatch):
    """An ALT with a reason code has '.' in every Number=A field, the String ones (STRAND)
    too, in VCF and BCF; a table that cannot be written is named in the error."""
    vcf = tmp_path / "m.vcf"
    vcf.write_text(VCF.replace("A,C\t", "A,<DEL>\t"))
    base = ["score", str(vcf), "--genome", str(files / "g.fa"), "--task", "splice", "--model", str(files / "splice"),
            "--distance", "10", "-q"]
    for suffix in (".vcf", ".bcf"):
        out = tmp_path / f"o{suffix}"
        r = CliRunner().invoke(main, [*base, "-o", str(out), "--tsv", str(tmp_path / "o.tsv")])
        assert r.exit_code == 0, r.output
        first = str(next(iter(pysam.VariantFile(str(out)))))  # BCF shown as VCF text, as bcftools view does
        assert re.search(r"GENA_SPLICE_STRAND=[+-],\.;", first), first
        assert "GENA_SPLICE_DS_MAX=" in first and "GENA_REASON=.,SYMBOLIC" in first
    rows = [x.split("\t") for x in (tmp_path / "o.tsv").read_text().splitlines()]
    assert rows[2][4] == "<DEL>" and rows[2][6] == "SYMBOLIC" and rows[2][8] == "NA"  # strand: NA in the TSV
    if Path("/dev/full").exists():  # a full device, written into at the end
        r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "f.vcf"), "--tsv", "/dev/full"])
        assert r.exit_code == 1 and "/dev/full: cannot write (No space left on device); disk full" in r.output
    from genaannot.io.table import TableWriter

    def full(self, values):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(TableWriter, "write_row", full)
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "g.vcf"), "--tsv", str(tmp_path / "g.tsv")])
    assert r.exit_code == 1 and "g.tsv: cannot write (No space left on device); disk full" in r.output, r.output
    assert not (tmp_path / "g.tsv").exists() and not (tmp_path / "g.vcf").exists()
