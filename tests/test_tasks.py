"""Task registry, activations and the DeepSEA label table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genaannot.labels import TaskSpec
from genaannot.tasks import TASKS, Task, Training, activate, chromatin_labels, get_task


def test_registry():
    assert set(TASKS) >= {"promoter", "splice", "chromatin", "generic"}
    splice = get_task("splice")
    assert splice.readout == "token" and splice.activation == "sigmoid" and splice.strand_specific
    assert splice.labels() == ["acceptor", "donor"] and splice.channels == {"acceptor": 1, "donor": 2}
    assert get_task("promoter").readout == "sequence"
    assert get_task("generic").labels(["a", "b"]) == ["a", "b"]
    for name, task in TASKS.items():
        assert task.name == name and task.window_tokens > 0
    with pytest.raises(ValueError, match="unknown task"):
        get_task("nope")


def test_chromatin_labels():
    names, groups = chromatin_labels()
    assert len(names) == len(groups) == 919
    assert groups.count("DHS") == 125 and groups.count("TF") == 690 and groups.count("HM") == 104
    assert groups[0] == "DHS" and groups[125] == "TF" and groups[815] == "HM" and groups[-1] == "HM"
    assert all("DNase" in n for n in names[:125]) and not any("DNase" in n for n in names[125:])
    assert all("_H" in n for n in names[815:])  # histone marks (H2AK5ac, H3K9me3, ...)


def test_activate():
    x = np.array([[0.0, 2.0, -1000.0]], dtype=np.float32)
    s = activate(x, "sigmoid")
    assert s.dtype == np.float32 and s[0, 0] == pytest.approx(0.5) and s[0, 2] == pytest.approx(0.0)
    p = activate(x, "softmax")
    assert p.sum() == pytest.approx(1.0) and p.argmax() == 1
    assert np.array_equal(activate(x, "identity"), x)
    with pytest.raises(ValueError):
        activate(x, "tanh")


def test_sigmoid_is_computed_in_place_with_the_bits_of_the_plain_formula():
    """One array, not a temporary per step: the same float32 operations, so the same bits
    (tracks and calls do not move), for any shape (0-d too), and the input is left alone."""
    rng = np.random.default_rng(3)
    for x in (rng.normal(0, 20, (500, 3)), np.array([np.inf, -np.inf, np.nan, 80, -80, 88, -104, -0.0, 1e-30]),
              np.array(0.25), rng.normal(0, 5, (40, 6))[:, ::2]):  # a strided view
        x = np.asarray(x, dtype=np.float32)
        keep = x.copy()
        plain = (1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))).astype(np.float32)
        got = activate(x, "sigmoid")
        assert got.shape == x.shape and got.dtype == np.float32
        assert np.array_equal(np.asarray(got).view(np.uint32), np.asarray(plain).view(np.uint32))
        assert np.array_equal(x, keep, equal_nan=True)


def test_trainable_tasks_label_what_the_readout_reads():
    """A checkpoint trained by genaannot for a task is read by the same task's channels."""
    from genaannot.io.annotation import SITE_KINDS
    from genaannot.labels import TASK_SPECS

    assert set(TASK_SPECS) == {n for n, t in TASKS.items() if t.training is not None} == {"splice", "promoter"}
    for name, spec in TASK_SPECS.items():
        task = TASKS[name]
        assert spec.head == task.readout
        for label, channel in task.channels.items():
            assert spec.labels[channel] == label
        assert set(spec.site_kinds) <= set(SITE_KINDS) == {"acceptor", "donor", "tss"}


# --------------------------------------------------------------------------- a task added as one entry

REPO = Path(__file__).resolve().parent.parent
FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"
GFF = REPO / "examples/athaliana/athaliana_1pct.gff3.gz"


def _tss_task() -> Task:
    """A task the package does not have: TSS bases per token (token head, one sigmoid channel)."""
    return Task(
        name="tss",
        description="transcription start site per token (test-local)",
        readout="token",
        activation="sigmoid",
        strand_specific=True,
        window_tokens=30,
        channels={"tss": 1},
        call_threshold=0.5,
        training=Training(("none", "tss"), ("tss",), "multi_label_classification", sampling="spread", loss="bce",
                          evaluation="sites"),
        codes={"tss": "T"},
    )


def test_a_task_added_to_the_registry_trains_evaluates_scans_and_scores(tmp_path, monkeypatch):
    """One registry entry, added in this test only, is offered and run by train -> evaluate ->
    scan -> score through the command line; no other module knows the name."""
    from click.testing import CliRunner

    from genaannot.cli import main
    from genaannot.io.fasta import open_genome

    monkeypatch.setitem(TASKS, "tss", _tss_task())
    run = CliRunner()
    model = tmp_path / "model"
    res = run.invoke(main, [
        "train", "--task", "tss", "--genome", str(FASTA), "--annotation", str(GFF), "-o", str(model),
        "--train-regions", str(_bed(tmp_path / "train.bed", "Chr1\t0\t20000\n")),
        "--valid-regions", str(_bed(tmp_path / "valid.bed", "Chr1\t20000\t40000\n")),
        "--test-regions", str(_bed(tmp_path / "test.bed", "Chr2\t0\t15000\n")),
        "--hidden-size", "16", "--layers", "1", "--heads", "2", "--window-tokens", "30", "--steps", "4",
        "--batch-size", "4", "--save-every", "4", "--eval-every", "4", "--valid-windows", "8",
        "--device", "cpu", "--threads", "1", "-q"])
    assert res.exit_code == 0, res.output
    meta = json.loads((model / "genaannot.json").read_text())
    config = json.loads((model / "config.json").read_text())
    assert meta["task"] == "tss" and meta["labels"] == ["none", "tss"]
    assert list(config["id2label"].values()) == ["none", "tss"] and "TokenClassification" in config["architectures"][0]
    assert set(meta["thresholds"]) == {"tss"}  # the `sites` evaluation chose a call threshold on the valid regions
    report = json.loads((model / "REPORT.json").read_text())
    assert report["task"] == "tss" and set(report["metrics"]) == {"tss", "mean"} and report["baseline"] == {}

    res = run.invoke(main, ["evaluate", "--model", str(model), "--genome", str(FASTA), "--annotation", str(GFF),
                            "--regions", str(tmp_path / "test.bed"), "-o", str(tmp_path / "ev"), "--device", "cpu",
                            "--threads", "1", "-q"])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "ev" / "REPORT.json").read_text())
    assert again["task"] == "tss" and again["metrics"] == report["metrics"]

    out = tmp_path / "scan" / "tss.bw"
    res = run.invoke(main, ["scan", str(FASTA), "--task", "tss", "--model", str(model), "-o", str(out),
                            "-r", "Chr2:1-3000", "--device", "cpu", "--threads", "1", "--workers", "0", "-q"])
    assert res.exit_code == 0, res.output
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["task"] == "tss" and manifest["labels"] == ["tss"] and "site_convention" not in manifest
    assert manifest["calls"]["thresholds"] == {"tss": meta["thresholds"]["tss"]}
    for strand in ("plus", "minus"):
        track = out.parent / f"tss.tss.{strand}.bw"
        assert track.is_file()
        import pyBigWig

        bw = pyBigWig.open(str(track))
        vals = np.array(bw.values("Chr2", 0, 3000), dtype=np.float64)
        bw.close()
        # Chr2 starts with 1,000 N (a run the scanner skips: no data), then every base is valued, in [0, 1]
        assert vals.shape == (3000,) and np.isnan(vals[:1000]).all() and np.isfinite(vals[1000:]).all()
        assert ((vals[1000:] >= 0) & (vals[1000:] <= 1)).all()

    with open_genome(FASTA) as genome:
        ref = [genome.fetch("Chr2", p - 1, p) for p in (2100, 2600)]
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=Chr2>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"Chr2\t{p}\t.\t{r}\t{'A' if r != 'A' else 'C'}\t.\t.\t.\n" for p, r in zip((2100, 2600), ref)))
    scored = tmp_path / "out.vcf"
    res = run.invoke(main, ["score", str(vcf), "--genome", str(FASTA), "--task", "tss", "--model", str(model),
                            "-o", str(scored), "--distance", "5", "--device", "cpu", "--threads", "1", "-q"])
    assert res.exit_code == 0, res.output
    text = scored.read_text()
    assert "##INFO=<ID=GENA_TSS," in text and "Outputs: T=tss" in text
    records = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    assert len(records) == 2 and all("GENA_TSS=" in r[7] for r in records), [r[7] for r in records]

    # the registry is the only place the name lives: without the entry, the CLI refuses it
    monkeypatch.delitem(TASKS, "tss")
    res = run.invoke(main, ["evaluate", "--model", str(model), "--task", "tss", "--genome", str(FASTA),
                            "--annotation", str(GFF), "--regions", str(tmp_path / "test.bed"), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "'tss' is not one of" in res.output


def _bed(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_convention_kinds_are_the_kinds_conventions_move():
    from genaannot.conventions import SITE_CONVENTIONS
    from genaannot.tasks import CONVENTION_KINDS

    assert CONVENTION_KINDS == {k for c in SITE_CONVENTIONS.values() for k in c.shift}
    assert TASKS["splice"].site_convention and not TASKS["promoter"].site_convention
    assert not _tss_task().site_convention


def test_training_strategies_name_registered_code():
    """Every strategy name a Training can take has code behind it, and a bad name is refused."""
    from genaannot.evaluate import EVALUATIONS as EVAL_CODE
    from genaannot.labels import TASK_SPECS
    from genaannot.tasks import EVALUATIONS, LOSSES, SAMPLINGS
    from genaannot.train import LOSS_FUNCTIONS

    assert set(LOSS_FUNCTIONS) == set(LOSSES) and set(EVAL_CODE) == set(EVALUATIONS)
    assert set(SAMPLINGS) == {"spread", "centred"}
    with pytest.raises(ValueError, match="sampling 'middle'"):
        Training(("a",), ("tss",), "multi_label_classification", sampling="middle")
    # the specs are a live view of the registry
    assert "tss" not in TASK_SPECS
    spec = TaskSpec.of(_tss_task())
    assert spec.head == "token" and spec.labels == ("none", "tss") and spec.sampling == "spread"
    with pytest.raises(ValueError, match="centred sampling labels a sequence head"):
        TaskSpec.of(Task("x", "", "token", "sigmoid", True, 30,
                         training=Training(("a", "b"), ("tss",), "single_label_classification", sampling="centred")))
