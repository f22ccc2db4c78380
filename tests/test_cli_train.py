"""`genaannot train` / `genaannot evaluate` end to end on a tiny FASTA + GFF3 (seconds)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from test_train import toy_data

from genaannot.cli import main


def _write_inputs(tmp_path):
    genome, ann = toy_data()
    fa = tmp_path / "g.fa"
    fa.write_text("".join(f">{c}\n{s}\n" for c, s in genome.seqs.items()))
    lines = ["##gff-version 3"]
    for c, ts in ann.transcripts.items():
        for t in ts:
            lines.append(f"{c}\tt\tmRNA\t{t.start + 1}\t{t.end}\t.\t{t.strand}\t.\tID={t.id};Parent={t.gene_id}")
            for s, e in t.exons:
                lines.append(f"{c}\tt\texon\t{s + 1}\t{e}\t.\t{t.strand}\t.\tParent={t.id}")
    gff = tmp_path / "g.gff3"
    gff.write_text("\n".join(lines) + "\n")
    return fa, gff


def test_train_then_evaluate(tmp_path):
    fa, gff = _write_inputs(tmp_path)
    out = tmp_path / "model"
    bed = tmp_path / "test.bed"
    bed.write_text("c2\t3000\t6000\n")
    args = ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff), "-o", str(out),
            "--train-chroms", "c1", "--valid-regions", str(tmp_path / "valid.bed"), "--test-regions", str(bed),
            "--hidden-size", "16", "--layers", "1", "--heads", "2", "--window-tokens", "62", "--steps", "3",
            "--batch-size", "4", "--save-every", "3", "--eval-every", "3", "--device", "cpu", "-q"]
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

    res = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--genome", str(fa), "--annotation", str(gff),
                                    "--regions", str(bed), "--baseline-chroms", "c1", "-o", str(tmp_path / "ev"),
                                    "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "ev" / "REPORT.json").read_text())
    assert again["metrics"] == report["metrics"]  # same checkpoint, same data -> same numbers


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
    import pytest

    scan = pytest.importorskip("genaannot.pipeline.scan")
    from genaannot.regions import Interval

    fa, gff = _write_inputs(tmp_path)
    out = tmp_path / "model"
    res = CliRunner().invoke(main, ["train", "--task", "splice", "--genome", str(fa), "--annotation", str(gff),
                                    "-o", str(out), "--train-chroms", "c1", "--hidden-size", "16", "--layers", "1",
                                    "--heads", "2", "--window-tokens", "62", "--steps", "2", "--batch-size", "2",
                                    "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    (tmp_path / "scan").mkdir()
    result = scan.scan_genome(fa, model=str(out), task="splice", output=tmp_path / "scan" / "s.bw",
                              regions=[Interval("c2", 0, 2000)], quiet=True, workers=0)
    written = sorted(p.name for p in (tmp_path / "scan").iterdir())
    assert any(n.endswith(".bw") for n in written), (result, written)
