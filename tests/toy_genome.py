"""A toy genome with GT..AG introns on both strands, as objects and as FASTA + GFF3 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genaannot.io.annotation import Annotation, Transcript
from genaannot.io.tokenizers import read_bpe_tokenizer
from genaannot.tokenize import BPETokenizer
from genaannot.train import char_tokenizer_json

__all__ = ["Genome", "toy_data", "char_tok", "write_inputs"]


class Genome:
    """In-memory genome with the :class:`genaannot.labels.GenomeReader` interface."""

    def __init__(self, seqs: dict[str, str]) -> None:
        self.seqs = seqs
        self.sizes = {k: len(v) for k, v in seqs.items()}

    def fetch(self, chrom: str, start: int, end: int) -> str:
        return self.seqs[chrom][start:end]


def toy_data(seed: int = 0, n: int = 6000) -> tuple[Genome, Annotation]:
    """Two chromosomes with GT..AG introns on both strands."""
    rng = np.random.default_rng(seed)
    seqs, ts = {}, {}
    for c in ("c1", "c2"):
        s = list(rng.choice(list("ACGT"), n))
        tl = []
        for i, a in enumerate(range(200, n - 400, 300)):
            strand = "+" if i % 2 == 0 else "-"
            b = a + 90  # intron [a, b)
            if strand == "+":
                s[a : a + 2], s[b - 2 : b] = list("GT"), list("AG")
            else:  # minus strand: GT..AG of the transcript read on the reverse complement
                s[a : a + 2], s[b - 2 : b] = list("CT"), list("AC")
            tl.append(Transcript(f"{c}t{i}", f"{c}g{i}", c, strand, ((a - 40, a), (b, b + 40))))
        seqs[c] = "".join(s)
        ts[c] = tl
    return Genome(seqs), Annotation("toy", ts)


def char_tok(directory: Path) -> BPETokenizer:
    """The one-token-per-base tokenizer of ``genaannot train --tokenizer char``, written in ``directory``."""
    p = Path(directory) / "tokenizer.json"
    p.write_text(char_tokenizer_json())
    return read_bpe_tokenizer(p)


def write_inputs(directory: Path) -> tuple[Path, Path]:
    """``directory/g.fa`` and ``directory/g.gff3`` of :func:`toy_data`."""
    genome, ann = toy_data()
    fa = Path(directory) / "g.fa"
    fa.write_text("".join(f">{c}\n{s}\n" for c, s in genome.seqs.items()))
    lines = ["##gff-version 3"]
    for c, ts in ann.transcripts.items():
        for t in ts:
            lines.append(f"{c}\tt\tmRNA\t{t.start + 1}\t{t.end}\t.\t{t.strand}\t.\tID={t.id};Parent={t.gene_id}")
            for s, e in t.exons:
                lines.append(f"{c}\tt\texon\t{s + 1}\t{e}\t.\t{t.strand}\t.\tParent={t.id}")
    gff = Path(directory) / "g.gff3"
    gff.write_text("\n".join(lines) + "\n")
    return fa, gff
