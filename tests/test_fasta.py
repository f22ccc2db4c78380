"""Indexed FASTA access: plain and bgzipped, index creation and its errors, N runs."""

from __future__ import annotations

import gzip
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
