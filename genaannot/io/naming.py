"""How a run's output files are named from the ``-o`` path the user gave (one place).

``scan -o OUT.bw``
    One track: ``OUT.bw`` itself. Several: ``OUT.<label>.<plus|minus>.bw`` (``OUT``
    without its ``.bw``/``.bigwig``/``.bedGraph`` suffix; label names made file-safe, a
    repeated safe name numbered ``_2``, ``_3``…). Beside them ``OUT.calls.bed``,
    ``OUT.json`` (manifest), ``.bedGraph`` twins, the work directory ``OUT.parts/`` and,
    while a run writes them, its lock files ``.OUT.lock`` (``.OUT.<what>.lock``).
``ism`` / ``attribute -o OUT``
    ``OUT`` without a known suffix, plus each output's own suffix.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STRAND_NAMES", "track_stem", "track_names", "bedgraph_name", "calls_name", "manifest_name",
           "parts_dir", "lock_name", "strip_suffix", "TRACK_SUFFIXES"]

#: strand -> the word in file names
STRAND_NAMES = {"+": "plus", "-": "minus"}
#: suffixes of ``scan -o`` dropped to get the stem
TRACK_SUFFIXES = (".bw", ".bigwig", ".bigWig", ".bedGraph", ".bedgraph")


def strip_suffix(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    """``path`` without the first of ``suffixes`` it ends with (a bare suffix is kept)."""
    p = Path(path)
    for suf in suffixes:
        if p.name.endswith(suf) and len(p.name) > len(suf):
            return p.with_name(p.name[: -len(suf)])
    return p


def track_stem(output: str | Path) -> Path:
    """``OUT.bw`` → ``OUT``."""
    return strip_suffix(output, TRACK_SUFFIXES)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label) or "label"


def track_names(output: str | Path, labels: list[str], strands: list[str]) -> dict[tuple[str, str], Path]:
    """The bigWig of each ``(label, strand)`` of a scan written to ``output`` (module docstring)."""
    output = Path(output)
    pairs = [(lab, s) for lab in labels for s in strands]
    if len(pairs) == 1:
        return {pairs[0]: output}
    stem = track_stem(output)
    out: dict[tuple[str, str], Path] = {}
    seen: set[str] = set()
    for lab, s in pairs:
        base = _safe(lab)
        name = f"{stem.name}.{base}.{STRAND_NAMES[s]}.bw"
        k = 2
        while name in seen:
            name = f"{stem.name}.{base}_{k}.{STRAND_NAMES[s]}.bw"
            k += 1
        seen.add(name)
        out[(lab, s)] = stem.with_name(name)
    return out


def bedgraph_name(bigwig: str | Path) -> Path:
    """The ``.bedGraph`` twin of a track's bigWig."""
    return Path(bigwig).with_name(track_stem(bigwig).name + ".bedGraph")


def calls_name(output: str | Path) -> Path:
    stem = track_stem(output)
    return stem.with_name(stem.name + ".calls.bed")


def manifest_name(output: str | Path) -> Path:
    stem = track_stem(output)
    return stem.with_name(stem.name + ".json")


def parts_dir(output: str | Path) -> Path:
    """The work directory ``OUT.parts/`` of a scan written to ``output``."""
    stem = track_stem(output)
    return stem.with_name(stem.name + ".parts")


def lock_name(output: str | Path, what: str | None = None) -> Path:
    """The lock file ``.OUT.lock`` (``.OUT.<what>.lock``) of a scan written to ``output``
    (:mod:`genaannot.io.lock`): beside the outputs, hidden, outside ``OUT.parts/``."""
    stem = track_stem(output)
    return stem.with_name(f".{stem.name}{'.' + what if what else ''}.lock")
