"""Ranking metrics: exact small cases, ties, and brute-force cross-checks."""

from __future__ import annotations

import numpy as np
import pytest

from genaannot.metrics import (
    average_precision,
    max_f1_threshold,
    pr_curve,
    roc_auc,
    site_metrics,
    topk_accuracy,
)


def test_metrics_small_exact():
    s = np.array([0.9, 0.8, 0.7, 0.6])
    y = np.array([1, 0, 1, 0])
    assert average_precision(s, y) == pytest.approx(1.0 * 0.5 + (2 / 3) * 0.5)
    assert roc_auc(s, y) == pytest.approx(0.75)
    assert topk_accuracy(s, y) == pytest.approx(0.5)
    # ties: one threshold only -> precision = prevalence, AUROC 0.5
    flat = np.zeros(4)
    assert average_precision(flat, y) == pytest.approx(0.5)
    assert roc_auc(flat, y) == pytest.approx(0.5)
    # -inf ties (PWM without dinucleotide) are one group, not n groups
    s2 = np.array([1.0, -np.inf, -np.inf, -np.inf])
    y2 = np.array([0, 1, 0, 0])
    assert average_precision(s2, y2) == pytest.approx(0.25)
    assert roc_auc(s2, y2) == pytest.approx((0 + 0.5 + 0.5) / 3)


def test_auroc_matches_pairwise_count():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 200).astype(float)
    y = rng.random(200) < 0.3
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc(s, y) == pytest.approx(pairs)


def test_max_f1_threshold_exact():
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    y = np.array([1, 0, 1, 0, 0])
    # F1 at cuts 0.9, 0.8, 0.7, 0.6, 0.1: 2/3, 1/2, 4/5, 2/3, 4/7 -> best cut 0.7; midpoint to 0.6
    best = max_f1_threshold(s, y)
    assert best["threshold"] == pytest.approx(0.65)
    assert best["f1"] == pytest.approx(0.8)
    assert best["precision"] == pytest.approx(2 / 3) and best["recall"] == pytest.approx(1.0)
    # equal F1 at two cuts: the higher cut wins; the lowest finite cut keeps its own value
    # (cuts 0.9 and 0.3 both give F1 2/3)
    assert max_f1_threshold(np.array([0.9, 0.5, 0.4, 0.3]), np.array([1, 0, 0, 1]))["threshold"] == pytest.approx(0.7)
    assert max_f1_threshold(np.array([0.2, -np.inf]), np.array([1, 0]))["threshold"] == pytest.approx(0.2)
    assert np.isnan(max_f1_threshold(s, np.zeros(5))["threshold"])


def test_max_f1_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        s = np.round(rng.random(n), 1)  # many ties
        y = rng.random(n) < 0.3
        if not y.any():
            continue
        best = max_f1_threshold(s, y)
        cuts = np.unique(s)[::-1]
        f1s = [2 * (y & (s >= c)).sum() / ((s >= c).sum() + y.sum()) for c in cuts]
        i = int(np.argmax(f1s))
        assert best["f1"] == pytest.approx(max(f1s))
        called = s >= best["threshold"]  # the threshold calls exactly the examples of the best cut
        assert np.array_equal(called, s >= cuts[i])
        assert best["precision"] == pytest.approx((y & called).sum() / called.sum())
        assert best["recall"] == pytest.approx((y & called).sum() / y.sum())


def test_pr_curve_keeps_the_corners():
    s = np.array([0.9, 0.8, 0.7, 0.6])
    y = np.array([1, 0, 1, 0])
    precision, recall = pr_curve(s, y)
    # thresholds where a positive enters (0.9, 0.7) and the last one (0.6)
    np.testing.assert_allclose(precision, [1.0, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 1.0, 1.0])
    empty = pr_curve(s, np.zeros(4))
    assert empty[0].size == 0 and empty[1].size == 0
    rng = np.random.default_rng(1)
    big = rng.random(5000)
    p, r = pr_curve(big, rng.random(5000) < 0.5, max_points=100)
    assert p.size <= 100 and r[-1] == 1.0 and np.all(np.diff(r) >= 0)


def test_site_metrics_gathers_the_metrics():
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    y = np.array([1, 0, 1, 0, 0])
    m = site_metrics(s, y)
    assert (m.n_pos, m.n_neg) == (2, 3)
    assert m.average_precision == pytest.approx(average_precision(s, y))
    assert m.auroc == pytest.approx(roc_auc(s, y))
    assert m.topk_accuracy == pytest.approx(topk_accuracy(s, y))
    best = max_f1_threshold(s, y)
    assert (m.max_f1, m.max_f1_threshold, m.max_f1_precision, m.max_f1_recall) == pytest.approx(
        (best["f1"], best["threshold"], best["precision"], best["recall"]))
