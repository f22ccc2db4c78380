"""Issue 20, markup/URLs/paths: labels, manifests, options and file names from someone else.

A checkpoint's ``id2label`` carries markup; the report and the hub's description.html are opened
in headless Chromium and nothing may run (each payload would set ``data-pwned`` on the body),
while igv.js still draws every track. Manifest paths must stay in the scan directory, hub
options must stay on one line and inside ``-o``, and ``#``/``?``/``%``/space in file names must
survive as URLs.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from test_report import CHROMIUM, _chromium, _Quiet, igv_config
from tinymodels import make_gena_dir, random_dna

from genaannot.calls import Call, format_call
from genaannot.cli import main
from genaannot.hub import HubOptions, HubTextError, check_genome_name, hub_txt
from genaannot.io.hub import HubError, read_scan
from genaannot.io.report import script_json

IMG = '<img src=x onerror="document.body.dataset.pwned=1">'
SCRIPT = "</script><script>document.body.dataset.pwned=2</script>"
ATTR = "\"onmouseover=document.body.dataset.pwned=3 x='"
LABELS = [IMG, SCRIPT, ATTR]
#: the scan's -o: URL-special characters in every file name it writes
STEM = "run #1 %41?"

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: apt-get install chromium")


def _model(d: Path, labels: list[str]) -> Path:
    model = make_gena_dir(d / "model", head="token", num_labels=len(labels), max_positions=66,
                          problem_type="multi_label_classification")
    cfg = json.loads((model / "config.json").read_text())
    cfg["id2label"] = {str(i): lab for i, lab in enumerate(labels)}
    cfg["label2id"] = {lab: i for i, lab in enumerate(labels)}
    (model / "config.json").write_text(json.dumps(cfg))
    return model


def _scan(d: Path, labels: list[str]):
    fa = d / "genome.fa"
    fa.write_text(">chr1\n" + random_dna(2400, seed=21) + "\n")
    out = d / "scan"
    out.mkdir()
    r = CliRunner().invoke(main, ["scan", str(fa), "--task", "generic", "--model", str(_model(d, labels)),
                                  "-o", str(out / f"{STEM}.bw"), "--threshold", "0.3", "-q", "--workers", "0"])
    return r, out


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory):
    r, out = _scan(tmp_path_factory.mktemp("hostile"), LABELS)
    assert r.exit_code == 0, r.output
    return out


def _one_line_error(r, code: int, *needles: str) -> None:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    err = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(err) == 1, r.output
    for n in needles:
        assert n in err[0], err[0]


# -- the page and description.html in a real browser ------------------------------------------------

_CHECK = """<script>
(function check() {
  if (!window.genaannotReady && !window.genaannotError) { setTimeout(check, 100); return; }
  // igv.js draws inside a shadow root: look into every root
  const roots = [document];
  for (let i = 0; i < roots.length; i++) {
    roots[i].querySelectorAll("*").forEach(e => { if (e.shadowRoot) roots.push(e.shadowRoot); });
  }
  const all = sel => roots.flatMap(r => Array.from(r.querySelectorAll(sel)));
  const out = {roots: roots.length, handlers: all("[onerror],[onmouseover]").length,
               names: all(".igv-track-label").map(e => e.textContent)};
  // what igv.js would show for a click on a call named by a hostile label
  const b = window.genaannotBrowser;
  const box = document.createElement("div");
  box.innerHTML = b.fireEvent("trackclick", [b.findTracks(t => t.type === "annotation")[0],
                                             [{name: "name", value: LABELS[0]}, {name: LABELS[2], value: 1}], 0, []]);
  document.body.appendChild(box);
  out.popup = box.textContent;
  setTimeout(function () {
    document.getElementById("check").textContent = JSON.stringify(out);
  }, 300);
})();
</script><pre id="check"></pre>
"""


def _checked_page(page: Path) -> Path:
    """A copy of ``page`` with a script that reports, once igv.js is ready, what the DOM holds."""
    text = page.read_text()
    check = _CHECK.replace("LABELS", json.dumps(LABELS).replace("<", "\\u003c"))
    out = page.with_name("checked-" + page.name)
    head, tail = text.rsplit("</body>", 1)  # the last one: igv.min.js holds the string too
    out.write_text(head + check + "</body>" + tail)
    return out


def _served_dom(root: Path, page: Path, tmp_path: Path) -> tuple[str, list]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Quiet.log.clear()
    url = f"http://127.0.0.1:{server.server_address[1]}/" + "/".join(
        re.sub(r"[^A-Za-z0-9._/-]", lambda m: f"%{ord(m.group()):02X}", p) for p in page.relative_to(root).parts)
    try:
        dom = _chromium(["--dump-dom", url], tmp_path / "u")
    finally:
        server.shutdown()
        server.server_close()
    return dom.stdout, list(_Quiet.log)


@needs_chromium
@pytest.mark.parametrize("embed", ["32", "0"])
def test_report_with_hostile_labels_runs_nothing_and_draws(scan_dir, tmp_path, embed):
    page = scan_dir.parent / f"report-{embed}.html"
    r = CliRunner().invoke(main, ["report", str(scan_dir), "-o", str(page), "--embed-limit", embed])
    assert r.exit_code == 0, r.output
    text = page.read_text()
    # the config sits in a script element: no literal < > & in it at all
    config = re.search(r"const config = (\{.*?\});\n", text).group(1)
    assert not set("<>&") & set(config)
    cfg = igv_config(text)
    if embed == "0":  # linked: URLs percent-encoded, and they lead to the files
        urls = [t["url"] for t in cfg["tracks"]]
        assert all("#" not in u and "?" not in u and " " not in u for u in urls), urls
        assert all((page.parent / unquote(u)).is_file() for u in urls), urls
    dom, log = _served_dom(scan_dir.parent, _checked_page(page), tmp_path)
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-igv="ready"' in body and "pwned" not in body, body
    check = json.loads(html.unescape(re.search(r'<pre id="check">(.*?)</pre>', dom, re.S).group(1)))
    assert check["handlers"] == 0
    # every label's tracks drawn, their names shown as the text they are
    for lab in LABELS:
        assert any(lab in n for n in check["names"]), check["names"]
    assert IMG in check["popup"] and ATTR in check["popup"]
    assert not [p for p, c in log if c >= 400], log
    if embed == "0":
        assert sum(".bw" in p for p, _ in log) >= len(LABELS)  # tracks with '#' in their names came over HTTP


@needs_chromium
def test_hub_description_html_shows_labels_as_text(scan_dir, tmp_path):
    hub = tmp_path / "hub"
    r = CliRunner().invoke(main, ["hub", str(scan_dir), "-o", str(hub)])
    assert r.exit_code == 0, r.output
    dom = _chromium(["--dump-dom", (hub / "description.html").as_uri()], tmp_path / "u").stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert "pwned" not in body and "<img" not in dom and "<script" not in dom, dom
    text = html.unescape(re.sub(r"<[^>]+>", "", dom))
    assert all(lab in text for lab in LABELS), text


def test_trackdb_labels_plain_and_urls_encoded(scan_dir, tmp_path):
    hub = tmp_path / "hub"
    r = CliRunner().invoke(main, ["hub", str(scan_dir), "-o", str(hub)])
    assert r.exit_code == 0, r.output
    gdir = hub / "genome"
    tdb = (gdir / "trackDb.txt").read_text()
    assert not set("<>\"'") & set(tdb)
    urls = re.findall(r"^\s*bigDataUrl (\S+)$", tdb, re.M)
    assert len(urls) >= len(LABELS) and all("#" not in u and "?" not in u for u in urls), urls
    assert all((gdir / unquote(u)).is_file() for u in urls)


# -- manifests that point elsewhere -------------------------------------------------------------------


@pytest.mark.parametrize("key,value", [
    ("bigwig", "../../../etc/passwd"),
    ("bigwig", "/etc/passwd"),
    ("calls", "../../../etc/passwd"),
])
@pytest.mark.parametrize("command", ["report", "hub"])
def test_manifest_paths_outside_the_scan_directory_are_refused(scan_dir, tmp_path, key, value, command):
    d = tmp_path / "scan"
    shutil.copytree(scan_dir, d)
    mpath = d / f"{STEM}.json"
    m = json.loads(mpath.read_text())
    if key == "bigwig":
        m["files"][0]["bigwig"] = value
        where = "files[0].bigwig"
    else:
        m["calls"]["path"] = value
        where = "calls.path"
    mpath.write_text(json.dumps(m))
    args = ["report", str(d), "-o", str(tmp_path / "r.html")] if command == "report" else \
        ["hub", str(d), "-o", str(tmp_path / "hub")]
    r = CliRunner().invoke(main, args)
    _one_line_error(r, 1, str(mpath), where, "outside the scan directory")
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "hub").exists()


def test_manifest_label_with_a_newline_is_refused(scan_dir, tmp_path):
    d = tmp_path / "scan"
    shutil.copytree(scan_dir, d)
    mpath = d / f"{STEM}.json"
    m = json.loads(mpath.read_text())
    m["files"][1]["label"] = "x\ntrack name=evil"
    mpath.write_text(json.dumps(m))
    with pytest.raises(HubError, match=r"files\[1\]\.label"):
        read_scan(d)
    r = CliRunner().invoke(main, ["hub", str(d), "-o", str(tmp_path / "hub")])
    _one_line_error(r, 1, "files[1].label", "control characters")


# -- labels with control characters from a checkpoint -------------------------------------------------


def test_checkpoint_label_with_a_newline_is_refused_at_scan(tmp_path):
    r, out = _scan(tmp_path, ["ok", "a\ntrack name=evil\tbigDataUrl http://x"])
    _one_line_error(r, 1, "output label 1", "config.json", "id2label")
    assert not list(out.glob("*.calls.bed"))


def test_bed_writer_never_writes_a_tab_or_newline_in_a_name():
    line = format_call(Call("chr1", 0, 5, "a\ntrack\tx\u2028y", "+", 0.9, 2))
    assert "\n" not in line and "\u2028" not in line
    assert line.split("\t")[3] == "a_track_x_y" and len(line.split("\t")) == 10


# -- options written into hub files ----------------------------------------------------------------------


@pytest.mark.parametrize("args,needle", [
    (["--genome-name", "../../x"], "--genome-name"),
    (["--genome-name", "a/b"], "--genome-name"),
    (["--genome-name", ".."], "--genome-name"),
    (["--ucsc-db", "hg38/../../x"], "--ucsc-db"),
    (["--email", "me@example.org\nhub evil"], "--email"),
    (["--hub-name", "h\rx"], "--hub-name"),
])
def test_hub_options_that_would_escape_or_inject_are_usage_errors(scan_dir, tmp_path, args, needle):
    out = tmp_path / "o" / "hub"
    r = CliRunner().invoke(main, ["hub", str(scan_dir), "-o", str(out), *args])
    _one_line_error(r, 2, needle)
    assert not (tmp_path / "o").exists() and not (tmp_path / "x").exists()


def test_library_refuses_the_same(scan_dir, tmp_path):
    from genaannot.pipeline.browser import write_scan_hub

    with pytest.raises(HubError, match="not a UCSC assembly name"):
        write_scan_hub(scan_dir, outdir=tmp_path / "hub", genome_name="../x")
    with pytest.raises(HubError, match="--email"):
        write_scan_hub(scan_dir, outdir=tmp_path / "hub", email="a\nb")
    assert not (tmp_path / "x").exists()
    with pytest.raises(HubTextError, match="hub.txt longLabel"):
        hub_txt(HubOptions(hub_name="h", genome_name="g", long_label="x\nuseOneFile on"))
    assert check_genome_name("TAIR10.1_x-y") == "TAIR10.1_x-y"


def test_script_json_cannot_close_the_script_element():
    value = {"a": "</script><!--<script>&\u2028\u2029"}
    text = script_json(value)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == value
