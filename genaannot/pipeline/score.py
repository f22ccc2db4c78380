"""``genaannot score``: VCF → ref/alt windows → model → delta scores → annotated VCF (+ TSV).

Records are read in bounded chunks (memory does not grow with the number of variants);
each chunk goes through the stages of :mod:`genaannot.scoring` (plan → predict → deltas →
INFO values): all ref and alt windows of all its ALTs are predicted together in batches,
and the records are written back in input order. Reference-window predictions are kept in
a small LRU cache (:class:`genaannot.scoring.ReferenceCache`), so ALTs of one record, and
records at the same position, share one reference prediction. This module owns the files
(VCF reader and writer, TSV), the look-ahead planning workers and the device processes.

Every ALT gets either a score or a reason code (see :data:`genaannot.variants.REASONS`);
every input record is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..conventions import model_convention
from ..genes import OUTSIDE_GENES, GeneIndex
from ..io.atomic import OutputError, check_not_inputs, output_error
from ..readout import Readout, resolve_readout
from ..regions import Interval, IntervalSet, RegionError, match_chroms, parse_regions
from ..scoring import (
    REASON_FIELD,
    SPLICEAI_FIELD,
    SPLICEAI_FORMAT,
    OutcomeOptions,
    RecordWork,
    ReferenceCache,
    add_deltas,
    gene_field,
    info_field,
    numeric_fields,
    plan_records,
    predict_records,
    record_outcome,
    tsv_columns,
)
from ..shards import ScoreShard, parse_shard, plan_score_shard
from ..tasks import Task, get_task
from ..variants import REASONS, SCORES
from .devices import load_for_device, model_config, parse_devices, run_on_devices, uses_cuda
from .workers import ahead, check_can_spawn, cpu_cores, default_threads, torch_threads, worker_state

if TYPE_CHECKING:
    from ..io.fasta import Genome
    from ..io.vcf import VcfRecord
    from ..models.base import Model

#: header line naming the regions a run was restricted to (``regions``/``regions_file``)
REGIONS_META = "genaannotRegions"

#: INFO ids starting with this are genaannot's own (scoring.info_field, REASON_FIELD): replaced on re-scoring
OWN_INFO_PREFIX = "GENA_"

__all__ = ["score_variants", "default_score_workers", "ScoreSummary", "ScoreShard", "plan_score_shard", "REASON_FIELD"]



@dataclass(frozen=True)
class ScoreOptions:
    """How records are scored (the same in every device process); see :func:`score_variants`."""

    distance: int = 50
    #: content tokens per variant window; None: the checkpoint's stated window, else its capacity
    window_tokens: int | None = None
    batch_size: int = 8
    chunk_size: int = 256
    cache_size: int = 1024
    shard_bin_bp: int = 10_000
    workers: int = 0
    threads: int | None = None
    annotation: str | None = None
    mask: bool = False
    outside_genes: str = "score"
    spliceai_info: bool = False
    #: ``(chrom, start, end)`` in the FASTA's names: records overlapping none are not written
    regions: tuple[tuple[str, int, int], ...] | None = None
    regions_text: str = ""
    #: keep every ALT's row in the summary (``return_table``)
    table: bool = False


@dataclass
class ScoreSummary:
    """What :func:`score_variants` did.

    Attributes
    ----------
    records, alts, scored : int
        Records read (= written), ALT alleles, ALTs with a score.
    reasons : dict[str, int]
        ALTs per reason code.
    records_without_alt : int
        Records whose ALT is ``.`` (written unchanged).
    records_outside : int
        Records outside ``regions`` / ``regions_file``: not written, not in ``records``.
    renamed : dict[str, str]
        VCF chromosome name -> FASTA name, for names that differ and were used.
    windows_predicted, cache_hits : int
        Model inputs run, and reference windows served from the cache.
    rows : list of dict, or None
        With ``return_table=True``: one dict per ALT, in output order, keyed by
        :attr:`columns` (the ``--tsv`` table's, unrounded; None or NaN where the TSV has NA);
        :meth:`to_frame` makes it a pandas DataFrame. None otherwise.
    """

    records: int = 0
    alts: int = 0
    scored: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    records_without_alt: int = 0
    records_outside: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    windows_predicted: int = 0
    cache_hits: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""
    tsv: str | None = None
    indexed: bool = False
    columns: list[str] = field(default_factory=list, repr=False)
    rows: list[dict[str, object]] | None = field(default=None, repr=False)  # a row per ALT: not for a repr

    def to_frame(self):
        """:attr:`rows` as a pandas DataFrame (one row per ALT; needs ``return_table=True``)."""
        if self.rows is None:
            raise ValueError("no per-ALT table: call score_variants(..., return_table=True)")
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def format(self) -> str:
        """Human-readable summary (printed at the end of ``genaannot score``)."""
        lines = [
            f"{self.records:,} records, {self.alts:,} ALT alleles: {self.scored:,} scored, "
            f"{self.alts - self.scored:,} with a reason code"
            + (f"; {self.records_without_alt:,} records without ALT" if self.records_without_alt else "")
        ]
        if self.records_outside:
            lines.append(f"  {self.records_outside:,} records outside the regions (-r/-R): not written")
        for code in REASONS:
            if self.reasons.get(code):
                lines.append(f"  {code:<13}{self.reasons[code]:>8,}  {REASONS[code]}")
        for a, b in self.renamed.items():
            lines.append(f"  chromosome {a} -> {b} (FASTA name)")
        rate = self.alts / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"  {self.windows_predicted:,} windows predicted, {self.cache_hits:,} reference windows reused, "
            f"{self.seconds:.1f} s ({rate:.1f} ALT/s)"
        )
        lines.append(f"  wrote {self.output}" + (" (+ .tbi)" if self.indexed else "") + (f" and {self.tsv}" if self.tsv else ""))
        return "\n".join(lines)


def score_variants(
    vcf: str | Path,
    *,
    genome: str | Path | Genome,
    model: str | Path | Model,
    task: str | Task,
    output: str | Path,
    distance: int = 50,
    window_tokens: int | None = None,
    labels: Sequence[str] | None = None,
    tsv: str | Path | None = None,
    batch_size: int = 8,
    strand: str | None = None,
    quiet: bool = False,
    chunk_size: int = 256,
    cache_size: int = 1024,
    shard: tuple[int, int] | str | None = None,
    shard_bin_bp: int = 10_000,
    devices: Sequence[str] | str | None = None,
    workers: int | None = 0,
    device: str | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    compile: bool | dict = False,
    model_options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    annotation: str | Path | None = None,
    mask: bool = False,
    outside_genes: str = "score",
    spliceai_info: bool = False,
    regions: str | Sequence[str | Interval] | None = None,
    regions_file: str | Path | None = None,
    return_table: bool = False,
) -> ScoreSummary:
    """Score every ALT of a VCF with a model and write an annotated VCF (and a TSV).

    Parameters
    ----------
    vcf
        VCF, VCF.gz or BCF path, or ``-`` for standard input.
    genome
        FASTA path (indexed or indexable) or an open :class:`genaannot.io.fasta.Genome`.
    model
        A loaded :class:`~genaannot.models.base.Model`, or anything :func:`genaannot.load_model`
        takes (loaded with ``device``, ``precision``, ``compile`` and ``model_options``).
    task
        ``splice``, ``promoter``, ``chromatin``, ``generic`` (or a :class:`~genaannot.tasks.Task`).
    output
        ``.vcf``, ``.vcf.gz`` (bgzipped + tabix index), ``.bcf`` or ``-`` (stdout).
    distance
        Token heads: gains/losses are searched within ``distance`` bp of the REF allele.
    window_tokens
        Content tokens per variant window, at most the model's capacity. Default: the window
        the checkpoint states (``ModelInfo.window_tokens``), else the capacity (``max_tokens``):
        set it for long-context models (HyenaDNA-1m: 1,000,000 tokens per variant otherwise).
        An ALT whose window cannot hold ``distance`` bp on both sides gets ``TOO_LONG``.
    labels
        Outputs to score (names or indices); default all of the task's.
    tsv
        Optional table with one row per ALT and every raw number.
    strand
        ``both``, ``+`` or ``-``; default both for strand-specific tasks, ``+`` otherwise.
    chunk_size
        Records held in memory at once.
    shard
        ``(i, n)`` or ``"i/n"``: score only shard ``i`` of ``n``: a contiguous stretch of the
        genome holding about ``1/n`` of the records when the VCF is position-sorted (read
        through its index when it has one), else a contiguous range of records (see
        :func:`plan_score_shard`). The output is a partial result with a ``##genaannotShard``
        header line; combine the ``n`` partials with ``genaannot merge``.
    shard_bin_bp
        Granularity of region shards: shard boundaries fall on multiples of it.
    devices
        Several devices (``"0,1"``, ``["cuda:0", "cuda:1"]``, ``"cpu,cpu"``): one process per
        device, each loading the model (from ``model``'s path, with its precision, compile
        and loader options) and scoring one of ``len(devices)`` region shards; the shards
        are then concatenated in input order into ``output`` (and ``tsv``), which have a
        one-process run's records, header, order and format, with numbers equal up to float
        rounding (other windows share a batch). Needs ``vcf`` as a file; cannot be combined
        with ``shard``.
    workers
        Processes that plan and tokenise chunks of records while the model runs (0: one
        helper thread in this process; None: :func:`default_score_workers`). With
        ``devices``, per device process.
    threads
        torch's CPU threads in each process that runs the model (None:
        :func:`~genaannot.pipeline.workers.default_threads`; restored when the call returns).
        Scores do not depend on it.
    progress
        Called after each chunk with ``(records done, records to do)`` instead of drawing a
        progress bar.
    annotation
        GFF3, GTF or SpliceAI gene table (``.txt``): each ALT is reported per overlapping gene
        (symbol in ``GENA_<TASK>_GENE``, ``SpliceAI``'s ``SYMBOL`` and the TSV), scored on the
        gene's strand for strand-specific tasks (instead of ``strand``).
    mask
        With ``annotation`` (splice): zero acceptor/donor gains at the gene's annotated sites
        of that kind and losses elsewhere (SpliceAI ``-M 1``).
    outside_genes
        With ``annotation``: variants in no gene are scored on the readout's strands
        (``score``) or get the reason ``NO_GENE`` (``reason``).
    spliceai_info
        Splice task: also write ``INFO/SpliceAI`` in SpliceAI's layout (one entry per ALT and
        gene, 2 decimals), and search deletions within ``POS ± distance`` as SpliceAI does.
    regions, regions_file
        Score only the records whose REF allele overlaps one of these regions (bcftools
        ``-r``/``-R``): region strings (``"chr1:1,000-2,000,chr2"``: 1-based inclusive, a
        comma-separated list or a list of strings) or :class:`~genaannot.regions.Interval`
        objects, and/or a BED file (0-based half-open); chromosome aliases are resolved
        against the FASTA. The other records are **not written**: their number is
        ``records_outside`` in the summary (printed by the CLI) and the header gets a
        ``##genaannotRegions`` line. Cannot be combined with ``shard``.
    return_table
        Also keep the per-ALT table (the ``tsv`` columns, unrounded) in the summary's
        ``rows`` (``summary.to_frame()`` for pandas): for notebooks; it is held in memory,
        one row per ALT.

    Returns
    -------
    ScoreSummary
        Counts (records, ALTs scored, reason codes, records outside the regions) and, with
        ``return_table``, the rows.
    """
    from ..io.fasta import Genome, open_genome

    t0 = time.perf_counter()
    if distance < 0:
        raise ValueError(f"--distance must be >= 0, not {distance}")
    if str(output) == "-" and tsv is not None and str(tsv) == "-":
        raise ValueError("the VCF and the TSV cannot both go to standard output")
    task_obj = task if isinstance(task, Task) else get_task(task)
    device_list = parse_devices(devices)
    several = device_list is not None and len(device_list) > 1
    if (workers or 0) > 0 or several:
        check_can_spawn("worker and device processes (workers=N, devices=...)")  # before loading anything
    genome_obj = genome if isinstance(genome, Genome) else open_genome(genome)  # fail on the FASTA first
    try:
        _check_outputs(vcf, genome=genome_obj, model=model, output=output, tsv=tsv)
        wanted, wanted_text = _wanted(regions, regions_file, sizes=genome_obj.sizes)
        if wanted is not None and shard is not None:
            raise ValueError("--regions/--regions-file cannot be combined with --shard (a shard's record count "
                             "is fixed before the records are read); restrict the VCF first "
                             "(`bcftools view -R`), then shard it")
    except (OutputError, ValueError):
        if genome_obj is not genome:
            genome_obj.close()
        raise
    if not hasattr(model, "predict_encoded"):
        from ..models import load_model
        from ..models.catalog import check_task

        check_task(str(model), task_obj.name)
        # several devices: this process only needs the model's description
        one = "cpu" if several else (device_list[0] if device_list else device)
        model = load_model(model, device=one, dtype=precision, compile=compile, **(model_options or {}))
    readout = resolve_readout(task_obj, model.info, labels=labels, strand=strand)
    _check_gene_options(readout, annotation=annotation, mask=mask, outside_genes=outside_genes,
                        spliceai_info=spliceai_info, strand=strand)
    shard_t = parse_shard(shard)
    if shard_bin_bp < 1:
        raise ValueError(f"shard_bin_bp must be >= 1, not {shard_bin_bp}")
    if workers is None:
        workers = default_score_workers(device_list or [str(model.device)])
    if workers < 0:
        raise ValueError(f"--workers must be 0 (a helper thread) or more, not {workers}")
    if window_tokens is not None and not 1 <= window_tokens <= model.info.max_tokens:
        raise ValueError(f"--window-tokens must be between 1 and the model's capacity of {model.info.max_tokens:,} "
                         f"tokens ({model.info.source}), not {window_tokens:,}")
    opts = ScoreOptions(distance=distance, window_tokens=window_tokens, batch_size=batch_size, chunk_size=chunk_size, cache_size=cache_size,
                        shard_bin_bp=shard_bin_bp, workers=workers, threads=threads,
                        annotation=None if annotation is None else str(annotation), mask=mask,
                        outside_genes=outside_genes, spliceai_info=spliceai_info,
                        regions=wanted, regions_text=wanted_text, table=bool(return_table))
    if several:
        if shard_t is not None:
            raise ValueError("--devices and --shard cannot be combined; run more shards with one --device each")
        if str(vcf) == "-":
            raise ValueError("--devices needs VARIANTS as a file (each device process reads its own region "
                             "of it), not standard input")
        try:
            return _score_on_devices(vcf, genome=genome_obj, model=model, task=task_obj, labels=labels,
                                     strand=strand, output=output, tsv=tsv, devices=device_list, opts=opts,
                                     quiet=quiet, progress=progress, t0=t0)
        finally:
            if genome_obj is not genome:
                genome_obj.close()
    try:
        with torch_threads(threads or default_threads(workers=workers, device=str(model.device))):
            summary, part = _score(vcf, genome=genome_obj, model=model, task=task_obj, readout=readout,
                                   output=output, tsv=tsv, shard=shard_t, quiet=quiet, progress=progress, opts=opts)
    finally:
        if genome_obj is not genome:
            genome_obj.close()
    if part is not None and part.regions is None:
        summary.notes.insert(0, (
            f"{vcf}: not sorted by position, so shard {part.index}/{part.of} is records "
            f"{part.first + 1:,}-{part.end:,} in input order (`bcftools sort` it to shard by region)"))
    summary.seconds = time.perf_counter() - t0
    return summary


def _check_gene_options(readout: Readout, *, annotation, mask: bool, outside_genes: str, spliceai_info: bool,
                        strand: str | None) -> None:
    if outside_genes not in OUTSIDE_GENES:
        raise ValueError(f"--outside-genes must be one of {', '.join(OUTSIDE_GENES)}, not {outside_genes!r}")
    if annotation is None and (mask or outside_genes != "score"):
        raise ValueError("--mask and --outside-genes need --annotation")
    if annotation is not None and strand not in (None, "both") and readout.strand_specific:
        raise ValueError("--annotation scores each gene's strand; leave out --strand")
    if mask and set(readout.codes) != {"A", "D"}:
        raise ValueError("--mask needs the splice task's acceptor and donor outputs (--task splice, all labels)")
    if spliceai_info and (readout.head != "token" or not {"A", "D"} <= set(readout.codes)):
        raise ValueError("--spliceai-info needs the splice task's acceptor and donor outputs (--task splice)")


def _genes(annotation: str, genome: Genome, *, mask: bool) -> tuple[GeneIndex, list[str]]:
    """The annotation's genes on the FASTA's chromosome names, and notes."""
    from ..io.annotation import read_annotation

    ann = read_annotation(annotation)
    m = match_chroms(ann.chroms, genome.sizes)
    if not m.mapping:
        raise ValueError(f"{annotation}: none of its chromosomes ({', '.join(ann.chroms[:5])}) is in the FASTA")
    if mask and not ann.exons_known:
        raise ValueError(f"{annotation}: has no exon columns (EXON_START, EXON_END), so --mask has no sites to use; "
                         "give a GFF3/GTF or a table with exons, or leave out --mask")
    genes = GeneIndex.from_annotation(ann.rename(m.mapping), sites_known=ann.exons_known)
    notes = [f"{annotation}: {len(genes):,} genes on {len(genes.chroms)} FASTA chromosomes"]
    if m.unmatched:
        notes.append(f"{annotation}: chromosomes not in the FASTA, ignored: {', '.join(m.unmatched[:5])}"
                     + (" …" if len(m.unmatched) > 5 else ""))
    notes += ann.notes  # transcripts left out or changed while reading (counts, first line)
    return genes, notes


def _wanted(regions, regions_file, *, sizes: dict[str, int]) -> tuple[tuple[tuple[str, int, int], ...] | None, str]:
    """``regions`` and ``regions_file`` as ``(chrom, start, end)`` in the FASTA's names, and
    the text of the ``##genaannotRegions`` header line (None, "": no restriction)."""
    if regions is None and regions_file is None:
        return None, ""
    from ..io.bed import read_bed

    ivs: list[Interval] = []
    texts: list[str] = []
    if regions is not None:
        for item in [regions] if isinstance(regions, str) else list(regions):
            if isinstance(item, Interval):
                if item.chrom not in sizes or item.end > sizes[item.chrom]:
                    raise RegionError(f"region {item.ucsc()} does not fit the genome")
                ivs.append(item)
            else:
                ivs.extend(parse_regions(str(item), sizes=sizes))
        texts = [iv.ucsc() for iv in ivs]
        if not ivs:
            raise RegionError("--regions: no region given")
    if regions_file is not None:
        bed = read_bed(regions_file, sizes=sizes)
        ivs.extend(bed)
        texts.append(f"{Path(str(regions_file)).name} ({len(bed):,} intervals)")
    shown = ",".join(texts[:20]) + (f",... ({len(texts):,} in all)" if len(texts) > 20 else "")
    return tuple((iv.chrom, iv.start, iv.end) for iv in ivs), shown


def _check_outputs(vcf, *, genome: Genome, model, output, tsv) -> None:
    """No output (the VCF, its index, the TSV) may overwrite an input (:func:`check_not_inputs`)."""
    src = None if str(vcf) == "-" else str(vcf)
    out = None if str(output) == "-" else str(output)
    inputs = [("VCF", src), ("VCF index", src and src + ".tbi"), ("VCF index", src and src + ".csi"),
              ("FASTA", genome.path), *(("FASTA index", f) for f in genome.index_files),
              ("model", model if isinstance(model, (str, Path)) else getattr(getattr(model, "info", None), "source", None))]
    check_not_inputs([out, out and out + ".tbi", tsv], inputs)


def default_score_workers(devices: Sequence[str]) -> int:
    """Planning processes per device process for ``score``.

    On CUDA the host must keep up with the GPU: a variant costs ≈ 4.6 ms of host CPU (75 %
    BPE, ``bench/score_host.py``) against ≈ 1 ms of an H200's time (a projection from FLOPs:
    no GPU was measured), so each of D GPUs gets
    ``min(4, cores // D - 1)`` workers (besides its own process's threads). On CPU the model
    needs the cores: 0 (one helper thread).
    """
    if not uses_cuda(devices):
        return 0
    return max(0, min(4, cpu_cores() // len(devices) - 1))


def _score(vcf, *, genome: Genome, model: Model, task: Task, readout: Readout, output, tsv, shard, quiet,
           progress, opts: ScoreOptions) -> tuple[ScoreSummary, ScoreShard | None]:
    """One process's run of :func:`score_variants` (all records, or one shard's)."""
    distance, batch_size, chunk_size = opts.distance, opts.batch_size, opts.chunk_size
    cache_size, shard_bin_bp, workers = opts.cache_size, opts.shard_bin_bp, opts.workers
    from tqdm import tqdm

    from ..io.table import TableWriter
    from ..io.vcf import InfoField, open_variants, open_writer

    summary = ScoreSummary(output=str(output), tsv=str(tsv) if tsv is not None else None,
                           columns=tsv_columns(readout), rows=[] if opts.table else None)
    reasons: Counter[str] = Counter()
    reader = open_variants(vcf, bin_bp=shard_bin_bp)
    writer = table = None
    try:
        # re-scoring an annotated VCF: this run's fields replace the earlier run's on every
        # record (kept, they would pass an old model's numbers off as this one's)
        from ..io.vcf import SHARD_META

        dropped = reader.drop_own(info_prefix=OWN_INFO_PREFIX, meta_keys=("genaannotScore", SHARD_META, REGIONS_META),
                                  info_ids=(SPLICEAI_FIELD,) if opts.spliceai_info else ())
        if dropped:
            reader.notes.append(f"{vcf}: removed the annotations of an earlier genaannot run "
                                f"({', '.join(dropped)}); this run's replace them")
        part: ScoreShard | None = None
        records = iter(reader)
        n_todo = reader.n_records
        if shard is not None:
            from ..io.vcf import shard_meta_value

            part = plan_score_shard(reader.layout, n_records=reader.n_records, index=shard[0], of=shard[1])
            n_todo = part.count
            if part.regions is None:
                where = {"mode": "records", "first": part.first, "end": part.end}
                records = itertools.islice(reader, part.first, part.end)
            else:
                where = {"mode": "regions", "bin": shard_bin_bp, "span": part.span(reader.contig_lengths)}
                records = reader.records_in(part.regions)
            reader.add_meta(SHARD_META, shard_meta_value({
                "index": part.index, "of": part.of, **where, "count": part.count, "records": reader.n_records,
                "input": Path(str(vcf)).name, "task": task.name, "distance": distance,
                **({"tsv": Path(str(tsv)).name} if tsv is not None else {}),
            }))
        summary.notes.extend(reader.notes)
        cm = match_chroms(
            list(reader.contig_lengths),
            genome.sizes,
            lengths={k: v for k, v in reader.contig_lengths.items() if v},
        )
        genes = None
        if opts.annotation is not None:
            genes, gene_notes = _genes(opts.annotation, genome, mask=opts.mask)
            summary.notes.extend(gene_notes)
        score = SCORES[readout.head]
        subfields = "|".join(score.subfields(readout.codes))
        what = score.describe(activation=readout.activation, distance=distance)
        names = ",".join(f"{c}={lab}" for c, lab in zip(readout.codes, readout.labels)) if task.codes else ""
        if names and task.site_convention:  # DP is where the model's track changes: its convention says which base
            conv, _ = model_convention(model.info)
            names += f" (site convention {conv.name}: " + ", ".join(f"{k} = {v}" for k, v in conv.short.items()) + ")"
        info_id = info_field(readout)
        # the field list comes last, as in SpliceAI's and VEP's headers (parsers split on "Format: ")
        reader.add_info(InfoField(
            info_id,
            f"genaannot {readout.task} variant scores ({model.info.source}): {what}"
            + (f". Outputs: {names}" if names else "") + f". Format: {subfields}",
        ))
        for fid, typ, meaning in numeric_fields(readout):
            reader.add_info(InfoField(fid, f"genaannot {readout.task} ({model.info.source}), per ALT: {meaning}"
                                      + (" (of the gene with the larger effect)" if genes is not None else ""),
                                      type=typ))
        if genes is not None:
            reader.add_info(InfoField(gene_field(readout), f"genaannot: gene of {opts.annotation} whose score "
                                      f"is reported in {info_id} (the one with the larger effect; '.' = none)"))
        if opts.spliceai_info:
            reader.add_info(InfoField(
                SPLICEAI_FIELD,
                f"genaannot {model.info.source} variant annotation in SpliceAIv1.3.1's layout. These include delta "
                "scores (DS) and delta positions (DP) for acceptor gain (AG), acceptor loss (AL), donor gain (DG), "
                f"and donor loss (DL). Format: {SPLICEAI_FORMAT}",
                number="."))
        reader.add_info(InfoField(
            REASON_FIELD,
            "Why an ALT was not scored by genaannot ('.' = scored). Codes: "
            + "; ".join(f"{k} = {v}" for k, v in REASONS.items()) + ". Format: CODE",
        ))
        gene_meta = ""
        if genes is not None:
            gene_meta = (f",annotation={Path(opts.annotation).name},mask={int(opts.mask)},"
                         f"outside_genes={opts.outside_genes}")
        # a variant's windows fill the model's capacity, or the window its checkpoint states
        # (a dilated CNN reads any length; its own window is what it was made to be read with),
        # or the user's
        window_tokens = int(opts.window_tokens or model.info.window_tokens or model.info.max_tokens)
        reader.add_meta(
            "genaannotScore",
            f"<task={readout.task},model={model.info.source},distance={distance},strands={'/'.join(readout.strands)},"
            f"activation={readout.activation},"
            f"max_tokens={window_tokens}{gene_meta}>",
        )
        if opts.regions is not None:
            reader.add_meta(REGIONS_META, opts.regions_text.replace("\n", " "))
        writer = open_writer(output, reader)
        if tsv is not None:
            with _writing(tsv):
                table = TableWriter(tsv, tsv_columns(readout))
        cache = ReferenceCache(cache_size)
        bar = tqdm(total=n_todo, unit="variant", disable=quiet or progress is not None, file=sys.stderr,
                   dynamic_ncols=True)
        used: set[str] = set()
        finished = 0
        writes: deque[Future] = deque()

        def collect(*, keep: int) -> None:
            """Wait for written chunks until ``keep`` are in flight (a writer error is raised here)."""
            nonlocal finished
            while len(writes) > keep or (writes and writes[0].done()):
                n = writes.popleft().result()
                # records outside the regions count as done (they were read, and left out)
                now = finished + n + summary.records_outside
                bar.update(now - bar.n)
                finished += n
                if progress is not None:
                    progress(now, n_todo)

        if progress is not None:
            progress(0, n_todo)
        done = 0

        inside = IntervalSet(Interval(*r) for r in opts.regions) if opts.regions is not None else None

        def counted(records: Iterator[VcfRecord]) -> Iterator[VcfRecord]:
            nonlocal done
            for rec in records:
                done += 1
                if inside is not None:
                    g = cm.mapping.get(rec.chrom)
                    if g is None or not inside.overlaps(g, rec.start, rec.reach):  # bcftools -r: INFO/END counts
                        summary.records_outside += 1
                        continue
                used.add(rec.chrom)
                yield rec

        # three stages, each at most a chunk or so ahead of the next: chunks are planned
        # (FASTA reads, BPE) ahead by a thread or worker processes while chunk k is on the
        # device and chunk k-1's deltas are computed and written on a writer thread, so the
        # device waits for neither
        plan_kwargs = {"mapping": cm.mapping, "readout": readout, "tokenizer": model.tokenizer,
                       "max_tokens": window_tokens, "distance": distance, "genes": genes,
                       "outside_genes": opts.outside_genes}
        outcome = OutcomeOptions(mask=opts.mask, spliceai=opts.spliceai_info, annotated=genes is not None)
        writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genaannot-write")
        try:
            with _planned_chunks(counted(records), chunk_size=chunk_size, genome=genome, kwargs=plan_kwargs,
                                 workers=workers) as planned:
                for works in planned:
                    pred = predict_records(works, readout=readout, model=model, batch_size=batch_size, cache=cache)
                    summary.windows_predicted += pred.windows_predicted
                    summary.cache_hits += pred.cache_hits
                    writes.append(writer_thread.submit(_write_chunk, works, pred.pairs, readout, distance, writer,
                                                       table, summary, reasons, outcome))
                    collect(keep=1)
            collect(keep=0)
            if summary.records_outside:  # records after the last written chunk
                bar.update(finished + summary.records_outside - bar.n)
                if progress is not None:
                    progress(finished + summary.records_outside, n_todo)
        finally:
            writer_thread.shutdown(wait=True, cancel_futures=True)
        if done != n_todo:  # the file changed under us, or an index that does not match it
            from ..io.vcf import VcfError

            raise VcfError(f"{vcf}: read {done:,} records for this shard but counted {n_todo:,} when opening; "
                           "was the file (or its index) changed during the run?")
        bar.close()
        writer.close()
        summary.indexed = writer.indexed
        if table is not None:
            with _writing(tsv):
                table.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        if table is not None:
            table.abort()
        raise
    finally:
        reader.close()
    summary.reasons = {k: reasons[k] for k in REASONS if reasons[k]}
    summary.renamed = {k: v for k, v in cm.renamed.items() if k in used}
    for name in sorted(used):
        vlen = reader.contig_lengths.get(name)
        g = cm.mapping.get(name)
        if g is not None and vlen and vlen != genome.sizes[g]:
            summary.notes.append(
                f"VCF header gives {name} as {vlen:,} bp but FASTA {g} has {genome.sizes[g]:,} bp; "
                "records past the FASTA end are EDGE"
            )
    return summary, part


def _score_job(device: str, job: dict, report) -> tuple[ScoreSummary, ScoreShard | None]:
    """One device process of :func:`_score_on_devices`: score shard ``job["shard"]``."""
    from ..io.fasta import open_genome

    model = load_for_device(job["model"], device, n_devices=job["shard"][1])
    readout = resolve_readout(job["task"], model.info, labels=job["labels"], strand=job["strand"])
    with open_genome(job["genome"], verify=False) as genome:  # the parent checked it
        return _score(job["vcf"], genome=genome, model=model, task=job["task"], readout=readout, output=job["output"],
                      tsv=job["tsv"], shard=job["shard"], quiet=True,
                      progress=lambda done, total: report("progress", (done, total)), opts=job["opts"])


def _score_on_devices(vcf, *, genome, model: Model, task: Task, labels, strand, output, tsv,
                      devices: list[str], opts: ScoreOptions, quiet: bool, progress, t0: float) -> ScoreSummary:
    """``score_variants(devices=[...])``: shard ``k`` of ``D`` on device ``k``, each written to a
    temporary partial VCF (and TSV) in a scratch directory beside ``output``, then
    concatenated in shard order into ``output``."""
    from ..io.atomic import scratch_dir
    from ..io.fasta import Genome, open_genome

    if isinstance(genome, Genome):
        genome_path = str(genome.path)
    else:
        with open_genome(genome) as g:  # checks it (and indexes it) once, before D processes do
            genome_path = str(g.path)
    out_dir = Path(".") if str(output) == "-" else Path(str(output)).parent
    if not out_dir.is_dir():
        raise ValueError(f"{output}: output directory {out_dir} does not exist")
    with scratch_dir(out_dir, prefix=".genaannot-score-") as tmp, _progress_bar(quiet or progress is not None) as bar:
        return _devices_in(tmp, vcf, genome_path=genome_path, model=model, task=task, labels=labels, strand=strand,
                           output=output, tsv=tsv, devices=devices, opts=opts, progress=progress, bar=bar, t0=t0)


@contextlib.contextmanager
def _progress_bar(disable: bool):
    from tqdm import tqdm

    bar = tqdm(total=None, unit="variant", disable=disable, file=sys.stderr, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def _devices_in(tmp: Path, vcf, *, genome_path: str, model, task, labels, strand, output, tsv, devices, opts,
                progress, bar, t0: float) -> ScoreSummary:
    from ..io.vcf import concat_tables, concat_vcfs

    n = len(devices)
    parts = [tmp / f"shard{k + 1}.vcf" for k in range(n)]
    tables = [tmp / f"shard{k + 1}.tsv" for k in range(n)] if tsv is not None else [None] * n
    jobs = [{"vcf": str(vcf), "genome": genome_path, "model": model_config(model, threads=opts.threads), "task": task,
             "labels": labels, "strand": strand,
             "shard": (k + 1, n), "output": str(parts[k]), "tsv": None if tables[k] is None else str(tables[k]),
             "opts": opts} for k in range(n)]
    state: dict[int, tuple[int, int]] = {}

    def relay(kind: str, rank: int, value) -> None:
        if kind != "progress":
            return
        state[rank] = value
        done, total = (sum(v[i] for v in state.values()) for i in (0, 1))
        if progress is not None:
            progress(done, total)
        elif len(state) == n:
            bar.total = total
            bar.n = done
            bar.refresh()

    results = run_on_devices(_score_job, jobs, devices=devices, on_message=relay, error=RuntimeError)
    indexed = concat_vcfs(parts, output, expect=[part.count - s.records_outside for s, part in results])
    if tsv is not None:
        concat_tables(tables, tsv)
    return _combine([s for s, _ in results], [p for _, p in results], vcf=vcf, output=output, tsv=tsv,
                    indexed=indexed, seconds=time.perf_counter() - t0)


def _combine(summaries: list[ScoreSummary], parts: list[ScoreShard | None], *, vcf, output, tsv, indexed: bool,
             seconds: float) -> ScoreSummary:
    """One :class:`ScoreSummary` for the shards of a ``devices`` run."""
    out = ScoreSummary(output=str(output), tsv=str(tsv) if tsv is not None else None, indexed=indexed,
                       seconds=seconds, columns=summaries[0].columns if summaries else [])
    if summaries and summaries[0].rows is not None:  # in shard order, as the files are concatenated
        out.rows = [row for s in summaries for row in (s.rows or [])]
    reasons: Counter[str] = Counter()
    for s in summaries:
        for f in ("records", "alts", "scored", "records_without_alt", "records_outside", "windows_predicted",
                  "cache_hits"):
            setattr(out, f, getattr(out, f) + getattr(s, f))
        reasons.update(s.reasons)
        out.renamed.update(s.renamed)
        out.notes.extend(x for x in s.notes if x not in out.notes)
    out.reasons = {k: reasons[k] for k in REASONS if reasons[k]}
    if any(p is not None and p.regions is None for p in parts):
        out.notes.insert(0, f"{vcf}: not sorted by position, so each device scored a range of records "
                            "(the output keeps input order)")
    return out


def _setup_planner(state: dict) -> None:
    from ..io.fasta import open_genome

    state["genome_obj"] = open_genome(state["genome"], verify=False)  # the parent checked it


def _plan_remote(chunk: list[VcfRecord]) -> list[RecordWork]:
    st = worker_state
    return plan_records(chunk, genome=st["genome_obj"], **st["kwargs"])


@contextlib.contextmanager
def _planned_chunks(records: Iterator[VcfRecord], *, chunk_size: int, genome: Genome, kwargs: dict,
                    workers: int) -> Iterator[Iterator[list[RecordWork]]]:
    """Planned chunks of ``records``, in order, made ahead of the consumer: by one helper
    thread (``workers`` = 0: FASTA reads and BPE mostly run outside the GIL), or by
    ``workers`` spawned processes (also the Python part of planning runs in parallel), at
    most ``workers + 1`` chunks ahead (bounded memory)."""
    def local(chunk: list[VcfRecord]) -> list[RecordWork]:
        return plan_records(chunk, genome=genome, **kwargs)

    def send(chunk: list[VcfRecord]) -> list[VcfRecord]:
        # records travel without their pysam object; the writer gets the originals back
        return [dataclasses.replace(r, _rec=None) for r in chunk]

    with ahead(_chunks(records, chunk_size), local=local, remote=_plan_remote, workers=workers,
               setup=_setup_planner, state={"genome": str(genome.path), "kwargs": kwargs},
               thread=True, send=send) as planned:
        def gen() -> Iterator[list[RecordWork]]:
            for chunk, works in planned:
                for w, rec in zip(works, chunk):
                    w.record = rec
                yield works

        yield gen()


@contextlib.contextmanager
def _writing(path) -> Iterator[None]:
    """An OS error while writing the table ``path`` named with it (a bare ``[Errno 28]``
    would not say which output filled the disk, e.g. with ``-o -``)."""
    from ..io.table import TableError

    try:
        yield
    except (OutputError, TableError):
        raise
    except OSError as err:
        raise output_error("standard output" if str(path) == "-" else path, err) from None


def _chunks(records: Iterator[VcfRecord], size: int) -> Iterator[list[VcfRecord]]:
    chunk: list[VcfRecord] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_chunk(works: list[RecordWork], pairs: list[tuple], readout: Readout, distance: int, writer, table,
                 summary: ScoreSummary, reasons: Counter[str], outcome: OutcomeOptions) -> int:
    """Deltas of a predicted chunk, then its records, in order; returns the record count."""
    add_deltas(pairs, readout=readout, distance=distance, spliceai_region=outcome.spliceai)
    for w in works:
        summary.records += 1
        if not w.alts:
            summary.records_without_alt += 1
            writer.write(w.record, {})
            continue
        out = record_outcome(w, readout, rows=table is not None or summary.rows is not None, options=outcome)
        summary.alts += len(w.alts)
        summary.scored += out.n_scored
        reasons.update(out.reasons)
        writer.write(w.record, out.info)
        for row in out.rows:
            if table is not None:
                with _writing(table.path):
                    table.write_row(row)
            if summary.rows is not None:
                summary.rows.append(dict(zip(summary.columns, row)))
    return len(works)
