"""Work units on a Dask cluster and how windows reach the workers once.

**Work units** are the chunks the local code already has:

* baseline metrics: contiguous alert ranges of the windows (offset ranges of the ragged arrays);
  each task runs :func:`alertlab.truth.metrics.baseline_table` on its range, the driver
  concatenates the Arrow tables in range order;
* grids, single backtests and optimizer trial batches: alert chunks (ranges of the time-ordered
  alert positions, balanced by bar count) × parameter chunks (row ranges of the encoded parameter
  matrix); each task runs the engine's kernel driver (``engine.drivers._simulate_cols``) on its
  block and the driver places the block into the same ``(alerts, params)`` arrays a local run
  fills. Summaries, fold metrics and scores are then computed by the unchanged local code
  (:func:`~alertlab.engine.summary.summarize_columns`, :class:`~alertlab.optimize.evaluate.Evaluator`).

Each alert's kernel result depends only on that alert's bars and each parameter row only on its
own values, so the assembled arrays — and everything computed from them — are bit-identical to a
local run whatever the number of workers, the chunk sizes or which worker ran what.

**Windows reach the workers once**, in one of two ways (``data``):

* ``shared``: the path-cache entry lives on storage every worker can read at the same path (NFS,
  Lustre, a bind mount…); tasks carry only ``(path, fingerprint, alert positions)`` and each
  worker process memory-maps the entry once;
* ``scatter``: the driver sends each alert chunk's windows to the cluster once with
  ``client.scatter`` (one copy, on one worker; Dask moves it where tasks need it). If a worker
  holding a chunk dies, the chunk is scattered again from the driver and its tasks resubmitted.

``auto`` (default) asks every worker whether it can read the cache entry (and that it is the same
entry: same fingerprint) and uses ``shared`` when all can, else ``scatter``.

Lost workers: Dask reschedules the tasks of a killed worker (tasks are pure functions of their
inputs), so the result is unchanged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from alertlab.windows.model import _PER_ALERT, BAR_ARRAYS, Windows

DATA_MODES = ("auto", "shared", "scatter")
CHUNK_BARS = 2_000_000
"""Target bars per alert chunk (~100 MB of bar arrays)."""
TASK_CELLS = 2_000_000
"""Upper bound of (alert × parameter) cells one task computes (~50 MB of light outputs)."""
RETRIES = 3
"""How often a chunk whose scattered data was lost with its worker is scattered again."""

_BARS = BAR_ARRAYS  # every per-bar and per-alert array of the window model travels with a chunk


# ------------------------------------------------------------------------------------------- windows


def subset(w: Windows, idx: np.ndarray, copy: bool = False) -> Windows:
    """The windows of alerts ``idx`` (in that order) as their own :class:`Windows`.

    A contiguous ascending range is a slice (views into ``w``'s arrays, memory maps stay mapped)
    unless ``copy``; any other selection gathers the bars into fresh arrays.
    """
    idx = np.asarray(idx, dtype=np.int64)
    off = np.asarray(w.offsets, dtype=np.int64)
    m = idx.shape[0]
    contiguous = m > 0 and idx[-1] - idx[0] + 1 == m and (m == 1 or bool((np.diff(idx) == 1).all()))
    if contiguous:
        a0, a1 = int(idx[0]), int(idx[-1]) + 1
        b0, b1 = int(off[a0]), int(off[a1])
        take = (lambda a: np.array(a)) if copy else (lambda a: a)
        per: dict[str, Any] = {k: take(getattr(w, k)[a0:a1]) for k in _PER_ALERT}
        bars: dict[str, Any] = {k: take(getattr(w, k)[b0:b1]) for k in _BARS}
        offsets = off[a0 : a1 + 1] - b0
    else:
        from alertlab.windows.cache import gather

        counts = off[idx + 1] - off[idx]
        flat = gather(off[idx], counts)
        per = {k: np.asarray(getattr(w, k))[idx] for k in _PER_ALERT}
        bars = {k: np.asarray(getattr(w, k))[flat] for k in _BARS}
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return replace(w, offsets=offsets, meta={}, **per, **bars)


_OPEN: dict[tuple[str, str], Windows] = {}
_OPEN_LOCK = threading.Lock()


def open_shared(path: str, fingerprint: str) -> Windows:
    """Worker side: the cache entry at ``path`` memory-mapped once per process (a few kept)."""
    key = (path, fingerprint)
    with _OPEN_LOCK:
        w = _OPEN.get(key)
        if w is None:
            from alertlab.windows.cache import load_entry

            w = load_entry(Path(path), fingerprint)
            while len(_OPEN) >= 4:
                _OPEN.pop(next(iter(_OPEN)))
            _OPEN[key] = w
    return w


def can_read(path: str, fingerprint: str) -> bool:
    """Worker side: does this worker see the cache entry at ``path`` (same entry)?"""
    p = Path(path)
    try:
        return (p / "meta.json").is_file() and (p / "offsets.npy").is_file() and p.name == fingerprint
    except OSError:
        return False


@dataclass(frozen=True)
class SharedRef:
    """A chunk of a cache entry every worker can read: path, fingerprint and alert positions."""

    path: str
    fingerprint: str
    idx: np.ndarray


def _resolve(ref: SharedRef | Windows) -> tuple[Windows, np.ndarray]:
    if isinstance(ref, SharedRef):
        return open_shared(ref.path, ref.fingerprint), ref.idx
    return ref, np.arange(ref.n, dtype=np.int64)


def _worker_threads() -> None:
    # Dask parallelises over tasks; a task's kernel call stays on its worker thread unless the
    # worker's environment says otherwise
    os.environ.setdefault("ALERTLAB_THREADS", "1")


# ------------------------------------------------------------------------------------------- tasks


def cells_task(
    ref: SharedRef | Windows, params: np.ndarray, intrabar: str, full: bool, fill_on_zero_volume: bool = False
) -> dict[str, np.ndarray]:
    """One (alert chunk × parameter chunk) block of the engine's ``(alerts, params)`` outputs."""
    from alertlab.engine.drivers import _simulate_cols

    _worker_threads()
    w, idx = _resolve(ref)
    out = _simulate_cols(w, params, idx, intrabar, full, fill_on_zero_volume=fill_on_zero_volume)
    return {k: v for k, v in out.items() if v.shape[0] == idx.shape[0]}


def baseline_task(ref: SharedRef | Windows) -> pa.Table:
    """The baseline table of one contiguous alert range (the local code on a slice)."""
    from alertlab.truth.metrics import baseline_table

    _worker_threads()
    w, idx = _resolve(ref)
    return baseline_table(subset(w, idx) if isinstance(ref, SharedRef) else w)


# ------------------------------------------------------------------------------------------- driver


def _is_lost(exc: BaseException) -> bool:
    """A task cancelled because its scattered input died with its worker (not a task error)."""
    return isinstance(exc, concurrent.futures.CancelledError | asyncio.CancelledError) or type(
        exc
    ).__name__ in ("FutureCancelledError", "CancelledError")


class Session:
    """Runs work units on one Dask client; windows are placed once per (windows, alert positions).

    ``data``: ``auto``, ``shared`` or ``scatter`` (module docstring). ``alert_chunks`` /
    ``param_chunks``: fixed chunk counts (default: from the cluster's threads and :data:`CHUNK_BARS`
    / :data:`TASK_CELLS`). ``on_task(weight)``: called as each task completes (progress bars).
    """

    def __init__(
        self,
        client: Any,
        data: str = "auto",
        *,
        alert_chunks: int | None = None,
        param_chunks: int | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        from alertlab.distributed.cluster import ClusterError

        if data not in DATA_MODES:
            raise ClusterError(f"--cluster-data must be one of {', '.join(DATA_MODES)}, got {data!r}")
        for name, v in (("alert_chunks", alert_chunks), ("param_chunks", param_chunks)):
            if v is not None and v < 1:
                raise ClusterError(f"{name} must be >= 1, got {v}")
        self.client = client
        self.data = data
        self.alert_chunks = alert_chunks
        self.param_chunks = param_chunks
        self.echo = echo
        self.on_task: Callable[[float], None] | None = None
        self._paths: dict[int, tuple[str, str]] = {}
        self._placed: dict[tuple, list] = {}
        self.modes: dict[int, str] = {}
        self.tasks = 0
        self.resubmitted = 0

    # -- placement -------------------------------------------------------------------------------

    @property
    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def bind(self, w: Windows, path: str | Path | None) -> str:
        """Declare where ``w`` lives on disk (its cache entry) and choose how it reaches workers.

        Returns the mode used: ``shared`` or ``scatter``.
        """
        from alertlab.distributed.cluster import ClusterError

        mode = "scatter"
        if path is not None and self.data != "scatter":
            p = str(Path(path).resolve())
            fp = w.fingerprint or Path(p).name
            seen = self.client.run(can_read, p, fp)
            blind = sorted(a for a, ok in seen.items() if not ok)
            if not blind:
                mode = "shared"
                self._paths[id(w)] = (p, fp)
            elif self.data == "shared":
                raise ClusterError(
                    f"--cluster-data shared: {len(blind)} worker(s) cannot read the path cache at {p} "
                    f"(e.g. {blind[0]}); mount it at the same path on every worker or use --cluster-data scatter"
                )
        elif self.data == "shared":
            raise ClusterError("--cluster-data shared needs windows from the path cache (they have no path)")
        self.modes[id(w)] = mode
        if self.echo is not None:
            how = f"shared path {self._paths[id(w)][0]}" if mode == "shared" else "scattered to the workers"
            self.echo(f"windows ({w.n} alerts, {int(w.offsets[-1])} bars): {how}")
        return mode

    def _refs(self, w: Windows, idx: np.ndarray, ranges: list[tuple[int, int]]) -> list:
        key = (id(w), idx.shape[0], hash(idx.tobytes()), tuple(ranges))
        refs = self._placed.get(key)
        if refs is not None:
            return refs
        if id(w) not in self.modes:
            self.bind(w, None)
        if id(w) in self._paths:
            p, fp = self._paths[id(w)]
            refs = [SharedRef(p, fp, np.ascontiguousarray(idx[a0:a1])) for a0, a1 in ranges]
        else:
            subs = [subset(w, idx[a0:a1], copy=True) for a0, a1 in ranges]
            refs = list(self.client.scatter(subs, hash=False))
        self._placed[key] = refs
        return refs

    def _rescatter(self, w: Windows, idx: np.ndarray, ranges: list[tuple[int, int]], i: int) -> None:
        key = (id(w), idx.shape[0], hash(idx.tobytes()), tuple(ranges))
        a0, a1 = ranges[i]
        self._placed[key][i] = self.client.scatter(subset(w, idx[a0:a1], copy=True), hash=False)

    def _alert_ranges(self, w: Windows, idx: np.ndarray, parts: int | None = None) -> list[tuple[int, int]]:
        from alertlab.engine.drivers import _chunks

        n = idx.shape[0]
        if n == 0:
            return []
        if parts is None:
            parts = self.alert_chunks
        if parts is None:
            off = np.asarray(w.offsets, dtype=np.int64)
            bars = int((off[idx + 1] - off[idx]).sum())
            parts = max(self.threads, math.ceil(bars / CHUNK_BARS))
        parts = min(parts, n)
        if parts <= 1:
            return [(0, n)]
        if self.alert_chunks is not None:  # exactly the requested count (tests vary it)
            edges = np.linspace(0, n, parts + 1).round().astype(np.int64)
            return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
        return _chunks((np.asarray(w.offsets, dtype=np.int64),), idx, parts)

    # -- running ---------------------------------------------------------------------------------

    def _run(
        self,
        jobs: list,
        submit: Callable[[Any], Any],
        done: Callable[[Any, Any], None],
        relocate: Callable[[Any], None],
    ) -> None:
        """Submit every job, collect results as they complete (``as_completed``), resubmit jobs whose
        scattered input was lost with a worker."""
        from distributed import as_completed

        futs = {}
        for j in jobs:
            futs[submit(j)] = j
        tries: dict[Any, int] = {}
        ac = as_completed(list(futs))
        try:
            for f in ac:
                j = futs.pop(f)
                try:
                    res = f.result()
                except BaseException as exc:
                    if _is_lost(exc) and tries.get(j, 0) < RETRIES:
                        tries[j] = tries.get(j, 0) + 1
                        relocate(j)
                        nf = submit(j)
                        futs[nf] = j
                        ac.add(nf)
                        self.resubmitted += 1
                        continue
                    if type(exc).__name__ == "KilledWorker":
                        from alertlab.distributed.cluster import ClusterError

                        raise ClusterError(
                            f"the cluster lost the run: {str(exc).splitlines()[0]} (workers kept "
                            f"dying on one task: check their memory limit and logs)"
                        ) from None
                    raise
                f.release()
                done(j, res)
                self.tasks += 1
        finally:
            for f in futs:
                f.cancel()

    def simulate_cols(
        self,
        w: Windows,
        params: np.ndarray,
        idx: np.ndarray,
        intrabar: str,
        full: bool,
        fill_on_zero_volume: bool = False,
    ) -> dict[str, np.ndarray]:
        """Drop-in for ``engine.drivers._simulate_cols``: the same ``(alerts, params)`` arrays,
        computed as alert chunks × parameter chunks on the cluster."""
        from alertlab.engine.drivers import _alloc

        idx = np.ascontiguousarray(idx, dtype=np.int64)
        params = np.ascontiguousarray(params)
        n, p = idx.shape[0], params.shape[0]
        out = _alloc(n, p, full)
        if n == 0 or p == 0:
            return out
        ranges = self._alert_ranges(w, idx)
        refs = self._refs(w, idx, ranges)
        biggest = max(b - a for a, b in ranges)
        k = self.param_chunks or max(
            math.ceil(2 * self.threads / len(ranges)), math.ceil(p * biggest / TASK_CELLS)
        )
        pedges = np.linspace(0, p, min(k, p) + 1).round().astype(np.int64)
        prow = [(int(a), int(b)) for a, b in zip(pedges[:-1], pedges[1:], strict=True) if b > a]
        pblocks = [
            self.client.scatter(params[a:b], hash=False)
            if (b - a) * params.shape[1] > 50_000
            else params[a:b]
            for a, b in prow
        ]
        jobs = [(i, j) for j in range(len(prow)) for i in range(len(ranges))]

        def submit(job):
            i, j = job
            return self.client.submit(
                cells_task, refs[i], pblocks[j], intrabar, full, fill_on_zero_volume, pure=False
            )

        def done(job, part):
            i, j = job
            (a0, a1), (p0, p1) = ranges[i], prow[j]
            for name, v in part.items():
                out[name][a0:a1, p0:p1] = v
            if self.on_task is not None:
                self.on_task((p1 - p0) * (a1 - a0) / n)

        self._run(jobs, submit, done, lambda job: self._rescatter(w, idx, ranges, job[0]))
        return out

    def baseline_table(self, w: Windows) -> pa.Table:
        """:func:`~alertlab.truth.metrics.baseline_table` of all alerts, by contiguous alert ranges."""
        idx = np.arange(w.n, dtype=np.int64)
        ranges = self._alert_ranges(
            w, idx, self.alert_chunks or max(self.threads, math.ceil(int(w.offsets[-1]) / CHUNK_BARS))
        )
        refs = self._refs(w, idx, ranges)
        parts: list[pa.Table | None] = [None] * len(ranges)

        def done(i, t):
            parts[i] = t
            if self.on_task is not None:
                self.on_task(ranges[i][1] - ranges[i][0])

        self._run(
            list(range(len(ranges))),
            lambda i: self.client.submit(baseline_task, refs[i], pure=False),
            done,
            lambda i: self._rescatter(w, idx, ranges, i),
        )
        return pa.concat_tables(parts).combine_chunks()
