"""Opening text inputs that may be gzip-compressed: the one place where compression is sniffed.

Compression is recognised by the file's first bytes, never by its name: a ``.gz`` file that
is plain text is read as plain text, and a gzipped file without ``.gz`` is decompressed.
BGZF (what ``bgzip`` writes, and what htslib can index) is gzip with an extra ``BC``
subfield; :func:`is_bgzf` tells it apart from plain gzip.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = ["GZIP_MAGIC", "is_gzip", "is_bgzf", "open_text", "package_text", "text_errors"]

#: the first two bytes of every gzip (and so BGZF) file
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    """Whether ``path`` starts with the gzip magic bytes (gzip or BGZF)."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def is_bgzf(path: str | Path) -> bool:
    """Whether ``path`` is BGZF: gzip with the FEXTRA flag and a ``BC`` subfield (what bgzip writes)."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    return len(head) >= 18 and head[:2] == GZIP_MAGIC and bool(head[3] & 4) and head[12:14] == b"BC"


def open_text(path: str | Path, *, encoding: str = "utf-8", errors: str = "strict") -> TextIO:
    """Open ``path`` for reading text, decompressing it when it is gzip (or BGZF).

    Parameters
    ----------
    path : str or Path
    encoding : str
    errors : str
        As for :func:`open` (``"replace"`` reads damaged bytes as U+FFFD).

    Returns
    -------
    TextIO
        To be closed by the caller (use it in a ``with`` block). A UTF-8 byte-order mark at
        the start (what Windows editors write) is not part of the text: ``utf-8`` is read as
        ``utf-8-sig``, which drops it and is plain UTF-8 otherwise.
    """
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # a BOM would otherwise glue U+FEFF to the first column ('\ufeffchr1')
    if is_gzip(path):
        return gzip.open(path, "rt", encoding=encoding, errors=errors)
    return open(path, encoding=encoding, errors=errors)  # noqa: SIM115 - the caller closes it


@contextlib.contextmanager
def text_errors(path: str | Path, error: type[Exception], *, what: str) -> Iterator[None]:
    """Turn what reading a damaged text file raises into ``error`` naming ``path``.

    Bytes that are not UTF-8 (a binary file) and a truncated or damaged gzip file (Python's
    ``EOFError``, ``BadGzipFile`` or ``zlib.error``) become one line saying what to do.

    Parameters
    ----------
    path : str or Path
        The file read in the block.
    error : type
        The reader's typed error (e.g. ``BedError``); called with the message.
    what : str
        What the file should be, e.g. ``"BED"``.
    """
    try:
        yield
    except UnicodeDecodeError:
        raise error(f"{path}: not a {what} text file (it holds bytes that are not UTF-8 text: binary or "
                    "another encoding); give the right file, or convert it to UTF-8") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise error(f"{path}: the gzip-compressed {what} file is truncated or damaged ({err}); "
                    "download or compress it again") from None


def package_text(name: str) -> str:
    """A text file shipped inside the package (``genaannot/data/...``), e.g.
    ``"data/deepsea_predictor_names.txt"``; works from a wheel or a source checkout."""
    from importlib import resources

    return resources.files("genaannot").joinpath(name).read_text(encoding="utf-8")
