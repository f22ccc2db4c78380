"""``genaannot report``: one HTML page with the run summary and an embedded igv.js browser.

The page carries igv.js itself (vendored from npm into ``genaannot/data/igv``, MIT licence,
its notice copied into the page) and, by default, its data:

* **embedded** (``data:`` URIs) when the reference and tracks together are at most
  ``embed_limit`` bytes: the FASTA gzipped, bigWigs and the calls BED as they are. The page
  then works on its own — opened from disk, mailed, or served by any web server;
* **linked** otherwise (or with ``embed_limit=0``): URLs relative to the page, so the page
  works when a folder holding the page and the files is served over HTTP (e.g.
  ``python -m http.server`` in a common parent; igv.js copes with servers that ignore
  ``Range`` requests, only slower). The FASTA then needs its ``.fai`` beside it.

igv.js opens on the strongest call; a table lists the ``top`` strongest calls, each a link
that moves the browser there. When igv.js has drawn, the page sets ``window.genaannotReady``
and ``<body data-igv="ready">`` (``data-igv="error"`` and ``window.genaannotError`` on
failure) so that tests and scripts can wait for it.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..calls import threshold_text
from ..hub import ScanRun, label_colour, strongest_calls
from .atomic import write_text_atomic
from .bed import read_calls

__all__ = ["ReportResult", "write_html_report", "report_html", "igv_version", "script_json", "DEFAULT_EMBED_LIMIT"]

#: largest total of embedded data (bytes) before files are linked instead
DEFAULT_EMBED_LIMIT = 32 * 1024 * 1024


def igv_version() -> str:
    return resources.files("genaannot").joinpath("data/igv/VERSION").read_text().strip()


def _igv_assets() -> tuple[str, str]:
    d = resources.files("genaannot").joinpath("data/igv")
    js = d.joinpath("igv.min.js").read_text(encoding="utf-8")
    return js.replace("</script", "<\\/script"), d.joinpath("LICENSE").read_text(encoding="utf-8")


@dataclass
class ReportResult:
    path: Path
    embedded: bool
    linked: list[str]
    n_calls_listed: int


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _fasta_text(path: Path) -> bytes:
    from .fasta import open_genome

    parts = []
    with open_genome(path) as g:
        for name, n in g.sizes.items():
            seq = g.fetch(name, 0, n)
            parts.append(f">{name}\n" + "\n".join(seq[i : i + 80] for i in range(0, len(seq), 80)) + "\n")
    return "".join(parts).encode("ascii")


def _rel_url(target: Path, page_dir: Path) -> str:
    """``target`` as a URL relative to the page, each path part percent-encoded (a ``#`` or
    ``?`` in a file name would otherwise end the path)."""
    return "/".join(quote(part, safe="") for part in Path(os.path.relpath(target, page_dir)).as_posix().split("/"))


#: characters that must not appear literally in JSON inside ``<script>``: ``</script>`` or
#: ``<!--`` would end or confuse the script element; U+2028/9 end lines in older JS parsers
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe to place between ``<script>`` and ``</script>``."""
    text = json.dumps(value)
    for ch, esc in _SCRIPT_ESCAPES.items():
        text = text.replace(ch, esc)
    return text


def report_html(
    *,
    title: str,
    summary: list[tuple[str, str]],
    calls: list[tuple[str, int, int, float]],
    igv_config: dict[str, Any],
    igv_js: str,
    igv_license: str,
    notes: list[str],
) -> str:
    """The page (pure). ``igv_config`` is passed to ``igv.createBrowser`` as JSON."""
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary)
    call_rows = "\n".join(
        f'<tr><td>{i + 1}</td><td><a href="#" data-locus="{html.escape(c)}:{s + 1}-{e}">{html.escape(c)}:'
        f"{s + 1:,}-{e:,}</a></td><td>{e - s:,}</td><td>{v:.4g}</td></tr>"
        for i, (c, s, e, v) in enumerate(calls)
    ) or '<tr><td colspan="4">no calls</td></tr>'
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    config = script_json(igv_config)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.2em 2em; color: #222; }}
h1 {{ font-size: 1.4em; margin-bottom: .2em; }}
table {{ border-collapse: collapse; font-size: .9em; }}
th, td {{ text-align: left; padding: 2px 10px 2px 0; vertical-align: top; }}
.grid {{ display: flex; gap: 3em; flex-wrap: wrap; }}
#igv {{ margin-top: 1em; border: 1px solid #ddd; min-height: 300px; }}
#status {{ color: #666; font-size: .85em; }}
footer {{ margin-top: 2em; font-size: .75em; color: #777; }}
footer pre {{ white-space: pre-wrap; }}
</style>
</head>
<body data-igv="loading">
<h1>{html.escape(title)}</h1>
<div class="grid">
<section><h2>Run</h2><table>
{rows}
</table></section>
<section><h2>Strongest calls</h2><table>
<tr><th>#</th><th>locus</th><th>bp</th><th>value</th></tr>
{call_rows}
</table></section>
</div>
<ul>{note_html}</ul>
<div id="status">loading igv.js…</div>
<div id="igv"></div>
<footer>igv.js {html.escape(igv_config.get("_igv_version", ""))} is embedded under its licence:
<pre>{html.escape(igv_license)}</pre></footer>
<script>
{igv_js}
</script>
<script>
function genaannotEscape(s) {{
  return String(s).replace(/[&<>"']/g, function (c) {{
    return {{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}}[c];
  }});
}}
(function () {{
  const config = {config};
  delete config._igv_version;
  const status = document.getElementById("status");
  igv.createBrowser(document.getElementById("igv"), config).then(function (browser) {{
    window.genaannotBrowser = browser;
    // igv.js builds its click pop-ups as HTML from feature fields (a call's name is a label
    // from the model's config): build them here from escaped text instead
    browser.on("trackclick", function (track, data) {{
      if (!data || !data.length) return false;
      return data.map(function (d) {{
        if (d === "<hr>") return "<hr>";
        if (d && d.name !== undefined) {{
          return "<div><span>" + genaannotEscape(d.name) + "</span>&nbsp;&nbsp;&nbsp;" + genaannotEscape(d.value) + "</div>";
        }}
        return "<div>" + genaannotEscape(d && d.html !== undefined ? d.html : d) + "</div>";
      }}).join("");
    }});
    document.querySelectorAll("a[data-locus]").forEach(function (a) {{
      a.addEventListener("click", function (ev) {{ ev.preventDefault(); browser.search(a.dataset.locus); }});
    }});
    status.textContent = "";
    window.genaannotReady = true;
    document.body.dataset.igv = "ready";
  }}).catch(function (err) {{
    window.genaannotError = String(err && err.message || err);
    document.body.dataset.igv = "error";
    status.textContent = "igv.js failed: " + window.genaannotError;
    console.error("genaannot report: igv.js failed: " + window.genaannotError);
  }});
}})();
</script>
</body>
</html>
"""


def _fmt_counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in counts.items())


def write_html_report(
    run: ScanRun,
    output: str | Path,
    *,
    top: int = 10,
    flank: int | None = None,
    embed_limit: int = DEFAULT_EMBED_LIMIT,
) -> ReportResult:
    """Write the HTML report of ``run`` to ``output`` (see module docstring).

    Raises
    ------
    genaannot.io.bed.BedError
        The calls file has a line that is not BED.
    """
    output = Path(output).resolve()
    page_dir = output.parent
    best = strongest_calls(read_calls(run.calls), top) if run.calls else []
    chrom0 = next(iter(run.sizes))
    if best:
        c, s, e, _ = best[0]
        pad = flank if flank is not None else max(500, 2 * (e - s))
        locus = f"{c}:{max(1, s + 1 - pad)}-{min(run.sizes[c], e + pad)}"
    else:
        locus = f"{chrom0}:1-{min(run.sizes[chrom0], 10_000)}"
    # embed everything when it is small enough, else link everything (one rule, easy to explain)
    fai = Path(str(run.genome) + ".fai")
    files = [run.genome, *(t.path for t in run.tracks), *([run.calls] if run.calls else [])]
    total = sum(p.stat().st_size for p in files)
    embed = total <= embed_limit
    linked: list[str] = []

    def url(p: Path, mime: str, *, gz: bool = False) -> str:
        if embed:
            data = p.read_bytes()
            return _data_uri(gzip.compress(data, mtime=0) if gz else data, "application/gzip" if gz else mime)
        linked.append(_rel_url(p, page_dir))
        return _rel_url(p, page_dir)

    if embed:
        # re-read through pysam so plain and bgzipped FASTA embed the same way (plain text, gzipped once)
        reference = {"id": run.genome.stem, "name": run.genome.name,
                     "fastaURL": _data_uri(gzip.compress(_fasta_text(run.genome), mtime=0), "application/gzip")}
    else:
        if not fai.is_file():
            raise FileNotFoundError(f"{fai}: the linked FASTA needs its index (samtools faidx)")
        reference = {"id": run.genome.stem, "name": run.genome.name, "fastaURL": url(run.genome, ""),
                     "indexURL": url(fai, "")}
        gzi = Path(str(run.genome) + ".gzi")
        if gzi.is_file():  # bgzipped FASTA
            reference["compressedIndexURL"] = url(gzi, "")
    prob = run.activation in ("sigmoid", "softmax")
    labels = list(dict.fromkeys(t.label for t in run.tracks))
    tracks: list[dict[str, Any]] = []
    for t in run.tracks:
        r, g, b = label_colour(labels.index(t.label), t.strand)
        tr: dict[str, Any] = {
            # igv.js sets track names with innerHTML: escape, as for any HTML text
            "name": html.escape(f"{run.task} {t.label} {t.strand}"),
            "type": "wig",
            "format": "bigwig",
            "url": url(t.path, "application/octet-stream"),
            "color": f"rgb({r},{g},{b})",
            "height": 50,
            "windowFunction": "max",
        }
        if prob:
            tr.update({"autoscale": False, "min": 0, "max": 1})
        else:
            tr["autoscale"] = True
        tracks.append(tr)
    if run.calls:
        tracks.append({
            "name": html.escape(f"{run.task} calls"),
            "type": "annotation",
            "format": "narrowpeak",
            "url": url(run.calls, "text/plain", gz=True) if embed else url(run.calls, "text/plain"),
            "displayMode": "EXPANDED",
            "color": "rgb(90,90,90)",
        })
    config = {
        "_igv_version": igv_version(),
        "reference": reference,
        "locus": locus,
        "tracks": tracks,
        # no fetches of igv.org's genome list: the page must work offline
        "loadDefaultGenomes": False,
    }
    m = run.manifest
    model = m.get("model", {})
    summary = [
        ("task", str(run.task)),
        ("model", f"{model.get('source')} ({model.get('family')}, {model.get('architecture')}, "
                  f"{model.get('n_params', 0):,} parameters)"),
        ("labels", ", ".join(run.labels)),
        ("strands", ", ".join(m.get("strands", []))),
        ("genome", f"{run.genome.name}: {len(run.sizes)} sequences, {sum(run.sizes.values()):,} bp"),
        ("values", f"{run.activation}; {m.get('resolution', '')}"),
        ("windows", f"{m.get('window_tokens')} tokens, overlap {m.get('overlap')}, stride "
                    f"{m.get('stride_tokens')} tokens, {m.get('stitch')} stitching"),
        ("calls", f"{m.get('calls', {}).get('format', '')}, threshold {threshold_text(m.get('calls', {}))}"),
        ("counts", _fmt_counts(m.get("counts", {}))),
        ("time", f"{m.get('run_seconds')} s ({m.get('model_seconds')} s in the model)"),
        ("manifest", run.manifest_path.name),
        ("genaannot", str(m.get("genaannot", ""))),
    ]
    notes = []
    if embed:
        notes.append(f"Data embedded in this page ({total / 1e6:.1f} MB before encoding); it needs no other files.")
    else:
        notes.append(
            f"Data linked relative to this page ({total / 1e6:.1f} MB is over the embedding limit of "
            f"{embed_limit / 1e6:.0f} MB): serve a folder holding this page and {', '.join(linked)} over HTTP."
        )
    js, lic = _igv_assets()
    text = report_html(title=f"genaannot {run.task} scan: {run.name}", summary=summary, calls=best,
                       igv_config=config, igv_js=js, igv_license=lic, notes=notes)
    write_text_atomic(output, text)
    return ReportResult(output, embed, linked, len(best))
