"""Looking at results: a region figure, a UCSC/IGV track hub and an HTML report of a scan.

The library side of ``genaannot plot``, ``genaannot hub`` and ``genaannot report``: each
function reads what it needs through :mod:`genaannot.io`, draws or lays out with the compute
modules (:mod:`genaannot.plot`, :mod:`genaannot.hub`) and writes its output atomically.

Regions given as text are 1-based inclusive (``chr1:1001-2000``), as in genome browsers;
inside, coordinates are 0-based, half-open.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..io.hub import HubResult
    from ..io.report import ReportResult

__all__ = ["plot_region", "write_scan_hub", "write_scan_report"]


def plot_region(
    genome: str | Path,
    *,
    region: str,
    output: str | Path,
    tracks: Sequence[str | Path] = (),
    calls: str | Path | None = None,
    annotation: str | Path | None = None,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Draw tracks (both strands), calls and gene models over a region of ``genome``.

    Parameters
    ----------
    genome
        FASTA (for the sequence names and lengths the region is checked against).
    region
        ``CHR:START-END``, 1-based inclusive.
    output
        Image path; the format is its suffix (``.png``, ``.pdf``, ``.svg``).
    tracks
        bigWig files. ``OUT.<label>.<plus|minus>.bw`` share one panel per label (plus upwards,
        minus mirrored downwards).
    calls
        BED / narrowPeak calls; those overlapping the region are drawn.
    annotation
        GFF3 or GTF gene models; chromosome names are matched to the FASTA's (``chr1`` / ``1``).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    ValueError
        Nothing to draw, or a bad region, FASTA, BED or annotation (the message names the file).
    """
    from ..io.atomic import OutputError, check_not_inputs, check_writable, write_bytes_atomic
    from ..io.bed import read_calls
    from ..io.fasta import open_genome
    from ..io.tracks import read_bigwig_region
    from ..plot import Call, Track, figure_bytes, region_figure, track_identity
    from ..regions import match_chroms, parse_region

    if not tracks and not calls and not annotation:
        raise ValueError("give at least one of --tracks, --calls, --annotation")
    g_path = Path(genome)
    check_not_inputs([output], [("FASTA", g_path), ("FASTA index", Path(f"{g_path}.fai")),
                                ("FASTA index", Path(f"{g_path}.gzi")), *(("track", t) for t in tracks),
                                ("calls BED", calls), ("annotation", annotation)])
    out = Path(output)
    fmt = out.suffix.lstrip(".").lower()
    if fmt:
        from matplotlib.backend_bases import FigureCanvasBase

        kinds = FigureCanvasBase.get_supported_filetypes()
        if fmt not in kinds:
            raise OutputError(f"{out}: matplotlib cannot write .{fmt} images; end the name in .png, .pdf or .svg "
                              f"(or one of {', '.join(sorted(kinds))})")
    out = check_writable(out)
    with open_genome(genome) as g:
        iv = parse_region(region, sizes=g.sizes)
    drawn = []
    for f in tracks:
        label, strand = track_identity(Path(f).name)
        drawn.append(Track(label, strand, read_bigwig_region(f, iv.chrom, iv.start, iv.end)))
    call_list = None
    if calls:
        found = read_calls(calls, region=(iv.chrom, iv.start, iv.end))
        call_list = [Call(c.start, c.end, c.strand, c.name, c.value) for c in found]
    txs = None
    if annotation:
        from ..io.annotation import read_annotation

        ann = read_annotation(annotation)
        for note in ann.notes:  # transcripts the drawing leaves out or changes
            warnings.warn(note, stacklevel=2)  # it names the file
        mapping = match_chroms(ann.chroms, {iv.chrom: 1}).mapping
        names = [c for c, tgt in mapping.items() if tgt == iv.chrom]
        txs = sorted((t for c in names for t in ann.transcripts[c] if t.end > iv.start and t.start < iv.end),
                     key=lambda t: (t.start, t.id))
    fig = region_figure(chrom=iv.chrom, start=iv.start, end=iv.end, tracks=drawn, calls=call_list,
                        transcripts=txs, title=title)
    write_bytes_atomic(out, figure_bytes(fig, fmt=out.suffix, dpi=dpi))
    return out


def write_scan_hub(
    scan: str | Path,
    *,
    outdir: str | Path | None = None,
    genome_name: str | None = None,
    ucsc_db: str | None = None,
    hub_name: str | None = None,
    email: str = "noreply@example.org",
    session: bool = True,
    organism: str | None = None,
    annotation: str | Path | None = None,
) -> HubResult:
    """Write a UCSC track hub (and an IGV session) for a finished scan.

    Parameters
    ----------
    scan
        The scan's directory or its manifest ``OUT.json``.
    outdir
        Where the hub goes (default: the scan's directory, so track URLs stay inside it).
    genome_name
        Assembly name in the hub (default: the FASTA's name).
    ucsc_db
        A UCSC-hosted assembly (e.g. ``hg38``) instead of an assembly hub with a ``.2bit``.
    hub_name
        Hub identifier (default ``genaannot_<scan name>``).
    session
        Also write ``igv_session.xml``.
    organism
        ``organism``/``scientificName`` of an assembly hub (default: the genome name).
    annotation
        GFF3/GTF gene models, added as a BED12 bigBed track (hub and session).
    """
    from ..hub import HubOptions, safe_name
    from ..io.hub import read_scan, write_hub

    run = read_scan(scan)
    gname = genome_name or safe_name(run.genome.name.split(".")[0])
    opts = HubOptions(
        hub_name=hub_name or f"genaannot_{run.name}",
        genome_name=gname,
        short_label=f"genaannot {run.task}",
        long_label=f"genaannot {run.task} scan {run.name} of {run.genome.name}",
        email=email,
        ucsc_db=ucsc_db,
        organism=organism or gname,
    )
    return write_hub(run, outdir or run.manifest_path.parent, opts, session=session, annotation=annotation)


def write_scan_report(
    scan: str | Path,
    *,
    output: str | Path,
    top: int = 10,
    flank: int | None = None,
    embed_limit_mb: float = 32.0,
) -> ReportResult:
    """Write a self-contained HTML report (run summary, strongest calls, igv.js) of a scan
    (see :mod:`genaannot.io.report` for the embedded / regions / linked pages).

    Parameters
    ----------
    scan
        The scan's directory or its manifest ``OUT.json``.
    output
        ``report.html``.
    top
        Calls listed.
    flank
        bp shown either side of the strongest call (default ``max(500, 2 × its length)``).
    embed_limit_mb
        Embed the genome, tracks and calls as they are when they total at most this many MiB;
        above it, embed sequence and full-resolution values around the ``top`` strongest calls
        and bin maxima elsewhere. 0 links the files relative to the page (for HTTP only).
    """
    from ..io.atomic import check_not_inputs, check_writable
    from ..io.hub import read_scan, scan_inputs
    from ..io.report import write_html_report

    check_writable(Path(output))
    run = read_scan(scan)
    check_not_inputs([output], scan_inputs(run))
    return write_html_report(run, output, top=top, flank=flank, embed_limit=int(embed_limit_mb * 1024 * 1024))
