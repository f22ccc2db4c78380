"""``genaannot merge``: combine the partial results of sharded ``scan`` / ``score`` runs.

Heavy imports happen inside the command so ``genaannot --help`` stays fast.
"""

from __future__ import annotations

import click

from .options import no_stdout


@click.command(
    "merge",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Scan: give the OUT.parts/ directories (or the -o names) of `scan --shard I/N` runs; -o OUT.bw "
        "names the final files as scan would (OUT.<label>.<strand>.bw, OUT.calls.bed, OUT.json). They "
        "are byte-identical to a single run. Score: give the N VCFs of `score --shard I/N` (each record "
        "in exactly one); -o OUT.vcf.gz is bgzipped and tabix-indexed, --tsv concatenates the shards' "
        "tables. The partials are left in place."
    ),
)
@click.argument("partials", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="OUT.bw|OUT.vcf.gz", callback=no_stdout,
              help="Final output (a scan's bigWig name, or the merged VCF).")
@click.option("--tsv", type=click.Path(dir_okay=False), default=None, metavar="OUT.tsv", callback=no_stdout,
              help="Score only: also concatenate the shards' TSV tables.")
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
def merge(partials, output, tsv, quiet) -> None:
    """Merge PARTIALS of one sharded scan or score run into final files."""
    from ..io.atomic import OutputIsInput
    from ..io.tracks import OutputError
    from ..io.vcf import VcfError
    from ..pipeline.merge import MergeError
    from ..pipeline.merge import merge as run_merge

    try:
        res = run_merge(list(partials), output=output, tsv=tsv, quiet=quiet)
    except OutputIsInput as err:
        raise click.UsageError(str(err)) from None
    except (MergeError, OutputError, VcfError) as err:
        raise click.ClickException(str(err)) from None
    if quiet:
        return
    if hasattr(res, "tracks"):
        c = res.counts
        click.echo(f"merged {c.get('units', 0)} work units: {len(res.tracks)} track(s), {c.get('calls', 0):,} "
                   f"calls; manifest {res.manifest}", err=True)
    else:
        click.echo(f"merged {res.shards} shards: {res.records:,} records -> {res.vcf}"
                   + (f" (+ {res.tsv})" if res.tsv else "")
                   + (" (input was not sorted: sorted in memory)" if res.sorted_in_memory else ""), err=True)
