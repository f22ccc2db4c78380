"""modernGENA (``AIRI-Institute/moderngena-*``): stock transformers ModernBERT, no remote code.

The network is transformers' own ``ModernBertForTokenClassification`` /
``ModernBertForSequenceClassification`` / ``ModernBertForMaskedLM`` built from
``config.json``, with genaannot's batch layout around it:

* Both config layouts are read, on either transformers release. The converter and
  transformers 4.x write ``global_rope_theta`` / ``local_rope_theta`` /
  ``global_attn_every_n_layers``; transformers >= 5 writes ``rope_parameters`` /
  ``layer_types`` instead (and 4.x would silently fall back to a global theta of 160000 on
  such a file). Both are read into one :class:`RopeLayout` and written back in the layout
  the installed release reads (:func:`genaannot.models.compat.config_layout`); a field
  missing from both is an error: no default is assumed.
* Only ``input_ids`` and ``attention_mask`` are passed (ModernBERT rejects the
  ``token_type_ids`` the t2t tokenizer files would add).
* ``[CLS] content [SEP]`` right-padded with ``[PAD]`` (mask 0), to the longest input or to a
  fixed ``pad_to`` length: real tokens' logits do not depend on the padding. Pad rows far
  from any real token have no visible key in sliding-window layers; their hidden states are
  zeroed after every layer so that a half-precision ``-inf`` mask can never turn them into
  NaN that would leak into real tokens through ``0 * NaN`` in the next layer's attention.
* The embedding has 32768 rows while the t2t tokenizer has 32000 entries: the tokenizer
  must fit inside the embedding, not equal it.
* Sequence heads pool as ``classifier_pooling`` says (``mean`` over attended tokens, [CLS]
  and [SEP] included, or ``cls``), exactly as the stock class.
* ``attn_implementation`` is explicit: ``sdpa`` (default, CPU and GPU) or ``eager``;
  ``flash_attention_2`` only when asked for and installed (it runs attention in bf16/fp16:
  a warning says so, precision is never changed silently).
* Window: ``max_position_embeddings`` tokens (1024; 1022 content tokens). RoPE has no hard
  limit, so a longer ``max_tokens`` is allowed, with a warning (untrained positions).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io.tokenizers import TOKENIZER_JSON, read_bpe_tokenizer
from ..io.weights import read_weights
from ..tokenize import TokenizerError
from .base import Loaded, ModelError, ModelInfo, collate_cls_sep, split_cls_sep
from .compat import config_layout, skip_weight_init, transformers_version
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

__all__ = ["ModernBertNetwork", "load", "read_layout", "transformers_config", "RopeLayout", "ARCHITECTURES",
           "ATTN_IMPLEMENTATIONS", "from_checkpoint", "fresh", "save_trainable"]

#: config.json architecture -> (transformers class name, head)
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "ModernBertForTokenClassification": ("ModernBertForTokenClassification", "token"),
    "ModernBertForSequenceClassification": ("ModernBertForSequenceClassification", "sequence"),
    "ModernBertForMaskedLM": ("ModernBertForMaskedLM", "mlm"),
}
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")

#: config keys that describe RoPE and the attention pattern (rewritten by transformers_config)
_LAYOUT_KEYS = ("global_rope_theta", "local_rope_theta", "global_attn_every_n_layers", "rope_parameters", "layer_types")

_REQUIRED = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
    "max_position_embeddings", "norm_eps", "local_attention", "hidden_activation",
)  # fmt: skip

#: config.json sizes (whole numbers >= 1) and other fields checked before anything is built
_SIZES = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
          "max_position_embeddings", "local_attention", "global_attn_every_n_layers")
_KINDS = {"norm_eps": "number", "hidden_activation": "str", "classifier_pooling": "str", "layer_types": "list[str]",
          "global_rope_theta": "number", "local_rope_theta": "number", "architectures": "list[str]",
          "attention_bias": "bool", "mlp_bias": "bool", "norm_bias": "bool", "classifier_bias": "bool",
          "problem_type": "str"}


@dataclass(frozen=True)
class RopeLayout:
    """Where attention is global and the RoPE thetas, read from either config layout.

    Attributes
    ----------
    global_theta, local_theta : float
        RoPE base of the global (``full_attention``) and local (``sliding_attention``) layers.
    layer_types : tuple of str
        ``full_attention`` / ``sliding_attention`` per layer.
    """

    global_theta: float
    local_theta: float
    layer_types: tuple[str, ...]

    @property
    def global_every(self) -> int | None:
        """``n`` when layer ``i`` is global iff ``i % n == 0`` (the 4.x form), else None."""
        is_global = [t == "full_attention" for t in self.layer_types]
        return next((n for n in range(1, len(is_global) + 1)
                     if all(g == (i % n == 0) for i, g in enumerate(is_global))), None)


def read_layout(config: dict[str, Any], *, source: str = "config.json") -> RopeLayout:
    """The :class:`RopeLayout` of a ModernBERT ``config.json`` in either layout.

    ``rope_parameters`` / ``layer_types`` (written by transformers >= 5) take precedence
    over ``global_rope_theta`` / ``local_rope_theta`` / ``global_attn_every_n_layers`` (the
    converter's and transformers 4.x's). A field missing from both is an error: no default
    is assumed (transformers 4.x would silently use a global theta of 160000).
    """
    missing = [k for k in _REQUIRED if config.get(k) is None]
    if missing:
        raise ModelError(f"{source}: ModernBERT config lacks {', '.join(missing)}")
    check_sizes(config, _SIZES, source=source)
    check_types(config, _KINDS, source=source)
    n_layers = int(config["num_hidden_layers"])
    global_theta, local_theta = config.get("global_rope_theta"), config.get("local_rope_theta")
    rope = config.get("rope_parameters")
    if rope is not None:
        if not isinstance(rope, dict):
            raise ModelError(f"{source}: rope_parameters must be an object, not {type(rope).__name__}")
        per_type = rope if "full_attention" in rope or "sliding_attention" in rope else {"full_attention": rope}
        thetas = {}
        for kind, params in per_type.items():
            if not isinstance(params, dict):
                raise ModelError(f"{source}: rope_parameters.{kind} must be an object, not {type(params).__name__}")
            rtype = params.get("rope_type", "default")
            if rtype != "default":
                raise ModelError(f"{source}: rope_type {rtype!r} for {kind}; only default RoPE is supported")
            if params.get("rope_theta") is None:
                raise ModelError(f"{source}: rope_parameters.{kind} has no rope_theta")
            thetas[kind] = float(params["rope_theta"])
        if "full_attention" not in thetas:
            raise ModelError(f"{source}: rope_parameters lacks full_attention")
        global_theta = thetas["full_attention"]
        local_theta = thetas.get("sliding_attention", global_theta)
    layer_types = config.get("layer_types")
    if layer_types is not None:
        if len(layer_types) != n_layers:
            raise ModelError(f"{source}: {len(layer_types)} layer_types for {n_layers} layers")
        unknown = set(layer_types) - {"full_attention", "sliding_attention"}
        if unknown:
            raise ModelError(f"{source}: unknown layer_types {sorted(unknown)}")
        layer_types = tuple(layer_types)
    elif config.get("global_attn_every_n_layers") is not None:
        n = int(config["global_attn_every_n_layers"])
        if n < 1:
            raise ModelError(f"{source}: global_attn_every_n_layers {n} must be at least 1")
        layer_types = tuple("full_attention" if i % n == 0 else "sliding_attention" for i in range(n_layers))
    if global_theta is None:
        raise ModelError(f"{source}: ModernBERT config has neither global_rope_theta nor its rope_parameters form")
    if layer_types is None:
        raise ModelError(
            f"{source}: ModernBERT config has neither global_attn_every_n_layers nor its layer_types form"
        )
    if local_theta is None:
        # the stock class would use the global theta; say so instead of assuming silently
        warnings.warn(f"{source}: no local_rope_theta; local layers use the global theta (as transformers)", stacklevel=2)
        local_theta = global_theta
    return RopeLayout(float(global_theta), float(local_theta), layer_types)


def transformers_config(
    config: dict[str, Any], *, source: str = "config.json", layout: str | None = None
) -> dict[str, Any]:
    """``config`` in the layout the installed transformers reads (or ``layout``: v4 / v5).

    The RoPE and attention-pattern fields are re-written from :func:`read_layout`, so both
    file layouts give the same model on either release. Raises :class:`ModelError` when a
    field is missing, or when ``layer_types`` is not "global every n-th layer from layer 0"
    and the target is transformers 4.x, which cannot express it.
    """
    rope = read_layout(config, source=source)
    layout = layout or config_layout("ModernBertConfig")
    cfg = {k: v for k, v in config.items() if k not in _LAYOUT_KEYS and k != "dtype"}
    if layout == "v5":
        cfg["layer_types"] = list(rope.layer_types)
        cfg["rope_parameters"] = {
            "full_attention": {"rope_type": "default", "rope_theta": rope.global_theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": rope.local_theta},
        }
        return cfg
    if layout != "v4":
        raise ValueError(f"layout {layout!r}: v4 or v5")
    if rope.global_every is None:
        raise ModelError(
            f"{source}: layer_types {list(rope.layer_types)} is not 'global every n-th layer from layer 0', "
            f"which transformers {transformers_version()} cannot express (transformers >= 5 can)"
        )
    cfg["global_rope_theta"] = rope.global_theta
    cfg["local_rope_theta"] = rope.local_theta
    cfg["global_attn_every_n_layers"] = rope.global_every
    return cfg


class ModernBertNetwork(nn.Module):
    """A stock ModernBERT model behind the :class:`genaannot.models.base.Network` protocol."""

    def __init__(
        self,
        model: nn.Module,
        *,
        head: str,
        max_content_tokens: int,
        cls_id: int,
        sep_id: int,
        pad_id: int,
        pad_to: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.content_offset = 1  # after [CLS] (base.Network)
        self.max_content_tokens = max_content_tokens
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.pad_to = pad_to
        self._keep: torch.Tensor | None = None
        base = getattr(model, "model", None)
        if base is not None and model.config._attn_implementation != "flash_attention_2":
            for layer in base.layers:
                layer.register_forward_hook(self._zero_pad_rows)

    def _zero_pad_rows(self, module: nn.Module, args: Any, output: Any) -> Any:
        if self._keep is None:
            return output
        # a layer returns its hidden states (transformers 5) or a tuple led by them (4.x)
        h = output[0] if isinstance(output, tuple) else output
        h = torch.where(self._keep, h, torch.zeros((), dtype=h.dtype, device=h.device))
        return (h, *output[1:]) if isinstance(output, tuple) else h

    def get_input_embeddings(self) -> nn.Embedding:
        """The token-embedding table (used by integrated gradients)."""
        return self.model.get_input_embeddings()

    def collate(self, content: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """``[CLS] content [SEP]`` right-padded (mask 0) to the longest input or ``pad_to``."""
        return collate_cls_sep(content, cls_id=self.cls_id, sep_id=self.sep_id, pad_id=self.pad_id, tile=self.pad_to)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, T, n_labels]`` (token, mlm) or ``[B, n_labels]`` (sequence)."""
        padded = not bool(attention_mask.all())
        self._keep = attention_mask.bool()[..., None] if padded else None
        try:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        finally:
            self._keep = None

    def split(self, out: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
        """Per input: content rows ``[n, n_labels]`` ([CLS], [SEP], padding dropped) or ``[n_labels]``."""
        return split_cls_sep(out, lengths, head=self.head)


def _fit(model: nn.Module, sd: dict[str, torch.Tensor], *, source: str) -> None:
    try:
        load_strict(model, sd, source=source)
    except ModelError as err:
        raise ModelError(
            f"{err}; check attention_bias / mlp_bias / norm_bias / classifier_bias and the sizes in config.json"
        ) from None


def _modernbert_class(name: str) -> str:
    """``name``, once transformers' ModernBERT module is imported without the 14 copies of
    torch's "``torch.jit.script_method`` is deprecated" that its ``@torch.compile`` decorator
    sets off (torch's own modules, at import; nothing the user can act on)."""
    import transformers

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script_method.* is deprecated")
        getattr(transformers, name)
    return name


def load(
    path: Path,
    *,
    config: dict[str, Any],
    attn_implementation: str = "sdpa",
    max_tokens: int | None = None,
    pad_to: int | None = None,
    tokenizer: str | Path | None = None,
    **options: Any,
) -> Loaded:
    """Load a modernGENA / ModernBERT checkpoint directory.

    Parameters
    ----------
    path
        Checkpoint directory (config.json, model.safetensors, tokenizer.json).
    config
        Its parsed ``config.json`` (either layout).
    attn_implementation
        ``sdpa`` (default), ``eager`` or ``flash_attention_2`` (must be installed).
    max_tokens
        Content tokens per input; default ``max_position_embeddings - 2``. Larger values
        are accepted with a warning.
    pad_to
        Pad every batch to this many tokens (GENATATOR-style fixed windows); default: the
        longest input of the batch.
    tokenizer
        Directory or ``tokenizer.json`` to use instead of the checkpoint's.
    """
    if options:
        raise ModelError(f"ModernBERT: unknown load option(s) {', '.join(sorted(options))}")
    import transformers
    from transformers import ModernBertConfig

    path = Path(path)
    archs = [a for a in (config.get("architectures") or []) if a in ARCHITECTURES]
    if not archs:
        raise ModelError(
            f"{path}: ModernBERT architectures {config.get('architectures')} not supported "
            f"(supported: {', '.join(ARCHITECTURES)})"
        )
    arch = archs[0]
    cls_name, head = ARCHITECTURES[arch]
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ModelError(f"attn_implementation {attn_implementation!r}; choose {', '.join(ATTN_IMPLEMENTATIONS)}")
    if attn_implementation == "flash_attention_2":
        from transformers.utils import is_flash_attn_2_available

        if not is_flash_attn_2_available():
            raise ModelError("attn_implementation='flash_attention_2' asked for, but flash-attn is not installed")
        warnings.warn(
            "flash_attention_2 computes attention in bf16/fp16 (transformers casts float32 inputs); "
            "outputs differ from sdpa/eager at bf16 level",
            stacklevel=2,
        )
    if head == "sequence" and config.get("classifier_pooling") not in ("mean", "cls"):
        raise ModelError(f"{path}: classifier_pooling {config.get('classifier_pooling')!r}; expected mean or cls")

    config_source = str(path / "config.json")
    rope = read_layout(config, source=config_source)
    check_labels(config, source=config_source)
    hf_dict = transformers_config(config, source=config_source)
    # transformers would torch.compile the MLP on a GPU with triton (reference_compile None):
    # same numbers, but a long first call and a hard dependency; genaannot runs it eagerly
    hf_dict["reference_compile"] = False
    try:
        hf_config = ModernBertConfig.from_dict(hf_dict, attn_implementation=attn_implementation)
    except Exception as err:  # noqa: BLE001 - transformers rejects odd fields in its own ways
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"{config_source}: not a usable ModernBERT config ({type(err).__name__}: {first})") from None
    sd = read_weights(path)
    if head in ("token", "sequence"):
        if "classifier.weight" not in sd:
            raise ModelError(f"{path}: {arch} checkpoint has no classifier.weight")
        n_labels = int(sd["classifier.weight"].shape[0])
        if hf_config.num_labels != n_labels:
            raise ModelError(f"{path}: config has {hf_config.num_labels} labels, classifier.weight has {n_labels}")
    # config vs weights before any allocation: layer count, then every shape on the meta device
    check_count(config, "num_hidden_layers", sd, "model.layers.", source=config_source, weights=str(path))

    def build() -> nn.Module:
        with skip_weight_init():  # every tensor is overwritten by the checkpoint
            return getattr(transformers, _modernbert_class(cls_name))(hf_config)

    try:
        check_on_meta(build, sd, source=str(path), config_source=config_source)
    except ModelError as err:
        raise ModelError(f"{err}; check attention_bias / mlp_bias / norm_bias / classifier_bias and the sizes in "
                         "config.json") from None
    model = build()
    _fit(model, sd, source=str(path))  # tied decoder/embedding share storage: stored once is enough
    model.eval()

    try:
        tok = read_bpe_tokenizer(Path(tokenizer) / TOKENIZER_JSON if tokenizer and Path(tokenizer).is_dir()
                                 else Path(tokenizer) if tokenizer else path / TOKENIZER_JSON)  # fmt: skip
    except (TokenizerError, OSError, Exception) as err:  # noqa: BLE001 - tokenizers raises its own types
        raise ModelError(f"{path}: cannot read tokenizer.json ({err}); pass tokenizer=DIR") from None
    rows = model.get_input_embeddings().weight.shape[0]
    if tok.vocab_size > rows:
        raise ModelError(f"{path}: tokenizer has {tok.vocab_size} entries but the embedding only {rows} rows")
    for key, tid in (("cls_token_id", tok.cls_id), ("sep_token_id", tok.sep_id), ("pad_token_id", tok.pad_id)):
        if config.get(key) is not None and int(config[key]) != tid:
            raise ModelError(f"{path}: config {key}={config[key]} but the tokenizer's id is {tid}")

    window = int(hf_config.max_position_embeddings)
    default = window - 2
    if max_tokens is None:
        max_tokens = default
    elif int(max_tokens) > default:
        warnings.warn(
            f"max_tokens {max_tokens} > {default}: modernGENA was trained on {window}-token windows; "
            "RoPE runs past them but positions beyond were never seen in training",
            stacklevel=2,
        )
    max_tokens = int(max_tokens)
    if pad_to is not None and int(pad_to) < max_tokens + 2:
        raise ModelError(f"pad_to {pad_to} is shorter than max_tokens + 2 = {max_tokens + 2}")
    network = ModernBertNetwork(
        model,
        head=head,
        max_content_tokens=max_tokens,
        cls_id=tok.cls_id,
        sep_id=tok.sep_id,
        pad_id=tok.pad_id,
        pad_to=int(pad_to) if pad_to is not None else None,
    )
    if head == "mlm":
        inv = {i: t for t, i in tok._tok.get_vocab().items()}
        labels = tuple(inv.get(i, f"[unused{i}]") for i in range(rows))
    else:
        labels = tuple(hf_config.id2label[i] for i in range(hf_config.num_labels))
    info = ModelInfo(
        family="modernbert",
        architecture=arch,
        head=head,
        labels=labels,
        problem_type=config.get("problem_type"),
        max_tokens=max_tokens,
        resolution="token",
        n_params=sum(p.numel() for p in model.parameters()),
        source=str(path),
        tokenizer=tok.name,
        extra={
            "attn_implementation": attn_implementation,
            "max_position_embeddings": window,
            "global_rope_theta": rope.global_theta,
            "local_rope_theta": rope.local_theta,
            "layer_types": list(rope.layer_types),
            "global_attn_every_n_layers": rope.global_every,
            "local_attention": hf_config.local_attention,
            "classifier_pooling": hf_config.classifier_pooling,
        },
    )
    return Loaded(network, tok, info)


# --------------------------------------------------------------------------- training (family contract)

#: state-dict prefix of the encoder (``model.*``: embeddings, layers, final norm)
BODY = ("model.",)

_NOT_CONFIG = ("auto_map", "transformers_version", "dtype", "torch_dtype", "_name_or_path")


def _trainable(config: dict[str, Any], head: HeadSpec, tokenizer: Any, *, source: str) -> tuple[nn.Module, ModernBertNetwork]:
    import transformers
    from transformers import ModernBertConfig

    cfg = {k: v for k, v in config.items() if k not in _NOT_CONFIG}
    cfg.update(labels_config(head))
    cls_name = "ModernBertForTokenClassification" if head.head == "token" else "ModernBertForSequenceClassification"
    cfg["architectures"] = [cls_name]
    cfg.setdefault("classifier_pooling", "mean")
    for key, tid in (("cls_token_id", tokenizer.cls_id), ("sep_token_id", tokenizer.sep_id),
                     ("pad_token_id", tokenizer.pad_id)):
        if cfg.get(key) is not None and int(cfg[key]) != tid:
            raise TrainError(f"{source}: config {key}={cfg[key]} but the tokenizer's id is {tid}")
        cfg[key] = tid
    hf = transformers_config(cfg, source=source)
    hf["reference_compile"] = False
    try:
        hf_config = ModernBertConfig.from_dict(hf, attn_implementation="sdpa")
    except Exception as err:  # noqa: BLE001 - transformers rejects odd fields in its own ways
        raise TrainError(f"{source}: not a usable ModernBERT config ({type(err).__name__}: {err})") from None
    model = getattr(transformers, cls_name)(hf_config)
    if tokenizer.vocab_size > model.get_input_embeddings().weight.shape[0]:
        raise TrainError(f"tokenizer has {tokenizer.vocab_size} entries but {source} only "
                         f"{model.get_input_embeddings().weight.shape[0]} embedding rows")
    net = ModernBertNetwork(model, head=head.head, max_content_tokens=int(hf_config.max_position_embeddings) - 2,
                            cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id, pad_id=tokenizer.pad_id)
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
    """Fine-tune a modernGENA checkpoint (e.g. the MLM ``moderngena-base``): the encoder
    (``model.*``), and the head (``head.*`` + ``classifier.*``) when it is of the kind and
    size asked for; otherwise transformers' new ``ModernBertFor{Token,Sequence}Classification``
    head. The window is ``max_position_embeddings - 2`` content tokens."""
    no_options("modernbert", options)
    path = Path(path)
    if tokenizer is None:
        try:
            tokenizer = read_bpe_tokenizer(path / TOKENIZER_JSON)
        except (TokenizerError, OSError, Exception) as err:  # noqa: BLE001 - tokenizers raises its own types
            raise TrainError(f"{path}: cannot read tokenizer.json ({err}); pass --tokenizer") from None
    sd = read_weights(path)
    archs = [a for a in (config.get("architectures") or []) if a in ARCHITECTURES]
    base_head = ARCHITECTURES[archs[0]][1] if archs else None
    model, net = _trainable(config, head, tokenizer, source=str(path))
    fit, kept = transfer_weights(model.state_dict(), sd, body=BODY, same_head_kind=base_head == head.head,
                                 source=str(path))
    model.load_state_dict(fit, strict=False)
    return Trainable(family="modernbert", network=net, tokenizer=tokenizer, config=None, base_model=str(path),
                     base_head="kept" if kept else "new")


def fresh(
    *, head: HeadSpec, tokenizer: Any, window_tokens: int, arch: ArchConfig, options: Mapping[str, Any]
) -> Trainable:
    """A randomly initialised ModernBERT (transformers' initialisation): ``arch.hidden_size``,
    ``layers``, ``heads``, ``intermediate_size``, ``dropout``; ``max_position_embeddings =
    window_tokens + 2``; global attention every 3rd layer (from layer 0), the others local.
    Options: ``local_attention`` (128), ``global_rope_theta`` (160000), ``local_rope_theta``
    (10000)."""
    no_options("modernbert", options, ("local_attention", "global_rope_theta", "local_rope_theta"))
    if tokenizer is None:
        raise TrainError("a fresh modernbert model needs a tokenizer (char, bpe or a tokenizer.json)")
    if arch.hidden_size % arch.heads:
        raise TrainError(f"--hidden-size {arch.hidden_size} must be a multiple of --heads {arch.heads}")
    config = {
        "model_type": "modernbert", "vocab_size": tokenizer.vocab_size, "hidden_size": arch.hidden_size,
        "num_hidden_layers": arch.layers, "num_attention_heads": arch.heads,
        "intermediate_size": arch.intermediate_size or 4 * arch.hidden_size, "hidden_activation": "gelu",
        "max_position_embeddings": window_tokens + 2, "norm_eps": 1e-5, "norm_bias": False,
        "attention_bias": False, "mlp_bias": False, "classifier_bias": False, "classifier_pooling": "mean",
        "attention_dropout": arch.dropout, "embedding_dropout": arch.dropout, "mlp_dropout": arch.dropout,
        "classifier_dropout": arch.dropout, "local_attention": int(options.get("local_attention", 128)),
        "global_attn_every_n_layers": 3, "global_rope_theta": float(options.get("global_rope_theta", 160000.0)),
        "local_rope_theta": float(options.get("local_rope_theta", 10000.0)),
    }
    _model, net = _trainable(config, head, tokenizer, source="a fresh modernbert model")
    return Trainable(family="modernbert", network=net, tokenizer=tokenizer, config=None)


def save_trainable(trainable: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path:
    """``config.json`` (the installed transformers' layout; :func:`load` reads either),
    ``model.safetensors`` and the tokenizer files."""
    from ..io.checkpoint import write_model_dir

    model = trainable.network.model
    config = model.config.to_dict()
    config["architectures"] = [type(model).__name__]
    config.pop("reference_compile", None)
    return write_model_dir(directory, tensors=unique_tensors(model.state_dict()), config=config,
                           tokenizer=trainable.tokenizer, metadata=metadata)
