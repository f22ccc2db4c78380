"""A dilated residual CNN over single bases (the SpliceAI layout), genaannot's own family.

Not a language model and not a published checkpoint format: a small supervised network that
``genaannot train --family dilated_cnn`` trains from scratch and every command then loads
like any other checkpoint. It is here because a base's splice decision depends on a few
hundred bp on *both* sides (the exon end before a donor, the GT after it), which a
bidirectional convolution stack sees at a cost that a 2-core CPU can train and scan
(docs/train.md, *Dilated CNN*).

Architecture (``config.json``)
------------------------------
* ``embeddings``: one learned vector of ``channels`` per token id (A, C, G, T, N, ...: the
  fixed one-token-per-base vocabulary of :data:`genaannot.tokenize.HYENA_CHAR_VOCAB`);
  equivalent to SpliceAI's one-hot input and 1x1 convolution, with N as its own vector.
* ``blocks``: ``[[kernel, dilation, repeats], ...]``; each repeat is a residual unit
  ``x + conv(relu(bn(conv(relu(bn(x))))))`` (same-padded, odd kernel), and each group of
  repeats adds a 1x1 ``skips`` projection of its output to a running sum (SpliceAI's skip
  connections). Receptive field: ``1 + sum(2 * (kernel - 1) * dilation * repeats)`` bp,
  centred on the base (:attr:`DilatedCNNConfig.receptive_field`).
* head ``token`` (``DilatedCNNForTokenClassification``): a 1x1 ``classifier`` of the skip sum,
  one row of logits per base; head ``sequence`` (``DilatedCNNForSequenceClassification``):
  the classifier of the skip sum averaged over the input's bases.

Batches are right-padded; every convolution's input is multiplied by the padding mask, so a
padded position reads exactly as the zero padding at the end of an input alone: one input's
outputs never depend on its batch mates (BatchNorm uses its running statistics at inference).

``window_tokens`` in ``config.json`` is the window a scan reads it with by default
(``ModelInfo.window_tokens``: with the default 50 % overlap every base is read at least a
quarter window from the window's ends, which should exceed half the receptive field);
``--window-tokens`` overrides it. The network itself has no length limit
(``max_tokens``, default 1,000,000, only bounds one input).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
from .validate import check_labels, check_on_meta, check_sizes
from .weights import load_strict

__all__ = ["DilatedCNNConfig", "DilatedCNNNetwork", "DilatedCNNEnsemble", "COMBINES", "combine_members", "load", "from_checkpoint", "fresh", "save_trainable",
           "ARCHITECTURES", "DEFAULT_BLOCKS"]

#: config.json ``architectures`` -> head
ARCHITECTURES = {"DilatedCNNForTokenClassification": "token", "DilatedCNNForSequenceClassification": "sequence"}
_ARCH_OF_HEAD = {v: k for k, v in ARCHITECTURES.items()}
MODEL_TYPE = "dilated_cnn"
#: SpliceAI-400nt's stack: 4 units of kernel 11 at dilation 1, 4 at dilation 4 (401-bp field)
DEFAULT_BLOCKS: tuple[tuple[int, int, int], ...] = ((11, 1, 4), (11, 4, 4))
_VOCAB = HYENA_CHAR_VOCAB
_TOKENIZER_NAME = "char"


@dataclass(frozen=True)
class DilatedCNNConfig:
    """The network's shape (``config.json``; see the module docstring)."""

    channels: int
    blocks: tuple[tuple[int, int, int], ...]
    num_labels: int
    vocab_size: int = len(_VOCAB)
    window_tokens: int = 2000
    max_tokens: int = 1_000_000

    @property
    def receptive_field(self) -> int:
        """Bases one output reads, centred on its own: ``1 + sum(2 (k - 1) d r)``."""
        return 1 + sum(2 * (k - 1) * d * r for k, d, r in self.blocks)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, source: str = "config.json") -> DilatedCNNConfig:
        """Read and check the keys of a ``config.json``.

        Raises
        ------
        ModelError
            A key missing or of the wrong kind, naming ``source``.
        """
        check_sizes(config, ["channels", "vocab_size", "window_tokens", "max_tokens"], source=source)
        if not isinstance(config.get("channels"), int):
            raise ModelError(f"{source}: channels (a whole number) is missing")
        blocks = config.get("blocks")
        if not isinstance(blocks, list) or not blocks or not all(
            isinstance(b, list) and len(b) == 3 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1
                                                       for x in b) for b in blocks):
            raise ModelError(f"{source}: blocks must be a non-empty list of [kernel, dilation, repeats] whole "
                             f"numbers >= 1, not {blocks!r}")
        if any(k % 2 == 0 for k, _, _ in blocks):
            raise ModelError(f"{source}: blocks {blocks}: every kernel must be odd (a centred convolution)")
        id2label = config.get("id2label") or {}
        n = len(id2label) if id2label else int(config.get("num_labels") or 0)
        return cls(
            channels=int(config["channels"]),
            blocks=tuple(tuple(int(x) for x in b) for b in blocks),  # type: ignore[misc]
            num_labels=n,
            vocab_size=int(config.get("vocab_size") or len(_VOCAB)),
            window_tokens=int(config.get("window_tokens") or 2000),
            max_tokens=int(config.get("max_tokens") or 1_000_000),
        )


def parse_blocks(text: str) -> tuple[tuple[int, int, int], ...]:
    """``"11:1x4,11:4x4"`` (kernel:dilation x repeats, comma-separated) -> ``((11, 1, 4), (11, 4, 4))``.

    Raises
    ------
    TrainError
        Naming the malformed part.
    """
    out = []
    for part in str(text).split(","):
        try:
            kd, r = part.strip().split("x")
            k, d = kd.split(":")
            item = (int(k), int(d), int(r))
        except ValueError:
            raise TrainError(f"dilated_cnn: blocks part {part!r} is not KERNEL:DILATIONxREPEATS (e.g. 11:4x4)") from None
        if min(item) < 1 or item[0] % 2 == 0:
            raise TrainError(f"dilated_cnn: blocks part {part!r}: odd kernel, dilation and repeats >= 1")
        out.append(item)
    return tuple(out)


class _Unit(nn.Module):
    """``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``, each convolution's input masked."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv1 = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=pad)
        self.bn2 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=pad)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.bn1(x)) * mask)
        return x + self.conv2(F.relu(self.bn2(h)) * mask)


class DilatedCNNNetwork(nn.Module):
    """The network; follows :class:`genaannot.models.base.Network`.

    ``forward(input_ids [B, L], attention_mask [B, L])`` returns logits ``[B, L, num_labels]``
    (token head) or ``[B, num_labels]`` (sequence head).
    """

    def __init__(self, cfg: DilatedCNNConfig, *, head: str, pad_id: int = _VOCAB["[PAD]"]) -> None:
        super().__init__()
        if head not in ARCHITECTURES.values():
            raise ValueError(f"unknown head {head!r}")
        self.cfg, self.head, self.pad_id = cfg, head, pad_id
        self.content_offset = 0  # no special tokens (base.Network)
        self.max_content_tokens = cfg.max_tokens
        c = cfg.channels
        self.embeddings = nn.Embedding(cfg.vocab_size, c)
        self.skip = nn.Conv1d(c, c, 1)
        self.units = nn.ModuleList(_Unit(c, k, d) for k, d, r in cfg.blocks for _ in range(r))
        self.skips = nn.ModuleList(nn.Conv1d(c, c, 1) for _ in cfg.blocks)
        self.classifier = nn.Conv1d(c, cfg.num_labels, 1)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def collate(self, content: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Content ids right-padded with [PAD]; ``attention_mask`` 1 on real bases."""
        width = max(len(c) for c in content)
        ids = torch.full((len(content), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(content), width), dtype=torch.long)
        for i, c in enumerate(content):
            ids[i, : len(c)] = torch.from_numpy(np.asarray(c, dtype=np.int64))
            mask[i, : len(c)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def split(self, out: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
        if self.head == "sequence":
            return [out[i] for i in range(len(lengths))]
        return [out[i, :n] for i, n in enumerate(lengths)]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.trunk(self.embeddings(input_ids), attention_mask)

    def trunk(self, embedded: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits from embedded bases ``[B, L, C]`` (what :meth:`forward` does after the lookup)."""
        # the embeddings' dtype (float32 unless the whole network was cast): not a convolution's,
        # whose weights reduced precision holds in bf16/fp16 (predict.cast_linear_weights)
        mask = attention_mask[:, None, :].to(self.embeddings.weight.dtype)  # [B, 1, L]
        h = embedded.transpose(1, 2) * mask  # [B, C, L]
        total = self.skip(h)
        i = 0
        for j, (_, _, repeats) in enumerate(self.cfg.blocks):
            for _ in range(repeats):
                h = self.units[i](h, mask)
                i += 1
            total = total + self.skips[j](h * mask)
        logits = self.classifier(total)  # [B, n, L]
        if self.head == "token":
            return logits.transpose(1, 2)
        m = mask.to(logits.dtype)
        return (logits * m).sum(-1) / m.sum(-1).clamp_min(1.0)


#: how an ensemble's members are combined (config.json ``combine``): ``probability``: the mean
#: of the members' activated outputs (sigmoid or softmax, from ``problem_type``), returned as
#: logits that the same activation turns back into that mean; ``logit``: the mean of the
#: members' logits
COMBINES = ("probability", "logit")
#: problem_type -> activation a ``probability`` ensemble averages under
_ACTIVATIONS = {"multi_label_classification": "sigmoid", "single_label_classification": "softmax"}


class _OneHot(nn.Module):
    """Token ids -> one-hot rows ``[B, L, V]``: the input every member embeds with its own
    table, so that integrated gradients has one input to hook (``weight`` is the identity)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.eye(vocab_size), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.weight)


class DilatedCNNEnsemble(nn.Module):
    """Several dilated CNNs read the same input; their outputs are averaged (``combine``).

    Members are independently trained networks of this family (any ``channels``/``blocks``,
    the same labels and head); ``members.<i>.`` prefixes their weights. Follows
    :class:`genaannot.models.base.Network` exactly as one network does, so scan, score,
    evaluate and interpret run it unchanged.
    """

    def __init__(self, members: list[DilatedCNNNetwork], *, combine: str, activation: str | None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        heads = {m.head for m in members}
        if len(heads) != 1:
            raise ValueError(f"members have different heads: {sorted(heads)}")
        if combine not in COMBINES:
            raise ValueError(f"combine {combine!r}: one of {', '.join(COMBINES)}")
        if combine == "probability" and activation not in ("sigmoid", "softmax"):
            raise ValueError(f"combine 'probability' needs a sigmoid or softmax problem type, not {activation!r}")
        self.members = nn.ModuleList(members)
        self.head, self.combine, self.activation = members[0].head, combine, activation
        self.pad_id = members[0].pad_id
        self.content_offset = 0
        self.max_content_tokens = min(m.max_content_tokens for m in members)
        self.input_onehot = _OneHot(members[0].embeddings.num_embeddings)

    def get_input_embeddings(self) -> nn.Module:
        return self.input_onehot

    def collate(self, content: list[np.ndarray]) -> dict[str, torch.Tensor]:
        return self.members[0].collate(content)

    def split(self, out: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
        return self.members[0].split(out, lengths)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.input_onehot(input_ids)  # [B, L, V]
        logits = torch.stack([m.trunk(x.to(m.embeddings.weight.dtype) @ m.embeddings.weight, attention_mask)
                              for m in self.members])  # [K, B, L, n] or [K, B, n]
        if self.combine == "logit":
            return logits.mean(0)
        if self.activation == "sigmoid":
            # logit(mean sigmoid) = log mean p - log mean (1 - p), each a logsumexp of log-sigmoids
            return torch.logsumexp(F.logsigmoid(logits), 0) - torch.logsumexp(F.logsigmoid(-logits), 0)
        return torch.logsumexp(F.log_softmax(logits, -1), 0) - math.log(len(self.members))  # softmax: the mean


# --------------------------------------------------------------------------- loading


def _head_of(config: Mapping[str, Any], source: str) -> tuple[str, str]:
    archs = config.get("architectures") or []
    if not isinstance(archs, list) or len(archs) != 1 or archs[0] not in ARCHITECTURES:
        raise ModelError(f"{source}: architectures must be one of {', '.join(ARCHITECTURES)}, not {archs!r}")
    return archs[0], ARCHITECTURES[archs[0]]


def _tokenizer(tokenizer: Any = None) -> CharTokenizer:
    if tokenizer is not None and getattr(tokenizer, "vocab", None) != _VOCAB:
        raise TrainError("dilated_cnn has a fixed one-token-per-base vocabulary; leave --tokenizer out")
    return CharTokenizer(_VOCAB, name=_TOKENIZER_NAME)


def _build(cfg: DilatedCNNConfig, head: str) -> DilatedCNNNetwork:
    return DilatedCNNNetwork(cfg, head=head)


def _shape(cfg: DilatedCNNConfig) -> dict[str, Any]:
    """A network's shape as config.json and ``ModelInfo.extra`` describe it."""
    return {"channels": cfg.channels, "blocks": [list(b) for b in cfg.blocks], "receptive_field_bp": cfg.receptive_field}


def _configs(config: Mapping[str, Any], source: str) -> list[DilatedCNNConfig]:
    """One config per network: the checkpoint's own, or each of its ``members``."""
    members = config.get("members")
    if members is None:
        return [DilatedCNNConfig.from_dict(config, source=source)]
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
        raise ModelError(f"{source}: members must be a non-empty list of {{\"channels\", \"blocks\"}} objects, "
                         f"not {members!r}")
    shared = {k: v for k, v in config.items() if k not in ("members", "channels", "blocks")}
    return [DilatedCNNConfig.from_dict({**shared, **m}, source=f"{source} members[{i}]") for i, m in enumerate(members)]


def _ensemble_settings(config: Mapping[str, Any], source: str) -> tuple[str, str | None]:
    combine = config.get("combine")
    if combine not in COMBINES:
        raise ModelError(f"{source}: combine must be one of {', '.join(COMBINES)}, not {combine!r}")
    activation = _ACTIVATIONS.get(config.get("problem_type"))  # type: ignore[arg-type]
    if combine == "probability" and activation is None:
        raise ModelError(f"{source}: combine 'probability' needs problem_type "
                         f"{' or '.join(_ACTIVATIONS)}, not {config.get('problem_type')!r}")
    return combine, activation


def _build_all(cfgs: list[DilatedCNNConfig], head: str, config: Mapping[str, Any], source: str) -> nn.Module:
    if "members" not in config:
        return _build(cfgs[0], head)
    combine, activation = _ensemble_settings(config, source)
    return DilatedCNNEnsemble([_build(c, head) for c in cfgs], combine=combine, activation=activation)


def load(path: Path, *, config: dict[str, Any], window_tokens: int | None = None, **options: Any) -> Loaded:
    """Load a ``dilated_cnn`` checkpoint directory (``config.json`` + ``model.safetensors``).

    ``window_tokens`` overrides the checkpoint's default scan window.
    """
    if options:
        raise ModelError(f"dilated_cnn: unknown load option(s) {', '.join(sorted(options))}")
    path = Path(path)
    source = str(path / "config.json")
    check_labels(config, source=source)
    cfgs = _configs(config, source)
    arch, head = _head_of(config, source)
    for cfg in cfgs:
        if cfg.vocab_size != len(_VOCAB):
            raise ModelError(f"{source}: vocab_size {cfg.vocab_size}; dilated_cnn reads the {len(_VOCAB)}-token "
                             "one-base vocabulary")
    max_tokens = min(c.max_tokens for c in cfgs)
    if window_tokens is not None and not 0 < int(window_tokens) <= max_tokens:
        raise ModelError(f"window_tokens {window_tokens}: 1..{max_tokens}")
    sd = read_weights(path)
    check_on_meta(lambda: _build_all(cfgs, head, config, source), sd, source=str(path), config_source=source)
    network = _build_all(cfgs, head, config, source)
    load_strict(network, sd, source=str(path))
    network.eval()
    id2label = config.get("id2label") or {}
    labels = tuple(str(id2label.get(str(i), f"LABEL_{i}")) for i in range(cfgs[0].num_labels))
    if "members" in config:
        extra: dict[str, Any] = {"members": [_shape(c) for c in cfgs], "combine": network.combine,
                                 "receptive_field_bp": max(c.receptive_field for c in cfgs)}
    else:
        extra = _shape(cfgs[0])
    info = ModelInfo(
        family="dilated_cnn",
        architecture=arch,
        head=head,
        labels=labels,
        problem_type=config.get("problem_type"),
        max_tokens=max_tokens,
        resolution="base",
        n_params=sum(p.numel() for p in network.parameters()),
        source=str(path),
        tokenizer=_TOKENIZER_NAME,
        window_tokens=int(window_tokens or cfgs[0].window_tokens),
        extra=extra,
    )
    return Loaded(network, _tokenizer(), info)


# --------------------------------------------------------------------------- training (family contract)

#: state-dict prefixes of the body (everything but ``classifier``)
BODY = ("embeddings.", "skip.", "units.", "skips.")


def _config_dict(cfg: DilatedCNNConfig, head: HeadSpec) -> dict[str, Any]:
    return {
        "architectures": [_ARCH_OF_HEAD[head.head]],
        "model_type": MODEL_TYPE,
        "channels": cfg.channels,
        "blocks": [list(b) for b in cfg.blocks],
        "vocab_size": cfg.vocab_size,
        "window_tokens": cfg.window_tokens,
        "max_tokens": cfg.max_tokens,
        "receptive_field_bp": cfg.receptive_field,
        **labels_config(head),
    }


def _scan_window(window_tokens: int, cfg_field: int) -> int:
    """A scan window that reads every base with at least half the receptive field on both
    sides at 50 % overlap (4 x half the field), and at least the training window."""
    return max(int(window_tokens), 2 * (cfg_field - 1))


def fresh(
    *, head: HeadSpec, tokenizer: Any, window_tokens: int, arch: ArchConfig, options: Mapping[str, Any]
) -> Trainable:
    """A randomly initialised dilated CNN (PyTorch's default initialisation).

    Options: ``channels`` (default 32), ``blocks`` (``KERNEL:DILATIONxREPEATS,...``, default
    ``11:1x4,11:4x4``, a 401-bp field). ``ArchConfig`` is not read (``--hidden-size``,
    ``--layers``, ``--heads`` are the transformers'); the scan window stored is the larger of
    ``window_tokens`` and twice the receptive field.
    """
    no_options("dilated_cnn", options, ("channels", "blocks"))
    try:
        channels = int(options.get("channels", 32))
    except (TypeError, ValueError):
        raise TrainError(f"dilated_cnn: channels {options.get('channels')!r} is not a whole number") from None
    if channels < 1:
        raise TrainError(f"dilated_cnn: channels {channels} must be >= 1")
    blocks = parse_blocks(options["blocks"]) if "blocks" in options else DEFAULT_BLOCKS
    probe = DilatedCNNConfig(channels=channels, blocks=blocks, num_labels=len(head.labels))
    cfg = DilatedCNNConfig(channels=channels, blocks=blocks, num_labels=len(head.labels),
                           window_tokens=_scan_window(window_tokens, probe.receptive_field))
    net = _build(cfg, head.head)
    return Trainable(family="dilated_cnn", network=net, tokenizer=_tokenizer(tokenizer), config=_config_dict(cfg, head),
                     tokenizer_kind="own", details={"receptive_field_bp": cfg.receptive_field})


def from_checkpoint(
    path: Path,
    *,
    config: dict[str, Any],
    head: HeadSpec,
    tokenizer: Any,
    window_tokens: int,
    options: Mapping[str, Any],
) -> Trainable:
    """Continue training a ``dilated_cnn`` checkpoint: its body, and its classifier when it
    has the head kind and label count asked for (else a new one)."""
    no_options("dilated_cnn", options)
    path = Path(path)
    source = str(path / "config.json")
    if "members" in config:
        raise TrainError(f"{path} is an ensemble of {len(config['members'])} dilated CNNs; train a member "
                         "(or a fresh model) and combine again with `genaannot models ensemble`")
    base = DilatedCNNConfig.from_dict(config, source=source)
    _, base_head = _head_of(config, source)
    cfg = DilatedCNNConfig(channels=base.channels, blocks=base.blocks, num_labels=len(head.labels),
                           vocab_size=base.vocab_size, window_tokens=_scan_window(window_tokens, base.receptive_field),
                           max_tokens=base.max_tokens)
    net = _build(cfg, head.head)
    fit, kept = transfer_weights(net.state_dict(), read_weights(path), body=BODY,
                                 same_head_kind=base_head == head.head, source=str(path))
    net.load_state_dict(fit, strict=False)
    return Trainable(family="dilated_cnn", network=net, tokenizer=_tokenizer(tokenizer), config=_config_dict(cfg, head),
                     base_model=str(path), base_head="kept" if kept else "new",
                     details={"receptive_field_bp": cfg.receptive_field})


def save_trainable(trainable: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path:
    """``config.json``, ``model.safetensors`` (BatchNorm running statistics included), the
    character tokenizer's files and ``genaannot.json``."""
    from ..io.checkpoint import write_model_dir

    net: DilatedCNNNetwork = trainable.network
    config = {**trainable.config, "architectures": [_ARCH_OF_HEAD[net.head]]}
    return write_model_dir(directory, tensors=unique_tensors(net.state_dict()), config=config,
                           tokenizer=trainable.tokenizer, metadata=metadata)


# --------------------------------------------------------------------------- ensembles


def combine_members(
    members: Sequence[tuple[Mapping[str, Any], nn.Module]], *, combine: str = "probability",
    window_tokens: int | None = None,
) -> tuple[DilatedCNNEnsemble, dict[str, Any], dict[str, torch.Tensor]]:
    """One ensemble network from trained single networks of this family.

    Parameters
    ----------
    members : sequence of (config.json dict, network)
        Each a loaded single (non-ensemble) dilated CNN; all with the same head, labels and
        ``problem_type``. Their weights are copied.
    combine : one of :data:`COMBINES`
    window_tokens : int, optional
        The ensemble's scan window; default the largest of the members'.

    Returns
    -------
    (network, config.json dict, tensors to save)

    Raises
    ------
    ModelError
        A member that is an ensemble or of another family, or members that disagree on head,
        labels or problem type (naming the member, 1-based).
    """
    if len(members) < 2:
        raise ModelError(f"an ensemble needs at least two members, not {len(members)}")
    if combine not in COMBINES:
        raise ModelError(f"combine {combine!r}: one of {', '.join(COMBINES)}")
    first_config = members[0][0]
    nets: list[DilatedCNNNetwork] = []
    for i, (config, net) in enumerate(members, 1):
        if config.get("model_type") != MODEL_TYPE or "members" in config or not isinstance(net, DilatedCNNNetwork):
            kind = "an ensemble" if "members" in config else f"model_type {config.get('model_type')!r}"
            raise ModelError(f"member {i} is {kind}; an ensemble combines single dilated_cnn networks")
        for key in ("id2label", "problem_type", "architectures"):
            if config.get(key) != first_config.get(key):
                raise ModelError(f"member {i}: {key} {config.get(key)!r} differs from member 1's "
                                 f"{first_config.get(key)!r}; members must be models of one task and head")
        nets.append(net)
    _, activation = _ensemble_settings({"combine": combine, "problem_type": first_config.get("problem_type")},
                                       "member 1 config.json")
    network = DilatedCNNEnsemble([copy.deepcopy(n) for n in nets], combine=combine, activation=activation)
    cfgs = [n.cfg for n in nets]
    network.eval()
    window = int(window_tokens or max(c.window_tokens for c in cfgs))
    config = {
        "architectures": list(first_config["architectures"]),
        "model_type": MODEL_TYPE,
        "members": [_shape(c) for c in cfgs],
        "combine": combine,
        "vocab_size": cfgs[0].vocab_size,
        "window_tokens": window,
        "max_tokens": min(c.max_tokens for c in cfgs),
        "receptive_field_bp": max(c.receptive_field for c in cfgs),
        **{k: first_config[k] for k in ("id2label", "label2id", "num_labels", "problem_type") if k in first_config},
    }
    return network, config, unique_tensors(network.state_dict())
