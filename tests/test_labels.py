"""Labelled windows: site index, strand-aware windows and token labels, the import layering."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from toy_genome import char_tok, toy_data

from genaannot.labels import (
    TASK_SPECS,
    LabelError,
    SiteIndex,
    WindowSampler,
    oriented_positions,
    token_labels,
)
from genaannot.regions import Interval
from genaannot.windows import reverse_complement


def _sampler(tmp_path, *, task="splice", regions=None, window_bp=120, site_fraction=1.0, convention="exon"):
    genome, ann = toy_data()
    spec = TASK_SPECS[task]
    regions = regions or [Interval("c1", 0, 6000)]
    sites = SiteIndex(ann, regions, spec.site_kinds, convention=convention)
    return genome, ann, WindowSampler(genome=genome, sites=sites, regions=regions, tokenizer=char_tok(tmp_path),
                                      spec=spec, window_bp=window_bp, window_tokens=window_bp,
                                      site_fraction=site_fraction)


def test_token_labels_spans():
    spans = np.array([[0, 3], [3, 4], [4, 9]])
    y = token_labels(spans, {1: np.array([3]), 2: np.array([5, 20])}, n_labels=3)
    assert y.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_oriented_positions():
    pos = np.array([10, 14])
    assert oriented_positions(pos, start=10, end=15, strand="+").tolist() == [0, 4]
    assert oriented_positions(pos, start=10, end=15, strand="-").tolist() == [4, 0]


def test_site_index_counts_sites_inside_the_regions():
    _, ann = toy_data()
    whole = SiteIndex(ann, [Interval("c1", 0, 6000)], ("donor", "acceptor"))
    assert whole.count("donor") == len(ann.sites("c1", "donor")) == 18
    half = SiteIndex(ann, [Interval("c1", 0, 3000)], ("donor",))
    assert 0 < half.count("donor") < whole.count("donor")
    assert all(p < 3000 for _, _, _, p in half.flat)
    # toy introns start at 200, 500, ... (+ strand for even i): the donor is the last exon base
    # (exon convention, the default) or the intron's first base (intron convention)
    assert whole.in_window("c1", "+", "donor", 150, 600).tolist() == [199]
    intron = SiteIndex(ann, [Interval("c1", 0, 6000)], ("donor",), convention="intron")
    assert intron.in_window("c1", "+", "donor", 150, 600).tolist() == [200]
    assert whole.in_window("c1", "-", "donor", 0, 6000).size == 9


@pytest.mark.parametrize("convention", ["exon", "intron"])
def test_windows_are_strand_aware(tmp_path, convention):
    genome, _, sampler = _sampler(tmp_path, convention=convention)
    rng = np.random.default_rng(3)
    wins = [sampler.draw(rng) for _ in range(40)]
    batch = sampler.label(wins)
    seen = set()
    # exon: donor = last exon base (GT follows it), acceptor = first exon base (AG precedes it);
    # intron: donor = G of GT, acceptor = G of AG
    d = 1 if convention == "exon" else 0
    for (chrom, s, e, strand), y in zip(wins, batch.labels):
        seq = genome.fetch(chrom, s, e)
        oriented = seq if strand == "+" else reverse_complement(seq)
        for q in np.flatnonzero(y[:, 2]):
            assert oriented[q + d : q + d + 2] == "GT"
        for q in np.flatnonzero(y[:, 1]):
            assert oriented[q - d - 1 : q - d + 1] == "AG"
        assert y[:, 1:].sum() >= 1  # a site window holds its site
        seen.add(strand)
    assert seen == {"+", "-"}


def test_site_window_puts_the_site_at_the_offset(tmp_path):
    _, _, sampler = _sampler(tmp_path, regions=[Interval("c1", 0, 3000), Interval("c1", 4000, 6000)])
    assert sampler.region_of("c1", 4500) == Interval("c1", 4000, 6000)
    assert sampler.region_of("c1", 3500) is None
    for strand in "+-":
        chrom, s, e, st = sampler.site_window("c1", strand, 1000, offset=30)
        assert (chrom, st, e - s) == ("c1", strand, 120)
        assert oriented_positions(np.array([1000]), start=s, end=e, strand=strand).tolist() == [30]
    # near a region end the window is moved inside the region
    assert sampler.clip(Interval("c1", 4000, 6000), 5950) == (5880, 6000)
    assert sampler.site_window("c1", "+", 4010, offset=60)[1:3] == (4000, 4120)
    with pytest.raises(LabelError, match="outside"):
        sampler.site_window("c1", "+", 3500, offset=0)


def test_promoter_batch_labels_and_background(tmp_path):
    _, ann, sampler = _sampler(tmp_path, task="promoter", site_fraction=0.5)
    batch = sampler.batch(np.random.default_rng(0), 32)
    assert {int(y) for y in batch.labels} == {0, 1}
    for (chrom, s, e, strand), y in zip(batch.windows, batch.labels):
        tss = sampler.sites.in_window(chrom, strand, "tss", s, e)
        if y:
            assert np.abs(tss - (s + e) // 2).min() <= sampler.promoter_jitter
        else:
            assert tss.size == 0  # background: no same-strand TSS in the window


def test_sampler_needs_a_region(tmp_path):
    with pytest.raises(LabelError, match="no non-empty regions"):
        _sampler(tmp_path, regions=[Interval("c1", 10, 10)])


@pytest.mark.parametrize("module,forbidden", [("genaannot.evaluate", "genaannot.train"),
                                              ("genaannot.train", "genaannot.evaluate"),
                                              ("genaannot.labels", "genaannot.train")])
def test_layering(module, forbidden):
    """Evaluation and training share labels and metrics, not each other."""
    code = f"import sys, {module}; assert {forbidden!r} not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
