"""Model interpretation over one genomic region: saturation mutagenesis and integrated gradients.

Pure compute over a :class:`~genaannot.models.base.Model` and letters already read from the
genome; files are read and written by the caller, :mod:`genaannot.pipeline.interpret`
(``ism_region`` / ``attribute_region``, behind ``genaannot ism`` / ``attribute``).

The scored function ``f``
-------------------------
Both methods explain one scalar ``f(sequence)`` chosen by a :class:`Target`, which
:func:`resolve_target` builds by the readout rules every command shares
(:func:`genaannot.readout.resolve_readout`: label channel, activation, window; the default
label is the task's first):

* sequence heads: the score of the whole input window for one label;
* token heads: the score, for one label, of the token covering one *site* (a base-pair
  position; ``--site`` or, by default, the base of the region with the highest reference
  score). The token is found by base-pair span in every input, so a mutation that changes
  the tokenisation around the site still reads the token holding the site.

The score is the task's activated value (sigmoid/softmax probability, as in the scan
tracks) unless ``logit=True``.

The window
----------
One model input, centred on the region (and the site), as wide as ``window_tokens`` content
tokens allow (the scanner's window size: the task's ``window_tokens`` capped by the model),
minus a few tokens of slack so that re-tokenised mutants still fit. The region must fit
inside; :data:`MAX_ISM_BP` bounds ISM regions. On the minus strand the window's reverse
complement is what the model sees; all results are reported on forward-strand genome
coordinates with forward-strand letters.

Coordinates are 0-based, half-open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .stitch import paint_tokens, to_forward
from .tasks import Task, activate
from .windows import reverse_complement

if TYPE_CHECKING:
    from .models.base import Model
    from .tokenize import DNATokenizer

__all__ = [
    "MAX_ISM_BP",
    "BASES",
    "InterpretError",
    "Target",
    "Window",
    "ISMResult",
    "Attribution",
    "resolve_target",
    "centered_window",
    "reference_scores",
    "ism",
    "integrated_gradients",
    "find_input_embeddings",
    "tokens_to_bases",
]

#: largest region ``ism`` mutates (3 model inputs per base)
MAX_ISM_BP = 2000
#: alternative-allele columns of the ISM effect matrix
BASES = "ACGT"
#: baselines of integrated gradients: name -> description (see :func:`integrated_gradients`)
BASELINES: dict[str, str] = {
    "zero": "all-zero word embedding at every content token",
    "pad": "the [PAD] token's word embedding at every content token",
}


class InterpretError(ValueError):
    """A request that cannot be answered (region too long, unknown label, no embeddings...)."""


@dataclass(frozen=True)
class Target:
    """Which scalar of the model output is explained.

    Attributes
    ----------
    head : "token" | "sequence"
    label : str
    channel : int
        Index into the last axis of the logits.
    activation : "sigmoid" | "softmax" | "identity"
        Applied (over all channels) before taking ``channel``, unless ``logit``.
    logit : bool
        Explain the raw logit instead of the activated score.
    window_tokens : int
        Content tokens of the model window (the scanner's).
    """

    head: str
    label: str
    channel: int
    activation: str
    logit: bool = False
    window_tokens: int = 0

    @property
    def quantity(self) -> str:
        return "logit" if self.logit or self.activation == "identity" else "probability"


def resolve_target(
    model: Model, task: Task, *, label: str | None = None, logit: bool = False, window_tokens: int | None = None
) -> Target:
    """The label channel, activation and window that ``f`` reads, by the rules every command
    shares (:func:`genaannot.readout.resolve_readout`); the default label is the task's first."""
    from .readout import ReadoutError, resolve_readout

    try:
        ro = resolve_readout(task, model.info, labels=[label] if label else None, strand="+",
                             window_tokens=window_tokens)
    except ReadoutError as err:
        raise InterpretError(str(err).replace("--labels", "label")) from None
    return Target(ro.head, ro.labels[0], ro.channels[0], ro.activation, logit, ro.window_tokens)


def _score_of(logits: np.ndarray, target: Target) -> np.ndarray:
    """``[..., n_labels]`` logits -> ``[...]`` scores of the target's channel."""
    x = logits if target.logit else activate(logits, target.activation)
    return np.asarray(x[..., target.channel], dtype=np.float64)


@dataclass(frozen=True)
class Window:
    """The one model input an interpretation runs on.

    Attributes
    ----------
    chrom, start, end : genome extent (0-based half-open)
    strand : "+" | "-"
        ``-``: the model sees the reverse complement of the genome letters.
    seq : str
        Genome letters of ``[start, end)`` on the forward strand, upper case.
    """

    chrom: str
    start: int
    end: int
    strand: str
    seq: str

    def model_seq(self, seq: str | None = None) -> str:
        s = self.seq if seq is None else seq
        return reverse_complement(s) if self.strand == "-" else s

    def to_model(self, pos: int) -> int:
        """Genome position -> offset in the model's input."""
        off = pos - self.start
        return len(self.seq) - 1 - off if self.strand == "-" else off


def _slack(tokenizer: DNATokenizer) -> int:
    # a base substitution re-tokenises a few neighbouring BPE tokens; keep room for them
    return 0 if int(tokenizer.max_token_bp) <= 1 else 8


def centered_window(
    *,
    fetch: Callable[[str, int, int], str],
    chrom: str,
    chrom_size: int,
    focus: tuple[int, int],
    tokenizer: DNATokenizer,
    window_tokens: int,
    strand: str = "+",
) -> Window:
    """The widest window centred on ``focus`` whose tokenisation fits ``window_tokens``.

    Parameters
    ----------
    fetch : callable ``(chrom, start, end) -> str``
        Genome letters (e.g. :meth:`genaannot.io.fasta.Genome.fetch`).
    focus : (start, end)
        What must lie inside the window (the region, extended to the site).
    window_tokens : int
        Content tokens the model may see; ``_slack`` tokens are kept free for mutants.

    Raises
    ------
    InterpretError
        When ``focus`` itself does not fit one model input.
    """
    fs, fe = focus
    budget = window_tokens - _slack(tokenizer)
    if budget < 1:
        raise InterpretError(f"window of {window_tokens} tokens is too small")
    centre2 = fs + fe  # twice the centre, to stay in integers
    max_bp = min(chrom_size, budget * max(1, int(tokenizer.max_token_bp)))

    def extent(width: int) -> tuple[int, int]:
        s = max(0, min((centre2 - width) // 2, chrom_size - width))
        return s, min(chrom_size, s + width)

    def fits(width: int) -> bool:
        s, e = extent(width)
        seq = fetch(chrom, s, e).upper()
        if len(tokenizer.encode(seq)) > budget:
            return False
        return strand == "+" or len(tokenizer.encode(reverse_complement(seq))) <= budget

    lo, hi = 1, max_bp  # largest fitting width by bisection (token count grows with width)
    if not fits(lo):
        raise InterpretError("the model cannot take even one base of this sequence")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    s, e = extent(lo)
    if s > fs or e < fe:
        raise InterpretError(
            f"{chrom}:{fs + 1}-{fe} ({fe - fs:,} bp) does not fit one model input "
            f"(about {lo:,} bp = {budget} tokens here); choose a shorter region"
        )
    return Window(chrom, s, e, strand, fetch(chrom, s, e).upper())


def _site_token(spans: np.ndarray, offset: int) -> int:
    """Index of the token whose span holds model offset ``offset``."""
    i = int(np.searchsorted(spans[:, 1], offset, side="right"))
    if i >= len(spans) or not spans[i, 0] <= offset < spans[i, 1]:
        raise InterpretError(f"no token covers input offset {offset} (cut at the model's capacity?)")
    return i


def _scores(model: Model, window: Window, seqs: list[str], target: Target, site: int | None, *, batch_size: int):
    """``f`` of each genome-orientation window sequence; returns (float64 [n], n_cut)."""
    preds = model.predict([window.model_seq(s) for s in seqs], batch_size=batch_size)
    out = np.empty(len(preds), dtype=np.float64)
    n_cut = 0
    for i, p in enumerate(preds):
        n_cut += p.n_tokens_dropped > 0
        if target.head == "sequence":
            out[i] = _score_of(p.logits, target)
        else:
            t = _site_token(p.spans, window.to_model(site))
            out[i] = _score_of(p.logits[t], target)
    return out, n_cut


def reference_scores(model: Model, window: Window, target: Target, *, batch_size: int = 8) -> np.ndarray:
    """Per-base reference scores of a token head over the window, forward orientation.

    Returns
    -------
    float64 [len(window)]
        Score of the token covering each base (activated unless ``target.logit``).
    """
    if target.head != "token":
        raise InterpretError("per-base scores need a token head")
    (p,) = model.predict([window.model_seq()], batch_size=batch_size)
    vals = np.full(len(window.seq), np.nan)
    painted = paint_tokens(_score_of(p.logits, target)[:, None], p.spans)[:, 0]
    vals[: len(painted)] = painted  # bases past a capacity cut keep NaN
    return to_forward(vals, window.strand).copy()


def strongest_site(model: Model, window: Window, target: Target, region: tuple[int, int], *, batch_size: int = 8) -> int:
    """Genome position in ``region`` with the highest reference score (first on ties)."""
    vals = reference_scores(model, window, target, batch_size=batch_size)
    a, b = region[0] - window.start, region[1] - window.start
    seg = vals[a:b]
    if np.all(np.isnan(seg)):
        raise InterpretError("the model gave no scores inside the region")
    return region[0] + int(np.nanargmax(seg))


@dataclass
class ISMResult:
    """Saturation mutagenesis of a region.

    Attributes
    ----------
    chrom, start, end : the mutated region (0-based half-open)
    ref : str
        Reference letters of the region (upper case, forward strand).
    effects : float32 [L, 4]
        ``f(alt) - f(ref)`` for alt = A, C, G, T (forward-strand letters); NaN at the
        reference letter (a non-ACGT reference letter gets all four).
    ref_score : float
        ``f`` of the reference window.
    window : Window
    target : Target
    site : int or None
        Genome position read by a token head.
    n_cut : int
        Mutant inputs that exceeded the model's capacity and were cut (0 normally).
    """

    chrom: str
    start: int
    end: int
    ref: str
    effects: np.ndarray
    ref_score: float
    window: Window
    target: Target
    site: int | None
    n_cut: int = 0

    @property
    def max_abs(self) -> np.ndarray:
        """float32 [L]: largest ``|effect|`` over the alternative letters."""
        return np.nanmax(np.abs(self.effects), axis=1).astype(np.float32)

    @property
    def mean(self) -> np.ndarray:
        """float32 [L]: mean effect over the alternative letters."""
        return np.nanmean(self.effects, axis=1).astype(np.float32)

    def rows(self):
        """``(pos0, ref, alt, effect)`` for every substitution, in position then A/C/G/T order."""
        for i, r in enumerate(self.ref):
            for j, b in enumerate(BASES):
                if b != r:
                    yield self.start + i, r, b, float(self.effects[i, j])


def ism(
    model: Model,
    window: Window,
    region: tuple[int, int],
    target: Target,
    *,
    site: int | None = None,
    batch_size: int = 8,
    chunk: int = 256,
    progress: Callable[[int], None] | None = None,
) -> ISMResult:
    """Score every single-base substitution of ``region`` against the shared reference window.

    Parameters
    ----------
    window : Window
        Holds ``region`` (and ``site``); see :func:`centered_window`.
    region : (start, end)
        Genome positions to mutate, at most :data:`MAX_ISM_BP` bases.
    site : int, optional
        Token heads: genome position whose token is read (required for token heads).
    chunk : int
        Mutants built and scored per step (bounds memory).
    progress : callable, optional
        Called with the number of mutants scored after each chunk.
    """
    rs, re_ = region
    n = re_ - rs
    if n < 1:
        raise InterpretError("empty region")
    if n > MAX_ISM_BP:
        raise InterpretError(f"ISM region of {n:,} bp exceeds the limit of {MAX_ISM_BP:,} bp; split it")
    if not (window.start <= rs and re_ <= window.end):
        raise InterpretError("region lies outside the window")
    if target.head == "token":
        if site is None:
            raise InterpretError("a token head needs a site")
        if not window.start <= site < window.end:
            raise InterpretError("site lies outside the window")
    ref_seq = window.seq
    ref_score, n_cut = _scores(model, window, [ref_seq], target, site, batch_size=batch_size)
    muts: list[tuple[int, int]] = []  # (region offset, alt column)
    for i in range(n):
        r = ref_seq[rs - window.start + i]
        muts.extend((i, j) for j, b in enumerate(BASES) if b != r)
    effects = np.full((n, 4), np.nan, dtype=np.float32)
    for c in range(0, len(muts), chunk):
        part = muts[c : c + chunk]
        seqs = []
        for i, j in part:
            k = rs - window.start + i
            seqs.append(ref_seq[:k] + BASES[j] + ref_seq[k + 1 :])
        sc, cut = _scores(model, window, seqs, target, site, batch_size=batch_size)
        n_cut += cut
        for (i, j), v in zip(part, sc):
            effects[i, j] = v - ref_score[0]
        if progress is not None:
            progress(len(part))
    return ISMResult(
        window.chrom, rs, re_, ref_seq[rs - window.start : re_ - window.start], effects,
        float(ref_score[0]), window, target, site, int(n_cut),
    )


# --------------------------------------------------------------------------- gradients


def find_input_embeddings(network: Any, vocab_size: int):
    """The module that turns token ids into word embeddings.

    ``network.get_input_embeddings()`` when the family provides it, else the first
    ``nn.Embedding`` with ``vocab_size`` rows (position/type embeddings have other sizes).
    """
    from torch import nn

    get = getattr(network, "get_input_embeddings", None)
    if callable(get):
        mod = get()
        if mod is not None:
            return mod
    for m in network.modules():
        if isinstance(m, nn.Embedding) and m.num_embeddings == vocab_size:
            return m
    raise InterpretError(
        f"{type(network).__name__} has no token embedding with {vocab_size} rows; integrated "
        "gradients needs a network with word embeddings (ISM works with any model)"
    )


def tokens_to_bases(spans: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """Spread per-token values evenly over each token's bases.

    Parameters
    ----------
    spans : int64 [T, 2]
        Token spans in the input (0-based half-open).
    values : [T]
    length : int
        Input length in bp.

    Returns
    -------
    float64 [length]
        ``values[t] / (end - start)`` on every base of token ``t``; sums are preserved.
    """
    out = np.zeros(length, dtype=np.float64)
    for (a, b), v in zip(spans, values):
        out[a:b] = v / (b - a)
    return out


@dataclass
class Attribution:
    """Integrated-gradients attribution of ``f`` to the bases of a window.

    Attributions of a token are summed over the hidden dimension and split evenly over the
    token's bases (forward-strand genome order).

    Attributes
    ----------
    window : Window
    target : Target
    site : int or None
    per_base : float64 [len(window)]
    token_spans : int64 [T, 2]
        Genome spans of the tokens (forward strand, 0-based half-open).
    token_attr : float64 [T]
    f_input, f_baseline : float
        ``f`` at the input and at the baseline.
    steps : int
    baseline : str
    completeness_error : float
        ``|sum(attributions) - (f_input - f_baseline)|``.
    """

    window: Window
    target: Target
    site: int | None
    per_base: np.ndarray
    token_spans: np.ndarray
    token_attr: np.ndarray
    f_input: float
    f_baseline: float
    steps: int
    baseline: str
    completeness_error: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(self.token_attr.sum())

    @property
    def relative_error(self) -> float:
        delta = abs(self.f_input - self.f_baseline)
        return self.completeness_error / delta if delta > 0 else float("inf") if self.completeness_error else 0.0


def _content_positions(batch_ids, ids: np.ndarray, tokenizer: DNATokenizer) -> np.ndarray:
    """Positions of the content tokens in a collated one-row batch (special tokens excluded)."""
    row = batch_ids[0].cpu().numpy()
    special = {x for x in (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id) if x is not None}
    pos = np.flatnonzero(~np.isin(row, list(special)))
    if len(pos) != len(ids) or not np.array_equal(row[pos], ids):
        raise InterpretError("cannot locate the content tokens in the model's input layout")
    return pos


def _check_finite(values: Any, *, where: str) -> None:
    """Refuse NaN or infinite network outputs or gradients (:class:`~genaannot.predict.NonFiniteOutputError`)."""
    import torch

    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        from .predict import NonFiniteOutputError

        per_input = bad.reshape(bad.shape[0], -1).any(dim=1)
        raise NonFiniteOutputError(count=int(bad.sum()), index=int(per_input.nonzero()[0, 0]),
                                   n_inputs=int(bad.shape[0]), where=where)


def integrated_gradients(
    model: Model,
    window: Window,
    target: Target,
    *,
    site: int | None = None,
    steps: int = 50,
    baseline: str = "zero",
    batch_size: int = 16,
) -> Attribution:
    """Integrated gradients of ``f`` w.r.t. the word embeddings of the window's content tokens.

    ``x_a = b + a (x - b)`` replaces the content tokens' word embeddings (special tokens,
    position and type embeddings are kept), for ``a = 0, 1/steps, ..., 1``; the path
    integral of the gradient is the trapezoid rule over these ``steps + 1`` points, and a
    token's attribution is ``sum_h (x - b)_h * integral_h``. Completeness
    (``sum = f(x) - f(b)``) holds up to the quadrature error, reported in
    ``completeness_error``.

    Parameters
    ----------
    baseline : "zero" | "pad"
        See :data:`BASELINES`.
    batch_size : int
        Interpolation points per forward/backward pass.
    """
    import torch

    if baseline not in BASELINES:
        raise InterpretError(f"unknown baseline {baseline!r}; choose {', '.join(BASELINES)}")
    if steps < 1:
        raise InterpretError("steps must be at least 1")
    net = model.network
    tok = model.tokenizer
    emb = find_input_embeddings(net, tok.vocab_size)
    enc = tok.encode(window.model_seq())
    if len(enc) > model.max_tokens:
        raise InterpretError(f"window of {len(enc)} tokens exceeds the model's {model.max_tokens}")
    ids = enc.ids
    if target.head == "token" and site is None:
        raise InterpretError("a token head needs a site")
    t_site = _site_token(enc.spans, window.to_model(site)) if target.head == "token" else None
    batch = net.collate([ids])
    pos = torch.as_tensor(_content_positions(batch["input_ids"], ids, tok), device=model.device)
    batch = {k: v.to(model.device) for k, v in batch.items()}
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] *= 0.5  # trapezoid

    state: dict[str, Any] = {}

    def hook(_module, _inputs, out):
        x = out[:, pos].detach()
        b = torch.zeros_like(x[:1]) if baseline == "zero" else emb.weight[tok.pad_id].detach().expand_as(x[:1])
        a = state["alpha"].to(out.dtype)[:, None, None]
        z = (b + a * (x - b)).requires_grad_(True)
        state.update(x=x[:1], b=b, z=z)
        new = out.detach().clone()
        new[:, pos] = z  # special tokens keep their embedding; gradient flows through z only
        return new

    scores = np.empty(steps + 1)
    integral = None
    handle = emb.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            for c in range(0, steps + 1, max(1, batch_size)):
                a = alphas[c : c + batch_size]
                state["alpha"] = torch.as_tensor(a, device=model.device)
                rep = {k: v.expand(len(a), *v.shape[1:]).contiguous() for k, v in batch.items()}
                out = net(**rep)
                parts = net.split(out, [len(ids)] * len(a))
                rows = torch.stack([p[t_site] if t_site is not None else p for p in parts]).float()
                _check_finite(rows, where=f"{window.chrom}:{window.start + 1}-{window.end} (integrated gradients)")
                if not target.logit and target.activation == "sigmoid":
                    rows = torch.sigmoid(rows)
                elif not target.logit and target.activation == "softmax":
                    rows = torch.softmax(rows, dim=-1)
                f = rows[:, target.channel]
                (g,) = torch.autograd.grad(f.sum(), state["z"])
                _check_finite(g, where=f"{window.chrom}:{window.start + 1}-{window.end} (gradients)")
                w = torch.as_tensor(weights[c : c + batch_size], device=g.device, dtype=g.dtype)
                part = (g * w[:, None, None]).sum(0)
                integral = part if integral is None else integral + part
                scores[c : c + len(a)] = f.detach().double().cpu().numpy()
    finally:
        handle.remove()
    diff = (state["x"][0] - state["b"][0]).double()
    token_attr = (diff * integral.double()).sum(-1).cpu().numpy()
    per_model = tokens_to_bases(enc.spans, token_attr, len(window.seq))
    spans = enc.spans.astype(np.int64)
    if window.strand == "-":
        per_base = per_model[::-1].copy()
        n = len(window.seq)
        spans = np.stack([n - spans[:, 1], n - spans[:, 0]], axis=1)[::-1].copy()
        token_attr = token_attr[::-1].copy()
    else:
        per_base = per_model
    f_in, f_base = float(scores[-1]), float(scores[0])
    err = abs(float(token_attr.sum()) - (f_in - f_base))
    return Attribution(
        window, target, site, per_base, spans + window.start, token_attr, f_in, f_base, steps,
        baseline, err,
    )
