"""Open scan outputs in IGV (headless, batch mode) and take a snapshot.

Skipped when ``igv`` or ``xvfb-run`` is missing (Debian: ``apt-get install igv xvfb``).
IGV runs with its own ``--igvDirectory`` whose prefs make the local FASTA the default
genome, so no genome is fetched; network errors IGV logs about its own servers are
ignored, any WARN/SEVERE line about our files fails the test.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from toy import make_toy_model

from genaannot.pipeline.scan import scan_genome


@pytest.mark.skipif(shutil.which("igv") is None or shutil.which("xvfb-run") is None,
                    reason="needs the igv and xvfb-run binaries on PATH "
                           f"(missing: {', '.join(n for n in ('igv', 'xvfb-run') if shutil.which(n) is None)}); "
                           "Debian/Ubuntu: apt-get install igv xvfb")
def test_igv_loads_tracks_and_calls(tmp_path):
    rng = np.random.default_rng(0)
    fa = tmp_path / "g.fa"
    fa.write_text(">c1\n" + "".join(rng.choice(list("ACGT"), size=3000)) + "\n>c2\n" + "N" * 500 + "ACGT" * 100 + "\n")
    res = scan_genome(fa, model=make_toy_model("token"), task="splice", output=tmp_path / "t.bw", quiet=True)
    igvdir = tmp_path / "igvdir"
    igvdir.mkdir()
    (igvdir / "prefs.properties").write_text(
        f"DEFAULT_GENOME_KEY={fa}\nCHECK_FOR_UPDATES=false\nGENOME_SERVER_URL=\nDATA_SERVER_URL=\n"
    )
    loads = "".join(f"load {p}\n" for p in [*res.tracks, res.calls])
    batch = tmp_path / "batch.txt"
    batch.write_text(f"new\ngenome {fa}\n{loads}goto c1:1-500\nsnapshotDirectory {tmp_path}\nsnapshot shot.png\n"
                     "goto c2:400-700\nsnapshot gap.png\nexit\n")
    proc = subprocess.run(["xvfb-run", "-a", "igv", "--igvDirectory", str(igvdir), "-b", str(batch)],
                          capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    ours = [p.name for p in [*res.tracks, res.calls, fa]]
    bad = [line for line in log.splitlines()
           if ("SEVERE" in line or "WARN" in line) and any(name in line for name in ours)]
    assert not bad, "\n".join(bad)
    assert "Loading resource:  " + str(res.tracks[0]) in log or str(res.tracks[0]) in log
    for shot in ("shot.png", "gap.png"):
        png = tmp_path / shot
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
