"""A streaming bigWig writer in numpy: flat memory, exact zoom levels, write errors raised.

Coordinates are 0-based, half-open (as in bigWig).

Why our own writer (measured, see ``docs/scale.md``): libBigWig (pyBigWig) keeps every
interval of a chromosome in memory to build the zoom levels on ``close()`` (peak memory
grows with chromosome length), writes some zoom records with ``sum = 0`` (biased mean
summaries, IGV's default view) and does not report write errors from ``close()`` (a full
disk left truncated files). pybigtools writes exact zooms but takes one Python tuple per
entry. This writer takes numpy arrays of runs, in genome order, and

* encodes each block of up to :data:`ITEMS_PER_SLOT` runs as a ``fixedStep`` section
  when the runs are contiguous and of one length (4 bytes per run), else ``bedGraph``
  (12 bytes per run), deflated by zlib at level 1: the same blocks give the same bytes on
  every run, which the scan's identical files across workers, shards and ``--resume`` rest
  on (ISA-L's deflate, 2–3× faster, once encoded one block two ways in two runs on one
  machine: docs/scale-log.md, "Deflate: zlib again");
* builds every zoom level while streaming: level 0 from the runs (split at bin edges),
  level ``k`` from level ``k - 1`` (reductions grow by 4, so bins nest). Zoom bins are
  aligned ``[i * r, (i + 1) * r)`` (clipped to the chromosome), and sums are accumulated in
  float64 before the float32 record is written, so a mean over whole bins equals the
  mean of the full-resolution data to float32 precision;
* keeps only the block index in memory (40 bytes per block); zoom blocks go to a
  temporary file beside the output and are copied after the data;
* raises :class:`~genaannot.io.atomic.OutputError` naming the file on any write error
  (ENOSPC, EDQUOT, EFBIG, EIO), and fsyncs before :meth:`BigWigFile.close` returns.

Optionally values are rounded before writing (``digits``, ``probability``; see
:func:`genaannot.stitch.round_values`; ``scan`` rounds its parts already, by
``--track-digits``): near-constant stretches become one run, which is what makes a
base-resolution human track affordable. Equal neighbouring runs (also across calls to :meth:`add`) are written as one.

The file layout is UCSC's bbi format, version 4 (Kent et al. 2010): header, zoom headers,
total summary, chromosome B+ tree, data sections, data R-tree, then per zoom level its
records and R-tree, and the signature again at the very end (UCSC's ``bigWigFileCheckSigs``). Chromosome IDs follow the order given (``.fai`` order); up to 65,535
sequences share one B+ tree leaf in that order (as libBigWig writes), more are sorted by
name into a multi-level tree, as UCSC's readers need.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..stitch import join_runs, round_values
from .atomic import OutputError, output_error

#: the block compressor: zlib, deterministic (a module attribute: bench/deflate.py records through it)
_deflate = zlib

__all__ = ["BigWigFile", "zoom_reductions", "ITEMS_PER_SLOT", "BLOCK_SIZE"]

BIGWIG_MAGIC = 0x888FFC26
BPT_MAGIC = 0x78CA8C91
CIR_MAGIC = 0x2468ACE0
#: runs per data section and zoom records per zoom block (UCSC's default)
ITEMS_PER_SLOT = 1024
#: runs encoded together (sections, zoom bins, sums): 16 sections. Their zoom temporaries
#: were the assembler's largest item at a long scan's peak with 64 (docs/scale-log.md)
BATCH = 16 * ITEMS_PER_SLOT
#: children per R-tree node (UCSC's default)
BLOCK_SIZE = 256
#: up to this many sequences share one B+ tree leaf, in the given order
SINGLE_LEAF_MAX = 0xFFFF
#: first zoom reduction (bp) and the factor between levels
ZOOM_BASE, ZOOM_FACTOR, MAX_ZOOMS = 256, 4, 10

_BEDGRAPH = np.dtype([("s", "<u4"), ("e", "<u4"), ("v", "<f4")])
_ZOOM = np.dtype([("c", "<u4"), ("s", "<u4"), ("e", "<u4"), ("n", "<u4"),
                  ("min", "<f4"), ("max", "<f4"), ("sum", "<f4"), ("sq", "<f4")])
_SECTION = struct.Struct("<IIIIIBBH")  # chromId start end step span type reserved count


def zoom_reductions(max_chrom: int) -> list[int]:
    """Zoom reductions for a genome whose longest sequence is ``max_chrom`` bp.

    ``256 × 4^k`` bp, at most 10 levels, none coarser than the longest sequence (at least
    one level).
    """
    out = [ZOOM_BASE]
    while len(out) < MAX_ZOOMS and out[-1] * ZOOM_FACTOR <= max_chrom:
        out.append(out[-1] * ZOOM_FACTOR)
    return out


def _take(pieces: deque[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``k`` runs of ``pieces`` (``(starts, ends, values)`` in order), removed from
    it: a view where they lie in one piece, else one array each; a piece cut in two leaves
    its rest at the front."""
    got: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while k > 0:
        s, e, v = pieces.popleft()
        if len(s) <= k:
            got.append((s, e, v))
            k -= len(s)
        else:
            got.append((s[:k], e[:k], v[:k]))
            pieces.appendleft((s[k:], e[k:], v[k:]))
            k = 0
    if len(got) == 1:
        return got[0]
    return np.concatenate([g[0] for g in got]), np.concatenate([g[1] for g in got]), np.concatenate([g[2] for g in got])


class _Blocks:
    """Index entries of written blocks, (chrom0, start, chrom1, end, offset, size) each, in a
    flat int64 array (48 bytes per block of up to 1,024 runs).

    With ``spill`` (a binary scratch file) every :data:`SPILL_BLOCKS` entries go there, so that
    a genome's data index does not stay resident while the scan runs: it grows with the genome
    (a human track of a 1-bp-token model stored unrounded, 10⁶ runs per Mb: ~145 MB; the
    bundled splice model's rounded tracks, ~2,800 runs per Mb: 0.4 MB), and is needed only
    by :meth:`BigWigFile.close`, which reads it back a chunk at a time (:meth:`chunks`)."""

    def __init__(self, spill=None) -> None:
        self._a = array("q")
        self._spill = spill
        self._spilled = 0  # entries in the scratch file

    def add(self, c0: int, start: int, c1: int, end: int, offset: int, size: int) -> None:
        self._a.extend((c0, start, c1, end, offset, size))
        if self._spill is not None and len(self._a) >= 6 * SPILL_BLOCKS:
            self._spill.write(self._a.tobytes())
            self._spilled += len(self._a) // 6
            self._a = array("q")

    def __len__(self) -> int:
        return self._spilled + len(self._a) // 6

    def array(self) -> np.ndarray:
        """Every entry, ``[n, 6]`` int64 (in memory: for the small zoom-level indexes)."""
        return np.concatenate([np.zeros((0, 6), np.int64), *self.chunks(max(1, len(self)))])

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        """The entries in order, at most ``rows`` at a time (``[k, 6]`` int64 arrays): the
        spilled ones read back a chunk at a time, so that a genome's index is never whole
        in memory (:meth:`BigWigFile.close` writes its R-tree from these)."""
        if self._spilled:
            self._spill.flush()
            self._spill.seek(0)
            left = self._spilled
            while left:
                k = min(rows, left)
                yield np.frombuffer(self._spill.read(k * 48), dtype=np.int64).reshape(-1, 6)
                left -= k
        mem = np.frombuffer(self._a, dtype=np.int64).reshape(-1, 6)
        for i in range(0, len(mem), rows):
            yield mem[i : i + rows].copy()


#: data-index entries kept in memory before they are written to the scratch file (192 kB)
SPILL_BLOCKS = 4096
#: data-index entries read back from the scratch file at a time when the file is closed (3 MB)
INDEX_CHUNK = 16 * SPILL_BLOCKS


class _ZoomLevel:
    """Records of one zoom level, built from finished bins of the level below (or the runs)."""

    def __init__(self, reduction: int) -> None:
        self.reduction = reduction
        # the last, possibly unfinished bin: [chrom, bin, n, min, max, sum, sumsq]
        self.pending: list | None = None
        self.buf: list[np.ndarray] = []
        self.n_buf = 0
        self.blocks = _Blocks()
        self.count = 0


class BigWigFile:
    """Write one bigWig: ``add`` runs in genome order, then ``close`` (or ``abort``).

    Parameters
    ----------
    path : str or Path
        Where the bytes go (a temporary name: the caller moves it into place).
    sizes : dict of str -> int
        Every sequence of the genome, in the order entries will come (``.fai`` order).
    digits : int or None
        Round values before writing (:func:`genaannot.stitch.round_values`; None: float32
        as given).
    probability : bool
        The values are probabilities (``round_values``' ``probability``).
    level : int
        zlib compression level (0–9) of data and zoom blocks.
    name : str or Path, optional
        The file's final name, for error messages (``path`` is usually a temporary name).
    """

    def __init__(self, path: str | Path, *, sizes: dict[str, int], digits: int | None = None,
                 probability: bool = False, level: int = 1, name: str | Path | None = None) -> None:
        self.path = Path(path)
        self.name = Path(name) if name is not None else self.path  # what messages call the file
        self.sizes = dict(sizes)
        self.digits, self.probability = digits, probability
        self.level = level
        self.chrom_id = {c: i for i, c in enumerate(self.sizes)}
        self.chrom_len = np.array(list(self.sizes.values()), dtype=np.int64)
        if len(self.sizes) and int(self.chrom_len.max()) >= 2**32:
            raise OutputError(f"{self.name}: a sequence longer than 4 Gb cannot be stored in a bigWig")
        self.zooms = [_ZoomLevel(r) for r in zoom_reductions(int(self.chrom_len.max()) if len(self.sizes) else 1)]
        self.max_block = 0
        # total summary over every base with data
        self.covered = 0
        self.vmin, self.vmax, self.vsum, self.vsq = np.inf, -np.inf, 0.0, 0.0
        self._held: tuple[int, int, int, float] | None = None  # last run, kept to merge with the next
        self._pend_c = -1
        self._pend: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._n_pend = 0
        self._closed = False
        self._zpath = self.path.with_name(self.path.name + ".zoom")
        self._ipath = self.path.with_name(self.path.name + ".index")
        try:
            self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close/abort
            self._zfh = open(self._zpath, "w+b")  # noqa: SIM115
            self._ifh = open(self._ipath, "w+b")  # noqa: SIM115
            self.blocks = _Blocks(spill=self._ifh)
            self._header_len = 64 + 24 * len(self.zooms) + 40
            self._fh.write(b"\0" * self._header_len)
            self._fh.write(_chrom_tree(list(self.sizes.items()), at=self._header_len))
            self._data_offset = self._fh.tell()
            self._fh.write(b"\0" * 8)  # section count, filled in by close
        except OSError as err:
            self._cleanup()
            raise output_error(self.name, err) from None

    # -- adding runs -------------------------------------------------------------------------
    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        """Add runs ``[starts[i], ends[i])`` = ``values[i]`` on ``chrom``.

        Runs must come in ``sizes`` order, sorted and non-overlapping (checked by the
        caller's order check); NaN values are left out (no data).
        """
        c = self.chrom_id[chrom]
        s = np.asarray(starts, dtype=np.int64)
        e = np.asarray(ends, dtype=np.int64)
        v = np.asarray(values, dtype=np.float32)
        keep = ~np.isnan(v)
        if not keep.all():
            s, e, v = s[keep], e[keep], v[keep]
        if self.digits is not None:
            v = round_values(v, digits=self.digits, probability=self.probability)
        if len(s) == 0:
            return
        s, e, v = join_runs(s, e, v)
        h = self._held
        if h is not None and h[0] == c and h[2] == s[0] and h[3] == v[0]:
            s = s.copy()
            s[0] = h[1]
        elif h is not None:
            self._push(h[0], np.array([h[1]]), np.array([h[2]]), np.array([h[3]], dtype=np.float32))
        self._held = (c, int(s[-1]), int(e[-1]), float(v[-1]))
        if len(s) > 1:
            self._push(c, s[:-1], e[:-1], v[:-1])

    def _push(self, c: int, s: np.ndarray, e: np.ndarray, v: np.ndarray) -> None:
        """Runs that are final (merged with their neighbours), buffered into batches."""
        if c != self._pend_c:
            self._flush(final=True)
            self._pend_c = c
        self._pend.append((s, e, v))
        self._n_pend += len(s)
        if self._n_pend >= BATCH:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        """Encode buffered runs in batches of :data:`BATCH` (all of them when ``final``).

        Batches are cut by run count alone, never by how :meth:`add` was called, so every
        sum is taken in the same order and the bytes do not depend on the chunking.
        """
        if not self._pend:
            return
        n = self._n_pend
        cut = n if final else n // BATCH * BATCH
        c = self._pend_c
        pieces = deque(self._pend)
        try:
            for a in range(0, cut, BATCH):
                # one batch at a time out of the pieces it spans: never all the pending runs
                # (a unit's worth, 20 bytes a run) copied into one array
                bs, be, bv = _take(pieces, min(BATCH, cut - a))
                for i in range(0, len(bs), ITEMS_PER_SLOT):
                    self._write_section(c, bs[i : i + ITEMS_PER_SLOT], be[i : i + ITEMS_PER_SLOT],
                                        bv[i : i + ITEMS_PER_SLOT])
                self._zoom_runs(c, bs, be, bv)
                lens = (be - bs).astype(np.float64)
                v64 = bv.astype(np.float64)
                self.covered += int(lens.sum())
                self.vmin = min(self.vmin, float(bv.min()))
                self.vmax = max(self.vmax, float(bv.max()))
                # plain reductions, not np.dot: a dot of this length wakes numpy's OpenBLAS
                # threads, which then spin (0.6 CPU-s of an 8-Mb scan: docs/scale-log.md)
                self.vsum += float((lens * v64).sum())
                self.vsq += float((lens * (v64 * v64)).sum())
        except OSError as err:
            raise output_error(self.name, err) from None
        # what is left (< BATCH runs) copied: views would keep whole arrays of a unit alive
        self._pend = [tuple(np.concatenate(x) for x in zip(*pieces))] if pieces else []  # type: ignore[misc]
        self._n_pend = n - cut

    def _write_section(self, c: int, s: np.ndarray, e: np.ndarray, v: np.ndarray) -> None:
        span = e - s
        start, end, n = int(s[0]), int(e[-1]), len(s)
        if (span == span[0]).all() and (n == 1 or (s[1:] == e[:-1]).all()):
            # fixedStep: contiguous runs of one length, 4 bytes each
            head = _SECTION.pack(c, start, end, int(span[0]), int(span[0]), 3, 0, n)
            body = v.astype("<f4").tobytes()
        else:
            rec = np.empty(n, dtype=_BEDGRAPH)
            rec["s"], rec["e"], rec["v"] = s, e, v
            head = _SECTION.pack(c, start, end, 0, 0, 1, 0, n)
            body = rec.tobytes()
        raw = head + body
        self.max_block = max(self.max_block, len(raw))
        data = _deflate.compress(raw, self.level)
        off = self._fh.tell()
        self._fh.write(data)
        self.blocks.add(c, start, c, end, off, len(data))

    # -- zoom levels -------------------------------------------------------------------------
    def _zoom_runs(self, c: int, s: np.ndarray, e: np.ndarray, v: np.ndarray) -> None:
        """Level 0 bins from runs: split each run at bin edges, sum per bin (float64)."""
        r = self.zooms[0].reduction
        b0 = s // r
        nb = (e - 1) // r - b0 + 1
        if (nb == 1).all():
            pb, ps, pe, pv = b0, s, e, v
        else:
            idx = np.repeat(np.arange(len(s)), nb)
            first = np.cumsum(nb) - nb
            pb = b0[idx] + (np.arange(len(idx)) - first[idx])
            ps = np.maximum(s[idx], pb * r)
            pe = np.minimum(e[idx], (pb + 1) * r)
            pv = v[idx]
        self._zoom_feed(0, c, *_reduce_bins(pb, (pe - ps), pv, pv, pv.astype(np.float64) * (pe - ps),
                                            pv.astype(np.float64) ** 2 * (pe - ps)))

    def _zoom_feed(self, k: int, c: int, bins: np.ndarray, n: np.ndarray, mn: np.ndarray, mx: np.ndarray,
                   sm: np.ndarray, sq: np.ndarray) -> None:
        """Bins of level ``k`` (sorted, each at most once, the last maybe unfinished)."""
        z = self.zooms[k]
        p = z.pending
        if p is not None and (p[0] != c or p[1] != bins[0]):
            self._zoom_finish(k, p[0], *[np.array([x]) for x in p[1:]])
            p = None
        if p is not None:  # same bin continues
            n = n.copy(); mn = mn.copy(); mx = mx.copy(); sm = sm.copy(); sq = sq.copy()  # noqa: E702
            n[0] += p[2]; mn[0] = min(mn[0], p[3]); mx[0] = max(mx[0], p[4])  # noqa: E702
            sm[0] += p[5]; sq[0] += p[6]  # noqa: E702
        z.pending = [c, int(bins[-1]), int(n[-1]), float(mn[-1]), float(mx[-1]), float(sm[-1]), float(sq[-1])]
        if len(bins) > 1:
            self._zoom_finish(k, c, bins[:-1], n[:-1], mn[:-1], mx[:-1], sm[:-1], sq[:-1])

    def _zoom_finish(self, k: int, c: int, bins: np.ndarray, n: np.ndarray, mn: np.ndarray, mx: np.ndarray,
                     sm: np.ndarray, sq: np.ndarray) -> None:
        """Finished bins of level ``k``: records of that level, and input of level ``k + 1``."""
        z = self.zooms[k]
        rec = np.empty(len(bins), dtype=_ZOOM)
        rec["c"] = c
        rec["s"] = bins * z.reduction
        rec["e"] = np.minimum((bins + 1) * z.reduction, self.chrom_len[c])
        rec["n"], rec["min"], rec["max"], rec["sum"], rec["sq"] = n, mn, mx, sm, sq
        z.buf.append(rec)
        z.n_buf += len(rec)
        z.count += len(rec)
        if z.n_buf >= ITEMS_PER_SLOT:
            self._zoom_blocks(z, final=False)
        if k + 1 < len(self.zooms):
            up = bins // ZOOM_FACTOR
            self._zoom_feed(k + 1, c, *_reduce_bins(up, n, mn, mx, sm, sq))

    def _zoom_blocks(self, z: _ZoomLevel, *, final: bool) -> None:
        if not z.buf:
            return
        rec = np.concatenate(z.buf)
        cut = len(rec) if final else len(rec) // ITEMS_PER_SLOT * ITEMS_PER_SLOT
        try:
            for i in range(0, cut, ITEMS_PER_SLOT):
                blk = rec[i : i + ITEMS_PER_SLOT]
                raw = blk.tobytes()
                self.max_block = max(self.max_block, len(raw))
                data = _deflate.compress(raw, self.level)
                off = self._zfh.tell()
                self._zfh.write(data)
                z.blocks.add(int(blk["c"][0]), int(blk["s"][0]), int(blk["c"][-1]), int(blk["e"][-1]), off, len(data))
        except OSError as err:
            raise output_error(self.name, err) from None
        z.buf = [rec[cut:]] if cut < len(rec) else []
        z.n_buf = len(rec) - cut

    # -- finishing ---------------------------------------------------------------------------
    def close(self) -> None:
        """Write the indexes, zoom levels and header; fsync. The file is then complete."""
        if self._closed:
            return
        try:
            h = self._held
            if h is not None:
                self._push(h[0], np.array([h[1]]), np.array([h[2]]), np.array([h[3]], dtype=np.float32))
                self._held = None
            self._flush(final=True)
            for k, z in enumerate(self.zooms):
                p = z.pending
                if p is not None:
                    z.pending = None
                    self._zoom_finish(k, p[0], *[np.array([x]) for x in p[1:]])
            fh = self._fh
            data_index = fh.tell()
            n_blocks = len(self.blocks)
            # node by node from the scratch file: a genome's data index never whole in memory
            _write_cir_tree(fh, lambda: _nodes(self.blocks.chunks(INDEX_CHUNK)), n_blocks, end_offset=data_index)
            zoom_heads = []
            for z in self.zooms:
                self._zoom_blocks(z, final=True)
                rows = z.blocks.array()
                z_data = fh.tell()
                fh.write(struct.pack("<I", z.count))
                shifted = rows.copy()
                for j, (*_, off, size) in enumerate(rows):
                    self._zfh.seek(int(off))
                    chunk = self._zfh.read(int(size))
                    shifted[j, 4] = fh.tell()
                    fh.write(chunk)
                z_index = fh.tell()
                fh.write(_cir_tree(shifted, end_offset=z_index))
                zoom_heads.append((z.reduction, z_data, z_index))
            covered = self.covered
            summary = struct.pack("<Qdddd", covered, self.vmin if covered else 0.0, self.vmax if covered else 0.0,
                                  self.vsum, self.vsq)
            head = struct.pack("<IHHQQQHHQQIQ", BIGWIG_MAGIC, 4, len(self.zooms), self._header_len, self._data_offset,
                               data_index, 0, 0, 0, 64 + 24 * len(self.zooms), max(self.max_block, 1), 0)
            zh = b"".join(struct.pack("<IIQQ", r, 0, d, i) for r, d, i in zoom_heads)
            fh.write(struct.pack("<I", BIGWIG_MAGIC))  # UCSC's signature check reads it at the end too
            fh.seek(0)
            fh.write(head + zh + summary)
            fh.seek(self._data_offset)
            fh.write(struct.pack("<Q", n_blocks))
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        except OSError as err:
            self._cleanup()
            raise output_error(self.name, err) from None
        except BaseException:
            self._cleanup()
            raise
        self._closed = True
        for f, p in ((self._zfh, self._zpath), (self._ifh, self._ipath)):
            f.close()
            p.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop and remove what was written (the file and the zoom scratch file)."""
        self._cleanup()
        self.path.unlink(missing_ok=True)

    def _cleanup(self) -> None:
        for f in (getattr(self, "_fh", None), getattr(self, "_zfh", None), getattr(self, "_ifh", None)):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._zpath.unlink(missing_ok=True)
        self._ipath.unlink(missing_ok=True)
        self._closed = True


# --------------------------------------------------------------------------- helpers


def _reduce_bins(bins: np.ndarray, n: np.ndarray, mn: np.ndarray, mx: np.ndarray, sm: np.ndarray,
                 sq: np.ndarray) -> tuple[np.ndarray, ...]:
    """Combine entries of equal (sorted) bin: counts and sums add, min/max of min/max."""
    if len(bins) > 1:
        first = np.concatenate(([0], np.flatnonzero(bins[1:] != bins[:-1]) + 1))
    else:
        first = np.zeros(1, dtype=np.int64)
    if len(first) == len(bins):
        return (bins, np.asarray(n, dtype=np.int64), np.asarray(mn, dtype=np.float32),
                np.asarray(mx, dtype=np.float32), np.asarray(sm, dtype=np.float64), np.asarray(sq, dtype=np.float64))
    return (bins[first], np.add.reduceat(np.asarray(n, dtype=np.int64), first),
            np.minimum.reduceat(np.asarray(mn, dtype=np.float32), first),
            np.maximum.reduceat(np.asarray(mx, dtype=np.float32), first),
            np.add.reduceat(np.asarray(sm, dtype=np.float64), first),
            np.add.reduceat(np.asarray(sq, dtype=np.float64), first))


def _chrom_tree(chroms: list[tuple[str, int]], *, at: int) -> bytes:
    """The chromosome B+ tree (written at file offset ``at``): names → (id, size); ids in the order given."""
    names = [c.encode() for c, _ in chroms]
    key_size = max((len(n) for n in names), default=1) or 1
    items = [(n.ljust(key_size, b"\0"), struct.pack("<II", i, int(size))) for i, (n, (_, size)) in
             enumerate(zip(names, chroms))]
    n = len(items)
    if n <= SINGLE_LEAF_MAX:
        # one leaf in the given order (UCSC's readers scan a leaf linearly)
        block = max(n, 1)
        head = struct.pack("<IIIIQQ", BPT_MAGIC, block, key_size, 8, n, 0)
        return head + struct.pack("<BBH", 1, 0, n) + b"".join(k + v for k, v in items)
    # more: sorted by name (UCSC's readers descend by key), nodes of up to 256 slots laid out
    # root first and unpadded (libBigWig reads the nodes one after the other)
    items.sort(key=lambda kv: kv[0])
    block = 256
    levels = [[items[i : i + block] for i in range(0, n, block)]]  # leaves
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([[(node[0][0], j) for j, node in enumerate(below[i : i + block], start=i)]
                       for i in range(0, len(below), block)])
    slot = key_size + 8
    layers = levels[::-1]  # root first
    starts, pos = [], at + 32
    for layer in layers:
        starts.append([])
        for node in layer:
            starts[-1].append(pos)
            pos += 4 + len(node) * slot
    out = [struct.pack("<IIIIQQ", BPT_MAGIC, block, key_size, 8, n, 0)]
    for li, layer in enumerate(layers):
        leaf = li == len(layers) - 1
        for node in layer:
            out.append(struct.pack("<BBH", int(leaf), 0, len(node)))
            out.extend(k + (v if leaf else struct.pack("<Q", starts[li + 1][v])) for k, v in node)
    return b"".join(out)


def _cir_tree(rows: np.ndarray, *, end_offset: int) -> bytes:
    """An R-tree (UCSC cirTree) over blocks ``rows[i] = (chrom0, start, chrom1, end, offset, size)``,
    sorted; ``end_offset`` is where the indexed data end (= where this tree starts)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 6)
    buf = io.BytesIO()
    _write_cir_tree(buf, lambda: (rows[i : i + BLOCK_SIZE] for i in range(0, len(rows), BLOCK_SIZE)), len(rows),
                    end_offset=end_offset)
    return buf.getvalue()


def _nodes(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """``chunks`` of index rows regrouped :data:`BLOCK_SIZE` rows at a time (the last group
    shorter): one leaf node each."""
    held: list[np.ndarray] = []
    n = 0
    for c in chunks:
        while len(c):
            if not held and len(c) >= BLOCK_SIZE:
                k = len(c) // BLOCK_SIZE * BLOCK_SIZE
                for i in range(0, k, BLOCK_SIZE):
                    yield c[i : i + BLOCK_SIZE]
                c = c[k:]
                continue
            take = min(BLOCK_SIZE - n, len(c))
            held.append(c[:take])
            n += take
            c = c[take:]
            if n == BLOCK_SIZE:
                yield np.concatenate(held)
                held, n = [], 0
    if n:
        yield np.concatenate(held)


def _write_cir_tree(fh: Any, nodes: Callable[[], Iterator[np.ndarray]], n: int, *, end_offset: int) -> None:
    """Write the R-tree (UCSC cirTree) over ``n`` sorted blocks to ``fh``, at ``end_offset``
    (where the indexed data end).

    ``nodes()`` yields the blocks' rows ``(chrom0, start, chrom1, end, offset, size)``,
    :data:`BLOCK_SIZE` at a time (the last group shorter); it is called twice, once for
    the bounds of the upper levels and once to write the leaves, so that only the upper
    levels (1/256 of the entries) are ever held whole.
    """
    block = BLOCK_SIZE
    if n == 0:
        fh.write(struct.pack("<IIQIIIIQII", CIR_MAGIC, block, 0, 0, 0, 0, 0, end_offset, ITEMS_PER_SLOT, 0)
                 + struct.pack("<BBH", 1, 0, 0))
        return
    # each leaf node's bounds (c0, s0, c1, e1): the level above the leaves
    node_bounds = np.empty((-(-n // block), 4), dtype=np.int64)
    k = 0
    for k, node in enumerate(nodes(), 1):  # copied out: a view would keep its whole chunk alive
        if k > len(node_bounds):
            break
        node_bounds[k - 1, :2], node_bounds[k - 1, 2:] = node[0, :2], node[-1, 2:4]
    if k != len(node_bounds):  # a caller's slip: the tree would point past its leaves
        raise ValueError(f"{len(node_bounds)} index nodes expected, {k} or more given")
    head = struct.pack("<IIQIIIIQII", CIR_MAGIC, block, n, int(node_bounds[0, 0]), int(node_bounds[0, 1]),
                       int(node_bounds[-1, 2]), int(node_bounds[-1, 3]), end_offset, ITEMS_PER_SLOT, 0)
    # the levels above the leaves (level li at upper[li - 1]); the leaves are streamed
    upper: list[np.ndarray] = []
    if n > block:
        upper.append(node_bounds)
        while len(upper[-1]) > block:
            b = upper[-1]
            first = np.arange(0, len(b), block)
            last = np.minimum(first + block, len(b)) - 1
            upper.append(np.column_stack([b[first, 0], b[first, 1], b[last, 2], b[last, 3]]))
    inner_node = 4 + block * 24
    leaf_node = 4 + block * 32
    # layer li (li >= 1) holds the slots upper[li - 1], `block` to a node; slot j points to
    # node j of layer li - 1 (layer 0: the leaves, rows grouped `block` to a node)
    layer_start = {}
    pos = end_offset + 48
    for li in range(len(upper), 0, -1):
        layer_start[li] = pos
        pos += -(-len(upper[li - 1]) // block) * inner_node
    layer_start[0] = pos
    fh.write(head)
    for li in range(len(upper), 0, -1):
        below, below_node = layer_start[li - 1], (inner_node if li - 1 >= 1 else leaf_node)
        bounds = upper[li - 1]
        for node in range(-(-len(bounds) // block)):
            part = bounds[node * block : (node + 1) * block]
            slots = np.empty(len(part), dtype=[("c0", "<u4"), ("s0", "<u4"), ("c1", "<u4"), ("e1", "<u4"),
                                               ("off", "<u8")])
            slots["c0"], slots["s0"], slots["c1"], slots["e1"] = part[:, 0], part[:, 1], part[:, 2], part[:, 3]
            slots["off"] = below + (node * block + np.arange(len(part))) * below_node
            fh.write(struct.pack("<BBH", 0, 0, len(part)) + slots.tobytes() + b"\0" * ((block - len(part)) * 24))
    for part in nodes():
        slots = np.empty(len(part), dtype=[("c0", "<u4"), ("s0", "<u4"), ("c1", "<u4"), ("e1", "<u4"),
                                           ("off", "<u8"), ("size", "<u8")])
        for i, k in enumerate(("c0", "s0", "c1", "e1", "off", "size")):
            slots[k] = part[:, i]
        fh.write(struct.pack("<BBH", 1, 0, len(part)) + slots.tobytes() + b"\0" * ((block - len(part)) * 32))
