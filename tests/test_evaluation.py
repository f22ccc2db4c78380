"""Evaluation report files (genaannot.io.evaluation): JSON + the PNG bytes it is given."""

from __future__ import annotations

import json

import numpy as np

from genaannot.io.evaluation import write_evaluation


def test_write_evaluation(tmp_path):
    png = b"\x89PNG\r\n\x1a\n-not-drawn-here"
    js, out = write_evaluation({"auroc": np.float32(0.5), "n": 3}, png, tmp_path / "new" / "dir", stem="S")
    assert (js.name, out.name) == ("S.json", "S.png") and js.parent == tmp_path / "new" / "dir"
    assert json.loads(js.read_text()) == {"auroc": 0.5, "n": 3}  # numpy scalars written as floats
    assert out.read_bytes() == png
    assert out.stat().st_mode & 0o777 == js.stat().st_mode & 0o777 == 0o644
    assert not [p for p in js.parent.iterdir() if p.name.startswith(".")]
