"""Ranking metrics of per-example scores against binary labels (pure numpy).

Used by training (validation score) and evaluation (held-out reports). Every function takes
``scores`` (float, higher = more likely positive; ``-inf`` allowed) and ``labels`` (bool or
0/1) of equal length. Ties are one threshold: precision-recall curves step once per distinct
score, AUROC gives tied examples their average rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "average_precision",
    "roc_auc",
    "topk_accuracy",
    "pr_curve",
    "max_f1_threshold",
    "SiteMetrics",
    "site_metrics",
]


def _sorted_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positives at each distinct threshold (descending)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # tie-group ends; not diff (-inf - -inf is nan)
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1) - tp
    return tp, fp, s[last]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the step-wise precision-recall curve: ``sum_n (R_n - R_{n-1}) P_n``.

    Parameters
    ----------
    scores : float [n]
    labels : bool/int [n]
    """
    tp, fp, _ = _sorted_counts(scores, labels)
    if tp.size == 0 or tp[-1] == 0:
        return float("nan")
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """AUROC via the rank-sum (Mann-Whitney) statistic with average ranks for ties."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    bounds = np.r_[0, np.flatnonzero(ss[1:] != ss[:-1]) + 1, s.size]
    for a, b in zip(bounds[:-1], bounds[1:]):
        ranks[order[a:b]] = (a + b + 1) / 2.0  # average 1-based rank of the tie group
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def topk_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """SpliceAI top-k accuracy: of the ``k = #positives`` top-scoring examples, the share that are positive."""
    y = np.asarray(labels).astype(bool)
    k = int(y.sum())
    if k == 0:
        return float("nan")
    top = np.argpartition(-np.asarray(scores, dtype=np.float64), k - 1)[:k]
    return float(y[top].mean())


def pr_curve(scores: np.ndarray, labels: np.ndarray, *, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each distinct threshold (thinned to ``max_points``); float64 [m] each."""
    tp, fp, _ = _sorted_counts(scores, labels)
    if tp.size == 0 or tp[-1] == 0:
        return np.zeros(0), np.zeros(0)
    # keep the thresholds where a positive enters (the curve's corners), not every threshold:
    # thinning by index would skip the few hundred thresholds that hold most of the sites
    corner = np.r_[True, tp[1:] != tp[:-1]]
    corner[-1] = True
    tp, fp = tp[corner], fp[corner]
    precision, recall = tp / (tp + fp), tp / tp[-1]
    if precision.size > max_points:
        idx = np.unique(np.linspace(0, precision.size - 1, max_points).astype(int))
        precision, recall = precision[idx], recall[idx]
    return precision, recall


def max_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The call threshold (``score >= t``) with the highest F1, and F1/precision/recall there.

    Every distinct finite score is a candidate cut; among equal F1 the highest cut wins. The
    threshold returned is the midpoint between the chosen score and the next lower distinct
    score (the chosen score itself when there is none, or when the next is ``-inf``), so that
    the same examples are called when scores are recomputed with small float differences.

    Parameters
    ----------
    scores : float [n]
    labels : bool/int [n]

    Returns
    -------
    dict
        ``threshold``, ``f1``, ``precision``, ``recall`` (all ``nan`` without positives or
        without a finite score).
    """
    tp, fp, cut = _sorted_counts(scores, labels)
    nan = {"threshold": float("nan"), "f1": float("nan"), "precision": float("nan"), "recall": float("nan")}
    finite = np.isfinite(cut)
    if tp.size == 0 or tp[-1] == 0 or not finite.any():
        return nan
    n_pos = tp[-1]
    f1 = np.where(finite, 2.0 * tp / (tp + fp + n_pos), -1.0)
    i = int(np.argmax(f1))  # first maximum = highest cut
    below = cut[i + 1] if i + 1 < cut.size else -np.inf
    thr = float((cut[i] + below) / 2.0) if np.isfinite(below) else float(cut[i])
    return {"threshold": thr, "f1": float(f1[i]), "precision": float(tp[i] / (tp[i] + fp[i])), "recall": float(tp[i] / n_pos)}


@dataclass
class SiteMetrics:
    """Metrics of one score for one site type (``max_f1_*``: see :func:`max_f1_threshold`)."""

    average_precision: float
    auroc: float
    topk_accuracy: float
    n_pos: int
    n_neg: int
    max_f1: float = float("nan")
    max_f1_threshold: float = float("nan")
    max_f1_precision: float = float("nan")
    max_f1_recall: float = float("nan")


def site_metrics(scores: np.ndarray, labels: np.ndarray) -> SiteMetrics:
    """All metrics of one score for one site type.

    Parameters
    ----------
    scores : float [n]
    labels : bool/int [n]

    Returns
    -------
    SiteMetrics
        Average precision, AUROC, top-k accuracy, the class counts and the max-F1 threshold
        (:func:`max_f1_threshold`) with F1, precision and recall there.
    """
    y = np.asarray(labels).astype(bool)
    best = max_f1_threshold(scores, y)
    return SiteMetrics(
        average_precision(scores, y), roc_auc(scores, y), topk_accuracy(scores, y), int(y.sum()), int((~y).sum()),
        best["f1"], best["threshold"], best["precision"], best["recall"],
    )
