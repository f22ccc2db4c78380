"""``genaannot models list`` / ``models inspect`` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir, make_rmt_dir

from genaannot.cli import main


@pytest.fixture()
def fake_hf_cache(tmp_path, monkeypatch):
    """A Hugging Face cache holding only gena-lm-bert-base-t2t@spliceai_run_1's config.json."""
    import huggingface_hub.constants as c

    cache = tmp_path / "hub"
    repo = cache / "models--AIRI-Institute--gena-lm-bert-base-t2t"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "spliceai_run_1").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    return cache


def test_models_list(fake_hf_cache):
    res = CliRunner().invoke(main, ["models", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["gena-splice"]["local"] == "cached"
    assert rows["gena-promoter"]["local"] == "-"  # same repo, other branch: not cached
    assert rows["gena-splice"]["hub_id"] == "AIRI-Institute/gena-lm-bert-base-t2t@spliceai_run_1"
    res = CliRunner().invoke(main, ["models", "list", "--task", "splice"])
    assert res.exit_code == 0 and "gena-splice" in res.output and "gena-promoter" not in res.output
    assert "cached" in res.output


def test_models_inspect_fixture(shared):
    d = shared / "fixtures" / "gena_parity" / "models" / "bert_preln_lastln_seqcls"
    res = CliRunner().invoke(main, ["models", "inspect", str(d)])
    assert res.exit_code == 0, res.output
    text = res.output
    for want in ("gena_bert", "BertForSequenceClassification", "sequence", "510 content tokens", "last layer ln"):
        assert want in text, want
    assert any(line.startswith("last layer ln") and line.endswith("True") for line in text.splitlines())
    res = CliRunner().invoke(main, ["models", "inspect", "--json", str(shared / "fixtures/gena_parity/models/rmt_seqcls")])
    info = json.loads(res.output)
    assert info["family"] == "rmt" and info["max_tokens"] == 480 and info["extra"]["rmt"]["num_mem_tokens"] == 5


def test_models_inspect_tiny(tmp_path):
    d = make_gena_dir(tmp_path / "m", head="token", metadata={"task": "splice"})
    res = CliRunner().invoke(main, ["models", "inspect", str(d)])
    assert res.exit_code == 0, res.output
    assert "BertForTokenClassification" in res.output and "splice" in res.output and "128 content tokens" in res.output
    r = make_rmt_dir(tmp_path / "r") / "model_best.pth"
    (r.parent / "rmt.json").unlink()
    res = CliRunner().invoke(main, ["models", "inspect", str(r), "--model-option", "input_size=24", "--model-option", "max_n_segments=2"])
    assert res.exit_code == 0, res.output
    assert "max_n_segments=2" in res.output and "36 content tokens" in res.output


def test_models_inspect_errors(tmp_path):
    res = CliRunner().invoke(main, ["models", "inspect", "someone/absent-model"])
    assert res.exit_code == 1 and "not in the local Hugging Face cache" in res.output
    res = CliRunner().invoke(main, ["models", "inspect", str(tmp_path)])
    assert res.exit_code == 1 and "no config.json" in res.output
    res = CliRunner().invoke(main, ["models", "inspect", str(tmp_path), "-o", "novalue"])
    assert res.exit_code == 2


def test_list_shows_held_out_metrics_of_bundled_models():
    from click.testing import CliRunner

    from genaannot.cli import main
    from genaannot.models.catalog import CATALOG

    entry = CATALOG["demo-splice-athaliana"]
    # shipped in the repository (examples/models/): its absence is a failure, not a skip
    assert entry.local_path() is not None, f"bundled demo model not found at {entry.search_paths()}"
    res = CliRunner().invoke(main, ["models", "list", "--task", "splice"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if "held-out:" in x)
    assert "acceptor AP" in line and "donor AP" in line and "PWM" in line and "Chr5" in line
    rows = json.loads(CliRunner().invoke(main, ["models", "list", "--json"]).output)
    demo = next(r for r in rows if r["name"] == "demo-splice-athaliana")
    assert demo["held_out"]["model"]["acceptor"]["average_precision"] > demo["held_out"]["baseline"]["acceptor"]["average_precision"]


#: branches the upstream model cards document (huggingface.co/AIRI-Institute/<repo>, 2026-12-05)
UPSTREAM_BRANCHES = {
    "AIRI-Institute/gena-lm-bert-base-t2t": {"promoters_300_run_1", "spliceai_run_1", "enformer",
                                             "gena_web_deepsea", "gena_web_deepstarr"},
    "AIRI-Institute/gena-lm-bert-large-t2t": {"promoters_300_run_1", "promoters_2000_run_1", "spliceai_run_1",
                                              "gena_web_promoters_2000"},
    "AIRI-Institute/gena-lm-bigbird-base-t2t": {"gena_web_spliceai"},
}


def test_catalogue_branches_exist_upstream_and_task_defaults_are_entries():
    from genaannot.models.catalog import CATALOG
    from genaannot.tasks import TASKS

    for entry in CATALOG.values():
        if entry.revision is not None:
            assert entry.revision in UPSTREAM_BRANCHES.get(entry.hub_id, set()), entry.name
        assert (entry.task == "generic") == entry.serves.startswith("pretrained"), entry.name
    for task in TASKS.values():
        if task.default_model is None:
            continue
        hub, rev = task.default_model
        assert rev in UPSTREAM_BRANCHES[hub], task.name
        served = [e for e in CATALOG.values() if (e.hub_id, e.revision) == (hub, rev)]
        assert served and all(e.task == task.name for e in served), task.name


def test_models_list_says_what_each_entry_serves():
    res = CliRunner().invoke(main, ["models", "list"])
    assert res.exit_code == 0
    assert "use: scan/score --task splice" in res.output
    # GENA BERT / BigBird MLMs, HyenaDNA, modernGENA: every family fine-tunes
    assert "use: pretrained LM without a task head: fine-tune first (genaannot train --base-model hyenadna-tiny-1k)" \
        in res.output
    assert "hf download" in res.output
