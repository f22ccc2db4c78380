"""End-to-end GPU figures: a whole ``scan_genome`` and ``score_variants`` run with a GENA
BERT-base–shaped model (random weights, the real GENA t2t tokenizer), as a user runs them.

What it does:

1. writes a random checkpoint (``gena_bert.build_network`` + ``save_pretrained``; default
   hidden 768, 12 layers, 12 heads, intermediate 3072, 512 positions, 3 labels) and a
   genome made of ``--repeat`` renamed copies of the bundled *A. thaliana* 1 % FASTA (or
   ``--fasta``), so the scan lasts long enough to time;
2. times the bare forward on full 512-position batches (``forward_tokens_per_s``: what the
   device can do at this batch size and precision);
3. scans the genome (task splice, both strands, default overlap and stitching, host
   ``--workers``), counting the token positions the network computes (padding included)
   in the collate step, and sampling the device's utilisation every 0.1 s through NVML
   (``torch.cuda.utilization``; ``n/a`` without ``pynvml``);
4. scores ``--variants`` random SNVs and 1-bp deletions spread over the genome (task splice,
   ±50 bp, both strands).

Printed (``name: value``):

* ``scan_bp_per_s`` (genome bp, both strands done), ``scan_tokens_per_s`` (positions the
  network computed per second of wall time);
* ``busy_fraction_from_rate`` = ``scan_tokens_per_s / forward_tokens_per_s``: the share of
  the wall time the device would need for the scan's positions at its bare-forward rate,
  i.e. how busy the pipeline keeps it (1.0 = the host never makes it wait);
* ``nvml_busy_mean``: mean NVML utilisation while scanning (time with a kernel running);
* ``mfu_forward`` / ``mfu_scan``: analytic FLOPs (``bench/model_forward.py``) per second
  over ``--peak-tflops``;
* ``projected_hours_3.1Gbp`` at the measured scan rate (both strands);
* ``score_variants_per_s`` and ``score_variants_per_hour``, and
  ``score_busy_fraction_from_rate`` (token positions scored per second / bare-forward rate),
  with ``--score-workers`` planning processes.

GPU (the issue's figures)::

    python bench/gpu_scan.py --device cuda --precision bf16 --batch-size 64 --workers 8 --repeat 24

CPU smoke run (tiny shape)::

    python bench/gpu_scan.py --device cpu --hidden 64 --layers 2 --heads 2 --intermediate 256 \\
        --max-bp 60000 --repeat 1 --variants 20 --batch-size 8 --workers 0
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
DEFAULT_FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"
TOKENIZER = REPO / "genaannot/data/tokenizers/t2t_1000h_multi_32k/tokenizer.json"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None, help="[bf16 on CUDA]")
    ap.add_argument("--batch-size", type=int, default=None, help="[64 on CUDA, 8 on CPU]")
    ap.add_argument("--workers", type=int, default=None, help="host worker processes [the CLI default]")
    ap.add_argument("--score-workers", type=int, default=None,
                    help="score's planning processes [the CLI default: default_score_workers]")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--positions", type=int, default=512)
    ap.add_argument("--fasta", type=Path, default=DEFAULT_FASTA)
    ap.add_argument("--repeat", type=int, default=8, help="copies of the FASTA in the scanned genome")
    ap.add_argument("--max-bp", type=int, default=None, help="scan only the first MAX bp")
    ap.add_argument("--variants", type=int, default=20000)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    return ap


def _genome(src: Path, dst: Path, repeat: int) -> dict[str, int]:
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt") as fh:
        text = fh.read()
    with open(dst, "w") as out:
        for k in range(repeat):
            out.write(text.replace(">", f">r{k}_"))
    from genaannot.io.fasta import open_genome

    with open_genome(dst) as g:
        return dict(g.sizes)


def _checkpoint(d: Path, args) -> Path:
    import torch

    from genaannot.io.tokenizers import read_bpe_tokenizer
    from genaannot.models.gena_bert import GenaBertConfig, build_network, save_pretrained

    tok = read_bpe_tokenizer(TOKENIZER)
    cfg = GenaBertConfig(vocab_size=tok.vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                         num_attention_heads=args.heads, intermediate_size=args.intermediate,
                         max_position_embeddings=args.positions, pre_layer_norm=True,
                         id2label={0: "none", 1: "acceptor", 2: "donor"})
    torch.manual_seed(0)
    net = build_network(cfg, head="token")
    return save_pretrained(net, d / "model", tokenizer=tok, config=cfg)


class _Sampler:
    """NVML utilisation samples on a thread (empty when NVML is unavailable)."""

    def __init__(self, device: str) -> None:
        self.device, self.samples, self._stop = device, [], threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        while not self._stop.wait(0.1):
            try:
                self.samples.append(float(torch.cuda.utilization(self.device)))
            except Exception:  # noqa: BLE001 - no pynvml / not CUDA
                return

    def __enter__(self):
        if self.device.startswith("cuda"):
            self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    import numpy as np
    import torch
    from model_forward import flops_per_token

    from genaannot.models import load_model
    from genaannot.pipeline.scan import default_workers, scan_genome
    from genaannot.pipeline.score import default_score_workers, score_variants
    from genaannot.predict import autocast_context, resolve_device

    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    precision = args.precision or ("bf16" if cuda else "fp32")
    bs = args.batch_size or (64 if cuda else 8)
    workers = default_workers(devices=[device]) if args.workers is None else args.workers
    res: dict[str, Any] = {"device": device + (f" ({torch.cuda.get_device_name(device)})" if cuda else " (CPU)"),
                           "precision": precision, "batch_size": bs, "workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sizes = _genome(args.fasta, d / "g.fa", args.repeat)
        ckpt = _checkpoint(d, args)
        model = load_model(ckpt, device=device, dtype=precision, compile=args.compile)
        net = model.network
        fpt = flops_per_token(hidden=args.hidden, layers=args.layers, intermediate=args.intermediate,
                              tokens=args.positions, labels=3)

        # bare forward at full length: the device's rate at this batch size
        content = model.max_tokens
        ids = [np.random.default_rng(i).integers(5, 1000, size=content) for i in range(bs)]
        batch = {k: v.to(device) for k, v in net.collate(ids).items()}
        runner = model._compiled if model.compiled else net
        sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
        iters = 20 if cuda else 2
        with torch.inference_mode(), autocast_context(device, precision):
            for _ in range(3 if cuda else 1):
                runner(**batch)
            sync()
            t0 = time.perf_counter()
            for _ in range(iters):
                runner(**batch)
            sync()
        fwd_tps = bs * (content + 2) * iters / (time.perf_counter() - t0)
        res["forward_tokens_per_s"] = fwd_tps
        res["mfu_forward"] = fwd_tps * fpt / 1e12 / args.peak_tflops

        # count the positions the scan computes, padding included, where batches are built
        counted = {"positions": 0}
        real_collate = net.collate

        def counting_collate(contents):
            out = real_collate(contents)
            counted["positions"] += int(out["input_ids"].numel())
            return out

        net.collate = counting_collate
        regions = None
        if args.max_bp:
            from genaannot.regions import Interval

            regions, left = [], args.max_bp
            for chrom, size in sizes.items():
                if left <= 0:
                    break
                regions.append(Interval(chrom, 0, min(size, left)))
                left -= size
        with _Sampler(device) as sampler:
            t0 = time.perf_counter()
            scan = scan_genome(d / "g.fa", model=model, task="splice", output=d / "scan.bw", regions=regions,
                               batch_size=bs, workers=workers, quiet=True)
            wall = time.perf_counter() - t0
        bp = scan.counts["bp_scanned"]
        tps = counted["positions"] / wall
        res.update({
            "scan_bp": bp, "scan_wall_s": wall, "scan_bp_per_s": bp / wall, "scan_tokens_per_s": tps,
            "busy_fraction_from_rate": tps / fwd_tps,
            "nvml_busy_mean": (sum(sampler.samples) / len(sampler.samples) / 100) if sampler.samples else "n/a",
            "mfu_scan": tps * fpt / 1e12 / args.peak_tflops,
            "model_seconds_share": scan.model_seconds / wall,
            "projected_hours_3.1Gbp": 3.1e9 / (bp / wall) / 3600,
        })

        # variant scoring: random SNVs and 1-bp deletions over the scanned genome
        if args.variants:
            from genaannot.io.fasta import open_genome

            rng = np.random.default_rng(0)
            chroms = [c for c, n in sizes.items() if n > 20_000]
            lines = ["##fileformat=VCFv4.2"] + [f"##contig=<ID={c},length={sizes[c]}>" for c in chroms]
            lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
            recs = []
            with open_genome(d / "g.fa") as g:
                for i in range(args.variants):
                    c = chroms[i % len(chroms)]
                    p = int(rng.integers(10_000, sizes[c] - 10_000))
                    ref = g.fetch(c, p, p + 2).upper()
                    if "N" in ref:
                        continue
                    if i % 4 == 3:
                        recs.append((c, p + 1, ref, ref[0]))
                    else:
                        recs.append((c, p + 1, ref[0], "T" if ref[0] != "T" else "C"))
            recs.sort(key=lambda r: (chroms.index(r[0]), r[1]))
            lines += [f"{c}\t{p}\t.\t{r}\t{a}\t.\t.\t." for c, p, r, a in recs]
            (d / "v.vcf").write_text("\n".join(lines) + "\n")
            sworkers = default_score_workers([device]) if args.score_workers is None else args.score_workers
            counted["positions"] = 0
            t0 = time.perf_counter()
            s = score_variants(d / "v.vcf", genome=d / "g.fa", model=model, task="splice",
                               output=d / "out.vcf.gz", batch_size=bs, quiet=True, workers=sworkers)
            sw = time.perf_counter() - t0
            res.update({"score_alts": s.alts, "score_workers": sworkers, "score_wall_s": sw,
                        "score_variants_per_s": s.alts / sw, "score_variants_per_hour": s.alts / sw * 3600,
                        "score_busy_fraction_from_rate": counted["positions"] / sw / fwd_tps})
        net.collate = real_collate
    for k, v in res.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    return res


if __name__ == "__main__":
    main()
