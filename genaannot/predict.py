"""Batched inference that knows no architecture.

Tokenised inputs are grouped into batches (sorted by length so padding is small, results
returned in input order), moved to the device, run under ``torch.inference_mode`` with
optional bf16/fp16 autocast, and cut back into per-input float32 arrays. Results do not
depend on batch size up to floating-point rounding of padded batched kernels.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from .models.base import Prediction

if TYPE_CHECKING:
    from .tokenize import Encoding

__all__ = ["run_network", "resolve_device", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` → ``cuda`` when available, else ``cpu``."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} asked for, but torch sees no CUDA device")
    return device


def _autocast(device: str, precision: str):
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


def run_network(
    network,
    encodings: list[Encoding],
    *,
    max_tokens: int,
    batch_size: int = 8,
    device: str = "cpu",
    precision: str = "fp32",
) -> list[Prediction]:
    """Run ``network`` over tokenised inputs; see :class:`genaannot.models.base.Prediction`."""
    import torch

    contents, spans, totals = [], [], []
    n_cut = 0
    for enc in encodings:
        n = len(enc)
        keep = min(n, max_tokens)
        n_cut += n > keep
        contents.append(enc.ids[:keep])
        spans.append(enc.spans[:keep])
        totals.append(n)
    if n_cut:
        warnings.warn(
            f"{n_cut} input(s) longer than the model's {max_tokens} content tokens were cut; "
            "see Prediction.n_tokens_dropped",
            stacklevel=3,
        )
    order = sorted(range(len(contents)), key=lambda i: -len(contents[i]))
    results: list[Prediction | None] = [None] * len(contents)
    head = network.head
    with torch.inference_mode(), _autocast(device, precision):
        for b in range(0, len(order), max(1, batch_size)):
            idx = order[b : b + batch_size]
            batch_content = [contents[i] for i in idx]
            batch = network.collate(batch_content)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            out = network(**batch)
            parts = network.split(out, [len(c) for c in batch_content])
            for i, part in zip(idx, parts):
                logits = part.float().cpu().numpy().astype(np.float32, copy=False)
                results[i] = Prediction(
                    logits=logits,
                    spans=spans[i] if head == "token" else None,
                    n_tokens_total=totals[i],
                    n_tokens_dropped=totals[i] - len(contents[i]),
                )
    return results  # type: ignore[return-value]
