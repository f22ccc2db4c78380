"""Train or fine-tune a model of any family on labelled windows of a genome.

The network comes from its family (:mod:`genaannot.models.families`: ``fresh``,
``from_checkpoint``) and is saved by it (``save_trainable``); training itself only uses the
family's ``collate`` / ``forward`` / ``split``, so every family trains the same way.

Windows and their labels come from :mod:`genaannot.labels` (the tasks' label definitions,
site index and window sampler). The loss is the task's (:data:`LOSS_FUNCTIONS`, named by its
registry entry's ``Training.loss``): binary cross-entropy over the channels at content
tokens, site channels' positives weighted ``pos_weight`` (``bce``: ``splice``), or
cross-entropy over the window's classes (``cross_entropy``: ``promoter``). Training windows are drawn from the training regions
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
from .models.families import FAMILIES, ArchConfig, HeadSpec, Trainable, TrainError
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
    "LOSS_FUNCTIONS",
    "batch_loss",
    "head_spec",
]


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
    #: ``bce`` loss (splice): weight of positive site tokens (sites are ~0.5 % of tokens; without
    #: it the model sits at the constant predictor for a long time); ``genaannot train --pos-weight``
    pos_weight: float = 10.0
    promoter_jitter: int = 20
    #: splice: which base of a junction is labelled (:data:`genaannot.conventions.SITE_CONVENTIONS`);
    #: recorded as ``site_convention`` in ``genaannot.json``
    site_convention: str = DEFAULT_CONVENTION
    save_every: int = 200
    eval_every: int = 200
    valid_windows: int = 64
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        """Refuse values the CLI's option types would refuse, so that a library caller gets the
        same clear error instead of a failure deep inside training."""
        whole = {"window_tokens": 1, "batch_size": 1, "save_every": 1, "eval_every": 1, "valid_windows": 1,
                 "keep_checkpoints": 1, "promoter_jitter": 0}
        for name, low in whole.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise TrainError(f"TrainConfig.{name} must be a whole number >= {low}, not {v!r}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1):
            raise TrainError(f"TrainConfig.steps must be a whole number >= 1 or None, not {self.steps!r}")
        if self.epochs is not None and not (isinstance(self.epochs, (int, float)) and self.epochs > 0):
            raise TrainError(f"TrainConfig.epochs must be > 0 or None, not {self.epochs!r}")
        positive = {"lr": self.lr, "pos_weight": self.pos_weight}
        for name, v in positive.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise TrainError(f"TrainConfig.{name} must be a number > 0, not {v!r}")
        fractions = {"weight_decay": (self.weight_decay, 0.0, math.inf), "warmup_fraction": (self.warmup_fraction, 0.0, 1.0),
                     "site_fraction": (self.site_fraction, 0.0, 1.0), "grad_clip": (self.grad_clip, 0.0, math.inf)}
        for name, (v, low, high) in fractions.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high or math.isnan(v):
                raise TrainError(f"TrainConfig.{name} must be a number in [{low}, {high}], not {v!r}")


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


def collate_batch(network: Any, batch: Batch, *, spec: TaskSpec) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]:
    """Network inputs (``network.collate``: the family's own layout), targets and content lengths.

    Returns
    -------
    inputs : dict of tensors, as the family's ``collate`` lays the batch out
    target : float32 [sum(T_i), n_labels] (token head: every input's content tokens, in
        order) or int64 [B] (sequence head)
    lengths : list of int, content tokens per input (``T_i``)
    """
    import torch

    inputs = network.collate(batch.ids)
    lengths = [len(x) for x in batch.ids]
    if spec.head != "token":
        return inputs, torch.as_tensor(np.stack(batch.labels), dtype=torch.long), lengths
    return inputs, torch.from_numpy(np.concatenate(batch.labels).astype(np.float32, copy=False)), lengths


def content_logits(network: Any, out: torch.Tensor, lengths: list[int], *, spec: TaskSpec) -> torch.Tensor:
    """The network's output cut back to content rows by its own ``split`` (no [CLS]/[SEP],
    padding, memory tokens or tile rows): float32 ``[sum(T_i), n_labels]`` (token head) or
    ``[B, n_labels]`` (sequence head)."""
    import torch

    parts = network.split(out, lengths)
    return (torch.cat(parts) if spec.head == "token" else torch.stack(parts)).float()


def _bce_loss(out: torch.Tensor, target: torch.Tensor, *, pos_weight: float) -> torch.Tensor:
    """Binary cross-entropy per channel at content tokens; out/target float32 [sum(T_i), C]
    (:func:`content_logits`). Positives of channels 1.. are weighted ``pos_weight`` (channel
    0, ``none``, is mostly positive)."""
    import torch
    import torch.nn.functional as F

    if not target.is_floating_point() or target.shape != out.shape:
        raise TrainError("the bce loss needs a token head (one label row per content token)")
    pw = torch.full((out.shape[-1],), float(pos_weight), device=out.device)
    pw[0] = 1.0
    return F.binary_cross_entropy_with_logits(out, target, pos_weight=pw)


def _cross_entropy_loss(out: torch.Tensor, target: torch.Tensor, *, pos_weight: float) -> torch.Tensor:
    """Cross-entropy over the classes of a window; out float32 [B, C], target int64 [B] (``pos_weight`` unused)."""
    import torch.nn.functional as F

    return F.cross_entropy(out, target)


#: ``Training.loss`` name -> loss of the network's float32 outputs (keys: :data:`genaannot.tasks.LOSSES`)
LOSS_FUNCTIONS: dict[str, Callable[..., Any]] = {"bce": _bce_loss, "cross_entropy": _cross_entropy_loss}


def batch_loss(
    network: Any, inputs: dict, target: torch.Tensor, lengths: list[int], *, spec: TaskSpec, pos_weight: float
) -> torch.Tensor:
    """The task's loss (``spec.loss``, :data:`LOSS_FUNCTIONS`) of ``network`` on one collated
    batch, over the content rows the network's own ``split`` returns."""
    out = content_logits(network, network(**inputs), lengths, spec=spec)
    return LOSS_FUNCTIONS[spec.loss](out, target, pos_weight=pos_weight)


# --------------------------------------------------------------------------- model set-up


#: what :func:`train_model` trains (made by :func:`build_fresh`, :func:`build_from_base` or
#: :func:`build_resumed`): the family's :class:`~genaannot.models.families.Trainable`
TrainSetup = Trainable


def head_spec(spec: TaskSpec) -> HeadSpec:
    """The task head a task's training spec asks for."""
    return HeadSpec(spec.head, tuple(spec.labels), spec.problem_type)


def _fits(setup: Trainable, window_tokens: int, what: str) -> Trainable:
    cap = int(setup.network.max_content_tokens)
    if window_tokens > cap:
        raise TrainError(f"--window-tokens {window_tokens} does not fit {what} ({setup.family}: at most {cap} "
                         "content tokens per input)")
    return setup


def build_fresh(
    *,
    tokenizer: DNATokenizer | None,
    tokenizer_kind: str,
    spec: TaskSpec,
    arch: ArchConfig,
    window_tokens: int,
    family: str = "gena_bert",
    options: dict[str, Any] | None = None,
) -> Trainable:
    """A freshly initialised network of ``family`` (default a pre-LN GENA BERT) sized for
    ``window_tokens`` content tokens, with the task's head.

    Raises
    ------
    TrainError
        Unknown family or options, or a family that is not trained from scratch.
    """
    from .models.families import family_module

    if family not in FAMILIES:
        raise TrainError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    setup = family_module(family).fresh(head=head_spec(spec), tokenizer=tokenizer, window_tokens=window_tokens,
                                        arch=arch, options=dict(options or {}))
    if setup.tokenizer_kind == "checkpoint":
        setup.tokenizer_kind = tokenizer_kind
    return _fits(setup, window_tokens, f"a fresh {family}")


def build_from_base(
    base: str,
    *,
    spec: TaskSpec,
    tokenizer: DNATokenizer | None,
    window_tokens: int,
    family: str | None = None,
    options: dict[str, Any] | None = None,
) -> Trainable:
    """Fine-tune a checkpoint (path, catalogue name or cached hub id) of any family.

    ``family`` defaults to the checkpoint's own; another one must list the checkpoint's
    family among its ``bases`` (RMT over a GENA BERT). The family keeps the checkpoint's body
    weights, and its head when the head kind and label count fit the task (``base_head``
    ``kept``), else starts a new head (``new``: a pretrained LM gets its task head here).
    ``tokenizer`` replaces the checkpoint's own (``None``: keep it).
    """
    from .models import detect_family, read_config, resolve_checkpoint
    from .models.families import family_module

    path = resolve_checkpoint(base)
    raw = read_config(path)
    base_family = detect_family(path, raw)
    family = family or base_family
    if family not in FAMILIES:
        raise TrainError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    if not FAMILIES[family].accepts(family, base_family):
        bases = ", ".join(FAMILIES[family].bases or (family,))
        raise TrainError(f"--base-model {base} is a {base_family} checkpoint; {family} trains from {bases} checkpoints")
    setup = family_module(family).from_checkpoint(path, config=raw, head=head_spec(spec), tokenizer=tokenizer,
                                                  window_tokens=window_tokens, options=dict(options or {}))
    setup.base_model = str(base)
    setup.tokenizer_kind = "checkpoint" if tokenizer is None else "file"
    return _fits(setup, window_tokens, str(base))


def build_resumed(model_dir: str | Path, *, spec: TaskSpec) -> Trainable:
    """The network, tokenizer and config of an interrupted run in ``MODEL_DIR/checkpoints/last``.

    The weights are loaded again, with the trainer state, by :func:`train_model` with
    ``resume=True``; family, base model and tokenizer kind are those the checkpoint recorded.

    Raises
    ------
    TrainError
        When ``MODEL_DIR/checkpoints`` holds no complete checkpoint.
    """
    from .io.checkpoint import last_checkpoint, read_metadata

    ckpt_root = Path(model_dir) / "checkpoints"
    ck = last_checkpoint(ckpt_root)
    if ck is None:
        raise TrainError(f"--resume: no checkpoint under {ckpt_root}")
    meta = read_metadata(ck)
    # everything the family needs is in the step's own files (RMT: rmt.json), so no options
    setup = build_from_base(str(ck), spec=spec, tokenizer=None, window_tokens=int(meta.get("window_tokens") or 1))
    if setup.base_head != "kept":
        raise TrainError(f"--resume: {ck} has no {spec.head} head with the labels {', '.join(spec.labels)}")
    setup.base_model = meta.get("base_model")
    setup.tokenizer_kind = meta.get("tokenizer_kind", "checkpoint")
    return setup


# --------------------------------------------------------------------------- checkpoints


def save_model(setup: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path:
    """Write ``setup``'s network into ``directory`` in its family's own format."""
    from .models.families import family_module

    return family_module(setup.family).save_trainable(setup, Path(directory), metadata=metadata)


def save_checkpoint(setup: Trainable, *, ckpt_root: Path, step: int, state: dict[str, Any], metadata: dict, keep: int) -> Path:
    """Write ``ckpt_root/step-NNNNNNN`` (model + trainer state) and point ``last`` at it.

    The files are written by :func:`genaannot.io.checkpoint.save_step`; this only says
    how the model is saved (:func:`save_model`).
    """
    from .io.checkpoint import save_step

    def write_model(directory: Path) -> None:
        save_model(setup, directory, metadata=metadata)

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
    from .predict import autocast_context, resolve_device

    try:
        spec = TASK_SPECS[config.task]
    except KeyError:
        raise TrainError(f"task must be one of {', '.join(TASK_SPECS)}, not {config.task!r}") from None
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
        "family": setup.family,
        "family_details": setup.details,
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
        from .models.weights import load_strict

        if spec.head == "token":
            from .conventions import checkpoint_convention
            from .io.checkpoint import read_metadata

            was, _ = checkpoint_convention(read_metadata(ck))
            if was != conv.name:
                raise TrainError(f"--resume: {ck} was labelled in site convention {was!r}, this run asks for "
                                 f"{conv.name!r}; pass --site-convention {was}")
        # the step's model, read back by its family: a ModelError naming the keys, not a RuntimeError
        load_strict(net, build_resumed(model_dir, spec=spec).network.state_dict(), source=str(ck))
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
                inputs, target, lengths = collate_batch(net, part, spec=spec)
                out = net(**{k: v.to(device) for k, v in inputs.items()})
                out = content_logits(net, out, lengths, spec=spec).cpu()
                if spec.head == "token":
                    scores.append(out.numpy())
                    labels.append(target.numpy())
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
        inputs, target, lengths = collate_batch(net, batch, spec=spec)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        target = target.to(device)
        with autocast_context(device, config.precision):
            loss = batch_loss(net, inputs, target, lengths, spec=spec, pos_weight=config.pos_weight)
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
                save_model(setup, model_dir, metadata={**meta_base, "best_step": step, "valid_score": v})
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
