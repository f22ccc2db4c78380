"""Benchmark the compiled BPE encoder (genaannot.bpe) against Hugging Face ``tokenizers``.

Tokenises every chromosome of a FASTA (default: the bundled TAIR10 1 %), both strands, the
way a scan does (:func:`genaannot.windows.tokenize_long`: 8-kb chunks with look-ahead),
with the GENA t2t tokenizer through ``tokenizers`` and through the compiled encoder,
alternating ``--repeats`` times, and checks that both give the same ids and spans.

Printed: CPU seconds per Mb of one strand for each (process time, the best and all runs),
their ratio, and the one-off start of the compiled encoder in a fresh process (numba
import, loading the compiled loop from numba's cache, building the merge table) in CPU
seconds and resident MB (``VmRSS``, Linux).

    .venv/bin/python bench/bpe.py [--fasta F] [--repeats 3] [--max-bp N]

``main(argv)`` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"
T2T = REPO / "genaannot/data/tokenizers/t2t_1000h_multi_32k/tokenizer.json"

_START = """
import json, sys, time
sys.path.insert(0, {repo!r})
from genaannot.io.tokenizers import read_bpe_tokenizer
tok = read_bpe_tokenizer({t2t!r}).for_long_input()
def rss():
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith("VmRSS")) / 1024
rss0 = rss()
t0 = time.process_time()
tok.encode("ACGT")
print(json.dumps({{"start_cpu_s": time.process_time() - t0, "start_rss_mb": rss() - rss0}}))
"""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fasta", type=Path, default=DEFAULT_FASTA)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-bp", type=int, default=None, help="only the first N bp of the genome [all]")
    args = ap.parse_args(argv)

    import numpy as np

    from genaannot.io.fasta import open_genome
    from genaannot.io.tokenizers import read_bpe_tokenizer
    from genaannot.windows import reverse_complement, tokenize_long

    with open_genome(args.fasta) as g:
        strands, left = [], args.max_bp or sum(g.sizes.values())
        for chrom, size in g.sizes.items():
            if left <= 0:
                break
            seq = g.fetch(chrom, 0, min(size, left))
            left -= len(seq)
            strands += [seq, reverse_complement(seq)]
    mb = sum(map(len, strands)) / 1e6  # both strands
    hf = read_bpe_tokenizer(T2T)
    hf.fast_after_bp = None
    fast = read_bpe_tokenizer(T2T).for_long_input()
    fast.encode("ACGT")  # start it outside the timing (reported separately below)
    times: dict[str, list[float]] = {"tokenizers": [], "compiled": []}
    for _ in range(args.repeats):
        for name, tok in (("tokenizers", hf), ("compiled", fast)):
            t0 = time.process_time()
            encs = [tokenize_long(s, tokenizer=tok) for s in strands]
            times[name].append((time.process_time() - t0) / mb)
            if name == "tokenizers":
                ref = encs
            else:
                for a, b in zip(ref, encs):
                    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.spans, b.spans)
    start = subprocess.run([sys.executable, "-c", _START.format(repo=str(REPO), t2t=str(T2T))],
                           capture_output=True, text=True, check=True)
    out: dict[str, Any] = {
        "mb_per_strand_pass": mb / 2,
        "tokenizers_cpu_s_per_mb": min(times["tokenizers"]),
        "compiled_cpu_s_per_mb": min(times["compiled"]),
        "ratio": min(times["compiled"]) / min(times["tokenizers"]),
        "tokenizers_runs": [round(t, 3) for t in times["tokenizers"]],
        "compiled_runs": [round(t, 3) for t in times["compiled"]],
        "identical": True,
        **json.loads(start.stdout.strip().splitlines()[-1]),
    }
    for k, v in out.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    return out


if __name__ == "__main__":
    main()
