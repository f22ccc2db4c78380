"""genaannot.models.compat: the transformers version differences, on the installed release."""

from __future__ import annotations

from importlib import import_module

import torch

from genaannot.models import compat


def test_config_layout_follows_the_release():
    major = int(compat.transformers_version().split(".")[0])
    assert compat.config_layout("ModernBertConfig") == ("v5" if major >= 5 else "v4")


def test_skip_weight_init_is_found_on_this_release():
    # a release that moved it again would silently fall back to (slow) random init: notice it
    assert any(hasattr(_try(name), "no_init_weights") for name in compat._NO_INIT)


def test_skip_weight_init_skips_and_loading_overwrites():
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=16)
    torch.manual_seed(0)
    ref = BertModel(cfg)
    with compat.skip_weight_init():
        torch.manual_seed(0)
        fresh = BertModel(cfg)
    # no init functions ran inside: the LayerNorm weights were not filled with ones, or the
    # random draws differ; either way the state is not the seeded init...
    same = all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), fresh.state_dict().values()))
    assert not same
    # ...and a strict load makes the two identical
    fresh.load_state_dict(ref.state_dict(), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), fresh.state_dict().values()))


def _try(name: str):
    try:
        return import_module(name)
    except ImportError:
        return None
