"""The app layer's cluster entry points (baseline metrics, backtests and grids, study evaluators).

Each opens one session for the run (connect, place the windows once, compute, disconnect) and
returns exactly what the local call returns; progress bars advance as tasks complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from alertlab.distributed.cluster import session
from alertlab.util.progress import _console, bar
from alertlab.windows.model import Windows


def _echo(line: str) -> None:
    _console.print(line, highlight=False, soft_wrap=True)


def baseline_on_cluster(
    cluster: str, data: str, w: Windows, path: str | Path | None, progress: bool = False, **chunking: Any
) -> pa.Table:
    """:func:`alertlab.truth.metrics.baseline_table` of ``w`` computed on the cluster."""
    with session(cluster, data, echo=_echo if progress else None, **chunking) as s:
        s.bind(w, path)
        with bar("baseline metrics (cluster)", w.n, progress) as pb:
            s.on_task = pb.advance
            return s.baseline_table(w)


def backtest_on_cluster(
    cluster: str,
    data: str,
    w: Windows,
    path: str | Path | None,
    strategy: Any,
    portfolio: Any = None,
    progress: bool = False,
    alert_idx: Any = None,
    **chunking: Any,
):
    """``(result, grid)``: :func:`alertlab.engine.backtest` (single strategy) or
    :func:`alertlab.engine.run_grid` (grid) with the kernel passes on the cluster."""
    from alertlab.engine import backtest, run_grid

    with session(cluster, data, echo=_echo if progress else None, **chunking) as s:
        s.bind(w, path)
        from alertlab.engine import StrategyGrid

        if isinstance(strategy, StrategyGrid):
            with bar("strategy grid (cluster)", strategy.n_combinations, progress) as pb:
                s.on_task = pb.advance
                return None, run_grid(w, strategy, alert_idx=alert_idx, simulate=s.simulate_cols)
        with bar("backtest (cluster)", 1, progress) as pb:
            s.on_task = pb.advance
            return backtest(
                w, strategy, alert_idx=alert_idx, portfolio=portfolio, simulate=s.simulate_cols
            ), None


@contextlib.contextmanager
def study_evaluators(
    cluster: str | None,
    data: str,
    w: Windows,
    path: str | Path | None,
    progress: bool = False,
    **chunking: Any,
) -> Iterator[Any]:
    """A factory of cluster evaluators for :func:`alertlab.optimize.study.run_study`
    (``make_evaluator``), or None without a cluster."""
    if not cluster:
        yield None
        return
    from alertlab.distributed.evaluate import ClusterEvaluator

    with session(cluster, data, echo=_echo if progress else None, **chunking) as s:
        s.bind(w, path)

        def make(*args: Any, **kwargs: Any) -> ClusterEvaluator:
            return ClusterEvaluator(*args, session=s, **kwargs)

        yield make
