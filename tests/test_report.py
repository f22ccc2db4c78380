"""`genaannot report`: the HTML page parses, and igv.js really draws it in headless Chromium."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_hub import make_scan

from genaannot.cli import main

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory):
    return make_scan(tmp_path_factory.mktemp("report"))


def igv_config(html: str) -> dict:
    m = re.search(r"const config = (\{.*?\});\n", html)
    assert m, "no igv config in page"
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_report_embedded(scan_dir):
    out = scan_dir / "report.html"
    r = CliRunner().invoke(main, ["report", str(scan_dir), "-o", str(out), "--top", "5"])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert "igv.createBrowser" in html and "MIT License" in html and "Strongest calls" in html
    cfg = igv_config(html)
    assert cfg["reference"]["fastaURL"].startswith("data:application/gzip;base64,")
    assert len(cfg["tracks"]) == 5 and all(t["url"].startswith("data:") for t in cfg["tracks"])
    assert [t["format"] for t in cfg["tracks"]] == ["bigwig"] * 4 + ["narrowpeak"]
    assert cfg["loadDefaultGenomes"] is False
    assert len(re.findall(r'data-locus="', html)) == 5
    # nothing is fetched from elsewhere: no http(s) URLs in the config
    assert "http" not in json.dumps(cfg)


def test_report_linked(scan_dir):
    out = scan_dir / "pages" / "linked.html"
    out.parent.mkdir(exist_ok=True)
    r = CliRunner().invoke(main, ["report", str(scan_dir / "splice.json"), "-o", str(out), "--embed-limit", "0"])
    assert r.exit_code == 0, r.output
    cfg = igv_config(out.read_text())
    urls = [cfg["reference"]["fastaURL"], cfg["reference"]["indexURL"]] + [t["url"] for t in cfg["tracks"]]
    for u in urls:
        assert not u.startswith(("data:", "/", "http")), u
        assert (out.parent / u).is_file(), u


class _Quiet(SimpleHTTPRequestHandler):
    log: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        _Quiet.log.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, *args):
        pass


def _chromium(args: list[str], user_dir: Path) -> subprocess.CompletedProcess:
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={user_dir}", "--hide-scrollbars", "--virtual-time-budget=20000"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium, chromium-browser or google-chrome on PATH: "
                                             "apt-get install chromium (Debian) or install Google Chrome")
@pytest.mark.parametrize("page", ["report.html", "pages/linked.html"])
def test_report_renders_in_headless_chromium(scan_dir, tmp_path, page):
    if not (scan_dir / page).exists():
        test_report_embedded(scan_dir)
        test_report_linked(scan_dir)
    # serve the common parent of the page and the files (the linked page reaches ../genome.fa)
    root = scan_dir.parent
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Quiet.log.clear()
    url = f"http://127.0.0.1:{server.server_address[1]}/{scan_dir.name}/{page}"
    try:
        dom = _chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", url], tmp_path / "u1")
        shot = tmp_path / "report.png"
        _chromium(["--window-size=1280,1300", f"--screenshot={shot}", url], tmp_path / "u2")
    finally:
        server.shutdown()
        server.server_close()
    body = re.search(r"<body[^>]*>", dom.stdout)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    errors = [line for line in console if re.search(r"rror|fail|warn", line, re.I)]
    assert body and 'data-igv="ready"' in body.group(0), (body, console[-10:], dom.stderr[-2000:])
    assert not errors, "\n".join(errors)
    bad = [(p, c) for p, c in _Quiet.log if c >= 400]
    assert not bad, bad
    if page.startswith("pages"):
        assert any(p.endswith(".bw") for p, _ in _Quiet.log)  # tracks really came over HTTP
    # the screenshot shows a drawn browser: a PNG of real size with many distinct colours
    import matplotlib.image as mpimg
    import numpy as np

    assert shot.is_file() and shot.stat().st_size > 20_000
    img = mpimg.imread(shot)
    assert img.shape[0] >= 1000 and len(np.unique(img.reshape(-1, img.shape[-1])[::97], axis=0)) > 50


def test_report_embeds_bgzipped_fasta_as_plain_text(scan_dir, tmp_path):
    """A bgzipped genome is re-read and embedded as one gzip layer of plain FASTA text."""
    import base64
    import dataclasses
    import gzip

    import pysam

    from genaannot.io.hub import read_scan
    from genaannot.io.report import write_html_report

    plain = scan_dir.parent / "genome.fa"
    bgz = tmp_path / "genome.fa.gz"
    pysam.tabix_compress(str(plain), str(bgz))
    run = dataclasses.replace(read_scan(scan_dir), genome=bgz)
    res = write_html_report(run, tmp_path / "r.html")
    assert res.embedded
    uri = igv_config(res.path.read_text())["reference"]["fastaURL"]
    text = gzip.decompress(base64.b64decode(uri.split(",", 1)[1])).decode()
    seqs = {}
    for block in text.split(">")[1:]:
        name, _, body = block.partition("\n")
        seqs[name] = body.replace("\n", "")
    from test_hub import GENOME

    assert seqs == GENOME
