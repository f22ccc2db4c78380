"""Train or fine-tune a GENA-architecture model on labelled windows of a genome.

Windows and their labels come from :mod:`genaannot.labels` (the tasks' label definitions,
site index and window sampler). Loss: binary cross-entropy over the 3 channels (``splice``,
token head; site channels' positives weighted ``pos_weight``) or cross-entropy over the 2
classes (``promoter``, sequence head). Training windows are drawn from the training regions
with the random generator seeded by ``seed``; an *epoch* is ``2 * (training bp) /
window_bp`` windows.

Checkpoints
-----------
Every ``save_every`` steps ``MODEL_DIR/checkpoints/step-NNNNNNN/`` receives a complete
model directory plus ``trainer_state.pt`` (optimizer, scheduler, step, RNG states) and the
pointer file ``checkpoints/last`` is replaced atomically; ``resume=True`` continues from
it and draws exactly the windows an uninterrupted run would have drawn. The model with the
best validation score is kept in ``MODEL_DIR`` itself (``genaannot.load_model(MODEL_DIR)``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .conventions import DEFAULT_CONVENTION, get_convention
from .io.annotation import Annotation
from .labels import TASK_SPECS, Batch, GenomeReader, LabelError, SiteIndex, TaskSpec, WindowSampler
from .metrics import average_precision, roc_auc
from .regions import Interval

if TYPE_CHECKING:
    import torch

    from .tokenize import DNATokenizer

__all__ = [
    "TrainConfig",
    "ArchConfig",
    "TrainResult",
    "TrainSetup",
    "build_fresh",
    "build_from_base",
    "build_resumed",
    "char_tokenizer_json",
    "train_bpe_tokenizer_json",
    "train_model",
    "TrainError",
]


class TrainError(RuntimeError):
    """Training cannot start or continue (bad inputs, missing checkpoint, ...)."""


@dataclass
class ArchConfig:
    """A fresh GENA BERT (pre-LayerNorm, like the t2t models)."""

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int | None = None  # default 4 * hidden_size
    dropout: float = 0.1
    #: start the learned position embeddings from a sin/cos table (see _sinusoidal_positions)
    sinusoidal_init: bool = True
    #: weight init std; default hidden_size**-0.5 (BERT's 0.02 is tuned for hidden 768: at
    #: small widths it leaves attention nearly uniform and base-to-base mixing takes
    #: thousands of steps to appear)
    init_std: float | None = None


@dataclass
class TrainConfig:
    """Optimisation and sampling settings (all recorded in ``genaannot.json``)."""

    task: str = "splice"
    window_tokens: int = 510
    steps: int | None = 1000
    epochs: float | None = None
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    device: str | None = None
    precision: str = "fp32"
    site_fraction: float = 0.5
    #: splice: BCE weight of positive site tokens (sites are ~0.5 % of tokens; without it the
    #: model sits at the constant predictor for a long time)
    pos_weight: float = 1.0
    promoter_jitter: int = 20
    #: splice: which base of a junction is labelled (:data:`genaannot.conventions.SITE_CONVENTIONS`);
    #: recorded as ``site_convention`` in ``genaannot.json``
    site_convention: str = DEFAULT_CONVENTION
    save_every: int = 200
    eval_every: int = 200
    valid_windows: int = 64
    keep_checkpoints: int = 2


@dataclass
class TrainResult:
    """What :func:`train_model` did."""

    model_dir: Path
    steps: int
    best_step: int
    best_valid: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    window_bp: int = 0


# --------------------------------------------------------------------------- tokenizers


_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]


def char_tokenizer_json() -> str:
    """``tokenizer.json`` text of a one-token-per-base tokenizer (A C G T N; others → [UNK]).

    A BPE model without merges: the ``tokenizers`` library splits every letter into its own
    token, so spans are single bases and predictions are at nucleotide resolution.
    """
    from tokenizers import Tokenizer, models, processors

    vocab = {t: i for i, t in enumerate(_SPECIALS + list("ACGTN"))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tok.add_special_tokens(_SPECIALS)
    tok.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    return tok.to_str()


def train_bpe_tokenizer_json(chunks: Sequence[str], *, vocab_size: int) -> str:
    """Train a GENA-style BPE tokenizer on DNA chunks; returns ``tokenizer.json`` text.

    Same layout as the GENA-LM tokenizers: specials ``[UNK] [CLS] [SEP] [PAD] [MASK] -``
    (ids 0-5), runs of >= 10 N become the gap token ``-``.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Replace(Regex("N{10,}"), "-")])
    tok.pre_tokenizer = pre_tokenizers.Split("-", behavior="isolated")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=_SPECIALS + ["-"], initial_alphabet=list("ACGTN"), show_progress=False
    )
    tok.train_from_iterator((c.upper() for c in chunks), trainer=trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    return tok.to_str()


def mean_bp_per_token(tokenizer: DNATokenizer, seqs: Sequence[str]) -> float:
    """Average base pairs per content token over ``seqs`` (used to size windows in bp)."""
    encs = tokenizer.encode_batch(list(seqs))
    n_tok = sum(len(e) for e in encs)
    return sum(len(s) for s in seqs) / max(1, n_tok)


# --------------------------------------------------------------------------- labelled windows


def collate_batch(network: Any, batch: Batch, *, spec: TaskSpec) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """Network inputs, targets and (token head) the content-token mask.

    Returns
    -------
    inputs : dict from ``network.collate``: input_ids/attention_mask [B, T+2]
    target : float32 [B, T+2, n_labels] (token head; [CLS]/[SEP]/padding rows zero) or int64 [B]
    mask : bool [B, T+2] true on content tokens (token head) or None
    """
    import torch

    inputs = network.collate(batch.ids)
    if spec.head != "token":
        return inputs, torch.as_tensor(np.stack(batch.labels), dtype=torch.long), None
    b, width = inputs["input_ids"].shape
    target = torch.zeros((b, width, len(spec.labels)), dtype=torch.float32)
    mask = torch.zeros((b, width), dtype=torch.bool)
    for i, y in enumerate(batch.labels):
        n = y.shape[0]
        target[i, 1 : n + 1] = torch.from_numpy(y)  # position 0 is [CLS]
        mask[i, 1 : n + 1] = True
    return inputs, target, mask


def batch_loss(
    network: Any, inputs: dict, target: torch.Tensor, mask: torch.Tensor | None, *, spec: TaskSpec, pos_weight: float = 1.0
) -> torch.Tensor:
    """BCE over channels at content tokens (token head; site channels' positives weighted
    ``pos_weight``) or cross-entropy (sequence head)."""
    import torch
    import torch.nn.functional as F

    out = network(**inputs).float()
    if spec.head == "token":
        pw = torch.full((out.shape[-1],), float(pos_weight), device=out.device)
        pw[0] = 1.0  # the "none" channel is mostly positive
        return F.binary_cross_entropy_with_logits(out[mask], target[mask], pos_weight=pw)
    return F.cross_entropy(out, target)


# --------------------------------------------------------------------------- model set-up


@dataclass
class TrainSetup:
    """What :func:`train_model` trains: the network, its tokenizer and config, and their origin.

    Made by :func:`build_fresh`, :func:`build_from_base` or :func:`build_resumed`.
    """

    network: Any
    tokenizer: Any
    config: Any  # GenaBertConfig
    base_model: str | None
    tokenizer_kind: str
    #: with a base model: whether its task head was "kept" or a "new" head was started
    base_head: str | None = None


def build_fresh(*, tokenizer: DNATokenizer, tokenizer_kind: str, spec: TaskSpec, arch: ArchConfig, window_tokens: int) -> TrainSetup:
    """A freshly initialised pre-LN GENA BERT sized for ``window_tokens`` content tokens."""
    from .models.gena_bert import GenaBertConfig, build_network

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
        id2label=dict(enumerate(spec.labels)),
        problem_type=spec.problem_type,
        initializer_range=arch.init_std if arch.init_std is not None else arch.hidden_size**-0.5,
    )
    net = build_network(cfg, head=spec.head, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
    if arch.sinusoidal_init:
        _sinusoidal_positions(net.bert.embeddings.position_embeddings.weight, scale=cfg.initializer_range)
    return TrainSetup(net, tokenizer, cfg, None, tokenizer_kind)


def _sinusoidal_positions(weight: torch.Tensor, *, scale: float) -> None:
    """Initialise learned position embeddings [P, H] with the Transformer's sin/cos table.

    Only the starting point changes (the embeddings stay trainable and are saved as usual):
    relative offsets are then linear maps of the embeddings, so attention heads that look at
    the neighbouring bases (what a splice site is) are learned far sooner than from noise.
    Scaled to the RMS of the word embeddings (``scale`` = their init std).
    """
    import torch

    n, d = weight.shape
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    with torch.no_grad():
        weight.copy_(table * scale * math.sqrt(2.0))


def build_from_base(base: str, *, spec: TaskSpec, tokenizer: DNATokenizer | None, window_tokens: int,
                    extend_positions: bool = False) -> TrainSetup:
    """Fine-tune a GENA BERT checkpoint: its encoder weights, and its head when the head type and
    label count fit ``spec`` (a new, randomly initialised head otherwise).

    ``extend_positions``: a window longer than the checkpoint's ``max_position_embeddings``
    allows is accepted, and the learned position embeddings grow to ``window_tokens + 2``
    rows: the checkpoint's rows are kept, the new rows start from the sin/cos table at the
    fresh-model scale (:func:`_sinusoidal_positions`); inputs that fit the old table give the
    base model's outputs exactly. Longer inputs do not: a model trained on short windows
    loses nearly all its accuracy on long ones until retrained (measured: ``docs/train.md``).
    """
    from .io.tokenizers import load_tokenizer
    from .models import detect_family, read_config, resolve_checkpoint
    from .models.gena_bert import GenaBertConfig, add_prefix_if_bare, build_network
    from .models.weights import read_weights

    path = resolve_checkpoint(base)
    raw = read_config(path)
    family = detect_family(path, raw)
    if family != "gena_bert":
        raise TrainError(f"--base-model {base}: fine-tuning supports GENA BERT checkpoints, not {family}")
    cfg = GenaBertConfig.from_dict(raw)
    old_positions = cfg.max_position_embeddings
    if extend_positions and window_tokens + 2 > old_positions:
        cfg.max_position_embeddings = window_tokens + 2
    if window_tokens + 2 > cfg.max_position_embeddings:
        raise TrainError(
            f"--window-tokens {window_tokens} does not fit {base} (max_position_embeddings "
            f"{cfg.max_position_embeddings}, i.e. {cfg.max_position_embeddings - 2} content tokens)"
        )
    cfg.id2label = dict(enumerate(spec.labels))
    cfg.problem_type = spec.problem_type
    cfg.architectures = []
    tok = tokenizer or load_tokenizer(path if path.is_dir() else path.parent)
    if tok.vocab_size > cfg.vocab_size:
        raise TrainError(f"tokenizer has {tok.vocab_size} tokens but {base} only {cfg.vocab_size} embeddings")
    net = build_network(cfg, head=spec.head, cls_id=tok.cls_id, sep_id=tok.sep_id)
    state = add_prefix_if_bare(read_weights(path))
    own = net.state_dict()
    pos_key = "bert.embeddings.position_embeddings.weight"
    if cfg.max_position_embeddings > old_positions and pos_key in state:
        grown = own[pos_key].clone()
        _sinusoidal_positions(grown, scale=cfg.initializer_range)
        grown[:old_positions] = state[pos_key]
        state[pos_key] = grown
    # encoder weights only: the base's own head (MLM or another task) is replaced
    fit = {k: v for k, v in state.items() if k.startswith("bert.") and k in own and own[k].shape == v.shape}
    missing_encoder = [k for k in own if k.startswith("bert.embeddings") or k.startswith("bert.encoder")]
    missing_encoder = [k for k in missing_encoder if k not in fit]
    if missing_encoder:
        raise TrainError(f"--base-model {base}: encoder weights missing or misshapen: {missing_encoder[:5]}")
    # continued fine-tuning (same head type and label count, e.g. a published splice branch on a
    # new genome) keeps the trained head; otherwise (MLM base, other task) the head starts fresh
    head_keys = [k for k in own if not k.startswith(("bert.embeddings", "bert.encoder"))]
    base_head = _head_of(raw)
    keep_head = base_head == spec.head and all(k in state and state[k].shape == own[k].shape for k in head_keys)
    if keep_head:
        fit.update({k: state[k] for k in head_keys})
    net.load_state_dict(fit, strict=False)
    return TrainSetup(net, tok, cfg, str(base), "checkpoint", base_head="kept" if keep_head else "new")


def build_resumed(model_dir: str | Path, *, spec: TaskSpec) -> TrainSetup:
    """The network, tokenizer and config of an interrupted run in ``MODEL_DIR/checkpoints/last``.

    The weights are loaded later, with the trainer state, by :func:`train_model` with
    ``resume=True``; base model and tokenizer kind are those the checkpoint recorded.

    Raises
    ------
    TrainError
        When ``MODEL_DIR/checkpoints`` holds no complete checkpoint.
    """
    from .io.checkpoint import last_checkpoint, read_metadata
    from .io.tokenizers import load_tokenizer
    from .models import read_config
    from .models.gena_bert import GenaBertConfig, build_network

    ckpt_root = Path(model_dir) / "checkpoints"
    ck = last_checkpoint(ckpt_root)
    if ck is None:
        raise TrainError(f"--resume: no checkpoint under {ckpt_root}")
    cfg = GenaBertConfig.from_dict(read_config(ck))
    cfg.architectures = []
    tok = load_tokenizer(ck)
    meta = read_metadata(ck)
    net = build_network(cfg, head=spec.head, cls_id=tok.cls_id, sep_id=tok.sep_id)
    return TrainSetup(net, tok, cfg, meta.get("base_model"), meta.get("tokenizer_kind", "checkpoint"))


def _head_of(config: dict) -> str | None:
    archs = " ".join(config.get("architectures") or [])
    for marker, head in (("TokenClassification", "token"), ("SequenceClassification", "sequence"), ("MaskedLM", "mlm")):
        if marker in archs:
            return head
    return None


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(setup: TrainSetup, *, ckpt_root: Path, step: int, state: dict[str, Any], metadata: dict, keep: int) -> Path:
    """Write ``ckpt_root/step-NNNNNNN`` (model + trainer state) and point ``last`` at it.

    The files are written by :func:`genaannot.io.checkpoint.save_step`; this only says
    how the model is saved.
    """
    from .io.checkpoint import save_step
    from .models.gena_bert import save_pretrained

    def write_model(directory: Path) -> None:
        save_pretrained(setup.network, directory, tokenizer=setup.tokenizer, config=setup.config, metadata=metadata)

    return save_step(ckpt_root, step=step, write_model=write_model, state=state, keep=keep)


# --------------------------------------------------------------------------- training


def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:  # linear warm-up, then cosine decay to 10 %
        if step < warmup:
            return (step + 1) / max(1, warmup)
        t = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


def steps_for(config: TrainConfig, *, train_bp: int, window_bp: int) -> int:
    """Total optimisation steps from ``steps`` or ``epochs`` (see the module docstring)."""
    if config.epochs is not None:
        windows = config.epochs * 2 * train_bp / max(1, window_bp)
        return max(1, math.ceil(windows / config.batch_size))
    if not config.steps or config.steps < 1:
        raise TrainError("give --steps N (>= 1) or --epochs E")
    return int(config.steps)


def train_model(
    *,
    genome: GenomeReader,
    annotation: Annotation,
    setup: TrainSetup,
    config: TrainConfig,
    train_regions: Sequence[Interval],
    valid_regions: Sequence[Interval],
    model_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    extra_metadata: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``setup.network`` on windows of ``train_regions``; keep the best on ``valid_regions``.

    Validation score: mean average precision of the site channels over a fixed set of
    ``valid_windows`` validation windows (token head), or AUROC (sequence head).
    """
    import torch
    from tqdm.auto import tqdm

    from .io.checkpoint import TRAINER_STATE_KEYS, last_checkpoint, load_training_state
    from .models.gena_bert import save_pretrained
    from .predict import autocast_context, resolve_device

    spec = TASK_SPECS[config.task]
    say = log or (lambda msg: None)
    model_dir = Path(model_dir)
    ckpt_root = model_dir / "checkpoints"
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    tok = setup.tokenizer
    if tok.max_token_bp <= 1:
        window_bp = config.window_tokens
    else:  # BPE: size windows so that nearly all fit, extra tokens are cut
        sample = [genome.fetch(iv.chrom, iv.start, min(iv.end, iv.start + 20000)) for iv in list(train_regions)[:5]]
        window_bp = int(config.window_tokens * mean_bp_per_token(tok, sample) * 0.95)
    try:
        conv = get_convention(config.site_convention)
    except ValueError as err:
        raise TrainError(str(err)) from None
    train_sites = SiteIndex(annotation, train_regions, spec.site_kinds, convention=conv)
    valid_sites = SiteIndex(annotation, valid_regions, spec.site_kinds, convention=conv)
    if not train_sites.flat:
        where = getattr(annotation, "path", None) or "the annotation"
        raise TrainError(f"{where}: no {'/'.join(spec.site_kinds)} sites of the annotation fall in the training "
                         "regions; check that they hold annotated genes with introns (and the chromosome names)")
    try:
        sampler = WindowSampler(
            genome=genome, sites=train_sites, regions=train_regions, tokenizer=tok, spec=spec, window_bp=window_bp,
            window_tokens=config.window_tokens, site_fraction=config.site_fraction,
            promoter_jitter=config.promoter_jitter,
        )
        valid_batch = None
        if valid_regions:
            vsampler = WindowSampler(
                genome=genome, sites=valid_sites, regions=valid_regions, tokenizer=tok, spec=spec, window_bp=window_bp,
                window_tokens=config.window_tokens, site_fraction=config.site_fraction,
                promoter_jitter=config.promoter_jitter,
            )
            valid_batch = vsampler.batch(np.random.default_rng(config.seed + 1), config.valid_windows)
    except LabelError as err:
        raise TrainError(str(err)) from None

    train_bp = sum(len(iv) for iv in train_regions)
    total = steps_for(config, train_bp=train_bp, window_bp=window_bp)
    net = setup.network.to(device)
    decay = [p for n, p in net.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n and "_ln" not in n]
    no_decay = [p for n, p in net.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n and "_ln" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=config.lr
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, int(config.warmup_fraction * total)))
    scaler = torch.amp.GradScaler(enabled=config.precision == "fp16" and device.startswith("cuda"))

    meta_base = {
        "task": spec.name,
        "labels": list(spec.labels),
        "window_tokens": config.window_tokens,
        "window_bp": window_bp,
        "tokenizer_kind": setup.tokenizer_kind,
        "base_model": setup.base_model,
        "base_head": setup.base_head,
        "train": asdict(config),
        "train_regions": [iv.ucsc() for iv in train_regions],
        "valid_regions": [iv.ucsc() for iv in valid_regions],
        **({"site_convention": conv.name} if spec.head == "token" else {}),
        "site_definitions": {k: conv.definitions[k] for k in spec.site_kinds},
        **(extra_metadata or {}),
    }
    step, best, best_step, history = 0, None, 0, []
    if resume:
        ck = last_checkpoint(ckpt_root)
        if ck is None:
            raise TrainError(f"--resume: no checkpoint in {ckpt_root} (pointer file 'last' missing or stale)")
        from .models.weights import load_strict, read_weights

        if spec.head == "token":
            from .conventions import checkpoint_convention
            from .io.checkpoint import read_metadata

            was, _ = checkpoint_convention(read_metadata(ck))
            if was != conv.name:
                raise TrainError(f"--resume: {ck} was labelled in site convention {was!r}, this run asks for "
                                 f"{conv.name!r}; pass --site-convention {was}")
        load_strict(net, read_weights(ck), source=str(ck))  # a ModelError naming the keys, not a RuntimeError
        st = load_training_state(ck, required=TRAINER_STATE_KEYS)
        if st["total"] != total:
            raise TrainError(f"--resume: checkpoint was made for {st['total']} steps, this run asks for {total}")
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        rng.bit_generator.state = st["numpy_rng"]
        torch.set_rng_state(st["torch_rng"])
        step, best, best_step, history = st["step"], st["best"], st["best_step"], st["history"]
        say(f"resumed from {ck} at step {step}/{total}")

    def validate() -> float | None:
        if valid_batch is None:
            return None
        net.eval()
        scores, labels = [], []
        with torch.inference_mode(), autocast_context(device, config.precision):
            for i in range(0, len(valid_batch.ids), config.batch_size):
                part = Batch(valid_batch.ids[i : i + config.batch_size], valid_batch.labels[i : i + config.batch_size], [])
                inputs, target, mask = collate_batch(net, part, spec=spec)
                out = net(**{k: v.to(device) for k, v in inputs.items()}).float().cpu()
                if spec.head == "token":
                    scores.append(out[mask].numpy())
                    labels.append(target[mask].numpy())
                else:
                    scores.append(torch.softmax(out, -1)[:, 1:].numpy())
                    labels.append(target.numpy()[:, None].astype(np.float32))
        net.train()
        s, y = np.concatenate(scores), np.concatenate(labels)
        if spec.head == "token":
            aps = [average_precision(s[:, c], y[:, c]) for c in range(1, s.shape[1]) if y[:, c].any()]
            return float(np.mean(aps)) if aps else None
        return roc_auc(s[:, 0], y[:, 0]) if 0 < y.sum() < len(y) else None

    net.train()
    bar = tqdm(total=total, initial=step, disable=not progress, desc=f"train {spec.name}", unit="step", dynamic_ncols=True)
    ema = None
    t0 = time.time()
    while step < total:
        batch = sampler.batch(rng, config.batch_size)
        inputs, target, mask = collate_batch(net, batch, spec=spec)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        target = target.to(device)
        mask = mask.to(device) if mask is not None else None
        with autocast_context(device, config.precision):
            loss = batch_loss(net, inputs, target, mask, spec=spec, pos_weight=config.pos_weight)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        scaler.step(opt)
        scaler.update()
        sched.step()
        step += 1
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise TrainError(f"loss is {lv} at step {step}; lower --lr or use --precision fp32")
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        bar.update(1)
        bar.set_postfix(loss=f"{ema:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        if step % config.eval_every == 0 or step == total:
            v = validate()
            history.append({"step": step, "loss": ema, "valid": v if v is not None else float("nan"), "elapsed_s": time.time() - t0})
            say(f"step {step}/{total} loss {ema:.4f} valid {'-' if v is None else f'{v:.4f}'}")
            if v is None or best is None or v > best:
                best, best_step = v, step
                save_pretrained(net, model_dir, tokenizer=tok, config=setup.config,
                                metadata={**meta_base, "best_step": step, "valid_score": v})
        if step % config.save_every == 0 or step == total:
            state = {
                "step": step, "total": total, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "best": best,
                "best_step": best_step, "history": history,
            }
            save_checkpoint(setup, ckpt_root=ckpt_root, step=step, state=state,
                            metadata={**meta_base, "step": step}, keep=config.keep_checkpoints)
    bar.close()
    return TrainResult(model_dir, total, best_step, best, history, window_bp)
