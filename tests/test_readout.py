"""genaannot.readout: task × model resolved once; scan and score agree for every family × task."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from tiny_families import make_hyena_dir, make_modernbert_dir
from tinymodels import make_bigbird_dir, make_gena_dir, make_rmt_dir, random_dna

from genaannot.models.base import ModelError, ModelInfo, normalize_problem_type
from genaannot.readout import ReadoutError, resolve_readout
from genaannot.tasks import TASKS, chromatin_labels


def info(head="token", labels=("none", "acceptor", "donor"), problem_type="multi_label_classification", **kw):
    base = dict(family="gena_bert", architecture="x", head=head, labels=tuple(labels), problem_type=problem_type,
                max_tokens=100, resolution="token", n_params=1, source="m", tokenizer="t")
    return ModelInfo(**{**base, **kw})


def test_splice_reads_named_channels_on_both_strands():
    r = resolve_readout("splice", info())
    assert (r.head, r.activation, r.labels, r.channels, r.codes, r.strands) == (
        "token", "sigmoid", ("acceptor", "donor"), (1, 2), ("A", "D"), ("+", "-"))
    assert r.window_tokens == 100 and r.keep_channels == [1, 2] and r.n_tracks == 4
    r = resolve_readout("splice", info(), labels=["donor"], strand="-", window_tokens=50)
    assert (r.labels, r.channels, r.codes, r.strands, r.window_tokens) == (("donor",), (2,), ("donor",), ("-",), 50)


def test_labels_by_name_or_index_and_errors():
    r = resolve_readout("generic", info(labels=("a", "b", "c")), labels=["2", "a"])
    assert r.labels == ("c", "a") and r.channels == (2, 0)
    with pytest.raises(ReadoutError, match="'z' is not an output of task generic"):
        resolve_readout("generic", info(labels=("a", "b", "c")), labels=["z"])
    with pytest.raises(ReadoutError, match="outside 1..100"):
        resolve_readout("splice", info(), window_tokens=101)
    with pytest.raises(ReadoutError, match="--strand must be both"):
        resolve_readout("splice", info(), strand="plus")


def test_model_and_task_must_fit():
    with pytest.raises(ReadoutError, match="has a 'mlm' head"):
        resolve_readout("splice", info(head="mlm", labels=(), problem_type=None))
    with pytest.raises(ReadoutError, match="has a sequence head"):
        resolve_readout("splice", info(head="sequence"))
    with pytest.raises(ReadoutError, match="reads output channel 2"):
        resolve_readout("splice", info(labels=("a", "b")))
    with pytest.raises(ReadoutError, match="trained for task 'promoter'"):
        resolve_readout("splice", info(task="promoter"))
    assert resolve_readout("generic", info(task="promoter")).labels == ("none", "acceptor", "donor")
    with pytest.raises(ReadoutError, match="needs the 919 outputs of its label table .919 DeepSEA"):
        resolve_readout("chromatin", info(head="sequence"))
    names, _ = chromatin_labels()
    generic = info(head="sequence", labels=tuple(f"LABEL_{i}" for i in range(919)))
    r = resolve_readout("chromatin", generic)
    assert r.labels == tuple(names) and r.activation == "sigmoid" and r.strands == ("+",)


@pytest.mark.parametrize("pt,act", [("multi_label_classification", "sigmoid"),
                                    ("single_label_classification", "softmax"), ("regression", "identity")])
def test_generic_activation_follows_the_problem_type(pt, act):
    assert resolve_readout("generic", info(problem_type=pt)).activation == act
    assert resolve_readout("splice", info(problem_type=pt)).activation == "sigmoid"  # the task's own
    assert resolve_readout("promoter", info(head="sequence", problem_type=pt)).activation == "softmax"


def test_problem_type_is_made_explicit_once():
    assert normalize_problem_type(info(problem_type=None)).problem_type == "single_label_classification"
    assert normalize_problem_type(info(problem_type=None, labels=("x",))).problem_type == "multi_label_classification"
    assert normalize_problem_type(info(problem_type="regression")).problem_type == "regression"
    assert normalize_problem_type(info(head="mlm", labels=(), problem_type="regression")).problem_type is None
    with pytest.raises(ModelError, match="problem_type 'binary'"):
        normalize_problem_type(info(problem_type="binary"))
    with pytest.raises(ReadoutError, match="problem_type None"):  # an un-normalised info is refused
        resolve_readout("generic", replace(info(), problem_type=None))


# --------------------------------------------------------------------------- scan and score agree


def _drop_problem_type(d):
    cfg = json.loads((d / "config.json").read_text())
    cfg.pop("problem_type", None)
    (d / "config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="module")
def family_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("families")
    labels = ["none", "acceptor", "donor"]
    return {
        "gena_bert-token": make_gena_dir(d / "gt", head="token", num_labels=3),
        "gena_bert-sequence": make_gena_dir(d / "gs", head="sequence", num_labels=2),
        "bigbird-token": make_bigbird_dir(d / "bb", head="token"),
        "rmt-token": make_rmt_dir(d / "rmt", head="token"),
        # no problem_type in config.json: the case where scan and score used to disagree
        "hyena-token": _drop_problem_type(make_hyena_dir(d / "hy", head="token", max_seq_len=258, labels=labels)),
        "modernbert-token": _drop_problem_type(
            make_modernbert_dir(d / "mb", head="token", labels=labels, num_layers=2, seed=3)),
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("in")
    seq = random_dna(400, seed=5)
    fa = d / "g.fa"
    fa.write_text(f">c1\n{seq}\n")
    vcf = d / "v.vcf"
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}[seq[199]]
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=c1,length=400>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"c1\t200\tv1\t{seq[199]}\t{alt}\t.\t.\t.\n")
    return fa, vcf


def _scan_outcome(model, task, fa, out):
    from genaannot.pipeline.scan import ScanError, scan_genome

    try:
        res = scan_genome(fa, model=model, task=task, output=out / "s.bw", quiet=True, window_tokens=None)
    except ScanError as err:
        return ("error", str(err))
    m = json.loads(res.manifest.read_text())
    return ("ok", tuple(m["labels"]), m["activation"], tuple(m["strands"]), m["readout"])


def _score_outcome(model, task, fa, vcf, out):
    from genaannot.pipeline.score import score_variants

    try:
        score_variants(vcf, genome=fa, model=model, task=task, output=out / "s.vcf", tsv=out / "s.tsv", quiet=True)
    except ValueError as err:
        return ("error", str(err))
    meta = [ln for ln in (out / "s.vcf").read_text().splitlines() if ln.startswith("##genaannotScore=<")][0]
    fields = dict(kv.split("=", 1) for kv in meta[len("##genaannotScore=<"):-1].split(","))
    strands = tuple(fields["strands"].split("/"))
    cols = (out / "s.tsv").read_text().splitlines()[0].split("\t")
    sn = {"+": "plus", "-": "minus"}[strands[0]]
    head = "token" if any(c.endswith(f"_gain_pos_{sn}") for c in cols) else "sequence"
    key = f"_gain_pos_{sn}" if head == "token" else f"_logodds_{sn}"  # one column per label
    labels = tuple(c[: -len(key)] for c in cols if c.endswith(key))
    return ("ok", labels, fields["activation"], strands, head)


@pytest.mark.parametrize("task", list(TASKS))
def test_scan_and_score_agree_for_every_family(tmp_path, family_models, inputs, task):
    """Both commands accept or refuse each family × task alike (same message), and read the
    same labels, activation and strands when they accept."""
    from genaannot.models import load_model

    fa, vcf = inputs
    accepted = set()
    for name, path in family_models.items():
        model = load_model(path, device="cpu")
        out = tmp_path / name
        out.mkdir()
        a = _scan_outcome(model, task, fa, out)
        b = _score_outcome(model, task, fa, vcf, out)
        assert a == b, (name, task, a, b)
        if a[0] == "ok":
            accepted.add(name)
            if name.startswith(("hyena", "modernbert")) and task == "generic":
                assert a[2] == "softmax"  # no problem_type, 3 outputs: single-label (score said sigmoid)
    tokens = {n for n in family_models if n.endswith("-token")}
    expected = {"splice": tokens, "promoter": {"gena_bert-sequence"}, "chromatin": set(),
                "generic": set(family_models)}[task]
    assert accepted == expected
