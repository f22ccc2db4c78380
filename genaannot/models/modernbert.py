"""modernGENA (``AIRI-Institute/moderngena-*``): stock transformers ModernBERT, no remote code.

The network is transformers' own ``ModernBertForTokenClassification`` /
``ModernBertForSequenceClassification`` / ``ModernBertForMaskedLM`` built from
``config.json``, with genaannot's batch layout around it:

* Both config layouts are read. transformers 4.x writes ``global_rope_theta`` /
  ``local_rope_theta`` / ``global_attn_every_n_layers``; transformers >= 5 writes
  ``rope_parameters`` / ``layer_types`` instead, and transformers 4.x would silently fall
  back to a global theta of 160000 on such a file. The new layout is converted to the old
  keys (the installed transformers reads those), and a field missing from both is an error:
  no default is assumed.
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..tokenize import BPETokenizer, TokenizerError
from .base import Loaded, ModelError, ModelInfo, collate_cls_sep, split_cls_sep
from .weights import load_strict, read_weights

__all__ = ["ModernBertNetwork", "load", "transformers_config", "ARCHITECTURES", "ATTN_IMPLEMENTATIONS"]

#: config.json architecture -> (transformers class name, head)
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "ModernBertForTokenClassification": ("ModernBertForTokenClassification", "token"),
    "ModernBertForSequenceClassification": ("ModernBertForSequenceClassification", "sequence"),
    "ModernBertForMaskedLM": ("ModernBertForMaskedLM", "mlm"),
}
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")

_REQUIRED = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
    "max_position_embeddings", "norm_eps", "local_attention", "hidden_activation",
)  # fmt: skip


def transformers_config(config: dict[str, Any], *, source: str = "config.json") -> dict[str, Any]:
    """Return ``config`` in the layout transformers 4.x reads (``global_rope_theta`` etc.).

    ``rope_parameters`` / ``layer_types`` (transformers >= 5) take precedence when present.
    Raises :class:`ModelError` when a field is missing from both layouts or when
    ``layer_types`` is not "global every n-th layer, starting with layer 0".
    """
    cfg = dict(config)
    missing = [k for k in _REQUIRED if cfg.get(k) is None]
    if missing:
        raise ModelError(f"{source}: ModernBERT config lacks {', '.join(missing)}")
    n_layers = int(cfg["num_hidden_layers"])
    layer_types = cfg.pop("layer_types", None)
    rope = cfg.pop("rope_parameters", None)
    if rope is not None:
        per_type = rope if "full_attention" in rope or "sliding_attention" in rope else {"full_attention": rope}
        thetas = {}
        for kind, params in per_type.items():
            rtype = params.get("rope_type", "default")
            if rtype != "default":
                raise ModelError(f"{source}: rope_type {rtype!r} for {kind}; only default RoPE is supported")
            if params.get("rope_theta") is None:
                raise ModelError(f"{source}: rope_parameters.{kind} has no rope_theta")
            thetas[kind] = float(params["rope_theta"])
        if "full_attention" not in thetas:
            raise ModelError(f"{source}: rope_parameters lacks full_attention")
        cfg["global_rope_theta"] = thetas["full_attention"]
        cfg["local_rope_theta"] = thetas.get("sliding_attention", thetas["full_attention"])
    if layer_types is not None:
        if len(layer_types) != n_layers:
            raise ModelError(f"{source}: {len(layer_types)} layer_types for {n_layers} layers")
        unknown = set(layer_types) - {"full_attention", "sliding_attention"}
        if unknown:
            raise ModelError(f"{source}: unknown layer_types {sorted(unknown)}")
        is_global = [t == "full_attention" for t in layer_types]
        # transformers 4.x: layer i is global iff i % global_attn_every_n_layers == 0
        period = next(
            (n for n in range(1, n_layers + 1) if all(g == (i % n == 0) for i, g in enumerate(is_global))),
            None,
        )
        if period is None:
            raise ModelError(
                f"{source}: layer_types {layer_types} is not 'global every n-th layer from layer 0', "
                "which the installed transformers cannot express"
            )
        cfg["global_attn_every_n_layers"] = period
    for key in ("global_rope_theta", "global_attn_every_n_layers"):
        if cfg.get(key) is None:
            raise ModelError(f"{source}: ModernBERT config has neither {key} nor its rope_parameters/layer_types form")
    if cfg.get("local_rope_theta") is None:
        # the stock class would use the global theta; say so instead of assuming silently
        warnings.warn(f"{source}: no local_rope_theta; local layers use the global theta (as transformers)", stacklevel=2)
    cfg.pop("dtype", None)
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
        h = output[0]
        h = torch.where(self._keep, h, torch.zeros((), dtype=h.dtype, device=h.device))
        return (h, *output[1:])

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

    hf_dict = transformers_config(config, source=str(path / "config.json"))
    # transformers would torch.compile the MLP on a GPU with triton (reference_compile None):
    # same numbers, but a long first call and a hard dependency; genaannot runs it eagerly
    hf_dict["reference_compile"] = False
    hf_config = ModernBertConfig.from_dict(hf_dict, attn_implementation=attn_implementation)
    sd = read_weights(path)
    if head in ("token", "sequence"):
        if "classifier.weight" not in sd:
            raise ModelError(f"{path}: {arch} checkpoint has no classifier.weight")
        n_labels = int(sd["classifier.weight"].shape[0])
        if hf_config.num_labels != n_labels:
            raise ModelError(f"{path}: config has {hf_config.num_labels} labels, classifier.weight has {n_labels}")
    from transformers.modeling_utils import no_init_weights

    with no_init_weights():  # every tensor is overwritten by the checkpoint
        model = getattr(transformers, cls_name)(hf_config)
    _fit(model, sd, source=str(path))  # tied decoder/embedding share storage: stored once is enough
    model.eval()

    try:
        tok = BPETokenizer(Path(tokenizer) / "tokenizer.json" if tokenizer and Path(tokenizer).is_dir()
                           else Path(tokenizer) if tokenizer else path / "tokenizer.json")  # fmt: skip
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
            "global_rope_theta": hf_config.global_rope_theta,
            "local_rope_theta": hf_config.local_rope_theta,
            "global_attn_every_n_layers": hf_config.global_attn_every_n_layers,
            "local_attention": hf_config.local_attention,
            "classifier_pooling": hf_config.classifier_pooling,
        },
    )
    return Loaded(network, tok, info)
