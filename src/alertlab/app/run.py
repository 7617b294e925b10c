"""The skeleton every use case shares: one recorded run over the selected alerts' windows.

Each command (baseline, backtest, report, optimize) used to repeat open the workspace → select the
alerts → say why when none match → load their windows from the path cache → record the run
(config, data fingerprint, code version, counts, phase timings). :func:`open_run` does it once::

    with open_run(home, "backtest", sel, spec, {"strategy": ...}, force=False) as ctx:
        idx = ctx.usable_idx()          # ValueError with the one-line reason when none is usable
        ...                             # the use case's own work, timed with ctx.run.phase(...)
        ctx.run.counts["trades"] = n    # added to the record written on normal exit

The record is written to the catalog's ``runs`` table when the block exits normally (an error
leaves no record, as before). Phases ``select`` and ``windows`` are timed for every use case.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alertlab.store import Home, resolve_home
from alertlab.store.runs import Run, recorded
from alertlab.windows.cache import CacheInfo, get_windows
from alertlab.windows.model import Windows
from alertlab.windows.select import NO_ALERTS, select_alerts
from alertlab.windows.spec import Selection, WindowSpec


@dataclass
class RunContext:
    """An open run: the workspace, the record being filled and, unless ``windows=False``, the windows.

    ``status_counts``: alerts per window status (truncated split by ``spec.min_coverage``);
    ``diagnosis``: the one-line "why most alerts are unusable, what to try", or None.
    """

    home: Home
    run: Run
    selection: Selection
    spec: WindowSpec
    windows: Windows | None = None
    cache: CacheInfo | None = None
    status_counts: dict[str, int] = field(default_factory=dict)
    diagnosis: str | None = None

    @property
    def w(self) -> Windows:
        """The windows (for use cases opened with ``windows=True``)."""
        if self.windows is None:
            raise RuntimeError("this run was opened without windows")
        return self.windows

    @property
    def info(self) -> CacheInfo:
        """The path-cache entry the windows came from."""
        if self.cache is None:
            raise RuntimeError("this run was opened without windows")
        return self.cache

    def usable_idx(self) -> np.ndarray:
        """Indices of the usable alerts; ``ValueError`` with the diagnosis when there is none."""
        idx = self.w.usable_idx(self.spec.min_coverage)
        if idx.size == 0:
            raise ValueError(self.diagnosis or "no usable alert")
        return idx

    def window_counts(self) -> dict[str, Any]:
        """``alerts``, ``status_<name>`` and ``diagnosis`` (when there is one) for ``run.counts``."""
        return {
            "alerts": self.w.n,
            **{f"status_{k}": v for k, v in self.status_counts.items()},
            **({"diagnosis": self.diagnosis} if self.diagnosis else {}),
        }


@contextmanager
def open_run(
    home: Home | str | Path | None,
    kind: str,
    selection: Selection | None = None,
    spec: WindowSpec | None = None,
    config: dict[str, Any] | None = None,
    *,
    windows: bool = True,
    force: bool = False,
    progress: bool = False,
) -> Iterator[RunContext]:
    """Open the workspace and record a run of ``kind``; with ``windows``, select and load them.

    The recorded config is ``{"selection": ..., "window": ..., **config}``. With ``windows``: the
    selected alerts (``ValueError`` with :data:`~alertlab.windows.select.NO_ALERTS` when none match), their windows from the path cache
    (built on a miss, rebuilt with ``force``), the run's fingerprint and cache hit, the status
    counts and the diagnosis. The record is written when the block exits normally.
    """
    home = home if isinstance(home, Home) else resolve_home(home)
    sel, spec = selection or Selection(), spec or WindowSpec()
    full = {
        "selection": sel.model_dump(mode="json"),
        "window": spec.model_dump(mode="json"),
        **(config or {}),
    }
    with recorded(home, kind, full) as run:
        ctx = RunContext(home, run, sel, spec)
        if windows:
            _load(ctx, force, progress)
        yield ctx


def _load(ctx: RunContext, force: bool, progress: bool) -> None:
    from alertlab.windows.diagnose import diagnose

    with ctx.run.phase("select"):
        alerts = select_alerts(ctx.home, ctx.selection)
    if alerts.empty:
        raise ValueError(NO_ALERTS)
    with ctx.run.phase("windows"):
        ctx.windows, ctx.cache = get_windows(ctx.home, alerts, ctx.spec, force=force, progress=progress)
    ctx.run.fingerprint, ctx.run.cache_hit = ctx.cache.fingerprint, ctx.cache.hit
    ctx.status_counts = ctx.windows.status_counts(ctx.spec.min_coverage)
    ctx.diagnosis = diagnose(ctx.windows, ctx.spec.min_coverage, ctx.spec.entry_lag_s)
