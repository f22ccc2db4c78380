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
    with open_genome(fa) as g:
        assert g.sizes == {"a": 7, "b": 2} and g.fetch("a", 0, 7) == "ACGTAAC"  # e: no bases, no index row
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
