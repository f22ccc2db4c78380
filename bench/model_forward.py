"""Benchmark the GENA BERT forward pass: tokens/s, achieved TFLOP/s, MFU, genome projection.

Builds a GENA-LM BERT-base–shaped token classifier with random weights through
``genaannot.models.gena_bert.build_network`` (default: hidden 768, 12 layers, 12 heads,
intermediate 3072, 512 positions, vocab 32000, pre-LN as the t2t models, 3 labels) and
times full-length batches (``positions - 2`` content tokens + [CLS]/[SEP], no padding):

* ``forward``: the network alone on a batch already on the device (what the GPU can do);
* ``run_network``: :func:`genaannot.predict.run_network` from token ids to float32 numpy
  (adds collation, copies and unpacking; what a scan gets from the model layer);
* with ``--count-ops``: one forward's aten operations and casts (``aten::to``), counted by
  ``torch.profiler``: the host's dispatch work per batch, which a GPU's speed does not hide
  (at a tiny shape, ``forward_ms_per_batch`` on a CPU is mostly that work; docs/scale-log.md
  "A bf16 forward's host work").

FLOPs are counted analytically per token (multiply-add = 2 FLOPs)::

    matmul params per layer  P = 4*d*d + 2*d*i              (Q, K, V, out; FFN in/out)
    FLOPs/token              F = 2*(layers*P + d*labels) + layers*4*L*d
                                                             (QK^T and AV: 2*L*d each)

with d = hidden, i = intermediate, L = tokens per window (incl. [CLS]/[SEP]). At the
base shape and L = 512 this gives 188.7 MFLOP/token (issue: ~190 MFLOP/token). Embedding
lookups, LayerNorm, softmax and GELU are not counted (they are memory-bound, < 1 %).

    TFLOP/s = tokens/s * F / 1e12          MFU = TFLOP/s / --peak-tflops

The genome projection counts the tokens a scan computes: ``genome_bp / bp_per_token``
content tokens, times ``window / stride`` for overlapping windows (overlap 0.5 → 2x),
times ``L / (L - 2)`` for [CLS]/[SEP].

Examples::

    # GPU (H100/H200): the figures the issue asks for
    python bench/model_forward.py --device cuda --precision bf16 --batch-size 64 [--compile]
    # CPU, small shape, so that it finishes
    python bench/model_forward.py --device cpu --hidden 256 --layers 4 --heads 4 \
        --intermediate 1024 --batch-size 4 --iters 3 --threads 2

Prints one block of ``name: value`` lines; ``main(argv)`` also returns them as a dict.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

#: issue-derived defaults
PEAK_TFLOPS_H100_BF16 = 989.0  # H100/H200 SXM dense bf16 tensor-core peak
GENOME_BP = 3.1e9  # human, per strand
BP_PER_TOKEN = 6.5  # GENA t2t BPE, typical


def flops_per_token(*, hidden: int, layers: int, intermediate: int, tokens: int, labels: int) -> float:
    """Analytic forward FLOPs per token (see module docstring)."""
    per_layer_params = 4 * hidden * hidden + 2 * hidden * intermediate
    matmul = 2 * (layers * per_layer_params + hidden * labels)
    attention = layers * 4 * tokens * hidden
    return float(matmul + attention)


def projection(*, tokens_per_s: float, genome_bp: float, bp_per_token: float, overlap: float,
               window_tokens: int) -> dict[str, float]:
    """Seconds to scan ``genome_bp`` (one strand) at ``tokens_per_s`` (positions incl. specials)."""
    from genaannot.windows import stride_tokens

    content = window_tokens - 2
    redundancy = content / stride_tokens(content, overlap)
    positions = genome_bp / bp_per_token * redundancy * window_tokens / content
    return {"tokens_per_strand": positions, "redundancy": redundancy, "seconds_per_strand": positions / tokens_per_s}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 [auto]")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None,
                    help="[bf16 on CUDA, fp32 on CPU]")
    ap.add_argument("--batch-size", type=int, default=None, help="[64 on CUDA, 4 on CPU]")
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--positions", type=int, default=512, help="window incl. [CLS]/[SEP] [512]")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--labels", type=int, default=3)
    ap.add_argument("--iters", type=int, default=None, help="timed batches [20 CUDA, 3 CPU]")
    ap.add_argument("--warmup", type=int, default=None, help="untimed batches [5 CUDA, 1 CPU]")
    ap.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS_H100_BF16,
                    help="device peak for MFU [989 = H100/H200 dense bf16]")
    ap.add_argument("--bp-per-token", type=float, default=BP_PER_TOKEN)
    ap.add_argument("--genome-bp", type=float, default=GENOME_BP, help="bp per strand [3.1e9]")
    ap.add_argument("--overlap", type=float, default=0.5, help="scan overlap for the projection [0.5]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the network (falls back if it fails)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--skip-run-network", action="store_true", help="time the bare forward only")
    ap.add_argument("--count-ops", action="store_true",
                    help="count one forward's aten operations and casts (torch.profiler): the host's "
                         "dispatch work, which a GPU does not hide")
    return ap


def count_ops(forward) -> dict[str, int]:
    """One ``forward()``'s aten operations (every dispatched call, nested ones included) and
    its casts (``aten::to``: under autocast, each lower-precision operation's inputs and,
    unless cast at load, weights), counted by ``torch.profiler`` on the CPU side."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        forward()
    events = prof.key_averages()
    return {"aten_ops_per_forward": sum(e.count for e in events if e.key.startswith("aten::")),
            "casts_per_forward": sum(e.count for e in events if e.key == "aten::to")}


def _time(fn, *, iters: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        fn()
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t) / iters


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    import numpy as np
    import torch

    from genaannot.models.base import Loaded, Model, ModelInfo
    from genaannot.models.gena_bert import GenaBertConfig, build_network
    from genaannot.predict import resolve_device, run_network
    from genaannot.tokenize import Encoding

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    precision = args.precision or ("bf16" if cuda else "fp32")
    bs = args.batch_size or (64 if cuda else 4)
    iters = args.iters or (20 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 runs use TF32 tensor cores

    cfg = GenaBertConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, intermediate_size=args.intermediate,
        max_position_embeddings=args.positions, pre_layer_norm=True,
        id2label={i: f"LABEL_{i}" for i in range(args.labels)},
    )
    torch.manual_seed(0)
    net = build_network(cfg, head="token")
    info = ModelInfo(family="gena_bert", architecture="BertForTokenClassification", head="token",
                     labels=cfg.labels, problem_type=None, max_tokens=net.max_content_tokens,
                     resolution="token", n_params=sum(p.numel() for p in net.parameters()),
                     source="random", tokenizer="none")
    model = Model(Loaded(net, None, info), device=device, precision=precision,  # type: ignore[arg-type]
                  compile=args.compile)
    runner = model._compiled if model.compiled else model.network

    L = args.positions
    content = L - 2
    rng = np.random.default_rng(0)
    ids = [rng.integers(5, args.vocab, size=content) for _ in range(bs)]
    batch = {k: v.to(device) for k, v in net.collate(ids).items()}

    from genaannot.predict import autocast_context

    def forward() -> None:
        with torch.inference_mode(), autocast_context(device, precision):
            runner(**batch)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    try:
        t_fwd = _time(forward, iters=iters, warmup=warmup, sync=sync)
    except Exception as err:  # noqa: BLE001 - compile failure: say so, time eager
        if not model.compiled:
            raise
        print(f"note: torch.compile failed ({type(err).__name__}); timing eager")
        runner = model.network
        t_fwd = _time(forward, iters=iters, warmup=warmup, sync=sync)

    ops = count_ops(forward) if args.count_ops else {}

    spans = np.stack([np.arange(content), np.arange(1, content + 1)], axis=1)
    encs = [Encoding(np.asarray(x, dtype=np.int64), spans) for x in ids] * 4  # 4 batches per call

    def end_to_end() -> None:
        run_network(runner, encs, max_tokens=content, batch_size=bs, device=device, precision=precision)

    t_e2e = None
    if not args.skip_run_network:
        t_e2e = _time(end_to_end, iters=max(1, iters // 4), warmup=1, sync=sync) / 4

    fpt = flops_per_token(hidden=args.hidden, layers=args.layers, intermediate=args.intermediate,
                          tokens=L, labels=args.labels)
    fpt_base = flops_per_token(hidden=768, layers=12, intermediate=3072, tokens=512, labels=args.labels)
    tps = bs * L / t_fwd
    tflops = tps * fpt / 1e12
    res: dict[str, Any] = {
        "device": device + (f" ({torch.cuda.get_device_name(device)})" if cuda else " (CPU)"),
        "torch_threads": torch.get_num_threads(),
        "precision": precision,
        "compiled": model.compiled and runner is not model.network,
        "shape": f"hidden {args.hidden}, layers {args.layers}, heads {args.heads}, "
                 f"intermediate {args.intermediate}, positions {L}, vocab {args.vocab}",
        "params": info.n_params,
        "batch_size": bs,
        "mflop_per_token": fpt / 1e6,
        "mflop_per_token_base_shape_512": fpt_base / 1e6,
        "forward_ms_per_batch": t_fwd * 1e3,
        **ops,
        "forward_tokens_per_s": tps,
        "achieved_tflops": tflops,
        "peak_tflops": args.peak_tflops,
        "mfu": tflops / args.peak_tflops,
    }
    if t_e2e is not None:
        res["run_network_tokens_per_s"] = bs * L / t_e2e
        res["run_network_share_of_forward"] = t_fwd / t_e2e
    # (name, token positions/s, window incl. [CLS]/[SEP]): the base shape's windows are 512 positions
    rates = (("measured", tps, L), ("at_100pct_mfu", args.peak_tflops * 1e12 / fpt, L),
             ("base_shape_at_100pct_mfu", args.peak_tflops * 1e12 / fpt_base, 512))
    for name, rate, window in rates:
        pr = projection(tokens_per_s=rate, genome_bp=args.genome_bp, bp_per_token=args.bp_per_token,
                        overlap=args.overlap, window_tokens=window)
        res[f"genome_hours_per_strand_{name}"] = pr["seconds_per_strand"] / 3600
    redundancy = projection(tokens_per_s=1.0, genome_bp=args.genome_bp, bp_per_token=args.bp_per_token,
                            overlap=args.overlap, window_tokens=L)["redundancy"]
    res["projection_basis"] = (f"{args.genome_bp:.3g} bp/strand, {args.bp_per_token} bp/token, overlap "
                               f"{args.overlap} ({redundancy:.2f}x tokens); 'measured' and "
                               "'at_100pct_mfu' are for this shape, 'base_shape' for GENA BERT-base at 512")
    for k, v in res.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    if not cuda:
        print(
            "NOTE: CPU figures. GPU figures need a GPU: run\n"
            "  python bench/model_forward.py --device cuda --precision bf16 --batch-size 64\n"
            "on an H100/H200; it prints the same lines (forward_tokens_per_s, achieved_tflops, mfu,\n"
            "genome_hours_per_strand_measured). MFU against --peak-tflops is meaningless on CPU\n"
            "unless you pass the CPU's own peak."
        )
    return res


if __name__ == "__main__":
    main()
