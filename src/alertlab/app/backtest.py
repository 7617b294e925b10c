"""``backtest`` as one call: selected alerts → windows (path cache) → engine → summaries → exports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from alertlab.app.run import open_run
from alertlab.engine import BacktestResult, PortfolioConfig, Strategy, StrategyGrid, backtest, run_grid
from alertlab.report import exports
from alertlab.store import Home
from alertlab.store.runs import Run, record_result
from alertlab.util.progress import bar
from alertlab.windows.cache import CacheInfo
from alertlab.windows.spec import Selection, WindowSpec


@dataclass
class BacktestRun:
    """A recorded backtest: ``result`` for one strategy, or ``grid`` (one row per combination)."""

    strategy: Strategy | StrategyGrid
    result: BacktestResult | None
    grid: pd.DataFrame | None
    cache: CacheInfo
    run: Run
    status_counts: dict[str, int]
    diagnosis: str | None = None


def run_backtest(
    strategy: Strategy | StrategyGrid,
    home: Home | str | Path | None = None,
    selection: Selection | None = None,
    spec: WindowSpec | None = None,
    portfolio: PortfolioConfig | None = None,
    force_recompute: bool = False,
    progress: bool = False,
    export_per_trade_parquet: str | Path | None = None,
    export_grid_parquet: str | Path | None = None,
    cluster: str | None = None,
    cluster_data: str = "auto",
) -> BacktestRun:
    """Backtest ``strategy`` (or its grid) over the usable selected alerts, reading the path cache.

    Usable = ok windows and truncated windows with coverage >= ``spec.min_coverage`` (the others
    are counted by status in ``status_counts``). No usable alert → ValueError with the one-line
    reason and what to try; most alerts unusable → the same line in ``diagnosis``.

    A :class:`StrategyGrid` is evaluated in one pass and summarised per combination;
    per-trade tables and portfolio replays need a single strategy and are rejected for grids.
    ``cluster``: run the kernel passes on a Dask cluster (see :mod:`alertlab.distributed`); the
    results are identical to a local run.
    """
    if cluster:  # fail fast on a malformed address or a missing extra
        from alertlab.distributed.cluster import preflight

        preflight(cluster, cluster_data)
    is_grid = isinstance(strategy, StrategyGrid)
    n_combinations = strategy.n_combinations if isinstance(strategy, StrategyGrid) else 1
    if is_grid and export_per_trade_parquet:
        raise ValueError(
            "--export-per-trade-parquet needs a single strategy, not a grid "
            f"({n_combinations} combinations); use --export-grid-parquet"
        )
    if is_grid and portfolio is not None:
        raise ValueError("portfolio mode (--capital) needs a single strategy, not a grid")
    if not is_grid and export_grid_parquet:
        raise ValueError(
            "--export-grid-parquet needs a grid (give some option a comma list, e.g. --tp 2,3,5)"
        )
    config = {
        "strategy": strategy.model_dump(mode="json"),
        "portfolio": portfolio.model_dump(mode="json") if portfolio else None,
        "force_recompute": force_recompute,
        **({"cluster": cluster, "cluster_data": cluster_data} if cluster else {}),
    }
    kind = "grid" if is_grid else "backtest"
    with open_run(home, kind, selection, spec, config, force=force_recompute, progress=progress) as ctx:
        home, run, w, info = ctx.home, ctx.run, ctx.w, ctx.info
        run.counts = {**ctx.window_counts(), "combinations": n_combinations}
        idx = ctx.usable_idx()
        result = grid = None
        with run.phase("engine"):
            if cluster:
                from alertlab.distributed.run import backtest_on_cluster

                result, grid = backtest_on_cluster(
                    cluster, cluster_data, w, info.path, strategy, portfolio, progress, alert_idx=idx
                )
            elif isinstance(strategy, StrategyGrid):
                with bar("strategy grid", n_combinations, progress) as pb:
                    grid = run_grid(w, strategy, alert_idx=idx, progress=pb.advance)
            else:
                result = backtest(w, strategy, alert_idx=idx, portfolio=portfolio)
        if result:
            run.counts["trades"] = int(result.summary.get("n_trades", 0))
        out = BacktestRun(strategy, result, grid, info, run, ctx.status_counts, ctx.diagnosis)
        prov = run.provenance()
        with run.phase("exports"):
            if export_per_trade_parquet and result is not None:
                trades = result.trades.assign(  # UTC timestamps, as in the baseline export
                    entry_ts=pd.to_datetime(result.trades["entry_ts"], unit="s", utc=True),
                    exit_ts=pd.to_datetime(result.trades["exit_ts"], unit="s", utc=True),
                )
                t = pa.Table.from_pandas(trades, preserve_index=False)
                p = exports.write_table(t, export_per_trade_parquet, prov)
                record_result(home, run, "per_trade", str(p), t.num_rows)
            if export_grid_parquet and grid is not None:
                t = pa.Table.from_pandas(grid, preserve_index=False)
                p = exports.write_table(t, export_grid_parquet, prov)
                record_result(home, run, "grid", str(p), t.num_rows)
    return out
