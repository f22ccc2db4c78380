"""Throw every hostile input of ``tests/hostile_cases.py`` at the CLI and list what misbehaves.

    PYTHONPATH=. python scripts/fuzz_hostile.py [--only SUBSTRING] [--raw] [--keep DIR]

A case misbehaves when it ends in a traceback or an exception, an exit code other than 0/1/2,
``internal error`` (the CLI safety net caught a bug), an error that is not one line naming the
file or option, an exit 0 on hostile input (or with the output missing), or a changed input.
``--raw`` sets GENAANNOT_TRACEBACK=1, so the safety net re-raises: what the commands do on
their own. Exit status: 1 when any case misbehaves.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="run the cases whose id contains this")
    ap.add_argument("--raw", action="store_true", help="GENAANNOT_TRACEBACK=1: no safety net")
    ap.add_argument("--keep", default=None, help="work in this directory and keep it")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case's error line")
    a = ap.parse_args()
    if a.raw:
        os.environ["GENAANNOT_TRACEBACK"] = "1"
    import torch

    torch.set_num_threads(1)
    from hostile_cases import CASES, ROOT, build_base, prepare, run_case

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="genaannot-fuzz-"))
    t0 = time.perf_counter()
    base = build_base(work / "base") if not (work / "base" / "scan").is_dir() else work / "base"
    print(f"base inputs in {base} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    bad, ran, skipped = [], 0, 0
    for case in CASES:
        if a.only and a.only not in case.id:
            continue
        if case.root_skip and ROOT:
            skipped += 1
            continue
        d = work / "cases" / case.id
        if d.exists():
            import shutil

            shutil.rmtree(d)
        prepare(case, base, d)
        t = time.perf_counter()
        problems, r = run_case(case, d)
        ran += 1
        err = " | ".join(x for x in (r.stderr or "").splitlines() if x.strip())[:300]
        line = f"{case.id:<40} exit {r.exit_code} {time.perf_counter() - t:5.1f}s"
        if problems:
            bad.append(case.id)
            print(f"FAIL {line}: {'; '.join(problems)}\n     {err}", flush=True)
        elif a.verbose:
            print(f"ok   {line}: {err}", flush=True)
    print(f"{ran} cases run ({skipped} skipped as root), {len(bad)} misbehaved, "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
