"""genaannot: annotate genomes and score variants with DNA language models.

Public API (imported lazily so that ``import genaannot`` and ``genaannot --help`` stay fast):

- :func:`load_model` — any supported checkpoint → :class:`~genaannot.models.base.Model`
- :func:`scan_genome` — FASTA → bigWig/BED tracks
- :func:`score_variants` — VCF → annotated VCF (+ TSV)
- :func:`predict_region` — one region's per-base values in memory, as ``scan`` computes them
- :func:`read_track` — a bigWig track's values over a region
- :func:`train_genome` — FASTA + GFF3/GTF → trained checkpoint, call thresholds, held-out report
- :func:`evaluate_checkpoint` — checkpoint + FASTA + GFF3/GTF → held-out report (+ call thresholds)

Coordinates are 0-based, half-open everywhere inside the package.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_model": "genaannot.models:load_model",
    "Prediction": "genaannot.models.base:Prediction",
    "Model": "genaannot.models.base:Model",
    "scan_genome": "genaannot.pipeline:scan_genome",
    "score_variants": "genaannot.pipeline:score_variants",
    "predict_region": "genaannot.pipeline.region:predict_region",
    "RegionPrediction": "genaannot.pipeline.region:RegionPrediction",
    "read_track": "genaannot.io.tracks:read_track",
    "train_genome": "genaannot.pipeline.train:train_genome",
    "evaluate_checkpoint": "genaannot.pipeline.train:evaluate_checkpoint",
    "get_task": "genaannot.tasks:get_task",
    "TASKS": "genaannot.tasks:TASKS",
}

__all__ = ["__version__", *_LAZY]


def __dir__() -> list[str]:
    # the lazily loaded API as well: dir(), help() and tab completion list it
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name].split(":")
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'genaannot' has no attribute {name!r}")
