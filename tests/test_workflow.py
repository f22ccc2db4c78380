"""examples/workflow: `snakemake --cores 2` scatters scan/score shards and merges them; the
merged files equal a single `genaannot scan` / `score` run. snakemake is a declared test
dependency (the [test] extra): without it the test fails. The rules run the checkout's
``bin/genaannot`` (no installed console script needed). The SLURM profile's tests (dry run,
and submission to a fake ``sbatch``) need snakemake-executor-plugin-slurm, also in the [test]
extra, and are skipped without it."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import snakemake  # noqa: F401 - declared test dependency: missing means failing, not skipping
from click.testing import CliRunner
from tinymodels import make_gena_dir, random_dna

from genaannot.cli import main

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "examples" / "workflow"
# the checkout's launcher under this Python: the rules run the code under test, installed or not
GENAANNOT = f"{shlex.quote(sys.executable)} {shlex.quote(str(REPO / 'bin' / 'genaannot'))}"


@pytest.mark.slow
def test_snakemake_scatter_gather_equals_single_run(tmp_path, monkeypatch):
    wd = tmp_path / "wf"
    shutil.copytree(WORKFLOW, wd)
    data = wd / "data"
    data.mkdir()
    seq = random_dna(4000, seed=11)
    (data / "genome.fa").write_text(f">c1\n{seq}\n>c2\n{random_dna(2500, seed=12)}\n")
    rows = [f"c1\t{p}\tv{p}\t{seq[p - 1]}\t{'A' if seq[p - 1] != 'A' else 'C'}\t.\t.\t." for p in range(150, 3900, 331)]
    (data / "v.vcf").write_text("##fileformat=VCFv4.2\n##contig=<ID=c1,length=4000>\n##contig=<ID=c2,length=2500>\n"
                                "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "\n".join(rows) + "\n")
    make_gena_dir(wd / "models" / "splice", head="token", num_labels=3)
    extra = "--window-tokens 48 --batch-size 4 --device cpu"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--snakefile", str(wd / "Snakefile"),
           "--directory", str(wd), "--config", f"genaannot={GENAANNOT}", "vcf=data/v.vcf",
           "--quiet", "all"]
    # scan args with spaces go through a config file override
    cfg = (wd / "config.yaml").read_text().replace('args: ""', f'args: "{extra} --workers 0"')
    cfg = cfg.replace('args: "--distance 50"', 'args: "--distance 20 --device cpu"').replace("shards: 4", "shards: 3")
    (wd / "config.yaml").write_text(cfg)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    # a single run of each command, from the same directory (the manifest records the model path as given)
    single = tmp_path / "single"
    single.mkdir()
    monkeypatch.chdir(wd)
    base = ["--task", "splice", "--model", "models/splice", "--quiet"]
    r1 = CliRunner().invoke(main, ["scan", str(data / "genome.fa"), "-o", str(single / "scan.bw"), *base,
                                   *extra.split(), "--workers", "0"])
    assert r1.exit_code == 0, r1.output
    r2 = CliRunner().invoke(main, ["score", str(data / "v.vcf"), "--genome", str(data / "genome.fa"), "-o",
                                   str(single / "variants.vcf"), "--tsv", str(single / "variants.tsv"),
                                   "--distance", "20", "--device", "cpu", *base])
    assert r2.exit_code == 0, r2.output

    res = wd / "results"
    man = json.loads((single / "scan.json").read_text())
    got = json.loads((res / "scan.json").read_text())
    for f in man["files"]:
        assert (res / f["bigwig"]).read_bytes() == (single / f["bigwig"]).read_bytes(), f["bigwig"]
    assert (res / "scan.calls.bed").read_bytes() == (single / "scan.calls.bed").read_bytes()
    for k in ("run_seconds", "model_seconds"):
        man.pop(k), got.pop(k)
    assert got == man
    with gzip.open(res / "variants.vcf.gz", "rt") as fh:
        assert fh.read() == (single / "variants.vcf").read_text()
    assert (res / "variants.vcf.gz.tbi").exists()
    # the TSV has full precision: batches of a shard differ from a single run's, so padded
    # batched kernels may round differently in the last digits
    got_rows = [r.split("\t") for r in (res / "variants.tsv").read_text().splitlines()]
    want_rows = [r.split("\t") for r in (single / "variants.tsv").read_text().splitlines()]
    assert len(got_rows) == len(want_rows) and got_rows[0] == want_rows[0]
    for g, w in zip(got_rows[1:], want_rows[1:]):
        assert g[:7] == w[:7]
        for a, b in zip(g[7:], w[7:]):
            assert a == b or abs(float(a) - float(b)) < 1e-5, (a, b)

    # resumable through snakemake's bookkeeping: nothing left to do, one merge redone after a loss
    (res / "scan.json").unlink()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((res / "scan.json").read_text())["counts"] == man["counts"]

    # a changed shard count is a new split beside the old one, merged from its own partials only
    (wd / "config.yaml").write_text(cfg.replace("shards: 3", "shards: 2"))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (res / "shards").iterdir()) == ["scan-2", "scan-3", "score-2", "score-3"]
    assert sorted(p.name for p in (res / "shards" / "scan-2").glob("*.parts")) == ["scan.1.parts", "scan.2.parts"]
    for f in man["files"]:
        assert (res / f["bigwig"]).read_bytes() == (single / f["bigwig"]).read_bytes(), f["bigwig"]
    with gzip.open(res / "variants.vcf.gz", "rt") as fh:
        assert fh.read() == (single / "variants.vcf").read_text()


def _slurm_workflow(tmp_path, shard_resources=None):
    """The workflow in tmp_path/wf with a tiny genome and VCF (the dry run needs its inputs),
    optionally overriding config.yaml's shard_resources through a second config file."""
    pytest.importorskip("snakemake_executor_plugin_slurm",
                        reason="snakemake-executor-plugin-slurm not installed (the [workflow] and [test] extras install it)")
    wd = tmp_path / "wf"
    shutil.copytree(WORKFLOW, wd)
    (wd / "data").mkdir()
    (wd / "data" / "genome.fa").write_text(f">c1\n{random_dna(500, seed=3)}\n")
    (wd / "data" / "v.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "--config", "vcf=data/v.vcf"]
    if shard_resources is not None:
        (wd / "site.yaml").write_text(json.dumps({"shard_resources": shard_resources}))  # JSON is YAML
        cmd += ["--configfile", "site.yaml"]
    # not inside a SLURM job, whatever machine runs the tests
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return wd, cmd, env


def _dry_run_resources(wd, cmd, env):
    """{rule: [resources dict of each job]} from `snakemake -n`'s job listing."""
    r = subprocess.run([*cmd, "-n"], cwd=wd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs, rule = {}, None
    for line in (r.stdout + r.stderr).splitlines():
        if m := re.match(r"(?:local)?rule (\w+):$", line.strip()):
            rule = m.group(1)
        elif line.strip().startswith("resources:") and rule:
            res = dict(kv.split("=", 1) for kv in line.strip()[len("resources:"):].strip().split(", "))
            jobs.setdefault(rule, []).append(res)
    return jobs


def test_slurm_profile_dry_run_jobs_carry_configured_resources(tmp_path):
    wd, cmd, env = _slurm_workflow(tmp_path)
    jobs = _dry_run_resources(wd, cmd, env)
    # config.yaml's shard_resources (one GPU, partition gpu) and the profile's per-rule limits
    assert len(jobs["scan_shard"]) == 4 and len(jobs["score_shard"]) == 4
    for res in jobs["scan_shard"]:
        assert {k: res.get(k) for k in ("gpu", "slurm_partition", "slurm_account", "cpus_per_task", "mem_mb", "runtime")} == {
            "gpu": "1", "slurm_partition": "gpu", "slurm_account": "my_account", "cpus_per_task": "8",
            "mem_mb": "32000", "runtime": "240"}
        assert "gres" not in res and "gpu_model" not in res
    for res in jobs["score_shard"]:
        assert (res["gpu"], res["slurm_partition"], res["cpus_per_task"]) == ("1", "gpu", "4")
    # the merges: no GPU, the profile's default partition
    for rule in ("scan_merge", "score_merge"):
        [res] = jobs[rule]
        assert "gpu" not in res and res["slurm_partition"] == "cpu" and res["cpus_per_task"] == "1"

    # a CPU-only cluster: no GPU, the default partition for the shards too
    wd, cmd, env = _slurm_workflow(tmp_path / "cpu", {"gpu": 0, "slurm_partition": None})
    jobs = _dry_run_resources(wd, cmd, env)
    for res in jobs["scan_shard"] + jobs["score_shard"]:
        assert res["gpu"] == "0" and res["slurm_partition"] == "cpu"


def test_slurm_profile_submits_configured_sbatch_options(tmp_path):
    """Through the plugin to a fake `sbatch` that records its arguments and refuses the job:
    the options real shard jobs would be submitted with."""
    wd, cmd, env = _slurm_workflow(tmp_path, {"gpu": None, "gres": "gpu:a100:2", "slurm_partition": "batch"})
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "sbatch-calls"
    calls.mkdir()
    (fake / "sbatch").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{calls}/$$"\necho "sbatch: refused (test)" >&2\nexit 1\n')
    (fake / "sacctmgr").write_text("#!/bin/sh\necho my_account\n")  # the plugin checks the account
    for f in fake.iterdir():
        f.chmod(0o755)
    env["PATH"] = f"{fake}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run([*cmd, "--retries", "0", "--slurm-init-seconds-before-status-checks", "1"],
                       cwd=wd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "sbatch: refused (test)" in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    submitted = [f.read_text().splitlines() for f in calls.iterdir()]
    # the shards are submitted first (the merges wait for them); --wrap is the job's command
    assert len(submitted) >= 4
    for args in submitted:
        args = args[:next(i for i, a in enumerate(args) if a.startswith("--wrap"))]
        rule = args[args.index("--comment") + 1]
        assert rule.startswith(("rule_scan_shard", "rule_score_shard")), args
        assert args[args.index("-p") + 1] == "batch" and args[args.index("-A") + 1] == "my_account"
        assert "--gres=gpu:a100:2" in args and not any(a.startswith("--gpus") for a in args)
        assert (f"--cpus-per-task={8 if 'scan' in rule else 4}") in args
