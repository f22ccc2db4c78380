"""Bytes per Mb per track of real scan tracks, rewritten at several ``--track-digits``.

Give the bigWigs of a scan made with ``--track-digits full`` (unrounded float32): each is
read back whole and written again by genaannot's writer (:mod:`genaannot.io.bigwig`) with
values rounded to 2, 3, 4 decimals and unrounded, and, for comparison, by pyBigWig
(libBigWig, the writer genaannot used before). Values are taken as probabilities (a
sigmoid/softmax task), as ``scan`` rounds them. Printed per setting: bytes per Mb of covered
sequence per track (mean over the files), entries per Mb, the largest rounding error, and
the projection to 3,100 Mb (a human genome; it assumes the human model's values compress
like these).

    genaannot scan examples/athaliana/athaliana_1pct.fa.gz --task splice \\
        --model demo-splice-athaliana -o full/athaliana.bw --track-digits full
    .venv/bin/python bench/track_size.py full/athaliana.*.bw

``main(argv)`` returns ``{setting: {figure: value}}``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS = ("full", "4", "3", "2", "1", "pyBigWig")
HUMAN_MB = 3100


def _read(path: Path) -> tuple[dict[str, int], list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]:
    import pyBigWig

    bw = pyBigWig.open(str(path))
    sizes = dict(bw.chroms())
    data = []
    for c in sizes:
        iv = bw.intervals(c)
        if iv:
            a = np.array(iv, dtype=np.float64)
            data.append((c, a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2].astype(np.float32)))
    bw.close()
    return sizes, data


def _write(setting: str, out: Path, sizes: dict[str, int], data: list) -> tuple[int, int, float]:
    """Bytes, entries and the largest |rounded - full| of one file written at ``setting``."""
    from genaannot.io.bigwig import BigWigFile
    from genaannot.stitch import join_runs, round_values

    if setting == "pyBigWig":
        import pyBigWig

        bw = pyBigWig.open(str(out), "w")
        bw.addHeader(list(sizes.items()), maxZooms=10)
        n = 0
        for c, s, e, v in data:
            bw.addEntries([c] * len(s), s.tolist(), ends=e.tolist(), values=v.astype(float).tolist())
            n += len(s)
        bw.close()
        return out.stat().st_size, n, 0.0
    digits = None if setting == "full" else int(setting)
    w = BigWigFile(out, sizes=sizes, digits=digits, probability=True)
    n, err = 0, 0.0
    for c, s, e, v in data:
        w.add(c, s, e, v)
        r = round_values(v, digits=digits, probability=True)
        err = max(err, float(np.abs(r.astype(np.float64) - v).max()))
        n += len(join_runs(s, e, r)[0])
    w.close()
    return out.stat().st_size, n, err


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tracks", nargs="+", type=Path, help="bigWigs of a --track-digits full scan")
    args = ap.parse_args(argv)
    totals = {k: [0, 0, 0.0] for k in SETTINGS}
    covered = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(args.tracks):
            sizes, data = _read(path)
            covered += sum(int((e - s).sum()) for _, s, e, _ in data)
            for k in SETTINGS:
                b, n, err = _write(k, Path(tmp) / f"{i}.{k}.bw", sizes, data)
                totals[k][0] += b
                totals[k][1] += n
                totals[k][2] = max(totals[k][2], err)
    mb = covered / 1e6  # Mb of covered sequence, summed over the files
    out: dict[str, dict[str, Any]] = {}
    for k, (b, n, err) in totals.items():
        row = {"bytes_per_mb_track": b / mb, "entries_per_mb_track": n / mb, "max_abs_error": err,
               "human_gb_per_track": b / mb * HUMAN_MB / 1e9}
        out[k] = row
        for name, v in row.items():
            print(f"digits={k} {name}: {v:.4g}")
    return out


if __name__ == "__main__":
    main()
