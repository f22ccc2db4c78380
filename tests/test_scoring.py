"""Tests for genaannot.scoring: the per-chunk stages of ``score`` (plan, predict, deltas, outcome)."""

from __future__ import annotations

import pytest
from toy import BASE_VALUE, make_toy_model

from genaannot.io.fasta import open_genome
from genaannot.io.vcf import VcfRecord
from genaannot.readout import resolve_readout
from genaannot.scoring import (
    REASON_FIELD,
    ReferenceCache,
    add_deltas,
    info_field,
    numeric_fields,
    plan_records,
    predict_records,
    record_outcome,
    tsv_columns,
)

SEQ = ("ACGTTGCAAC" * 6) + "GATTACA" + ("CCGGTTAAGT" * 6)  # 127 bp


@pytest.fixture
def genome(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">chr2\n" + SEQ + "\n")
    with open_genome(fa) as g:
        yield g


def rec(pos: int, ref: str, *alts: str, chrom: str = "2") -> VcfRecord:
    return VcfRecord(chrom=chrom, pos=pos, start=pos - 1, ref=ref, alts=tuple(alts), id=f"v{pos}")


def other(base: str) -> str:
    return "A" if base != "A" else "C"


MODEL = make_toy_model("token", max_tokens=64)
READOUT = resolve_readout("splice", MODEL.info)
PLAN = {"mapping": {"2": "chr2"}, "readout": READOUT, "tokenizer": MODEL.tokenizer, "max_tokens": 64, "distance": 10}


def test_plan_records_gives_each_alt_a_reason_or_a_window(genome):
    p = 60
    b = SEQ[p - 1]
    chunk = [
        rec(p, b, other(b), "G" if b != "G" else "T"),  # two SNVs: each its own window, as if alone
        rec(p, b, chrom="X"),  # ALT '.': nothing to do
        rec(p, b, "A", chrom="X"),  # not in the FASTA
        rec(p, other(b), "G"),  # REF differs from the FASTA
        rec(p, b, "<DEL>"),  # symbolic
        rec(p, b, b + "A" * 80),  # longer than the model's 64 tokens
        rec(p, b, other(b), b + "A" * 80),  # the long one alone; the SNV still scored
    ]
    works = plan_records(chunk, genome=genome, **PLAN)
    assert [w.record for w in works] == chunk
    reasons = [[a.reason for a in w.alts] for w in works]
    assert reasons == [[None, None], [], ["NO_CONTIG"], ["REF_MISMATCH"], ["SYMBOLIC"], ["TOO_LONG"], [None, "TOO_LONG"]]
    two = works[0].alts
    assert two[0].plan is not two[1].plan and [a.index for a in two] == [0, 0]
    w = two[0].plan
    assert (w.start, w.end) == (two[1].plan.start, two[1].plan.end)  # 1-bp tokens: the same span
    assert w.start <= p - 1 - 10 and p + 10 <= w.end  # the distance's flanks fit in the window
    assert set(w.encodings) == {(-1, "+"), (-1, "-"), (0, "+"), (0, "-")}
    alone = works[6].alts[0]
    assert alone.plan is not None and alone.index == 0 and works[6].alts[1].plan is None
    assert works[1].gchrom is None and works[2].gchrom is None and works[0].gchrom == "chr2"


def test_reference_cache_is_least_recently_used():
    c = ReferenceCache(2)
    c.put(("a",), 1)
    c.put(("b",), 2)
    c.touch(("a",))
    c.put(("c",), 3)  # evicts b, the least recently used
    assert ("a",) in c and ("b",) not in c and ("c",) in c and len(c) == 2 and c[("a",)] == 1


def test_predict_records_shares_reference_windows_within_and_across_chunks(genome):
    p = 60
    b = SEQ[p - 1]
    chunk = [rec(p, b, other(b), "G" if b != "G" else "T"), rec(p, b, other(b))]
    cache = ReferenceCache(16)
    works = plan_records(chunk, genome=genome, **PLAN)
    first = predict_records(works, readout=READOUT, model=MODEL, batch_size=3, cache=cache)
    # 3 ALTs × 2 strands need 6 alt windows; the second record's ALT equals the first's, and all
    # share one reference window per strand (the same window span)
    assert len(first.pairs) == 6
    assert first.windows_predicted == 2 + 4 and first.cache_hits == 6 - 2 and len(cache) == 2
    again = predict_records(plan_records(chunk, genome=genome, **PLAN), readout=READOUT, model=MODEL,
                            batch_size=3, cache=cache)
    assert again.windows_predicted == 4 and again.cache_hits == 6  # references from the cache


def test_deltas_and_outcome_of_a_snv_follow_the_toy_values(genome):
    p = 60
    b = SEQ[p - 1]
    alt = "G" if b != "G" else "T"
    works = plan_records([rec(p, b, alt, "<DEL>")], genome=genome, **PLAN)
    pred = predict_records(works, readout=READOUT, model=MODEL, batch_size=8, cache=ReferenceCache(4))
    add_deltas(pred.pairs, readout=READOUT, distance=10)
    a = works[0].alts[0]
    assert set(a.result) == {"+", "-"}
    out = record_outcome(works[0], READOUT, rows=True)
    assert out.n_scored == 1 and out.reasons == ["SYMBOLIC"]
    numeric = [name for name, _, _ in numeric_fields(READOUT)]
    assert list(out.info) == [info_field(READOUT), *numeric, REASON_FIELD]
    assert numeric[:2] == ["GENA_SPLICE_STRAND", "GENA_SPLICE_DS_AG"] and numeric[-1] == "GENA_SPLICE_DS_MAX"
    assert out.info["GENA_SPLICE_DS_MAX"][1] is None and isinstance(out.info["GENA_SPLICE_DP_AG"][0], int)
    assert out.info[REASON_FIELD] == [".", "SYMBOLIC"] and out.info[info_field(READOUT)][1] == "."
    value = out.info[info_field(READOUT)][0].split("|")
    assert value[0] == alt
    # channel 1 ("acceptor") is the base's value: the change at the site is alt - ref on "+"
    # (on "-" the complement's value); the INFO value reports the stronger strand
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    plus = abs(BASE_VALUE[alt] - BASE_VALUE[b])
    minus = abs(BASE_VALUE[comp[alt]] - BASE_VALUE[comp[b]])
    assert value[1] == ("+" if plus >= minus else "-")
    assert len(out.rows) == 2 and len(out.rows[0]) == len(tsv_columns(READOUT))
    assert out.rows[0][6] == "scored" and out.rows[1][6] == "SYMBOLIC" and out.rows[1][8] is None
    assert out.rows[0][7] is None  # gene: no annotation
    assert record_outcome(works[0], READOUT).rows == []
