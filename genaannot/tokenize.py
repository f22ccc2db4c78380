"""DNA tokenizers with base-pair spans.

Every content token gets a 0-based half-open span ``[start, end)`` into the sequence that
was encoded. Spans are contiguous and cover the input exactly: the raw offsets of the GENA
tokenizers cover only the last ``N`` of a gap token ``-`` (a run of >= 10 N); here the gap
token's span starts where the previous token ended.

Case and IUPAC policy
---------------------
Input is upper-cased first (the GENA tokenizers have no case folding, so soft-masked
lower-case bases would each become ``[UNK]``). IUPAC ambiguity letters are passed through
unchanged: the t2t vocabulary has R, Y, K, M, S, W, B; D, H, V and any other letter become
``[UNK]`` with a one-letter span. Letters other than A, C, G, T, N are counted in
:class:`SequenceStats` so that runs can report them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Encoding", "SequenceStats", "DNATokenizer", "BPETokenizer", "load_tokenizer", "TokenizerError"]

_ACGTN = frozenset("ACGTN")


class TokenizerError(ValueError):
    """The tokenizer files are missing or unusable."""


@dataclass
class SequenceStats:
    """Letters seen while encoding (after upper-casing)."""

    lowercase: int = 0
    iupac: Counter = field(default_factory=Counter)

    def update(self, seq: str) -> str:
        """Count ``seq``'s soft-masked and non-ACGTN letters and return it upper-cased."""
        up = seq.upper()
        if up != seq:
            self.lowercase += sum(1 for c in seq if c.islower())
        if not _ACGTN.issuperset(up):
            self.iupac.update(c for c in up if c not in _ACGTN)
        return up

    def merge(self, other: SequenceStats) -> None:
        self.lowercase += other.lowercase
        self.iupac.update(other.iupac)


@dataclass
class Encoding:
    """Content tokens of one sequence (no special tokens).

    Attributes
    ----------
    ids : int64 [n_tokens]
    spans : int64 [n_tokens, 2]
        0-based half-open base-pair spans into the encoded sequence; contiguous,
        ``spans[0, 0] == 0`` and ``spans[-1, 1] == len(sequence)``.
    """

    ids: np.ndarray
    spans: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class DNATokenizer:
    """Interface shared by all tokenizers (BPE, character-level)."""

    name: str = ""
    cls_id: int | None = None
    sep_id: int | None = None
    pad_id: int = 0
    unk_id: int = 0
    vocab_size: int = 0
    #: upper bound of base pairs per token, used to size windows before tokenising
    max_token_bp: int = 1

    def encode(self, seq: str, *, stats: SequenceStats | None = None) -> Encoding:
        return self.encode_batch([seq], stats=stats)[0]

    def encode_batch(self, seqs: list[str], *, stats: SequenceStats | None = None) -> list[Encoding]:
        raise NotImplementedError

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError


def _contiguous(offsets: np.ndarray) -> np.ndarray:
    """Repair raw offsets into contiguous spans: each token starts where the previous ended."""
    spans = np.empty((offsets.shape[0], 2), dtype=np.int64)
    if offsets.shape[0] == 0:
        return spans
    ends = offsets[:, 1].astype(np.int64)
    spans[:, 1] = ends
    spans[0, 0] = 0
    spans[1:, 0] = ends[:-1]
    return spans


class BPETokenizer(DNATokenizer):
    """A Hugging Face ``tokenizer.json`` (GENA-LM BPE tokenizers, or one trained by genaannot)."""

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        self.path = path
        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_truncation()
        self._tok.no_padding()
        vocab = self._tok.get_vocab()
        self.vocab_size = self._tok.get_vocab_size()
        self.name = path.parent.name
        self.cls_id = vocab.get("[CLS]")
        self.sep_id = vocab.get("[SEP]")
        self.pad_id = vocab.get("[PAD]", 0)
        self.unk_id = vocab.get("[UNK]", 0)
        self.mask_id = vocab.get("[MASK]")
        self.gap_id = vocab.get("-")
        self.max_token_bp = max((len(k) for k in vocab if not k.startswith("[")), default=1)
        if self.cls_id is None or self.sep_id is None:
            raise TokenizerError(f"{path}: tokenizer has no [CLS]/[SEP] tokens")

    def encode_batch(self, seqs: list[str], *, stats: SequenceStats | None = None) -> list[Encoding]:
        ups = [stats.update(s) if stats is not None else s.upper() for s in seqs]
        encs = self._tok.encode_batch(ups, add_special_tokens=False)
        out = []
        for up, enc in zip(ups, encs):
            ids = np.asarray(enc.ids, dtype=np.int64)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
            spans = _contiguous(offsets)
            if ids.size and (spans[-1, 1] != len(up) or np.any(spans[:, 1] <= spans[:, 0])):
                raise TokenizerError(
                    f"tokenizer {self.name}: offsets do not cover the sequence "
                    f"(last end {spans[-1, 1]}, length {len(up)}); does it contain whitespace?"
                )
            out.append(Encoding(ids, spans))
        return out

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(directory / "tokenizer.json"))
        (directory / "special_tokens_map.json").write_text(
            json.dumps(
                {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
            )
        )
        (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))


def load_tokenizer(directory: str | Path) -> DNATokenizer:
    """Load the tokenizer stored in a checkpoint directory (``tokenizer.json``)."""
    directory = Path(directory)
    path = directory / "tokenizer.json" if directory.is_dir() else directory
    if not path.is_file():
        raise TokenizerError(
            f"no tokenizer.json in {directory}; copy the checkpoint's tokenizer files there "
            "or pass --tokenizer DIR"
        )
    return BPETokenizer(path)
