"""`genaannot train` / `genaannot evaluate` end to end on a tiny FASTA + GFF3 (seconds)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from toy_genome import write_inputs as _write_inputs

from genaannot.cli import main


def _train_tiny(tmp_path):
    """FASTA, GFF3 and a tiny splice checkpoint trained by the CLI (two steps)."""
    fa, gff = _write_inputs(tmp_path)
    out = tmp_path / "model"
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(out), "--train-chroms", "c1", "--hidden-size", "16", "--layers", "1",
                                    "--heads", "2", "--window-tokens", "62", "--steps", "2", "--batch-size", "2",
                                    "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    return fa, gff, out


def test_train_then_evaluate(tmp_path):
    fa, gff = _write_inputs(tmp_path)
    out = tmp_path / "model"
    bed = tmp_path / "test.bed"
    bed.write_text("c2\t3000\t6000\n")
    args = ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff), "-o", str(out),
            "--train-chroms", "c1", "--valid-regions", str(tmp_path / "valid.bed"), "--test-regions", str(bed),
            "--hidden-size", "16", "--layers", "1", "--heads", "2", "--window-tokens", "62", "--steps", "3",
            "--batch-size", "4", "--save-every", "3", "--eval-every", "3", "--device", "cpu", "-q",
            "--site-convention", "intron"]
    (tmp_path / "valid.bed").write_text("c2\t0\t3000\n")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "donor" in res.output and "PWM" in res.output
    report = json.loads((out / "REPORT.json").read_text())
    assert report["regions"] == ["c2:3001-6000"]
    assert set(report["baseline"]) == {"acceptor", "donor", "mean"}
    assert (out / "REPORT.png").is_file()
    meta = json.loads((out / "genaannot.json").read_text())
    assert meta["task"] == "splice" and "test_metrics" in meta and meta["window_bp"] == 62
    assert meta["site_convention"] == "intron" and report["details"]["site_convention"] == "intron"
    assert meta["site_definitions"]["donor"] == "first intron base (transcript orientation)"
    # call thresholds: max F1 on the VALIDATION regions (c2:0-3000), not on the test regions
    assert set(meta["thresholds"]) == {"acceptor", "donor"}
    assert meta["threshold_selection"]["regions"] == ["c2:1-3000"]
    res = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--genome", str(fa), "--annotation", str(gff),
                                    "--regions", str(tmp_path / "valid.bed"), "-o", str(tmp_path / "ev-valid"),
                                    "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    valid = json.loads((tmp_path / "ev-valid" / "REPORT.json").read_text())["metrics"]
    for kind in ("acceptor", "donor"):
        assert meta["thresholds"][kind] == valid[kind]["max_f1_threshold"]
        assert meta["threshold_selection"][kind]["f1"] == valid[kind]["max_f1"]
    assert json.loads((out / "genaannot.json").read_text()) == meta  # evaluate alone writes nothing there

    res = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--genome", str(fa), "--annotation", str(gff),
                                    "--regions", str(bed), "--baseline-chroms", "c1", "-o", str(tmp_path / "ev"),
                                    "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "ev" / "REPORT.json").read_text())
    assert again["metrics"] == report["metrics"]  # same checkpoint, same data -> same numbers
    assert "sites in convention 'intron' (checkpoint)" in res.output
    # another convention, given: the truth moves by a base
    res = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--genome", str(fa), "--annotation", str(gff),
                                    "--regions", str(bed), "-o", str(tmp_path / "ev-exon"), "--device", "cpu", "-q",
                                    "--site-convention", "exon"])
    assert res.exit_code == 0, res.output
    exon = json.loads((tmp_path / "ev-exon" / "REPORT.json").read_text())
    assert exon["details"]["site_convention"] == "exon" and exon["details"]["site_convention_source"] == "given"
    assert exon["metrics"]["donor"]["n_pos"] == report["metrics"]["donor"]["n_pos"]
    assert exon["metrics"] != report["metrics"]
    res = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--genome", str(fa), "--annotation", str(gff),
                                    "--regions", str(bed), "--site-convention", "middle"])
    assert res.exit_code == 2 and "middle" in res.output


def test_train_rejects_overlapping_test_data(tmp_path):
    fa, gff = _write_inputs(tmp_path)
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(tmp_path / "m"), "--train-chroms", "c1", "--test-chroms", "c1"])
    assert res.exit_code != 0 and "overlaps" in res.output
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(tmp_path / "m"), "--train-chroms", "chrX"])
    assert res.exit_code != 0 and "chrX" in res.output


def test_bad_annotation_reports_line(tmp_path):
    fa, _ = _write_inputs(tmp_path)
    gff = tmp_path / "bad.gff3"
    gff.write_text("##gff-version 3\nc1\tt\texon\t5\t1\t.\t+\t.\tParent=t\n")
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(tmp_path / "m"), "--train-chroms", "c1"])
    assert res.exit_code != 0 and "bad.gff3:2" in res.output


def test_trained_checkpoint_scans(tmp_path):
    """A checkpoint made by `genaannot train` goes through the genome scanner unchanged."""
    from genaannot.pipeline import scan
    from genaannot.regions import Interval

    fa, gff, out = _train_tiny(tmp_path)
    (tmp_path / "scan").mkdir()
    result = scan.scan_genome(fa, model=str(out), task="splice", output=tmp_path / "scan" / "s.bw",
                              regions=[Interval("c2", 0, 2000)], quiet=True, workers=0)
    written = sorted(p.name for p in (tmp_path / "scan").iterdir())
    assert any(n.endswith(".bw") for n in written), (result, written)


def test_evaluate_write_thresholds(tmp_path):
    """--write-thresholds stores the validation max-F1 thresholds and refuses training/test regions."""
    fa, gff = _write_inputs(tmp_path)
    out = tmp_path / "model"
    (tmp_path / "valid.bed").write_text("c2\t0\t3000\n")
    (tmp_path / "test.bed").write_text("c2\t3000\t6000\n")
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(out), "--train-chroms", "c1", "--valid-regions", str(tmp_path / "valid.bed"),
                                    "--test-regions", str(tmp_path / "test.bed"), "--hidden-size", "16", "--layers", "1",
                                    "--heads", "2", "--window-tokens", "62", "--steps", "2", "--batch-size", "2",
                                    "--device", "cpu", "--no-eval", "-q"])
    assert res.exit_code == 0, res.output
    meta_path = out / "genaannot.json"
    trained = json.loads(meta_path.read_text())
    base = ["evaluate", "--model", str(out), "--genome", str(fa), "--annotation", str(gff), "--device", "cpu", "-q",
            "--write-thresholds", "-o", str(tmp_path / "ev")]
    for bad, where in ((["--regions", str(tmp_path / "test.bed")], "test region c2:3001-6000"),
                       (["--chroms", "c1"], "train region c1:1-")):
        res = CliRunner().invoke(main, base + bad)
        assert res.exit_code != 0
        assert "thresholds must be chosen on validation data" in res.output and where in res.output
        assert "c2:1-3000" in res.output  # names the validation regions to use instead
        assert json.loads(meta_path.read_text()) == trained
    stripped = {k: v for k, v in trained.items() if k not in ("thresholds", "threshold_selection")}
    meta_path.write_text(json.dumps(stripped))
    res = CliRunner().invoke(main, base + ["--regions", str(tmp_path / "valid.bed")])
    assert res.exit_code == 0, res.output
    again = json.loads(meta_path.read_text())
    assert again["thresholds"] == trained["thresholds"]  # same model, same validation data
    assert again["threshold_selection"] == trained["threshold_selection"]
    report = json.loads((tmp_path / "ev" / "REPORT.json").read_text())["metrics"]
    assert again["thresholds"] == {k: report[k]["max_f1_threshold"] for k in ("acceptor", "donor")}
    assert again["threshold_selection"]["scan_settings"] == {"overlap": 0.5, "stitch": "center"}
    # other scan settings: evaluated (and recorded) alike
    res = CliRunner().invoke(main, base + ["--regions", str(tmp_path / "valid.bed"), "--stitch", "mean",
                                           "--overlap", "0.75"])
    assert res.exit_code == 0, res.output
    mean = json.loads(meta_path.read_text())
    assert mean["threshold_selection"]["scan_settings"] == {"overlap": 0.75, "stitch": "mean"}
    details = json.loads((tmp_path / "ev" / "REPORT.json").read_text())["details"]
    assert details["stitch"] == "mean" and details["overlap"] == 0.75


def test_scan_threshold_order(tmp_path):
    """scan: --threshold, else the checkpoint's per-label thresholds, else the task default; recorded per label."""
    from genaannot.pipeline import scan
    from genaannot.regions import Interval

    fa, gff, out = _train_tiny(tmp_path)
    meta_path = out / "genaannot.json"
    meta = json.loads(meta_path.read_text())
    assert "thresholds" not in meta  # no validation data, no thresholds

    def run(name, **kw):
        (tmp_path / name).mkdir()
        scan.scan_genome(fa, model=str(out), task="splice", output=tmp_path / name / "s.bw",
                         regions=[Interval("c2", 0, 2000)], quiet=True, workers=0, **kw)
        manifest = json.loads((tmp_path / name / "s.json").read_text())
        calls = [line.split("\t") for line in (tmp_path / name / "s.calls.bed").read_text().splitlines()
                 if line and not line.startswith(("#", "track"))]
        return manifest["calls"], calls

    calls, _ = run("default")
    assert calls["thresholds"] == {"acceptor": 0.5, "donor": 0.5}
    assert calls["threshold_source"] == {"acceptor": "task default", "donor": "task default"}

    # the tiny model's outputs sit near 0.5: per-label thresholds on either side give different calls
    meta_path.write_text(json.dumps({**meta, "thresholds": {"acceptor": 0.0, "donor": 1.5}}))
    calls, rows = run("checkpoint")
    assert calls["thresholds"] == {"acceptor": 0.0, "donor": 1.5}
    # thresholds chosen for other scan settings (here: none recorded = centre, 0.5) warn
    with pytest.warns(UserWarning, match="--stitch center --overlap 0.5; this scan uses --stitch mean"):
        run("checkpoint-mean", stitch="mean")
    assert calls["threshold_source"] == {"acceptor": "checkpoint", "donor": "checkpoint"}
    assert rows and {r[3] for r in rows} == {"acceptor"}  # every base >= 0 is an acceptor call, no donor >= 1.5

    calls, _ = run("option", threshold=0.25)
    assert calls["thresholds"] == {"acceptor": 0.25, "donor": 0.25}
    assert calls["threshold_source"] == {"acceptor": "--threshold", "donor": "--threshold"}



def test_bpe_tokenizer_then_fine_tune_from_it(tmp_path):
    """--tokenizer bpe trains a tokenizer on the genome; --base-model fine-tunes a checkpoint,
    keeping its architecture and tokenizer and starting from its weights."""
    from safetensors.torch import load_file

    fa, gff = _write_inputs(tmp_path)
    common = ["--task", "splice", "--genome", str(fa), "--annotation", str(gff), "--window-tokens", "30",
              "--batch-size", "4", "--device", "cpu", "--no-eval", "-q", "--valid-chroms", "c2"]
    base = tmp_path / "base"
    res = CliRunner().invoke(main, ["train", *common, "-o", str(base), "--train-chroms", "c1", "--tokenizer", "bpe",
                                    "--vocab-size", "64", "--hidden-size", "16", "--layers", "1", "--heads", "2",
                                    "--steps", "2", "--save-every", "2", "--eval-every", "2"])
    assert res.exit_code == 0, res.output
    tok = json.loads((base / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "BPE" and len(tok["model"]["vocab"]) == 64
    meta = json.loads((base / "genaannot.json").read_text())
    assert meta["tokenizer_kind"] == "bpe" and meta["window_bp"] > 30  # BPE: more than one base per token

    fine = tmp_path / "fine"
    res = CliRunner().invoke(main, ["train", *common, "-o", str(fine), "--train-chroms", "c1", "--base-model", str(base),
                                    "--steps", "1", "--lr", "1e-12", "--save-every", "1", "--eval-every", "1"])
    assert res.exit_code == 0, res.output
    assert (fine / "tokenizer.json").read_text() == (base / "tokenizer.json").read_text()
    cfg_b, cfg_f = (json.loads((d / "config.json").read_text()) for d in (base, fine))
    assert {k: cfg_f[k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")} == \
        {k: cfg_b[k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")}
    wb, wf = load_file(str(base / "model.safetensors")), load_file(str(fine / "model.safetensors"))
    assert wb.keys() == wf.keys()
    # one step at lr 1e-12 from the base weights: equal to float precision
    assert all((wb[k] - wf[k]).abs().max() < 1e-6 for k in wb)
    meta_f = json.loads((fine / "genaannot.json").read_text())
    assert meta_f["base_model"] and meta_f["base_head"] == "kept"


def test_fine_tune_from_mlm_base_starts_a_new_head(tmp_path):
    from tinymodels import make_gena_dir

    fa, gff = _write_inputs(tmp_path)
    base = make_gena_dir(tmp_path / "mlm", head="mlm", hidden=16, layers=1, heads=2, max_positions=64)
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(tmp_path / "fine"), "--base-model", str(base), "--train-chroms", "c1",
                                    "--valid-chroms", "c2", "--window-tokens", "30", "--steps", "1", "--batch-size", "2",
                                    "--save-every", "1", "--eval-every", "1", "--device", "cpu", "--no-eval", "-q"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "fine" / "genaannot.json").read_text())
    assert meta["base_head"] == "new" and meta["tokenizer_kind"] == "checkpoint"


@pytest.mark.parametrize("family", ["rmt", "hyena"])
def test_fine_tune_another_family_then_evaluate_and_scan(tmp_path, family):
    """`train --base-model` of a HyenaDNA LM (new per-base head), or `--family rmt` over a GENA BERT
    MLM (memory tokens, several segments per window): thresholds, the test-set evaluation (the code of
    `genaannot evaluate`) and a scan run on the result."""
    from tiny_families import make_hyena_dir
    from tinymodels import make_gena_dir

    from genaannot import load_model
    from genaannot.pipeline import scan
    from genaannot.regions import Interval

    fa, gff = _write_inputs(tmp_path)
    extra = []
    if family == "hyena":
        base = make_hyena_dir(tmp_path / "lm", head="lm", d_model=8, max_seq_len=130, filter_order=8)
    else:
        base = make_gena_dir(tmp_path / "mlm", head="mlm", hidden=16, layers=1, heads=2, max_positions=64)
        extra = ["--family", "rmt", "--family-option", "num_mem_tokens=2", "--family-option", "input_size=24"]
    out = tmp_path / "fine"
    (tmp_path / "v.bed").write_text("c2\t0\t1000\n")
    (tmp_path / "t.bed").write_text("c2\t3000\t4000\n")
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(out), "--base-model", str(base), "--train-chroms", "c1", "--valid-regions",
                                    str(tmp_path / "v.bed"), "--test-regions", str(tmp_path / "t.bed"),
                                    "--window-tokens", "40", "--steps", "2", "--batch-size", "2", "--save-every", "2",
                                    "--eval-every", "2", "--device", "cpu", "-q", *extra])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "genaannot.json").read_text())
    assert meta["family"] == family and meta["base_head"] == "new" and set(meta["thresholds"]) == {"acceptor", "donor"}
    assert "test_metrics" in meta and json.loads((out / "REPORT.json").read_text())["regions"] == ["c2:3001-4000"]
    model = load_model(out, device="cpu")
    assert model.info.family == family and model.info.head == "token"
    assert model.info.labels == ("none", "acceptor", "donor")
    if family == "rmt":
        assert (out / "model_best.pth").is_file() and json.loads((out / "rmt.json").read_text())["max_n_segments"] >= 2
    (tmp_path / "scan").mkdir()
    scan.scan_genome(fa, model=str(out), task="splice", output=tmp_path / "scan" / "s.bw",
                     regions=[Interval("c2", 0, 1000)], quiet=True, workers=0)
    assert any(p.name.endswith(".bw") for p in (tmp_path / "scan").iterdir())


def test_fresh_hyena_brings_its_own_vocabulary(tmp_path):
    from genaannot import load_model

    fa, gff = _write_inputs(tmp_path)
    common = ["train", "--task", "promoter", "--genome", str(fa), "--annotation", str(gff), "--train-chroms", "c1",
              "--family", "hyena", "--hidden-size", "8", "--layers", "1", "--window-tokens", "40", "--steps", "1",
              "--batch-size", "2", "--device", "cpu", "--no-eval", "-q", "--family-option", "filter_order=8"]
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "bpe"), "--tokenizer", "bpe"])
    assert res.exit_code != 0 and "a fresh hyena model has its own fixed vocabulary" in res.output
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "h"), "--family-option", "colour=blue"])
    assert res.exit_code != 0 and "unknown training option(s) colour" in res.output
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "h")])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "h" / "genaannot.json").read_text())
    assert meta["family"] == "hyena" and meta["tokenizer_kind"] == "own" and meta["family_options"] == {"filter_order": 8}
    model = load_model(tmp_path / "h", device="cpu")
    assert model.info.family == "hyena" and model.info.head == "sequence" and model.info.max_tokens == 40
    assert model.info.labels == ("background", "promoter") and model.info.resolution == "base"


def test_fresh_dilated_cnn_trains_scans_with_its_window_and_refuses_size_options(tmp_path):
    """`--family dilated_cnn`: its shape comes from --family-option (the transformer size options
    are refused, not ignored); the checkpoint stores a scan window of at least twice its
    receptive field, which scan then uses."""
    from genaannot import load_model
    from genaannot.pipeline import scan
    from genaannot.regions import Interval

    fa, gff = _write_inputs(tmp_path)
    common = ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff), "--train-chroms", "c1",
              "--family", "dilated_cnn", "--window-tokens", "40", "--steps", "2", "--batch-size", "2",
              "--device", "cpu", "-q", "--family-option", "channels=4", "--family-option", "blocks=3:1x1,5:4x1"]
    for extra in (["--hidden-size", "64"], ["--heads", "2"], ["--layers", "3"], ["--dropout", "0.2"]):
        res = CliRunner().invoke(main, [*common, "--no-eval", "-o", str(tmp_path / "x"), *extra])
        assert res.exit_code != 0 and f"{extra[0]} does not apply to a fresh dilated_cnn" in res.output
    assert not (tmp_path / "x").exists()
    (tmp_path / "v.bed").write_text("c2\t0\t1000\n")
    (tmp_path / "t.bed").write_text("c2\t3000\t4000\n")
    out = tmp_path / "cnn"
    res = CliRunner().invoke(main, [*common, "-o", str(out), "--valid-regions", str(tmp_path / "v.bed"),
                                    "--test-regions", str(tmp_path / "t.bed"), "--save-every", "2", "--eval-every", "2"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "genaannot.json").read_text())
    assert meta["family"] == "dilated_cnn" and meta["tokenizer_kind"] == "own" and "test_metrics" in meta
    model = load_model(out, device="cpu")
    assert model.info.extra["receptive_field_bp"] == 1 + 2 * (2 * 1 + 4 * 4) == 37
    assert model.info.window_tokens == 72  # max(40, 2 * (37 - 1))
    (tmp_path / "scan").mkdir()
    res = scan.scan_genome(fa, model=str(out), task="splice", output=tmp_path / "scan" / "s.bw",
                           regions=[Interval("c2", 0, 1000)], quiet=True, workers=0)
    assert json.loads(res.manifest.read_text())["settings"]["window_tokens"] == 72


def _train_args(fa, gff, out, *extra):
    return ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff), "-o", str(out),
            "--train-chroms", "c1", "--hidden-size", "16", "--layers", "1", "--heads", "2", "--window-tokens", "62",
            "--steps", "2", "--batch-size", "2", "--device", "cpu", "-q", *extra]


@pytest.mark.parametrize("role, other", [("valid", "test"), ("test", "valid")])
def test_train_refuses_held_out_regions_without_sites_before_training(tmp_path, role, other):
    """A validation or test split with no annotated sites would give NaN scores and no thresholds
    after all of training: refused up front, naming the regions, with nothing written."""
    fa, gff = _write_inputs(tmp_path)
    out = tmp_path / "m"
    res = CliRunner().invoke(main, _train_args(fa, gff, out, f"--{role}-chroms", "c2:1-150",
                                               f"--{other}-chroms", "c2:3001-6000"))
    assert res.exit_code == 1, res.output
    what = "validation" if role == "valid" else "test"
    assert f"no acceptor/donor sites of the annotation fall in the {what} regions (c2:1-150)" in res.output
    assert "step " not in res.output and not out.exists()


@pytest.mark.parametrize("opt", ["--valid-chroms", "--test-chroms", "--train-chroms"])
@pytest.mark.parametrize("value", ["", ",", " , "])
def test_train_refuses_an_empty_region_list(tmp_path, opt, value):
    fa, gff = _write_inputs(tmp_path)
    args = _train_args(fa, gff, tmp_path / "m")
    if opt == "--train-chroms":
        args[args.index("--train-chroms") + 1] = value
    else:
        args += [opt, value]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and f"{opt} {value!r} names no chromosome" in res.output, res.output
    assert not (tmp_path / "m").exists()


def test_train_genome_refuses_an_empty_region_list(tmp_path):
    from genaannot.pipeline.train import SplitError, train_genome
    from genaannot.train import ArchConfig, TrainConfig

    fa, gff = _write_inputs(tmp_path)
    tiny = {"config": TrainConfig(steps=1, window_tokens=62, batch_size=2, device="cpu"),
            "arch": ArchConfig(hidden_size=16, layers=1, heads=2), "progress": False}
    for role in ("valid", "test"):
        with pytest.raises(SplitError, match=f"{role}: an empty list of regions"):
            train_genome(genome=fa, annotation=gff, task="splice", output=tmp_path / "m", train=["c1"],
                         **{role: []}, **tiny)
    assert not (tmp_path / "m").exists()


def _with_foreign_transcripts(tmp_path, gff):
    """``gff`` plus a gene on a chromosome the FASTA lacks (c9) and a minus-strand transcript of c2
    (6,000 bp) whose second exon runs past its end: exon-convention donor off the chromosome,
    acceptor on it."""
    extra = ["c9\tt\tmRNA\t101\t400\t.\t+\t.\tID=t9;Parent=g9",
             "c9\tt\texon\t101\t150\t.\t+\t.\tParent=t9",
             "c9\tt\texon\t301\t400\t.\t+\t.\tParent=t9",
             "c2\tt\tmRNA\t5901\t6100\t.\t-\t.\tID=tpast;Parent=gpast",
             "c2\tt\texon\t5901\t5950\t.\t-\t.\tParent=tpast",
             "c2\tt\texon\t6001\t6100\t.\t-\t.\tParent=tpast",
             "c1\tt\texon\t201\t250\t.\t.\t.\tParent=tdot"]
    out = tmp_path / "foreign.gff3"
    out.write_text(gff.read_text() + "\n".join(extra) + "\n")
    return out


@pytest.fixture(scope="module")
def foreign_model(tmp_path_factory):
    """Inputs, and a tiny checkpoint trained without validation on an annotation with a chromosome
    the FASTA lacks and a transcript past a chromosome's end (and the training output)."""
    tmp = tmp_path_factory.mktemp("foreign")
    fa, gff = _write_inputs(tmp)
    foreign = _with_foreign_transcripts(tmp, gff)
    out = tmp / "model"
    res = CliRunner().invoke(main, _train_args(fa, foreign, out))
    assert res.exit_code == 0, res.output
    return fa, gff, foreign, out, res.output


def _evaluate(model, fa, annotation, regions, out, *extra):
    return CliRunner().invoke(main, ["evaluate", "--model", str(model), "--genome", str(fa), "--annotation",
                                     str(annotation), "--chroms", regions, "-o", str(out), "--device", "cpu", "-q",
                                     *extra])


def test_train_without_validation_says_so(foreign_model):
    output = foreign_model[-1]
    assert "no validation regions: the model of the last step is kept" in output
    assert "no call thresholds are chosen" in output


def test_train_notes_foreign_chromosomes_and_transcripts_past_the_end(foreign_model):
    output = foreign_model[-1]
    assert "foreign.gff3: chromosomes not in the FASTA, ignored: c9" in output
    assert "1 transcript(s) run past the end of their chromosome in the FASTA, dropped" in output
    assert "tpast (c2:5901-6100, c2 is 6,000 bp)" in output
    # the reader's own notes (an unstranded transcript left out), said once with the file name
    assert output.count("foreign.gff3: 1 transcript on strand '.' or '?' left out") == 1


def test_evaluate_prints_what_was_scored(foreign_model, tmp_path):
    fa, gff, _, model, _ = foreign_model
    res = _evaluate(model, fa, gff, "c2:3001-6000", tmp_path / "ev")
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "ev" / "REPORT.json").read_text())["metrics"]
    n_acc, n_don = metrics["acceptor"]["n_pos"], metrics["donor"]["n_pos"]
    assert n_acc > 0 and n_don > 0
    assert f"scored 6,000 bases (both strands) of c2:3001-6000: acceptor {n_acc:,} sites, donor {n_don:,} sites" \
        in res.output


def test_evaluate_drops_transcripts_past_the_end(foreign_model, tmp_path):
    """The transcript past c2's end adds none of its sites (its acceptor lies on c2)."""
    fa, gff, foreign, model, _ = foreign_model
    counts = []
    for name, annotation in (("ev", gff), ("ev-foreign", foreign)):
        res = _evaluate(model, fa, annotation, "c2:3001-6000", tmp_path / name)
        assert res.exit_code == 0, res.output
        metrics = json.loads((tmp_path / name / "REPORT.json").read_text())["metrics"]
        counts.append((metrics["acceptor"]["n_pos"], metrics["donor"]["n_pos"]))
    assert counts[0] == counts[1]
    assert "chromosomes not in the FASTA, ignored: c9" in res.output and "tpast" in res.output


def test_evaluate_refuses_regions_without_sites(foreign_model, tmp_path):
    """Not NaN metrics and exit 0: refused before scoring, naming the regions."""
    fa, gff, _, model, _ = foreign_model
    res = _evaluate(model, fa, gff, "c2:1-150", tmp_path / "ev")
    assert res.exit_code == 1, res.output
    assert "no acceptor/donor sites of the annotation fall in the evaluation regions (c2:1-150)" in res.output
    assert not (tmp_path / "ev").exists()


def test_evaluate_refuses_empty_region_lists(foreign_model, tmp_path):
    fa, gff, _, model, _ = foreign_model
    res = _evaluate(model, fa, gff, ",", tmp_path / "ev")
    assert res.exit_code == 2 and "--chroms ',' names no chromosome" in res.output
    res = _evaluate(model, fa, gff, "c2", tmp_path / "ev", "--baseline-chroms", "")
    assert res.exit_code == 2 and "--baseline-chroms '' names no chromosome" in res.output
