"""The parts store of a scan: ``OUT.parts/``, the unit of resume, sharding and merging.

Coordinates are 0-based, half-open.

Layout::

    OUT.parts/settings.json           everything that decides the output bytes, the model's
                                      and genome's identity included (a resumed run or a
                                      merged shard must have the same)
    OUT.parts/<unit key>.npz          one finished work unit (written atomically, fsynced:
                                      its presence is the done-marker)
    OUT.parts/shard-I-of-N.json       the manifest base of shard I (for `genaannot merge`)

A part holds, per strand ``s`` and read channel ``k``, the run-length encoded per-base
values of the unit as the track stores them (rounded to ``track_digits`` when that is set;
bases without data have no run) and the runs at or above the label's call threshold with
their unrounded values (calls are made from these, so rounding never moves a call), and
``meta``: a JSON string with the unit's counts (``bp``, ``windows``, ``lowercase``,
``n_scanned``, ``iupac``).

Runs are stored as gaps and lengths (:data:`PARTS_FORMAT` 2): ``{s}{k}_g`` the bases
before each run (the first run's: its start on the chromosome; then from the previous
run's end), ``{s}{k}_n`` the run lengths, both uint32 (int64 should one not fit), and
``{s}{k}_v`` the float32 values; ``{s}{k}_cg``, ``{s}{k}_cn``, ``{s}{k}_cv`` the call runs.
Runs of a track are nearly always contiguous, so the gaps are mostly zeros and the lengths
small: deflated at zlib level 1 (:func:`genaannot.io.atomic.save_npz_atomic`) a part is
2–3× smaller than with int64 starts and ends, and saved in about half the CPU time
(docs/scale-log.md, "Part files"). Level 6, numpy's ``savez_compressed``, cost as much CPU as
the whole rest of the host work. The format is recorded in ``settings.json``
(``parts_format``): a resume over parts of another format is refused, naming it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tracks import OutputError, load_json, load_npz, save_npz_atomic, write_json_atomic

__all__ = ["PARTS_FORMAT", "PartsStore", "Part", "PartsError", "SettingsMismatch", "is_parts_dir",
           "settings_changes", "pack_runs", "unpack_runs"]

Runs = tuple[np.ndarray, np.ndarray, np.ndarray]

#: the layout of the arrays in a part file (module docstring), recorded in ``settings.json``
PARTS_FORMAT = 2


class PartsError(OutputError):
    """A parts directory that cannot be used (not one, unreadable part, cannot create)."""


class SettingsMismatch(PartsError):
    """The directory holds parts of a scan made with other settings (``changes``: what differs, in words)."""

    def __init__(self, message: str, changes: list[str] | None = None) -> None:
        super().__init__(message)
        self.changes = list(changes or [])


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def settings_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between two ``settings.json``, one phrase per difference a user can act
    on: ``model weights changed (sha256 1a2b3c4d… → 3c4d5e6f…)``, ``genome file changed
    (size/mtime of g.fa)``, ``batch_size 8 → 16``."""
    if not isinstance(old, dict):
        return ["settings.json unreadable"]
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key not in old:  # written by a genaannot that did not record it
            out.append(f"{key} not recorded (parts of genaannot {old.get('genaannot', '?')})")
        elif key not in new:
            out.append(f"{key} recorded but no longer a setting")
        elif key == "model" and isinstance(a, dict) and isinstance(b, dict):
            if a.get("sha256") != b.get("sha256"):
                out.append(f"model weights changed (sha256 {str(a.get('sha256'))[:8]}… → {str(b.get('sha256'))[:8]}…)")
            out += [f"model {k} {_short(a.get(k))} → {_short(b.get(k))}" for k in sorted(set(a) | set(b))
                    if k != "sha256" and a.get(k) != b.get(k)]
        elif key == "genome_file" and isinstance(a, dict) and isinstance(b, dict):
            name = Path(str(new.get("genome", "the FASTA"))).name
            if (a.get("size"), a.get("mtime_ns")) != (b.get("size"), b.get("mtime_ns")):
                out.append(f"genome file changed (size/mtime of {name})")
            if a.get("fai_sha256") != b.get("fai_sha256"):
                out.append(f"genome index changed (sequence names, lengths or offsets in {name}.fai)")
        elif key == "units":
            out.append(f"work units differ ({len(a or [])} → {len(b or [])} units)")
        else:
            out.append(f"{key} {_short(a)} → {_short(b)}")
    return out


@dataclass
class Part:
    """One finished work unit: ``runs[(strand, k)] = (starts, ends, values)`` as the track
    stores them, ``calls[(strand, k)]``: the runs at or above the call threshold (unrounded),
    and the unit's counts.

    With ``packed`` the runs and calls are held as :func:`pack_runs` gives them (gaps and
    lengths, 12 bytes a run instead of 20): how a part travels from the worker that saved it
    and waits for the assembler. Read them through :meth:`track` and :meth:`call_runs`.
    """

    runs: dict[tuple[str, int], Runs]
    meta: dict[str, Any]
    calls: dict[tuple[str, int], Runs] | None = None
    packed: bool = False

    def packed_form(self) -> Part:
        """This part with its runs and calls packed (itself if they are)."""
        if self.packed:
            return self
        calls = None if self.calls is None else {key: pack_runs(*r) for key, r in self.calls.items()}
        return Part({key: pack_runs(*r) for key, r in self.runs.items()}, self.meta, calls, packed=True)

    def track(self, key: tuple[str, int]) -> Runs:
        """``(starts, ends, values)`` of track ``key`` = ``(strand, channel)``: int64, int64, float32 ``[n]``."""
        return unpack_runs(*self.runs[key]) if self.packed else self.runs[key]

    def call_runs(self, key: tuple[str, int]) -> Runs | None:
        """The call runs of ``key``, as :meth:`track` (None: a part without them, an older layout)."""
        if self.calls is None:
            return None
        return unpack_runs(*self.calls[key]) if self.packed else self.calls[key]


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
    def prepare(self, settings: dict[str, Any], *, keep: bool) -> int:
        """Start (or, with ``keep``, continue) a scan with ``settings``.

        An empty directory is a fresh start (a workflow manager may create it). A directory
        of another scan is cleared unless ``keep``; with ``keep`` its settings must equal
        ``settings`` (:class:`SettingsMismatch` names the keys that differ). Anything that is
        not a parts directory is refused, never deleted. Callers hold the output's lock
        (:mod:`genaannot.io.lock`), so no other run clears or fills the directory meanwhile.

        Returns
        -------
        int
            The finished parts cleared (0 when kept or there were none), for the caller to
            say so: they were an earlier run's work.
        """
        d = self.directory
        sfile = d / "settings.json"
        cleared = 0
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
                return 0
            if keep:
                changes = settings_changes(old, now)
                raise SettingsMismatch(
                    f"{d} holds parts of a scan with different settings ({'; '.join(changes)}); rerun "
                    "without --resume to start afresh, or with the same settings", changes
                )
            cleared = sum(1 for _ in d.glob("*.npz"))
            shutil.rmtree(d)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PartsError(f"{d}: cannot create the working directory ({err.strerror})") from None
        write_json_atomic(sfile, settings)
        return cleared

    def settings(self) -> dict[str, Any]:
        return load_json(self.directory / "settings.json")

    # -- parts ----------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def save(self, key: str, part: Part) -> None:
        part = part.packed_form()
        arrays: dict[str, np.ndarray] = {}
        for (strand, k), runs in part.runs.items():
            arrays[f"{strand}{k}_g"], arrays[f"{strand}{k}_n"], arrays[f"{strand}{k}_v"] = runs
        for (strand, k), runs in (part.calls or {}).items():
            arrays[f"{strand}{k}_cg"], arrays[f"{strand}{k}_cn"], arrays[f"{strand}{k}_cv"] = runs
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


def _narrow(x: np.ndarray) -> np.ndarray:
    """``x`` (non-negative int64) as uint32 when every value fits, else unchanged."""
    return x.astype(np.uint32) if not len(x) or int(x.max()) < 2**32 else x


def pack_runs(starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> Runs:
    """Sorted, disjoint runs as a part file stores them: ``(gaps, lengths, values)``.

    Parameters
    ----------
    starts, ends : int [n]
        0-based half-open runs, ascending, not overlapping.
    values : float32 [n]

    Returns
    -------
    gaps, lengths : uint32 [n] (int64 where a value does not fit)
        ``gaps[0] = starts[0]``, ``gaps[i] = starts[i] - ends[i - 1]``; ``lengths = ends - starts``.
    values : float32 [n]
    """
    s, e = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    gaps = np.empty_like(s)
    gaps[:1] = s[:1]
    np.subtract(s[1:], e[:-1], out=gaps[1:])
    return _narrow(gaps), _narrow(e - s), np.asarray(values, dtype=np.float32)


def unpack_runs(gaps: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> Runs:
    """:func:`pack_runs` undone: int64 ``starts``, ``ends`` and float32 ``values`` ``[n]``."""
    n = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(np.asarray(gaps, dtype=np.int64) + n)
    return ends - n, ends, values


def load_part(path: str | Path, *, tracks: list[tuple[str, int]]) -> Part:
    """Read a part file; :class:`PartsError` naming it, and what to do, when it is damaged."""
    try:
        arr = load_npz(path)
        meta = json.loads(str(arr["meta"]))
        runs = {(s, k): unpack_runs(arr[f"{s}{k}_g"], arr[f"{s}{k}_n"], arr[f"{s}{k}_v"]) for s, k in tracks}
        calls = ({(s, k): unpack_runs(arr[f"{s}{k}_cg"], arr[f"{s}{k}_cn"], arr[f"{s}{k}_cv"]) for s, k in tracks}
                 if all(f"{s}{k}_cg" in arr for s, k in tracks) else None)
    except Exception as err:  # noqa: BLE001 - damaged part: say which and what to do
        raise PartsError(f"{path}: unreadable part ({err}); delete it and rerun with --resume") from None
    return Part(runs, meta, calls)
