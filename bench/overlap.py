"""Overlap policy: how much the stitched tracks move with the scanner's ``--overlap``.

Scans ~100 kb of real sequence with a tiny random GENA BERT (the real GENA t2t tokenizer,
512 positions, hidden 32, 2 layers, weights redrawn so outputs depend on context) through
the public :func:`genaannot.pipeline.scan.scan_genome` (task ``splice``, + strand, bedGraph
output) at several overlaps, and compares each stitched track with the one at the largest
overlap (the reference: every base sits closest to a window centre). Prints, per overlap:
stride in tokens, model tokens computed relative to the smallest overlap given (0 by default), max |diff| and mean |diff|
against the reference over all bases and both label channels, and the share of bases that
moved by more than 0.01.

Two proxies: ``--context-scale 1`` (every output mixes its whole window) and ``0.1``
(outputs mostly local, weakly context-dependent). A random tiny model is a proxy: it shows how edge effects propagate through stitching,
not the size of a trained model's edge effects (re-run with ``--model PATH`` for that).

    .venv/bin/python bench/overlap.py [--max-bp 100000] [--overlaps 0,0.25,0.5,0.75,0.875,0.9375]
        [--stitch center|mean] [--model PATH] [--fasta FASTA]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
DEFAULT_FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"  # bundled, indexed copy of TAIR10 1%
TOKENIZER = REPO / "genaannot/data/tokenizers/t2t_1000h_multi_32k"


def tiny_gena_t2t(directory: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0,
                  context_scale: float = 1.0) -> Path:
    """A random GENA BERT token classifier (3 labels) with the real t2t tokenizer.

    ``context_scale`` multiplies the attention output projections and the position
    embeddings: 1 leaves the random
    model strongly context-dependent (every token's output mixes the whole window); 0.1
    makes the token's own embedding dominate, with a weak dependence on context.
    """
    import torch
    from tinymodels import randomize_

    from genaannot.io.tokenizers import load_tokenizer
    from genaannot.models.gena_bert import GenaBertConfig, build_network, save_pretrained

    tok = load_tokenizer(TOKENIZER)
    cfg = GenaBertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=2, intermediate_size=4 * hidden, max_position_embeddings=512,
                         pre_layer_norm=True, id2label={i: f"LABEL_{i}" for i in range(3)})
    torch.manual_seed(seed)
    net = build_network(cfg, head="token", cls_id=tok.cls_id, sep_id=tok.sep_id)
    randomize_(net, seed=seed)
    with torch.no_grad():
        # position embeddings too: random ones make the output depend on the absolute
        # position in the window, which trained models largely learn to ignore
        net.bert.embeddings.position_embeddings.weight.mul_(context_scale)
        for layer in net.bert.encoder.layer:
            layer.attention.output.dense.weight.mul_(context_scale)
    return save_pretrained(net, directory, tokenizer=tok, config=cfg)


def read_bedgraph(path: Path, *, length: int) -> np.ndarray:
    """Per-base float64 ``[length]`` of a one-chromosome bedGraph (NaN where no data)."""
    out = np.full(length, np.nan)
    with open(path) as fh:
        for line in fh:
            if line.startswith(("track", "#")) or not line.strip():
                continue
            _c, s, e, v = line.split()[:4]
            out[int(s) : int(e)] = float(v)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fasta", type=Path, default=DEFAULT_FASTA)
    ap.add_argument("--max-bp", type=int, default=100_000)
    ap.add_argument("--overlaps", default="0,0.25,0.5,0.75,0.875,0.9375")
    ap.add_argument("--stitch", choices=["center", "mean"], default="center")
    ap.add_argument("--window-tokens", type=int, default=None, help="[the task's: 510]")
    ap.add_argument("--model", default=None, help="checkpoint (token head, >= 3 labels) [tiny random]")
    ap.add_argument("--context-scale", type=float, default=1.0,
                    help="tiny model: scale of attention output and position embeddings (1 strong, 0.1 weak) [1]")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from genaannot.io.fasta import open_genome
    from genaannot.models import load_model
    from genaannot.pipeline.scan import scan_genome
    from genaannot.regions import Interval
    from genaannot.windows import stride_tokens

    overlaps = sorted(float(x) for x in args.overlaps.split(","))
    ref_ov = overlaps[-1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = load_model(args.model or tiny_gena_t2t(tmp / "model", context_scale=args.context_scale), device="cpu")
        with open_genome(args.fasta) as g:
            chrom = next(iter(g.sizes))
            length = min(args.max_bp, g.sizes[chrom])
        region = [Interval(chrom, 0, length)]
        wt = args.window_tokens or min(510, model.max_tokens)
        tracks: dict[float, list[np.ndarray]] = {}
        tokens: dict[float, int] = {}
        secs: dict[float, float] = {}
        for ov in overlaps:
            out = tmp / f"ov{ov}"
            out.mkdir()
            t = time.perf_counter()
            res = scan_genome(args.fasta, model=model, task="splice", output=out / "t.bw", strand="+",
                              regions=region, window_tokens=wt, overlap=ov, stitch=args.stitch,
                              batch_size=args.batch_size, bedgraph=True, quiet=True)
            secs[ov] = time.perf_counter() - t
            tracks[ov] = [read_bedgraph(p, length=length) for p in res.bedgraphs]
            tokens[ov] = int(res.counts["windows"])
        rows = []
        for ov in overlaps:
            d = np.abs(np.stack(tracks[ov]) - np.stack(tracks[ref_ov]))
            ok = ~np.isnan(d)
            rows.append({
                "overlap": ov,
                "stride_tokens": stride_tokens(wt, ov),
                "windows": tokens[ov],
                "cost_vs_0": tokens[ov] / tokens[min(overlaps)],
                "seconds": secs[ov],
                "max_abs_diff": float(d[ok].max()),
                "mean_abs_diff": float(d[ok].mean()),
                "frac_gt_0.01": float((d[ok] > 0.01).mean()),
            })
    print(f"# {length:,} bp of {chrom} ({args.fasta.name}), + strand, window {wt} tokens, "
          f"stitch {args.stitch}, model {args.model or f'tiny random GENA, context scale {args.context_scale}'}; "
          f"reference: overlap {ref_ov}; channels acceptor, donor (sigmoid)")
    print(f"{'overlap':>8} {'stride':>7} {'windows':>8} {'cost':>6} {'sec':>7} {'max|diff|':>10} "
          f"{'mean|diff|':>11} {'>0.01':>7}")
    for r in rows:
        print(f"{r['overlap']:>8.4g} {r['stride_tokens']:>7d} {r['windows']:>8d} {r['cost_vs_0']:>6.2f} "
              f"{r['seconds']:>7.2f} {r['max_abs_diff']:>10.4f} {r['mean_abs_diff']:>11.5f} "
              f"{r['frac_gt_0.01']:>7.4f}")
    print(f"cost = windows (model tokens) relative to the smallest overlap ({min(overlaps):g}); "
          "diffs vs the reference track")
    return {"rows": rows, "window_tokens": wt, "bp": length}


if __name__ == "__main__":
    main()
