"""Splice-site base conventions: which base of a splice junction is *the* site.

An annotated intron ``[s, e)`` has two bases on each side of each junction; tools differ
in which one they mark. A convention is picked by name (``--site-convention``) from
:data:`SITE_CONVENTIONS`:

``exon`` (SpliceAI's; the default)
    donor = the **last exon base** before the intron, acceptor = the **first exon base**
    after it (transcript orientation). SpliceAI, its training data and the GENA-LM splice
    checkpoints fine-tuned on that data (``spliceai_run_1``, ``gena_web_spliceai``) use it.
``intron`` (genaannot's before ``site_convention`` existed)
    donor = the **first intron base** (the G of GT), acceptor = the **last intron base**
    (the G of AG).

The two are one base apart: on the forward strand, intron ``[s, e)`` has donor ``s - 1``
and acceptor ``e`` (``exon``), or ``s`` and ``e - 1`` (``intron``); on the minus strand
donor ``e`` / ``e - 1`` and acceptor ``s - 1`` / ``s``. TSS are not affected.

Which convention a checkpoint uses (:func:`checkpoint_convention`): the
``site_convention`` key of its ``genaannot.json``; without the key, a ``genaannot.json``
written by ``genaannot train`` (it names a task) means ``intron`` (every such checkpoint
made before the key existed was labelled intron-side), and no ``genaannot.json`` at all
(published checkpoints: GENA-LM's splice models) means :data:`DEFAULT_CONVENTION`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SiteConvention",
    "SITE_CONVENTIONS",
    "DEFAULT_CONVENTION",
    "LEGACY_CONVENTION",
    "get_convention",
    "checkpoint_convention",
    "model_convention",
]


@dataclass(frozen=True)
class SiteConvention:
    """One way of placing splice sites on bases.

    Attributes
    ----------
    name : str
        Registry key (``exon``, ``intron``).
    summary : str
        One line for help texts, manifests and track descriptions.
    definitions : dict of str -> str
        What base each site kind is (recorded in ``genaannot.json`` as ``site_definitions``).
    short : dict of str -> str
        The same in a few words (scan manifests, track labels).
    shift : dict of str -> int
        Per site kind, the offset in bp, in transcript orientation, from the intron-side base
        (what :meth:`genaannot.io.annotation.Annotation.sites` returns) to this convention's
        base; kinds not listed (``tss``) are not moved.
    """

    name: str
    summary: str
    definitions: dict[str, str]
    short: dict[str, str]
    shift: dict[str, int]

    def describe(self, *, source: str | None = None) -> dict[str, str]:
        """``{"name", "source", "donor", "acceptor"}`` (scan manifests; ``source`` left out when None)."""
        return {"name": self.name, **({"source": source} if source else {}), **self.short}

    def forward_shift(self, *, kind: str, strand: str) -> int:
        """Offset on the forward strand from the annotation's (intron-side) base to this convention's."""
        d = self.shift.get(kind, 0)
        return d if strand == "+" else -d


SITE_CONVENTIONS: dict[str, SiteConvention] = {
    "exon": SiteConvention(
        "exon",
        "exon-side bases, as SpliceAI: donor = last exon base, acceptor = first exon base",
        {"donor": "last exon base before the intron (transcript orientation)",
         "acceptor": "first exon base after the intron (transcript orientation)",
         "tss": "first transcript base"},
        {"donor": "last exon base", "acceptor": "first exon base"},
        {"donor": -1, "acceptor": 1},
    ),
    "intron": SiteConvention(
        "intron",
        "intron-side bases: donor = first intron base (G of GT), acceptor = last intron base (G of AG)",
        {"donor": "first intron base (transcript orientation)",
         "acceptor": "last intron base (transcript orientation)",
         "tss": "first transcript base"},
        {"donor": "first intron base (G of GT)", "acceptor": "last intron base (G of AG)"},
        {"donor": 0, "acceptor": 0},
    ),
}

#: what ``genaannot train`` labels by default and what a checkpoint without ``genaannot.json`` is taken to use
DEFAULT_CONVENTION = "exon"
#: what a ``genaannot train`` checkpoint without the ``site_convention`` key was labelled with
LEGACY_CONVENTION = "intron"


def get_convention(name: str | SiteConvention) -> SiteConvention:
    """The registry entry ``name`` (a :class:`SiteConvention` is returned as is).

    Raises
    ------
    ValueError
        An unknown name, with the choices.
    """
    if isinstance(name, SiteConvention):
        return name
    try:
        return SITE_CONVENTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown site convention {name!r}; choose one of {', '.join(SITE_CONVENTIONS)}") from None


def checkpoint_convention(meta: Mapping[str, Any] | None) -> tuple[str, str]:
    """The site convention of a checkpoint from its ``genaannot.json`` (see the module docstring).

    Parameters
    ----------
    meta : mapping or None
        The checkpoint's ``genaannot.json`` (``{}`` / ``None`` when it has none).

    Returns
    -------
    (name, source)
        ``source`` is ``"checkpoint"`` (the key), ``"genaannot train before site_convention"``
        or ``"default"``.

    Raises
    ------
    ValueError
        The key names no registered convention.
    """
    meta = meta or {}
    name = meta.get("site_convention")
    if name is not None:
        return get_convention(name).name, "checkpoint"
    if meta.get("task"):
        return LEGACY_CONVENTION, "genaannot train before site_convention"
    return DEFAULT_CONVENTION, "default"


def model_convention(info: Any, *, override: str | None = None) -> tuple[SiteConvention, str]:
    """The site convention of a loaded model (:class:`genaannot.models.base.ModelInfo`).

    ``override`` (a registry name, e.g. from ``--site-convention``) wins; otherwise
    :func:`checkpoint_convention` of the ``genaannot.json`` the loader attached to
    ``info.extra["genaannot"]``.

    Returns
    -------
    (SiteConvention, source)
        ``source``: ``"given"`` for ``override``, else as :func:`checkpoint_convention`.
    """
    if override is not None:
        return get_convention(override), "given"
    extra = getattr(info, "extra", None) or {}
    name, source = checkpoint_convention(extra.get("genaannot"))
    return SITE_CONVENTIONS[name], source
