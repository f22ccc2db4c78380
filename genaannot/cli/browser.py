"""``genaannot hub``, ``genaannot report`` and ``genaannot plot``: look at scan results.

Heavy imports (matplotlib, pyBigWig) happen inside the commands.
"""

from __future__ import annotations

import click

from ..pipeline.browser import plot_region, write_scan_hub, write_scan_report
from .options import library_default, no_stdout

_CTX = {"help_option_names": ["-h", "--help"]}


def _genome_name(ctx, param, value):
    """A UCSC assembly name (it becomes a directory of the hub: no '/', no '..')."""
    from ..hub import HubTextError, check_genome_name

    if value is None:
        return None
    try:
        return check_genome_name(value, what="value")
    except HubTextError as err:
        raise click.BadParameter(str(err), param=param) from None


def _one_line(ctx, param, value):
    """A value that is written as a line of hub text: no newline, tab or other control character."""
    from ..hub import HubTextError, check_line_text

    if value is None:
        return None
    try:
        return check_line_text(value, what="value")
    except HubTextError as err:
        raise click.BadParameter(str(err), param=param) from None


@click.command("hub", context_settings=_CTX, epilog=(
    "Writes hub.txt, genomes.txt, GENOME/trackDb.txt (a composite per task: label x strand, plus "
    "strand in the label's colour, minus lighter), the calls as a bigNarrowPeak bigBed (bedToBigBed "
    "when on PATH, else pybigtools), with --annotation the gene models as a BED12 bigBed, for an "
    "assembly hub GENOME/GENOME.2bit, and igv_session.xml for IGV desktop. Every file the hub names "
    "lies inside OUTDIR (tracks and, for the session, the FASTA are hard-linked into GENOME/, or copied "
    "across file systems) and no text holds a local path. Serve OUTDIR over HTTP(S) and give UCSC the "
    "URL of hub.txt."))
@click.argument("scan", type=click.Path(exists=True), metavar="SCAN_DIR|MANIFEST.json")
@click.option("-o", "--outdir", type=click.Path(file_okay=False), default=None, callback=no_stdout,
              help="Where to write the hub [default: the scan's directory].")
@click.option("--genome-name", default=None, callback=_genome_name,
              help="Assembly name in the hub (letters, digits, _ . -) [default: the FASTA's name].")
@click.option("--organism", default=None, callback=_one_line,
              help="Organism of an assembly hub, e.g. 'Arabidopsis thaliana' [default: the genome name].")
@click.option("--ucsc-db", default=None, metavar="DB", callback=_genome_name,
              help="Use a UCSC-hosted assembly (e.g. hg38) instead of an assembly hub with a .2bit.")
@click.option("--annotation", type=click.Path(dir_okay=False, exists=True), default=None, metavar="GENES.gff3",
              help="Gene models (GFF3 or GTF, plain or gzip) to add as a track (hub and IGV session).")
@click.option("--hub-name", default=None, callback=_one_line, help="Hub identifier [default: genaannot_<scan name>].")
@click.option("--email", default=library_default(write_scan_hub, "email"), show_default=True, callback=_one_line,
              help="Contact e-mail required by UCSC.")
@click.option("--no-session", is_flag=True, help="Do not write igv_session.xml.")
def hub(scan, outdir, genome_name, organism, ucsc_db, annotation, hub_name, email, no_session) -> None:
    """Write a UCSC track hub and an IGV session for a finished scan."""
    from ..io.annotation import AnnotationError
    from ..io.atomic import OutputError, OutputIsInput
    from ..io.bed import BedError
    from ..io.hub import HubError

    try:
        res = write_scan_hub(scan, outdir=outdir, genome_name=genome_name, ucsc_db=ucsc_db, hub_name=hub_name,
                             email=email, session=not no_session, organism=organism, annotation=annotation)
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (HubError, BedError, AnnotationError, OutputError, OSError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"hub: {res.hub_txt}", err=True)
    if res.calls_left_out:
        click.echo("note: the scan made no calls: the hub has no calls track", err=True)
    if res.copied:
        click.echo(f"note: copied into the hub (no hard link across file systems): "
                   f"{', '.join(p.name for p in res.copied)}", err=True)
    if res.session:
        click.echo(f"IGV session: {res.session}", err=True)


@click.command("report", context_settings=_CTX, epilog=(
    "The page opens by double-click: it embeds igv.js and its data. When the genome, tracks and calls "
    "total at most --embed-limit MiB they are embedded as they are; above it the page holds the sequence "
    "and full-resolution values around the --top strongest calls and the maximum of each bin elsewhere "
    "(the page says which bin). --embed-limit 0 links the files instead: that page works only when a "
    "folder holding it and the scan files is served over HTTP (python -m http.server)."))
@click.argument("scan", type=click.Path(exists=True), metavar="SCAN_DIR|MANIFEST.json")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="report.html",
              callback=no_stdout)
@click.option("--top", type=click.IntRange(min=0), default=library_default(write_scan_report, "top"), show_default=True,
              help="Calls listed (and kept at full resolution when the data are over the limit).")
@click.option("--flank", type=click.IntRange(min=0), default=library_default(write_scan_report, "flank"), metavar="BP",
              help="bp shown either side of the strongest call [default: max(500, 2 x its length)].")
@click.option("--embed-limit", type=click.FloatRange(min=0), default=library_default(write_scan_report, "embed_limit_mb"),
              show_default=True, metavar="MIB",
              help="Embed the data as they are up to this many MiB (else regions + bin maxima); 0 links the files.")
def report(scan, output, top, flank, embed_limit) -> None:
    """Write a self-contained HTML report (run summary + igv.js browser) of a scan."""
    from ..io.atomic import OutputError, OutputIsInput
    from ..io.bed import BedError
    from ..io.hub import HubError

    try:
        res = write_scan_report(scan, output=output, top=top, flank=flank, embed_limit_mb=embed_limit)
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (HubError, BedError, OutputError, OSError) as err:
        raise click.ClickException(str(err)) from None
    mib = 1024 * 1024
    if res.mode == "embedded":
        how = f"{res.data_size / mib:.1f} MiB of data embedded"
    elif res.mode == "regions":
        how = (f"data {res.data_size / mib:.1f} MiB > {embed_limit:g} MiB: {len(res.regions)} full-resolution "
               f"regions around the strongest calls, {res.bin_bp:,}-bp bin maxima elsewhere")
    else:
        how = f"linked: {', '.join(res.linked)}; serve over HTTP, it does not work opened from disk"
    click.echo(f"report: {res.path} ({res.size / mib:.1f} MiB; {how})", err=True)


@click.command("plot", context_settings=_CTX, epilog=(
    "Tracks named OUT.<label>.<plus|minus>.bw share one panel per label (plus upwards, minus "
    "mirrored downwards). --tracks may be followed by several files (shell globs work)."))
@click.argument("genome", type=click.Path(dir_okay=False, exists=True))
@click.argument("more_tracks", nargs=-1, type=click.Path(dir_okay=False, exists=True), metavar="")
@click.option("--region", required=True, metavar="CHR:START-END", help="1-based inclusive.")
@click.option("--tracks", "tracks", multiple=True, type=click.Path(dir_okay=False, exists=True),
              metavar="BW...", help="bigWig files.")
@click.option("--annotation", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="GENES.gff3", help="Gene models (GFF3 or GTF).")
@click.option("--calls", type=click.Path(dir_okay=False, exists=True), default=None, metavar="BED")
@click.option("--title", default=None)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="region.png", callback=no_stdout)
@click.option("--dpi", type=click.IntRange(min=50), default=library_default(plot_region, "dpi"), show_default=True)
def plot(genome, more_tracks, region, tracks, annotation, calls, title, output, dpi) -> None:
    """Plot tracks (both strands), calls and gene models over a region of GENOME."""
    from ..io.atomic import OutputError, OutputIsInput
    from ..io.fasta import FastaError
    from ..regions import RegionError

    files = list(tracks) + list(more_tracks)
    if not files and not calls and not annotation:
        raise click.UsageError("give at least one of --tracks, --calls, --annotation")
    try:
        plot_region(genome, region=region, output=output, tracks=files, calls=calls, annotation=annotation,
                    title=title, dpi=dpi)
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (FastaError, RegionError, OutputError, OSError, ValueError) as err:  # BedError is a ValueError
        raise click.ClickException(str(err)) from None
    click.echo(f"plot: {output}", err=True)
