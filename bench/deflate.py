"""Benchmark the bigWig writer's block compression: zlib against ISA-L (and zlib-ng).

A scan of one random chromosome (``--mb``, both strands, task ``splice``, ``host_pipeline.py``'s
null network with model-like random per-token outputs, the default ``--track-digits 2``) is run
with the writer's compressor (``genaannot.io.bigwig._deflate``) replaced by a recorder, so
that the exact blocks a scan deflates (data sections and zoom records) are collected; each
compressor then deflates all of them, best of ``--repeat`` passes, by process CPU time, and
every output is checked to inflate back with zlib (the format bigWig readers expect).

Printed per compressor and level: CPU ms, MB/s of raw blocks, and the ratio of deflated to
raw bytes (``name level: ms MB/s ratio`` lines and a table). Compressors that are not
installed (``isal``, ``zlib_ng``: optional here, not dependencies) are left out and named.
The writer itself uses zlib's level 1, whose bytes do not vary between runs (ISA-L's did
once: docs/scale-log.md, "Deflate: zlib again").

    .venv/bin/python bench/deflate.py [--mb 2] [--tokenizer base|bpe] [--repeat 3]

``main(argv)`` returns ``{"blocks": n, "raw_bytes": n, "results": {"name level": {...}}}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def scan_blocks(mb: float, tokenizer: str) -> list[bytes]:
    """The raw blocks a scan of an ``mb``-Mb random chromosome gives the writer's compressor."""
    import genaannot.io.bigwig as bigwig
    from genaannot.pipeline.scan import scan_genome

    hp, sc = _load("host_pipeline"), _load("scale")
    blocks: list[bytes] = []
    real = bigwig._deflate

    class Recorder:
        @staticmethod
        def compress(raw: bytes, level: int) -> bytes:
            blocks.append(bytes(raw))
            return zlib.compress(raw, 1)

    model = hp.null_model(outputs="random", tokenizer=tokenizer, max_tokens=sc.WINDOW_TOKENS)
    tmp = Path(tempfile.mkdtemp())
    bigwig._deflate = Recorder
    try:
        fa = sc.write_genome(tmp / "g.fa", int(mb * 1e6))
        scan_genome(fa, model=model, task="splice", output=tmp / "o" / "s.bw", strand="both", quiet=True)
    finally:
        bigwig._deflate = real
        shutil.rmtree(tmp, ignore_errors=True)
    return blocks


def compressors() -> tuple[dict[str, Any], list[str]]:
    """``{"name level": compress(raw) -> bytes}`` of what is installed, and what is missing."""
    out: dict[str, Any] = {f"zlib {k}": (lambda r, k=k: zlib.compress(r, k)) for k in (1, 6)}
    missing = []
    try:
        from isal import isal_zlib

        out.update({f"isal {k}": (lambda r, k=k: isal_zlib.compress(r, k)) for k in (0, 1, 2)})
    except ImportError:
        missing.append("isal")
    try:
        from zlib_ng import zlib_ng

        out.update({f"zlib-ng {k}": (lambda r, k=k: zlib_ng.compress(r, k)) for k in (1, 2)})
    except ImportError:
        missing.append("zlib_ng")
    return out, missing


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=2.0, help="chromosome length in Mb [2]")
    ap.add_argument("--tokenizer", choices=("base", "bpe"), default="base")
    ap.add_argument("--repeat", type=int, default=3, help="passes per compressor; the fastest is kept [3]")
    args = ap.parse_args(argv)

    blocks = scan_blocks(args.mb, args.tokenizer)
    raw = sum(map(len, blocks))
    funcs, missing = compressors()
    results: dict[str, dict[str, float]] = {}
    for name, f in funcs.items():
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            t = time.process_time()
            out = [f(b) for b in blocks]
            best = min(best, time.process_time() - t)
        if any(zlib.decompress(o) != b for o, b in zip(out, blocks)):
            raise SystemExit(f"{name}: a block does not inflate back with zlib")
        size = sum(map(len, out))
        results[name] = {"ms": best * 1e3, "mb_per_s": raw / max(best, 1e-9) / 1e6, "ratio": size / raw}
        print(f"{name}: {best * 1e3:.1f} ms {raw / max(best, 1e-9) / 1e6:.1f} MB/s ratio {size / raw:.4f}")
    print(f"\n{len(blocks):,} blocks, {raw:,} raw bytes ({args.mb:g} Mb, --tokenizer {args.tokenizer})"
          + (f"; not installed: {', '.join(missing)}" if missing else ""))
    print(f"{'compressor':>12}  {'CPU ms':>8}  {'MB/s':>7}  {'ratio':>7}")
    for name, r in results.items():
        print(f"{name:>12}  {r['ms']:8.1f}  {r['mb_per_s']:7.1f}  {r['ratio']:7.4f}")
    return {"blocks": len(blocks), "raw_bytes": raw, "results": results}


if __name__ == "__main__":
    main()
