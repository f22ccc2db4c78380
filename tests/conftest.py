"""Shared test fixtures. Tests that need ../shared skip cleanly when it is absent.

Declared dependencies (setup.cfg install_requires and the [test] extra) are imported plainly:
a missing one fails the tests instead of skipping them. Skips are kept for what a user's
machine may legitimately lack: ../shared, CUDA, flash-attn and external binaries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # so tests can `import toy`
REPO = HERE.parent
SHARED = Path(os.environ.get("GENAANNOT_SHARED", REPO.parent / "shared"))

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import torch  # noqa: E402 - a declared dependency: imported plainly, after the thread setting

torch.set_num_threads(int(os.environ.get("GENAANNOT_TEST_THREADS", "1")))


@pytest.fixture
def null_device(tmp_path) -> Path:
    """A character device like ``/dev/null`` (1, 3) made in ``tmp_path``: tests write outputs
    into it instead of the system's, which a broken writer run as root would replace with a
    regular file. Skips where devices cannot be made (not root) or opened (a ``nodev`` mount)."""
    import stat

    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        with open(dev, "w") as fh:
            fh.write("")
    except OSError as err:
        pytest.skip(f"cannot make and open a device node here ({err.strerror}); needs root and a mount without nodev")
    return dev


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of the read-only reference data; skips the test when it is absent."""
    if not (SHARED / "fixtures").is_dir():
        pytest.skip(f"needs the read-only reference data (parity fixtures, test VCFs): no {SHARED / 'fixtures'}; "
                    "set GENAANNOT_SHARED=DIR to where it lives")
    return SHARED


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False "
                                       "(an NVIDIA GPU and a CUDA build of torch)")
    has_gpu = torch.cuda.is_available()
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
    # files with slow tests first: pytest-xdist hands out whole files in this order, and a
    # minute-long file handed out last keeps one process busy while the other has nothing left
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: order within a file kept
