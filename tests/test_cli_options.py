"""genaannot.cli.options: the command line's defaults and choices are the library's.

Every option of every command is walked: an option with a default either mirrors a library
default (a dataclass field or a keyword of the function the command calls) and must equal
it, or is listed below as the command line's own with the reason; every choice list must
equal a library registry's keys.
"""

from __future__ import annotations

from importlib import import_module

import click
import pytest

from genaannot.cli import COMMANDS
from genaannot.cli.options import RegistryChoice, library_default
from genaannot.conventions import SITE_CONVENTIONS
from genaannot.genes import OUTSIDE_GENES
from genaannot.interpret import BASELINES
from genaannot.models.dilated_cnn import COMBINES
from genaannot.models.families import FAMILIES
from genaannot.pipeline.browser import plot_region, write_scan_hub, write_scan_report
from genaannot.pipeline.ensemble import ensemble_models
from genaannot.pipeline.interpret import attribute_region, ism_region
from genaannot.pipeline.scan import scan_genome
from genaannot.pipeline.score import score_variants
from genaannot.pipeline.train import evaluate_checkpoint, train_genome
from genaannot.predict import PRECISIONS
from genaannot.readout import STRANDS
from genaannot.stitch import STITCH_MODES
from genaannot.tasks import TASKS, Task, trainable_tasks
from genaannot.train import ArchConfig, TrainConfig

#: command -> where its defaults come from (searched in order)
OWNERS = {
    "scan": [scan_genome],
    "score": [score_variants],
    "train": [TrainConfig, ArchConfig, train_genome],
    "evaluate": [evaluate_checkpoint],
    "ism": [ism_region],
    "attribute": [attribute_region],
    "hub": [write_scan_hub],
    "report": [write_scan_report],
    "plot": [plot_region],
    "list": [],
    "inspect": [],
    "merge": [],
    "ensemble": [ensemble_models],
}

#: (command, option) -> the library's name for it
ALIASES = {
    ("train", "tokenizer_opt"): "tokenizer",
    ("train", "valid_chroms"): "valid", ("train", "valid_regions"): "valid",
    ("train", "test_chroms"): "test", ("train", "test_regions"): "test",
    ("evaluate", "out_dir"): "output_dir",
    ("evaluate", "baseline_chroms"): "baseline_regions",
    ("report", "embed_limit"): "embed_limit_mb",
}

#: (command, option) -> why its default is the command line's own
CLI_ONLY = {
    ("scan", "model_path"): "default: the task's published checkpoint (Task.default_model_id)",
    ("score", "model_path"): "default: the task's published checkpoint (Task.default_model_id)",
    ("ism", "model_path"): "default: the task's published checkpoint",
    ("attribute", "model_path"): "default: the task's published checkpoint",
    ("scan", "workers"): "None: picked from the cores and devices (library default 0: in-process)",
    ("score", "workers"): "None: picked from the cores and devices (library default 0: a helper thread)",
    ("train", "train_chroms"): "train_genome(train=) is required",
    ("train", "train_regions"): "train_genome(train=) is required",
    ("train", "steps"): "None: TrainConfig.steps unless --epochs (checked in test_train_steps_default)",
    ("train", "threads"): "the command's process (torch.set_num_threads); not a library argument",
    ("evaluate", "regions_bed"): "evaluate_checkpoint(regions=) is required",
    ("evaluate", "chroms"): "evaluate_checkpoint(regions=) is required",
    ("evaluate", "threads"): "the command's process (torch.set_num_threads); not a library argument",
    ("hub", "outdir"): "default: beside the scan",
    ("list", "task"): "a filter of the catalogue listing",
    ("inspect", "revision"): "part of the model reference",
    ("merge", "tsv"): "an output file",
}

#: (command, option) -> the registry whose keys are the choices
CHOICES = {
    ("scan", "task_name"): lambda: TASKS, ("score", "task_name"): lambda: TASKS,
    ("ism", "task_name"): lambda: TASKS, ("attribute", "task_name"): lambda: TASKS,
    ("train", "task"): trainable_tasks, ("evaluate", "task"): trainable_tasks,
    ("scan", "strand"): lambda: STRANDS, ("score", "strand"): lambda: STRANDS,
    ("ism", "strand"): lambda: [k for k, v in STRANDS.items() if len(v) == 1],
    ("attribute", "strand"): lambda: [k for k, v in STRANDS.items() if len(v) == 1],
    ("scan", "stitch"): lambda: STITCH_MODES, ("evaluate", "stitch"): lambda: STITCH_MODES,
    ("scan", "precision"): lambda: PRECISIONS, ("score", "precision"): lambda: PRECISIONS,
    ("train", "precision"): lambda: PRECISIONS, ("ism", "precision"): lambda: PRECISIONS,
    ("train", "site_convention"): lambda: SITE_CONVENTIONS, ("evaluate", "site_convention"): lambda: SITE_CONVENTIONS,
    ("score", "outside_genes"): lambda: OUTSIDE_GENES,
    ("attribute", "baseline"): lambda: BASELINES,
    ("train", "family"): lambda: FAMILIES,
    ("ensemble", "combine"): lambda: COMBINES,
}

#: option values the command line spells differently: (command, option) -> CLI value -> library value
CONVERT = {("scan", "track_digits"): lambda v: None if v == "full" else int(v)}


def _commands() -> list[tuple[str, click.Command]]:
    out = []
    for ref in COMMANDS.values():
        mod, attr = ref.split(":")
        cmd = getattr(import_module(mod), attr)
        out += [(c.name, c) for c in (cmd.commands.values() if isinstance(cmd, click.Group) else [cmd])]
    return out


def _library_default(command: str, name: str):
    for owner in OWNERS[command]:
        try:
            return True, library_default(owner, name)
        except KeyError:
            continue
    return False, None


def test_every_default_is_the_librarys_or_the_command_lines_own_with_a_reason():
    seen = set()
    for command, cmd in _commands():
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.is_flag or p.required or p.multiple:
                continue
            key = (command, p.name)
            seen.add(key)
            found, want = _library_default(command, ALIASES.get(key, p.name))
            if key in CLI_ONLY:
                continue
            assert found, f"{command} --{p.name}: no library default found and not listed as the command line's own"
            got = CONVERT.get(key, lambda v: v)(p.default)
            assert got == want and type(got) is type(want), f"{command} --{p.name}: CLI {got!r} != library {want!r}"
    assert not set(CLI_ONLY) - seen, "stale CLI_ONLY entries"


def test_every_choice_list_is_a_registry():
    seen = set()
    for command, cmd in _commands():
        for p in cmd.params:
            if isinstance(p.type, click.Choice):
                key = (command, p.name)
                seen.add(key)
                assert key in CHOICES, f"{command} --{p.name}: a choice list that is no registry"
                assert list(p.type.choices) == list(CHOICES[key]()), f"{command} --{p.name}"
    assert seen == set(CHOICES)


def test_train_steps_default():
    """--steps is None so that --epochs can replace it; then TrainConfig's default is used."""
    from genaannot.cli import train as cli_train

    assert library_default(TrainConfig, "steps") == 1000 and cli_train._cfg("steps") == 1000
    assert library_default(TrainConfig, "pos_weight") == 10.0  # what `genaannot train` always used


def test_registry_choice_reads_the_registry_each_time(monkeypatch):
    choice = RegistryChoice(lambda: TASKS)
    assert "extra" not in choice.choices
    monkeypatch.setitem(TASKS, "extra", Task("extra", "", "token", "sigmoid", True, 10))
    assert "extra" in choice.choices and choice.convert("extra", None, None) == "extra"
    with pytest.raises(click.BadParameter, match="'nope' is not one of"):
        choice.convert("nope", None, None)


def test_library_default_reads_fields_and_keywords():
    assert library_default(TrainConfig, "lr") == TrainConfig().lr
    assert library_default(scan_genome, "overlap") == 0.5
    with pytest.raises(KeyError):
        library_default(TrainConfig, "nope")
    with pytest.raises(KeyError):
        library_default(train_genome, "genome")  # required: no default
