"""Tiling plan: windows fit the model on both strands, cover the sequence, centre ownership."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy import CharTokenizer

from genaannot.tokenize import BPETokenizer
from genaannot.windows import (
    Segment,
    center_cuts,
    plan_units,
    plan_windows,
    reverse_complement,
    stride_tokens,
    subtract_gaps,
    unit_context,
)

DNA = st.text(alphabet="ACGTNacgtnRY", min_size=1, max_size=400)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    from tinymodels import make_tokenizer

    return BPETokenizer(make_tokenizer(tmp_path_factory.mktemp("tok")))


def _check_plan(seq, plan, tok, w):
    n = len(seq)
    s, e = plan.starts, plan.ends
    assert s[0] == 0 and e[-1] == n
    assert np.all(np.diff(s) > 0) and np.all(np.diff(e) > 0)
    assert np.all(s[1:] <= e[:-1])  # no gaps between windows
    for i in range(len(plan)):
        wseq = seq[s[i] : e[i]]
        assert len(plan.plus[i]) <= w and len(plan.minus[i]) <= w
        # the stored encodings are those of the exact window, on each strand
        assert np.array_equal(plan.plus[i].ids, tok.encode(wseq).ids)
        assert np.array_equal(plan.minus[i].ids, tok.encode(reverse_complement(wseq)).ids)
        assert plan.plus[i].spans[-1, 1] == e[i] - s[i]


@settings(max_examples=60, deadline=None)
@given(seq=DNA, w=st.integers(1, 40), overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75]))
def test_plan_char(seq, w, overlap):
    tok = CharTokenizer()
    plan = plan_windows(seq, tokenizer=tok, window_tokens=w, overlap=overlap)
    _check_plan(seq, plan, tok, w)


@settings(max_examples=40, deadline=None)
@given(seq=st.text(alphabet="ACGTN", min_size=1, max_size=600), w=st.integers(1, 30),
       overlap=st.sampled_from([0.0, 0.5]))
def test_plan_bpe(bpe, seq, w, overlap):
    plan = plan_windows(seq, tokenizer=bpe, window_tokens=w, overlap=overlap)
    _check_plan(seq, plan, bpe, w)


def test_single_window_when_it_fits(bpe):
    seq = "ACGTTGCA" * 10
    n = len(bpe.encode(seq))
    plan = plan_windows(seq, tokenizer=bpe, window_tokens=max(n, len(bpe.encode(reverse_complement(seq)))),
                        overlap=0.5)
    assert len(plan) == 1 and plan.starts[0] == 0 and plan.ends[0] == len(seq)


def test_stride_in_tokens():
    plan = plan_windows("A" * 100, tokenizer=CharTokenizer(), window_tokens=10, overlap=0.5)
    assert plan.starts.tolist()[:3] == [0, 5, 10] and np.all(plan.ends - plan.starts == 10)
    assert stride_tokens(10, 0.0) == 10 and stride_tokens(10, 0.75) == 2
    with pytest.raises(ValueError):
        stride_tokens(10, 1.0)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 500), w=st.integers(1, 50), overlap=st.sampled_from([0.0, 0.3, 0.5, 0.8]))
def test_center_cuts_cover_once_and_nearest(n, w, overlap):
    plan = plan_windows("A" * n, tokenizer=CharTokenizer(), window_tokens=w, overlap=overlap, both_strands=False)
    own = center_cuts(plan.starts, plan.ends, lo=0, hi=n)
    cover = np.zeros(n, dtype=int)
    for (a, b), s, e in zip(own, plan.starts, plan.ends):
        assert s <= a <= b <= e  # owned part lies inside the window
        cover[a:b] += 1
    assert np.all(cover == 1)
    centres = (plan.starts + plan.ends) / 2
    for p in range(0, n, max(1, n // 37)):
        owner = int(np.flatnonzero((own[:, 0] <= p) & (p < own[:, 1]))[0])
        covering = np.flatnonzero((plan.starts <= p) & (p < plan.ends))
        best = np.min(np.abs(centres[covering] - (p + 0.5)))
        assert abs(centres[owner] - (p + 0.5)) == best


def test_units_and_gaps():
    assert subtract_gaps(0, 100, [(10, 20), (50, 60), (95, 120)]) == [(0, 10), (20, 50), (60, 95)]
    assert subtract_gaps(0, 10, [(0, 10)]) == []
    units = plan_units([Segment("a", 0, 25), Segment("b", 5, 7)], unit_bp=10)
    assert [(u.chrom, u.start, u.end) for u in units] == [("a", 0, 10), ("a", 10, 20), ("a", 20, 25), ("b", 5, 7)]
    assert [u.index for u in units] == [0, 1, 2, 3]
    assert unit_context(units[1], 4) == (6, 24) and unit_context(units[1], 40) == (0, 25)


def test_reverse_complement():

    assert reverse_complement("AACG") == "CGTT"
    assert reverse_complement("acgN") == "Ncgt"
    assert reverse_complement("RY") == "RY"


@settings(max_examples=30, deadline=None)
@given(seq=st.text(alphabet="ACGTN", min_size=1, max_size=3000), chunk=st.integers(1, 500))
def test_token_boundaries(bpe, seq, chunk):
    from genaannot.windows import token_boundaries

    b = token_boundaries(seq, tokenizer=bpe, chunk_bp=chunk)
    assert b[0] == 0 and b[-1] == len(seq) and np.all(np.diff(b) > 0)
    if chunk >= len(seq):  # one chunk: exactly the tokenizer's boundaries
        assert b[1:].tolist() == bpe.encode(seq).spans[:, 1].tolist()


def test_window_margin_and_bpe_windows_near_full(bpe):
    from genaannot.windows import window_margin

    assert window_margin(CharTokenizer(), 510) == 0 and window_margin(bpe, 510) == 15
    assert window_margin(bpe, 8) == 1
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), size=20000))
    plan = plan_windows(seq, tokenizer=bpe, window_tokens=96, overlap=0.5)
    _check_plan(seq, plan, bpe, 96)
    n_tok = np.array([len(e) for e in plan.plus[:-1]])
    # typical windows lose only the margin (a shrunk window after an overflow loses more)
    assert np.median(n_tok) >= 96 - window_margin(bpe, 96) - 1
