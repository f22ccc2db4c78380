"""Pure variant logic: allele checks, token-sized windows, alt-track alignment, deltas."""

from __future__ import annotations

import numpy as np
import pytest
from toy import CharTokenizer

from genaannot.stitch import paint_tokens
from genaannot.variants import (
    align_alt,
    allele_reason,
    genome_reason,
    plan_variant_window,
    sequence_delta,
    token_delta,
)
from genaannot.windows import reverse_complement

SEQ = "ACGTTGCAAC" * 30  # 300 bp


def fetch(s: int, e: int) -> str:
    return SEQ[s:e]


def col(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)[:, None]


def test_reverse_complement_iupac_and_case():
    assert reverse_complement("ACGTNacgtRY") == "RYacgtNACGT"


@pytest.mark.parametrize(
    "ref,alt,reason",
    [("C", "A", None), ("C", "*", "SYMBOLIC"), ("C", "<DEL>", "SYMBOLIC"), ("C", "<NON_REF>", "SYMBOLIC"),
     ("C", None, "SYMBOLIC"), ("C", ".", "SYMBOLIC"), ("C", "", "SYMBOLIC"),
     # breakends (VCF 4.x): the four bracket forms, a <ctg> mate, single breakends .X / X.
     ("C", "C[2:3[", "SYMBOLIC"), ("G", "G]Chr2:5000]", "SYMBOLIC"), ("G", "]Chr2:5000]G", "SYMBOLIC"),
     ("G", "[<ctg1>:7[G", "SYMBOLIC"), ("G", ".G", "SYMBOLIC"), ("G", "G.", "SYMBOLIC"), ("G", "GTA.", "SYMBOLIC"),
     # not bases and not symbolic notation: SpliceAI's malformed test allele, IUPAC codes in ALT,
     # broken breakends and symbolic alleles, '*' inside an allele
     ("G", "T/*", "BAD_ALLELE"), ("G", "R", "BAD_ALLELE"), ("G", "G[2:3]", "BAD_ALLELE"),
     ("G", "G[2:3", "BAD_ALLELE"), ("G", "<DEL", "BAD_ALLELE"), ("G", "A*", "BAD_ALLELE"),
     # REF: '.', empty or non-IUPAC characters are not bases; an IUPAC REF is compared with the FASTA
     ("Z", "A", "BAD_ALLELE"), (".", "A", "BAD_ALLELE"), ("", "A", "BAD_ALLELE"), ("G*", "A", "BAD_ALLELE"),
     ("R", "A", None), ("GG", "cc", None)],
)
def test_allele_reason(ref, alt, reason):
    assert allele_reason(ref, alt) == reason


def test_genome_reason_order():
    assert genome_reason(ref="C", start=10, chrom_len=10, genome_ref=None) == "EDGE"
    assert genome_reason(ref="CC", start=9, chrom_len=10, genome_ref=None) == "EDGE"
    assert genome_reason(ref="C", start=0, chrom_len=10, genome_ref="n") == "N_REGION"
    assert genome_reason(ref="Z", start=0, chrom_len=10, genome_ref="G") == "REF_MISMATCH"
    assert genome_reason(ref="g", start=0, chrom_len=10, genome_ref="G") is None


def test_window_snv_fills_budget_and_is_centred():
    p = plan_variant_window(fetch=fetch, chrom_len=300, start=150, end=151, alts=["A"], tokenizer=CharTokenizer(),
                    max_tokens=64, distance=10)
    assert (p.start, p.end) == (150 - 31, 151 + 31)  # 63 tokens: largest symmetric window
    assert p.n_tokens <= 64
    assert p.alt_seqs[0][31] == "A" and p.ref_seq[31] == SEQ[150]


def test_window_shrinks_for_insertion_and_all_strands_fit():
    p = plan_variant_window(fetch=fetch, chrom_len=300, start=150, end=151, alts=["A", "ACGTACGTAC"],
                    tokenizer=CharTokenizer(), max_tokens=64, distance=10, strands=("+", "-"))
    assert max(len(e) for e in p.encodings.values()) <= 64
    assert len(p.encodings) == 6  # ref + 2 alts, two strands
    assert p.end - p.start == 1 + 2 * 27  # 10-bp ALT: 2F + 10 <= 64


def test_window_shifts_inward_at_chromosome_ends():
    p = plan_variant_window(fetch=fetch, chrom_len=300, start=2, end=3, alts=["T"], tokenizer=CharTokenizer(),
                    max_tokens=64, distance=10)
    assert p.start == 0 and p.end == 63
    p = plan_variant_window(fetch=fetch, chrom_len=300, start=298, end=299, alts=["T"], tokenizer=CharTokenizer(),
                    max_tokens=64, distance=10)
    assert p.end == 300 and p.start == 300 - 63


def test_window_too_long():
    assert plan_variant_window(fetch=fetch, chrom_len=300, start=100, end=160, alts=["A"], tokenizer=CharTokenizer(),
                       max_tokens=64, distance=10) is None
    # fits without distance
    assert plan_variant_window(fetch=fetch, chrom_len=300, start=100, end=160, alts=["A"], tokenizer=CharTokenizer(),
                       max_tokens=64, distance=0) is not None


def test_paint_token_spans_to_bp():
    logits = np.array([[0.0], [2.0]], dtype=np.float32)
    spans = np.array([[0, 3], [3, 4]])
    tr = paint_tokens(logits, spans, length=4)
    assert tr[:, 0].tolist() == [0, 0, 0, 2]
    with pytest.raises(ValueError):
        paint_tokens(logits, spans, length=5)


def test_align_snv_mnp_identity():
    t = col([1, 2, 3, 4])
    assert align_alt(t, offset=1, ref_len=2, alt_len=2) is t


def test_align_deletion_zeros():
    # ref window: x [T G] y z ; alt: x [T] y z ; deleted G takes 0
    alt = col([1, 5, 7, 8])
    out = align_alt(alt, offset=1, ref_len=2, alt_len=1)
    assert out[:, 0].tolist() == [1, 5, 0, 7, 8]


def test_align_insertion_collapses_max():
    # ref: x [C] y ; alt: x [C A A] y ; C,A,A collapse onto C with their max
    alt = col([1, 2, 9, 3, 4])
    out = align_alt(alt, offset=1, ref_len=1, alt_len=3)
    assert out[:, 0].tolist() == [1, 9, 4]


def test_align_complex():
    # REF GGA -> ALT T (shrink): first base maps, two deleted
    out = align_alt(col([1, 6, 2]), offset=1, ref_len=3, alt_len=1)
    assert out[:, 0].tolist() == [1, 6, 0, 0, 2]
    # REF GG -> ALT CAT (grow): first maps, rest collapse onto the second REF base
    out = align_alt(col([1, 5, 3, 7, 2]), offset=1, ref_len=2, alt_len=3)
    assert out[:, 0].tolist() == [1, 5, 7, 2]


def test_token_delta_positions_relative_to_pos():
    ref = col([0.1] * 11)
    alt = ref.copy()
    alt[2, 0] = 0.9  # gain 2 bp before the variant at offset 4
    alt[7, 0] = 0.0  # loss 3 bp after
    d = token_delta(ref, alt, offset=4, ref_len=1, distance=3)
    assert d.gain[0] == pytest.approx(0.8) and d.gain_pos[0] == -2
    assert d.loss[0] == pytest.approx(0.1) and d.loss_pos[0] == 3
    d = token_delta(ref, alt, offset=4, ref_len=1, distance=1)  # both outside ±1
    assert d.gain[0] == 0 and d.loss[0] == 0


def test_sequence_delta_log_odds():
    d = sequence_delta(np.array([0.5], np.float32), np.array([0.8], np.float32), activation="sigmoid")
    assert d.diff[0] == pytest.approx(0.3)
    assert d.log_odds[0] == pytest.approx(np.log(4.0), rel=1e-5)
    d = sequence_delta(np.array([1.0], np.float32), np.array([3.0], np.float32), activation="identity")
    assert np.isnan(d.log_odds[0]) and d.effect == pytest.approx(2.0)


def test_plan_windows_batch_fills_the_budget_with_the_gena_tokenizer():
    """Real BPE tokenizer on TAIR10: every input fits, windows fill the budget to within
    the slack, a batch equals one-at-a-time planning, and the search over full
    tokenisations (the old planner, now the fallback; it stops at 99 % fill) finds windows of
    about the same length."""
    from pathlib import Path

    from genaannot.io.fasta import open_genome
    from genaannot.io.tokenizers import load_tokenizer
    from genaannot.variants import WindowRequest, _plan_by_search, plan_variant_windows

    repo = Path(__file__).resolve().parent.parent
    tok = load_tokenizer(repo / "genaannot/data/tokenizers/t2t_1000h_multi_32k")
    seq = open_genome(repo / "examples/athaliana/athaliana_1pct.fa.gz").fetch("Chr1", 0, 120000)
    rng = np.random.default_rng(3)
    reqs = []
    for pos in [3, 40, *rng.integers(200, len(seq) - 200, size=30).tolist(), len(seq) - 5]:
        ref = seq[pos : pos + int(rng.integers(1, 4))]
        alts = [rng.choice(list("ACGT")) + "ACGTTA"[: int(rng.integers(0, 7))], "T"]
        reqs.append(WindowRequest(fetch=lambda s, e: seq[s:e], chrom_len=len(seq), start=pos, end=pos + len(ref),
                                  alts=alts, distance=50))
    max_tokens, strands = 510, ("+", "-")
    plans = plan_variant_windows(reqs, tokenizer=tok, max_tokens=max_tokens, strands=strands)
    one = [plan_variant_window(fetch=r.fetch, chrom_len=r.chrom_len, start=r.start, end=r.end, alts=r.alts,
                       tokenizer=tok, max_tokens=max_tokens, distance=50, strands=strands) for r in reqs]
    assert [(p.start, p.end) for p in plans] == [(p.start, p.end) for p in one]
    for r, p in zip(reqs, plans):
        assert p is not None and len(p.encodings) == 6
        for (i, s), enc in p.encodings.items():  # each input is its own tokenisation
            want = p.ref_seq if i < 0 else p.alt_seqs[i]
            assert np.array_equal(enc.ids, tok.encode(want if s == "+" else reverse_complement(want)).ids)
        assert p.n_tokens <= max_tokens
        assert p.n_tokens >= max_tokens - 2 * (max_tokens // 64)  # slack 7: within 14 tokens of full
        assert p.start <= r.start - min(50, r.start) and p.end >= r.end + min(50, len(seq) - r.end)
        old = _plan_by_search(fetch=r.fetch, chrom_len=r.chrom_len, start=r.start, end=r.end, alts=r.alts,
                              tokenizer=tok, max_tokens=max_tokens, strands=strands, max_rounds=14)
        assert abs((old.end - old.start) - (p.end - p.start)) <= 0.04 * (old.end - old.start)
