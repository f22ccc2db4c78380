"""Where a scan's host CPU goes: thread CPU seconds per stage, one random chromosome.

Runs the real :func:`genaannot.pipeline.scan.scan_genome` (task splice, both strands, 4
tracks, the GENA t2t tokenizer, ``bench/host_pipeline.py``'s null network with model-like
random per-token outputs) over one random chromosome of ``--mb`` Mb (``bench/scale.py``'s
genome), in this process, and wraps the stages with ``time.thread_time`` counters, so each
figure is the CPU of the thread that ran it (main: planning and the model layer; writer:
stitching, run-length encoding, part files; assembler: the bigWig writers; collate: the
batches of token ids), whatever the machine's load. Nested stages are included in their
parents (``plan_span`` holds ``tokenize_long`` holds ``FastBPE.encode``). Printed: total CPU
of the scan call and its minor page faults, then per stage seconds, CPU-s per Mb per strand,
share of the total and the stage thread's minor page faults (memory touched afresh: a
scan gives its free heap back after each unit, so a unit's temporaries fault in again).

    .venv/bin/python bench/stage_cpu.py [--mb 8] [--tokenizer bpe|base] [--device-tokens-per-s R] [--batch-size B]

``--tokenizer base`` is the character tokenizer of HyenaDNA and the bundled CNNs (a value per
base), as in ``bench/scale.py``; ``--device-tokens-per-s`` runs the scan's GPU path (all units
in one stream of batches) on ``host_pipeline``'s emulated device, at the batch size a scan on
CUDA takes unless ``--batch-size`` sets it. Not every function is wrapped (the model
layer's batch loop, the start), so the stages do not add up to the total.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.util
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # Linux; elsewhere the process's

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / f"bench/{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=8.0)
    ap.add_argument("--tokenizer", choices=("bpe", "base"), default="bpe")
    ap.add_argument("--device-tokens-per-s", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--unit-bp", type=int, default=None, help="work-unit size [the scanner's default]")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    hp, sc = _load("host_pipeline"), _load("scale")
    import genaannot.bpe as bpe
    import genaannot.pipeline.assemble as assemble
    import genaannot.pipeline.scan as scan
    import genaannot.predict as predict
    import genaannot.span as span
    import genaannot.windows as windows
    from genaannot.io.parts import PartsStore

    acc: collections.Counter = collections.Counter()
    faults: collections.Counter = collections.Counter()  # minor page faults of the stage's thread
    wrapped: list[tuple[object, str, object]] = []  # put back at the end (the smoke test's process goes on)

    def wrap(obj, name: str, label: str) -> None:
        f = getattr(obj, name, None)
        if f is None:  # a version without it (old/new comparisons through PYTHONPATH)
            return
        wrapped.append((obj, name, f))

        @functools.wraps(f)
        def timed(*a, **k):
            t, m = time.thread_time(), resource.getrusage(RUSAGE_THREAD).ru_minflt
            try:
                return f(*a, **k)
            finally:
                acc[label] += time.thread_time() - t
                faults[label] += resource.getrusage(RUSAGE_THREAD).ru_minflt - m

        setattr(obj, name, timed)

    model = hp.null_model(outputs="random", tokenizer=args.tokenizer, max_tokens=sc.WINDOW_TOKENS,
                          device_tokens_per_s=args.device_tokens_per_s)
    batch_size = args.batch_size
    if batch_size is None and args.device_tokens_per_s:
        batch_size = scan.default_batch_size(devices="cuda", window_tokens=sc.WINDOW_TOKENS)
    wrap(scan, "compute_units", "main: compute_units (every unit: planning, model layer)")
    wrap(scan, "plan_span", "main: plan_span (reading, tokenising, windows)")
    wrap(windows, "tokenize_long", "main:   tokenize_long")
    wrap(bpe.FastBPE, "encode", "main:     FastBPE.encode (compiled merge loop)")
    wrap(scan, "predict_span", "main: predict_span (model layer)")
    wrap(type(model.network), "forward", "main:   null network forward (random outputs)")
    wrap(type(model.network), "collate", "collate thread: batches of token ids")
    wrap(predict, "batch_plan", "main:   batch_plan")
    wrap(predict, "_windows_output", "main:   _windows_output (a unit's outputs, packed)")
    wrap(scan, "span_pieces", "writer: span_pieces (activation, centre pieces)")
    wrap(span, "center_pieces", "writer:   center_pieces")
    wrap(span, "center_dense", "writer:   center_dense (a token per base)")
    wrap(scan, "stitch_span", "writer: stitch_span (per base, fallback)")
    wrap(scan, "_part", "writer: _part (runs, rounding, call runs)")
    wrap(PartsStore, "save", "writer: part file")
    wrap(assemble.Assembler, "feed", "assembler: feed (bigWig blocks, zooms)")
    wrap(PartsStore, "load", "assembler: part file read back")
    wrap(assemble.Assembler, "finish", "tail: finish (indexes, calls)")
    tmp = Path(tempfile.mkdtemp())
    try:
        fa = sc.write_genome(tmp / "g.fa", int(args.mb * 1e6))
        me = resource.getrusage(resource.RUSAGE_SELF)
        c0, f0 = me.ru_utime + me.ru_stime, me.ru_minflt
        res = scan.scan_genome(fa, model=model, task="splice", output=tmp / "o" / "s.bw", strand="both", quiet=True,
                               progress=lambda n: None, batch_size=batch_size,
                               unit_bp=args.unit_bp)
        me = resource.getrusage(resource.RUSAGE_SELF)
        total, total_faults = me.ru_utime + me.ru_stime - c0, me.ru_minflt - f0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for obj, name, f in reversed(wrapped):
            setattr(obj, name, f)
    mb = res.counts["bp_scanned"] / 1e6
    out = {"total": total, "minor_faults": total_faults, **acc}
    print(f"scan CPU {total:.2f} s = {total / (2 * mb):.3f} CPU-s per Mb per strand ({mb:.2f} Mb, both strands); "
          f"{total_faults:,} minor page faults")
    for k, v in acc.items():
        print(f"  {k:52s} {v:7.2f} s  {v / (2 * mb):.3f}  {100 * v / total:5.1f} %  {faults[k]:>9,} faults")
    return out


if __name__ == "__main__":
    main()
