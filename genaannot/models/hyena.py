"""HyenaDNA, weight-compatible with the ``LongSafari/hyenadna-*-seqlen-hf`` checkpoints.

A native re-implementation of the hub port (``modeling_hyena.py``; nothing is imported or
executed from a checkpoint directory). Module names mirror the upstream state dict, so the
weights load with strict key matching; the only alias is the implicit filter's ``Sin``
frequency, which upstream shares between positions ``1, 3, 5, ...`` of the filter MLP and
transformers 4.35 stored once (``implicit_filter.1.freq``).

Architectures (``config.json`` ``architectures``):

``HyenaDNAForCausalLM`` (head ``lm``)
    Backbone + untied ``lm_head``; per-position logits over the padded vocabulary.
``HyenaDNAForSequenceClassification`` (head ``sequence``)
    ``score`` (no bias) on every position, pooled at the last real token (upstream:
    ``argmax(input_ids == pad) - 1``).
``HyenaDNAForTokenClassification`` (head ``token``; genaannot's own, not upstream)
    The same ``score`` Linear kept per position: one row of logits per base, for per-base
    tasks (splice sites, TSS). State dict: ``hyena.backbone.*`` + ``score.weight``
    ``[num_labels, d_model]`` (+ ``score.bias`` when the file has one).

Causal model, stranded tasks
----------------------------
Every output position sees only itself and the bases before it (causal short filter and
causal long convolution). A scan runs both strands; each strand's track is a forward pass
over that strand's sequence read 5'->3', so a base's value on the + strand uses upstream
context on +, and on the - strand upstream context on - (= downstream on +). With the load
option ``bidirectional=True`` every input is also run reverse-complemented and the two
outputs are averaged position by position (the rc output flipped back), giving each base
context from both sides at twice the cost. That average is only meaningful for heads whose
labels do not depend on orientation (an MLM-like or strand-symmetric head); a head with
stranded labels (TSS+/TSS-) would need its label pairs swapped for the rc pass, which this
option does not do.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io.tokenizers import TOKENIZER_CONFIG, read_tokenizer_config
from ..io.weights import read_weights
from ..tokenize import HYENA_CHAR_VOCAB, CharTokenizer
from .base import Loaded, ModelError, ModelInfo
from .families import (
    ArchConfig,
    HeadSpec,
    Trainable,
    TrainError,
    labels_config,
    no_options,
    transfer_weights,
    unique_tensors,
)
from .validate import check_count, check_labels, check_on_meta, check_sizes, check_types
from .weights import load_strict

__all__ = ["HyenaConfig", "HyenaNetwork", "load", "fftconv", "ARCHITECTURES", "from_checkpoint", "fresh", "save_trainable"]

#: config.json architecture -> head
ARCHITECTURES: dict[str, str] = {
    "HyenaDNAForCausalLM": "lm",
    "HyenaDNAForSequenceClassification": "sequence",
    "HyenaDNAForTokenClassification": "token",
}

#: upstream hard-codes these (HyenaFilter / ExponentialModulation constructor arguments)
_MODULATION_SHIFT = 0.05
_SHORT_FILTER_PADDING = 2  # causal only for short_filter_order 3 (every real checkpoint)
_BLOCK_NORM_EPS = 1e-5  # norm1/norm2 use nn.LayerNorm's default, not layer_norm_epsilon


@dataclass(frozen=True)
class HyenaConfig:
    """The fields of a HyenaDNA ``config.json`` the architecture depends on."""

    d_model: int
    n_layer: int
    d_inner: int
    vocab_size: int  # before padding to pad_vocab_size_multiple
    max_seq_len: int
    emb_dim: int
    filter_order: int
    num_inner_mlps: int
    hyena_order: int
    short_filter_order: int
    activation_freq: float
    layer_norm_epsilon: float
    pad_vocab_size_multiple: int = 8
    use_bias: bool = True
    train_freq: bool = True
    pad_token_id: int = 4

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return self.vocab_size + (-self.vocab_size) % m if m > 0 else self.vocab_size

    @classmethod
    def from_dict(cls, config: dict[str, Any], *, source: str = "HyenaDNA config.json") -> HyenaConfig:
        """Read a config.json dict; architecture fields are required (no silent defaults).

        Raises
        ------
        ModelError
            Naming ``source`` and the key: a field is missing, a size is not a whole number
            >= 1, or a field has the wrong type.
        """
        required = (
            "d_model", "n_layer", "vocab_size", "max_seq_len", "emb_dim", "filter_order",
            "num_inner_mlps", "hyena_order", "short_filter_order", "activation_freq", "layer_norm_epsilon",
        )  # fmt: skip
        missing = [k for k in required if config.get(k) is None]
        if missing:
            raise ModelError(f"{source} lacks {', '.join(missing)}")
        check_sizes(config, ("d_model", "n_layer", "d_inner", "vocab_size", "max_seq_len", "emb_dim", "filter_order",
                             "hyena_order", "short_filter_order"), source=source)
        check_sizes(config, ("num_inner_mlps", "pad_vocab_size_multiple", "pad_token_id"), source=source, minimum=0)
        check_types(config, {"activation_freq": "number", "layer_norm_epsilon": "number", "use_bias": "bool",
                             "train_freq": "bool"}, source=source)
        d_inner = config.get("d_inner")
        return cls(
            d_model=int(config["d_model"]),
            n_layer=int(config["n_layer"]),
            # upstream HyenaConfig: d_inner None -> 4 * d_model
            d_inner=int(d_inner) if d_inner is not None else 4 * int(config["d_model"]),
            vocab_size=int(config["vocab_size"]),
            max_seq_len=int(config["max_seq_len"]),
            emb_dim=int(config["emb_dim"]),
            filter_order=int(config["filter_order"]),
            num_inner_mlps=int(config["num_inner_mlps"]),
            hyena_order=int(config["hyena_order"]),
            short_filter_order=int(config["short_filter_order"]),
            activation_freq=float(config["activation_freq"]),
            layer_norm_epsilon=float(config["layer_norm_epsilon"]),
            pad_vocab_size_multiple=int(config.get("pad_vocab_size_multiple", 8)),
            use_bias=bool(config.get("use_bias", True)),
            train_freq=bool(config.get("train_freq", True)),
            pad_token_id=int(config.get("pad_token_id", HYENA_CHAR_VOCAB["[PAD]"])),
        )


# --------------------------------------------------------------------------- long convolution


def fftconv(
    u: torch.Tensor, k: torch.Tensor, skip: torch.Tensor | None, *, max_bytes: int | None = None
) -> torch.Tensor:
    """Causal long convolution ``y[t] = sum_{s<=t} k[t-s] u[s] + skip * u[t]`` via FFT.

    Computed exactly as upstream: float32, FFT length ``n = 2L`` (zero padding, so the
    circular convolution equals the linear one), ``irfft(rfft(u) * rfft(k) / n, norm="forward")``.
    Channels are processed in groups so that the FFT temporaries stay under ``max_bytes``:
    each channel row is transformed independently, so the grouping does not change the
    result, and a 1M-token input needs ~24 MB per row instead of all rows at once.

    Parameters
    ----------
    u : [B, D, L] tensor
    k : [D, L] tensor (the filter; its length must equal L)
    skip : [D] tensor or None (the per-channel ``D`` term, upstream ``filter_fn.bias``)
    max_bytes : int or None
        Budget of the FFT temporaries; ``None`` = all channels at once.

    Returns
    -------
    [B, D, L] tensor in ``u``'s dtype.
    """
    b, d, length = u.shape
    n = 2 * length
    per_row = 3 * 8 * (length + 1)  # rfft(u), the product and irfft's output, complex64/float32
    group = d if max_bytes is None else max(1, min(d, max_bytes // max(1, per_row * b)))
    out = torch.empty((b, d, length), dtype=torch.float32, device=u.device) if group < d else None
    for c0 in range(0, d, group):
        c1 = min(d, c0 + group)
        k_f = torch.fft.rfft(k[c0:c1].float(), n=n) / n
        u_f = torch.fft.rfft(u[:, c0:c1].float(), n=n)
        y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :length]
        if skip is not None:
            y = y + u[:, c0:c1].float() * skip[c0:c1].float().unsqueeze(-1)
        if out is None:
            return y.to(u.dtype)
        out[:, c0:c1] = y
        del k_f, u_f, y
    assert out is not None
    return out.to(u.dtype)


# --------------------------------------------------------------------------- modules


class HyenaSin(nn.Module):
    """``sin(freq * x)``; one instance is shared by all Sin positions of a filter MLP."""

    def __init__(self, dim: int, *, freq: float, trainable: bool) -> None:
        super().__init__()
        w = freq * torch.ones(1, dim)
        if trainable:
            self.freq = nn.Parameter(w)
        else:  # upstream: a plain tensor attribute, not in the state dict
            self.register_buffer("freq", w, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class PositionalEmbedding(nn.Module):
    """Buffers ``z`` [1, max_seq_len, emb_dim] and ``t`` [1, max_seq_len, 1], read from the file."""

    def __init__(self, emb_dim: int, max_seq_len: int) -> None:
        super().__init__()
        # placeholders; the checkpoint's values replace them (z differs from the formula in
        # real checkpoints, where it was trained as a Parameter)
        self.register_buffer("z", torch.zeros(1, max_seq_len, emb_dim))
        self.register_buffer("t", torch.zeros(1, max_seq_len, 1))

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.z[:, :length], self.t[:, :length]


class ExponentialModulation(nn.Module):
    """``h * (exp(-t |deltas|) + 0.05)``; ``deltas`` [1, 1, D] read from the file."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.register_buffer("deltas", torch.zeros(1, 1, d_model))

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h * (torch.exp(-t * self.deltas.abs()) + _MODULATION_SHIFT)


class HyenaFilter(nn.Module):
    """Implicit long filter: an MLP of positional features times a decay window."""

    def __init__(self, cfg: HyenaConfig) -> None:
        super().__init__()
        width = cfg.d_model * (cfg.hyena_order - 1)
        self.use_bias = cfg.use_bias
        self.bias = nn.Parameter(torch.zeros(width))  # the long conv's skip term
        self.pos_emb = PositionalEmbedding(cfg.emb_dim, cfg.max_seq_len)
        sin = HyenaSin(cfg.filter_order, freq=cfg.activation_freq, trainable=cfg.train_freq)
        layers: list[nn.Module] = [nn.Linear(cfg.emb_dim, cfg.filter_order), sin]
        for _ in range(cfg.num_inner_mlps):
            layers += [nn.Linear(cfg.filter_order, cfg.filter_order), sin]
        layers.append(nn.Linear(cfg.filter_order, width, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.modulation = ExponentialModulation(width)
        self._cache: dict[tuple, torch.Tensor] = {}

    def filter(self, length: int) -> torch.Tensor:
        """The long filter ``[1, length, D]`` (position-wise, so a prefix of the full one)."""
        z, t = self.pos_emb(length)
        return self.modulation(t, self.implicit_filter(z))

    def kernel(self, length: int) -> torch.Tensor:
        """``[D, length]`` filter for the convolution; cached at inference (weights fixed)."""
        if torch.is_grad_enabled() and self.training:
            self._cache.clear()
            return self.filter(length)[0].T
        w = self.implicit_filter[0].weight
        key = (w.device, w.dtype, w._version, self.pos_emb.z._version, length)
        k = self._cache.get(key)
        if k is None:
            self._cache.clear()
            k = self._cache[key] = self.filter(length)[0].T.contiguous()
        return k


class HyenaOperator(nn.Module):
    """Order-2 Hyena mixer: projections, causal short filter, gated causal long convolution."""

    def __init__(self, cfg: HyenaConfig, *, fft_max_bytes: int | None) -> None:
        super().__init__()
        d = cfg.d_model
        self.d_model = d
        self.l_max = cfg.max_seq_len
        self.fft_max_bytes = fft_max_bytes
        inner = d * (cfg.hyena_order + 1)
        self.in_proj = nn.Linear(d, inner)
        self.out_proj = nn.Linear(d, d)
        self.short_filter = nn.Conv1d(
            inner, inner, cfg.short_filter_order, padding=_SHORT_FILTER_PADDING, groups=inner
        )
        self.filter_fn = HyenaFilter(cfg)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """[B, L, D] -> [B, L, D]."""
        length = y.shape[1]
        u = self.in_proj(y).transpose(1, 2)  # [B, 3D, L]
        uc = self.short_filter(u)[..., :length]  # padding 2, keep the first L: causal for k=3
        del u
        x0, x1, v = uc.split(self.d_model, dim=1)
        k = self.filter_fn.kernel(length)
        skip = self.filter_fn.bias if self.filter_fn.use_bias else None
        v = fftconv(v * x1, k, skip, max_bytes=self.fft_max_bytes)
        return self.out_proj((v * x0).transpose(1, 2))


class Mlp(nn.Module):
    def __init__(self, d_model: int, d_inner: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_inner)
        self.fc2 = nn.Linear(d_inner, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class HyenaBlock(nn.Module):
    """Pre-norm block; the residual stream is kept in float32 (as upstream)."""

    def __init__(self, cfg: HyenaConfig, *, fft_max_bytes: int | None, mlp_chunk: int) -> None:
        super().__init__()
        self.mixer = HyenaOperator(cfg, fft_max_bytes=fft_max_bytes)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=_BLOCK_NORM_EPS)
        self.mlp = Mlp(cfg.d_model, cfg.d_inner)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=_BLOCK_NORM_EPS)
        self.mlp_chunk = mlp_chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x.float()
        x = r + self.mixer(self.norm1(r)).float()
        length = x.shape[1]
        if length <= self.mlp_chunk:
            return x + self.mlp(self.norm2(x))
        # position-wise, so slicing along L is exact and bounds the [B, L, d_inner] temporary
        out = torch.empty_like(x)
        for s in range(0, length, self.mlp_chunk):
            xs = x[:, s : s + self.mlp_chunk]
            out[:, s : s + self.mlp_chunk] = xs + self.mlp(self.norm2(xs))
        return out


class Embeddings(nn.Module):
    def __init__(self, cfg: HyenaConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.d_model)


class LMBackbone(nn.Module):
    """Embedding (no positional embedding; upstream never applies its dropout) -> blocks -> ln_f."""

    def __init__(self, cfg: HyenaConfig, *, fft_max_bytes: int | None, mlp_chunk: int) -> None:
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(
            HyenaBlock(cfg, fft_max_bytes=fft_max_bytes, mlp_chunk=mlp_chunk) for _ in range(cfg.n_layer)
        )
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)

    def forward(
        self, input_ids: torch.Tensor, *, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Returns ``last_hidden_state`` [B, L, D] (after ln_f) and, when asked, upstream's
        hidden-state list: embeddings, each block's output, then ln_f's output (n_layer + 2)."""
        h = self.embeddings.word_embeddings(input_ids)
        states = [h] if output_hidden_states else None
        for layer in self.layers:
            h = layer(h)
            if states is not None:
                states.append(h)
        h = self.ln_f(h.to(self.ln_f.weight.dtype))
        if states is not None:
            states.append(h)
        return h, states


class _HyenaDNAModel(nn.Module):
    def __init__(self, cfg: HyenaConfig, *, fft_max_bytes: int | None, mlp_chunk: int) -> None:
        super().__init__()
        self.backbone = LMBackbone(cfg, fft_max_bytes=fft_max_bytes, mlp_chunk=mlp_chunk)


class HyenaNetwork(nn.Module):
    """HyenaDNA with one head; follows the :class:`genaannot.models.base.Network` protocol.

    Batches are ``content + [SEP]`` RIGHT-padded with ``[PAD]``. The model has no attention
    mask; right padding is still exact because every position depends only on itself and
    earlier positions, so padding after a sequence cannot reach its real tokens (upstream's
    tokenizer pads on the LEFT, which lets the pad embeddings flow into every real token).
    """

    def __init__(
        self,
        cfg: HyenaConfig,
        *,
        head: str,
        num_labels: int = 0,
        score_bias: bool = False,
        sep_id: int = HYENA_CHAR_VOCAB["[SEP]"],
        pad_id: int = HYENA_CHAR_VOCAB["[PAD]"],
        max_content_tokens: int | None = None,
        bidirectional: bool = False,
        complement: np.ndarray | None = None,
        fft_max_bytes: int | None = 512 << 20,
        mlp_chunk: int = 65536,
    ) -> None:
        super().__init__()
        if head not in ("lm", "sequence", "token"):
            raise ValueError(f"unknown head {head!r}")
        self.cfg = cfg
        self.head = head
        self.content_offset = 0  # content first, [SEP] after it (base.Network)
        self.sep_id, self.pad_id = sep_id, pad_id
        self.max_content_tokens = cfg.max_seq_len - 1 if max_content_tokens is None else max_content_tokens
        self.bidirectional = bidirectional
        self.hyena = _HyenaDNAModel(cfg, fft_max_bytes=fft_max_bytes, mlp_chunk=mlp_chunk)
        if head == "lm":
            self.lm_head = nn.Linear(cfg.d_model, cfg.padded_vocab_size, bias=False)
        else:
            self.score = nn.Linear(cfg.d_model, num_labels, bias=score_bias)
        if bidirectional and complement is None:
            raise ValueError("bidirectional=True needs the complement id table")
        table = torch.as_tensor(complement if complement is not None else np.arange(cfg.padded_vocab_size))
        self.register_buffer("complement", table.long(), persistent=False)

    # -- batch layout -----------------------------------------------------------------

    def get_input_embeddings(self) -> nn.Embedding:
        """The token-embedding table (used by integrated gradients)."""
        return self.hyena.backbone.embeddings.word_embeddings

    def collate(self, content: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """``content [SEP]`` right-padded with [PAD]; ``last_index`` = position of [SEP].

        With ``bidirectional``, ``rc_input_ids`` holds the reverse complement laid out the same way.
        """
        width = max(len(c) for c in content) + 1
        ids = torch.full((len(content), width), self.pad_id, dtype=torch.long)
        last = torch.empty(len(content), dtype=torch.long)
        for i, c in enumerate(content):
            n = len(c)
            ids[i, :n] = torch.from_numpy(np.asarray(c, dtype=np.int64))
            ids[i, n] = self.sep_id
            last[i] = n
        batch = {"input_ids": ids, "last_index": last}
        if self.bidirectional:
            rc = ids.clone()
            for i, c in enumerate(content):
                n = len(c)
                rc[i, :n] = self.complement[ids[i, :n].flip(0)]
            batch["rc_input_ids"] = rc
        return batch

    def split(self, out: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
        """Per input: ``[n, n_labels]`` (token / lm: content positions, [SEP] dropped) or ``[n_labels]``."""
        if self.head == "sequence":
            return [out[i] for i in range(len(lengths))]
        return [out[i, :n] for i, n in enumerate(lengths)]

    # -- computation ------------------------------------------------------------------

    def pool_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Upstream's pooled position: ``argmax(input_ids == pad) - 1`` resolved to >= 0."""
        pos = (input_ids == self.cfg.pad_token_id).int().argmax(dim=-1) - 1
        return pos % input_ids.shape[1]

    def _head(self, h: torch.Tensor, last_index: torch.Tensor | None, input_ids: torch.Tensor) -> torch.Tensor:
        if self.head == "lm":
            return self.lm_head(h).float()
        if self.head == "token":
            return self.score(h)
        pos = self.pool_positions(input_ids) if last_index is None else last_index
        pooled = h[torch.arange(h.shape[0], device=h.device), pos]
        return self.score(pooled)

    def forward(
        self,
        input_ids: torch.Tensor,
        last_index: torch.Tensor | None = None,
        rc_input_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits: ``[B, L, n_labels]`` (token, lm) or ``[B, n_labels]`` (sequence).

        ``last_index`` [B] is the position pooled by the sequence head; without it upstream's
        rule is used (``argmax(input_ids == pad) - 1``).
        """
        if input_ids.shape[1] > self.cfg.max_seq_len:
            raise ModelError(
                f"HyenaDNA input of {input_ids.shape[1]} tokens exceeds max_seq_len {self.cfg.max_seq_len}"
            )
        h, _ = self.hyena.backbone(input_ids)
        out = self._head(h, last_index, input_ids)
        if rc_input_ids is None:
            return out
        h_rc, _ = self.hyena.backbone(rc_input_ids)
        out_rc = self._head(h_rc, last_index, rc_input_ids)
        if self.head == "sequence":
            return (out + out_rc) / 2
        # flip each row's content back: rc position j holds forward position n - 1 - j
        width = input_ids.shape[1]
        j = torch.arange(width, device=input_ids.device)[None, :]
        n = (last_index if last_index is not None else self.pool_positions(input_ids))[:, None]
        src = torch.where(j < n, n - 1 - j, j)
        out_rc = out_rc.gather(1, src[..., None].expand_as(out_rc))
        return (out + out_rc) / 2


# --------------------------------------------------------------------------- loading


def fit_state_dict(network: HyenaNetwork, sd: dict[str, torch.Tensor], *, source: str) -> None:
    """Load strictly. The one Sin module a filter shares at ``implicit_filter.1/.3/.5`` is a
    tied parameter here, so its ``freq`` stored once (as transformers 4.35 saved it) fills all
    three, and differing copies are refused (see :func:`genaannot.models.weights.load_strict`)."""
    load_strict(network, sd, source=source)


def _architecture(config: dict[str, Any], sd: dict[str, torch.Tensor], source: str) -> str:
    archs = [a for a in (config.get("architectures") or []) if a in ARCHITECTURES]
    if archs:
        return archs[0]
    if "lm_head.weight" in sd:
        return "HyenaDNAForCausalLM"
    raise ModelError(
        f"{source}: cannot tell the HyenaDNA head: architectures {config.get('architectures')} "
        f"(supported: {', '.join(ARCHITECTURES)})"
    )


def _check_tokenizer_files(path: Path) -> None:
    """The vocabulary is fixed in upstream code; refuse a tokenizer_config that disagrees."""
    tc = read_tokenizer_config(path)
    if tc is None:
        return
    decoder = tc.get("added_tokens_decoder") or {}
    if not isinstance(decoder, dict):
        raise ModelError(f"{path / TOKENIZER_CONFIG}: added_tokens_decoder must be an object, not {type(decoder).__name__}")
    for idx, entry in decoder.items():
        tok = entry.get("content") if isinstance(entry, dict) else None
        if tok in HYENA_CHAR_VOCAB and str(HYENA_CHAR_VOCAB[tok]) != str(idx).strip():
            raise ModelError(f"{path / TOKENIZER_CONFIG}: {tok} has id {idx}, HyenaDNA's fixed vocabulary "
                             f"has {HYENA_CHAR_VOCAB[tok]}")


def load(
    path: Path,
    *,
    config: dict[str, Any],
    bidirectional: bool = False,
    max_tokens: int | None = None,
    fft_memory_mb: int = 512,
    **options: Any,
) -> Loaded:
    """Load a HyenaDNA checkpoint directory (config.json + weights).

    Parameters
    ----------
    path
        Checkpoint directory.
    config
        Its parsed ``config.json``.
    bidirectional
        Also run the reverse complement and average (see the module docstring).
    max_tokens
        Content bases per input (default and maximum ``max_seq_len - 1``; [SEP] takes one).
    fft_memory_mb
        Budget of the long convolution's FFT temporaries per layer (exactness unaffected).
    """
    if options:
        raise ModelError(f"HyenaDNA: unknown load option(s) {', '.join(sorted(options))}")
    path = Path(path)
    config_source = str(path / "config.json")
    cfg = HyenaConfig.from_dict(config, source=config_source)
    check_labels(config, source=config_source)
    if cfg.hyena_order != 2:
        raise ModelError(f"{path}: hyena_order {cfg.hyena_order}; the HyenaDNA port supports order 2 only")
    if cfg.short_filter_order != 3:
        warnings.warn(
            f"short_filter_order {cfg.short_filter_order}: upstream's padding of 2 makes the short filter "
            "non-causal for orders other than 3; reproduced as upstream computes it",
            stacklevel=2,
        )
    if cfg.vocab_size < len(HYENA_CHAR_VOCAB):
        raise ModelError(f"{path}: vocab_size {cfg.vocab_size} < the {len(HYENA_CHAR_VOCAB)} character tokens")
    _check_tokenizer_files(path)
    sd = read_weights(path)
    arch = _architecture(config, sd, str(path))
    head = ARCHITECTURES[arch]
    num_labels, score_bias = 0, False
    if head != "lm":
        if "score.weight" not in sd:
            raise ModelError(f"{path}: {arch} checkpoint has no score.weight")
        num_labels = int(sd["score.weight"].shape[0])  # the file decides, not PretrainedConfig's default 2
        score_bias = "score.bias" in sd
        said = len(config["id2label"]) if config.get("id2label") else config.get("num_labels")
        if said is not None and int(said) != num_labels:  # GENA and ModernBERT refuse this too
            raise ModelError(f"{path}: config.json has {int(said)} labels, score.weight has {num_labels}; "
                             "config.json and the weights belong to different models")
    limit = cfg.max_seq_len - 1
    if max_tokens is not None and not 0 < int(max_tokens) <= limit:
        raise ModelError(f"max_tokens {max_tokens}: HyenaDNA takes 1..{limit} bases (max_seq_len - 1)")
    tokenizer = CharTokenizer(HYENA_CHAR_VOCAB, name="hyenadna-char")
    # config vs weights before any allocation: layer and filter-MLP counts, then shapes on the meta device
    source = str(path)
    check_count(config, "n_layer", sd, "hyena.backbone.layers.", source=config_source, weights=source)
    check_count(config, "num_inner_mlps", sd, "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.",
                suffix="weight", source=config_source, weights=source, expected=cfg.num_inner_mlps + 2)

    def build() -> HyenaNetwork:
        comp = np.arange(cfg.padded_vocab_size)
        for a, b in ("AT", "TA", "CG", "GC"):
            comp[HYENA_CHAR_VOCAB[a]] = HYENA_CHAR_VOCAB[b]
        return HyenaNetwork(
            cfg,
            head=head,
            num_labels=num_labels,
            score_bias=score_bias,
            sep_id=tokenizer.sep_id,
            pad_id=tokenizer.pad_id,
            max_content_tokens=int(max_tokens) if max_tokens is not None else None,
            bidirectional=bidirectional,
            complement=comp,
            fft_max_bytes=int(fft_memory_mb) << 20,
        )

    # the vocabulary sizes the complement table: it must match the embedding rows before that is built
    emb = sd.get("hyena.backbone.embeddings.word_embeddings.weight")
    if emb is None or emb.shape[0] != cfg.padded_vocab_size:
        has = "no word embeddings" if emb is None else f"word embeddings of {emb.shape[0]} rows"
        raise ModelError(f"{config_source}: vocab_size {cfg.vocab_size} (padded to {cfg.padded_vocab_size}) but "
                         f"{source} has {has}; config.json and the weights belong to different models")
    check_on_meta(build, sd, source=source, config_source=config_source)
    network = build()
    fit_state_dict(network, sd, source=source)
    network.eval()
    if head == "lm":
        inv = {i: t for t, i in HYENA_CHAR_VOCAB.items()}
        labels = tuple(inv.get(i, f"[unused{i}]") for i in range(cfg.padded_vocab_size))
    else:
        id2label = config.get("id2label") or {}
        labels = tuple(str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(num_labels))
    info = ModelInfo(
        family="hyena",
        architecture=arch,
        head=head,
        labels=labels,
        problem_type=config.get("problem_type"),
        max_tokens=network.max_content_tokens,
        resolution="base",
        n_params=sum(p.numel() for p in network.parameters()),
        source=str(path),
        tokenizer=tokenizer.name,
        extra={"max_seq_len": cfg.max_seq_len, "bidirectional": bidirectional, "d_model": cfg.d_model},
    )
    return Loaded(network, tokenizer, info)



# --------------------------------------------------------------------------- training (family contract)

#: state-dict prefix of the backbone (everything but the ``score`` / ``lm_head`` head)
BODY = ("hyena.",)


def _complement_table(cfg: HyenaConfig) -> np.ndarray:
    comp = np.arange(cfg.padded_vocab_size)
    for a, b in ("AT", "TA", "CG", "GC"):
        comp[HYENA_CHAR_VOCAB[a]] = HYENA_CHAR_VOCAB[b]
    return comp


def _tokenizer(tokenizer: Any) -> CharTokenizer:
    """HyenaDNA's own vocabulary; another tokenizer is refused (the embedding rows are its ids)."""
    own = CharTokenizer(HYENA_CHAR_VOCAB, name="hyenadna-char")
    if tokenizer is not None and getattr(tokenizer, "vocab", None) != HYENA_CHAR_VOCAB:
        raise TrainError("HyenaDNA has a fixed one-token-per-base vocabulary; leave --tokenizer out")
    return own


def _trainable_network(cfg: HyenaConfig, head: HeadSpec, *, score_bias: bool) -> HyenaNetwork:
    return HyenaNetwork(cfg, head=head.head, num_labels=len(head.labels), score_bias=score_bias,
                        complement=_complement_table(cfg))


def _expand_shared_freq(sd: dict[str, torch.Tensor], cfg: HyenaConfig) -> dict[str, torch.Tensor]:
    """Give every Sin position (1, 3, 5, ...) of a filter MLP the one ``freq`` stored at position 1."""
    out = dict(sd)
    for k, v in sd.items():
        if k.endswith(".implicit_filter.1.freq"):
            stem = k[: -len("1.freq")]
            for i in range(3, 2 * (cfg.num_inner_mlps + 1) + 1, 2):
                out.setdefault(f"{stem}{i}.freq", v)
    return out


def from_checkpoint(
    path: Path,
    *,
    config: dict[str, Any],
    head: HeadSpec,
    tokenizer: Any,
    window_tokens: int,
    options: Mapping[str, Any],
) -> Trainable:
    """Fine-tune a HyenaDNA checkpoint: the backbone (``hyena.*``, the filters' ``z``/``t``/
    ``deltas`` buffers included) and, when the checkpoint has a head of the kind and size
    asked for, its ``score`` layer; otherwise (``HyenaDNAForCausalLM``, another task) a new
    ``score`` (Linear, no bias, as upstream's classifier). Trained: every parameter; the
    positional buffers stay as read."""
    no_options("hyena", options)
    path = Path(path)
    cfg = HyenaConfig.from_dict(config, source=str(path / "config.json"))
    tok = _tokenizer(tokenizer)
    sd = _expand_shared_freq(read_weights(path), cfg)
    base_head = ARCHITECTURES[_architecture(config, sd, str(path))]
    net = _trainable_network(cfg, head, score_bias=base_head == head.head and "score.bias" in sd)
    fit, kept = transfer_weights(net.state_dict(), sd, body=BODY, same_head_kind=base_head == head.head,
                                 source=str(path))
    net.load_state_dict(fit, strict=False)
    cfg_dict = {k: v for k, v in config.items() if k not in ("auto_map", "dtype", "torch_dtype", "transformers_version")}
    cfg_dict.update(labels_config(head))
    return Trainable(family="hyena", network=net, tokenizer=tok, config=cfg_dict, base_model=str(path),
                     base_head="kept" if kept else "new")


def fresh(
    *, head: HeadSpec, tokenizer: Any, window_tokens: int, arch: ArchConfig, options: Mapping[str, Any]
) -> Trainable:
    """A randomly initialised HyenaDNA (upstream's defaults and initialisation) for
    ``window_tokens`` bases: ``d_model = arch.hidden_size``, ``n_layer = arch.layers``,
    ``d_inner = arch.intermediate_size`` (default ``4 * d_model``), ``max_seq_len =
    window_tokens + 1`` ([SEP] takes one position).

    Options: ``filter_order`` (default 64), ``emb_dim`` (5, odd), ``activation_freq`` (10).
    """
    no_options("hyena", options, ("filter_order", "emb_dim", "activation_freq"))
    emb_dim = int(options.get("emb_dim", 5))
    if emb_dim < 3 or emb_dim % 2 == 0:
        raise TrainError(f"hyena: emb_dim {emb_dim} must be odd and >= 3 (t, then cos/sin bands)")
    config: dict[str, Any] = {
        "activation_freq": float(options.get("activation_freq", 10.0)),
        "architectures": [_ARCH_OF_HEAD[head.head]],
        "d_inner": arch.intermediate_size or 4 * arch.hidden_size,
        "d_model": arch.hidden_size,
        "emb_dim": emb_dim,
        "embed_dropout": 0.0,
        "filter_order": int(options.get("filter_order", 64)),
        "hyena_dropout": 0.0,
        "hyena_filter_dropout": 0.0,
        "hyena_order": 2,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-5,
        "max_seq_len": window_tokens + 1,
        "model_type": "hyenadna",
        "n_layer": arch.layers,
        "num_inner_mlps": 2,
        "pad_token_id": HYENA_CHAR_VOCAB["[PAD]"],
        "pad_vocab_size_multiple": 8,
        "short_filter_order": 3,
        "tie_word_embeddings": False,
        "train_freq": True,
        "use_bias": True,
        "vocab_size": len(HYENA_CHAR_VOCAB),
        **labels_config(head),
    }
    cfg = HyenaConfig.from_dict(config)
    net = _trainable_network(cfg, head, score_bias=False)
    _init_upstream_(net, cfg, initializer_range=config["initializer_range"])
    return Trainable(family="hyena", network=net, tokenizer=_tokenizer(tokenizer), config=config,
                     tokenizer_kind="own")


@torch.no_grad()
def _init_upstream_(net: HyenaNetwork, cfg: HyenaConfig, *, initializer_range: float) -> None:
    """Upstream's initialisation: Linear and Embedding weights N(0, initializer_range), biases
    0, ``out_proj``/``fc2`` weights scaled by ``1/sqrt(2 n_layer)``; the filters' positional
    buffers from upstream's constructor formulas."""
    import math

    for name, m in net.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            std = initializer_range
            if name.endswith(("out_proj", "fc2")):
                std /= math.sqrt(2 * cfg.n_layer)
            m.weight.normal_(0.0, std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.zero_()
    length, bands = cfg.max_seq_len, (cfg.emb_dim - 1) // 2
    t = torch.linspace(0, 1, length)[None, :, None]
    f = torch.linspace(1e-4, bands - 1, bands)[None, None]
    w = 2 * math.pi * torch.arange(length)[None, :, None] / length
    z = torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1)
    width = cfg.d_model * (cfg.hyena_order - 1)
    deltas = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, width)[None, None]
    for layer in net.hyena.backbone.layers:
        filt = layer.mixer.filter_fn
        filt.pos_emb.z.copy_(z)
        filt.pos_emb.t.copy_(t)
        filt.modulation.deltas.copy_(deltas)


#: head -> config.json architecture
_ARCH_OF_HEAD = {v: k for k, v in ARCHITECTURES.items()}


def save_trainable(trainable: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path:
    """``config.json`` (upstream keys, ``architectures`` and labels set), ``model.safetensors``
    laid out as the hub checkpoints (each filter's shared Sin ``freq`` stored once, as
    ``implicit_filter.1.freq``), the tokenizer side files and ``genaannot.json``."""
    from ..io.checkpoint import write_model_dir

    net: HyenaNetwork = trainable.network
    config = {**trainable.config, "architectures": [_ARCH_OF_HEAD[net.head]]}
    return write_model_dir(directory, tensors=unique_tensors(net.state_dict()), config=config,
                           tokenizer=trainable.tokenizer, metadata=metadata)
