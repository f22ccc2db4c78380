"""Benchmark ``scan_genome`` on CPU: bp/s, share of wall time in the model forward, peak RSS.

Usage::

    python bench/scan.py [--fasta FA] [--model PATH] [--task splice] [--max-bp 300000] [--workers N]

Without ``--model`` a tiny random GENA BERT checkpoint is built in a temporary directory
(``tests/tinymodels.py``: hidden 16, 2 layers, a 96-entry BPE vocabulary, 128-token
windows), so the figures measure the pipeline (FASTA, tokenising, windows, stitching,
writers) more than the network. Without ``--fasta`` the bundled A. thaliana TAIR10 1%
genome (``examples/athaliana/athaliana_1pct.fa.gz``) is used. The FASTA is copied to a
temporary directory first and its index built there, before the timed scan.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"  # bundled, indexed copy of TAIR10 1%


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fasta", type=Path, default=DEFAULT_FASTA)
    ap.add_argument("--model", default=None, help="checkpoint (default: tiny random GENA BERT)")
    ap.add_argument("--task", default="splice")
    ap.add_argument("--max-bp", type=int, default=300_000, help="scan only the first MAX bp of the genome")
    ap.add_argument("--window-tokens", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="host worker processes [0: in-process]")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from genaannot.io.fasta import open_genome
    from genaannot.models import load_model
    from genaannot.pipeline.scan import scan_genome

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fa = tmp / args.fasta.name
        shutil.copy(args.fasta, fa)
        if args.model is None:
            sys.path.insert(0, str(REPO / "tests"))
            from tinymodels import make_gena_dir

            head = "sequence" if args.task in ("promoter", "chromatin") else "token"
            model_path = make_gena_dir(tmp / "tiny", head=head, num_labels=3 if head == "token" else 2)
        else:
            model_path = args.model
        model = load_model(model_path, device="cpu")
        bed = tmp / "regions.bed"
        with open_genome(fa) as g, open(bed, "w") as fh:
            left = args.max_bp
            for chrom, size in g.sizes.items():
                if left <= 0:
                    break
                n = min(size, left)
                fh.write(f"{chrom}\t0\t{n}\n")
                left -= n
        t0 = time.perf_counter()
        res = scan_genome(fa, model=model, task=args.task, output=tmp / "bench.bw", regions=bed,
                          window_tokens=args.window_tokens, batch_size=args.batch_size, quiet=True,
                          **({"workers": args.workers} if args.workers else {}))
        wall = time.perf_counter() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        bp = res.counts["bp_scanned"]
        out = {
            "fasta": str(args.fasta),
            "model": str(model.info.source) if args.model else "tiny random GENA BERT (tests/tinymodels.py)",
            "task": args.task,
            "bp_scanned": bp,
            "windows": res.counts["windows"],
            "window_tokens": json.loads(res.manifest.read_text())["window_tokens"],
            "strands": json.loads(res.manifest.read_text())["strands"],
            "wall_s": round(wall, 2),
            "bp_per_s": round(bp / wall),
            "model_forward_share": round(res.model_seconds / wall, 3),
            "peak_rss_mb": round(rss_mb),
            "torch_threads": args.threads,
            "workers": args.workers,
        }
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
