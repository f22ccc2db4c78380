"""Issue 20, VCF input and model outputs: broken or hostile input gets one clear line naming
the file and what to do (never a traceback, never silent garbage)."""

from __future__ import annotations

import gzip
import shutil

import pysam
import pysam.bcftools
import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir

from genaannot.cli import main
from genaannot.io.vcf import InfoField, VcfError, open_variants, open_writer

SEQ = "ACGTTGCAAC" * 40
HEAD = "##fileformat=VCFv4.2\n##contig=<ID=1,length=400>\n"
COLS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def rec(chrom="1", pos=100, ref=None, alt="A", info="."):
    ref = SEQ[pos - 1] if ref is None else ref
    return f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\t.\t{info}\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from safetensors.torch import load_file, save_file

    d = tmp_path_factory.mktemp("hostile_vcf")
    (d / "g.fa").write_text(">1\n" + SEQ + "\n>2\n" + SEQ + "\n")
    (d / "g1.fa").write_text(">1\n" + SEQ + "\n")
    for name, head, n in (("prom", "sequence", 2), ("splice", "token", 3)):
        make_gena_dir(d / name, head=head, num_labels=n)
        # the same checkpoint with NaN classifier weights
        shutil.copytree(d / name, d / f"{name}nan")
        w = load_file(d / f"{name}nan" / "model.safetensors")
        w["classifier.weight"][:] = float("nan")
        save_file(w, d / f"{name}nan" / "model.safetensors", metadata={"format": "pt"})
    return d


def score(files, vcf, out, *, task="promoter", model="prom", genome="g.fa", extra=()):
    return CliRunner().invoke(main, [
        "score", str(vcf), "--genome", str(files / genome), "--task", task, "--model", str(files / model),
        "-o", str(out), "--device", "cpu", "--quiet", *extra,
    ])


def one_line_error(r, *needles):
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    err = [ln for ln in r.output.splitlines() if ln.startswith("Error: ")]
    assert len(err) == 1, r.output
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


# --------------------------------------------------------------------------- 1. re-scoring


def test_rescoring_replaces_our_fields_and_header_lines(files, tmp_path):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEAD + "##contig=<ID=2,length=400>\n" + COLS + rec(pos=100) + rec(chrom="2", pos=200)
                   + rec(pos=300, alt="*"))
    first = tmp_path / "first.vcf"
    assert score(files, vcf, first).exit_code == 0
    assert "GENA_PROMOTER=" in first.read_text()
    # second run: other task, and contig 2 is missing from this genome (its record is not scored)
    second = tmp_path / "second.vcf.gz"
    r = CliRunner().invoke(main, ["score", str(first), "--genome", str(files / "g1.fa"), "--task", "splice",
                                  "--model", str(files / "splice"), "-o", str(second), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "removed the annotations of an earlier genaannot run" in r.output
    text = pysam.bcftools.view(str(second))
    assert "GENA_PROMOTER" not in text  # neither declared nor on any record
    assert [ln for ln in text.splitlines() if ln.startswith("##genaannotScore")][0].startswith(
        "##genaannotScore=<task=splice")
    assert text.count("##genaannotScore") == 1
    recs = list(pysam.VariantFile(str(second)))
    assert "GENA_SPLICE" in recs[0].info
    assert recs[1].info["GENA_REASON"] == ("NO_CONTIG",) and "GENA_SPLICE" not in recs[1].info
    assert recs[2].info["GENA_REASON"] == ("SYMBOLIC",)


# --------------------------------------------------------------------------- 3. undeclared fields


def test_undeclared_fields_are_declared_as_htslib_does(tmp_path):
    """Undeclared ids are declared Type=String,Number=. (a key never given a value: Flag), as
    htslib and bcftools do, so their values come back unchanged; a numeric type would rewrite
    them (SCORE=123456789 -> 1.23457e+08, AF=1.0 -> 1)."""
    p = tmp_path / "u.vcf"
    p.write_text(HEAD + "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
                 + COLS.rstrip("\n") + "\tFORMAT\tS1\n"
                 + rec(pos=100, info="DP=5;AF=0.5;FL;NAME=abc;AC=1,2;MIX=3;DOT=.").rstrip("\n") + "\tGT:GQ\t0/1:30\n"
                 + rec(pos=200, info="DP=2;AF=1.0;MIX=x;DOT=.").rstrip("\n") + "\tGT:GQ\t1/1:07\n")
    out = tmp_path / "o.vcf"
    with open_variants(p) as r:
        r.add_info(InfoField("GENA_T", "test"))
        w = open_writer(out, r)
        for x in r:
            w.write(x, {"GENA_T": ["v"]})
        w.close()
        notes = r.notes
    assert any("INFO/DP" in n and "declared it as Number=.,Type=String" in n for n in notes)
    header = pysam.VariantFile(str(out)).header
    got = {k: (str(v.number), v.type) for k, v in header.info.items()}
    assert got["FL"] == ("0", "Flag")
    assert all(got[k] == (".", "String") for k in ("DP", "AF", "NAME", "AC", "MIX", "DOT"))
    assert (str(header.formats["GQ"].number), header.formats["GQ"].type) == (".", "String")
    assert "added by genaannot" in header.info["DP"].description
    body = [ln.split("\t") for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert [b[7] for b in body] == ["DP=5;AF=0.5;FL;NAME=abc;AC=1,2;MIX=3;DOT=.;GENA_T=v",
                                    "DP=2;AF=1.0;MIX=x;DOT=.;GENA_T=v"]
    assert [b[9] for b in body] == ["0/1:30", "1/1:07"]


def test_symbolic_del_with_undeclared_end_is_written(files, tmp_path):
    vcf = tmp_path / "del.vcf"
    vcf.write_text(HEAD + COLS + rec(pos=100, alt="<DEL>", info="END=120;SVTYPE=DEL") + rec(pos=200))
    out = tmp_path / "o.vcf"
    r = score(files, vcf, out)
    assert r.exit_code == 0, r.output
    recs = list(pysam.VariantFile(str(out)))
    assert recs[0].info["GENA_REASON"] == ("SYMBOLIC",) and recs[0].stop == 120
    assert "GENA_PROMOTER" in recs[1].info


# --------------------------------------------------------------------------- 2. broken files


def _write(path, text):
    path.write_text(text)


CASES = {
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 8), "binary content"),
    "no_fileformat": (lambda p: _write(p, COLS + rec()), "##fileformat"),
    "no_chrom_line": (lambda p: _write(p, HEAD + rec()), "no '#CHROM POS ID REF ALT QUAL FILTER INFO' column line"),
    "few_columns": (lambda p: _write(p, HEAD + COLS + "1\t100\t.\tC\n"), "record 1 (line 4): 4 tab-separated column(s)"),
    "spaces": (lambda p: _write(p, HEAD + COLS + rec() + rec(pos=200).replace("\t", " ")), "space-separated"),
    "pos_text": (lambda p: _write(p, HEAD + COLS + rec().replace("\t100\t", "\tabc\t")), "POS 'abc'"),
    "pos_negative": (lambda p: _write(p, HEAD + COLS + rec().replace("\t100\t", "\t-5\t")), "POS '-5'"),
    "end_string": (lambda p: _write(p, HEAD + '##INFO=<ID=END,Number=1,Type=String,Description="e">\n' + COLS
                                    + rec(alt="<DEL>", info="END=120")), "INFO/END is declared Type=String"),
    "end_not_number": (lambda p: _write(p, HEAD + COLS + rec(alt="<DEL>", info="END=12x")),
                       "INFO/END has values that are not whole numbers"),
    "truncated_gzip": (lambda p: p.write_bytes(gzip.compress((HEAD + COLS + rec() * 50).encode())[:40]),
                       "damaged or truncated gzip"),
    "truncated_bgzip": (lambda p: p.write_bytes(pysam_bgzip(p, HEAD + COLS + rec() * 50)[:60]), "truncated"),
}


def pysam_bgzip(p, text):
    src = p.with_name(p.name + ".src.vcf")
    src.write_text(text)
    pysam.tabix_compress(str(src), str(src) + ".gz", force=True)
    return (src.parent / (src.name + ".gz")).read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_vcf_is_one_line_naming_the_file(tmp_path, case):
    make, needle = CASES[case]
    p = tmp_path / f"{case}.vcf.gz"
    make(p)
    with pytest.raises(VcfError) as e:
        open_variants(p).close()
    msg = str(e.value)
    assert msg.startswith(str(p)) and needle in msg and "\n" not in msg, msg


def test_broken_vcf_through_the_cli(files, tmp_path):
    p = tmp_path / "cols.vcf"
    CASES["few_columns"][0](p)
    one_line_error(score(files, p, tmp_path / "o.vcf"), "cols.vcf", "line 4")
    assert not (tmp_path / "o.vcf").exists()


def test_plain_gzip_is_read(files, tmp_path):
    p = tmp_path / "plain.vcf.gz"
    p.write_bytes(gzip.compress((HEAD + COLS + rec()).encode()))
    r = CliRunner().invoke(main, ["score", str(p), "--genome", str(files / "g.fa"), "--task", "promoter",
                                  "--model", str(files / "prom"), "-o", str(tmp_path / "o.vcf"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "gzip, not bgzip" in r.output and "bgzip" in r.output
    assert "GENA_PROMOTER=" in (tmp_path / "o.vcf").read_text()


def test_positions_and_contigs_get_reasons(files, tmp_path):
    """POS 0, past the contig end, a contig not in the genome: written with a reason; chr1 is 1."""
    vcf = tmp_path / "p.vcf"
    vcf.write_text(HEAD + COLS + rec(pos=0, ref="A") + rec(pos=500, ref="A") + rec(chrom="chrZ", ref="A")
                   + rec(chrom="chr1"))
    out = tmp_path / "o.vcf"
    r = score(files, vcf, out)
    assert r.exit_code == 0, r.output
    recs = list(pysam.VariantFile(str(out)))
    assert [x.info.get("GENA_REASON") for x in recs] == [("EDGE",), ("EDGE",), ("NO_CONTIG",), None]
    assert "GENA_PROMOTER" in recs[3].info


# --------------------------------------------------------------------------- 4. non-finite outputs


@pytest.mark.parametrize("task,model", [("promoter", "promnan"), ("splice", "splicenan")])
def test_nan_model_fails_score_naming_the_variant(files, tmp_path, task, model):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEAD + COLS + rec(pos=100))
    out = tmp_path / "o.vcf"
    one_line_error(score(files, vcf, out, task=task, model=model), "non-finite", "variant 1:100", "strand")
    assert not out.exists()


def test_nan_model_fails_scan_naming_the_window(files, tmp_path):
    r = CliRunner().invoke(main, ["scan", str(files / "g1.fa"), "--task", "promoter", "--model",
                                  str(files / "promnan"), "-o", str(tmp_path / "p.bw"), "--device", "cpu", "--quiet"])
    one_line_error(r, "non-finite", "window 1:", "strand")
    assert not (tmp_path / "p.bw").exists()
