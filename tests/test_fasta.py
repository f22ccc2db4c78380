"""Indexed FASTA access: plain and bgzipped, index creation and its errors, N runs."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pysam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genaannot.io.fasta import FastaError, find_n_runs, open_genome, scan_n_runs

SEQS = {"chrB": "ACGTacgtNNNNRYacgt" * 3, "chrA": "N" * 30, "chrC": "ggg"}


def write_fasta(path, seqs, width=7):
    with open(path, "w") as fh:
        for name, s in seqs.items():
            fh.write(f">{name} description\n")
            fh.writelines(s[i : i + width] + "\n" for i in range(0, len(s), width))
    return path


def test_plain_creates_index_and_keeps_order(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", SEQS)
    with open_genome(fa) as g:
        assert list(g.sizes.items()) == [(k, len(v)) for k, v in SEQS.items()]
        assert g.fetch("chrB", 2, 10) == SEQS["chrB"][2:10]  # raw case kept
        assert g.fetch("chrC", 0, 0) == ""
        with pytest.raises(FastaError, match="outside"):
            g.fetch("chrC", 0, 4)
        with pytest.raises(FastaError, match="no sequence"):
            g.fetch("chrZ", 0, 1)
    assert (tmp_path / "g.fa.fai").is_file()


def test_bgzip(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", SEQS)
    pysam.tabix_compress(str(fa), str(tmp_path / "g.fa.gz"))
    with open_genome(tmp_path / "g.fa.gz") as g:
        assert g.fetch("chrB", 0, 54) == SEQS["chrB"]
    assert (tmp_path / "g.fa.gz.gzi").is_file()


def test_plain_gzip_is_refused(tmp_path):
    with gzip.open(tmp_path / "g.fa.gz", "wt") as fh:
        fh.write(">a\nACGT\n")
    with pytest.raises(FastaError, match="bgzip"):
        open_genome(tmp_path / "g.fa.gz")


NOT_FASTA = {
    "GFF3": b"##gff-version 3\nChr1\tTAIR10\tgene\t3631\t5899\t.\t+\t.\tID=AT1G01010\n",
    "GFF3-no-header": b"Chr1\tTAIR10\tgene\t3631\t5899\t.\t+\t.\tID=AT1G01010;Name=x\n",
    "GTF": b'#!genome-build x\n1\tsrc\tgene\t1\t100\t.\t+\t.\tgene_id "g1"; gene_name "x";\n',
    "VCF": b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t5\t.\tA\tC\t.\t.\t.\n",
    "BED": b"\nchr1\t0\t100\tpeak\n",
}


@pytest.mark.parametrize("compression", ["plain", "gzip", "bgzip"])
@pytest.mark.parametrize("kind", list(NOT_FASTA))
def test_a_file_that_is_not_a_fasta_is_called_that(tmp_path, kind, compression):
    """A GFF3/VCF/BED given as the genome, gzipped or not, is named as not a FASTA (and what it
    looks like), not advised to be bgzipped as a FASTA."""
    src = tmp_path / "genes.txt"
    src.write_bytes(NOT_FASTA[kind])
    path = src
    if compression == "bgzip":
        path = _bgzip(src)
    elif compression == "gzip":
        path = Path(f"{src}.gz")
        path.write_bytes(gzip.compress(src.read_bytes()))
    with pytest.raises(FastaError) as e:
        open_genome(path)
    msg, line = str(e.value), 2 if kind == "BED" else 1
    assert msg.startswith(f"{path}: line {line} ") and "\n" not in msg
    assert "comes before any '>' header line: it is not a FASTA file" in msg
    assert f"(it looks like {kind.split('-')[0]})" in msg
    assert "zcat" not in msg and "OUT.fa.gz" not in msg  # no advice to bgzip it as a FASTA
    assert not Path(f"{path}.fai").exists() and not Path(f"{path}.gzi").exists()


def test_plain_gzip_text_or_binary_that_is_not_a_fasta(tmp_path):
    """Unknown text or binary in plain gzip is not a FASTA either; a gzipped FASTA still gets bgzip advice."""
    text, binary = tmp_path / "notes.gz", tmp_path / "blob.gz"
    text.write_bytes(gzip.compress(b"\n\nhello world\n"))
    binary.write_bytes(gzip.compress(bytes(range(256)) * 4))
    with pytest.raises(FastaError, match=r"notes\.gz: line 3 'hello world' comes before any '>' header line: "
                                         r"it is not a FASTA file; give"):
        open_genome(text)
    with pytest.raises(FastaError, match=r"blob\.gz: line 1 holds control characters: it is not a text FASTA"):
        open_genome(binary)
    fa = tmp_path / "g.fa.gz"
    fa.write_bytes(gzip.compress(b"\n>a\nACGT\n"))
    with pytest.raises(FastaError, match=r"plain gzip.*zcat .*\| bgzip > OUT\.fa\.gz"):
        open_genome(fa)


def _read_only(monkeypatch, directory):
    """Make ``directory`` unwritable for genaannot (root writes anywhere: pretend the bits hold)."""
    import genaannot.io.fasta as fasta_mod

    real = fasta_mod._dir_writable
    monkeypatch.setattr(fasta_mod, "_dir_writable", lambda d: False if Path(d) == directory else real(d))


@pytest.mark.parametrize("bgzip", [False, True])
def test_read_only_directory_indexes_into_the_cache(tmp_path, monkeypatch, bgzip):
    with pytest.raises(FastaError, match="not found"):
        open_genome(tmp_path / "nope.fa")
    ro = tmp_path / "ro"
    ro.mkdir()
    fa = write_fasta(ro / "g.fa", SEQS)
    if bgzip:
        pysam.tabix_compress(str(fa), str(ro / "g.fa.gz"))
        fa.unlink()
        fa = ro / "g.fa.gz"
    monkeypatch.setenv("GENAANNOT_CACHE", str(tmp_path / "cache"))
    _read_only(monkeypatch, ro)
    with pytest.warns(UserWarning, match="index kept in"):
        g = open_genome(fa)
    with g:
        assert g.fetch("chrB", 0, 54) == SEQS["chrB"] and list(g.sizes) == list(SEQS)
        assert g.index_path.parent == tmp_path / "cache" / "fai"
    assert sorted(p.name for p in ro.iterdir()) == [fa.name]  # nothing written beside the FASTA
    cached = sorted(p.suffix for p in (tmp_path / "cache" / "fai").iterdir())
    assert cached == ([".fai", ".gzi"] if bgzip else [".fai"])  # no temporary files left
    with open_genome(fa) as again:  # reused: no second build, no warning
        assert again.index_path == g.index_path


def test_read_only_directory_and_unwritable_cache(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    fa = write_fasta(ro / "g.fa", SEQS)
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("GENAANNOT_CACHE", str(tmp_path / "file" / "sub"))  # cannot be a directory
    _read_only(monkeypatch, ro)
    with pytest.raises(FastaError, match="not writable.*GENAANNOT_CACHE"):
        open_genome(fa)


def test_damaged_index(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", SEQS)
    (tmp_path / "g.fa.fai").write_text("garbage without tabs\n")
    with pytest.raises(FastaError, match="fai"):
        open_genome(fa)


def test_empty_file(tmp_path):
    (tmp_path / "e.fa").write_text("")
    with pytest.raises(FastaError):
        open_genome(tmp_path / "e.fa")


def _naive(seq, min_len):
    out, i = [], 0
    while i < len(seq):
        if seq[i] in "Nn":
            j = i
            while j < len(seq) and seq[j] in "Nn":
                j += 1
            if j - i >= min_len:
                out.append((i, j))
            i = j
        else:
            i += 1
    return out


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ANn", max_size=80), st.integers(1, 6))
def test_find_n_runs(seq, min_len):
    assert [(r.start, r.end) for r in find_n_runs(seq, min_len=min_len)] == _naive(seq, min_len)


def test_scan_n_runs_joins_chunks(tmp_path):
    rng = np.random.default_rng(1)
    seq = "".join(rng.choice(list("AN"), p=[0.4, 0.6], size=500))
    fa = write_fasta(tmp_path / "n.fa", {"x": seq}, width=60)
    with open_genome(fa) as g:
        for chunk in (7, 13, 64, 1000):
            got = [(r.start, r.end) for r in scan_n_runs(g, "x", min_len=3, chunk=chunk)]
            assert got == _naive(seq, 3)


def _stale(tmp_path, name, old, new, *, gz=False):
    """A FASTA indexed as ``old`` whose content is now ``new`` (index left stale)."""
    fa = tmp_path / name
    fa.write_text(old)
    if gz:
        pysam.tabix_compress(str(fa), str(fa) + ".gz")
        fa.unlink()
        fa = Path(str(fa) + ".gz")
        pysam.FastaFile(str(fa)).close()
        keep = [Path(str(fa) + s).read_bytes() for s in (".fai", ".gzi")]
        fa.unlink()
        Path(str(fa)[:-3]).write_text(new)
        pysam.tabix_compress(str(fa)[:-3], str(fa))
        for s, data in zip((".fai", ".gzi"), keep):
            Path(str(fa) + s).write_bytes(data)
        return fa
    pysam.FastaFile(str(fa)).close()
    fa.write_text(new)
    return fa


OLD = ">a\nACGTACGTAC\nACGT\n>b\nGGGG\n"


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("new, detail", [
    (">a\nACGTACGTAC\nACGTAAAAAA\nCC\n>b\nGGGG\n", "no single header line right before sequence 'b'"),
    (">a\nACG\n>b\nGGGG\n", "first line of 'a'"),
    (OLD.replace("GGGG", "GGGGGGG"), "goes on after the last sequence"),
    (OLD.replace(">b", ">c"), "the header before sequence 'b' is '>c'"),
], ids=["grown", "shrunk", "last-grown", "renamed"])
def test_stale_index_is_refused(tmp_path, new, detail, gz):
    fa = _stale(tmp_path, "g.fa", OLD, new, gz=gz)
    with pytest.raises(FastaError) as e:
        open_genome(fa)
    msg = str(e.value)
    assert detail in msg and f"{fa}.fai" in msg and "samtools faidx" in msg and "\n" not in msg
    assert (f"{fa}.gzi" in msg) == gz
    for suffix in (".fai", ".gzi") if gz else (".fai",):
        os.unlink(f"{fa}{suffix}")  # what the message says: a rebuilt index reads the new content
    with open_genome(fa) as g:
        assert g.fetch("a", 0, g.sizes["a"]) == new.split("\n>")[0].split("\n", 1)[1].replace("\n", "")


def test_index_check_accepts_what_samtools_writes(tmp_path):
    fa = tmp_path / "ok.fa"
    fa.write_bytes(b"\n>a desc\r\nACGTA\r\nAC\r\n>e\r\n>b x y\r\nGG\r\n\r\n\r\n")  # CRLF, empty sequence, blank lines
    with pytest.warns(UserWarning, match=r"sequence 'e' \(line 5\) has no bases"), open_genome(fa) as g:
        assert g.sizes == {"a": 7, "b": 2} and g.fetch("a", 0, 7) == "ACGTAAC"  # e: no bases, no index row
        assert g.empty == {"e": 5}
    many = tmp_path / "many.fa"
    many.write_text("".join(f">s{i}\n{'ACGT' * (1 + i % 50)}\n" for i in range(3000)))
    pysam.tabix_compress(str(many), str(many) + ".gz")
    for path in (many, Path(str(many) + ".gz")):  # BGZF: many sequences per block, and over block edges
        with open_genome(path) as g:
            assert len(g.sizes) == 3000 and g.fetch("s2999", 0, 4) == "ACGT"


def test_hand_written_index_errors(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(OLD)
    (tmp_path / "g.fa.fai").write_text("a\t14\t3\t10\t11\na\t4\t22\t4\t5\n")
    with pytest.raises(FastaError, match="listed twice"):
        open_genome(fa)
    (tmp_path / "g.fa.fai").write_text("a\tx\n")
    with pytest.raises(FastaError, match="stale or damaged"):  # htslib refuses it first
        open_genome(fa)


def test_letters_outside_iupac_are_refused_with_the_position(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", {"c1": "ACGTURYKMSWBDHVNacgturykmswbdhvn", "c2": "ACGT.ACGT"})
    with open_genome(fa) as g:
        assert g.fetch("c1", 0, 32).upper() == "ACGTURYKMSWBDHVN" * 2
        assert g.fetch("c2", 0, 4) == "ACGT"  # only what is read is checked
        with pytest.raises(FastaError, match=r"c2:5 \(1-based\) holds '\.'"):
            g.fetch("c2", 2, 9)


@pytest.mark.parametrize("text, line", [
    (b">a\nACGTACGTAC\nACG\0TACGTA\nACGT\n", 3),  # inside a sequence: htslib's index is then off
    (b">a\nACGTACGTAC\nACGTACGTAC\nACG\0\n", 4),  # at the end
    (b">a\nACGTACGTAC\n>b\nAC\0GT\n", None),
    (b">a\nACGTACGTAC\0\0\n", 2),  # at a line's end: htslib takes it for part of the line break  # the index fits; reading b stops at the NUL: b:3 named
])
@pytest.mark.parametrize("bgzip", [False, True])
def test_nul_bytes_are_named_not_called_a_stale_index(tmp_path, text, line, bgzip):
    fa = tmp_path / "g.fa"
    fa.write_bytes(text)
    if bgzip:
        pysam.tabix_compress(str(fa), str(fa) + ".gz")
        fa = Path(str(fa) + ".gz")
    pattern = rf"line {line} holds a NUL byte" if line else r"b:1-4 stopped after 2 of 4 bases, at b:3: .*a NUL"
    with pytest.raises(FastaError, match=pattern):
        with open_genome(fa) as g:
            for name, size in g.sizes.items():
                g.fetch(name, 0, size)


# -- a bgzipped FASTA whatever its name; why htslib cannot index a file ---------------------------

@pytest.mark.parametrize("name", ["bgnoext.fa", "genome.fasta", "g"])
def test_bgzip_without_a_gz_name_gets_its_gzi(tmp_path, name):
    plain = write_fasta(tmp_path / "plain.fa", SEQS)
    fa = tmp_path / name
    pysam.tabix_compress(str(plain), str(fa))  # compression is in the bytes, not the name
    for _ in range(2):  # built, then read back
        with open_genome(fa) as g:
            assert g.index_files == [Path(f"{fa}.fai"), Path(f"{fa}.gzi")]  # named as samtools names them
            assert g.fetch("chrB", 0, 54) == SEQS["chrB"] and list(g.sizes) == list(SEQS)
    assert Path(f"{fa}.gzi").is_file()


def _bgzip(path):
    pysam.tabix_compress(str(path), str(path) + ".gz")
    return Path(str(path) + ".gz")


def _fasta_file(tmp_path, text: bytes, *, gz: bool) -> Path:
    """``text`` as ``g.fa``, or bgzipped beside it as ``g.fa.gz``."""
    fa = tmp_path / "g.fa"
    fa.write_bytes(text)
    return _bgzip(fa) if gz else fa


@pytest.mark.parametrize("text, words", [
    (b">a\nACGTACGTAC\nACG\nACGTACGTAC\n", ["line 3 of record 'a' holds 3 bases, fewer than its first line (line 2: 10)",
                                           "seqkit seq -w 60"]),
    (b">a\nACG\nACGTACGT\nA\n", ["line 3 of record 'a' holds 8 bases, more than its first line (line 2: 3)"]),
    (b">a\nACGTACGTAC\n\nACGTACGTAC\nAC\n", ["line 3 is blank inside record 'a' (header on line 1)", "seqkit"]),
    (b"", ["the file is empty"]),
    (b"\n\n", ["only blank lines"]),
    (b"ACGTACGT\nACGT\n", ["line 1 'ACGTACGT' comes before any '>' header line"]),
    (bytes(range(1, 256)) * 3, ["line 1 holds control characters", "not a text FASTA"]),
    (b"\xef\xbb\xbf>a\nACGT\n", ["line 1 starts with a UTF-8 byte-order mark"]),
    (b";comment\n>a\nACGT\n", ["line 1 is a ';' comment line", "grep -v '^;'"]),
    (b">a\nACGT\n;later\n>b\nGG\n", ["line 3 is a ';' comment line"]),
    (b">a\rACGTACGT\rACGT\r", ["line 1: its line breaks are carriage returns alone", "tr '\\r' '\\n'"]),
    (b">a\r\nACGTACGT\r\nACGTACGT\nACG\n", ["record 'a' mixes Windows (CRLF) and Unix (LF) line breaks (lines 2 and 3)"]),
    (b">a\nACGTACGT\nACGTACGT\r\nACG\n", ["record 'a' mixes Windows (CRLF) and Unix (LF) line breaks (lines 2 and 3)"]),
    (b">a\nACGT\n>e\n", ["line 3: the last record 'e' has no sequence lines"]),
    (b">a\nACGT\n>e", ["line 3: the last record 'e' has no sequence (the file ends in its header line)"]),
], ids=["short-line", "long-line", "blank-line", "empty", "blank-only", "no-header", "binary", "bom", "comment",
        "comment-later", "cr-only", "crlf-then-lf", "lf-then-crlf", "last-empty", "last-header-cut"])
@pytest.mark.parametrize("gz", [False, True])
def test_unindexable_fasta_says_which_line_and_why(tmp_path, text, words, gz):
    fa = _fasta_file(tmp_path, text, gz=gz)
    with pytest.raises(FastaError) as e:
        open_genome(fa)
    msg = str(e.value)
    assert msg.startswith(f"{fa}: ") and "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)
    assert "stale" not in msg and ".fai" not in msg  # no index existed: none is blamed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"g.fa", fa.name})  # nothing left behind (.gzi)


def test_truncated_bgzip_is_named(tmp_path):
    rng = np.random.default_rng(2)
    seq = "".join(rng.choice(list("ACGT"), size=300_000))
    fa = _bgzip(write_fasta(tmp_path / "g.fa", {"a": seq}, width=60))
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(fa.read_bytes()[:50_000])
    with pytest.raises(FastaError, match=r"cut\.fa\.gz: the compressed file ends early .*bgzip") as e:
        open_genome(cut)
    assert "stale" not in str(e.value)
    assert not Path(f"{cut}.gzi").exists() and not Path(f"{cut}.fai").exists()  # htslib's half-built .gzi removed


def test_broken_fasta_with_an_old_index_names_both(tmp_path):
    fa = _stale(tmp_path, "g.fa", OLD, ">a\nACGTACGTAC\nACG\nACGTACGTAC\n>b\nGGGG\n")
    with pytest.raises(FastaError) as e:
        open_genome(fa)
    msg = str(e.value)
    assert "line 3 of record 'a' holds 3 bases" in msg and f"its index {fa}.fai is older than this content" in msg


# -- files htslib reads right are accepted; empty sequences are named ------------------------------

RNG_SEQ = "".join(np.random.default_rng(3).choice(list("ACGT"), size=300))


@pytest.mark.parametrize("text, seqs", [
    (">a\n" + "".join(RNG_SEQ[i : i + 60] + " \n" for i in range(0, 300, 60)), {"a": RNG_SEQ}),
    (">a\n" + "".join(RNG_SEQ[:250][i : i + 60] + " \t\n" for i in range(0, 250, 60)) + ">b\nACGT\n",
     {"a": RNG_SEQ[:250], "b": "ACGT"}),
    (">a " + "x" * 70_000 + "\n" + RNG_SEQ + "\n>b\nACGT\n", {"a": RNG_SEQ, "b": "ACGT"}),
    (">a\n" + RNG_SEQ + "\n>b " + "y" * 200_000 + "\n" + RNG_SEQ[:7] + "\n", {"a": RNG_SEQ, "b": RNG_SEQ[:7]}),
], ids=["trailing-space", "trailing-blanks-short-last-line", "header-70k", "last-header-200k"])
@pytest.mark.parametrize("gz", [False, True])
def test_what_htslib_reads_right_is_accepted(tmp_path, text, seqs, gz):
    fa = _fasta_file(tmp_path, text.encode(), gz=gz)
    for _ in range(2):  # index built now, then an index from before
        with open_genome(fa) as g:
            assert {n: g.fetch(n, 0, size) for n, size in g.sizes.items()} == seqs


def test_uneven_blanks_are_refused_naming_the_line_not_the_index(tmp_path):
    # every line 62 bytes, but line 3 has 61 bases: htslib's index would read wrong bases there
    fa = tmp_path / "g.fa"
    fa.write_text(">a\n" + RNG_SEQ[:60] + " \n" + RNG_SEQ[60:121] + "\n" + RNG_SEQ[121:181] + " \n>b\nGG\n")
    with pysam.FastaFile(str(fa)) as f:
        assert f.fetch("a") != RNG_SEQ[:181]  # what the refusal prevents
    for _ in range(2):  # the index left by pysam, then (deleted) one built now: the same message
        with pytest.raises(FastaError) as e:
            open_genome(fa)
        msg = str(e.value)
        assert "line 3 of sequence 'a' holds 61 bases in 62 bytes, its first line 60 in 62" in msg
        assert "deleting it would not help" in msg and "seqkit seq -w 60" in msg and "stale" not in msg
        os.unlink(f"{fa}.fai")


def test_an_index_samtools_would_write_again_is_not_called_stale(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">a\nACGT\tACGT\nACGT\n")  # a tab inside the first line: htslib skips it
    pysam.FastaFile(str(fa)).close()  # the index exists before genaannot opens the file
    with pytest.raises(FastaError) as e:
        open_genome(fa)
    msg = str(e.value)
    assert "line 2 (sequence 'a')" in msg and "deleting it would not help" in msg and "stale" not in msg


def test_empty_sequences_are_named_with_their_lines(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">a\n" + RNG_SEQ[:200] + "\n>empty\n>b\n" + RNG_SEQ[:200] + "\n")
    with pytest.warns(UserWarning, match=r"g\.fa: sequence 'empty' \(line 3\) has no bases.*no output has it"):
        g = open_genome(fa)
    with g:
        assert list(g.sizes) == ["a", "b"] and g.empty == {"empty": 3}
    many = tmp_path / "many.fa"
    many.write_text(">a\nAC\n" + "".join(f">e{i}\n" for i in range(7)) + ">b\nGG\n")
    with pytest.warns(UserWarning, match=r"7 sequences 'e0' \(line 3\), .*'e4' \(line 7\) and 2 more have no bases"):
        g = open_genome(many)
    with g:
        assert list(g.empty) == [f"e{i}" for i in range(7)] and g.empty["e6"] == 9
    with open_genome(many, verify=False) as g:  # workers: the parent has checked
        assert g.empty == {}
