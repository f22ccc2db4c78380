"""``genaannot report``: one HTML page with the run summary and an embedded igv.js browser.

The page carries igv.js itself (vendored from npm into ``genaannot/data/igv``, MIT licence,
its notice copied into the page) and its data, so that it opens by double-click (``file://``,
where igv.js cannot fetch other files). Three ways, by the scan's size:

* **embedded** (``data:`` URIs) when the reference and tracks together are at most
  ``embed_limit`` bytes: the FASTA gzipped, bigWigs and the calls BED as they are;
* **regions** above the limit: still one self-contained page, holding the sequence and
  full-resolution track values around the ``top`` strongest calls (each call ± ``max(flank,
  10 kb)``, widened to whole bins) and, elsewhere, the maximum of each ``bin_bp`` bin (a
  bigWig written for the page; ``bin_bp`` is the smallest power of two ≥ 256 that keeps the
  page under the limit). The reference is a FASTA of slices (``>chr:start-end @len=N``, which
  igv.js places at their genome positions), so coordinates stay the genome's. The calls
  are all embedded when they fit a quarter of the limit, else the strongest that do;
* **linked** with ``embed_limit=0``: URLs relative to the page, for a folder served over
  HTTP (``python -m http.server`` in a common parent). Browsers do not let a ``file://``
  page read other files, so a linked page opened from disk shows an empty browser.

igv.js opens on the strongest call; a table lists the ``top`` strongest calls (label, strand,
locus, length, value), each a link that moves the browser there. When igv.js has drawn, the
page sets ``window.genaannotReady`` and ``<body data-igv="ready">`` (``data-igv="error"`` and
``window.genaannotError`` on failure) so that tests and scripts can wait for it.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..calls import threshold_text
from ..hub import ScanRun, label_colour, model_name, strongest_records
from .atomic import write_text_atomic
from .bed import BedCall, read_calls

__all__ = ["ReportResult", "write_html_report", "report_html", "igv_version", "script_json", "DEFAULT_EMBED_LIMIT",
           "MIB", "region_plan"]

#: bytes in a MiB (the unit of ``--embed-limit`` and of every size the report prints)
MIB = 1024 * 1024

#: largest total of embedded data (bytes) before the page holds regions and bin maxima instead
DEFAULT_EMBED_LIMIT = 32 * MIB

#: least bp kept at full resolution either side of each listed call in a *regions* page
REGION_FLANK = 10_000


def igv_version() -> str:
    return resources.files("genaannot").joinpath("data/igv/VERSION").read_text().strip()


def _igv_assets() -> tuple[str, str]:
    d = resources.files("genaannot").joinpath("data/igv")
    js = d.joinpath("igv.min.js").read_text(encoding="utf-8")
    return js.replace("</script", "<\\/script"), d.joinpath("LICENSE").read_text(encoding="utf-8")


@dataclass
class ReportResult:
    """What :func:`write_html_report` wrote.

    Attributes
    ----------
    mode : str
        ``"embedded"``, ``"regions"`` or ``"linked"`` (see the module docstring).
    embedded : bool
        The page needs no other file (``mode != "linked"``).
    size : int
        Bytes of the page.
    data_size : int
        Bytes of the scan's files (FASTA, bigWigs, calls), compared with the limit.
    bin_bp : int or None
        Bin of the summaries outside the regions (*regions* only).
    regions : list of (chrom, start, end)
        Full-resolution regions, 0-based half-open (*regions* only).
    """

    path: Path
    embedded: bool
    linked: list[str]
    n_calls_listed: int
    mode: str = "embedded"
    size: int = 0
    data_size: int = 0
    bin_bp: int | None = None
    regions: list[tuple[str, int, int]] = field(default_factory=list)


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
    calls: list[BedCall],
    igv_config: dict[str, Any],
    igv_js: str,
    igv_license: str,
    notes: list[str],
) -> str:
    """The page (pure). ``igv_config`` is passed to ``igv.createBrowser`` as JSON; ``calls`` are
    listed in the order given (label, strand, 1-based locus, length, value)."""
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary)
    call_rows = "\n".join(
        f"<tr><td>{i + 1}</td><td>{html.escape(c.name or '.')}</td><td>{html.escape(c.strand)}</td>"
        f'<td><a href="#" data-locus="{html.escape(c.chrom)}:{c.start + 1}-{c.end}">{html.escape(c.chrom)}:'
        f"{c.start + 1:,}-{c.end:,}</a></td><td>{c.end - c.start:,}</td><td>{c.value:.4g}</td></tr>"
        for i, c in enumerate(calls)
    ) or '<tr><td colspan="6">no calls</td></tr>'
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
<tr><th>#</th><th>label</th><th>strand</th><th>locus</th><th>bp</th><th>value</th></tr>
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


def _fmt_count(value: Any) -> str:
    """One count as text: ``1,234``; a dict (``iupac``: letter -> count) as ``(K 3, S 1)``,
    in brackets so that its commas do not read as the next count's."""
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {_fmt_count(v)}" for k, v in value.items()) + ")" if value else "none"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _fmt_counts(counts: dict[str, Any]) -> str:
    """The manifest's counts as one line of plain text (the caller HTML-escapes it)."""
    return ", ".join(f"{k} {_fmt_count(v)}" for k, v in counts.items())


def region_plan(
    calls: list[BedCall], sizes: dict[str, int], *, flank: int, bin_bp: int
) -> dict[str, list[tuple[int, int]]]:
    """Full-resolution regions of a *regions* page (pure).

    Each call ± ``flank``, widened outwards to multiples of ``bin_bp`` (clipped to the
    sequence), merged where they touch; by sequence in ``sizes`` order, sorted, 0-based
    half-open.
    """
    spans: dict[str, list[tuple[int, int]]] = {}
    for c in calls:
        if c.chrom not in sizes:
            continue
        s = max(0, c.start - flank) // bin_bp * bin_bp
        e = min(sizes[c.chrom], -(-(c.end + flank) // bin_bp) * bin_bp)
        spans.setdefault(c.chrom, []).append((s, e))
    out: dict[str, list[tuple[int, int]]] = {}
    for chrom in sizes:
        merged: list[tuple[int, int]] = []
        for s, e in sorted(spans.get(chrom, [])):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        if merged:
            out[chrom] = merged
    return out


def _slices_fasta(genome: Path, sizes: dict[str, int], regions: dict[str, list[tuple[int, int]]]) -> bytes:
    """FASTA of the regions as igv.js slices (``>chr:start-end @len=N``, 1-based inclusive).

    A sequence without a region gets its first base, so that igv.js still knows it (and its
    length) and draws its tracks' summaries there.
    """
    from .fasta import open_genome

    parts = []
    with open_genome(genome) as g:
        for name, n in sizes.items():
            for s, e in regions.get(name) or [(0, min(1, n))]:
                if e <= s:
                    continue
                seq = g.fetch(name, s, e)
                parts.append(f">{name}:{s + 1}-{e} @len={n}\n"
                             + "\n".join(seq[i : i + 80] for i in range(0, len(seq), 80)) + "\n")
    return "".join(parts).encode("ascii")


def _bin_maxima(bw: Any, chrom: str, a: int, b: int, bin_bp: int) -> Any:
    """``[n, 3]`` float64 rows ``(start, end, max)`` of the ``bin_bp`` bins of ``[a, b)`` that hold
    data (``a`` on a bin edge; the last bin may be short), from the bigWig's zoom levels (its
    256-bp × 4ⁿ levels divide a power-of-two bin ≥ 256 bp, so the maxima are exact)."""
    import numpy as np

    full = (b - a) // bin_bp
    starts = a + bin_bp * np.arange(full + (b > a + full * bin_bp), dtype=np.int64)
    ends = np.minimum(starts + bin_bp, b)
    vals = np.empty(len(starts))
    if full:
        vals[:full] = bw.values(chrom, a, a + full * bin_bp, bins=full, summary="max", exact=False, fillna=np.nan)
    if len(starts) > full:
        vals[full:] = bw.values(chrom, int(starts[-1]), b, bins=1, summary="max", exact=False, fillna=np.nan)
    keep = ~np.isnan(vals)
    return np.stack([starts[keep], ends[keep], vals[keep]], axis=1).astype(np.float64)


def _summary_bigwig(src: Path, dest: Path, sizes: dict[str, int], regions: dict[str, list[tuple[int, int]]],
                    bin_bp: int) -> None:
    """``dest``: ``src``'s runs inside ``regions`` and the maximum of each ``bin_bp`` bin outside."""
    import numpy as np
    import pybigtools

    from .tracks import BigWigWriter

    try:
        bw = pybigtools.open(str(src))
        have = bw.chroms()
    except Exception as err:  # pybigtools raises its own error types (and OSError) for a bad file
        raise OSError(f"{src}: not a bigWig file ({err})") from None
    out = BigWigWriter(dest, sizes=sizes, tmp=dest)
    try:
        for chrom, n in sizes.items():
            if chrom not in have:
                continue
            n = min(n, have[chrom])
            parts = []
            pos = 0
            for rs, re_ in [*regions.get(chrom, []), (n, n)]:
                rs, re_ = min(rs, n), min(re_, n)
                if rs > pos:
                    parts.append(_bin_maxima(bw, chrom, pos, rs, bin_bp))
                if re_ > rs:
                    got = np.asarray(list(bw.records(chrom, rs, re_)), dtype=np.float64).reshape(-1, 3)
                    got[:, 0] = np.maximum(got[:, 0], rs)
                    got[:, 1] = np.minimum(got[:, 1], re_)
                    parts.append(got)
                pos = max(pos, re_)
            runs = np.concatenate(parts) if parts else np.empty((0, 3))
            if len(runs):
                out.add(chrom, runs[:, 0].astype(np.int64), runs[:, 1].astype(np.int64), runs[:, 2].astype(np.float32))
        out.commit()
    except BaseException:
        out.abort()
        raise
    finally:
        bw.close()


def _calls_text(calls: list[BedCall], budget: int) -> tuple[bytes, int]:
    """gzipped narrowPeak text of ``calls`` (genome order kept), or of the strongest that fit
    ``budget`` bytes; returns the bytes and how many calls they hold."""
    keep = len(calls)
    while True:
        chosen = set(id(c) for c in strongest_records(calls, keep)) if keep < len(calls) else None
        text = "".join("\t".join(c.fields) + "\n" for c in calls if chosen is None or id(c) in chosen)
        data = gzip.compress(text.encode(), mtime=0)
        if len(data) <= budget or keep <= 1:
            return data, keep
        keep = max(1, int(keep * budget / len(data) * 0.9))


def write_html_report(
    run: ScanRun,
    output: str | Path,
    *,
    top: int = 10,
    flank: int | None = None,
    embed_limit: int = DEFAULT_EMBED_LIMIT,
) -> ReportResult:
    """Write the HTML report of ``run`` to ``output`` (see module docstring).

    Parameters
    ----------
    run : ScanRun
    output : str or Path
    top : int
        Calls listed (and, in a *regions* page, kept at full resolution).
    flank : int, optional
        bp shown either side of the strongest call (default ``max(500, 2 × its length)``).
    embed_limit : int
        Bytes: data up to this size are embedded as they are; above it the page holds
        regions and bin maxima; 0 links the files instead.

    Raises
    ------
    genaannot.io.bed.BedError
        The calls file has a line that is not BED.
    """
    output = Path(output).resolve()
    page_dir = output.parent
    all_calls = read_calls(run.calls) if run.calls else []
    best = strongest_records(all_calls, top)
    chrom0 = next(iter(run.sizes))
    if best:
        c = best[0]
        pad = flank if flank is not None else max(500, 2 * (c.end - c.start))
        locus = f"{c.chrom}:{max(1, c.start + 1 - pad)}-{min(run.sizes[c.chrom], c.end + pad)}"
    else:
        pad = flank if flank is not None else 500
        locus = f"{chrom0}:1-{min(run.sizes[chrom0], 10_000)}"
    fai = Path(str(run.genome) + ".fai")
    files = [run.genome, *(t.path for t in run.tracks), *([run.calls] if run.calls else [])]
    total = sum(p.stat().st_size for p in files)
    mode = "linked" if embed_limit <= 0 else "embedded" if total <= embed_limit else "regions"
    linked: list[str] = []
    bin_bp: int | None = None
    plan: dict[str, list[tuple[int, int]]] = {}
    calls_kept = len(all_calls)

    def link(p: Path) -> str:
        linked.append(_rel_url(p, page_dir))
        return linked[-1]

    if mode == "linked":
        if not fai.is_file():
            raise FileNotFoundError(f"{fai}: the linked FASTA needs its index (samtools faidx)")
        reference = {"id": run.genome.stem, "name": run.genome.name, "fastaURL": link(run.genome),
                     "indexURL": link(fai)}
        gzi = Path(str(run.genome) + ".gzi")
        if gzi.is_file():  # bgzipped FASTA
            reference["compressedIndexURL"] = link(gzi)
        track_urls = [link(t.path) for t in run.tracks]
        calls_url = link(run.calls) if run.calls else None
    elif mode == "embedded":
        # re-read through pysam so plain and bgzipped FASTA embed the same way (plain text, gzipped once)
        reference = {"id": run.genome.stem, "name": run.genome.name,
                     "fastaURL": _data_uri(gzip.compress(_fasta_text(run.genome), mtime=0), "application/gzip")}
        track_urls = [_data_uri(t.path.read_bytes(), "application/octet-stream") for t in run.tracks]
        calls_url = (_data_uri(gzip.compress(run.calls.read_bytes(), mtime=0), "application/gzip")
                     if run.calls else None)
    else:
        # one bin size for all tracks: the smallest power of two >= 256 bp whose page fits; a
        # bin's summary costs ~40 bytes (bigWig record, zoom record, base64)
        n_bp = sum(run.sizes.values())
        bin_bp = 256
        while n_bp / bin_bp * len(run.tracks) * 40 > embed_limit / 2 and bin_bp < max(run.sizes.values()):
            bin_bp *= 2
        calls_gz, calls_kept = _calls_text(all_calls, embed_limit // 4) if run.calls else (b"", 0)
        with tempfile.TemporaryDirectory(prefix=".genaannot-report-", dir=page_dir) as tmp:
            while True:
                plan = region_plan(best, run.sizes, flank=max(pad, REGION_FLANK), bin_bp=bin_bp)
                fasta = gzip.compress(_slices_fasta(run.genome, run.sizes, plan), mtime=0)
                blobs = []
                for i, t in enumerate(run.tracks):
                    dest = Path(tmp) / f"{i}.bw"
                    _summary_bigwig(t.path, dest, run.sizes, plan, bin_bp)
                    blobs.append(dest.read_bytes())
                size = len(fasta) + sum(map(len, blobs)) + len(calls_gz)
                if size <= embed_limit or bin_bp >= max(run.sizes.values()):
                    break  # fits, or coarser bins would not shrink it: the regions' data are what is left
                bin_bp *= 4
        reference = {"id": run.genome.stem, "name": run.genome.name,
                     "fastaURL": _data_uri(fasta, "application/gzip")}
        track_urls = [_data_uri(b, "application/octet-stream") for b in blobs]
        calls_url = _data_uri(calls_gz, "application/gzip") if run.calls else None
    prob = run.activation in ("sigmoid", "softmax")
    labels = list(dict.fromkeys(t.label for t in run.tracks))
    tracks: list[dict[str, Any]] = []
    for t, u in zip(run.tracks, track_urls):
        r, g, b = label_colour(labels.index(t.label), t.strand)
        tr: dict[str, Any] = {
            # igv.js sets track names with innerHTML: escape, as for any HTML text
            "name": html.escape(f"{run.task} {t.label} {t.strand}"),
            "type": "wig",
            "format": "bigwig",
            "url": u,
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
            "url": calls_url,
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
        ("model", f"{model_name(model.get('source'))} ({model.get('family')}, {model.get('architecture')}, "
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
    limit = f"{embed_limit / MIB:g} MiB"
    notes = []
    if mode == "embedded":
        notes.append(f"Data embedded in this page ({total / MIB:.1f} MiB before encoding); it needs no other files.")
    elif mode == "regions":
        n_reg = sum(len(v) for v in plan.values())
        notes.append(
            f"The scan's files ({total / MIB:.1f} MiB) are over the embedding limit of {limit}: this page holds "
            f"the sequence and full-resolution values in {n_reg} region{'s' * (n_reg != 1)} around the "
            f"{len(best)} strongest calls (each ± {max(pad, REGION_FLANK):,} bp or more) and, elsewhere, the "
            f"maximum of each {bin_bp:,}-bp bin; no sequence is shown outside the regions.")
        if calls_kept < len(all_calls):
            notes.append(f"Calls: the {calls_kept:,} strongest of {len(all_calls):,}.")
        notes.append("For everything at full resolution open the scan's files in IGV or a genome browser "
                     "(genaannot hub), or raise --embed-limit.")
    else:
        notes.append(
            f"Data linked relative to this page ({total / MIB:.1f} MiB; --embed-limit 0): browsers do not let a "
            f"page opened from disk read other files, so serve a folder holding this page and "
            f"{', '.join(linked)} over HTTP (python -m http.server) and open the page from there.")
    js, lic = _igv_assets()
    text = report_html(title=f"genaannot {run.task} scan: {run.name}", summary=summary, calls=best,
                       igv_config=config, igv_js=js, igv_license=lic, notes=notes)
    write_text_atomic(output, text)
    regions = [(c, s, e) for c, spans in plan.items() for s, e in spans]
    return ReportResult(output, mode != "linked", linked, len(best), mode=mode, size=len(text.encode()),
                        data_size=total, bin_bp=bin_bp, regions=regions)

