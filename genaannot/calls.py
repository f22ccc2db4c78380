"""Threshold tracks into merged features ("calls"), streamed run by run (pure).

Coordinates are 0-based, half-open. A call is a maximal stretch of adjacent bases whose
value is ``>= threshold`` on one track (label × strand); stretches separated by even one
base below threshold, or by bases without data, are separate calls.

Output layout (BED6+4, the ENCODE narrowPeak columns)::

    chrom start end name score strand signalValue pValue qValue peak

``name`` is the label, ``score`` is ``round(1000 * max)`` clipped to 0–1000 (values of
sigmoid/softmax tasks are probabilities), ``strand`` is ``+``/``-`` for strand-specific
scans and ``.`` otherwise, ``signalValue`` the maximum value, ``pValue``/``qValue`` are
``-1`` (not computed), and ``peak`` the offset of the first base at the maximum from
``start``.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Call", "CallMaker", "CallStream", "bed_field", "format_call", "sort_calls", "threshold_text", "resolve_thresholds",
           "threshold_mismatch", "DEFAULT_SCAN_SETTINGS"]

#: the scan settings thresholds written before ``scan_settings`` was recorded were chosen with
DEFAULT_SCAN_SETTINGS = {"overlap": 0.5, "stitch": "center"}


@dataclass(frozen=True)
class Call:
    chrom: str
    start: int
    end: int
    name: str
    strand: str
    signal: float
    peak: int  # absolute position of the first base at the maximum

    @property
    def score(self) -> int:
        return int(min(1000, max(0, round(1000 * self.signal))))


class CallMaker:
    """Turn a stream of runs of one track (in genome order) into :class:`Call` objects."""

    def __init__(self, *, name: str, strand: str, threshold: float) -> None:
        self.name, self.strand, self.threshold = name, strand, float(threshold)
        self.calls: list[Call] = []
        self._open: list | None = None  # [chrom, start, end, max, peak]

    def _close(self) -> None:
        if self._open is not None:
            c, s, e, m, p = self._open
            self.calls.append(Call(c, s, e, self.name, self.strand, float(m), p))
            self._open = None

    def feed(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        """Add runs ``[starts[i], ends[i])`` with ``values[i]``, sorted and after earlier runs."""
        above = values >= self.threshold
        if not above.any():
            self._close()
            return
        idx = np.flatnonzero(above)
        # groups of above-threshold runs that touch each other, all at once (no loop per
        # call: a genome makes millions): bounds, maximum and its first position per group
        brk = np.flatnonzero((starts[idx[1:]] != ends[idx[:-1]]) | (idx[1:] != idx[:-1] + 1)) + 1
        first = np.concatenate(([0], brk))
        v = values[idx]
        top = np.maximum.reduceat(v, first)
        at = np.where(v == np.repeat(top, np.diff(np.append(first, len(idx)))), np.arange(len(idx)), len(idx))
        peak = starts[idx[np.minimum.reduceat(at, first)]]
        gs, ge = starts[idx[first]].tolist(), ends[idx[np.append(brk - 1, len(idx) - 1)]].tolist()
        gm, gp = top.tolist(), peak.tolist()
        k0 = 0
        op = self._open
        if op is not None and op[0] == chrom and op[2] == gs[0] and idx[0] == 0:
            op[2] = ge[0]  # the open call goes on
            if gm[0] > op[3]:
                op[3], op[4] = gm[0], gp[0]
            k0 = 1
        if k0 < len(gs):
            self._close()
            name, strand = self.name, self.strand
            self.calls.extend(Call(chrom, gs[k], ge[k], name, strand, gm[k], gp[k]) for k in range(k0, len(gs) - 1))
            self._open = [chrom, gs[-1], ge[-1], gm[-1], gp[-1]]
        if idx[-1] != len(values) - 1:
            self._close()

    def finish(self) -> list[Call]:
        self._close()
        return self.calls

    def settle(self, chrom: str, end: int) -> int | None:
        """Everything before ``end`` on ``chrom`` has been fed: close the open call if the
        next data (at ``end`` or later) cannot extend it; the start of one that may still
        grow, else None."""
        op = self._open
        if op is not None and op[0] == chrom and op[2] >= end:
            return int(op[1])
        self._close()
        return None

    def take(self) -> list[Call]:
        """The calls closed so far, handed over (the maker forgets them)."""
        out, self.calls = self.calls, []
        return out


def sort_calls(calls: list[Call], chrom_order: dict[str, int]) -> list[Call]:
    return sorted(calls, key=lambda c: (chrom_order[c.chrom], c.start, c.end, c.name, c.strand))


class CallStream:
    """The calls of several tracks' :class:`CallMaker` in BED order, each as soon as it is final.

    A whole genome's calls, held to be sorted at the end, grew with the genome (~300 bytes
    a call: ~1.5 GB for a human scan making ~600 calls per Mb per track on 4 tracks). The
    makers are fed in genome (``chrom_order``) order; after all of them have been fed
    everything up to ``end`` on ``chrom``, :meth:`ready` returns the calls that no later
    data can precede or change. What :meth:`ready` and :meth:`finish` return, concatenated,
    is :func:`sort_calls` of all the makers' calls (ties, possible between tracks of one
    label on an unstranded scan, in maker order, as that stable sort leaves them).
    """

    def __init__(self, makers: list[CallMaker], chrom_order: dict[str, int]) -> None:
        self.makers, self.rank = makers, chrom_order
        self._pending: list[tuple[tuple, Call]] = []

    def _take(self) -> None:
        for i, m in enumerate(self.makers):
            self._pending.extend(((self.rank[c.chrom], c.start, c.end, c.name, c.strand, i), c) for c in m.take())

    def ready(self, chrom: str, end: int) -> list[Call]:
        """Every maker has been fed all its runs before ``end`` on ``chrom`` (and on the
        sequences before it): the calls that are now final and first in order."""
        rank = self.rank[chrom]
        frontier = end  # later calls start here or later, or at an open call's start
        for m in self.makers:
            start = m.settle(chrom, end)
            if start is not None:
                frontier = min(frontier, start)
        self._take()
        if not self._pending:
            return []
        self._pending.sort(key=lambda kc: kc[0])
        k = 0
        while k < len(self._pending) and self._pending[k][0][:2] < (rank, frontier):
            k += 1
        out = [c for _, c in self._pending[:k]]
        del self._pending[:k]
        return out

    def finish(self) -> list[Call]:
        """The rest, once every maker has been fed everything."""
        for m in self.makers:
            m.finish()
        self._take()
        self._pending.sort(key=lambda kc: kc[0])
        out = [c for _, c in self._pending]
        self._pending = []
        return out


@functools.lru_cache(maxsize=256)
def bed_field(text: str) -> str:
    """``text`` fit for one BED field: tabs, newlines and other control characters become ``_``.

    Labels are refused with such characters where they enter (:func:`genaannot.readout.resolve_readout`);
    this is the writer's own guard, so no name can ever start a field or a ``track`` line.
    """
    return "".join("_" if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)


def format_call(c: Call) -> str:
    """One narrowPeak (BED6+4) line, no newline (the name passed through :func:`bed_field`)."""
    return (
        f"{c.chrom}\t{c.start}\t{c.end}\t{bed_field(c.name)}\t{c.score}\t{c.strand}\t"
        f"{c.signal:.6g}\t-1\t-1\t{c.peak - c.start}"
    )


def threshold_text(calls: dict[str, Any]) -> str:
    """The call thresholds of a scan manifest's ``calls`` entry as text.

    ``"0.5"`` when every label has the same threshold, else ``"acceptor 0.93, donor 0.91"``;
    older manifests with one ``threshold`` are read too; ``"?"`` when none is recorded.
    """
    per = calls.get("thresholds")
    if not per:
        t = calls.get("threshold")
        return "?" if t is None else f"{t:g}"
    values = set(per.values())
    if len(values) == 1:
        return f"{values.pop():g}"
    return ", ".join(f"{k} {v:.4g}" for k, v in per.items())


def resolve_thresholds(labels: list[str], *, task: str, default: float, threshold: float | None,
                       checkpoint: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """The call threshold of each label, and where it came from.

    In order: ``threshold`` when given (``--threshold``); else the checkpoint's own per-label
    threshold, ``checkpoint["thresholds"][label]`` (``genaannot.json``, written by
    ``genaannot train`` / ``genaannot evaluate --write-thresholds``; only used when the
    checkpoint was trained for ``task``); else ``default`` (the task's).

    Returns
    -------
    thresholds : dict of label -> float
    source : dict of label -> ``"--threshold"`` | ``"checkpoint"`` | ``"task default"``
    """
    if threshold is not None:
        return {lab: float(threshold) for lab in labels}, {lab: "--threshold" for lab in labels}
    own = (checkpoint.get("thresholds") or {}) if checkpoint.get("task") == task else {}
    thresholds, source = {}, {}
    for lab in labels:
        if isinstance(own.get(lab), (int, float)):
            thresholds[lab], source[lab] = float(own[lab]), "checkpoint"
        else:
            thresholds[lab], source[lab] = float(default), "task default"
    return thresholds, source


def threshold_mismatch(checkpoint: dict[str, Any], *, overlap: float, stitch_mode: str) -> str | None:
    """A warning when the checkpoint's call thresholds were chosen for other scan settings.

    ``genaannot evaluate --write-thresholds`` records the ``--overlap``/``--stitch`` it
    evaluated with (``threshold_selection.scan_settings``); thresholds written before that
    was recorded were chosen with :data:`DEFAULT_SCAN_SETTINGS`.
    """
    chosen = (checkpoint.get("threshold_selection") or {}).get("scan_settings") or DEFAULT_SCAN_SETTINGS
    c_ov, c_st = float(chosen.get("overlap", 0.5)), str(chosen.get("stitch", "center"))
    if abs(c_ov - overlap) < 1e-9 and c_st == stitch_mode:
        return None
    return (f"the checkpoint's call thresholds were chosen on scans with --stitch {c_st} --overlap {c_ov:g}; "
            f"this scan uses --stitch {stitch_mode} --overlap {overlap:g}, so calls may be miscalibrated. "
            f"Re-choose them on validation data with `genaannot evaluate --write-thresholds --stitch {stitch_mode} "
            f"--overlap {overlap:g} ...`, or pass --threshold.")
