"""Evaluation reports on disk: ``STEM.json`` (metrics) and ``STEM.png`` (precision-recall figure).

Both files are written to a temporary name in the output directory and moved into place
(:mod:`genaannot.io.atomic`), so a failed run never leaves a half-written report. The figure
arrives as PNG bytes: drawing it is :mod:`genaannot.plot`'s business, not io's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .atomic import write_bytes_atomic, write_text_atomic

__all__ = ["write_evaluation"]


def write_evaluation(data: dict[str, Any], png: bytes, directory: str | Path, *, stem: str = "REPORT") -> tuple[Path, Path]:
    """Write ``directory/STEM.json`` (``data``, numpy floats as floats) and ``directory/STEM.png``.

    Parameters
    ----------
    data : dict
        JSON-serialisable report (numpy scalars are converted with ``float``).
    png : bytes
        The figure, already rendered (e.g. :func:`genaannot.plot.figure_bytes`).
    directory : str or Path
        Created when missing.
    stem : str
        File name without suffix.

    Returns
    -------
    (Path, Path)
        The JSON and PNG paths.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    js = directory / f"{stem}.json"
    write_text_atomic(js, json.dumps(data, indent=2, default=float) + "\n")
    return js, write_bytes_atomic(directory / f"{stem}.png", png)
