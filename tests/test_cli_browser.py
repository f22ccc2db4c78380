"""CLI behaviour of hub/report/plot: clear errors, light imports."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from genaannot.cli import main


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from click.testing import CliRunner; from genaannot.cli import main; "
            "from genaannot.cli import browser, interpret; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'pyBigWig', 'pysam') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for cmd in ("hub", "report", "plot", "ism", "attribute"):
        r = CliRunner().invoke(main, [cmd, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output


def test_hub_and_report_errors(tmp_path):
    r = CliRunner().invoke(main, ["hub", str(tmp_path)])
    assert r.exit_code != 0 and "no scan manifest" in r.output
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps({"command": "scan", "files": []}))
    r = CliRunner().invoke(main, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert r.exit_code != 0 and "several scan manifests" in r.output
    (tmp_path / "c.json").write_text(json.dumps({"command": "scan", "files": [{"bigwig": "gone.bw"}]}))
    r = CliRunner().invoke(main, ["hub", str(tmp_path / "c.json")])
    assert r.exit_code != 0 and "gone.bw" in r.output and "missing" in r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path / "a.json"), "-o", str(tmp_path / "a.json" / "r.html")])
    assert r.exit_code != 0 and "cannot create output directory" in r.output


def test_plot_needs_something(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">c\nACGT\n")
    r = CliRunner().invoke(main, ["plot", str(fa), "--region", "c:1-4", "-o", str(tmp_path / "x.png")])
    assert r.exit_code != 0 and "at least one of" in r.output
