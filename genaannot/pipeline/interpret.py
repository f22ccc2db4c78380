"""``ism_region`` / ``attribute_region``: genome + region + model → interpretation files.

Chains :mod:`genaannot.io.fasta` (letters), :mod:`genaannot.interpret` (compute) and
:mod:`genaannot.io.tracks` (atomic writers). Coordinates are 0-based, half-open inside;
the region string and ``site`` given by users are 1-based (samtools convention).

Outputs (``OUT`` = the ``-o`` path without a ``.bw``/``.tsv``/``.npz`` suffix)

``ism``
    ``OUT.max_abs.bw`` (largest |effect| per base), ``OUT.mean.bw`` (mean effect per base),
    ``OUT.tsv`` (chrom, 1-based pos, ref, alt, effect; 3 rows per base), ``OUT.npz``
    (``effects [L, 4]`` for alt A/C/G/T with NaN at the reference letter, ``positions [L]``
    0-based, ``ref``), ``OUT.json`` (parameters, window, site, reference score).
``attribute``
    ``OUT.bedGraph`` and ``OUT.bw`` (per-base attribution over the whole model window),
    ``OUT.json`` (parameters, f(input), f(baseline), sum, completeness error).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..interpret import (
    BASELINES,
    InterpretError,
    Target,
    Window,
    centered_window,
    integrated_gradients,
    ism,
    resolve_target,
    strongest_site,
)
from ..io.atomic import check_not_inputs
from ..io.naming import strip_suffix
from ..io.tracks import (
    BedGraphWriter,
    BigWigWriter,
    check_writable,
    save_npz_atomic,
    write_json_atomic,
    write_lines_atomic,
)
from ..regions import Interval, parse_region
from ..stitch import runs
from ..tasks import get_task
from .workers import default_threads, torch_threads

if TYPE_CHECKING:
    from ..io.fasta import Genome
    from ..models.base import Model

__all__ = ["ism_region", "attribute_region", "InterpretRun", "output_stem"]

_SUFFIXES = (".bw", ".bigwig", ".bigWig", ".tsv", ".npz", ".bedGraph", ".bedgraph", ".json")


def output_stem(output: str | Path) -> Path:
    """``OUT.bw`` → ``OUT`` (any known suffix removed)."""
    return strip_suffix(output, _SUFFIXES)


@dataclass
class InterpretRun:
    """What an interpretation run wrote; ``meta`` is the JSON metadata."""

    files: dict[str, Path]
    meta: dict[str, Any]


def _write_track(cls, path: Path, sizes: dict[str, int], chrom: str, start: int, values: np.ndarray, name: str) -> None:
    w = cls(path, sizes=sizes, name=name)
    try:
        s, e, v = runs(values, offset=start)
        w.add(chrom, s, e, v)
    except BaseException:
        w.abort()
        raise
    w.commit()


def _prepare(genome: Genome, model: Model, *, region: str, task: str, label: str | None, strand: str,
             site: int | None, logit: bool, window_tokens: int | None, batch_size: int,
             max_bp: int | None) -> tuple[Interval, Target, Window, int | None, Any]:
    t = get_task(task)
    iv = parse_region(region, sizes=genome.sizes)
    if max_bp is not None and len(iv) > max_bp:
        raise InterpretError(f"region {iv.ucsc()} is {len(iv):,} bp; the limit is {max_bp:,} bp")
    if strand not in ("+", "-"):
        raise InterpretError(f"strand must be + or -, not {strand!r}")
    ro = resolve_target(model, t, label=label, logit=logit, window_tokens=window_tokens)
    wt = ro.window_tokens
    site0 = None
    if ro.head == "token" and site is not None:
        site0 = int(site) - 1
        if not 0 <= site0 < genome.sizes[iv.chrom]:
            raise InterpretError(f"--site {site} lies outside {iv.chrom}")
    focus = (min(iv.start, site0 if site0 is not None else iv.start),
             max(iv.end, site0 + 1 if site0 is not None else iv.end))
    win = centered_window(fetch=genome.fetch, chrom=iv.chrom, chrom_size=genome.sizes[iv.chrom], focus=focus,
                          tokenizer=model.tokenizer, window_tokens=wt, strand=strand)
    if ro.head == "token" and site0 is None:
        site0 = strongest_site(model, win, ro, (iv.start, iv.end), batch_size=batch_size)
    return iv, ro, win, site0, t


def _common_meta(command: str, genome: Genome, model: Model, iv: Interval, ro: Target, win: Window,
                 site0: int | None, task) -> dict[str, Any]:
    info = model.info
    return {
        "genaannot": __version__,
        "command": command,
        "genome": str(Path(genome.path).resolve()),
        "task": task.name,
        "model": {"source": str(info.source), "family": info.family, "architecture": info.architecture,
                  "head": info.head, "labels": list(info.labels), "tokenizer": info.tokenizer},
        "region": iv.ucsc(),
        "label": ro.label,
        "channel": ro.channel,
        "activation": ro.activation,
        "quantity": ro.quantity,
        "readout": ro.head,
        "strand": win.strand,
        "site": None if site0 is None else site0 + 1,
        "site_note": "1-based position whose token is read (token heads)" if site0 is not None else None,
        "window": {"chrom": win.chrom, "start": win.start, "end": win.end, "bp": len(win.seq),
                   "ucsc": Interval(win.chrom, win.start, win.end).ucsc(),
                   "tokens": len(model.tokenizer.encode(win.model_seq()))},
        "coordinates": "0-based half-open in BED/bigWig/npz; 1-based in TSV pos, region and site",
    }


def _output_files(output: str | Path, genome: Genome, model: Model, **suffixes: str) -> dict[str, Path]:
    """``OUT`` + each suffix (``OUT`` without its extension), each checked writable and none
    an input (the FASTA, its index, the model's files: :func:`check_not_inputs`)."""
    stem = output_stem(output)
    files = {key: stem.with_name(stem.name + sfx) for key, sfx in suffixes.items()}
    inputs = [("FASTA", getattr(genome, "path", None)),
              *(("FASTA index", f) for f in getattr(genome, "index_files", ())),
              ("model", getattr(getattr(model, "info", None), "source", None))]
    check_not_inputs(files.values(), inputs)
    for p in files.values():
        check_writable(p)
    return files


def _ism(
    genome: Genome,
    model: Model,
    *,
    region: str,
    task: str,
    output: str | Path,
    label: str | None = None,
    site: int | None = None,
    strand: str = "+",
    logit: bool = False,
    window_tokens: int | None = None,
    batch_size: int = 8,
    quiet: bool = True,
) -> InterpretRun:
    """Saturation mutagenesis of ``region`` (1-based inclusive string); see module docstring."""
    from ..interpret import MAX_ISM_BP

    files = _output_files(output, genome, model, max_abs_bigwig=".max_abs.bw", mean_bigwig=".mean.bw", tsv=".tsv", npz=".npz",
                          json=".json")
    iv, ro, win, site0, t = _prepare(genome, model, region=region, task=task, label=label, strand=strand,
                                     site=site, logit=logit, window_tokens=window_tokens,
                                     batch_size=batch_size, max_bp=MAX_ISM_BP)
    from tqdm.auto import tqdm

    n_mut = sum(4 - (c in "ACGT") for c in win.seq[iv.start - win.start : iv.end - win.start])
    with tqdm(total=n_mut, disable=quiet, unit="mutant", desc="ism", leave=False) as bar:
        res = ism(model, win, (iv.start, iv.end), ro, site=site0, batch_size=batch_size, progress=bar.update)
    sizes = genome.sizes
    _write_track(BigWigWriter, files["max_abs_bigwig"], sizes, iv.chrom, iv.start, res.max_abs, "ISM max |effect|")
    _write_track(BigWigWriter, files["mean_bigwig"], sizes, iv.chrom, iv.start, res.mean, "ISM mean effect")
    write_lines_atomic(
        files["tsv"],
        (f"{iv.chrom}\t{p + 1}\t{r}\t{a}\t{e:.6g}" for p, r, a, e in res.rows()),
        header="#chrom\tpos\tref\talt\teffect",
    )
    save_npz_atomic(files["npz"], {
        "effects": res.effects,
        "alts": np.array(list("ACGT")),
        "positions": np.arange(iv.start, iv.end, dtype=np.int64),
        "ref": np.array(list(res.ref)),
        "ref_score": np.float64(res.ref_score),
    })
    meta = _common_meta("ism", genome, model, iv, ro, win, site0, t)
    meta.update({
        "effect": f"f(alt) - f(ref), f = {ro.quantity} of label {ro.label!r}"
                  + (" at the site's token" if ro.head == "token" else " of the window"),
        "ref_score": res.ref_score,
        "n_mutants": int(np.isfinite(res.effects).sum()),
        "n_mutants_cut": res.n_cut,
        "max_abs_effect": float(np.nanmax(np.abs(res.effects))),
        "files": {k: p.name for k, p in files.items()},
    })
    write_json_atomic(files["json"], meta)
    return InterpretRun(files, meta)


def _attribute(
    genome: Genome,
    model: Model,
    *,
    region: str,
    task: str,
    output: str | Path,
    label: str | None = None,
    site: int | None = None,
    strand: str = "+",
    logit: bool = False,
    window_tokens: int | None = None,
    steps: int = 50,
    baseline: str = "zero",
    batch_size: int = 16,
) -> InterpretRun:
    """Integrated-gradients attribution around ``region``; see module docstring."""
    if baseline not in BASELINES:
        raise InterpretError(f"unknown baseline {baseline!r}; choose {', '.join(BASELINES)}")
    files = _output_files(output, genome, model, bigwig=".bw", bedgraph=".bedGraph", json=".json")
    iv, ro, win, site0, t = _prepare(genome, model, region=region, task=task, label=label, strand=strand,
                                     site=site, logit=logit, window_tokens=window_tokens,
                                     batch_size=batch_size, max_bp=None)
    att = integrated_gradients(model, win, ro, site=site0, steps=steps, baseline=baseline, batch_size=batch_size)
    sizes = genome.sizes
    _write_track(BigWigWriter, files["bigwig"], sizes, win.chrom, win.start, att.per_base, "IG attribution")
    _write_track(BedGraphWriter, files["bedgraph"], sizes, win.chrom, win.start, att.per_base, "IG attribution")
    a, b = iv.start - win.start, iv.end - win.start
    meta = _common_meta("attribute", genome, model, iv, ro, win, site0, t)
    meta.update({
        "method": "integrated gradients on the content tokens' word embeddings",
        "baseline": baseline,
        "baseline_note": BASELINES[baseline],
        "steps": steps,
        "rule": "trapezoid over steps+1 points",
        "projection": "token attribution (summed over the hidden dimension) split evenly over its bases",
        "f_input": att.f_input,
        "f_baseline": att.f_baseline,
        "sum_attributions": att.total,
        "sum_attributions_region": float(att.per_base[a:b].sum()),
        "completeness_error": att.completeness_error,
        "completeness_relative_error": att.relative_error,
        "track_extent": "the whole model window (see window)",
        "files": {k: p.name for k, p in files.items()},
    })
    write_json_atomic(files["json"], meta)
    return InterpretRun(files, meta)


@contextlib.contextmanager
def _opened(genome: str | Path | Genome, model: str | Path | Model, *, task: str, device: str | None,
            precision: str, threads: int | None = None) -> Iterator[tuple[Genome, Model]]:
    """The genome (opened here when a path) and the model (loaded here when not one; the
    task's published checkpoint when ``None``), the FASTA first so a bad one fails fast;
    torch runs with ``threads`` CPU threads meanwhile (None: :func:`default_threads`)."""
    from ..io.fasta import Genome as _Genome
    from ..io.fasta import open_genome

    gen = genome if isinstance(genome, _Genome) else open_genome(genome)
    try:
        if not hasattr(model, "predict_encoded"):
            from ..models import load_model

            ref = model if model is not None else get_task(task).default_model_id
            if ref is None:
                raise InterpretError(f"task {task} has no default checkpoint; pass a model")
            model = load_model(ref, device=device, dtype=precision)
        with torch_threads(threads or default_threads(workers=0, device=str(model.device))):
            yield gen, model
    finally:
        if gen is not genome:
            gen.close()


def ism_region(
    genome: str | Path | Genome,
    model: str | Path | Model | None,
    *,
    task: str,
    region: str,
    output: str | Path,
    label: str | None = None,
    site: int | None = None,
    strand: str = "+",
    logit: bool = False,
    window_tokens: int | None = None,
    batch_size: int = 8,
    quiet: bool = True,
    device: str | None = None,
    precision: str = "fp32",
    threads: int | None = None,
) -> InterpretRun:
    """Saturation mutagenesis of a region; see the module docstring.

    ``genome``: FASTA path or open :class:`~genaannot.io.fasta.Genome`; ``model``: a loaded
    model or anything :func:`genaannot.load_model` takes (loaded on ``device`` at
    ``precision``; ``None``: the task's published checkpoint); ``threads``: torch's CPU
    threads (None: :func:`~genaannot.pipeline.workers.default_threads`); ``region``: 1-based
    inclusive string; ``output``: the track path (``OUT.bw``).
    """
    with _opened(genome, model, task=task, device=device, precision=precision, threads=threads) as (gen, m):
        return _ism(gen, m, task=task, region=region, output=output, label=label, site=site, strand=strand,
                    logit=logit, window_tokens=window_tokens, batch_size=batch_size, quiet=quiet)


def attribute_region(
    genome: str | Path | Genome,
    model: str | Path | Model | None,
    *,
    task: str,
    region: str,
    output: str | Path,
    label: str | None = None,
    site: int | None = None,
    strand: str = "+",
    logit: bool = False,
    window_tokens: int | None = None,
    steps: int = 50,
    baseline: str = "zero",
    batch_size: int = 16,
    device: str | None = None,
    threads: int | None = None,
) -> InterpretRun:
    """Integrated-gradients attribution around a region; see the module docstring.

    Arguments as :func:`ism_region` (gradients run in fp32: autocast would make the
    completeness check meaningless), plus ``steps`` and ``baseline``.
    """
    with _opened(genome, model, task=task, device=device, precision="fp32", threads=threads) as (gen, m):
        return _attribute(gen, m, task=task, region=region, output=output, label=label, site=site, strand=strand,
                          logit=logit, window_tokens=window_tokens, steps=steps, baseline=baseline,
                          batch_size=batch_size)
