"""Benchmark the genome-scale output path: peak RSS, CPU and file size against chromosome length.

For each size (``--sizes-mb``, default 1, 16, 64) a FASTA with ONE chromosome of that many
Mb (seeded random ACGT with a few N runs; ``--chroms N``: N chromosomes of that size, a
whole genome) is scanned, both strands, task ``splice`` (4
bigWig tracks + calls), by the real :func:`genaannot.pipeline.scan.scan_genome` with the
null network of ``host_pipeline.py``: model-like RANDOM per-token outputs (``--outputs
random``, every token's value differs, ~97 % of probabilities < 0.01), so that the writers
see what a real model gives them, not flattering all-zero tracks. Each size runs in a fresh
process, so that its peak RSS is its own.

``--tokenizer base`` uses the character tokenizer of HyenaDNA and the bundled CNNs (one
token per base: the largest tracks, a value per base; 80-kb work units by default);
``bpe`` the GENA t2t BPE tokenizer (a value per token). (Until 2026-12-06 17:50 UTC ``base``
was the bundled demo model's single-letter BPE tokenizer, run through ``tokenizers``:
~290 ns a base against ~25–50 for the character tokenizer, which overstated the host CPU
of 1-bp-token models by ~0.3 CPU-s per Mb per strand.)
``--device-tokens-per-s R`` runs the null network on ``host_pipeline.py``'s emulated
asynchronous device, so the scan takes the path it takes on a GPU (every unit through one
stream of batches, the next unit planned while the last one's batches finish), with the
batch size a scan on CUDA takes (``scan.default_batch_size``: 64 windows of 510 tokens;
until 2026-12-06 20 UTC, 8, the CPU default, which the GPU path then also took).

Printed per size (``size_mb=N key: value`` lines, and a table):

* ``mb_scanned``: bp scanned per strand, in Mb (N runs are not scanned);
* ``peak_rss_mb``: the scanning process's peak resident memory (``ru_maxrss``: start-up
  included), ``scan_peak_rss_mb`` its peak during the scan call (the heap's free pages given
  back and the kernel's high-water mark reset after the null model is built; Linux), and
  ``worker_peak_rss_mb`` the largest worker process's (``--workers N``, sampled every
  0.2 s from ``/proc``, spawned workers only, not helper programs; 0 without);
* ``cpu_s``, ``cpu_s_per_mb_strand``: CPU seconds of the scan call (the process and its
  workers, start-up and imports left out), and per Mb of one strand (the null network's own
  cost is a copy from a pool of random values drawn once);
* ``sys_s`` and ``minor_faults``: the scanning process's system CPU and minor page faults
  (the heap policy's cost, docs/scale.md "Heap");
* ``wall_s`` and ``tail_s``: the time from the last base computed to the end of the scan
  (what assembly leaves after the model: indexes, zoom levels, calls, commit), and
  ``tail_fraction = tail_s / wall_s``;
* ``bytes_per_mb_track``: bigWig bytes per Mb per track (mean of the 4 tracks);
* ``calls_per_mb_track``: BED calls per Mb per track (the null network's sites,
  ``host_pipeline.SITE_FRACTION`` of the token values, a sixth of that with ``--tokenizer
  base``: ~620 either way, as the default splice model makes on the bundled genome).

    .venv/bin/python bench/scale.py [--sizes-mb 1,16,64] [--chroms N] [--tokenizer base|bpe] [--track-digits 3|full]

``main(argv)`` returns ``{size_mb: {figure: value}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
#: the null network's window, in tokens
WINDOW_TOKENS = 510


def write_genome(path: Path, size: int, *, seed: int = 0, chroms: int = 1) -> Path:
    """One chromosome ``chrS`` of ``size`` bp: random ACGT, 60-bp lines, an N run every ~10 Mb;
    with ``chroms`` > 1 a genome of ``chr1`` … ``chrN`` of ``size`` bp each (seeds ``seed``,
    ``seed + 1``, …: ``chr1`` is the one-chromosome genome's sequence)."""
    import numpy as np

    with open(path, "w") as fh:
        for c in range(chroms):
            rng = np.random.default_rng(seed + c)
            fh.write(">chrS\n" if chroms == 1 else f">chr{c + 1}\n")
            step = 60 * (1 << 16)  # whole lines per chunk: the FASTA stays indexable
            for a in range(0, size, step):
                n = min(step, size - a)
                s = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, n)].copy()
                if a % 10_000_000 < step and n > 20_000:
                    s[5_000:15_000] = ord("N")
                text = s.tobytes().decode()
                fh.write("\n".join(text[i : i + 60] for i in range(0, len(text), 60)) + "\n")
    return path


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:")) / 1024


def _child(fasta: str, out: str, tokenizer: str, outputs: str, track_digits: str, workers: int,
           device_rate: float | None = None, unit_bp: int | None = None, batch_size: int | None = None) -> None:
    """One scan in this (fresh) process; prints one JSON line of figures."""
    import importlib.util
    import resource

    try:  # first, as `genaannot scan` does: threads started before keep their own heaps
        from genaannot.io.system import steady_heap
    except ImportError:  # a version before it (old/new comparisons through PYTHONPATH)
        steady_heap = None
    if steady_heap is not None:
        steady_heap()
    import torch

    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("host_pipeline", REPO / "bench/host_pipeline.py")
    hp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hp)  # type: ignore[union-attr]
    from genaannot.pipeline.scan import scan_genome

    # sites per token: ~620 calls per Mb per track with either tokenizer (null_model's default)
    model = hp.null_model(outputs=outputs, tokenizer=tokenizer, max_tokens=WINDOW_TOKENS, device_tokens_per_s=device_rate)
    last = [time.perf_counter()]

    def progress(n: int) -> None:
        last[0] = time.perf_counter()

    digits: Any = None if track_digits == "full" else int(track_digits)

    def cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    # the worker processes' peak RSS (VmHWM), sampled while they live: RUSAGE_CHILDREN's
    # maxrss would count helper programs forked from this large process (find_library's),
    # and so would a sampler that took every child (a 269-MB reading once): only spawned
    # workers (their command line runs multiprocessing's spawn_main) are counted
    import threading

    hwm: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            try:
                kids = [int(p) for t in os.listdir("/proc/self/task")
                        for p in open(f"/proc/self/task/{t}/children").read().split()]
            except OSError:
                continue
            for pid in kids:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        if b"spawn_main" not in fh.read():  # not a worker: a forked helper program
                            continue
                    with open(f"/proc/{pid}/status") as fh:
                        kb = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:"))
                    hwm[pid] = max(hwm.get(pid, 0), kb / 1024)
                except (OSError, StopIteration):
                    pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # the scan's own peak: what building the null model left freed is given back, and the
    # kernel's high-water mark is reset (Linux: clear_refs 5), so a short scan's figure is
    # not the set-up's (which decided the 1-Mb peak in some runs and not others: docs/scale-log.md)
    try:
        from genaannot.io.system import release_free_heap

        release_free_heap()
    except ImportError:  # an older version (old/new comparisons through PYTHONPATH)
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    c0 = cpu()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    res = scan_genome(fasta, model=model, task="splice", output=Path(out) / "s.bw", strand="both", quiet=True,
                      progress=progress, track_digits=digits, workers=workers, unit_bp=unit_bp,
                      batch_size=batch_size)
    t1 = time.perf_counter()
    stop.set()
    print(json.dumps({
        "bp": res.counts["bp_scanned"],
        "wall_s": t1 - t0,
        "tail_s": t1 - last[0],
        "cpu_s": cpu() - c0,
        "sys_s": resource.getrusage(resource.RUSAGE_SELF).ru_stime - r0.ru_stime,
        "minflt": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0.ru_minflt,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "scan_peak_rss_mb": _vm_hwm_mb() if hwm_reset else float("nan"),
        "worker_peak_rss_mb": max(hwm.values(), default=0.0),
        "track_bytes": [p.stat().st_size for p in res.tracks],
        "calls": res.counts.get("calls", 0),
    }))


def main(argv: list[str] | None = None) -> dict[float, dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-mb", default="1,16,64", help="chromosome sizes in Mb [1,16,64]")
    ap.add_argument("--chroms", type=int, default=1,
                    help="chromosomes of each size: a genome of N x size Mb (figures per Mb are of the whole) [1]")
    ap.add_argument("--tokenizer", choices=("base", "bpe"), default="base")
    ap.add_argument("--outputs", choices=("random", "zeros"), default="random")
    ap.add_argument("--track-digits", default="2", help="0-7 or 'full' [the scan default, 2]")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--device-tokens-per-s", type=float, default=None,
                    help="scan on bench/host_pipeline.py's emulated asynchronous device at this rate: the "
                         "path a GPU takes (all units in one stream of batches) [the CPU path]")
    ap.add_argument("--unit-bp", type=int, default=None, help="work-unit size [the scanner's default]")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="windows per batch [what a scan takes: with --device-tokens-per-s the CUDA default "
                         "for 510-token windows, 64; else 8]")
    ap.add_argument("--child", nargs=2, metavar=("FASTA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(*args.child, args.tokenizer, args.outputs, args.track_digits, args.workers, args.device_tokens_per_s,
               args.unit_bp, args.batch_size)
        return {}
    batch_size = args.batch_size
    if batch_size is None and args.device_tokens_per_s:
        # the emulated device is a CPU tensor: take the batch a scan on a GPU would take
        from genaannot.pipeline.scan import default_batch_size

        batch_size = default_batch_size(devices="cuda", window_tokens=WINDOW_TOKENS)
    print(f"batch_size: {batch_size or 'the scan default (8 on CPU)'}")
    results: dict[float, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mb in (float(x) for x in args.sizes_mb.split(",")):
            fa = write_genome(Path(tmp) / f"g{mb:g}.fa", int(mb * 1e6), chroms=args.chroms)
            out = Path(tmp) / f"o{mb:g}"
            cmd = [sys.executable, __file__, "--child", str(fa), str(out), "--tokenizer", args.tokenizer,
                   "--outputs", args.outputs, "--track-digits", args.track_digits, "--workers", str(args.workers)]
            if args.device_tokens_per_s:
                cmd += ["--device-tokens-per-s", str(args.device_tokens_per_s)]
            if args.unit_bp:
                cmd += ["--unit-bp", str(args.unit_bp)]
            if batch_size:
                cmd += ["--batch-size", str(batch_size)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"size {mb:g} Mb failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            mb_scanned = r["bp"] / 1e6
            row = {
                "mb_scanned": mb_scanned,
                "peak_rss_mb": r["peak_rss_mb"],
                "scan_peak_rss_mb": r.get("scan_peak_rss_mb", float("nan")),
                "cpu_s": r["cpu_s"],
                "cpu_s_per_mb_strand": r["cpu_s"] / (2 * mb_scanned),
                "worker_peak_rss_mb": r["worker_peak_rss_mb"],
                "sys_s": r["sys_s"],
                "minor_faults": r["minflt"],
                "wall_s": r["wall_s"],
                "tail_s": r["tail_s"],
                "tail_fraction": r["tail_s"] / r["wall_s"],
                "bytes_per_mb_track": sum(r["track_bytes"]) / len(r["track_bytes"]) / mb_scanned,
                "calls_per_mb_track": r["calls"] / len(r["track_bytes"]) / mb_scanned,
            }
            results[mb] = row
            for k, v in row.items():
                print(f"size_mb={mb:g} {k}: {v:.4g}")
            for p in out.parent.glob(f"o{mb:g}*"):
                subprocess.run(["rm", "-rf", str(p)], check=False)
            fa.unlink()
    print(f"\n{'Mb':>6} {'peak RSS MB':>12} {'scan peak MB':>13} {'CPU s/Mb/strand':>16} {'tail s':>8} {'tail %':>7} {'bytes/Mb/track':>15} {'calls/Mb/track':>15}")
    for mb, r in results.items():
        print(f"{mb:>6g} {r['peak_rss_mb']:>12.0f} {r['scan_peak_rss_mb']:>13.0f} {r['cpu_s_per_mb_strand']:>16.3f} {r['tail_s']:>8.2f} "
              f"{100 * r['tail_fraction']:>7.1f} {r['bytes_per_mb_track']:>15,.0f} {r['calls_per_mb_track']:>15,.0f}")
    return results


if __name__ == "__main__":
    main()
