"""`genaannot ism` / `genaannot attribute` end to end on a tiny real GENA checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir, random_dna

from genaannot.cli import main
from genaannot.windows import reverse_complement

SEQ = random_dna(3000, seed=11)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("interp")
    fa = d / "g.fa"
    fa.write_text(">chrA\n" + "\n".join(SEQ[i : i + 60] for i in range(0, len(SEQ), 60)) + "\n")
    tok = make_gena_dir(d / "tok", head="token", num_labels=3)
    seq = make_gena_dir(d / "seq", head="sequence", num_labels=2, seed=1)
    return d, fa, tok, seq


def sig(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("strand", ["+", "-"])
def test_ism_cli_token_head(setup, strand):
    import pyBigWig

    from genaannot import load_model

    d, fa, tok, _ = setup
    out = d / f"ism{strand == '-'}"
    r = CliRunner().invoke(main, ["ism", str(fa), "--region", "chrA:1201-1230", "--task", "splice", "--model",
                                  str(tok), "--site", "1215", "--strand", strand, "-o", str(out) + ".bw", "-q"])
    assert r.exit_code == 0, r.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["site"] == 1215 and meta["label"] == "acceptor" and meta["n_mutants"] == 90
    rows = [line.split("\t") for line in out.with_suffix(".tsv").read_text().splitlines()[1:]]
    assert len(rows) == 90 and rows[0][1] == "1201" and rows[0][2] == SEQ[1200]
    z = np.load(out.with_suffix(".npz"))
    assert z["effects"].shape == (30, 4) and z["positions"][0] == 1200
    # every effect is the direct difference of two predictions of the same window
    model = load_model(tok, device="cpu")
    ws, we = meta["window"]["start"], meta["window"]["end"]
    ref = SEQ[ws:we]

    def f(s):
        s = reverse_complement(s) if strand == "-" else s
        p = model.predict([s])[0]
        off = (we - 1 - 1214) if strand == "-" else 1214 - ws
        t = int(np.flatnonzero((p.spans[:, 0] <= off) & (off < p.spans[:, 1]))[0])
        return sig(p.logits[t, 1])

    for _c, pos, _r, alt, eff in rows[::7]:
        k = int(pos) - 1 - ws
        assert float(eff) == pytest.approx(f(ref[:k] + alt + ref[k + 1 :]) - f(ref), abs=2e-5)
    bw = pyBigWig.open(str(out) + ".max_abs.bw")
    vals = np.array(bw.values("chrA", 1200, 1230))
    np.testing.assert_allclose(vals, np.nanmax(np.abs(z["effects"]), axis=1), rtol=1e-6)
    assert np.isnan(bw.values("chrA", 1199, 1200)[0])
    bw.close()
    assert np.nanmax(vals) > 0


def test_ism_cli_sequence_head_and_errors(setup):
    d, fa, _, seq = setup
    out = d / "ism_seq"
    r = CliRunner().invoke(main, ["ism", str(fa), "--region", "chrA:2001-2010", "--task", "promoter", "--model",
                                  str(seq), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["readout"] == "sequence" and meta["site"] is None and meta["n_mutants"] == 30
    r = CliRunner().invoke(main, ["ism", str(fa), "--region", "chrA:1-2500", "--task", "promoter", "--model",
                                  str(seq), "-o", str(out), "-q"])
    assert r.exit_code != 0 and "limit is 2,000 bp" in r.output
    r = CliRunner().invoke(main, ["ism", str(fa), "--region", "chrA:1-1500", "--task", "promoter", "--model",
                                  str(seq), "-o", str(out), "-q"])
    assert r.exit_code != 0 and "does not fit one model input" in r.output


@pytest.mark.parametrize(("task", "which"), [("splice", 2), ("promoter", 3)])
def test_attribute_cli_completeness(setup, task, which):
    import pyBigWig

    d, fa, tok, seq = setup
    model = tok if which == 2 else seq
    out = d / f"ig_{task}"
    r = CliRunner().invoke(main, ["attribute", str(fa), "--region", "chrA:1501-1540", "--task", task, "--model",
                                  str(model), "--steps", "40", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    meta = json.loads(out.with_suffix(".json").read_text())
    delta = meta["f_input"] - meta["f_baseline"]
    assert abs(delta) > 1e-3
    # completeness: |sum - (f(x) - f(b))| within 1 % of |f(x) - f(b)| at 40 trapezoid steps
    assert meta["completeness_error"] <= 0.01 * abs(delta)
    w = meta["window"]
    bw = pyBigWig.open(str(out) + ".bw")
    vals = np.array(bw.values("chrA", w["start"], w["end"]))
    bw.close()
    assert np.isfinite(vals).all()
    assert vals.sum() == pytest.approx(meta["sum_attributions"], rel=1e-4, abs=1e-6)
    lines = out.with_suffix(".bedGraph").read_text().splitlines()
    assert lines[0].startswith("track type=bedGraph") and int(lines[1].split("\t")[1]) == w["start"]
