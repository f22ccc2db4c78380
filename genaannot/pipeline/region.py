"""``predict_region``: one region's per-base values in memory, as a whole-genome scan gives them.

Coordinates are 0-based, half-open; region strings are 1-based inclusive (samtools).

The region is tiled exactly as :func:`genaannot.pipeline.scan.scan_genome` tiles its
chromosome in a whole-genome (or ``--chrom``) scan: the same layout (runs of N of at least
``min_gap`` bp skipped), the same work units and halos, the same token windows and
stitching (:func:`genaannot.span.plan_span` with ``part``), so that the values equal the
scan's bigWig tracks over the region (written with ``track_digits=None``; equal bits when
the windows are batched alike, e.g. ``batch_size=1`` in both, else equal up to float
rounding of padded batches). Only the windows that give values to the region's bases go
through the model; its work unit (up to 1 Mb) is read and tokenised to place them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..readout import resolve_readout
from ..regions import Interval, RegionError, parse_region
from ..span import plan_span, predict_span, scan_layout, stitch_span
from ..tasks import Task, get_task
from .workers import default_threads, torch_threads

if TYPE_CHECKING:
    import pandas

    from ..io.fasta import Genome
    from ..models.base import Model

__all__ = ["predict_region", "RegionPrediction", "STRAND_NAMES"]

#: strand → the word used in track file names and :meth:`RegionPrediction.to_frame` columns
STRAND_NAMES = {"+": "plus", "-": "minus"}


@dataclass
class RegionPrediction:
    """Per-base model values over one region (what :func:`predict_region` returns).

    Attributes
    ----------
    chrom : str
        The FASTA's name of the sequence.
    start, end : int
        0-based half-open extent; ``L = end - start``.
    values : dict[(label, strand), float32 ndarray [L]]
        Activated values per base (probabilities for sigmoid/softmax tasks), forward
        coordinates: ``values[("acceptor", "-")][i]`` is base ``start + i`` of the minus-strand
        acceptor track. NaN where a scan has no data (runs of N of at least ``min_gap`` bp).
    labels : tuple of str
    strands : tuple of str
        ``("+", "-")``, ``("+",)`` or ``("-",)``.
    task : str
    settings : dict
        Window tokens, overlap, stitch mode, ``min_gap``, ``unit_bp`` and the windows run.
    """

    chrom: str
    start: int
    end: int
    values: dict[tuple[str, str], np.ndarray]
    labels: tuple[str, ...]
    strands: tuple[str, ...]
    task: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def interval(self) -> Interval:
        return Interval(self.chrom, self.start, self.end)

    def ucsc(self) -> str:
        """``chrom:start-end``, 1-based inclusive."""
        return self.interval.ucsc()

    def to_frame(self) -> pandas.DataFrame:
        """One row per base: ``chrom``, ``start`` (0-based), ``pos`` (1-based) and a column
        ``<label>_<plus|minus>`` per track (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas comes with the notebook stack
            raise ImportError("RegionPrediction.to_frame() needs pandas (pip install pandas); "
                              "the arrays are in .values") from None
        start = np.arange(self.start, self.end, dtype=np.int64)
        cols: dict[str, Any] = {"chrom": np.full(len(start), self.chrom, dtype=object), "start": start,
                                "pos": start + 1}
        for (label, strand), v in self.values.items():
            cols[f"{label}_{STRAND_NAMES[strand]}"] = v
        return pd.DataFrame(cols)


def predict_region(
    model: Model | str | Path,
    genome: str | Path | Genome,
    region: str | Interval,
    *,
    task: str | Task,
    strand: str | None = None,
    labels: list[str] | None = None,
    window_tokens: int | None = None,
    overlap: float = 0.5,
    stitch: str = "center",
    batch_size: int = 8,
    min_gap: int | None = None,
    unit_bp: int | None = None,
    device: str | None = None,
    precision: str = "fp32",
    threads: int | None = None,
    model_options: dict[str, Any] | None = None,
) -> RegionPrediction:
    """Per-base values of a model over one region, as a whole-genome ``scan`` computes them.

    The recommended way to look at a model's output from Python: unlike
    :meth:`Model.predict <genaannot.models.base.Model.predict>` (raw logits of one input, cut
    at the model's capacity), the region gets the windows, context, activation and stitching
    of ``genaannot scan`` (same arguments, same defaults), so its values equal the scan's
    tracks (unrounded, ``--track-digits full``) over the region.

    Parameters
    ----------
    model
        A loaded model (:func:`genaannot.load_model`; load it once for many regions), or a
        path / catalogue name / hub id loaded here with ``device``, ``precision`` and
        ``model_options``.
    genome
        FASTA path (plain or bgzipped) or an open :class:`~genaannot.io.fasta.Genome`.
    region
        ``"Chr5:4,400-4,600"`` (1-based inclusive, samtools style; ``"Chr5"`` for a whole
        sequence; ``5``/``chr5`` aliases resolved) or an :class:`~genaannot.regions.Interval`
        (0-based half-open).
    task, strand, labels, window_tokens, overlap, stitch, batch_size, min_gap, unit_bp
        As :func:`genaannot.scan_genome` takes them; use the scan's values to reproduce it.
        ``min_gap`` and ``unit_bp`` decide the layout of the region's whole chromosome (which
        is read once, in chunks, to find its runs of N).
    threads
        torch's CPU threads (None: the free cores; restored when the call returns).

    Returns
    -------
    RegionPrediction
        ``.values[(label, strand)]``: float32 ``[end - start]``; ``.to_frame()`` for pandas.

    Raises
    ------
    RegionError
        A region that cannot be parsed or does not fit the genome.
    ReadoutError
        Settings that do not fit the model (labels, strand, window size, head vs task).
    """
    from ..io.fasta import Genome, open_genome
    from ..stitch import STITCH_MODES

    task_obj = get_task(task) if isinstance(task, str) else task
    if stitch not in STITCH_MODES:
        raise ValueError(f"stitch must be one of {', '.join(STITCH_MODES)}, not {stitch!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), not {overlap}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    own = not isinstance(genome, Genome)
    gen = open_genome(genome) if own else genome
    try:
        sizes = gen.sizes
        if isinstance(region, Interval):
            if region.chrom not in sizes or region.end > sizes[region.chrom] or len(region) == 0:
                raise RegionError(f"region {region.ucsc()} does not fit the genome")
            iv = region
        else:
            iv = parse_region(str(region), sizes=sizes)
        if not hasattr(model, "predict_encoded"):
            from ..models import load_model

            model = load_model(model, device=device, dtype=precision, **(model_options or {}))
        readout = resolve_readout(task_obj, model.info, labels=labels, strand=strand, window_tokens=window_tokens)
        # the layout of the whole chromosome: what a whole-genome scan cuts into units
        layout = scan_layout(gen, [Interval(iv.chrom, 0, sizes[iv.chrom])], tokenizer=model.tokenizer,
                             readout=readout, min_gap=min_gap, unit_bp=unit_bp)
        values = {s: np.full((len(iv), len(readout.labels)), np.nan, dtype=np.float32) for s in readout.strands}
        n_windows = 0
        with torch_threads(threads or default_threads(workers=0, device=str(model.device))):
            for unit in layout.units:
                a, b = max(unit.start, iv.start), min(unit.end, iv.end)
                if a >= b:
                    continue
                work = plan_span(unit, fetch=lambda s, e: gen.fetch(iv.chrom, s, e), tokenizer=model.tokenizer,
                                 readout=readout, overlap=overlap, stitch_mode=stitch, part=(a, b))
                preds = predict_span(work, predictor=model.predict_encoded, readout=readout, batch_size=batch_size)
                n_windows += sum(len(p) for p in preds.values())
                for s, v in stitch_span(work, preds, readout=readout, stitch_mode=stitch).items():
                    values[s][a - iv.start : b - iv.start] = v
    finally:
        if own:
            gen.close()
    out = {(lab, s): np.ascontiguousarray(values[s][:, k]) for k, lab in enumerate(readout.labels)
           for s in readout.strands}
    return RegionPrediction(iv.chrom, iv.start, iv.end, out, tuple(readout.labels), tuple(readout.strands),
                            task_obj.name, {"window_tokens": readout.window_tokens, "overlap": overlap,
                                            "stitch": stitch, "min_gap_bp": layout.min_gap, "unit_bp": layout.unit_bp,
                                            "windows": n_windows})
