"""`scan --shard` / `score --shard` partials + `genaannot merge` == a single run."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pysam
import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir, random_dna
from toy import make_toy_model

from genaannot.cli import main
from genaannot.io.vcf import read_shard_header
from genaannot.pipeline.merge import MergeError, merge
from genaannot.pipeline.scan import scan_genome
from genaannot.pipeline.score import score_variants

VOLATILE = ("run_seconds", "model_seconds")


def _fa(path, seqs):
    path.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    return path


def _manifest(path):
    m = json.loads(path.read_text())
    return {k: v for k, v in m.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def gena(tmp_path_factory):
    return make_gena_dir(tmp_path_factory.mktemp("m") / "splice", head="token", num_labels=3)


def test_scan_shards_then_merge_equals_single_run(tmp_path, gena):
    fa = _fa(tmp_path / "g.fa", {"a": random_dna(5000, seed=4), "b": random_dna(1200, seed=5) + "N" * 200
                                 + random_dna(900, seed=6), "c": "ACGTTGCA"})
    kw = dict(task="splice", window_tokens=40, unit_bp=1000, quiet=True, bedgraph=True, threshold=0.4)
    from genaannot.models import load_model

    model = load_model(gena, device="cpu")
    (tmp_path / "ref").mkdir()
    ref = scan_genome(fa, model=model, output=tmp_path / "ref" / "s.bw", **kw)
    partials = []
    for i in (1, 2, 3):
        (tmp_path / f"sh{i}").mkdir()
        r = scan_genome(fa, model=model, output=tmp_path / f"sh{i}" / "s.bw", shard=f"{i}/3", **kw)
        assert not r.complete
        partials.append(tmp_path / f"sh{i}" / "s.parts")
    (tmp_path / "m").mkdir()
    with pytest.raises(MergeError, match="work units are in none"):
        merge(partials[:2], output=tmp_path / "m" / "s.bw")
    res = merge(partials, output=tmp_path / "m" / "s.bw")
    assert [p.name for p in res.tracks] == [p.name for p in ref.tracks] and len(res.tracks) == 4
    for a, b in zip(ref.tracks + ref.bedgraphs + [ref.calls], res.tracks + res.bedgraphs + [res.calls]):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert _manifest(ref.manifest) == _manifest(res.manifest)
    assert all(p.is_dir() for p in partials)  # partials are left in place

    # CLI, with the shards' -o names instead of the parts directories
    (tmp_path / "c").mkdir()
    r = CliRunner().invoke(main, ["merge", *(str(p.with_suffix(".bw")) for p in partials), "-o",
                                  str(tmp_path / "c" / "s.bw")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c" / "s.calls.bed").read_bytes() == ref.calls.read_bytes()
    # parts of a scan with other settings are refused
    (tmp_path / "x").mkdir()
    scan_genome(fa, model=model, output=tmp_path / "x" / "s.bw", shard="3/3", **{**kw, "window_tokens": 32})
    with pytest.raises(MergeError, match="different scan"):
        merge([*partials[:2], tmp_path / "x" / "s.parts"], output=tmp_path / "m" / "t.bw")


def _vcf(path, rows, contigs=(("chr1", 3000),)):
    head = "##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={c},length={n}>\n" for c, n in contigs)
    head += "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    path.write_text(head + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


def _records(path):
    with pysam.VariantFile(str(path)) as vf:
        return [str(r) for r in vf]


@pytest.mark.filterwarnings("ignore:.*not indexed")
@pytest.mark.parametrize("layout", ["sorted", "indexed", "unsorted", "header-order"])
def test_score_shards_then_merge(tmp_path, layout):
    seq = random_dna(3000, seed=9)
    seq2 = random_dna(1500, seed=10)
    fa = _fa(tmp_path / "g.fa", {"chr1": seq, "chr2": seq2})
    rng = np.random.default_rng(2)
    pos = sorted(rng.choice(np.arange(60, 2900), size=23, replace=False).tolist())
    rows = [("chr1", p, f"v{k}", seq[p - 1], "ACGT".replace(seq[p - 1], "")[k % 3], ".", ".", ".")
            for k, p in enumerate(pos)]
    rows = sorted([*rows, ("chr1", 100, "sym", seq[99], "<DEL>", ".", ".", ".")], key=lambda r: r[1])
    rows += [("chr2", p, f"w{p}", seq2[p - 1], "ACGT".replace(seq2[p - 1], "")[0], ".", ".", ".")
             for p in (70, 700, 701, 1400)]
    contigs = (("chr1", 3000), ("chr2", 1500))
    if layout == "unsorted":
        rows = rows[12:] + rows[:12]
    if layout == "header-order":  # sorted records, but chr2 first in the header: still one tabix-able order
        contigs = contigs[::-1]
    vcf = _vcf(tmp_path / "in.vcf", rows, contigs=contigs)
    if layout == "indexed":
        vcf = Path(pysam.tabix_index(str(vcf), preset="vcf", force=True))
    model = make_toy_model("token", max_tokens=64)
    kw = dict(genome=fa, model=model, task="splice", distance=10, quiet=True, shard_bin_bp=500)
    single = tmp_path / "single.vcf"
    score_variants(vcf, output=single, tsv=tmp_path / "single.tsv", **kw)
    parts = []
    for i in (1, 2, 3):
        out = tmp_path / f"shard{i}.vcf.gz"
        s = score_variants(vcf, output=out, tsv=tmp_path / f"shard{i}.tsv", shard=f"{i}/3", **kw)
        assert any("not sorted by position" in n for n in s.notes) == (layout == "unsorted")
        parts.append(out)
    sizes = [len(_records(p)) for p in parts]
    assert sum(sizes) == len(rows) and min(sizes) >= 5, sizes  # balanced to within a 500-bp bin
    head = read_shard_header(parts[1])
    if layout == "unsorted":
        assert head["mode"] == "records" and (int(head["first"]), int(head["end"])) == (9, 18)
    else:  # shard 2 is one stretch of chr1 between two 500-bp bin edges
        assert head["mode"] == "regions" and re.fullmatch(r"chr1:\d+01-chr1:\d+00", head["span"]), head
        recs = [r.split("\t") for r in _records(parts[1])]
        lo, hi = (int(x.split(":")[1]) for x in head["span"].split("-"))
        assert all(lo <= int(r[1]) <= hi for r in recs)
    with pytest.raises(MergeError, match="missing"):
        merge(parts[:2], output=tmp_path / "m.vcf.gz")
    res = merge(parts, output=tmp_path / "m.vcf.gz", tsv=tmp_path / "m.tsv")
    assert res.records == len(rows) and res.sorted_in_memory == (layout == "unsorted")
    got = _records(tmp_path / "m.vcf.gz")
    want = _records(single)
    assert sorted(got) == sorted(want) and len(set(got)) == len(got)  # every record exactly once
    if layout != "unsorted":  # already sorted: the merged file is the single run's, shard line dropped
        with gzip.open(tmp_path / "m.vcf.gz", "rt") as fh:
            assert fh.read() == single.read_text()
    else:
        keys = [(r.split("\t")[0], int(r.split("\t")[1])) for r in got]
        assert keys == sorted(keys)
    assert (tmp_path / "m.vcf.gz.tbi").exists()
    with pysam.TabixFile(str(tmp_path / "m.vcf.gz")) as tb:
        assert len(list(tb.fetch("chr1", 0, 3000))) + len(list(tb.fetch("chr2", 0, 1500))) == len(rows)
    assert (tmp_path / "m.tsv").read_text() == (tmp_path / "single.tsv").read_text()
    r = CliRunner().invoke(main, ["merge", *map(str, parts), "-o", str(tmp_path / "c.vcf.gz")])
    assert r.exit_code == 0, r.output
    assert "merged 3 shards" in r.output
