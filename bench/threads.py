"""Benchmark ``genaannot scan --threads`` on a busy and on a quiet machine.

Runs the real CLI (``genaannot scan``, the README's bundled model and genome, first
``--max-bp`` bp, everything else at its default) once per setting and repeat, the settings
interleaved (A B C A B C …) so that a change in the machine's load hits them alike. With
``--busy K``, K busy-loop processes (one core each) run during the whole benchmark: a
machine shared with other jobs. Before each run the benchmark waits (up to 120 s) for the
1-minute load average to fall below ``--busy + --settle``, so that the default's reading of
the load does not see the previous run. Per run: wall seconds and CPU seconds of the scan and its
worker processes (``RUSAGE_CHILDREN``); per setting, the median. The outputs of every run
are compared byte by byte (the thread count must not change a file).

Settings: ``1``, ``2`` … (``--threads N``), ``all`` (``--threads <cores>``: what torch used
before the option existed) and ``auto`` (no ``--threads``: the default,
:func:`genaannot.pipeline.workers.default_threads`).

    .venv/bin/python bench/threads.py [--busy 2] [--repeats 3] [--max-bp 200000] [--settings 1,all,auto]

Prints one line per run and ``name: value`` summary lines.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Process
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"


def _burn() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.suffix in (".bw", ".bed"):
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes running meanwhile")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-bp", type=int, default=200_000)
    ap.add_argument("--settings", default="1,all,auto")
    ap.add_argument("--model", default="demo-splice-athaliana")
    ap.add_argument("--settle", type=float, default=0.7,
                    help="before each run, wait (up to 120 s) until the 1-minute load is below --busy + SETTLE, "
                         "so that the previous run's load does not count as another program's")
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    exe = [sys.executable, "-m", "genaannot"]
    burners = [Process(target=_burn, daemon=True) for _ in range(args.busy)]
    for b in burners:
        b.start()
    results: dict[str, list[tuple[float, float]]] = {s: [] for s in settings}
    digests: set[str] = set()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            fa = tmp / FASTA.name
            shutil.copy(FASTA, fa)
            for ext in (".fai", ".gzi"):
                if Path(str(FASTA) + ext).exists():
                    shutil.copy(str(FASTA) + ext, str(fa) + ext)
            bed = tmp / "r.bed"
            bed.write_text(f"Chr1\t0\t{args.max_bp}\n")
            time.sleep(2)  # let the burners take their cores
            for rep in range(args.repeats):
                for s in settings:
                    out = tmp / f"{s}-{rep}"
                    cmd = [*exe, "scan", str(fa), "--task", "splice", "--model", args.model, "--regions", str(bed),
                           "-o", str(out / "x.bw"), "--quiet"]
                    if s == "all":
                        cmd += ["--threads", str(cores)]
                    elif s != "auto":
                        cmd += ["--threads", s]
                    waited = time.perf_counter()
                    while os.getloadavg()[0] >= args.busy + args.settle and time.perf_counter() - waited < 120:
                        time.sleep(2)
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
                    wall = time.perf_counter() - t0
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                    digests.add(_digest(out))
                    shutil.rmtree(out)
                    results[s].append((wall, cpu))
                    print(f"run {rep + 1} threads={s}: wall {wall:.1f} s, cpu {cpu:.1f} s, "
                          f"load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for b in burners:
            b.terminate()
    summary: dict[str, float] = {}
    print(f"cores: {cores}\nbusy_processes: {args.busy}\nbp: {args.max_bp}\nrepeats: {args.repeats}")
    for s in settings:
        summary[f"wall_s_median[{s}]"] = statistics.median(w for w, _ in results[s])
        summary[f"cpu_s_median[{s}]"] = statistics.median(c for _, c in results[s])
    for k, v in summary.items():
        print(f"{k}: {v:.1f}")
    print(f"identical_outputs: {len(digests) == 1}")
    return summary


if __name__ == "__main__":
    main()
