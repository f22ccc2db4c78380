"""BED input (genaannot.io.bed): one line reader for regions and narrowPeak calls."""

from __future__ import annotations

import gzip

import pytest

from genaannot.io.bed import BedError, parse_bed_lines, parse_calls, read_bed, read_calls
from genaannot.regions import RegionError

SIZES = {"chr1": 1000, "chr2": 500}
CALLS = (
    "track name=calls\n"
    "chr1\t10\t20\tdonor\t900\t+\t0.9\t-1\t-1\t3\n"
    "# a comment\n"
    "\n"
    "chr1\t100\t120\tacceptor\t500\t-\t0.5\t-1\t-1\t0\n"
    "chr2\t5\t9\tdonor\t700\t+\t0.7\t-1\t-1\t1\n"
)


def test_line_splitting_and_positions():
    recs = list(parse_bed_lines(["browser position x\n", "a\t1\t2\r\n", "\n", "b 3  4 name\n", "#c\t1\t2\n",
                                 "track x\n", "c\t5\t6\tx y\n"], source="f.bed"))
    assert [(r.where, r.fields) for r in recs] == [
        ("f.bed:2", ("a", "1", "2")),
        ("f.bed:4", ("b", "3", "4", "name")),  # hand-written with spaces: split on whitespace
        ("f.bed:7", ("c", "5", "6", "x y")),  # tab-separated: spaces inside a field stay
    ]


def test_regions(tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("track x\n1\t0\t100\tfoo\nchr2\t5\t9\n")
    ivs = read_bed(bed, sizes=SIZES)
    assert [(i.chrom, i.start, i.end, i.name) for i in ivs] == [("chr1", 0, 100, "foo"), ("chr2", 5, 9, "")]
    gz = tmp_path / "r.bed.gz"
    gz.write_bytes(gzip.compress(bed.read_bytes()))
    assert read_bed(gz, sizes=SIZES) == ivs


@pytest.mark.parametrize(("text", "message"), [
    ("chr1\t10\t5\n", r"r.bed:1: empty or reversed interval chr1:10-5"),
    ("#x\nchr1\t0\t1\nchr1\t990\t1001\n", r"r.bed:3: chr1:990-1001 runs past the end of chr1 \(length 1,000\)"),
    ("chrZ\t0\t1\n", r"r.bed:1: chromosome 'chrZ' is not in the genome"),
    ("chr1\tx\t1\n", r"r.bed:1: start/end 'x', '1' are not integers"),
    ("chr1\n", r"r.bed:1: a BED line needs chrom, start, end"),
    ("track only\n", r"r.bed: no intervals"),
])
def test_region_errors_name_the_line(tmp_path, text, message):
    bed = tmp_path / "r.bed"
    bed.write_text(text)
    with pytest.raises(RegionError, match=message):
        read_bed(bed, sizes=SIZES)


def test_missing_regions_file(tmp_path):
    with pytest.raises(RegionError, match="regions BED file not found"):
        read_bed(tmp_path / "nope.bed", sizes=SIZES)


def test_calls(tmp_path):
    p = tmp_path / "c.bed"
    p.write_text(CALLS)
    calls = read_calls(p)
    assert [(c.chrom, c.start, c.end, c.name, c.strand, c.value) for c in calls] == [
        ("chr1", 10, 20, "donor", "+", 0.9),
        ("chr1", 100, 120, "acceptor", "-", 0.5),
        ("chr2", 5, 9, "donor", "+", 0.7),
    ]
    assert calls[0].fields == ("chr1", "10", "20", "donor", "900", "+", "0.9", "-1", "-1", "3")
    assert parse_calls(CALLS.splitlines()) == calls
    # overlap with [start, end): touching is not overlapping
    assert [c.start for c in read_calls(p, region=("chr1", 20, 101))] == [100]
    assert read_calls(p, region=("chr1", 20, 100)) == []
    assert [c.chrom for c in read_calls(p, region=("chr2", 0, 500))] == ["chr2"]


def test_call_values_from_shorter_lines():
    calls = parse_calls(["c\t0\t1\n", "c\t0\t1\tn\t.\n", "c\t0\t1\tn\t250\t-\n", "c\t0\t1\tn\t250\t-\t0.25\n"])
    assert [(c.name, c.strand, c.value) for c in calls] == [
        ("", ".", 0.0), ("n", ".", 0.0), ("n", "-", 250.0), ("n", "-", 0.25)]


@pytest.mark.parametrize(("line", "message"), [
    ("chr1\t1\n", "c.bed:2: a BED line needs chrom, start, end"),
    ("chr1\t1\t2.5\n", r"c.bed:2: start/end '1', '2.5' are not integers"),
    ("chr1\t1\t2\tx\t1\t+\thigh\n", "c.bed:2: value 'high' is not a number"),
])
def test_call_errors_name_the_line(tmp_path, line, message):
    p = tmp_path / "c.bed"
    p.write_text("track x\n" + line)
    with pytest.raises(BedError, match=message):
        read_calls(p)
