"""The bundled demo model on the held-out chromosome beats the PWM baseline.

Scans Chr5 of the bundled A. thaliana genome (never seen in training or validation) with the
bundled splice model through the real scanner, reads the bigWigs back, and compares
base-pair-level average precision against a PWM fitted on the training chromosomes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from genaannot.conventions import checkpoint_convention
from genaannot.evaluate import fit_pwm, score_pwm
from genaannot.io.annotation import read_annotation
from genaannot.io.checkpoint import read_metadata
from genaannot.io.fasta import open_genome
from genaannot.labels import SiteIndex
from genaannot.metrics import average_precision
from genaannot.pipeline.scan import scan_genome
from genaannot.regions import Interval
from genaannot.windows import reverse_complement as revcomp

REPO = Path(__file__).resolve().parent.parent
FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"
GFF = REPO / "examples/athaliana/athaliana_1pct.gff3.gz"
MODEL = REPO / "examples/models/demo-splice-athaliana"

pytestmark = pytest.mark.slow


def test_demo_model_beats_pwm_on_held_out_chromosome(tmp_path):
    # the demo model is part of the repository: a checkout without it is broken, not a skip
    assert (MODEL / "model.safetensors").is_file(), f"{MODEL} is missing from this checkout"
    res = scan_genome(FASTA, model="demo-splice-athaliana", task="splice", output=tmp_path / "demo.bw",
                      chroms=["Chr5"], quiet=True, batch_size=32)
    # truth and PWM in the convention the demo declares (it was trained intron-side)
    convention, source = checkpoint_convention(read_metadata(MODEL))
    assert (convention, source) == ("intron", "checkpoint")
    assert json.loads(res.manifest.read_text())["site_convention"]["name"] == convention
    ann = read_annotation(GFF)
    with open_genome(FASTA) as genome:
        train = [Interval(c, 0, genome.sizes[c]) for c in ("Chr1", "Chr2", "Chr3")]
        seq = genome.fetch("Chr5", 0, genome.sizes["Chr5"])
        n = len(seq)
        for kind in ("acceptor", "donor"):
            pwm = fit_pwm(genome, ann, train, kind=kind, convention=convention)
            sites = SiteIndex(ann, [Interval("Chr5", 0, n)], (kind,), convention=convention)
            model_s, base_s, truth = [], [], []
            for strand, name in (("+", "plus"), ("-", "minus")):
                with pyBigWig.open(str(tmp_path / f"demo.{kind}.{name}.bw")) as bw:
                    v = np.nan_to_num(np.asarray(bw.values("Chr5", 0, n), dtype=np.float64), nan=0.0)
                b = score_pwm(pwm, seq if strand == "+" else revcomp(seq))
                if strand == "-":
                    b = b[::-1]  # back to forward coordinates
                y = np.zeros(n, dtype=bool)
                y[sites.in_window("Chr5", strand, kind, 0, n)] = True
                model_s.append(v)
                base_s.append(b)
                truth.append(y)
            y = np.concatenate(truth)
            ap_model = average_precision(np.concatenate(model_s), y)
            ap_pwm = average_precision(np.concatenate(base_s), y)
            assert y.sum() > 300
            print(f"{kind}: AP model {ap_model:.3f}, PWM {ap_pwm:.3f}")
            assert ap_model > ap_pwm + 0.1, (kind, ap_model, ap_pwm)

