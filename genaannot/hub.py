"""UCSC track hub and IGV session text for a scan (pure: strings in, strings out).

A scan (``genaannot scan``) leaves bigWig tracks (one per label and strand), a narrowPeak
BED of calls and a JSON manifest. :class:`ScanRun` is that manifest resolved to paths
(read by :func:`genaannot.io.hub.read_scan`); the functions here turn it into

* a UCSC track hub: ``hub.txt``, ``genomes.txt`` and ``<genome>/trackDb.txt`` with one
  composite track per task (subgroups *label* × *strand*; plus strand in the label's colour,
  minus strand in a lighter shade; ``viewLimits 0:1`` for probabilities) and the calls as a
  bigBed. A genome that UCSC knows (``--ucsc-db hg38``) is referenced by name; otherwise an
  *assembly hub* is described with a ``.2bit`` of the FASTA (written by :mod:`genaannot.io.hub`);
* an IGV desktop session XML that opens the local FASTA and every track.

File references are relative to the file that mentions them, so the folder can be moved
or served over HTTP as a whole.
"""

from __future__ import annotations

import colorsys
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from .calls import threshold_text

__all__ = [
    "TrackFile",
    "ScanRun",
    "site_text",
    "HubOptions",
    "PALETTE",
    "label_colour",
    "strongest_calls",
    "strongest_records",
    "hub_txt",
    "genomes_txt",
    "trackdb_txt",
    "igv_session_xml",
    "safe_name",
    "BIGNARROWPEAK_AS",
    "BED12_AS",
    "model_name",
    "transcript_bed12",
    "HubTextError",
    "control_chars",
    "check_line_text",
    "check_genome_name",
]

#: one colour per label, in label order (Okabe–Ito, readable by colour-blind viewers)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0),
)

#: autoSql of UCSC's bigNarrowPeak (what ``bedToBigBed -type=bed6+4`` needs for calls)
BIGNARROWPEAK_AS = """table bigNarrowPeak
"BED6+4 Peaks of signal enrichment based on pooled, normalized (interpreted) data."
(
    string chrom;        "Reference sequence chromosome or scaffold"
    uint   chromStart;   "Start position in chromosome"
    uint   chromEnd;     "End position in chromosome"
    string name;         "Name given to a region (preferably unique). Use . if no name is assigned"
    uint   score;        "Indicates how dark the peak will be displayed in the browser (0-1000) "
    char[1]  strand;     "+ or - or . for unknown"
    float  signalValue;  "Measurement of average enrichment for the region"
    float  pValue;       "Statistical significance of signal value (-log10). Set to -1 if not used."
    float  qValue;       "Statistical significance with multiple-test correction applied (FDR -log10). Set to -1 if not used."
    int   peak;          "Point-source called for this peak; 0-based offset from chromStart. Set to -1 if no point-source called."
)
"""


#: autoSql of a BED12 gene track (the standard ``bed12`` fields)
BED12_AS = """table bed12
"Gene models: one transcript per line, exons as blocks"
(
    string chrom;      "Reference sequence chromosome or scaffold"
    uint   chromStart; "Start position in chromosome"
    uint   chromEnd;   "End position in chromosome"
    string name;       "Transcript"
    uint   score;      "Score (0)"
    char[1] strand;    "+ or -"
    uint   thickStart; "Start of the thick part (the transcript start: no CDS is read)"
    uint   thickEnd;   "End of the thick part"
    uint   reserved;   "itemRgb (0)"
    int    blockCount; "Number of exons"
    int[blockCount] blockSizes;  "Exon lengths"
    int[blockCount] chromStarts; "Exon starts relative to chromStart"
)
"""


def model_name(source: object) -> str:
    """A model as people name it: a catalogue or hub id as given, a local path by its last part
    (a hub or report is shown to others: no local directories in it)."""
    text = str(source).rstrip("/\\")
    if text.startswith(("/", "~", ".")) or "\\" in text or text[1:3] == ":\\" or text.count("/") > 1:
        return re.split(r"[/\\]", text)[-1] or text
    return text


def transcript_bed12(chrom: str, tx: Any) -> tuple[str, int, int, str]:
    """One transcript (``id``, ``strand``, sorted ``exons``) as a BED12 row for a bigBed writer:
    ``(chrom, start, end, rest)`` with the other nine fields tab-joined in ``rest``."""
    start, end = tx.exons[0][0], tx.exons[-1][1]
    sizes = ",".join(str(e - s) for s, e in tx.exons) + ","
    starts = ",".join(str(s - start) for s, _ in tx.exons) + ","
    name = re.sub(r"\s", "_", tx.id)
    return chrom, start, end, f"{name}\t0\t{tx.strand}\t{start}\t{end}\t0\t{len(tx.exons)}\t{sizes}\t{starts}"


@dataclass(frozen=True)
class TrackFile:
    """One bigWig of a scan."""

    label: str
    strand: str  # "+" | "-" | "."
    path: Path


@dataclass
class ScanRun:
    """A finished scan, resolved to absolute paths.

    Attributes
    ----------
    manifest : dict
        The scan's JSON manifest as written.
    genome : Path
        The FASTA scanned (absolute).
    sizes : dict[str, int]
        Sequence lengths in FASTA order.
    tracks : list[TrackFile]
    calls : Path or None
        narrowPeak BED of calls.
    """

    manifest_path: Path
    manifest: dict[str, Any]
    genome: Path
    sizes: dict[str, int]
    task: str
    labels: list[str]
    tracks: list[TrackFile]
    calls: Path | None
    activation: str = "sigmoid"

    @property
    def name(self) -> str:
        return self.manifest_path.stem


@dataclass
class HubOptions:
    """Choices for the hub text."""

    hub_name: str
    genome_name: str
    short_label: str = ""
    long_label: str = ""
    email: str = "noreply@example.org"
    ucsc_db: str | None = None  # None = assembly hub from the FASTA
    organism: str = ""
    default_pos: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class HubTextError(ValueError):
    """A value that cannot go into a line of hub text (a control character, a bad genome name)."""


def control_chars(text: str) -> list[str]:
    """The control characters in ``text`` (tab, newline, other Cc, U+2028/2029), as ``repr``-style names.

    Such a character inside a ``key value`` line of ``hub.txt``/``trackDb.txt`` (or a BED name
    field) would end the value and start a line or field of the text's own choosing.
    """
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    return [repr(c).strip("'") for c in dict.fromkeys(bad)]


def check_line_text(value: str, *, what: str) -> str:
    """``value``, or :class:`HubTextError` naming ``what`` when it holds a control character.

    Refused rather than cleaned: a newline in an e-mail address or a label is a mistake to fix,
    not something to guess around.
    """
    bad = control_chars(str(value))
    if bad:
        raise HubTextError(f"{what} {str(value)!r} contains control characters ({', '.join(bad)}); "
                           "give it on one line without tabs or control characters")
    return str(value)


#: UCSC assembly names: letters, digits, ``_``, ``.``, ``-``
_GENOME_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_genome_name(name: str, *, what: str = "genome name") -> str:
    """``name`` when it is a UCSC-style assembly name (``[A-Za-z0-9_.-]+``, not ``.``/``..``-ish).

    The name becomes a directory of the hub (``<genome>/trackDb.txt``), so ``/`` or ``..``
    would write outside it.
    """
    if not _GENOME_NAME.fullmatch(name or "") or ".." in name or name.startswith("."):
        raise HubTextError(f"{what} {name!r} is not a UCSC assembly name: use letters, digits, _, . and - "
                           "only (no '/', no '..', not starting with '.')")
    return name


def _lines(lines: list[str], *, file: str) -> str:
    """Join ``key value`` lines, refusing any line that carries a control character.

    Each element is one line by construction, so a control character in one can only come from
    a value (a label, a model path, an option): the backstop behind the checks where values enter.
    """
    for line in lines:
        key, _, value = line.lstrip(" ").partition(" ")
        check_line_text(value, what=f"{file} {key}")
    return "\n".join(x for x in lines if x) + "\n"


def site_text(manifest: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The splice site convention of a scan and, per label, the base its tracks peak on, from
    the manifest's ``site_convention`` (e.g. ``("exon", {"donor": "last exon base", ...})``);
    ``(None, {})`` when the manifest has none."""
    sc = manifest.get("site_convention")
    if not isinstance(sc, dict) or not isinstance(sc.get("name"), str):
        return None, {}
    return sc["name"], {k: v for k, v in sc.items() if k in ("donor", "acceptor") and isinstance(v, str)}


def _long(text: str) -> str:
    """A ``longLabel``: plain (see :func:`_plain`) and at most 80 characters, as UCSC asks."""
    text = _plain(text)
    return text if len(text) <= 80 else text[:79] + "…"


def _plain(text: object) -> str:
    """``text`` for a hub label or description: ``< > & " '`` become ``_``.

    UCSC pages show labels and descriptions as HTML; a label from a checkpoint must not become
    markup there, and an escaped ``&lt;`` would show as such wherever a browser does escape.
    """
    return re.sub(r"[<>&\"']", "_", str(text))


def safe_name(text: str) -> str:
    """Letters, digits and ``_`` only (UCSC track names and subgroup tags)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return s if s and not s[0].isdigit() else f"t_{s}"


def label_colour(index: int, strand: str) -> tuple[int, int, int]:
    """The label's palette colour; the minus strand gets a lighter shade of it."""
    r, g, b = PALETTE[index % len(PALETTE)]
    if strand != "-":
        return r, g, b
    h, light, s = colorsys.rgb_to_hls(r / 255, g / 255, b / 255)
    r2, g2, b2 = colorsys.hls_to_rgb(h, min(0.8, light + 0.25), s)
    return round(r2 * 255), round(g2 * 255), round(b2 * 255)


def _rgb(c: tuple[int, int, int]) -> str:
    return ",".join(str(x) for x in c)


def _strand_word(strand: str) -> str:
    return {"+": "plus", "-": "minus"}.get(strand, "both")


def strongest_calls(calls: Iterable[Any], n: int) -> list[tuple[str, int, int, float]]:
    """Top ``n`` calls by value.

    Parameters
    ----------
    calls : iterable
        Objects with ``chrom``, ``start``, ``end`` and ``value`` (e.g. the
        :class:`genaannot.io.bed.BedCall` records of :func:`genaannot.io.bed.read_calls`).
    n : int

    Returns
    -------
    list of (chrom, start, end, value), strongest first (ties: input order).
    """
    return [(c.chrom, c.start, c.end, c.value) for c in strongest_records(calls, n)]


def strongest_records(calls: Iterable[Any], n: int) -> list[Any]:
    """Top ``n`` call records by ``value``, strongest first (ties: input order); the records
    themselves, so that label (``name``) and ``strand`` come with them."""
    items = list(calls)
    order = sorted(range(len(items)), key=lambda i: (-items[i].value, i))
    return [items[i] for i in order[:n]]


def hub_txt(opts: HubOptions) -> str:
    """``hub.txt`` (single-file-free layout: genomesFile genomes.txt)."""
    lines = [
        f"hub {safe_name(opts.hub_name)}",
        f"shortLabel {_plain((opts.short_label or opts.hub_name)[:17])}",
        f"longLabel {_plain(opts.long_label or opts.short_label or opts.hub_name)}",
        "genomesFile genomes.txt",
        f"email {opts.email}",
        "descriptionUrl description.html",
    ]
    return _lines(lines, file="hub.txt")


def genomes_txt(opts: HubOptions, *, twobit: str | None = None, chrom_sizes: str | None = None) -> str:
    """``genomes.txt``: a UCSC database, or an assembly hub stanza with the ``.2bit``."""
    g = check_genome_name(opts.ucsc_db or opts.genome_name, what="--ucsc-db" if opts.ucsc_db else "genome name")
    lines = [f"genome {g}", f"trackDb {g}/trackDb.txt"]
    if opts.ucsc_db is None:
        if twobit is None:
            raise ValueError("an assembly hub needs a .2bit path")
        lines += [
            f"twoBitPath {twobit}",
            f"organism {_plain(opts.organism or opts.genome_name)}",
            f"description {_plain(opts.long_label or opts.genome_name)}",
            f"scientificName {_plain(opts.organism or opts.genome_name)}",
            f"defaultPos {opts.default_pos}" if opts.default_pos else "",
            f"chromSizes {chrom_sizes}" if chrom_sizes else "",
            "orderKey 1",
        ]
    elif opts.default_pos:
        lines.append(f"defaultPos {opts.default_pos}")
    return _lines(lines, file="genomes.txt") + "\n"


def trackdb_txt(
    run: ScanRun,
    *,
    urls: dict[Path, str],
    calls_url: str | None,
    calls_type: str | None,
    genes_url: str | None = None,
    genes_label: str = "genes",
    priority: int = 1,
) -> str:
    """``trackDb.txt`` for one scan: a composite per task plus the calls.

    Parameters
    ----------
    urls : dict
        bigWig path -> URL relative to ``trackDb.txt``.
    calls_url, calls_type : str or None
        The calls' bigBed URL and UCSC type (``bigNarrowPeak``); ``None`` leaves the calls
        out (a comment says why).
    genes_url, genes_label : str
        A gene-model bigBed (BED12) and its label (the annotation's file name).
    """
    task = run.task
    comp = safe_name(f"{run.name}_{task}")
    prob = run.activation in ("sigmoid", "softmax")
    vmin, vmax = (0, 1) if prob else (-10, 10)
    labels = list(dict.fromkeys(t.label for t in run.tracks))
    strands = list(dict.fromkeys(t.strand for t in run.tracks))
    tags = {lab: safe_name(lab) for lab in labels}
    model = run.manifest.get("model") if isinstance(run.manifest.get("model"), dict) else {}
    convention, sites = site_text(run.manifest)
    out = [
        f"track {comp}",
        "compositeTrack on",
        f"shortLabel {_plain(task[:17])}",
        "longLabel " + _long(f"genaannot {task}: {model_name(model.get('source', 'model'))} "
                             f"({run.activation}, {', '.join(labels)}"
                             + (f"; {convention} convention" if convention else "") + ")"),
        f"type bigWig {vmin} {vmax}",
        "subGroup1 label Label " + " ".join(f"{tags[lab]}={tags[lab]}" for lab in labels),
        "subGroup2 strand Strand " + " ".join(f"{_strand_word(s)}={_strand_word(s)}" for s in strands),
        "dimensions dimX=label dimY=strand",
        "sortOrder label=+ strand=+",
        "visibility full",
        "maxHeightPixels 100:40:8",
        "windowingFunction maximum",
        "smoothingWindow off",
        f"autoScale {'off' if prob else 'on'}",
        f"viewLimits {vmin}:{vmax}" if prob else "",
        f"priority {priority}",
        "",
    ]
    for t in run.tracks:
        i = labels.index(t.label)
        name = safe_name(f"{comp}_{t.label}_{_strand_word(t.strand)}")
        col = label_colour(i, t.strand)
        out += [
            f"    track {name}",
            f"    parent {comp} on",
            f"    subGroups label={tags[t.label]} strand={_strand_word(t.strand)}",
            f"    bigDataUrl {urls[t.path]}",
            f"    shortLabel {_plain(t.label[:15])} {t.strand}",
            "    longLabel " + _long(f"{task} {t.label}, {_strand_word(t.strand)} strand"
                                + (f", site = {sites[t.label]}" if t.label in sites else "")),
            f"    type bigWig {vmin} {vmax}",
            f"    color {_rgb(col)}",
            f"    altColor {_rgb(col)}",
            "",
        ]
    if calls_url and calls_type:
        out += [
            f"track {comp}_calls",
            f"shortLabel {_plain(task)} calls",
            f"longLabel genaannot {_plain(task)} calls (threshold {_plain(threshold_text(run.manifest.get('calls', {})))})",
            f"type {calls_type}",
            f"bigDataUrl {calls_url}",
            "visibility pack",
            "color 90,90,90",
            f"priority {priority + 1}",
            "",
        ]
    elif run.calls is not None:
        out += [f"# calls {run.calls.name} not included: no bigBed converter was found", ""]
    if genes_url:
        out += [
            f"track {comp}_genes",
            "shortLabel genes",
            f"longLabel {_long('Gene models: ' + genes_label)}",
            "type bigBed 12",
            f"bigDataUrl {genes_url}",
            "visibility pack",
            "color 0,0,0",
            f"priority {priority + 2}",
            "",
        ]
    # blank lines separate stanzas here, so join by hand after the check
    _lines(out, file="trackDb.txt")
    return "\n".join(out) + "\n"


def igv_session_xml(
    run: ScanRun,
    *,
    genome: str,
    tracks: dict[Path, str],
    calls: str | None,
    locus: str | None = None,
    genes: str | None = None,
    genes_label: str = "genes",
) -> str:
    """IGV desktop session (version 8): the genome, every bigWig, the calls and gene models.

    Parameters
    ----------
    genome, tracks, calls, genes : str
        Paths as they should appear in the session (relative to the session file, or
        absolute), or for ``genome`` an IGV genome id such as ``hg38``.
    """
    prob = run.activation in ("sigmoid", "softmax")
    labels = list(dict.fromkeys(t.label for t in run.tracks))
    loc = locus or next(iter(run.sizes), "All")
    res = [f"        <Resource path={quoteattr(tracks[t.path])} type=\"bigwig\"/>" for t in run.tracks]
    if calls:
        kind = ' type="bed"' if calls.endswith(".bed") else ""  # a narrowPeak .bed; a bigBed speaks for itself
        res.append(f"        <Resource path={quoteattr(calls)}{kind}/>")
    if genes:
        res.append(f"        <Resource path={quoteattr(genes)}/>")
    panel = []
    for t in run.tracks:
        col = _rgb(label_colour(labels.index(t.label), t.strand))
        name = f"{run.task} {t.label} {t.strand}"
        attrs = (
            f"attributeKey={quoteattr(name)} autoScale=\"{'false' if prob else 'true'}\" clazz=\"org.broad.igv.track.DataSourceTrack\" "
            f"color=\"{col}\" fontSize=\"10\" height=\"40\" id={quoteattr(tracks[t.path])} name={quoteattr(name)} "
            "renderer=\"BAR_CHART\" visible=\"true\" windowFunction=\"max\""
        )
        rng = '            <DataRange baseline="0.0" drawBaseline="true" flipAxis="false" maximum="1.0" minimum="0.0" type="LINEAR"/>\n' if prob else ""
        panel.append(f"        <Track {attrs}>\n{rng}        </Track>")
    if calls:
        panel.append(
            f"        <Track attributeKey={quoteattr(run.task + ' calls')} clazz=\"org.broad.igv.track.FeatureTrack\" "
            f"color=\"90,90,90\" displayMode=\"EXPANDED\" fontSize=\"10\" id={quoteattr(calls)} "
            f"name={quoteattr(run.task + ' calls')} visible=\"true\"/>"
        )
    if genes:
        panel.append(
            f"        <Track attributeKey={quoteattr(genes_label)} clazz=\"org.broad.igv.track.FeatureTrack\" "
            f"color=\"0,0,0\" displayMode=\"EXPANDED\" fontSize=\"10\" id={quoteattr(genes)} "
            f"name={quoteattr(genes_label)} visible=\"true\"/>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f"<Session genome={quoteattr(genome)} hasGeneTrack=\"false\" hasSequenceTrack=\"true\" "
        f"locus={quoteattr(loc)} version=\"8\">\n"
        "    <Resources>\n" + "\n".join(res) + "\n    </Resources>\n"
        '    <Panel height="600" name="DataPanel" width="1200">\n' + "\n".join(panel) + "\n    </Panel>\n"
        "</Session>\n"
    )
