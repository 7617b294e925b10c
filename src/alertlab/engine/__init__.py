"""Exit-strategy engine: one simulator for backtests, grids and the optimizer.

* :class:`Strategy` / :class:`StrategyGrid` / :func:`encode_params` (``params``): one strategy, a grid,
  the parameter matrix (domains from the option table in ``options``).
* :func:`simulate` / :func:`trade_returns` (``backtest``): per-(param, alert) outputs; plain TP/SL
  rows by first passage (``tpsl``), the rest by the Numba bar simulator (``kernel``, whose module
  docstring states the exact per-bar semantics).
* :func:`backtest`, :func:`run_grid`: tables and summaries (``summary`` holds every formula).
* :class:`PortfolioConfig` / :func:`run_portfolio` (``portfolio``): finite capital replay.
* :func:`trace_trade` (``trace``): one trade fill by fill, with the stop / take-profit levels per bar.
* ``enums``: the exit reasons (``EXIT_REASONS``, ``end_of_data`` included) and intrabar policy names.
"""

from alertlab.engine.drivers import (
    TRADE_COLUMNS,
    BacktestResult,
    TradeArrays,
    backtest,
    run_grid,
    simulate,
    trade_returns,
)
from alertlab.engine.enums import EXIT_REASONS, INTRABAR_POLICIES, NO_FILL, NO_TRADE
from alertlab.engine.params import (
    N_PARAM_COLS,
    PARAM_COLUMNS,
    Strategy,
    StrategyConfig,
    StrategyGrid,
    encode_params,
    load_strategy,
    plain_tpsl_rows,
    strategy_from,
)
from alertlab.engine.portfolio import PortfolioConfig, PortfolioResult, run_portfolio
from alertlab.engine.summary import SUMMARY_KEYS, summarize, summarize_columns, summarize_rows
from alertlab.engine.trace import TradeTrace, trace_trade

__all__ = [
    "EXIT_REASONS",
    "INTRABAR_POLICIES",
    "NO_FILL",
    "NO_TRADE",
    "N_PARAM_COLS",
    "PARAM_COLUMNS",
    "SUMMARY_KEYS",
    "TRADE_COLUMNS",
    "BacktestResult",
    "PortfolioConfig",
    "PortfolioResult",
    "Strategy",
    "StrategyConfig",
    "StrategyGrid",
    "TradeArrays",
    "TradeTrace",
    "backtest",
    "encode_params",
    "load_strategy",
    "plain_tpsl_rows",
    "run_grid",
    "run_portfolio",
    "simulate",
    "strategy_from",
    "summarize",
    "summarize_columns",
    "summarize_rows",
    "trade_returns",
    "trace_trade",
]
