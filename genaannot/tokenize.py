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
:class:`SequenceStats` so that runs can report them. (Sequences read from a FASTA hold IUPAC
letters only: :meth:`genaannot.io.fasta.Genome.fetch` refuses anything else; sequences given
as text to :meth:`genaannot.models.base.Model.predict` are checked by :func:`check_sequences`.)

Files
-----
This module opens no files: tokenizers are built from their JSON text
(:meth:`BPETokenizer.from_json`) and give their files as text (:meth:`DNATokenizer.files`);
:mod:`genaannot.io.tokenizers` reads and writes them (``load_tokenizer``,
``read_bpe_tokenizer``, ``write_tokenizer_files``); nothing here opens a file.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bpe import FastBPE

__all__ = [
    "Encoding", "LengthEncoding", "SequenceStats", "DNATokenizer", "BPETokenizer", "CharTokenizer", "TokenizerError",
    "SequenceError", "check_sequences",
]

_ACGTN = frozenset("ACGTN")
_GAP_RUN = re.compile("N{10,}")
_LOWER_BYTES = bytes(range(ord("a"), ord("z") + 1))
_ACGTN_BYTES = b"ACGTN"


class TokenizerError(ValueError):
    """The tokenizer files are missing or unusable."""


class SequenceError(ValueError):
    """A sequence given as text holds a character that is not a nucleotide letter."""


#: IUPAC nucleotide letters (U included), as a FASTA may hold them (genaannot.io.fasta.IUPAC)
_IUPAC = "ACGTURYKMSWBDHVN"
#: what a sequence given as text may hold: the IUPAC letters in either case, and '-' (the gap
#: of NCBI's nucleotide codes; every tokenizer has a token for it or [UNK], as upstream does)
_SEQ_BYTES = (_IUPAC + _IUPAC.lower() + "-").encode("ascii")
_NOT_SEQ = re.compile(f"[^{_IUPAC}{_IUPAC.lower()}-]")


def check_sequences(seqs: list[str], *, what: str = "sequences") -> None:
    """Refuse inputs that are not nucleotide text, naming the first bad character.

    Tokenizers take any letter (unknown ones become ``[UNK]``), so a README example copied
    with its ``...`` would be predicted without a word; a genome FASTA refuses such letters
    too (:meth:`genaannot.io.fasta.Genome.fetch`). Costs one ``bytes.translate`` per
    sequence (about 1 ns per base).

    Parameters
    ----------
    seqs : list of str
        The sequences, any case.
    what : str
        How the caller's argument is named in the message (``sequences[3]``).

    Raises
    ------
    SequenceError
        An item that is not a str, or a character other than ``ACGTURYKMSWBDHVN`` (either
        case) or ``-``: names the item's index, the 1-based position and the character.
    """
    for i, seq in enumerate(seqs):
        if not isinstance(seq, str):
            raise SequenceError(f"{what}[{i}] is a {type(seq).__name__}, not a str of bases; "
                                "give each sequence as text (decode bytes first)")
        if seq.isascii() and not seq.encode("ascii").translate(None, _SEQ_BYTES):
            continue  # the usual case: bases only
        m = _NOT_SEQ.search(seq)
        assert m is not None
        raise SequenceError(
            f"{what}[{i}]: position {m.start() + 1:,} (1-based) holds {m.group()!r}, which is not a nucleotide "
            f"letter (IUPAC {_IUPAC}, either case, or '-' for a gap); give bases only (N for an unknown "
            "base; a copied example may end in '...')")


@dataclass
class SequenceStats:
    """Letters seen while encoding (after upper-casing)."""

    lowercase: int = 0
    iupac: Counter = field(default_factory=Counter)

    def update(self, seq: str) -> str:
        """Count ``seq``'s soft-masked and non-ACGTN letters and return it upper-cased."""
        up = seq.upper()
        if not seq.isascii():  # (FASTA text is ASCII) exact, but one Python step per letter
            self.lowercase += sum(1 for c in seq if c.islower())
            self.iupac.update(c for c in up if c not in _ACGTN)
            return up
        # bytes.translate runs in C: ~1 ns per base instead of ~200 for a Python loop
        if up != seq:
            raw = seq.encode("ascii")
            self.lowercase += len(raw) - len(raw.translate(None, _LOWER_BYTES))
        other = up.encode("ascii").translate(None, _ACGTN_BYTES)
        if other:
            self.iupac.update(other.decode("ascii"))
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


@dataclass
class LengthEncoding:
    """An :class:`Encoding` held as its tokens' lengths: 5 bytes a token (int32 ids, uint8
    lengths) instead of 12 (int32 ids and spans), for tokens that lie end to end but for a
    few jumps (the strands of a work unit put together). How a scan's planned unit waits in
    the process that feeds the device, which reads the spans once, when the unit's outputs
    are back (:attr:`spans`, made then: equal to the encoding's, of its integer type).

    Attributes
    ----------
    ids : int [n_tokens]
    lengths : uint8 [n_tokens]
    jump_at, jump : int64 [k]
        Rows whose start is not the previous row's end (row 0 always) and ``start - previous
        end`` there (row 0: its start).
    """

    ids: np.ndarray
    lengths: np.ndarray
    jump_at: np.ndarray
    jump: np.ndarray
    spans_dtype: np.dtype

    #: an encoding whose spans jump this many times or more stays as it is (a unit's two
    #: strands put together jump once)
    MAX_JUMPS = 16

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def of(cls, enc: Encoding) -> Encoding | LengthEncoding:
        """``enc`` held as lengths, or ``enc`` itself where a token is longer than 255 bp or
        its spans jump :attr:`MAX_JUMPS` times or more."""
        spans = enc.spans
        n = len(spans)
        if not n:
            return enc
        lengths = spans[:, 1] - spans[:, 0]
        if int(lengths.min()) < 0 or int(lengths.max()) > 255:
            return enc
        jump_at = np.flatnonzero(spans[1:, 0] != spans[:-1, 1]) + 1
        if len(jump_at) >= cls.MAX_JUMPS:
            return enc
        jump_at = np.concatenate(([0], jump_at)).astype(np.int64)
        prev_end = np.where(jump_at > 0, spans[np.maximum(jump_at - 1, 0), 1], 0).astype(np.int64)
        return cls(enc.ids, lengths.astype(np.uint8), jump_at, spans[jump_at, 0].astype(np.int64) - prev_end,
                   spans.dtype)

    @property
    def spans(self) -> np.ndarray:
        """``[n_tokens, 2]``, as the encoding held them (made on each access)."""
        out = np.empty((len(self.lengths), 2), dtype=self.spans_dtype)
        ends = out[:, 1]
        np.cumsum(self.lengths, dtype=self.spans_dtype, out=ends)
        for at, d in zip(self.jump_at.tolist(), self.jump.tolist()):
            if d:
                ends[at:] += d
        np.subtract(ends, self.lengths, out=out[:, 0], casting="unsafe")
        return out


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
    #: every letter is one token on its own: a long sequence is tokenised in one call
    #: (:func:`genaannot.windows.tokenize_long`), not in chunks, and ``encode`` takes a
    #: ``dtype`` for its ids and spans
    per_letter: bool = False

    def encode(self, seq: str, *, stats: SequenceStats | None = None) -> Encoding:
        return self.encode_batch([seq], stats=stats)[0]

    def for_long_input(self) -> DNATokenizer:
        """A tokenizer that gives the same tokens, set up for many megabases (a BPE one uses
        its compiled encoder from the first letter: a copy); this one by default."""
        return self

    def encode_batch(self, seqs: list[str], *, stats: SequenceStats | None = None) -> list[Encoding]:
        raise NotImplementedError

    def files(self) -> dict[str, str]:
        """The files that store this tokenizer in a checkpoint directory: name -> text."""
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
    """A Hugging Face ``tokenizer.json`` (GENA-LM BPE tokenizers, or one trained by genaannot).

    Build it from the text of a ``tokenizer.json``; :func:`genaannot.io.tokenizers.read_bpe_tokenizer`
    reads the file.

    Parameters
    ----------
    text : str
        The contents of a ``tokenizer.json``.
    name : str
        Shown by ``genaannot models inspect`` and in messages.
    path : Path, optional
        Where the text came from (kept as :attr:`path`, for messages).
    """

    def __init__(self, text: str, *, name: str = "", path: Path | None = None) -> None:
        self._setup(text, name=name, path=path)

    @classmethod
    def from_json(cls, text: str, *, name: str = "", path: Path | None = None) -> BPETokenizer:
        """The tokenizer described by ``text`` (the contents of a ``tokenizer.json``).

        Parameters
        ----------
        text : str
        name : str
            Shown by ``genaannot models inspect`` and in messages.
        path : Path, optional
            Where the text came from (kept as :attr:`path`, for messages).

        Raises
        ------
        TokenizerError
            The tokenizer has no ``[CLS]``/``[SEP]`` tokens.
        Exception
            The text is not a tokenizer (raised by :mod:`tokenizers`).
        """
        self = cls.__new__(cls)
        self._setup(text, name=name, path=path)
        return self

    def _setup(self, text: str, *, name: str, path: Path | None) -> None:
        from tokenizers import Tokenizer

        self.path = path
        self._tok = Tokenizer.from_str(text)
        self._tok.no_truncation()
        self._tok.no_padding()
        vocab = self._tok.get_vocab()
        self.vocab_size = self._tok.get_vocab_size()
        self.name = name
        self.cls_id = vocab.get("[CLS]")
        self.sep_id = vocab.get("[SEP]")
        self.pad_id = vocab.get("[PAD]", 0)
        self.unk_id = vocab.get("[UNK]", 0)
        self.mask_id = vocab.get("[MASK]")
        self.gap_id = vocab.get("-")
        self.max_token_bp = max((len(k) for k in vocab if not k.startswith("[")), default=1)
        if self.cls_id is None or self.sep_id is None:
            raise TokenizerError(f"{path or name or 'tokenizer'}: tokenizer has no [CLS]/[SEP] tokens")
        self._token_bp = self._lengths_if_exact(json.loads(text), vocab)
        self._text = text
        self._fast: FastBPE | None | bool = None  # built on demand; False: cannot be used
        self._letters = 0

    def _lengths_if_exact(self, spec: dict, vocab: dict[str, int]) -> np.ndarray | None:
        """Base pairs per token id, when token lengths alone determine the spans.

        Converting the Rust offsets to numpy costs as much as a tenth of tokenising, so spans
        are built from a per-id length table instead — only for tokenizers whose text
        transforms are known to keep lengths (the GENA normaliser: strip, N{10,} → ``-``),
        with the gap token's length taken from the N runs. Anything else uses the offsets.
        """
        model = spec.get("model") or {}
        if model.get("type") not in ("BPE", "WordLevel") or model.get("continuing_subword_prefix") or \
                model.get("end_of_word_suffix") or model.get("fuse_unk"):  # fmt: skip
            return None
        norm = spec.get("normalizer")
        steps = [] if norm is None else norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
        for step in steps:
            gap_rule = step.get("type") == "Replace" and step.get("pattern") == {"Regex": "N{10,}"} and step.get("content") == "-"
            if step.get("type") not in ("Strip",) and not gap_rule:
                return None
        lengths = np.ones(max(vocab.values()) + 1, dtype=np.int64)  # specials incl. [UNK]: one letter
        for token, i in vocab.items():
            if not (token.startswith("[") and token.endswith("]")):
                lengths[i] = len(token)
        return lengths

    #: letters a tokenizer encodes through ``tokenizers`` before it switches single sequences
    #: to the compiled encoder (:mod:`genaannot.bpe`; same ids and spans). Starting it (numba,
    #: the compiled loop from numba's cache, the merge table) took 1.3-1.4 CPU-s and ~100 MB
    #: (``bench/bpe.py``), what ``tokenizers`` spends on about 2-3 Mb, so a process switches
    #: once it has spent that (:meth:`for_long_input`: from the first letter); ``None``: never
    fast_after_bp: int | None = 3_000_000

    def for_long_input(self) -> BPETokenizer:
        """A copy that uses the compiled encoder from the first letter (same tokens)."""
        other = copy.copy(self)
        other.fast_after_bp = 0
        return other

    def _fast_encoder(self, letters: int) -> FastBPE | None:
        """The compiled encoder, once :attr:`fast_after_bp` letters went through ``tokenizers``."""
        if self._fast is None:
            self._letters += letters
            if self.fast_after_bp is None or self._letters < self.fast_after_bp:
                return None
            fast = FastBPE.from_spec(json.loads(self._text))
            if fast is not None:
                try:  # compiles, or loads from numba's cache, the merge loop
                    fast.encode("ACGT")
                except Exception as err:  # noqa: BLE001 - numba fails in many ways (no cache dir, no LLVM)
                    warnings.warn(f"genaannot: the compiled BPE encoder cannot start here ({type(err).__name__}: "
                                  f"{err}); tokenizers encodes instead (the same tokens, more CPU)",
                                  RuntimeWarning, stacklevel=3)
                    fast = None
            self._fast = fast or False
        return self._fast or None

    def encode_batch(self, seqs: list[str], *, stats: SequenceStats | None = None) -> list[Encoding]:
        """Encode each sequence (upper-cased first).

        A batch of more than one goes to ``tokenizers``, which spreads it over its threads;
        a single sequence goes to the compiled encoder of :mod:`genaannot.bpe` where that
        implements the tokenizer (the GENA ones) and the process has encoded
        :attr:`fast_after_bp` letters: about 0.3 of the CPU per base (``bench/bpe.py``),
        identical ids and spans.
        """
        ups = [stats.update(s) if stats is not None else s.upper() for s in seqs]
        if len(ups) == 1 and (fast := self._fast_encoder(len(ups[0]))) is not None:
            got = fast.encode(ups[0])
            if got is not None:
                ids, lengths = got
                spans = np.empty((ids.size, 2), dtype=np.int64)
                np.cumsum(lengths, out=spans[:, 1])
                spans[:1, 0] = 0
                spans[1:, 0] = spans[:-1, 1]
                return [Encoding(ids, spans)]
        encs = self._tok.encode_batch(ups, add_special_tokens=False)
        out = []
        for up, enc in zip(ups, encs):
            ids = np.asarray(enc.ids, dtype=np.int64)
            spans = self._spans_from_lengths(ids, up)
            if spans is None:
                offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
                spans = _contiguous(offsets)
            if ids.size and (spans[-1, 1] != len(up) or np.any(spans[:, 1] <= spans[:, 0])):
                raise TokenizerError(
                    f"tokenizer {self.name}: offsets do not cover the sequence "
                    f"(last end {spans[-1, 1]}, length {len(up)}); does it contain whitespace?"
                )
            out.append(Encoding(ids, spans))
        return out

    def _spans_from_lengths(self, ids: np.ndarray, up: str) -> np.ndarray | None:
        """Contiguous spans from the per-id length table, or ``None`` to use the offsets."""
        if self._token_bp is None or "-" in up or not ids.size or ids.max() >= self._token_bp.size:
            return None
        lengths = self._token_bp[ids]
        if self.gap_id is not None:
            gaps = ids == self.gap_id
            if gaps.any():
                runs = [m.end() - m.start() for m in _GAP_RUN.finditer(up)]
                if len(runs) != int(gaps.sum()):
                    return None
                lengths = lengths.copy()
                lengths[gaps] = runs
        ends = np.cumsum(lengths)
        if ends[-1] != len(up):  # safety net: never trust a table that does not add up
            return None
        spans = np.empty((ids.size, 2), dtype=np.int64)
        spans[:, 1] = ends
        spans[0, 0] = 0
        spans[1:, 0] = ends[:-1]
        return spans

    def files(self) -> dict[str, str]:
        """``tokenizer.json`` (as ``tokenizers`` saves it) plus the two small files
        ``transformers`` expects beside it."""
        specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
        return {
            "tokenizer.json": self._tok.to_str(pretty=True),
            "special_tokens_map.json": json.dumps(specials),
            "tokenizer_config.json": json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}),
        }


#: HyenaDNA's fixed character vocabulary (it lives in upstream's tokenizer code, not in a file)
HYENA_CHAR_VOCAB: dict[str, int] = {
    "[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6,
    "A": 7, "C": 8, "G": 9, "T": 10, "N": 11,
}  # fmt: skip


class CharTokenizer(DNATokenizer):
    """Single-nucleotide tokenizer: one token per base, span ``[i, i + 1)``.

    The default vocabulary is HyenaDNA's (``[CLS]`` 0, ``[SEP]`` 1, ``[BOS]`` 2, ``[MASK]`` 3,
    ``[PAD]`` 4, ``[RESERVED]`` 5, ``[UNK]`` 6, ``A C G T N`` 7-11). Input is upper-cased
    first (package policy; upstream HyenaDNA would turn soft-masked bases into ``[UNK]``);
    every character that is not a single-letter entry of the vocabulary becomes ``[UNK]``.
    No special tokens are added here: the network's ``collate`` adds them.

    Parameters
    ----------
    vocab
        token -> id; single-character keys are bases, bracketed keys special tokens.
    name
        Shown by ``genaannot models inspect``.
    """

    max_token_bp = 1
    per_letter = True

    def __init__(self, vocab: dict[str, int] | None = None, *, name: str = "hyenadna-char") -> None:
        self.vocab = dict(HYENA_CHAR_VOCAB if vocab is None else vocab)
        self.name = name
        missing = [t for t in ("[SEP]", "[PAD]", "[UNK]") if t not in self.vocab]
        if missing:
            raise TokenizerError(f"character vocabulary lacks {', '.join(missing)}")
        self.cls_id = self.vocab.get("[CLS]")
        self.sep_id = self.vocab["[SEP]"]
        self.pad_id = self.vocab["[PAD]"]
        self.unk_id = self.vocab["[UNK]"]
        self.mask_id = self.vocab.get("[MASK]")
        self.vocab_size = max(self.vocab.values()) + 1
        # byte -> id lookup table: encoding is one numpy gather per sequence
        self._table = np.full(256, self.unk_id, dtype=np.int64)
        for tok, i in self.vocab.items():
            if len(tok) == 1 and tok.isascii():
                self._table[ord(tok)] = i

    def encode(self, seq: str, *, stats: SequenceStats | None = None, dtype: type[np.integer] = np.int64) -> Encoding:
        """``seq``'s tokens; ``dtype`` (int64, or int32 for a sequence under 2³¹ letters)
        for the ids and spans: a scan asks for int32, the form its planned units keep."""
        return self.encode_batch([seq], stats=stats, dtype=dtype)[0]

    def encode_batch(self, seqs: list[str], *, stats: SequenceStats | None = None,
                     dtype: type[np.integer] = np.int64) -> list[Encoding]:
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.int64), np.dtype(np.int32)):
            raise ValueError(f"token dtype must be int64 or int32, not {dtype}")
        table = self._table if dtype == np.int64 else self._table.astype(dtype)
        out = []
        for s in seqs:
            if dtype == np.int32 and len(s) >= 2**31:
                raise ValueError(f"a sequence of {len(s):,} letters does not fit int32 spans")
            up = stats.update(s) if stats is not None else s.upper()
            if up.isascii():
                ids = table[np.frombuffer(up.encode("ascii"), dtype=np.uint8)]
            else:  # rare: non-ASCII letters are never in the vocabulary
                ids = np.array([table[ord(c)] if ord(c) < 256 else self.unk_id for c in up], dtype=dtype)
            spans = np.empty((len(up), 2), dtype=dtype)  # [i, i + 1): no temporaries per column
            spans[:, 0] = np.arange(len(up), dtype=dtype)
            np.add(spans[:, 0], 1, out=spans[:, 1])
            out.append(Encoding(ids, spans))
        return out

    def files(self) -> dict[str, str]:
        """``tokenizer_config.json`` (with the vocabulary) and ``special_tokens_map.json``."""
        specials = {"sep_token": "[SEP]", "eos_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]"}
        for key, tok in (("cls_token", "[CLS]"), ("bos_token", "[BOS]"), ("mask_token", "[MASK]")):
            if tok in self.vocab:
                specials[key] = tok
        return {
            "special_tokens_map.json": json.dumps(specials, indent=2),
            "tokenizer_config.json": json.dumps(
                {"tokenizer_class": "CharTokenizer", "char_vocab": self.vocab, **specials}, indent=2
            ),
        }
