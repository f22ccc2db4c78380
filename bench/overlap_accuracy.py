"""Overlap policy against accuracy: a trained model's held-out AP at each ``--overlap``.

Scans the held-out chromosome (default Chr5 of the bundled *A. thaliana* genome, never seen
in training or validation) with the bundled splice model ``demo-splice-athaliana`` through
the public :func:`genaannot.pipeline.scan.scan_genome` (both strands) at several overlaps
and stitching modes, reads the bigWigs back and prints, per setting: stride in tokens,
windows computed (the cost), and base-pair average precision of acceptor and donor sites
against the annotation (both strands pooled, as ``tests/test_demo.py``), plus the largest
|AP difference| from the densest setting.

    .venv/bin/python bench/overlap_accuracy.py [--chrom Chr5] [--overlaps 0,0.25,0.5,0.75,0.875]
        [--stitch center,mean] [--model demo-splice-athaliana]

Prints ``name: value`` blocks; ``main(argv)`` returns the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"
GFF = REPO / "examples/athaliana/athaliana_1pct.gff3.gz"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="demo-splice-athaliana")
    ap.add_argument("--fasta", type=Path, default=FASTA)
    ap.add_argument("--gff", type=Path, default=GFF)
    ap.add_argument("--chrom", default="Chr5")
    ap.add_argument("--max-bp", type=int, default=None, help="only the first MAX bp of the chromosome")
    ap.add_argument("--overlaps", default="0,0.25,0.5,0.75,0.875")
    ap.add_argument("--stitch", default="center,mean")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)

    import pyBigWig

    from genaannot.io.annotation import read_annotation
    from genaannot.io.fasta import open_genome
    from genaannot.metrics import average_precision
    from genaannot.models import load_model
    from genaannot.pipeline.scan import scan_genome
    from genaannot.regions import Interval

    model = load_model(args.model, device="cpu")
    ann = read_annotation(args.gff)
    with open_genome(args.fasta) as g:
        n = min(g.sizes[args.chrom], args.max_bp or g.sizes[args.chrom])
    truth = {}
    for kind in ("acceptor", "donor"):
        sites = ann.sites(args.chrom, kind)
        ys = []
        for strand in ("+", "-"):
            y = np.zeros(n, dtype=bool)
            pos = np.asarray(sites.on(strand), dtype=np.int64)
            y[pos[pos < n]] = True
            ys.append(y)
        truth[kind] = np.concatenate(ys)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for stitch in args.stitch.split(","):
            for ov in (float(x) for x in args.overlaps.split(",")):
                out = Path(tmp) / f"{stitch}-{ov}.bw"
                t0 = time.perf_counter()
                res = scan_genome(args.fasta, model=model, task="splice", output=out, overlap=ov, stitch=stitch,
                                  regions=[Interval(args.chrom, 0, n)], batch_size=args.batch_size, quiet=True)
                wall = time.perf_counter() - t0
                man = json.loads(res.manifest.read_text())
                row: dict[str, Any] = {"stitch": stitch, "overlap": ov, "window_tokens": man["window_tokens"],
                                       "stride_tokens": man["stride_tokens"], "windows": res.counts["windows"],
                                       "wall_s": round(wall, 1)}
                for kind in ("acceptor", "donor"):
                    vals = []
                    for name in ("plus", "minus"):
                        with pyBigWig.open(str(out.with_name(f"{out.stem}.{kind}.{name}.bw"))) as bw:
                            v = np.asarray(bw.values(args.chrom, 0, n), dtype=np.float64)
                        vals.append(np.nan_to_num(v, nan=0.0))
                    row[f"ap_{kind}"] = round(float(average_precision(np.concatenate(vals), truth[kind])), 4)
                rows.append(row)
    densest = {s: max((r for r in rows if r["stitch"] == s), key=lambda r: r["overlap"]) for s in {r["stitch"] for r in rows}}
    for r in rows:
        ref = densest[r["stitch"]]
        r["max_ap_diff_vs_densest"] = round(max(abs(r["ap_acceptor"] - ref["ap_acceptor"]),
                                                abs(r["ap_donor"] - ref["ap_donor"])), 4)
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main()
