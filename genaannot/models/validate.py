"""Checks of a checkpoint's ``config.json`` against its weights, before any large allocation.

A network is built from ``config.json``; the weights only fit afterwards. A hostile or
mismatched config (``num_hidden_layers: 1000000``, ``hidden_size: "768"``, a list instead of
an object) would make the build allocate gigabytes or raise deep inside torch. Every family
loader therefore, after reading the weights and before building anything:

1. checks the types of the config fields it uses (:func:`require_object`, :func:`check_sizes`,
   :func:`check_types`, :func:`check_labels`): whole numbers >= 1 for sizes, an object for ``id2label``;
2. compares the layer counts the config asks for with the layers stored in the weights
   (:func:`check_count`): a network with a million layers is never built;
3. builds the network on PyTorch's ``meta`` device (shapes only, no memory) and checks that
   every stored tensor fits it (:func:`check_on_meta`, the same check and message as
   :func:`~genaannot.models.weights.load_strict`); only then is the real network built.

No file is opened here; callers pass the parsed config and the tensors read by
:mod:`genaannot.io.weights`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .base import ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["require_object", "check_sizes", "check_types", "check_labels", "count_indexed", "check_count", "check_on_meta",
           "MAX_LABELS"]

#: a ``num_labels`` above this is refused: label names are made up front (``LABEL_0`` ...),
#: so a huge count would fill the memory before the weights could contradict it
MAX_LABELS = 1 << 16


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", float: "a fraction",
            type(None): "null"}.get(type(value), type(value).__name__)


def require_object(value: Any, *, source: str) -> dict[str, Any]:
    """``value`` when it is a JSON object (dict), else a :class:`ModelError` naming ``source``."""
    if not isinstance(value, dict):
        raise ModelError(f"{source}: expected a JSON object {{...}}, found {_kind(value)}; "
                         "the file is damaged or not a model configuration")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_sizes(config: Mapping[str, Any], keys: Iterable[str], *, source: str, minimum: int = 1) -> None:
    """Each of ``keys`` present (and not null) in ``config`` is a whole number >= ``minimum``.

    Raises
    ------
    ModelError
        Naming ``source``, the key and the value found.
    """
    for key in keys:
        value = config.get(key)
        if value is None:
            continue
        if not _is_int(value) or value < minimum:
            shown = repr(value) if not isinstance(value, (dict, list)) else _kind(value)
            raise ModelError(f"{source}: {key} must be a whole number >= {minimum}, not {shown}; "
                             "fix config.json or use the one that came with these weights")


def check_types(config: Mapping[str, Any], kinds: Mapping[str, str], *, source: str) -> None:
    """Each key of ``kinds`` present (and not null) in ``config`` has that kind: ``bool``,
    ``number`` (int or float, not true/false), ``str`` or ``list[str]``.

    A string ``"false"`` where true/false is expected would otherwise count as true.

    Raises
    ------
    ModelError
        Naming ``source``, the key and what was found.
    """
    tests: dict[str, Callable[[Any], bool]] = {
        "bool": lambda v: isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    }
    words = {"bool": "true or false", "number": "a number", "str": "a string", "list[str]": "a list of strings"}
    for key, kind in kinds.items():
        value = config.get(key)
        if value is not None and not tests[kind](value):
            raise ModelError(f"{source}: {key} must be {words[kind]}, not {_kind(value)}; "
                             "fix config.json or use the one that came with these weights")


def check_labels(config: Mapping[str, Any], *, source: str) -> None:
    """``id2label`` is an object keyed ``"0"`` ... ``"n-1"``; ``num_labels`` a whole number of
    at most :data:`MAX_LABELS` (whether the classifier has that many outputs is checked
    with the weights, on the meta device).

    Raises
    ------
    ModelError
        Naming ``source`` and the key.
    """
    id2label = config.get("id2label")
    if id2label is not None and not isinstance(id2label, dict):
        raise ModelError(f"{source}: id2label must be an object {{\"0\": \"name\", ...}}, not {_kind(id2label)}")
    if id2label:
        keys = []
        for k in id2label:
            try:
                keys.append(int(k))
            except ValueError:
                raise ModelError(f"{source}: id2label key {k!r} is not a label number (0, 1, ...)") from None
        if sorted(keys) != list(range(len(keys))):
            raise ModelError(f"{source}: id2label keys are not 0..{len(keys) - 1}: {sorted(keys)[:10]}")
        return
    check_sizes(config, ["num_labels"], source=source, minimum=0)
    n = config.get("num_labels")
    if n is not None and n > MAX_LABELS:
        raise ModelError(f"{source}: num_labels {n} is implausible (more than {MAX_LABELS}); "
                         "fix config.json or use the one that came with these weights")


def count_indexed(state: Iterable[str], prefix: str, *, suffix: str = "") -> int:
    """Distinct ``N`` in keys ``{prefix}N.{suffix}…`` (layers of a ``ModuleList`` stored in the weights)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\." + re.escape(suffix))
    return len({m.group(1) for k in state if (m := pattern.match(k))})


def check_count(config: Mapping[str, Any], key: str, state: Iterable[str], prefix: str, *, source: str,
                weights: str, expected: int | None = None, suffix: str = "") -> None:
    """``config[key]`` (or ``expected``, derived from it) equals the number of ``{prefix}N.``
    entries in the weights, so that a config asking for a million layers is refused before
    anything is built.

    Raises
    ------
    ModelError
        Naming both files, the key and the two counts.
    """
    want = config.get(key) if expected is None else expected
    have = count_indexed(state, prefix, suffix=suffix)
    if want != have:
        asked = config.get(key, want)
        needs = f" (so {want} × {prefix}N)" if asked != want else ""
        raise ModelError(f"{source}: {key} is {asked!r}{needs} but {weights} holds {have} ({prefix}0, 1, …); "
                         "config.json and the weights belong to different models")


def check_on_meta(build: Callable[[], nn.Module], state: Mapping[str, torch.Tensor], *, source: str,
                  config_source: str, ignore: Iterable[str] = (), shown_prefix: str = "",
                  hint: str | None = None) -> None:
    """Build the network on the ``meta`` device (shapes only, no memory) and check that the
    weights fit it exactly: the check and message of :func:`~genaannot.models.weights.load_strict`,
    before the real network is allocated.

    Parameters
    ----------
    build
        Builds the network (called inside ``torch.device("meta")``).
    state, source, ignore, shown_prefix, hint
        As for :func:`~genaannot.models.weights.load_strict`.
    config_source
        The ``config.json`` named when the network cannot be built from it.

    Raises
    ------
    ModelError
        The config cannot give a network, or the weights do not fit it.
    """
    import torch

    from .weights import check_strict

    try:
        with torch.device("meta"):
            module = build()
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of the build is a config problem here
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ModelError(f"{config_source}: cannot build the network from it ({type(err).__name__}: {first[:200]})") \
            from None
    check_strict(module, state, source=source, ignore=ignore, shown_prefix=shown_prefix, hint=hint)
