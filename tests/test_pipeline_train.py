"""genaannot.pipeline.train: train_genome / evaluate_checkpoint as a library user calls them."""

from __future__ import annotations

import json

import pytest
from toy_genome import write_inputs

from genaannot.pipeline.train import (
    EvaluateError,
    SplitError,
    check_disjoint,
    evaluate_checkpoint,
    resolve_regions,
    train_genome,
)
from genaannot.regions import Interval, RegionError
from genaannot.train import ArchConfig, TrainConfig

SIZES = {"c1": 6000, "c2": 6000}


def test_check_disjoint_names_both_regions():
    check_disjoint({"train": [Interval("c1", 0, 100), Interval("c1", 50, 150)], "test": [Interval("c1", 150, 200)]})
    with pytest.raises(SplitError, match=r"train region c1:51-150 overlaps test region c1:100-200"):
        check_disjoint({"train": [Interval("c1", 0, 100), Interval("c1", 50, 150)],
                        "test": [Interval("c1", 99, 200)]})
    with pytest.raises(SplitError, match=r"valid region c2:1-10 overlaps test region c2:5-6"):
        check_disjoint({"train": [], "valid": [Interval("c2", 0, 10)], "test": [Interval("c2", 4, 6)]})
    check_disjoint({"train": [Interval("c1", 0, 100)], "test": [Interval("c1", 50, 50)]})  # empty: no bases


def test_resolve_regions_forms(tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("c1\t10\t20\n")
    assert resolve_regions(bed, sizes=SIZES) == [Interval("c1", 10, 20)]
    assert resolve_regions(["c2", "c1:11-20"], sizes=SIZES) == [Interval("c2", 0, 6000), Interval("c1", 10, 20)]
    assert resolve_regions([Interval("c1", 1, 2)], sizes=SIZES) == [Interval("c1", 1, 2)]
    assert resolve_regions(None, sizes=SIZES) == []
    with pytest.raises(RegionError):
        resolve_regions(["chrX"], sizes=SIZES)
    with pytest.raises(RegionError, match="runs past the end"):
        resolve_regions([Interval("c1", 0, 7000)], sizes=SIZES)


def test_train_refuses_overlapping_splits_before_writing(tmp_path):
    fa, gff = write_inputs(tmp_path)
    out = tmp_path / "m"
    with pytest.raises(SplitError, match="held-out data must be unseen"):
        train_genome(genome=fa, annotation=gff, task="splice", output=out, train=["c1"], test=["c1:1-100"])
    assert not out.exists()
    with pytest.raises(SplitError, match="no training regions"):
        train_genome(genome=fa, annotation=gff, task="splice", output=out, train=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    fa, gff = write_inputs(d)
    lines: list[str] = []
    cfg = TrainConfig(window_tokens=30, steps=4, batch_size=4, save_every=4, eval_every=4, valid_windows=8, device="cpu")
    run = train_genome(genome=fa, annotation=gff, task="splice", output=d / "m", train=["c1:1-4000"],
                       valid=["c1:4001-6000"], test=["c2"], tokenizer="char", config=cfg,
                       arch=ArchConfig(hidden_size=16, layers=1, heads=2), progress=False, log=lines.append)
    return d, fa, gff, run, lines


def test_train_genome_records_regions_thresholds_and_test_metrics(trained):
    d, _, _, run, lines = trained
    meta = json.loads((d / "m" / "genaannot.json").read_text())
    assert meta["task"] == "splice" and meta["train_regions"] == ["c1:1-4000"] and meta["test_regions"] == ["c2:1-6000"]
    assert set(run.thresholds) == {"acceptor", "donor"} and meta["thresholds"] == run.thresholds
    assert meta["threshold_selection"]["regions"] == ["c1:4001-6000"]
    assert meta["site_convention"] == "exon"  # the default, recorded
    assert run.evaluation is not None and run.evaluation.report_json == d / "m" / "REPORT.json"
    assert set(meta["test_metrics"]) == {"acceptor", "donor", "mean"}
    assert any(line.startswith("call thresholds on c1:4001-6000") for line in lines)


def test_evaluate_checkpoint_and_write_thresholds(trained, tmp_path):
    d, fa, gff, _, lines = trained
    res = evaluate_checkpoint(model=d / "m", genome=fa, annotation=gff, regions=["c1:4001-6000"],
                              output_dir=tmp_path / "ev", stem="V", progress=False)
    assert res.report_json == tmp_path / "ev" / "V.json" and res.report_png.exists() and res.thresholds == {}
    before = json.loads((d / "m" / "genaannot.json").read_text())["thresholds"]
    res = evaluate_checkpoint(model=d / "m", genome=fa, annotation=gff, regions=["c1:4001-6000"],
                              output_dir=tmp_path / "ev", write_thresholds=True, progress=False)
    assert res.metadata == d / "m" / "genaannot.json" and res.thresholds == before  # same data, same thresholds
    # the test or training data are refused before anything is computed or written
    for region, role in (("c2:1-100", "test"), ("c1:1-100", "train")):
        with pytest.raises(SplitError, match=f"overlaps the checkpoint's {role} region"):
            evaluate_checkpoint(model=d / "m", genome=fa, annotation=gff, regions=[region],
                                output_dir=tmp_path / "no", write_thresholds=True, progress=False)
    assert not (tmp_path / "no").exists()
    with pytest.raises(SplitError, match="baseline"):
        evaluate_checkpoint(model=d / "m", genome=fa, annotation=gff, regions=["c2"], baseline_regions=["c2:1-10"],
                            output_dir=tmp_path / "no", progress=False)


def test_evaluate_needs_the_task_when_the_checkpoint_does_not_say(trained, tmp_path):
    import shutil

    d, fa, gff, _, _ = trained
    anon = tmp_path / "anon"
    shutil.copytree(d / "m", anon, ignore=shutil.ignore_patterns("checkpoints"))
    (anon / "genaannot.json").unlink()
    with pytest.raises(EvaluateError, match="pass the task"):
        evaluate_checkpoint(model=anon, genome=fa, annotation=gff, regions=["c2"], output_dir=tmp_path / "e",
                            progress=False)
    res = evaluate_checkpoint(model=anon, task="splice", genome=fa, annotation=gff, regions=["c2"],
                              output_dir=tmp_path / "e", progress=False)
    assert set(res.report.metrics) == {"acceptor", "donor", "mean"}
