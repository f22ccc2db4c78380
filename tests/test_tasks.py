"""Task registry, activations and the DeepSEA label table."""

from __future__ import annotations

import numpy as np
import pytest

from genaannot.tasks import TASKS, activate, chromatin_labels, get_task


def test_registry():
    assert set(TASKS) >= {"promoter", "splice", "chromatin", "generic"}
    splice = get_task("splice")
    assert splice.readout == "token" and splice.activation == "sigmoid" and splice.strand_specific
    assert splice.labels() == ["acceptor", "donor"] and splice.channels == {"acceptor": 1, "donor": 2}
    assert get_task("promoter").readout == "sequence"
    assert get_task("generic").labels(["a", "b"]) == ["a", "b"]
    for name, task in TASKS.items():
        assert task.name == name and task.window_tokens > 0
    with pytest.raises(ValueError, match="unknown task"):
        get_task("nope")


def test_chromatin_labels():
    names, groups = chromatin_labels()
    assert len(names) == len(groups) == 919
    assert groups.count("DHS") == 125 and groups.count("TF") == 690 and groups.count("HM") == 104
    assert groups[0] == "DHS" and groups[125] == "TF" and groups[815] == "HM" and groups[-1] == "HM"
    assert all("DNase" in n for n in names[:125]) and not any("DNase" in n for n in names[125:])
    assert all("_H" in n for n in names[815:])  # histone marks (H2AK5ac, H3K9me3, ...)


def test_activate():
    x = np.array([[0.0, 2.0, -1000.0]], dtype=np.float32)
    s = activate(x, "sigmoid")
    assert s.dtype == np.float32 and s[0, 0] == pytest.approx(0.5) and s[0, 2] == pytest.approx(0.0)
    p = activate(x, "softmax")
    assert p.sum() == pytest.approx(1.0) and p.argmax() == 1
    assert np.array_equal(activate(x, "identity"), x)
    with pytest.raises(ValueError):
        activate(x, "tanh")


def test_trainable_tasks_label_what_the_readout_reads():
    """A checkpoint trained by genaannot for a task is read by the same task's channels."""
    from genaannot.labels import TASK_SPECS
    from genaannot.tasks import TASKS

    assert set(TASK_SPECS) == {n for n, t in TASKS.items() if t.training is not None} == {"splice", "promoter"}
    for name, spec in TASK_SPECS.items():
        task = TASKS[name]
        assert spec.head == task.readout
        for label, channel in task.channels.items():
            assert spec.labels[channel] == label
        assert set(spec.site_kinds) <= {"acceptor", "donor", "tss"}
