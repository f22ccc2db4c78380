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
  unpacking results overlaps device compute;
* :func:`run_windows_stream` runs many calls (a scan's work units) as one stream of
  batches: the next call's batches are queued before the current call's last outputs are
  waited for, and a finished call is handed back while batches worth up to
  :data:`STREAM_AHEAD_ELEMENTS` output values still run, so the device does not wait
  while the host hands a unit on and prepares the next (batches never mix calls).

On CPU the same code runs without pinning, streams or the helper thread: the model runs
on the host's own cores there, so collating beside it gains nothing and only hands the GIL
between threads (~10 % of a cheap model's host CPU; docs/performance.md, "Host side").

Precision
---------
``fp32`` (default), ``bf16`` or ``fp16`` autocast. The weights of linear and conv1d layers
are held in the reduced dtype, cast once at load (:func:`cast_linear_weights`: what
autocast casts them to at every call, so the outputs are the same bits); the others stay
float32; outputs come back float32. CPU supports both bf16 and fp16 autocast
(fp16 is correct but usually slow on CPUs without native fp16 arithmetic); CUDA bf16
needs a GPU with bf16 support (Ampere or newer) and is refused clearly otherwise. See
``docs/performance.md`` for the measured agreement with fp32.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

    from .tokenize import Encoding

__all__ = ["Prediction", "Predictor", "PackedOutput", "WindowsPredictor", "run_windows", "run_windows_stream", "WindowsJob", "NonFiniteOutputError", "run_network", "resolve_device", "check_precision", "autocast_context", "batch_plan", "PRECISIONS"]

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
    if kind == "cuda" and dtype is torch.bfloat16 and not _cuda_bf16(device):
        raise ValueError(
            f"precision bf16 asked for, but {torch.cuda.get_device_name(device)} has no bf16 support; "
            "use fp16 (or fp32)"
        )


def _cuda_bf16(device: str) -> bool:
    """Whether the GPU ``device`` names (not the process's current one) computes in bf16."""
    import torch

    with torch.cuda.device(torch.device(device)):
        return bool(torch.cuda.is_bf16_supported())


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
        Enter it around the forward pass (weights as :func:`cast_linear_weights` leaves them,
        or float32: the same results).

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


def cast_linear_weights(network: Any, *, precision: str) -> int:
    """Hold the weights and biases of ``network``'s ``nn.Linear`` and ``nn.Conv1d`` layers in
    ``precision``'s dtype, cast once, for running under :func:`autocast_context` (inference only).

    ``linear`` and ``conv1d`` are among autocast's lower-precision operations on CPU and
    CUDA: every call casts the float32 weight and bias to the reduced dtype (on a GPU a
    kernel launch each, and the weights' bytes read and written again at every batch).
    Cast once, the operation gets the same values and skips the casts, so the outputs are
    bit for bit those of autocast over float32 weights (checked per family:
    ``tests/test_precision.py``). A tensor that anything but such a layer also holds (a
    decoder tied to the word embeddings) stays float32, since autocast runs the other
    operations at their own precision.

    Parameters
    ----------
    network : torch.nn.Module
        On its device, in eval mode; changed in place.
    precision : str
        ``bf16`` or ``fp16`` (``fp32``: nothing to do).

    Returns
    -------
    int
        How many tensors were cast.
    """
    import torch

    if precision == "fp32":
        return 0
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    # who holds each storage: (module, attribute name) for every parameter and buffer
    holders: dict[int, set[tuple[int, str]]] = {}
    for mod in network.modules():
        for name, t in [*mod.named_parameters(recurse=False, remove_duplicate=False),
                        *mod.named_buffers(recurse=False, remove_duplicate=False)]:
            if t is not None:
                holders.setdefault(t.untyped_storage().data_ptr(), set()).add((id(mod), name))
    linear = {id(m) for m in network.modules() if type(m) in (torch.nn.Linear, torch.nn.Conv1d)}
    n = 0
    for mod in network.modules():
        if id(mod) not in linear:
            continue
        for name in ("weight", "bias"):
            t = getattr(mod, name)
            if t is None or t.dtype != torch.float32:
                continue
            held = holders[t.untyped_storage().data_ptr()]
            if not all(m in linear and k in ("weight", "bias") for m, k in held):
                continue  # also held elsewhere: left as it is
            t.data = t.data.to(dtype)
            n += 1
    return n


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

    #: the pass (one call's inputs, e.g. a work unit of a scan) it came from, in a stream
    tag: Any = None

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
        (token heads), or None; int32 when the tokens' spans were (a compact unit,
        :meth:`genaannot.span.SpanWork.compact`).
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
    # host holds the whole output: rows first[k] : first[k] + n[k] of it are kept, input after
    # input (an index made when the batch is finished, not held while it is queued)
    rows: tuple[np.ndarray, np.ndarray] | None = None
    owner: Any = None  # the _Pass it belongs to
    elements: int = 0  # values of the batch's whole output (what stays queued until finished)


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
    prefetch: bool | None = None,
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
    prefetch : bool, optional
        Collate the next batch on a helper thread while the current one runs; default on a
        device that computes beside the host (CUDA), not on a CPU.
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
    prefetch: bool | None = None,
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
    p = _windows_pass(network, tokens, ranges, keep_rows, max_tokens=max_tokens, batch_size=batch_size,
                      on_batch=on_batch, stacklevel=6)
    return _windows_output(network, _run_alone(network, p, device=device, precision=precision,
                                               keep_channels=keep_channels, prefetch=prefetch))


class WindowsJob(NamedTuple):
    """One call's worth of :func:`run_windows` in :func:`run_windows_stream`; ``tag`` is
    handed back with its output (and set on a :class:`NonFiniteOutputError` it raises)."""

    tag: Any
    tokens: Encoding
    ranges: np.ndarray
    keep_rows: np.ndarray | None = None
    on_batch: Callable[[int], None] | None = None


def run_windows_stream(
    network,
    jobs: Iterable[WindowsJob],
    *,
    max_tokens: int,
    batch_size: int = 8,
    device: str = "cpu",
    precision: str = "fp32",
    keep_channels: Sequence[int] | None = None,
    prefetch: bool | None = None,
    ahead_elements: int | None = None,
) -> Iterator[tuple[Any, PackedOutput]]:
    """:func:`run_windows` over many jobs as one stream of batches: yields ``(tag, output)``
    per job, in order, each equal to what :func:`run_windows` gives for that job alone
    (batches never mix jobs).

    The difference is time: a job's output is handed out while the batches of the next
    one already run, and the next job is taken from ``jobs`` only after the current one's
    last batch is queued. On a GPU the device thus keeps computing while the caller handles
    a finished job (a scan's work unit: packing, sending it to a writer) and prepares the
    next one, instead of waiting for the host at every job boundary. ``ahead_elements``
    (default :data:`STREAM_AHEAD_ELEMENTS`) bounds the output values of the queued batches
    whose outputs are not on the host yet.
    """
    def passes() -> Iterator[_Pass]:
        for job in jobs:
            yield _windows_pass(network, job.tokens, job.ranges, job.keep_rows, max_tokens=max_tokens,
                                batch_size=batch_size, on_batch=job.on_batch, tag=job.tag, stacklevel=7)

    for done in _stream(network, passes(), device=device, precision=precision, keep_channels=keep_channels,
                        prefetch=prefetch, ahead_elements=STREAM_AHEAD_ELEMENTS if ahead_elements is None
                        else ahead_elements):
        item = done.tag, _windows_output(network, done)
        del done  # a suspended generator keeps its locals: not the finished pass's tokens
        yield item
        del item


def _windows_pass(network, tokens: Encoding, ranges: np.ndarray, keep_rows: np.ndarray | None, *,
                  max_tokens: int, batch_size: int, on_batch: Callable[[int], None] | None, tag: Any = None,
                  stacklevel: int) -> _Pass:
    ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if keep_rows is not None:
        keep_rows = np.asarray(keep_rows, dtype=np.int64).reshape(-1, 2)
        if len(keep_rows) != len(ranges):
            raise ValueError(f"keep_rows has {len(keep_rows)} entries for {len(ranges)} inputs")
    ids = tokens.ids
    contents = [ids[t0:t1] for t0, t1 in ranges.tolist()]
    p = _prepare(network, contents, keep_rows, max_tokens=max_tokens, batch_size=batch_size, on_batch=on_batch,
                 tag=tag, stacklevel=stacklevel)
    p.source = (tokens, ranges)
    return p


def _windows_output(network, p: _Pass) -> PackedOutput:
    """A finished :func:`_windows_pass` as :func:`run_windows` returns it."""
    tokens, ranges = p.source
    token = network.head != "sequence"
    if not p.contents:
        return PackedOutput(np.zeros((0, 0), dtype=np.float32), np.zeros((0, 2), dtype=np.int64) if token else None,
                            np.zeros((0, 3), dtype=np.int64))
    logits, _offs, lo, hi, totals, kept = p.result()
    n_rows = hi - lo if token else np.zeros(len(p.contents), dtype=np.int64)
    spans = None
    if token:
        t0 = ranges[:, 0]
        at = _ranges_index(t0 + lo, n_rows)
        every = tokens.spans  # read once: a LengthEncoding makes them on each access
        first = every[np.minimum(t0, max(len(every) - 1, 0)), 0] if len(every) else t0
        # int32 spans stay int32 (a compact unit's: offsets in a window fit), others become
        # int64; whole rows gathered by np.take and shifted in place, on the thread that feeds
        # the device (a widening copy of a 1-Mb unit's rows cost it 7 ms of fresh pages)
        dt = np.int32 if every.dtype == np.int32 else np.int64
        spans = np.take(every, at, axis=0).astype(dt, copy=False)
        del every
        spans -= np.repeat(first.astype(dt), n_rows)[:, None]
    return PackedOutput(logits, spans, np.stack([n_rows, totals, totals - kept], axis=1).astype(np.int64))


def _ranges_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """int64 ``[lengths.sum()]``: ``starts[k] + 0 … starts[k] + lengths[k] - 1`` for each ``k``,
    concatenated (the rows of many ranges in one index, no loop)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.repeat(np.asarray(starts, dtype=np.int64) - (np.cumsum(lengths) - lengths), lengths) + np.arange(
        int(lengths.sum()), dtype=np.int64)


@dataclass
class _Pass:
    """One call's worth of inputs on their way through the network (:func:`_stream`)."""

    tag: Any
    contents: list[np.ndarray]
    lo: np.ndarray
    hi: np.ndarray
    n_rows: np.ndarray
    offs: np.ndarray
    totals: np.ndarray
    kept: np.ndarray
    plan: list[list[int]]
    on_batch: Callable[[int], None] | None
    left: int = 0  # batches whose outputs are not on the host yet
    logits: np.ndarray | None = None  # [offs[-1], channels], made at the first batch
    source: Any = None  # what the caller needs to read the result (run_windows: tokens, ranges)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        logits = self.logits if self.logits is not None else np.zeros((0, 0), dtype=np.float32)
        return logits, self.offs, self.lo, self.hi, self.totals, self.kept


def _prepare(network, contents: list[np.ndarray], keep_rows: np.ndarray | None, *, max_tokens: int,
             batch_size: int, on_batch: Callable[[int], None] | None = None, tag: Any = None,
             stacklevel: int = 5) -> _Pass:
    """Cut ``contents`` to ``max_tokens`` (warning), resolve ``keep_rows``, plan the batches."""
    totals = np.fromiter((len(c) for c in contents), dtype=np.int64, count=len(contents))
    kept = np.minimum(totals, max_tokens)
    n_cut = int((kept < totals).sum())
    if n_cut:
        contents = [c[:max_tokens] for c in contents]
        warnings.warn(
            f"{n_cut} input(s) longer than the model's {max_tokens} content tokens were cut; "
            "see Prediction.n_tokens_dropped (genaannot.predict_region tiles a long region as scan does)",
            stacklevel=stacklevel,
        )
    if keep_rows is None:
        lo, hi = np.zeros_like(kept), kept.copy()
    else:
        lo = np.clip(keep_rows[:, 0], 0, kept)
        hi = np.clip(keep_rows[:, 1], lo, kept)
    n_rows = hi - lo if network.head != "sequence" else np.ones_like(kept)
    offs = np.zeros(len(contents) + 1, dtype=np.int64)
    np.cumsum(n_rows, out=offs[1:])
    plan = batch_plan(kept.tolist(), batch_size=batch_size)
    return _Pass(tag, contents, lo, hi, n_rows, offs, totals, kept, plan, on_batch, left=len(plan))


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
    prefetch: bool | None,
    on_batch: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The network over ``contents`` (cut to ``max_tokens``): every input's kept outputs,
    in input order, in one float32 array.

    Returns ``(logits, offs, lo, hi, totals, kept)``: ``logits`` ``[rows, channels]`` (token
    heads: input ``i``'s rows ``lo[i]:hi[i]`` of its content at ``offs[i]:offs[i + 1]``;
    sequence heads: row ``i``), int64 ``offs`` ``[n + 1]``, ``lo``/``hi``/``totals``/``kept``
    ``[n]`` (content tokens, and those the model saw).
    """
    one = _prepare(network, contents, keep_rows, max_tokens=max_tokens, batch_size=batch_size, on_batch=on_batch)
    return _run_alone(network, one, device=device, precision=precision, keep_channels=keep_channels,
                      prefetch=prefetch).result()


def _run_alone(network, p: _Pass, *, device: str, precision: str, keep_channels: Sequence[int] | None,
               prefetch: bool | None) -> _Pass:
    """``p`` through :func:`_stream` on its own, one batch ahead (the single-call schedule);
    the collating helper thread only when there is a next batch to collate."""
    (done,) = _stream(network, iter([p]), device=device, precision=precision, keep_channels=keep_channels,
                      prefetch=prefetch if len(p.plan) > 1 else False, ahead_elements=0)
    return done


def _prefetch(prefetch: bool | None, device: str) -> bool:
    """Whether to collate on a helper thread: as asked, else on CUDA, whose device computes
    beside the host (``Model.asynchronous``'s rule; measured on a CPU: the same wall time
    with a real model, ~10 % less host CPU with a cheap one; docs/performance.md, "Host side")."""
    if prefetch is not None:
        return prefetch
    return device.startswith("cuda")


#: a stream of passes (:func:`_stream`) keeps queueing batches until the outputs of those not
#: yet on the host hold this many values: on a GPU computing 4 x 10^6 token positions/s with
#: a few channels, ~90 ms of work, enough to cover what the host does between two work
#: units (tens of ms: docs/scale-log.md, "The device between work units")
STREAM_AHEAD_ELEMENTS = 1 << 20


def _stream(
    network,
    passes: Iterator[_Pass],
    *,
    device: str,
    precision: str,
    keep_channels: Sequence[int] | None,
    prefetch: bool | None,
    ahead_elements: int = STREAM_AHEAD_ELEMENTS,
) -> Iterator[_Pass]:
    """Run ``passes`` through ``network`` as one stream of batches; yield each pass, in
    order, once all its outputs are on the host.

    Batches never mix passes (each pass is batched as :func:`_forward` alone would batch
    it, so the values are the same). The next pass is taken from ``passes`` only after the
    current one's last batch is queued, and a pass is yielded (for the caller's work on it)
    while the batches queued after it still run: on a GPU the device then does not wait
    for the host between passes. At most one batch stays unfinished beyond
    ``ahead_elements`` output values; with 0, exactly one (the single-pass behaviour).
    """
    import torch

    cuda = device.startswith("cuda")
    chan_index = None
    if keep_channels is not None:
        chan_index = torch.as_tensor(list(keep_channels), dtype=torch.long, device=device)
    token_head = network.head != "sequence"
    # a family whose inputs' content rows are out[i, offset : offset + n] says so
    # (Network.content_offset); others are cut by their own split
    offset = getattr(network, "content_offset", None) if token_head else None
    opened: deque[_Pass] = deque()  # passes taken, not yet yielded, in order

    def take() -> _Pass | None:
        nxt = next(passes, None)
        if nxt is not None:
            opened.append(nxt)
        return nxt

    def build(p: _Pass, idx: list[int]) -> dict[str, torch.Tensor]:
        batch = network.collate([p.contents[i] for i in idx])
        if cuda:  # page-locked host memory: the copy to the device can be asynchronous
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return batch

    def finish(job: _InFlight) -> None:
        p: _Pass = job.owner
        if job.ready is not None:
            job.ready.synchronize()
        flat = job.host.float().numpy()  # bf16/fp16 -> float32 is exact
        if job.rows is not None:  # the kept rows, input after input, out of the whole output
            flat = flat.reshape(-1, job.sizes[0][-1])[_ranges_index(*job.rows)]
        finite = np.isfinite(flat)
        if not finite.all():  # NaN weights or an fp16 overflow would else become empty tracks and '.' scores
            first = int(np.argmin(finite))
            ends = np.cumsum([math.prod(shape) for shape in job.sizes])
            k = int(np.searchsorted(ends, first, side="right"))
            err = NonFiniteOutputError(count=int(flat.size - finite.sum()), index=job.idx[k], n_inputs=len(job.idx))
            err.tag = p.tag
            raise err
        n_ch = job.sizes[0][-1]
        if p.logits is None:
            p.logits = np.empty((int(p.offs[-1]), n_ch), dtype=np.float32)
        idx = np.asarray(job.idx, dtype=np.int64)
        # the batch's rows, input after input in batch order, scattered to input order
        # (a copy: nothing refers to the batch buffer, pinned on CUDA, afterwards)
        i0, i1 = int(idx[0]), int(idx[-1])
        if i1 - i0 == len(idx) - 1 and (len(idx) == 1 or bool((np.diff(idx) == 1).all())):
            # consecutive inputs (the usual case: windows of one length keep their order)
            p.logits[p.offs[i0] : p.offs[i1 + 1]] = flat.reshape(-1, n_ch)
        elif token_head:
            p.logits[_ranges_index(p.offs[idx], p.n_rows[idx])] = flat.reshape(-1, n_ch)
        else:
            p.logits[idx] = flat.reshape(len(idx), n_ch)
        p.left -= 1
        if p.on_batch is not None:
            p.on_batch(len(job.idx))

    def ready() -> Iterator[_Pass]:
        while opened and opened[0].left == 0:
            yield opened.popleft()

    def launch(p: _Pass, idx: list[int], batch: dict[str, torch.Tensor]) -> _InFlight:
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
            n = p.hi[ix] - p.lo[ix]
            first = np.arange(len(ix), dtype=np.int64) * out.shape[1] + offset + p.lo[ix]
            return _InFlight(idx, [(k, out.shape[-1]) for k in n.tolist()], *_to_host([out], cuda=cuda),
                             rows=(first, n), owner=p, elements=out.numel())
        parts = network.split(out, [len(p.contents[i]) for i in idx])
        if token_head:
            parts = [q[int(p.lo[i]) : int(p.hi[i])] for i, q in zip(idx, parts)]
        return _InFlight(idx, [tuple(q.shape) for q in parts], *_to_host(parts, cuda=cuda), owner=p,
                         elements=out.numel())

    inflight: deque[_InFlight] = deque()
    queued = 0  # output values of the batches in flight
    with _batches(take, build, prefetch=_prefetch(prefetch, device)) as stream:
        for p, idx, batch in stream:
            # inference mode per batch, not around the yields below: the caller's code runs there
            with torch.inference_mode():
                job = launch(p, idx, batch)
            inflight.append(job)
            queued += job.elements
            # the outputs of batches queued before this one, while it computes
            while len(inflight) > 1 and (not ahead_elements or queued - inflight[-1].elements >= ahead_elements):
                done = inflight.popleft()
                queued -= done.elements
                finish(done)
                del done  # not kept (with its pass) while the caller works on what is yielded
                yield from ready()
        while inflight:
            done = inflight.popleft()
            queued -= done.elements
            finish(done)
            del done
            yield from ready()
        yield from ready()  # passes without batches at the end


def _to_host(parts: list[torch.Tensor], *, cuda: bool) -> tuple[torch.Tensor, Any]:
    """All kept outputs of a batch in one flat host tensor (one copy on CUDA)."""
    import torch

    flat = torch.cat([p.reshape(-1) for p in parts]) if len(parts) > 1 else parts[0].reshape(-1)
    if not cuda:
        return flat.cpu(), None
    host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
    host.copy_(flat, non_blocking=True)
    return host, _after_queued_work(flat.device)


def _after_queued_work(device: torch.device) -> Any:
    """A CUDA event that completes once everything queued so far on ``device``'s current
    stream (the copy to the host) is done.

    Recorded on that device's stream: a bare ``Event.record()`` takes the *current* device's
    stream, which for a model on ``cuda:1`` in a process whose current device is ``cuda:0``
    is another GPU's, so waiting on it would read the host buffer before the copy lands.
    """
    import torch

    ready = torch.cuda.Event()
    ready.record(torch.cuda.current_stream(device))
    return ready


@contextlib.contextmanager
def _batches(
    take: Callable[[], _Pass | None], build: Callable[[_Pass, list[int]], dict], *, prefetch: bool
) -> Iterator[Iterator[tuple[_Pass, list[int], dict]]]:
    """Yield ``(pass, indices, collated batch)`` for every batch of every pass ``take()``
    returns (until ``None``). The next pass is taken only after the current one's last
    batch has been handed out (so the caller can queue it before the next pass's inputs
    are waited for). With ``prefetch`` the next batch is built on a helper thread while the
    caller runs the current one (one batch ahead, no more, so host memory stays bounded)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-collate") if prefetch else None

    def start(p: _Pass, idx: list[int]) -> Any:
        if pool is None:
            return idx
        return pool.submit(build, p, idx)

    def get(p: _Pass, idx: list[int], fut: Any) -> dict:
        return build(p, idx) if pool is None else fut.result()  # re-raises a collate error here

    def first() -> _Pass | None:
        p = take()
        while p is not None and not p.plan:  # a pass without inputs is done already
            p = take()
        return p

    def gen() -> Iterator[tuple[_Pass, list[int], dict]]:
        p = first()
        nxt = start(p, p.plan[0]) if p is not None else None
        while p is not None:
            for k, idx in enumerate(p.plan):
                batch = get(p, idx, nxt)
                if k + 1 < len(p.plan):
                    nxt = start(p, p.plan[k + 1])
                    yield p, idx, batch
                else:
                    yield p, idx, batch
                    q = first()
                    nxt = start(q, q.plan[0]) if q is not None else None
            p = q

    try:
        yield gen()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
