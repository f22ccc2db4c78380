"""Genes of an annotation, looked up by position (``score --annotation``); nothing here opens a file.

A gene is the span of its transcripts (0-based half-open, forward strand), its strand, its
symbol and its annotated splice sites (:meth:`genaannot.io.annotation.Annotation.sites`
definitions: donor = first intron base, acceptor = last intron base, in transcript
orientation). A variant belongs to every gene whose span holds its first REF base (VCF
``POS``), as SpliceAI's ``TX_START < POS <= TX_END``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .io.annotation import Annotation

__all__ = ["Gene", "GeneIndex", "OUTSIDE_GENES"]

#: ``--outside-genes``: what happens to a variant that no gene overlaps
OUTSIDE_GENES: dict[str, str] = {
    "score": "scored on the task's strands (both for splice), gene '.'",
    "reason": "not scored: reason code NO_GENE",
}


@dataclass(frozen=True)
class Gene:
    """One gene.

    Attributes
    ----------
    symbol : str
        Gene name as written in the output (VCF-safe: no ``|,;=`` or whitespace).
    chrom : str
    start, end : int
        0-based half-open span of its transcripts.
    strand : str
        ``"+"`` or ``"-"``.
    acceptors, donors : frozenset of int
        Forward-strand 0-based positions of its annotated splice sites.
    """

    symbol: str
    chrom: str
    start: int
    end: int
    strand: str
    acceptors: frozenset[int] = frozenset()
    donors: frozenset[int] = frozenset()

    def sites(self, code: str) -> frozenset[int] | None:
        """Sites of a splice output code (``A`` acceptor, ``D`` donor); ``None`` for other outputs."""
        return {"A": self.acceptors, "D": self.donors}.get(code)


def _safe(name: str) -> str:
    return "".join("_" if c in "|,;= \t" else c for c in name) or "."


class GeneIndex:
    """Genes by chromosome, for overlap look-ups.

    Parameters
    ----------
    genes
        Any order; chromosome names must be the ones looked up (the FASTA's).
    sites_known
        Whether the annotation gave exon structure (False for SpliceAI's 5-column gene
        table), i.e. whether ``--mask`` can be applied.
    """

    def __init__(self, genes: Iterable[Gene], *, sites_known: bool = True) -> None:
        by: dict[str, list[Gene]] = {}
        for g in genes:
            by.setdefault(g.chrom, []).append(g)
        self._genes = {c: sorted(v, key=lambda g: (g.start, g.end, g.symbol)) for c, v in by.items()}
        self._starts = {c: [g.start for g in v] for c, v in self._genes.items()}
        self._reach = {}  # running maximum of ends, to stop scanning left
        for c, v in self._genes.items():
            m, reach = -1, []
            for g in v:
                m = max(m, g.end)
                reach.append(m)
            self._reach[c] = reach
        self.sites_known = sites_known

    def __len__(self) -> int:
        return sum(len(v) for v in self._genes.values())

    @property
    def chroms(self) -> list[str]:
        return list(self._genes)

    def at(self, chrom: str, pos: int) -> list[Gene]:
        """Genes whose span holds 0-based position ``pos``, by start."""
        genes = self._genes.get(chrom)
        if not genes:
            return []
        i = bisect.bisect_right(self._starts[chrom], pos) - 1
        out = []
        reach = self._reach[chrom]
        while i >= 0 and reach[i] > pos:
            if genes[i].end > pos:
                out.append(genes[i])
            i -= 1
        return out[::-1]

    @classmethod
    def from_annotation(cls, annotation: Annotation, *, sites_known: bool = True) -> GeneIndex:
        """One :class:`Gene` per gene id of ``annotation`` (transcripts grouped by ``gene_id``;
        a gene id on two strands or chromosomes gives one gene per strand and chromosome)."""
        groups: dict[tuple[str, str, str], list] = {}
        for chrom, ts in annotation.transcripts.items():
            for t in ts:
                groups.setdefault((chrom, t.gene_id, t.strand), []).append(t)
        genes = []
        for (chrom, gid, strand), ts in groups.items():
            names = [t.gene_name for t in ts if t.gene_name]
            acc: set[int] = set()
            don: set[int] = set()
            for t in ts:
                for s, e in t.introns:
                    acc.add(e - 1 if strand == "+" else s)
                    don.add(s if strand == "+" else e - 1)
            genes.append(Gene(_safe(names[0] if names else gid), chrom, min(t.start for t in ts),
                              max(t.end for t in ts), strand, frozenset(acc), frozenset(don)))
        return cls(genes, sites_known=sites_known)


def strands_for(genes: Sequence[Gene], default: Sequence[str]) -> tuple[str, ...]:
    """Strands to predict for a variant in ``genes`` (``default`` when there are none)."""
    if not genes:
        return tuple(default)
    return tuple(s for s in "+-" if any(g.strand == s for g in genes))
