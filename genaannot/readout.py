"""Task × model, resolved once: which outputs are read, how, on which strands, in what window.

Every command that turns model outputs into numbers (``scan``, ``score``, ``ism`` /
``attribute``, ``evaluate``) resolves one :class:`Readout` with :func:`resolve_readout`
and reads everything from it, so they cannot disagree on labels, channels, activation or
strands. The rules:

* the model must have a token or a sequence classification head; a task's readout
  (``token``: one value per token, ``sequence``: one per window) must be the head's
  (``generic`` takes the head's);
* a checkpoint trained by genaannot for one task (``genaannot.json`` ``task``) serves that
  task or a task that reads any checkpoint (``generic``: ``Task.any_checkpoint``) only;
* outputs: the task's named channels (splice: acceptor = 1, donor = 2; promoter:
  promoter = 1), a task's fixed label table (``Task.label_table``: the 919 DeepSEA names
  for ``chromatin``; the model must have that many outputs; its own names are kept unless
  they are ``LABEL_n``), else the checkpoint's labels. ``labels`` picks a subset, by name or by 0-based index; a label read that holds
  a tab, newline or other control character is refused (labels become BED names, file
  names and hub lines);
* activation: the task's; ``generic`` (``auto``) follows the checkpoint's ``problem_type``
  as :func:`genaannot.models.base.normalize_problem_type` fixed it at load:
  multi-label → sigmoid, single-label → softmax, regression → identity;
* strands: ``both`` for strand-specific tasks, else ``+``, unless given;
* codes (short names in score's INFO): the task's ``codes`` (splice: ``A``, ``D``) unless
  ``labels`` picks a subset, else the sanitised labels;
* window: the model's own scan window (``ModelInfo.window_tokens``, when its family sets one)
  else the task's ``window_tokens``, at most the model's capacity, unless given.

Nothing here opens a file or imports torch.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .tasks import Task, activate, get_task

if TYPE_CHECKING:
    from .models.base import ModelInfo

__all__ = ["Readout", "ReadoutError", "resolve_readout", "ACTIVATION_OF_PROBLEM", "sanitize_label", "STRANDS"]

#: normalised ``problem_type`` -> activation of ``auto`` tasks
ACTIVATION_OF_PROBLEM: dict[str, str] = {
    "multi_label_classification": "sigmoid",
    "single_label_classification": "softmax",
    "regression": "identity",
}

#: ``--strand`` value -> strands read
STRANDS: dict[str, tuple[str, ...]] = {"both": ("+", "-"), "+": ("+",), "-": ("-",)}


class ReadoutError(ValueError):
    """A model that cannot serve a task, or options that do not fit it (labels, strand, window)."""


def sanitize_label(name: str) -> str:
    """A label name usable inside a VCF INFO value and a TSV column name."""
    return re.sub(r"[^0-9A-Za-z_.:+-]", "_", name.replace("|", ":"))


@dataclass(frozen=True)
class Readout:
    """What is read from a model for a task.

    Attributes
    ----------
    task : str
    head : "token" | "sequence"
        Token heads give one row per token (painted on its bases), sequence heads one
        vector per window.
    activation : "sigmoid" | "softmax" | "identity"
        Applied over all logit channels, before the channels are picked.
    labels : tuple of str
        Names of the outputs read, in output order.
    channels : tuple of int
        Logit channel of each label.
    codes : tuple of str
        Label names as written in VCF INFO subfields (``A``/``D`` for splice).
    strands : tuple of str
        ``("+",)``, ``("-",)`` or ``("+", "-")``.
    window_tokens : int
        Content tokens per model window.
    strand_specific : bool
        The task's: whether calls and tracks carry a strand.
    resolution : "token" | "base"
        The model's tokens: BPE spans or single nucleotides.
    """

    task: str
    head: str
    activation: str
    labels: tuple[str, ...]
    channels: tuple[int, ...]
    codes: tuple[str, ...]
    strands: tuple[str, ...]
    window_tokens: int
    strand_specific: bool
    resolution: str = "token"

    @property
    def keep_channels(self) -> list[int] | None:
        """Channels the model needs to return: only the read ones when the activation is
        elementwise (it commutes with picking channels), all for softmax (``None``)."""
        return list(self.channels) if self.activation in ("sigmoid", "identity") else None

    def values(self, logits: np.ndarray, *, selected: bool = False) -> np.ndarray:
        """Activated values of the read channels.

        Parameters
        ----------
        logits : float32 ``[..., n_channels]``
            All channels, or with ``selected`` only those of :attr:`keep_channels`.

        Returns
        -------
        float32 ``[..., len(labels)]``
        """
        act = activate(logits, self.activation)
        if selected and self.keep_channels is not None:
            return act
        return act[..., list(self.channels)]

    @property
    def n_tracks(self) -> int:
        return len(self.labels) * len(self.strands)


def _pick(names: list[str], chans: list[int], labels: Sequence[str], task: str) -> tuple[list[str], list[int]]:
    pick: list[int] = []
    for want in labels:
        if want in names:
            pick.append(names.index(want))
        elif str(want).isdigit() and int(want) < len(names):
            pick.append(int(want))
        else:
            shown = ", ".join(names[:20]) + (f", … ({len(names)} in all)" if len(names) > 20 else "")
            raise ReadoutError(f"--labels {want!r} is not an output of task {task} (outputs: {shown}; "
                               "give names or 0-based indices)")
    pick = list(dict.fromkeys(pick))
    return [names[i] for i in pick], [chans[i] for i in pick]


def resolve_readout(
    task: str | Task,
    info: ModelInfo,
    *,
    labels: Sequence[str] | None = None,
    strand: str | None = None,
    window_tokens: int | None = None,
) -> Readout:
    """Check that a model (its :class:`~genaannot.models.base.ModelInfo`) can serve ``task``
    and resolve what is read (see the module docstring for the rules).

    Raises
    ------
    ReadoutError
        Naming the mismatch and what to do.
    """
    task = get_task(task)
    head = info.head
    if head not in ("token", "sequence"):
        raise ReadoutError(
            f"model {info.source} has a {head!r} head; {task.name} needs a token or sequence "
            "classifier (fine-tune one with `genaannot train`)"
        )
    readout = head if task.readout == "auto" else task.readout
    if readout != head:
        what = {"token": "one value per token", "sequence": "one value per window"}
        raise ReadoutError(
            f"task {task.name!r} reads {what[readout]} ({readout} head) but model {info.source} "
            f"has a {head} head; use a {readout}-classification checkpoint for --task {task.name}, "
            "or --task generic"
        )
    if info.task and not task.any_checkpoint and info.task != task.name:
        raise ReadoutError(f"model {info.source} was trained for task {info.task!r}, not {task.name!r} "
                           "(or use --task generic)")
    n_out = len(info.labels)
    if task.channels:
        names, chans = list(task.channels), [task.channels[k] for k in task.channels]
        need = max(chans) + 1
        if n_out < need:
            raise ReadoutError(
                f"task {task.name!r} reads output channel {need - 1} ({', '.join(f'{k} = {v}' for k, v in task.channels.items())}) "
                f"but model {info.source} has {n_out} outputs ({', '.join(info.labels)}); is it a {task.name} model?"
            )
    elif task.label_table is not None:
        table = list(task.label_table())
        if n_out != len(table):
            raise ReadoutError(
                f"task {task.name} needs the {len(table)} outputs of its label table ({task.description}) "
                f"but model {info.source} has {n_out}; "
                "use --task generic for other multi-label models"
            )
        own = list(info.labels)
        names, chans = (table if all(lab.startswith("LABEL_") for lab in own) else own), list(range(n_out))
    else:
        names, chans = list(info.labels), list(range(n_out))
        if not names:
            raise ReadoutError(f"model {info.source} declares no output labels")
    if labels:
        names, chans = _pick(names, chans, labels, task.name)
    for i, name in enumerate(names):
        # labels become BED name fields, file names and lines of hub text: a tab or newline in
        # one would write fields or lines of the checkpoint's choosing, so refuse it here
        if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
            raise ReadoutError(f"model {info.source}: output label {chans[i]} {name!r} contains a tab, newline or "
                               "other control character; rename it in the checkpoint's config.json (id2label)")
    activation = task.activation
    if activation == "auto":
        pt = info.problem_type
        if pt not in ACTIVATION_OF_PROBLEM:
            raise ReadoutError(f"model {info.source}: problem_type {pt!r} is not one of {', '.join(ACTIVATION_OF_PROBLEM)}")
        activation = ACTIVATION_OF_PROBLEM[pt]
    if strand in (None, ""):
        strand = "both" if task.strand_specific else "+"
    if strand not in STRANDS:
        raise ReadoutError(f"--strand must be both, + or -, not {strand!r}")
    max_tokens = int(info.max_tokens)
    wt = int(window_tokens) if window_tokens else min(info.window_tokens or task.window_tokens, max_tokens)
    if not 1 <= wt <= max_tokens:
        raise ReadoutError(f"--window-tokens {wt} outside 1..{max_tokens} (the model's content tokens per input)")
    codes = [task.codes.get(x) or sanitize_label(x) for x in names] if not labels else [sanitize_label(x) for x in names]
    return Readout(
        task=task.name,
        head=head,
        activation=activation,
        labels=tuple(names),
        channels=tuple(chans),
        codes=tuple(codes),
        strands=STRANDS[strand],
        window_tokens=wt,
        strand_specific=bool(task.strand_specific),
        resolution=info.resolution,
    )
