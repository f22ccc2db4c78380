"""Deterministic toy models for tests: outputs are known functions of the input sequence.

They implement the same Network protocol as the real families (collate / forward / split)
and are wrapped in the real :class:`genaannot.models.base.Model`, so every code path after
the model is exercised exactly as with a real checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genaannot.models.base import Loaded, Model, ModelInfo, collate_cls_sep, split_cls_sep
from genaannot.tokenize import DNATokenizer, Encoding, SequenceStats

#: per-letter id of the character tokenizer; value channel = VALUES[letter]
ALPHABET = "ACGTN"
CHAR_IDS = {c: i + 6 for i, c in enumerate(ALPHABET)}
#: toy per-base values of the three channels (channel 0 unused, 1 "acceptor", 2 "donor")
BASE_VALUE = {"A": 0.1, "C": 0.2, "G": 0.3, "T": 0.4, "N": 0.0}


class CharTokenizer(DNATokenizer):
    """One token per base (ids 6..10 for A C G T N; others → [UNK]=0)."""

    name = "toy-char"
    cls_id, sep_id, pad_id, unk_id = 1, 2, 3, 0
    vocab_size = 16
    max_token_bp = 1

    def encode_batch(self, seqs, *, stats: SequenceStats | None = None):
        out = []
        for s in seqs:
            up = stats.update(s) if stats is not None else s.upper()
            ids = np.array([CHAR_IDS.get(c, 0) for c in up], dtype=np.int64)
            starts = np.arange(len(up), dtype=np.int64)
            out.append(Encoding(ids, np.stack([starts, starts + 1], axis=1)))
        return out


class ToyTokenNetwork(nn.Module):
    """Token head. Channel 1 = value of the base; channel 2 = the token's position in the
    input divided by the input length (depends on the window, to test stitching)."""

    head = "token"

    def __init__(self, max_content_tokens: int = 64) -> None:
        super().__init__()
        self.max_content_tokens = max_content_tokens
        table = torch.zeros(16)
        for c, i in CHAR_IDS.items():
            table[i] = BASE_VALUE[c]
        self.register_buffer("table", table)

    def collate(self, content):
        return collate_cls_sep(content, cls_id=1, sep_id=2, pad_id=3)

    def forward(self, input_ids, attention_mask):
        val = self.table[input_ids]
        n = attention_mask.sum(dim=1, keepdim=True).clamp(min=1).float()
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).float()[None, :] / n
        return torch.stack([torch.zeros_like(val), val, pos], dim=-1)

    def split(self, out, lengths):
        return split_cls_sep(out, lengths, head="token")


class ToySequenceNetwork(nn.Module):
    """Sequence head, 2 classes: logit 1 = GC fraction of the content, logit 0 = 0."""

    head = "sequence"

    def __init__(self, max_content_tokens: int = 64) -> None:
        super().__init__()
        self.max_content_tokens = max_content_tokens

    def collate(self, content):
        return collate_cls_sep(content, cls_id=1, sep_id=2, pad_id=3)

    def forward(self, input_ids, attention_mask):
        gc = ((input_ids == CHAR_IDS["G"]) | (input_ids == CHAR_IDS["C"])).float().sum(1)
        n = (attention_mask.sum(1) - 2).clamp(min=1).float()
        frac = gc / n
        return torch.stack([torch.zeros_like(frac), frac], dim=-1)

    def split(self, out, lengths):
        return split_cls_sep(out, lengths, head="sequence")


def make_toy_model(head: str = "token", *, max_tokens: int = 64, task: str | None = None) -> Model:
    """A :class:`Model` around a toy network and the character tokenizer."""
    net = ToyTokenNetwork(max_tokens) if head == "token" else ToySequenceNetwork(max_tokens)
    labels = ("none", "acceptor", "donor") if head == "token" else ("background", "promoter")
    info = ModelInfo(
        family="toy",
        architecture=type(net).__name__,
        head=head,
        labels=labels,
        problem_type="multi_label_classification" if head == "token" else "single_label_classification",
        max_tokens=max_tokens,
        resolution="base",
        n_params=0,
        source="tests/toy.py",
        tokenizer="toy-char",
        task=task,
    )
    return Model(Loaded(net, CharTokenizer(), info), device="cpu")
