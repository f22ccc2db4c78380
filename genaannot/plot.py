"""Figures (matplotlib): a region figure (signal tracks on both strands, calls and gene
models) and the precision-recall figure of an evaluation report.

Pure: arrays in, a :class:`matplotlib.figure.Figure` out, and :func:`figure_bytes` to render
it (PNG, PDF, SVG) for an io writer (:func:`genaannot.io.atomic.write_bytes_atomic`,
:func:`genaannot.io.evaluation.write_evaluation`). Tracks of one label share a panel: the plus strand
is drawn upwards, the minus strand mirrored downwards, in the label's colour (minus in a
lighter shade, as in the hub). Coordinates are 0-based half-open; axis ticks show 1-based
positions like genome browsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .hub import label_colour

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .io.annotation import Transcript

__all__ = ["Track", "Call", "track_identity", "region_figure", "pr_figure", "figure_bytes"]


@dataclass
class Track:
    """Values of one track over the plotted region.

    Attributes
    ----------
    label : str
        Panel name; tracks with the same label share a panel.
    strand : "+" | "-" | "."
    values : float [end - start]
        NaN where the track has no data.
    """

    label: str
    strand: str
    values: np.ndarray


@dataclass(frozen=True)
class Call:
    """A called interval (0-based half-open)."""

    start: int
    end: int
    strand: str
    name: str
    value: float


_STRANDED = re.compile(r"^(?P<stem>.*?)\.(?:(?P<label>[^.]+)\.)?(?P<strand>plus|minus)$")


def track_identity(filename: str) -> tuple[str, str]:
    """``OUT.acceptor.plus.bw`` → ``("acceptor", "+")``; ``OUT.bw`` → ``("OUT", ".")``."""
    stem = re.sub(r"\.(bw|bigwig|bigWig)$", "", filename)
    m = _STRANDED.match(stem)
    if m:
        return (m.group("label") or m.group("stem")), "+" if m.group("strand") == "plus" else "-"
    return stem.rsplit("/", 1)[-1], "."


def region_figure(
    *,
    chrom: str,
    start: int,
    end: int,
    tracks: list[Track],
    calls: list[Call] | None = None,
    transcripts: list[Transcript] | None = None,
    title: str | None = None,
    width: float = 11.0,
) -> Figure:
    """Stack one panel per track label, then calls, then gene models, on a shared x axis.

    Parameters
    ----------
    tracks : list[Track]
        Each ``values`` has ``end - start`` entries.
    calls : list[Call], optional
    transcripts : list[Transcript], optional
        Drawn with exons as boxes, introns as lines, strand as arrowheads.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    labels = list(dict.fromkeys(t.label for t in tracks))
    n_gene_rows = max(1, len(transcripts or []))
    heights = [1.6] * len(labels) + ([0.5] if calls is not None else []) + ([0.35 * n_gene_rows + 0.3] if transcripts is not None else [])
    if not heights:
        raise ValueError("nothing to plot: no tracks, calls or transcripts")
    fig = Figure(figsize=(width, 0.9 + sum(heights)), layout="constrained")
    axes = fig.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    x = np.arange(start, end) + 0.5
    for ax, lab in zip(axes, labels):
        idx = labels.index(lab)
        stranded = False
        for t in (t for t in tracks if t.label == lab):
            v = np.asarray(t.values, dtype=float)
            if v.shape[0] != end - start:
                raise ValueError(f"track {lab} {t.strand}: {v.shape[0]} values for {end - start} bp")
            col = np.array(label_colour(idx, t.strand)) / 255
            sign = -1.0 if t.strand == "-" else 1.0
            stranded |= t.strand in "+-"
            vv = sign * np.nan_to_num(v, nan=0.0)
            ax.fill_between(x, 0, vv, step="mid", color=col, alpha=0.85, linewidth=0,
                            label={"+": "plus", "-": "minus"}.get(t.strand, lab))
        ax.axhline(0, color="0.5", linewidth=0.5)
        ax.set_ylabel(lab, rotation=0, ha="right", va="center")
        if stranded:
            lim = max(1e-9, max(np.nanmax(np.abs(t.values)) if np.isfinite(t.values).any() else 0 for t in tracks if t.label == lab))
            ax.set_ylim(-lim * 1.05, lim * 1.05)
            ax.yaxis.set_major_formatter(lambda v, _pos: f"{abs(v):g}")  # minus drawn downwards, values positive
            ax.legend(loc="upper right", fontsize=7, frameon=False, ncol=2)
        ax.spines[["top", "right"]].set_visible(False)
    k = len(labels)
    if calls is not None:
        ax = axes[k]
        k += 1
        for c in calls:
            s, e = max(c.start, start), min(c.end, end)
            if e <= s:
                continue
            col = "0.25" if c.strand != "-" else "0.55"
            y = 0.55 if c.strand != "-" else 0.05
            ax.add_patch(Rectangle((s, y), e - s, 0.4, color=col, linewidth=0))
        ax.set_ylim(0, 1)
        ax.set_yticks([0.25, 0.75], ["−", "+"], fontsize=8)
        ax.set_ylabel("calls", rotation=0, ha="right", va="center")
        ax.spines[["top", "right"]].set_visible(False)
    if transcripts is not None:
        ax = axes[k]
        for row, tx in enumerate(transcripts):
            y = n_gene_rows - row - 0.5
            ax.plot([max(tx.start, start), min(tx.end, end)], [y, y], color="0.3", linewidth=0.8)
            for a, b in tx.exons:
                if b > start and a < end:
                    ax.add_patch(Rectangle((a, y - 0.3), b - a, 0.6, color="0.15", linewidth=0))
            span = min(tx.end, end) - max(tx.start, start)
            if span > 0:
                marker = ">" if tx.strand == "+" else "<"
                xs = np.linspace(max(tx.start, start), min(tx.end, end), max(2, int(12 * span / (end - start))) + 2)[1:-1]
                ax.plot(xs, np.full(len(xs), y), linestyle="none", marker=marker, markersize=3, color="0.3")
            ax.text(max(tx.start, start), y + 0.33, tx.id, fontsize=7, va="bottom")
        ax.set_ylim(0, n_gene_rows + 0.2)
        ax.set_yticks([])
        ax.set_ylabel("genes", rotation=0, ha="right", va="center")
        ax.spines[["top", "right", "left"]].set_visible(False)
        if not transcripts:
            ax.text(0.5, 0.5, "no genes in region", transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.5")
    axes[-1].set_xlim(start, end)
    axes[-1].xaxis.set_major_formatter(lambda v, _pos: f"{int(v) + 1:,}")
    axes[-1].set_xlabel(f"{chrom} (1-based position)")
    fig.suptitle(title or f"{chrom}:{start + 1:,}-{end:,}", fontsize=11)
    return fig


def pr_figure(
    *,
    task: str,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    metrics: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]] | None = None,
    title: str = "",
) -> Figure:
    """Precision-recall curves, one panel per site type / label (an evaluation report's PNG).

    Parameters
    ----------
    task : str
        Panel titles read ``"{task}: {kind}"``.
    curves : dict of str -> (precision float [m], recall float [m])
        Keyed ``"{who} {kind}"`` with ``who`` = ``model`` or ``PWM``; empty curves are skipped.
    metrics, baseline : dict of kind -> metric dict
        ``average_precision`` of the model (``model`` curves) / the baseline (other curves),
        shown in the legend.
    title : str
        Figure title (cut at 90 characters).
    """
    from matplotlib.figure import Figure

    baseline = baseline or {}
    kinds = sorted({name.split(" ", 1)[1] for name in curves})
    n = max(1, len(kinds))
    fig = Figure(figsize=(4.2 * n, 4), layout="tight")
    axes = fig.subplots(1, n, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for name, (prec, rec) in curves.items():
            who, k = name.split(" ", 1)
            if k != kind or prec.size == 0:
                continue
            src = metrics if who == "model" else baseline
            ap = src.get(k, {}).get("average_precision", float("nan"))
            ax.step(rec, prec, where="post", label=f"{who} (AP {ap:.3f})")
        ax.set_title(f"{task}: {kind}")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        if ax.get_legend_handles_labels()[0]:  # nothing to plot (no sites): no legend, no warning
            ax.legend(loc="lower left", fontsize=8)
    fig.suptitle(title[:90], fontsize=8)
    return fig


def figure_bytes(fig: Figure, *, fmt: str = "png", dpi: int = 150) -> bytes:
    """The figure rendered as a file's contents.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    fmt : str
        Any format matplotlib writes (``png``, ``pdf``, ``svg``); a leading ``.`` is ignored,
        so an output's suffix can be passed as it is; empty means ``png``.
    dpi : int
        Resolution of raster formats.
    """
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=fmt.lstrip(".").lower() or "png", dpi=dpi)
    return buf.getvalue()
