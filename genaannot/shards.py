"""Shards: how a run is split into ``--shard I/N`` pieces (pure; no files).

* ``scan`` shards are sets of work units: unit ``k`` belongs to shard ``k % N + 1``
  (:func:`genaannot.pipeline.scan.scan_genome`);
* ``score`` shards are genome stretches with about equal record counts, planned from the
  per-bin record counts that opening a VCF gives (:func:`plan_score_shard`).

Coordinates are 0-based, half-open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .io.vcf import RecordLayout

__all__ = ["parse_shard", "ScoreShard", "plan_score_shard"]


def parse_shard(shard: tuple[int, int] | str | None) -> tuple[int, int] | None:
    """``"i/n"`` or ``(i, n)`` → ``(i, n)`` with ``1 <= i <= n``; ``ValueError`` otherwise."""
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise ValueError(f"--shard must look like I/N (e.g. 2/8), not {shard!r}") from None
    else:
        i, n = (int(x) for x in shard)
    if not 1 <= i <= n:
        raise ValueError(f"--shard {i}/{n}: I must be between 1 and N")
    return i, n


@dataclass(frozen=True)
class ScoreShard:
    """The records that shard ``index`` of ``of`` scores (see :func:`plan_score_shard`).

    Attributes
    ----------
    regions : list of (str, int, int) or None
        Bin-aligned ``(contig, start, end)`` spans (0-based, half-open, in file order) whose
        records the shard scores; ``None`` when the shard is a record range.
    first, end : int
        Input indices ``[first, end)`` of a record-range shard (0, 0 for region shards).
    count : int
        Records in the shard.
    """

    index: int
    of: int
    regions: list[tuple[str, int, int]] | None
    first: int
    end: int
    count: int

    def span(self, lengths: Mapping[str, int | None] | None = None) -> str:
        """``chr1:1-chr3:500000`` (1-based, inclusive ends; the last end cut to the contig's
        length when ``lengths`` gives it), or ``none`` for an empty region shard."""
        if not self.regions:
            return "none"
        (c0, s0, _), (c1, s1, e1) = self.regions[0], self.regions[-1]
        n = (lengths or {}).get(c1)
        return f"{c0}:{s0 + 1}-{c1}:{min(e1, n) if n and n > s1 else e1}"


def plan_score_shard(layout: RecordLayout, *, n_records: int, index: int, of: int) -> ScoreShard:
    """Split a VCF's records into ``of`` shards and return shard ``index`` (1-based).

    A position-sorted file is split by region: its ``layout.bin_bp`` bins, in file order,
    go whole and in order to the shards, bin ``k`` to shard ``floor(of · C_k / R) + 1``
    (``C_k`` records before it, ``R`` in all), so every shard is one contiguous stretch of
    the genome with about ``R / of`` records (give or take one bin's). An unsorted file is
    split into contiguous record ranges ``[floor((i-1)·R/of), floor(i·R/of))`` instead.
    Either way every record is in exactly one shard, and concatenating the shards' outputs
    in shard order gives the input order.
    """
    if not 1 <= index <= of:
        raise ValueError(f"shard {index}/{of}: the index must be between 1 and {of}")
    if not layout.sorted:
        first, end = (index - 1) * n_records // of, index * n_records // of
        return ScoreShard(index=index, of=of, regions=None, first=first, end=end, count=end - first)
    regions: list[tuple[str, int, int]] = []
    cum = count = 0
    for chrom in layout.contigs:
        mine = []
        for b in sorted(layout.counts[chrom]):
            k = layout.counts[chrom][b]
            if min(of - 1, of * cum // max(n_records, 1)) == index - 1:
                mine.append(b)
                count += k
            cum += k
        if mine:  # the shard's bins of one contig are consecutive among its non-empty bins
            regions.append((chrom, mine[0] * layout.bin_bp, (mine[-1] + 1) * layout.bin_bp))
    return ScoreShard(index=index, of=of, regions=regions, first=0, end=0, count=count)
