"""What every model family provides, and the architecture-agnostic :class:`Model`.

A family module (``gena_bert.py``, ``bigbird.py``, ``rmt.py``, ``hyena.py``,
``modernbert.py``) exposes ``load(files, *, config) -> Loaded`` returning a
:class:`Network` (a ``torch.nn.Module``) and its tokenizer. The network knows how to lay
out a batch of content tokens (special tokens, padding, tiles, segments) and how to cut
its output back into per-input arrays; :mod:`genaannot.predict` does the rest (batching,
device, precision, ``inference_mode``) without knowing which family it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..predict import PackedOutput, Prediction

if TYPE_CHECKING:  # keep torch off the import path of `genaannot --help`
    import torch

    from ..tokenize import DNATokenizer, SequenceStats

__all__ = ["Prediction", "ModelInfo", "Loaded", "Model", "ModelError", "collate_cls_sep", "split_cls_sep",
           "normalize_problem_type", "PROBLEM_TYPES"]

#: the problem types transformers knows (``config.json`` ``problem_type``)
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


class ModelError(RuntimeError):
    """A checkpoint that cannot be found, read or fitted to an architecture."""


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is (printed by ``genaannot models inspect``)."""

    family: str  # gena_bert | bigbird | rmt | hyena | modernbert
    architecture: str  # class name as in config.json `architectures`
    head: str  # token | sequence | mlm
    labels: tuple[str, ...]
    problem_type: str | None
    max_tokens: int  # content tokens one input may hold (RMT: all segments)
    resolution: str  # "token" (BPE spans) | "base" (single nucleotide)
    n_params: int
    source: str
    tokenizer: str
    task: str | None = None  # from genaannot.json when the checkpoint was made by genaannot
    #: the window (content tokens) a scan reads this model with when neither the user nor a
    #: smaller capacity decides (None: the task's ``window_tokens``); a family sets it when its
    #: checkpoints say which window they need (dilated_cnn: a quarter window >= half its field)
    window_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def normalize_problem_type(info: ModelInfo) -> ModelInfo:
    """``info`` with ``problem_type`` made explicit, once, for every family (at load).

    Language-model heads (``mlm``, ``lm``) have none. A classification head keeps the
    checkpoint's ``problem_type`` when it names one of :data:`PROBLEM_TYPES`; without one,
    several outputs are read as one single-label classification (softmax: what
    ``*ForTokenClassification`` / ``*ForSequenceClassification`` train with cross-entropy),
    and a single output as a binary classifier (sigmoid, ``multi_label_classification``),
    as genaannot always read it (transformers would train a 1-label head as regression:
    write ``"problem_type": "regression"`` into config.json for an identity readout).

    Raises
    ------
    ModelError
        For a ``problem_type`` transformers does not know.
    """
    if info.head not in ("token", "sequence"):
        return replace(info, problem_type=None) if info.problem_type is not None else info
    pt = info.problem_type
    if pt is None:
        pt = "single_label_classification" if len(info.labels) > 1 else "multi_label_classification"
    elif pt not in PROBLEM_TYPES:
        raise ModelError(f"{info.source}: problem_type {pt!r} in config.json is not one of {', '.join(PROBLEM_TYPES)}")
    return info if pt == info.problem_type else replace(info, problem_type=pt)


@dataclass
class Loaded:
    """What a family's ``load`` returns."""

    network: Any  # torch.nn.Module following the Network protocol below
    tokenizer: DNATokenizer
    info: ModelInfo


class Network:
    """Protocol (documentation only) of a family's ``torch.nn.Module``.

    Attributes ``head`` and ``max_content_tokens``, and methods

    ``collate(content: list[np.ndarray]) -> dict[str, torch.Tensor]``
        Build a CPU batch from content-token id arrays (int64, no special tokens).
    ``forward(**batch) -> torch.Tensor``
        Run the batch.
    ``split(out, lengths: list[int]) -> list[torch.Tensor]``
        Per input: ``[n_content, n_labels]`` (token head) or ``[n_labels]`` (sequence head).
    ``content_offset`` (optional int)
        Where ``split`` of a token head is ``out[i, content_offset : content_offset + n]``
        for every input (1 after a [CLS], 0 without), so that the model layer gathers a
        batch's kept rows in one indexing call instead of a view per input (the thread that
        feeds a GPU does this for every window); leave it out (or None) otherwise.
    ``get_input_embeddings() -> torch.nn.Embedding``
        The token-embedding table (integrated gradients hooks it).
    """


def collate_cls_sep(
    content: list[np.ndarray], *, cls_id: int, sep_id: int, pad_id: int, tile: int | None = None
) -> dict[str, torch.Tensor]:
    """``[CLS] content [SEP]`` right-padded with ``pad_id`` (masked) to the longest input or ``tile``."""
    import torch

    width = max(len(c) for c in content) + 2
    if tile is not None:
        if width > tile:
            raise ModelError(f"input of {width} tokens exceeds the fixed tile of {tile}")
        width = tile
    # numpy, then one tensor each: per-row torch indexing cost ~1 ms a batch of 8 (a tenth of
    # a scan's host CPU, bench/stage_cpu.py)
    lengths = np.fromiter((len(c) for c in content), dtype=np.int64, count=len(content))
    ids = np.full((len(content), width), pad_id, dtype=np.int64)
    ids[:, 0] = cls_id
    for i, c in enumerate(content):
        ids[i, 1 : lengths[i] + 1] = c
    ids[np.arange(len(content)), lengths + 1] = sep_id
    mask = (np.arange(width) < (lengths + 2)[:, None]).astype(np.int64)
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def split_cls_sep(out: torch.Tensor, lengths: list[int], *, head: str) -> list[torch.Tensor]:
    """Inverse of :func:`collate_cls_sep` on the output: drop [CLS], [SEP] and padding."""
    if head == "sequence":
        return [out[i] for i in range(len(lengths))]
    return [out[i, 1 : n + 1] for i, n in enumerate(lengths)]


class Model:
    """A loaded model: tokenizer + network + metadata, with an architecture-agnostic ``predict``.

    Obtain one with :func:`genaannot.load_model`.

    Parameters
    ----------
    loaded : Loaded
        What a family's ``load`` returned.
    device : str, optional
        ``cpu``, ``cuda``, ``cuda:1``; default CUDA when available.
    precision : str
        ``fp32``, ``bf16`` or ``fp16`` autocast (linear and conv1d weights held in that dtype,
        :func:`genaannot.predict.cast_linear_weights`; the rest float32); checked against
        the device here, so an impossible combination fails at load, not mid-scan.
        ``loaded.network`` is moved (and cast) in place: one network, one Model.
    compile : bool or dict
        Run the network through ``torch.compile`` (a dict is passed as its keyword
        arguments, e.g. ``{"mode": "max-autotune"}``). Compilation happens at the first
        call; if that call fails, a warning is issued and the eager network is used from
        then on. Once a compiled call has succeeded, a later error (say, out of memory
        half-way through a genome) is raised, never hidden by a silent switch to eager.
    """

    def __init__(
        self,
        loaded: Loaded,
        *,
        device: str | None = None,
        precision: str = "fp32",
        compile: bool | dict[str, Any] = False,
    ) -> None:
        from ..predict import cast_linear_weights, check_precision, resolve_device

        self.network = loaded.network
        self.tokenizer = loaded.tokenizer
        self.info = loaded.info
        self.device = resolve_device(device)
        #: whether the device computes asynchronously to the host (CUDA): a scan then sends its
        #: work units through one stream of batches (:meth:`predict_windows_stream`), so the
        #: device does not wait between units, and the next batch is collated on a helper
        #: thread (``prefetch``); on a CPU both would only cost memory and host CPU
        self.asynchronous = self.device.startswith("cuda")
        check_precision(device=self.device, precision=precision)
        family_check = getattr(self.network, "check_precision", None)  # what a family's code cannot run
        if family_check is not None:
            family_check(device=self.device, precision=precision)
        self.precision = precision
        self.network.eval()
        self.network.to(self.device)
        #: tensors held in the reduced dtype for autocast (:func:`genaannot.predict.cast_linear_weights`)
        self.cast_tensors = cast_linear_weights(self.network, precision=precision)
        self._compiled: Any = None
        self._compile_checked = False  # the first compiled call succeeded: no fallback after it
        self.compile_options: dict[str, Any] | None = None
        #: family loader options it was loaded with (set by :func:`genaannot.load_model`)
        self.load_options: dict[str, Any] = {}
        #: SHA-256 of the checkpoint files it was loaded from, computed once when a scan first
        #: needs it (:func:`genaannot.pipeline.scan.model_sha256`); None until then
        self.weights_sha256: str | None = None
        if compile:
            self.compile_options = dict(compile) if isinstance(compile, dict) else {}
            self._compiled = self._compile(self.compile_options)

    def _compile(self, options: dict[str, Any]) -> Any:
        import warnings

        import torch

        try:
            # the wrapper forwards attribute access (head, collate, split) to the network
            return torch.compile(self.network, **options)
        except Exception as err:  # noqa: BLE001 - any failure: stay eager, say why
            warnings.warn(f"torch.compile unavailable ({type(err).__name__}: {err}); running eager", stacklevel=3)
            self.compile_options = None
            return None

    @property
    def compiled(self) -> bool:
        """Whether predictions run through ``torch.compile`` (False after a fallback)."""
        return self._compiled is not None

    @property
    def max_tokens(self) -> int:
        return self.info.max_tokens

    def predict(
        self,
        sequences: list[str],
        *,
        batch_size: int = 8,
        stats: SequenceStats | None = None,
        keep_channels: list[int] | None = None,
    ) -> list[Prediction]:
        """Raw model outputs of a list of DNA sequences (any case; see :mod:`genaannot.tokenize`).

        One input per sequence, no tiling, no activation, unnamed channels: a low-level
        call. For per-base values of a genome region (named labels, both strands,
        activated, tiled and stitched as ``genaannot scan`` does) use
        :func:`genaannot.predict_region`.

        Inputs longer than ``max_tokens`` content tokens are cut at the capacity; the
        number of tokens left out is returned in ``Prediction.n_tokens_dropped`` and a
        warning is issued. ``keep_channels`` selects label channels (default all).

        Returns
        -------
        list of Prediction
            Per sequence: ``logits`` float32 ``[n_tokens, n_labels]`` (token head) or
            ``[n_labels]`` (sequence head), raw; ``spans`` int64 ``[n_tokens, 2]``.

        Raises
        ------
        SequenceError
            (a ``ValueError``, :class:`genaannot.tokenize.SequenceError`) ``sequences`` is one
            str rather than a list of them, or a sequence holds a character other than the IUPAC
            nucleotide letters ``ACGTURYKMSWBDHVN`` (either case) and ``-``: names the input's
            index, the 1-based position and the character.
        """
        from ..tokenize import SequenceError, check_sequences

        if isinstance(sequences, (str, bytes)):  # list("ACGT") would predict 4 one-letter inputs
            raise SequenceError("sequences is one str: give a list of sequences (e.g. [seq])")
        sequences = list(sequences)
        check_sequences(sequences)  # a tokenizer reads any letter: '...' would pass as [UNK]
        encodings = self.tokenizer.encode_batch(sequences, stats=stats)
        return self.predict_encoded(encodings, batch_size=batch_size, keep_channels=keep_channels)

    def predict_encoded(
        self,
        encodings: list,
        *,
        batch_size: int = 8,
        keep_channels: list[int] | None = None,
        keep_rows: list[tuple[int, int] | None] | None = None,
        on_batch: Any = None,
    ) -> list[Prediction]:
        """Predict tokenised inputs; see :func:`genaannot.predict.run_network` for
        ``keep_channels`` (label channels to return), ``keep_rows`` (per input, the
        content-token rows to return) and ``on_batch`` (progress callback)."""
        from ..predict import run_network

        return self._run(run_network, encodings, batch_size=batch_size, keep_channels=keep_channels,
                         keep_rows=keep_rows, on_batch=on_batch)

    def predict_windows(
        self,
        tokens: Any,
        ranges: np.ndarray,
        *,
        batch_size: int = 8,
        keep_channels: list[int] | None = None,
        keep_rows: np.ndarray | None = None,
        on_batch: Any = None,
    ) -> PackedOutput:
        """Predict windows that are row ranges ``ranges`` ``[n, 2]`` of one tokenisation
        ``tokens``, packed (:func:`genaannot.predict.run_windows`): the values of
        :meth:`predict_encoded` on the windows' encodings, without an object per window."""
        from ..predict import run_windows

        return self._run(run_windows, tokens, ranges, batch_size=batch_size, keep_channels=keep_channels,
                         keep_rows=keep_rows, on_batch=on_batch)

    def predict_windows_stream(
        self,
        jobs: Iterable[Any],
        *,
        batch_size: int = 8,
        keep_channels: list[int] | None = None,
    ) -> Iterator[tuple[Any, PackedOutput]]:
        """:meth:`predict_windows` for a stream of jobs (:class:`genaannot.predict.WindowsJob`),
        yielding ``(tag, output)`` per job in order, each the value :meth:`predict_windows`
        gives for it alone; on a GPU the device keeps computing between jobs
        (:func:`genaannot.predict.run_windows_stream`)."""
        from ..predict import run_windows_stream

        jobs = iter(jobs)
        if self._compiled is not None and not self._compile_checked:
            # the first job alone, where a compile failure falls back to the eager network
            job = next(jobs, None)
            if job is None:
                return
            yield job.tag, self.predict_windows(job.tokens, job.ranges, batch_size=batch_size,
                                                keep_channels=keep_channels, keep_rows=job.keep_rows,
                                                on_batch=job.on_batch)
        net = self._compiled if self._compiled is not None else self.network
        yield from run_windows_stream(net, jobs, batch_size=batch_size, keep_channels=keep_channels,
                                      max_tokens=self.info.max_tokens, device=self.device, precision=self.precision,
                                      prefetch=self.asynchronous)

    def _run(self, runner: Any, *args: Any, **kw: Any) -> Any:
        """``runner(network, *args, ...)`` on the compiled network, falling back to the eager
        one (with a warning) when compilation fails at the first call."""
        from ..predict import NonFiniteOutputError

        kw.update(max_tokens=self.info.max_tokens, device=self.device, precision=self.precision,
                  prefetch=self.asynchronous)
        if self._compiled is not None:
            if self._compile_checked:
                return runner(self._compiled, *args, **kw)  # errors are real errors now
            try:
                out = runner(self._compiled, *args, **kw)
            except NonFiniteOutputError:
                raise  # the model's outputs, not a compile failure
            except Exception as err:  # noqa: BLE001 - compile errors surface at the first call
                import warnings

                warnings.warn(
                    f"torch.compile failed at the first call ({type(err).__name__}: {str(err)[:200]}); "
                    "running eager from now on",
                    stacklevel=3,
                )
                self._compiled = None
                self.compile_options = None
            else:
                self._compile_checked = True
                return out
        return runner(self.network, *args, **kw)

    def __repr__(self) -> str:
        i = self.info
        return f"Model({i.family}/{i.architecture}, head={i.head}, labels={len(i.labels)}, source={i.source!r})"
