"""SpliceAI on every base of both strands of a chromosome, scored by ``bench/splice_ap.py``.

Runs the shipped SpliceAI 1.3.x weights (the ``spliceai`` package with keras/tensorflow;
neither is a genaannot dependency, none is in CI) through the package's public API (its
``one_hot_encode`` and the five ``models/spliceai{1..5}.h5`` files it installs, averaged as
its README shows), with SpliceAI's full 10-kb context: each output block of ``--block`` bp is
predicted from the block plus 5,000 bp of real sequence on each side (``N`` beyond the
chromosome's ends). The minus strand is the reverse complement, predicted the same way and
flipped back, so ``OUT.<kind>.minus.bw`` holds, at forward position ``p``, SpliceAI's score of
the minus-strand base there. SpliceAI's channels are (none, acceptor, donor); it marks
sites on the exon side (donor = last exon base, acceptor = first exon base).

Writes ``OUT.acceptor.plus.bw``, ``OUT.acceptor.minus.bw``, ``OUT.donor.plus.bw``,
``OUT.donor.minus.bw`` (values rounded as ``genaannot scan``'s default ``--track-digits 2``
unless ``--track-digits full``), then prints the AP of ``bench/splice_ap.py`` (``--pool``,
default 2 bp; site convention ``exon``, SpliceAI's).

    pip install spliceai tensorflow   # not genaannot dependencies
    python bench/spliceai_compare.py --fasta examples/athaliana/athaliana_1pct.fa.gz \\
        --annotation examples/athaliana/athaliana_1pct.gff3.gz --chrom Chr5 -o out/spliceai_chr5

Without the package it prints what to install and exits with status 2 (tested). The SpliceAI
path itself has not been run on this project's machines (SpliceAI is not installed there);
everything around it (context trimming, blocks, the minus strand, the tracks, the evaluation)
is tested with a stand-in model that follows SpliceAI's input/output shapes
(``tests/test_splice_ap.py::test_spliceai_compare_glue_with_a_stand_in_model``). ``main(argv)``
returns the evaluator's result dict.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONTEXT = 10_000  # SpliceAI-10k: 5,000 bp each side
_COMP = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def _splice_ap():
    spec = importlib.util.spec_from_file_location("bench_splice_ap", REPO / "bench" / "splice_ap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def load_spliceai() -> tuple[Any, list[Any]]:
    """``(one_hot_encode, [5 keras models])`` from an installed ``spliceai`` package.

    Raises
    ------
    SystemExit
        (status 2) naming what to install when ``spliceai`` or keras is missing.
    """
    try:
        from importlib.resources import files

        from keras.models import load_model
        from spliceai.utils import one_hot_encode
    except ImportError as err:
        print(f"SpliceAI is not installed here ({err}). It is not a genaannot dependency; to run this comparison: "
              "pip install spliceai tensorflow  (SpliceAI 1.3.1 is GPL-3.0 licensed; its weights PolyForm "
              "Strict / non-commercial: check they fit your use).", file=sys.stderr)
        raise SystemExit(2) from None
    models = [load_model(str(files("spliceai") / "models" / f"spliceai{i}.h5"), compile=False) for i in range(1, 6)]
    return one_hot_encode, models


def predict_strand(seq: str, *, one_hot_encode: Any, models: list[Any], block: int) -> np.ndarray:
    """SpliceAI's (acceptor, donor) scores of every base of ``seq`` read 5'->3'.

    Returns
    -------
    float32 [len(seq), 2]: columns acceptor, donor
    """
    half = CONTEXT // 2
    padded = "N" * half + seq + "N" * half
    out = np.zeros((len(seq), 2), dtype=np.float32)
    for start in range(0, len(seq), block):
        end = min(len(seq), start + block)
        x = one_hot_encode(padded[start : end + CONTEXT])[None, :]
        y = np.mean([m.predict(x, verbose=0) for m in models], axis=0)  # [1, end - start, 3]
        out[start:end] = y[0, :, 1:3]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fasta", type=Path, required=True)
    ap.add_argument("--annotation", type=Path, required=True)
    ap.add_argument("--chrom", required=True)
    ap.add_argument("-o", "--output", required=True, help="track prefix: writes OUT.<kind>.<plus|minus>.bw")
    ap.add_argument("--block", type=int, default=5000, help="output bp per SpliceAI call")
    ap.add_argument("--pool", type=int, default=2)
    ap.add_argument("--track-digits", default="2", help="0-7 or full (as genaannot scan)")
    a = ap.parse_args(argv)
    one_hot_encode, models = load_spliceai()

    from genaannot.io.fasta import open_genome
    from genaannot.io.tracks import BigWigWriter

    genome = open_genome(a.fasta)
    seq = genome.fetch(a.chrom, 0, genome.sizes[a.chrom]).upper()
    plus = predict_strand(seq, one_hot_encode=one_hot_encode, models=models, block=a.block)
    rc = seq.translate(_COMP)[::-1]
    minus = predict_strand(rc, one_hot_encode=one_hot_encode, models=models, block=a.block)[::-1]
    digits = None if a.track_digits == "full" else int(a.track_digits)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    n = len(seq)
    for col, kind in enumerate(("acceptor", "donor")):
        for word, values in (("plus", plus), ("minus", minus)):
            w = BigWigWriter(f"{a.output}.{kind}.{word}.bw", sizes=genome.sizes, name=f"spliceai {kind} {word}",
                             digits=digits)
            w.add(a.chrom, np.arange(n, dtype=np.int64), np.arange(1, n + 1, dtype=np.int64),
                  np.ascontiguousarray(values[:, col]))
            w.commit()
    return _splice_ap().main([str(a.output), "--annotation", str(a.annotation), "--chrom", a.chrom,
                              "--site-convention", "exon", "--pool", str(a.pool)])


if __name__ == "__main__":
    main(sys.argv[1:])
