"""Splice-site conventions: the registry, where labels and truth are placed, and oracle models
that predict exactly the true sites of one convention (AP 1.0 when the convention is declared
right, near 0 when it is declared wrong)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from toy import CHAR_IDS, CharTokenizer

from genaannot.conventions import (
    SITE_CONVENTIONS,
    checkpoint_convention,
    get_convention,
    model_convention,
)
from genaannot.evaluate import evaluate_splice, fit_pwm
from genaannot.io.annotation import Annotation, Transcript
from genaannot.labels import SiteIndex
from genaannot.models.base import (
    Loaded,
    Model,
    ModelError,
    ModelInfo,
    collate_cls_sep,
    split_cls_sep,
)
from genaannot.regions import Interval

_COMP = str.maketrans("ACGT", "TGCA")


def _rc(s: str) -> str:
    return s.translate(_COMP)[::-1]


class _Genome:
    def __init__(self, seqs: dict[str, str]) -> None:
        self.seqs = seqs
        self.sizes = {k: len(v) for k, v in seqs.items()}

    def fetch(self, chrom, start, end):
        return self.seqs[chrom][start:end]


#: oriented markers around each junction: donor "GGC" with its first base on the last exon base,
#: acceptor "CGG" with its last base on the first exon base (A/T background holds neither, nor
#: their reverse complements GCC / CCG)
DONOR, ACCEPTOR = "GGC", "CGG"
#: base of the marker that is the site, per convention
MARK_INDEX = {"exon": {"donor": 0, "acceptor": 2}, "intron": {"donor": 1, "acceptor": 1}}


def _marked_genome(n: int = 12, seed: int = 0):
    """A/T DNA with introns on both strands whose junctions carry the markers (transcript orientation)."""
    rng = np.random.default_rng(seed)
    seq = list(rng.choice(list("AT"), 200 + n * 300))
    tx = []
    for i in range(n):
        s, e = 150 + i * 300, 150 + i * 300 + 120  # intron [s, e)
        strand = "+" if i % 2 == 0 else "-"
        if strand == "+":
            seq[s - 1 : s + 2] = DONOR  # last exon base s-1, first intron base s
            seq[e - 2 : e + 1] = ACCEPTOR  # last intron base e-1, first exon base e
        else:  # transcript runs right to left: donor at e-1 (intron) / e (exon), acceptor s / s-1
            seq[e - 2 : e + 1] = _rc(DONOR)
            seq[s - 1 : s + 2] = _rc(ACCEPTOR)
        tx.append(Transcript(f"t{i}", f"g{i}", "c1", strand, ((s - 60, s), (e, e + 60))))
    return _Genome({"c1": "".join(seq)}), Annotation("toy", {"c1": tx})


class _OracleNetwork(nn.Module):
    """Token head: acceptor (donor) logit +30 exactly where the convention's site base of a
    marker is, -30 elsewhere; it sees only the window's bases."""

    head = "token"

    def __init__(self, convention: str, max_content_tokens: int = 64) -> None:
        super().__init__()
        self.max_content_tokens = max_content_tokens
        self.at = MARK_INDEX[convention]

    def collate(self, content):
        return collate_cls_sep(content, cls_id=1, sep_id=2, pad_id=3)

    def _hits(self, ids: torch.Tensor, marker: str, at: int) -> torch.Tensor:
        hit = torch.ones_like(ids, dtype=torch.bool)
        for j, c in enumerate(marker):
            shift = j - at  # base j of the marker sits `shift` tokens after the site
            shifted = torch.full_like(ids, -1)
            if shift >= 0:
                shifted[:, : ids.shape[1] - shift] = ids[:, shift:]
            else:
                shifted[:, -shift:] = ids[:, : ids.shape[1] + shift]
            hit &= shifted == CHAR_IDS[c]
        return hit

    def forward(self, input_ids, attention_mask):
        acc = self._hits(input_ids, ACCEPTOR, self.at["acceptor"])
        don = self._hits(input_ids, DONOR, self.at["donor"])
        logit = lambda h: h.float() * 60.0 - 30.0  # noqa: E731
        return torch.stack([torch.zeros_like(acc, dtype=torch.float32), logit(acc), logit(don)], dim=-1)

    def split(self, out, lengths):
        return split_cls_sep(out, lengths, head="token")


def _oracle(convention: str, *, declared: str | None) -> Model:
    meta = {"task": "splice", **({"site_convention": declared} if declared else {})}
    info = ModelInfo(family="toy", architecture="Oracle", head="token", labels=("none", "acceptor", "donor"),
                     problem_type="multi_label_classification", max_tokens=64, resolution="base", n_params=0,
                     source=f"oracle-{convention}", tokenizer="toy-char", task="splice", extra={"genaannot": meta})
    return Model(Loaded(_OracleNetwork(convention), CharTokenizer(), info), device="cpu")


REGION = [Interval("c1", 0, 200 + 12 * 300)]


@pytest.mark.parametrize("convention", list(SITE_CONVENTIONS))
def test_oracle_scores_ap_1_in_its_own_convention_and_about_0_in_the_other(convention):
    genome, ann = _marked_genome()
    right = evaluate_splice(_oracle(convention, declared=convention), genome=genome, annotation=ann, regions=REGION,
                            window_tokens=60)
    assert right.details["site_convention"] == convention and right.details["site_convention_source"] == "checkpoint"
    for kind in ("acceptor", "donor"):
        assert right.metrics[kind]["n_pos"] == 12
        assert right.metrics[kind]["average_precision"] == pytest.approx(1.0)
        assert right.metrics[kind]["topk_accuracy"] == pytest.approx(1.0)
    other = next(c for c in SITE_CONVENTIONS if c != convention)
    wrong = evaluate_splice(_oracle(convention, declared=other), genome=genome, annotation=ann, regions=REGION,
                            window_tokens=60)
    # the same as declaring it right and overriding with the wrong one
    given = evaluate_splice(_oracle(convention, declared=convention), genome=genome, annotation=ann, regions=REGION,
                            window_tokens=60, site_convention=other)
    assert given.details["site_convention_source"] == "given"
    for rep in (wrong, given):
        for kind in ("acceptor", "donor"):
            assert rep.metrics[kind]["n_pos"] == 12
            assert rep.metrics[kind]["average_precision"] < 0.01
            assert rep.metrics[kind]["topk_accuracy"] == 0.0


def test_site_positions_per_convention():
    """Intron [100, 200): + strand donor 100 / 99, acceptor 199 / 200; - strand donor 199 / 200, acceptor 100 / 99."""
    tx = [Transcript("p", "g", "c1", "+", ((50, 100), (200, 250))),
          Transcript("m", "g", "c1", "-", ((550, 600), (700, 750)))]
    ann = Annotation("t", {"c1": tx})
    region = [Interval("c1", 0, 1000)]
    want = {"intron": {("+", "donor"): [100], ("+", "acceptor"): [199], ("-", "donor"): [699], ("-", "acceptor"): [600]},
            "exon": {("+", "donor"): [99], ("+", "acceptor"): [200], ("-", "donor"): [700], ("-", "acceptor"): [599]}}
    for conv, sites in want.items():
        idx = SiteIndex(ann, region, ("acceptor", "donor"), convention=conv)
        for (strand, kind), pos in sites.items():
            assert idx.in_window("c1", strand, kind, 0, 1000).tolist() == pos, (conv, strand, kind)
    # the region test uses the convention's base: exon-side donor 99 falls outside [100, 1000)
    assert SiteIndex(ann, [Interval("c1", 100, 1000)], ("donor",), convention="exon").count("donor") == 1
    assert SiteIndex(ann, [Interval("c1", 100, 1000)], ("donor",), convention="intron").count("donor") == 2
    # TSS never move
    for strand in "+-":
        a = SiteIndex(ann, region, ("tss",), convention="exon").in_window("c1", strand, "tss", 0, 1000)
        b = SiteIndex(ann, region, ("tss",), convention="intron").in_window("c1", strand, "tss", 0, 1000)
        assert a.tolist() == b.tolist()


def test_pwm_baseline_is_the_same_motif_in_either_convention():
    """The PWM is fitted around the same junction bases; only the base it is reported on moves."""
    genome, ann = _marked_genome()
    for kind in ("donor", "acceptor"):
        a = fit_pwm(genome, ann, REGION, kind=kind, convention="intron")
        b = fit_pwm(genome, ann, REGION, kind=kind, convention="exon")
        assert (a.n_sites, a.n_decoys) == (b.n_sites, b.n_decoys)
        assert np.array_equal(a.logodds, b.logodds)
        assert b.lo - a.lo == -SITE_CONVENTIONS["exon"].shift[kind]


def test_checkpoint_convention_defaults():
    assert checkpoint_convention({}) == ("exon", "default")  # published checkpoints: no genaannot.json
    assert checkpoint_convention(None) == ("exon", "default")
    assert checkpoint_convention({"task": "splice"}) == ("intron", "genaannot train before site_convention")
    assert checkpoint_convention({"task": "splice", "site_convention": "exon"}) == ("exon", "checkpoint")
    assert checkpoint_convention({"thresholds": {"donor": 0.5}, "site_convention": "intron"}) == ("intron", "checkpoint")
    with pytest.raises(ValueError, match="choose one of exon, intron"):
        checkpoint_convention({"site_convention": "middle"})
    with pytest.raises(ValueError, match="unknown site convention"):
        get_convention("middle")
    conv, source = model_convention(_oracle("exon", declared=None).info, override="exon")
    assert (conv.name, source) == ("exon", "given")


def test_catalogue_conventions_are_what_the_checkpoints_resolve_to():
    from genaannot.io.checkpoint import read_metadata
    from genaannot.models.catalog import CATALOG

    splice = [e for e in CATALOG.values() if e.task == "splice"]
    assert splice and all(e.site_convention in SITE_CONVENTIONS for e in splice)
    for e in splice:
        local = e.local_path()
        meta = read_metadata(local) if local is not None else {}  # published: no genaannot.json
        assert checkpoint_convention(meta)[0] == e.site_convention, e.name
    assert CATALOG["gena-splice"].site_convention == "exon"
    assert CATALOG["demo-splice-athaliana"].site_convention == "intron"


def test_metadata_with_an_unknown_convention_is_refused(tmp_path):
    from genaannot.io.checkpoint import read_metadata

    (tmp_path / "genaannot.json").write_text(json.dumps({"task": "splice", "site_convention": "middle"}))
    with pytest.raises(ModelError, match="site_convention 'middle' is not one of exon, intron"):
        read_metadata(tmp_path)
    (tmp_path / "genaannot.json").write_text(json.dumps({"site_convention": 1}))
    with pytest.raises(ModelError, match="site_convention must be str"):
        read_metadata(tmp_path)


def test_scan_records_the_convention_and_calls_sit_on_its_bases(tmp_path):
    """Manifest, track hub labels and calls of a scan by a model declaring ``intron``."""
    from genaannot.hub import trackdb_txt
    from genaannot.io.bed import read_calls
    from genaannot.io.hub import description_html, read_scan
    from genaannot.pipeline.scan import scan_genome

    genome, ann = _marked_genome(n=4)
    fa = tmp_path / "g.fa"
    fa.write_text(">c1\n" + genome.seqs["c1"] + "\n")
    region = [Interval("c1", 0, genome.sizes["c1"])]
    res = scan_genome(fa, model=_oracle("intron", declared="intron"), task="splice", output=tmp_path / "s.bw",
                      regions=region, window_tokens=60, quiet=True)
    manifest = json.loads(res.manifest.read_text())
    assert manifest["site_convention"] == {"name": "intron", "source": "checkpoint",
                                           "donor": "first intron base (G of GT)",
                                           "acceptor": "last intron base (G of AG)"}
    idx = SiteIndex(ann, region, ("acceptor", "donor"), convention="intron")
    calls = read_calls(res.calls)
    assert len(calls) == 8  # 4 introns x (donor, acceptor)
    for c in calls:
        assert c.end - c.start == 1 and c.start in idx.in_window("c1", c.strand, c.name, 0, genome.sizes["c1"])
    run = read_scan(res.manifest)
    tdb = trackdb_txt(run, urls={t.path: t.path.name for t in run.tracks}, calls_url=None, calls_type=None)
    assert "longLabel splice donor, plus strand, site = first intron base (G of GT)" in tdb
    assert "intron convention" in tdb
    assert ("Splice sites: intron convention, donor = first intron base (G of GT); acceptor = last intron base (G of AG)"
            in description_html(run))


@pytest.mark.parametrize(("convention", "dp"), [("exon", -1), ("intron", 0)])
def test_score_positions_are_in_the_model_convention(tmp_path, convention, dp):
    """Breaking a donor marker: the donor loss is reported on the model's site base (DP from POS)."""
    import pysam

    from genaannot.pipeline.score import score_variants

    genome, _ = _marked_genome(n=1)
    fa = tmp_path / "g.fa"
    fa.write_text(">c1\n" + genome.seqs["c1"] + "\n")
    s = 150  # the intron's first base; the donor marker GGC covers s-1 .. s+1
    assert genome.seqs["c1"][s] == "G"
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=c1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"c1\t{s + 1}\tv\tG\tA\t.\t.\t.\n")
    out = tmp_path / "out.vcf"
    score_variants(vcf, genome=fa, model=_oracle(convention, declared=convention), task="splice", output=out,
                   distance=5, strand="+", quiet=True)
    with pysam.VariantFile(str(out)) as vf:
        field = next(k for k in vf.header.info if k.startswith("GENA_") and k != "GENA_REASON")
        desc = vf.header.info[field].description
        value = next(iter(vf)).info[field][0]
    assert f"site convention {convention}: donor = " in desc
    names = desc.split("Format: ")[1].split(".")[0].split("|")
    got = dict(zip(names, value.split("|")))
    assert float(got["DS_DL"]) > 0.99 and int(got["DP_DL"]) == dp
