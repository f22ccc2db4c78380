"""Read a scan's manifest; write a UCSC track hub, a ``.2bit`` and an IGV session.

Text comes from :mod:`genaannot.hub`; this module only touches files (all atomic).

The ``.2bit`` writer follows the UCSC format (version 0, 32-bit offsets, little-endian):
sequence letters packed 2 bits per base (T=0, C=1, A=2, G=3), runs of ``N`` as N-blocks and
lower-case letters as mask blocks, so ``twoBitToFa`` gives back the FASTA letters.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import struct
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ..hub import (
    BED12_AS,
    BIGNARROWPEAK_AS,
    HubOptions,
    HubTextError,
    ScanRun,
    TrackFile,
    check_genome_name,
    check_line_text,
    genomes_txt,
    hub_txt,
    igv_session_xml,
    model_name,
    safe_name,
    site_text,
    strongest_calls,
    trackdb_txt,
    transcript_bed12,
)
from .atomic import AtomicFile, OutputError, check_not_inputs, write_text_atomic
from .bed import read_calls

__all__ = ["HubError", "read_scan", "write_twobit", "write_hub", "write_igv_session", "HubResult", "calls_to_bigbed",
           "annotation_to_bigbed", "place_file", "description_html"]

TWOBIT_SIGNATURE = 0x1A412743
_CODE = np.full(256, 255, dtype=np.uint8)
for _c, _v in zip("TCAGtcag", (0, 1, 2, 3, 0, 1, 2, 3)):
    _CODE[ord(_c)] = _v


class HubError(ValueError):
    """A scan directory or manifest that cannot be turned into a hub/report."""


def read_scan(path: str | Path) -> ScanRun:
    """The scan described by ``path``: a manifest ``OUT.json`` or a directory holding one.

    Track and calls paths in the manifest are relative to the manifest's directory and must
    stay inside it (a manifest is a file anyone can hand you: ``../../etc/passwd`` or an
    absolute path would be embedded in a report or served by a hub). The genome may be
    anywhere (it is the user's reference) but must open as a FASTA. Labels and the task are
    refused when they hold control characters (they become lines of hub text and BED names).

    Raises
    ------
    HubError
        Naming the manifest and the key: not a scan manifest, a file missing or outside the
        scan directory, a label with control characters.
    """
    path = Path(path)
    if path.is_dir():
        found = []
        for p in sorted(path.glob("*.json")):
            try:
                m = json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(m, dict) and m.get("command") == "scan" and "files" in m:
                found.append(p)
        if not found:
            raise HubError(f"{path}: no scan manifest (a .json written by `genaannot scan`) in this directory")
        if len(found) > 1:
            raise HubError(f"{path}: several scan manifests ({', '.join(p.name for p in found)}); pass one of them")
        path = found[0]
    if not path.is_file():
        raise HubError(f"{path}: scan manifest not found")
    try:
        m = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HubError(f"{path}: not a JSON manifest ({err})") from None
    if not isinstance(m, dict) or m.get("command") != "scan" or not isinstance(m.get("files"), list):
        raise HubError(f"{path}: not a `genaannot scan` manifest (no files list)")
    base = path.parent.resolve()
    tracks = []
    for i, f in enumerate(m["files"]):
        if not isinstance(f, dict) or not isinstance(f.get("bigwig"), str):
            raise HubError(f"{path}: files[{i}] has no bigwig path; is the manifest from `genaannot scan`?")
        p = _inside(path, base, f["bigwig"], key=f"files[{i}].bigwig")
        if not p.is_file():
            raise HubError(f"{path}: track {f['bigwig']} listed in the manifest (files[{i}].bigwig) is missing")
        label = _text(path, f.get("label", p.stem), key=f"files[{i}].label")
        strand = f.get("strand", ".")
        if strand not in ("+", "-", "."):
            raise HubError(f"{path}: files[{i}].strand is {strand!r}, not +, - or .")
        tracks.append(TrackFile(label, strand, p))
    calls = None
    cm = m.get("calls")
    if isinstance(cm, dict) and cm.get("path"):
        if not isinstance(cm["path"], str):
            raise HubError(f"{path}: calls.path is not a file name")
        c = _inside(path, base, cm["path"], key="calls.path")
        calls = c if c.is_file() else None
    genome = m.get("genome", "")
    if not isinstance(genome, str) or not genome or not Path(genome).is_file():
        raise HubError(f"{path}: genome {genome} named in the manifest is not found")
    genome = Path(genome)
    sizes = _fai_sizes(genome)
    labels = m.get("labels", [])
    if not isinstance(labels, list):
        raise HubError(f"{path}: labels is not a list")
    labels = [_text(path, lab, key=f"labels[{i}]") for i, lab in enumerate(labels)]
    task = _text(path, m.get("task", "scan"), key="task")
    return ScanRun(path.resolve(), m, genome.resolve(), sizes, task, labels, tracks, calls,
                   str(m.get("activation", "sigmoid")))


def _inside(manifest: Path, base: Path, name: str, *, key: str) -> Path:
    """``base / name`` resolved, or HubError when it leads outside ``base`` (``..``, absolute, symlink)."""
    p = (base / name).resolve()
    if not p.is_relative_to(base):
        raise HubError(f"{manifest}: {key} {name!r} points outside the scan directory {base}; a scan "
                       "manifest names its files relative to itself; regenerate it with `genaannot scan`")
    return p


def _text(manifest: Path, value: object, *, key: str) -> str:
    """A manifest string that becomes a name (track, hub line, BED field): no control characters."""
    if not isinstance(value, str):
        raise HubError(f"{manifest}: {key} is {value!r}, not a string")
    try:
        return check_line_text(value, what=key)
    except HubTextError as err:
        raise HubError(f"{manifest}: {err} (edit the manifest, or rename the label in the model's "
                       "config.json id2label and scan again)") from None


def _fai_sizes(genome: Path) -> dict[str, int]:
    from .fasta import open_genome

    with open_genome(genome) as g:
        return dict(g.sizes)


def _blocks(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and sizes of the runs of True in ``mask``."""
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    return starts.astype(np.uint32), (np.flatnonzero(d == -1) - starts).astype(np.uint32)


def write_twobit(genome_path: str | Path, out: str | Path) -> Path:
    """Write the FASTA as UCSC ``.2bit`` (one sequence in memory at a time)."""
    from .fasta import open_genome

    out = Path(out)
    f = AtomicFile(out)
    try:
        with open_genome(genome_path) as g, open(f.tmp, "wb") as fh:
            names = list(g.sizes)
            if any(len(n.encode()) > 255 for n in names):
                raise OutputError(f"{out}: a sequence name is longer than 255 bytes (2bit limit)")
            header = 16 + sum(1 + len(n.encode()) + 4 for n in names)
            fh.write(struct.pack("<IIII", TWOBIT_SIGNATURE, 0, len(names), 0))
            fh.write(b"\0" * (header - 16))  # index, filled in below
            offsets = []
            for name in names:
                offsets.append(fh.tell())
                seq = np.frombuffer(g.fetch(name, 0, g.sizes[name]).encode("ascii"), dtype=np.uint8)
                codes = _CODE[seq]
                n_starts, n_sizes = _blocks(codes == 255)  # anything not ACGT is stored as N
                m_starts, m_sizes = _blocks(seq >= ord("a"))
                codes = np.where(codes == 255, 0, codes).astype(np.uint8)
                pad = (-len(codes)) % 4
                c4 = np.concatenate((codes, np.zeros(pad, dtype=np.uint8))).reshape(-1, 4)
                packed = (c4[:, 0] << 6) | (c4[:, 1] << 4) | (c4[:, 2] << 2) | c4[:, 3]
                fh.write(struct.pack("<II", len(seq), len(n_starts)))
                fh.write(n_starts.astype("<u4").tobytes() + n_sizes.astype("<u4").tobytes())
                fh.write(struct.pack("<I", len(m_starts)))
                fh.write(m_starts.astype("<u4").tobytes() + m_sizes.astype("<u4").tobytes())
                fh.write(struct.pack("<I", 0))
                fh.write(packed.astype(np.uint8).tobytes())
                if fh.tell() >= 1 << 32:
                    raise OutputError(f"{out}: genome too large for a version-0 .2bit (4 GiB offsets)")
            fh.seek(16)
            for name, off in zip(names, offsets):
                b = name.encode()
                fh.write(struct.pack("<B", len(b)) + b + struct.pack("<I", off))
    except BaseException:
        f.abort()
        raise
    f.commit()
    return out


def _bigbed_defined_fields(path: Path, n: int) -> None:
    """Set the bigBed header's ``definedFieldCount`` (offset 34) to ``n``: ``bed6+4`` has 6
    standard BED fields and 4 of its own, as ``bedToBigBed -type=bed6+4`` writes; pybigtools
    counts all 10 as standard (UCSC would then read signalValue as thickStart)."""
    with open(path, "r+b") as fh:
        head = fh.read(40)
        if len(head) < 40 or struct.unpack_from("<I", head)[0] != 0x8789F2EB:
            raise OutputError(f"{path}: not a bigBed file")
        fh.seek(34)
        fh.write(struct.pack("<H", n))


def calls_to_bigbed(calls: Path, out: Path, sizes: dict[str, int]) -> str | None:
    """Convert the narrowPeak calls to a ``bigNarrowPeak`` bigBed (all ten fields: name,
    score, strand, signalValue, pValue, qValue, peak); returns the UCSC track type, or
    None (and writes nothing) when there are no calls: pybigtools cannot write an empty
    bigBed, and an empty track would only show nothing.

    ``bedToBigBed`` (UCSC) when on ``PATH``; otherwise :mod:`pybigtools` with the
    bigNarrowPeak autoSql (header as ``bedToBigBed -type=bed6+4`` writes it).
    """
    order = {c: i for i, c in enumerate(sizes)}
    rows = sorted((c for c in read_calls(calls) if c.chrom in order), key=lambda c: (order[c.chrom], c.start, c.end))
    if not rows:
        return None
    exe = shutil.which("bedToBigBed")
    a = AtomicFile(out)
    try:
        if exe:
            tmpdir = out.parent
            bed, asf, cs = (tmpdir / f".{out.name}.{x}" for x in ("bed", "as", "sizes"))
            try:
                bed.write_text("".join("\t".join(c.fields[:10]) + "\n" for c in rows))
                asf.write_text(BIGNARROWPEAK_AS)
                cs.write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
                r = subprocess.run([exe, "-type=bed6+4", f"-as={asf}", str(bed), str(cs), str(a.tmp)],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    raise OutputError(f"bedToBigBed failed on {calls}: {r.stderr.strip()}")
            finally:
                for p in (bed, asf, cs):
                    p.unlink(missing_ok=True)
            source = a.tmp
        else:
            import pybigtools

            short = [c for c in rows if len(c.fields) < 10]
            if short:
                c = short[0]
                raise HubError(f"{calls}: {c.chrom}:{c.start + 1}-{c.end} has {len(c.fields)} columns, not the 10 of "
                               "narrowPeak; is it from `genaannot scan`?")
            # pybigtools picks the format from the suffix, so the temporary name must end in .bb
            source = a.companion(".bb")
            pybigtools.open(str(source), "w").write(
                {c: int(n) for c, n in sizes.items()},
                ((c.chrom, c.start, c.end, "\t".join(c.fields[3:10])) for c in rows),
                autosql=BIGNARROWPEAK_AS,
            )
            _bigbed_defined_fields(source, 6)
        a.commit(source=source)
    finally:
        a.abort()  # after the commit: leftovers only
    return "bigNarrowPeak"


def annotation_to_bigbed(annotation: str | Path, out: Path, sizes: dict[str, int]) -> int:
    """Gene models of a GFF3/GTF as a BED12 bigBed (one transcript a line, exons as blocks);
    sequence names matched to the genome's (``chr1``/``1``). Returns the transcripts written.

    Raises
    ------
    HubError
        The annotation names none of the genome's sequences.
    genaannot.io.annotation.AnnotationError
        The file does not parse.
    """
    import pybigtools

    from ..regions import match_chroms
    from .annotation import read_annotation

    ann = read_annotation(annotation)
    mapping = match_chroms(ann.chroms, sizes).mapping
    order = {c: i for i, c in enumerate(sizes)}
    every = [transcript_bed12(mapping[c], t) for c in ann.chroms if c in mapping for t in ann.transcripts[c]]
    rows = sorted((r for r in every if r[2] <= sizes[r[0]]), key=lambda r: (order[r[0]], r[1], r[2]))
    # what is left out is said: a bigBed may not hold an entry past its sequence's end
    for note in ann.notes:  # the reader's own (they name the file)
        warnings.warn(note, stacklevel=2)
    notes: list[str] = []
    absent = [c for c in ann.chroms if c not in mapping]
    if absent:
        notes.append(f"sequences not in the genome, left out: {', '.join(absent[:5])}"
                     + (f" ({len(absent)} in all)" if len(absent) > 5 else ""))
    past = [r for r in every if r[2] > sizes[r[0]]]
    if past:
        chrom, _, end, rest = past[0]
        name = rest.split("\t", 1)[0]
        notes.append(f"{len(past)} transcript(s) running past their sequence's end, left out (first: "
                     f"{name} on {chrom}, ending at {end:,} of {sizes[chrom]:,})")
    for note in notes:
        warnings.warn(f"{annotation}: {note}", stacklevel=2)
    if not rows:
        raise HubError(f"{annotation}: no transcript on the genome's sequences (it names "
                       f"{', '.join(ann.chroms[:5]) or 'none'}; the genome has {', '.join(list(sizes)[:5])})")
    a = AtomicFile(out)
    try:
        source = a.companion(".bb")
        pybigtools.open(str(source), "w").write({c: int(n) for c, n in sizes.items()}, iter(rows), autosql=BED12_AS)
        _bigbed_defined_fields(source, 12)
        a.commit(source=source)
    finally:
        a.abort()
    return len(rows)


def place_file(src: Path, dest: Path) -> str:
    """Put ``src`` at ``dest`` (inside a hub): nothing when it is already there, else a hard
    link, else a copy (another file system); atomic. Returns ``"kept"``, ``"linked"`` or ``"copied"``."""
    if dest.exists() and dest.samefile(src):
        return "kept"
    a = AtomicFile(dest)
    try:
        a.tmp.unlink(missing_ok=True)
        try:
            os.link(src, a.tmp)
            how = "linked"
        except OSError:
            shutil.copyfile(src, a.tmp)
            how = "copied"
        a.commit()
    finally:
        a.abort()
    return how


@dataclass
class HubResult:
    """Files written by :func:`write_hub` (absolute paths); ``calls_left_out``: the scan's
    calls file holds no calls, so the hub and session have no calls track; ``genes``: the
    annotation bigBed; ``copied``: files copied into the hub (a hard link was not possible)."""

    hub_txt: Path
    genomes_txt: Path
    trackdb: Path
    twobit: Path | None
    calls_bigbed: Path | None
    calls_type: str | None
    session: Path | None
    calls_left_out: bool = False
    genes: Path | None = None
    copied: list[Path] = field(default_factory=list)


def _rel(target: Path, start: Path) -> str:
    """``target`` as a URL relative to ``start``, each path part percent-encoded (``#``, ``?``,
    ``%`` and spaces in a file name would otherwise cut or change the URL)."""
    return "/".join(quote(part, safe="") for part in Path(os.path.relpath(target, start)).as_posix().split("/"))


def scan_inputs(run: ScanRun) -> list[tuple[str, Path | None]]:
    """What a finished scan is made of, as :func:`~genaannot.io.atomic.check_not_inputs` takes it:
    the manifest, the FASTA and its index, the tracks and the calls (no output may overwrite them)."""
    g = Path(run.genome)
    return [("scan manifest", run.manifest_path), ("FASTA", g), ("FASTA index", Path(f"{g}.fai")),
            ("FASTA index", Path(f"{g}.gzi")), *(("scan track", t.path) for t in run.tracks),
            ("scan calls", run.calls)]


def write_hub(run: ScanRun, outdir: str | Path, opts: HubOptions, *, session: bool = True,
              annotation: str | Path | None = None) -> HubResult:
    """Write ``hub.txt``, ``genomes.txt``, ``<genome>/trackDb.txt`` (+ ``.2bit``, calls and
    gene bigBeds) into ``outdir``, and an IGV session ``igv_session.xml`` beside them.

    Every file the hub names lies inside ``outdir``: tracks outside it (``outdir`` is not the
    scan's directory) are hard-linked into ``<genome>/`` (copied across file systems), and
    for the session the FASTA (with its ``.fai``/``.gzi``) likewise, unless ``ucsc_db`` names
    the genome. No text file holds a local absolute path: the model is named by
    :func:`genaannot.hub.model_name`, file references are relative.

    Parameters
    ----------
    annotation : str or Path, optional
        GFF3/GTF gene models: written as ``<genome>/<name>.genes.bb`` (BED12) and added to
        ``trackDb.txt`` and the session.

    Raises
    ------
    HubError
        The genome name is not a UCSC assembly name (it names a directory of the hub), or a
        value for the hub text holds a control character; an annotation on other sequences.
    """
    try:
        g = check_genome_name(opts.ucsc_db or opts.genome_name, what="--ucsc-db" if opts.ucsc_db else "--genome-name")
        for what, value in (("--email", opts.email), ("--hub-name", opts.hub_name), ("--organism", opts.organism)):
            check_line_text(value, what=what)
    except HubTextError as err:
        raise HubError(str(err)) from None
    outdir = Path(outdir).resolve()
    gdir = outdir / g
    planned = [outdir / n for n in ("hub.txt", "genomes.txt", "description.html", "igv_session.xml")]
    planned += [gdir / n for n in ("trackDb.txt", f"{safe_name(opts.genome_name)}.2bit", "chrom.sizes")]
    if run.calls is not None:
        planned.append(gdir / (run.calls.name.removesuffix(".bed") + ".bb"))
    check_not_inputs(planned, scan_inputs(run))
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{outdir}: cannot create the hub directory ({err.strerror or err}); "
                          "choose another -o") from None
    gdir.mkdir(exist_ok=True)
    copied: list[Path] = []

    def inside(p: Path) -> Path:
        """``p`` when it lies in the hub, else its link/copy in ``<genome>/``."""
        if p.is_relative_to(outdir):
            return p
        dest = gdir / p.name
        if place_file(p, dest) == "copied":
            copied.append(dest)
        return dest

    if opts.default_pos is None:
        top = strongest_calls(read_calls(run.calls), 1) if run.calls else []
        if top:
            c, s, e, _ = top[0]
            pad = max(500, (e - s) * 5)
            opts.default_pos = f"{c}:{max(1, s + 1 - pad)}-{min(run.sizes[c], e + pad)}"
        else:
            c = next(iter(run.sizes))
            opts.default_pos = f"{c}:1-{min(run.sizes[c], 10_000)}"
    twobit = None
    cs_rel = None
    if opts.ucsc_db is None:
        twobit = gdir / f"{safe_name(opts.genome_name)}.2bit"
        write_twobit(run.genome, twobit)
        cs = gdir / "chrom.sizes"
        write_text_atomic(cs, "".join(f"{c}\t{n}\n" for c, n in run.sizes.items()))
        cs_rel = _rel(cs, outdir)
    calls_bb, calls_type = None, None
    if run.calls is not None:
        calls_bb = gdir / (run.calls.name.removesuffix(".bed") + ".bb")
        calls_type = calls_to_bigbed(run.calls, calls_bb, run.sizes)
        if calls_type is None:  # the scan made no calls: no calls track
            calls_bb = None
    genes_bb = None
    genes_label = ""
    if annotation is not None:
        annotation = Path(annotation)
        stem = annotation.name.removesuffix(".gz")
        stem = stem.rsplit(".", 1)[0] if "." in stem else stem
        genes_label = check_line_text(annotation.name, what="annotation file name")
        genes_bb = gdir / f"{safe_name(stem)}.genes.bb"
        annotation_to_bigbed(annotation, genes_bb, run.sizes)
    placed = {t.path: inside(t.path) for t in run.tracks}
    urls = {t.path: _rel(placed[t.path], gdir) for t in run.tracks}
    try:
        tdb = trackdb_txt(run, urls=urls, calls_url=_rel(calls_bb, gdir) if calls_bb else None,
                          calls_type=calls_type, genes_url=_rel(genes_bb, gdir) if genes_bb else None,
                          genes_label=genes_label)
        genomes = genomes_txt(opts, twobit=_rel(twobit, outdir) if twobit else None, chrom_sizes=cs_rel)
        hub = hub_txt(opts)
    except HubTextError as err:  # a value from the manifest (model path, file name) or an option
        raise HubError(f"{run.manifest_path}: {err}") from None
    write_text_atomic(gdir / "trackDb.txt", tdb)
    write_text_atomic(outdir / "genomes.txt", genomes)
    write_text_atomic(outdir / "hub.txt", hub)
    write_text_atomic(outdir / "description.html", description_html(run))
    sess = None
    if session:
        if opts.ucsc_db:
            genome = opts.ucsc_db  # IGV knows UCSC assemblies by the same id
        else:
            fasta = inside(run.genome)
            for ext in (".fai", ".gzi"):
                side = Path(str(run.genome) + ext)
                if side.is_file():
                    inside(side)
            genome = str(fasta)
        tracks = {t.path: placed[t.path] for t in run.tracks}
        sess = write_igv_session(run, outdir / "igv_session.xml", locus=opts.default_pos, genome=genome,
                                 tracks=tracks, calls=calls_bb, genes=genes_bb, genes_label=genes_label or "genes")
    return HubResult(outdir / "hub.txt", outdir / "genomes.txt", gdir / "trackDb.txt", twobit, calls_bb,
                     calls_type, sess, calls_left_out=run.calls is not None and calls_bb is None, genes=genes_bb,
                     copied=copied)


def description_html(run: ScanRun) -> str:
    """The hub's ``description.html``: every value from the manifest HTML-escaped (labels and
    model paths come from someone else's files and must not become markup)."""
    m = run.manifest
    model = m.get("model") if isinstance(m.get("model"), dict) else {}

    def e(v: object) -> str:
        return html.escape(str(v))

    convention, sites = site_text(m)
    where = f"{convention} convention, " + "; ".join(f"{k} = {v}" for k, v in sites.items()) if convention else ""
    return (
        f"<h2>genaannot {e(run.task)} scan</h2><p>Model {e(model_name(model.get('source')))}; labels "
        f"{e(', '.join(run.labels))}; window {e(m.get('window_tokens'))} tokens, overlap {e(m.get('overlap'))}, "
        f"stitch {e(m.get('stitch'))}. Values are {e(run.activation)} outputs."
        + (f" Splice sites: {e(where)}." if where else "") + "</p>\n"
    )


def write_igv_session(
    run: ScanRun,
    path: str | Path,
    *,
    locus: str | None = None,
    genome: str | None = None,
    tracks: dict[Path, Path] | None = None,
    calls: Path | None = None,
    genes: Path | None = None,
    genes_label: str = "genes",
) -> Path:
    """IGV desktop session at ``path``.

    Files are referenced relative to the session. ``genome`` is a FASTA path (IGV needs its
    ``.fai`` beside it) or an IGV genome id (``hg38``); default the scan's FASTA, by its
    absolute path. ``tracks`` maps each scan bigWig to the file to name (default: itself);
    ``calls`` default: the scan's narrowPeak BED; ``genes``: a gene-model file.
    """
    path = Path(path).resolve()
    d = path.parent

    def ref(p: Path) -> str:
        try:
            return _rel(p, d)
        except ValueError:  # different drive (Windows)
            return str(p)

    if genome is None:
        genome_ref = str(run.genome)
    elif Path(genome).is_absolute():
        genome_ref = ref(Path(genome))
    else:
        genome_ref = genome
    tracks = tracks or {t.path: t.path for t in run.tracks}
    calls = calls if calls is not None else run.calls
    xml = igv_session_xml(
        run,
        genome=genome_ref,
        tracks={t.path: ref(tracks[t.path]) for t in run.tracks},
        calls=ref(calls) if calls else None,
        locus=locus,
        genes=ref(genes) if genes else None,
        genes_label=genes_label,
    )
    write_text_atomic(path, xml)
    return path
