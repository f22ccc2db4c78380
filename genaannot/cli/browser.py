"""``genaannot hub``, ``genaannot report`` and ``genaannot plot``: look at scan results.

Heavy imports (matplotlib, pyBigWig) happen inside the commands.
"""

from __future__ import annotations

import click

from .options import no_stdout

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
    "strand in the label's colour, minus lighter), the calls as bigBed (bedToBigBed when on PATH: "
    "bigNarrowPeak; else pybigtools: intervals only), for an assembly hub GENOME/GENOME.2bit, and "
    "igv_session.xml for IGV desktop. Serve OUTDIR over HTTP(S) and give UCSC the URL of hub.txt."))
@click.argument("scan", type=click.Path(exists=True), metavar="SCAN_DIR|MANIFEST.json")
@click.option("-o", "--outdir", type=click.Path(file_okay=False), default=None, callback=no_stdout,
              help="Where to write the hub [default: the scan's directory, so track URLs stay inside it].")
@click.option("--genome-name", default=None, callback=_genome_name,
              help="Assembly name in the hub (letters, digits, _ . -) [default: the FASTA's name].")
@click.option("--ucsc-db", default=None, metavar="DB", callback=_genome_name,
              help="Use a UCSC-hosted assembly (e.g. hg38) instead of an assembly hub with a .2bit.")
@click.option("--hub-name", default=None, callback=_one_line, help="Hub identifier [default: genaannot_<scan name>].")
@click.option("--email", default="noreply@example.org", show_default=True, callback=_one_line,
              help="Contact e-mail required by UCSC.")
@click.option("--no-session", is_flag=True, help="Do not write igv_session.xml.")
def hub(scan, outdir, genome_name, ucsc_db, hub_name, email, no_session) -> None:
    """Write a UCSC track hub and an IGV session for a finished scan."""
    from ..io.atomic import OutputError, OutputIsInput
    from ..io.bed import BedError
    from ..io.hub import HubError
    from ..pipeline.browser import write_scan_hub

    try:
        res = write_scan_hub(scan, outdir=outdir, genome_name=genome_name, ucsc_db=ucsc_db, hub_name=hub_name,
                             email=email, session=not no_session)
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (HubError, BedError, OutputError, OSError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"hub: {res.hub_txt}", err=True)
    if res.calls_left_out:
        click.echo("note: calls left out of the hub (no bedToBigBed or pybigtools)", err=True)
    elif res.calls_type == "bigBed 3":
        click.echo("note: calls written as plain intervals (bigBed 3); install UCSC bedToBigBed for "
                   "full bigNarrowPeak calls", err=True)
    if res.session:
        click.echo(f"IGV session: {res.session}", err=True)


@click.command("report", context_settings=_CTX, epilog=(
    "The page embeds igv.js and, when they total at most --embed-limit MB, the genome and tracks as "
    "data URIs (a single file that works anywhere). Larger data are linked relative to the page: "
    "serve a folder holding the page and the scan files over HTTP (python -m http.server)."))
@click.argument("scan", type=click.Path(exists=True), metavar="SCAN_DIR|MANIFEST.json")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="report.html", callback=no_stdout)
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True, help="Calls listed.")
@click.option("--flank", type=click.IntRange(min=0), default=None, metavar="BP",
              help="bp shown either side of the strongest call [default: max(500, 2 x its length)].")
@click.option("--embed-limit", type=click.FloatRange(min=0), default=32.0, show_default=True, metavar="MB",
              help="Embed data up to this size; 0 links everything.")
def report(scan, output, top, flank, embed_limit) -> None:
    """Write a self-contained HTML report (run summary + igv.js browser) of a scan."""
    from ..io.atomic import OutputError, OutputIsInput
    from ..io.bed import BedError
    from ..io.hub import HubError
    from ..pipeline.browser import write_scan_report

    try:
        res = write_scan_report(scan, output=output, top=top, flank=flank, embed_limit_mb=embed_limit)
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (HubError, BedError, OutputError, OSError) as err:
        raise click.ClickException(str(err)) from None
    how = "data embedded" if res.embedded else f"linked: {', '.join(res.linked)}"
    click.echo(f"report: {res.path} ({how})", err=True)


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
@click.option("--dpi", type=click.IntRange(min=50), default=150, show_default=True)
def plot(genome, more_tracks, region, tracks, annotation, calls, title, output, dpi) -> None:
    """Plot tracks (both strands), calls and gene models over a region of GENOME."""
    from ..io.atomic import OutputError, OutputIsInput
    from ..io.fasta import FastaError
    from ..pipeline.browser import plot_region
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
