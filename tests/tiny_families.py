"""Tiny HyenaDNA and modernGENA checkpoint directories with random weights, built at test time.

They are laid out like the real hub checkpoints, so they load through
:func:`genaannot.load_model` exactly like downloaded ones:

- :func:`make_hyena_dir`: ``config.json`` (upstream keys), ``model.safetensors`` written the
  transformers-4.35 way (the shared Sin ``freq`` stored once, as ``implicit_filter.1.freq``),
  and the upstream tokenizer side files. Buffers ``z``, ``t`` and ``deltas`` follow upstream's
  constructor formulas, with ``z`` perturbed so that a loader must read it from the file.
- :func:`make_modernbert_dir`: a converter-layout (transformers 4.x) or transformers-5
  layout ``config.json``, ``model.safetensors`` as ``save_pretrained`` writes it, and the
  bundled GENA t2t tokenizer (32000 entries; the embedding has 32768 rows, as modernGENA).

Both are deterministic for a given ``seed``; weights are redrawn at a spread where biases,
LayerNorms and every filter matter.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["make_hyena_dir", "make_modernbert_dir", "hyena_config", "randomize_", "T2T_DIR", "random_dna"]

T2T_DIR = Path(__file__).resolve().parents[1] / "genaannot" / "data" / "tokenizers" / "t2t_1000h_multi_32k"

_HYENA_TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    "bos_token": "[BOS]",
    "clean_up_tokenization_spaces": True,
    "cls_token": "[CLS]",
    "eos_token": "[SEP]",
    "mask_token": "[MASK]",
    "pad_token": "[PAD]",
    "padding_side": "left",
    "sep_token": "[SEP]",
    "tokenizer_class": "HyenaDNATokenizer",
    "unk_token": "[UNK]",
}


def random_dna(n: int, *, seed: int = 0, alphabet: str = "ACGT") -> str:
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list(alphabet), size=n))


def randomize_(module: torch.nn.Module, *, seed: int, filter_scale: float = 0.5) -> None:
    """Redraw parameters: matrices N(0, 1/fan_in), vectors N(0, 0.1), LayerNorm weights 1 + N(0, 0.2).

    Inside HyenaDNA's implicit-filter MLP matrices get ``filter_scale`` of that spread (its
    Sin activations amplify float32 rounding, as the upstream fixtures note).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            r = torch.randn(p.shape, generator=g)
            parent = name.split(".")[-2] if "." in name else ""
            if name.endswith("freq"):
                p.copy_(p * torch.exp(0.25 * r))
            elif "norm" in parent or parent.startswith("ln_"):
                p.copy_(1 + 0.2 * r if name.endswith("weight") else 0.1 * r)
            elif p.ndim >= 2 and "embeddings" not in name:
                fan_in = math.prod(p.shape[1:])
                scale = filter_scale if "implicit_filter" in name else 1.0
                p.copy_(r * scale / math.sqrt(fan_in))
            elif "embeddings" in name:
                p.copy_(r)
            elif name.endswith("filter_fn.bias"):
                p.copy_(r)
            else:
                p.copy_(0.1 * r)


def hyena_config(
    *,
    head: str,
    d_model: int,
    n_layer: int,
    max_seq_len: int,
    num_labels: int,
    emb_dim: int = 5,
    filter_order: int = 16,
    activation_freq: float = 10.0,
) -> dict[str, Any]:
    arch = {
        "lm": "HyenaDNAForCausalLM",
        "sequence": "HyenaDNAForSequenceClassification",
        "token": "HyenaDNAForTokenClassification",
    }[head]
    cfg: dict[str, Any] = {
        "activation_freq": activation_freq,
        "architectures": [arch],
        "d_inner": 4 * d_model,
        "d_model": d_model,
        "emb_dim": emb_dim,
        "embed_dropout": 0.1,
        "filter_order": filter_order,
        "hyena_dropout": 0.0,
        "hyena_filter_dropout": 0.0,
        "hyena_order": 2,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-5,
        "max_seq_len": max_seq_len,
        "model_type": "hyenadna",
        "n_layer": n_layer,
        "num_inner_mlps": 2,
        "pad_token_id": 4,
        "pad_vocab_size_multiple": 8,
        "short_filter_order": 3,
        "tie_word_embeddings": False,
        "train_freq": True,
        "use_bias": True,
        "vocab_size": 12,
    }
    if head != "lm":
        cfg["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        cfg["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
        cfg["problem_type"] = "multi_label_classification" if head == "token" else "single_label_classification"
    return cfg


def make_hyena_dir(
    directory: str | Path,
    *,
    head: str = "token",
    d_model: int = 16,
    n_layer: int = 2,
    max_seq_len: int = 1026,
    labels: list[str] | None = None,
    seed: int = 0,
    emb_dim: int = 5,
    filter_order: int = 16,
) -> Path:
    """Write a HyenaDNA checkpoint directory with random weights and return its path.

    ``head``: ``token`` (HyenaDNAForTokenClassification), ``sequence`` or ``lm``.
    ``labels`` default to 3 (token) / 2 (sequence) generic names.
    """
    from safetensors.torch import save_file

    from genaannot.models.hyena import HyenaConfig, HyenaNetwork

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if labels is None:
        labels = ["none", "acceptor", "donor"] if head == "token" else ["negative", "positive"]
    cfg = hyena_config(
        head=head, d_model=d_model, n_layer=n_layer, max_seq_len=max_seq_len, num_labels=len(labels),
        emb_dim=emb_dim, filter_order=filter_order,
    )  # fmt: skip
    if head != "lm":
        cfg["id2label"] = {str(i): name for i, name in enumerate(labels)}
        cfg["label2id"] = {name: i for i, name in enumerate(labels)}
    hc = HyenaConfig.from_dict(cfg)
    net = HyenaNetwork(hc, head=head, num_labels=len(labels) if head != "lm" else 0)
    randomize_(net, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    # upstream constructor formulas for the buffers, z perturbed (real checkpoints trained it)
    length = max_seq_len
    t = torch.linspace(0, 1, length)[None, :, None]
    bands = (emb_dim - 1) // 2
    f = torch.linspace(1e-4, bands - 1, bands)[None, None]
    w = 2 * math.pi * torch.arange(length)[None, :, None] / length
    z = torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1)
    deltas = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, d_model)[None, None]
    sd = {}
    for key, value in net.state_dict().items():
        if ".implicit_filter." in key and key.endswith(".freq") and not key.endswith(".1.freq"):
            continue  # shared Sin module: stored once, like transformers 4.35 wrote it
        if key.endswith("pos_emb.z"):
            value = z + 0.05 * torch.randn(z.shape, generator=g)
        elif key.endswith("pos_emb.t"):
            value = t
        elif key.endswith("modulation.deltas"):
            value = deltas
        sd[key] = value.detach().clone().contiguous()
    save_file(sd, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    (directory / "tokenizer_config.json").write_text(
        json.dumps({**_HYENA_TOKENIZER_CONFIG, "model_max_length": max_seq_len}, indent=2)
    )
    (directory / "special_tokens_map.json").write_text(
        json.dumps({k: v for k, v in _HYENA_TOKENIZER_CONFIG.items() if k.endswith("_token")}, indent=2)
    )
    return directory


def make_modernbert_dir(
    directory: str | Path,
    *,
    head: str = "token",
    hidden_size: int = 16,
    num_layers: int = 3,
    num_heads: int = 2,
    intermediate_size: int = 24,
    labels: list[str] | None = None,
    local_attention: int = 16,
    global_every: int = 2,
    global_theta: float = 160000.0,
    local_theta: float = 10000.0,
    biases: bool = False,
    pooling: str = "mean",
    max_position_embeddings: int = 1024,
    layout: str = "v4",
    seed: int = 0,
) -> Path:
    """Write a modernGENA-style ModernBERT directory with random weights and return its path.

    ``head``: ``token`` or ``sequence``; ``layout``: ``v4`` (converter keys
    ``global_rope_theta``/``local_rope_theta``) or ``v5`` (``rope_parameters``/``layer_types``).
    Labels default to GENATATOR's edge order (token) / negative, positive (sequence).
    """
    import transformers
    from transformers import ModernBertConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if labels is None:
        labels = ["TSS+", "TSS-", "PolyA+", "PolyA-"] if head == "token" else ["negative", "positive"]
    arch = "ModernBertForTokenClassification" if head == "token" else "ModernBertForSequenceClassification"
    cfg: dict[str, Any] = {
        "architectures": [arch],
        "attention_bias": biases,
        "attention_dropout": 0.0,
        "bos_token_id": 50281,
        "classifier_activation": "gelu",
        "classifier_bias": biases,
        "classifier_dropout": 0.0,
        "classifier_pooling": pooling,
        "cls_token_id": 1,
        "decoder_bias": True,
        "deterministic_flash_attn": False,
        "embedding_dropout": 0.0,
        "eos_token_id": 50282,
        "global_attn_every_n_layers": global_every,
        "global_rope_theta": global_theta,
        "hidden_activation": "gelu",
        "hidden_size": hidden_size,
        "initializer_cutoff_factor": 2.0,
        "initializer_range": 0.02,
        "intermediate_size": intermediate_size,
        "layer_norm_eps": 1e-5,
        "local_attention": local_attention,
        "local_rope_theta": local_theta,
        "max_position_embeddings": max_position_embeddings,
        "mlp_bias": biases,
        "mlp_dropout": 0.0,
        "model_type": "modernbert",
        "norm_bias": biases,
        "norm_eps": 1e-5,
        "num_attention_heads": num_heads,
        "num_hidden_layers": num_layers,
        "pad_token_id": 3,
        "position_embedding_type": "absolute",
        "sep_token_id": 2,
        "tie_word_embeddings": True,
        "vocab_size": 32768,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": "multi_label_classification" if head == "token" else "single_label_classification",
    }
    model = getattr(transformers, arch)(ModernBertConfig.from_dict(cfg, attn_implementation="eager"))
    randomize_(model, seed=seed)
    with torch.no_grad():  # small embeddings, as trained BPE models have (the eps then matters)
        model.model.embeddings.tok_embeddings.weight.mul_(0.05)
    from safetensors.torch import save_file

    save_file(
        {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
        str(directory / "model.safetensors"),
        metadata={"format": "pt"},
    )
    if layout == "v5":
        for key in ("global_rope_theta", "local_rope_theta"):
            cfg.pop(key)
        cfg["layer_types"] = [
            "full_attention" if i % global_every == 0 else "sliding_attention" for i in range(num_layers)
        ]
        cfg["rope_parameters"] = {
            "full_attention": {"rope_theta": global_theta, "rope_type": "default"},
            "sliding_attention": {"rope_theta": local_theta, "rope_type": "default"},
        }
    elif layout != "v4":
        raise ValueError(f"layout {layout!r}: v4 or v5")
    (directory / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(T2T_DIR / name, directory / name)
    return directory


def make_dilated_cnn_dir(
    directory: str | Path,
    *,
    head: str = "token",
    labels: tuple[str, ...] = ("none", "acceptor", "donor"),
    channels: int = 6,
    blocks: str = "3:1x1,3:2x1",
    seed: int = 0,
) -> Path:
    """A tiny ``dilated_cnn`` checkpoint, written by the family's own ``fresh`` +
    ``save_trainable`` (genaannot's format: there is no upstream code for this family), with
    randomised weights and BatchNorm statistics so that outputs vary by base."""
    from genaannot.models import dilated_cnn
    from genaannot.models.families import ArchConfig, HeadSpec

    problem = "multi_label_classification" if head == "token" else "single_label_classification"
    setup = dilated_cnn.fresh(head=HeadSpec(head, tuple(labels), problem), tokenizer=None, window_tokens=16,
                              arch=ArchConfig(), options={"channels": channels, "blocks": blocks})
    randomize_(setup.network, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in setup.network.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return dilated_cnn.save_trainable(setup, Path(directory), metadata=None)
