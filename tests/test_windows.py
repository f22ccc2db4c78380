"""Tiling plan: windows fit the model on both strands, cover the sequence, centre ownership."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy import CharTokenizer

from genaannot.io.tokenizers import read_bpe_tokenizer
from genaannot.windows import (
    BASE_UNIT_BP,
    BPE_UNIT_BP,
    MAX_UNIT_BP,
    Segment,
    center_cuts,
    default_unit_bp,
    plan_units,
    plan_windows,
    reverse_complement,
    reverse_plan,
    stride_tokens,
    subtract_gaps,
    tokenize_long,
    unit_context,
)

DNA = st.text(alphabet="ACGTNacgtnRY", min_size=1, max_size=400)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    from tinymodels import make_tokenizer

    return read_bpe_tokenizer(make_tokenizer(tmp_path_factory.mktemp("tok")))


def _check_plan(seq, plan, tok, w):
    n = len(seq)
    s, e = plan.starts, plan.ends
    assert s[0] == 0 and e[-1] == n
    assert np.all(np.diff(s) > 0) and np.all(np.diff(e) > 0)
    assert np.all(s[1:] <= e[:-1])  # no gaps between windows
    whole = tokenize_long(seq, tokenizer=tok)
    t0 = 0
    for i in range(len(plan)):
        enc = plan.encoding(i)
        # every window but the last holds exactly w tokens: slices of the one tokenisation
        assert len(enc) == w if i < len(plan) - 1 else 1 <= len(enc) <= w
        t0 = int(np.searchsorted(whole.spans[:, 0], s[i]))
        assert np.array_equal(enc.ids, whole.ids[t0 : t0 + len(enc)])
        assert enc.spans[0, 0] == 0 and enc.spans[-1, 1] == e[i] - s[i]


@settings(max_examples=60, deadline=None)
@given(seq=DNA, w=st.integers(1, 40), overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75]))
def test_plan_char(seq, w, overlap):
    tok = CharTokenizer()
    plan = plan_windows(seq, tokenizer=tok, window_tokens=w, overlap=overlap)
    _check_plan(seq, plan, tok, w)
    # a 1-bp tokenizer: each window's tokens are exactly its own bases
    for a, b, enc in zip(plan.starts, plan.ends, plan.encs):
        assert np.array_equal(enc.ids, tok.encode(seq[a:b]).ids)


@settings(max_examples=40, deadline=None)
@given(seq=st.text(alphabet="ACGTN", min_size=1, max_size=600), w=st.integers(1, 30),
       overlap=st.sampled_from([0.0, 0.5]))
def test_plan_bpe(bpe, seq, w, overlap):
    plan = plan_windows(seq, tokenizer=bpe, window_tokens=w, overlap=overlap)
    _check_plan(seq, plan, bpe, w)
    rc = reverse_complement(seq)
    minus = reverse_plan(plan_windows(rc, tokenizer=bpe, window_tokens=w, overlap=overlap), len(seq))
    assert minus.starts[0] == 0 and minus.ends[-1] == len(seq)
    assert np.all(np.diff(minus.starts) > 0) and np.all(minus.starts[1:] <= minus.ends[:-1])
    for a, b, enc in zip(minus.starts, minus.ends, minus.encs):  # rc tokens, own coordinates
        assert enc.spans[-1, 1] == b - a and len(enc) <= w
    # a subset (what a worker sends for a unit) keeps each window's tokens
    idx = np.arange(0, len(plan), 2)
    sub = plan.subset(idx)
    assert len(sub.tokens) <= len(plan.tokens)
    for k, i in enumerate(idx):
        assert np.array_equal(sub.encoding(k).ids, plan.encoding(i).ids)
        assert np.array_equal(sub.encoding(k).spans, plan.encoding(i).spans)


def test_single_window_when_it_fits(bpe):
    seq = "ACGTTGCA" * 10
    n = len(bpe.encode(seq))
    plan = plan_windows(seq, tokenizer=bpe, window_tokens=n, overlap=0.5)
    assert len(plan) == 1 and plan.starts[0] == 0 and plan.ends[0] == len(seq)
    assert np.array_equal(plan.encs[0].ids, bpe.encode(seq).ids)


@settings(max_examples=30, deadline=None)
@given(seq=st.text(alphabet="ACGTN", min_size=1, max_size=3000), chunk=st.integers(1, 500))
def test_tokenize_long_equals_one_pass(bpe, seq, chunk):
    whole = tokenize_long(seq, tokenizer=bpe, chunk_bp=chunk)
    ref = bpe.encode(seq)
    assert np.array_equal(whole.ids, ref.ids) and np.array_equal(whole.spans, ref.spans)


@settings(max_examples=40, deadline=None)
@given(seq=st.text(alphabet="ACGTNacgtnRY-*é", min_size=0, max_size=3000), chunk=st.integers(1, 500))
def test_a_per_letter_tokenizer_takes_a_long_sequence_in_one_call_with_the_chunked_tokens(bpe, seq, chunk):
    """The character tokenizer (``per_letter``) skips the chunks: the same ids and spans as
    tokenising chunk by chunk (what a 1-bp tokenizer without it gets), spans [i, i + 1)."""
    from genaannot.tokenize import CharTokenizer as Char

    tok = Char()
    assert tok.per_letter and not bpe.per_letter  # BPE merges letters: chunked, with look-ahead
    whole = tokenize_long(seq, tokenizer=tok)
    chunked = [tok.encode(seq[a : a + chunk]) for a in range(0, len(seq), chunk)]
    ids = np.concatenate([c.ids for c in chunked]) if chunked else np.zeros(0, np.int64)
    assert whole.ids.dtype == whole.spans.dtype == np.int64
    assert np.array_equal(whole.ids, ids) and whole.spans.shape == (len(seq), 2)
    assert np.array_equal(whole.spans, np.stack([np.arange(len(seq)), np.arange(1, len(seq) + 1)], axis=1))


@settings(max_examples=30, deadline=None)
@given(seq=st.text(alphabet="ACGTNacgtnRY-*é", min_size=0, max_size=2000), w=st.integers(1, 300),
       overlap=st.sampled_from([0.0, 0.25, 0.5]))
def test_a_compact_plan_holds_the_tokens_as_int32_from_the_tokenizer_on(bpe, seq, w, overlap):
    """compact (a scan's planned units): the ids and spans of the int64 tokenisation as int32,
    made so by the character tokenizer itself and cast once for BPE; the windows unchanged,
    their starts and ends int64."""
    from genaannot.tokenize import CharTokenizer as Char

    for tok in (Char(), bpe):
        ref = tokenize_long(seq, tokenizer=tok, chunk_bp=700)
        small = tokenize_long(seq, tokenizer=tok, chunk_bp=700, compact=True)
        assert small.ids.dtype == small.spans.dtype == np.int32 and ref.ids.dtype == np.int64
        assert np.array_equal(small.ids, ref.ids) and np.array_equal(small.spans, ref.spans)
        if seq:
            a = plan_windows(seq, tokenizer=tok, window_tokens=w, overlap=overlap)
            b = plan_windows(seq, tokenizer=tok, window_tokens=w, overlap=overlap, compact=True)
            assert b.starts.dtype == b.ends.dtype == np.int64
            for x, y in ((a.starts, b.starts), (a.ends, b.ends), (a.ranges, b.ranges)):
                assert np.array_equal(x, y)
    with pytest.raises(ValueError, match="int64 or int32"):
        Char().encode("ACGT", dtype=np.int16)


def test_a_subset_shares_the_tokens_unless_a_copy_frees_an_eighth():
    from genaannot.tokenize import CharTokenizer as Char

    seq = "ACGT" * 400
    plan = plan_windows(seq, tokenizer=Char(), window_tokens=100, overlap=0.5)
    n = len(plan)
    most = plan.subset(np.arange(1, n - 1))  # the halo windows dropped: a view of the tokens
    half = plan.subset(np.arange(0, n // 2))  # half of them: a copy, so the rest can go
    assert np.shares_memory(most.tokens.ids, plan.tokens.ids) and np.shares_memory(most.tokens.spans, plan.tokens.spans)
    assert not np.shares_memory(half.tokens.ids, plan.tokens.ids) and len(half.tokens) < 0.6 * len(plan.tokens)
    for sub, idx in ((most, np.arange(1, n - 1)), (half, np.arange(0, n // 2))):
        for k, i in enumerate(idx):
            assert np.array_equal(sub.encoding(k).ids, plan.encoding(i).ids)
            assert np.array_equal(sub.encoding(k).spans, plan.encoding(i).spans)


@pytest.mark.parametrize("run", [9, 10, 700, 5000, 20000])
def test_tokenize_long_keeps_a_long_n_run_one_gap_token(run):
    """The GENA tokenizer makes any run of >= 10 N one gap token; a chunk cut inside the run
    must not split it, however long it is (here up to 2.4x the default 8-kb chunk)."""
    from tinymodels import random_dna

    from genaannot.io.tokenizers import load_tokenizer

    repo = Path(__file__).resolve().parent.parent
    tok = load_tokenizer(repo / "genaannot/data/tokenizers/t2t_1000h_multi_32k")
    for at in (0, 137, 499, 500, 501):
        seq = random_dna(600, seed=run)[:at] + "N" * run + random_dna(900, seed=at + 1).lower()
        ref = tok.encode(seq)
        for chunk in (100, 500, 8192):
            got = tokenize_long(seq, tokenizer=tok, chunk_bp=chunk)
            assert np.array_equal(got.ids, ref.ids) and np.array_equal(got.spans, ref.spans), (at, chunk)
        if run >= 10:
            assert int((ref.ids == tok.gap_id).sum()) == 1


def test_windows_equal_own_tokenisation_on_a_real_genome():
    """The GENA tokenizer on TAIR10: a window sliced from the strand's tokenisation is the
    window's own tokenisation (what upstream GENA-LM inference on that window would use)."""
    from genaannot.io.fasta import open_genome
    from genaannot.io.tokenizers import load_tokenizer

    repo = Path(__file__).resolve().parent.parent
    tok = load_tokenizer(repo / "genaannot/data/tokenizers/t2t_1000h_multi_32k")
    seq = open_genome(repo / "examples/athaliana/athaliana_1pct.fa.gz").fetch("Chr2", 0, 60000)
    for strand_seq in (seq, reverse_complement(seq)):
        whole = tokenize_long(strand_seq, tokenizer=tok, chunk_bp=5000)
        assert np.array_equal(whole.ids, tok.encode(strand_seq).ids)
        plan = plan_windows(strand_seq, tokenizer=tok, window_tokens=510, overlap=0.5)
        assert len(plan) > 10
        for a, b, enc in zip(plan.starts, plan.ends, plan.encs):
            assert np.array_equal(enc.ids, tok.encode(strand_seq[a:b]).ids)


def test_stride_in_tokens():
    plan = plan_windows("A" * 100, tokenizer=CharTokenizer(), window_tokens=10, overlap=0.5)
    assert plan.starts.tolist()[:3] == [0, 5, 10] and np.all(plan.ends - plan.starts == 10)
    assert stride_tokens(10, 0.0) == 10 and stride_tokens(10, 0.75) == 2
    with pytest.raises(ValueError):
        stride_tokens(10, 1.0)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 500), w=st.integers(1, 50), overlap=st.sampled_from([0.0, 0.3, 0.5, 0.8]))
def test_center_cuts_cover_once_and_nearest(n, w, overlap):
    plan = plan_windows("A" * n, tokenizer=CharTokenizer(), window_tokens=w, overlap=overlap)
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


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 300), w=st.integers(1, 40), overlap=st.sampled_from([0.0, 0.25, 0.3, 0.5, 0.8]))
def test_center_cuts_earlier_ties_mirror_later_ties(n, w, overlap):
    # windows of the reverse complement, mapped to forward coordinates: owning with ties to
    # the earlier window is owning in the reverse complement with ties to the later one, mirrored
    plan = plan_windows("A" * n, tokenizer=CharTokenizer(), window_tokens=w, overlap=overlap)
    own_rc = center_cuts(plan.starts, plan.ends, lo=0, hi=n)
    mirrored = reverse_plan(plan, n)
    own_fwd = center_cuts(mirrored.starts, mirrored.ends, lo=0, hi=n, ties="earlier")
    assert (n - own_rc[::-1, ::-1]).tolist() == own_fwd.tolist()


def test_center_cuts_tie_goes_where_asked():
    # centres 8 and 19 (the last window cut short): base 13 (centre 13.5) is equally near both
    starts, ends = np.array([0, 12]), np.array([16, 26])
    assert center_cuts(starts, ends, lo=0, hi=26).tolist() == [[0, 13], [13, 26]]
    assert center_cuts(starts, ends, lo=0, hi=26, ties="earlier").tolist() == [[0, 14], [14, 26]]


def test_center_cuts_tie_rule_is_checked():
    with pytest.raises(ValueError, match="ties"):
        center_cuts(np.array([0]), np.array([4]), lo=0, hi=4, ties="left")


def test_units_and_gaps():
    assert subtract_gaps(0, 100, [(10, 20), (50, 60), (95, 120)]) == [(0, 10), (20, 50), (60, 95)]
    assert subtract_gaps(0, 10, [(0, 10)]) == []
    units = plan_units([Segment("a", 0, 25), Segment("b", 5, 7)], unit_bp=10)
    assert [(u.chrom, u.start, u.end) for u in units] == [("a", 0, 10), ("a", 10, 20), ("a", 20, 25), ("b", 5, 7)]
    assert [u.index for u in units] == [0, 1, 2, 3]
    assert unit_context(units[1], 4) == (6, 24) and unit_context(units[1], 40) == (0, 25)


def test_default_unit_size_follows_the_tokens_a_base_gives():
    # about 80,000 token positions a strand: 500 kb of BPE, 80 kb of a token per base ...
    assert default_unit_bp(3, max_token_bp=16, window_tokens=510) == BPE_UNIT_BP == 500_000
    assert default_unit_bp(3, max_token_bp=1, window_tokens=510) == BASE_UNIT_BP == 80_000
    # ... or 32 windows if more (8 bp a token at most, as the halo counts), 1 Mb at most
    assert default_unit_bp(3, max_token_bp=1, window_tokens=4_000) == 128_000
    assert default_unit_bp(3, max_token_bp=1, window_tokens=16_000) == 512_000
    assert default_unit_bp(3, max_token_bp=1, window_tokens=160_000) == MAX_UNIT_BP == 1_000_000
    assert default_unit_bp(3, max_token_bp=4, window_tokens=4_096) == 524_288
    assert default_unit_bp(3, max_token_bp=16, window_tokens=4_096) == MAX_UNIT_BP  # BigBird
    # many tracks: the work arrays' budget decides, never below 20 kb
    assert default_unit_bp(919, max_token_bp=16, window_tokens=510) < BASE_UNIT_BP
    assert default_unit_bp(100_000, max_token_bp=1, window_tokens=510) == 20_000


def test_reverse_complement():

    assert reverse_complement("AACG") == "CGTT"
    assert reverse_complement("acgN") == "Ncgt"
    assert reverse_complement("RY") == "RY"
