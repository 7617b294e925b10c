"""Several worker processes on one study: spawn, fair start, progress polling, merge, Ctrl-C.

Why this module keeps its own process code (``mp.Process`` + a result queue + a start barrier)
instead of ``concurrent.futures.ProcessPoolExecutor`` or loky: when one worker process of those
pools dies (SIGKILL, the OOM killer, a segfault in a kernel), the pool is marked broken and every
pending and running future fails with ``BrokenProcessPool`` / ``TerminatedWorkerError``. A study
must survive that: each worker here is an independent process on the shared Optuna storage, a
killed one only leaves a note, its RUNNING trials are failed as stale by the survivors, and those
still bring the study to its exact total (``tests/test_optimize_study.py::
test_a_killed_worker_does_not_stop_the_others``, and the PostgreSQL variant in
``tests/test_optimize_postgres.py``). The barrier gives every worker a fair start (all loaded
before the first ask); Ctrl-C lets workers fail their RUNNING trials before they are stopped.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

from alertlab.optimize.search import _evaluator, _Job, _n_counted, _search, _windows_of


def _worker_entry(job: _Job, out: Any, start: Any) -> None:
    """Body of a worker process: load, wait for the others (a fair start), search, then send back
    ``("ok", worker, daily)`` or an error."""
    if "ALERTLAB_THREADS" not in os.environ:
        os.environ["ALERTLAB_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, job.options.workers)))
    try:
        evaluator = _evaluator(job, _windows_of(job))
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=120)
        daily = _search(job, evaluator)
        out.put(("ok", job.worker, daily))
    except KeyboardInterrupt:
        out.put(("interrupted", job.worker, None))
    except BaseException:  # noqa: BLE001 - reported to the parent with its traceback
        out.put(("error", job.worker, traceback.format_exc()))


def _run_workers(
    jobs: list[_Job], study: optuna.Study, on_poll: Callable[[int], None] | None
) -> tuple[dict[int, np.ndarray], list[str]]:
    """Run jobs in spawned processes, poll the study for progress, merge their daily returns.

    A worker that raises makes the run fail (its traceback is reported); a worker killed from
    outside only leaves a note — its RUNNING trials are failed as stale by the others, which still
    bring the study to its exact total. On Ctrl-C the workers fail their RUNNING trials and exit.
    """
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(len(jobs))
    procs = [ctx.Process(target=_worker_entry, args=(j, out, start), daemon=True) for j in jobs]
    for p in procs:
        p.start()
    try:
        daily, errors, reported = _collect(procs, out, lambda: _poll(on_poll, study, jobs))
        for p in procs:
            p.join()
    except BaseException:
        _stop(procs)
        raise
    if errors:
        raise RuntimeError("; ".join(errors))
    notes = [
        f"worker {k} exited without reporting (exit code {p.exitcode}); its running trials were failed"
        for k, p in enumerate(procs)
        if k not in reported
    ]
    _poll(on_poll, study, jobs)
    return daily, notes


def _poll(on_poll: Callable[[int], None] | None, study: optuna.Study, jobs: list[_Job]) -> None:
    if on_poll is not None:
        on_poll(_n_counted(study, jobs[0]))


def _collect(
    procs: list[Any], out: Any, poll: Callable[[], None]
) -> tuple[dict[int, np.ndarray], list[str], set[int]]:
    """Read the workers' reports until each has reported or every process is gone (killed ones
    never report); ``poll`` runs while waiting. Ctrl-C in a worker is raised here."""
    daily: dict[int, np.ndarray] = {}
    errors: list[str] = []
    reported: set[int] = set()
    while len(reported) < len(procs):
        try:
            status, worker, payload = out.get(timeout=0.5)
        except queue_mod.Empty:
            poll()
            if not any(p.is_alive() for p in procs) and out.empty():
                break
            continue
        reported.add(worker)
        if status == "ok":
            daily.update(payload)
        elif status == "interrupted":
            raise KeyboardInterrupt
        else:
            errors.append(f"worker {worker} failed:\n{payload}")
    return daily, errors, reported


def _stop(procs: list[Any]) -> None:
    """Stop the workers after Ctrl-C or an error: workers in the terminal's process group got the
    Ctrl-C too, so give them time to fail their trials cleanly before interrupting them ourselves."""
    deadline = time.monotonic() + 5.0
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGINT)
    for p in procs:
        p.join(timeout=15)
        if p.is_alive():
            p.terminate()
