"""The parts store of a scan: ``OUT.parts/``, the unit of resume, sharding and merging.

Coordinates are 0-based, half-open.

Layout::

    OUT.parts/settings.json           everything that decides the output bytes (a resumed
                                      run or a merged shard must have the same)
    OUT.parts/<unit key>.npz          one finished work unit (written atomically, fsynced:
                                      its presence is the done-marker)
    OUT.parts/shard-I-of-N.json       the manifest base of shard I (for `genaannot merge`)

A part holds, per strand ``s`` and read channel ``k``, the run-length encoded per-base
values of the unit as the track stores them (``{s}{k}_s``, ``{s}{k}_e``: int64 run
starts/ends on the chromosome, ``{s}{k}_v``: float32 values, rounded to ``track_digits``
when that is set; bases without data have no run), the runs at or above the label's call
threshold with their unrounded values (``{s}{k}_cs``, ``{s}{k}_ce``, ``{s}{k}_cv``: calls
are made from these, so rounding never moves a call) and ``meta``: a JSON string with the
unit's counts (``bp``, ``windows``, ``lowercase``, ``n_scanned``, ``iupac``). Parts are
npz files deflated at zlib level 1 (:func:`genaannot.io.atomic.save_npz_atomic`): level 6,
numpy's ``savez_compressed``, cost as much CPU as the whole rest of the host work.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tracks import OutputError, load_json, load_npz, save_npz_atomic, write_json_atomic

__all__ = ["PartsStore", "Part", "PartsError", "SettingsMismatch", "is_parts_dir"]

Runs = tuple[np.ndarray, np.ndarray, np.ndarray]


class PartsError(OutputError):
    """A parts directory that cannot be used (not one, unreadable part, cannot create)."""


class SettingsMismatch(PartsError):
    """The directory holds parts of a scan made with other settings."""


@dataclass
class Part:
    """One finished work unit: ``runs[(strand, k)] = (starts, ends, values)`` as the track
    stores them, ``calls[(strand, k)]``: the runs at or above the call threshold (unrounded),
    and the unit's counts."""

    runs: dict[tuple[str, int], Runs]
    meta: dict[str, Any]
    calls: dict[tuple[str, int], Runs] | None = None


def is_parts_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "settings.json").is_file()


class PartsStore:
    """Read and write one scan's parts directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"PartsStore({str(self.directory)!r})"

    # -- settings -------------------------------------------------------------------------
    def prepare(self, settings: dict[str, Any], *, keep: bool) -> None:
        """Start (or, with ``keep``, continue) a scan with ``settings``.

        An empty directory is a fresh start (a workflow manager may create it). A directory
        of another scan is cleared unless ``keep``; with ``keep`` its settings must equal
        ``settings`` (:class:`SettingsMismatch` names the keys that differ). Anything that is
        not a parts directory is refused, never deleted.
        """
        d = self.directory
        sfile = d / "settings.json"
        if d.is_dir() and not any(d.iterdir()):
            pass
        elif d.exists():
            if not sfile.is_file():
                raise PartsError(f"{d} exists but is not a genaannot parts directory (no settings.json); move it away")
            try:
                old = json.loads(sfile.read_text())
            except (OSError, json.JSONDecodeError):
                old = None
            now = json.loads(json.dumps(settings))  # tuples -> lists, as read back
            if keep and old == now:
                return
            if keep:
                diff = sorted(k for k in now if not isinstance(old, dict) or old.get(k) != now[k])
                raise SettingsMismatch(
                    f"{d} holds parts of a scan with different settings ({', '.join(diff)}); rerun "
                    "without --resume to start afresh, or with the same settings"
                )
            shutil.rmtree(d)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PartsError(f"{d}: cannot create the working directory ({err.strerror})") from None
        write_json_atomic(sfile, settings)

    def settings(self) -> dict[str, Any]:
        return load_json(self.directory / "settings.json")

    # -- parts ----------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def save(self, key: str, part: Part) -> None:
        arrays: dict[str, np.ndarray] = {}
        for (strand, k), (s, e, v) in part.runs.items():
            arrays[f"{strand}{k}_s"], arrays[f"{strand}{k}_e"], arrays[f"{strand}{k}_v"] = s, e, v
        for (strand, k), (s, e, v) in (part.calls or {}).items():
            arrays[f"{strand}{k}_cs"], arrays[f"{strand}{k}_ce"], arrays[f"{strand}{k}_cv"] = s, e, v
        arrays["meta"] = np.array(json.dumps(part.meta, sort_keys=True))
        save_npz_atomic(self.path(key), arrays)

    def load(self, key: str, *, tracks: list[tuple[str, int]]) -> Part:
        """The part of unit ``key``, with the runs of ``tracks`` ((strand, channel) pairs)."""
        return load_part(self.path(key), tracks=tracks)

    # -- shards ---------------------------------------------------------------------------
    def write_shard(self, shard: tuple[int, int], base: dict[str, Any]) -> Path:
        path = self.directory / f"shard-{shard[0]}-of-{shard[1]}.json"
        write_json_atomic(path, base)
        return path

    def shards(self) -> list[tuple[Path, dict[str, Any]]]:
        return [(f, load_json(f)) for f in sorted(self.directory.glob("shard-*-of-*.json"))]

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def load_part(path: str | Path, *, tracks: list[tuple[str, int]]) -> Part:
    """Read a part file; :class:`PartsError` naming it, and what to do, when it is damaged."""
    try:
        arr = load_npz(path)
        meta = json.loads(str(arr["meta"]))
        runs = {(s, k): (arr[f"{s}{k}_s"], arr[f"{s}{k}_e"], arr[f"{s}{k}_v"]) for s, k in tracks}
        calls = ({(s, k): (arr[f"{s}{k}_cs"], arr[f"{s}{k}_ce"], arr[f"{s}{k}_cv"]) for s, k in tracks}
                 if all(f"{s}{k}_cs" in arr for s, k in tracks) else None)
    except Exception as err:  # noqa: BLE001 - damaged part: say which and what to do
        raise PartsError(f"{path}: unreadable part ({err}); delete it and rerun with --resume") from None
    return Part(runs, meta, calls)
