"""VCF reading (repairs, stdin, BCF) and writing (atomic, bgzip + tabix, order, fields kept)."""

from __future__ import annotations

import errno
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pysam
import pytest

from genaannot.io.table import TableWriter
from genaannot.io.vcf import InfoField, VcfError, open_variants, open_writer

VCF = """##fileformat=VCFv4.2
##contig=<ID=1,length=1000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2
1\t10\trs1\tA\tC,G\t50\tPASS\tDP=3\tGT\t0/1\t1/2
1\t20\t.\tAT\tA\t.\t.\t.\tGT\t0/0\t./.
1\t30\t.\tC\t.\t.\t.\tDP=1\tGT\t0/0\t0/0
"""


def roundtrip(src, out):
    r = open_variants(src)
    r.add_info(InfoField("GENA_T", "test"))
    w = open_writer(out, r)
    for rec in r:
        w.write(rec, {"GENA_T": [f"{a}|x" for a in rec.alts]} if rec.alts else {})
    w.close()
    r.close()
    return w


def test_read_fields_and_coordinates(tmp_path):
    p = tmp_path / "a.vcf"
    p.write_text(VCF)
    with open_variants(p) as r:
        recs = list(r)
        assert r.n_records == 3 and r.contig_lengths == {"1": 1000}
    assert [(x.pos, x.start, x.end) for x in recs] == [(10, 9, 10), (20, 19, 21), (30, 29, 30)]
    assert recs[0].alts == ("C", "G") and recs[2].alts == () and recs[0].id == "rs1"


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz", ".bcf"])
def test_write_keeps_records_order_and_samples(tmp_path, suffix):
    p = tmp_path / "a.vcf"
    p.write_text(VCF)
    out = tmp_path / f"o{suffix}"
    w = roundtrip(p, out)
    assert w.indexed == (suffix == ".vcf.gz")
    assert (tmp_path / "o.vcf.gz.tbi").exists() == (suffix == ".vcf.gz")
    recs = list(pysam.VariantFile(str(out)))
    assert [r.pos for r in recs] == [10, 20, 30]
    assert recs[0].info["GENA_T"] == ("C|x", "G|x") and recs[0].info["DP"] == 3
    assert "GENA_T" not in recs[2].info
    assert recs[0].samples["S2"]["GT"] == (1, 2) and recs[0].qual == 50 and recs[0].id == "rs1"
    hdr = pysam.VariantFile(str(out)).header
    assert hdr.info["GENA_T"].number == "A" and hdr.info["GENA_T"].type == "String"
    assert not list(tmp_path.glob(".o*"))
    if suffix == ".vcf.gz":  # region query through the index
        assert [r.pos for r in pysam.VariantFile(str(out)).fetch("1", 15, 25)] == [20]


def test_read_bcf_and_gz_input(tmp_path):
    p = tmp_path / "a.vcf"
    p.write_text(VCF)
    roundtrip(p, tmp_path / "b.bcf")
    roundtrip(p, tmp_path / "b.vcf.gz")
    for src in ("b.bcf", "b.vcf.gz"):
        with open_variants(tmp_path / src) as r:
            assert [x.pos for x in r] == [10, 20, 30]


def test_stdin_is_spooled(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(VCF.encode())))
    with open_variants("-") as r:
        assert r.n_records == 3 and [x.pos for x in r] == [10, 20, 30]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(VcfError, match="empty"):
        open_variants("-")


def test_repairs_double_hash_chrom_line(tmp_path):
    p = tmp_path / "bad.vcf"
    p.write_text(VCF.replace("#CHROM", "##CHROM").replace('##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">\n', ""))
    with open_variants(p) as r:
        assert any("##CHROM" in n for n in r.notes)
        assert any("INFO/DP" in n for n in r.notes)  # undeclared field used by records: declared
        assert len(list(r)) == 3


def test_unreadable_vcf_is_one_clear_error(tmp_path):
    p = tmp_path / "junk.vcf"
    p.write_text("hello\nworld\n")
    with pytest.raises(VcfError, match="junk.vcf: not a readable VCF"):
        open_variants(p)
    with pytest.raises(VcfError, match="not found"):
        open_variants(tmp_path / "missing.vcf")


def test_existing_conflicting_info_is_reported(tmp_path):
    p = tmp_path / "a.vcf"
    p.write_text(VCF)
    with open_variants(p) as r, pytest.raises(VcfError, match="already declared"):
        r.add_info(InfoField("DP", "x"))


def test_abort_leaves_nothing(tmp_path):
    p = tmp_path / "a.vcf"
    p.write_text(VCF)
    with open_variants(p) as r:
        w = open_writer(tmp_path / "o.vcf.gz", r)
        w.abort()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.vcf"]


@pytest.mark.parametrize("via", ["binary", "pysam"])
def test_bcftools_reads_output(tmp_path, via):
    """bcftools reads the output: the binary when installed, and always the bcftools pysam
    bundles (pysam.bcftools, a submodule that must be imported; pysam is a dependency)."""
    p = tmp_path / "a.vcf"
    p.write_text(VCF)
    roundtrip(p, tmp_path / "o.vcf.gz")
    if via == "binary":
        exe = shutil.which("bcftools")
        if exe is None:
            pytest.skip("the bcftools binary is not on PATH: apt-get install bcftools (pysam's copy is tested too)")
        text = subprocess.run([exe, "view", "-H", str(tmp_path / "o.vcf.gz")], capture_output=True,
                              text=True, check=True).stdout
    else:
        import pysam.bcftools

        text = pysam.bcftools.view("-H", str(tmp_path / "o.vcf.gz"))
    assert len(text.splitlines()) == 3 and "GENA_T=C|x,G|x" in text


@pytest.mark.parametrize("suffix", [".vcf", ".bcf"])
def test_missing_values_of_string_fields_are_dots(tmp_path, suffix):
    """An ALT without a value has '.' in every Number=A field, String ones too (pysam writes
    None in a String vector as an empty value: 'GENA_S=+,')."""
    p = tmp_path / "a.vcf"
    p.write_text(VCF)
    out = tmp_path / f"o{suffix}"
    with open_variants(p) as r:
        r.add_info(InfoField("GENA_S", "strand"))
        r.add_info(InfoField("GENA_F", "score", type="Float"))
        w = open_writer(out, r)
        for rec in r:
            w.write(rec, {"GENA_S": ["+", None], "GENA_F": [0.5, None]} if len(rec.alts) == 2 else {})
        w.close()
    lines = [str(x) for x in pysam.VariantFile(str(out))]  # BCF shown as VCF text, as bcftools view does
    assert "GENA_S=+,.;GENA_F=0.5,." in lines[0]
    if suffix == ".vcf":
        assert "GENA_S=+,.;" in out.read_text()


def test_a_full_disk_is_reported_as_such_naming_the_output(tmp_path):
    p = tmp_path / "a.vcf"
    p.write_text(VCF)

    class Full:  # what pysam raises when the disk fills up under a write
        def write(self, rec):
            raise OSError(errno.ENOSPC, "Can't write record: No space left on device")

        def close(self):
            pass

    with open_variants(p) as r:
        rec = next(iter(r))
        w = open_writer(tmp_path / "o.vcf", r)
        real, w._vf = w._vf, Full()
        with pytest.raises(OSError, match=r"o\.vcf: cannot write record 1:10 \(.*No space left on device\); "
                                          "disk full or quota exceeded") as e:
            w.write(rec, {})
        assert "INFO" not in str(e.value)  # the record is fine: no hint about its declarations
        w._vf = real
        # a value htslib refuses is the record's problem: that one gets the hint
        with pytest.raises(VcfError, match="check its INFO fields against their header declarations"):
            w.write(rec, {"DP": ["many"]})
        w.abort()
        if Path("/dev/full").exists():  # a device written into at the end, and full then
            w = open_writer("/dev/full", r)
            w.write(rec, {})
            with pytest.raises(OSError, match=r"^/dev/full: cannot write \(No space left on device\); disk full"):
                w.close()
            w.abort()


@pytest.mark.parametrize("suffix", [".vcf", ".bcf"])
def test_undeclared_fields_come_back_byte_for_byte(tmp_path, suffix):
    """Undeclared INFO/FORMAT ids are declared as htslib would (String, Number=.; a key without
    a value: Flag; END: Integer), not with a type guessed from the values, which rewrote them."""
    p = tmp_path / "u.vcf"
    info = "SCORE=123456789;POSX=0012345;X=1.0;Z=1e5;FL;L=a,b,."
    p.write_text("##fileformat=VCFv4.2\n##contig=<ID=1>\n"
                 '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
                 f"1\t10\t.\tA\tC\t.\t.\t{info}\tGT:DP\t0/1:007\n"
                 "1\t20\t.\tA\t<DEL>\t.\t.\tEND=25;X=2\tGT:DP\t0/1:1.50\n")
    out = tmp_path / f"o{suffix}"
    with open_variants(p) as r:
        notes = list(r.notes)
        w = open_writer(out, r)
        for rec in r:
            w.write(rec, {})
        w.close()
    assert any("INFO/SCORE is used but not declared in the header; declared it as Number=.,Type=String" in n
               for n in notes)
    vf = pysam.VariantFile(str(out))
    types = {k: (str(v.number), v.type) for k, v in vf.header.info.items()}
    assert types == {"SCORE": (".", "String"), "POSX": (".", "String"), "X": (".", "String"),
                     "Z": (".", "String"), "FL": ("0", "Flag"), "L": (".", "String"), "END": ("1", "Integer")}
    assert (str(vf.header.formats["DP"].number), vf.header.formats["DP"].type) == (".", "String")
    lines = [str(x).rstrip("\n").split("\t") for x in vf]
    assert [x[7] for x in lines] == [info, "END=25;X=2"]
    assert [x[9] for x in lines] == ["0/1:007", "0/1:1.50"]
    p.write_text(p.read_text().replace("END=25", "END=25.5"))
    with pytest.raises(VcfError, match="INFO/END has values that are not whole numbers .'25.5'."):
        open_variants(p)


@pytest.mark.parametrize("tail", ["\n", "\n\n", " \n", "\r\n"])
def test_blank_lines_are_not_records(tmp_path, tail):
    """A blank line, at the end (an editor's extra newline) or between records, is skipped
    with a note, not a '1 tab-separated column(s)' error; line numbers in errors stay the file's."""
    p = tmp_path / "a.vcf"
    p.write_text(VCF.replace("\n1\t20\t", "\n" + tail + "1\t20\t") + tail)
    out = tmp_path / "o.vcf"
    with open_variants(p) as r:
        assert r.n_records == 3 and [x.pos for x in r] == [10, 20, 30]
        assert any("blank line(s) skipped" in n for n in r.notes), r.notes
        roundtrip(p, out)
    assert [ln.split("\t")[1] for ln in out.read_text().splitlines() if not ln.startswith("#")] == ["10", "20", "30"]
    p.write_text(VCF.replace("1\t20\t", "\n1\t2x0\t"))  # the bad POS is on line 8, after a blank line
    with pytest.raises(VcfError, match=r"record 2 \(line 8\): POS '2x0' is not a whole number"):
        open_variants(p)


def test_repeated_sample_names_are_named(tmp_path):
    p = tmp_path / "a.vcf"
    p.write_text(VCF.replace("FORMAT\tS1\tS2", "FORMAT\tS1\tS2\tS1").replace("\t0/1\t1/2\n", "\t0/1\t1/2\t0/0\n")
                 .replace("\t0/0\t./.\n", "\t0/0\t./.\t0/0\n").replace("\t0/0\t0/0\n", "\t0/0\t0/0\t0/0\n"))
    with pytest.raises(VcfError, match="sample name 'S1' appears more than once in the #CHROM line"):
        open_variants(p)


def test_table_writer_atomic(tmp_path):
    t = TableWriter(tmp_path / "t.tsv", ["a", "b", "c"])
    t.write_row(["x", 0.123456789, None])
    t.write_row(["y", float("nan"), 3])
    assert not (tmp_path / "t.tsv").exists()
    t.close()
    assert (tmp_path / "t.tsv").read_text() == "a\tb\tc\nx\t0.123457\tNA\ny\tNA\t3\n"


def _layout_vcf(path, rows):
    head = "##fileformat=VCFv4.2\n##contig=<ID=c1,length=5000>\n##contig=<ID=c2,length=5000>\n"
    head += "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    path.write_text(head + "".join(f"{c}\t{p}\t.\tA\tC\t.\t.\t.\n" for c, p in rows))
    return path


def test_layout_counts_bins_and_sortedness(tmp_path):
    rows = [("c2", 5), ("c2", 150), ("c2", 151), ("c1", 99), ("c1", 100), ("c1", 101), ("c1", 4000)]
    with open_variants(_layout_vcf(tmp_path / "a.vcf", rows), bin_bp=100) as r:
        lay = r.layout
        assert lay.contigs == ["c2", "c1"] and lay.sorted and not r.indexed
        assert lay.counts == {"c2": {0: 1, 1: 2}, "c1": {0: 2, 1: 1, 39: 1}}  # bin of POS p is (p-1)//100
        got = [(v.chrom, v.pos) for v in r.records_in([("c1", 100, 200), ("c2", 0, 100)])]
        assert got == [("c2", 5), ("c1", 101)]  # file order, start in [s, e)
    for bad in ([("c1", 5), ("c2", 1), ("c1", 6)], [("c1", 5), ("c1", 4)]):
        with open_variants(_layout_vcf(tmp_path / "b.vcf", bad)) as r:
            assert not r.layout.sorted


@pytest.mark.filterwarnings("ignore:.*not indexed")
def test_records_in_reads_only_the_regions_of_an_indexed_file(tmp_path, monkeypatch):
    rows = [("c1", p) for p in range(1, 5000, 37)] + [("c2", p) for p in range(3, 5000, 101)]
    src = _layout_vcf(tmp_path / "a.vcf", rows)
    gz = pysam.tabix_index(str(src), preset="vcf", keep_original=True)
    regions = [("c1", 1000, 2000), ("c2", 0, 300)]
    with open_variants(src, bin_bp=100) as plain, open_variants(gz, bin_bp=100) as idx:
        assert idx.indexed and not plain.indexed
        want = [(v.chrom, v.pos) for v in plain.records_in(regions)]
        read = []
        wrap = idx._wrap

        def counting(it):
            for v in wrap(it):
                read.append(v.pos)
                yield v

        monkeypatch.setattr(idx, "_wrap", counting)
        got = [(v.chrom, v.pos) for v in idx.records_in(regions)]
    assert got == want and len(want) == 27 + 3
    assert len(read) <= len(want) + 2  # only the two regions were read (plus records overlapping an edge)
