"""Hostile and broken inputs for every command (issue 20), shared by ``scripts/fuzz_hostile.py``
(the whole sweep) and ``tests/test_hostile_fuzz.py`` (a fast subset).

:func:`build_base` writes one set of good inputs (a small genome, a toy genome + GFF3 with
introns, two tiny checkpoints, a VCF, a finished scan, score and scan partials); each
:class:`Case` copies them, spoils one thing and runs one command line. :func:`run_case` runs
it in-process with click's ``CliRunner`` and returns what went wrong (an empty list: the case
behaved: exit 1 or 2 with one error line naming the file or option, no traceback, inputs
unchanged; or, where the input is merely unusual, exit 0 with the output written).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner
from tinymodels import make_gena_dir, random_dna
from toy_genome import write_inputs

from genaannot.cli import main

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False

SMALL = {"c1": random_dna(1200, seed=3), "c2": random_dna(600, seed=4)}


def _fa(seqs: dict[str, str]) -> str:
    return "".join(f">{c}\n" + "\n".join(s[i : i + 60] for i in range(0, len(s), 60)) + "\n" for c, s in seqs.items())


def _vcf_text() -> str:
    s = SMALL["c1"]
    return ("##fileformat=VCFv4.2\n##contig=<ID=c1,length=1200>\n##contig=<ID=c2,length=600>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            f"c1\t300\t.\t{s[299]}\t{'A' if s[299] != 'A' else 'C'}\t.\t.\t.\n"
            f"c1\t700\t.\t{s[699]}\t{'G' if s[699] != 'G' else 'T'}\t.\t.\t.\n")


def build_base(d: Path) -> Path:
    """Good inputs in ``d`` (see the module docstring); returns ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "s.fa").write_text(_fa(SMALL))
    write_inputs(d)  # g.fa + g.gff3: c1, c2 of 6000 bp with GT..AG introns
    make_gena_dir(d / "tok", head="token", num_labels=3)
    make_gena_dir(d / "seq", head="sequence", num_labels=2)
    for p in d.glob(".*-tokenizer"):
        shutil.rmtree(p)
    (d / "in.vcf").write_text(_vcf_text())
    (d / "r.bed").write_text("c1\t0\t600\n")
    r = _invoke(["scan", d / "s.fa", "--task", "splice", "--model", d / "tok", "-o", d / "scan" / "run.bw",
                 "--regions", d / "r.bed", "--strand", "+", "--window-tokens", "30", "--device", "cpu", "-q",
                 "--workers", "0", "--threshold", "0.2"])
    assert r.exit_code == 0, r.output
    for i in (1, 2):
        r = _invoke(["score", d / "in.vcf", "--genome", d / "s.fa", "--task", "splice", "--model", d / "tok",
                     "-o", d / f"p{i}.vcf.gz", "--tsv", d / f"p{i}.tsv", "--shard", f"{i}/2", "--device", "cpu", "-q"])
        assert r.exit_code == 0, r.output
        r = _invoke(["scan", d / "s.fa", "--task", "splice", "--model", d / "tok", "-o", d / "sh" / "run.bw",
                     "--regions", d / "r.bed", "--strand", "+", "--window-tokens", "30", "--device", "cpu", "-q",
                     "--workers", "0", "--shard", f"{i}/2"])
        assert r.exit_code == 0, r.output
        shutil.move(d / "sh" / "run.parts", d / f"s{i}.parts")
    shutil.rmtree(d / "sh")
    return d


def _invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --------------------------------------------------------------------------- commands

def SCAN(d, *extra, genome="s.fa", model="tok", out="o.bw"):
    return ["scan", d / genome, "--task", "splice", "--model", d / model, "-o", d / out, "--strand", "+",
            "--window-tokens", "30", "--device", "cpu", "-q", "--workers", "0", *extra]


def SCORE(d, *extra, vcf="in.vcf", genome="s.fa", model="tok", out="o.vcf"):
    return ["score", d / vcf, "--genome", d / genome, "--task", "splice", "--model", d / model, "-o", d / out,
            "--device", "cpu", "-q", *extra]


def ISM(d, *extra, genome="s.fa", model="tok", region="c1:101-104", out="i"):
    return ["ism", d / genome, "--region", region, "--task", "splice", "--model", d / model, "-o", d / out,
            "--window-tokens", "30", "--device", "cpu", "-q", *extra]


def ATTR(d, *extra, genome="s.fa", model="tok", region="c1:101-104", out="a"):
    return ["attribute", d / genome, "--region", region, "--task", "splice", "--model", d / model, "-o", d / out,
            "--window-tokens", "30", "--device", "cpu", "--steps", "2", "-q", *extra]


def PLOT(d, *extra, genome="s.fa", region="c1:1-600", out="p.png"):
    return ["plot", d / genome, "--region", region, "-o", d / out, "--dpi", "50", *extra]


def TRAIN(d, *extra, genome="g.fa", ann="g.gff3", out="m", split=("--train-chroms", "c1")):
    return ["train", "--task", "splice", "--genome", d / genome, "--annotation", d / ann, "-o", d / out, *split,
            "--hidden-size", "16", "--layers", "1", "--heads", "2", "--window-tokens", "32", "--steps", "1",
            "--batch-size", "2", "--save-every", "1", "--eval-every", "1", "--valid-windows", "2", "--device",
            "cpu", "--no-eval", "-q", *extra]


def EVAL(d, *extra, genome="g.fa", ann="g.gff3", model="tok", out="ev", split=("--regions", "ev.bed")):
    s = [split[0], d / split[1]] if split[0].endswith("regions") else list(split)
    return ["evaluate", "--model", d / model, "--task", "splice", "--genome", d / genome, "--annotation", d / ann,
            *s, "-o", d / out, "--device", "cpu", "-q", *extra]


def REPORT(d, *extra, scan="scan", out="rep.html"):
    return ["report", d / scan, "-o", d / out, *extra]


def HUB(d, *extra, scan="scan", out="hub"):
    return ["hub", d / scan, "-o", d / out, *extra]


def MERGE(d, *parts, out="m.vcf.gz", extra=()):
    return ["merge", *[d / p for p in parts], "-o", d / out, "-q", *extra]


def INSPECT(d, model="tok", *extra):
    return ["models", "inspect", d / model, *extra]


# --------------------------------------------------------------------------- cases

@dataclass
class Case:
    """One hostile input.

    ``setup(d)`` spoils the copy of the base inputs in ``d``; ``args(d)`` is the command
    line; ``names`` must appear in the error line; ``ok``: the input is unusual but valid
    (exit 0 expected, ``ok_files`` written; an exit 1/2 with one clear line also passes
    when ``ok`` is ``None``); ``root_skip``: meaningless as root (permissions).
    """

    id: str
    group: str
    args: Callable[[Path], list]
    setup: Callable[[Path], None] | None = None
    names: tuple[str, ...] = ()
    ok: bool | None = False
    ok_files: tuple[str, ...] = ()
    root_skip: bool = False
    fast: bool = False
    extra_check: Callable[[Path], list[str]] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def _write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        for idx in (".fai", ".gzi"):
            Path(f"{p}{idx}").unlink(missing_ok=True)
    return setup


def _chain(*fns: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        for f in fns:
            f(d)
    return setup


def _mkdir(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).mkdir(parents=True, exist_ok=True)


def _chmod(name: str, mode: int) -> Callable[[Path], None]:
    return lambda d: os.chmod(d / name, mode)


def _gz_truncated(name: str, text: str) -> Callable[[Path], None]:
    data = gzip.compress(text.encode())
    return _write(name, data[: len(data) // 2])


def _edit_json(path: str, fn: Callable[[dict], object]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        p = d / path
        obj = json.loads(p.read_text())
        new = fn(obj)
        p.write_text(json.dumps(obj if new is None else new))
    return setup


BINARY = bytes(range(256)) * 8
SEQ = SMALL["c1"]

FASTA_BAD: list[tuple[str, str | bytes, tuple[str, ...]]] = [
    ("empty", "", ()),
    ("binary", BINARY, ()),
    ("header-only", ">c1\n", ()),
    ("no-header", SEQ + "\n", ()),
    ("nul-bytes", ">c1\n" + SEQ[:60] + "\x00\x00\n", ()),
    ("utf16", (">c1\n" + SEQ[:120] + "\n").encode("utf-16"), ()),
    ("digits", ">c1\n" + SEQ[:600] + "\n1234\n", ()),
    ("dup-names", ">c1\nACGT\n>c1\nACGT\n", ()),
    ("html", "<html><body>Not found</body></html>\n", ()),
    ("lfs-pointer", "version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n", ()),
]

BED_BAD: list[tuple[str, str | bytes]] = [
    ("end-before-start", "c1\t500\t100\n"),
    ("negative", "c1\t-5\t100\n"),
    ("unknown-chrom", "chrZ\t0\t100\n"),
    ("not-integer", "c1\tzero\t100\n"),
    ("two-columns", "c1\t100\n"),
    ("past-end", "c1\t0\t999999\n"),
    ("empty", ""),
    ("binary", BINARY),
    ("zero-length", "c1\t100\t100\n"),
    ("spaces", "c1 0 100\n"),
    ("float", "c1\t0.5\t100\n"),
    ("only-header", "track name=x\n#comment\n"),
]

BED_ODD_OK: list[tuple[str, str | bytes]] = [
    ("header-lines", "track name=x\nbrowser position c1:1-100\n# comment\nc1\t0\t600\n"),
    ("crlf", "c1\t0\t600\r\n"),
    ("bom", "\ufeffc1\t0\t600\n"),
]

GFF_HEAD = "##gff-version 3\n"
GFF_BAD: list[tuple[str, str, str | bytes]] = [
    ("gff3", "eight-columns", GFF_HEAD + "c1\tt\tmRNA\t201\t400\t.\t+\tID=t1\n".replace("\t.\t+\t", "\t+\t")),
    ("gff3", "start-not-integer", GFF_HEAD + "c1\tt\tmRNA\tone\t400\t.\t+\t.\tID=t1\n"),
    ("gff3", "end-before-start", GFF_HEAD + "c1\tt\tmRNA\t400\t201\t.\t+\t.\tID=t1\n"),
    ("gff3", "bad-strand", GFF_HEAD + "c1\tt\tmRNA\t161\t370\t.\tx\t.\tID=t1\nc1\tt\texon\t161\t200\t.\tx\t.\tParent=t1\n"),
    ("gff3", "bad-phase", GFF_HEAD + "c1\tt\tCDS\t161\t200\t.\t+\t7\tParent=t1\n"),
    ("gff3", "binary", BINARY),
    ("gff3", "empty", ""),
    ("gff3", "unknown-chroms", GFF_HEAD + "chrZ\tt\tmRNA\t161\t370\t.\t+\t.\tID=t1\nchrZ\tt\texon\t161\t200\t.\t+\t.\tParent=t1\n"),
    ("gff3", "zero-start", GFF_HEAD + "c1\tt\texon\t0\t200\t.\t+\t.\tParent=t1\n"),
    ("gtf", "missing-gene-id", 'c1\tt\texon\t161\t200\t.\t+\t.\ttranscript_id "t1";\n'),
    ("gtf", "missing-transcript-id", 'c1\tt\texon\t161\t200\t.\t+\t.\tgene_id "g1";\n'),
    ("gtf", "semicolon-in-quotes", 'c1\tt\texon\t161\t200\t.\t+\t.\tgene_id "g;1"; transcript_id "t;1";\n'
                                   'c1\tt\texon\t251\t300\t.\t+\t.\tgene_id "g;1"; transcript_id "t;1";\n'),
    ("gtf", "unterminated-quote", 'c1\tt\texon\t161\t200\t.\t+\t.\tgene_id "g1; transcript_id "t1";\n'),
]

VCF_HEAD = "##fileformat=VCFv4.2\n##contig=<ID=c1,length=1200>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
VCF_BAD: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("binary", BINARY),
    ("no-header", "c1\t300\t.\tA\tC\t.\t.\t.\n"),
    ("seven-columns", VCF_HEAD + "c1\t300\t.\tA\tC\t.\t.\n"),
    ("pos-not-integer", VCF_HEAD + "c1\tabc\t.\tA\tC\t.\t.\t.\n"),
    ("pos-zero", VCF_HEAD + "c1\t0\t.\tA\tC\t.\t.\t.\n"),
    ("pos-negative", VCF_HEAD + "c1\t-4\t.\tA\tC\t.\t.\t.\n"),
    ("ref-empty", VCF_HEAD + "c1\t300\t.\t\tC\t.\t.\t.\n"),
    ("html", "<html>404</html>\n"),
    ("header-only-no-chrom-line", "##fileformat=VCFv4.2\n"),
]


def _cases() -> list[Case]:
    cs: list[Case] = []
    add = cs.append
    # FASTA, every command that reads one
    for name, data, words in FASTA_BAD:
        w = ("bad.fa", *words)
        add(Case(f"scan-fasta-{name}", "fasta", lambda d: SCAN(d, genome="bad.fa"), _write("bad.fa", data), w,
                 fast=name in ("binary", "dup-names")))
        add(Case(f"score-fasta-{name}", "fasta", lambda d: SCORE(d, genome="bad.fa"), _write("bad.fa", data), w))
        if name in ("empty", "binary", "no-header", "utf16", "lfs-pointer"):
            add(Case(f"ism-fasta-{name}", "fasta", lambda d: ISM(d, genome="bad.fa"), _write("bad.fa", data), w))
            add(Case(f"plot-fasta-{name}", "fasta", lambda d: PLOT(d, "--calls", d / "scan" / "run.calls.bed",
                                                                   genome="bad.fa"), _write("bad.fa", data), w))
            add(Case(f"train-fasta-{name}", "fasta", lambda d: TRAIN(d, genome="bad.fa"), _write("bad.fa", data), w,
                     fast=name == "empty"))
            add(Case(f"evaluate-fasta-{name}", "fasta", lambda d: EVAL(d, genome="bad.fa", split=("--chroms", "c2")),
                     _write("bad.fa", data), w))
    add(Case("scan-fasta-truncated-gz", "fasta", lambda d: SCAN(d, genome="bad.fa.gz"),
             _gz_truncated("bad.fa.gz", _fa(SMALL)), ("bad.fa.gz",)))
    add(Case("scan-fasta-plain-gzip", "fasta", lambda d: SCAN(d, genome="bad.fa.gz"),
             _write("bad.fa.gz", gzip.compress(_fa(SMALL).encode())), ("bad.fa.gz",), ok=None))
    add(Case("scan-fasta-is-dir", "fasta", lambda d: SCAN(d, genome="adir"), _mkdir("adir"), ("adir",)))
    add(Case("scan-fasta-missing", "fasta", lambda d: SCAN(d, genome="nope.fa"), None, ("nope.fa",), fast=True))
    add(Case("score-fasta-missing", "fasta", lambda d: SCORE(d, genome="nope.fa"), None, ("nope.fa",)))
    add(Case("scan-fasta-unreadable", "fasta", lambda d: SCAN(d), _chmod("s.fa", 0), ("s.fa",), root_skip=True))
    add(Case("scan-fasta-crlf", "fasta", lambda d: SCAN(d, genome="crlf.fa"),
             _write("crlf.fa", _fa(SMALL).replace("\n", "\r\n")), ("crlf.fa",), ok=None))
    add(Case("scan-fasta-fai-garbage", "fasta", lambda d: SCAN(d),
             lambda d: (d / "s.fa.fai").write_bytes(BINARY), ("s.fa.fai",)))
    add(Case("scan-fasta-fai-is-dir", "fasta", lambda d: SCAN(d),
             lambda d: ((d / "s.fa.fai").unlink(missing_ok=True), (d / "s.fa.fai").mkdir()), ("s.fa.fai",)))

    # BED regions
    for name, data in BED_BAD:  # whitespace instead of tabs is read (a BED line needs 3 columns either way)
        add(Case(f"scan-regions-{name}", "bed", lambda d: SCAN(d, "--regions", d / "bad.bed"),
                 _write("bad.bed", data), ("bad.bed",), fast=name in ("end-before-start", "binary", "unknown-chrom"),
                 ok=None if name == "spaces" else False))
        if name in ("end-before-start", "negative", "unknown-chrom", "binary", "empty", "past-end"):
            add(Case(f"train-regions-{name}", "bed", lambda d: TRAIN(d, split=("--train-regions", d / "bad.bed")),
                     _write("bad.bed", data), ("bad.bed",), fast=name == "negative"))
            add(Case(f"evaluate-regions-{name}", "bed", lambda d: EVAL(d, split=("--regions", "bad.bed")),
                     _write("bad.bed", data), ("bad.bed",)))
            add(Case(f"plot-calls-{name}", "bed", lambda d: PLOT(d, "--calls", d / "bad.bed"),
                     _write("bad.bed", data), ("bad.bed",),
                     ok=None if name in ("unknown-chrom", "empty", "past-end") else False))
    for name, data in BED_ODD_OK:
        add(Case(f"scan-regions-{name}", "bed", lambda d: SCAN(d, "--regions", d / "odd.bed"),
                 _write("odd.bed", data), ("odd.bed",), ok=True, ok_files=("o.json",)))
    add(Case("scan-regions-missing", "bed", lambda d: SCAN(d, "--regions", d / "nope.bed"), None, ("nope.bed",)))
    add(Case("scan-regions-dir", "bed", lambda d: SCAN(d, "--regions", d / "adir"), _mkdir("adir"), ("adir",)))

    # annotations
    for fmt, name, data in GFF_BAD:
        fn = f"bad.{fmt}"
        # tolerated: a CDS phase is not used; a GTF transcript without gene_id is its own gene
        ok = None if name in ("bad-phase", "semicolon-in-quotes", "missing-gene-id") else False
        add(Case(f"train-{fmt}-{name}", "annotation", lambda d, fn=fn: TRAIN(d, ann=fn), _write(fn, data), (fn,),
                 ok=ok, fast=name in ("eight-columns", "missing-gene-id")))
        add(Case(f"plot-{fmt}-{name}", "annotation", lambda d, fn=fn: PLOT(d, "--annotation", d / fn),
                 _write(fn, data), (fn,), ok=None if ok is None or name in ("unknown-chroms", "empty") else False))
        if name in ("binary", "end-before-start", "missing-gene-id"):
            add(Case(f"evaluate-{fmt}-{name}", "annotation", lambda d, fn=fn: EVAL(d, ann=fn, split=("--chroms", "c2")),
                     _write(fn, data), (fn,), ok=ok))
    add(Case("train-gff3-crlf", "annotation", lambda d: TRAIN(d, ann="crlf.gff3"),
             lambda d: (d / "crlf.gff3").write_bytes((d / "g.gff3").read_bytes().replace(b"\n", b"\r\n")),
             ("crlf.gff3",), ok=None))
    add(Case("train-annotation-dir", "annotation", lambda d: TRAIN(d, ann="adir"), _mkdir("adir"), ("adir",)))
    add(Case("train-annotation-truncated-gz", "annotation", lambda d: TRAIN(d, ann="bad.gff3.gz"),
             _gz_truncated("bad.gff3.gz", (GFF_HEAD + "c1\tt\texon\t161\t200\t.\t+\t.\tParent=t1\n") * 300),
             ("bad.gff3.gz",)))

    # VCF
    for name, data in VCF_BAD:
        # POS 0 and an empty REF get a reason code (EDGE, REF_MISMATCH) in the output: not dropped
        add(Case(f"score-vcf-{name}", "vcf", lambda d: SCORE(d, vcf="bad.vcf"), _write("bad.vcf", data), ("bad.vcf",),
                 fast=name in ("binary", "seven-columns"), ok=None if name in ("pos-zero", "ref-empty") else False))
    add(Case("score-vcf-truncated-gz", "vcf", lambda d: SCORE(d, vcf="bad.vcf.gz"),
             _gz_truncated("bad.vcf.gz", _vcf_text() * 40), ("bad.vcf.gz",)))
    add(Case("score-vcf-garbage-bcf", "vcf", lambda d: SCORE(d, vcf="bad.bcf"), _write("bad.bcf", BINARY), ("bad.bcf",)))
    add(Case("score-vcf-dir", "vcf", lambda d: SCORE(d, vcf="adir"), _mkdir("adir"), ("adir",)))
    add(Case("score-vcf-crlf", "vcf", lambda d: SCORE(d, vcf="crlf.vcf"),
             _write("crlf.vcf", _vcf_text().replace("\n", "\r\n")), ("crlf.vcf",), ok=None))
    add(Case("score-vcf-pos-past-end", "vcf", lambda d: SCORE(d, vcf="odd.vcf"),
             _write("odd.vcf", VCF_HEAD + "c1\t999999\t.\tA\tC\t.\t.\t.\n"), ("odd.vcf",), ok=True, ok_files=("o.vcf",)))
    add(Case("score-vcf-unknown-contig", "vcf", lambda d: SCORE(d, vcf="odd.vcf"),
             _write("odd.vcf", VCF_HEAD + "chrZ\t10\t.\tA\tC\t.\t.\t.\n"), ("odd.vcf",), ok=True, ok_files=("o.vcf",)))

    # checkpoints and side files
    add(Case("scan-config-garbage", "checkpoint", lambda d: SCAN(d), _write("tok/config.json", BINARY),
             ("config.json",), fast=True))
    add(Case("scan-config-list", "checkpoint", lambda d: SCAN(d), _write("tok/config.json", "[1, 2]"), ("config.json",)))
    add(Case("scan-config-huge-hidden", "checkpoint", lambda d: SCAN(d),
             _edit_json("tok/config.json", lambda c: c.update(hidden_size=10**12)), ("config.json",)))
    add(Case("scan-config-string-layers", "checkpoint", lambda d: SCAN(d),
             _edit_json("tok/config.json", lambda c: c.update(num_hidden_layers="2")), ("config.json",)))
    add(Case("scan-weights-truncated", "checkpoint", lambda d: SCAN(d),
             lambda d: (d / "tok/model.safetensors").write_bytes((d / "tok/model.safetensors").read_bytes()[:500]),
             ("model.safetensors",), fast=True))
    add(Case("scan-weights-garbage", "checkpoint", lambda d: SCAN(d), _write("tok/model.safetensors", BINARY),
             ("model.safetensors",)))
    add(Case("scan-tokenizer-garbage", "checkpoint", lambda d: SCAN(d), _write("tok/tokenizer.json", "{not json"),
             ("tokenizer.json",)))
    add(Case("scan-tokenizer-missing", "checkpoint", lambda d: SCAN(d), lambda d: (d / "tok/tokenizer.json").unlink(),
             ("tok",)))
    add(Case("scan-metadata-garbage", "checkpoint", lambda d: SCAN(d), _write("tok/genaannot.json", "{"),
             ("genaannot.json",)))
    add(Case("scan-metadata-bad-thresholds", "checkpoint", lambda d: SCAN(d),
             _write("tok/genaannot.json", json.dumps({"thresholds": {"acceptor": "high"}})), ("genaannot.json",)))
    add(Case("scan-model-empty-dir", "checkpoint", lambda d: SCAN(d, model="adir"), _mkdir("adir"), ("adir",)))
    add(Case("scan-model-is-file", "checkpoint", lambda d: SCAN(d, model="in.vcf"), None, ("in.vcf",)))
    add(Case("scan-model-missing", "checkpoint", lambda d: SCAN(d, model="nope"), None, ("nope",)))
    add(Case("inspect-config-garbage", "checkpoint", lambda d: INSPECT(d), _write("tok/config.json", "nul\x00l"),
             ("config.json",), fast=True))
    add(Case("inspect-empty-dir", "checkpoint", lambda d: INSPECT(d, "adir"), _mkdir("adir"), ("adir",)))
    add(Case("inspect-weights-lfs", "checkpoint", lambda d: INSPECT(d),
             _write("tok/model.safetensors", "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n"),
             ("model.safetensors",)))
    add(Case("inspect-bad-option", "checkpoint", lambda d: INSPECT(d, "tok", "--model-option", "segment_size"), None,
             ("segment_size",)))
    add(Case("train-resume-no-checkpoint", "checkpoint", lambda d: TRAIN(d, "--resume"), None, ("m",)))
    add(Case("train-resume-garbage-state", "checkpoint", lambda d: TRAIN(d, "--resume"),
             _chain(lambda d: shutil.copytree(d / "tok", d / "m/checkpoints/step-0000001"),
                    _write("m/checkpoints/last", "step-0000001\n"),
                    _write("m/checkpoints/step-0000001/trainer_state.pt", BINARY)), ("trainer_state.pt",)))
    add(Case("train-base-model-garbage", "checkpoint", lambda d: TRAIN(d, "--base-model", d / "tok"),
             _write("tok/config.json", "{]"), ("config.json",)))
    add(Case("evaluate-model-missing", "checkpoint", lambda d: EVAL(d, model="nope", split=("--chroms", "c2")), None,
             ("nope",)))

    # scan manifests (report, hub)
    man = "scan/run.json"
    for name, fn in [
        ("not-json", _write(man, "{")),
        ("list", _write(man, "[]")),
        ("binary", _write(man, BINARY)),
        ("files-not-list", _edit_json(man, lambda m: m.update(files="x"))),
        ("track-missing", _edit_json(man, lambda m: m["files"][0].update(bigwig="gone.bw"))),
        ("track-traversal", _edit_json(man, lambda m: m["files"][0].update(bigwig="../../etc/passwd"))),
        ("genome-missing", _edit_json(man, lambda m: m.update(genome="/nonexistent/g.fa")
                                       if "genome" in m and not isinstance(m["genome"], dict)
                                       else m["genome"].update(path="/nonexistent/g.fa"))),
    ]:
        add(Case(f"report-manifest-{name}", "manifest", lambda d: REPORT(d, scan=man), fn, ("run.json",),
                 fast=name in ("not-json", "track-traversal")))
        add(Case(f"hub-manifest-{name}", "manifest", lambda d: HUB(d, scan=man), fn, ("run.json",)))
    add(Case("report-track-garbage", "manifest", lambda d: REPORT(d, "--embed-limit", "0"),
             lambda d: (d / "scan" / "run.bw").write_bytes(BINARY), ("run.bw",), ok=None))
    add(Case("hub-calls-garbage", "manifest", lambda d: HUB(d),
             lambda d: (d / "scan" / "run.calls.bed").write_bytes(BINARY), ("run.calls.bed",)))
    add(Case("report-scan-empty-dir", "manifest", lambda d: REPORT(d, scan="adir"), _mkdir("adir"), ("adir",)))
    add(Case("plot-track-garbage", "manifest", lambda d: PLOT(d, "--tracks", d / "junk.bw"),
             _write("junk.bw", BINARY), ("junk.bw",), fast=True))
    add(Case("plot-track-is-fasta", "manifest", lambda d: PLOT(d, "--tracks", d / "s.fa"), None, ("s.fa",)))

    # merge partials
    add(Case("merge-missing", "merge", lambda d: MERGE(d, "nope.parts", out="m.bw"), None, ("nope.parts",), fast=True))
    add(Case("merge-empty-dir", "merge", lambda d: MERGE(d, "adir", out="m.bw"), _mkdir("adir"), ("adir",)))
    add(Case("merge-garbage-npz", "merge", lambda d: MERGE(d, "s1.parts", "s2.parts", out="m.bw"),
             lambda d: [p.write_bytes(BINARY) for p in sorted((d / "s1.parts").rglob("*.npz"))[:1]], ("s1.parts",)))
    add(Case("merge-garbage-manifest", "merge", lambda d: MERGE(d, "s1.parts", "s2.parts", out="m.bw"),
             lambda d: [p.write_text("{") for p in sorted((d / "s1.parts").glob("*.json"))[:1]], ("s1.parts",)))
    add(Case("merge-same-part-twice", "merge", lambda d: MERGE(d, "s1.parts", "s1.parts", out="m.bw"), None,
             ("s1.parts",), ok=None))
    add(Case("merge-vcf-garbage", "merge", lambda d: MERGE(d, "p1.vcf.gz", "bad.vcf.gz"),
             _write("bad.vcf.gz", BINARY), ("bad.vcf.gz",), fast=True))
    add(Case("merge-vcf-twice", "merge", lambda d: MERGE(d, "p1.vcf.gz", "p1.vcf.gz"), None, ("p1.vcf.gz",)))
    add(Case("merge-mixed", "merge", lambda d: MERGE(d, "p1.vcf.gz", "s1.parts"), None, ()))
    add(Case("merge-plain-text", "merge", lambda d: MERGE(d, "in.vcf", "r.bed"), None, ()))

    # option values
    opt = [
        ("scan-batch-zero", lambda d: SCAN(d, "--batch-size", "0"), ("--batch-size",)),
        ("scan-batch-huge", lambda d: SCAN(d, "--batch-size", str(10**12), "--regions", d / "r.bed"), ()),
        ("scan-window-zero", lambda d: SCAN(d, "--window-tokens", "0"), ("--window-tokens",)),
        ("scan-window-huge", lambda d: SCAN(d, "--window-tokens", str(10**9)), ()),
        ("scan-overlap-one", lambda d: SCAN(d, "--overlap", "1"), ("--overlap",)),
        ("scan-threshold-nan", lambda d: SCAN(d, "--threshold", "nan"), ("--threshold",)),
        ("scan-threshold-inf", lambda d: SCAN(d, "--threshold", "inf"), ("--threshold",)),
        ("scan-labels-empty", lambda d: SCAN(d, "--labels", ","), ("--labels",)),
        ("scan-labels-unknown", lambda d: SCAN(d, "--labels", "bogus"), ("bogus",)),
        ("scan-labels-unicode", lambda d: SCAN(d, "--labels", "ДНК☃"), ("ДНК☃",)),
        ("scan-chrom-unknown", lambda d: SCAN(d, "--chrom", "chrZ"), ("chrZ",)),
        ("scan-chrom-empty", lambda d: SCAN(d, "--chrom", ""), ("''",)),
        ("scan-device-bogus", lambda d: SCAN(d, "--device", "bogus"), ("bogus",)),
        ("scan-device-cuda99", lambda d: SCAN(d, "--device", "cuda:99"), ("cuda:99",)),
        ("scan-shard-zero", lambda d: SCAN(d, "--shard", "0/2"), ("0/2",)),
        ("scan-shard-over", lambda d: SCAN(d, "--shard", "3/2"), ("3/2",)),
        ("scan-shard-junk", lambda d: SCAN(d, "--shard", "a/b"), ("a/b",)),
        ("scan-shard-div0", lambda d: SCAN(d, "--shard", "1/0"), ("1/0",)),
        ("scan-devices-junk", lambda d: SCAN(d, "--devices", ",,"), ("--devices",)),
        ("scan-model-option-junk", lambda d: SCAN(d, "--model-option", "=3"), ("=3",)),
        ("scan-model-option-unknown", lambda d: SCAN(d, "--model-option", "bogus=1"), ("bogus",)),
        ("scan-model-empty-string", lambda d: SCAN(d, model=""), ()),
        ("scan-out-is-dir", lambda d: _mkdir("adir")(d) or SCAN(d, out="adir"), ("adir",)),
        ("scan-out-parent-is-file", lambda d: SCAN(d, out="in.vcf/o.bw"), ("in.vcf",)),
        ("scan-track-digits-junk", lambda d: SCAN(d, "--track-digits", "nine"), ("nine",)),
        ("scan-resume-nothing", lambda d: SCAN(d, "--resume"), ()),
        ("score-distance-huge", lambda d: SCORE(d, "--distance", str(10**12)), ()),
        ("score-labels-unknown", lambda d: SCORE(d, "--labels", "nope"), ("nope",)),
        ("score-stdout-twice", lambda d: ["score", d / "in.vcf", "--genome", d / "s.fa", "--task", "splice", "--model",
                                      d / "tok",
                        "-o", "-", "--tsv", "-", "--device", "cpu", "-q"], ("--tsv",)),
        ("score-shard-junk", lambda d: SCORE(d, "--shard", "2/1"), ("2/1",)),
        ("score-workers-huge", lambda d: SCORE(d, "--workers", str(10**9)), ()),
        ("ism-region-no-range", lambda d: ISM(d, region="c1"), ("c1",)),
        ("ism-region-zero", lambda d: ISM(d, region="c1:0-10"), ("c1:0-10",)),
        ("ism-region-reversed", lambda d: ISM(d, region="c1:10-5"), ("c1:10-5",)),
        ("ism-region-unknown", lambda d: ISM(d, region="c9:1-10"), ("c9",)),
        ("ism-region-past-end", lambda d: ISM(d, region="c1:1-10000000"), ("c1",)),
        ("ism-region-unicode", lambda d: ISM(d, region="ч1:1-10"), ("ч1",)),
        ("ism-region-too-long", lambda d: ISM(d, region="c1:1-1200"), ("c1",)),
        ("ism-label-unknown", lambda d: ISM(d, "--label", "bogus"), ("bogus",)),
        ("ism-site-outside", lambda d: ISM(d, "--site", "1000"), ("1000",)),
        ("attribute-label-unknown", lambda d: ATTR(d, "--label", "bogus"), ("bogus",)),
        ("attribute-region-junk", lambda d: ATTR(d, region="::"), ("::",)),
        ("plot-region-junk", lambda d: PLOT(d, "--calls", d / "scan" / "run.calls.bed", region="c1:a-b"), ("c1:a-b",)),
        ("plot-nothing", lambda d: PLOT(d), ("--tracks",)),
        ("plot-out-unknown-format", lambda d: PLOT(d, "--calls", d / "scan" / "run.calls.bed", out="p.xyz"), ("p.xyz",)),
        ("plot-out-dir", lambda d: _mkdir("adir")(d) or PLOT(d, "--calls", d / "scan" / "run.calls.bed", out="adir"),
         ("adir",)),
        ("report-top-huge", lambda d: REPORT(d, "--top", str(10**12)), ()),
        ("hub-genome-name-slash", lambda d: HUB(d, "--genome-name", "../x"), ("../x",)),
        ("hub-email-newline", lambda d: HUB(d, "--email", "a@b\nx"), ("--email",)),
        ("train-steps-zero", lambda d: TRAIN(d, "--steps", "0"), ("steps",)),
        ("train-steps-negative", lambda d: TRAIN(d, "--steps", "-3"), ("steps",)),
        ("train-epochs-negative", lambda d: TRAIN(d, "--epochs", "-1"), ("epochs",)),
        ("train-lr-nan", lambda d: TRAIN(d, "--lr", "nan"), ("lr",)),
        ("train-hidden-zero", lambda d: TRAIN(d, "--hidden-size", "0"), ("hidden",)),
        ("train-heads-indivisible", lambda d: TRAIN(d, "--heads", "3"), ("heads",)),
        ("train-window-zero", lambda d: TRAIN(d, "--window-tokens", "0"), ("window",)),
        ("train-batch-zero", lambda d: TRAIN(d, "--batch-size", "0"), ("batch",)),
        ("train-dropout-two", lambda d: TRAIN(d, "--dropout", "2"), ("dropout",)),
        ("train-save-every-zero", lambda d: TRAIN(d, "--save-every", "0"), ("save",)),
        ("train-valid-windows-zero", lambda d: TRAIN(d, "--valid-windows", "0", split=(
            "--train-chroms", "c1", "--valid-chroms", "c2")), ("valid",)),
        ("train-vocab-zero", lambda d: TRAIN(d, "--tokenizer", "bpe", "--vocab-size", "0"), ("vocab",)),
        ("train-tokenizer-missing", lambda d: TRAIN(d, "--tokenizer", d / "nope.json"), ("nope.json",)),
        ("train-tokenizer-garbage", lambda d: TRAIN(d, "--tokenizer", d / "in.vcf"), ("in.vcf",)),
        ("train-chroms-unknown", lambda d: TRAIN(d, split=("--train-chroms", "chrZ")), ("chrZ",)),
        ("train-chroms-commas", lambda d: TRAIN(d, split=("--train-chroms", ",,")), ("--train",)),
        ("train-overlapping-splits", lambda d: TRAIN(d, split=("--train-chroms", "c1", "--valid-chroms", "c1")), ("c1",)),
        ("train-threads-zero", lambda d: TRAIN(d, "--threads", "-1"), ("threads",)),
        ("train-out-parent-file", lambda d: TRAIN(d, out="in.vcf/m"), ("in.vcf",)),
        ("evaluate-stem-empty", lambda d: EVAL(d, "--stem", "", split=("--chroms", "c2")), ("stem",)),
        ("evaluate-stem-slash", lambda d: EVAL(d, "--stem", "../../x", split=("--chroms", "c2")), ("stem",)),
        ("evaluate-batch-zero", lambda d: EVAL(d, "--batch-size", "0", split=("--chroms", "c2")), ("batch",)),
        ("evaluate-chroms-unknown", lambda d: EVAL(d, split=("--chroms", "chrZ")), ("chrZ",)),
    ]
    for cid, fn, names in opt:
        add(Case(cid, "options", fn, None, names, ok=None if not names else False,
                 fast=cid in ("scan-batch-zero", "scan-shard-div0", "ism-region-reversed", "train-steps-zero",
                              "scan-threshold-nan", "evaluate-stem-slash", "plot-out-unknown-format")))

    # outputs onto inputs
    onto = [
        ("ism-onto-genome", lambda d: ISM(d, genome="i.tsv", out="i"), _write("i.tsv", _fa(SMALL)), ("i.tsv", "FASTA")),
        ("ism-onto-model", lambda d: ISM(d, out="tok/config.json"), None, ("config.json", "model")),
        ("attribute-onto-genome", lambda d: ATTR(d, genome="a.bw", out="a"), _write("a.bw", _fa(SMALL)), ("a.bw",)),
        ("plot-onto-genome", lambda d: PLOT(d, "--calls", d / "scan" / "run.calls.bed", out="s.fa"), None, ("s.fa",)),
        ("plot-onto-calls", lambda d: PLOT(d, "--calls", d / "c.png", out="c.png"),
         lambda d: shutil.copy(d / "scan" / "run.calls.bed", d / "c.png"), ("c.png",)),
        ("report-onto-manifest", lambda d: REPORT(d, out="scan/run.json"), None, ("run.json",)),
        ("report-onto-track", lambda d: REPORT(d, out="scan/run.acceptor.plus.bw"), None, ("run.acceptor.plus.bw",)),
        ("hub-onto-scan-files", lambda d: HUB(d, out="scan"),
         lambda d: (shutil.move(d / "scan" / "run.acceptor.plus.bw", d / "scan" / "hub.txt"),
                    _edit_json("scan/run.json", lambda m: m["files"][0].update(bigwig="hub.txt"))(d)), ("hub.txt",)),
        ("train-onto-base-model", lambda d: TRAIN(d, "--base-model", d / "tok", out="tok"), None, ("tok",)),
        ("train-onto-tokenizer", lambda d: TRAIN(d, "--tokenizer", d / "tk" / "tokenizer.json", out="tk"),
         lambda d: _mkdir("tk")(d) or shutil.copy(d / "tok" / "tokenizer.json", d / "tk" / "tokenizer.json"),
         ("tokenizer.json",)),
        ("evaluate-onto-model", lambda d: EVAL(d, "--stem", "config", out="tok", split=("--chroms", "c2")), None,
         ("config.json",)),
        ("evaluate-onto-genome", lambda d: EVAL(d, "--stem", "g", out=".", genome="g.png", split=("--chroms", "c2")),
         lambda d: shutil.copy(d / "g.fa", d / "g.png"), ("g.png",)),
    ]
    for cid, fn, setup, names in onto:
        add(Case(cid, "onto-input", fn, setup, names,
                 fast=cid in ("ism-onto-model", "plot-onto-genome", "report-onto-manifest", "hub-onto-scan-files",
                              "train-onto-base-model", "evaluate-onto-model")))

    # permissions (meaningless as root)
    add(Case("scan-out-dir-readonly", "permissions", lambda d: SCAN(d, out="ro/o.bw"),
             _chain(_mkdir("ro"), _chmod("ro", 0o500)), ("ro",), root_skip=True))
    add(Case("train-out-dir-readonly", "permissions", lambda d: TRAIN(d, out="ro/m"),
             _chain(_mkdir("ro"), _chmod("ro", 0o500)), ("ro",), root_skip=True))
    add(Case("report-out-dir-readonly", "permissions", lambda d: REPORT(d, out="ro/r.html"),
             _chain(_mkdir("ro"), _chmod("ro", 0o500)), ("ro",), root_skip=True))
    add(Case("score-vcf-unreadable", "permissions", lambda d: SCORE(d), _chmod("in.vcf", 0), ("in.vcf",),
             root_skip=True))
    add(Case("plot-annotation-unreadable", "permissions", lambda d: PLOT(d, "--annotation", d / "g.gff3"),
             _chmod("g.gff3", 0), ("g.gff3",), root_skip=True))
    return cs


CASES = _cases()


def error_lines(r) -> list[str]:
    """The non-empty lines on stderr, without click's ``Usage:`` and ``Try ... for help.`` lines."""
    return [x for x in (r.stderr or "").splitlines()
            if x.strip() and not x.startswith("Usage:") and not (x.startswith("Try '") and x.endswith("for help."))]


def _snapshot(d: Path) -> dict[Path, str]:
    out = {}
    for p in d.rglob("*"):
        if p.is_file() and not p.is_symlink():
            try:
                out[p] = hashlib.sha1(p.read_bytes()).hexdigest()
            except OSError:
                out[p] = "unreadable"
    return out


def prepare(case: Case, base: Path, d: Path) -> None:
    """Copy the base inputs into ``d`` and spoil them as ``case`` says."""
    shutil.copytree(base, d, symlinks=True)
    (d / "ev.bed").write_text("c2\t0\t6000\n")
    if case.setup is not None:
        case.setup(d)


def run_case(case: Case, d: Path) -> tuple[list[str], object]:
    """Run ``case`` in the prepared ``d``; returns (problems, result)."""
    before = _snapshot(d)
    args = [str(a) for a in case.args(d)]
    r = CliRunner().invoke(main, args, catch_exceptions=True)
    for p in d.rglob("*"):  # undo chmod so the directory can be read and removed
        try:
            if not p.is_symlink():
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
        except OSError:
            pass
    problems: list[str] = []
    out = (r.stdout or "") + (r.stderr or "")
    if "Traceback" in out:
        problems.append("traceback in output")
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        problems.append(f"exception {type(r.exception).__name__}: {str(r.exception)[:200]}")
    if "internal error" in out:
        problems.append("internal error")
    if r.exit_code == 0:
        if case.ok is False:
            problems.append("exit 0 for a hostile input")
        missing = [f for f in case.ok_files if not (d / f).exists()]
        if missing:
            problems.append(f"exit 0 but {', '.join(missing)} not written")
    elif r.exit_code in (1, 2):
        if case.ok is True:
            problems.append(f"exit {r.exit_code} for a valid input")
        lines = error_lines(r)
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        else:
            missing = [n for n in case.names if n not in lines[0]]
            if missing:
                problems.append(f"error line lacks {missing}")
    else:
        problems.append(f"exit code {r.exit_code}")
    after = _snapshot(d)
    changed = [str(p.relative_to(d)) for p, h in before.items() if after.get(p, "gone") not in (h, "unreadable")
               and h != "unreadable"]
    if changed:
        problems.append(f"inputs changed: {', '.join(changed[:4])}")
    return problems, r
