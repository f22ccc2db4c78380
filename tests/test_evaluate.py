"""PWM baseline, per-base painting of token predictions, splice evaluation and its report files."""

from __future__ import annotations

import json

import numpy as np
from toy import make_toy_model

from genaannot.evaluate import (
    EvalReport,
    evaluate_splice,
    fit_pwm,
    score_pwm,
    write_eval_report,
)
from genaannot.io.annotation import Annotation, Transcript
from genaannot.regions import Interval


class _Genome:
    def __init__(self, seqs: dict[str, str]) -> None:
        self.seqs = seqs
        self.sizes = {k: len(v) for k, v in seqs.items()}

    def fetch(self, chrom, start, end):
        return self.seqs[chrom][start:end]


def _toy_genome(n_introns: int = 30, seed: int = 0):
    """Random DNA with GT...AG introns whose donor is followed by AAG (a learnable motif)."""
    rng = np.random.default_rng(seed)
    seq = list(rng.choice(list("ACGT"), 8000))
    transcripts = []
    for i in range(n_introns):
        s = 100 + i * 250
        e = s + 80
        seq[s : s + 5] = list("GTAAG")
        seq[e - 2 : e] = list("AG")
        transcripts.append(Transcript(f"t{i}", f"g{i}", "c1", "+", ((s - 50, s), (e, e + 50))))
    return _Genome({"c1": "".join(seq)}), Annotation("toy", {"c1": transcripts})


def test_pwm_prefers_true_sites():
    genome, ann = _toy_genome()
    train = [Interval("c1", 0, 4000)]
    pwm = fit_pwm(genome, ann, train, kind="donor")  # exon convention: the site is the base before GT
    assert pwm.n_sites == 16 and pwm.n_decoys > 50
    sc = score_pwm(pwm, genome.fetch("c1", 4000, 8000))
    true = [100 + i * 250 - 4000 - 1 for i in range(16, 30)]
    assert np.isneginf(sc[~np.isin(np.arange(4000), np.flatnonzero(np.isfinite(sc)))]).all()
    assert np.median(sc[true]) > np.quantile(sc[np.isfinite(sc)], 0.95)


def test_evaluate_scores_are_what_scan_writes(tmp_path):
    """evaluate tiles exactly as scan: AP/AUROC from the scan's own bigWigs over the same
    regions equal evaluate's, N runs of a window or more included (no score in either)."""
    import pyBigWig

    from genaannot.metrics import site_metrics
    from genaannot.pipeline.scan import scan_genome
    from genaannot.windows import BASE_UNIT_BP

    genome, ann = _toy_genome()
    seq = genome.seqs["c1"]
    seq = seq[:5000] + "N" * 100 + seq[5100:]  # a gap the scanner skips (min_gap = 60 bp here)
    genome = _Genome({"c1": seq})
    fa = tmp_path / "g.fa"
    fa.write_text(f">c1\n{seq}\n")
    model = make_toy_model("token", max_tokens=64)
    regions = [Interval("c1", 4000, 8000)]
    rep = evaluate_splice(model, genome=genome, annotation=ann, regions=regions, window_tokens=60)
    # unrounded tracks: evaluate scores the values as computed (--track-digits only rounds storage)
    res = scan_genome(fa, model=model, task="splice", output=tmp_path / "s.bw", regions=regions, window_tokens=60,
                      quiet=True, track_digits=None)
    manifest = json.loads(res.manifest.read_text())
    assert rep.details["n_bases_not_scanned"] == 2 * manifest["counts"]["n_bp_skipped"] == 200
    assert (rep.details["unit_bp"], rep.details["min_gap_bp"]) == (manifest["unit_bp"], manifest["min_gap_bp"])
    assert manifest["unit_bp"] == BASE_UNIT_BP  # a token per base: the smaller default unit
    from genaannot.labels import SiteIndex, oriented_positions

    idx = SiteIndex(ann, regions, ("acceptor", "donor"))
    for kind in ("acceptor", "donor"):
        sc, y = [], []
        for strand, name in (("+", "plus"), ("-", "minus")):
            bw = pyBigWig.open(str(tmp_path / f"s.{kind}.{name}.bw"))
            v = np.array(bw.values("c1", 4000, 8000), dtype=np.float64)
            bw.close()
            v = v if strand == "+" else v[::-1]
            lab = np.zeros(4000, bool)
            lab[oriented_positions(idx.in_window("c1", strand, kind, 4000, 8000), start=4000, end=8000,
                                   strand=strand)] = True
            sc.append(np.where(np.isnan(v), -np.inf, v))
            y.append(lab)
        want = site_metrics(np.concatenate(sc), np.concatenate(y))
        assert rep.metrics[kind]["average_precision"] == want.average_precision
        assert rep.metrics[kind]["auroc"] == want.auroc and rep.metrics[kind]["n_pos"] == want.n_pos


def test_evaluate_splice_toy_and_report(tmp_path):
    genome, ann = _toy_genome()
    model = make_toy_model("token", max_tokens=64)
    rep = evaluate_splice(model, genome=genome, annotation=ann, regions=[Interval("c1", 4000, 8000)],
                          baseline_regions=[Interval("c1", 0, 4000)], window_tokens=60)
    assert set(rep.metrics) == {"acceptor", "donor", "mean"}
    assert rep.metrics["donor"]["n_pos"] == 14
    assert rep.metrics["donor"]["n_neg"] == 2 * 4000 - 14
    assert rep.baseline["donor"]["average_precision"] > rep.metrics["donor"]["average_precision"]
    js, png = write_eval_report(rep, tmp_path)
    data = json.loads(js.read_text())
    assert data["task"] == "splice" and "curves" not in data
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_write_eval_report_without_curves(tmp_path):
    rep = EvalReport("promoter", "m", ["c1:1-10"], {"promoter": {"auroc": 0.5}})
    js, png = write_eval_report(rep, tmp_path, stem="X")
    assert js.name == "X.json" and png.exists()
