"""Task registry: what a task predicts and how its outputs become base-pair tracks.

A task is picked by name (``--task splice``). Each entry states its labels, activation,
readout (``token``: one value per token, painted onto the token's base pairs;
``sequence``: one value per window, assigned to the window's central bin), whether it is
strand-specific, its default window in tokens, and its default published checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = ["Task", "Training", "TASKS", "get_task", "activate", "chromatin_labels"]


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
        Written to the checkpoint's config.json.
    """

    labels: tuple[str, ...]
    site_kinds: tuple[str, ...]
    problem_type: str


@dataclass(frozen=True)
class Task:
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
    #: set for the tasks ``genaannot train`` can train
    training: Training | None = None

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
    if activation == "sigmoid":
        return (1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))).astype(np.float32)
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
        training=Training(("background", "promoter"), ("tss",), "single_label_classification"),
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
        training=Training(("none", "acceptor", "donor"), ("acceptor", "donor"), "multi_label_classification"),
    ),
    "chromatin": Task(
        name="chromatin",
        description="919 DeepSEA chromatin profiles (DHS, TF binding, histone marks), multi-label",
        readout="sequence",
        activation="sigmoid",
        strand_specific=False,
        window_tokens=510,
        default_model=("AIRI-Institute/gena-lm-bert-base-t2t", "gena_web_deepsea"),
    ),
    "generic": Task(
        name="generic",
        description="any classifier; labels from the checkpoint's id2label",
        readout="auto",
        activation="auto",
        strand_specific=False,
        window_tokens=510,
    ),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}") from None
