"""Region parsing (1-based inclusive -> 0-based half-open) and chromosome-name matching."""

from __future__ import annotations

import pytest

from genaannot.regions import (
    Interval,
    RegionError,
    is_region_string,
    match_chroms,
    parse_region,
    resolve_chrom,
)

SIZES = {"chr1": 1000, "chr2": 500, "chrM": 16569, "chrX": 300}


def test_parse_region_converts_to_zero_based():
    iv = parse_region("chr1:1-100")
    assert (iv.chrom, iv.start, iv.end) == ("chr1", 0, 100) and len(iv) == 100
    assert parse_region("chr1:1,001-2,000") == Interval("chr1", 1000, 2000)
    assert iv.ucsc() == "chr1:1-100"


def test_parse_region_with_sizes_and_aliases():
    assert parse_region("1:11-20", sizes=SIZES) == Interval("chr1", 10, 20)
    assert parse_region("chr2", sizes=SIZES) == Interval("chr2", 0, 500)
    assert parse_region("X", sizes=SIZES).chrom == "chrX"
    with pytest.raises(RegionError, match="runs past the end"):
        parse_region("chr2:400-501", sizes=SIZES)
    with pytest.raises(RegionError, match="not in the genome"):
        parse_region("chr7:1-10", sizes=SIZES)


@pytest.mark.parametrize("text", ["chr1:100-50", "chr1:0-10", "chr1:a-b", "", "chr1 x"])
def test_parse_region_errors(text):
    with pytest.raises(RegionError):
        parse_region(text)


def test_region_without_coordinates_needs_sizes():
    with pytest.raises(RegionError, match="no coordinates"):
        parse_region("chr1")


def test_interval_validation():
    with pytest.raises(RegionError):
        Interval("chr1", 10, 5)
    with pytest.raises(RegionError):
        Interval("chr1", -1, 5)


def test_resolve_chrom_mito_and_ambiguity():
    assert resolve_chrom("MT", SIZES) == "chrM"
    assert resolve_chrom("M", SIZES) == "chrM"
    with pytest.raises(RegionError, match="several"):
        resolve_chrom("1", {"chr1": 10, "Chr1": 10})


def test_match_chroms_mito_rules():
    # MT is only matched to chrM when the lengths agree (GRCh37 MT vs hg19 chrM differ)
    m = match_chroms(["1", "chr2", "MT", "chrUn"], SIZES)
    assert m.mapping == {"1": "chr1", "chr2": "chr2"}
    assert set(m.unmatched) == {"MT", "chrUn"} and m.renamed == {"1": "chr1"}
    m = match_chroms(["MT"], SIZES, lengths={"MT": 16569})
    assert m.mapping == {"MT": "chrM"}
    m = match_chroms(["MT"], SIZES, lengths={"MT": 16571})
    assert m.unmatched == ("MT",)


def test_split_regions_keeps_thousands_separators():
    from genaannot.regions import parse_regions, split_regions

    assert split_regions("Chr5:1,000-2,000,Chr1") == ["Chr5:1,000-2,000", "Chr1"]
    assert split_regions("chr1,2, chr3:5-10") == ["chr1", "2", "chr3:5-10"]
    assert split_regions("chr1:1,000,000-1,000,500,chrX:5-6") == ["chr1:1,000,000-1,000,500", "chrX:5-6"]
    sizes = {"chr1": 2_000_000, "chrX": 10}
    assert parse_regions(["1:1,000,000-1,000,500,X"], sizes=sizes) == [
        Interval("chr1", 999_999, 1_000_500), Interval("chrX", 0, 10)]


def test_interval_set_overlaps():
    from genaannot.regions import IntervalSet

    s = IntervalSet([Interval("a", 10, 20), Interval("a", 15, 30), Interval("a", 40, 41), Interval("b", 0, 5)])
    got = [x for x in range(0, 50) if s.overlaps("a", x, x + 1)]
    assert got == list(range(10, 30)) + [40]
    assert s.overlaps("a", 5, 11) and not s.overlaps("a", 5, 10) and s.overlaps("a", 29, 29)
    assert not s.overlaps("a", 30, 30) and not s.overlaps("c", 0, 100) and s.overlaps("b", 4, 9)


def test_names_with_colons_and_braces_as_samtools_reads_them():
    sizes = {"HLA-A*01:01:01:01": 3000, "chrX:1-100": 100, "chrX": 5000, "chr2": 900}
    assert parse_region("HLA-A*01:01:01:01", sizes=sizes) == Interval("HLA-A*01:01:01:01", 0, 3000)
    assert parse_region("HLA-A*01:01:01:01:1-50", sizes=sizes) == Interval("HLA-A*01:01:01:01", 0, 50)
    assert parse_region("{HLA-A*01:01:01:01}:1,001-2,000", sizes=sizes) == Interval("HLA-A*01:01:01:01", 1000, 2000)
    assert parse_region("{chrX:1-100}", sizes=sizes) == Interval("chrX:1-100", 0, 100)
    assert parse_region("{chrX:1-100}:1-50", sizes=sizes) == Interval("chrX:1-100", 0, 50)
    assert parse_region("{chrX}:1-100", sizes=sizes) == Interval("chrX", 0, 100)
    with pytest.raises(RegionError, match=r"ambiguous.*\{chrX:1-100\} for the first, \{chrX\}:1-100"):
        parse_region("chrX:1-100", sizes=sizes)
    assert parse_region("2:1-10", sizes=sizes) == Interval("chr2", 0, 10)  # aliases as before
    with pytest.raises(RegionError, match="has no END"):
        parse_region("HLA-A*01:01:01:01:7", sizes=sizes)
    with pytest.raises(RegionError, match="cannot parse region 'chr2:x-y'.*no sequence is named"):
        parse_region("chr2:x-y", sizes=sizes)
    with pytest.raises(RegionError, match="cannot parse region"):
        parse_region("{chr2}:oops", sizes=sizes)
    assert is_region_string("{HLA-A*01:01:01:01}:1-5") and is_region_string("HLA-A*01:01:01:01:1-5")
    assert not is_region_string("HLA-A*01:01:01:01") and not is_region_string("{chrX:1-100}")
