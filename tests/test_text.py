"""Compressed text inputs (genaannot.io.text): sniffed by content, never by name."""

from __future__ import annotations

import gzip

import pysam
import pytest

from genaannot.io.text import is_bgzf, is_gzip, open_text

TEXT = "chr1\t0\t10\nchr1\t20\t30\n"


@pytest.fixture
def files(tmp_path):
    plain = tmp_path / "plain.bed.gz"  # a misleading name: plain text
    plain.write_text(TEXT)
    gz = tmp_path / "gz.bed"  # gzip without the suffix
    gz.write_bytes(gzip.compress(TEXT.encode()))
    src = tmp_path / "src.bed"
    src.write_text(TEXT)
    bgz = tmp_path / "b.bed.gz"
    pysam.tabix_compress(str(src), str(bgz))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    return {"plain": plain, "gz": gz, "bgz": bgz, "empty": empty}


def test_sniffing(files):
    assert [is_gzip(files[k]) for k in ("plain", "gz", "bgz", "empty")] == [False, True, True, False]
    assert [is_bgzf(files[k]) for k in ("plain", "gz", "bgz", "empty")] == [False, False, True, False]


def test_open_text_reads_all_kinds(files):
    for k in ("plain", "gz", "bgz"):
        with open_text(files[k]) as fh:
            assert fh.read() == TEXT, k
    with open_text(files["empty"]) as fh:
        assert fh.read() == ""


def test_open_text_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(gzip.compress(b"ok \xff\n"))
    with open_text(bad, errors="replace") as fh:
        assert fh.read() == "ok \ufffd\n"
    with pytest.raises(UnicodeDecodeError), open_text(bad) as fh:
        fh.read()
    with pytest.raises(FileNotFoundError):
        open_text(tmp_path / "missing")
