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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ..hub import (
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
    safe_name,
    strongest_calls,
    trackdb_txt,
)
from .atomic import AtomicFile, OutputError, check_not_inputs, write_text_atomic
from .bed import read_calls

__all__ = ["HubError", "read_scan", "write_twobit", "write_hub", "write_igv_session", "HubResult", "calls_to_bigbed",
           "description_html"]

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


def calls_to_bigbed(calls: Path, out: Path, sizes: dict[str, int]) -> str | None:
    """Convert the narrowPeak calls to bigBed; returns the UCSC track type, or None.

    ``bedToBigBed`` (UCSC) when on ``PATH`` gives a full ``bigNarrowPeak``; otherwise
    :mod:`pybigtools` writes the intervals only (``bigBed 3``: it cannot store an autoSql
    for the extra columns); without either, None.
    """
    order = {c: i for i, c in enumerate(sizes)}
    rows = sorted((c for c in read_calls(calls) if c.chrom in order), key=lambda c: (order[c.chrom], c.start, c.end))
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
            source, kind = a.tmp, "bigNarrowPeak"
        else:
            try:
                import pybigtools
            except ImportError:
                return None
            # pybigtools picks the format from the suffix, so the temporary name must end in .bb
            source, kind = a.companion(".bb"), "bigBed 3"
            pybigtools.open(str(source), "w").write(
                {c: int(n) for c, n in sizes.items()},
                ((c.chrom, c.start, c.end, "") for c in rows),
            )
        a.commit(source=source)
    finally:
        a.abort()  # after the commit: leftovers only
    return kind


@dataclass
class HubResult:
    """Files written by :func:`write_hub` (absolute paths); ``calls_left_out``: the scan has
    calls but no converter to bigBed was found."""

    hub_txt: Path
    genomes_txt: Path
    trackdb: Path
    twobit: Path | None
    calls_bigbed: Path | None
    calls_type: str | None
    session: Path | None
    calls_left_out: bool = False


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


def write_hub(run: ScanRun, outdir: str | Path, opts: HubOptions, *, session: bool = True) -> HubResult:
    """Write ``hub.txt``, ``genomes.txt``, ``<genome>/trackDb.txt`` (+ ``.2bit``, calls bigBed)
    into ``outdir``, and an IGV session ``igv_session.xml`` beside them.

    Raises
    ------
    HubError
        The genome name is not a UCSC assembly name (it names a directory of the hub), or a
        value for the hub text holds a control character.
    """
    try:
        g = check_genome_name(opts.ucsc_db or opts.genome_name, what="--ucsc-db" if opts.ucsc_db else "--genome-name")
        for what, value in (("--email", opts.email), ("--hub-name", opts.hub_name)):
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
        if calls_type is None:
            calls_bb = None
    urls = {t.path: _rel(t.path, gdir) for t in run.tracks}
    try:
        tdb = trackdb_txt(run, urls=urls, calls_url=_rel(calls_bb, gdir) if calls_bb else None,
                          calls_type=calls_type)
        genomes = genomes_txt(opts, twobit=_rel(twobit, outdir) if twobit else None, chrom_sizes=cs_rel)
        hub = hub_txt(opts)
    except HubTextError as err:  # a value from the manifest (model path, file name) or an option
        raise HubError(f"{run.manifest_path}: {err}") from None
    write_text_atomic(gdir / "trackDb.txt", tdb)
    write_text_atomic(outdir / "genomes.txt", genomes)
    write_text_atomic(outdir / "hub.txt", hub)
    write_text_atomic(outdir / "description.html", description_html(run))
    sess = write_igv_session(run, outdir / "igv_session.xml", locus=opts.default_pos) if session else None
    return HubResult(outdir / "hub.txt", outdir / "genomes.txt", gdir / "trackDb.txt", twobit, calls_bb,
                     calls_type, sess, calls_left_out=run.calls is not None and calls_bb is None)


def description_html(run: ScanRun) -> str:
    """The hub's ``description.html``: every value from the manifest HTML-escaped (labels and
    model paths come from someone else's files and must not become markup)."""
    m = run.manifest
    model = m.get("model") if isinstance(m.get("model"), dict) else {}

    def e(v: object) -> str:
        return html.escape(str(v))

    return (
        f"<h2>genaannot {e(run.task)} scan</h2><p>Model {e(model.get('source'))}; labels "
        f"{e(', '.join(run.labels))}; window {e(m.get('window_tokens'))} tokens, overlap {e(m.get('overlap'))}, "
        f"stitch {e(m.get('stitch'))}. Values are {e(run.activation)} outputs.</p>\n"
    )


def write_igv_session(run: ScanRun, path: str | Path, *, locus: str | None = None) -> Path:
    """IGV desktop session at ``path``: tracks referenced relative to it, the FASTA by its
    absolute path (IGV needs its ``.fai`` beside it)."""
    path = Path(path).resolve()
    d = path.parent

    def ref(p: Path) -> str:
        try:
            return _rel(p, d)
        except ValueError:  # different drive (Windows)
            return str(p)

    xml = igv_session_xml(
        run,
        genome=str(run.genome),
        tracks={t.path: ref(t.path) for t in run.tracks},
        calls=ref(run.calls) if run.calls else None,
        locus=locus,
    )
    write_text_atomic(path, xml)
    return path
