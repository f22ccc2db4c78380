"""Known checkpoints, addressable by name (``genaannot models list``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CatalogEntry", "CATALOG"]


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
           "splice acceptor/donor token classifier (SpliceAI data)"),
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
           bundled="examples/models/demo-splice-athaliana"),
    ]
)
