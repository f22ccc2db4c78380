"""``genaannot scan`` through click's CliRunner with tiny real GENA checkpoints."""

from __future__ import annotations

import json
import os

import numpy as np
import pyBigWig
import pysam
import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir, random_dna

from genaannot.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {
        "token": make_gena_dir(d / "tok", head="token", num_labels=3, problem_type="multi_label_classification"),
        "sequence": make_gena_dir(d / "seq", head="sequence", num_labels=2),
    }


def _genome(d, *, bgzip=False):
    seqs = {
        "chr1": random_dna(1500, seed=1) + "N" * 300 + random_dna(400, seed=2).lower() + "NNN" + random_dna(200, seed=3),
        "chrN": "N" * 400,
        "chrS": "ACGTRYKM",
        "chr2": random_dna(700, seed=4),
    }
    fa = d / "g.fa"
    with open(fa, "w") as fh:
        for k, v in seqs.items():
            fh.write(f">{k}\n")
            fh.writelines(v[i : i + 60] + "\n" for i in range(0, len(v), 60))
    if bgzip:
        pysam.tabix_compress(str(fa), str(d / "g.fa.gz"))
        os.unlink(fa)
        fa = d / "g.fa.gz"
    return fa, seqs


def _run(args):
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    return r


@pytest.mark.parametrize("bgzip", [False, True])
def test_cli_splice_both_strands(tmp_path, models, bgzip):
    fa, seqs = _genome(tmp_path, bgzip=bgzip)
    out = tmp_path / "out" / "splice.bw"
    out.parent.mkdir()
    r = _run(["scan", str(fa), "--task", "splice", "--model", str(models["token"]), "-o", str(out),
              "--window-tokens", "40", "--batch-size", "3", "--bedgraph", "--quiet"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == sorted([f"splice.{lab}.{s}.{ext}" for lab in ("acceptor", "donor") for s in ("plus", "minus")
                            for ext in ("bw", "bedGraph")] + ["splice.calls.bed", "splice.json"])
    man = json.loads((out.parent / "splice.json").read_text())
    c = man["counts"]
    assert c["bp_scanned"] == sum(len(s) for s in seqs.values()) - 700
    assert c["n_bp_skipped"] == 700 and c["lowercase"] == 400 and c["iupac"] == {"K": 1, "M": 1, "R": 1, "Y": 1}
    assert man["window_tokens"] == 40 and man["stitch"] == "center" and man["strands"] == ["+", "-"]
    bw = pyBigWig.open(str(out.parent / "splice.acceptor.minus.bw"))
    assert list(bw.chroms()) == list(seqs) and bw.intervals("chrN") is None
    v = np.array(bw.values("chr1", 0, 2403), dtype=float)
    assert np.isnan(v[1500:1800]).all() and not np.isnan(v[:1500]).any() and not np.isnan(v[1800:]).any()
    assert np.nanmin(v) >= 0 and np.nanmax(v) <= 1  # sigmoid range
    calls = (out.parent / "splice.calls.bed").read_text().splitlines()
    assert calls  # the random model's outputs cross the 0.5 default somewhere: the loop checks rows
    for line in calls:
        f = line.split("\t")
        assert len(f) == 10 and f[3] in ("acceptor", "donor") and f[5] in "+-" and 0 <= int(f[4]) <= 1000


def test_cli_promoter_single_label_and_resume(tmp_path, models):
    fa, _ = _genome(tmp_path)
    out = tmp_path / "p.bw"
    args = ["scan", str(fa), "--task", "promoter", "--model", str(models["sequence"]), "-o", str(out),
            "--strand", "+", "--chrom", "chr2", "--chrom", "chrS", "--window-tokens", "30", "--quiet"]
    r = _run(args)
    assert r.exit_code == 0, r.output
    first = out.read_bytes()
    bw = pyBigWig.open(str(out))
    assert bw.intervals("chr1") is None and bw.intervals("chrS") is not None
    r = _run(args + ["--resume"])  # nothing to resume: same result
    assert r.exit_code == 0 and out.read_bytes() == first


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--task", "promoter", "--model", "TOKEN"], "token head"),
        (["--task", "splice", "--model", "TOKEN", "--chrom", "chr9"], "chr9"),
        (["--task", "splice", "--model", "TOKEN", "--regions", "BED"], "past the end"),
        (["--task", "splice", "--model", "TOKEN", "--labels", "foo"], "foo"),
        (["--task", "splice"], "not in the local Hugging Face cache"),
        (["--task", "splice"], "Available here for splice without a download: demo-splice-athaliana,"),
        (["--task", "generic"], "--model"),
        (["--task", "splice", "--model", "gena-lm-bert-base-t2t"], "is not a splice model (generic: pretrained LM"),
        (["--task", "promoter", "--model", "splice-cnn-athaliana"], "`genaannot models list --task promoter`"),
        (["--task", "splice", "--model", "splice-cnn-ensemble-athalina"], "did you mean splice-cnn-ensemble-athaliana"),
    ],
)
def test_cli_errors(tmp_path, models, extra, message):
    fa, _ = _genome(tmp_path)
    bed = tmp_path / "r.bed"
    bed.write_text("chr2\t0\t701\n")
    extra = [str(models["token"]) if x == "TOKEN" else str(bed) if x == "BED" else x for x in extra]
    r = CliRunner().invoke(main, ["scan", str(fa), "-o", str(tmp_path / "o.bw"), "--quiet", *extra])
    assert r.exit_code != 0
    assert message in r.output
    assert not list(tmp_path.glob("o*"))  # nothing half-written


def test_cli_workers_that_cannot_start_exit_1_with_the_way_out(tmp_path, models, monkeypatch):
    import concurrent.futures

    def no_semaphores(*args, **kwargs):  # as a full /dev/shm answers
        raise OSError(0, "Error")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_semaphores)
    fa, _ = _genome(tmp_path)
    r = CliRunner().invoke(main, ["scan", str(fa), "--task", "splice", "--model", str(models["token"]), "--quiet",
                                  "--workers", "1", "-o", str(tmp_path / "o.bw")])
    assert r.exit_code == 1, r.output
    assert "cannot start worker processes" in r.output and "/dev/shm" in r.output and "--workers 0" in r.output
    assert "Traceback" not in r.output
    assert not list(tmp_path.glob("o*.bw")) and not (tmp_path / "o.calls.bed").exists()


def test_an_interrupted_scan_says_where_its_finished_parts_are(tmp_path, models, monkeypatch):
    import genaannot.pipeline.scan as scan_mod

    def interrupted(*args, output, **kwargs):
        parts = tmp_path / "o.parts"
        parts.mkdir(exist_ok=True)
        if kept:
            (parts / "u0.npz").write_bytes(b"")
        raise KeyboardInterrupt

    import functools

    # wraps: the CLI reads its defaults from scan_genome's signature
    monkeypatch.setattr(scan_mod, "scan_genome", functools.wraps(scan_mod.scan_genome)(interrupted))
    fa, _ = _genome(tmp_path)
    for kept in (False, True):
        r = CliRunner().invoke(main, ["scan", str(fa), "--task", "splice", "--model", str(models["token"]), "-q",
                                      "-o", str(tmp_path / "o.bw")])
        assert r.exit_code == 130, r.output
        assert r.output.splitlines()[-1] == "genaannot: interrupted"
        assert ("kept in" in r.output and "--resume" in r.output and str(tmp_path / "o.parts") in r.output) == kept


def test_cli_missing_fasta_and_bad_output(tmp_path, models):
    r = CliRunner().invoke(main, ["scan", str(tmp_path / "none.fa"), "--task", "splice", "--model",
                                  str(models["token"]), "-o", str(tmp_path / "o.bw")])
    assert r.exit_code != 0 and "not found" in r.output
    fa, _ = _genome(tmp_path)
    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(main, ["scan", str(fa), "--task", "splice", "--model", str(models["token"]),
                                  "-o", str(tmp_path / "afile" / "o.bw")])
    assert r.exit_code != 0 and "cannot create output directory" in r.output


def test_cli_help_names_outputs():
    r = CliRunner().invoke(main, ["scan", "--help"])
    assert r.exit_code == 0 and "OUT.<label>.<plus|minus>.bw" in r.output and "--resume" in r.output


def test_workers_devices_and_errors(tmp_path, models):
    fa, _ = _genome(tmp_path)
    base = ["scan", str(fa), "--task", "splice", "--model", str(models["token"]), "--window-tokens", "40",
            "--quiet"]
    outs = {}
    for name, extra in (("w0", ["--workers", "0", "--device", "cpu", "--threads", "1"]),
                        ("w1", ["--workers", "1", "--device", "cpu", "--threads", "2"]),
                        ("d2", ["--workers", "0", "--devices", "cpu,cpu", "--threads", "1"])):
        r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / f"{name}.bw"), *extra])
        assert r.exit_code == 0, r.output
        outs[name] = [(tmp_path / f"{name}.{lab}.{s}.bw").read_bytes() for lab in ("acceptor", "donor")
                      for s in ("plus", "minus")] + [(tmp_path / f"{name}.calls.bed").read_bytes()]
    assert outs["w0"] == outs["w1"] == outs["d2"]
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "x.bw"), "--devices", "gpu7"])
    assert r.exit_code != 0 and "not a device" in r.output
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "x.bw"), "--threads", "0"])
    assert r.exit_code == 2 and "--threads" in r.output


def test_model_options_reach_every_device_process(tmp_path):
    """--model-option goes to load_model here and in each --devices process, and into the manifest."""
    from tinymodels import make_rmt_dir

    fa, _ = _genome(tmp_path)
    rmt = make_rmt_dir(tmp_path / "rmt", head="token", num_labels=3, input_size=32, max_n_segments=3)
    base = ["scan", str(fa), "--task", "splice", "--model", str(rmt), "--quiet", "--strand", "+"]
    outs = {}
    for name, extra in (("one", ["--device", "cpu", "--model-option", "max_n_segments=2"]),
                        ("dev", ["--devices", "cpu,cpu", "--model-option", "max_n_segments=2"]),
                        ("default", ["--device", "cpu"])):
        r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / f"{name}.bw"), "--workers", "0", *extra])
        assert r.exit_code == 0, r.output
        outs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert outs["one"]["model"]["options"] == outs["dev"]["model"]["options"] == {"max_n_segments": 2}
    assert "options" not in outs["default"]["model"]
    # two segments of 26 tokens per window instead of three: more, shorter windows
    assert outs["dev"]["counts"]["windows"] == outs["one"]["counts"]["windows"] > outs["default"]["counts"]["windows"]
    for lab in ("acceptor", "donor"):
        assert (tmp_path / f"one.{lab}.plus.bw").read_bytes() == (tmp_path / f"dev.{lab}.plus.bw").read_bytes()
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "x.bw"), "--model-option", "max_n_segments"])
    assert r.exit_code != 0 and "expected KEY=VALUE" in r.output
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "x.bw"), "--model-option", "tile_tokens=8"])
    assert r.exit_code != 0 and "unknown options ['tile_tokens']" in r.output


def test_cli_creates_missing_output_directory(tmp_path, models, monkeypatch):
    """The README's main command writes to out/, which a fresh checkout does not have."""
    from click.testing import CliRunner

    from genaannot.cli import main

    seq = "ACGT" * 60
    fa = tmp_path / "g.fa"
    fa.write_text(">c\n" + seq + "\n")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["scan", str(fa), "--task", "splice", "--model", str(models["token"]),
                                    "-o", "out/run.bw", "--device", "cpu", "-q", "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "run.acceptor.plus.bw").is_file()


_FULL_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
import importlib
from genaannot.cli import main
where, limit, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
module, _, name = where.partition(":")
S = importlib.import_module(module)
for attr in name.split(".")[:-1]:  # a method: Class.method
    S = getattr(S, attr)
where = name.split(".")[-1]
real = getattr(S, where)
def limited(*a, **kw):  # the file-size limit starts with this stage (the parts exist)
    if limit:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return real(*a, **kw)
setattr(S, where, limited)
main(args, prog_name="genaannot")
"""


@pytest.mark.parametrize("case", ["bigwig-close", "bigwig-header", "part", "part-in-worker"])
def test_cli_write_error_exits_1_and_leaves_nothing(tmp_path, models, case):
    """A real write error (RLIMIT_FSIZE → EFBIG, as a full disk or a quota): exit 1 with a
    message naming the file, nothing under the final names, no temporary file; --resume
    then writes the files a clean run writes, and removes a killed run's temporary files.
    ``part-in-worker``: the part is written by a worker process (``--workers 1``), which
    inherits the limit; its error reaches the command the same way."""
    import subprocess
    import sys

    fa, _ = _genome(tmp_path)
    args = ["scan", str(fa), "--task", "splice", "--model", str(models["token"]), "--window-tokens", "40",
            "--labels", "acceptor", "--strand", "+", "--threshold", "2", "--workers", "0", "--quiet"]
    ref = tmp_path / "ref" / "r.bw"
    assert _run([*args, "-o", str(ref)]).exit_code == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "o.bw"
    where, limit, names = {
        # the files are finished beside the scan's end (the assembler that follows it)
        "bigwig-close": ("genaannot.pipeline.assemble:Assembler.finish", ref.stat().st_size - 4, str(out)),
        "bigwig-header": ("genaannot.pipeline.assemble:Assembler.finish", 300, str(out)),
        "part": ("genaannot.pipeline.scan:compute_units", 1, str(out_dir / "o.parts")),
        # 0: no limit in the parent
        "part-in-worker": ("genaannot.pipeline.scan:compute_units", 0, str(out_dir / "o.parts")),
    }[case]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    if case == "part-in-worker":
        # the limit in the spawned worker only (a sitecustomize module runs at its start-up):
        # in the parent it would also stop multiprocessing's semaphores in /dev/shm
        args[args.index("--workers") + 1] = "1"
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            "import resource, sys\n"
            "if any('multiprocessing' in a for a in sys.argv):\n"
            "    resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n")
        env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    r = subprocess.run([sys.executable, "-c", _FULL_CHILD, where, str(limit), *args, "-o", str(out)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "Error: " + names in r.stderr, r.stderr
    assert "disk full or" in r.stderr and "quota exceeded" in r.stderr
    if case.startswith("part"):
        assert ".npz: cannot save" in r.stderr and "kept" in r.stderr and "--resume" in r.stderr
    else:  # the computation is not lost: the message says where its parts are and how to go on
        assert f"finished parts are kept in {out_dir / 'o.parts'}" in r.stderr and "rerun with --resume" in r.stderr
    assert r.stderr.count("--resume") == 1, r.stderr  # said once, also where the part's own error says it
    left = sorted(p.name for p in out_dir.iterdir())
    assert left == ["o.parts"]  # nothing under the final names, no temporary file; the parts stay
    for stale in (".o.json.0123456789ab.tmp", ".o.bw.abcdefgh.tmp", ".o.json.commit"):  # as kill -9 leaves them
        (out_dir / stale).write_text("{}" if stale.endswith("commit") else "x")
    assert _run([*args, "-o", str(out), "--resume"]).exit_code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["o.bw", "o.calls.bed", "o.json"]
    assert out.read_bytes() == ref.read_bytes()


def test_cli_region_samtools_style(tmp_path, models):
    """--region is 1-based inclusive with thousands separators and chr aliases; repeatable,
    comma lists, and unioned with --regions BED."""
    fa, seqs = _genome(tmp_path)
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t99\t200\n")
    out = tmp_path / "o.bw"
    r = _run(["scan", str(fa), "--task", "splice", "--model", str(models["token"]), "-o", str(out),
              "--strand", "+", "--labels", "acceptor", "--window-tokens", "30", "--quiet",
              "--region", "2:101-150", "-r", "chr1:1,001-1,010,chrS",
              "--regions", str(bed)])
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "o.json").read_text())
    assert man["regions"] == ["chr1:100-200", "chr1:1001-1010", "chrS:1-8", "chr2:101-150"]
    bw = pyBigWig.open(str(out))
    v = np.array(bw.values("chr2", 0, 700), dtype=float)
    assert np.isnan(v[:100]).all() and not np.isnan(v[100:150]).any() and np.isnan(v[150:]).all()


@pytest.mark.parametrize("args, message, code", [
    (["--chrom", "chr2:1-300"], "use --region chr2:1-300", 2),
    (["--region", "chr2:1-701"], "runs past the end of chr2", 1),
    (["--region", "chr9:1-10"], "'chr9' is not in the genome", 1),
    (["--region", "chr2:10-5"], "empty or reversed", 1),
])
def test_cli_region_errors(tmp_path, models, args, message, code):
    fa, _ = _genome(tmp_path)
    r = CliRunner().invoke(main, ["scan", str(fa), "--task", "splice", "--model", str(models["token"]),
                                  "-o", str(tmp_path / "o.bw"), "--quiet", *args])
    assert r.exit_code == code, r.output
    assert message in r.output and sum(ln.startswith("Error") for ln in r.output.splitlines()) == 1
    assert not list(tmp_path.glob("o*"))


_SLOW_CHILD = """
import sys, time
import genaannot.io.parts as P
real = P.PartsStore.save
def slow(self, key, part):  # slow enough that the parent's SIGTERM comes mid-run
    real(self, key, part)
    time.sleep(0.4)
P.PartsStore.save = slow
from genaannot.cli import main
main(sys.argv[1:], prog_name="genaannot")
"""


def test_sigterm_mid_scan_exits_143_leaves_no_temporary_file_and_resumes(tmp_path, models):
    """SIGTERM (a scheduler's time limit, `kill`) during a scan: exit 143 with a line (and one
    saying where the finished parts are), the
    staged files removed (nothing under the final names, no temporary file), the finished
    parts kept; --resume then writes the files an uninterrupted run writes."""
    import signal
    import subprocess
    import sys
    import time

    fa, _ = _genome(tmp_path)
    args = ["scan", str(fa), "--task", "splice", "--model", str(models["token"]), "--window-tokens", "40",
            "--labels", "acceptor", "--strand", "+", "--workers", "0", "--quiet"]
    ref = tmp_path / "ref" / "r.bw"
    assert _run([*args, "-o", str(ref)]).exit_code == 0
    out_dir = tmp_path / "out"
    out = out_dir / "o.bw"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CHILD, *args, "-o", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = out_dir / "o.parts"
    deadline = time.monotonic() + 60
    while not list(parts.glob("*.npz")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert lines == [f"genaannot: the finished parts are kept in {out_dir / 'o.parts'}: rerun the same command "
                     "with --resume to go on from them", "genaannot: terminated (SIGTERM)"], stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["o.parts"]  # no staged or temporary file
    assert list(parts.glob("*.npz")) and not [p for p in parts.iterdir() if p.name.endswith(".tmp")]
    r = _run([*args, "-o", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == ref.read_bytes()
    assert (out_dir / "o.calls.bed").read_bytes() == (ref.parent / "r.calls.bed").read_bytes()
