"""Time and peak memory of a HyenaDNA block stack vs a BERT-style (SDPA) attention stack.

Both stacks have the same width and depth and run one sequence of growing length in float32
under ``torch.inference_mode``. Peak memory is the largest resident-set growth during the
forward (CPU: in a spawned child, sampled by a background thread) or ``torch.cuda.max_memory_allocated`` (GPU).
Prints a table and writes a log-log plot.

Usage::

    python bench/attention_scaling.py [--max-len 65536] [--width 128] [--depth 2]
        [--budget-s 120] [--device cpu] [--plot docs/img/attention_scaling.png]

Lengths double from 1024; a stack stops growing once one forward takes longer than
``--budget-s / 4`` seconds or the next step would exceed the remaining budget.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from pathlib import Path

import torch
from torch import nn


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Largest RSS seen while the context is open (sampled every 2 ms)."""

    def __enter__(self) -> _PeakRSS:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())

    @property
    def delta(self) -> int:
        return self.peak - self.base


class BertBlock(nn.Module):
    """Post-norm BERT layer with torch's fused SDPA attention (no mask: one unpadded sequence)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        self.norm2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = nn.functional.scaled_dot_product_attention(q, k, v)
        x = self.norm1(x + self.out(a.transpose(1, 2).reshape(b, n, d)))
        return self.norm2(x + self.fc2(nn.functional.gelu(self.fc1(x))))


def hyena_stack(width: int, depth: int, max_len: int) -> nn.Module:
    from genaannot.models.hyena import HyenaConfig, LMBackbone

    cfg = HyenaConfig(
        d_model=width, n_layer=depth, d_inner=4 * width, vocab_size=12, max_seq_len=max_len + 1,
        emb_dim=5, filter_order=64, num_inner_mlps=2, hyena_order=2, short_filter_order=3,
        activation_freq=10.0, layer_norm_epsilon=1e-5,
    )  # fmt: skip
    return nn.Sequential(*LMBackbone(cfg, fft_max_bytes=256 << 20, mlp_chunk=65536).layers)


def bert_stack(width: int, depth: int) -> nn.Module:
    return nn.Sequential(*[BertBlock(width, heads=max(1, width // 64)) for _ in range(depth)])


def measure(stack: nn.Module, length: int, width: int, device: str) -> tuple[float, int]:
    x = torch.randn(1, length, width, device=device)
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        with torch.inference_mode():
            stack(x)
        torch.cuda.synchronize()
        return time.perf_counter() - t0, torch.cuda.max_memory_allocated() - base
    with _PeakRSS() as mem, torch.inference_mode():
        t0 = time.perf_counter()
        stack(x)
        dt = time.perf_counter() - t0
    return dt, mem.delta


def _child(conn, stack: nn.Module, length: int, width: int, device: str) -> None:
    conn.send(measure(stack, length, width, device))
    conn.close()


def measure_fresh(stack: nn.Module, length: int, width: int, device: str) -> tuple[float, int]:
    """CPU: measure in a fresh (spawned) child, so memory freed by earlier runs cannot hide
    growth; a forked child can deadlock in OpenMP when the parent already used its threads."""
    if device.startswith("cuda"):
        return measure(stack, length, width, device)
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, stack, length, width, device))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-len", type=int, default=65536)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=120.0, help="total seconds per architecture")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--plot", default="docs/img/attention_scaling.png")
    args = ap.parse_args()
    torch.manual_seed(0)
    stacks = {
        "hyena": hyena_stack(args.width, args.depth, args.max_len).to(args.device).eval(),
        "sdpa attention": bert_stack(args.width, args.depth).to(args.device).eval(),
    }
    lengths = []
    n = 1024
    while n <= args.max_len:
        lengths.append(n)
        n *= 2
    results: dict[str, dict[int, tuple[float, int]]] = {k: {} for k in stacks}
    for name, stack in stacks.items():
        measure(stack, 256, args.width, args.device)  # warm-up (allocator, FFT plans)
        spent, last = 0.0, 0.0
        for length in lengths:
            # scaling guess: hyena ~linear, attention ~quadratic in length
            guess = last * (2 if name == "hyena" else 4)
            if last and (last > args.budget_s / 4 or spent + guess > args.budget_s):
                break
            dt, mem = measure_fresh(stack, length, args.width, args.device)
            results[name][length] = (dt, mem)
            spent, last = spent + dt, dt
    print(f"width {args.width}, depth {args.depth}, device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'tokens':>8} | {'hyena s':>9} {'hyena MiB':>10} | {'sdpa s':>9} {'sdpa MiB':>10}")
    for length in lengths:
        row = [f"{length:>8}"]
        for name in stacks:
            if length in results[name]:
                dt, mem = results[name][length]
                row.append(f"{dt:>9.3f} {mem / 2**20:>10.1f}")
            else:
                row.append(f"{'-':>9} {'-':>10}")
        print(" | ".join(row))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name in stacks:
        xs = sorted(results[name])
        ax1.loglog(xs, [results[name][x][0] for x in xs], "o-", label=name)
        ax2.loglog(xs, [max(results[name][x][1], 1) / 2**20 for x in xs], "o-", label=name)
    ax1.set(xlabel="sequence length (tokens)", ylabel="forward time (s)", title="time")
    ax2.set(xlabel="sequence length (tokens)", ylabel="peak memory growth (MiB)", title="memory")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{args.depth} blocks, width {args.width}, {args.device}, {torch.get_num_threads()} thread(s)")
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=120)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
