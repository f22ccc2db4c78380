"""Call counts and call precision/recall of a splice scan against an annotation.

Reads the ``OUT.calls.bed`` (narrowPeak) of ``genaannot scan --task splice`` and counts, per
label (acceptor, donor): the calls genome-wide, the annotated sites genome-wide, and on the
held-out chromosome(s) the hits: a call is a hit when its peak (column 10) lies within
``--slack`` bp of an annotated site of the same type and strand; precision = hit calls /
calls, recall = sites with a hit call / sites.

Usage (the README's numbers)::

    genaannot scan examples/athaliana/athaliana_1pct.fa.gz --task splice \\
        --model demo-splice-athaliana -o out/athaliana.bw
    python bench/demo_calls.py out/athaliana.calls.bed --annotation examples/athaliana/athaliana_1pct.gff3.gz \\
        --chroms Chr5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genaannot.io.annotation import read_annotation  # noqa: E402
from genaannot.io.bed import read_calls  # noqa: E402

KINDS = ("acceptor", "donor")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calls", type=Path, help="OUT.calls.bed of a splice scan")
    ap.add_argument("--annotation", type=Path, required=True, help="GFF3/GTF of the scanned genome")
    ap.add_argument("--chroms", default="Chr5", help="held-out chromosomes (comma-separated) for precision/recall")
    ap.add_argument("--slack", type=int, default=2, help="bp between a call's peak and a site for a hit")
    args = ap.parse_args(argv)
    ann = read_annotation(args.annotation)
    held = [c for c in args.chroms.split(",") if c]
    calls = read_calls(args.calls)
    out: dict = {"calls": {}, "sites": {}, "held_out": {}}
    for kind in KINDS:
        mine = [c for c in calls if c.name == kind]
        out["calls"][kind] = len(mine)
        out["sites"][kind] = sum(len(ann.sites(ch, kind)) for ch in ann.chroms)
        hit_calls = n_calls = found = n_sites = 0
        for ch in held:
            ss = ann.sites(ch, kind)
            for strand in "+-":
                sites = np.sort(ss.on(strand))
                peaks = np.array([c.start + int(c.fields[9]) for c in mine if c.chrom == ch and c.strand == strand],
                                 dtype=np.int64)
                n_calls += len(peaks)
                n_sites += len(sites)
                if len(sites) and len(peaks):
                    d_call = np.abs(sites[np.clip(np.searchsorted(sites, peaks), 0, len(sites) - 1)] - peaks)
                    d_left = np.abs(sites[np.clip(np.searchsorted(sites, peaks) - 1, 0, len(sites) - 1)] - peaks)
                    hit_calls += int((np.minimum(d_call, d_left) <= args.slack).sum())
                    peaks_sorted = np.sort(peaks)
                    j = np.searchsorted(peaks_sorted, sites)
                    near = np.minimum(np.abs(peaks_sorted[np.clip(j, 0, len(peaks) - 1)] - sites),
                                      np.abs(peaks_sorted[np.clip(j - 1, 0, len(peaks) - 1)] - sites))
                    found += int((near <= args.slack).sum())
        out["held_out"][kind] = {"calls": n_calls, "hit_calls": hit_calls, "sites": n_sites, "sites_found": found,
                                 "precision": hit_calls / n_calls if n_calls else float("nan"),
                                 "recall": found / n_sites if n_sites else float("nan")}
    total = sum(out["calls"].values())
    per_call = ", ".join(f"{out['calls'][k]:,} {k}" for k in KINDS)
    per_site = ", ".join(f"{out['sites'][k]:,} {k}" for k in KINDS)
    print(f"# {args.calls}: {total:,} calls ({per_call}); annotated sites {sum(out['sites'].values()):,} ({per_site})")
    print(f"# held out {','.join(held)}: a hit = peak within {args.slack} bp of a site of the same type and strand")
    print(f"{'site':>9} {'calls':>6} {'precision':>18} {'recall':>18}")
    for kind in KINDS:
        h = out["held_out"][kind]
        print(f"{kind:>9} {h['calls']:>6} {h['precision']:>7.3f} ({h['hit_calls']}/{h['calls']}) "
              f"{h['recall']:>7.3f} ({h['sites_found']}/{h['sites']})")
    return out


if __name__ == "__main__":
    main()
