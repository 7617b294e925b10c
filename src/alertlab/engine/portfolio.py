"""Portfolio replay: the per-trade table taken in time order with finite capital.

Rules (documented choices):

* Trades (filled rows of a backtest's trade table; ``no_fill`` rows are ignored) are considered in
  entry-time order (ties keep table order, which is alert-time order).
* Before each entry, every open position with ``exit_ts <= entry_ts`` is closed: its proceeds
  ``stake·(1 + ret)`` return to cash. Partial ladder fills are credited at the position's final
  exit (capital stays locked until the position is fully closed: conservative).
* A trade is skipped (and counted) when ``max_open`` positions are open (``max_open``), or when the
  stake exceeds free cash (``capital``). The stake is ``stake`` (fixed amount) or
  ``stake_pct`` × current equity (compounding), where equity = cash + open positions at cost.
* The equity curve is marked at cost (open positions count at their stake until closed), so it
  moves at exits; ``max_drawdown`` = max over time of 1 − equity / running peak (a fraction).
* ``exposure`` = time-weighted mean of locked / equity over [first entry, last exit]: the share
  of capital deployed on average.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator


class PortfolioConfig(BaseModel):
    """Finite capital: ``capital`` with a fixed ``stake`` or a ``stake_pct`` fraction of equity (0.05 = 5 %)."""

    model_config = ConfigDict(extra="forbid")

    capital: float = Field(gt=0, allow_inf_nan=False)
    stake: float | None = Field(None, gt=0, allow_inf_nan=False)
    stake_pct: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    max_open: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_stake(self) -> PortfolioConfig:
        if (self.stake is None) == (self.stake_pct is None):
            raise ValueError("give exactly one of stake (an amount) or stake_pct (a fraction of equity)")
        if self.stake is not None and self.stake > self.capital:
            raise ValueError(f"stake {self.stake} exceeds capital {self.capital}")
        return self


@dataclass
class PortfolioResult:
    """``summary`` dict, ``trades`` (input rows + taken / skip_reason / stake / pnl), ``equity`` curve."""

    summary: dict
    trades: pd.DataFrame
    equity: pd.DataFrame


def run_portfolio(trades: pd.DataFrame, cfg: PortfolioConfig) -> PortfolioResult:
    """Replay ``trades`` (columns ``entry_ts, exit_ts, ret, exit_reason``) under ``cfg``; see module docs."""
    need = {"entry_ts", "exit_ts", "ret", "exit_reason"}
    missing = need - set(trades.columns)
    if missing:
        raise ValueError(f"trades table lacks columns {sorted(missing)}")
    filled = (trades["exit_reason"] != "no_fill") & trades["entry_ts"].notna() & trades["ret"].notna()
    df = trades.loc[filled].copy()
    order = np.argsort(df["entry_ts"].to_numpy(np.int64), kind="stable")
    df = df.iloc[order]
    ent = df["entry_ts"].to_numpy(np.int64)
    ext = df["exit_ts"].to_numpy(np.int64)
    ret = df["ret"].to_numpy(np.float64)
    n = len(df)

    cash = float(cfg.capital)
    locked = 0.0
    heap: list[tuple[int, int, float]] = []  # (exit_ts, row, stake)
    taken = np.zeros(n, dtype=bool)
    reason = np.full(n, "", dtype=object)
    stakes = np.zeros(n)
    pnl = np.zeros(n)
    ev_ts: list[int] = []
    ev_eq: list[float] = []
    ev_cash: list[float] = []
    ev_locked: list[float] = []
    ev_open: list[int] = []
    max_conc = 0

    def record(t: int) -> None:
        ev_ts.append(t)
        ev_eq.append(cash + locked)
        ev_cash.append(cash)
        ev_locked.append(locked)
        ev_open.append(len(heap))

    def close_until(t: float) -> None:
        nonlocal cash, locked
        while heap and heap[0][0] <= t:
            x_ts, r, st = heapq.heappop(heap)
            cash += st * (1.0 + ret[r])
            locked -= st
            if not heap:
                locked = 0.0  # no float residue when flat
            record(x_ts)

    if n:
        record(int(ent[0]))
    for r in range(n):
        close_until(ent[r])
        if cfg.max_open is not None and len(heap) >= cfg.max_open:
            reason[r] = "max_open"
            continue
        if cfg.stake is not None:
            stake = cfg.stake
        else:
            assert cfg.stake_pct is not None  # validator: exactly one of stake / stake_pct
            stake = cfg.stake_pct * (cash + locked)
        if stake > cash * (1 + 1e-12) or stake <= 0:
            reason[r] = "capital"
            continue
        stake = min(stake, cash)
        cash -= stake
        locked += stake
        heapq.heappush(heap, (int(ext[r]), r, stake))
        taken[r] = True
        stakes[r] = stake
        pnl[r] = stake * ret[r]
        max_conc = max(max_conc, len(heap))
        record(int(ent[r]))
    close_until(np.inf)

    eq = pd.DataFrame(
        {
            "ts": np.asarray(ev_ts, dtype=np.int64),
            "equity": ev_eq,
            "cash": ev_cash,
            "locked": ev_locked,
            "n_open": np.asarray(ev_open, dtype=np.int64),
        }
    )
    if len(eq):
        peak = np.maximum.accumulate(eq["equity"].to_numpy())
        eq["drawdown"] = 1.0 - eq["equity"].to_numpy() / peak
        t = eq["ts"].to_numpy(np.int64)
        dt = np.diff(t).astype(np.float64)
        share = (eq["locked"].to_numpy() / eq["equity"].to_numpy())[:-1]
        span = float(t[-1] - t[0])
        exposure = float((share * dt).sum() / span) if span > 0 else 0.0
        max_dd = float(eq["drawdown"].max())
        final = float(eq["equity"].iloc[-1])
    else:
        eq["drawdown"] = np.zeros(0)
        exposure, max_dd, final = 0.0, 0.0, float(cfg.capital)
    df["taken"] = taken
    df["skip_reason"] = reason
    df["stake"] = stakes
    df["pnl"] = pnl
    summary = {
        "capital": float(cfg.capital),
        "final_equity": final,
        "total_return": final / cfg.capital - 1.0,
        "max_drawdown": max_dd,
        "exposure": exposure,
        "n_trades": int(n),
        "n_taken": int(taken.sum()),
        "n_skipped_capital": int((reason == "capital").sum()),
        "n_skipped_max_open": int((reason == "max_open").sum()),
        "max_concurrent": int(max_conc),
        "avg_stake": float(stakes[taken].mean()) if taken.any() else 0.0,
    }
    return PortfolioResult(summary=summary, trades=df.reset_index(drop=True), equity=eq)
