"""Tokenizer files on disk: ``tokenizer.json`` (BPE), ``special_tokens_map.json`` and
``tokenizer_config.json`` in a checkpoint directory.

The tokenizer classes (:mod:`genaannot.tokenize`) are built from text and give their files
as text; this module reads and writes those files. Writes are atomic and files get the mode
a plain ``open`` would give (``0o666`` minus the umask), as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..tokenize import BPETokenizer, DNATokenizer, TokenizerError
from .atomic import write_bytes_atomic

__all__ = [
    "TOKENIZER_JSON",
    "TOKENIZER_CONFIG",
    "read_tokenizer_json",
    "read_bpe_tokenizer",
    "load_tokenizer",
    "read_tokenizer_config",
    "write_tokenizer_files",
    "write_tokenizer_json",
]

#: the Hugging Face tokenizers file of a checkpoint
TOKENIZER_JSON = "tokenizer.json"
#: transformers' tokenizer settings (HyenaDNA keeps its vocabulary's ids there)
TOKENIZER_CONFIG = "tokenizer_config.json"


def read_tokenizer_json(path: str | Path) -> str:
    """The text of a ``tokenizer.json`` (UTF-8, as ``tokenizers`` writes it)."""
    return Path(path).read_text(encoding="utf-8")


def read_bpe_tokenizer(path: str | Path, *, name: str | None = None) -> BPETokenizer:
    """The BPE tokenizer of a ``tokenizer.json`` file.

    Parameters
    ----------
    path : str or Path
        The ``tokenizer.json`` itself.
    name : str, optional
        Default: the name of its directory.
    """
    path = Path(path)
    return BPETokenizer.from_json(read_tokenizer_json(path), name=path.parent.name if name is None else name, path=path)


def load_tokenizer(directory: str | Path) -> DNATokenizer:
    """The tokenizer stored in a checkpoint directory (its ``tokenizer.json``).

    Parameters
    ----------
    directory : str or Path
        A directory holding ``tokenizer.json``, or the file itself.

    Raises
    ------
    TokenizerError
        There is no ``tokenizer.json``.
    """
    directory = Path(directory)
    path = directory / TOKENIZER_JSON if directory.is_dir() else directory
    if not path.is_file():
        raise TokenizerError(
            f"no tokenizer.json in {directory}; copy the checkpoint's tokenizer files there "
            "or pass --tokenizer DIR"
        )
    return read_bpe_tokenizer(path)


def read_tokenizer_config(directory: str | Path) -> dict[str, Any] | None:
    """``directory/tokenizer_config.json`` parsed, or None when there is none.

    Raises
    ------
    TokenizerError
        The file is not valid JSON (the message names it).
    """
    path = Path(directory) / TOKENIZER_CONFIG
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TokenizerError(f"{path}: not valid JSON ({err})") from None


def write_tokenizer_files(directory: str | Path, tokenizer: DNATokenizer) -> Path:
    """Write ``tokenizer.files()`` into ``directory`` (created when missing), each file atomically.

    Returns
    -------
    Path
        ``directory``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in tokenizer.files().items():
        write_bytes_atomic(directory / name, text.encode("utf-8"), mode=None, check=False)
    return directory


def write_tokenizer_json(directory: str | Path, text: str) -> Path:
    """Write ``directory/tokenizer.json`` (directory created when missing); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(directory / TOKENIZER_JSON, text.encode(), mode=None, check=False)
