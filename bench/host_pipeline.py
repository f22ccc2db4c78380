"""Benchmark the host side of ``genaannot scan`` alone: bp/s and tokens/s per core.

Runs the real :func:`genaannot.pipeline.scan.scan_genome` (both strands, the scanner's
default overlap and stitching, task ``splice``: token head, 3 labels, 4 bigWig tracks +
calls) over a real FASTA, with a NULL network that returns model-like random logits of the
right shape instantly (``--outputs random``, the headline; ``--outputs zeros`` gives the
flattering all-zero tracks earlier figures used) (a Network-protocol ``nn.Module`` defined here, wrapped in the real
:class:`~genaannot.models.base.Model` with the real GENA t2t tokenizer, or with ``--tokenizer
base`` the character tokenizer of HyenaDNA and the bundled CNNs: a token, and a value, per
base, with a sixth of the sites per token). Everything but the
model's arithmetic runs: FASTA reading, tokenisation and window planning, collation,
copying, activation, reverse-complement mapping, stitching, run-length encoding, part
files, bigWig/BED writing.

Reported:

* ``bp_per_s_per_core``: scanned bp (one genome strand) per second of wall time, one torch
  thread and ``TOKENIZERS_PARALLELISM=false``, so one core does all the work (``--workers
  0``); on a shared machine wall time includes waiting for the CPU, so also
* ``bp_per_cpu_s`` / ``host_tokens_per_cpu_s``: the same per CPU second (this process plus
  its worker processes, ``getrusage``), the per-core figure that does not depend on other
  load, and ``cores_per_gpu_cpu`` from it; with ``--workers N`` the scan's host work runs
  in N worker processes (wall-time rates then use up to N + 1 cores);
* ``host_tokens_per_s``: token positions fed to the null network (both strands, with
  [CLS]/[SEP] and padding, i.e. what a GPU would compute) per second;
* ``gpus_fed_per_core``: ``host_tokens_per_s / --gpu-tokens-per-s`` (default from the
  issue: 790e12 FLOP/s / 190e6 FLOP/token ≈ 4.2M tokens/s per H200), i.e. how many GPUs
  one host core can keep busy (< 1: the host needs that many cores per GPU, inverted);
* ``tokenizer_bp_per_s_single_pass``: the tokenizer alone over the same bp once (3-kb
  pieces), and ``tokenisations_per_bp``: how many times that the scan's rate is, i.e. how
  often the scan tokenises each base (both strands, overlap, window fitting; not printed
  with ``--device-tokens-per-s``, where the scan's rate is the emulated device's);
* with ``--profile`` (default on), the share of the **main thread's** wall time in
  tokenisation + window planning, the model layer (the scan's own timer of its stream of
  batches: collation, copies, unpacking), stitching and writing, from cProfile (a second, profiled run; profiling
  slows Python-heavy parts, so read the shares, not the profiled time). Stitching (activation,
  strand mapping, stitch, RLE) and part writing run on the scan's writer thread, which
  cProfile does not follow, and so does feeding the parts to the bigWig writers (the
  assembler thread, which follows the scan): their cost is in ``cpu_s``, not in the shares;
  ``share_write`` is then the tail after the last unit (indexes, zoom levels, calls, commit).

* ``forward_host_ms`` / ``forward_host_s`` / ``batches``: with ``--forward-host-ms MS`` each
  batch's forward also spends MS ms of CPU on the thread that launches it, holding the GIL,
  as a real network's eager forward does (:func:`null_model`); 0 by default, which leaves
  that cost out;

* with ``--device-tokens-per-s R``, the null network runs on an emulated device that takes
  ``positions / R`` per batch, asynchronously like a CUDA stream (:class:`EmulatedDevice`;
  the scan waits for a batch where it waits for a GPU's, without the GIL):
  ``device_s`` and ``device_busy_fraction = device_s / wall_s``, i.e. how well the host
  work overlaps the device's; 1.0 means the device never waited for the host.

* ``worker_cores_for_target``, ``device_process_cores_for_target``, ``host_cores_for_target``:
  the cores a device computing ``--target-tokens-per-s`` (default 4e6) token positions per
  second would need, from the CPU seconds per token position of this run: in the worker
  processes (``--workers N``: reading, tokenising, planning), in the device process
  (batching, copies, stitching, writing, on its threads) and together;
* ``thread_cpu_s[NAME]`` and ``thread_cores_for_target[NAME]``: the device process's CPU per
  thread (``ThreadClocks``: main, ``genaannot-writer``, ``genaannot-assemble``,
  ``genaannot-collate``, the worker pool's queue threads, ``other``), and what each would
  need at the target rate: a thread above 1 caps the device, whatever the workers;
* with ``--device-tokens-per-s``, also ``startup_s`` (scan start to the first batch: worker
  start, imports, the first unit's planning), ``device_busy_fraction_after_startup``,
  ``tail_s`` (the emulated device's last batch done to the scan's end: the last unit's
  part, indexes, calls, commit) and ``device_busy_fraction_steady`` (device time over the
  time from the first batch's launch to the last one's end: what the device sees over a
  genome of many units, start and tail left out).

``--random-mb N`` scans one random chromosome of N Mb (``bench/scale.py``'s) instead of
``--fasta``, for runs long enough that start-up does not dominate.

    .venv/bin/python bench/host_pipeline.py [--fasta 1pct.fa] [--max-bp N] [--overlap 0.5]

Prints ``name: value`` lines; ``main(argv)`` returns them as a dict.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core: before tokenizers loads

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FASTA = REPO / "examples/athaliana/athaliana_1pct.fa.gz"  # bundled, indexed copy of TAIR10 1%
TOKENIZER = REPO / "genaannot/data/tokenizers/t2t_1000h_multi_32k"
GPU_TOKENS_PER_S = 790e12 / 190e6  # issue: H200 bf16 at the FLOP rate it assumes

#: cProfile attribution: bucket -> functions whose cumulative time it gets (outermost wins)
BUCKETS: dict[str, tuple[tuple[str, str], ...]] = {
    "tokenise_plan": (("windows.py", "plan_windows"),),
    "stitch": (("stitch.py", "stitch"), ("stitch.py", "rc_to_forward"), ("stitch.py", "runs"),
               ("tasks.py", "activate")),
    "write": (("atomic.py", "save_npz_atomic"), ("assemble.py", "finish_scan")),
}


class EmulatedDevice:
    """A device that computes ``rate`` token positions per second, asynchronously, like one
    CUDA stream: batches run back to back in launch order, each from when it is launched or
    the previous one ends, whichever is later.

    While one is active (:meth:`launch` makes it so), ``genaannot.predict._to_host``, where
    the model layer gets a CUDA batch's output copy and its ready event, hands out a ready
    event for the batch just launched; the model layer synchronises it (here: sleeps until
    the batch's end, without the GIL) where it would wait for the GPU, when it takes that
    batch's outputs, after queueing the next batch. So host work the real code overlaps with
    the device is overlapped here too, and host work it does not overlap is not.
    (``--workers``'s processes do not use the network; the scan's device process does.)
    """

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.free_at = 0.0  # perf_counter() when the last launched batch ends
        self.pending: list[float] = []  # end times of launched batches whose copy is not made yet

    def launch(self, positions: int) -> float:
        """Queue a batch of ``positions`` token positions; return its device seconds."""
        busy = positions / self.rate
        self.free_at = max(time.perf_counter(), self.free_at) + busy
        self.pending.append(self.free_at)
        _to_host_hook().active = self
        return busy


class _Ready:
    """A CUDA event's stand-in: ``synchronize`` sleeps until the batch's end."""

    def __init__(self, at: float) -> None:
        self.at = at

    def synchronize(self) -> None:
        left = self.at - time.perf_counter()
        if left > 0:
            time.sleep(left)


def _to_host_hook():
    """``genaannot.predict._to_host``, wrapped (once per process, whichever copy of this
    module does it) to hand out the ready event of the batch its ``.active`` device launched last."""
    import genaannot.predict as predict

    if getattr(predict._to_host, "emulated_device_hook", False):
        return predict._to_host
    real = predict._to_host

    def to_host(parts, *, cuda):
        host, ready = real(parts, cuda=cuda)
        dev = to_host.active
        if dev is not None and dev.pending:  # the output of the batch launched last
            ready = _Ready(dev.pending.pop(0))
        return host, ready

    to_host.emulated_device_hook = True  # type: ignore[attr-defined]
    to_host.active = None  # type: ignore[attr-defined]
    predict._to_host = to_host
    return to_host


#: the null network's outputs: "random" (the headline: logits ~ N(-7, 1.2) per token and
#: channel, so ~97 % of probabilities are < 0.01 and every token's value differs, like a
#: real splice model's, with :data:`SITE_FRACTION` of them sites) or "zeros" (what earlier
#: figures used: flatters the writers, and makes no calls)
OUTPUTS = ("random", "zeros")

#: the share of random token values that are "sites": logits ~ N(2, 1), a probability of
#: 0.5 or more (a call at the default threshold) for 98 % of them. Without them the null
#: network made no calls at all, so what a scan holds per call was never measured. 0.0037
#: gives ~620 calls per Mb per track on bench/scale.py's random genome with the GENA BPE
#: tokenizer (~6 bp a token), what the default splice model makes on the bundled
#: A. thaliana genome (2,964 calls, 4 tracks, 1.19 Mb; README); real human DNA at a
#: model's false-positive rate may make fewer or more.
SITE_FRACTION = 0.0037


def null_model(*, labels: int = 3, max_tokens: int = 510, device_tokens_per_s: float | None = None,
               outputs: str = "random", tokenizer: Any = None, site_fraction: float | None = None,
               forward_host_ms: float = 0.0):
    """A :class:`Model` around a network that returns ``[B, L, labels]`` logits: model-like
    random values (``outputs="random"``, seeded) or zeros.

    ``tokenizer``: a :class:`~genaannot.tokenize.DNATokenizer`, a tokenizer directory,
    ``"bpe"`` or None (the GENA t2t BPE tokenizer), or ``"base"`` (the character tokenizer of
    HyenaDNA and the bundled CNNs: a token per base). ``site_fraction`` defaults to
    :data:`SITE_FRACTION` per token, a sixth of it with ``"base"``: ~620 calls per Mb per
    track either way (a BPE token is ~6 bp).

    Random logits are N(-7, 1.2²) (a sigmoid below 0.01 for ~97 % of them), and a share
    ``site_fraction`` of them N(2, 1) (sites: calls at the default threshold), drawn once into a
    pool of 2²² and handed out as consecutive slices, so every token of a scan still gets its
    own value (the pool repeats after ~1.4 M token positions) while the benchmark does not
    charge the host for a device's work: drawing them per batch cost 0.044 CPU-s per Mb per
    strand of the scan (``bench/stage_cpu.py``, 2026-12-05), 7 % of what was measured.

    ``forward_host_ms``: host CPU each forward call spends, holding the GIL, on the thread
    that calls it: what a real network's eager forward costs the thread that launches it
    (Python, autograd-free dispatch, kernel launches), which the null network otherwise
    does not charge. A 12-layer GENA BERT forward at a tiny shape, where the arithmetic is
    negligible, took 1.6 ms in fp32 and 4.0 ms under bf16 autocast on this project's CPU
    (``bench/model_forward.py --device cpu --hidden 24 --layers 12 --heads 12
    --intermediate 48 --positions 8 --batch-size 1 --threads 1``, 2026-12-07); on CUDA each
    of its kernel launches adds a few µs more. The time spent is counted in
    ``network.forward_host_s``.

    Instantly, or, with ``device_tokens_per_s``, on an emulated device that computes at that
    rate and runs asynchronously as a CUDA stream does (:class:`EmulatedDevice`): ``forward``
    queues the batch and returns at once, the batch starts when the device is free and
    takes ``positions / rate`` seconds, and the scan's model layer waits for it only where it
    waits for a CUDA batch, when it takes that batch's outputs (after queueing the next
    one), sleeping without the GIL as a CUDA synchronisation does. A benchmark can then
    measure how much of the host work overlaps the device's (``device_seconds``).
    """
    import torch
    from torch import nn

    from genaannot.io.tokenizers import load_tokenizer
    from genaannot.models.base import Loaded, Model, ModelInfo, collate_cls_sep, split_cls_sep
    from genaannot.tokenize import CharTokenizer, DNATokenizer

    # a tokenizer, "base", or the checkpoint directory of one (default: the GENA t2t tokenizer)
    if isinstance(tokenizer, DNATokenizer):
        tok = tokenizer
    elif tokenizer == "base":
        tok = CharTokenizer()
    else:
        tok = load_tokenizer(TOKENIZER if tokenizer in (None, "bpe") else tokenizer)
    if site_fraction is None:
        site_fraction = SITE_FRACTION / (6 if tok.per_letter else 1)
    gen = torch.Generator().manual_seed(0)
    device = EmulatedDevice(device_tokens_per_s) if device_tokens_per_s else None
    pool = None
    if outputs == "random":
        pool = torch.randn(1 << 22, generator=gen) * 1.2 - 7.0
        # drawn as positions, not as a mask over the pool: no pool-sized temporary, which
        # would raise the peak RSS of a short scan (and so flatter its ratio to a long one)
        sites = torch.randint(0, pool.numel(), (round(pool.numel() * site_fraction),), generator=gen)
        pool[sites] = torch.randn(len(sites), generator=gen) + 2.0
    at = [0]  # next unused value of the pool

    class NullNetwork(nn.Module):
        head = "token"

        def __init__(self) -> None:
            super().__init__()
            self.max_content_tokens = max_tokens
            self.content_offset = 1  # after [CLS], as GENA's (base.Network)
            self.positions = 0  # token positions seen (with specials and padding)
            self.content = 0
            self.device_seconds = 0.0  # emulated device time
            self.first_batch = None  # perf_counter() when the first batch arrived
            self.device = device
            self.forward_host_s = 0.0  # thread CPU spent standing in for a real forward's launches
            self.batches = 0

        def collate(self, content):
            return collate_cls_sep(content, cls_id=tok.cls_id, sep_id=tok.sep_id, pad_id=tok.pad_id)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            if self.first_batch is None:
                self.first_batch = time.perf_counter()
            self.positions += input_ids.numel()
            self.batches += 1
            self.content += int(attention_mask.sum()) - 2 * input_ids.shape[0]
            if device is not None:
                self.device_seconds += device.launch(input_ids.numel())
            if forward_host_ms > 0:  # a real forward's host work, after its launch: the GIL held
                t0 = time.thread_time()
                while time.thread_time() - t0 < forward_host_ms / 1e3:
                    pass
                self.forward_host_s += time.thread_time() - t0
            if outputs == "zeros":
                return torch.zeros((*input_ids.shape, labels))
            n = input_ids.numel() * labels
            if n > pool.numel():
                return torch.randn((*input_ids.shape, labels), generator=gen) * 1.2 - 7.0
            if at[0] + n > pool.numel():
                at[0] = (at[0] + n) % (pool.numel() - n)  # wrap at a moving offset
            out = pool[at[0]:at[0] + n].view(*input_ids.shape, labels).clone()  # callers may write to it
            at[0] += n
            return out

        def split(self, out, lengths):
            return split_cls_sep(out, lengths, head="token")

    info = ModelInfo(family="null", architecture="NullNetwork", head="token",
                     labels=tuple(f"LABEL_{i}" for i in range(labels)), problem_type="multi_label_classification",
                     max_tokens=max_tokens, resolution="token", n_params=0, source="null",
                     tokenizer=tok.name)
    model = Model(Loaded(NullNetwork(), tok, info), device="cpu")
    # the emulated device is asynchronous like CUDA's: the scan streams its units as on a GPU
    model.asynchronous = device is not None
    return model


def write_real_genome(path: Path, size: int, *, source: Path = DEFAULT_FASTA) -> Path:
    """One chromosome ``chrR`` of ``size`` bp: ``source``'s sequences end to end (case and
    ``N`` kept), repeated as often as needed; 60-bp lines."""
    from genaannot.io.fasta import open_genome

    with open_genome(source) as g:
        seq = "".join(g.fetch(c, 0, n) for c, n in g.sizes.items())
    seq = (seq * (size // len(seq) + 1))[:size]
    with open(path, "w") as fh:
        fh.write(">chrR\n")
        for a in range(0, size, 60 << 14):  # whole lines per write: the FASTA stays indexable
            piece = seq[a : a + (60 << 14)]
            fh.write("\n".join(piece[i : i + 60] for i in range(0, len(piece), 60)) + "\n")
    return path


def _regions(fasta: Path, max_bp: int | None):
    if not max_bp:
        return None
    from genaannot.io.fasta import open_genome
    from genaannot.regions import Interval

    with open_genome(fasta) as g:
        out, left = [], max_bp
        for chrom, size in g.sizes.items():
            take = min(size, left)
            out.append(Interval(chrom, 0, take))
            left -= take
            if left <= 0:
                break
    return out


def _cpu_seconds() -> float:
    return sum(_cpu_split())


def _cpu_split() -> tuple[float, float]:
    """CPU seconds of this process and of its finished children (the worker processes)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


class ThreadClocks:
    """CPU seconds of each thread of this process while it runs, by Python thread name
    (``genaannot-writer_0`` counts as ``genaannot-writer``; threads without a Python name,
    e.g. torch's, numba's or numpy's OpenBLAS helper, as ``other``), sampled from ``/proc/self/task`` every
    ``every`` seconds (Linux; empty elsewhere). A thread's last sample counts, so one that
    lived less than ``every`` may be missed."""

    def __init__(self, every: float = 0.05) -> None:
        import threading

        self.every, self._stop = every, threading.Event()
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._base = self._read()
        self._thread = threading.Thread(target=self._run, name="bench-thread-clocks", daemon=True)
        self._thread.start()

    def _read(self) -> dict[int, float]:
        import threading

        out: dict[int, float] = {}
        try:
            tids = os.listdir("/proc/self/task")
        except OSError:
            return out
        self._names.update({t.native_id: t.name for t in threading.enumerate() if t.native_id is not None})
        for tid in tids:
            try:
                with open(f"/proc/self/task/{tid}/stat") as fh:
                    f = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(tid)] = (int(f[11]) + int(f[12])) / self._tick  # utime + stime
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._last.update(self._read())

    def stop(self) -> dict[str, float]:
        """CPU seconds per thread name since the start (this sampler's own thread left out)."""
        self._stop.set()
        self._thread.join()
        self._last.update(self._read())
        out: dict[str, float] = {}
        for tid, cpu in self._last.items():
            name = self._names.get(tid, "other")
            if name == "bench-thread-clocks":
                continue
            name = name.rsplit("_", 1)[0] if name.startswith("genaannot-") else name
            out[name] = out.get(name, 0.0) + cpu - self._base.get(tid, 0.0)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _scan(fasta: Path, model, *, overlap: float | None, batch_size: int, max_bp: int | None, out: Path,
          workers: int = 0, unit_bp: int | None = None):
    from genaannot.pipeline.scan import scan_genome

    kw: dict[str, Any] = {} if overlap is None else {"overlap": overlap}
    if workers:
        kw["workers"] = workers
    if unit_bp:
        kw["unit_bp"] = unit_bp
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    _scan.started = t  # type: ignore[attr-defined]
    # one torch thread, as a CUDA run has (``default_threads``): on CPU the scan would give
    # the null network the free cores, whose OpenMP threads then spin between its copies
    res = scan_genome(fasta, model=model, task="splice", output=out / "s.bw", strand="both",
                      regions=_regions(fasta, max_bp), batch_size=batch_size, quiet=True, threads=1, **kw)
    _scan.ended = time.perf_counter()  # type: ignore[attr-defined]
    return res, _scan.ended - t  # type: ignore[attr-defined]


def _tokenizer_rate(fasta: Path, tok, max_bp: int, *, chunk: int = 3000) -> float:
    """bp/s of the tokenizer alone: one strand, non-overlapping ``chunk``-bp pieces, once."""
    from genaannot.io.fasta import open_genome

    with open_genome(fasta) as g:
        seqs, left = [], max_bp
        for chrom, size in g.sizes.items():
            take = min(size, left)
            s = g.fetch(chrom, 0, take)
            seqs += [s[i : i + chunk] for i in range(0, len(s), chunk)]
            left -= take
            if left <= 0:
                break
    t = time.perf_counter()
    for s in seqs:
        tok.encode_batch([s])
    return sum(map(len, seqs)) / (time.perf_counter() - t)


def _shares(stats, wall: float, *, model_layer_s: float) -> dict[str, float]:
    import pstats

    st = pstats.Stats(stats)
    cum: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        for bucket, keys in BUCKETS.items():
            if any(file.endswith(f) and func == fn for f, fn in keys):
                cum[bucket] = cum.get(bucket, 0.0) + ct
    # rc_to_forward/activate/runs are called outside stitch(): plain sums do not double count
    shares = {f"share_{k}": v / wall for k, v in cum.items()}
    # the model layer is one stream over all units (a generator): the scan's own timer, which
    # leaves out the waits for the next unit's planning (in this thread with --workers 0)
    shares["share_model_layer"] = model_layer_s / wall
    shares["share_other"] = max(0.0, 1 - sum(shares.values()))
    return shares


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fasta", type=Path, default=DEFAULT_FASTA)
    ap.add_argument("--max-bp", type=int, default=None, help="scan only the first N bp [all]")
    ap.add_argument("--overlap", type=float, default=None, help="[the scanner's default]")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--gpu-tokens-per-s", type=float, default=GPU_TOKENS_PER_S,
                    help="one GPU's model throughput in token positions/s [790e12/190e6 ≈ 4.16e6]")
    ap.add_argument("--target-tokens-per-s", type=float, default=4e6,
                    help="the device rate to size the host for [4e6, the issue's]: adds "
                         "worker_cores_for_target and device_process_cores_for_target")
    ap.add_argument("--real-mb", type=float, default=None,
                    help="scan one chromosome of this many Mb of real sequence: --fasta's sequences "
                         "(default the bundled TAIR10 1 %%) end to end, repeated (real DNA's token "
                         "lengths; random DNA has shorter tokens, so it flatters the host cost per token)")
    ap.add_argument("--random-mb", type=float, default=None,
                    help="scan one random chromosome of this many Mb (bench/scale.py's genome) "
                         "instead of --fasta")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--outputs", choices=OUTPUTS, default="random",
                    help="null network outputs: model-like random logits (headline) or zeros")
    ap.add_argument("--workers", type=int, default=0, help="host worker processes [0: in-process]")
    ap.add_argument("--unit-bp", type=int, default=None, help="work-unit size [the scanner's: 1 Mb]")
    ap.add_argument("--device-tokens-per-s", type=float, default=None,
                    help="emulate a device computing at this many token positions/s (sleeps; the "
                         "host work should overlap it): adds device_s and device_busy_fraction")
    ap.add_argument("--forward-host-ms", type=float, default=0.0,
                    help="host CPU per batch a real network's eager forward costs the thread that "
                         "launches it, spent holding the GIL (null_model's docstring: 1.6 ms fp32, "
                         "4.0 ms bf16 autocast for a 12-layer GENA BERT on this CPU) [0]")
    ap.add_argument("--tokenizer", choices=("bpe", "base"), default="bpe",
                    help="the GENA t2t BPE tokenizer (a value per ~6-bp token) [default], or the "
                         "character tokenizer of HyenaDNA and the bundled CNNs (a token, and a value, "
                         "per base), as bench/scale.py's")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    model = null_model(device_tokens_per_s=args.device_tokens_per_s, outputs=args.outputs, tokenizer=args.tokenizer,
                       forward_host_ms=args.forward_host_ms)
    net = model.network
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_mb:
            spec = importlib.util.spec_from_file_location("scale", REPO / "bench/scale.py")
            scale = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(scale)  # type: ignore[union-attr]
            args.fasta = scale.write_genome(Path(tmp) / "random.fa", int(args.random_mb * 1e6))
        elif args.real_mb:
            args.fasta = write_real_genome(Path(tmp) / "real.fa", int(args.real_mb * 1e6), source=args.fasta)
        self0, kids0 = _cpu_split()
        cpu0 = self0 + kids0
        clocks = ThreadClocks()
        res, wall = _scan(args.fasta, model, overlap=args.overlap, batch_size=args.batch_size,
                          max_bp=args.max_bp, out=Path(tmp), workers=args.workers,
                          unit_bp=args.unit_bp)
        threads = clocks.stop()
        self1, kids1 = _cpu_split()
        cpu = self1 + kids1 - cpu0
        positions, content = net.positions, net.content
        bp = res.counts["bp_scanned"]
        man = __import__("json").loads(res.manifest.read_text())
        out: dict[str, Any] = {
            "fasta": str(args.fasta),
            "outputs": args.outputs,
            "tokenizer": args.tokenizer,
            "forward_host_ms": args.forward_host_ms,
            "forward_host_s": net.forward_host_s,
            "batches": net.batches,
            "bp_scanned": bp,
            "strands": "both",
            "overlap": man["overlap"],
            "windows_per_strand": res.counts["windows"] / 2,  # counts sum both strands
            "wall_s": wall,
            "bp_per_s_per_core": bp / wall,
            # content tokens computed per strand include the overlap's redundancy
            "bp_per_computed_token": bp / (content / 2),
            "bp_per_token": bp / (content / 2) / (1 - man["overlap"]),  # ≈: redundancy ≈ 1/(1-overlap)
            "host_tokens_per_s": positions / wall,
            "gpu_tokens_per_s_assumed": args.gpu_tokens_per_s,
            "gpus_fed_per_core": positions / wall / args.gpu_tokens_per_s,
            "cores_per_gpu": args.gpu_tokens_per_s / (positions / wall),
            "model_layer_s": res.model_seconds,
            "workers": args.workers,
            "cpu_s": cpu,
            "bp_per_cpu_s": bp / cpu,
            "host_tokens_per_cpu_s": positions / cpu,
            "cores_per_gpu_cpu": args.gpu_tokens_per_s / (positions / cpu),
        }
        # cores a device at --target-tokens-per-s needs, from the CPU each token position took:
        # in the worker processes (planning, tokenising) and in the device process (batching,
        # copies, stitching, writing, assembly; its threads); with --workers 0 all is "device"
        out["target_tokens_per_s"] = args.target_tokens_per_s
        out["device_process_cpu_s"] = self1 - self0
        out["worker_cpu_s"] = kids1 - kids0
        out["worker_cores_for_target"] = args.target_tokens_per_s * (kids1 - kids0) / positions
        out["device_process_cores_for_target"] = args.target_tokens_per_s * (self1 - self0) / positions
        out["host_cores_for_target"] = args.target_tokens_per_s * cpu / positions
        # each thread of the device process: one that would need a whole core at the target
        # caps the device however many workers there are
        for name, sec in threads.items():
            out[f"thread_cpu_s[{name}]"] = sec
        for name, sec in threads.items():
            out[f"thread_cores_for_target[{name}]"] = args.target_tokens_per_s * sec / positions
        if args.device_tokens_per_s:
            out["device_s"] = net.device_seconds
            out["device_busy_fraction"] = net.device_seconds / wall
            # the same after start-up (worker spawn, imports, the first unit's planning)
            out["startup_s"] = net.first_batch - _scan.started  # type: ignore[attr-defined]
            out["device_busy_fraction_after_startup"] = net.device_seconds / (wall - out["startup_s"])
            # from the first batch to the end of the last: what a genome of many units sees
            # (without the start and the tail after the last batch: indexes, calls, commit)
            dev = net.device
            out["tail_s"] = _scan.ended - dev.free_at  # type: ignore[attr-defined]
            out["device_busy_fraction_steady"] = net.device_seconds / (dev.free_at - net.first_batch)
        out["tokenizer_bp_per_s_single_pass"] = _tokenizer_rate(args.fasta, model.tokenizer, bp)
        if not args.device_tokens_per_s:  # with an emulated device the scan's rate is the device's
            out["tokenisations_per_bp"] = out["tokenizer_bp_per_s_single_pass"] / out["bp_per_s_per_core"]
        if not args.no_profile and not args.workers and not args.device_tokens_per_s:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            pres, pwall = _scan(args.fasta, model, overlap=args.overlap, batch_size=args.batch_size,
                                max_bp=args.max_bp, out=Path(tmp) / "p")
            prof.disable()
            out["profiled_wall_s"] = pwall
            out.update(_shares(prof, pwall, model_layer_s=pres.model_seconds))
    for k, v in out.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    return out


if __name__ == "__main__":
    main()
