"""An exact, compiled BPE encoder for plain DNA BPE tokenizers (the GENA-LM ones).

A scan spends most of its host CPU in BPE. For the tokenizers genaannot uses, the whole
``tokenizers`` pipeline is simple enough to do on a byte array:

* normaliser: none, or ``Strip`` and/or ``Replace(Regex "N{10,}" -> "-")`` (the GENA t2t
  tokenizers);
* pre-tokeniser: none, or ``Split("-", Isolated)`` (every ``-`` is a word of its own);
* model: ``BPE`` without dropout, byte fallback, subword prefix/suffix, ``fuse_unk`` or
  ``ignore_merges``.

:class:`FastBPE` does exactly what ``tokenizers`` does for those (``Word::merge_all`` of
``tokenizers/src/models/bpe/word.rs``): every adjacent pair that has a merge goes into a
priority queue ordered by merge rank, then by position (leftmost first); the lowest is
popped and applied if it is still current (its left symbol still exists and has a right
neighbour, and the pair there still merges into the same token), and the new pairs with the
left and right neighbours are queued. Characters that are not in the vocabulary become the
unknown token, one per character. Where every merge ranks after the merges that make its
parts (both GENA tokenizers; checked), the queue's minimum never decreases, so one bucket
per rank replaces the heap (:func:`genaannot._bpe_kernel.merge`); that loop, compiled with
``numba``, takes 0.21-0.23 of the CPU per base of ``tokenizers`` (``bench/bpe.py``), where
the same heap loop compiled took about 0.7.

:meth:`FastBPE.from_spec` returns ``None`` for any ``tokenizer.json`` feature outside that
list, and :meth:`FastBPE.encode` returns ``None`` for any input it does not handle (letters
other than ``A``-``Z``, e.g. ``-``, whitespace, ``[``, non-ASCII); the caller then uses
``tokenizers``. Without ``numba`` installed, :func:`available` is false and nothing here is
used. ``tests/test_bpe.py`` compares ids and spans with ``tokenizers`` on real genomes (both
strands) and on random sequences with ``N`` runs, IUPAC and unknown letters.

This module opens no files.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["FastBPE", "available"]

_GAP_REPLACE = {"type": "Replace", "pattern": {"Regex": "N{10,}"}, "content": "-"}
_GAP_SPLIT = {"type": "Split", "pattern": {"String": "-"}, "behavior": "Isolated", "invert": False}
_UPPER = re.compile(r"[A-Z]*\Z")

_HASH = 0x5851F42D4C957F2D  # must equal genaannot._bpe_kernel._HASH


def _hash_table(keys: np.ndarray, *, size: int) -> np.ndarray:
    """Linear-probing table of ``keys << 31 | rank`` (rank = index in ``keys``), -1 where empty.

    Built in vectorised rounds: in round ``j`` every key not yet placed tries slot
    ``home + j``; a free slot goes to the lowest-ranked contender. A key therefore sits after
    a run of occupied slots from its home, which is all a linear-probing lookup needs.
    """
    mask = size - 1
    table = np.full(size, -1, dtype=np.int64)
    home = (((keys.astype(np.uint64) * np.uint64(_HASH)) & np.uint64(0x7FFFFFFFFFFFFFFF)) >> np.uint64(20)).astype(np.int64) & mask
    todo = np.arange(keys.size)
    step = 0
    while todo.size:
        slot = (home[todo] + step) & mask
        free = table[slot] == -1
        cand, cslot = todo[free], slot[free]
        _, first = np.unique(cslot, return_index=True)  # todo is in rank order: the lowest wins
        won = cand[first]
        table[cslot[first]] = (keys[won] << 31) | won
        placed = np.zeros(keys.size, dtype=bool)
        placed[won] = True
        todo = todo[~placed[todo]]
        step += 1
    return table


def available() -> bool:
    """Whether the compiled encoder can run here (``numba`` installed; not imported here)."""
    return importlib.util.find_spec("numba") is not None


@dataclass(frozen=True)
class FastBPE:
    """The merge table of one BPE ``tokenizer.json``, for :meth:`encode`.

    Attributes
    ----------
    char_ids : int32 [256]
        Initial id of each byte (the unknown token's id where the vocabulary lacks it).
    gap_id : int
        Id of ``-`` (one per run of >= 10 ``N``), or -1 when the normaliser has no gap rule.
    split_gaps : bool
        Whether ``-`` is a word of its own (nothing merges across it).
    table : int64 [table_size]
        Open-addressing hash table (power-of-two size, linear probing): entries
        ``(left * vocab_n + right) << 31 | rank``, -1 where empty.
    rank_new, rank_left, rank_right : int32 [n_merges]
        Id of the token each merge makes, and of its left and right parts.
    vocab_n : int
        Largest id + 1.
    """

    char_ids: np.ndarray
    gap_id: int
    split_gaps: bool
    table: np.ndarray
    rank_new: np.ndarray
    rank_left: np.ndarray
    rank_right: np.ndarray
    vocab_n: int

    @classmethod
    def from_spec(cls, spec: dict) -> FastBPE | None:
        """The encoder for a parsed ``tokenizer.json``, or ``None`` where it uses a feature
        this encoder does not implement, or ``numba`` is missing.

        Parameters
        ----------
        spec : dict
            The parsed ``tokenizer.json``.
        """
        if not available() or not isinstance(spec, dict):
            return None
        model = spec.get("model") or {}
        if model.get("type") != "BPE" or model.get("dropout") not in (None, 0, 0.0):
            return None
        for flag in ("continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges"):
            if model.get(flag):
                return None
        vocab, merges, unk = model.get("vocab"), model.get("merges"), model.get("unk_token")
        if not isinstance(vocab, dict) or not isinstance(merges, list) or unk not in vocab:
            return None
        if any(not isinstance(i, int) or i < 0 for i in vocab.values()):
            return None
        norm = spec.get("normalizer")
        steps = [] if norm is None else norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
        gap = False
        for step in steps:
            if step == _GAP_REPLACE:
                gap = True
            elif step.get("type") != "Strip":  # inputs here hold no whitespace: Strip does nothing
                return None
        pre = spec.get("pre_tokenizer")
        if pre is not None and pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
            pre = pre["pretokenizers"][0]
        if pre is not None and pre != _GAP_SPLIT:
            return None
        for added in spec.get("added_tokens") or []:
            # added tokens are matched before the model: in the raw text (letters A-Z only
            # here), or in the normalised one (which also has "-") if "normalized"
            content = added.get("content", "")
            letters = content.replace("-", "") if added.get("normalized", True) else content
            if not content or _UPPER.match(letters):
                return None
        vocab_n = max(vocab.values()) + 1
        n = len(merges)
        if vocab_n > 65535 or n == 0:
            return None  # pair keys must fit 32 bits
        try:
            parts = [m.split(" ") if isinstance(m, str) else list(m) for m in merges]
            left = np.array([vocab[p[0]] for p in parts], dtype=np.int64)
            right = np.array([vocab[p[1]] for p in parts], dtype=np.int64)
            rank_new = np.array([vocab[p[0] + p[1]] for p in parts], dtype=np.int64)
        except (KeyError, IndexError, TypeError, AttributeError):
            return None  # tokenizers would not load it either
        if any(len(p) != 2 for p in parts):
            return None
        made_by = np.full(vocab_n, -1, dtype=np.int64)  # rank of the merge that makes each id
        made_by[rank_new] = np.arange(n)
        if np.unique(rank_new).size != n:
            return None  # a token made by two merges: the queue would need their ranks
        ranks = np.arange(n)
        if np.any(made_by[left] >= ranks) or np.any(made_by[right] >= ranks):
            return None  # a merge ranked before one of its parts is made: _merge's buckets need rising ranks
        keys = left * vocab_n + right
        if np.unique(keys).size != n:
            return None  # a pair listed twice
        # load factor 1/4 to 1/2: the table (8 bytes a slot) should stay in the core's cache
        table = _hash_table(keys, size=1 << int(2 * n - 1).bit_length())
        unk_id = vocab[unk]
        char_ids = np.full(256, unk_id, dtype=np.int32)
        for token, i in vocab.items():
            if len(token) == 1 and token.isascii():
                char_ids[ord(token)] = i
        gap_id = int(vocab.get("-", unk_id)) if gap else -1
        return cls(char_ids, gap_id, pre is not None, table, rank_new.astype(np.int32), left.astype(np.int32),
                   right.astype(np.int32), int(vocab_n))

    def encode(self, up: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Token ids and letters per token of ``up``, or ``None`` if ``up`` holds anything but
        the letters ``A``-``Z`` (the caller then asks ``tokenizers``).

        Parameters
        ----------
        up : str
            Upper-case letters.

        Returns
        -------
        ids : int64 [n_tokens]
        lengths : int64 [n_tokens]
            Letters of ``up`` per token (a gap token's: its whole ``N`` run); they add up to
            ``len(up)``.
        """
        if not up:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if not up.isascii():
            return None
        letters = up.encode("ascii")
        if not (letters.isalpha() and letters.isupper()):  # bytes: ASCII rules, no Unicode tables
            return None
        raw = np.frombuffer(letters, dtype=np.uint8)
        ids = self.char_ids[raw]
        lens = np.ones(raw.shape[0], dtype=np.int32)
        word_start = np.zeros(raw.shape[0], dtype=np.bool_)
        if self.gap_id >= 0 and "NNNNNNNNNN" in up:
            # N{10,} -> "-": one gap symbol per run, at its first letter, as long as the run
            isn = np.concatenate(([False], raw == ord("N"), [False]))
            edges = np.flatnonzero(isn[1:] != isn[:-1])
            starts, ends = edges[0::2], edges[1::2]
            keep = (ends - starts) >= 10
            starts, ends = starts[keep], ends[keep]
            step = np.zeros(raw.shape[0] + 1, dtype=np.int32)
            step[starts + 1] += 1
            step[ends] -= 1
            alive = np.cumsum(step[:-1]) == 0
            ids[starts] = self.gap_id
            lens[starts] = ends - starts
            if self.split_gaps:  # "-" is a word of its own
                word_start[starts] = True
                word_start[ends[ends < raw.shape[0]]] = True
            ids, lens, word_start = ids[alive], lens[alive], word_start[alive]
        from ._bpe_kernel import merge

        k = merge(ids, lens, word_start, self.table, self.table.shape[0] - 1, self.rank_new, self.rank_left,
                  self.rank_right, self.vocab_n)
        return ids[:k].astype(np.int64), lens[:k].astype(np.int64)
