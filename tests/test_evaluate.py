"""PWM baseline, per-base painting of token predictions, splice evaluation and its report files."""

from __future__ import annotations

import json

import numpy as np
from toy import make_toy_model

from genaannot.evaluate import (
    EvalReport,
    evaluate_splice,
    fit_pwm,
    predict_bp,
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
    pwm = fit_pwm(genome, ann, train, kind="donor")
    assert pwm.n_sites == 16 and pwm.n_decoys > 50
    sc = score_pwm(pwm, genome.fetch("c1", 4000, 8000))
    true = [100 + i * 250 - 4000 for i in range(16, 30)]
    assert np.isneginf(sc[~np.isin(np.arange(4000), np.flatnonzero(np.isfinite(sc)))]).all()
    assert np.median(sc[true]) > np.quantile(sc[np.isfinite(sc)], 0.95)


def test_predict_bp_paints_and_orients():
    model = make_toy_model("token", max_tokens=64)
    seq = "ACGT" * 50 + "NNN"
    out = predict_bp(model, seq, window_tokens=40, activation="identity")
    assert out.shape == (len(seq), 3)
    val = {"A": 0.1, "C": 0.2, "G": 0.3, "T": 0.4, "N": 0.0}
    assert np.allclose(out[:, 1], [val[c] for c in seq])  # channel 1 = the base's own value
    # channel 2 = position / window length: every base taken from a window where it is central
    assert np.all(np.isfinite(out))
    # mean stitching: the average over every covering window
    mean = predict_bp(model, seq, window_tokens=40, activation="identity", stitch_mode="mean")
    assert np.allclose(mean[:, 1], out[:, 1])  # a base's own value is the same in every window
    from genaannot.windows import plan_windows

    plan = plan_windows(seq, tokenizer=model.tokenizer, window_tokens=40, overlap=0.5)
    acc, cnt = np.zeros(len(seq)), np.zeros(len(seq))
    for s, e in zip(plan.starts, plan.ends):
        acc[s:e] += (np.arange(e - s) + 1) / (e - s + 2)
        cnt[s:e] += 1
    np.testing.assert_allclose(mean[:, 2], acc / cnt, atol=1e-6)


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
