"""GENA-LM BigBird: stock ``transformers`` BigBird classes, fixed-length tiles.

Two behaviours of stock BigBird matter for reproducible tracks:

1. with ``block_sparse`` attention the first and last blocks are global, so the same tokens
   padded to a different length give different logits. Every input is therefore padded
   (with [PAD], masked) to one fixed tile length (default ``max_position_embeddings``, as
   GENA-Web does); the tile is part of the model's behaviour and is reported in
   ``ModelInfo.extra``;
2. a forward pass on a short sequence switches the model to full attention *permanently*
   (``set_attention_type("original_full")``). With fixed tiles that cannot happen, and the
   configured attention type is restored before every forward pass anyway.

In eval mode BigBird's random blocks are deterministic, so results are reproducible.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io.tokenizers import load_tokenizer
from ..io.weights import read_weights
from .base import Loaded, ModelError, ModelInfo, collate_cls_sep, split_cls_sep
from .compat import skip_weight_init
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
from .weights import load_strict, n_parameters

__all__ = ["BigBirdNetwork", "load", "HEAD_CLASSES", "min_sparse_tokens", "from_checkpoint", "fresh", "save_trainable"]

#: `architectures` class name -> head
HEAD_CLASSES: dict[str, str] = {
    "BigBirdForMaskedLM": "mlm",
    "BigBirdForSequenceClassification": "sequence",
    "BigBirdForTokenClassification": "token",
}
_CLASS_OF_HEAD = {v: k for k, v in HEAD_CLASSES.items()}

IGNORED_KEYS: tuple[str, ...] = ("embeddings.position_ids",)

#: config.json sizes (whole numbers >= 1) and other fields checked before the network is built
SIZE_KEYS: tuple[str, ...] = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                              "intermediate_size", "max_position_embeddings", "type_vocab_size", "block_size",
                              "num_random_blocks")
FIELD_KINDS: dict[str, str] = {"attention_type": "str", "hidden_act": "str", "architectures": "list[str]",
                               "layer_norm_eps": "number", "hidden_dropout_prob": "number",
                               "attention_probs_dropout_prob": "number", "problem_type": "str"}


def min_sparse_tokens(config: Any) -> int:
    """Inputs of at most this many tokens make BigBird fall back to full attention."""
    return (5 + 2 * config.num_random_blocks) * config.block_size


class BigBirdNetwork(nn.Module):
    """A transformers BigBird model behind the Network protocol.

    Attributes
    ----------
    head : "token" | "sequence" | "mlm"
    tile : int
        Every batch is padded to exactly this many tokens.
    max_content_tokens : int
        ``tile - 2``.
    """

    def __init__(self, model: nn.Module, *, head: str, tile: int, cls_id: int, sep_id: int, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.content_offset = 1  # after [CLS] (base.Network)
        self.tile = tile
        self.max_content_tokens = tile - 2
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.attention_type = model.config.attention_type

    def get_input_embeddings(self) -> nn.Embedding:
        """The token-embedding table (used by integrated gradients)."""
        return self.model.get_input_embeddings()

    def collate(self, content: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """``[CLS] content [SEP]`` padded with [PAD] (masked) to the fixed tile."""
        return collate_cls_sep(content, cls_id=self.cls_id, sep_id=self.sep_id, pad_id=self.pad_id, tile=self.tile)

    def check_precision(self, *, device: str, precision: str) -> None:
        """Raise ``ValueError`` where this transformers' block-sparse attention cannot run at
        ``precision`` on ``device`` (called at load by :class:`~genaannot.models.base.Model`).

        transformers 5.x rebuilds the attention probabilities with ``scatter_`` into a tensor
        of the context's dtype; CPU autocast leaves softmax in the reduced dtype, so the two
        differ and every forward pass fails (transformers 4.x assigned by index, which
        casts). Probed on a tiny block-sparse BigBird of the installed classes, once per
        precision."""
        if precision == "fp32" or device.split(":")[0] != "cpu" or self.attention_type != "block_sparse":
            return
        err = _block_sparse_cpu_autocast_error(precision)
        if err is not None:
            import transformers

            raise ValueError(
                f"precision {precision} on CPU: BigBird's block-sparse attention fails under CPU autocast with "
                f"transformers {transformers.__version__} ({err}); use --precision fp32 on a CPU "
                "(bf16/fp16 are for CUDA), or transformers 4.x (the pinned 4.56.2 runs it)"
            )

    def reset_attention_type(self) -> None:
        # BigBird switches itself to full attention for good after a short input
        if self.model.base_model.attention_type != self.attention_type:
            self.model.base_model.set_attention_type(self.attention_type)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, tile, n]`` (token/mlm) or ``[B, n]`` (sequence)."""
        self.reset_attention_type()
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def split(self, out: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
        return split_cls_sep(out, lengths, head="sequence" if self.head == "sequence" else "token")


@functools.cache
def _block_sparse_cpu_autocast_error(precision: str) -> str | None:
    """The error a tiny block-sparse BigBird of the installed transformers raises under CPU
    autocast at ``precision`` (``bf16``/``fp16``), or None when it runs."""
    from transformers import BigBirdConfig, BigBirdModel

    cfg = BigBirdConfig(vocab_size=128, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
                        max_position_embeddings=64, block_size=2, num_random_blocks=1, attention_type="block_sparse")
    with torch.random.fork_rng():  # the probe's random weights leave the caller's generator as it was
        torch.manual_seed(0)
        net = BigBirdModel(cfg).eval()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    ids = torch.arange(3, 35)[None]  # 16 blocks: block-sparse, not the short-input fallback
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype):
            net(input_ids=ids, attention_mask=torch.ones_like(ids))
    except RuntimeError as err:
        return str(err).splitlines()[0]
    return None


def _choose_head(config: dict[str, Any], state: dict[str, torch.Tensor], *, source: str) -> str:
    """``architectures`` when it names a head, else the weights' (load_strict checks the fit)."""
    archs = config.get("architectures") or []
    claimed = [HEAD_CLASSES[a] for a in archs if a in HEAD_CLASSES]
    if claimed:
        return claimed[0]
    if archs:
        raise ModelError(f"{source}: unsupported architectures {archs}; supported: {', '.join(HEAD_CLASSES)}")
    if any(k.startswith("classifier.") for k in state):
        # sequence heads are classifier.dense + classifier.out_proj; token heads a plain Linear
        return "sequence" if "classifier.out_proj.weight" in state else "token"
    if any(k.startswith("cls.predictions.") for k in state):
        return "mlm"
    raise ModelError(f"{source}: no architectures in config.json and no head weights")


def load(path: Path, *, config: dict[str, Any], **options: Any) -> Loaded:
    """Load a BigBird checkpoint directory (family ``bigbird``).

    Options
    -------
    tile_tokens : int, fixed input length in tokens (default ``max_position_embeddings``);
        a multiple of ``block_size`` above the full-attention threshold.
    tokenizer : tokenizer directory when the checkpoint has none.
    """
    from transformers import (
        BigBirdConfig,
        BigBirdForMaskedLM,
        BigBirdForSequenceClassification,
        BigBirdForTokenClassification,
    )

    path = Path(path)
    unknown = set(options) - {"tile_tokens", "tokenizer"}
    if unknown:
        raise ModelError(f"bigbird: unknown options {sorted(unknown)} (known: tile_tokens, tokenizer)")
    if config.get("model_type") != "big_bird":
        raise ModelError(f"{path}: model_type {config.get('model_type')!r} is not big_bird")
    config_source = str(path / "config.json")
    check_sizes(config, SIZE_KEYS, source=config_source)
    check_sizes(config, ["pad_token_id"], source=config_source, minimum=0)
    check_types(config, FIELD_KINDS, source=config_source)
    check_labels(config, source=config_source)
    cfg_dict = {k: v for k, v in config.items() if k not in ("auto_map", "transformers_version", "dtype", "torch_dtype")}
    try:
        cfg = BigBirdConfig(**cfg_dict)
    except Exception as err:  # noqa: BLE001 - transformers rejects odd fields in its own ways
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"{config_source}: not a usable BigBird config ({type(err).__name__}: {first})") from None
    source = str(path)
    state = read_weights(path)
    head = _choose_head(config, state, source=source)
    cls = {"token": BigBirdForTokenClassification, "sequence": BigBirdForSequenceClassification, "mlm": BigBirdForMaskedLM}[head]
    claimed = any(a in HEAD_CLASSES for a in config.get("architectures") or [])
    hint = (f"config.json says {_CLASS_OF_HEAD[head]}; the checkpoint is incomplete or config.json belongs to "
            "another model") if claimed else f"no architectures in config.json; read as {_CLASS_OF_HEAD[head]}"
    # config vs weights before any allocation: layer count, then every shape on the meta device
    check_count(config, "num_hidden_layers", state, "bert.encoder.layer.", source=config_source, weights=source,
                expected=cfg.num_hidden_layers)

    def build() -> nn.Module:
        with skip_weight_init():  # every tensor is overwritten by the checkpoint
            return cls(cfg)

    check_on_meta(build, state, source=source, config_source=config_source, ignore=IGNORED_KEYS, hint=hint)
    model = build()
    load_strict(model, state, source=source, ignore=IGNORED_KEYS, hint=hint)
    model.eval()

    tile = int(options.get("tile_tokens") or cfg.max_position_embeddings)
    if tile > cfg.max_position_embeddings:
        raise ModelError(f"tile_tokens {tile} exceeds max_position_embeddings {cfg.max_position_embeddings}")
    if cfg.attention_type == "block_sparse":
        if tile % cfg.block_size:
            raise ModelError(f"tile_tokens {tile} must be a multiple of block_size {cfg.block_size}")
        if tile <= min_sparse_tokens(cfg):
            raise ModelError(
                f"tile_tokens {tile} is too short for block_sparse attention (needs > {min_sparse_tokens(cfg)})"
            )
    tokenizer = load_tokenizer(Path(options["tokenizer"]) if options.get("tokenizer") else path)
    net = BigBirdNetwork(model, head=head, tile=tile, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id, pad_id=cfg.pad_token_id)
    labels = tuple(cfg.id2label[i] for i in range(cfg.num_labels)) if head != "mlm" else ()
    info = ModelInfo(
        family="bigbird",
        architecture=_CLASS_OF_HEAD[head],
        head=head,
        labels=labels,
        problem_type=cfg.problem_type if head != "mlm" else None,  # made explicit by load_model
        max_tokens=net.max_content_tokens,
        resolution="token",
        n_params=n_parameters(model),
        source=str(path),
        tokenizer=tokenizer.name,
        extra={
            "attention_type": cfg.attention_type,
            "block_size": cfg.block_size,
            "num_random_blocks": cfg.num_random_blocks,
            "tile_tokens": tile,
        },
    )
    return Loaded(net, tokenizer, info)


# --------------------------------------------------------------------------- training (family contract)

#: state-dict prefix of the encoder (BigBirdModel: embeddings, encoder, pooler)
BODY = ("bert.embeddings.", "bert.encoder.")

#: config.json keys that are not architecture (dropped before BigBirdConfig)
_NOT_CONFIG = ("auto_map", "transformers_version", "dtype", "torch_dtype", "_name_or_path")


def _trainable(config: dict[str, Any], head: HeadSpec, tokenizer: Any, *, source: str) -> tuple[nn.Module, BigBirdNetwork]:
    import transformers
    from transformers import BigBirdConfig

    cfg_dict = {k: v for k, v in config.items() if k not in _NOT_CONFIG}
    cfg_dict.update(labels_config(head))
    cfg_dict["architectures"] = [_CLASS_OF_HEAD[head.head]]
    try:
        cfg = BigBirdConfig(**cfg_dict)
    except Exception as err:  # noqa: BLE001 - transformers rejects odd fields in its own ways
        raise TrainError(f"{source}: not a usable BigBird config ({type(err).__name__}: {err})") from None
    if tokenizer.vocab_size > cfg.vocab_size:
        raise TrainError(f"tokenizer has {tokenizer.vocab_size} tokens but {source} only {cfg.vocab_size} embeddings")
    model = getattr(transformers, _CLASS_OF_HEAD[head.head])(cfg)
    tile = cfg.max_position_embeddings
    if cfg.attention_type == "block_sparse" and (tile % cfg.block_size or tile <= min_sparse_tokens(cfg)):
        raise TrainError(f"{source}: max_position_embeddings {tile} is no block-sparse tile (a multiple of block_size "
                         f"{cfg.block_size} above {min_sparse_tokens(cfg)})")
    # trained on the tile load() uses by default, so that training and inference pad alike
    net = BigBirdNetwork(model, head=head.head, tile=tile, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id,
                         pad_id=cfg.pad_token_id)
    return model, net


def from_checkpoint(
    path: Path,
    *,
    config: dict[str, Any],
    head: HeadSpec,
    tokenizer: Any,
    window_tokens: int,
    options: Mapping[str, Any],
) -> Trainable:
    """Fine-tune a BigBird checkpoint (e.g. the MLM ``gena-lm-bigbird-base-t2t``): its
    embeddings and encoder (``bert.*``; the pooler too when it has one), and its head when it
    is of the kind and size asked for; otherwise a new transformers head
    (``BigBirdForTokenClassification``: ``classifier``; ``...ForSequenceClassification``:
    ``classifier.dense`` + ``classifier.out_proj``). Every input is padded to the fixed tile
    ``max_position_embeddings`` in training as at inference (block-sparse attention depends on
    the padded length); random blocks are redrawn each training step, as in BigBird."""
    no_options("bigbird", options)
    path = Path(path)
    tok = tokenizer or load_tokenizer(path)
    state = read_weights(path)
    base_head = _choose_head(config, state, source=str(path))
    model, net = _trainable(config, head, tok, source=str(path))
    fit, kept = transfer_weights(model.state_dict(), state, body=BODY, same_head_kind=base_head == head.head,
                                 source=str(path), optional=IGNORED_KEYS)
    own = model.state_dict()
    fit.update({k: v for k, v in state.items() if k.startswith("bert.pooler.") and k in own and own[k].shape == v.shape})
    model.load_state_dict(fit, strict=False)
    return Trainable(family="bigbird", network=net, tokenizer=tok, config=None, base_model=str(path),
                     base_head="kept" if kept else "new")


def fresh(
    *, head: HeadSpec, tokenizer: Any, window_tokens: int, arch: ArchConfig, options: Mapping[str, Any]
) -> Trainable:
    """A randomly initialised block-sparse BigBird (transformers' initialisation):
    ``arch.hidden_size``, ``layers``, ``heads``, ``intermediate_size``, ``dropout``; the tile
    (``max_position_embeddings``) is ``window_tokens + 2`` rounded up to a block multiple above
    the full-attention threshold. Options: ``block_size`` (64), ``num_random_blocks`` (3)."""
    no_options("bigbird", options, ("block_size", "num_random_blocks"))
    if tokenizer is None:
        raise TrainError("a fresh BigBird needs a tokenizer (char, bpe or a tokenizer.json)")
    if arch.hidden_size % arch.heads:
        raise TrainError(f"--hidden-size {arch.hidden_size} must be a multiple of --heads {arch.heads}")
    block, rand = int(options.get("block_size", 64)), int(options.get("num_random_blocks", 3))
    tile = max(window_tokens + 2, (5 + 2 * rand) * block + 1)
    tile += -tile % block
    config = {
        "model_type": "big_bird", "vocab_size": tokenizer.vocab_size, "hidden_size": arch.hidden_size,
        "num_hidden_layers": arch.layers, "num_attention_heads": arch.heads,
        "intermediate_size": arch.intermediate_size or 4 * arch.hidden_size, "hidden_dropout_prob": arch.dropout,
        "attention_probs_dropout_prob": arch.dropout, "max_position_embeddings": tile, "block_size": block,
        "num_random_blocks": rand, "attention_type": "block_sparse", "pad_token_id": tokenizer.pad_id,
        "bos_token_id": tokenizer.cls_id, "eos_token_id": tokenizer.sep_id, "sep_token_id": tokenizer.sep_id,
    }
    _model, net = _trainable(config, head, tokenizer, source="a fresh BigBird")
    return Trainable(family="bigbird", network=net, tokenizer=tokenizer, config=None)


def save_trainable(trainable: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path:
    """``config.json`` (transformers' ``to_dict``), ``model.safetensors`` and the tokenizer files."""
    from ..io.checkpoint import write_model_dir

    model = trainable.network.model
    config = model.config.to_dict()
    config["architectures"] = [_CLASS_OF_HEAD[trainable.network.head]]
    return write_model_dir(directory, tensors=unique_tensors(model.state_dict()), config=config,
                           tokenizer=trainable.tokenizer, metadata=metadata)
