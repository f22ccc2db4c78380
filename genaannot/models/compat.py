"""The differences between the transformers releases genaannot supports, in one place.

genaannot is tested on the pinned set-up (``constraints.txt``: transformers 4.56) and on the
newest releases pip resolves (transformers 5.x). The families that build stock transformers
classes (BigBird, modernGENA) go through these helpers wherever the two differ, instead
of importing private names that moved between releases.

* :func:`skip_weight_init`: build a model without drawing random weights that the
  checkpoint overwrites anyway (a large model's random init costs seconds). transformers
  keeps the context manager in ``transformers.initialization`` (5.x) or
  ``transformers.modeling_utils`` (4.x); when neither exists the model is simply
  initialised (slower, same result: every tensor is then loaded strictly).
* :func:`config_layout`: which ``config.json`` layout the installed ModernBERT config class
  reads: ``"v4"`` (``global_rope_theta`` / ``local_rope_theta`` /
  ``global_attn_every_n_layers``) or ``"v5"`` (``rope_parameters`` / ``layer_types``).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from functools import cache
from importlib import import_module

__all__ = ["skip_weight_init", "config_layout", "transformers_version"]

#: where ``no_init_weights`` lives, newest release first
_NO_INIT = ("transformers.initialization", "transformers.modeling_utils")


def transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


@contextlib.contextmanager
def skip_weight_init() -> Iterator[None]:
    """Context in which transformers models are built without random initialisation.

    Use it only when every parameter is loaded afterwards (``load_strict`` checks that).
    """
    for name in _NO_INIT:
        try:
            ctx = import_module(name).no_init_weights
        except (ImportError, AttributeError):
            continue
        with ctx():
            yield
        return
    yield  # unknown release: initialise as usual (correct, just slower)


@cache
def config_layout(class_name: str = "ModernBertConfig") -> str:
    """``"v5"`` when the installed config class takes ``layer_types``/``rope_parameters``, else ``"v4"``."""
    import transformers

    params = inspect.signature(getattr(transformers, class_name).__init__).parameters
    return "v5" if "layer_types" in params and "rope_parameters" in params else "v4"
