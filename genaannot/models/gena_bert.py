"""GENA-LM BERT: a weight-compatible re-implementation of ``gena_lm.modeling_bert``.

GENA-LM BERT checkpoints ship their own ``modeling_bert.py`` (loaded by transformers with
``trust_remote_code``). genaannot never runs checkpoint code; this module implements the
same network under the original state-dict names so the published weights load unchanged.

Architecture (``pre_layer_norm: true``, all t2t models)::

    h = LayerNorm_emb(word + position + token_type)              # embedding LN kept
    for each layer:
        h = h + Dense(SelfAttention(pre_attention_ln(h)))       # residual outside the block
        h = h + Dense2(act(Dense1(post_attention_ln(h))))
    h = last_layer_ln(h)      # only when pre_layer_norm and last_layer_norm (absent -> pre_layer_norm)

With ``pre_layer_norm`` false or absent it is standard post-LN BERT (first-generation GENA
models): ``h = LN(h + Dense(SelfAttention(h)))``, ``h = LN(h + FFN(h))``.

Heads (chosen from ``architectures`` and the weights, never from ``auto_map``):

- ``mlm``: ``cls.predictions``: dense, act, LayerNorm, decoder tied to the word embeddings;
- ``sequence``: ``classifier(tanh(bert.pooler.dense(h[CLS])))``;
- ``token``: ``classifier(h)`` at every position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io.tokenizers import load_tokenizer
from ..io.weights import read_weights
from ..tokenize import DNATokenizer
from .base import Loaded, ModelError, ModelInfo, collate_cls_sep, split_cls_sep
from .families import (
    ArchConfig,
    HeadSpec,
    Trainable,
    TrainError,
    no_options,
    transfer_weights,
    unique_tensors,
)
from .validate import (
    check_count,
    check_labels,
    check_on_meta,
    check_sizes,
    check_types,
    require_object,
)
from .weights import load_strict, n_parameters

__all__ = [
    "GenaBertConfig",
    "GenaBertModel",
    "GenaBertNetwork",
    "EncoderOutput",
    "build_network",
    "choose_head",
    "head_hint",
    "add_prefix_if_bare",
    "save_pretrained",
    "load",
    "HEAD_CLASSES",
    "fresh",
    "from_checkpoint",
    "save_trainable",
    "sinusoidal_positions_",
]

#: `architectures` class name -> head
HEAD_CLASSES: dict[str, str] = {
    "BertForMaskedLM": "mlm",
    "BertForSequenceClassification": "sequence",
    "BertForTokenClassification": "token",
}
_CLASS_OF_HEAD = {v: k for k, v in HEAD_CLASSES.items()}

#: config `hidden_act` -> function (gelu is the exact erf GELU, as in transformers)
ACTIVATIONS: dict[str, Any] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}

#: non-learned buffers some files carry (HF BERT's position_ids)
IGNORED_KEYS: tuple[str, ...] = ("embeddings.position_ids",)

#: config.json sizes (whole numbers >= 1) and the kinds of its other fields (checked before use)
SIZE_KEYS: tuple[str, ...] = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                              "intermediate_size", "max_position_embeddings", "type_vocab_size")
FIELD_KINDS: dict[str, str] = {
    "hidden_act": "str", "position_embedding_type": "str", "problem_type": "str", "architectures": "list[str]",
    "pre_layer_norm": "bool", "last_layer_norm": "bool", "tie_word_embeddings": "bool",
    "hidden_dropout_prob": "number", "attention_probs_dropout_prob": "number", "classifier_dropout": "number",
    "layer_norm_eps": "number", "initializer_range": "number",
}
#: where the encoder layers are stored
LAYER_PREFIX = "bert.encoder.layer."


@dataclass
class GenaBertConfig:
    """The ``config.json`` fields this implementation uses (others are kept in ``extra``)."""

    vocab_size: int = 32000
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    classifier_dropout: float | None = None
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 3
    position_embedding_type: str = "absolute"
    pre_layer_norm: bool = False
    #: None = absent from config.json: upstream then uses the value of pre_layer_norm
    last_layer_norm: bool | None = None
    tie_word_embeddings: bool = True
    id2label: dict[int, str] = field(default_factory=dict)
    problem_type: str | None = None
    architectures: list[str] = field(default_factory=list)
    initializer_range: float = 0.02
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_last_layer_ln(self) -> bool:
        """A final LayerNorm exists iff pre-LN and last_layer_norm (absent -> pre_layer_norm)."""
        last = self.pre_layer_norm if self.last_layer_norm is None else self.last_layer_norm
        return bool(self.pre_layer_norm and last)

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.id2label[i] for i in range(len(self.id2label)))

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "config.json") -> GenaBertConfig:
        """Read an HF-style ``config.json`` dict (unknown keys go to ``extra``).

        Raises
        ------
        ModelError
            Naming ``source`` and the key, when a field has the wrong type or a size is not a
            whole number >= 1.
        """
        require_object(d, source=source)
        check_sizes(d, SIZE_KEYS, source=source)
        check_sizes(d, ["pad_token_id"], source=source, minimum=0)
        check_types(d, FIELD_KINDS, source=source)
        check_labels(d, source=source)
        names = {f.name for f in fields(cls)} - {"extra", "id2label"}
        nullable = {"classifier_dropout", "last_layer_norm", "problem_type"}
        kw = {k: d[k] for k in names if k in d and (d[k] is not None or k in nullable)}
        if "id2label" in d and d["id2label"]:
            id2label = {int(k): str(v) for k, v in d["id2label"].items()}
        else:
            # transformers' PretrainedConfig default: num_labels 2, LABEL_0/LABEL_1
            n = int(d.get("num_labels", 2))
            id2label = {i: f"LABEL_{i}" for i in range(n)}
        if sorted(id2label) != list(range(len(id2label))):
            raise ModelError(f"{source}: id2label keys are not 0..n-1: {sorted(id2label)}")
        skip = names | {"id2label", "label2id", "num_labels"}
        extra = {k: v for k, v in d.items() if k not in skip}
        cfg = cls(**kw, id2label=id2label, extra=extra)
        cfg.architectures = list(cfg.architectures or [])
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """HF-style ``config.json`` content (``model_type`` bert)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("extra", "id2label", "last_layer_norm")}
        d.update({k: v for k, v in self.extra.items() if k not in ("auto_map",)})
        d["model_type"] = "bert"
        d["last_layer_norm"] = self.has_last_layer_ln if self.pre_layer_norm else False
        d["id2label"] = {str(i): lab for i, lab in sorted(self.id2label.items())}
        d["label2id"] = {lab: i for i, lab in sorted(self.id2label.items())}
        d["num_labels"] = self.num_labels
        return dict(sorted(d.items()))


# --------------------------------------------------------------------------- modules


class Embeddings(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[B, L]`` ids (or ``[B, L, H]`` word embeddings) -> ``[B, L, H]``."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        length = inputs_embeds.shape[1]
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(f"{length} tokens exceed max_position_embeddings {self.position_embeddings.num_embeddings}")
        pos = torch.arange(length, device=inputs_embeds.device)
        if token_type_ids is None:
            types = self.token_type_embeddings.weight[0]
        else:
            types = self.token_type_embeddings(token_type_ids)
        h = inputs_embeds + self.position_embeddings(pos)[None] + types
        return self.dropout(self.LayerNorm(h))


class SelfAttention(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        if c.hidden_size % c.num_attention_heads:
            raise ModelError(f"hidden_size {c.hidden_size} is not a multiple of num_attention_heads {c.num_attention_heads}")
        self.n_heads = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout_p = c.attention_probs_dropout_prob

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, n, d = h.shape

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B, L, H] -> [B, heads, L, H/heads]
            return x.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

        # softmax(QK^T / sqrt(d_head)) V over the keys ``bias`` (a boolean key mask, True = attend)
        # lets through: upstream's eager computation with its additive dtype-minimum mask
        out = F.scaled_dot_product_attention(
            heads(self.query(h)),
            heads(self.key(h)),
            heads(self.value(h)),
            attn_mask=bias,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return out.transpose(1, 2).reshape(b, n, d)


class DenseOut(nn.Module):
    """``dense`` + dropout; post-LN variants add the residual and ``LayerNorm`` here."""

    def __init__(self, d_in: int, c: GenaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, c.hidden_size)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        self.post_ln = not c.pre_layer_norm
        if self.post_ln:
            self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.dense(x))
        if self.post_ln:
            return self.LayerNorm(x + residual)
        return x + residual  # pre-LN: residual outside the normalised branch


class Attention(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.self = SelfAttention(c)
        self.output = DenseOut(c.hidden_size, c)


class Intermediate(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        if c.hidden_act not in ACTIVATIONS:
            raise ModelError(f"unsupported hidden_act {c.hidden_act!r}; supported: {', '.join(ACTIVATIONS)}")
        self.act = ACTIVATIONS[c.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.pre_ln = c.pre_layer_norm
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = DenseOut(c.intermediate_size, c)
        if self.pre_ln:
            self.pre_attention_ln = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
            self.post_attention_ln = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = self.pre_attention_ln(h) if self.pre_ln else h
        h = self.attention.output(self.attention.self(x, bias), h)
        x = self.post_attention_ln(h) if self.pre_ln else h
        return self.output(self.intermediate(x), h)


class Encoder(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))
        if c.has_last_layer_ln:
            self.last_layer_ln = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        else:
            self.last_layer_ln = None


class Pooler(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))


@dataclass
class EncoderOutput:
    """Output of :class:`GenaBertModel`.

    Attributes
    ----------
    last_hidden_state : [B, L, H] (after the final LayerNorm when the model has one)
    hidden_states : tuple of ``layers + 1`` tensors [B, L, H] or None: the embedding output,
        then each layer's output; the last entry equals ``last_hidden_state``.
    """

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


class GenaBertModel(nn.Module):
    """Embeddings + encoder (+ pooler for sequence heads); state-dict prefix ``bert.``."""

    def __init__(self, c: GenaBertConfig, *, add_pooler: bool) -> None:
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c) if add_pooler else None

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        h = self.embeddings(input_ids, inputs_embeds=inputs_embeds, token_type_ids=token_type_ids)
        # boolean key mask [B, 1, 1, L] (True = attend): padded keys get weight exactly 0, as with
        # upstream's additive dtype-minimum, without a host-device sync to test for padding
        bias = attention_mask[:, None, None, :].bool() if attention_mask is not None else None
        states = [h] if output_hidden_states else None
        layers = self.encoder.layer
        for i, layer in enumerate(layers):
            h = layer(h, bias)
            if states is not None and i < len(layers) - 1:
                states.append(h)
        if self.encoder.last_layer_ln is not None:
            h = self.encoder.last_layer_ln(h)
        if states is not None:
            states.append(h)
        return EncoderOutput(h, tuple(states) if states is not None else None)


class PredictionTransform(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.act = ACTIVATIONS[c.hidden_act]
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(h)))


class LMPrediction(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.transform = PredictionTransform(c)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.decoder.bias = self.bias  # tied as upstream: both keys name one tensor

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(h))


class MLMHead(nn.Module):
    def __init__(self, c: GenaBertConfig) -> None:
        super().__init__()
        self.predictions = LMPrediction(c)


class GenaBertNetwork(nn.Module):
    """A GENA BERT with one head, following the :class:`~genaannot.models.base.Network` protocol.

    Attributes
    ----------
    head : "token" | "sequence" | "mlm"
    max_content_tokens : int
        ``max_position_embeddings - 2`` ([CLS] and [SEP] take two positions).
    """

    def __init__(self, config: GenaBertConfig, *, head: str, cls_id: int = 1, sep_id: int = 2) -> None:
        super().__init__()
        if head not in ("token", "sequence", "mlm"):
            raise ModelError(f"unknown head {head!r}; choose token, sequence or mlm")
        if config.position_embedding_type != "absolute":
            raise ModelError(f"position_embedding_type {config.position_embedding_type!r} is not supported (only absolute)")
        self.config = config
        self.head = head
        self.content_offset = 1  # after [CLS] (base.Network)
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, config.pad_token_id
        self.max_content_tokens = config.max_position_embeddings - 2
        self.bert = GenaBertModel(config, add_pooler=head == "sequence")
        if head == "mlm":
            self.cls = MLMHead(config)
            if config.tie_word_embeddings:
                self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
        else:
            if config.num_labels < 1:
                raise ModelError("a classification head needs at least one label (id2label)")
            p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
            self.dropout = nn.Dropout(p)
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """BERT initialisation: normal(0, initializer_range) weights, zero biases, LN 1/0."""
        std = self.config.initializer_range
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.normal_(0.0, std)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
        if self.head == "mlm":
            self.cls.predictions.bias.zero_()

    # -- Network protocol ---------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Embedding:
        """The token-embedding table (used by integrated gradients)."""
        return self.bert.embeddings.word_embeddings

    def collate(self, content: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """``[CLS] content [SEP]``, right-padded with [PAD] (masked) to the longest input.

        A batch without padding carries no mask: decided here on the host, so the forward
        never has to ask the device (a sync) and SDPA may pick its fused kernels.
        """
        batch = collate_cls_sep(content, cls_id=self.cls_id, sep_id=self.sep_id, pad_id=self.pad_id)
        if bool(batch["attention_mask"].all()):
            del batch["attention_mask"]
        return batch

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits: ``[B, L, n_labels]`` (token), ``[B, n_labels]`` (sequence), ``[B, L, vocab]`` (mlm)."""
        return self.forward_full(input_ids, attention_mask, inputs_embeds=inputs_embeds, token_type_ids=token_type_ids)[0]

    def forward_full(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, EncoderOutput]:
        """Logits and the encoder output (hidden states; used by RMT and parity checks)."""
        enc = self.bert(
            input_ids,
            attention_mask,
            inputs_embeds=inputs_embeds,
            token_type_ids=token_type_ids,
            output_hidden_states=output_hidden_states,
        )
        h = enc.last_hidden_state
        if self.head == "mlm":
            return self.cls.predictions(h), enc
        if self.head == "sequence":
            return self.classifier(self.dropout(self.bert.pooler(h))), enc
        return self.classifier(self.dropout(h)), enc

    def split(self, out: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
        return split_cls_sep(out, lengths, head="sequence" if self.head == "sequence" else "token")


def build_network(config: GenaBertConfig, *, head: str, cls_id: int = 1, sep_id: int = 2) -> GenaBertNetwork:
    """A freshly initialised network (BERT init) for ``config`` with the given head."""
    return GenaBertNetwork(config, head=head, cls_id=cls_id, sep_id=sep_id)


# --------------------------------------------------------------------------- files


def add_prefix_if_bare(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Key a bare ``BertModel`` state dict like a model with a head.

    A bare ``BertModel`` file has no ``bert.`` prefix (``embeddings.*``, ``encoder.*``,
    ``pooler.*``); those keys get one. A state dict that already has ``bert.`` keys is
    returned unchanged.

    Parameters
    ----------
    state : dict of str -> Tensor
        Weights as read by :func:`genaannot.models.weights.read_weights` (any shapes).

    Returns
    -------
    dict of str -> Tensor
        The same tensors (not copied), keyed ``bert.embeddings.*`` etc.
    """
    if any(k.startswith("bert.") for k in state):
        return state
    return {("bert." + k if k.startswith(("embeddings.", "encoder.", "pooler.")) else k): v for k, v in state.items()}


def choose_head(config: GenaBertConfig, state: dict[str, torch.Tensor], *, source: str) -> str:
    """The head the checkpoint is: ``architectures`` when it names one, else the weights'.

    Whether the weights really hold that head is left to :func:`~genaannot.models.weights.load_strict`,
    which names every missing and unexpected key (see :func:`head_hint`).
    """
    claimed = [HEAD_CLASSES[a] for a in config.architectures if a in HEAD_CLASSES]
    if claimed:
        return claimed[0]
    if config.architectures:
        raise ModelError(
            f"{source}: unsupported architectures {config.architectures}; supported: {', '.join(HEAD_CLASSES)}"
        )
    if "classifier.weight" in state:
        return "sequence" if "bert.pooler.dense.weight" in state else "token"
    if any(k.startswith("cls.predictions.") for k in state):
        return "mlm"
    raise ModelError(f"{source}: no architectures in config.json and no head weights (classifier.*, cls.predictions.*)")


def head_hint(config: GenaBertConfig, head: str) -> str:
    """What a weight mismatch under ``head`` probably means (appended to the strict-load error)."""
    if any(a in HEAD_CLASSES for a in config.architectures):
        return (f"config.json says {_CLASS_OF_HEAD[head]}; the checkpoint is incomplete or config.json "
                "belongs to another model")
    return f"no architectures in config.json; the weights were read as a {_CLASS_OF_HEAD[head]}"


def save_pretrained(
    network: GenaBertNetwork,
    directory: str | Path,
    *,
    tokenizer: DNATokenizer,
    config: GenaBertConfig,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory loadable by :func:`load` (and by upstream GENA-LM code).

    Files: ``config.json``, ``model.safetensors`` (tied weights stored once), the tokenizer
    files and, when ``metadata`` is given, ``genaannot.json``.
    """
    from ..io.checkpoint import write_model_dir

    cfg = GenaBertConfig.from_dict(config.to_dict())
    cfg.architectures = [_CLASS_OF_HEAD[network.head]]
    tensors = unique_tensors(network.state_dict())  # tied twins (decoder weight/bias) stored once
    return write_model_dir(directory, tensors=tensors, config=cfg.to_dict(), tokenizer=tokenizer, metadata=metadata)


def load(path: Path, *, config: dict[str, Any], **options: Any) -> Loaded:
    """Load a GENA BERT checkpoint directory (family ``gena_bert``).

    Options
    -------
    tokenizer : path of a tokenizer directory or ``tokenizer.json`` when the checkpoint has none.
    weights : a specific weight file inside/outside the directory (default: safetensors first).
    """
    path = Path(path)
    unknown = set(options) - {"tokenizer", "weights"}
    if unknown:
        raise ModelError(f"gena_bert: unknown options {sorted(unknown)} (known: tokenizer, weights)")
    if config.get("model_type") != "bert":
        raise ModelError(f"{path}: model_type {config.get('model_type')!r} is not a BERT config")
    config_source = str((path if path.is_dir() else path.parent) / "config.json")
    cfg = GenaBertConfig.from_dict(config, source=config_source)
    weights = Path(options["weights"]) if options.get("weights") else path
    state = add_prefix_if_bare(read_weights(weights))
    source = str(weights)
    head = choose_head(cfg, state, source=source)
    tok_dir = Path(options["tokenizer"]) if options.get("tokenizer") else (path if path.is_dir() else path.parent)
    tokenizer = load_tokenizer(tok_dir)
    # config vs weights before any allocation: layer count, then every shape on the meta device
    check_count(config, "num_hidden_layers", state, LAYER_PREFIX, source=config_source, weights=source,
                expected=cfg.num_hidden_layers)
    hint = head_hint(cfg, head)

    def build() -> GenaBertNetwork:
        return build_network(cfg, head=head, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)

    check_on_meta(build, state, source=source, config_source=config_source, ignore=IGNORED_KEYS, hint=hint)
    net = build()
    load_strict(net, state, source=source, ignore=IGNORED_KEYS, hint=hint)
    net.eval()
    info = ModelInfo(
        family="gena_bert",
        architecture=_CLASS_OF_HEAD[head],
        head=head,
        labels=cfg.labels if head != "mlm" else (),
        problem_type=cfg.problem_type if head != "mlm" else None,  # made explicit by load_model
        max_tokens=net.max_content_tokens,
        resolution="token",
        n_params=n_parameters(net),
        source=str(path),
        tokenizer=tokenizer.name,
        extra={
            "pre_layer_norm": cfg.pre_layer_norm,
            "last_layer_ln": cfg.has_last_layer_ln,
            "layer_norm_eps": cfg.layer_norm_eps,
            "hidden_size": cfg.hidden_size,
            "layers": cfg.num_hidden_layers,
            "weights": source if weights != path else str(_weights_name(path)),
        },
    )
    return Loaded(net, tokenizer, info)


def _weights_name(path: Path) -> Path:
    from ..io.weights import find_weight_file

    return find_weight_file(path) if path.is_dir() else path


# --------------------------------------------------------------------------- training (family contract)


def fresh(
    *, head: HeadSpec, tokenizer: DNATokenizer | None, window_tokens: int, arch: ArchConfig, options: Mapping[str, Any]
) -> Trainable:
    """A freshly initialised pre-LN GENA BERT sized for ``window_tokens`` content tokens.

    Weight init std ``arch.init_std`` (default ``hidden_size ** -0.5``); the learned position
    embeddings start from the sin/cos table when ``arch.sinusoidal_init``.
    """
    no_options("gena_bert", options)
    if tokenizer is None:
        raise TrainError("a fresh GENA BERT needs a tokenizer (char, bpe or a tokenizer.json)")
    if arch.hidden_size % arch.heads:
        raise TrainError(f"--hidden-size {arch.hidden_size} must be a multiple of --heads {arch.heads}")
    cfg = GenaBertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=arch.hidden_size,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        intermediate_size=arch.intermediate_size or 4 * arch.hidden_size,
        hidden_dropout_prob=arch.dropout,
        attention_probs_dropout_prob=arch.dropout,
        max_position_embeddings=window_tokens + 2,
        pad_token_id=tokenizer.pad_id,
        pre_layer_norm=True,
        last_layer_norm=True,
        layer_norm_eps=1e-12,
        id2label=dict(enumerate(head.labels)),
        problem_type=head.problem_type,
        initializer_range=arch.init_std if arch.init_std is not None else arch.hidden_size**-0.5,
    )
    net = build_network(cfg, head=head.head, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
    if arch.sinusoidal_init:
        sinusoidal_positions_(net.bert.embeddings.position_embeddings.weight, scale=cfg.initializer_range)
    return Trainable(family="gena_bert", network=net, tokenizer=tokenizer, config=cfg)


def sinusoidal_positions_(weight: torch.Tensor, *, scale: float) -> None:
    """Initialise learned position embeddings [P, H] with the Transformer's sin/cos table.

    Only the starting point changes (the embeddings stay trainable and are saved as usual):
    relative offsets are then linear maps of the embeddings, so attention heads that look at
    the neighbouring bases (what a splice site is) are learned far sooner than from noise.
    Scaled to the RMS of the word embeddings (``scale`` = their init std).
    """
    import math

    n, d = weight.shape
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    with torch.no_grad():
        weight.copy_(table * scale * math.sqrt(2.0))


#: state-dict prefixes of the encoder (everything but the task head and the pooler)
BODY = ("bert.embeddings.", "bert.encoder.")


def from_checkpoint(
    path: Path,
    *,
    config: dict[str, Any],
    head: HeadSpec,
    tokenizer: DNATokenizer | None,
    window_tokens: int,
    options: Mapping[str, Any],
) -> Trainable:
    """Fine-tune a GENA BERT checkpoint: its encoder weights, and its head (pooler included)
    when the head kind and label count fit ``head`` (a new, randomly initialised head
    otherwise: MLM base, another task)."""
    no_options("gena_bert", options)
    path = Path(path)
    source = str((path if path.is_dir() else path.parent) / "config.json")
    cfg = GenaBertConfig.from_dict(config, source=source)
    state = add_prefix_if_bare(read_weights(path))
    base_head = choose_head(cfg, state, source=str(path))
    cfg.id2label = dict(enumerate(head.labels))
    cfg.problem_type = head.problem_type
    cfg.architectures = []
    tok = tokenizer or load_tokenizer(path if path.is_dir() else path.parent)
    if tok.vocab_size > cfg.vocab_size:
        raise TrainError(f"tokenizer has {tok.vocab_size} tokens but {path} only {cfg.vocab_size} embeddings")
    net = build_network(cfg, head=head.head, cls_id=tok.cls_id, sep_id=tok.sep_id)
    fit, kept = transfer_weights(net.state_dict(), state, body=BODY, same_head_kind=base_head == head.head,
                                 source=str(path))
    own = net.state_dict()
    # a trained pooler (another sequence task) is a better start than noise, head kept or not
    fit.update({k: v for k, v in state.items() if k.startswith("bert.pooler.") and k in own and own[k].shape == v.shape})
    net.load_state_dict(fit, strict=False)
    return Trainable(family="gena_bert", network=net, tokenizer=tok, config=cfg, base_model=str(path),
                     base_head="kept" if kept else "new")


def save_trainable(trainable: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path:
    """``config.json`` + ``model.safetensors`` + tokenizer files (:func:`save_pretrained`)."""
    return save_pretrained(trainable.network, directory, tokenizer=trainable.tokenizer, config=trainable.config,
                           metadata=metadata)
