"""Tab-separated tables (one header line, then rows), written atomically.

Floats are written with 6 significant digits; missing values (``None``, NaN) as ``NA``.
The file is written through :class:`genaannot.io.atomic.AtomicFile` and gets the mode a
plain ``open`` would give (``0o666`` minus the umask).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from .atomic import AtomicFile

__all__ = ["TableWriter", "TableError", "format_value"]


class TableError(OSError):
    """A table that cannot be written."""


def format_value(v: object) -> str:
    if v is None:
        return "NA"
    if isinstance(v, float) or type(v).__name__.startswith("float"):
        f = float(v)  # type: ignore[arg-type]
        return "NA" if math.isnan(f) else f"{f:.6g}"
    return str(v)


class TableWriter:
    """Write a TSV to ``path`` (``-``: standard output) via a temporary file.

    Parameters
    ----------
    path : str or Path
    columns : sequence of str
    """

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = str(path)
        self.columns = list(columns)
        self._file: AtomicFile | None = None
        if self.path == "-":
            self._fh = sys.stdout
        else:
            final = Path(self.path)
            if not final.parent.is_dir():
                raise TableError(f"{final}: output directory {final.parent} does not exist")
            self._file = AtomicFile(final, mode=None, check=False)
            self._fh = open(self._file.tmp, "w")  # noqa: SIM115 - closed in close/abort
        self._fh.write("\t".join(self.columns) + "\n")

    def write_row(self, values: Sequence[object]) -> None:
        if len(values) != len(self.columns):
            raise TableError(f"{self.path}: row has {len(values)} values for {len(self.columns)} columns")
        self._fh.write("\t".join(format_value(v) for v in values) + "\n")

    def close(self) -> None:
        if self._file is None:
            self._fh.flush()
            return
        self._fh.close()
        self._file.commit()
        self._file = None

    def abort(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._fh.close()
            self._file.abort()
            self._file = None
