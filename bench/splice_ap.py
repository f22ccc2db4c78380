"""Independent splice-site evaluator: bp-level average precision from a scan's bigWig tracks.

Reads the four bigWigs a splice scan writes (``OUT.acceptor.plus.bw``, ``OUT.acceptor.minus.bw``,
``OUT.donor.plus.bw``, ``OUT.donor.minus.bw``; SpliceAI's tracks from
``bench/spliceai_compare.py`` have the same names), the GFF3 and one chromosome, and prints
the average precision of each site type. It knows nothing about the model that made the
tracks, and it parses the GFF3 itself (``exon`` lines only) rather than through
``genaannot.io.annotation``, so that a labelling bug there cannot hide in both.

Definition (per site type: donor, acceptor)
------------------------------------------
* **Sites.** Transcripts are the ``exon`` lines grouped by ``Parent`` (a comma-separated
  ``Parent`` puts the exon in each); introns are the gaps between consecutive exons of a
  transcript (0-based half-open ``[s, e)``). The site base follows ``--site-convention``:
  ``exon`` (SpliceAI's: last exon base before / first exon base after the intron; + strand
  donor ``s-1``, acceptor ``e``; - strand donor ``e``, acceptor ``s-1``) or ``intron`` (first
  / last intron base; + donor ``s``, acceptor ``e-1``; - donor ``e-1``, acceptor ``s``).
  Identical sites of several transcripts count once.
* **Examples.** Every base of the chromosome on both strands (2 x length). A base with no
  track value (a gap the scanner skipped) scores -inf but still counts.
* **Tolerance of +-P bp (``--pool P``, default 2).** A positive's score is the **maximum** of
  that strand's track over ``[site - P, site + P]``. Bases within P bp of a site of the same
  type and strand that are not themselves such a site are left out (they are neither positive
  nor negative: a peak 1 bp off is the site-convention difference, not a false call). Every
  other base is a negative with its own track value (sites of the *other* type included).
  With ``--pool 0`` this is exactly ``genaannot evaluate``'s definition.
* **Average precision**: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds
  taken from high to low (ties form one step), as in scikit-learn's
  ``average_precision_score``.

Usage::

    python bench/splice_ap.py out/athaliana --annotation examples/athaliana/athaliana_1pct.gff3.gz \\
        --chrom Chr5 [--site-convention exon] [--pool 2] [--start S --end E] [--json FILE]

``OUT`` is the scan's ``-o`` without ``.bw``. ``--start``/``--end`` (0-based half-open) keep
only the bases and sites of that span (for a scan restricted with ``--region``; the tolerance
window is clipped at the span's ends). ``main(argv)`` returns the result dict.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("donor", "acceptor")
STRANDS = {"+": "plus", "-": "minus"}


def read_introns(gff: str | Path, chrom: str) -> set[tuple[int, int, str]]:
    """Introns ``(start, end, strand)`` (0-based half-open) of the transcripts on ``chrom``.

    Only ``exon`` lines are read; they are grouped by each ``Parent`` they name.
    """
    opener = gzip.open if str(gff).endswith(".gz") else open
    exons: dict[str, list[tuple[int, int]]] = defaultdict(list)
    strand_of: dict[str, str] = {}
    with opener(gff, "rt") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 9 or f[0] != chrom or f[2] != "exon":
                continue
            attrs = dict(kv.split("=", 1) for kv in f[8].split(";") if "=" in kv)
            for parent in attrs.get("Parent", "").split(","):
                if parent:
                    exons[parent].append((int(f[3]) - 1, int(f[4])))
                    strand_of[parent] = f[6]
    introns = set()
    for tx, ex in exons.items():
        ex.sort()
        for (_, a_end), (b_start, _) in zip(ex, ex[1:]):
            if b_start > a_end:
                introns.add((a_end, b_start, strand_of[tx]))
    return introns


def site_positions(introns: Iterable[tuple[int, int, str]], *, convention: str) -> dict[tuple[str, str], np.ndarray]:
    """``{(kind, strand): sorted unique site positions}`` in the given convention."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for s, e, strand in introns:
        if convention == "exon":
            donor, acceptor = (s - 1, e) if strand == "+" else (e, s - 1)
        elif convention == "intron":
            donor, acceptor = (s, e - 1) if strand == "+" else (e - 1, s)
        else:
            raise ValueError(f"site convention must be exon or intron, not {convention!r}")
        out[("donor", strand)].add(donor)
        out[("acceptor", strand)].add(acceptor)
    return {k: np.array(sorted(v), dtype=np.int64) for k, v in out.items()}


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Step-wise AP with ties grouped: ``scores`` float [n], ``labels`` bool [n]."""
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s, y = np.asarray(scores, dtype=np.float64)[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last = np.r_[s[1:] != s[:-1], True]  # the last index of each group of tied scores
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def pooled_examples(track: np.ndarray, sites: np.ndarray, *, pool: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of one strand and site type (see the module docstring).

    Parameters
    ----------
    track : float [L] the strand's values (NaN where none: scored -inf)
    sites : int [k] positions of that type's sites on that strand
    pool : tolerance P in bp

    Returns
    -------
    scores : float64 [L - excluded]
    labels : bool [L - excluded]
    """
    x = np.where(np.isnan(track), -np.inf, track).astype(np.float64)
    n = len(x)
    sites = sites[(sites >= 0) & (sites < n)]
    keep = np.ones(n, dtype=bool)
    pos_score = np.full(len(sites), -np.inf)
    for d in range(-pool, pool + 1):
        idx = np.clip(sites + d, 0, n - 1)
        pos_score = np.maximum(pos_score, x[idx])
        keep[idx] = False  # neighbours (clipped indices stay within +-P of their site) are left out
    neg = x[keep]
    scores = np.concatenate([pos_score, neg])
    labels = np.zeros(len(scores), dtype=bool)
    labels[: len(sites)] = True
    return scores, labels


def evaluate_tracks(tracks: dict[tuple[str, str], np.ndarray], sites: dict[tuple[str, str], np.ndarray], *,
                    pool: int) -> dict[str, dict[str, float]]:
    """AP per site type over both strands.

    Parameters
    ----------
    tracks : ``{(kind, strand): float [L]}`` for kind in donor/acceptor, strand in +/-
    sites : ``{(kind, strand): int [k]}``
    pool : tolerance in bp
    """
    out = {}
    for kind in KINDS:
        parts = [pooled_examples(tracks[(kind, st)], sites.get((kind, st), np.zeros(0, np.int64)), pool=pool)
                 for st in STRANDS]
        scores = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        out[kind] = {"average_precision": average_precision(scores, labels), "n_pos": int(labels.sum()),
                     "n_neg": int((~labels).sum())}
    return out


def read_tracks(prefix: str | Path, chrom: str) -> dict[tuple[str, str], np.ndarray]:
    """The four bigWigs ``PREFIX.<kind>.<plus|minus>.bw`` over the whole chromosome."""
    import pyBigWig

    tracks = {}
    for kind in KINDS:
        for st, word in STRANDS.items():
            path = f"{prefix}.{kind}.{word}.bw"
            if not Path(path).is_file():
                raise SystemExit(f"{path}: no such track (expected the four bigWigs of a splice scan of {prefix})")
            bw = pyBigWig.open(path)
            try:
                n = dict(bw.chroms())[chrom]
                tracks[(kind, st)] = np.asarray(bw.values(chrom, 0, n, numpy=True), dtype=np.float64)
            finally:
                bw.close()
    return tracks


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefix", help="scan output without .bw (OUT of `genaannot scan ... -o OUT.bw`)")
    ap.add_argument("--annotation", required=True, type=Path, help="GFF3 (optionally .gz)")
    ap.add_argument("--chrom", required=True)
    ap.add_argument("--site-convention", default="exon", choices=["exon", "intron"])
    ap.add_argument("--pool", type=int, default=2, help="tolerance in bp (0: exact base)")
    ap.add_argument("--start", type=int, default=0, help="only bases >= START (0-based) ...")
    ap.add_argument("--end", type=int, default=None, help="... and < END (a scan restricted with --region)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = ap.parse_args(argv)
    if a.pool < 0:
        ap.error("--pool must be >= 0")
    sites = site_positions(read_introns(a.annotation, a.chrom), convention=a.site_convention)
    tracks = read_tracks(a.prefix, a.chrom)
    start, end = a.start, a.end if a.end is not None else len(next(iter(tracks.values())))
    if not 0 <= start < end:
        ap.error("need 0 <= --start < --end")
    tracks = {k: v[start:end] for k, v in tracks.items()}  # sites keep their place relative to START
    sites = {k: v[(v >= start) & (v < end)] - start for k, v in sites.items()}
    res = evaluate_tracks(tracks, sites, pool=a.pool)
    result = {"tracks": str(a.prefix), "chrom": a.chrom, "start": start, "end": end,
              "site_convention": a.site_convention, "pool_bp": a.pool, **res}
    for kind in KINDS:
        r = res[kind]
        print(f"{kind}: AP {r['average_precision']:.4f}  (sites {r['n_pos']}, negatives {r['n_neg']})")
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
