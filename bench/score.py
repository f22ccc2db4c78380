"""Benchmark ``score_variants``: ALT alleles per second, batched vs one at a time (CPU).

Builds a tiny random GENA BERT checkpoint (tests/tinymodels.py), a random 200-kb genome and
a sorted VCF of SNVs, multi-allelic SNVs and short indels, then scores it twice:
batched (``--batch-size``, chunks of 256 records) and one variant at a time (chunk 1,
batch 1). Numbers depend on the machine; run with OMP_NUM_THREADS set as you need.

    .venv/bin/python bench/score.py [--variants 300] [--batch-size 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--max-positions", type=int, default=258)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from tinymodels import make_gena_dir, random_dna

    import genaannot
    from genaannot.pipeline.score import score_variants

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        seq = random_dna(200_000, seed=1)
        (d / "g.fa").write_text(">chr1\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
        rng = np.random.default_rng(0)
        pos = np.sort(rng.choice(np.arange(2_000, 198_000), size=args.variants, replace=False))
        lines = ["##fileformat=VCFv4.2", "##contig=<ID=1,length=200000>",
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
        n_alts = 0
        for i, p in enumerate(pos):
            ref = seq[p - 1]
            others = [b for b in "ACGT" if b != ref]
            kind = i % 5
            if kind == 0:
                r, alts = ref, others[:2]  # multi-allelic SNV
            elif kind == 1:
                r, alts = seq[p - 1 : p + 2], [ref]  # 2-bp deletion
            elif kind == 2:
                r, alts = ref, [ref + "AC"]  # insertion
            else:
                r, alts = ref, others[:1]
            n_alts += len(alts)
            lines.append(f"1\t{p}\t.\t{r}\t{','.join(alts)}\t.\t.\t.")
        (d / "in.vcf").write_text("\n".join(lines) + "\n")
        model_dir = make_gena_dir(d / "model", head="token", num_labels=3, hidden=args.hidden,
                                  layers=args.layers, heads=4, max_positions=args.max_positions)
        model = genaannot.load_model(model_dir, device="cpu")
        print(f"model: hidden {args.hidden}, {args.layers} layers, {model.info.max_tokens} tokens/window, "
              f"{model.info.n_params:,} parameters; {args.variants} records, {n_alts} ALTs; "
              f"torch threads {args.threads}")
        runs = {
            f"batched (batch {args.batch_size}, chunk 256)": dict(batch_size=args.batch_size, chunk_size=256),
            "one at a time (batch 1, chunk 1)": dict(batch_size=1, chunk_size=1),
        }
        for name, kw in runs.items():
            t0 = time.perf_counter()
            s = score_variants(d / "in.vcf", genome=d / "g.fa", model=model, task="splice",
                               output=d / "out.vcf.gz", quiet=True, **kw)
            dt = time.perf_counter() - t0
            print(f"{name:<36} {s.alts / dt:8.1f} ALT/s  {s.records / dt:8.1f} records/s  "
                  f"({dt:.2f} s, {s.windows_predicted} windows, {s.cache_hits} ref reuses, scored {s.scored})")


if __name__ == "__main__":
    main()
