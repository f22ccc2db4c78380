"""Known checkpoints, addressable by name (``genaannot models list``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CatalogEntry", "CATALOG", "cached_status", "list_models"]


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


CATALOG: dict[str, CatalogEntry] = dict(
    [
        _e("gena-lm-bert-base-t2t", "generic", "gena_bert", "AIRI-Institute/gena-lm-bert-base-t2t", None,
           "GENA-LM BERT base, T2T human + multispecies, MLM"),
        _e("gena-lm-bert-large-t2t", "generic", "gena_bert", "AIRI-Institute/gena-lm-bert-large-t2t", None,
           "GENA-LM BERT large, MLM"),
        _e("gena-lm-bert-base-lastln-t2t", "generic", "gena_bert", "AIRI-Institute/gena-lm-bert-base-lastln-t2t", None,
           "GENA-LM BERT base with final LayerNorm, MLM"),
        _e("gena-lm-bert-base-t2t-multi", "generic", "gena_bert", "AIRI-Institute/gena-lm-bert-base-t2t-multi", None,
           "GENA-LM BERT base, multispecies, MLM"),
        _e("gena-lm-bigbird-base-t2t", "generic", "bigbird", "AIRI-Institute/gena-lm-bigbird-base-t2t", None,
           "GENA-LM BigBird base (4096 tokens), MLM"),
        _e("gena-splice", "splice", "gena_bert", "AIRI-Institute/gena-lm-bert-base-t2t", "spliceai_run_1",
           "splice acceptor/donor token classifier (SpliceAI data)", site_convention="exon"),
        _e("gena-promoter", "promoter", "gena_bert", "AIRI-Institute/gena-lm-bert-base-t2t", "promoters_2000_run_1",
           "EPDnew promoter classifier, 2 kb"),
        _e("gena-chromatin", "chromatin", "gena_bert", "AIRI-Institute/gena-lm-bert-base-t2t", "gena_web_deepsea",
           "DeepSEA 919 chromatin profiles (GENA-Web)"),
        _e("hyenadna-tiny-1k", "generic", "hyena", "LongSafari/hyenadna-tiny-1k-seqlen-hf", None, "HyenaDNA tiny, 1 kb"),
        _e("hyenadna-small-32k", "generic", "hyena", "LongSafari/hyenadna-small-32k-seqlen-hf", None, "HyenaDNA small, 32 kb"),
        _e("hyenadna-medium-160k", "generic", "hyena", "LongSafari/hyenadna-medium-160k-seqlen-hf", None, "HyenaDNA medium, 160 kb"),
        _e("hyenadna-medium-450k", "generic", "hyena", "LongSafari/hyenadna-medium-450k-seqlen-hf", None, "HyenaDNA medium, 450 kb"),
        _e("hyenadna-large-1m", "generic", "hyena", "LongSafari/hyenadna-large-1m-seqlen-hf", None, "HyenaDNA large, 1 Mb"),
        _e("moderngena-base", "generic", "modernbert", "AIRI-Institute/moderngena-base", None, "modernGENA base (ModernBERT), MLM"),
        _e("moderngena-large", "generic", "modernbert", "AIRI-Institute/moderngena-large", None, "modernGENA large (ModernBERT), MLM"),
        _e("demo-splice-athaliana", "splice", "gena_bert", "", None,
           "demo: A. thaliana splice acceptor/donor, 1 token per base, 126 bp windows (trained by genaannot train)",
           bundled="examples/models/demo-splice-athaliana", site_convention="intron"),
    ]
)


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
            "held_out": held_out(meta) or dict(entry.metrics),
        })
    return rows
