"""genaannot.bpe: the compiled BPE encoder gives exactly the ids and spans of ``tokenizers``."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tinymodels import make_tokenizer

import genaannot.bpe
from genaannot.bpe import FastBPE
from genaannot.io.fasta import open_genome
from genaannot.io.tokenizers import read_bpe_tokenizer, read_tokenizer_json
from genaannot.tokenize import BPETokenizer
from genaannot.windows import reverse_complement, tokenize_long

REPO = Path(__file__).resolve().parent.parent
T2T = Path(str(resources.files("genaannot") / "data/tokenizers/t2t_1000h_multi_32k/tokenizer.json"))

def _pair(path: Path) -> tuple[BPETokenizer, BPETokenizer]:
    """The same tokenizer twice: always through ``tokenizers``, and always compiled."""
    slow, fast = read_bpe_tokenizer(path), read_bpe_tokenizer(path)
    slow.fast_after_bp, fast.fast_after_bp = None, 0
    return slow, fast


@pytest.fixture(scope="module")
def t2t():
    return _pair(T2T)


@pytest.fixture(scope="module")
def human(shared):
    return _pair(shared / "fixtures/tokenizers/human_BPE_32k/tokenizer.json")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _pair(make_tokenizer(tmp_path_factory.mktemp("tok")))


def _same(pair: tuple[BPETokenizer, BPETokenizer], seq: str) -> None:
    slow, fast = pair
    a, b = slow.encode(seq), fast.encode(seq)
    assert np.array_equal(a.ids, b.ids), seq[:80]
    assert np.array_equal(a.spans, b.spans), seq[:80]


def test_gena_tokenizers_are_compiled(t2t):
    """The t2t tokenizer is within what the encoder implements (else this file tests little)."""
    t2t[1].encode("ACGT")
    assert isinstance(t2t[1]._fast, FastBPE)
    assert t2t[1]._fast.gap_id == 5 and t2t[1]._fast.split_gaps  # N{10,} -> "-", a word of its own


def _genome_strands(path: Path):
    genome = open_genome(path)
    for chrom, size in genome.sizes.items():
        seq = genome.fetch(chrom, 0, size)
        yield f"{chrom}+", seq
        yield f"{chrom}-", reverse_complement(seq)


def _same_genome(path: Path, pairs) -> None:
    """Whole chromosomes, both strands, through ``tokenize_long`` (8-kb chunks with
    look-ahead, the scan's path): the same ids and spans token for token."""
    n = 0
    for name, seq in _genome_strands(path):
        for slow, fast in pairs:
            a, b = tokenize_long(seq, tokenizer=slow), tokenize_long(seq, tokenizer=fast)
            assert np.array_equal(a.ids, b.ids), name
            assert np.array_equal(a.spans, b.spans), name
        n += len(seq)
    assert n > 2_000_000


def test_every_bundled_chromosome_both_strands_equals_tokenizers(t2t):
    """The bundled TAIR10 1 % genome (Chr1-5, ChrC, ChrM), the t2t tokenizer."""
    _same_genome(REPO / "examples/athaliana/athaliana_1pct.fa.gz", [t2t])


def test_shared_genomes_both_tokenizers_equal_tokenizers(t2t, human, shared):
    """../shared's TAIR10 1 % and C. elegans 1 %, both strands, both GENA tokenizers
    (human_BPE_32k has no normaliser: one word, N is [UNK])."""
    human[1].encode("ACGT")
    assert isinstance(human[1]._fast, FastBPE) and human[1]._fast.gap_id == -1
    _same_genome(shared / "data/KorfLab_datacore/genome_celegans/1pct_elegans.fa", [t2t, human])
    _same_genome(shared / "data/KorfLab_datacore/genome_athaliana/1pct.fa", [human])


def test_one_pass_over_a_chromosome_equals_tokenizers(t2t):
    """One encode of 150 kb (one long BPE word), not only 8-kb chunks."""
    seq = open_genome(REPO / "examples/athaliana/athaliana_1pct.fa.gz").fetch("Chr1", 0, 150_000)
    _same(t2t, seq)
    _same(t2t, reverse_complement(seq))


def _random_dna(rng: random.Random, n: int) -> str:
    alphabet = rng.choice(["ACGT", "AT", "A", "ACGTN", "ACGTRYKMSWBDHVN", "ACGTNUXZ", "acgtnACGTN"])
    seq = "".join(rng.choice(alphabet) for _ in range(n))
    for _ in range(rng.randint(0, 3)):  # N runs around the gap rule's 10
        i = rng.randint(0, len(seq))
        seq = seq[:i] + rng.choice("Nn") * rng.randint(1, 25) + seq[i:]
    return seq


def test_random_sequences_equal_tokenizers(t2t, human, tiny):
    """Random sequences: N runs of 1-25 (the gap rule is N{10,}, at the start, end, inside),
    soft-masked letters, IUPAC letters in and out of the vocabulary, letters no DNA has,
    homopolymers (ties: the leftmost pair merges first)."""
    rng = random.Random(19)
    for pair in (t2t, human, tiny):
        for _ in range(400):
            _same(pair, _random_dna(rng, rng.randint(0, 400)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="ACGTNRYKMSWBDHVacgtn", max_size=300))
def test_any_dna_text_equals_tokenizers(t2t, tiny, seq):
    _same(t2t, seq)
    _same(tiny, seq)


def test_chunk_edges_equal_tokenizers(t2t):
    """``tokenize_long`` with small chunks (many edges, some inside or beside N runs)."""
    rng = random.Random(7)
    seq = "".join(_random_dna(rng, 300) for _ in range(20))
    slow, fast = t2t
    for chunk in (50, 333, 1000):
        a, b = tokenize_long(seq, tokenizer=slow, chunk_bp=chunk), tokenize_long(seq, tokenizer=fast, chunk_bp=chunk)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.spans, b.spans), chunk


def test_other_text_goes_to_tokenizers(t2t):
    """What the encoder does not handle ("-", whitespace, brackets, non-ASCII) returns None
    and the tokenizer answers through ``tokenizers``: the same result as before."""
    fast = t2t[1]._fast or FastBPE.from_spec(json.loads(read_tokenizer_json(T2T)))
    for seq in ("ACG-TTA", "ACGT ACGT", "AC[CLS]GT", "ACGTÄ", "ACGT\n"):
        assert fast.encode(seq) is None
    for seq in ("ACG-TTA", "AC[CLS]GT"):
        a, b = t2t[0].encode(seq), t2t[1].encode(seq)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.spans, b.spans)


def _spec() -> dict:
    return json.loads(read_tokenizer_json(T2T))


@pytest.mark.parametrize("change", [
    lambda s: s["model"].update(dropout=0.1),
    lambda s: s["model"].update(byte_fallback=True),
    lambda s: s["model"].update(continuing_subword_prefix="##"),
    lambda s: s["model"].update(fuse_unk=True),
    lambda s: s["model"].update(ignore_merges=True),
    lambda s: s.update(normalizer={"type": "Lowercase"}),
    lambda s: s.update(pre_tokenizer={"type": "Whitespace"}),
    lambda s: s["added_tokens"].append({"id": 6, "content": "A", "normalized": False}),
    # a merge ranked before the merge that makes its part: the rank buckets would be wrong
    lambda s: s["model"]["merges"].insert(0, s["model"]["merges"].pop(40)),
    # a pair listed twice
    lambda s: s["model"]["merges"].append(s["model"]["merges"][3]),
])
def test_features_it_does_not_implement_are_refused(change):
    spec = _spec()
    assert FastBPE.from_spec(spec) is not None
    change(spec)
    assert FastBPE.from_spec(spec) is None


def test_a_refused_tokenizer_still_encodes_through_tokenizers(tmp_path):
    """A merge table out of rank order: no compiled encoder, the same tokens as always."""
    spec = _spec()
    merges = spec["model"]["merges"]
    merges.insert(0, merges.pop(40))
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec))
    slow, fast = _pair(path)
    seq = _random_dna(random.Random(3), 5000)
    _same((slow, fast), seq)
    assert fast._fast is False


def test_without_numba_everything_goes_to_tokenizers(monkeypatch):
    monkeypatch.setattr(genaannot.bpe, "available", lambda: False)
    slow, fast = _pair(T2T)
    seq = _random_dna(random.Random(5), 3000)
    _same((slow, fast), seq)
    assert fast._fast is False


def test_an_encoder_that_cannot_start_warns_and_goes_to_tokenizers(monkeypatch):
    """numba can fail at its first compile (no writable cache, no LLVM): a warning, then
    tokenizers, with the same tokens."""
    def broken(self, up):
        raise RuntimeError("no locator available")

    monkeypatch.setattr(FastBPE, "encode", broken)
    slow, fast = _pair(T2T)
    seq = _random_dna(random.Random(8), 2000)
    with pytest.warns(RuntimeWarning, match="compiled BPE encoder cannot start"):
        _same((slow, fast), seq)
    assert fast._fast is False


def test_switches_only_after_fast_after_bp_letters():
    tok = read_bpe_tokenizer(T2T)
    tok.fast_after_bp = 1000
    tok.encode("ACGT" * 100)
    assert tok._fast is None
    tok.encode("ACGT" * 200)
    assert isinstance(tok._fast, FastBPE)
    many = tok.encode_batch(["ACGTTTGA" * 50, "GGA" * 40])  # batches stay with tokenizers' threads
    assert [len(e) for e in many] == [len(tok.encode("ACGTTTGA" * 50)), len(tok.encode("GGA" * 40))]


def test_for_long_input_is_a_compiled_copy():
    tok = read_bpe_tokenizer(T2T)
    long = tok.for_long_input()
    assert long is not tok and long.fast_after_bp == 0 and tok.fast_after_bp == BPETokenizer.fast_after_bp
    long.encode("ACGT")
    assert isinstance(long._fast, FastBPE) and tok._fast is None
