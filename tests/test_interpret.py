"""ISM effects equal direct ref/alt predictions; integrated gradients is complete."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy import BASE_VALUE, CharTokenizer, make_toy_model

from genaannot.interpret import (
    BASES,
    InterpretError,
    Window,
    centered_window,
    find_input_embeddings,
    integrated_gradients,
    ism,
    resolve_target,
    strongest_site,
    tokens_to_bases,
)
from genaannot.models.base import Loaded, Model, ModelInfo
from genaannot.tasks import get_task
from genaannot.windows import reverse_complement

RNG = np.random.default_rng(7)
CHROM = "".join(RNG.choice(list("ACGT"), size=400))


def fetch(chrom, s, e):
    assert chrom == "c1"
    return CHROM[s:e]


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def tiny_bert(head: str = "token", *, max_pos: int = 66, seed: int = 0) -> Model:
    """A real GENA BERT network (2 layers, hidden 16) over the toy character tokenizer."""
    from genaannot.models.gena_bert import GenaBertConfig, build_network

    torch.manual_seed(seed)
    labels = {0: "none", 1: "acceptor", 2: "donor"} if head == "token" else {0: "background", 1: "promoter"}
    cfg = GenaBertConfig(
        vocab_size=16, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=max_pos, pad_token_id=3, pre_layer_norm=True,
        id2label=labels, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    net = build_network(cfg, head=head)
    with torch.no_grad():  # larger weights than BERT init, so outputs vary visibly with the input
        for p in net.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    info = ModelInfo(
        family="gena_bert", architecture="tiny", head=head, labels=tuple(labels.values()),
        problem_type="multi_label_classification" if head == "token" else "single_label_classification",
        max_tokens=max_pos - 2, resolution="base", n_params=0, source="test", tokenizer="toy-char",
    )
    return Model(Loaded(net, CharTokenizer(), info), device="cpu")


def test_window_is_centred_and_fits():
    model = make_toy_model("token", max_tokens=64)
    w = centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(100, 120), tokenizer=model.tokenizer, window_tokens=64)
    assert (w.start, w.end) == (78, 142) and w.seq == CHROM[78:142]
    # at the chromosome start the window slides right instead of shrinking
    w0 = centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(0, 5), tokenizer=model.tokenizer, window_tokens=64)
    assert (w0.start, w0.end) == (0, 64)
    with pytest.raises(InterpretError, match="does not fit"):
        centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(100, 200), tokenizer=model.tokenizer, window_tokens=64)


@pytest.mark.parametrize("strand", ["+", "-"])
def test_ism_token_head_matches_direct_predictions(strand):
    model = make_toy_model("token", max_tokens=64)
    ro = resolve_target(model, get_task("splice"), label="acceptor")
    w = centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(100, 130), tokenizer=model.tokenizer,
                        window_tokens=64, strand=strand)
    site = 117
    res = ism(model, w, (100, 130), ro, site=site, chunk=17)
    assert res.effects.shape == (30, 4)
    # direct: predict ref and each alt, read the site's token, subtract
    ref_p = model.predict([w.model_seq()])[0]
    m = w.to_model(site)
    for i in (0, 17, 29):
        k = 100 + i - w.start
        for j, b in enumerate(BASES):
            if b == w.seq[k]:
                assert np.isnan(res.effects[i, j])
                continue
            alt = w.seq[:k] + b + w.seq[k + 1:]
            alt_p = model.predict([w.model_seq(alt)])[0]
            want = sig(alt_p.logits[m, 1]) - sig(ref_p.logits[m, 1])
            assert res.effects[i, j] == pytest.approx(want, abs=1e-6)
    # toy: channel 1 is the value of the base itself -> only the site matters
    nz = np.flatnonzero(np.nanmax(np.abs(res.effects), axis=1) > 0)
    assert list(nz) == [site - 100]
    r = CHROM[site]
    comp = str.maketrans("ACGT", "TGCA")
    for j, b in enumerate(BASES):
        if b != r:
            rv, av = (r, b) if strand == "+" else (r.translate(comp), b.translate(comp))
            assert res.effects[site - 100, j] == pytest.approx(sig(BASE_VALUE[av]) - sig(BASE_VALUE[rv]), abs=1e-6)
    assert len(list(res.rows())) == 90
    assert res.max_abs.shape == res.mean.shape == (30,)


def test_ism_sequence_head_gc_fraction():
    model = make_toy_model("sequence", max_tokens=64)
    ro = resolve_target(model, get_task("promoter"))
    assert (ro.label, ro.channel, ro.activation) == ("promoter", 1, "softmax")
    w = centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(200, 220), tokenizer=model.tokenizer, window_tokens=64)
    res = ism(model, w, (200, 220), ro)
    n = len(w.seq)
    gc = sum(c in "GC" for c in w.seq) / n

    def f(g):  # softmax([0, g])[1]
        return sig(g)

    for i, r in enumerate(res.ref):
        for j, b in enumerate(BASES):
            if b == r:
                continue
            d = ((b in "GC") - (r in "GC")) / n
            assert res.effects[i, j] == pytest.approx(f(gc + d) - f(gc), abs=1e-6)
    assert res.ref_score == pytest.approx(f(gc), abs=1e-6)


def test_strongest_site_and_limits():
    model = make_toy_model("token", max_tokens=64)
    ro = resolve_target(model, get_task("splice"), label="acceptor")
    w = centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(100, 130), tokenizer=model.tokenizer, window_tokens=64)
    site = strongest_site(model, w, ro, (100, 130))
    assert CHROM[site] == "T" and "T" not in CHROM[100:site]  # T has the largest toy value
    with pytest.raises(InterpretError, match="is not an output of task splice"):
        resolve_target(model, get_task("splice"), label="exon")
    with pytest.raises(InterpretError, match="needs a site"):
        ism(model, w, (100, 130), ro)
    with pytest.raises(InterpretError, match="no token embedding"):
        integrated_gradients(model, w, ro, site=site)


def test_tokens_to_bases_preserves_sums():
    spans = np.array([[0, 3], [3, 4], [4, 9]])
    out = tokens_to_bases(spans, np.array([3.0, -1.0, 5.0]), 9)
    assert out.tolist() == [1, 1, 1, -1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize(("head", "strand", "baseline"), [("token", "+", "zero"), ("token", "-", "pad"), ("sequence", "+", "zero")])
def test_integrated_gradients_completeness(head, strand, baseline):
    model = tiny_bert(head)
    emb = find_input_embeddings(model.network, 16)
    assert emb is model.network.bert.embeddings.word_embeddings
    task = get_task("splice" if head == "token" else "promoter")
    ro = resolve_target(model, task)
    w = centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(150, 170), tokenizer=model.tokenizer,
                        window_tokens=64, strand=strand)
    site = 160 if head == "token" else None
    att = integrated_gradients(model, w, ro, site=site, steps=64, baseline=baseline, batch_size=16)
    # f(x) equals the ordinary prediction of the window
    p = model.predict([w.model_seq()])[0]
    logits = p.logits[w.to_model(site)] if head == "token" else p.logits
    want = sig(logits[1]) if head == "token" else np.exp(logits[1]) / np.exp(logits).sum()
    assert att.f_input == pytest.approx(float(want), abs=1e-5)
    delta = att.f_input - att.f_baseline
    assert abs(delta) > 1e-3
    # completeness within 1% of |f(x) - f(b)| with 64 trapezoid steps
    assert att.completeness_error < 0.01 * abs(delta) + 1e-6
    assert att.per_base.shape == (len(w.seq),)
    assert att.per_base.sum() == pytest.approx(att.total, abs=1e-9)
    assert att.token_spans[0, 0] == w.start and att.token_spans[-1, 1] == w.end
    # forward-orientation output on either strand: the tokens tile the window left to right, and
    # each base carries its token's attribution split over the token's bases
    np.testing.assert_array_equal(att.token_spans[1:, 0], att.token_spans[:-1, 1])
    np.testing.assert_allclose(att.per_base, tokens_to_bases(att.token_spans - w.start, att.token_attr, len(w.seq)))


def test_integrated_gradients_minus_equals_rc_of_plus_sequence():
    """The minus strand of a window is the plus strand of its reverse complement, flipped."""
    model = tiny_bert("token", seed=3)
    ro = resolve_target(model, get_task("splice"))
    w = centered_window(fetch=fetch, chrom="c1", chrom_size=400, focus=(150, 170), tokenizer=model.tokenizer,
                        window_tokens=64, strand="-")
    rc = Window("c1", w.start, w.end, "+", reverse_complement(w.seq))
    a = integrated_gradients(model, w, ro, site=160, steps=16)
    # genome position 160 on the minus window = offset end-1-(160-start) of the rc sequence
    b = integrated_gradients(model, rc, ro, site=w.start + w.end - 1 - 160, steps=16)
    np.testing.assert_allclose(a.per_base, b.per_base[::-1], rtol=1e-5, atol=1e-7)
