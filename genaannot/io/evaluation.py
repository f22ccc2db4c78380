"""Evaluation reports on disk: ``STEM.json`` (metrics) and ``STEM.png`` (precision-recall figure).

Both files are written to a temporary name in the output directory and moved into place, so
a failed run never leaves a half-written report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report import save_figure
from .tracks import write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_evaluation"]


def write_evaluation(
    data: dict[str, Any], figure: Figure, directory: str | Path, *, stem: str = "REPORT", dpi: int = 110
) -> tuple[Path, Path]:
    """Write ``directory/STEM.json`` (``data``, numpy floats as floats) and ``directory/STEM.png``.

    Parameters
    ----------
    data : dict
        JSON-serialisable report (numpy scalars are converted with ``float``).
    figure : matplotlib.figure.Figure
        Saved as PNG at ``dpi``.
    directory : str or Path
        Created when missing.

    Returns
    -------
    (Path, Path)
        The JSON and PNG paths.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    js = directory / f"{stem}.json"
    write_text_atomic(js, json.dumps(data, indent=2, default=float) + "\n")
    png = save_figure(figure, directory / f"{stem}.png", dpi=dpi)
    return js, png
