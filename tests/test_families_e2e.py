"""End to end: ``genaannot scan`` and ``genaannot score`` with tiny HyenaDNA and modernGENA
token models (per-base and BPE resolution), checking that the outputs are valid bigWig / VCF."""

from __future__ import annotations

import json

import numpy as np
import pyBigWig
import pysam
import pytest
from click.testing import CliRunner
from tiny_families import make_hyena_dir, make_modernbert_dir, random_dna

from genaannot.cli import main

LABELS = ["none", "acceptor", "donor"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("families")
    return {
        "hyena": make_hyena_dir(d / "hyena", head="token", max_seq_len=514, labels=LABELS, seed=21),
        "modernbert": make_modernbert_dir(
            d / "mgena", head="token", labels=LABELS, num_layers=2, local_attention=16, seed=22
        ),
    }


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    d = tmp_path_factory.mktemp("genome")
    seqs = {
        "chr1": random_dna(1200, seed=1) + "N" * 600 + random_dna(300, seed=2).lower() + random_dna(500, seed=3),
        "chr2": random_dna(900, seed=4),
    }
    fa = d / "g.fa"
    with open(fa, "w") as fh:
        for name, s in seqs.items():
            fh.write(f">{name}\n")
            fh.writelines(s[i : i + 60] + "\n" for i in range(0, len(s), 60))
    vcf = d / "in.vcf"
    s1 = seqs["chr1"]
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}
    vcf.write_text(
        "##fileformat=VCFv4.2\n"
        + "".join(f"##contig=<ID={k},length={len(v)}>\n" for k, v in seqs.items())
        + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        + f"chr1\t300\tsnv1\t{s1[299]}\t{alt[s1[299]]}\t.\t.\t.\n"
        + f"chr1\t700\tdel1\t{s1[699:703]}\t{s1[699]}\t.\t.\t.\n"
        + f"chr2\t450\tins1\t{seqs['chr2'][449]}\t{seqs['chr2'][449]}TTA\t.\t.\t.\n"
    )
    return fa, vcf, seqs


def _invoke(args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("family", ["hyena", "modernbert"])
def test_scan_writes_valid_bigwigs(tmp_path, models, genome, family):
    fa, _, seqs = genome
    out = tmp_path / "out" / "splice.bw"
    out.parent.mkdir()
    _invoke(["scan", str(fa), "--task", "splice", "--model", str(models[family]), "-o", str(out),
             "--window-tokens", "200", "--batch-size", "4", "--device", "cpu", "--quiet"])  # fmt: skip
    tracks = sorted(out.parent.glob("splice.*.bw"))
    assert [p.name for p in tracks] == sorted(
        f"splice.{lab}.{s}.bw" for lab in ("acceptor", "donor") for s in ("plus", "minus")
    )
    manifest = json.loads((out.parent / "splice.json").read_text())
    assert manifest["strands"] == ["+", "-"]
    for path in tracks:
        bw = pyBigWig.open(str(path))
        assert bw.isBigWig()
        assert bw.chroms() == {k: len(v) for k, v in seqs.items()}
        for chrom, s in seqs.items():
            v = np.array(bw.values(chrom, 0, len(s)), dtype=float)
            n_mask = np.array([c == "N" for c in s])
            assert np.isnan(v[n_mask]).all() and not np.isnan(v[~n_mask]).any()
            assert (v[~n_mask] >= 0).all() and (v[~n_mask] <= 1).all()  # sigmoid range
            assert np.nanstd(v) > 0  # the random model really depends on the sequence
        bw.close()


@pytest.mark.parametrize("family", ["hyena", "modernbert"])
def test_score_writes_a_valid_vcf(tmp_path, models, genome, family):
    fa, vcf, _ = genome
    out = tmp_path / "scored.vcf.gz"
    _invoke(["score", str(vcf), "--genome", str(fa), "--task", "splice", "--model", str(models[family]),
             "-o", str(out), "--distance", "30", "--batch-size", "4", "--device", "cpu", "--quiet"])  # fmt: skip
    records = list(pysam.VariantFile(str(out)))
    assert [r.id for r in records] == ["snv1", "del1", "ins1"]
    for rec in records:
        assert "GENA_SPLICE" in rec.info, dict(rec.info)
        fields = rec.info["GENA_SPLICE"][0].split("|")
        assert fields[0] == rec.alts[0] and fields[1] in "+-"
        numbers = [float(x) for x in fields[2:] if x not in ("", ".")]
        assert numbers and all(np.isfinite(numbers))
