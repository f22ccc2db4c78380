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
    """The text of a ``tokenizer.json`` (UTF-8, as ``tokenizers`` writes it).

    Raises
    ------
    TokenizerError
        The file is a git-lfs pointer, unreadable, not JSON, or not a JSON object with a
        ``model`` object (the message names the file and what to do).
    """
    from .weights import LFS_POINTER_START

    path = Path(path)
    fix = f"copy the model's own tokenizer.json there or pass {_TOKENIZER_OPTION}"
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TokenizerError(f"{path}: cannot read ({err.strerror or err})") from None
    if raw.startswith(LFS_POINTER_START):
        raise TokenizerError(f"{path} is a git-lfs pointer, not the file itself: run `git lfs pull` in {path.parent} "
                             f"(or download with `hf download OWNER/NAME --local-dir {path.parent}`)")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except UnicodeDecodeError:
        raise TokenizerError(f"{path}: not a text file (not UTF-8); {fix}") from None
    except json.JSONDecodeError as err:
        raise TokenizerError(f"{path}: not valid JSON ({err}); {fix}") from None
    if not isinstance(value, dict) or not isinstance(value.get("model"), dict):
        raise TokenizerError(f"{path}: not a Hugging Face tokenizers file (no \"model\" object); {fix}")
    return text


def read_bpe_tokenizer(path: str | Path, *, name: str | None = None) -> BPETokenizer:
    """The BPE tokenizer of a ``tokenizer.json`` file.

    Parameters
    ----------
    path : str or Path
        The ``tokenizer.json`` itself.
    name : str, optional
        Default: the name of its directory.

    Raises
    ------
    TokenizerError
        The file is not a usable tokenizer (the message names it).
    """
    path = Path(path)
    text = read_tokenizer_json(path)
    try:
        return BPETokenizer.from_json(text, name=path.parent.name if name is None else name, path=path)
    except TokenizerError:
        raise
    except Exception as err:  # noqa: BLE001 - the tokenizers library raises its own, untyped errors
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise TokenizerError(f"{path}: not a usable tokenizer ({first}); copy the model's own tokenizer.json there "
                             f"or pass {_TOKENIZER_OPTION}") from None


#: how a tokenizer directory is given where a checkpoint lacks one, per entry point
_TOKENIZER_OPTION = ("the tokenizer's directory: --model-option tokenizer=DIR (scan, score, models inspect), "
                     "--tokenizer DIR (train), tokenizer=DIR (load_model)")


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
            f"or pass {_TOKENIZER_OPTION}"
        )
    return read_bpe_tokenizer(path)


def read_tokenizer_config(directory: str | Path) -> dict[str, Any] | None:
    """``directory/tokenizer_config.json`` parsed, or None when there is none.

    Raises
    ------
    TokenizerError
        The file is not a JSON object (the message names it).
    """
    path = Path(directory) / TOKENIZER_CONFIG
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TokenizerError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise TokenizerError(f"{path}: expected a JSON object {{...}}, found {type(value).__name__}")
    return value


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
