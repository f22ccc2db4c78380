"""Indexed FASTA access (plain or bgzip-compressed) through :mod:`pysam`.

Coordinates are 0-based, half-open. :meth:`Genome.fetch` returns the letters as stored
(soft-masked lower case kept): upper-casing and IUPAC counting belong to the tokenizer
(:class:`genaannot.tokenize.SequenceStats`). :func:`find_n_runs` locates runs of ``N``
(either case) so that long assembly gaps can be left out of a scan.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

# N runs are found by the pure planner; re-exported for callers that read a Genome
from ..windows import NRun, find_n_runs, scan_n_runs  # noqa: F401
from .atomic import AtomicFile
from .text import is_bgzf, is_gzip

__all__ = ["FastaError", "Genome", "open_genome", "find_n_runs", "scan_n_runs"]


class FastaError(OSError):
    """A FASTA file (or its index) that cannot be opened, indexed or read."""


def _index_paths(path: Path) -> list[Path]:
    out = [Path(str(path) + ".fai")]
    if path.suffix in (".gz", ".bgz"):
        out.append(Path(str(path) + ".gzi"))
    return out


def _dir_writable(directory: Path) -> bool:
    """Whether an index can be written beside the FASTA (a read-only mount fails even for root)."""
    if not os.access(directory, os.W_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".genaannot-probe-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def cache_dir() -> Path:
    """Per-user cache (``$GENAANNOT_CACHE``, else ``$XDG_CACHE_HOME/genaannot``, else ``~/.cache/genaannot``)."""
    env = os.environ.get("GENAANNOT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genaannot"


def _cached_index(path: Path, *, gz: bool) -> tuple[Path, Path]:
    """Build (once) the ``.fai`` (and ``.gzi``) of a FASTA whose directory is read-only in the cache.

    The cache key is the FASTA's absolute path, size and modification time, so an edited
    FASTA gets a new index. Files are written under temporary names and renamed (the
    ``.gzi`` first: a ``.fai`` in place means the index is complete).
    """
    import hashlib

    import pysam

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_dir() / "fai"
    fai, gzi = folder / f"{key}_{path.name}.fai", folder / f"{key}_{path.name}.gzi"
    if fai.is_file() and (not gz or gzi.is_file()):
        return fai, gzi
    files: list[AtomicFile] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files.append(AtomicFile(fai, mode=None, check=False))
        args = [str(path), "--fai-idx", str(files[0].tmp)]
        if gz:
            files.append(AtomicFile(gzi, mode=None, check=False))
            args += ["--gzi-idx", str(files[1].tmp)]
        pysam.faidx(*args)
        for f in reversed(files):
            f.commit()
    except (OSError, pysam.SamtoolsError) as err:
        raise FastaError(
            f"{path}: no index beside it, its directory is not writable, and the index could not be "
            f"built in the cache {folder} ({err}); run `samtools faidx {path}` where you can write, "
            "set GENAANNOT_CACHE to a writable directory, or copy the FASTA"
        ) from None
    finally:
        for f in files:
            f.abort()  # after the commits: leftovers only
    warnings.warn(f"{path}: directory not writable; FASTA index kept in {fai}", stacklevel=3)
    return fai, gzi


class Genome:
    """An open indexed FASTA.

    Attributes
    ----------
    path : Path
    sizes : dict[str, int]
        Sequence lengths in ``.fai`` order (the order every output follows).

    A missing ``.fai`` (``.gzi`` for bgzip) is created beside the FASTA, or, when that
    directory is not writable (shared reference data), in the per-user cache
    (:func:`cache_dir`).
    """

    def __init__(self, path: str | Path) -> None:
        import pysam

        self.path = Path(path)
        p = self.path
        if not p.exists():
            raise FastaError(f"{p}: FASTA file not found")
        if not p.is_file() or not os.access(p, os.R_OK):
            raise FastaError(f"{p}: not a readable file")
        if is_gzip(p) and not is_bgzf(p):
            raise FastaError(
                f"{p}: compressed with plain gzip, which cannot be indexed; FASTA must be plain or "
                f"bgzip-compressed: `zcat {p} | bgzip > OUT.fa.gz` (bgzip is in htslib/tabix)"
            )
        gz = is_gzip(p)
        wanted = _index_paths(p) if gz else _index_paths(p)[:1]
        missing = [i for i in wanted if not i.exists()]
        #: where the index was read from (beside the FASTA, or the per-user cache)
        self.index_path = wanted[0]
        kwargs: dict[str, str] = {}
        if missing and not _dir_writable(p.parent):
            fai, gzi = _cached_index(p, gz=gz)
            self.index_path = fai
            kwargs = {"filepath_index": str(fai)}
            if gz:
                kwargs["filepath_index_compressed"] = str(gzi)
        try:
            self._fa = pysam.FastaFile(str(p), **kwargs)
        except (OSError, ValueError) as err:
            msg = str(err)
            raise FastaError(
                f"{p}: cannot open as an indexed FASTA ({msg}); if {p}.fai is stale or damaged, "
                "delete it so that it is rebuilt"
            ) from None
        names = list(self._fa.references)
        lengths = list(self._fa.lengths)
        if not names:
            raise FastaError(f"{p}: no sequences found (is it a FASTA file?)")
        self.sizes: dict[str, int] = dict(zip(names, (int(n) for n in lengths)))

    def identity(self) -> dict[str, int | str]:
        """What identifies the genome's content cheaply (no pass over the sequence): the
        FASTA's size and modification time (ns) and a SHA-256 of its ``.fai`` (every
        sequence's name, length and offsets). An edited FASTA gets a new mtime even when
        its lengths stay; a copy of the same file (new mtime) counts as changed too."""
        import hashlib

        try:
            st = self.path.stat()
            fai = hashlib.sha256(self.index_path.read_bytes()).hexdigest()
        except OSError as err:
            raise FastaError(f"{self.path}: cannot stat the FASTA or read its index ({err.strerror})") from None
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "fai_sha256": fai}

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Letters of ``chrom[start:end)`` exactly as stored (case kept)."""
        if chrom not in self.sizes:
            raise FastaError(f"{self.path}: no sequence named {chrom!r}")
        if not 0 <= start <= end <= self.sizes[chrom]:
            raise FastaError(
                f"{self.path}: {chrom}:{start}-{end} lies outside the sequence (length {self.sizes[chrom]})"
            )
        if start == end:
            return ""
        try:
            return self._fa.fetch(chrom, start, end)
        except (OSError, ValueError) as err:
            raise FastaError(f"{self.path}: cannot read {chrom}:{start}-{end} ({err})") from None

    def close(self) -> None:
        self._fa.close()

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_genome(path: str | Path) -> Genome:
    """Open ``path`` (plain or bgzipped FASTA), creating ``.fai``/``.gzi`` when missing.

    Raises :class:`FastaError` with a message naming the file and what to do.
    """
    return Genome(path)

