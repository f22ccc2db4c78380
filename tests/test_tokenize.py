"""Tokenizers: fixture ids/offsets, contiguous spans, case and IUPAC statistics.

The GENA t2t tokenizer is the copy bundled in the package (byte-identical to the one in
../shared/fixtures/tokenizers, checked below): only the parity fixture's expected ids and the
human_BPE_32k tokenizer need ../shared.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tinymodels import make_tokenizer, parity_fixture

from genaannot.io.tokenizers import load_tokenizer, read_bpe_tokenizer, write_tokenizer_files
from genaannot.tokenize import SequenceStats, TokenizerError


@pytest.fixture(scope="module")
def fixture(shared):
    return parity_fixture(shared)


#: the t2t tokenizer bundled in the package (what models without a tokenizer.json fall back to)
BUNDLED_T2T = Path(str(resources.files("genaannot") / "data/tokenizers/t2t_1000h_multi_32k"))


@pytest.fixture(scope="module")
def t2t():
    return load_tokenizer(BUNDLED_T2T)


def test_bundled_t2t_is_the_fixture_tokenizer(shared):
    """The parity expectations were made with ../shared's copy: the bundled one is the same bytes."""
    ref = shared / "fixtures" / "tokenizers" / "t2t_1000h_multi_32k"
    names = sorted(p.name for p in ref.iterdir())
    assert "tokenizer.json" in names
    for name in names:
        assert (BUNDLED_T2T / name).read_bytes() == (ref / name).read_bytes(), name


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return read_bpe_tokenizer(make_tokenizer(tmp_path_factory.mktemp("tok")))


def test_t2t_matches_fixture(fixture, t2t):
    _, exp, cases = fixture
    assert (t2t.cls_id, t2t.sep_id, t2t.pad_id, t2t.unk_id, t2t.gap_id) == (1, 2, 3, 0, 5)
    for case, seq in cases.items():
        key = f"tokenizer_t2t/{case}/"
        enc = t2t.encode(seq)
        np.testing.assert_array_equal(enc.ids, exp[key + "upper_input_ids"][1:-1])
        np.testing.assert_array_equal(enc.spans[:, 1], exp[key + "upper_offsets"][1:-1, 1])
        # as given (no upper-casing): the raw tokenizer, as upstream saw it
        raw = t2t._tok.encode(seq, add_special_tokens=False)
        np.testing.assert_array_equal(raw.ids, exp[key + "asis_input_ids"][1:-1])
        np.testing.assert_array_equal(np.asarray(raw.offsets)[:, 1], exp[key + "asis_offsets"][1:-1, 1])
        # contiguous cover of the upper-cased sequence
        assert enc.spans[0, 0] == 0 and enc.spans[-1, 1] == len(seq)
        np.testing.assert_array_equal(enc.spans[1:, 0], enc.spans[:-1, 1])


def test_gap_token_spans_cover_the_run(fixture, t2t):
    _, _, cases = fixture
    seq = cases["n_runs_1100"]
    enc = t2t.encode(seq)
    gaps = enc.spans[enc.ids == t2t.gap_id]
    assert len(gaps) >= 1
    for a, b in gaps:
        assert set(seq[a:b].upper()) == {"N"} and b - a >= 10
    assert any(b - a == 120 for a, b in gaps)  # the real 120-N run (430-550)


def test_bpe32k_ids(fixture, shared):
    _, exp, cases = fixture
    tok = load_tokenizer(shared / "fixtures" / "tokenizers" / "human_BPE_32k")
    for case, seq in cases.items():
        key = f"tokenizer_bpe32k/{case}/"
        raw = tok._tok.encode(seq.upper(), add_special_tokens=False)
        np.testing.assert_array_equal(raw.ids, exp[key + "upper_input_ids"][1:-1])
        np.testing.assert_array_equal(np.asarray(raw.offsets)[:, 1], exp[key + "upper_offsets"][1:-1, 1])


_dna = st.lists(
    st.one_of(
        st.text(alphabet="ACGTacgtN", min_size=1, max_size=40),
        st.integers(1, 40).map(lambda n: "N" * n),
        st.integers(1, 15).map(lambda n: "n" * n),
        st.sampled_from(["R", "Y", "K", "M", "S", "W", "B", "D", "H", "V", "y"]),
    ),
    min_size=1,
    max_size=12,
).map("".join)


def _check_cover(tok, seq: str) -> None:
    enc = tok.encode(seq)
    assert len(enc) >= 1
    assert enc.spans[0, 0] == 0 and enc.spans[-1, 1] == len(seq)
    np.testing.assert_array_equal(enc.spans[1:, 0], enc.spans[:-1, 1])
    assert (enc.spans[:, 1] > enc.spans[:, 0]).all()
    np.testing.assert_array_equal(enc.ids, tok.encode(seq.upper()).ids)  # case-insensitive


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=_dna)
def test_spans_contiguous_tiny(tiny, seq):
    _check_cover(tiny, seq)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=_dna)
def test_spans_contiguous_t2t(t2t, seq):
    _check_cover(t2t, seq)


def test_stats_counting(tiny):
    stats = SequenceStats()
    tiny.encode_batch(["ACGTacgtNNnn", "ACRYKDHV"], stats=stats)
    assert stats.lowercase == 6
    assert stats.iupac == {"R": 1, "Y": 1, "K": 1, "D": 1, "H": 1, "V": 1}
    other = SequenceStats()
    other.update("rr")
    stats.merge(other)
    assert stats.lowercase == 8 and stats.iupac["R"] == 3


def test_unknown_letters_unk(t2t):
    seq = "ACGTACGTDHVACGT"
    enc = t2t.encode(seq)
    unk = enc.spans[enc.ids == t2t.unk_id]
    # one 1-bp [UNK] per letter the vocabulary lacks (D, H, V), nothing else
    assert [seq[a:b] for a, b in unk] == ["D", "H", "V"]


def test_missing_tokenizer(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)


def test_save_roundtrip(tiny, tmp_path):
    write_tokenizer_files(tmp_path / "copy", tiny)
    again = load_tokenizer(tmp_path / "copy")
    seq = "ACGTTGCANNNNNNNNNNNNACGT"
    np.testing.assert_array_equal(again.encode(seq).ids, tiny.encode(seq).ids)
    assert (tmp_path / "copy" / "special_tokens_map.json").is_file()


@pytest.fixture(scope="module")
def t2t_bundled():
    return read_bpe_tokenizer(BUNDLED_T2T / "tokenizer.json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=_dna)
def test_length_table_spans_equal_offset_spans(t2t_bundled, tiny, seq):
    """The fast path (spans from per-id lengths and N runs) equals the repaired raw offsets."""
    from genaannot.tokenize import _contiguous

    for tok in (t2t_bundled, tiny):
        raw = tok._tok.encode(seq.upper(), add_special_tokens=False)
        want = _contiguous(np.asarray(raw.offsets, dtype=np.int64).reshape(-1, 2))
        np.testing.assert_array_equal(tok.encode(seq).spans, want)


def test_length_table_is_used_for_gena_tokenizers(t2t_bundled):
    assert t2t_bundled._token_bp is not None
    enc = t2t_bundled.encode("ACGT" + "N" * 25 + "TTGACA")
    gap = np.flatnonzero(enc.ids == t2t_bundled.gap_id)
    assert gap.size == 1 and tuple(enc.spans[gap[0]]) == (enc.spans[gap[0], 0], enc.spans[gap[0], 0] + 25)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ACGTNacgtnRYKMSWBDHVrykmswbdhv-*.\u00df\u00e9", max_size=60))
def test_sequence_stats_counts_what_a_letter_loop_counts(seq):
    from collections import Counter

    stats = SequenceStats()
    up = stats.update(seq)
    assert up == seq.upper()
    assert stats.lowercase == sum(c.islower() for c in seq)
    assert stats.iupac == Counter(c for c in up if c not in "ACGTN")


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(st.tuples(st.integers(0, 10_000), st.lists(st.integers(0, 300), min_size=1, max_size=40)),
                       min_size=1, max_size=20),
       wide=st.booleans())
def test_length_encoding_gives_back_the_spans_or_keeps_the_encoding(pieces, wide):
    """LengthEncoding (a scan's planned unit while it waits in the process that feeds the
    device: ids and uint8 lengths): its spans equal the encoding's, in their integer type,
    for tokenisations put end to end (any start, any number of pieces up to MAX_JUMPS);
    a token over 255 bp, or more jumps, keeps the encoding as it is."""
    from genaannot.tokenize import Encoding, LengthEncoding

    rows = []
    for start, lengths in pieces:
        ends = start + np.cumsum(lengths)
        rows.append(np.stack([ends - np.asarray(lengths), ends], axis=1))
    dt = np.int64 if wide else np.int32
    spans = np.concatenate(rows).astype(dt)
    enc = Encoding(np.arange(len(spans), dtype=np.int32), spans)
    got = LengthEncoding.of(enc)
    jumps = int((spans[1:, 0] != spans[:-1, 1]).sum())
    if int((spans[:, 1] - spans[:, 0]).max()) > 255 or jumps >= LengthEncoding.MAX_JUMPS:
        assert got is enc
        return
    assert isinstance(got, LengthEncoding) and len(got) == len(enc) and got.ids is enc.ids
    assert got.lengths.dtype == np.uint8 and len(got.jump_at) == jumps + 1
    back = got.spans
    assert back.dtype == dt and back.shape == spans.shape
    np.testing.assert_array_equal(back, spans)
