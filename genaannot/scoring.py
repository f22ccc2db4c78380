"""Scoring a chunk of VCF records: plan → predict → deltas → INFO values (compute only).

``genaannot score`` (:func:`genaannot.pipeline.score.score_variants`) reads records in
chunks and runs each chunk through the stages here; it owns the files (the VCF reader and
writer, the TSV) and the processes, these functions own what is computed:

1. :func:`plan_records`: a reason code or a window plan (tokenised ref/alt inputs, both
   strands) for every ALT of every record;
2. :func:`predict_records`: every window the chunk needs through the model, reference
   windows served from a :class:`ReferenceCache` when an earlier chunk predicted them;
3. :func:`add_deltas`: the task's score (:data:`genaannot.variants.SCORES`) per ALT and strand;
4. :func:`record_outcome`: what is written for a record: INFO values (best strand per ALT),
   reason codes, and the TSV rows.

Coordinates are 0-based, half-open (``VcfRecord.start``/``end`` are converted from the VCF's
1-based ``POS`` when the record is read, in :mod:`genaannot.io.vcf`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .predict import NonFiniteOutputError
from .readout import Readout, sanitize_label
from .variants import (
    SCORES,
    SequenceDelta,
    TokenDelta,
    VariantWindow,
    WindowRequest,
    allele_reason,
    genome_reason,
    plan_variant_windows,
)

if TYPE_CHECKING:
    from .io.fasta import Genome
    from .io.vcf import VcfRecord
    from .models.base import Model
    from .predict import Prediction

__all__ = [
    "REASON_FIELD",
    "AltWork",
    "RecordWork",
    "ReferenceCache",
    "ChunkPrediction",
    "RecordOutcome",
    "info_field",
    "tsv_columns",
    "plan_records",
    "predict_records",
    "add_deltas",
    "record_outcome",
]

#: INFO field carrying reason codes of ALTs that were not scored
REASON_FIELD = "GENA_REASON"
_STRAND_NAME = {"+": "plus", "-": "minus"}


@dataclass
class AltWork:
    """One ALT of a record on its way through the stages.

    Attributes
    ----------
    allele : str
        As written in the VCF.
    reason : str or None
        Reason code (:data:`genaannot.variants.REASONS`) when it cannot be scored.
    plan : VariantWindow or None
        The window it is scored in (shared with the record's other ALTs when they fit one).
    index : int
        Its allele index inside ``plan``.
    result : dict[str, TokenDelta | SequenceDelta]
        Deltas per strand (``"+"``, ``"-"``), filled by :func:`add_deltas`.
    """

    allele: str
    reason: str | None = None
    plan: VariantWindow | None = None
    index: int = 0
    result: dict[str, TokenDelta | SequenceDelta] = field(default_factory=dict)


@dataclass
class RecordWork:
    """A record, its FASTA chromosome (``None``: not in the FASTA) and its ALTs."""

    record: VcfRecord
    gchrom: str | None
    alts: list[AltWork]


def info_field(readout: Readout) -> str:
    """INFO field of a task's scores: ``GENA_<TASK>``."""
    return f"GENA_{readout.task.upper()}"


def tsv_columns(readout: Readout) -> list[str]:
    """Header of the ``--tsv`` table: one row per ALT, every raw number per label and strand."""
    cols = ["chrom", "pos", "id", "ref", "alt", "genome_chrom", "status", "strand",
            "window_start", "window_end", "ref_tokens", "alt_tokens"]
    score = SCORES[readout.head]
    for s in readout.strands:
        sn = _STRAND_NAME[s]
        for name in readout.labels:
            cols += [f"{sanitize_label(name)}_{k}_{sn}" for k in score.columns()]
    return cols


# --------------------------------------------------------------------------- 1. plan


def plan_records(chunk: Sequence[VcfRecord], *, genome: Genome, mapping: Mapping[str, str], readout: Readout,
                 tokenizer: Any, max_tokens: int, distance: int) -> list[RecordWork]:
    """Reason codes and window plans for the ALTs of a chunk of records.

    Parameters
    ----------
    chunk
        Records in input order.
    genome
        Open FASTA (reference bases are compared with REF, windows fetched from it).
    mapping
        VCF chromosome name → FASTA name (:func:`genaannot.regions.match_chroms`).
    readout
        Strands and head (sequence heads need no flanks beyond fitting the allele).
    tokenizer, max_tokens
        The model's tokenizer and content-token capacity.
    distance
        Token heads: bp on each side of REF that the window must hold.

    Returns
    -------
    list of RecordWork
        One per record, in order. All ALTs of a record share one window when they fit; an ALT
        too long to share is planned alone; one that fits no window gets ``TOO_LONG``.
    """
    works = []
    groups: list[tuple[list[AltWork], WindowRequest]] = []
    needs_flanks = SCORES[readout.head].needs_flanks
    for rec in chunk:
        gchrom = mapping.get(rec.chrom)
        alts = [AltWork(a) for a in rec.alts]
        works.append(RecordWork(rec, gchrom, alts))
        if not alts:
            continue
        if gchrom is None:
            for a in alts:
                a.reason = "NO_CONTIG"
            continue
        for a in alts:
            a.reason = allele_reason(rec.ref, a.allele)
        todo = [a for a in alts if a.reason is None]
        if not todo:
            continue
        size = genome.sizes[gchrom]
        inside = 0 <= rec.start and rec.end <= size
        gref = genome.fetch(gchrom, rec.start, rec.end) if inside else None
        why = genome_reason(ref=rec.ref, start=rec.start, chrom_len=size, genome_ref=gref)
        if why is not None:
            for a in todo:
                a.reason = why
            continue
        groups.append((todo, WindowRequest(
            fetch=functools.partial(genome.fetch, gchrom), chrom_len=size, start=rec.start, end=rec.end,
            alts=[a.allele.upper() for a in todo],
            distance=distance if needs_flanks else 0,
        )))

    def plans_for(groups):
        if not groups:
            return []
        return plan_variant_windows([req for _, req in groups], tokenizer=tokenizer, max_tokens=max_tokens,
                                    strands=readout.strands)

    alone = []
    for (alleles, req), plan in zip(groups, plans_for(groups)):
        if plan is None and len(alleles) > 1:
            alone += [([a], dataclasses.replace(req, alts=[req.alts[k]])) for k, a in enumerate(alleles)]
            continue
        for i, a in enumerate(alleles):
            a.plan, a.index, a.reason = plan, i, None if plan is not None else "TOO_LONG"
    for (alleles, _), plan in zip(alone, plans_for(alone)):
        alleles[0].plan, alleles[0].index, alleles[0].reason = plan, 0, None if plan is not None else "TOO_LONG"
    return works


# --------------------------------------------------------------------------- 2. predict


class ReferenceCache:
    """Least-recently-used reference-window predictions, keyed by
    ``(chrom, window start, window end, strand)``: ALTs of one record and records at one
    position share one reference prediction, also across chunks."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Prediction] = OrderedDict()

    def __contains__(self, key: tuple) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def touch(self, key: tuple) -> None:
        """Mark ``key`` as just used."""
        self._items.move_to_end(key)

    def __getitem__(self, key: tuple) -> Prediction:
        return self._items[key]

    def put(self, key: tuple, pred: Prediction) -> None:
        self._items[key] = pred
        if len(self._items) > self.size:
            self._items.popitem(last=False)


@dataclass
class ChunkPrediction:
    """What :func:`predict_records` gives.

    Attributes
    ----------
    pairs : list of (RecordWork, AltWork, str, Prediction, Prediction)
        ``(record, ALT, strand, reference prediction, ALT prediction)`` per scored ALT and
        strand, in input order.
    windows_predicted : int
        Model inputs run for the chunk.
    cache_hits : int
        Reference windows not run (from the cache, or shared within the chunk).
    """

    pairs: list[tuple[RecordWork, AltWork, str, Any, Any]]
    windows_predicted: int
    cache_hits: int


def _keys(w: RecordWork, a: AltWork, s: str) -> tuple[tuple, tuple]:
    p = a.plan
    ref_key = (w.gchrom, p.start, p.end, s)
    alt_key = (w.gchrom, p.start, p.end, s, w.record.start, w.record.end, a.allele.upper())
    return ref_key, alt_key


def _requests(works: Sequence[RecordWork], readout: Readout):
    for w in works:
        for a in w.alts:
            if a.plan is None:
                continue
            for s in readout.strands:
                yield (w, a, s, *_keys(w, a, s))


def predict_records(works: Sequence[RecordWork], *, readout: Readout, model: Model, batch_size: int,
                    cache: ReferenceCache) -> ChunkPrediction:
    """Run every window a planned chunk needs (reference windows from ``cache`` when there)
    in batches of ``batch_size``; the chunk's reference predictions go into ``cache``."""
    needed: dict[tuple, object] = {}
    owner: dict[tuple, tuple[RecordWork, AltWork]] = {}  # a window's first variant, to name it in errors
    n_ref = 0  # reference-window requests (one per scored ALT and strand)
    for w, a, s, rk, ak in _requests(works, readout):
        n_ref += 1
        if rk in cache:
            cache.touch(rk)
        elif rk not in needed:
            needed[rk] = a.plan.encodings[(-1, s)]
            owner[rk] = (w, a)
        if ak not in needed:
            needed[ak] = a.plan.encodings[(a.index, s)]
            owner[ak] = (w, a)
    todo = [k for k in needed if k not in cache]
    try:
        preds = model.predict_encoded([needed[k] for k in todo], batch_size=batch_size) if todo else []
    except NonFiniteOutputError as err:
        k = todo[err.index]
        w, a = owner[k]
        r = w.record
        raise err.located(f"the {'reference' if len(k) == 4 else 'ALT'} window of variant {r.chrom}:{r.pos} "
                          f"{r.ref}>{a.allele} (strand {k[3]})") from None
    fresh = dict(zip(todo, preds))
    for k, pr in fresh.items():
        if pr.n_tokens_dropped:
            raise RuntimeError(f"internal error: window {k} exceeded the model capacity")
    pairs = [(w, a, s, fresh[rk] if rk in fresh else cache[rk], fresh[ak])
             for w, a, s, rk, ak in _requests(works, readout)]
    for k, pr in fresh.items():
        if len(k) == 4:  # reference windows only: alt windows are rarely shared across chunks
            cache.put(k, pr)
    return ChunkPrediction(pairs=pairs, windows_predicted=len(todo),
                           cache_hits=n_ref - sum(1 for k in todo if len(k) == 4))


# --------------------------------------------------------------------------- 3. deltas, 4. outcome


def add_deltas(pairs: Sequence[tuple], *, readout: Readout, distance: int) -> None:
    """Fill ``AltWork.result[strand]`` with the readout's score of each prediction pair."""
    score = SCORES[readout.head]
    for w, a, s, rp, ap in pairs:
        a.result[s] = score.delta(rp, ap, window=a.plan, start=w.record.start, ref_len=len(w.record.ref),
                                  alt_len=len(a.allele), strand=s, readout=readout, distance=distance)


@dataclass
class RecordOutcome:
    """What is written for one record.

    Attributes
    ----------
    info : dict[str, list[str]]
        INFO fields to set (one value per ALT; ``.`` where none), empty when nothing was scored
        and nothing has a reason.
    reasons : list of str
        Reason codes of the ALTs that were not scored.
    n_scored : int
        ALTs with a score.
    rows : list of list
        TSV rows (one per ALT), when asked for.
    """

    info: dict[str, list[str]]
    reasons: list[str]
    n_scored: int
    rows: list[list[object]]


def record_outcome(w: RecordWork, readout: Readout, *, rows: bool = False) -> RecordOutcome:
    """INFO values, reason codes and (``rows``) TSV rows of a record whose deltas are in.

    The INFO value of a scored ALT is its strongest strand's (ties: the first listed, ``+``).
    """
    score = SCORES[readout.head]
    scores, why, reasons, table = [], [], [], []
    n_scored = 0
    for a in w.alts:
        if a.reason is not None:
            reasons.append(a.reason)
            scores.append(".")
            why.append(a.reason)
            best = None
        else:
            n_scored += 1
            best = max(readout.strands, key=lambda s: a.result[s].effect)
            scores.append(score.info_value(a.allele, best, a.result[best], readout.codes))
            why.append(".")
        if rows:
            table.append(_row(w, a, readout, best))
    info: dict[str, list[str]] = {}
    if any(x != "." for x in scores):
        info[info_field(readout)] = scores
    if any(x != "." for x in why):
        info[REASON_FIELD] = why
    return RecordOutcome(info=info, reasons=reasons, n_scored=n_scored, rows=table)


def _row(w: RecordWork, a: AltWork, readout: Readout, best: str | None) -> list[object]:
    rec = w.record
    p = a.plan
    first = readout.strands[0]
    row: list[object] = [
        rec.chrom, rec.pos, rec.id or ".", rec.ref, a.allele, w.gchrom, a.reason or "scored", best,
        p.start if p else None, p.end if p else None,
        len(p.encodings[(-1, first)]) if p else None,
        len(p.encodings[(a.index, first)]) if p else None,
    ]
    score = SCORES[readout.head]
    for s in readout.strands:
        d = a.result.get(s)
        for i in range(len(readout.labels)):
            row += score.row(d, i)
    return row
