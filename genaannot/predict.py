"""Batched inference that knows no architecture.

Tokenised inputs are grouped into batches, moved to the device, run under
``torch.inference_mode`` with optional bf16/fp16 autocast, and cut back into per-input
float32 arrays returned in input order.

Batching
--------
:func:`batch_plan`: inputs are sorted by content length (longest first, stable) and cut
into consecutive full batches of ``batch_size``; the one partial batch (``n % batch_size``
inputs) is placed where it pads least. Every batch is padded to its longest member (or to
the family's fixed tile, which is :meth:`Network.collate`'s business), so for a fixed batch
size this minimises the padded area ``sum(batch size × longest)`` (tested against brute
force). Results do not depend on batch size or input order beyond floating-point rounding
of padded batched kernels (tested: batch 1 vs 7, shuffled order).

Host/device pipeline (CUDA)
---------------------------
* batch ``i + 1`` is collated on a helper thread while batch ``i`` runs (``prefetch``);
  on CUDA its tensors are pinned there, so the host→device copy is ``non_blocking``;
* only the values asked for travel back: ``keep_channels`` selects label channels and
  ``keep_rows`` a row range of each input on the device, and all kept values of a batch
  come back in one ``non_blocking`` copy into pinned memory, in the output's own dtype
  (bf16 → float32 is exact, so the cast happens on the host, halving the traffic);
* the host waits for batch ``i``'s copy only after batch ``i + 1`` has been queued, so
  unpacking results overlaps device compute.

On CPU the same code runs without pinning or streams; the helper thread still overlaps
collation with compute.

Precision
---------
``fp32`` (default), ``bf16`` or ``fp16`` autocast. Weights stay float32 (autocast casts
per operation), outputs come back float32. CPU supports both bf16 and fp16 autocast
(fp16 is correct but usually slow on CPUs without native fp16 arithmetic); CUDA bf16
needs a GPU with bf16 support (Ampere or newer) and is refused clearly otherwise. See
``docs/performance.md`` for the measured agreement with fp32.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

    from .tokenize import Encoding

__all__ = ["Prediction", "Predictor", "PackedOutput", "WindowsPredictor", "run_windows", "NonFiniteOutputError", "run_network", "resolve_device", "check_precision", "autocast_context", "batch_plan", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class Prediction:
    """Model output for one input sequence.

    Attributes
    ----------
    logits : float32 ndarray
        ``[n_tokens, n_labels]`` for token heads (content tokens only, in sequence order) or
        ``[n_labels]`` for sequence heads. Raw logits; see :func:`genaannot.tasks.activate`.
    spans : int64 ndarray or None
        ``[n_tokens, 2]`` 0-based half-open base-pair spans of the tokens (token heads), or
        ``None`` for sequence heads.
    n_tokens_total : int
        Content tokens of the input. ``n_tokens_dropped`` of them (at the end) did not fit
        the model's capacity and were not seen by the model.
    """

    logits: np.ndarray
    spans: np.ndarray | None
    n_tokens_total: int = 0
    n_tokens_dropped: int = 0


class Predictor(Protocol):
    """What the pipelines need to get predictions: :meth:`genaannot.models.base.Model.predict_encoded`
    is one; tests pass their own (a model that fails at the n-th call, a recorder)."""

    def __call__(
        self,
        encodings: list[Encoding],
        *,
        batch_size: int = ...,
        keep_channels: Sequence[int] | None = ...,
        keep_rows: Sequence[tuple[int, int] | None] | None = ...,
        on_batch: Callable[[int], None] | None = ...,
    ) -> list[Prediction]: ...


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` → ``cuda`` when available, else ``cpu``."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} asked for, but torch sees no CUDA device")
    return device


def check_precision(*, device: str, precision: str) -> None:
    """Raise ``ValueError`` when ``precision`` cannot run on ``device`` (checked at model load)."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    kind = device.split(":")[0]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if not torch.amp.autocast_mode.is_autocast_available(kind):
        raise ValueError(f"precision {precision}: torch has no autocast for device type {kind!r}; use fp32")
    if kind == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"precision bf16 asked for, but {torch.cuda.get_device_name(device)} has no bf16 support; "
            "use fp16 (or fp32)"
        )


def autocast_context(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for running a network at ``precision`` on ``device``.

    Parameters
    ----------
    device : str
        ``cpu``, ``cuda`` or ``cuda:N`` (only the device type matters).
    precision : str
        ``fp32`` (a no-op context), ``bf16`` or ``fp16`` (``torch.autocast`` with that dtype).

    Returns
    -------
    contextlib.AbstractContextManager
        Enter it around the forward pass; weights stay fp32.

    Raises
    ------
    ValueError
        For an unknown ``precision``.
    """
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


def batch_plan(lengths: Sequence[int], *, batch_size: int) -> list[list[int]]:
    """Input indices per batch, minimising the padded area ``sum(len(batch) * max_len)``.

    Inputs are sorted by length (longest first, stable) and cut into consecutive full
    batches; the one partial batch (``n % batch_size`` inputs) is placed where it pads
    least (ties: at the short end). For batches of fixed size, groups contiguous in sorted
    order are optimal (exchange argument), so this is the minimum.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    step = max(1, batch_size)
    n = len(order)
    rem = n % step
    if rem == 0 or n <= step:
        return [order[b : b + step] for b in range(0, n, step)]
    n_full = n // step
    # the partial batch after k full batches: full batches then start at j·step (j < k) and
    # at j·step + rem (k <= j < n_full); a batch's padded width is its first (longest) member's
    before = [lengths[order[j * step]] for j in range(n_full + 1)]
    after = [lengths[order[j * step + rem]] for j in range(n_full)]
    head_sum = [0, *itertools.accumulate(before)]  # head_sum[k] = sum(before[:k])
    tail_sum = [*itertools.accumulate(after[::-1])][::-1] + [0]  # tail_sum[k] = sum(after[k:])
    best, best_k = None, n_full
    for k in range(n_full, -1, -1):  # ties: the largest k (the partial batch at the short end)
        area = step * (head_sum[k] + tail_sum[k]) + rem * before[k]
        if best is None or area < best:
            best, best_k = area, k
    cut = best_k * step
    head = [order[b : b + step] for b in range(0, cut, step)]
    tail = [order[b : b + step] for b in range(cut + rem, n, step)]
    return [*head, order[cut : cut + rem], *tail]


class NonFiniteOutputError(RuntimeError):
    """The network returned NaN or infinite values (damaged weights, an fp16 overflow).

    Attributes
    ----------
    count : int
        Non-finite values among the kept outputs of the batch where they were found.
    index : int
        Input (position in the ``encodings`` given) holding the first one.
    n_inputs : int
        Inputs of that batch.
    """

    def __init__(self, *, count: int, index: int, n_inputs: int, where: str | None = None) -> None:
        self.count, self.index, self.n_inputs = count, index, n_inputs
        super().__init__(
            f"the model returned {count:,} non-finite value(s) (NaN or infinite) for a batch of {n_inputs} "
            f"input(s), the first in {where or f'input {index + 1}'}; its weights may be damaged (check or "
            "re-download the checkpoint), or fp16 overflowed (use --precision fp32 or bf16)"
        )

    def located(self, where: str) -> NonFiniteOutputError:
        """The same error, naming the first bad input as ``where`` (a genome location)."""
        return NonFiniteOutputError(count=self.count, index=self.index, n_inputs=self.n_inputs, where=where)


class PackedOutput(NamedTuple):
    """Outputs of many windows in three arrays (no object per window): what the scan's
    writer needs, made without building a :class:`Prediction` per window (a named tuple:
    ``logits, spans, counts = out``).

    Attributes
    ----------
    logits : float32 ndarray
        Token heads: ``[n_rows, n_labels]``, every window's kept rows, window after window
        in input order; sequence heads: ``[n_windows, n_labels]``.
    spans : int64 ndarray or None
        ``[n_rows, 2]``: the rows' base-pair spans, relative to their window's start
        (token heads), or None.
    counts : int64 ndarray
        ``[n_windows, 3]``: per window, its rows in ``logits`` (0 for sequence heads), its
        content tokens and how many of them (at the end) did not fit the model.
    """

    logits: np.ndarray
    spans: np.ndarray | None
    counts: np.ndarray


class WindowsPredictor(Protocol):
    """Predictions for windows that are row ranges of one tokenisation, packed:
    :meth:`genaannot.models.base.Model.predict_windows` is one."""

    def __call__(
        self,
        tokens: Encoding,
        ranges: np.ndarray,
        *,
        batch_size: int = ...,
        keep_channels: Sequence[int] | None = ...,
        keep_rows: np.ndarray | None = ...,
        on_batch: Callable[[int], None] | None = ...,
    ) -> PackedOutput: ...


#: at most this many channels, a batch's whole output goes to the host and the kept rows are
#: gathered there (an LM head's vocabulary-wide logits are cut on the device instead)
_HOST_GATHER_CHANNELS = 64


@dataclass
class _InFlight:
    """One batch whose kept outputs are on their way to the host."""

    idx: list[int]
    sizes: list[tuple[int, ...]]  # shape of each input's kept output
    host: torch.Tensor  # flat, pinned on CUDA; valid once `ready` has fired
    ready: Any  # torch.cuda.Event or None (CPU: already valid)
    rows: np.ndarray | None = None  # host holds the whole output: these rows of it are kept


def run_network(
    network,
    encodings: list[Encoding],
    *,
    max_tokens: int,
    batch_size: int = 8,
    device: str = "cpu",
    precision: str = "fp32",
    keep_channels: Sequence[int] | None = None,
    keep_rows: Sequence[tuple[int, int] | None] | None = None,
    prefetch: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """Run ``network`` over tokenised inputs; see :class:`genaannot.models.base.Prediction`.

    Parameters
    ----------
    network
        A module following the :class:`~genaannot.models.base.Network` protocol, already on
        ``device`` (possibly wrapped by ``torch.compile``).
    encodings : list of Encoding
        ``ids`` ``[n]`` int and ``spans`` ``[n, 2]`` per input.
    max_tokens : int
        Content tokens one input may hold; longer inputs are cut (with a warning).
    batch_size : int
        Inputs per forward pass.
    device, precision
        Where and how to compute (``fp32`` | ``bf16`` | ``fp16`` autocast).
    keep_channels : sequence of int, optional
        Label channels to bring back (in this order); default all. ``logits`` then has
        ``len(keep_channels)`` columns.
    keep_rows : sequence of (start, stop) or None, optional
        Per input (token heads): the content-token rows to bring back, clipped to the
        tokens the model saw; ``None`` entries keep all. ``logits`` and ``spans`` are
        sliced alike, so ``spans`` still locates every returned row.
    prefetch : bool
        Collate the next batch on a helper thread while the current one runs.
    on_batch : callable, optional
        Called with the number of inputs of each batch once its outputs are on the host
        (progress reporting).

    Returns
    -------
    list of Prediction
        In input order; ``logits`` float32 ``[rows, channels]`` (token head) or
        ``[channels]`` (sequence head).
    """
    contents = [enc.ids for enc in encodings]
    if keep_rows is not None and len(keep_rows) != len(contents):
        raise ValueError(f"keep_rows has {len(keep_rows)} entries for {len(contents)} inputs")
    if not contents:
        return []
    rows = None
    if keep_rows is not None:
        rows = np.array([r if r is not None else (0, np.iinfo(np.int64).max) for r in keep_rows],
                        dtype=np.int64).reshape(-1, 2)
    logits, offs, lo, hi, totals, kept = _forward(
        network, contents, rows, max_tokens=max_tokens, batch_size=batch_size, device=device, precision=precision,
        keep_channels=keep_channels, prefetch=prefetch, on_batch=on_batch)
    token = network.head != "sequence"
    out = []
    for i, (o0, o1, a, b) in enumerate(zip(offs[:-1].tolist(), offs[1:].tolist(), lo.tolist(), hi.tolist())):
        # copies: one result must not keep every other input's outputs (or spans) alive
        out.append(Prediction(logits=logits[o0:o1].copy() if token else logits[i].copy(),
                              spans=encodings[i].spans[a:b].copy() if token else None,
                              n_tokens_total=int(totals[i]), n_tokens_dropped=int(totals[i] - kept[i])))
    return out


def run_windows(
    network,
    tokens: Encoding,
    ranges: np.ndarray,
    *,
    max_tokens: int,
    batch_size: int = 8,
    device: str = "cpu",
    precision: str = "fp32",
    keep_channels: Sequence[int] | None = None,
    keep_rows: np.ndarray | None = None,
    prefetch: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> PackedOutput:
    """:func:`run_network` for windows that are row ranges of one tokenisation, returned
    packed: the scan's path, without an :class:`~genaannot.tokenize.Encoding` or a
    :class:`Prediction` per window (on a GPU the host thread that feeds the device does
    this for every window, so per-window objects cap the device).

    Parameters
    ----------
    tokens : Encoding
        ``ids`` ``[T]`` and ``spans`` ``[T, 2]``; window ``k`` is rows
        ``ranges[k, 0]:ranges[k, 1]``, its spans counted from its first token's start.
    ranges : int ``[n_windows, 2]``
    keep_rows : int ``[n_windows, 2]``, optional
        Per window, the content rows to return (clipped to the tokens the model saw).
    Other parameters as :func:`run_network`, whose results these are, value for value
    (same batches: the same inputs in the same order are batched alike).

    Returns
    -------
    PackedOutput
    """
    ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if keep_rows is not None:
        keep_rows = np.asarray(keep_rows, dtype=np.int64).reshape(-1, 2)
        if len(keep_rows) != len(ranges):
            raise ValueError(f"keep_rows has {len(keep_rows)} entries for {len(ranges)} inputs")
    ids = tokens.ids
    contents = [ids[t0:t1] for t0, t1 in ranges.tolist()]
    token = network.head != "sequence"
    if not contents:
        return PackedOutput(np.zeros((0, 0), dtype=np.float32), np.zeros((0, 2), dtype=np.int64) if token else None,
                            np.zeros((0, 3), dtype=np.int64))
    logits, offs, lo, hi, totals, kept = _forward(
        network, contents, keep_rows, max_tokens=max_tokens, batch_size=batch_size, device=device,
        precision=precision, keep_channels=keep_channels, prefetch=prefetch, on_batch=on_batch)
    n_rows = hi - lo if token else np.zeros(len(contents), dtype=np.int64)
    spans = None
    if token:
        t0 = ranges[:, 0]
        at = _ranges_index(t0 + lo, n_rows)
        first = tokens.spans[np.minimum(t0, max(len(tokens.spans) - 1, 0)), 0] if len(tokens.spans) else t0
        spans = tokens.spans[at] - np.repeat(first, n_rows)[:, None]
    return PackedOutput(logits, spans, np.stack([n_rows, totals, totals - kept], axis=1).astype(np.int64))


def _ranges_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """int64 ``[lengths.sum()]``: ``starts[k] + 0 … starts[k] + lengths[k] - 1`` for each ``k``,
    concatenated (the rows of many ranges in one index, no loop)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.repeat(np.asarray(starts, dtype=np.int64) - (np.cumsum(lengths) - lengths), lengths) + np.arange(
        int(lengths.sum()), dtype=np.int64)


def _forward(
    network,
    contents: list[np.ndarray],
    keep_rows: np.ndarray | None,
    *,
    max_tokens: int,
    batch_size: int,
    device: str,
    precision: str,
    keep_channels: Sequence[int] | None,
    prefetch: bool,
    on_batch: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The network over ``contents`` (cut to ``max_tokens``): every input's kept outputs,
    in input order, in one float32 array.

    Returns ``(logits, offs, lo, hi, totals, kept)``: ``logits`` ``[rows, channels]`` (token
    heads: input ``i``'s rows ``lo[i]:hi[i]`` of its content at ``offs[i]:offs[i + 1]``;
    sequence heads: row ``i``), int64 ``offs`` ``[n + 1]``, ``lo``/``hi``/``totals``/``kept``
    ``[n]`` (content tokens, and those the model saw).
    """
    import torch

    totals = np.fromiter((len(c) for c in contents), dtype=np.int64, count=len(contents))
    kept = np.minimum(totals, max_tokens)
    n_cut = int((kept < totals).sum())
    if n_cut:
        contents = [c[:max_tokens] for c in contents]
        warnings.warn(
            f"{n_cut} input(s) longer than the model's {max_tokens} content tokens were cut; "
            "see Prediction.n_tokens_dropped (genaannot.predict_region tiles a long region as scan does)",
            stacklevel=4,
        )
    token_head = network.head != "sequence"
    if keep_rows is None:
        lo, hi = np.zeros_like(kept), kept.copy()
    else:
        lo = np.clip(keep_rows[:, 0], 0, kept)
        hi = np.clip(keep_rows[:, 1], lo, kept)
    n_rows = hi - lo if token_head else np.ones_like(kept)
    offs = np.zeros(len(contents) + 1, dtype=np.int64)
    np.cumsum(n_rows, out=offs[1:])
    lo_l, hi_l = lo.tolist(), hi.tolist()
    # a family whose inputs' content rows are out[i, offset : offset + n] says so
    # (Network.content_offset); others are cut by their own split
    offset = getattr(network, "content_offset", None) if token_head else None
    cuda = device.startswith("cuda")
    chan_index = None
    if keep_channels is not None:
        chan_index = torch.as_tensor(list(keep_channels), dtype=torch.long, device=device)
    result: list[np.ndarray] = []  # the one output array, made at the first batch (channels known then)

    def build(idx: list[int]) -> dict[str, torch.Tensor]:
        batch = network.collate([contents[i] for i in idx])
        if cuda:  # page-locked host memory: the copy to the device can be asynchronous
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return batch

    def finish(job: _InFlight) -> None:
        if job.ready is not None:
            job.ready.synchronize()
        flat = job.host.float().numpy()  # bf16/fp16 -> float32 is exact
        if job.rows is not None:  # the kept rows, input after input, out of the whole output
            flat = flat.reshape(-1, job.sizes[0][-1])[job.rows]
        finite = np.isfinite(flat)
        if not finite.all():  # NaN weights or an fp16 overflow would else become empty tracks and '.' scores
            first = int(np.argmin(finite))
            ends = np.cumsum([math.prod(shape) for shape in job.sizes])
            k = int(np.searchsorted(ends, first, side="right"))
            raise NonFiniteOutputError(count=int(flat.size - finite.sum()), index=job.idx[k], n_inputs=len(job.idx))
        n_ch = job.sizes[0][-1]
        if not result:
            result.append(np.empty((int(offs[-1]), n_ch), dtype=np.float32))
        idx = np.asarray(job.idx, dtype=np.int64)
        # the batch's rows, input after input in batch order, scattered to input order
        # (a copy: nothing refers to the batch buffer, pinned on CUDA, afterwards)
        i0, i1 = int(idx[0]), int(idx[-1])
        if i1 - i0 == len(idx) - 1 and (len(idx) == 1 or bool((np.diff(idx) == 1).all())):
            # consecutive inputs (the usual case: windows of one length keep their order)
            result[0][offs[i0] : offs[i1 + 1]] = flat.reshape(-1, n_ch)
        elif token_head:
            result[0][_ranges_index(offs[idx], n_rows[idx])] = flat.reshape(-1, n_ch)
        else:
            result[0][idx] = flat.reshape(len(idx), n_ch)
        if on_batch is not None:
            on_batch(len(job.idx))

    plan = batch_plan(kept.tolist(), batch_size=batch_size)
    pending: _InFlight | None = None
    with _batches(plan, build, prefetch=prefetch and len(plan) > 1) as stream, torch.inference_mode():
        for idx, batch in stream:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast_context(device, precision):
                out = network(**batch)
            if chan_index is not None:
                out = out.index_select(out.dim() - 1, chan_index)
            if offset is not None and out.shape[-1] <= _HOST_GATHER_CHANNELS:
                # the whole output comes back (a few hundred kB a batch) and the kept rows are
                # taken on the host in one numpy gather: no torch view per input, and no index
                # sent to the device (a blocking copy there would stall the overlap)
                ix = np.asarray(idx, dtype=np.int64)
                n = hi[ix] - lo[ix]
                first = np.arange(len(ix), dtype=np.int64) * out.shape[1] + offset + lo[ix]
                job = _InFlight(idx, [(k, out.shape[-1]) for k in n.tolist()], *_to_host([out], cuda=cuda),
                                rows=_ranges_index(first, n))
            else:
                parts = network.split(out, [len(contents[i]) for i in idx])
                if token_head:
                    parts = [p[lo_l[i] : hi_l[i]] for i, p in zip(idx, parts)]
                job = _InFlight(idx, [tuple(p.shape) for p in parts], *_to_host(parts, cuda=cuda))
            if pending is not None:  # unpack the previous batch while this one computes
                finish(pending)
            pending = job
        if pending is not None:
            finish(pending)
    return result[0], offs, lo, hi, totals, kept


def _to_host(parts: list[torch.Tensor], *, cuda: bool) -> tuple[torch.Tensor, Any]:
    """All kept outputs of a batch in one flat host tensor (one copy on CUDA)."""
    import torch

    flat = torch.cat([p.reshape(-1) for p in parts]) if len(parts) > 1 else parts[0].reshape(-1)
    if not cuda:
        return flat.cpu(), None
    host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
    host.copy_(flat, non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()  # on the current stream, after the copy
    return host, ready


@contextlib.contextmanager
def _batches(
    plan: list[list[int]], build: Callable[[list[int]], dict], *, prefetch: bool
) -> Iterator[Iterator[tuple[list[int], dict]]]:
    """Yield ``(indices, collated batch)``; with ``prefetch`` the next batch is built on a
    helper thread while the caller runs the current one (one batch ahead, no more, so host
    memory stays bounded)."""
    if not prefetch:
        yield ((idx, build(idx)) for idx in plan)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-collate")

    def gen() -> Iterator[tuple[list[int], dict]]:
        nxt: Future = pool.submit(build, plan[0])
        for k, idx in enumerate(plan):
            batch = nxt.result()  # re-raises a collate error here, in the caller's thread
            if k + 1 < len(plan):
                nxt = pool.submit(build, plan[k + 1])
            yield idx, batch

    try:
        yield gen()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
