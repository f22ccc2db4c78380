"""CPU of the thread that feeds the device, per work unit: the scan's packed path against the listed one.

On a GPU the device process's main thread collates batches, launches the network and
takes every window's outputs back; if it needs a whole core, it caps the device
(docs/scale-log.md). This times that thread alone (``time.thread_time``) over one planned
1-Mb unit of a random chromosome (both strands, GENA t2t BPE tokenizer, 510-token windows,
overlap 0.5, centre stitching), with ``host_pipeline.py``'s null network (random
per-token outputs; its own cost, a slice copy from a pool, is included in both paths):

* ``listed``: ``predict_span`` through ``Model.predict_encoded`` (an ``Encoding`` and a
  ``Prediction`` per window) and then ``PackedPredictions.pack`` (what the scan did
  before, to send the outputs to a writer);
* ``packed``: ``predict_span`` through ``Model.predict_windows`` (row ranges of the
  strands' tokenisations in, three arrays out): what the scan does now.

Both give the same values (``tests/test_span.py::test_the_packed_path_gives_the_listed_values``).
Printed per batch size: milliseconds of thread CPU per unit and microseconds per window,
the median of ``--repeat`` alternated runs.

    .venv/bin/python bench/feed_thread.py [--batch-sizes 8,32,64] [--repeat 5]

``main(argv)`` returns ``{batch_size: {path: ms_per_unit}}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", default="8,32,64")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--unit-bp", type=int, default=1_000_000)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(1)  # as a CUDA run's device process
    spec = importlib.util.spec_from_file_location("host_pipeline", REPO / "bench/host_pipeline.py")
    hp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hp)  # type: ignore[union-attr]
    from genaannot.readout import resolve_readout
    from genaannot.span import PackedPredictions, plan_span, predict_span
    from genaannot.windows import Unit

    model = hp.null_model(outputs="random", max_tokens=510)
    n = args.unit_bp
    seq = "".join(np.random.default_rng(0).choice(list("ACGT"), size=n + 20_000))
    ro = resolve_readout("splice", model.info, window_tokens=510)
    work = plan_span(Unit(0, "chrS", 10_000, 10_000 + n, 0, len(seq)), fetch=lambda s, e: seq[s:e],
                     tokenizer=model.tokenizer.for_long_input(), readout=ro, overlap=0.5, stitch_mode="center")
    n_windows = work.meta["windows"]
    print(f"unit_bp: {n}\nwindows_both_strands: {n_windows}")

    def listed(bs: int) -> None:
        PackedPredictions.pack(predict_span(work, predictor=model.predict_encoded, readout=ro, batch_size=bs))

    def packed(bs: int) -> None:
        predict_span(work, windows_predictor=model.predict_windows, readout=ro, batch_size=bs)

    out: dict[int, dict[str, float]] = {}
    for bs in (int(x) for x in args.batch_sizes.split(",")):
        times: dict[str, list[float]] = {"listed": [], "packed": []}
        listed(bs), packed(bs)  # warm-up
        for _ in range(args.repeat):
            for name, f in (("listed", listed), ("packed", packed)):
                t = time.thread_time()
                f(bs)
                times[name].append(time.thread_time() - t)
        out[bs] = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        for k, ms in out[bs].items():
            print(f"batch_size={bs} {k}_ms_per_unit: {ms:.1f}\nbatch_size={bs} {k}_us_per_window: "
                  f"{1e3 * ms / n_windows:.1f}")
    return out


if __name__ == "__main__":
    main()
