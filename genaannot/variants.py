"""Variant effect scoring, pure part: windows, allele checks, alt-track alignment, deltas.

Nothing here opens a file; sequences come through a ``fetch(start, end)`` callable and
predictions through :class:`genaannot.models.base.Prediction`.

Coordinates are 0-based half-open on the chromosome: a variant's REF allele occupies
``[start, end)`` (``start = POS - 1``; the conversion happens in :mod:`genaannot.io.vcf`).

Window policy
-------------
Each record gets one reference window ``[ws, we)`` around its REF allele, sized in
*tokens*: the largest symmetric flank such that the reference window and every ALT
window (REF replaced by ALT), on every strand that is scored, fit in the model's
``max_tokens`` content tokens. The window is shared by all ALTs of the record, so the
reference prediction is made once. Near a chromosome end the window is *shifted* inward
(the variant sits off-centre) rather than padded with ``N``: the model sees only real
sequence, which is what GENA models were trained on. A record is ``EDGE`` only when its
REF allele runs past the end of the FASTA sequence (common with partial genomes).

Alt-track alignment (SpliceAI convention, generalised)
------------------------------------------------------
The alt track has ``len(ALT) - len(REF)`` more positions than the ref track. It is mapped
onto reference coordinates before comparing:

- ``len(ALT) == len(REF)`` (SNV, MNP): position by position;
- ``len(ALT) < len(REF)`` (deletion, shrinking complex allele): the first ``len(ALT)``
  allele positions map one to one, the remaining REF positions are deleted and take 0;
- ``len(ALT) > len(REF)`` (insertion, growing complex allele): the first ``len(REF) - 1``
  allele positions map one to one, the rest of the ALT allele collapses onto the last REF
  position with its maximum.

For VCF-style anchored indels (``C>CA``, ``TG>T``) this is exactly SpliceAI's rule.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .stitch import paint_tokens, to_forward
from .windows import reverse_complement

if TYPE_CHECKING:
    from .predict import Prediction
    from .readout import Readout

__all__ = [
    "REASONS",
    "VariantWindow",
    "allele_reason",
    "genome_reason",
    "plan_variant_window",
    "plan_variant_windows",
    "WindowRequest",
    "align_alt",
    "TokenDelta",
    "SequenceDelta",
    "token_delta",
    "mask_token_delta",
    "sequence_delta",
    "Score",
    "TokenScore",
    "SequenceScore",
    "SCORES",
    "field_id",
]

#: reason codes written instead of a score, with their meaning (also the VCF header text)
REASONS: dict[str, str] = {
    "NO_CONTIG": "chromosome not in the FASTA (after chr/1 matching)",
    "SYMBOLIC": "symbolic (<...>), breakend, missing or '*' ALT allele",
    "BAD_ALLELE": "REF or ALT that is not a sequence of bases (ALT: A,C,G,T,N; REF: IUPAC letters)",
    "EDGE": "REF allele runs past the end of the FASTA sequence (or POS is 0)",
    "N_REGION": "REF allele overlaps N bases of the FASTA (assembly gap)",
    "REF_MISMATCH": "REF does not match the FASTA",
    "TOO_LONG": "allele too long for the model window with the requested --distance",
    "NO_GENE": "no gene of --annotation overlaps POS (--outside-genes reason)",
}

_DNA = frozenset("ACGTN")
#: IUPAC nucleotide letters: what a REF may hold (a FASTA may carry any of them)
_IUPAC = frozenset("ACGTUNRYSWKMBDHV")
#: VCF 4.x breakend notation: t[p[, t]p], ]p]t, [p[t (p = chrom:pos, chrom maybe <ctg>) and
#: the single breakends .t and t.
_BREAKEND = re.compile(r"[A-Za-z]+([\[\]])[^\[\]]+:\d+\1|([\[\]])[^\[\]]+:\d+\2[A-Za-z]+|\.[A-Za-z]+|[A-Za-z]+\.")


def allele_reason(ref: str, alt: str | None) -> str | None:
    """Reason an ALT cannot be scored from its alleles alone, or ``None``.

    ``SYMBOLIC``: a missing ALT (``None``, ``.``, empty), ``*``, ``<...>`` or breakend
    notation (VCF 4.x ``[``/``]`` forms, single breakends ``.G``/``G.``); ``BAD_ALLELE``:
    any other ALT with characters other than A, C, G, T, N (case-insensitive), a REF that is
    empty or holds characters other than IUPAC nucleotide letters (``.``, ``*``, ``Z``).
    Genome-dependent reasons come from :func:`genome_reason`.
    """
    if alt is None or alt in (".", "", "*") or (alt.startswith("<") and alt.endswith(">")) or _BREAKEND.fullmatch(alt):
        return "SYMBOLIC"
    if not _DNA.issuperset(alt.upper()):
        return "BAD_ALLELE"  # also malformed ones such as SpliceAI's test allele 'T/*'
    if ref.startswith("<") and ref.endswith(">"):
        return "SYMBOLIC"
    if not ref or not _IUPAC.issuperset(ref.upper()):
        return "BAD_ALLELE"  # not bases: no FASTA comparison could mean anything
    return None


def genome_reason(*, ref: str, start: int, chrom_len: int, genome_ref: str | None) -> str | None:
    """Reason from the genome: ``EDGE``, ``N_REGION`` or ``REF_MISMATCH``, else ``None``.

    ``genome_ref`` is the FASTA's ``[start, start + len(ref))`` (``None`` when off the end).
    """
    end = start + len(ref)
    if start < 0 or end > chrom_len or genome_ref is None:
        return "EDGE"
    g = genome_ref.upper()
    if "N" in g:
        return "N_REGION"
    if g != ref.upper():
        return "REF_MISMATCH"
    return None


@dataclass
class VariantWindow:
    """One record's reference window and the sequences to predict.

    Attributes
    ----------
    start, end : int
        0-based half-open reference window on the chromosome.
    ref_seq : str
        ``fetch(start, end)`` (length ``end - start``).
    alt_seqs : list of str
        One per ALT: ``ref_seq`` with the REF allele replaced.
    encodings : dict
        ``(allele_index, strand) -> Encoding``; ``allele_index`` -1 is the reference,
        0.. the ALTs; strand ``"-"`` encodes the reverse complement.
    """

    start: int
    end: int
    ref_seq: str
    alt_seqs: list[str]
    encodings: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return max(len(e) for e in self.encodings.values())


def _place(start: int, end: int, flank: int, chrom_len: int) -> tuple[int, int]:
    """``[start - flank, end + flank)`` shifted inward at chromosome ends, clipped to it."""
    ws, we = start - flank, end + flank
    if ws < 0:
        we, ws = we - ws, 0
    if we > chrom_len:
        ws, we = ws - (we - chrom_len), chrom_len
    return max(ws, 0), we


@dataclass(frozen=True)
class WindowRequest:
    """One variant to place a window around (see :func:`plan_variant_windows`).

    Attributes
    ----------
    fetch : callable
        ``fetch(start, end) -> str``: reference letters of the variant's chromosome.
    chrom_len : int
    start, end : int
        0-based half-open REF allele.
    alts : sequence of str
        ALT alleles that must fit the same window.
    distance : int
        bp to keep on both sides of the REF allele (or up to the chromosome end).
    """

    fetch: Callable[[int, int], str]
    chrom_len: int
    start: int
    end: int
    alts: Sequence[str]
    distance: int = 0


def plan_variant_window(
    *,
    fetch: Callable[[int, int], str],
    chrom_len: int,
    start: int,
    end: int,
    alts: Sequence[str],
    tokenizer,
    max_tokens: int,
    distance: int,
    strands: Sequence[str] = ("+",),
    max_rounds: int = 14,
) -> VariantWindow | None:
    """One variant's window; see :func:`plan_variant_windows`."""
    req = WindowRequest(fetch=fetch, chrom_len=chrom_len, start=start, end=end, alts=alts, distance=distance)
    return plan_variant_windows([req], tokenizer=tokenizer, max_tokens=max_tokens, strands=strands, max_rounds=max_rounds)[0]


def plan_variant_windows(
    requests: Sequence[WindowRequest],
    *,
    tokenizer,
    max_tokens: int,
    strands: Sequence[str] = ("+",),
    max_rounds: int = 14,
) -> list[VariantWindow | None]:
    """For each variant, the window around ``[start, end)`` (the same number of bp on both
    sides, shifted inward at chromosome ends) whose ref and alt inputs, on every strand,
    fill ``max_tokens`` as far as possible.

    The flank is chosen on one tokenisation of the plus-strand reference around the
    variant (token counts of candidate windows read off its spans), aiming at
    ``max_tokens`` less a small slack (none for 1-bp tokenizers, where the count is exact
    and the window is the largest that fits), then checked by tokenising the final inputs,
    each on its own; an overflow shrinks it. All variants' sequences go to the tokenizer
    in one batch per round (Hugging Face tokenizers spread a batch over the CPU cores).
    This costs about one context and one final tokenisation per variant instead of a
    search over full tokenisations (a few variants that fail it get that search).

    Returns
    -------
    list of VariantWindow or None
        Per request; ``None`` (reason ``TOO_LONG``) when no window fits while keeping
        ``distance`` bp (or up to the chromosome end) on both sides of the REF allele.
    """
    longest = int(getattr(tokenizer, "max_token_bp", 1))
    exact = longest <= 1  # one token per base: counts are bp
    slack = 0 if exact else max(4, max_tokens // 64)
    target = max_tokens - slack
    span = max(1, min(longest, 9))
    n = len(requests)
    outer = [max(0, (max_tokens * span - (r.end - r.start)) // 2 + (0 if exact else 64)) for r in requests]
    flank: list[int | None] = [None] * n
    bp_tok = [1.0] * n
    todo = list(range(n))
    for _ in range(5):  # contexts; wider while the best flank reaches the context's edge
        if not todo:
            break
        bounds = [_place(requests[i].start, requests[i].end, outer[i], requests[i].chrom_len) for i in todo]
        encs = tokenizer.encode_batch([requests[i].fetch(cs, ce) for i, (cs, ce) in zip(todo, bounds)])
        again = []
        for i, (cs, ce), ctx in zip(todo, bounds, encs):
            r = requests[i]
            if len(ctx) == 0:
                continue
            bp_tok[i] = 1.0 if exact else (ce - cs) / len(ctx)
            grow = max([len(a) - (r.end - r.start) for a in r.alts] + [0])  # bp the longest ALT adds
            extra = math.ceil(grow / bp_tok[i]) + (0 if exact or grow == 0 else 2)
            starts, ends = ctx.spans[:, 0] + cs, ctx.spans[:, 1] + cs
            lo, hi = -1, outer[i] + 1  # fits at lo (or lo = -1), not at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                ws, we = _place(r.start, r.end, mid, r.chrom_len)
                lo, hi = (mid, hi) if _count_tokens(starts, ends, ws, we) + extra <= target else (lo, mid)
            flank[i] = max(lo, 0)
            if lo >= outer[i] and not (cs == 0 and ce == r.chrom_len):
                outer[i] *= 2
                again.append(i)
        todo = again
    plans: list[VariantWindow | None] = [None] * n
    todo = [i for i in range(n) if flank[i] is not None]
    for _ in range(4):  # the inputs themselves, each tokenised on its own
        if not todo:
            break
        staged = [_stage(requests[i].fetch, *_place(requests[i].start, requests[i].end, flank[i], requests[i].chrom_len),
                         requests[i].start, requests[i].end, requests[i].alts, strands) for i in todo]
        encs = iter(tokenizer.encode_batch([q for _, seqs, _ in staged for q in seqs]))
        again = []
        for i, (plan, _, keys) in zip(todo, staged):
            plan.encodings = {k: next(encs) for k in keys}
            over = plan.n_tokens - max_tokens
            if over <= 0:
                plans[i] = plan
            elif flank[i] > 0:
                flank[i] = max(0, flank[i] - max(1, math.ceil((over + slack / 2) * bp_tok[i] / 2)))
                again.append(i)
        todo = again
    out: list[VariantWindow | None] = []
    for r, plan in zip(requests, plans):
        if plan is None:  # pathological sequence: search over full tokenisations
            plan = _plan_by_search(fetch=r.fetch, chrom_len=r.chrom_len, start=r.start, end=r.end, alts=r.alts,
                                   tokenizer=tokenizer, max_tokens=max_tokens, strands=strands, max_rounds=max_rounds)
        if plan is not None and (plan.start > r.start - min(r.distance, r.start)
                                 or plan.end < r.end + min(r.distance, r.chrom_len - r.end)):
            plan = None
        out.append(plan)
    return out


def _count_tokens(starts: np.ndarray, ends: np.ndarray, ws: int, we: int) -> int:
    """Tokens of ``[ws, we)`` estimated from a longer tokenisation's spans: those wholly
    inside, plus one for each cut token at either end."""
    i0 = int(np.searchsorted(starts, ws, side="left"))
    i1 = int(np.searchsorted(ends, we, side="right"))
    k = max(0, i1 - i0)
    k += i0 > 0 and ends[i0 - 1] > ws
    k += i1 < len(starts) and starts[i1] < we
    return k


def _stage(fetch, ws, we, start, end, alts, strands) -> tuple[VariantWindow, list[str], list[tuple]]:
    """A window's plan without encodings, and the sequences to encode with their keys."""
    ref_seq = fetch(ws, we)
    a, b = start - ws, end - ws
    alt_seqs = [ref_seq[:a] + alt + ref_seq[b:] for alt in alts]
    seqs, keys = [], []
    for s in strands:
        for i, seq in enumerate([ref_seq, *alt_seqs]):
            seqs.append(seq if s == "+" else reverse_complement(seq))
            keys.append((i - 1, s))
    return VariantWindow(ws, we, ref_seq, alt_seqs), seqs, keys


def _plan_by_search(*, fetch, chrom_len, start, end, alts, tokenizer, max_tokens, strands,
                    max_rounds) -> VariantWindow | None:
    """Largest feasible flank by a secant/bisection search over full tokenisations."""
    bp_guess = max(1, min(int(tokenizer.max_token_bp), 16))
    lo, hi = -1, None  # largest feasible flank seen / smallest infeasible flank seen
    best: VariantWindow | None = None
    flank = max(0, (max_tokens * bp_guess - (end - start)) // 2)
    for _ in range(max_rounds):
        ws, we = _place(start, end, flank, chrom_len)
        plan = _encode(fetch, ws, we, start, end, alts, tokenizer, strands)
        n = plan.n_tokens
        whole = ws == 0 and we == chrom_len
        if n <= max_tokens:
            lo, best = flank, plan
            if whole or n >= max_tokens - max(1, max_tokens // 100):
                break
            # grow by the estimated bp of the unused tokens, never up to a known failure
            bp_per_tok = max(1.0, (we - ws) / max(n, 1))
            step = max(1, int((max_tokens - n) * bp_per_tok * 0.45))
            nxt = flank + step
        else:
            hi = flank
            nxt = int(flank * (max_tokens * 0.98) / n) - 1
        if hi is not None:
            nxt = min(nxt, hi - 1)
            if nxt <= lo:
                nxt = (lo + hi) // 2 if hi - lo > 1 else lo
        if nxt < 0 or (hi is not None and hi - lo <= 1):
            break
        if nxt == flank:
            break
        flank = nxt
    return best


def _encode(fetch, ws, we, start, end, alts, tokenizer, strands) -> VariantWindow:
    plan, seqs, keys = _stage(fetch, ws, we, start, end, alts, strands)
    plan.encodings = dict(zip(keys, tokenizer.encode_batch(seqs)))
    return plan


def align_alt(alt_track: np.ndarray, *, offset: int, ref_len: int, alt_len: int) -> np.ndarray:
    """Map an alt-window track onto reference-window coordinates (see module docstring).

    Parameters
    ----------
    alt_track : [n_alt_bp, n_labels]
    offset : int
        Position of the allele in the window.

    Returns
    -------
    [n_alt_bp - alt_len + ref_len, n_labels]
    """
    o = offset
    if alt_len == ref_len:
        return alt_track
    if alt_len < ref_len:
        gap = np.zeros((ref_len - alt_len, alt_track.shape[1]), dtype=alt_track.dtype)
        return np.concatenate([alt_track[: o + alt_len], gap, alt_track[o + alt_len :]])
    keep = o + ref_len - 1
    collapsed = alt_track[keep : o + alt_len].max(axis=0, keepdims=True)
    return np.concatenate([alt_track[:keep], collapsed, alt_track[o + alt_len :]])


@dataclass
class TokenDelta:
    """Per-label gains and losses within ±distance (one strand).

    Attributes
    ----------
    gain, loss : float32 [n_labels]
        ``max(alt - ref)`` and ``max(ref - alt)`` over the scored positions.
    gain_pos, loss_pos : int64 [n_labels]
        Their positions relative to the variant's first REF base (VCF POS), in bp.
    ref_at_gain, alt_at_gain, ref_at_loss, alt_at_loss : float32 [n_labels]
        The probabilities behind each delta.
    """

    gain: np.ndarray
    loss: np.ndarray
    gain_pos: np.ndarray
    loss_pos: np.ndarray
    ref_at_gain: np.ndarray
    alt_at_gain: np.ndarray
    ref_at_loss: np.ndarray
    alt_at_loss: np.ndarray

    @property
    def effect(self) -> float:
        return float(max(self.gain.max(initial=0.0), self.loss.max(initial=0.0)))


def token_delta(
    ref_track: np.ndarray, alt_aligned: np.ndarray, *, offset: int, ref_len: int, distance: int
) -> TokenDelta:
    """Gains/losses over ``[offset - distance, offset + ref_len + distance)`` of the window.

    Parameters
    ----------
    ref_track, alt_aligned : float32 [n_bp, n_labels]
        Reference track and alt track aligned with :func:`align_alt`.
    offset : int
        Position of the REF allele in the window. For SNVs and insertions the region is
        SpliceAI's POS±distance; for deletions it extends ``distance`` past the deleted bases.
    """
    lo = max(0, offset - distance)
    hi = min(ref_track.shape[0], offset + ref_len + distance)
    r = ref_track[lo:hi]
    a = alt_aligned[lo:hi]
    d = a - r
    gi = d.argmax(axis=0)
    li = d.argmin(axis=0)
    cols = np.arange(d.shape[1])
    return TokenDelta(
        gain=d[gi, cols].astype(np.float32),
        loss=(-d[li, cols]).astype(np.float32),
        gain_pos=(gi + lo - offset).astype(np.int64),
        loss_pos=(li + lo - offset).astype(np.int64),
        ref_at_gain=r[gi, cols],
        alt_at_gain=a[gi, cols],
        ref_at_loss=r[li, cols],
        alt_at_loss=a[li, cols],
    )


def mask_token_delta(d: TokenDelta, *, start: int, sites: Sequence[frozenset[int] | None]) -> TokenDelta:
    """SpliceAI ``-M 1`` by site kind: a gain at an annotated site and a loss at a position
    that is not one are set to 0 (positions kept).

    Parameters
    ----------
    d
        Deltas of one strand, ``[n_labels]`` each.
    start
        0-based position of ``POS`` (``gain_pos``/``loss_pos`` are relative to it).
    sites
        Per label, the annotated sites of that kind (forward-strand 0-based), or ``None``
        to leave the label unmasked.
    """
    gain, loss = d.gain.copy(), d.loss.copy()
    for i, ss in enumerate(sites):
        if ss is None:
            continue
        if start + int(d.gain_pos[i]) in ss:
            gain[i] = 0.0
        if start + int(d.loss_pos[i]) not in ss:
            loss[i] = 0.0
    return dataclasses.replace(d, gain=gain, loss=loss)


@dataclass
class SequenceDelta:
    """Per-label window-level change (one strand).

    Attributes
    ----------
    ref, alt, diff : float32 [n_labels]
        Activated outputs and ``alt - ref``.
    log_odds : float32 [n_labels]
        ``logit(alt) - logit(ref)`` (probabilities clipped to [1e-6, 1 - 1e-6]); NaN for
        identity (regression) outputs.
    """

    ref: np.ndarray
    alt: np.ndarray
    diff: np.ndarray
    log_odds: np.ndarray

    @property
    def effect(self) -> float:
        return float(np.abs(self.diff).max(initial=0.0))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def sequence_delta(ref_probs: np.ndarray, alt_probs: np.ndarray, *, activation: str) -> SequenceDelta:
    """Compare activated sequence-head outputs ``[n_labels]`` of the ref and alt windows."""
    diff = (alt_probs - ref_probs).astype(np.float32)
    if activation == "identity":
        lo = np.full_like(diff, math.nan)
    else:
        lo = (_logit(alt_probs) - _logit(ref_probs)).astype(np.float32)
    return SequenceDelta(ref_probs.astype(np.float32), alt_probs.astype(np.float32), diff, lo)


def _fmt(x: float) -> str:
    return "." if x != x else f"{round(x, 4) + 0.0:.4f}"  # + 0.0: no "-0.0000"


def _round(x) -> float:
    return round(float(x), 4) + 0.0


def field_id(name: str) -> str:
    """``name`` made usable in a VCF INFO id (letters, digits, ``_`` and ``.``)."""
    return re.sub(r"[^0-9A-Za-z_.]", "_", name)


class Score:
    """How one kind of head is scored, described and written (a :data:`SCORES` entry).

    ``pipeline.score`` picks the entry of the model's head once and never branches on the
    head itself.
    """

    name = ""
    #: the window must keep ``distance`` bp on both sides of the REF allele
    needs_flanks = False

    def delta(self, ref: Prediction, alt: Prediction, *, window: VariantWindow, start: int, ref_len: int,
              alt_len: int, strand: str, readout: Readout, distance: int,
              region_ref_len: int | None = None) -> TokenDelta | SequenceDelta:
        """Deltas of one ALT on one strand; token heads search ``distance`` bp around the first
        ``region_ref_len`` REF bases (default all of them)."""
        raise NotImplementedError

    def subfields(self, codes: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def describe(self, *, activation: str, distance: int) -> str:
        raise NotImplementedError

    def info_value(self, allele: str, strand: str, d: TokenDelta | SequenceDelta, codes: Sequence[str]) -> str:
        raise NotImplementedError

    def numeric(self, codes: Sequence[str]) -> list[tuple[str, str, str]]:
        """Per-ALT INFO fields besides the pipe-separated one: ``(suffix, VCF type, meaning)``;
        written as ``GENA_<TASK>_<suffix>`` with ``Number=A`` so ``bcftools filter`` can compare them."""
        raise NotImplementedError

    def numeric_values(self, strand: str, d: TokenDelta | SequenceDelta, codes: Sequence[str]) -> list[object]:
        """Values of :meth:`numeric` for one ALT (floats rounded to 4 decimals)."""
        raise NotImplementedError

    def columns(self) -> list[str]:
        """TSV column suffixes per label and strand."""
        raise NotImplementedError

    def row(self, d: TokenDelta | SequenceDelta | None, i: int) -> list[object]:
        """TSV values of label ``i`` (``None`` values for an unscored ALT)."""
        raise NotImplementedError


class TokenScore(Score):
    """Token heads: per-base ref and alt tracks (alt aligned on reference coordinates),
    the largest gain and loss of each label within ``distance`` bp (SpliceAI's DS/DP)."""

    name = "token"
    needs_flanks = True

    def delta(self, ref, alt, *, window, start, ref_len, alt_len, strand, readout, distance, region_ref_len=None):
        n_ref = window.end - window.start
        offset = start - window.start
        rt = to_forward(paint_tokens(readout.values(ref.logits), ref.spans, length=n_ref), strand)
        at = to_forward(paint_tokens(readout.values(alt.logits), alt.spans, length=n_ref - ref_len + alt_len), strand)
        aligned = align_alt(at, offset=offset, ref_len=ref_len, alt_len=alt_len)
        return token_delta(rt, aligned, offset=offset, ref_len=ref_len if region_ref_len is None else region_ref_len,
                           distance=distance)

    def subfields(self, codes):
        ds = [f"DS_{c}{k}" for c in codes for k in "GL"]
        dp = [f"DP_{c}{k}" for c in codes for k in "GL"]
        return ["ALLELE", "STRAND", *ds, *dp]

    def describe(self, *, activation, distance):
        return (
            f"maximum gain (G) and loss (L) of each output's probability (activation {activation}) "
            f"within {distance} bp of the REF allele, alt track aligned to reference coordinates "
            "(deleted bases 0, inserted bases collapsed to their maximum); DP: offset of that "
            "position from POS in bp; STRAND: the strand with the larger effect"
        )

    def numeric(self, codes):
        out = [("STRAND", "String", "strand scored (the one with the larger effect, or the gene's)")]
        out += [(f"DS_{field_id(c)}{k}", "Float", f"delta score, {c} {'gain' if k == 'G' else 'loss'}")
                for c in codes for k in "GL"]
        out += [(f"DP_{field_id(c)}{k}", "Integer", f"position of DS_{field_id(c)}{k} relative to POS in bp")
                for c in codes for k in "GL"]
        out.append(("DS_MAX", "Float", "largest of the DS values"))
        return out

    def numeric_values(self, strand, d, codes):
        ds = [_round(v) for i in range(len(codes)) for v in (d.gain[i], d.loss[i])]
        dp = [int(v) for i in range(len(codes)) for v in (d.gain_pos[i], d.loss_pos[i])]
        return [strand, *ds, *dp, max(ds)]

    def info_value(self, allele, strand, d, codes):
        ds = [_fmt(float(v)) for i in range(len(codes)) for v in (d.gain[i], d.loss[i])]
        dp = [str(int(v)) for i in range(len(codes)) for v in (d.gain_pos[i], d.loss_pos[i])]
        return "|".join([allele, strand, *ds, *dp])

    def columns(self):
        return ["gain", "gain_pos", "ref_at_gain", "alt_at_gain", "loss", "loss_pos", "ref_at_loss", "alt_at_loss"]

    def row(self, d, i):
        if d is None:
            return [None] * 8
        return [float(d.gain[i]), int(d.gain_pos[i]), float(d.ref_at_gain[i]), float(d.alt_at_gain[i]),
                float(d.loss[i]), int(d.loss_pos[i]), float(d.ref_at_loss[i]), float(d.alt_at_loss[i])]


class SequenceScore(Score):
    """Sequence heads: the window-level outputs of the ref and alt windows compared."""

    name = "sequence"

    def delta(self, ref, alt, *, window, start, ref_len, alt_len, strand, readout, distance, region_ref_len=None):
        return sequence_delta(readout.values(ref.logits), readout.values(alt.logits), activation=readout.activation)

    def subfields(self, codes):
        return ["ALLELE", "STRAND", "LABEL", "REF", "ALT", "DIFF", "LOGODDS", "MEAN_ABS_DIFF"]

    def describe(self, *, activation, distance):
        return (
            "window-level output of the label with the largest |ALT-REF| (REF, ALT probabilities, "
            "DIFF = ALT-REF, LOGODDS = logit(ALT)-logit(REF)) and the mean |DIFF| over all scored labels; "
            "STRAND: the strand with the larger effect"
        )

    def numeric(self, codes):
        return [("STRAND", "String", "strand scored (the one with the larger effect, or the gene's)"),
                ("LABEL", "String", "output with the largest |ALT-REF|"),
                ("REF", "Float", "its output for the reference window"),
                ("ALT", "Float", "its output for the ALT window"),
                ("DIFF", "Float", "ALT - REF"),
                ("LOGODDS", "Float", "logit(ALT) - logit(REF) (missing for regression outputs)"),
                ("MEAN_ABS_DIFF", "Float", "mean |ALT - REF| over all scored outputs")]

    def numeric_values(self, strand, d, codes):
        i = int(np.abs(d.diff).argmax())
        lo = float(d.log_odds[i])
        return [strand, codes[i], _round(d.ref[i]), _round(d.alt[i]), _round(d.diff[i]),
                None if lo != lo else _round(lo), _round(np.abs(d.diff).mean())]

    def info_value(self, allele, strand, d, codes):
        i = int(np.abs(d.diff).argmax())
        return "|".join([
            allele, strand, codes[i], _fmt(float(d.ref[i])), _fmt(float(d.alt[i])),
            _fmt(float(d.diff[i])), _fmt(float(d.log_odds[i])), _fmt(float(np.abs(d.diff).mean())),
        ])

    def columns(self):
        return ["ref", "alt", "diff", "logodds"]

    def row(self, d, i):
        if d is None:
            return [None] * 4
        return [float(d.ref[i]), float(d.alt[i]), float(d.diff[i]), float(d.log_odds[i])]


#: head -> how it is scored; token heads compare bp tracks, sequence heads window outputs
SCORES: dict[str, Score] = {"token": TokenScore(), "sequence": SequenceScore()}
