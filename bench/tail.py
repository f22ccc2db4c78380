"""Where a scan's tail goes: the time from its last batch to its end, split by event.

Runs the real :func:`genaannot.pipeline.scan.scan_genome` (task splice, both strands, 4
tracks + calls) ``--repeat`` times in this process over one random chromosome of ``--mb``
Mb (``bench/scale.py``'s genome), with ``bench/host_pipeline.py``'s null network (model-like
random per-token outputs; ``--device-tokens-per-s R``: on its emulated asynchronous device,
the path a GPU takes), and time-stamps (wall clock, ``time.perf_counter``) the calls that
make the tail:

* ``tail_ms``: the last batch's outputs on the host (the scan's last progress call) to the
  scan's return (``bench/scale.py``'s ``tail_s``);
* ``last_part_ms``: to the last unit's part reaching the assembler (its
  :meth:`~genaannot.pipeline.assemble.Assembler.finish` starts): the unit's stitching, runs
  and part file, on a worker with ``--workers N`` (with the trip there and back);
* ``finish_ms``: that ``finish`` (the last part into each track, every file's last blocks,
  zoom levels and indexes, the tracks side by side; then the calls);
* ``units_done_ms``: to the scan's compute loop returning (with workers: their shutdown),
  beside the finishing;
* ``after_ms``: the finishing's end to the scan's return (the manifest, the commit, the
  parts directory's removal), of which ``commit_ms`` the commit.

Printed per run (``run=I key: value``) and the median over runs (``median key: value``);
the tail's share of a short scan is noisy (docs/scale-log.md, "Two measured trade-offs, not
landed"), so run several. The wrapped functions are the library's again afterwards.

    .venv/bin/python bench/tail.py [--mb 1] [--tokenizer bpe|base] [--workers 2] [--device-tokens-per-s 4e6] [--repeat 5]

``main(argv)`` returns ``{"runs": [{key: value}, ...], "median": {key: value}}``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
KEYS = ("wall_s", "tail_ms", "last_part_ms", "finish_ms", "units_done_ms", "after_ms", "commit_ms")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1.0, help="chromosome size in Mb [1]")
    ap.add_argument("--tokenizer", choices=("base", "bpe"), default="bpe")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device-tokens-per-s", type=float, default=4e6,
                    help="the emulated device's rate (0: the null network in-line) [4e6]")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    from genaannot.io.system import steady_heap

    steady_heap()
    import torch

    torch.set_num_threads(1)
    hp, sc = _load("host_pipeline"), _load("scale")
    import genaannot.pipeline.assemble as assemble
    import genaannot.pipeline.scan as scan
    from genaannot.io.atomic import OutputSet

    stamps: list[tuple[float, str]] = []
    wrapped: list[tuple[object, str, object]] = []  # put back at the end (a test's process goes on)

    def wrap(obj, name: str, label: str) -> None:
        f = getattr(obj, name)
        wrapped.append((obj, name, f))

        @functools.wraps(f)
        def stamped(*a, **k):
            stamps.append((time.perf_counter(), label + ">"))
            try:
                return f(*a, **k)
            finally:
                stamps.append((time.perf_counter(), label + "<"))

        setattr(obj, name, stamped)

    wrap(assemble.Assembler, "finish", "finish")
    wrap(scan, "compute_units", "units")
    wrap(OutputSet, "commit", "commit")

    tmp = Path(tempfile.mkdtemp(prefix="genaannot-tail-"))
    runs: list[dict[str, float]] = []
    try:
        fasta = sc.write_genome(tmp / "g.fa", int(args.mb * 1e6))
        model = hp.null_model(outputs="random", tokenizer=args.tokenizer, max_tokens=sc.WINDOW_TOKENS,
                              device_tokens_per_s=args.device_tokens_per_s or None)
        batch_size = scan.default_batch_size(devices="cuda", window_tokens=sc.WINDOW_TOKENS) \
            if args.device_tokens_per_s else None
        last = [0.0]  # the last progress call's time

        def progress(n: int) -> None:
            last[0] = time.perf_counter()

        for i in range(args.repeat):
            stamps.clear()
            t0 = time.perf_counter()
            scan.scan_genome(fasta, model=model, task="splice", output=tmp / f"o{i}" / "s.bw", strand="both",
                             quiet=True, progress=progress, workers=args.workers, batch_size=batch_size)
            t1 = time.perf_counter()

            def first(label: str) -> float:
                return next(t for t, x in stamps if x == label)

            lp = last[0]
            row = {"wall_s": t1 - t0, "tail_ms": 1000 * (t1 - lp),
                   "last_part_ms": 1000 * (first("finish>") - lp),
                   "finish_ms": 1000 * (first("finish<") - first("finish>")),
                   "units_done_ms": 1000 * (first("units<") - lp),
                   "after_ms": 1000 * (t1 - first("finish<")),
                   "commit_ms": 1000 * (first("commit<") - first("commit>"))}
            runs.append(row)
            for k in KEYS:
                print(f"run={i + 1} {k}: {row[k]:.4g}")
            shutil.rmtree(tmp / f"o{i}", ignore_errors=True)
    finally:
        for obj, name, f in reversed(wrapped):
            setattr(obj, name, f)
        shutil.rmtree(tmp, ignore_errors=True)
    median = {k: statistics.median(r[k] for r in runs) for k in KEYS}
    for k in KEYS:
        print(f"median {k}: {median[k]:.4g}")
    print(f"median tail: {median['tail_ms']:.0f} ms of {median['wall_s']:.2f} s "
          f"({100 * median['tail_ms'] / 1000 / median['wall_s']:.1f} %)")
    return {"runs": runs, "median": median}


if __name__ == "__main__":
    main()
