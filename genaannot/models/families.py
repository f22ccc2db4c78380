"""The model-family contract and the registry of families.

A family is one module (``genaannot/models/<family>.py``) and one entry in
:data:`FAMILIES`. The entry is data (no import): which ``config.json`` ``model_type``
values the family claims, which checkpoint layouts it recognises by their files, and which
families' checkpoints it can start training from. The module provides the four functions of
:class:`FamilyModule`:

``load(path, *, config, **options) -> Loaded``
    Read a checkpoint strictly (a missing, unexpected or mis-shaped tensor is a
    :class:`~genaannot.models.base.ModelError` naming it) into a network that follows
    :class:`~genaannot.models.base.Network`: ``collate`` content-token arrays into a batch,
    ``forward`` it, ``split`` the output back into per-input rows, so that one input's rows
    never depend on its batch mates.
``from_checkpoint(path, *, config, head, tokenizer, window_tokens, options) -> Trainable``
    A trainable network started from a checkpoint of a family in :attr:`Family.bases`
    (fine-tuning): the checkpoint's body weights, its task head when it has one of the kind
    and size asked for (``base_head="kept"``), else a new, randomly initialised head
    (``"new"``; a pretrained LM gets its task head here).
``fresh(*, head, tokenizer, window_tokens, arch, options) -> Trainable``
    A randomly initialised network of the family (raise :class:`TrainError` when the family
    cannot be trained from scratch).
``save_trainable(trainable, directory, *, metadata) -> Path``
    Write the network in the family's own checkpoint format (through :mod:`genaannot.io`),
    so that :func:`genaannot.load_model` loads it back with the same outputs.

``tests/test_families.py`` runs the same conformance checks on every registered family (tiny
checkpoints built at test time): load, prediction spans, batch independence, strict
loading, and training a token and a sequence head that ``load_model`` reads back. A family
added here without passing them fails the test suite.

This module imports neither torch nor the family modules: :func:`family_module` imports one
when it is needed (``genaannot --help`` stays torch-free).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .base import ModelError

if TYPE_CHECKING:
    import torch

    from ..tokenize import DNATokenizer
    from .base import Loaded

__all__ = [
    "FAMILIES",
    "Family",
    "FamilyModule",
    "HeadSpec",
    "Trainable",
    "ArchConfig",
    "TrainError",
    "CONTRACT",
    "HEADS",
    "family_module",
    "check_module",
    "transfer_weights",
    "unique_tensors",
]

#: the task heads a family trains
HEADS = ("token", "sequence")


class TrainError(RuntimeError):
    """Training cannot start or continue (bad inputs, missing checkpoint, a base model that
    does not fit, a family that cannot do what was asked, ...)."""


@dataclass(frozen=True)
class HeadSpec:
    """The task head training asks a family for.

    Attributes
    ----------
    head : {"token", "sequence"}
        One row of logits per content token, or one per input.
    labels : tuple of str
        Output channels, in order (``id2label``).
    problem_type : str
        Written to the checkpoint's ``config.json`` (see :data:`~genaannot.models.base.PROBLEM_TYPES`).
    """

    head: str
    labels: tuple[str, ...]
    problem_type: str

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise TrainError(f"head {self.head!r}: a family trains one of {', '.join(HEADS)}")
        if not self.labels:
            raise TrainError("a task head needs at least one label")


@dataclass
class ArchConfig:
    """Shape of a freshly initialised network (``genaannot train`` without ``--base-model``).

    GENA BERT (and RMT, whose segments it runs) uses every field; HyenaDNA reads
    ``hidden_size`` (``d_model``), ``layers`` (``n_layer``) and ``intermediate_size``
    (``d_inner``); BigBird and modernGENA read ``hidden_size``, ``layers``, ``heads``,
    ``intermediate_size`` and ``dropout``; the dilated CNN none (its shape is family options).
    """

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int | None = None  # default 4 * hidden_size
    dropout: float = 0.1
    #: GENA BERT: start the learned position embeddings from a sin/cos table
    sinusoidal_init: bool = True
    #: GENA BERT: weight init std; default hidden_size**-0.5 (BERT's 0.02 is tuned for hidden 768: at
    #: small widths it leaves attention nearly uniform and base-to-base mixing takes
    #: thousands of steps to appear)
    init_std: float | None = None


@dataclass(kw_only=True)
class Trainable:
    """A network ready to train, its tokenizer, and what saving it needs.

    Made by a family's ``from_checkpoint`` or ``fresh``; trained by
    :func:`genaannot.train.train_model`; written by the family's ``save_trainable``.

    Attributes
    ----------
    family : str
        Key of :data:`FAMILIES`.
    network : torch.nn.Module
        Follows :class:`~genaannot.models.base.Network` (``collate``, ``forward``, ``split``,
        ``head``, ``max_content_tokens``).
    tokenizer : DNATokenizer
    config : object
        The family's own configuration object (whatever its ``save_trainable`` reads).
    base_model : str or None
        The checkpoint it was started from (``None``: fresh).
    tokenizer_kind : str
        ``checkpoint`` (the base model's), ``char``, ``bpe``, ``file`` or the family's ``own``.
    base_head : {"kept", "new"} or None
        With a base model: whether its task head was kept or a new one started.
    details : dict
        Family-specific facts recorded in ``genaannot.json`` (``family_details``), e.g. the
        RMT segment parameters.
    """

    family: str
    network: Any
    tokenizer: DNATokenizer
    config: Any
    base_model: str | None = None
    tokenizer_kind: str = "checkpoint"
    base_head: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class FamilyModule(Protocol):
    """What a family module provides (see the module docstring). A module satisfies it with
    module-level functions of these names and signatures."""

    def load(self, path: Path, *, config: dict[str, Any], **options: Any) -> Loaded: ...

    def from_checkpoint(
        self,
        path: Path,
        *,
        config: dict[str, Any],
        head: HeadSpec,
        tokenizer: DNATokenizer | None,
        window_tokens: int,
        options: Mapping[str, Any],
    ) -> Trainable: ...

    def fresh(
        self,
        *,
        head: HeadSpec,
        tokenizer: DNATokenizer | None,
        window_tokens: int,
        arch: ArchConfig,
        options: Mapping[str, Any],
    ) -> Trainable: ...

    def save_trainable(self, trainable: Trainable, directory: Path, *, metadata: dict[str, Any] | None) -> Path: ...


#: the functions of :class:`FamilyModule`
CONTRACT: tuple[str, ...] = ("load", "from_checkpoint", "fresh", "save_trainable")


@dataclass(frozen=True)
class Family:
    """One registry entry: everything about a family that is known without importing it.

    Attributes
    ----------
    module : str
        Import path of the module implementing :class:`FamilyModule`.
    model_types : tuple of str
        ``config.json`` ``model_type`` values that select this family.
    claims : str or None
        ``"module:function"`` of a predicate ``(path, config) -> bool`` that recognises the
        family's checkpoints by their files; tried before ``model_type`` (RMT trainer
        checkpoints carry the backbone's ``model_type: bert``).
    bases : tuple of str
        Families whose checkpoints ``from_checkpoint`` accepts (default: the family itself).
    fixed_vocabulary : bool
        The family's token ids are fixed (HyenaDNA): ``fresh`` brings its own tokenizer and
        ``genaannot train`` makes none for it.
    arch_fields : tuple of str or None
        The :class:`ArchConfig` fields ``fresh`` reads (None: all of them).
    description : str
        One line for documentation and ``--family`` help.
    """

    module: str
    model_types: tuple[str, ...] = ()
    claims: str | None = None
    bases: tuple[str, ...] = ()
    fixed_vocabulary: bool = False
    description: str = ""
    #: the :class:`ArchConfig` fields ``fresh`` reads (None: all); ``genaannot train`` refuses
    #: the size options of the others instead of ignoring them
    arch_fields: tuple[str, ...] | None = None

    def accepts(self, name: str, base_family: str) -> bool:
        """Whether family ``name`` (this entry's key) trains from a ``base_family`` checkpoint."""
        return base_family in (self.bases or (name,))


#: family name -> entry (the whole plug-in, with the module it names)
FAMILIES: dict[str, Family] = {
    "gena_bert": Family("genaannot.models.gena_bert", model_types=("bert",),
                        description="GENA-LM BERT (pre- or post-LayerNorm), BPE or character tokens"),
    "bigbird": Family("genaannot.models.bigbird", model_types=("big_bird",),
                      description="GENA-LM BigBird (transformers), fixed-length block-sparse tiles"),
    "rmt": Family("genaannot.models.rmt", claims="genaannot.models.rmt:claims", bases=("rmt", "gena_bert"),
                  description="Recurrent Memory Transformer around a GENA BERT (trainer .pth checkpoints)"),
    "hyena": Family("genaannot.models.hyena", model_types=("hyenadna",), fixed_vocabulary=True,
                    arch_fields=("hidden_size", "layers", "intermediate_size"),
                    description="HyenaDNA (LongSafari -hf checkpoints), one token per base"),
    "modernbert": Family("genaannot.models.modernbert", model_types=("modernbert",),
                         description="modernGENA (transformers ModernBERT), GENA t2t BPE"),
    "dilated_cnn": Family("genaannot.models.dilated_cnn", model_types=("dilated_cnn",), fixed_vocabulary=True,
                          arch_fields=(),
                          description="dilated residual CNN (SpliceAI layout), one token per base; genaannot's own, "
                                      "trained from scratch"),
}


def _signature_breaches(fn: Any, proto: Any) -> list[str]:
    """How ``fn``'s parameters differ from the Protocol method ``proto``'s (``self`` aside):
    a parameter missing or of another kind (positional / keyword-only / ``**``), or an extra
    parameter without a default."""
    import inspect

    try:
        have = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ["no inspectable signature"]
    want = [p for p in inspect.signature(proto).parameters.values() if p.name != "self"]
    out = []
    for p in want:
        if p.kind is p.VAR_KEYWORD:
            if not any(q.kind is q.VAR_KEYWORD for q in have.values()):
                out.append(f"**{p.name}")
        elif p.name not in have or have[p.name].kind is not p.kind:
            out.append(f"{p.name} ({'keyword-only' if p.kind is p.KEYWORD_ONLY else 'positional'})")
    names = {p.name for p in want}
    out += [f"unexpected required {q.name}" for q in have.values()
            if q.name not in names and q.default is q.empty and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)]
    return out


def check_module(name: str, module: Any) -> FamilyModule:
    """``module`` when it provides every function of :data:`CONTRACT` with the parameters of
    :class:`FamilyModule` (names and kinds; extra parameters need defaults).

    Raises
    ------
    ModelError
        Naming the family and the functions it lacks or whose parameters differ.
    """
    where = f"model family {name!r} ({getattr(module, '__name__', module)})"
    missing = [f for f in CONTRACT if not callable(getattr(module, f, None))]
    if missing:
        raise ModelError(f"{where} lacks {', '.join(missing)} (the family contract: "
                         "genaannot.models.families.FamilyModule)")
    for f in CONTRACT:
        bad = _signature_breaches(getattr(module, f), getattr(FamilyModule, f))
        if bad:
            raise ModelError(f"{where}: {f}() does not take the contract's parameters: {', '.join(bad)} "
                             "(genaannot.models.families.FamilyModule)")
    return module


def family_module(name: str, registry: Mapping[str, Family] | None = None) -> FamilyModule:
    """Import family ``name``'s module and check it against the contract."""
    registry = FAMILIES if registry is None else registry
    if name not in registry:
        raise ModelError(f"unknown model family {name!r}; known: {', '.join(registry)}")
    return check_module(name, import_module(registry[name].module))


# --------------------------------------------------------------------------- helpers for family modules


def unique_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with tied twins dropped (a tensor sharing storage and shape with an earlier
    key is stored once, as transformers does), detached CPU copies, contiguous.

    Loaders re-tie them (:func:`genaannot.models.weights.load_strict`).
    """
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if ptr in seen:
            continue
        seen[ptr] = k
        out[k] = v.detach().to("cpu").contiguous().clone()
    return out


def transfer_weights(
    own: Mapping[str, torch.Tensor],
    base: Mapping[str, torch.Tensor],
    *,
    body: tuple[str, ...],
    same_head_kind: bool,
    source: str,
    optional: tuple[str, ...] = (),
) -> tuple[dict[str, torch.Tensor], bool]:
    """Which base tensors a new network takes: all of its body, and its head when it fits.

    Parameters
    ----------
    own
        The new network's state dict (names and shapes wanted).
    base
        The base checkpoint's tensors, renamed to the network's names.
    body
        Key prefixes of the body (everything but the task head); every body tensor must be
        in ``base`` with the same shape.
    same_head_kind
        Whether the base's head is of the kind asked for (token / sequence); the head is kept
        only then, and only when every head tensor is in ``base`` with the same shape.
    source
        Named in errors.
    optional
        Key suffixes of body tensors that may be absent from ``base`` (they keep their
        initial values: e.g. a pooler an MLM checkpoint does not have).

    Returns
    -------
    (dict, bool)
        The tensors to load (non-strictly: the rest keeps its initialisation) and whether
        the head was kept.

    Raises
    ------
    TrainError
        A body tensor missing or of another shape (the base does not fit the family).
    """
    fit = {k: base[k] for k in own if k.startswith(body) and k in base and base[k].shape == own[k].shape}
    missing = [k for k in own if k.startswith(body) and k not in fit and not k.endswith(optional)]
    if missing:
        shapes = [f"{k} {tuple(base[k].shape)} vs {tuple(own[k].shape)}" if k in base else f"{k} (absent)"
                  for k in missing[:5]]
        raise TrainError(f"--base-model {source}: {len(missing)} body weights missing or misshapen: {'; '.join(shapes)}")
    head = [k for k in own if not k.startswith(body)]
    keep = same_head_kind and bool(head) and all(k in base and base[k].shape == own[k].shape for k in head)
    if keep:
        fit.update({k: base[k] for k in head})
    return fit, keep


def labels_config(head: HeadSpec) -> dict[str, Any]:
    """``id2label``, ``label2id``, ``num_labels`` and ``problem_type`` for a config.json."""
    return {
        "id2label": {str(i): lab for i, lab in enumerate(head.labels)},
        "label2id": {lab: i for i, lab in enumerate(head.labels)},
        "num_labels": len(head.labels),
        "problem_type": head.problem_type,
    }


def no_options(family: str, options: Mapping[str, Any], known: tuple[str, ...] = ()) -> None:
    """Refuse training options a family does not know."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        have = f" (known: {', '.join(known)})" if known else " (it takes none)"
        raise TrainError(f"{family}: unknown training option(s) {', '.join(unknown)}{have}")
