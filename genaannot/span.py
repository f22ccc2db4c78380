"""One prediction path for a span of a chromosome: plan → predict → stitch → strand mapping.

Coordinates are 0-based, half-open, on the forward strand of the chromosome.

``scan`` runs it per work unit (the model in the device process; planning and stitching in
worker processes, or without them in the device process, stitching on a writer thread);
``evaluate`` runs it over the same layout and units (:func:`region_tracks`), so the
thresholds it chooses hold for scans made with the same settings; the invariants (single-window identity, exact coverage under centre stitching,
minus strand = reverse complement read backwards) hold for both because both go through
these three functions:

:func:`plan_span`
    Read a span (a :class:`~genaannot.windows.Unit`: the bases to write, inside a
    segment without long N runs) plus a halo, tokenise each strand once and keep the
    windows that contribute to the span (pure but for ``fetch``; picklable result).
:func:`predict_span`
    Both strands' windows in one length-sorted stream through a
    :class:`~genaannot.predict.Predictor` (the model's ``predict_encoded``); only the read
    channels, and under centre stitching only the owned token rows, come back.
:func:`stitch_span`
    Activate, map the minus strand back to forward coordinates, stitch: per strand a
    float32 ``[span length, n_labels]`` array (NaN = no data).

Nothing here opens a file; the genome comes in as ``fetch(start, end) -> str``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .predict import NonFiniteOutputError, PackedOutput, Prediction, WindowsJob
from .regions import Interval
from .stitch import WindowOutput, center_dense, center_pieces, clip_pieces, rc_to_forward, stitch
from .tokenize import SequenceStats
from .windows import (
    GenomeReader,
    ScanLayout,
    Unit,
    WindowPlan,
    center_cuts,
    default_unit_bp,
    halo_bp_per_token,
    layout_scan,
    plan_windows,
    reverse_complement,
    reverse_plan,
)

if TYPE_CHECKING:
    from .predict import Prediction, Predictor, WindowsPredictor
    from .readout import Readout
    from .tokenize import DNATokenizer, Encoding, LengthEncoding

__all__ = ["StrandPlan", "SpanWork", "PackedPredictions", "plan_span", "predict_span", "predict_span_stream", "stitch_span", "span_pieces",
           "span_tracks", "region_tracks", "scan_layout", "SpanTimer"]


@dataclass
class StrandPlan:
    """One strand of a span, ready for the model (picklable: made in a worker process).

    Coordinates are forward-strand and relative to this strand's context
    ``[cs, cs + length)``; the span is ``[u0, u1)`` in them. ``plan`` holds only the windows
    that contribute to the span (their tokens as the model sees them: the reverse
    complement's for ``-``); ``own`` ``[n, 2]`` is what each owns under centre stitching
    (``None`` for mean stitching) and ``rows`` ``[n, 2]`` the token rows each contributes
    (centre stitching, token head; ``None``: all rows).
    """

    length: int
    u0: int
    u1: int
    plan: WindowPlan
    own: np.ndarray | None
    rows: np.ndarray | None


@dataclass
class SpanWork:
    """Host work for one span: a :class:`StrandPlan` per read strand, and letter counts.

    ``meta``: ``windows``, ``bp``, ``lowercase``, ``iupac`` (letter counts), ``n_scanned``
    (N bases inside the span that went to the model), ``chrom``, ``start``, ``end``.
    """

    unit: Unit
    strands: dict[str, StrandPlan]
    meta: dict[str, Any] = field(default_factory=dict)
    #: the windows' tokens as the model takes them (:meth:`with_inputs`), or None
    inputs: tuple[Encoding | LengthEncoding, np.ndarray, np.ndarray | None] | None = None

    def compact(self) -> SpanWork:
        """The same work with each strand's tokenisation stored as int32 where it fits (a
        unit's ids and spans always do): half the bytes of a planned unit while it waits
        for the model or travels from a worker process. For the packed paths, which read
        the tokens as row ranges and collate them into int64 batches; windows of the
        listed path (:attr:`WindowPlan.encs`) would carry int32 spans."""
        from .tokenize import Encoding

        def small(t: Encoding) -> Encoding:
            if t.ids.dtype == np.int32 or (len(t.spans) and int(t.spans[-1, 1]) >= 2**31):
                return t
            return Encoding(t.ids.astype(np.int32), t.spans.astype(np.int32))

        strands = {s: replace(sp, plan=replace(sp.plan, tokens=small(sp.plan.tokens))) for s, sp in self.strands.items()}
        return SpanWork(self.unit, strands, self.meta, self.inputs)

    def with_inputs(self, readout: Readout) -> SpanWork:
        """The same work with its windows' tokens as the packed model paths take them (the
        strands' tokenisations end to end, the windows' row ranges in them ``[n, 2]``, their
        kept rows or None) in :attr:`inputs`, and without the strands' own tokens.

        Made where the unit is planned (a worker process), so that the process feeding the
        device neither copies the strands' tokens together nor holds them twice while it does;
        the tokens are held as their lengths (:class:`~genaannot.tokenize.LengthEncoding`, 5
        bytes a token instead of 12) while the unit waits for the model and runs.
        """
        if self.inputs is not None:
            return self
        from .tokenize import LengthEncoding

        tokens, rng, keep = _packed_inputs(self, readout)
        work = self.without_tokens()
        work.inputs = (LengthEncoding.of(tokens), rng, keep)
        return work

    def without_tokens(self) -> SpanWork:
        """The same work without the strands' tokenisations (the bulk of a planned unit)
        and without :attr:`inputs`: all that :func:`stitch_span` and :func:`span_pieces` need
        once the predictions are made, so that units waiting to be written hold little memory."""
        from .tokenize import Encoding

        none = Encoding(np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
        strands = {s: StrandPlan(sp.length, sp.u0, sp.u1, WindowPlan(sp.plan.starts, sp.plan.ends, none,
                                                                     np.zeros((len(sp.plan), 2), dtype=np.int64)),
                                 sp.own, sp.rows)
                   for s, sp in self.strands.items()}
        return SpanWork(self.unit, strands, self.meta)


def _token_rows(spans: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """Rows of ``spans`` (ascending, contiguous) that overlap ``[lo, hi)``."""
    return int(np.searchsorted(spans[:, 1], lo, side="right")), int(np.searchsorted(spans[:, 0], hi, side="left"))


def _plan_strand(unit: Unit, strand: str, *, fetch: Callable[[int, int], str], tokenizer: DNATokenizer,
                 window_tokens: int, overlap: float, stitch_mode: str, head: str,
                 part: tuple[int, int] | None = None, compact: bool = False) -> StrandPlan:
    """Plan one strand of ``unit``: windows over the unit and a halo, those that matter kept
    (for the bases ``part`` of the unit only, when given).

    The halo starts at one window of ``max_token_bp``-bp tokens (at most 8) and is doubled
    until the windows anchored at an artificial context edge (the first one, which starts
    there, and the last, cut short there) do not reach into the unit, so the result
    depends only on the genome, the tokenizer and the settings — not on the other strand.
    """
    halo = window_tokens * halo_bp_per_token(tokenizer.max_token_bp)
    while True:
        cs, ce = max(unit.seg_start, unit.start - halo), min(unit.seg_end, unit.end + halo)
        seq = fetch(cs, ce)
        n = len(seq)
        if strand == "+":
            plan = plan_windows(seq, tokenizer=tokenizer, window_tokens=window_tokens, overlap=overlap,
                                compact=compact)
        else:
            plan = reverse_plan(plan_windows(reverse_complement(seq), tokenizer=tokenizer,
                                             window_tokens=window_tokens, overlap=overlap, compact=compact), n)
        u0, u1 = unit.start - cs, unit.end - cs
        if (cs == unit.seg_start or plan.ends[0] <= u0) and (ce == unit.seg_end or plan.starts[-1] >= u1):
            break
        halo *= 2
    if part is not None:  # the unit's windows, those of the part's bases kept
        u0, u1 = part[0] - cs, part[1] - cs
    own_all = center_cuts(plan.starts, plan.ends, lo=0, hi=n, ties="later" if strand == "+" else "earlier")
    if stitch_mode == "center":
        sel = np.flatnonzero((own_all[:, 1] > own_all[:, 0]) & (own_all[:, 1] > u0) & (own_all[:, 0] < u1))
        own = own_all[sel]
    else:
        sel = np.flatnonzero((plan.ends > u0) & (plan.starts < u1))
        own = None
    kept = plan.subset(sel)
    rows = None
    if own is not None and head == "token":
        rows = _owned_rows(kept, own, minus=strand == "-")
    return StrandPlan(n, u0, u1, kept, own, rows)


def _owned_rows(kept: WindowPlan, own: np.ndarray, *, minus: bool) -> np.ndarray:
    """int64 ``[n_windows, 2]``: per window of ``kept``, its token rows that overlap its owned interval ``own[k]``
    (:func:`_token_rows` of the window's spans; all windows at once: the windows' tokens are
    rows ``ranges[k]`` of one ascending, contiguous tokenisation)."""
    if not len(kept):
        return np.zeros((0, 2), dtype=np.int64)
    a = kept.starts.astype(np.int64)
    length = kept.ends.astype(np.int64) - a
    lo, hi = own[:, 0] - a, own[:, 1] - a
    if minus:  # owned bases in the reverse complement's coordinates
        lo, hi = length - hi, length - lo
    t0, t1 = kept.ranges[:, 0].astype(np.int64), kept.ranges[:, 1].astype(np.int64)
    spans = kept.tokens.spans
    if not len(spans):
        return np.zeros((len(kept), 2), dtype=np.int64)
    base = spans[np.minimum(t0, len(spans) - 1), 0]  # a window's spans count from its first token
    width = t1 - t0
    r0 = np.clip(np.searchsorted(spans[:, 1], lo + base, side="right") - t0, 0, width)
    r1 = np.clip(np.searchsorted(spans[:, 0], hi + base, side="left") - t0, 0, width)
    return np.stack([r0, r1], axis=1).astype(np.int64)


def plan_span(
    unit: Unit,
    *,
    fetch: Callable[[int, int], str],
    tokenizer: DNATokenizer,
    readout: Readout,
    overlap: float,
    stitch_mode: str,
    part: tuple[int, int] | None = None,
    compact: bool = False,
) -> SpanWork:
    """Read ``unit`` (± a halo, never past its segment) and plan its windows on each read strand.

    Parameters
    ----------
    fetch : callable ``(start, end) -> str``
        Letters of the unit's chromosome (any case).
    readout : Readout
        Strands, head and window size (``window_tokens``).
    overlap : float
        Fraction of a window shared with the next, in ``[0, 1)``.
    stitch_mode : "center" | "mean"
    part : (start, end), optional
        Chromosome coordinates inside ``unit``: plan the unit's windows exactly as for the
        whole unit, but keep only those that give values to ``[start, end)``; the work's
        ``unit`` is then that stretch (same index and segment), so :func:`stitch_span`
        returns its bases only, with the values the whole unit would have there.
    compact : bool
        The work of :meth:`SpanWork.compact` (int32 tokens, for the packed model paths),
        tokenised so from the start: a tokenizer with a token per letter then never makes
        the int64 arrays.
    """
    if part is not None:
        if not unit.start <= part[0] < part[1] <= unit.end:
            raise ValueError(f"part {part} is not inside unit {unit.start}-{unit.end}")
    fetched: dict[tuple[int, int], str] = {}

    def cached(cs: int, ce: int) -> str:  # both strands usually plan over the same context
        if (cs, ce) not in fetched:
            fetched[(cs, ce)] = fetch(cs, ce)
        return fetched[(cs, ce)]

    work = {strand: _plan_strand(unit, strand, fetch=cached, tokenizer=tokenizer, window_tokens=readout.window_tokens,
                                 overlap=overlap, stitch_mode=stitch_mode, head=readout.head, part=part,
                                 compact=compact)
            for strand in readout.strands}
    if part is not None:
        unit = Unit(unit.index, unit.chrom, part[0], part[1], unit.seg_start, unit.seg_end)
    stats = SequenceStats()
    (cs, _ce), context = next(iter(fetched.items()))  # any strand's context holds the unit
    useq = context[unit.start - cs : unit.end - cs]
    stats.update(useq)
    meta = {"windows": sum(len(w.plan) for w in work.values()), "bp": int(unit.end - unit.start),
            "lowercase": stats.lowercase, "iupac": dict(stats.iupac),
            "n_scanned": useq.count("N") + useq.count("n"), "chrom": unit.chrom, "start": unit.start,
            "end": unit.end}
    return SpanWork(unit, work, meta)


class SpanTimer:
    """Seconds spent inside the predictor (the model's share of a run's time)."""

    def __init__(self) -> None:
        self.seconds = 0.0


def predict_span(
    work: SpanWork,
    *,
    predictor: Predictor | None = None,
    windows_predictor: WindowsPredictor | None = None,
    readout: Readout,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
    timer: SpanTimer | None = None,
) -> dict[str, list[Prediction]] | PackedPredictions:
    """Predictions of every kept window of ``work``, per strand, in window order.

    Both strands' windows go through the model as one stream (it sorts them by length).
    With ``predictor`` (a model's ``predict_encoded``, or a test's stand-in) the result is
    a list of :class:`~genaannot.predict.Prediction` per strand; with ``windows_predictor``
    (a model's ``predict_windows``: no object per window, the scan's path) the same values
    come :class:`PackedPredictions`. ``progress`` is called with whole base pairs as batches
    finish, adding up to the span's length exactly.
    """
    if (predictor is None) == (windows_predictor is None):
        raise ValueError("give predictor or windows_predictor")
    on_batch = _progress_on_batch(work, readout, progress)
    t = time.perf_counter()
    try:
        if windows_predictor is not None:
            out = _predict_packed(work, windows_predictor, readout=readout, batch_size=batch_size, on_batch=on_batch)
        else:
            out = _predict_listed(work, predictor, readout=readout, batch_size=batch_size, on_batch=on_batch)
    except NonFiniteOutputError as err:
        raise err.located(_window_where(work, readout, err.index)) from None
    if timer is not None:
        timer.seconds += time.perf_counter() - t
    return out


def _progress_on_batch(work: SpanWork, readout: Readout,
                       progress: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """The ``on_batch`` callback that reports ``work``'s bp to ``progress`` as its windows are
    done (whole bp, adding up to the unit's length exactly; at once for a unit without windows)."""
    if progress is None:
        return None
    n_windows = sum(len(work.strands[s].plan) for s in readout.strands)
    unit_bp = work.unit.end - work.unit.start
    if not n_windows:
        progress(unit_bp)
        return None
    done = {"windows": 0, "bp": 0}

    def on_batch(k: int) -> None:  # whole bp, so a bar ends exactly at the total
        done["windows"] += k
        bp = unit_bp * min(done["windows"], n_windows) // n_windows
        progress(bp - done["bp"])
        done["bp"] = bp
    return on_batch


def predict_span_stream(
    works: Iterable[SpanWork],
    *,
    windows_stream: Callable[..., Iterator[tuple[Any, PackedOutput]]],
    readout: Readout,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
    timer: SpanTimer | None = None,
) -> Iterator[tuple[SpanWork, PackedPredictions]]:
    """:func:`predict_span`'s packed path for many units as one stream of batches
    (``windows_stream``: a model's ``predict_windows_stream``): yields ``(work, predictions)``
    per unit, in order (``work`` without its tokens: :meth:`SpanWork.without_tokens`), the
    values :func:`predict_span` gives for each alone. A unit's
    predictions come while the next unit's batches already run, and the next unit is taken
    from ``works`` only after this one's last batch is queued, so a GPU keeps computing
    while the caller hands a finished unit on (docs/scale-log.md, "The device between work
    units"). ``timer`` gets the time spent in the model layer, not waiting for ``works``.
    """
    waited = [0.0]

    def jobs() -> Iterator[WindowsJob]:
        it = iter(works)
        while True:
            t = time.perf_counter()
            work = next(it, None)
            waited[0] += time.perf_counter() - t
            if work is None:
                return
            tokens, rng, keep = _packed_inputs(work, readout)
            # the strands' tokens are in `tokens` now: the unit waits for its outputs without them
            work = work.without_tokens()
            yield WindowsJob(work, tokens, rng, keep, _progress_on_batch(work, readout, progress))

    stream = windows_stream(jobs(), batch_size=batch_size, keep_channels=readout.keep_channels)
    while True:
        t, waited[0] = time.perf_counter(), 0.0
        try:
            item = next(stream, None)
        except NonFiniteOutputError as err:
            if not isinstance(err.tag, SpanWork):
                raise
            raise err.located(_window_where(err.tag, readout, err.index)) from None
        if timer is not None:
            timer.seconds += time.perf_counter() - t - waited[0]
        if item is None:
            return
        work, res = item
        out = work, _packed_outputs(work, res, readout=readout)
        # a suspended generator keeps its locals: drop this unit's before the next is computed
        del item, work, res
        yield out
        del out


def _capacity_error() -> RuntimeError:
    return RuntimeError("a planned window exceeded the model's capacity (tokenizer/model mismatch)")


def _predict_listed(work: SpanWork, predictor: Predictor, *, readout: Readout, batch_size: int,
                    on_batch: Callable[[int], None] | None) -> dict[str, list[Prediction]]:
    encs: list = []
    rows: list[tuple[int, int] | None] = []
    for strand in readout.strands:
        sp = work.strands[strand]
        encs.extend(sp.plan.encs)
        rows.extend(sp.rows if sp.rows is not None else [None] * len(sp.plan))
    preds = predictor(encs, batch_size=batch_size, keep_channels=readout.keep_channels,
                      keep_rows=rows if any(r is not None for r in rows) else None,
                      on_batch=on_batch) if encs else []
    if any(p.n_tokens_dropped for p in preds):
        raise _capacity_error()
    out, pos = {}, 0
    for strand in readout.strands:
        n = len(work.strands[strand].plan)
        out[strand], pos = preds[pos : pos + n], pos + n
    return out


def _predict_packed(work: SpanWork, predictor: WindowsPredictor, *, readout: Readout, batch_size: int,
                    on_batch: Callable[[int], None] | None) -> PackedPredictions:
    """:func:`_predict_listed`'s windows, in its order (so batched alike), as row ranges of
    the strands' tokenisations put end to end."""
    tokens, rng, keep = _packed_inputs(work, readout)
    res = None
    if len(rng):
        res = predictor(tokens, rng, batch_size=batch_size, keep_channels=readout.keep_channels, keep_rows=keep,
                        on_batch=on_batch)
    return _packed_outputs(work, res, readout=readout)


def _packed_inputs(work: SpanWork, readout: Readout,
                   ) -> tuple[Encoding | LengthEncoding, np.ndarray, np.ndarray | None]:
    """``work``'s windows of every strand in :func:`_predict_listed`'s order: the strands'
    tokenisations end to end, the windows' row ranges in it ``[n, 2]`` and their kept rows
    (``None``: all); :attr:`SpanWork.inputs` where they were made already. The copy keeps the
    tokens' integer type: int32 for a scan's units (:meth:`SpanWork.compact`), as it lives
    while the unit is in flight."""
    from .tokenize import Encoding

    if work.inputs is not None:
        return work.inputs

    plans = [work.strands[s] for s in readout.strands]
    ids, spans, ranges, keep = [], [], [], []
    at = 0
    for sp in plans:
        ids.append(sp.plan.tokens.ids)
        spans.append(sp.plan.tokens.spans)
        ranges.append(np.asarray(sp.plan.ranges, dtype=np.int64).reshape(-1, 2) + at)
        at += len(sp.plan.tokens.ids)
        keep.append(sp.rows if sp.rows is not None
                    else np.tile(np.array([0, np.iinfo(np.int64).max], dtype=np.int64), (len(sp.plan), 1)))
    any_rows = any(sp.rows is not None for sp in plans)
    one = len(plans) == 1
    tokens = plans[0].plan.tokens if one else Encoding(np.concatenate(ids), np.concatenate(spans))
    rng = np.concatenate(ranges) if not one else ranges[0]
    return tokens, rng, ((keep[0] if one else np.concatenate(keep)) if any_rows else None)


def _packed_outputs(work: SpanWork, res: PackedOutput | None, *, readout: Readout) -> PackedPredictions:
    """The model's packed output for :func:`_packed_inputs` (``None`` or empty: no windows),
    cut back into strands."""
    if res is not None and len(res.counts) and res.counts[:, 2].any():
        raise _capacity_error()
    out: dict[str, PackedOutput] = {}
    w = r = 0
    for strand in readout.strands:
        n = len(work.strands[strand].plan)
        if res is None or not len(res.counts):
            out[strand] = PackedOutput(np.zeros((0, 0), dtype=np.float32), None, np.zeros((0, 3), dtype=np.int64))
            continue
        logits, sp_all, counts = res
        c = counts[w : w + n]
        if sp_all is None:  # sequence head: a row per window
            out[strand] = PackedOutput(logits[w : w + n], None, c)
        else:
            k = int(c[:, 0].sum())
            out[strand] = PackedOutput(logits[r : r + k], sp_all[r : r + k], c)
            r += k
        w += n
    return PackedPredictions(out)


@dataclass
class PackedPredictions:
    """:func:`predict_span`'s result in a few arrays per strand: what its packed path
    (a model's ``predict_windows``) returns and what goes to a writer process (pickling
    thousands of small :class:`~genaannot.predict.Prediction` objects costs the sender more
    than copying their arrays into one: :meth:`pack` does that for the listed path).

    ``strands[s]``: that strand's windows as one :class:`~genaannot.predict.PackedOutput`
    ``(logits, spans, counts)``: logits concatenated (token heads: ``[n_rows, n_labels]``;
    sequence heads stacked: ``[n_windows, n_labels]``), spans concatenated (``[n_rows, 2]``,
    int64, int32 after :meth:`compact`; or None), and int64 ``[n_windows, 3]`` of rows, ``n_tokens_total`` and
    ``n_tokens_dropped`` per window.
    """

    strands: dict[str, PackedOutput]

    @classmethod
    def pack(cls, preds: dict[str, list[Prediction]]) -> PackedPredictions:
        out = {}
        for strand, ps in preds.items():
            token = bool(ps) and ps[0].spans is not None
            n = np.array([(len(p.logits) if token else 0, p.n_tokens_total, p.n_tokens_dropped) for p in ps],
                         dtype=np.int64).reshape(-1, 3)
            if not ps:
                logits, spans = np.zeros((0, 0), dtype=np.float32), None
            elif token:
                logits, spans = np.concatenate([p.logits for p in ps]), np.concatenate([p.spans for p in ps])
            else:
                logits, spans = np.stack([p.logits for p in ps]), None
            out[strand] = PackedOutput(logits, spans, n)
        return cls(out)

    def compact(self) -> PackedPredictions:
        """The same predictions with int32 spans (a window's always fit): what waits for
        the writer, and travels to a worker process, is 30 % smaller (3 read channels)."""
        return PackedPredictions({s: o if o.spans is None or o.spans.dtype == np.int32
                                  else o._replace(spans=o.spans.astype(np.int32)) for s, o in self.strands.items()})

    def unpack(self) -> dict[str, list[Prediction]]:
        """The predictions again (views into the packed arrays)."""
        out: dict[str, list[Prediction]] = {}
        for strand, (logits, spans, n) in self.strands.items():
            if spans is None:
                out[strand] = [Prediction(logits[i], None, int(t), int(d)) for i, (_, t, d) in enumerate(n.tolist())]
                continue
            cut = np.cumsum(n[:, 0])[:-1]
            out[strand] = [Prediction(lg, sp, int(t), int(d)) for lg, sp, (_, t, d)
                           in zip(np.split(logits, cut), np.split(spans, cut), n.tolist())]
        return out


def _window_where(work: SpanWork, readout: Readout, index: int) -> str:
    """``chrom:start-end (strand s)`` of input ``index`` of :func:`predict_span` (1-based, inclusive)."""
    for strand in readout.strands:
        sp = work.strands[strand]
        if index < len(sp.plan):
            off = work.unit.start - sp.u0  # strand-context coordinates -> chromosome
            a, b = int(sp.plan.starts[index]) + off, int(sp.plan.ends[index]) + off
            return f"the window {work.unit.chrom}:{a + 1:,}-{b:,} (strand {strand})"
        index -= len(sp.plan)
    return f"input {index + 1}"


def stitch_span(
    work: SpanWork, preds: dict[str, list[Prediction]] | PackedPredictions, *, readout: Readout, stitch_mode: str,
    strands: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-base values of the span on each read strand (or those of ``strands``), in forward
    coordinates (``preds``: :func:`predict_span`'s, listed or packed).

    Returns
    -------
    dict strand -> float32 ``[unit.end - unit.start, len(readout.labels)]``; NaN where no
    window gave a value.
    """
    strands = readout.strands if strands is None else strands
    if isinstance(preds, PackedPredictions):
        preds = PackedPredictions({s: preds.strands[s] for s in strands}).unpack()
    n_ch = len(readout.labels)
    out: dict[str, np.ndarray] = {}
    for strand in strands:
        sp = work.strands[strand]
        outs: list[WindowOutput] = []
        for a, b, p in zip(sp.plan.starts.tolist(), sp.plan.ends.tolist(), preds[strand]):
            vals = readout.values(p.logits, selected=True)
            spans = p.spans
            if readout.head == "token" and strand == "-":
                vals, spans = rc_to_forward(vals, spans, b - a)
            outs.append(WindowOutput(a, b, vals, spans if readout.head == "token" else None))
        out[strand] = stitch(outs, length=sp.length, n_channels=n_ch, mode=stitch_mode, own=sp.own)[sp.u0 : sp.u1]
    return out


def span_pieces(
    work: SpanWork, preds: dict[str, list[Prediction]] | PackedPredictions, *, readout: Readout, stitch_mode: str,
    strands: Sequence[str] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray] | None:
    """:func:`stitch_span` as constant pieces (one per token, or per window for a sequence
    head) instead of per-base arrays: what the scan's writer run-length encodes
    (:func:`genaannot.stitch.piece_runs`), without painting every base. Each read strand,
    or those of ``strands`` (the writer takes one at a time: half the arrays at once).

    Each strand's windows are activated together (one call over their rows: elementwise
    or per row, so the values are those of :func:`stitch_span`, which activates window by
    window). ``None`` for mean stitching, or when a window's rows do not cover its owned
    interval (the caller then uses :func:`stitch_span`).

    Returns
    -------
    dict strand -> (starts, ends, values): int64 starts/ends relative to ``unit.start``,
    sorted and disjoint, inside ``[0, unit.end - unit.start)``; float32 values
    ``[n_pieces, len(readout.labels)]``. For a model with a token per base, where every
    piece is a base, the strand's value is instead the per-base float32 array
    ``[unit.end - unit.start, len(readout.labels)]`` (NaN where nothing was read: that of
    :func:`stitch_span`; :func:`genaannot.stitch.center_dense`).
    """
    if stitch_mode != "center":
        return None
    n_ch = len(readout.labels)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray] = {}
    for strand in readout.strands if strands is None else strands:
        sp = work.strands[strand]
        if isinstance(preds, PackedPredictions):
            logits, spans, counts = preds.strands[strand]
            n_windows = len(counts)
            counts = counts[:, 0] if readout.head == "token" else None
        else:
            ps = preds[strand]
            n_windows = len(ps)
        if not n_windows:
            e = np.empty(0, dtype=np.int64)
            out[strand] = (e, e.copy(), np.empty((0, n_ch), dtype=np.float32))
            continue
        if not isinstance(preds, PackedPredictions):  # listed: into the packed layout
            (logits, spans, counts), = PackedPredictions.pack({strand: ps}).strands.values()
            counts = counts[:, 0] if readout.head == "token" else None
        vals = readout.values(logits, selected=True)
        reverse = readout.head == "token" and strand == "-"
        if counts is not None:  # a token per base: the pieces are the bases, as one array
            dense = center_dense(sp.plan.starts, sp.plan.ends, sp.own, vals, spans, counts, reverse=reverse,
                                 lo=sp.u0, hi=sp.u1)
            if dense is not None:
                out[strand] = dense
                continue
        pieces = center_pieces(sp.plan.starts, sp.plan.ends, sp.own, vals, spans, counts, reverse=reverse)
        if pieces is None:
            return None
        s, e, v = clip_pieces(*pieces, sp.u0, sp.u1)  # copies: shifted in place
        s -= sp.u0
        e -= sp.u0
        out[strand] = (s, e, v)
    return out


def span_tracks(
    unit: Unit,
    *,
    fetch: Callable[[int, int], str],
    tokenizer: DNATokenizer,
    predictor: Predictor,
    readout: Readout,
    overlap: float = 0.5,
    stitch_mode: str = "center",
    batch_size: int = 8,
) -> dict[str, np.ndarray]:
    """:func:`plan_span`, :func:`predict_span` and :func:`stitch_span` of one span, in memory.

    Returns
    -------
    dict strand -> float32 ``[unit.end - unit.start, len(readout.labels)]``
    """
    work = plan_span(unit, fetch=fetch, tokenizer=tokenizer, readout=readout, overlap=overlap,
                     stitch_mode=stitch_mode)
    preds = predict_span(work, predictor=predictor, readout=readout, batch_size=batch_size)
    return stitch_span(work, preds, readout=readout, stitch_mode=stitch_mode)


def scan_layout(
    genome: GenomeReader,
    targets: Sequence[Interval],
    *,
    tokenizer: DNATokenizer,
    readout: Readout,
    min_gap: int | None = None,
    unit_bp: int | None = None,
) -> ScanLayout:
    """:func:`~genaannot.windows.layout_scan` with the scan's defaults, which ``scan``,
    ``evaluate`` and region prediction share: ``min_gap`` = ``window_tokens`` bp and
    ``unit_bp`` = :func:`~genaannot.windows.default_unit_bp` for the tokenizer and window."""
    if not unit_bp:
        unit_bp = default_unit_bp(readout.n_tracks, max_token_bp=tokenizer.max_token_bp,
                                  window_tokens=readout.window_tokens)
    return layout_scan(genome, list(targets), min_gap=int(min_gap or readout.window_tokens), unit_bp=int(unit_bp))


def region_tracks(
    genome: GenomeReader,
    regions: Sequence[Interval],
    *,
    tokenizer: DNATokenizer,
    predictor: Predictor,
    readout: Readout,
    overlap: float = 0.5,
    stitch_mode: str = "center",
    batch_size: int = 8,
    min_gap: int | None = None,
    unit_bp: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[ScanLayout, list[dict[str, np.ndarray]]]:
    """Per-base values over whole regions, tiled exactly as :func:`genaannot.pipeline.scan.scan_genome`
    tiles them (same layout, work units and defaults), in memory.

    Returns
    -------
    layout : ScanLayout
        Its ``targets`` are the regions merged (each base once), in ``.fai`` order.
    tracks : list, one per target, of dict strand -> float32 ``[len(target), len(readout.labels)]``
        Forward coordinates; NaN in the skipped runs of N.

    ``progress`` is called with base pairs done (both strands count), ``2 × len`` in all per
    target less the skipped N runs.
    """
    layout = scan_layout(genome, regions, tokenizer=tokenizer, readout=readout, min_gap=min_gap, unit_bp=unit_bp)
    out = [{s: np.full((len(t), len(readout.labels)), np.nan, dtype=np.float32) for s in readout.strands}
           for t in layout.targets]
    where = {(t.chrom): [] for t in layout.targets}
    for i, t in enumerate(layout.targets):
        where[t.chrom].append(i)
    for unit in layout.units:
        i = next(k for k in where[unit.chrom] if layout.targets[k].start <= unit.start < layout.targets[k].end)
        t = layout.targets[i]
        work = plan_span(unit, fetch=lambda s, e, c=unit.chrom: genome.fetch(c, s, e), tokenizer=tokenizer,
                         readout=readout, overlap=overlap, stitch_mode=stitch_mode)
        preds = predict_span(work, predictor=predictor, readout=readout, batch_size=batch_size,
                             progress=(lambda n: progress(n * len(readout.strands))) if progress else None)
        vals = stitch_span(work, preds, readout=readout, stitch_mode=stitch_mode)
        for s, v in vals.items():
            out[i][s][unit.start - t.start : unit.end - t.start] = v
    return layout, out
