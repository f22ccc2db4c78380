"""scan_genome end to end with the toy models (outputs are known functions of the input)."""

from __future__ import annotations

import json

import numpy as np
import pybigtools
import pyBigWig
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from toy import BASE_VALUE, make_toy_model

from genaannot.pipeline.scan import ScanError, scan_genome
from genaannot.tasks import activate
from genaannot.windows import center_cuts, plan_windows, reverse_complement, reverse_plan

COMP = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}


def sig(x):
    return activate(np.asarray(x, dtype=np.float32), "sigmoid")


def write_fa(path, seqs):
    with open(path, "w") as fh:
        for k, v in seqs.items():
            fh.write(f">{k}\n{v}\n")
    return path


def read_bw(path, chrom, n):
    bw = pyBigWig.open(str(path))
    out = np.full(n, np.nan, dtype=np.float32)
    for s, e, v in bw.intervals(chrom) or ():
        out[s:e] = v
    bw.close()
    return out


@pytest.fixture(scope="module")
def token_model():
    return make_toy_model("token", max_tokens=64)


@pytest.fixture(scope="module")
def seq_model():
    return make_toy_model("sequence", max_tokens=64)


def _gaps(seq, min_gap):
    mask = np.zeros(len(seq), bool)
    i = 0
    while i < len(seq):
        if seq[i] in "Nn":
            j = i
            while j < len(seq) and seq[j] in "Nn":
                j += 1
            if j - i >= min_gap:
                mask[i:j] = True
            i = j
        else:
            i += 1
    return mask


def _segments(mask):
    segs, i = [], 0
    while i < len(mask):
        if mask[i]:
            i += 1
            continue
        j = i
        while j < len(mask) and not mask[j]:
            j += 1
        segs.append((i, j))
        i = j
    return segs


chunk = st.one_of(st.text(alphabet="ACGTacgt", min_size=1, max_size=80), st.integers(1, 40).map(lambda n: "N" * n))
genome_st = st.lists(st.lists(chunk, min_size=1, max_size=5).map("".join), min_size=1, max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seqs=genome_st, w=st.integers(3, 32), overlap=st.sampled_from([0.0, 0.25, 0.5]))
@example(seqs=["AAAAA"], w=3, overlap=0.25)  # a minus-strand base exactly between two window centres
def test_center_stitch_properties(tmp_path_factory, token_model, seqs, w, overlap):
    d = tmp_path_factory.mktemp("s")
    genome = {f"s{i}": s for i, s in enumerate(seqs)}
    fa = write_fa(d / "g.fa", genome)
    res = scan_genome(fa, model=token_model, task="splice", output=d / "o.bw", window_tokens=w,
                      overlap=overlap, quiet=True, track_digits=None)
    assert res.complete and len(res.tracks) == 4
    files = {(f["label"], f["strand"]): d / f["bigwig"] for f in json.loads(res.manifest.read_text())["files"]}
    for chrom, seq in genome.items():
        up = seq.upper()
        gap = _gaps(seq, w)
        acc_p = read_bw(files[("acceptor", "+")], chrom, len(seq))
        acc_m = read_bw(files[("acceptor", "-")], chrom, len(seq))
        don_p = read_bw(files[("donor", "+")], chrom, len(seq))
        don_m = read_bw(files[("donor", "-")], chrom, len(seq))
        # every non-gap base has exactly one value; long N runs have none
        for arr in (acc_p, acc_m, don_p, don_m):
            assert np.array_equal(np.isnan(arr), gap)
        ok = ~gap
        np.testing.assert_array_equal(acc_p[ok], sig([BASE_VALUE[c] for c in np.array(list(up))[ok]]))
        np.testing.assert_array_equal(acc_m[ok], sig([BASE_VALUE[COMP[c]] for c in np.array(list(up))[ok]]))
        # position channel: each base from the window whose centre is nearest, in-window index
        for a, b in _segments(gap):
            tok = token_model.tokenizer
            plan = plan_windows(seq[a:b], tokenizer=tok, window_tokens=w, overlap=overlap)
            # the minus strand is tiled from its own 5' end, i.e. the forward end
            plan_m = reverse_plan(plan_windows(reverse_complement(seq[a:b]), tokenizer=tok, window_tokens=w,
                                               overlap=overlap), b - a)
            exp_p = np.empty(b - a, np.float32)
            exp_m = np.empty(b - a, np.float32)
            for p_, exp, minus in ((plan, exp_p, False), (plan_m, exp_m, True)):
                # ties: the later window in the strand's own orientation
                own = center_cuts(p_.starts, p_.ends, lo=0, hi=b - a, ties="earlier" if minus else "later")
                for (o0, o1), s, e in zip(own, p_.starts, p_.ends):
                    n = e - s
                    idx = np.arange(o0, o1) - s
                    exp[o0:o1] = sig(((n - idx) if minus else (idx + 1)).astype(np.float32) / np.float32(n + 2))
            np.testing.assert_allclose(don_p[a:b], exp_p, rtol=0, atol=1e-6)
            np.testing.assert_allclose(don_m[a:b], exp_m, rtol=0, atol=1e-6)


def test_single_window_equals_single_prediction(tmp_path, token_model):
    seq = "ACGTTGCAAGCTNNNacgtRYA"
    fa = write_fa(tmp_path / "g.fa", {"x": seq})
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", quiet=True, track_digits=None)
    pred = token_model.predict([seq])[0]
    val = activate(pred.logits, "sigmoid")
    rc = seq.translate(str.maketrans("ACGTacgtRYN", "TGCAtgcaYRN"))[::-1]
    val_rc = activate(token_model.predict([rc])[0].logits, "sigmoid")[::-1]
    names = {(f["label"], f["strand"]): tmp_path / f["bigwig"] for f in json.loads(res.manifest.read_text())["files"]}
    for k, lab in ((1, "acceptor"), (2, "donor")):
        np.testing.assert_array_equal(read_bw(names[(lab, "+")], "x", len(seq)), val[:, k])
        np.testing.assert_array_equal(read_bw(names[(lab, "-")], "x", len(seq)), val_rc[:, k])
    counts = res.counts
    assert counts["windows"] == 2 and counts["lowercase"] == 4 and counts["iupac"] == {"R": 1, "Y": 1}
    assert counts["bp_scanned"] == len(seq) and counts["n_bp_skipped"] == 0


def test_sequence_head_central_bins_and_strands(tmp_path, seq_model):
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGT"), size=300))
    fa = write_fa(tmp_path / "g.fa", {"x": seq, "short": "GGCA"})
    res = scan_genome(fa, model=seq_model, task="promoter", output=tmp_path / "o.bw", window_tokens=40,
                      overlap=0.5, quiet=True, track_digits=None)
    files = {f["strand"]: tmp_path / f["bigwig"] for f in json.loads(res.manifest.read_text())["files"]}
    assert set(files) == {"+", "-"}
    plan = plan_windows(seq, tokenizer=seq_model.tokenizer, window_tokens=40, overlap=0.5)
    own = center_cuts(plan.starts, plan.ends, lo=0, hi=len(seq))
    got = read_bw(files["+"], "x", len(seq))
    for (a, b), s, e in zip(own, plan.starts, plan.ends):
        w = seq[s:e]
        gc = (w.count("G") + w.count("C")) / len(w)
        assert np.all(got[a:b] == activate(np.array([0, gc], np.float32), "softmax")[1])
        assert 15 <= b - a <= 25 or a == 0 or b == len(seq)  # central bin about one stride wide
    # 300 bp is a multiple of the stride, so both strands' windows coincide; GC is strand-symmetric
    np.testing.assert_array_equal(read_bw(files["-"], "x", len(seq)), got)
    short = read_bw(files["+"], "short", 4)
    assert np.allclose(short, activate(np.array([0, 0.75], np.float32), "softmax")[1])


def test_batch_size_and_units_do_not_change_files(tmp_path, token_model):
    rng = np.random.default_rng(5)
    fa = write_fa(tmp_path / "g.fa", {"a": "".join(rng.choice(list("ACGTN"), size=900)), "b": "ACGT" * 50})
    outs = []
    for i, bs in enumerate((1, 5, 64)):
        res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / f"o{i}.bw",
                          window_tokens=32, batch_size=bs, quiet=True)
        outs.append([p.read_bytes() for p in res.tracks] + [res.calls.read_bytes()])
    assert outs[0] == outs[1] == outs[2]
    # small work units: the base channel is identical, every base still covered once
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "u.bw", window_tokens=32,
                      unit_bp=100, quiet=True, labels=["acceptor"], strand="+")
    ref = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "r.bw", window_tokens=32,
                      quiet=True, labels=["acceptor"], strand="+")
    assert res.tracks == [tmp_path / "u.bw"]  # a single track is written to OUT itself
    assert res.counts["units"] > ref.counts["units"]
    assert res.tracks[0].read_bytes() == ref.tracks[0].read_bytes()


def test_mean_stitch(tmp_path, token_model):
    seq = "ACGTAGGCTA" * 7
    fa = write_fa(tmp_path / "g.fa", {"x": seq})
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", window_tokens=20,
                      overlap=0.5, stitch="mean", strand="+", labels=["donor"], quiet=True, track_digits=None)
    got = read_bw(res.tracks[0], "x", len(seq))
    plan = plan_windows(seq, tokenizer=token_model.tokenizer, window_tokens=20, overlap=0.5)
    acc = np.zeros(len(seq))
    cnt = np.zeros(len(seq))
    for s, e in zip(plan.starts, plan.ends):
        acc[s:e] += sig((np.arange(e - s) + 1).astype(np.float32) / np.float32(e - s + 2))
        cnt[s:e] += 1
    np.testing.assert_allclose(got, acc / cnt, atol=1e-6)


def test_regions_and_chroms(tmp_path, token_model):
    fa = write_fa(tmp_path / "g.fa", {"a": "ACGT" * 50, "b": "GGCC" * 50, "c": "A" * 10})
    bed = tmp_path / "r.bed"
    bed.write_text("track name=x\nb\t10\t30\nb\t20\t40\na\t0\t5\n")
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", regions=bed,
                      strand="+", labels=["acceptor"], quiet=True)
    bw = pyBigWig.open(str(res.tracks[0]))
    assert bw.chroms() == {"a": 200, "b": 200, "c": 10}
    cov = {c: sum(e - s for s, e, _ in (bw.intervals(c) or ())) for c in "abc"}
    assert cov == {"a": 5, "b": 30, "c": 0}
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "p.bw", chroms=["c"],
                      strand="-", labels=["acceptor"], quiet=True)
    assert res.counts["bp_scanned"] == 10
    # a lone region string is read as score_variants reads it; a list of them as before
    one = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "q.bw", regions="b:11-40,a:1-5",
                      strand="+", labels=["acceptor"], quiet=True)
    assert one.tracks[0].read_bytes() == (tmp_path / "o.bw").read_bytes()
    from genaannot.io.bed import BedError
    from genaannot.regions import RegionError

    with pytest.raises((BedError, RegionError, OSError), match="nope.bed"):
        scan_genome(fa, model=token_model, task="splice", output=tmp_path / "r.bw", regions="nope.bed", quiet=True)


def test_errors(tmp_path, token_model, seq_model):
    fa = write_fa(tmp_path / "g.fa", {"a": "ACGT" * 10})
    kw = dict(output=tmp_path / "o.bw", quiet=True)
    with pytest.raises(ScanError, match="sequence head"):
        scan_genome(fa, model=seq_model, task="splice", **kw)
    with pytest.raises(ScanError, match="token head"):
        scan_genome(fa, model=token_model, task="promoter", **kw)
    with pytest.raises(ScanError, match="919"):
        scan_genome(fa, model=seq_model, task="chromatin", **kw)
    with pytest.raises(ScanError, match="--labels"):
        scan_genome(fa, model=token_model, task="splice", labels=["nope"], **kw)
    with pytest.raises(ScanError, match="window-tokens"):
        scan_genome(fa, model=token_model, task="splice", window_tokens=65, **kw)
    from genaannot.regions import RegionError

    with pytest.raises(RegionError, match="not in the genome"):
        scan_genome(fa, model=token_model, task="splice", chroms=["chrZ"], **kw)
    bed = tmp_path / "r.bed"
    bed.write_text("a\t0\t41\n")
    with pytest.raises(RegionError, match=r"r\.bed:1.*past the end"):
        scan_genome(fa, model=token_model, task="splice", regions=bed, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "g.fa.fai", "r.bed"]


def test_outputs_that_cannot_be_files_are_refused_before_any_work(tmp_path, token_model):
    fa = write_fa(tmp_path / "g.fa", {"a": "ACGT" * 10})
    (tmp_path / "d").mkdir()
    for out, words in [("", "-o is empty"), (f"{tmp_path}/new/", "is a directory"), (tmp_path / "d", "is a directory")]:
        with pytest.raises(ScanError, match=words):
            scan_genome(fa, model=token_model, task="splice", output=out, quiet=True)
    assert not (tmp_path / "new").exists() and not (tmp_path / "new.json").exists()
    with pytest.warns(UserWarning, match=r"-o .*p\.vcf ends like another format's file.*p\.vcf\.<label>"):
        scan_genome(fa, model=token_model, task="splice", output=tmp_path / "p.vcf", quiet=True)
    # a directory where one of the set's files goes: refused before the scan, not at its commit
    for blocked in ("o.acceptor.minus.bw", "o.calls.bed", "o.json"):
        (tmp_path / blocked).mkdir()
        with pytest.raises(ScanError, match=f"{blocked}: is a directory, where this scan writes a file"):
            scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", quiet=True)
        assert not (tmp_path / "o.parts").exists()
        (tmp_path / blocked).rmdir()


def test_a_scan_of_nothing_but_n_counts_the_same_keys(tmp_path, token_model):
    full = scan_genome(write_fa(tmp_path / "g.fa", {"a": "ACGT" * 50}), model=token_model, task="splice",
                       output=tmp_path / "o.bw", quiet=True)
    none = scan_genome(write_fa(tmp_path / "n.fa", {"a": "N" * 200}), model=token_model, task="splice",
                       output=tmp_path / "n.bw", quiet=True)
    assert none.counts.keys() == full.counts.keys()
    assert none.counts["bp_scanned"] == none.counts["windows"] == 0 and none.counts["n_bp_skipped"] == 200
    assert json.loads((tmp_path / "n.json").read_text())["counts"] == none.counts


def test_a_sequence_without_bases_is_named_in_the_manifest_and_when_asked_for(tmp_path, token_model):
    from genaannot.regions import RegionError

    fa = tmp_path / "g.fa"
    fa.write_text(">a\n" + "ACGT" * 50 + "\n>empty\n>b\n" + "TTGCA" * 40 + "\n")
    with pytest.warns(UserWarning, match="'empty' \\(line 3\\) has no bases"):
        res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", quiet=True)
    assert json.loads(res.manifest.read_text())["empty_sequences"] == {"empty": 3}
    for kw in ({"chroms": ["empty"]}, {"regions": ["empty"]}, {"regions": ["empty:1-5"]}):
        with pytest.warns(UserWarning), pytest.raises(RegionError, match=r"'empty' \(.*g\.fa, line 3\) has no bases"):
            scan_genome(fa, model=token_model, task="splice", output=tmp_path / "x.bw", quiet=True, **kw)
    with pytest.warns(UserWarning), pytest.raises(RegionError, match="'nope' is not in the genome"):
        scan_genome(fa, model=token_model, task="splice", output=tmp_path / "x.bw", quiet=True, chroms=["nope"])


class _Boom(RuntimeError):
    pass


def test_resume_after_interruption_gives_identical_files(tmp_path, token_model):
    rng = np.random.default_rng(7)
    fa = write_fa(tmp_path / "g.fa", {c: "".join(rng.choice(list("ACGT"), size=400)) for c in "xyz"})
    kw = dict(model=token_model, task="splice", window_tokens=24, unit_bp=150, quiet=True)
    ref = scan_genome(fa, output=tmp_path / "ref.bw", **kw)
    ref_bytes = [p.read_bytes() for p in ref.tracks] + [ref.calls.read_bytes()]

    calls = {"n": 0}

    def flaky(encodings, **options):  # the model dies at the 4th unit (one call per unit)
        calls["n"] += 1
        if calls["n"] == 4:
            raise _Boom("killed")
        return token_model.predict_encoded(encodings, **options)

    with pytest.raises(_Boom):
        scan_genome(fa, output=tmp_path / "o.bw", predictor=flaky, **kw)
    parts = tmp_path / "o.parts"
    assert len(list(parts.glob("*.npz"))) == 3 and not list(tmp_path.glob("o.*.bw"))
    (parts / ".000004.npz.12345.tmp").write_bytes(b"half-written")  # as left by kill -9
    with pytest.raises(ScanError, match="different settings"):
        scan_genome(fa, output=tmp_path / "o.bw", resume=True, **{**kw, "overlap": 0.25})
    res = scan_genome(fa, output=tmp_path / "o.bw", resume=True, **kw)
    assert [p.read_bytes() for p in res.tracks] + [res.calls.read_bytes()] == ref_bytes
    assert not parts.exists()


def test_a_run_without_resume_says_it_removed_an_unfinished_runs_parts(tmp_path, token_model):
    """Rerunning without --resume starts afresh, and warns that the earlier run's finished
    parts (maybe hours of work) were removed and how to keep them; a first run says nothing."""
    import warnings

    fa = write_fa(tmp_path / "g.fa", {"x": "ACGTTGCA" * 60})
    kw = dict(model=token_model, task="splice", window_tokens=24, unit_bp=150, quiet=True)
    r = scan_genome(fa, output=tmp_path / "o.bw", shard="1/2", **kw)  # leaves finished parts behind
    assert not r.complete and list((tmp_path / "o.parts").glob("*.npz"))
    n = len(list((tmp_path / "o.parts").glob("*.npz")))
    with pytest.warns(UserWarning, match=rf"o\.parts: removed {n} finished part\(s\) of an earlier run.*--resume"):
        res = scan_genome(fa, output=tmp_path / "o.bw", **kw)
    assert res.complete
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scan_genome(fa, output=tmp_path / "again.bw", **kw)


def test_shards_then_assemble(tmp_path, token_model):
    rng = np.random.default_rng(8)
    fa = write_fa(tmp_path / "g.fa", {c: "".join(rng.choice(list("ACGT"), size=300)) for c in "xy"})
    kw = dict(model=token_model, task="splice", window_tokens=24, unit_bp=100, quiet=True)
    ref = scan_genome(fa, output=tmp_path / "ref.bw", **kw)
    r1 = scan_genome(fa, output=tmp_path / "o.bw", shard="1/2", **kw)
    assert not r1.complete and r1.counts["units_missing"] == 3
    r2 = scan_genome(fa, output=tmp_path / "o.bw", shard=(2, 2), **kw)
    assert r2.complete  # the last shard assembles
    assert [p.read_bytes() for p in r2.tracks] == [p.read_bytes() for p in ref.tracks]


def test_the_compiled_bpe_encoder_writes_the_same_files(tmp_path, monkeypatch):
    """A scan that tokenises with genaannot.bpe (forced here by a 0-bp LONG_INPUT_BP) writes
    the bytes of one that tokenises with tokenizers: tracks and calls."""
    from pathlib import Path

    from tinymodels import make_gena_dir

    import genaannot.pipeline.scan as scan_mod
    from genaannot.bpe import FastBPE
    from genaannot.models import load_model

    fa = Path(__file__).resolve().parent.parent / "examples/athaliana/athaliana_1pct.fa.gz"
    model = load_model(make_gena_dir(tmp_path / "m", head="token", num_labels=3), device="cpu")
    bed = tmp_path / "r.bed"
    bed.write_text("Chr2\t0\t30000\nChrM\t0\t3000\n")
    used = []
    encode = FastBPE.encode
    monkeypatch.setattr(FastBPE, "encode", lambda self, up: used.append(len(up)) or encode(self, up))
    files = {}
    for name, floor in (("tokenizers", 10**12), ("compiled", 0)):
        monkeypatch.setattr(scan_mod, "LONG_INPUT_BP", floor)
        used.clear()
        res = scan_genome(fa, model=model, task="splice", output=tmp_path / name / "o.bw", regions=bed,
                          window_tokens=120, batch_size=16, quiet=True)
        files[name] = [p.read_bytes() for p in [*res.tracks, res.calls]]
        assert (sum(used) > 60_000) == (name == "compiled")  # both strands went through it, or none
    assert files["compiled"] == files["tokenizers"]


def _bundled_regions(tmp_path, kind, token_model, seq_model, *, bpe_bp, base_end):
    """The bundled genome, a regions BED on Chr2 and ChrM, a model of ``kind`` (a tiny BPE GENA
    BERT, the 1-bp toy token model or else the toy sequence head) and scan settings for it."""
    from pathlib import Path

    from tinymodels import make_gena_dir

    from genaannot.models import load_model

    fa = Path(__file__).resolve().parent.parent / "examples/athaliana/athaliana_1pct.fa.gz"
    bed = tmp_path / "r.bed"
    if kind == "bpe":
        model = load_model(make_gena_dir(tmp_path / "m", head="token", num_labels=3), device="cpu")
        bed.write_text(f"Chr2\t0\t{bpe_bp}\nChrM\t0\t3000\n")
        kw = dict(task="splice", window_tokens=120, batch_size=16, unit_bp=7_000)
    else:
        model = token_model if kind == "token" else seq_model
        bed.write_text(f"Chr2\t1000\t{base_end}\nChrM\t0\t900\n")
        kw = dict(task="splice" if kind == "token" else "generic", window_tokens=24, unit_bp=700)
    return fa, bed, model, kw


@pytest.mark.parametrize("kind", ["bpe", "token", "sequence"])
def test_token_pieces_write_the_bytes_of_per_base_stitching(tmp_path, monkeypatch, kind, token_model, seq_model):
    """The writer stitches and run-length encodes on token pieces (genaannot.span.span_pieces);
    forced back to painting every base (stitch_span), the files are byte-identical: a BPE
    model (multi-bp tokens, random per-token values), the 1-bp toy model and a sequence head;
    several units, both strands, rounded and unrounded tracks, bedGraph twins and calls."""
    import genaannot.pipeline.scan as scan_mod

    fa, bed, model, kw = _bundled_regions(tmp_path, kind, token_model, seq_model, bpe_bp=30_000, base_end=4000)
    pieces = []
    real = scan_mod.span_pieces
    files = {}
    for name in ("pieces", "per_base"):
        if name == "per_base":
            monkeypatch.setattr(scan_mod, "span_pieces", lambda *a, **k: None)
        else:
            monkeypatch.setattr(scan_mod, "span_pieces", lambda *a, **k: pieces.append(1) or real(*a, **k))
        for digits in (2, None):
            res = scan_genome(fa, model=model, output=tmp_path / name / str(digits) / "o.bw", regions=bed,
                              quiet=True, track_digits=digits, bedgraph=True, **kw)
            files[(name, digits)] = [p.read_bytes() for p in [*res.tracks, *res.bedgraphs, res.calls]]
    assert len(pieces) > 4
    assert files[("pieces", 2)] == files[("per_base", 2)]
    assert files[("pieces", None)] == files[("per_base", None)]


@pytest.mark.parametrize("kind", ["token", "seq", "bpe"])
def test_the_packed_model_path_writes_the_bytes_of_the_listed_one(tmp_path, kind, token_model, seq_model):
    """A scan feeds the model packed windows (Model.predict_windows); a stand-in predictor
    (predict_encoded's signature, listed) gives the same files, in this process and with a
    worker process writing."""
    fa, bed, model, kw = _bundled_regions(tmp_path, kind, token_model, seq_model, bpe_bp=12_000, base_end=3000)
    if kind == "bpe":  # short windows, a partial batch: batching must not differ between the paths
        kw.update(window_tokens=60, batch_size=5, unit_bp=5_000)
    files = {}
    for name, predictor, workers in (("packed", None, 0), ("listed", model.predict_encoded, 0),
                                     ("listed-worker", model.predict_encoded, 1 if kind == "bpe" else 0)):
        res = scan_genome(fa, model=model, output=tmp_path / name / "o.bw", regions=bed, quiet=True,
                          predictor=predictor, workers=workers, **kw)
        files[name] = [p.read_bytes() for p in [*res.tracks, res.calls]]
    assert files["packed"] == files["listed"] == files["listed-worker"]


@pytest.mark.parametrize("kind", ["toy-token", "bpe"])
def test_an_asynchronous_device_streams_the_units_and_writes_the_same_bytes(tmp_path, kind, token_model, seq_model):
    """On an asynchronous device (CUDA: Model.asynchronous) the scan sends every unit through
    one stream of batches (Model.predict_windows_stream); the files are those of the
    unit-at-a-time path, in this process and with a worker process writing."""
    fa, bed, model, kw = _bundled_regions(tmp_path, kind, token_model, seq_model, bpe_bp=12_000, base_end=3000)
    kw.update(unit_bp=1_000 if kind == "toy-token" else 5_000)
    if kind == "bpe":
        kw.update(window_tokens=60, batch_size=5)
    streamed: list[int] = []
    real = model.predict_windows_stream

    def counting(jobs, **k):
        for tag, out in real(jobs, **k):
            streamed.append(1)
            yield tag, out

    files = {}
    try:
        for name, asynchronous, workers in (("units", False, 0), ("stream", True, 0), ("stream-worker", True, 1)):
            model.asynchronous = asynchronous
            model.predict_windows_stream = counting
            streamed.clear()
            res = scan_genome(fa, model=model, output=tmp_path / name / "o.bw", regions=bed, quiet=True,
                              workers=workers if kind == "bpe" else 0, **kw)
            files[name] = [p.read_bytes() for p in [*res.tracks, res.calls]]
            assert len(streamed) == (res.counts["units"] if asynchronous else 0), name
    finally:
        model.asynchronous = False
        del model.predict_windows_stream
    assert res.counts["units"] > 2
    assert files["units"] == files["stream"] == files["stream-worker"]


def test_real_genome_slice(tmp_path):
    """A. thaliana TAIR10 1%: ~150 kb through a tiny random GENA model; check with pyBigWig and pybigtools."""
    from pathlib import Path

    from tinymodels import make_gena_dir

    from genaannot.io.fasta import open_genome
    from genaannot.models import load_model

    # the bundled copy (the same sequence as ../shared's KorfLab 1pct.fa), bgzipped with its
    # .fai/.gzi in the repository: opened in place, nothing is written beside it
    fa = Path(__file__).resolve().parent.parent / "examples/athaliana/athaliana_1pct.fa.gz"
    beside = sorted(p.name for p in fa.parent.iterdir())
    model = load_model(make_gena_dir(tmp_path / "m", head="token", num_labels=3), device="cpu")
    bed = tmp_path / "r.bed"
    bed.write_text("Chr1\t0\t100000\nChr3\t50000\t90000\nChrC\t0\t1544\n")
    res = scan_genome(fa, model=model, task="splice", output=tmp_path / "at.bw", regions=bed,
                      window_tokens=120, batch_size=16, quiet=True)
    with open_genome(fa) as g:
        sizes = g.sizes
    assert res.counts["bp_scanned"] + res.counts["n_bp_skipped"] == 141544
    assert sorted(p.name for p in fa.parent.iterdir()) == beside
    for path in res.tracks:
        bw = pyBigWig.open(str(path))
        assert bw.chroms() == sizes and list(bw.chroms()) == list(sizes)
        iv = bw.intervals("Chr1")
        assert iv[0][0] == 0 and iv[-1][1] == 100000 and all(0 <= v <= 1 for _, _, v in iv)
        assert bw.intervals("Chr2") is None
        b = pybigtools.open(str(path))
        assert dict(b.chroms()) == sizes
        recs = list(b.records("Chr1"))
        assert [(int(s), int(e)) for s, e, _ in recs] == [(s, e) for s, e, _ in iv]
        np.testing.assert_allclose([v for *_, v in recs], [v for *_, v in iv], rtol=1e-6)
        try:
            vals = b.values("Chr3", 50000, 90000, fillna=None)
        except TypeError:  # older pybigtools: NaN for no data was already the default
            vals = b.values("Chr3", 50000, 90000)
        assert not np.isnan(vals).any()
        bw.close()


def test_workers_and_devices_give_identical_files(tmp_path):
    """Host worker processes (BPE tokenizer pickled to them) and two CPU "devices" change nothing."""
    from tinymodels import make_gena_dir, random_dna

    from genaannot.models import load_model

    fa = write_fa(tmp_path / "g.fa", {"a": random_dna(6000, seed=1), "b": random_dna(2500, seed=2) + "N" * 300
                                      + random_dna(1500, seed=3), "c": "ACGT"})
    path = make_gena_dir(tmp_path / "m", head="token", num_labels=3)
    model = load_model(path, device="cpu")
    kw = dict(model=model, task="splice", window_tokens=48, unit_bp=1500, quiet=True, batch_size=4)
    ref = scan_genome(fa, output=tmp_path / "w0.bw", workers=0, **kw)
    ref_bytes = [p.read_bytes() for p in ref.tracks] + [ref.calls.read_bytes()]
    par = scan_genome(fa, output=tmp_path / "w2.bw", workers=2, **kw)
    assert [p.read_bytes() for p in par.tracks] + [par.calls.read_bytes()] == ref_bytes
    dev = scan_genome(fa, output=tmp_path / "d2.bw", devices="cpu,cpu", **{**kw, "model": str(path)})
    assert [p.read_bytes() for p in dev.tracks] + [dev.calls.read_bytes()] == ref_bytes
    m_ref, m_dev = (json.loads(r.manifest.read_text()) for r in (ref, dev))
    assert m_dev["model"]["device"] == "cpu,cpu" and m_dev["counts"] == m_ref["counts"]
    assert not m_ref["model"]["compiled"] and not m_dev["model"]["compiled"]
    # torch.compile options reach every device process (eager backend: no C++ toolchain needed)
    comp = load_model(path, device="cpu", compile={"backend": "eager"})
    cdev = scan_genome(fa, output=tmp_path / "c2.bw", devices="cpu,cpu", **{**kw, "model": comp})
    assert json.loads(cdev.manifest.read_text())["model"]["compiled"] is True
    for a, b in zip(cdev.tracks, ref.tracks):
        np.testing.assert_allclose(read_bw(a, "a", 6000), read_bw(b, "a", 6000), atol=1e-5)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_writer_error_is_raised_and_earlier_units_kept(tmp_path, token_model, monkeypatch, asynchronous):
    """Stitching/saving runs on a writer thread: its error reaches the caller, and units
    already finished stay as parts for --resume (also with the units in one stream, as on
    a GPU)."""
    from genaannot.io.parts import PartsStore

    monkeypatch.setattr(token_model, "asynchronous", asynchronous)

    rng = np.random.default_rng(9)
    fa = write_fa(tmp_path / "g.fa", {"x": "".join(rng.choice(list("ACGT"), size=900))})
    real = PartsStore.save
    calls = {"n": 0}

    def broken(self, key, part):
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Boom("disk full")
        return real(self, key, part)

    monkeypatch.setattr(PartsStore, "save", broken)
    with pytest.raises(_Boom, match="disk full"):
        scan_genome(fa, output=tmp_path / "o.bw", model=token_model, task="splice", window_tokens=24,
                    unit_bp=100, quiet=True)
    assert len(list((tmp_path / "o.parts").glob("*.npz"))) >= 2 and not list(tmp_path.glob("o.*.bw"))


def test_a_stream_of_units_that_dies_mid_run_resumes_to_identical_files(tmp_path, token_model, monkeypatch):
    """On an asynchronous device (units in one stream of batches) a model error mid-run
    leaves the units handed out before it as parts and no outputs; --resume completes the
    same files as an uninterrupted run."""
    import genaannot.predict as predict

    monkeypatch.setattr(token_model, "asynchronous", True)
    # the toy's outputs are tiny: a queue of a few batches, as a GPU's 2^20 values are
    monkeypatch.setattr(predict, "STREAM_AHEAD_ELEMENTS", 1000)
    rng = np.random.default_rng(11)
    fa = write_fa(tmp_path / "g.fa", {c: "".join(rng.choice(list("ACGT"), size=500)) for c in "xy"})
    kw = dict(model=token_model, task="splice", window_tokens=24, unit_bp=120, batch_size=4, quiet=True)
    ref = scan_genome(fa, output=tmp_path / "ref.bw", **kw)
    ref_bytes = [p.read_bytes() for p in ref.tracks] + [ref.calls.read_bytes()]
    net = token_model.network
    real = type(net).forward
    n = {"batches": 0}

    def dying(*a, **k):
        n["batches"] += 1
        if n["batches"] == 25:
            raise _Boom("device lost")
        return real(net, *a, **k)

    monkeypatch.setattr(net, "forward", dying)
    with pytest.raises(_Boom):
        scan_genome(fa, output=tmp_path / "o.bw", **kw)
    monkeypatch.delattr(net, "forward")
    done = len(list((tmp_path / "o.parts").glob("*.npz")))
    assert 0 < done < ref.counts["units"] and not list(tmp_path.glob("o.*.bw"))
    res = scan_genome(fa, output=tmp_path / "o.bw", resume=True, **kw)
    assert [p.read_bytes() for p in res.tracks] + [res.calls.read_bytes()] == ref_bytes


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from toy import make_toy_model
from genaannot.pipeline.scan import scan_genome
import time
model = make_toy_model("token", max_tokens=64)
def slow(encodings, **options):  # slow enough that the parent can kill -9 mid-run
    time.sleep(0.3)
    return model.predict_encoded(encodings, **options)
scan_genome({fa!r}, model=model, task="splice", output={out!r}, predictor=slow,
            window_tokens=24, unit_bp=150, quiet=True)
"""


@pytest.mark.slow
def test_resume_after_kill_9_gives_identical_files(tmp_path, token_model):
    """A real SIGKILL of a scanning process, then --resume: files identical to a clean run."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    rng = np.random.default_rng(11)
    fa = write_fa(tmp_path / "g.fa", {c: "".join(rng.choice(list("ACGT"), size=600)) for c in "xyz"})
    kw = dict(model=token_model, task="splice", window_tokens=24, unit_bp=150, quiet=True)
    ref = scan_genome(fa, output=tmp_path / "ref.bw", **kw)
    out = tmp_path / "o.bw"
    code = _CHILD.format(tests=str(Path(__file__).parent), fa=str(fa), out=str(out))
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"})
    parts = tmp_path / "o.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.npz"))) < 3:
        time.sleep(0.05)
        assert child.poll() is None, "the child finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done = len(list(parts.glob("*.npz")))
    assert 3 <= done < 12 and not list(tmp_path.glob("o.*.bw")) and not out.exists()
    res = scan_genome(fa, output=out, resume=True, **kw)
    assert [p.read_bytes() for p in res.tracks] == [p.read_bytes() for p in ref.tracks]
    assert res.calls.read_bytes() == ref.calls.read_bytes()
    assert not parts.exists()


def test_default_workers_per_device(monkeypatch):
    import os

    from genaannot.pipeline import scan as scan_mod

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    assert scan_mod.default_workers() == 4  # CPU model: the cores are the model's too
    assert scan_mod.default_workers(devices=["cuda:0"]) == 8
    assert scan_mod.default_workers(devices=["cuda:0", "cuda:1"]) == 7
    assert scan_mod.default_workers(devices="cuda") == 8
    # one worker cannot prepare what a GPU computes (docs/scale.md): two wherever a core is
    # left beside the device processes, however few
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert scan_mod.default_workers() == 1 and scan_mod.default_workers(devices="cuda") == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(6)), raising=False)
    assert scan_mod.default_workers(devices=["cuda:0", "cuda:1", "cuda:2", "cuda:3"]) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert scan_mod.default_workers() == 0 and scan_mod.default_workers(devices=["cuda:0"]) == 0


def test_parts_computed_here_are_handed_over_in_memory_even_when_their_files_come_first(tmp_path, monkeypatch):
    """A worker saves a part, then sends it back: the assembler must not take the file on disk
    for a sign that the part is ready (it read most parts back, and each part handed over after
    that stayed in the two hand-over slots for good); one it cannot hold is read back."""
    import threading
    import time

    from genaannot.io.parts import Part, PartsStore
    from genaannot.pipeline import scan as scan_mod
    from genaannot.windows import Unit

    store = PartsStore(tmp_path / "o.parts")
    store.prepare({"a": 1}, keep=False)
    units = [Unit(i, "c", 10 * i, 10 * i + 10, 0, 60) for i in range(6)]
    run = (np.array([0]), np.array([10]), np.array([0.5], dtype=np.float32))
    parts = {u.key: Part({("+", 0): run}, {"i": u.index}) for u in units}
    for u in units:
        store.save(u.key, parts[u.key])  # every file is there before any part is handed over
    loads: list = []
    real_load = PartsStore.load
    monkeypatch.setattr(PartsStore, "load", lambda self, key, **kw: loads.append(int(key)) or real_load(self, key, **kw))

    class Fed:  # the assembler's side of the follower: starts when told
        tracks = [("+", 0)]

        def __init__(self):
            self.got, self.go = [], threading.Event()

        def follow(self, units, *, wait):
            self.go.wait(10)
            for u in units:
                self.got.append(wait(u).meta["i"])

        def abort(self):
            pass

        def until(self, n):
            t = time.monotonic()
            while len(self.got) < n and time.monotonic() - t < 10:
                time.sleep(0.01)
            time.sleep(0.2)  # and it waits for the next, not reading it from disk
            assert self.got == list(range(n))

    def run_follower(handed, first):
        loads.clear()
        fed = Fed()
        follower = scan_mod._Follower(store, units, fed, handed=handed)
        for i in first:  # handed over before the assembler takes any
            follower.notify(units[i], parts[units[i].key])
        fed.go.set()
        done = max(first) + 1
        fed.until(done)
        for u in units[done:]:  # one at a time, as the assembler keeps up
            follower.notify(u, parts[u.key])
            fed.until(u.index + 1)
        follower.join()
        assert not follower._ready  # nothing left behind in the slots
        return loads

    # unit 0 done by an earlier run (--resume): read from the store; the others never are,
    # though their files are there first, and two workers finish out of order
    assert run_follower(units[1:], [2, 1]) == [0]
    # two wait in memory: a third handed over before the assembler took any is read back
    assert run_follower(units, [0, 1, 2]) == [2]


def test_the_heap_is_given_back_before_the_first_unit(tmp_path, token_model, monkeypatch):
    """What loading the model left freed is not held through the scan (a trim before any
    unit is planned, then one per unit where resident memory has grown)."""
    from genaannot.pipeline import scan as scan_mod

    seen: list = []
    plan = scan_mod.plan_span
    monkeypatch.setattr(scan_mod, "release_free_heap", lambda force=False: seen.append("trim" if force else "maybe"))
    monkeypatch.setattr(scan_mod, "plan_span", lambda *a, **k: seen.append("plan") or plan(*a, **k))
    fa = write_fa(tmp_path / "g.fa", {"a": "ACGT" * 150})
    scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", window_tokens=24, unit_bp=200,
                quiet=True, workers=0)
    assert seen[:2] == ["trim", "plan"] and seen.count("plan") == 3 and seen.count("maybe") >= 3


def test_progress_counts_every_base_once(tmp_path, token_model):
    """The bar advances in whole bp per finished batch and ends exactly at the scanned total."""
    seen: list = []
    fa = write_fa(tmp_path / "g.fa", {"a": "ACGT" * 333 + "A", "b": "GGCATT" * 40})
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", window_tokens=24,
                      unit_bp=300, quiet=True, batch_size=3, progress=seen.append)
    assert all(isinstance(n, int) and n >= 0 for n in seen) and len(seen) > 10
    assert sum(seen) == res.counts["bp_scanned"] == 1333 + 240


def test_workers_from_a_script_without_a_main_guard_are_refused_before_any_output(tmp_path):
    """Spawned workers re-run an unguarded script; scan refuses before it reads or writes anything."""
    from procs import assert_unguarded_script_refused

    assert_unguarded_script_refused(tmp_path, (
        "from genaannot.pipeline.scan import scan_genome\n"
        "scan_genome('missing.fa', model='missing-model', task='splice', output='out.bw', workers=2)\n"))


# --------------------------------------------------------------------------- run identity and the -o lock


def _left_parts(tmp_path, model, **kw):
    """A genome and the parts of shard 1/2 on ``o.bw``: what --resume would continue."""
    rng = np.random.default_rng(12)
    fa = write_fa(tmp_path / "g.fa", {c: "".join(rng.choice(list("ACGT"), size=300)) for c in "xy"})
    kw = dict(model=model, task="splice", window_tokens=24, unit_bp=100, quiet=True, **kw)
    assert not scan_genome(fa, output=tmp_path / "o.bw", shard="1/2", **kw).complete
    return fa, kw


def test_resume_refuses_changed_weights_at_the_same_path(tmp_path):
    from safetensors.torch import load_file, save_file
    from tinymodels import make_gena_dir

    path = make_gena_dir(tmp_path / "m", head="token", num_labels=3)
    fa, kw = _left_parts(tmp_path, str(path))
    manifest_of_shard = json.loads(next((tmp_path / "o.parts").glob("shard-*.json")).read_text())
    old_sha = manifest_of_shard["model"]["sha256"]
    state = load_file(str(path / "model.safetensors"))
    name = sorted(state)[0]
    state[name] = state[name] + 0.25  # other values, same shapes, same file name
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(ScanError, match=rf"model weights changed \(sha256 {old_sha[:8]}… → [0-9a-f]{{8}}…\)"):
        scan_genome(fa, output=tmp_path / "o.bw", resume=True, **kw)
    assert len(list((tmp_path / "o.parts").glob("*.npz"))) == 3  # refused: shard 1/2's parts kept, none added


def test_resume_refuses_a_genome_edited_with_the_same_lengths(tmp_path, token_model):
    import os

    fa, kw = _left_parts(tmp_path, token_model)
    fai = (tmp_path / "g.fa.fai").read_bytes()
    text = fa.read_text()
    i = text.index("\n", 3) + 1 + 150  # a base of y
    fa.write_text(text[:i] + ("A" if text[i] != "A" else "C") + text[i + 1:])
    st = fa.stat()
    os.utime(fa, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later edit (coarse clocks: same tick)
    with pytest.raises(ScanError, match=r"genome file changed \(size/mtime of g\.fa\)"):
        scan_genome(fa, output=tmp_path / "o.bw", resume=True, **kw)
    assert (tmp_path / "g.fa.fai").read_bytes() == fai  # same lengths and offsets: only the file identity tells


def test_resume_refuses_another_batch_size_and_manifest_records_the_settings(tmp_path, token_model):
    fa, kw = _left_parts(tmp_path, token_model, batch_size=8)
    with pytest.raises(ScanError, match="batch_size 8 → 16"):
        scan_genome(fa, output=tmp_path / "o.bw", resume=True, **{**kw, "batch_size": 16})
    settings = json.loads((tmp_path / "o.parts" / "settings.json").read_text())
    res = scan_genome(fa, output=tmp_path / "o.bw", resume=True, **kw)
    m = json.loads(res.manifest.read_text())
    assert m["settings"] == settings  # one record, whole
    assert settings["batch_size"] == m["batch_size"] == 8 and settings["min_gap_bp"] == m["min_gap_bp"] == 24
    assert "min_gap" not in settings and settings["model"]["sha256"] == m["model"]["sha256"]
    assert set(settings["genome_file"]) == {"size", "mtime_ns", "fai_sha256"}
    assert settings["thresholds"] == m["calls"]["thresholds"] and settings["bedgraph"] is False


def test_resume_refuses_parts_of_an_older_layout(tmp_path, token_model):
    import re

    from genaannot import __version__
    from genaannot.io.parts import PARTS_FORMAT

    fa, kw = _left_parts(tmp_path, token_model)
    sfile = tmp_path / "o.parts" / "settings.json"
    settings = json.loads(sfile.read_text())
    assert settings["parts_format"] == PARTS_FORMAT
    del settings["parts_format"]  # as a genaannot before it wrote them (int64 starts and ends)
    sfile.write_text(json.dumps(settings))
    n_parts = len(list(sfile.parent.glob("*.npz")))
    with pytest.raises(ScanError, match=rf"parts_format not recorded \(parts of genaannot {re.escape(__version__)}\)"
                                        r".*without --resume"):
        scan_genome(fa, output=tmp_path / "o.bw", resume=True, **kw)
    assert len(list(sfile.parent.glob("*.npz"))) == n_parts  # refused: nothing read, nothing removed


def test_default_batch_size_is_8_on_cpu_and_about_32k_token_positions_on_cuda():
    from genaannot.pipeline.scan import default_batch_size

    assert default_batch_size(devices=None, window_tokens=510) == 8
    assert default_batch_size(devices=["cpu", "cpu"], window_tokens=100) == 8
    # the thread that feeds a GPU works per batch: 64 windows of a 512-token model, not 8
    assert default_batch_size(devices="cuda", window_tokens=510) == 64
    assert default_batch_size(devices=["cuda:0", "cuda:1"], window_tokens=1022) == 32
    assert default_batch_size(devices="cuda:1", window_tokens=100) == 64  # at most 64 windows
    # at most 8 windows of 4,096 token positions (what BigBird took before); longer windows keep 8
    assert default_batch_size(devices="cuda", window_tokens=4094) == 8
    assert default_batch_size(devices="cuda", window_tokens=1_000_000) == 8


def test_an_unset_batch_size_is_the_default_for_the_device_and_window(tmp_path, token_model, monkeypatch):
    import genaannot.pipeline.scan as scan_mod

    seen = []

    def fake(*, devices, window_tokens):
        seen.append((list(devices), window_tokens))
        return 5

    monkeypatch.setattr(scan_mod, "default_batch_size", fake)
    fa = tmp_path / "g.fa"
    fa.write_text(">x\n" + "ACGTTGCA" * 40 + "\n")
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", window_tokens=32, quiet=True)
    assert seen == [([str(token_model.device)], 32)]
    assert json.loads(res.manifest.read_text())["batch_size"] == 5  # what ran is what is recorded


def test_resume_refuses_another_precision(tmp_path, token_model):
    """bf16 or fp16 change a model's outputs far beyond float rounding: the parts of an fp32
    run are not continued by a bf16 one."""
    from genaannot.models.base import Loaded, Model

    fa, kw = _left_parts(tmp_path, token_model, batch_size=8)
    bf16 = Model(Loaded(token_model.network, token_model.tokenizer, token_model.info), device="cpu",
                 precision="bf16")
    with pytest.raises(ScanError, match='model precision "fp32" → "bf16"'):
        scan_genome(fa, output=tmp_path / "o.bw", resume=True, **{**kw, "model": bf16})
    settings = json.loads((tmp_path / "o.parts" / "settings.json").read_text())
    assert settings["model"]["precision"] == "fp32"


def test_a_second_run_on_the_same_output_is_refused(tmp_path, token_model):
    import os

    from genaannot.io.lock import output_lock

    rng = np.random.default_rng(13)
    fa = write_fa(tmp_path / "g.fa", {"x": "".join(rng.choice(list("ACGT"), size=300))})
    kw = dict(model=token_model, task="splice", window_tokens=24, unit_bp=100, quiet=True)
    out = tmp_path / "o.bw"
    with output_lock(out):  # the first run, as far as the second can tell
        with pytest.raises(ScanError, match=rf"another genaannot scan is writing .*o \(pid {os.getpid()} on .*, "
                                            r"started .*\); wait for it or choose another -o"):
            scan_genome(fa, output=out, **kw)
        with pytest.raises(ScanError, match="another genaannot scan is writing"):
            scan_genome(fa, output=out, shard="1/2", **kw)  # a shard does not join a whole run
        assert not (tmp_path / "o.parts").exists()
    res = scan_genome(fa, output=out, **kw)
    assert res.complete and not list(tmp_path.glob(".o*.lock"))  # a lock file goes with its run


def test_shards_of_one_run_share_the_output(tmp_path, token_model):
    import os

    from genaannot.io.lock import output_lock

    rng = np.random.default_rng(14)
    fa = write_fa(tmp_path / "g.fa", {c: "".join(rng.choice(list("ACGT"), size=300)) for c in "xy"})
    kw = dict(model=token_model, task="splice", window_tokens=24, unit_bp=100, quiet=True)
    ref = scan_genome(fa, output=tmp_path / "ref.bw", **kw)
    out = tmp_path / "o.bw"
    with output_lock(out, shard=(1, 2)):  # shard 1/2 is running
        with pytest.raises(ScanError, match=rf"another genaannot scan --shard 1/2 is writing .*pid {os.getpid()}"):
            scan_genome(fa, output=out, shard="1/2", **kw)
        with pytest.raises(ScanError, match=rf"another genaannot scan is writing .*pid {os.getpid()}"):
            scan_genome(fa, output=out, resume=True, **kw)  # a whole run waits for the shards
        assert not scan_genome(fa, output=out, shard="2/2", **kw).complete  # not refused
    done = scan_genome(fa, output=out, shard="1/2", **kw)
    assert done.complete and [p.read_bytes() for p in done.tracks] == [p.read_bytes() for p in ref.tracks]
    with pytest.raises(ScanError, match=r"batch_size 8 → 4.*a --shard run always keeps parts: delete"):
        scan_genome(fa, output=out, shard="2/2", **{**kw, "batch_size": 4})  # joins parts of another run


def test_track_digits_round_the_tracks_but_never_move_a_call(tmp_path, token_model):
    """The default rounding (2 digits) is applied to the tracks; calls come from the unrounded
    values, so the calls BED is byte-identical to a full-precision scan even with a threshold
    that rounding crosses, and the manifest records the setting."""
    from genaannot.stitch import DEFAULT_TRACK_DIGITS, round_values

    rng = np.random.default_rng(21)
    fa = write_fa(tmp_path / "g.fa", {"a": "".join(rng.choice(list("ACGT"), size=700)), "b": "ACGTTGCA" * 30})
    kw = dict(model=token_model, task="splice", window_tokens=24, quiet=True, labels=["acceptor"], strand="+")
    probe = scan_genome(fa, output=tmp_path / "p.bw", track_digits=None, **kw)
    x = read_bw(probe.tracks[0], "a", 700).astype(np.float32)
    r = round_values(x, digits=DEFAULT_TRACK_DIGITS, probability=True)  # splice: softmax
    up = x[r > x]
    v = float(up.max())  # a value just below a threshold that its rounded value passes
    threshold = (v + float(r[x == up.max()][0])) / 2
    full = scan_genome(fa, output=tmp_path / "full.bw", track_digits=None, threshold=threshold, **kw)
    dflt = scan_genome(fa, output=tmp_path / "d.bw", threshold=threshold, **kw)
    assert full.calls.read_bytes() == dflt.calls.read_bytes()
    y = read_bw(dflt.tracks[0], "a", 700)
    np.testing.assert_array_equal(y, r)
    assert ((x < threshold) & (y >= threshold)).any()  # rounding would have moved a call
    assert json.loads(dflt.manifest.read_text())["track_digits"] == DEFAULT_TRACK_DIGITS
    assert json.loads(full.manifest.read_text())["track_digits"] is None


def test_region_strings_in_the_api(tmp_path, token_model):
    from genaannot.regions import Interval, RegionError

    fa = write_fa(tmp_path / "g.fa", {"chr1": "ACGT" * 50, "chr2": "GGCC" * 50})
    bed = tmp_path / "r.bed"
    bed.write_text("chr2\t0\t5\n")
    res = scan_genome(fa, model=token_model, task="splice", output=tmp_path / "o.bw", strand="+",
                      labels=["acceptor"], quiet=True, regions=["1:11-20", Interval("chr1", 100, 110), bed])
    assert json.loads(res.manifest.read_text())["regions"] == ["chr1:11-20", "chr1:101-110", "chr2:1-5"]
    kw = dict(model=token_model, task="splice", output=tmp_path / "p.bw", quiet=True)
    one = scan_genome(fa, regions="chr1:1-10", **kw)  # a lone region string, as score_variants takes it
    assert json.loads(one.manifest.read_text())["regions"] == ["chr1:1-10"]
    with pytest.raises(RegionError, match="--region chr1:1-10"):
        scan_genome(fa, chroms=["chr1:1-10"], **kw)


def test_a_write_error_says_where_the_finished_parts_are_and_how_to_go_on(tmp_path):
    """A full disk while assembling or committing does not cost the computation: the error
    names the parts directory and --resume (the same command for a shard); said once, and
    only when there are parts."""
    from genaannot.io.atomic import OutputError, OutputIsInput
    from genaannot.io.parts import PartsError
    from genaannot.pipeline.scan import _kept_parts_hint

    d = tmp_path / "o.parts"
    d.mkdir()
    err = OutputError("o.bw: cannot write (No space left on device)")
    err.errno = 28
    assert _kept_parts_hint(err, d, shard=None) is err  # no part yet: nothing to go on from
    (d / "000000.npz").write_bytes(b"x")
    got = _kept_parts_hint(err, d, shard=None)
    assert str(got).startswith(str(err)) and f"kept in {d}" in str(got) and "rerun with --resume" in str(got)
    assert got.errno == 28 and type(got) is OutputError
    assert "rerun the same command" in str(_kept_parts_hint(err, d, shard=(1, 2)))
    said = PartsError("p.npz: cannot save part; finished parts are kept in d for --resume")  # as write_part raises it
    assert _kept_parts_hint(said, d, shard=None) is said
    other = OutputIsInput("o.bw would overwrite an input")
    assert _kept_parts_hint(other, d, shard=None) is other
