"""Hostile and broken input (issue 20), inputs and outputs: no output may overwrite an input
(same path, hard or symbolic link), ``-o -`` where a command writes files, and FASTA files
whose index is stale, whose names repeat or are empty, or whose letters are not bases.

Each case: a usage error (exit 2) or a data error (exit 1) with a one-line message naming
the file, no traceback, and the input byte-identical afterwards.
"""

from __future__ import annotations

import os

import pysam
import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir

from genaannot.cli import main

SEQ = "ACGTTGCAAC" * 40
VCF = (
    "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=400>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    f"chr1\t100\t.\t{SEQ[99]}\tA\t.\t.\t.\n"
    f"chr1\t300\t.\t{SEQ[299]}\tG\t.\t.\t.\n"
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"token": make_gena_dir(d / "tok", head="token", num_labels=3),
            "sequence": make_gena_dir(d / "seq", head="sequence", num_labels=2)}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "g.fa").write_text(">chr1\n" + "\n".join(SEQ[i : i + 60] for i in range(0, 400, 60)) + "\n")
    (tmp_path / "in.vcf").write_text(VCF)
    return tmp_path


def _run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(r, code, *words):
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # no traceback
    err = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(err) == 1, r.output
    for w in words:
        assert str(w) in err[0], (w, err[0])
    return err[0]


def _score(files, models, *extra):
    return _run(["score", files / "in.vcf", "--genome", files / "g.fa", "--task", "splice",
                 "--model", models["token"], "--device", "cpu", "--quiet", *extra])


def _scan(files, models, out, *extra):
    # one label, one strand: the single track is written to OUT itself
    return _run(["scan", files / "g.fa", "--task", "promoter", "--model", models["sequence"], "-o", out,
                 "--strand", "+", "--labels", "0", "--window-tokens", "30", "--device", "cpu", "--quiet", *extra])


# -- outputs onto inputs -----------------------------------------------------------------------

@pytest.mark.parametrize("which", ["tsv", "vcf-onto-genome", "vcf-onto-fai", "vcf-onto-model"])
def test_score_output_onto_an_input_is_a_usage_error(files, models, which):
    before = {p: p.read_bytes() for p in files.iterdir() if p.is_file()}
    fai_exists = (files / "g.fa.fai").exists()
    weights = sorted(p for p in models["token"].iterdir() if p.is_file())[0]
    target, opt, what = {
        "tsv": (files / "in.vcf", ["-o", files / "o.vcf", "--tsv", files / "in.vcf"], "VCF"),
        "vcf-onto-genome": (files / "g.fa", ["-o", files / "g.fa"], "FASTA"),
        "vcf-onto-fai": (files / "g.fa.fai", ["-o", files / "g.fa.fai"], "FASTA index"),
        "vcf-onto-model": (weights, ["-o", weights], "model"),
    }[which]
    saved = target.read_bytes() if target.exists() else None
    r = _score(files, models, *opt)
    _one_line_error(r, 2, target, f"input {what}", "choose another output name")
    if saved is not None:
        assert target.read_bytes() == saved
    for p, data in before.items():
        assert p.read_bytes() == data
    assert not (files / "o.vcf").exists()
    assert fai_exists or which == "vcf-onto-fai" or (files / "g.fa.fai").exists()


def test_score_output_through_links_is_refused(files, models):
    os.symlink(files / "in.vcf", files / "sym.vcf")
    os.link(files / "in.vcf", files / "hard.vcf")
    for out in ("sym.vcf", "hard.vcf"):
        r = _score(files, models, "-o", files / out)
        msg = _one_line_error(r, 2, files / out, files / "in.vcf", "the same file")
        assert "input VCF" in msg
    assert (files / "in.vcf").read_text() == VCF


def test_score_index_of_the_output_onto_the_input_index(files, models):
    """-o x.vcf.gz writes x.vcf.gz.tbi: it may not be the input's index either."""
    pysam.tabix_compress(str(files / "in.vcf"), str(files / "in.vcf.gz"))
    pysam.tabix_index(str(files / "in.vcf.gz"), preset="vcf")
    tbi = (files / "in.vcf.gz.tbi").read_bytes()
    os.link(files / "in.vcf.gz.tbi", files / "o.vcf.gz.tbi")
    r = _run(["score", files / "in.vcf.gz", "--genome", files / "g.fa", "--task", "splice",
              "--model", models["token"], "--device", "cpu", "--quiet", "-o", files / "o.vcf.gz"])
    _one_line_error(r, 2, "o.vcf.gz.tbi", "input VCF index")
    assert (files / "in.vcf.gz.tbi").read_bytes() == tbi and not (files / "o.vcf.gz").exists()


@pytest.mark.parametrize("opt", [("-o", "x.vcf", "--tsv", "x.vcf"), ("-o", "y.vcf.gz", "--tsv", "y.vcf.gz.tbi")])
def test_score_two_outputs_onto_one_file_is_a_usage_error(files, models, opt):
    r = _score(files, models, *[files / a if "." in a else a for a in opt])
    _one_line_error(r, 2, files / opt[3], "one would overwrite the other")
    assert {p.name for p in files.iterdir()} <= {"g.fa", "g.fa.fai", "in.vcf"}  # nothing written


def test_score_into_a_device(files, models, null_device):
    import stat

    r = _score(files, models, "-o", null_device, "--tsv", null_device)
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(os.stat(null_device).st_mode)  # not replaced by a regular file (root may rename over it)
    assert not (files / "null.tbi").exists()


def test_score_into_a_fifo_and_through_a_link(files, models):
    import threading

    fifo = files / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    r = _score(files, models, "-o", files / "o.vcf", "--tsv", fifo)
    reader.join(60)
    assert r.exit_code == 0, r.output
    assert got and got[0].startswith("chrom\t") and len(got[0].splitlines()) == 3
    (files / "real").mkdir()
    os.symlink(files / "real" / "o.vcf.gz", files / "link.vcf.gz")
    assert _score(files, models, "-o", files / "link.vcf.gz").exit_code == 0
    assert (files / "link.vcf.gz").is_symlink() and (files / "link.vcf.gz.tbi").is_file()
    assert len(list(pysam.VariantFile(str(files / "link.vcf.gz")))) == 2


def test_scan_single_track_onto_the_genome(files, models):
    fa = (files / "g.fa").read_bytes()
    r = _scan(files, models, files / "g.fa")
    _one_line_error(r, 2, files / "g.fa", "input FASTA")
    assert (files / "g.fa").read_bytes() == fa
    assert not (files / "g.parts").exists() and not (files / "g.json").exists()


def test_scan_outputs_onto_a_link_to_the_genome_or_the_regions(files, models):
    fa = (files / "g.fa").read_bytes()
    os.link(files / "g.fa", files / "hard.bw")
    _one_line_error(_scan(files, models, files / "hard.bw"), 2, "hard.bw", "input FASTA", "the same file")
    # the calls BED is OUT.calls.bed: here it is the regions BED given
    (files / "r.calls.bed").write_text("chr1\t0\t400\n")
    r = _scan(files, models, files / "r.bw", "--regions", files / "r.calls.bed")
    _one_line_error(r, 2, "r.calls.bed", "input regions BED")
    assert (files / "r.calls.bed").read_text() == "chr1\t0\t400\n" and (files / "g.fa").read_bytes() == fa
    assert not (files / "r.bw").exists()
    # the track names that depend on the labels are checked too (OUT.<label>.<strand>.bw)
    os.symlink(files / "g.fa", files / "t.acceptor.plus.bw")
    r = _run(["scan", files / "g.fa", "--task", "splice", "--model", models["token"], "-o", files / "t.bw",
              "--window-tokens", "30", "--device", "cpu", "--quiet"])
    _one_line_error(r, 2, "t.acceptor.plus.bw", "input FASTA")
    assert (files / "g.fa").read_bytes() == fa


def test_merge_output_onto_a_partial(files, models):
    parts = []
    for i in (1, 2):
        out = files / f"p{i}.vcf.gz"
        r = _score(files, models, "-o", out, "--tsv", files / f"p{i}.tsv", "--shard", f"{i}/2")
        assert r.exit_code == 0, r.output
        parts.append(out)
    saved = {p: p.read_bytes() for p in files.iterdir() if p.name.startswith("p")}
    r = _run(["merge", *parts, "-o", parts[0], "--quiet"])
    _one_line_error(r, 2, parts[0], "input partial VCF")
    r = _run(["merge", *parts, "-o", files / "m.vcf.gz", "--tsv", files / "p2.tsv", "--quiet"])
    _one_line_error(r, 2, files / "p2.tsv", "input partial TSV")
    assert not (files / "m.vcf.gz").exists()
    for p, data in saved.items():
        assert p.read_bytes() == data
    r = _run(["merge", *parts, "-o", files / "m.vcf.gz", "--quiet"])
    assert r.exit_code == 0, r.output


# -- "-o -" where stdout makes no sense ---------------------------------------------------------

@pytest.mark.parametrize("cmd", [
    ["scan", "G", "--task", "splice", "--model", "M", "-o", "-"],
    ["merge", "X", "-o", "-"],
    ["merge", "X", "-o", "m.vcf.gz", "--tsv", "-"],
    ["ism", "G", "--region", "chr1:1-10", "--task", "splice", "--model", "M", "-o", "-"],
    ["attribute", "G", "--region", "chr1:1-10", "--task", "splice", "--model", "M", "-o", "-"],
    ["report", "G", "-o", "-"],
    ["hub", "G", "-o", "-"],
    ["plot", "G", "--region", "chr1:1-10", "--calls", "G", "-o", "-"],
    ["train", "--task", "splice", "--genome", "G", "--annotation", "G", "-o", "-", "--train-chroms", "chr1"],
    ["evaluate", "--model", "M", "--genome", "G", "--annotation", "G", "--chroms", "chr1", "-o", "-"],
], ids=lambda c: c[0] + ("-tsv" if "--tsv" in c else ""))
def test_dash_output_is_refused_where_files_are_written(files, models, cmd, monkeypatch):
    monkeypatch.chdir(files)
    args = [str(files / "g.fa") if a in ("G", "X") else str(models["token"]) if a == "M" else a for a in cmd]
    r = _run(args)
    _one_line_error(r, 2, "'-' (standard output) is not possible here")
    assert not [p for p in files.iterdir() if p.name.startswith("-")]


# -- FASTA: stale index, names, letters ---------------------------------------------------------

def test_scan_with_a_stale_index_names_it(files, models):
    fa = files / "g.fa"
    with pysam.FastaFile(str(fa)):
        pass  # index of the 400-bp sequence
    fa.write_text(">chr1\n" + SEQ[:200] + "\n>chr2\n" + SEQ[:150] + "\n")  # edited afterwards
    r = _scan(files, models, files / "o.bw")
    _one_line_error(r, 1, f"{fa}.fai", "stale", "samtools faidx")
    assert not (files / "o.bw").exists()
    os.unlink(f"{fa}.fai")  # what the message says: then it is rebuilt and the scan runs
    assert _scan(files, models, files / "o.bw").exit_code == 0


@pytest.mark.parametrize("text, words", [
    (">chr1\nACGT\n>chr2\nAC\n>chr1\nGG\n", ["'chr1'", "twice", "lines 1 and 5"]),
    (">chr1\nACGT\n>\nAC\n", ["line 3", "no name"]),
    (">chr1\nACGT\n> chr2 text\nAC\n", ["line 3", "no name"]),
    (">chr1\nACGTACGTAC\nAC9T\n", ["chr1:13", "'9'", "not a nucleotide letter"]),
    (">chr1\nACGT-ACGT*\n", ["chr1:5", "'-'"]),
    (">chr1\nACGTX\n", ["chr1:5", "'X'"]),
], ids=["duplicate", "empty-name", "blank-name", "digit", "dash", "X"])
def test_scan_and_score_refuse_broken_fasta(files, models, text, words):
    fa = files / "g.fa"
    fa.write_text(text)
    r = _scan(files, models, files / "o.bw")
    _one_line_error(r, 1, fa, *words)
    assert fa.read_text() == text and not (files / "o.bw").exists()
    if "no name" in words or "twice" in words:  # found when the FASTA is opened: score says the same
        r = _score(files, models, "-o", files / "o.vcf")
        _one_line_error(r, 1, fa, *words)


# -- FASTA: any bgzip name, files htslib cannot index, empty sequences --------------------------

def test_scan_bgzipped_fasta_without_a_gz_name(files, models):
    fa = files / "g.fa"
    pysam.tabix_compress(str(fa), str(files / "z.gz"))
    os.replace(files / "z.gz", fa)  # bgzip bytes under a plain name
    r = _scan(files, models, files / "o.bw")
    assert r.exit_code == 0, r.output
    assert (files / "g.fa.fai").is_file() and (files / "g.fa.gzi").is_file()


@pytest.mark.parametrize("text, words", [
    (">chr1\n" + SEQ[:60] + "\n" + SEQ[60:90] + "\n" + SEQ[90:150] + "\n",
     ["line 3 of record 'chr1' holds 30 bases", "seqkit seq -w 60"]),
    (">chr1\n" + SEQ[:60] + "\n\n" + SEQ[60:120] + "\n", ["line 3 is blank inside record 'chr1'"]),
    ("\ufeff>chr1\n" + SEQ[:60] + "\n", ["line 1 starts with a UTF-8 byte-order mark"]),
], ids=["short-line", "blank-line", "bom"])
def test_scan_and_score_say_why_a_fasta_cannot_be_indexed(files, models, text, words):
    fa = files / "g.fa"
    fa.write_text(text)
    for r in (_scan(files, models, files / "o.bw"), _score(files, models, "-o", files / "o.vcf")):
        err = _one_line_error(r, 1, fa, *words)
        assert "stale" not in err and ".fai" not in err  # no index existed: none is blamed
    assert fa.read_text() == text and not (files / "o.bw").exists()


def test_empty_sequence_is_named_and_scored_as_missing(files, models):
    import pyBigWig

    fa = files / "g.fa"
    fa.write_text(">chr1\n" + SEQ + "\n>empty\n>chr2\n" + SEQ[:200] + "\n")
    with pytest.warns(UserWarning, match=r"sequence 'empty' \(line 3\) has no bases"):
        r = _scan(files, models, files / "o.bw")
    assert r.exit_code == 0, r.output
    with pyBigWig.open(str(files / "o.bw")) as bw:
        assert bw.chroms() == {"chr1": 400, "chr2": 200}  # a bigWig cannot hold a length-0 sequence
    (files / "in.vcf").write_text(VCF + "empty\t1\t.\tA\tG\t.\t.\t.\n")
    r = _score(files, models, "-o", files / "o.vcf")
    assert r.exit_code == 0, r.output
    assert "warning:" in r.output and "'empty' (line 3) has no bases" in r.output
    rows = [line.split("\t") for line in (files / "o.vcf").read_text().splitlines() if line.startswith("empty")]
    assert len(rows) == 1 and "GENA_REASON=NO_CONTIG" in rows[0][7]
