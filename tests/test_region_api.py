"""``genaannot.predict_region`` / ``read_track``: a region's values in memory equal a whole-genome
scan's unrounded tracks over it (same units, halos, windows and stitching)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tinymodels import make_gena_dir, random_dna

import genaannot
from genaannot.regions import Interval, RegionError

KW = dict(task="splice", window_tokens=20, unit_bp=700)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("region")
    model = genaannot.load_model(make_gena_dir(d / "tok", head="token", num_labels=3,
                                               problem_type="multi_label_classification"), device="cpu")
    seqs = {"chr1": random_dna(3000, seed=1) + "N" * 200 + random_dna(1500, seed=2).lower(),
            "chr2": random_dna(800, seed=3)}
    fa = d / "g.fa"
    fa.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    scans = {}
    for bs in (1, 8):
        out = d / f"b{bs}" / "o.bw"
        out.parent.mkdir()
        scans[bs] = genaannot.scan_genome(fa, model=model, output=out, track_digits=None, batch_size=bs,
                                          quiet=True, **KW)
    return model, fa, scans


REGIONS = ["chr1:650-1,450", "chr1:2,900-3,300", "chr2", "1:1-10", "chr1:4,700-4,700"]


@pytest.mark.parametrize("region", REGIONS)
def test_predict_region_equals_the_scan_tracks(setup, region):
    model, fa, scans = setup
    for bs, rtol in ((1, 0), (8, 1e-5)):
        p = genaannot.predict_region(model, fa, region, batch_size=bs, **KW)
        assert set(p.values) == {(lab, s) for lab in ("acceptor", "donor") for s in "+-"}
        out = scans[bs].manifest.with_suffix("")
        for (lab, s), v in p.values.items():
            assert v.dtype == np.float32 and v.shape == (p.end - p.start,)
            track = genaannot.read_track(f"{out}.{lab}.{'plus' if s == '+' else 'minus'}.bw", region)
            if rtol == 0:
                np.testing.assert_array_equal(v, track)  # the same bits, NaN where the scan has no data
            else:
                np.testing.assert_allclose(v, track, rtol=rtol, atol=1e-6)
    windows = json.loads(scans[1].manifest.read_text())["counts"]["windows"]
    assert 0 < p.settings["windows"] < windows  # only the region's windows went through the model


def test_region_with_n_gap_and_frame(setup):
    model, fa, _ = setup
    p = genaannot.predict_region(model, fa, "chr1:2,901-3,300", strand="-", labels=["donor"], **KW)
    assert (p.chrom, p.start, p.end, p.strands, p.labels) == ("chr1", 2900, 3300, ("-",), ("donor",))
    v = p.values[("donor", "-")]
    assert not np.isnan(v[:100]).any() and np.isnan(v[100:300]).all() and not np.isnan(v[300:]).any()
    df = p.to_frame()
    assert list(df.columns) == ["chrom", "start", "pos", "donor_minus"] and len(df) == 400
    assert df["start"].iloc[0] == 2900 and df["pos"].iloc[0] == 2901
    q = genaannot.predict_region(model, fa, Interval("chr1", 2900, 3300), strand="-", labels=["donor"], **KW)
    np.testing.assert_array_equal(q.values[("donor", "-")], v)


def test_errors(setup, tmp_path):
    model, fa, scans = setup
    with pytest.raises(RegionError, match="runs past the end of chr2"):
        genaannot.predict_region(model, fa, "chr2:700-801", **KW)
    with pytest.raises(RegionError, match="'chr9' is not in the genome"):
        genaannot.predict_region(model, fa, "chr9:1-10", **KW)
    with pytest.raises(ValueError, match="label"):
        genaannot.predict_region(model, fa, "chr2:1-10", task="splice", labels=["nope"])
    out = scans[1].manifest.with_suffix("")
    with pytest.raises(RegionError, match="o.acceptor.plus.bw: .*past the end"):
        genaannot.read_track(f"{out}.acceptor.plus.bw", "chr2:1-801")
    with pytest.raises(OSError, match="not found"):
        genaannot.read_track(tmp_path / "none.bw", "chr2")


def test_the_lazily_loaded_api_is_listed():
    # without __dir__, dir(genaannot) and help() showed only __getattr__, and tab completion nothing
    import genaannot

    assert set(genaannot.__all__) <= set(dir(genaannot))
    assert {"load_model", "scan_genome", "score_variants", "predict_region"} <= set(dir(genaannot))
