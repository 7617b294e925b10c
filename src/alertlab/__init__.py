"""alertlab: truth layer and exit-strategy lab for crypto caller alerts.

Typical use::

    import alertlab
    home = alertlab.resolve_home("alertlab-data")
    alertlab.ingest_candles(home, ["candles/"])
    alertlab.ingest_alerts(home, ["alerts.csv"])
    res = alertlab.run_baseline(home)            # per-alert metrics + caller leaderboard
    res.leaderboard.head()                        # pandas DataFrame
    bt = alertlab.backtest(res.windows, alertlab.Strategy(tp=3, sl=0.5))
    grid = alertlab.run_grid(res.windows, alertlab.StrategyGrid(tp=[2, 3, 5], sl=[0.3, 0.5]))

The CLI (``alertlab``) is a thin layer over these functions. The names below are the public API;
everything else lives in the stage packages (``ingest``, ``store``, ``windows``, ``truth``,
``engine``, ``optimize``, ``app``, ``report``) and may change between versions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # static imports for IDEs and type checkers; at run time they load lazily (fast CLI start)
    from alertlab.app.backtest import run_backtest
    from alertlab.app.baseline import run_baseline
    from alertlab.app.optimize import run_optimize
    from alertlab.app.report import run_report
    from alertlab.engine import PortfolioConfig, Strategy, StrategyGrid, backtest, run_grid
    from alertlab.ingest import ingest_alerts, ingest_candles, load_alerts, quality_table
    from alertlab.ingest.fetch import FetchOptions, run_fetch
    from alertlab.optimize import OptimizeOptions
    from alertlab.report.figures import (
        plot_ath_distribution,
        plot_coverage,
        plot_equity,
        plot_exit_reasons,
        plot_fan,
        plot_folds,
        plot_grid,
        plot_hit_rate_vs_calls,
        plot_intrabar_band,
        plot_leaderboard,
        plot_param_importance,
        plot_per_caller_results,
        plot_portfolio,
        plot_returns,
        plot_status,
        plot_study_trials,
        plot_time_to_2x,
        plot_trade,
    )
    from alertlab.store import Home, resolve_home
    from alertlab.windows import Windows
    from alertlab.windows.spec import Selection, WindowSpec

_API = {
    "resolve_home": "alertlab.store",
    "Home": "alertlab.store",
    "ingest_alerts": "alertlab.ingest",
    "ingest_candles": "alertlab.ingest",
    "load_alerts": "alertlab.ingest",
    "quality_table": "alertlab.ingest",
    "run_fetch": "alertlab.ingest.fetch",
    "FetchOptions": "alertlab.ingest.fetch",
    "Selection": "alertlab.windows.spec",
    "WindowSpec": "alertlab.windows.spec",
    "Windows": "alertlab.windows",
    "run_baseline": "alertlab.app.baseline",
    "Strategy": "alertlab.engine",
    "StrategyGrid": "alertlab.engine",
    "PortfolioConfig": "alertlab.engine",
    "backtest": "alertlab.engine",
    "run_grid": "alertlab.engine",
    "run_backtest": "alertlab.app.backtest",
    "OptimizeOptions": "alertlab.optimize",
    "run_optimize": "alertlab.app.optimize",
    "run_report": "alertlab.app.report",
    "plot_status": "alertlab.report.figures",
    "plot_coverage": "alertlab.report.figures",
    "plot_leaderboard": "alertlab.report.figures",
    "plot_hit_rate_vs_calls": "alertlab.report.figures",
    "plot_ath_distribution": "alertlab.report.figures",
    "plot_time_to_2x": "alertlab.report.figures",
    "plot_fan": "alertlab.report.figures",
    "plot_equity": "alertlab.report.figures",
    "plot_portfolio": "alertlab.report.figures",
    "plot_exit_reasons": "alertlab.report.figures",
    "plot_returns": "alertlab.report.figures",
    "plot_intrabar_band": "alertlab.report.figures",
    "plot_per_caller_results": "alertlab.report.figures",
    "plot_trade": "alertlab.report.figures",
    "plot_grid": "alertlab.report.figures",
    "plot_study_trials": "alertlab.report.figures",
    "plot_param_importance": "alertlab.report.figures",
    "plot_folds": "alertlab.report.figures",
}

__all__ = [
    "__version__",
    "resolve_home",
    "Home",
    "ingest_alerts",
    "ingest_candles",
    "load_alerts",
    "quality_table",
    "run_fetch",
    "FetchOptions",
    "Selection",
    "WindowSpec",
    "Windows",
    "run_baseline",
    "Strategy",
    "StrategyGrid",
    "PortfolioConfig",
    "backtest",
    "run_grid",
    "run_backtest",
    "OptimizeOptions",
    "run_optimize",
    "run_report",
    "plot_status",
    "plot_coverage",
    "plot_leaderboard",
    "plot_hit_rate_vs_calls",
    "plot_ath_distribution",
    "plot_time_to_2x",
    "plot_fan",
    "plot_equity",
    "plot_portfolio",
    "plot_exit_reasons",
    "plot_returns",
    "plot_intrabar_band",
    "plot_per_caller_results",
    "plot_trade",
    "plot_grid",
    "plot_study_trials",
    "plot_param_importance",
    "plot_folds",
]


def __getattr__(name: str) -> Any:
    """Import API members lazily so ``import alertlab`` (and the CLI start-up) stays fast."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name == "StrategyConfig":  # deprecated (Strategy / StrategyGrid); kept for old scripts, warns on use
        return importlib.import_module("alertlab.engine.params").StrategyConfig
    raise AttributeError(f"module 'alertlab' has no attribute {name!r}")
