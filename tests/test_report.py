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


# -- pages opened from disk (file://) and pages over the limit ----------------------------------------

_DRAWN = """<script>
(function check() {
  if (!window.genaannotReady && !window.genaannotError) { setTimeout(check, 100); return; }
  const out = {ready: !!window.genaannotReady, error: window.genaannotError || null, loci: {}};
  const b = window.genaannotBrowser;
  function look(tag) {
    out.loci[tag] = b.trackViews.filter(tv => tv.track.type === "wig" || tv.track.type === "annotation").map(tv => {
      const fc = tv.viewports[0].featureCache;
      const f = fc && fc.features ? fc.features : [];
      return {type: tv.track.type, n: f.length, max: f.reduce((m, x) => Math.max(m, x.value || 0), 0)};
    });
  }
  function done() { document.getElementById("drawn").textContent = JSON.stringify(out); }
  setTimeout(function () {
    look("start");
    if (!AWAY) { done(); return; }
    b.search(AWAY).then(function () { setTimeout(function () { look("away"); done(); }, 1000); })
     .catch(function (e) { out.error = String(e); done(); });
  }, 1000);
})();
</script><pre id="drawn"></pre>
"""


def drawn_from_disk(page: Path, tmp_path: Path, *, away: str = "") -> dict:
    """Open ``page`` as a file:// URL in headless Chromium (no flags that widen file access)
    and report, per igv.js track, how many features it holds and their largest value, at the
    opening locus and (``away``) after moving there."""
    import html as _html

    text = page.read_text()
    head, tail = text.rsplit("</body>", 1)
    checked = tmp_path / ("drawn-" + page.name)
    checked.write_text(head + _DRAWN.replace("AWAY", json.dumps(away)) + "</body>" + tail)
    dom = _chromium(["--dump-dom", checked.resolve().as_uri()], tmp_path / "u-file")
    m = re.search(r'<pre id="drawn">(.*?)</pre>', dom.stdout, re.S)
    assert m and m.group(1), dom.stderr[-2000:]
    return json.loads(_html.unescape(m.group(1)))


def test_report_regions_page_over_the_limit(scan_dir, tmp_path):
    out = tmp_path / "regions.html"
    r = CliRunner().invoke(main, ["report", str(scan_dir), "-o", str(out), "--embed-limit", "0.001", "--top", "2"])
    assert r.exit_code == 0, r.output
    assert "MiB" in r.output and "regions around the strongest calls" in r.output
    html = out.read_text()
    cfg = igv_config(html)
    assert all(t["url"].startswith("data:") for t in cfg["tracks"])
    import base64
    import gzip

    fasta = gzip.decompress(base64.b64decode(cfg["reference"]["fastaURL"].split(",", 1)[1])).decode()
    heads = re.findall(r"^>(\S+) @len=(\d+)$", fasta, re.M)
    assert heads and {c.split(":")[0] for c, _ in heads} == {"chr1", "chr2"}  # every sequence, with its length
    assert re.search(r"over the embedding limit of [\d.]+ MiB", html) and " MB" not in html.replace("MiB", "")


def test_calls_table_lists_label_and_strand(scan_dir):
    page = scan_dir / "report.html"
    if not page.exists():
        test_report_embedded(scan_dir)
    text = page.read_text()
    assert "<th>label</th><th>strand</th>" in text
    rows = re.findall(r"<tr><td>\d+</td><td>([^<]*)</td><td>([^<]*)</td><td><a ", text)
    assert rows and all(lab in ("acceptor", "donor") and strand in "+-" for lab, strand in rows), rows
    assert "MiB before encoding" in text


def test_summary_bigwig_keeps_regions_and_bins_maxima(tmp_path):
    import numpy as np
    import pyBigWig

    from genaannot.io.report import _summary_bigwig
    from genaannot.io.tracks import BigWigWriter

    sizes = {"a": 10_000, "b": 3_000}
    src = tmp_path / "src.bw"
    w = BigWigWriter(src, sizes=sizes)
    starts = np.arange(0, 10_000, 10)
    vals = np.random.default_rng(3).random(len(starts)).round(3)  # bins with different maxima
    w.add("a", starts, starts + 10, vals.astype(np.float32))
    w.add("b", np.array([5]), np.array([6]), np.array([0.5], dtype=np.float32))
    w.commit()
    dest = tmp_path / "dest.bw"
    _summary_bigwig(src, dest, sizes, {"a": [(2048, 4096)]}, 1024)
    bw = pyBigWig.open(str(dest))
    # full resolution inside the region
    assert bw.values("a", 2048, 4096) == pyBigWig.open(str(src)).values("a", 2048, 4096)
    assert bw.intervals("a", 2048, 4096)[0][:2] == (2048, 2050)  # runs cut at the region's edge
    # one run per bin outside it, holding the bin's maximum (the last bin is short)
    outside = bw.intervals("a", 4096, 10_000)
    assert [(s, e) for s, e, _ in outside] == [(4096 + k * 1024, min(10_000, 5120 + k * 1024)) for k in range(6)]
    for s, e, v in outside:
        assert v == pytest.approx(vals[s // 10 : e // 10].max(), abs=1e-6)
    assert bw.intervals("b") == ((0, 1024, 0.5),)


def test_region_plan_widens_to_bins_and_merges():
    from genaannot.io.bed import parse_calls
    from genaannot.io.report import region_plan

    calls = parse_calls(["c\t5000\t5010\tx\t0\t+\t1", "c\t6000\t6010\tx\t0\t+\t1", "c\t90000\t90010\tx\t0\t-\t1",
                         "d\t10\t20\tx\t0\t+\t1", "gone\t1\t2\tx\t0\t+\t1"])
    plan = region_plan(calls, {"c": 100_000, "d": 1000}, flank=1000, bin_bp=1024)
    assert plan == {"c": [(3072, 7168), (88064, 91136)], "d": [(0, 1000)]}


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium, chromium-browser or google-chrome on PATH")
@pytest.mark.parametrize("limit", ["32", "0.001"])
def test_report_draws_when_opened_from_disk(scan_dir, tmp_path, limit):
    """Double-click: the page as a file:// URL; every track holds data, for the embedded page and
    for the regions page (at the top call and on the other sequence)."""
    page = tmp_path / f"disk-{limit}.html"
    r = CliRunner().invoke(main, ["report", str(scan_dir), "-o", str(page), "--embed-limit", limit])
    assert r.exit_code == 0, r.output
    got = drawn_from_disk(page, tmp_path, away="chr2")
    assert got["ready"] and not got["error"], got
    for where in ("start", "away"):
        tracks = got["loci"][where]
        wigs = [t for t in tracks if t["type"] == "wig"]
        assert len(wigs) == 4 and all(t["n"] > 0 and t["max"] > 0 for t in wigs), (where, tracks)
    assert [t["n"] > 0 for t in got["loci"]["start"] if t["type"] == "annotation"] == [True]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium, chromium-browser or google-chrome on PATH")
def test_linked_page_says_it_needs_http(scan_dir, tmp_path):
    page = tmp_path / "linked.html"
    r = CliRunner().invoke(main, ["report", str(scan_dir), "-o", str(page), "--embed-limit", "0"])
    assert r.exit_code == 0 and "does not work opened from disk" in r.output, r.output
    assert "serve a folder holding this page" in page.read_text()


def test_summary_counts_show_dicts_as_text_not_python(scan_dir, tmp_path):
    """A dict-valued count (IUPAC letters seen) reads ``iupac (K 3, S 1, Y 1)``, escaped, not a repr."""
    import dataclasses

    from genaannot.io.hub import read_scan
    from genaannot.io.report import write_html_report

    run = read_scan(scan_dir)
    counts = {**run.manifest.get("counts", {}), "units": 1234, "iupac": {"K": 3, "S": 1, "<Y>": 1}}
    run = dataclasses.replace(run, manifest={**run.manifest, "counts": counts})
    page = write_html_report(run, tmp_path / "r.html").path.read_text()
    row = re.search(r"<tr><th>counts</th><td>(.*?)</td></tr>", page)
    assert row, "no counts row"
    assert "units 1,234" in row.group(1)
    assert "iupac (K 3, S 1, &lt;Y&gt; 1)" in row.group(1)
    assert "{" not in row.group(1) and "'" not in row.group(1) and "&#x27;" not in row.group(1)
