"""Evaluate batches of candidate strategies on walk-forward folds through the engine.

One :meth:`Evaluator.evaluate` call runs the engine's many-parameter kernel once
(:func:`alertlab.engine.trade_returns`, all configs × all study alerts), then slices the returns by
fold and split and summarises every slice with the engine's own :func:`summarize_columns`, so the
metric formulas live in one place (``alertlab.engine.summary``). Alerts are kept in alert-time order
(``alert_ts_ms``, then ``alert_id``), the order :func:`alertlab.engine.drivers` uses, so a fold's
metrics equal ``backtest(w, cfg, fold_alerts).summary`` exactly.

Scores (all maximised):

* fold objective = the ``objective`` metric of that fold and split (``avg_ret``, ``median_ret``,
  ``sum_ret``, ``sharpe``, ``profit_factor`` or ``expectancy``, formulas in ``engine.summary``);
* **train score** = mean of the folds' train objectives; it is defined (finite) only when every
  fold's train objective is finite;
* **test score** = mean of the finite test objectives over the folds (a test fold without trades,
  or an infinite profit factor, is left out); NaN when no fold has one.

Constraints, on training data only (a trial that breaks one is *infeasible*: recorded, never
recommended): every fold's train split has at least ``min_trades`` trades; every fold's train
``max_drawdown`` (stakes, see ``engine.summary``) is at most ``max_dd``; the train score is finite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from alertlab.engine import Strategy, encode_params, summarize_columns, trade_returns
from alertlab.engine.enums import IntrabarPolicy
from alertlab.engine.options import DEPENDENTS, OPTIONS
from alertlab.engine.params import FeeBps, SlippageBps
from alertlab.optimize.folds import Fold
from alertlab.optimize.space import OPTION_NAMES
from alertlab.optimize.stats import alert_day_index, daily_returns
from alertlab.windows.model import Windows, time_order  # noqa: F401 - re-exported for study

OBJECTIVES: tuple[str, ...] = ("avg_ret", "median_ret", "sum_ret", "sharpe", "profit_factor", "expectancy")
"""Objective names; each is the ``engine.summary`` metric of the same name."""

LONG_METRICS: tuple[str, ...] = (
    "n_trades",
    "avg_ret",
    "median_ret",
    "sum_ret",
    "win_rate",
    "sharpe",
    "profit_factor",
    "objective",
)
"""Metric columns of the long (trial, fold, split) table, in the issue's order."""

FOLD_METRICS: tuple[str, ...] = (
    "n_trades",
    "avg_ret",
    "median_ret",
    "sum_ret",
    "win_rate",
    "sharpe",
    "profit_factor",
    "expectancy",
    "max_drawdown",
)
"""Metrics kept per (trial, fold, split)."""

SPLITS = ("train", "test")


class EngineSettings(BaseModel):
    """Run settings fixed for a whole study (not searched): costs per side, the intrabar policy and
    whether no-trade bars may fill (``fill_on_zero_volume``, for sources without volume)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fee_bps: FeeBps = OPTIONS["fee_bps"].default
    slippage_bps: SlippageBps = OPTIONS["slippage_bps"].default
    intrabar: IntrabarPolicy = "pessimistic"
    fill_on_zero_volume: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "fee_bps": float(self.fee_bps),
            "slippage_bps": float(self.slippage_bps),
            "intrabar": self.intrabar,
            "fill_on_zero_volume": self.fill_on_zero_volume,
        }


def strategy_config(options: Mapping[str, Any], settings: EngineSettings) -> Strategy:
    """The engine config of one sampled option set (None = rule off) under the study's settings.

    Options that depend on a rule which is off (``trail_activation`` without ``trail``,
    ``breakeven_offset`` without ``breakeven_at``, ``dip_window_min`` without ``dip``) are dropped:
    they have no effect. Raises ``ValueError`` when the engine rejects the combination (e.g. ``tp``
    and ``tp_ladder`` together, or ``dip`` with an entry delay).
    """
    d = {k: v for k, v in options.items() if v is not None}
    unknown = set(d) - set(OPTION_NAMES)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}")
    for child, parent in DEPENDENTS.items():
        if parent not in d:
            d.pop(child, None)
    if "entry_delay_bars" in d:
        d["entry_delay_bars"] = int(d["entry_delay_bars"])
    try:
        return Strategy(**d, **settings.as_dict())
    except ValidationError as exc:
        msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ValueError(f"invalid strategy: {msg}") from None


def effective_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every searchable option as the engine runs it: the sampled value, None when off or dropped.

    Values are kept as sampled (not canonicalised), so they stay comparable with the space's
    choices; dependents of a rule that is off become None (see :func:`strategy_config`).
    """
    out: dict[str, Any] = {}
    for name in OPTION_NAMES:
        v = options.get(name)
        if v is not None and name in DEPENDENTS and options.get(DEPENDENTS[name]) is None:
            v = None
        if v is not None and name == "entry_delay_bars":
            v = int(v)
        out[name] = v
    return out


@dataclass
class BatchEval:
    """Results of one batch of ``n`` configs over ``n_folds`` folds.

    ``metrics[split][key]`` is an ``(n, n_folds)`` array (``FOLD_METRICS`` plus ``objective``);
    ``train``/``test`` scores, ``feasible`` flags, ``constraints`` ``(n, 3)`` (<= 0 satisfied:
    min trades, max drawdown, finite train score), ``violations`` (text per config) and ``daily``
    ``(n_days, n)`` per-day equal-weight returns over all study alerts.
    """

    metrics: dict[str, dict[str, np.ndarray]]
    train: np.ndarray
    test: np.ndarray
    feasible: np.ndarray
    constraints: np.ndarray
    violations: list[list[str]]
    daily: np.ndarray


class Evaluator:
    """Scores configs on fixed folds of one set of alerts (cheap to build, reused by every batch).

    ``order``: the study's alert indices into ``w`` in alert-time order (see :func:`time_order`);
    ``folds``: from :func:`~alertlab.optimize.folds.make_folds` over ``w.alert_ts_ms[order]``, so
    their indices are positions in ``order``.
    """

    def __init__(
        self,
        w: Windows,
        order: np.ndarray,
        folds: Sequence[Fold],
        objective: str,
        settings: EngineSettings,
        min_trades: int = 0,
        max_dd: float | None = None,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if not folds:
            raise ValueError("need at least one fold")
        self.w = w
        self.order = np.ascontiguousarray(order, dtype=np.int64)
        self.folds = list(folds)
        self.objective = objective
        self.settings = settings
        self.min_trades = int(min_trades)
        self.max_dd = None if max_dd is None else float(max_dd)
        self.day, self.n_days = alert_day_index(np.asarray(w.alert_ts_ms, dtype=np.int64)[self.order])
        self.cols = {
            "train": [np.ascontiguousarray(f.train_idx) for f in self.folds],
            "test": [np.ascontiguousarray(f.test_idx) for f in self.folds],
        }

    @property
    def n_folds(self) -> int:
        return len(self.folds)

    def returns(self, configs: Sequence[Strategy]) -> np.ndarray:
        """Net trade returns ``(n_configs, n_alerts)`` over the study alerts: one engine call."""
        params = encode_params(list(configs))
        return trade_returns(
            self.w, params, self.order, self.settings.intrabar, self.settings.fill_on_zero_volume
        )

    def daily(self, configs: Sequence[Strategy]) -> np.ndarray:
        """Per-day returns ``(n_days, n_configs)`` (see :func:`~alertlab.optimize.stats.daily_returns`)."""
        return daily_returns(self.day, self.returns(configs), self.n_days)

    def evaluate(self, configs: Sequence[Strategy]) -> BatchEval:
        """Fold metrics, scores, constraints and daily returns of ``configs`` (one engine call)."""
        n, k = len(configs), self.n_folds
        ret = self.returns(configs) if n else np.zeros((0, self.order.size))
        metrics: dict[str, dict[str, np.ndarray]] = {}
        for split in SPLITS:
            m = {key: np.full((n, k), np.nan) for key in (*FOLD_METRICS, "objective")}
            m["n_trades"] = np.zeros((n, k), dtype=np.int64)
            for j, cols in enumerate(self.cols[split]):
                if cols.size == 0 or n == 0:
                    continue
                s = summarize_columns(np.ascontiguousarray(ret[:, cols].T))
                for key in FOLD_METRICS:
                    m[key][:, j] = s[key]
                m["objective"][:, j] = s[self.objective]
            metrics[split] = m
        train, test = aggregate_scores(metrics["train"]["objective"], metrics["test"]["objective"])
        cons, feasible, violations = self.constraints(metrics["train"], train)
        daily = daily_returns(self.day, ret, self.n_days) if n else np.zeros((self.n_days, 0))
        return BatchEval(metrics, train, test, feasible, cons, violations, daily)

    def constraints(self, train_metrics: dict[str, np.ndarray], train_score: np.ndarray):
        """Constraint values (<= 0 satisfied), feasibility and readable violations per config."""
        n = train_score.shape[0]
        min_n = train_metrics["n_trades"].min(axis=1) if n else np.zeros(0)
        worst_dd = np.nan_to_num(train_metrics["max_drawdown"], nan=0.0).max(axis=1) if n else np.zeros(0)
        c = np.zeros((n, 3))
        c[:, 0] = self.min_trades - min_n
        if self.max_dd is not None:
            c[:, 1] = worst_dd - self.max_dd
        c[:, 2] = np.where(np.isfinite(train_score), 0.0, 1.0)
        violations: list[list[str]] = []
        for i in range(n):
            v = []
            if c[i, 0] > 0:
                v.append(f"min train trades {int(min_n[i])} < {self.min_trades}")
            if c[i, 1] > 0:
                v.append(f"train max drawdown {worst_dd[i]:.4g} > {self.max_dd:g}")
            if c[i, 2] > 0:
                v.append(f"train {self.objective} not finite")
            violations.append(v)
        return c, (c <= 0).all(axis=1), violations


def aggregate_scores(train_obj: np.ndarray, test_obj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train score (mean over folds, finite only if every fold is) and test score (mean of finite folds)."""
    train_obj = np.asarray(train_obj, dtype=np.float64)
    test_obj = np.asarray(test_obj, dtype=np.float64)
    finite_all = np.isfinite(train_obj).all(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        train = np.where(finite_all, np.where(np.isfinite(train_obj), train_obj, 0.0).mean(axis=1), np.nan)
        ok = np.isfinite(test_obj)
        cnt = ok.sum(axis=1)
        test = np.where(cnt > 0, np.where(ok, test_obj, 0.0).sum(axis=1) / np.maximum(cnt, 1), np.nan)
    return train, test
