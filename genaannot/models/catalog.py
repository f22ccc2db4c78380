"""Known checkpoints, addressable by name (``genaannot models list``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CatalogEntry", "CATALOG", "cached_status", "list_models", "check_task", "local_for_task"]


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    task: str
    family: str
    hub_id: str
    revision: str | None = None
    description: str = ""
    #: path inside the installed package or the repository (bundled models)
    bundled: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    #: splice: the site convention (:data:`genaannot.conventions.SITE_CONVENTIONS`) the checkpoint
    #: predicts in; what :func:`genaannot.conventions.checkpoint_convention` finds for it (tested)
    site_convention: str | None = None

    @property
    def serves(self) -> str:
        """What the entry does as it is: the task it has a head for, or that it needs fine-tuning
        (its task takes any checkpoint: a pretrained LM has no task head of its own)."""
        from ..tasks import get_task

        if not get_task(self.task).any_checkpoint:
            return f"scan/score --task {self.task}"
        return f"pretrained LM without a task head: fine-tune first (genaannot train --base-model {self.name})"

    def search_paths(self) -> list[Path]:
        """Where a bundled model is looked for: inside the package, then the repository root."""
        if self.bundled is None:
            return []
        here = Path(__file__).resolve().parent.parent
        return [base / self.bundled for base in (here, here.parent)]

    def local_path(self) -> Path | None:
        """The first existing :meth:`search_paths` entry, or None."""
        for p in self.search_paths():
            if p.exists():
                return p
        return None


def _e(*args, **kw) -> tuple[str, CatalogEntry]:
    entry = CatalogEntry(*args, **kw)
    return entry.name, entry


#: Branches as documented on the upstream model cards (huggingface.co/AIRI-Institute/<name>,
#: checked 2026-12-05): bert-base-t2t: promoters_300_run_1, spliceai_run_1, enformer,
#: gena_web_deepsea, gena_web_deepstarr; bert-large-t2t: promoters_300_run_1,
#: promoters_2000_run_1, spliceai_run_1, gena_web_promoters_2000; bigbird-base-t2t:
#: gena_web_spliceai. The enformer and deepstarr heads (regression) fit no task here.
_BASE, _LARGE = "AIRI-Institute/gena-lm-bert-base-t2t", "AIRI-Institute/gena-lm-bert-large-t2t"
_BIGBIRD = "AIRI-Institute/gena-lm-bigbird-base-t2t"

CATALOG: dict[str, CatalogEntry] = dict(
    [
        _e("gena-lm-bert-base-t2t", "generic", "gena_bert", _BASE, None,
           "GENA-LM BERT base, human T2T-CHM13 assembly, MLM (512 tokens, about 4.5 kb)"),
        _e("gena-lm-bert-large-t2t", "generic", "gena_bert", _LARGE, None,
           "GENA-LM BERT large, human T2T-CHM13 assembly, MLM (512 tokens)"),
        _e("gena-lm-bert-base-lastln-t2t", "generic", "gena_bert", "AIRI-Institute/gena-lm-bert-base-lastln-t2t", None,
           "GENA-LM BERT base with final LayerNorm, human T2T-CHM13, MLM"),
        _e("gena-lm-bert-base-t2t-multi", "generic", "gena_bert", "AIRI-Institute/gena-lm-bert-base-t2t-multi", None,
           "GENA-LM BERT base, human T2T + multispecies, MLM"),
        _e("gena-lm-bigbird-base-t2t", "generic", "bigbird", _BIGBIRD, None,
           "GENA-LM BigBird base, human T2T-CHM13, MLM (4096 tokens, about 36 kb)"),
        _e("gena-splice", "splice", "gena_bert", _BASE, "spliceai_run_1",
           "BERT base fine-tuned on the SpliceAI data set (human): acceptor/donor per token", site_convention="exon"),
        _e("gena-splice-large", "splice", "gena_bert", _LARGE, "spliceai_run_1",
           "BERT large fine-tuned on the SpliceAI data set (human): acceptor/donor per token", site_convention="exon"),
        _e("gena-splice-bigbird", "splice", "bigbird", _BIGBIRD, "gena_web_spliceai",
           "BigBird base splice model of GENA-Web (human): acceptor/donor per token", site_convention="exon"),
        _e("gena-promoter", "promoter", "gena_bert", _BASE, "promoters_300_run_1",
           "BERT base promoter classifier, EPDnew human, fine-tuned on 300-bp sequences"),
        _e("gena-promoter-large", "promoter", "gena_bert", _LARGE, "promoters_300_run_1",
           "BERT large promoter classifier, EPDnew human, fine-tuned on 300-bp sequences"),
        _e("gena-promoter-2000", "promoter", "gena_bert", _LARGE, "promoters_2000_run_1",
           "BERT large promoter classifier, EPDnew human, fine-tuned on 2-kb sequences"),
        _e("gena-promoter-2000-web", "promoter", "gena_bert", _LARGE, "gena_web_promoters_2000",
           "BERT large 2-kb promoter model of GENA-Web (human)"),
        _e("gena-chromatin", "chromatin", "gena_bert", _BASE, "gena_web_deepsea",
           "BERT base, DeepSEA's 919 chromatin profiles (GENA-Web, human)"),
        _e("hyenadna-tiny-1k", "generic", "hyena", "LongSafari/hyenadna-tiny-1k-seqlen-hf", None,
           "HyenaDNA tiny, human, 1 kb, next-base LM"),
        _e("hyenadna-small-32k", "generic", "hyena", "LongSafari/hyenadna-small-32k-seqlen-hf", None,
           "HyenaDNA small, human, 32 kb, next-base LM"),
        _e("hyenadna-medium-160k", "generic", "hyena", "LongSafari/hyenadna-medium-160k-seqlen-hf", None,
           "HyenaDNA medium, human, 160 kb, next-base LM"),
        _e("hyenadna-medium-450k", "generic", "hyena", "LongSafari/hyenadna-medium-450k-seqlen-hf", None,
           "HyenaDNA medium, human, 450 kb, next-base LM"),
        _e("hyenadna-large-1m", "generic", "hyena", "LongSafari/hyenadna-large-1m-seqlen-hf", None,
           "HyenaDNA large, human, 1 Mb, next-base LM"),
        _e("moderngena-base", "generic", "modernbert", "AIRI-Institute/moderngena-base", None,
           "modernGENA base (ModernBERT), MLM"),
        _e("moderngena-large", "generic", "modernbert", "AIRI-Institute/moderngena-large", None,
           "modernGENA large (ModernBERT), MLM"),
        _e("demo-splice-athaliana", "splice", "gena_bert", "", None,
           "demo: A. thaliana splice acceptor/donor, 1 token per base, 126 bp windows (trained by genaannot train)",
           bundled="examples/models/demo-splice-athaliana", site_convention="intron"),
        _e("splice-cnn-athaliana", "splice", "dilated_cnn", "", None,
           "A. thaliana splice acceptor/donor, dilated CNN, 401-bp field per base (trained by genaannot train)",
           bundled="examples/models/splice-cnn-athaliana", site_convention="exon"),
        _e("splice-cnn-ensemble-athaliana", "splice", "dilated_cnn", "", None,
           "A. thaliana splice acceptor/donor, mean of 5 dilated CNNs (401-2001-bp fields; genaannot models ensemble)",
           bundled="examples/models/splice-cnn-ensemble-athaliana", site_convention="exon"),
    ]
)


def check_task(name: str, task: str) -> None:
    """Refuse a catalogue name asked for a task it has no head for, before anything is looked
    up or loaded (a pretrained LM's hint would else be to download gigabytes that ``scan``
    then refuses). Paths, hub ids and tasks that take any checkpoint pass."""
    from ..tasks import get_task
    from .base import ModelError

    entry = CATALOG.get(name)
    if entry is None or entry.task == task or get_task(task).any_checkpoint:
        return
    raise ModelError(f"model {name!r} is not a {task} model ({entry.task}: {entry.serves}); "
                     f"`genaannot models list --task {task}` lists those that are")


def local_for_task(task: str, *, besides: str = "") -> list[str]:
    """Catalogue names of ``task`` whose files are here (bundled), ``besides`` left out."""
    return [e.name for e in CATALOG.values() if e.task == task and e.name != besides and e.local_path() is not None]


def cached_status(hub_id: str, revision: str | None) -> str:
    """``cached`` when the id's ``config.json`` is in the local HF cache, else ``-`` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return "?"
    try:
        hit = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed cache entry is "not available"
        return "-"
    return "cached" if isinstance(hit, str) else "-"


def held_out(meta: dict) -> dict:
    """``{"regions", "model": {label: {metric: v}}, "baseline": ...}`` from genaannot.json, or {}."""
    if not meta.get("test_metrics"):
        return {}
    keep = ("average_precision", "auroc", "topk_accuracy")

    def pick(block: dict) -> dict:
        return {k: {m: round(v[m], 4) for m in keep if m in v} for k, v in block.items() if k != "mean"}

    return {
        "regions": meta.get("test_regions", []),
        "model": pick(meta["test_metrics"]),
        "baseline": pick(meta.get("test_baseline") or {}),
    }


def list_models(*, task: str | None = None) -> list[dict]:
    """The catalogue (``genaannot models list``): per entry its task, family, hub id, where it
    is available locally (``bundled``, ``cached`` in the Hugging Face cache, or ``-``;
    nothing is downloaded) and its held-out metrics (from the checkpoint's own
    ``genaannot.json`` when it is here, else the catalogue's)."""
    from ..io.checkpoint import read_metadata as read_task_metadata

    rows = []
    for entry in CATALOG.values():
        if task and entry.task != task:
            continue
        local = entry.local_path()
        status = "bundled" if local is not None else cached_status(entry.hub_id, entry.revision)
        meta = read_task_metadata(local) if local is not None else {}
        rows.append({
            "name": entry.name,
            "task": entry.task,
            "family": entry.family,
            "hub_id": entry.hub_id + (f"@{entry.revision}" if entry.revision else ""),
            "local": status,
            "description": entry.description,
            "serves": entry.serves,
            "held_out": held_out(meta) or dict(entry.metrics),
        })
    return rows
