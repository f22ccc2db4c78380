"""Shared test fixtures. Tests that need ../shared skip cleanly when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # so tests can `import toy`
REPO = HERE.parent
SHARED = Path(os.environ.get("GENAANNOT_SHARED", REPO.parent / "shared"))

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _torch_threads() -> None:
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("GENAANNOT_TEST_THREADS", "1")))
    except ImportError:  # pragma: no cover
        pass


_torch_threads()


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of the read-only reference data; skips the test when it is absent."""
    if not (SHARED / "fixtures").is_dir():
        pytest.skip(f"reference data not found at {SHARED} (set GENAANNOT_SHARED)")
    return SHARED


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_gpu = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
