"""Labelled windows of a genome: which bases are sites, and the windows training and evaluation read.

Labels come from a gene annotation (:mod:`genaannot.io.annotation`), as a task's registry
entry says (:class:`genaannot.tasks.Training`: channels, site kinds, ``sampling``); the
built-in tasks:

``splice`` (token head, ``spread`` sampling, 3 sigmoid channels ``none``, ``acceptor``, ``donor``)
    A token is positive for acceptor (donor) when its base-pair span contains an acceptor
    (donor) site base, placed by the site convention (:mod:`genaannot.conventions`):
    ``exon`` (SpliceAI's, the default) the first exon base after (last exon base before)
    an intron, ``intron`` the last (first) base of the intron, in transcript orientation.
    Channel ``none`` is 1 where neither is.
``promoter`` (sequence head, ``centred`` sampling, 2 softmax classes ``background``, ``promoter``)
    A window whose centre lies within ``promoter_jitter`` bp of a TSS on its strand is a
    promoter; background windows have no same-strand TSS within half a window of their centre.

Window sampling (reproducible from the generator)
-------------------------------------------------
Each window is drawn independently: with probability ``site_fraction`` it holds a random
annotated site (splice: any donor/acceptor, placed uniformly in the central 80 % of the
window; promoter: a TSS at the centre ± ``promoter_jitter``) and is read on the site's
strand; otherwise it starts at a uniformly random position of the regions (chosen in
proportion to their length) and is read on a random strand. Minus-strand windows are
reverse-complemented as the scanner does, so the base at forward position ``p`` of a
window ``[s, e)`` is at position ``e - 1 - p`` of the model input.

Used by :mod:`genaannot.train` (training windows) and :mod:`genaannot.evaluate` (site
positions, promoter test windows); this module imports neither.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .conventions import DEFAULT_CONVENTION, SiteConvention, get_convention
from .io.annotation import Annotation
from .regions import Interval
from .tasks import TASKS, Task, trainable_tasks
from .windows import reverse_complement

if TYPE_CHECKING:
    from .tokenize import DNATokenizer

__all__ = [
    "GenomeReader",
    "LabelError",
    "TaskSpec",
    "TASK_SPECS",
    "SiteIndex",
    "oriented_positions",
    "token_labels",
    "Batch",
    "WindowSampler",
]


class LabelError(ValueError):
    """Regions that give no labelled windows (none given, or all empty)."""


class GenomeReader(Protocol):
    """What training and evaluation need from a genome (:class:`genaannot.io.fasta.Genome`)."""

    sizes: dict[str, int]

    def fetch(self, chrom: str, start: int, end: int) -> str: ...


@dataclass(frozen=True)
class TaskSpec:
    """How a trainable task is labelled: its registry entry's :class:`~genaannot.tasks.Training`
    (see there for the fields), with its name and head."""

    name: str
    head: str  # token | sequence
    labels: tuple[str, ...]
    site_kinds: tuple[str, ...]  # annotation site kinds used (channel = labels.index(kind))
    problem_type: str
    sampling: str = "spread"  # genaannot.tasks.SAMPLINGS
    loss: str = "bce"  # genaannot.tasks.LOSSES
    evaluation: str = "sites"  # genaannot.tasks.EVALUATIONS

    @classmethod
    def of(cls, task: Task) -> TaskSpec:
        """The spec of a registry entry (``ValueError`` when it has no :class:`~genaannot.tasks.Training`)."""
        t = task.training
        if t is None:
            raise ValueError(f"task {task.name!r} cannot be trained (no Training in its registry entry); "
                             f"trainable: {', '.join(trainable_tasks())}")
        need = {"spread": "token", "centred": "sequence"}[t.sampling]
        if task.readout != need:
            raise ValueError(f"task {task.name!r}: {t.sampling} sampling labels a {need} head, the task reads a "
                             f"{task.readout} head")
        return cls(task.name, task.readout, t.labels, t.site_kinds, t.problem_type, t.sampling, t.loss, t.evaluation)


class _TrainableTasks(Mapping[str, TaskSpec]):
    """The trainable tasks of :data:`genaannot.tasks.TASKS`, read from the registry at each
    access (one source of truth: an entry added to ``TASKS`` is trainable at once)."""

    def __getitem__(self, name: str) -> TaskSpec:
        task = TASKS.get(name) if isinstance(name, str) else None  # a hostile genaannot.json may hold anything
        if task is None or task.training is None:
            raise KeyError(name)
        return TaskSpec.of(task)

    def __iter__(self) -> Iterator[str]:
        return iter(trainable_tasks())

    def __len__(self) -> int:
        return len(trainable_tasks())

    def __repr__(self) -> str:
        return f"TASK_SPECS({', '.join(self)})"


#: the trainable tasks of :data:`genaannot.tasks.TASKS` (a live view of the registry)
TASK_SPECS: Mapping[str, TaskSpec] = _TrainableTasks()


class SiteIndex:
    """Annotated sites inside a set of regions, per chromosome, strand and kind.

    ``sites[(chrom, strand, kind)]`` is a sorted int64 array of forward positions, placed
    by ``convention`` (a :data:`genaannot.conventions.SITE_CONVENTIONS` name or entry; splice
    sites move by its shift, TSS never): a site counts as inside a region when its base in
    that convention is.
    """

    def __init__(self, annotation: Annotation, regions: Sequence[Interval], kinds: Sequence[str], *,
                 convention: str | SiteConvention = DEFAULT_CONVENTION) -> None:
        self.kinds = tuple(kinds)
        self.convention = get_convention(convention)
        self.sites: dict[tuple[str, str, str], np.ndarray] = {}
        by_chrom: dict[str, list[Interval]] = {}
        for iv in regions:
            by_chrom.setdefault(iv.chrom, []).append(iv)
        for chrom, ivs in by_chrom.items():
            for kind in self.kinds:
                ss = annotation.sites(chrom, kind)
                pos = ss.pos + np.where(ss.strand == "+", self.convention.forward_shift(kind=kind, strand="+"),
                                        self.convention.forward_shift(kind=kind, strand="-"))
                inside = np.zeros(len(ss), dtype=bool)
                for iv in ivs:
                    inside |= (pos >= iv.start) & (pos < iv.end)
                for strand in "+-":
                    self.sites[(chrom, strand, kind)] = np.unique(pos[inside & (ss.strand == strand)])
        # flat list for uniform site sampling: (chrom, strand, kind, pos)
        self.flat: list[tuple[str, str, str, int]] = [
            (c, s, k, int(p)) for (c, s, k), arr in sorted(self.sites.items()) for p in arr
        ]

    def in_window(self, chrom: str, strand: str, kind: str, start: int, end: int) -> np.ndarray:
        """Forward positions of ``kind`` sites on ``strand`` within ``[start, end)``."""
        arr = self.sites.get((chrom, strand, kind))
        if arr is None or arr.size == 0:
            return np.empty(0, dtype=np.int64)
        lo, hi = np.searchsorted(arr, [start, end])
        return arr[lo:hi]

    def count(self, kind: str) -> int:
        """Number of ``kind`` sites (both strands) in the regions."""
        return sum(int(a.size) for (_, _, k), a in self.sites.items() if k == kind)


def oriented_positions(pos: np.ndarray, *, start: int, end: int, strand: str) -> np.ndarray:
    """Forward positions → positions in the (reverse-complemented when ``-``) window string."""
    return (pos - start) if strand == "+" else (end - 1 - pos)


def token_labels(spans: np.ndarray, site_pos: dict[int, np.ndarray], *, n_labels: int) -> np.ndarray:
    """Per-token multi-hot labels.

    Parameters
    ----------
    spans : int64 [T, 2]
        Contiguous token spans in the window string.
    site_pos : channel -> int64 [k]
        Site positions in the window string per label channel (channel 0 = ``none`` is
        derived: 1 where no other channel is set).

    Returns
    -------
    float32 [T, n_labels]
    """
    y = np.zeros((spans.shape[0], n_labels), dtype=np.float32)
    if spans.shape[0] == 0:
        return y
    covered = spans[-1, 1]
    for ch, q in site_pos.items():
        q = q[(q >= 0) & (q < covered)]
        tok = np.searchsorted(spans[:, 1], q, side="right")  # token whose span holds base q
        y[tok, ch] = 1.0
    y[:, 0] = 1.0 - y[:, 1:].max(axis=1) if n_labels > 1 else 0.0
    return y


@dataclass
class Batch:
    """Labelled windows before collation (one training batch, or a fixed validation set).

    Attributes
    ----------
    ids : list of int64 [T_i]  content tokens (at most ``window_tokens``)
    labels : list of float32 [T_i, n_labels] (token head) or int64 scalar (sequence head)
    windows : list of (chrom, start, end, strand)
    """

    ids: list[np.ndarray]
    labels: list[np.ndarray]
    windows: list[tuple[str, int, int, str]]


class WindowSampler:
    """Draws labelled windows from ``regions`` of ``genome`` (see the module docstring)."""

    def __init__(
        self,
        *,
        genome: GenomeReader,
        sites: SiteIndex,
        regions: Sequence[Interval],
        tokenizer: DNATokenizer,
        spec: TaskSpec,
        window_bp: int,
        window_tokens: int,
        site_fraction: float = 0.5,
        promoter_jitter: int = 20,
    ) -> None:
        self.genome, self.sites, self.tokenizer, self.spec = genome, sites, tokenizer, spec
        self.regions = [iv for iv in regions if len(iv) > 0]
        if not self.regions:
            raise LabelError("no non-empty regions to sample windows from")
        self.window_bp, self.window_tokens = window_bp, window_tokens
        self.site_fraction, self.promoter_jitter = site_fraction, promoter_jitter
        lengths = np.array([len(iv) for iv in self.regions], dtype=np.float64)
        self._p = lengths / lengths.sum()

    # -- window choice ------------------------------------------------------------------
    def region_of(self, chrom: str, pos: int) -> Interval | None:
        """The sampler's region that holds forward position ``pos`` of ``chrom`` (``None``: none)."""
        for iv in self.regions:
            if iv.chrom == chrom and iv.start <= pos < iv.end:
                return iv
        return None

    def clip(self, iv: Interval, start: int) -> tuple[int, int]:
        """A window of ``window_bp`` (at most ``len(iv)``) starting near ``start``, moved inside ``iv``.

        Returns
        -------
        (int, int)
            Forward ``start, end`` with ``iv.start <= start < end <= iv.end``.
        """
        w = min(self.window_bp, len(iv))
        start = int(min(max(start, iv.start), iv.end - w))
        return start, start + w

    def site_window(self, chrom: str, strand: str, pos: int, *, offset: int) -> tuple[str, int, int, str]:
        """The window read on ``strand`` whose oriented position ``offset`` is forward position ``pos``.

        Clipped into the region holding ``pos`` (:meth:`clip`), so near a region's end the
        site sits elsewhere in the window. ``pos`` must lie in one of the sampler's regions.

        Returns
        -------
        (chrom, start, end, strand)
        """
        iv = self.region_of(chrom, pos)
        if iv is None:
            raise LabelError(f"{chrom}:{pos + 1} is outside the sampler's regions")
        # oriented offset <-> forward start: + start = pos - offset; - start = pos - (w-1-offset)
        start = pos - offset if strand == "+" else pos - (self.window_bp - 1 - offset)
        s, e = self.clip(iv, start)
        return chrom, s, e, strand

    def draw(self, rng: np.random.Generator) -> tuple[str, int, int, str]:
        """One window ``(chrom, start, end, strand)``."""
        if self.sites.flat and rng.random() < self.site_fraction:
            chrom, strand, _kind, pos = self.sites.flat[int(rng.integers(len(self.sites.flat)))]
            if self.spec.sampling == "spread":
                # site anywhere in the central 80 % of the window (in window orientation)
                off = int(rng.integers(self.window_bp // 10, self.window_bp - self.window_bp // 10))
            else:
                off = self.window_bp // 2 + int(rng.integers(-self.promoter_jitter, self.promoter_jitter + 1))
            return self.site_window(chrom, strand, pos, offset=off)
        iv = self.regions[int(rng.choice(len(self.regions), p=self._p))]
        w = min(self.window_bp, len(iv))
        s = iv.start + int(rng.integers(0, len(iv) - w + 1))
        return iv.chrom, s, s + w, "+" if rng.random() < 0.5 else "-"

    # -- labelling ----------------------------------------------------------------------
    def label(self, windows: Sequence[tuple[str, int, int, str]]) -> Batch:
        """Read, orient, tokenise (at most ``window_tokens`` tokens kept) and label ``windows``."""
        seqs = []
        for chrom, s, e, strand in windows:
            seq = self.genome.fetch(chrom, s, e)
            seqs.append(seq if strand == "+" else reverse_complement(seq))
        encs = self.tokenizer.encode_batch(seqs)
        ids, labels = [], []
        for (chrom, s, e, strand), enc in zip(windows, encs):
            keep = min(len(enc), self.window_tokens)
            spans = enc.spans[:keep]
            ids.append(enc.ids[:keep])
            if self.spec.sampling == "spread":
                site_pos = {
                    self.spec.labels.index(kind): oriented_positions(
                        self.sites.in_window(chrom, strand, kind, s, e), start=s, end=e, strand=strand
                    )
                    for kind in self.spec.site_kinds
                }
                labels.append(token_labels(spans, site_pos, n_labels=len(self.spec.labels)))
            else:
                labels.append(np.asarray(self.centre_label(chrom, s, e, strand), dtype=np.int64))
        return Batch(ids, labels, list(windows))

    def has_site(self, chrom: str, strand: str, start: int, end: int) -> bool:
        """Whether a site of the spec's kinds on ``strand`` lies in ``[start, end)``."""
        return any(self.sites.in_window(chrom, strand, kind, start, end).size for kind in self.spec.site_kinds)

    def centre_label(self, chrom: str, start: int, end: int, strand: str) -> int:
        """``centred`` sampling: 1 when a site (promoter: a TSS) on ``strand`` lies within
        ``promoter_jitter`` bp of the window centre, else 0."""
        centre = (start + end) // 2
        return int(self.has_site(chrom, strand, centre - self.promoter_jitter, centre + self.promoter_jitter + 1))

    def batch(self, rng: np.random.Generator, n: int) -> Batch:
        """``n`` labelled windows drawn with :meth:`draw` (``centred``: ambiguous backgrounds redrawn)."""
        wins = []
        while len(wins) < n:
            w = self.draw(rng)
            if self.spec.sampling == "centred" and not self._centred_window_ok(w):
                continue
            wins.append(w)
        return self.label(wins)

    def _centred_window_ok(self, w: tuple[str, int, int, str]) -> bool:
        """Background windows of ``centred`` sampling must not hold a same-strand site anywhere."""
        chrom, s, e, strand = w
        if self.centre_label(chrom, s, e, strand):
            return True
        return not self.has_site(chrom, strand, s, e)
