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


def test_extend_positions_continues_a_base_on_longer_windows(tmp_path):
    from tinymodels import make_gena_dir

    fa, gff = _write_inputs(tmp_path)
    base = make_gena_dir(tmp_path / "base", head="token", hidden=16, layers=1, heads=2, max_positions=32)
    common = ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff), "--base-model", str(base),
              "--train-chroms", "c1", "--window-tokens", "62", "--steps", "1", "--batch-size", "2",
              "--device", "cpu", "--no-eval", "-q"]
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "no")])
    assert res.exit_code != 0 and "does not fit" in res.output
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "fine"), "--extend-positions"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "fine" / "config.json").read_text())
    meta = json.loads((tmp_path / "fine" / "genaannot.json").read_text())
    assert cfg["max_position_embeddings"] == 64 and meta["extended_positions_from"] == 32
