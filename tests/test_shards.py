"""Tests for genaannot.shards: ``--shard I/N`` parsing and score-shard planning."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genaannot.io.vcf import RecordLayout
from genaannot.shards import parse_shard, plan_score_shard


@pytest.mark.parametrize("text, want", [("1/1", (1, 1)), ("2/8", (2, 8)), ((3, 4), (3, 4)), (None, None)])
def test_parse_shard_accepts_i_of_n(text, want):
    assert parse_shard(text) == want


@pytest.mark.parametrize("text, message", [("2", "I/N"), ("a/b", "I/N"), ("0/3", "between 1 and N"),
                                           ("4/3", "between 1 and N"), ((0, 1), "between 1 and N")])
def test_parse_shard_rejects_with_the_form_to_use(text, message):
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


@settings(max_examples=200, deadline=None)
@given(
    bins=st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 30), st.integers(1, 9)),
                  min_size=0, max_size=40),
    of=st.integers(1, 7),
)
def test_plan_score_shard_partitions_sorted_records_into_contiguous_balanced_stretches(bins, of):
    lay = RecordLayout(bin_bp=10)
    for c, b, k in bins:
        if c not in lay.counts:
            lay.contigs.append(c)
            lay.counts[c] = {}
        lay.counts[c][b] = k
    order = [(c, b) for c in lay.contigs for b in sorted(lay.counts[c])]  # bins in file order
    total = sum(lay.counts[c][b] for c, b in order)
    owner = {}
    for i in range(1, of + 1):
        sh = plan_score_shard(lay, n_records=total, index=i, of=of)
        assert sh.count == sum(lay.counts[c][b] for c, s, e in sh.regions for b in lay.counts[c] if s <= b * 10 < e)
        if order:  # balanced to within one bin
            assert sh.count <= total / of + max(lay.counts[c][b] for c, b in order)
        for c, s, e in sh.regions:
            assert s % 10 == 0 and e % 10 == 0 and s < e
            for b in lay.counts[c]:
                if s <= b * 10 < e:
                    assert (c, b) not in owner
                    owner[(c, b)] = i
    assert set(owner) == set(order)  # every record in exactly one shard
    assert [owner[k] for k in order] == sorted(owner[k] for k in order)  # shard order = file order


def test_plan_score_shard_unsorted_is_record_ranges():
    lay = RecordLayout(sorted=False)
    shards = [plan_score_shard(lay, n_records=10, index=i, of=3) for i in (1, 2, 3)]
    assert [(s.regions, s.first, s.end, s.count) for s in shards] == [(None, 0, 3, 3), (None, 3, 6, 3), (None, 6, 10, 4)]
    with pytest.raises(ValueError, match="between 1 and 3"):
        plan_score_shard(lay, n_records=10, index=4, of=3)
