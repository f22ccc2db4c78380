"""Track hub and IGV session built from a real (tiny-model) scan: files parse, stanzas complete."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from click.testing import CliRunner
from tinymodels import make_gena_dir, random_dna

from genaannot.cli import main
from genaannot.hub import HubOptions, label_colour, strongest_calls
from genaannot.io.bed import parse_calls
from genaannot.io.hub import read_scan, write_twobit

GENOME = {"chr1": random_dna(2400, seed=21), "chr2": "NNNN" + random_dna(1200, seed=22).lower() + "NNACGTN"}


def make_scan(d: Path) -> Path:
    """FASTA + tiny token model + `genaannot scan --task splice`; returns the scan directory."""
    fa = d / "genome.fa"
    fa.write_text("".join(f">{c}\n{s}\n" for c, s in GENOME.items()))
    model = make_gena_dir(d / "model", head="token", num_labels=3, max_positions=66)
    out = d / "scan"
    out.mkdir()
    r = CliRunner().invoke(main, ["scan", str(fa), "--task", "splice", "--model", str(model),
                                  "-o", str(out / "splice.bw"), "--threshold", "0.55", "-q"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory):
    return make_scan(tmp_path_factory.mktemp("hub"))


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """UCSC .ra format: blank-line separated stanzas of `key value` lines (indent allowed)."""
    out, cur = [], {}
    for line in text.splitlines():
        s = line.strip()
        if not s:
            if cur:
                out.append(cur)
                cur = {}
            continue
        if s.startswith("#"):
            continue
        k, _, v = s.partition(" ")
        assert k not in cur, f"duplicate {k} in stanza"
        cur[k] = v
    if cur:
        out.append(cur)
    return out


def read_twobit(path: Path) -> dict[str, str]:
    """Independent little 2bit decoder (UCSC spec) for the round-trip test."""
    import struct

    b = path.read_bytes()
    sig, ver, n, _ = struct.unpack_from("<IIII", b, 0)
    assert sig == 0x1A412743 and ver == 0
    pos, index = 16, []
    for _ in range(n):
        ln = b[pos]
        name = b[pos + 1 : pos + 1 + ln].decode()
        (off,) = struct.unpack_from("<I", b, pos + 1 + ln)
        index.append((name, off))
        pos += 1 + ln + 4
    out = {}
    for name, off in index:
        size, nb = struct.unpack_from("<II", b, off)
        off += 8
        ns = struct.unpack_from(f"<{nb}I", b, off)
        nsz = struct.unpack_from(f"<{nb}I", b, off + 4 * nb)
        off += 8 * nb
        (mb,) = struct.unpack_from("<I", b, off)
        ms = struct.unpack_from(f"<{mb}I", b, off + 4)
        msz = struct.unpack_from(f"<{mb}I", b, off + 4 + 4 * mb)
        off += 4 + 8 * mb + 4
        packed = np.frombuffer(b, dtype=np.uint8, count=(size + 3) // 4, offset=off)
        codes = np.stack([(packed >> s) & 3 for s in (6, 4, 2, 0)], axis=1).ravel()[:size]
        seq = np.array(list("TCAG"))[codes]
        for s, z in zip(ns, nsz):
            seq[s : s + z] = "N"
        for s, z in zip(ms, msz):
            seq[s : s + z] = np.char.lower(seq[s : s + z])
        out[name] = "".join(seq)
    return out


def test_twobit_round_trip(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text("".join(f">{c}\n{s}\n" for c, s in GENOME.items()))
    write_twobit(fa, tmp_path / "g.2bit")
    assert read_twobit(tmp_path / "g.2bit") == GENOME


def test_hub_files_follow_conventions(scan_dir):
    r = CliRunner().invoke(main, ["hub", str(scan_dir), "--genome-name", "toyGenome", "--email", "me@example.org"])
    assert r.exit_code == 0, r.output
    (hub,) = parse_stanzas((scan_dir / "hub.txt").read_text())
    for key in ("hub", "shortLabel", "longLabel", "genomesFile", "email"):
        assert hub.get(key), key
    assert re.fullmatch(r"\w+", hub["hub"]) and hub["email"] == "me@example.org"
    (gen,) = parse_stanzas((scan_dir / hub["genomesFile"]).read_text())
    assert gen["genome"] == "toyGenome"
    for key in ("trackDb", "twoBitPath", "organism", "defaultPos", "description"):
        assert gen.get(key), key
    assert read_twobit(scan_dir / gen["twoBitPath"]) == GENOME
    tdb_path = scan_dir / gen["trackDb"]
    stanzas = parse_stanzas(tdb_path.read_text())
    names = [s["track"] for s in stanzas]
    assert len(set(names)) == len(names)
    comp = stanzas[0]
    assert comp["compositeTrack"] == "on" and comp["viewLimits"] == "0:1" and comp["type"].startswith("bigWig")
    groups = {g.split()[0]: g for k, g in comp.items() if k.startswith("subGroup")}
    assert set(groups) == {"label", "strand"}
    subs = [s for s in stanzas if s.get("parent", "").split()[:1] == [comp["track"]]]
    assert len(subs) == 4  # acceptor/donor x plus/minus
    colours = set()
    for s in subs:
        for key in ("track", "parent", "bigDataUrl", "shortLabel", "longLabel", "type", "color", "subGroups"):
            assert s.get(key), key
        target = (tdb_path.parent / s["bigDataUrl"]).resolve()
        assert target.is_file() and target.suffix == ".bw"
        assert scan_dir.resolve() in target.parents  # relative URL stays inside the served folder
        tags = dict(kv.split("=") for kv in s["subGroups"].split())
        assert tags["label"] in groups["label"] and tags["strand"] in ("plus", "minus")
        assert len(s["shortLabel"]) <= 17
        colours.add(s["color"])
    assert len(colours) == 4  # plus/minus shades differ per label
    calls = [s for s in stanzas if s["track"].endswith("_calls")]
    assert len(calls) == 1 and calls[0]["type"] == "bigNarrowPeak"
    import pybigtools

    bb = pybigtools.open(str(tdb_path.parent / calls[0]["bigDataUrl"]))
    n_bed = sum(1 for line in (scan_dir / "splice.calls.bed").read_text().splitlines() if line.strip())
    n_bb = sum(len(list(bb.records(c))) for c in bb.chroms())
    assert n_bb == n_bed > 0


def test_igv_session_parses(scan_dir, tmp_path):
    run = read_scan(scan_dir / "splice.json")
    from genaannot.io.hub import write_igv_session

    p = write_igv_session(run, scan_dir / "session.xml", locus="chr1:1-500")
    root = ET.parse(p).getroot()
    assert root.tag == "Session" and root.get("version") == "8" and root.get("locus") == "chr1:1-500"
    assert Path(root.get("genome")) == (scan_dir.parent / "genome.fa").resolve()
    paths = [r.get("path") for r in root.iter("Resource")]
    assert len(paths) == 5  # 4 bigWigs + calls
    for q in paths:
        assert (p.parent / q).is_file()
    tracks = {t.get("id"): t for t in root.iter("Track")}
    assert set(tracks) == set(paths)
    bigwigs = [t for k, t in tracks.items() if k.endswith(".bw")]
    assert len(bigwigs) == 4 and all(t.find("DataRange") is not None for t in bigwigs)


def test_colours_and_strongest_calls():
    assert label_colour(0, "+") != label_colour(0, "-")
    lines = ["chr1\t0\t10\ta\t500\t+\t0.5\t-1\t-1\t3", "chr1\t20\t30\tb\t900\t-\t0.9\t-1\t-1\t1", "track x",
             "chr2\t5\t6\tc\t500\t+\t0.5\t-1\t-1\t0"]
    calls = parse_calls(lines)
    assert strongest_calls(calls, 1) == [("chr1", 20, 30, 0.9)]
    assert strongest_calls(calls, 5) == [("chr1", 20, 30, 0.9), ("chr1", 0, 10, 0.5), ("chr2", 5, 6, 0.5)]  # ties: file order
    assert strongest_calls([], 3) == []
    HubOptions(hub_name="x", genome_name="y")


def test_hub_refuses_a_broken_calls_file(scan_dir, tmp_path):
    scan = shutil.copytree(scan_dir, tmp_path / "scan")
    calls = scan / "splice.calls.bed"
    n = len(calls.read_text().splitlines())
    calls.write_text(calls.read_text() + "chr1\tten\t20\n")
    r = CliRunner().invoke(main, ["hub", str(scan), "-o", str(tmp_path / "hub")])
    assert r.exit_code != 0 and f"splice.calls.bed:{n + 1}: start/end 'ten', '20' are not integers" in r.output


def test_a_scan_without_calls_gives_a_hub_without_a_calls_track(scan_dir, tmp_path):
    scan = shutil.copytree(scan_dir, tmp_path / "scan")
    (scan / "splice.calls.bed").write_text("")
    r = CliRunner().invoke(main, ["hub", str(scan), "-o", str(tmp_path / "hub")])
    assert r.exit_code == 0, r.output
    assert "the scan made no calls: the hub has no calls track" in r.output
    assert not list((tmp_path / "hub").rglob("*.bb"))
    tdb = next((tmp_path / "hub").rglob("trackDb.txt")).read_text()
    assert "bigNarrowPeak" not in tdb and "bigWig" in tdb
    assert ".bb" not in (tmp_path / "hub" / "igv_session.xml").read_text()


def test_calls_on_sequences_named_like_bed_headers_are_data(tmp_path):
    from genaannot.io.bed import read_calls

    bed = tmp_path / "c.bed"
    bed.write_text("track name=calls\nbrowser position x:1-2\n# a comment\n"
                   "track1\t0\t5\tdonor\t900\t+\t0.9\t-1\t-1\t2\n"
                   "browser2\t1\t5\tdonor\t900\t+\t0.9\t-1\t-1\t2\n"
                   "track\t2\t5\tdonor\t900\t+\t0.9\t-1\t-1\t2\n")
    assert [(c.chrom, c.start) for c in read_calls(bed)] == [("track1", 0), ("browser2", 1)]


@pytest.mark.skipif(shutil.which("igv") is None or shutil.which("xvfb-run") is None,
                    reason="needs the igv (IGV desktop) and xvfb-run binaries on PATH "
                           f"(missing: {', '.join(n for n in ('igv', 'xvfb-run') if shutil.which(n) is None)}); "
                           "Debian/Ubuntu: apt-get install igv xvfb")
def test_igv_desktop_loads_session(scan_dir, tmp_path):
    """Headless IGV batch: load the session, take a snapshot, fail on errors about our files."""
    from genaannot.io.hub import write_igv_session

    run = read_scan(scan_dir)
    sess = write_igv_session(run, scan_dir / "igv_batch_session.xml", locus="chr1:1-1200")
    snap = tmp_path / "snap"
    snap.mkdir()
    batch = tmp_path / "batch.txt"
    batch.write_text(f"load {sess}\nsnapshotDirectory {snap}\ngoto chr1:1-1200\nsnapshot igv.png\nexit\n")
    igvdir = tmp_path / "igvdir"
    igvdir.mkdir()
    genome = str(run.genome)
    prefs = tmp_path / "prefs.properties"
    prefs.write_text(f"DEFAULT_GENOME_KEY={genome}\n")  # else IGV first fetches hg19 from the internet
    env = {**os.environ, "JAVA_TOOL_OPTIONS": "-Xmx1g"}
    p = subprocess.run(["xvfb-run", "-a", "igv", "--igvDirectory", str(igvdir), "-o", str(prefs), "-g", genome,
                        "-b", str(batch)], capture_output=True, text=True, timeout=240, env=env)
    log = p.stdout + p.stderr
    for f in igvdir.glob("*.log"):
        log += f.read_text(errors="replace")
    ours = [line for line in log.splitlines()
            if ("SEVERE" in line or "WARN" in line or "ERROR" in line)
            and any(k in line for k in ("splice", "genome.fa", "scan", ".bw", ".bed", "session"))]
    assert not ours, "\n".join(ours)
    assert (snap / "igv.png").is_file() and (snap / "igv.png").stat().st_size > 1000, log[-3000:]


GFF3 = """##gff-version 3
chr1\tt\tgene\t101\t900\t.\t+\t.\tID=g1
chr1\tt\tmRNA\t101\t900\t.\t+\t.\tID=tx1;Parent=g1
chr1\tt\texon\t101\t300\t.\t+\t.\tParent=tx1
chr1\tt\texon\t501\t900\t.\t+\t.\tParent=tx1
chr2\tt\tmRNA\t11\t400\t.\t-\t.\tID=tx2;Parent=g2
chr2\tt\texon\t11\t400\t.\t-\t.\tParent=tx2
chrUn\tt\texon\t1\t10\t.\t+\t.\tParent=tx3
"""


def _text_files(d: Path) -> dict[Path, str]:
    return {p: p.read_text() for p in d.rglob("*") if p.suffix in (".txt", ".xml", ".html", ".sizes")}


@pytest.fixture(scope="module")
def outside_hub(scan_dir, tmp_path_factory):
    """`genaannot hub -o` a folder outside the scan, with --organism and --annotation."""
    d = tmp_path_factory.mktemp("outside")
    gff = d / "genes.gff3"
    gff.write_text(GFF3)
    hub = d / "served" / "hub"
    r = CliRunner().invoke(main, ["hub", str(scan_dir), "-o", str(hub), "--organism", "Toy organism",
                                  "--annotation", str(gff), "--genome-name", "toy"])
    assert r.exit_code == 0, r.output
    return hub


def test_hub_outside_the_scan_keeps_every_url_inside(outside_hub):
    hub = outside_hub
    (gen,) = parse_stanzas((hub / "genomes.txt").read_text())
    assert gen["organism"] == gen["scientificName"] == "Toy organism"
    targets = [hub / gen["twoBitPath"], hub / gen["chromSizes"]]
    tdb = hub / gen["trackDb"]
    targets += [tdb.parent / unquote(s["bigDataUrl"]) for s in parse_stanzas(tdb.read_text()) if "bigDataUrl" in s]
    root = ET.parse(hub / "igv_session.xml").getroot()
    targets += [hub / unquote(r.get("path")) for r in root.iter("Resource")] + [hub / root.get("genome")]
    assert len(targets) == 2 + 6 + 6 + 1  # 2bit, sizes; 4 bigWigs, calls, genes (hub, then session); FASTA
    for t in targets:
        assert t.resolve().is_relative_to(hub.resolve()) and t.is_file(), t
    assert (hub / root.get("genome")).with_name("genome.fa.fai").is_file()


def test_hub_text_holds_no_local_path(outside_hub, scan_dir):
    texts = _text_files(outside_hub)
    assert len(texts) >= 5
    for p, text in texts.items():
        assert not re.findall(r'(?:^|[\s"=(])(/[\w.~-]+/)', text, re.M), p  # no absolute path
        assert str(scan_dir.parent) not in text and "\\\\" not in text, p
    tdb = next(t for p, t in texts.items() if p.name == "trackDb.txt")
    (comp,) = [s for s in parse_stanzas(tdb) if s.get("compositeTrack")]
    assert comp["longLabel"].startswith("genaannot splice: model (") and len(comp["longLabel"]) <= 80


def test_hub_bigbeds_keep_every_field(outside_hub, scan_dir):
    import struct

    import pybigtools
    import pyBigWig

    gdir = outside_hub / "toy"
    bb = gdir / "splice.calls.bb"
    want = {}
    for line in (scan_dir / "splice.calls.bed").read_text().splitlines():
        f = line.split("\t")
        want.setdefault(f[0], []).append((int(f[1]), int(f[2]), *f[3:10]))
    r = pybigtools.open(str(bb))
    got = {c: [tuple(x) for x in r.records(c)] for c in r.chroms()}
    assert {c: v for c, v in got.items() if v} == want
    assert "bigNarrowPeak" in r.sql() and "signalValue" in r.sql()
    bw = pyBigWig.open(str(bb))
    first = next(iter(want))
    assert bw.entries(first, 0, bw.chroms(first))[0][2] == "\t".join(want[first][0][2:])  # name score strand signal p q peak
    assert struct.unpack_from("<HH", bb.read_bytes(), 32) == (10, 6)  # fieldCount, definedFieldCount: bed6+4
    genes = pybigtools.open(str(gdir / "genes.genes.bb"))
    assert [tuple(x) for x in genes.records("chr1")] == [(100, 900, "tx1", "0", "+", "100", "900", "0", "2",
                                                          "200,400,", "0,400,")]
    assert [x[:3] + (x[4],) for x in genes.records("chr2")] == [(10, 400, "tx2", "-")]


def test_hub_refuses_an_annotation_on_other_sequences(scan_dir, tmp_path):
    gff = tmp_path / "other.gff3"
    gff.write_text("scaffold9\tt\texon\t1\t10\t.\t+\t.\tParent=x\n")
    r = CliRunner().invoke(main, ["hub", str(scan_dir), "-o", str(tmp_path / "hub"), "--annotation", str(gff)])
    assert r.exit_code == 1 and "no transcript on the genome's sequences" in r.output and "Traceback" not in r.output


def test_hub_genes_left_out_are_said(scan_dir, tmp_path):
    # a bigBed entry past its sequence's end is invalid (bedToBigBed refuses it); sequences the
    # genome lacks and unstranded transcripts were dropped without a word
    import pybigtools

    gff = tmp_path / "g.gff3"
    gff.write_text("chr1\tt\texon\t101\t200\t.\t+\t.\tParent=ok\n"
                   "chr1\tt\texon\t2301\t2500\t.\t+\t.\tParent=late\n"
                   "chr9\tt\texon\t1\t10\t.\t+\t.\tParent=far\n"
                   "chr1\tt\texon\t301\t400\t.\t.\t.\tParent=unstranded\n")
    with pytest.warns(UserWarning) as said:
        r = CliRunner().invoke(main, ["hub", str(scan_dir), "-o", str(tmp_path / "hub"), "--annotation", str(gff)])
    assert r.exit_code == 0, r.output
    text = "\n".join(str(w.message) for w in said)
    assert "sequences not in the genome, left out: chr9" in text
    assert "1 transcript(s) running past their sequence's end, left out (first: late on chr1, ending at 2,500 of 2,400)" \
        in text
    assert "strand" in text  # the annotation's own note about the unstranded transcript
    bb = next((tmp_path / "hub").rglob("*.genes.bb"))
    names = [e[2].split("\t")[0] for e in pybigtools.open(str(bb)).records("chr1")]
    assert names == ["ok"]


@pytest.mark.skipif(shutil.which("igv") is None or shutil.which("xvfb-run") is None,
                    reason="needs the igv (IGV desktop) and xvfb-run binaries on PATH; "
                           "Debian/Ubuntu: apt-get install igv xvfb")
def test_igv_desktop_loads_the_hub_session(outside_hub, tmp_path):
    """The hub's own session (genome, tracks, calls bigBed, gene bigBed all relative): IGV opens
    it with no genome given on the command line and logs no error about our files."""
    sess = outside_hub / "igv_session.xml"
    snap = tmp_path / "snap"
    snap.mkdir()
    batch = tmp_path / "batch.txt"
    batch.write_text(f"load {sess}\nsnapshotDirectory {snap}\ngoto chr1:1-1200\nsnapshot igv.png\nexit\n")
    igvdir = tmp_path / "igvdir"
    igvdir.mkdir()
    prefs = tmp_path / "prefs.properties"
    fasta = outside_hub / "toy" / "genome.fa"
    prefs.write_text(f"DEFAULT_GENOME_KEY={fasta}\n")  # else IGV first fetches hg19 from the internet
    env = {**os.environ, "JAVA_TOOL_OPTIONS": "-Xmx1g"}
    p = subprocess.run(["xvfb-run", "-a", "igv", "--igvDirectory", str(igvdir), "-o", str(prefs), "-b", str(batch)],
                       capture_output=True, text=True, timeout=240, env=env)
    log = p.stdout + p.stderr
    for f in igvdir.glob("*.log"):
        log += f.read_text(errors="replace")
    ours = [line for line in log.splitlines()
            if ("SEVERE" in line or "WARN" in line or "ERROR" in line)
            and any(k in line for k in ("splice", "genome.fa", "toy", ".bw", ".bb", "session", "genes"))]
    assert not ours, "\n".join(ours)
    for name in ("splice.calls.bb", "genes.genes.bb"):
        assert f"Loading resource:  {outside_hub / 'toy' / name}" in log, log[-3000:]
    assert (snap / "igv.png").is_file() and (snap / "igv.png").stat().st_size > 1000, log[-3000:]
