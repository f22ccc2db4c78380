"""Recurrent Memory Transformer (RMT) around a GENA BERT, for inference.

Reproduces ``gena_lm.modeling_rmt`` (``RMTEncoderForSequenceClassification`` /
``RMTEncoderForTokenClassification``) on trainer checkpoints:

- content tokens (no [CLS]/[SEP]/[PAD]) beyond ``segment_size * max_n_segments`` are cut
  (reported through ``Prediction.n_tokens_dropped``; upstream drops them silently);
- the rest is cut into ``ceil(n / segment_size)`` NEAR-EQUAL chunks the way ``torch.chunk``
  does (each ``ceil(n / k)`` long, the last one shorter), not full segments + remainder;
- segment = ``[CLS] mem_1..mem_m [SEP] chunk [SEP]`` padded to ``input_size`` with
  ``segment_pad_token_id`` (sequence wrapper: 0 = [UNK], attended because the mask only hides
  [PAD] = 3; token wrapper: [PAD], masked). Positions restart at 0 in every segment;
- memory: the first segment gets the raw word-embedding rows of the memory ids; each segment's
  memory vectors replace the word embeddings at positions ``1..m`` and then take the normal
  embedding path; the new memory is the last hidden state at those positions;
- sequence heads return the final segment's logits; token heads the content-token logits of
  every segment in order (``[n_content_used, n_labels]``, aligned with the token spans).

Checkpoint layout (lm_experiments_tools ``Trainer.save``): ``*.pth`` holding
``{"model_state_dict": {...}}`` with keys ``model.`` + backbone keys, the alias
``model.embeddings.weight`` and the buffers ``cls_token``/``sep_token``/``mem_token_ids``;
``config.json`` (the backbone config before the memory rows were added) and optionally
``rmt.json`` (segment parameters, tokenizer name) beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io.checkpoint import read_rmt_meta
from ..io.tokenizers import load_tokenizer, read_bpe_tokenizer
from ..io.weights import read_weights
from ..tokenize import DNATokenizer
from .base import Loaded, ModelError, ModelInfo
from .families import HeadSpec, Trainable, TrainError, no_options, transfer_weights
from .gena_bert import (
    LAYER_PREFIX,
    GenaBertConfig,
    GenaBertNetwork,
    build_network,
    choose_head,
    head_hint,
)
from .validate import check_count, check_on_meta
from .weights import load_strict, n_parameters

__all__ = ["RMTParams", "RMTNetwork", "RMTTrace", "chunk_bounds", "load", "BUNDLED_TOKENIZERS", "claims",
           "from_checkpoint", "fresh", "save_trainable", "TRAIN_OPTIONS"]

#: tokenizer names (as in rmt.json) shipped with genaannot, relative to genaannot/data
BUNDLED_TOKENIZERS: dict[str, str] = {"t2t_1000h_multi_32k": "tokenizers/t2t_1000h_multi_32k"}

#: wrapper buffers stored in trainer checkpoints (not learned, re-derived here)
_WRAPPER_BUFFERS = ("cls_token", "sep_token", "mem_token_ids")


@dataclass(frozen=True)
class RMTParams:
    """Segmentation parameters of an RMT model."""

    num_mem_tokens: int
    input_size: int
    segment_size: int
    max_n_segments: int
    segment_pad_token_id: int

    @property
    def capacity(self) -> int:
        """Content tokens one input may hold (all segments)."""
        return self.segment_size * self.max_n_segments


def chunk_bounds(n: int, *, segment_size: int, max_n_segments: int) -> np.ndarray:
    """``[start, end)`` of each segment's chunk in the content-token list, à la ``torch.chunk``.

    Parameters
    ----------
    n
        Content tokens (already cut to the capacity or not; the cut is applied here too).

    Returns
    -------
    int64 ndarray ``[n_segments, 2]``; one empty segment for ``n == 0``.
    """
    n = min(n, segment_size * max_n_segments)
    if n == 0:
        return np.zeros((1, 2), dtype=np.int64)
    k = math.ceil(n / segment_size)
    size = math.ceil(n / k)  # torch.chunk: every chunk ceil(n / k) long, the last shorter
    starts = np.arange(0, n, size, dtype=np.int64)
    return np.stack([starts, np.minimum(starts + size, n)], axis=1)


@dataclass
class RMTTrace:
    """Internals of one RMT forward pass, per input (for parity checks and debugging).

    Attributes (per input ``i``, ``S_i`` segments, ``T = input_size``, ``m`` memory tokens)
    ----------
    segment_input_ids : list of int64 ``[S_i, T]``
    segment_attention_mask : list of int64 ``[S_i, T]``
    segment_bounds : list of int64 ``[S_i, 2]``
    segment_logits : list of float ``[S_i, n_labels]`` or ``[S_i, T, n_labels]``
    memory_in, memory_out : list of float ``[S_i, m, H]``
    """

    segment_input_ids: list[np.ndarray]
    segment_attention_mask: list[np.ndarray]
    segment_bounds: list[np.ndarray]
    segment_logits: list[np.ndarray]
    memory_in: list[np.ndarray]
    memory_out: list[np.ndarray]


class RMTNetwork(nn.Module):
    """RMT inference wrapper following the Network protocol.

    The backbone's state-dict names are kept under ``backbone.`` (``backbone.bert...``).
    ``collate`` returns ``input_ids``/``attention_mask`` ``[B, S, input_size]`` and
    ``n_segments`` ``[B]``; ``forward`` returns ``[B, n_labels]`` (sequence head: final
    segment) or ``[B, S * input_size, n_labels]`` (token head: every segment's block).
    """

    def __init__(
        self,
        backbone: GenaBertNetwork,
        params: RMTParams,
        *,
        mem_token_ids: list[int],
        cls_id: int,
        sep_id: int,
    ) -> None:
        super().__init__()
        if backbone.head not in ("sequence", "token"):
            raise ModelError(f"RMT needs a sequence or token classification backbone, not {backbone.head!r}")
        m = params.num_mem_tokens
        if len(mem_token_ids) != m:
            raise ModelError(f"{len(mem_token_ids)} memory token ids for {m} memory tokens")
        if params.segment_size + m + 3 > params.input_size:
            raise ModelError(
                f"segment_size {params.segment_size} + {m} memory tokens + 3 specials exceed input_size {params.input_size}"
            )
        if params.input_size > backbone.config.max_position_embeddings:
            raise ModelError(f"input_size {params.input_size} exceeds max_position_embeddings {backbone.config.max_position_embeddings}")
        self.backbone = backbone
        self.params = params
        self.head = backbone.head
        self.max_content_tokens = params.capacity
        self.cls_id, self.sep_id = cls_id, sep_id
        self.attn_pad_id = backbone.config.pad_token_id  # upstream's mask hides only this id
        self.register_buffer("mem_token_ids", torch.tensor(mem_token_ids, dtype=torch.long), persistent=False)

    # -- layout ---------------------------------------------------------------------------
    def _segments(self, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        bounds = chunk_bounds(len(content), segment_size=p.segment_size, max_n_segments=p.max_n_segments)
        m = p.num_mem_tokens
        mem = self.mem_token_ids.cpu().numpy()
        seg = np.full((len(bounds), p.input_size), p.segment_pad_token_id, dtype=np.int64)
        for s, (a, b) in enumerate(bounds):
            seg[s, 0] = self.cls_id
            seg[s, 1 : m + 1] = mem
            seg[s, m + 1] = self.sep_id
            seg[s, m + 2 : m + 2 + b - a] = content[a:b]
            seg[s, m + 2 + b - a] = self.sep_id
        return seg, bounds

    def get_input_embeddings(self) -> nn.Embedding:
        """The token-embedding table (used by integrated gradients)."""
        return self.backbone.get_input_embeddings()

    def collate(self, content: list[np.ndarray]) -> dict[str, torch.Tensor]:
        segs = [self._segments(np.asarray(c, dtype=np.int64))[0] for c in content]
        n_seg = max(len(s) for s in segs)
        t = self.params.input_size
        ids = torch.full((len(segs), n_seg, t), self.attn_pad_id, dtype=torch.long)
        for i, s in enumerate(segs):
            ids[i, : len(s)] = torch.from_numpy(s)
        n_segments = torch.tensor([len(s) for s in segs], dtype=torch.long)
        exists = torch.arange(n_seg)[None, :] < n_segments[:, None]
        mask = ((ids != self.attn_pad_id) & exists[:, :, None]).long()
        return {"input_ids": ids, "attention_mask": mask, "n_segments": n_segments}

    # -- forward --------------------------------------------------------------------------
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_segments: torch.Tensor
    ) -> torch.Tensor:
        return self._run(input_ids, attention_mask, n_segments, record=None)

    def _run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        n_segments: torch.Tensor,
        *,
        record: list[dict[str, torch.Tensor]] | None,
    ) -> torch.Tensor:
        bsz, n_seg, t = input_ids.shape
        m = self.params.num_mem_tokens
        word = self.backbone.bert.embeddings.word_embeddings
        memory = word(self.mem_token_ids)[None].expand(bsz, m, -1)
        out = None
        for s in range(n_seg):
            # inputs whose chain has a segment s; each keeps its own memory chain
            active = torch.nonzero(n_segments > s).flatten()
            ids = input_ids[active, s]
            emb = word(ids)
            mem_in = memory[active]
            emb = torch.cat([emb[:, :1], mem_in.to(emb.dtype), emb[:, m + 1 :]], dim=1)
            logits, enc = self.backbone.forward_full(inputs_embeds=emb, attention_mask=attention_mask[active, s])
            mem_out = enc.last_hidden_state[:, 1 : m + 1]
            memory = memory.index_copy(0, active, mem_out.to(memory.dtype))
            if record is not None:
                record.append({"active": active, "logits": logits, "memory_in": mem_in, "memory_out": mem_out})
            if self.head == "sequence":
                if out is None:
                    out = logits.new_zeros((bsz, logits.shape[-1]))
                out = out.index_copy(0, active, logits)  # ends as each input's final segment
            else:
                if out is None:
                    out = logits.new_zeros((bsz, n_seg * t, logits.shape[-1]))
                out[active, s * t : (s + 1) * t] = logits
        assert out is not None
        return out

    def split(self, out: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
        """Sequence head: ``[n_labels]``; token head: content rows of every segment, in order."""
        if self.head == "sequence":
            return [out[i] for i in range(len(lengths))]
        p, t = self.params, self.params.input_size
        first = p.num_mem_tokens + 2  # [CLS] memory [SEP] precede the chunk
        parts = []
        for i, n in enumerate(lengths):
            bounds = chunk_bounds(n, segment_size=p.segment_size, max_n_segments=p.max_n_segments)
            rows = [out[i, s * t + first : s * t + first + (b - a)] for s, (a, b) in enumerate(bounds)]
            parts.append(torch.cat(rows, dim=0))
        return parts

    @torch.no_grad()
    def trace(self, content: list[np.ndarray]) -> tuple[torch.Tensor, RMTTrace]:
        """Run ``content`` and also return the per-segment internals (:class:`RMTTrace`)."""
        batch = self.collate(content)
        record: list[dict[str, torch.Tensor]] = []
        out = self._run(**batch, record=record)
        n_segments = batch["n_segments"].tolist()
        tr = RMTTrace([], [], [], [], [], [])
        p = self.params
        for i, c in enumerate(content):
            k = n_segments[i]
            tr.segment_input_ids.append(batch["input_ids"][i, :k].numpy())
            tr.segment_attention_mask.append(batch["attention_mask"][i, :k].numpy())
            tr.segment_bounds.append(chunk_bounds(len(c), segment_size=p.segment_size, max_n_segments=p.max_n_segments))
            per = {"logits": [], "memory_in": [], "memory_out": []}
            for step in record[:k]:
                j = int(torch.nonzero(step["active"] == i).flatten()[0])
                for name in per:
                    per[name].append(step[name][j].float().cpu().numpy())
            tr.segment_logits.append(np.stack(per["logits"]))
            tr.memory_in.append(np.stack(per["memory_in"]))
            tr.memory_out.append(np.stack(per["memory_out"]))
        return out, tr


# --------------------------------------------------------------------------- loading

_OPTION_NAMES = ("num_mem_tokens", "input_size", "segment_size", "max_n_segments", "segment_pad_token_id", "tokenizer", "checkpoint")


def _find_checkpoint(directory: Path, meta: dict[str, Any]) -> Path:
    if meta.get("checkpoint"):
        p = directory / meta["checkpoint"]
        if not p.is_file():
            raise ModelError(f"{directory}: rmt.json names checkpoint {meta['checkpoint']!r}, which is missing")
        return p
    pths = sorted(directory.glob("*.pth"))
    best = [p for p in pths if p.name == "model_best.pth"]
    if best:
        return best[0]
    if len(pths) == 1:
        return pths[0]
    if not pths:
        raise ModelError(f"{directory}: no .pth checkpoint (RMT models are trainer checkpoints)")
    raise ModelError(f"{directory}: several .pth files ({', '.join(p.name for p in pths)}); pass the file itself")


def _find_tokenizer(directory: Path, meta: dict[str, Any], option: Any) -> DNATokenizer:
    # tokenizer=OPTION: a directory or file, or a bundled name (what the message below offers)
    if option and (str(option) not in BUNDLED_TOKENIZERS or Path(str(option)).exists()):
        return load_tokenizer(Path(option))
    if not option and (directory / "tokenizer.json").is_file():
        return load_tokenizer(directory)
    name = str(option) if option else meta.get("tokenizer")
    if name in BUNDLED_TOKENIZERS:
        from importlib import resources

        bundled = Path(str(resources.files("genaannot").joinpath("data", BUNDLED_TOKENIZERS[name], "tokenizer.json")))
        if bundled.is_file():
            return read_bpe_tokenizer(bundled)
    raise ModelError(
        f"{directory}: no tokenizer.json and no usable tokenizer name in rmt.json ({name!r}); "
        f"pass tokenizer=PATH or a bundled name ({', '.join(BUNDLED_TOKENIZERS)}) (--model-option tokenizer=...)"
    )


def load(path: Path, *, config: dict[str, Any], **options: Any) -> Loaded:
    """Load an RMT trainer checkpoint (family ``rmt``): a ``.pth`` file or its directory.

    Options (override ``rmt.json``)
    -------
    num_mem_tokens, input_size, segment_size, max_n_segments, segment_pad_token_id : int
    tokenizer : tokenizer directory / ``tokenizer.json``
    checkpoint : ``.pth`` file name inside the directory
    """
    path = Path(path)
    unknown = set(options) - set(_OPTION_NAMES)
    if unknown:
        raise ModelError(f"rmt: unknown options {sorted(unknown)} (known: {', '.join(_OPTION_NAMES)})")
    directory = path if path.is_dir() else path.parent
    meta = read_rmt_meta(directory)
    if options.get("checkpoint"):
        meta = {**meta, "checkpoint": options["checkpoint"]}
    ckpt = path if path.is_file() else _find_checkpoint(directory, meta)
    if config.get("model_type") != "bert":
        raise ModelError(f"{directory}: RMT backbone model_type {config.get('model_type')!r} is not supported (bert only)")
    raw = read_weights(ckpt, key=meta.get("checkpoint_key"))
    source = str(ckpt)

    # wrapper buffers and alias -> strip; everything else must carry the prefix
    prefix = meta.get("state_dict_prefix", "model.")
    buffers = {k: raw.pop(k) for k in _WRAPPER_BUFFERS if k in raw}
    alias = raw.pop(prefix + "embeddings.weight", None)
    stray = [k for k in raw if not k.startswith(prefix)]
    if stray:
        raise ModelError(f"{source}: unexpected keys outside {prefix!r}: {stray[:10]}")
    state = {k[len(prefix) :]: v for k, v in raw.items()}
    word_key = "bert.embeddings.word_embeddings.weight"
    if word_key not in state:
        raise ModelError(f"{source}: no {prefix}{word_key}; not an RMT GENA BERT checkpoint")
    if alias is not None and not torch.equal(alias, state[word_key]):
        raise ModelError(f"{source}: {prefix}embeddings.weight differs from the word embeddings it should alias")

    config_source = str(directory / "config.json")
    cfg = GenaBertConfig.from_dict(config, source=config_source)
    rows = int(state[word_key].shape[0])
    m = rows - cfg.vocab_size
    want_m = options.get("num_mem_tokens", meta.get("num_mem_tokens"))
    if want_m is not None and int(want_m) != m:
        raise ModelError(
            f"{source}: {rows} embedding rows = config vocab {cfg.vocab_size} + {m} memory tokens, "
            f"but {want_m} memory tokens were asked for"
        )
    if m <= 0:
        raise ModelError(f"{source}: no memory-token rows in the embeddings ({rows} rows, vocab {cfg.vocab_size})")
    if "mem_token_ids" in buffers:
        mem_ids = [int(x) for x in buffers["mem_token_ids"].flatten()]
    else:
        mem_ids = list(meta.get("mem_token_ids") or range(cfg.vocab_size, cfg.vocab_size + m))
    cfg.vocab_size = rows  # the wrapper resized the embeddings

    head = choose_head(cfg, state, source=source)
    if head == "mlm":
        raise ModelError(f"{source}: RMT with an MLM backbone is not supported (sequence/token heads only)")
    tokenizer = _find_tokenizer(directory, meta, options.get("tokenizer"))
    cls_id = int(buffers["cls_token"].flatten()[0]) if "cls_token" in buffers else tokenizer.cls_id
    sep_id = int(buffers["sep_token"].flatten()[0]) if "sep_token" in buffers else tokenizer.sep_id
    if (cls_id, sep_id) != (tokenizer.cls_id, tokenizer.sep_id):
        raise ModelError(f"{source}: checkpoint [CLS]/[SEP] ids {cls_id}/{sep_id} differ from the tokenizer's")

    def param(name: str, default: Any = None) -> int:
        value = options.get(name, meta.get(name, default))
        if value is None:
            raise ModelError(
                f"{directory}: RMT parameter {name} is unknown; write it into rmt.json or pass it as an option "
                f"(e.g. genaannot models inspect PATH --model-option {name}=N; Python: load_model(PATH, {name}=N))"
            )
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if isinstance(value, bool) or number < 0 or (isinstance(value, float) and value != number):
            where = "option" if name in options else f"{directory / 'rmt.json'}:"
            raise ModelError(f"{where} {name} must be a whole number >= 0, not {value!r}")
        return number

    input_size = param("input_size")
    params = RMTParams(
        num_mem_tokens=m,
        input_size=input_size,
        segment_size=param("segment_size", input_size - m - 3),
        max_n_segments=param("max_n_segments"),
        # upstream: the sequence wrapper pads with 0 (attended), the token wrapper with [PAD]
        segment_pad_token_id=param("segment_pad_token_id", 0 if head == "sequence" else cfg.pad_token_id),
    )
    # config vs weights before any allocation: layer count, then every shape on the meta device
    check_count(config, "num_hidden_layers", state, LAYER_PREFIX, source=config_source, weights=source,
                expected=cfg.num_hidden_layers)
    strict = {"source": source, "ignore": ("embeddings.position_ids",), "shown_prefix": prefix,
              "hint": head_hint(cfg, head)}

    def build() -> GenaBertNetwork:
        return build_network(cfg, head=head, cls_id=cls_id, sep_id=sep_id)

    check_on_meta(build, state, config_source=config_source, **strict)
    backbone = build()
    load_strict(backbone, state, **strict)
    net = RMTNetwork(backbone, params, mem_token_ids=mem_ids, cls_id=cls_id, sep_id=sep_id)
    net.eval()
    kind = "Sequence" if head == "sequence" else "Token"
    info = ModelInfo(
        family="rmt",
        architecture=meta.get("model_cls", f"RMTEncoderFor{kind}Classification"),
        head=head,
        labels=cfg.labels,
        problem_type=cfg.problem_type,  # made explicit by load_model
        max_tokens=params.capacity,
        resolution="token",
        n_params=n_parameters(net),
        source=str(ckpt),
        tokenizer=tokenizer.name,
        extra={"rmt": asdict(params), "backbone": f"BertFor{kind}Classification", "mem_token_ids": mem_ids},
    )
    return Loaded(net, tokenizer, info)


def claims(path: Path, config: dict[str, Any]) -> bool:
    """Whether ``path`` is an RMT checkpoint: a ``.pth`` file, a directory with ``rmt.json``,
    or a trainer output directory (backbone ``config.json`` + ``*.pth``, no HF weights)."""
    from ..io.weights import has_weights

    path = Path(path)
    directory = path if path.is_dir() else path.parent
    if path.suffix == ".pth" or (directory / "rmt.json").is_file():
        return True
    return path.is_dir() and any(path.glob("*.pth")) and not has_weights(path)


# --------------------------------------------------------------------------- training (family contract)

#: training options (``genaannot train --family rmt --family-option KEY=VALUE``)
TRAIN_OPTIONS = ("num_mem_tokens", "input_size", "segment_size", "max_n_segments")


@dataclass
class RMTTrainConfig:
    """What :func:`save_trainable` needs besides the network: the backbone config's vocabulary
    before the memory rows were added (``config.json`` keeps that, as upstream's trainer)."""

    base_vocab_size: int


def _option(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or number < 1 or (isinstance(value, float) and value != number):
        raise TrainError(f"rmt: {name} must be a whole number >= 1, not {value!r}")
    return number


def _segments(options: Mapping[str, Any], *, m: int, input_size: int, window_tokens: int, pad_id: int,
              default_segments: int = 1) -> RMTParams:
    segment_size = _option(options, "segment_size", input_size - m - 3)
    n = _option(options, "max_n_segments", max(default_segments, math.ceil(window_tokens / segment_size)))
    return RMTParams(num_mem_tokens=m, input_size=input_size, segment_size=segment_size, max_n_segments=n,
                     segment_pad_token_id=pad_id)


def _wrap(backbone: GenaBertNetwork, tokenizer: DNATokenizer, *, options: Mapping[str, Any], window_tokens: int,
          base: str | None, base_head: str | None) -> Trainable:
    """Add ``num_mem_tokens`` memory rows to a GENA BERT's word embeddings (drawn as upstream:
    normal with the embeddings' std) and wrap it in an :class:`RMTNetwork`."""
    cfg = backbone.config
    m = _option(options, "num_mem_tokens", 10)
    input_size = _option(options, "input_size", cfg.max_position_embeddings)
    if input_size > cfg.max_position_embeddings:
        raise TrainError(f"rmt: input_size {input_size} exceeds the backbone's max_position_embeddings "
                         f"{cfg.max_position_embeddings}")
    old = backbone.bert.embeddings.word_embeddings
    rows = old.num_embeddings
    new = nn.Embedding(rows + m, old.embedding_dim, padding_idx=old.padding_idx)
    with torch.no_grad():
        new.weight[:rows] = old.weight
        new.weight[rows:] = torch.randn(m, old.embedding_dim) * old.weight.std()
    backbone.bert.embeddings.word_embeddings = new
    cfg.vocab_size = rows + m
    params = _segments(options, m=m, input_size=input_size, window_tokens=window_tokens, pad_id=cfg.pad_token_id)
    try:
        net = RMTNetwork(backbone, params, mem_token_ids=list(range(rows, rows + m)), cls_id=tokenizer.cls_id,
                         sep_id=tokenizer.sep_id)
    except ModelError as err:
        raise TrainError(f"rmt: {err}") from None
    return Trainable(family="rmt", network=net, tokenizer=tokenizer, config=RMTTrainConfig(rows), base_model=base,
                     base_head=base_head, details={"rmt": asdict(params)})


def from_checkpoint(
    path: Path,
    *,
    config: dict[str, Any],
    head: HeadSpec,
    tokenizer: DNATokenizer | None,
    window_tokens: int,
    options: Mapping[str, Any],
) -> Trainable:
    """Train an RMT from a GENA BERT checkpoint (wrapped: new memory rows, its encoder, its
    head when it fits) or from an RMT checkpoint (continued: its segment parameters, its head
    when it fits; ``max_n_segments`` grows to hold ``window_tokens``).

    Trained: every backbone parameter (embeddings with the memory rows, encoder, head),
    through all segments of a window (back-propagation through the whole memory chain). The
    sequence head reads the last segment; the token head every segment's content tokens.
    """
    from .gena_bert import from_checkpoint as bert_from_checkpoint

    no_options("rmt", options, TRAIN_OPTIONS)
    path = Path(path)
    if not claims(path, config):  # a GENA BERT: wrap it
        base = bert_from_checkpoint(path, config=config, head=head, tokenizer=tokenizer, window_tokens=window_tokens,
                                    options={})
        return _wrap(base.network, base.tokenizer, options=options, window_tokens=window_tokens, base=str(path),
                     base_head=base.base_head)
    fixed = sorted(set(options) & {"num_mem_tokens", "input_size"})
    if fixed:
        raise TrainError(f"rmt: {', '.join(fixed)} of an RMT checkpoint are fixed by its weights and rmt.json")
    loaded = load(path, config=config)
    net: RMTNetwork = loaded.network
    tok = loaded.tokenizer
    if tokenizer is not None and tokenizer.vocab_size != tok.vocab_size:
        raise TrainError(f"--tokenizer: {path} was trained with its own tokenizer ({tok.vocab_size} tokens)")
    old = net.backbone
    cfg = old.config
    cfg.id2label = dict(enumerate(head.labels))
    cfg.problem_type = head.problem_type
    cfg.architectures = []
    backbone = build_network(cfg, head=head.head, cls_id=old.cls_id, sep_id=old.sep_id)
    from .gena_bert import BODY

    state = old.state_dict()
    fit, kept = transfer_weights(backbone.state_dict(), state, body=BODY, same_head_kind=old.head == head.head,
                                 source=str(path))
    own = backbone.state_dict()
    fit.update({k: v for k, v in state.items() if k.startswith("bert.pooler.") and k in own and own[k].shape == v.shape})
    backbone.load_state_dict(fit, strict=False)
    p = net.params
    params = _segments({"segment_size": p.segment_size, **options}, m=p.num_mem_tokens, input_size=p.input_size,
                       window_tokens=window_tokens, pad_id=p.segment_pad_token_id, default_segments=p.max_n_segments)
    mem_ids = [int(x) for x in net.mem_token_ids.tolist()]
    wrapped = RMTNetwork(backbone, params, mem_token_ids=mem_ids, cls_id=net.cls_id, sep_id=net.sep_id)
    return Trainable(family="rmt", network=wrapped, tokenizer=tok, config=RMTTrainConfig(cfg.vocab_size - p.num_mem_tokens),
                     base_model=str(path), base_head="kept" if kept else "new", details={"rmt": asdict(params)})


def fresh(
    *, head: HeadSpec, tokenizer: DNATokenizer | None, window_tokens: int, arch: Any, options: Mapping[str, Any]
) -> Trainable:
    """A fresh GENA BERT (:func:`genaannot.models.gena_bert.fresh`, ``arch``) of ``input_size``
    positions (option, default 128) wrapped in an RMT: segments of ``segment_size`` content
    tokens, as many as ``window_tokens`` needs."""
    from .gena_bert import fresh as bert_fresh

    no_options("rmt", options, TRAIN_OPTIONS)
    input_size = _option(options, "input_size", 128)
    base = bert_fresh(head=head, tokenizer=tokenizer, window_tokens=input_size - 2, arch=arch, options={})
    return _wrap(base.network, base.tokenizer, options=options, window_tokens=window_tokens, base=None, base_head=None)


def save_trainable(trainable: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path:
    """An RMT trainer checkpoint as upstream's trainer lays it out: ``model_best.pth``
    (``{"model_state_dict": ...}``: ``model.`` + backbone keys, ``cls_token``, ``sep_token``,
    ``mem_token_ids``), ``config.json`` (the backbone's, vocabulary before the memory rows),
    ``rmt.json`` (segment parameters), tokenizer files and ``genaannot.json``."""
    from ..io.checkpoint import write_model_dir
    from .families import unique_tensors

    net: RMTNetwork = trainable.network
    backbone = net.backbone
    state = {"model." + k: v for k, v in unique_tensors(backbone.state_dict()).items()}
    state["cls_token"] = torch.tensor([net.cls_id])
    state["sep_token"] = torch.tensor([net.sep_id])
    state["mem_token_ids"] = net.mem_token_ids.detach().cpu().clone()
    kind = "Sequence" if net.head == "sequence" else "Token"
    cfg = GenaBertConfig.from_dict(backbone.config.to_dict())
    cfg.vocab_size = trainable.config.base_vocab_size
    cfg.architectures = [f"BertFor{kind}Classification"]
    rmt = {**asdict(net.params), "checkpoint": "model_best.pth", "model_cls": f"RMTEncoderFor{kind}Classification"}
    return write_model_dir(directory, tensors=state, config=cfg.to_dict(), tokenizer=trainable.tokenizer,
                           metadata=metadata, weights_file="model_best.pth", json_files={"rmt.json": rmt})
