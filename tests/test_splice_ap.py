"""bench/splice_ap.py: the independent evaluator's site placement, +-P tolerance and AP."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from benchutil import load_bench as _bench

from genaannot.metrics import average_precision as genaannot_ap

sap = _bench("splice_ap")


def test_ap_matches_hand_computed_and_groups_ties():
    # ranks: 0.9 (pos), 0.8 (neg), 0.7 (pos): AP = 1*0.5 + 2/3*0.5
    assert sap.average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx(0.5 + 1 / 3)
    # a tie of one positive and one negative is one step: precision 1/2 at recall 1
    assert sap.average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    s = np.round(rng.random(500), 2)  # many ties
    y = rng.random(500) < 0.1
    assert sap.average_precision(s, y) == pytest.approx(genaannot_ap(s, y))


def test_tolerance_takes_the_max_near_a_site_and_leaves_neighbours_out():
    track = np.zeros(20)
    track[11] = 0.9  # peak 1 bp off the site at 10
    track[3] = 0.5  # a false call far away
    sites = np.array([10])
    s0, y0 = sap.pooled_examples(track, sites, pool=0)
    assert len(s0) == 20 and s0[y0].tolist() == [0.0]  # exact base: the site scores 0, the peak is a negative
    assert sap.average_precision(s0, y0) < 0.2
    s2, y2 = sap.pooled_examples(track, sites, pool=2)
    assert len(s2) == 20 - 4  # bases 8, 9, 11, 12 are neither positive nor negative
    assert s2[y2].tolist() == [0.9] and 0.9 not in s2[~y2].tolist()
    assert sap.average_precision(s2, y2) == 1.0
    # at the chromosome's edge the window is clipped, not wrapped
    s, y = sap.pooled_examples(np.r_[0.0, 0.7, np.zeros(8)], np.array([0]), pool=2)
    assert s[y].tolist() == [0.7] and len(s) == 10 - 2
    # NaN (no track value) scores -inf but still counts
    s, y = sap.pooled_examples(np.full(5, np.nan), np.array([2]), pool=0)
    assert len(s) == 5 and np.isneginf(s).all()


def test_sites_from_gff3_in_both_conventions(tmp_path):
    gff = tmp_path / "g.gff3.gz"
    with gzip.open(gff, "wt") as fh:  # 1-based inclusive exons
        fh.write("##gff-version 3\n")
        fh.write("c\t.\texon\t11\t20\t.\t+\t.\tParent=t1,t2\n")
        fh.write("c\t.\texon\t31\t40\t.\t+\t.\tParent=t1,t2\n")  # intron [20, 30), listed once
        fh.write("c\t.\texon\t51\t60\t.\t-\t.\tParent=t3\n")
        fh.write("c\t.\texon\t71\t80\t.\t-\t.\tParent=t3\n")  # intron [60, 70) on -
        fh.write("d\t.\texon\t1\t5\t.\t+\t.\tParent=t4\n")
        fh.write("d\t.\texon\t9\t12\t.\t+\t.\tParent=t4\n")  # another chromosome
    introns = sap.read_introns(gff, "c")
    assert introns == {(20, 30, "+"), (60, 70, "-")}
    ex = sap.site_positions(introns, convention="exon")
    assert ex[("donor", "+")].tolist() == [19] and ex[("acceptor", "+")].tolist() == [30]
    assert ex[("donor", "-")].tolist() == [70] and ex[("acceptor", "-")].tolist() == [59]
    it = sap.site_positions(introns, convention="intron")
    assert it[("donor", "+")].tolist() == [20] and it[("acceptor", "+")].tolist() == [29]
    assert it[("donor", "-")].tolist() == [69] and it[("acceptor", "-")].tolist() == [60]


def test_both_strands_count_and_convention_offset_is_tolerated():
    n = 100
    sites = sap.site_positions({(20, 30, "+"), (60, 70, "-")}, convention="intron")
    tracks = {(k, s): np.zeros(n) for k in sap.KINDS for s in "+-"}
    # a model that marks the exon-side bases (1 bp off the intron convention)
    for (k, s), pos in sap.site_positions({(20, 30, "+"), (60, 70, "-")}, convention="exon").items():
        tracks[(k, s)][pos] = 1.0
    exact = sap.evaluate_tracks(tracks, sites, pool=0)
    tol = sap.evaluate_tracks(tracks, sites, pool=2)
    for k in sap.KINDS:
        assert exact[k]["n_pos"] == 2 and exact[k]["n_neg"] == 2 * n - 2
        assert exact[k]["average_precision"] < 0.1
        assert tol[k]["average_precision"] == 1.0 and tol[k]["n_neg"] == 2 * n - 2 - 2 * 4


def test_main_reads_a_scans_bigwigs(tmp_path, capsys):
    from genaannot.io.tracks import BigWigWriter

    gff = tmp_path / "g.gff3"
    gff.write_text("c\t.\texon\t11\t20\t.\t+\t.\tParent=t1\nc\t.\texon\t31\t40\t.\t+\t.\tParent=t1\n")
    n = 60
    for kind, peak in (("donor", 19), ("acceptor", 30)):  # exon-side peaks on +, nothing on -
        for word in ("plus", "minus"):
            v = np.zeros(n, dtype=np.float32)
            if word == "plus":
                v[peak] = 0.8
                v[45] = 0.9 if kind == "donor" else 0.1  # a donor false call above the true one
            w = BigWigWriter(tmp_path / f"o.{kind}.{word}.bw", sizes={"c": n})
            w.add("c", np.arange(n), np.arange(1, n + 1), v)
            w.commit()
    res = sap.main([str(tmp_path / "o"), "--annotation", str(gff), "--chrom", "c", "--site-convention", "intron",
                    "--json", str(tmp_path / "r.json")])
    assert res["acceptor"]["average_precision"] == 1.0  # intron-side site, exon-side peak: within 2 bp
    assert res["donor"]["average_precision"] == pytest.approx(0.5)  # ranked second after the false call
    assert res["donor"]["n_pos"] == 1 and res["donor"]["n_neg"] == 2 * n - 1 - 4
    assert "donor: AP 0.5000" in capsys.readouterr().out
    exact = sap.main([str(tmp_path / "o"), "--annotation", str(gff), "--chrom", "c", "--site-convention", "intron",
                      "--pool", "0"])
    assert exact["acceptor"]["average_precision"] < 0.1
    # a span: only its bases and sites count (here the false donor call at 45 is left out)
    part = sap.main([str(tmp_path / "o"), "--annotation", str(gff), "--chrom", "c", "--site-convention", "intron",
                     "--start", "5", "--end", "40"])
    assert part["donor"]["average_precision"] == 1.0 and part["donor"]["n_neg"] == 2 * 35 - 1 - 4


def test_spliceai_compare_says_what_to_install(capsys):
    try:
        import spliceai  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("spliceai is installed: the message is for machines without it")
    mod = _bench("spliceai_compare")
    with pytest.raises(SystemExit) as err:
        mod.main(["--fasta", "x.fa", "--annotation", "x.gff3", "--chrom", "c", "-o", "o"])
    assert err.value.code == 2 and "pip install spliceai" in capsys.readouterr().err


class _EchoModel:
    """Stands in for one SpliceAI keras model with SpliceAI's input/output contract
    ([1, L + 10,000, 4] one-hot in, [1, L, 3] out: the 5,000 context bases on each side are
    not predicted). It 'predicts' acceptor = the base is A and donor = the base is G, so the
    test can see exactly which input base each output row came from."""

    def predict(self, x, verbose=0):
        core = x[:, 5000:-5000, :]
        return np.stack([core[..., 2], core[..., 0], core[..., 2]], axis=-1)  # none, acceptor (A), donor (G)


def _one_hot(seq: str) -> np.ndarray:
    table = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = np.zeros((len(seq), 4), dtype=np.float32)
    for i, c in enumerate(seq):
        if c in table:
            out[i, table[c]] = 1.0
    return out


def test_spliceai_compare_glue_with_a_stand_in_model(tmp_path, monkeypatch):
    """Everything of bench/spliceai_compare.py but SpliceAI itself: 10-kb context trimming over
    several blocks, the minus strand predicted on the reverse complement and flipped back, the
    four bigWigs and their evaluation. (SpliceAI is not installed here; this is not its output.)"""
    mod = _bench("spliceai_compare")
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), size=12_345))
    got = mod.predict_strand(seq, one_hot_encode=_one_hot, models=[_EchoModel(), _EchoModel()], block=5000)
    assert got.shape == (len(seq), 2)
    np.testing.assert_array_equal(got[:, 0], np.array([c == "A" for c in seq], dtype=np.float32))
    np.testing.assert_array_equal(got[:, 1], np.array([c == "G" for c in seq], dtype=np.float32))

    fa = tmp_path / "g.fa"
    fa.write_text(">c\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n")
    gff = tmp_path / "g.gff3"
    gff.write_text("##gff-version 3\nc\tt\tmRNA\t101\t900\t.\t+\t.\tID=t1\n"
                   "c\tt\texon\t101\t300\t.\t+\t.\tParent=t1\nc\tt\texon\t501\t900\t.\t+\t.\tParent=t1\n")
    monkeypatch.setattr(mod, "load_spliceai", lambda: (_one_hot, [_EchoModel()]))
    res = mod.main(["--fasta", str(fa), "--annotation", str(gff), "--chrom", "c", "-o", str(tmp_path / "sa" / "o"),
                    "--track-digits", "full"])
    import pyBigWig

    for kind, base in (("acceptor", "A"), ("donor", "G")):
        with pyBigWig.open(str(tmp_path / "sa" / f"o.{kind}.plus.bw")) as bw:
            plus = np.asarray(bw.values("c", 0, len(seq)))
        with pyBigWig.open(str(tmp_path / "sa" / f"o.{kind}.minus.bw")) as bw:
            minus = np.asarray(bw.values("c", 0, len(seq)))
        np.testing.assert_array_equal(plus, [c == base for c in seq])
        # the minus strand's base at forward position p is the complement of seq[p]
        comp = {"A": "T", "G": "C"}[base]
        np.testing.assert_array_equal(minus, [c == comp for c in seq])
    assert set(res) >= {"donor", "acceptor"} and res["pool_bp"] == 2
