"""alertlab: truth layer and exit-strategy lab for crypto caller alerts.

Typical use::

    import alertlab
    home = alertlab.resolve_home("alertlab-data")
    alertlab.ingest_candles(home, ["candles/"])
    alertlab.ingest_alerts(home, ["alerts.csv"])
    res = alertlab.run_baseline(home)            # per-alert metrics + caller leaderboard
    res.leaderboard.head()                        # pandas DataFrame
    bt = alertlab.backtest(res.windows, alertlab.StrategyConfig(tp=3, sl=0.5))

The CLI (``alertlab``) is a thin layer over these functions.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "resolve_home": "alertlab.store",
    "Home": "alertlab.store",
    "Selection": "alertlab.config",
    "WindowSpec": "alertlab.config",
    "Windows": "alertlab.windows",
    "ingest_alerts": "alertlab.data",
    "ingest_candles": "alertlab.data",
    "load_alerts": "alertlab.data",
    "quality_table": "alertlab.data",
    "select_alerts": "alertlab.baseline",
    "get_windows": "alertlab.cache",
    "run_baseline": "alertlab.baseline",
    "compute_metrics": "alertlab.metrics",
    "baseline_table": "alertlab.metrics",
    "leaderboard": "alertlab.leaderboard",
    "StrategyConfig": "alertlab.engine",
    "backtest": "alertlab.engine",
    "run_grid": "alertlab.engine",
    "PortfolioConfig": "alertlab.engine",
    "run_backtest": "alertlab.backtesting",
    "run_optimize": "alertlab.optimize",
    "OptimizeOptions": "alertlab.optimize",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """Import API members lazily so ``import alertlab`` (and the CLI start-up) stays fast."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'alertlab' has no attribute {name!r}")
