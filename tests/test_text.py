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


def test_open_text_drops_a_byte_order_mark(tmp_path):
    """A UTF-8 BOM at the start (Windows editors) is no text: 'chr1', not '\\ufeffchr1'; one
    elsewhere is kept, and sniffing looks at the raw bytes as before."""
    data = b"\xef\xbb\xbf" + TEXT.encode() + "x\ufeffy\n".encode()
    plain, gz = tmp_path / "bom.bed", tmp_path / "bom.bed.gz"
    plain.write_bytes(data)
    gz.write_bytes(gzip.compress(data))
    for p in (plain, gz):
        with open_text(p) as fh:
            assert fh.read() == TEXT + "x\ufeffy\n", p
    assert [is_gzip(plain), is_gzip(gz), is_bgzf(gz)] == [False, True, False]
    with open_text(plain, encoding="latin-1") as fh:  # another encoding is read as asked
        assert fh.read(3) == "\xef\xbb\xbf"
