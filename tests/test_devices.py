"""pipeline/devices: device lists, and what the parent does when a device process fails."""

from __future__ import annotations

import os

import pytest

from genaannot.pipeline.devices import DeviceError, parse_devices, run_on_devices


def test_parse_devices():
    assert parse_devices(None) is None
    assert parse_devices("0,1") == ["cuda:0", "cuda:1"]
    assert parse_devices(" cpu , cpu ") == ["cpu", "cpu"]
    assert parse_devices(["cuda:2", "cuda"]) == ["cuda:2", "cuda"]
    for bad in ("gpu0", "cuda:x", "0,mps"):
        with pytest.raises(DeviceError, match="is not a device"):
            parse_devices(bad)
    with pytest.raises(DeviceError, match="empty"):
        parse_devices(" , ")


# targets run in spawned processes, so they live at module level


def _echo(device, job, report):
    report("seen", (device, job))
    return job * 10


def _fail_on_second(device, job, report):
    if job == 2:
        raise ValueError("bad shard")
    return job


def _die(device, job, report):
    if job == 2:
        os._exit(3)  # no word to the parent
    return job


def test_results_and_messages_in_device_order():
    seen = []
    out = run_on_devices(_echo, [1, 2], devices=["cpu", "cpu"], on_message=lambda k, r, v: seen.append((k, r, v)))
    assert out == [10, 20]
    assert sorted(seen) == [("seen", 0, ("cpu", 1)), ("seen", 1, ("cpu", 2))]


def test_an_error_names_the_device_and_its_cause():
    with pytest.raises(RuntimeError, match=r"device cpu: ValueError: bad shard"):
        run_on_devices(_fail_on_second, [1, 2], devices=["cpu", "cpu"], error=RuntimeError)


def test_a_process_that_dies_silently_is_noticed():
    with pytest.raises(DeviceError, match=r"exited \(exit code 3\) without finishing"):
        run_on_devices(_die, [1, 2], devices=["cpu", "cpu"])
