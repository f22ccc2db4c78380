"""Hostile and broken input (issue 20), swept across the commands: the fast subset of
``tests/hostile_cases.py`` (the whole sweep: ``scripts/fuzz_hostile.py``), and the CLI safety
net that turns whatever escapes a command into one line.

Each case: exit 1 or 2, exactly one error line on stderr naming the file or option, no
traceback, inputs unchanged (or, for an unusual but valid input, exit 0 with the output).
"""

from __future__ import annotations

import errno

import click
import pytest
from click.testing import CliRunner
from hostile_cases import CASES, ROOT, build_base, prepare, run_case

import genaannot.cli as cli
from genaannot.cli import main

FAST = [c for c in CASES if c.fast]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_base(tmp_path_factory.mktemp("hostile-base"))


@pytest.mark.parametrize("case", FAST, ids=[c.id for c in FAST])
def test_hostile_input(case, base, tmp_path):
    if case.root_skip and ROOT:
        pytest.skip("permissions mean nothing to root")
    d = tmp_path / "case"
    prepare(case, base, d)
    problems, r = run_case(case, d)
    assert not problems, f"{case.id}: {problems}\n{r.output}"


def test_the_sweep_covers_every_command(tmp_path):
    every = {"scan", "score", "merge", "train", "evaluate", "hub", "report", "plot", "ism", "attribute", "models"}
    assert {str(c.args(tmp_path)[0]) for c in CASES} == every
    assert {str(c.args(tmp_path)[0]) for c in FAST} >= every - {"attribute"}
    assert len(CASES) >= 150


# -- the safety net -------------------------------------------------------------------------------

@click.command("boom")
@click.argument("kind")
def _boom(kind: str) -> None:
    from genaannot.io.vcf import VcfError

    raise {
        "perm": PermissionError(errno.EACCES, "Permission denied", "/data/x.bed"),
        "missing": FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/y.fa"),
        "isdir": IsADirectoryError(errno.EISDIR, "Is a directory", "/data/d"),
        "full": OSError(errno.ENOSPC, "No space left on device", "/out/o.bw"),
        "quota": OSError(errno.EDQUOT, "Disk quota exceeded", "/out/o.bw"),
        "eio": OSError(errno.EIO, "Input/output error", "/nfs/g.fa"),
        "typed": VcfError("/data/in.vcf:3: POS 'x' is not a number"),
        "bug": ZeroDivisionError("division by zero"),
        "multiline": KeyError("a\nb"),
        "ctrl-c": KeyboardInterrupt(),
        "sigterm": cli.Terminated(),
    }[kind]


@pytest.fixture
def boom(monkeypatch):
    get = cli.LazyGroup.get_command
    monkeypatch.setattr(cli.LazyGroup, "get_command",
                        lambda self, ctx, name: _boom if name == "boom" else get(self, ctx, name))
    monkeypatch.delenv(cli.TRACEBACK_ENV, raising=False)
    return lambda kind: CliRunner().invoke(main, ["boom", kind])


@pytest.mark.parametrize("kind, code, words", [
    ("perm", 1, ["Error: /data/x.bed: Permission denied", "permissions"]),
    ("missing", 1, ["Error: /data/y.fa: No such file or directory", "check the path"]),
    ("isdir", 1, ["Error: /data/d: Is a directory", "not a directory"]),
    ("full", 1, ["Error: /out/o.bw: No space left on device", "disk full"]),
    ("quota", 1, ["Error: /out/o.bw: Disk quota exceeded", "disk full"]),
    ("eio", 1, ["Error: /nfs/g.fa: Input/output error", "check the disk"]),
    ("typed", 1, ["Error: /data/in.vcf:3: POS 'x' is not a number"]),
    ("bug", 1, ["genaannot: internal error: ZeroDivisionError: division by zero — please report it",
                "GENAANNOT_TRACEBACK=1"]),
    ("multiline", 1, ["genaannot: internal error: KeyError:"]),
    ("ctrl-c", 130, ["genaannot: interrupted"]),
    ("sigterm", 143, ["genaannot: terminated (SIGTERM)"]),
])
def test_whatever_escapes_a_command_is_one_line(boom, kind, code, words):
    r = boom(kind)
    assert r.exit_code == code, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in r.output


def test_traceback_env_reraises(boom, monkeypatch):
    monkeypatch.setenv(cli.TRACEBACK_ENV, "1")
    r = boom("bug")
    assert isinstance(r.exception, ZeroDivisionError)


def test_usage_errors_pass_through_the_net(boom):
    r = CliRunner().invoke(main, ["scan", "--bogus"])
    assert r.exit_code == 2 and "No such option" in r.stderr


# -- disk full while train saves a step; NaN from integrated gradients ------------------------------

@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"),  # torch.save, disk full
])
def test_disk_full_while_saving_a_step(tmp_path, monkeypatch, failure):
    import torch

    from genaannot.io.atomic import OutputError
    from genaannot.io.checkpoint import last_checkpoint, save_step

    root = tmp_path / "m" / "checkpoints"
    ok = save_step(root, step=1, write_model=lambda d: (d.mkdir(), (d / "config.json").write_text("{}")),
                   state={"step": 1}, keep=3)

    def full(*_a, **_k):
        raise failure

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OutputError, match=r"step-0000002: cannot save the checkpoint .*disk full") as err:
        save_step(root, step=2, write_model=lambda d: (d.mkdir(), (d / "config.json").write_text("{}")),
                  state={"step": 2}, keep=3)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in root.iterdir()) == ["last", "step-0000001"]  # nothing half-written
    assert last_checkpoint(root) == ok


def test_attribute_refuses_nan_outputs(tmp_path):
    from safetensors.torch import load_file, save_file
    from tinymodels import make_gena_dir, random_dna

    model = make_gena_dir(tmp_path / "tok", head="token", num_labels=3)
    w = load_file(str(model / "model.safetensors"))
    for k in w:
        if "classifier" in k or "head" in k:
            w[k] = w[k] * float("nan")
    save_file(w, str(model / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "g.fa").write_text(">c1\n" + random_dna(400, seed=1) + "\n")
    args = ["attribute", tmp_path / "g.fa", "--region", "c1:101-104", "--task", "splice", "--model", model,
            "--site", "102", "-o", tmp_path / "a", "--window-tokens", "30", "--device", "cpu", "--steps", "2", "-q"]
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 1, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "non-finite" in lines[0] and "(integrated gradients)" in lines[0], r.stderr
    assert not list(tmp_path.glob("a.*"))


def test_genaannots_own_warnings_are_one_line_while_a_command_runs(monkeypatch):
    # Python's format names the file and line and repeats a line of source ("  result = scan_genome(")
    import warnings

    seen = {}

    @click.command("warn")
    def _warn():
        seen["own"] = warnings.formatwarning("OUT.parts: removed 2 finished part(s)", UserWarning,
                                             cli.__file__, 131, "  result = scan_genome(")
        seen["other"] = warnings.formatwarning("old API", DeprecationWarning, "/site-packages/torch/x.py", 3, "src")

    get = cli.LazyGroup.get_command
    monkeypatch.setattr(cli.LazyGroup, "get_command",
                        lambda self, ctx, name: _warn if name == "warn" else get(self, ctx, name))
    assert CliRunner().invoke(main, ["warn"]).exit_code == 0
    assert seen["own"] == "genaannot: warning: OUT.parts: removed 2 finished part(s)\n"
    assert seen["other"].startswith("/site-packages/torch/x.py:3: DeprecationWarning: old API")
    assert warnings.formatwarning is not cli._format_warning  # put back after the command
