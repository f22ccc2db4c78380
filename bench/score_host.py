"""Benchmark the host side of ``genaannot score`` alone: variants per CPU second.

Runs the real :func:`genaannot.pipeline.score.score_variants` (task ``splice``, both
strands, token head, 510-token windows as for GENA BERT-base) over random SNVs and 1-3-bp
indels of the bundled TAIR10 1 % genome, with the NULL network of ``bench/host_pipeline.py``
(zeros of the right shape, instantly) and the real GENA t2t tokenizer. Everything but the
model's arithmetic runs: VCF reading, window planning and tokenisation, collation, the
reference cache, deltas, VCF writing.

Reported (``name: value`` lines):

* ``variants_per_cpu_s`` and ``variants_per_hour_per_core``: per CPU second of this process
  and its ``--workers`` planning processes (``getrusage``), with ``TOKENIZERS_PARALLELISM=false`` unless ``--parallel``;
* ``variants_per_s_wall`` / ``variants_per_hour_wall``: with ``--parallel`` the tokenizer
  spreads each chunk's batch over the cores, so the wall-time rate is what one ``score``
  process can feed a GPU on this machine;
* ``tokens_per_variant``: token positions the null network received per ALT (both
  strands, ref + alt, with specials and padding): what a GPU would compute.

* with ``--device-tokens-per-s R``: an emulated device (the null network sleeps
  ``positions / R`` per batch, without the GIL), ``device_s`` and ``device_busy_fraction``
  (device time / wall time: 1.0 = the device never waited for the host).

    .venv/bin/python bench/score_host.py [--variants 3000] [--parallel] [--device-tokens-per-s R]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENOME = REPO / "examples/athaliana/athaliana_1pct.fa.gz"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=3000)
    ap.add_argument("--parallel", action="store_true", help="let the tokenizer use all cores")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="planning processes [0: a helper thread]")
    ap.add_argument("--device-tokens-per-s", type=float, default=None,
                    help="emulate a device computing at this many token positions/s (see "
                         "host_pipeline.null_model): adds device_s and device_busy_fraction")
    args = ap.parse_args(argv)
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if args.parallel else "false"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from host_pipeline import null_model

    from genaannot.io.fasta import open_genome
    from genaannot.pipeline.score import score_variants

    rng = np.random.default_rng(args.seed)
    with open_genome(GENOME) as g, tempfile.TemporaryDirectory() as tmp:
        chroms = list(g.sizes)
        weights = np.array([g.sizes[c] for c in chroms], dtype=float)
        rows = []
        for c in rng.choice(len(chroms), size=args.variants, p=weights / weights.sum()):
            name = chroms[c]
            pos = int(rng.integers(0, g.sizes[name] - 4))
            kind = rng.integers(0, 4)
            ref = g.fetch(name, pos, pos + (1 if kind < 2 else 1 + kind - 1)).upper()
            if kind == 0:
                alt = "ACGT".replace(ref[0], "")[int(rng.integers(0, 3))] if ref[0] in "ACGT" else "A"
            elif kind == 1:
                alt = ref + "ACG"[: int(rng.integers(1, 4))]
            else:
                alt = ref[0]
            rows.append((chroms.index(name), pos + 1, ref, alt))
        rows.sort()
        vcf = Path(tmp) / "v.vcf"
        with open(vcf, "w") as fh:
            fh.write("##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={c},length={g.sizes[c]}>\n" for c in chroms))
            fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
            fh.writelines(f"{chroms[c]}\t{p}\t.\t{r}\t{a}\t.\t.\t.\n" for c, p, r, a in rows)
        model = null_model(labels=3, max_tokens=510, device_tokens_per_s=args.device_tokens_per_s)

        def cpu() -> float:
            # with --workers, the planning processes have ended (and are counted) when it returns
            me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

        c0, t0 = cpu(), time.perf_counter()
        s = score_variants(vcf, genome=g, model=model, task="splice", output=Path(tmp) / "o.vcf", quiet=True,
                           batch_size=args.batch_size, workers=args.workers)
        cpu_s, wall = cpu() - c0, time.perf_counter() - t0
    res = {
        "alts": s.alts,
        "scored": s.scored,
        "parallel_tokenizer": args.parallel,
        "workers": args.workers,
        "cores": os.cpu_count(),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu_s, 2),
        "variants_per_cpu_s": round(s.alts / cpu_s, 1),
        "variants_per_hour_per_core": round(s.alts / cpu_s * 3600),
        "variants_per_s_wall": round(s.alts / wall, 1),
        "variants_per_hour_wall": round(s.alts / wall * 3600),
        "tokens_per_variant": round(model.network.positions / max(s.alts, 1)),
    }
    if args.device_tokens_per_s:
        res["device_s"] = round(model.network.device_seconds, 2)
        res["device_busy_fraction"] = round(model.network.device_seconds / wall, 3)
    for k, v in res.items():
        print(f"{k}: {v}")
    return res


if __name__ == "__main__":
    main()
