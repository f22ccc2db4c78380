"""Task registry: what a task predicts, how its outputs become base-pair tracks, how it is trained.

A task is picked by name (``--task splice``) and is one entry of :data:`TASKS`; scan,
score, train, evaluate, interpret and the command line's ``--task`` choices all read the
entry and nothing else decides per task name. Each entry states its labels, activation,
readout (``token``: one value per token, painted onto the token's base pairs;
``sequence``: one value per window, assigned to the window's central bin), whether it is
strand-specific, its default window in tokens, its default call threshold and published
checkpoint and, for the tasks ``genaannot train`` can train, a :class:`Training`: label
channels, annotation site kinds, window sampling, loss and evaluation. ``docs/extending.md``
shows how to add one.

Strategies are named by plain strings that key small registries beside the code that runs
them: :data:`SAMPLINGS` (``genaannot.labels``), :data:`LOSSES` (``genaannot.train``),
:data:`EVALUATIONS` (``genaannot.evaluate``), so that this module stays cheap to import
(numpy only: the command line reads it for its choices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = [
    "Task",
    "Training",
    "TASKS",
    "SAMPLINGS",
    "LOSSES",
    "EVALUATIONS",
    "CONVENTION_KINDS",
    "get_task",
    "trainable_tasks",
    "activate",
    "chromatin_labels",
]

#: how training windows are placed around a site (:class:`genaannot.labels.WindowSampler`):
#: ``spread``: the site anywhere in the central 80 % of the window, every token labelled;
#: ``centred``: the site at the centre ± ``promoter_jitter`` bp, one label per window
SAMPLINGS = ("spread", "centred")
#: training losses (:data:`genaannot.train.LOSS_FUNCTIONS`): ``bce``: binary cross-entropy per
#: channel at content tokens, positives of channels 1.. weighted ``pos_weight``;
#: ``cross_entropy``: over the window's classes
LOSSES = ("bce", "cross_entropy")
#: held-out evaluations (:data:`genaannot.evaluate.EVALUATIONS`): ``sites``: every base of the
#: regions, both strands, as scan writes them (AP, AUROC, top-k, max-F1 call thresholds);
#: ``windows``: site-centred and background windows (AUROC, AP, F1)
EVALUATIONS = ("sites", "windows")
#: annotation site kinds whose base depends on the site convention (:mod:`genaannot.conventions`)
CONVENTION_KINDS = frozenset({"donor", "acceptor"})


@dataclass(frozen=True)
class Training:
    """How ``genaannot train`` labels a task and shapes the model it trains.

    Attributes
    ----------
    labels : tuple of str
        The head's outputs in channel order (the task's ``channels`` index into them).
    site_kinds : tuple of str
        Annotation site kinds that are labelled (``acceptor``, ``donor``, ``tss``).
    problem_type : str
        Written to the checkpoint's config.json (``multi_label_classification``: sigmoid per
        channel; ``single_label_classification``: softmax over the classes).
    sampling : str
        How site windows are placed (:data:`SAMPLINGS`): ``spread`` for a token head (every
        token labelled: 1 in channel ``labels.index(kind)`` where its span holds a ``kind``
        site, channel 0 where none), ``centred`` for a sequence head (class 1 when a site of
        the window's strand lies within ``promoter_jitter`` bp of its centre; background
        windows hold no site of their strand).
    loss : str
        :data:`LOSSES`; ``bce`` weights positives by ``TrainConfig.pos_weight``.
    evaluation : str
        :data:`EVALUATIONS`: what ``genaannot evaluate`` (and ``train`` on its test regions)
        computes. ``sites`` also chooses per-label call thresholds on validation regions.
    """

    labels: tuple[str, ...]
    site_kinds: tuple[str, ...]
    problem_type: str
    sampling: str = "spread"
    loss: str = "bce"
    evaluation: str = "sites"

    def __post_init__(self) -> None:
        for what, value, allowed in (("sampling", self.sampling, SAMPLINGS), ("loss", self.loss, LOSSES),
                                     ("evaluation", self.evaluation, EVALUATIONS)):
            if value not in allowed:
                raise ValueError(f"Training {what} {value!r}: choose one of {', '.join(allowed)}")


@dataclass(frozen=True)
class Task:
    """One task (see the module docstring); its registry key is ``name``."""

    name: str
    description: str
    readout: str  # "token" | "sequence"
    activation: str  # "sigmoid" | "softmax" | "identity"
    strand_specific: bool
    window_tokens: int
    #: logit channels written as tracks, by label name -> channel index; empty = from checkpoint
    channels: dict[str, int] = field(default_factory=dict)
    #: default published checkpoint: (hub id, revision/branch)
    default_model: tuple[str, str] | None = None
    #: default ``--threshold`` for BED calls, in the activation's range
    call_threshold: float = 0.5
    #: set for the tasks ``genaannot train`` can train (and ``genaannot evaluate`` evaluate)
    training: Training | None = None
    #: short names of the labels in outputs (score's INFO, ``--spliceai-info``); default: the labels
    codes: dict[str, str] = field(default_factory=dict)
    #: a fixed table of output names the checkpoint must have (and whose names are used when
    #: its own are ``LABEL_i``), e.g. DeepSEA's 919 for ``chromatin``; None: channels or checkpoint
    label_table: Callable[[], list[str]] | None = None
    #: read checkpoints trained for any task (``generic``); otherwise a checkpoint that records
    #: another task in its ``genaannot.json`` is refused
    any_checkpoint: bool = False

    @property
    def site_convention(self) -> bool:
        """Whether the task's outputs are splice-junction bases placed by a site convention
        (scan manifests, score headers and ``models inspect`` name the checkpoint's)."""
        kinds = set(self.channels) | set(self.training.site_kinds if self.training else ())
        return bool(kinds & CONVENTION_KINDS)

    @property
    def default_model_id(self) -> str | None:
        """The default published checkpoint as ``owner/name@branch`` (``None`` for ``generic``)."""
        if self.default_model is None:
            return None
        hub, rev = self.default_model
        return f"{hub}@{rev}" if rev else hub

    def labels(self, checkpoint_labels: list[str] | None = None) -> list[str]:
        if self.channels:
            return list(self.channels)
        return list(checkpoint_labels or [])


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """Apply a task activation along the last axis; float32 in, float32 out."""
    x = np.asarray(logits, dtype=np.float32)
    if activation == "sigmoid":  # 1 / (1 + exp(-x)) in one float32 array: no temporary per step
        y = np.clip(x, -80, 80, out=np.empty_like(x))  # an array even for a 0-d input
        np.negative(y, out=y)
        np.exp(y, out=y)
        y += np.float32(1.0)
        return np.reciprocal(y, out=y)
    if activation == "softmax":
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    if activation == "identity":
        return x
    raise ValueError(f"unknown activation {activation!r}")


@lru_cache(maxsize=1)
def chromatin_labels() -> tuple[list[str], list[str]]:
    """DeepSEA's 919 label names and their groups (DHS, TF, HM), shipped with the package.

    Returns
    -------
    names, groups : list of str (919 each)
    """
    from .io.text import package_text

    text = package_text("data/deepsea_predictor_names.txt")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    groups = []
    for i, _ in enumerate(names):
        # DeepSEA order: 125 DNase (DHS), 690 TF binding, 104 histone marks.
        groups.append("DHS" if i < 125 else "TF" if i < 815 else "HM")
    return names, groups


TASKS: dict[str, Task] = {
    "promoter": Task(
        name="promoter",
        description="promoter vs background, 2-class sequence classifier (EPDnew)",
        readout="sequence",
        activation="softmax",
        strand_specific=True,
        window_tokens=510,
        channels={"promoter": 1},
        default_model=("AIRI-Institute/gena-lm-bert-base-t2t", "promoters_300_run_1"),
        training=Training(("background", "promoter"), ("tss",), "single_label_classification",
                          sampling="centred", loss="cross_entropy", evaluation="windows"),
    ),
    "splice": Task(
        name="splice",
        description="splice acceptor/donor per token (SpliceAI-style); channel 1 acceptor, 2 donor",
        readout="token",
        activation="sigmoid",
        strand_specific=True,
        window_tokens=510,
        channels={"acceptor": 1, "donor": 2},
        default_model=("AIRI-Institute/gena-lm-bert-base-t2t", "spliceai_run_1"),
        training=Training(("none", "acceptor", "donor"), ("acceptor", "donor"), "multi_label_classification",
                          sampling="spread", loss="bce", evaluation="sites"),
        codes={"acceptor": "A", "donor": "D"},
    ),
    "chromatin": Task(
        name="chromatin",
        description="919 DeepSEA chromatin profiles (DHS, TF binding, histone marks), multi-label",
        readout="sequence",
        activation="sigmoid",
        strand_specific=False,
        window_tokens=510,
        default_model=("AIRI-Institute/gena-lm-bert-base-t2t", "gena_web_deepsea"),
        label_table=lambda: chromatin_labels()[0],
    ),
    "generic": Task(
        name="generic",
        description="any classifier; labels from the checkpoint's id2label",
        readout="auto",
        activation="auto",
        strand_specific=False,
        window_tokens=510,
        any_checkpoint=True,
    ),
}


def get_task(name: str | Task) -> Task:
    """The registry entry ``name`` (a :class:`Task` is returned as is).

    Raises
    ------
    ValueError
        An unknown name, with the choices.
    """
    if isinstance(name, Task):
        return name
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}") from None


def trainable_tasks() -> list[str]:
    """Names of the registered tasks with a :class:`Training` (``train``/``evaluate --task`` choices)."""
    return [name for name, t in TASKS.items() if t.training is not None]
