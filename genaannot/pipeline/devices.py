"""One process per device: ``scan --devices`` and ``score --devices`` on one node.

Each device process is started with the ``spawn`` method (CUDA cannot be forked), loads
its own copy of the model from a path (:func:`model_spec`) and runs a job the caller gives
it; it talks back through one queue. The parent relays messages, notices a process that
died without a word, and stops the others on the first error.

Device processes die with their parent, ``kill -9`` included, and so, in turn, do the
worker processes each of them starts (:func:`.workers.die_with_parent`); a script that asks
for devices outside ``if __name__ == "__main__":`` gets a :class:`.workers.MainGuardError`
at once (:func:`.workers.check_can_spawn`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .workers import (
    check_can_spawn,
    cpu_cores,
    die_with_parent,
    leave_now,
    parent_link,
    settle_child_process,
    start_error,
)

__all__ = ["parse_devices", "uses_cuda", "model_spec", "model_config", "run_on_devices", "load_for_device", "DeviceError"]


class DeviceError(ValueError):
    """A device list that is not one, or a device process that failed."""


def parse_devices(devices: list[str] | str | None) -> list[str] | None:
    """``"0,1"`` → ``["cuda:0", "cuda:1"]``; ``"cpu,cpu"`` → ``["cpu", "cpu"]``; None stays None."""
    if devices is None:
        return None
    items = devices.split(",") if isinstance(devices, str) else list(devices)
    out = []
    for d in (str(x).strip() for x in items):
        if not d:
            continue
        if d.isdigit():
            d = f"cuda:{d}"
        if not (d == "cpu" or d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit())):
            raise DeviceError(f"--devices: {d!r} is not a device (use 0,1 or cuda:0,cuda:1 or cpu,cpu)")
        out.append(d)
    if not out:
        raise DeviceError("--devices is empty")
    return out


def uses_cuda(devices: list[str] | str | None) -> bool:
    """Whether ``devices`` (one device string, several, or None: the CPU) include a CUDA device:
    what the scan's and score's defaults (workers, batch size) follow."""
    items = [devices] if isinstance(devices, str) else list(devices or [])
    return any(str(d).startswith("cuda") for d in items)


def model_spec(model: Any) -> str:
    """A path that :func:`genaannot.load_model` reloads ``model`` from (for device processes)."""
    src = Path(str(model.info.source))
    for cand in (src, src.parent):
        if cand.is_dir() and (cand / "config.json").is_file():
            return str(cand)
    if src.is_file():
        return str(src)
    raise DeviceError(
        f"--devices needs a model that each device process can load from a path; {model.info.source!r} "
        "is not one (pass the checkpoint path instead of a loaded model)"
    )


def model_config(model: Any, spec: str | None = None, *, threads: int | None = None) -> dict[str, Any]:
    """What a device process needs to load the same model as ``model`` (picklable); ``threads``:
    torch's CPU threads there (None: :func:`cpu_threads_per_device`)."""
    return {
        "model_spec": spec or model_spec(model),
        "threads": threads,
        "precision": getattr(model, "precision", "fp32"),
        "compile": getattr(model, "compile_options", None),
        "load_options": dict(getattr(model, "load_options", None) or {}),
    }


def load_for_device(cfg: dict[str, Any], device: str, *, n_devices: int = 1):
    """Load the model described by :func:`model_config` on ``device`` (in a device process).

    CPU device processes split the cores between them rather than each taking all.
    """
    import torch

    from ..models import load_model

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    elif device == "cpu":
        torch.set_num_threads(cpu_threads_per_device(n_devices))
    else:  # CUDA: CPU threads would only compete with the host workers
        torch.set_num_threads(1)
    if torch.device(device).type == "cuda" and torch.device(device).index is not None:
        # this process serves one GPU: make it the current one, so that what takes the
        # current device (pinned host buffers, streams, events) does not open a second CUDA
        # context on cuda:0 in every device process
        torch.cuda.set_device(torch.device(device))

    compile_opt = cfg.get("compile")
    return load_model(cfg["model_spec"], device=device, dtype=cfg["precision"],
                      compile=False if compile_opt is None else compile_opt, **cfg["load_options"])


def _child(rank: int, target: Callable, device: str, job: Any, queue, link: dict[str, Any] | None = None) -> None:
    settle_child_process()  # Ctrl-C: the parent terminates this process
    if link is not None:  # first: a parent killed from now on takes this process with it
        die_with_parent(link["parent_pid"], pdeathsig=link["pdeathsig"])
    try:
        def report(kind: str, value: Any) -> None:
            queue.put((kind, rank, value))

        queue.put(("done", rank, target(device, job, report)))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises
        queue.put(("error", rank, f"{type(err).__name__}: {err}"))
        raise SystemExit(1) from None
    # the parent waits for this process to exit, and torch's teardown alone takes ~0.5 s
    # (a CUDA context's more): once the result is through the pipe, leave without it
    queue.close()
    queue.join_thread()
    leave_now(0)


def run_on_devices(
    target: Callable[[str, Any, Callable[[str, Any], None]], Any],
    jobs: list[Any],
    *,
    devices: list[str],
    on_message: Callable[[str, int, Any], None] | None = None,
    error: type[Exception] = DeviceError,
) -> list[Any]:
    """Run ``target(device, job, report)`` for each ``(device, job)`` pair, one process each.

    Parameters
    ----------
    target
        A module-level function (it is pickled by name). ``report(kind, value)`` sends a
        message to the parent, which passes it to ``on_message(kind, rank, value)``.
    jobs
        One picklable job per device, in the order of ``devices``.
    error
        The exception type raised (with the device's name) when a process fails.

    Returns
    -------
    list
        ``target``'s return value per device, in the order of ``devices``.
    """
    import multiprocessing as mp
    import queue as queue_mod

    if len(jobs) != len(devices):
        raise ValueError(f"{len(jobs)} jobs for {len(devices)} devices")
    check_can_spawn("device processes (devices=..., --devices)")
    ctx = mp.get_context("spawn")
    try:
        q = ctx.Queue()
    except OSError as err:
        raise start_error("device processes (devices=..., --devices)", err) from None
    link = parent_link()  # this thread starts them all, below
    procs = [ctx.Process(target=_child, args=(r, target, d, job, q, link), daemon=False, name=f"genaannot-device-{r}")
             for r, (d, job) in enumerate(zip(devices, jobs))]
    for p in procs:
        p.start()
    done: dict[int, Any] = {}
    try:
        while len(done) < len(procs):
            try:
                kind, rank, val = q.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [r for r, p in enumerate(procs) if r not in done and not p.is_alive()]
                if dead:
                    raise error(f"device process {devices[dead[0]]} exited "
                                f"(exit code {procs[dead[0]].exitcode}) without finishing") from None
                continue
            if kind == "done":
                done[rank] = val
            elif kind == "error":
                raise error(f"device {devices[rank]}: {val}")
            elif on_message is not None:
                on_message(kind, rank, val)
    finally:
        for p in procs:
            if p.is_alive() and len(done) < len(procs):
                p.terminate()
        for p in procs:
            p.join()
    return [done[r] for r in range(len(procs))]


def cpu_threads_per_device(n_devices: int) -> int:
    """Torch threads for each of ``n_devices`` CPU device processes (they share the cores)."""
    return max(1, cpu_cores() // max(1, n_devices))
