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

import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .genes import strands_for
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
    mask_token_delta,
    plan_variant_windows,
)

if TYPE_CHECKING:
    from .genes import Gene, GeneIndex
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
    genes : tuple of Gene or None
        Annotated genes holding ``POS`` (``--annotation``); ``None`` without an annotation.
    strands : tuple of str or None
        Strands to predict (the genes'); ``None``: the readout's.
    """

    allele: str
    reason: str | None = None
    plan: VariantWindow | None = None
    index: int = 0
    result: dict[str, TokenDelta | SequenceDelta] = field(default_factory=dict)
    genes: tuple[Gene, ...] | None = None
    strands: tuple[str, ...] | None = None


@dataclass
class RecordWork:
    """A record, its FASTA chromosome (``None``: not in the FASTA) and its ALTs."""

    record: VcfRecord
    gchrom: str | None
    alts: list[AltWork]


def info_field(readout: Readout) -> str:
    """INFO field of a task's scores: ``GENA_<TASK>``."""
    return f"GENA_{readout.task.upper()}"


def numeric_fields(readout: Readout) -> list[tuple[str, str, str]]:
    """``(INFO id, VCF type, meaning)`` of the per-ALT numeric fields (``Number=A``):
    ``GENA_<TASK>_<subfield>``, so ``bcftools filter -i 'INFO/GENA_SPLICE_DS_MAX>0.5'`` works."""
    base = info_field(readout)
    return [(f"{base}_{k}", t, m) for k, t, m in SCORES[readout.head].numeric(readout.codes)]


def gene_field(readout: Readout) -> str:
    """INFO field of the gene whose score is reported per ALT (``--annotation``)."""
    return f"{info_field(readout)}_GENE"


#: INFO id and subfields of SpliceAI's own layout (``--spliceai-info``)
SPLICEAI_FIELD = "SpliceAI"
SPLICEAI_FORMAT = "ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL"


def tsv_columns(readout: Readout) -> list[str]:
    """Header of the ``--tsv`` table: one row per ALT (per ALT and gene with ``--annotation``),
    every raw number per label and strand."""
    cols = ["chrom", "pos", "id", "ref", "alt", "genome_chrom", "status", "gene", "strand",
            "window_start", "window_end", "ref_tokens", "alt_tokens"]
    score = SCORES[readout.head]
    for s in readout.strands:
        sn = _STRAND_NAME[s]
        for name in readout.labels:
            cols += [f"{sanitize_label(name)}_{k}_{sn}" for k in score.columns()]
    return cols


# --------------------------------------------------------------------------- 1. plan


def plan_records(chunk: Sequence[VcfRecord], *, genome: Genome, mapping: Mapping[str, str], readout: Readout,
                 tokenizer: Any, max_tokens: int, distance: int, genes: GeneIndex | None = None,
                 outside_genes: str = "score") -> list[RecordWork]:
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
    genes
        Annotated genes (FASTA chromosome names): each ALT records the genes holding ``POS``
        and, for strand-specific tasks, is predicted on their strands only.
    outside_genes
        With ``genes``, a variant in no gene: ``score`` (the readout's strands) or ``reason``
        (``NO_GENE``).

    Returns
    -------
    list of RecordWork
        One per record, in order. Every ALT gets the window it would get alone (its record's
        other ALTs do not change it); one that fits no window gets ``TOO_LONG``.
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
        if genes is not None:
            found = tuple(genes.at(gchrom, rec.start))
            if not found and outside_genes == "reason":
                for a in todo:
                    a.reason = "NO_GENE"
                continue
            for a in todo:
                a.genes = found
                a.strands = strands_for(found, readout.strands) if readout.strand_specific else None
        fetch = functools.partial(genome.fetch, gchrom)
        # one window per ALT, as if it were alone in its record: the score of an ALT does not
        # depend on the other ALTs written beside it (identical windows share one reference
        # prediction through the cache)
        groups += [([a], WindowRequest(fetch=fetch, chrom_len=size, start=rec.start, end=rec.end,
                                       alts=[a.allele.upper()], distance=distance if needs_flanks else 0))
                   for a in todo]
    plans = plan_variant_windows([req for _, req in groups], tokenizer=tokenizer, max_tokens=max_tokens,
                                 strands=readout.strands) if groups else []
    for (alleles, _), plan in zip(groups, plans):
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
            for s in a.strands or readout.strands:
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


def add_deltas(pairs: Sequence[tuple], *, readout: Readout, distance: int, spliceai_region: bool = False) -> None:
    """Fill ``AltWork.result[strand]`` with the readout's score of each prediction pair.

    ``spliceai_region``: token heads search exactly ``POS ± distance`` also for deletions
    (SpliceAI's region) instead of extending it past the deleted bases.
    """
    score = SCORES[readout.head]
    for w, a, s, rp, ap in pairs:
        a.result[s] = score.delta(rp, ap, window=a.plan, start=w.record.start, ref_len=len(w.record.ref),
                                  alt_len=len(a.allele), strand=s, readout=readout, distance=distance,
                                  region_ref_len=1 if spliceai_region else None)


@dataclass
class OutcomeOptions:
    """How scores become INFO values (the same for every record of a run).

    Attributes
    ----------
    mask : bool
        With genes: zero acceptor/donor gains at the gene's annotated sites of that kind and
        losses elsewhere (SpliceAI ``-M 1``, by site kind); the positions stay.
    spliceai : bool
        Also write ``INFO/SpliceAI`` in SpliceAI's layout (:data:`SPLICEAI_FORMAT`).
    annotated : bool
        An annotation was given: write ``GENA_<TASK>_GENE``.
    """

    mask: bool = False
    spliceai: bool = False
    annotated: bool = False


@dataclass
class RecordOutcome:
    """What is written for one record.

    Attributes
    ----------
    info : dict[str, list]
        INFO fields to set: one value per ALT (``.`` or ``None`` where none) for the
        ``Number=A`` fields, one per ALT and gene for ``SpliceAI``; empty when nothing was
        scored and nothing has a reason.
    reasons : list of str
        Reason codes of the ALTs that were not scored.
    n_scored : int
        ALTs with a score.
    rows : list of list
        TSV rows (one per ALT, or per ALT and gene), when asked for.
    """

    info: dict[str, list]
    reasons: list[str]
    n_scored: int
    rows: list[list[object]]


def _entries(a: AltWork, readout: Readout, opts: OutcomeOptions, start: int) -> list[tuple[Any, str, Any]]:
    """``(gene or None, strand, delta)`` of a scored ALT: one per overlapping gene (its strand
    for strand-specific tasks, masked when asked), else one for its strongest strand."""
    done = [s for s in (a.strands or readout.strands) if s in a.result]
    best = max(done, key=lambda s: a.result[s].effect)  # ties: the first listed, "+"
    if not a.genes:
        return [(None, best, a.result[best])]
    out = []
    for g in a.genes:
        s = g.strand if readout.strand_specific else best
        d = a.result[s]
        if opts.mask and isinstance(d, TokenDelta):
            d = mask_token_delta(d, start=start, sites=[g.sites(c) for c in readout.codes])
        out.append((g, s, d))
    return out


def _spliceai_value(allele: str, gene, d: TokenDelta, codes: Sequence[str]) -> str:
    """``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL`` with SpliceAI's
    ``{:.2f}`` scores and positions relative to ``POS``."""
    ia, id_ = codes.index("A"), codes.index("D")
    ds = [float(v) + 0.0 for i in (ia, id_) for v in (d.gain[i], d.loss[i])]  # + 0.0: a zero loss is "0.00"
    dp = [int(v) for i in (ia, id_) for v in (d.gain_pos[i], d.loss_pos[i])]
    return "|".join([allele, gene.symbol if gene is not None else ".", *(f"{x:.2f}" for x in ds), *map(str, dp)])


def record_outcome(w: RecordWork, readout: Readout, *, rows: bool = False,
                   options: OutcomeOptions | None = None) -> RecordOutcome:
    """INFO values, reason codes and (``rows``) TSV rows of a record whose deltas are in.

    The ``Number=A`` values of a scored ALT are its strongest entry's: the strand with the
    larger effect (ties: the first listed, ``+``), or with genes the gene with the larger
    (masked) effect (ties: the first by start).
    """
    opts = options or OutcomeOptions()
    score = SCORES[readout.head]
    numeric = numeric_fields(readout)
    scores, why, reasons, table = [], [], [], []
    values: list[list[object]] = [[] for _ in numeric]
    genes: list[str] = []
    spliceai: list[str] = []
    n_scored = 0
    for a in w.alts:
        if a.reason is not None:
            reasons.append(a.reason)
            scores.append(".")
            why.append(a.reason)
            genes.append(".")
            for v in values:
                v.append(None)
            if rows:
                table.append(_row(w, a, readout, None, None, None))
            continue
        n_scored += 1
        entries = _entries(a, readout, opts, w.record.start)
        g, s, d = max(entries, key=lambda e: e[2].effect)
        scores.append(score.info_value(a.allele, s, d, readout.codes))
        why.append(".")
        genes.append(g.symbol if g is not None else ".")
        for v, x in zip(values, score.numeric_values(s, d, readout.codes)):
            v.append(x)
        if opts.spliceai:
            spliceai += [_spliceai_value(a.allele, g, d, readout.codes) for g, _, d in entries]
        if rows:
            table += [_row(w, a, readout, g, s, d) for g, s, d in entries]
    info: dict[str, list] = {}
    if any(x != "." for x in scores):
        info[info_field(readout)] = scores
        for (name, _, _), v in zip(numeric, values):
            info[name] = v
        if opts.annotated:
            info[gene_field(readout)] = genes
    if spliceai:
        info[SPLICEAI_FIELD] = spliceai
    if any(x != "." for x in why):
        info[REASON_FIELD] = why
    return RecordOutcome(info=info, reasons=reasons, n_scored=n_scored, rows=table)


def _row(w: RecordWork, a: AltWork, readout: Readout, gene, strand: str | None, d) -> list[object]:
    """A TSV row: every strand's numbers without genes; with a gene only its strand's (masked)."""
    rec = w.record
    p = a.plan
    first = readout.strands[0]
    row: list[object] = [
        rec.chrom, rec.pos, rec.id or ".", rec.ref, a.allele, w.gchrom, a.reason or "scored",
        gene.symbol if gene is not None else None, strand,
        p.start if p else None, p.end if p else None,
        len(p.encodings[(-1, first)]) if p else None,
        len(p.encodings[(a.index, first)]) if p else None,
    ]
    score = SCORES[readout.head]
    for s in readout.strands:
        if gene is not None:
            dd = d if s == strand else None
        else:
            dd = a.result.get(s)
        for i in range(len(readout.labels)):
            row += score.row(dd, i)
    return row
