"""Summary formulas vs plain computations; portfolio replay on hand cases."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from alertlab.engine import (
    EXIT_REASONS,
    PortfolioConfig,
    Strategy,
    StrategyGrid,
    backtest,
    run_portfolio,
    summarize,
)

from windowgen import random_windows


def plain_summary(rets, codes, amb, rp, ro) -> dict:
    """The documented formulas, one loop at a time."""
    tr = [r for r in rets if not math.isnan(r)]
    n = len(tr)
    wins = [r for r in tr if r > 0]
    nonwins = [r for r in tr if r <= 0]
    losses = [r for r in tr if r < 0]
    out = {"n_alerts": len(rets), "n_trades": n}
    out["no_fill"] = sum(1 for c in codes if c == EXIT_REASONS.index("no_fill"))
    out["no_data"] = sum(1 for c in codes if c == -1)
    for k, name in enumerate(EXIT_REASONS[:-1]):
        out[f"exit_{name}"] = sum(1 for c in codes if c == k)
    out["win_rate"] = len(wins) / n
    out["avg_ret"] = sum(tr) / n
    out["median_ret"] = statistics.median(tr)
    out["sum_ret"] = sum(tr)
    out["std_ret"] = statistics.stdev(tr)
    out["avg_win"] = sum(wins) / len(wins)
    out["avg_loss"] = sum(nonwins) / len(nonwins)
    out["profit_factor"] = sum(wins) / abs(sum(losses)) if losses else math.inf
    out["expectancy"] = out["win_rate"] * out["avg_win"] + (1 - out["win_rate"]) * out["avg_loss"]
    out["sharpe"] = out["avg_ret"] / out["std_ret"]
    out["t_stat"] = out["avg_ret"] / (out["std_ret"] / math.sqrt(n))
    out["worst_ret"], out["best_ret"] = min(tr), max(tr)
    eq, peak, dd = 0.0, 0.0, 0.0
    for r in rets:
        eq += 0.0 if math.isnan(r) else r
        peak = max(peak, eq)
        dd = max(dd, peak - eq)
    out["max_drawdown"] = dd
    out["ambiguous_share"] = sum(1 for r, a in zip(rets, amb, strict=True) if a and not math.isnan(r)) / n
    out["avg_ret_pessimistic"] = statistics.mean(x for x in rp if not math.isnan(x))
    out["avg_ret_optimistic"] = statistics.mean(x for x in ro if not math.isnan(x))
    return out


def _random_inputs(rng, n):
    r = rng.normal(0.05, 0.6, n)
    r[rng.random(n) < 0.1] = 0.0
    nf = EXIT_REASONS.index("no_fill")
    codes = rng.integers(0, nf, n).astype(np.int8)  # every exit reason, end_of_data included
    gone = rng.random(n) < 0.15
    codes[gone] = rng.choice([-1, nf], size=int(gone.sum()))
    r[gone] = np.nan
    amb = (rng.random(n) < 0.2) & ~gone
    rp = np.where(amb, r - 0.1, r)
    ro = np.where(amb, r + 0.1, r)
    return r, codes, amb, rp, ro


@pytest.mark.parametrize("seed", range(5))
def test_summary_matches_plain_formulas(seed):
    rng = np.random.default_rng(seed)
    args = _random_inputs(rng, int(rng.integers(5, 300)))
    got = summarize(*args)
    want = plain_summary(*(list(a) for a in args))
    assert set(want) <= set(got)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    assert got["expectancy"] == pytest.approx(got["avg_ret"], abs=1e-12)


def test_summary_two_d_rows_and_order():
    rng = np.random.default_rng(7)
    rows = [_random_inputs(rng, 40) for _ in range(3)]
    stacked = [np.stack([r[i] for r in rows]) for i in range(5)]
    two = summarize(*stacked)
    for j, r in enumerate(rows):
        one = summarize(*r)
        for k, v in one.items():
            assert two[k][j] == pytest.approx(v, nan_ok=True), k
    # alert_ts reorders the equity curve only
    r = rows[0][0]
    ts = rng.permutation(len(r))
    shuffled = summarize(r, alert_ts=ts)
    plain = plain_summary(list(r[np.argsort(ts)]), [0] * len(r), [False] * len(r), list(r), list(r))
    assert shuffled["max_drawdown"] == pytest.approx(plain["max_drawdown"])
    assert shuffled["avg_ret"] == pytest.approx(summarize(r)["avg_ret"])


def test_summary_edge_cases():
    empty = summarize(np.array([np.nan, np.nan]))
    assert empty["n_trades"] == 0 and math.isnan(empty["avg_ret"]) and math.isnan(empty["win_rate"])
    assert math.isnan(empty["profit_factor"]) and empty["max_drawdown"] == 0
    wins = summarize(np.array([0.1, 0.3]))
    assert (
        wins["profit_factor"] == math.inf
        and wins["win_rate"] == 1
        and wins["expectancy"] == pytest.approx(0.2)
    )
    flat = summarize(np.array([0.0, 0.0, 0.0]))
    assert math.isnan(flat["profit_factor"]) and math.isnan(flat["sharpe"]) and flat["win_rate"] == 0
    single = summarize(np.array([0.5]))
    assert math.isnan(single["sharpe"]) and math.isnan(single["t_stat"]) and single["median_ret"] == 0.5
    assert summarize(np.array([1.0, -0.5, -0.5, 2.0]))["max_drawdown"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ portfolio


def _trades(rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"alert_id": a, "entry_ts": e, "exit_ts": x, "ret": r, "exit_reason": why}
            for a, e, x, r, why in rows
        ]
    )


HAND = _trades(
    [
        ("A", 0, 100, 0.5, "tp"),
        ("B", 10, 50, -0.5, "sl"),
        ("C", 20, 30, 3.0, "tp"),
        ("N", 25, 25, 0.0, "no_fill"),
        ("D", 50, 200, 0.0, "horizon"),
        ("E", 100, 150, 1.0, "end_of_data"),
    ]
)


def test_portfolio_capital_locking_and_skips():
    res = run_portfolio(HAND, PortfolioConfig(capital=100, stake=40))
    t = res.trades.set_index("alert_id")
    assert list(t.index) == ["A", "B", "C", "D", "E"]  # no_fill ignored
    assert t["taken"].tolist() == [True, True, False, True, True]
    assert t.loc["C", "skip_reason"] == "capital"  # 20 free < 40 while A and B are open
    s = res.summary
    assert s["final_equity"] == pytest.approx(140) and s["total_return"] == pytest.approx(0.4)
    assert s["n_taken"] == 4 and s["n_skipped_capital"] == 1 and s["n_skipped_max_open"] == 0
    assert s["max_concurrent"] == 2
    assert s["max_drawdown"] == pytest.approx(0.2)  # 100 -> 80 when B closes at -50 %
    want_exposure = (0.4 * 10 + 0.8 * 40 + 1.0 * 50 + 0.8 * 50 + 40 / 140 * 50) / 200
    assert s["exposure"] == pytest.approx(want_exposure)
    assert res.equity["equity"].iloc[-1] == pytest.approx(140) and res.equity["n_open"].iloc[-1] == 0


def test_portfolio_max_open():
    s = run_portfolio(HAND, PortfolioConfig(capital=100, stake=40, max_open=2)).summary
    assert (s["n_taken"], s["n_skipped_max_open"], s["n_skipped_capital"]) == (4, 1, 0)
    res = run_portfolio(HAND, PortfolioConfig(capital=100, stake=40, max_open=1))
    assert res.trades["taken"].tolist() == [True, False, False, False, True]
    assert res.summary["final_equity"] == pytest.approx(100 + 20 + 40)


def test_portfolio_stake_pct_compounds():
    res = run_portfolio(HAND, PortfolioConfig(capital=100, stake_pct=0.5))
    # A 50; B 50 (cash 0); C skipped; D at 50: B returned 25, equity 75 -> stake 37.5 > 25 skipped;
    # E at 100: A returned 75, cash 100, equity 100 -> stake 50 -> +50
    assert res.trades["taken"].tolist() == [True, True, False, False, True]
    assert res.trades["stake"].tolist() == [50, 50, 0, 0, 50]
    assert res.summary["final_equity"] == pytest.approx(150)


def test_portfolio_config_errors():
    with pytest.raises(ValueError, match="exactly one"):
        PortfolioConfig(capital=100)
    with pytest.raises(ValueError, match="exactly one"):
        PortfolioConfig(capital=100, stake=1, stake_pct=0.1)
    with pytest.raises(ValueError, match="exceeds capital"):
        PortfolioConfig(capital=100, stake=200)
    with pytest.raises(ValueError):
        PortfolioConfig(capital=100, stake_pct=1.5)
    with pytest.raises(ValueError, match="lacks columns"):
        run_portfolio(pd.DataFrame({"entry_ts": [1]}), PortfolioConfig(capital=1, stake=1))


# ------------------------------------------------------------------------------------------ backtest tables


def test_backtest_tables_and_unlimited_portfolio():
    w = random_windows(np.random.default_rng(21), 120, horizon_s=3 * 3600)
    cfg = Strategy(tp_ladder="2:0.5,5:0.5", sl=0.6, dip=0.1, dip_window_min=30, intrabar="ohlc")
    bt = backtest(w, cfg, portfolio=PortfolioConfig(capital=1e9, stake=1.0))
    tr = bt.trades
    assert list(tr.columns) == [
        "alert_id",
        "caller",
        "chain",
        "token",
        "entry_ts",
        "entry_price",
        "exit_ts",
        "exit_price",
        "exit_reason",
        "n_fills",
        "hold_s",
        "ret",
        "ret_gross",
        "peak_mult",
        "ambiguous",
    ]
    assert len(tr) == int(w.ok.sum())
    nf = tr["exit_reason"] == "no_fill"
    assert nf.any() and (~nf).any()
    assert (tr.loc[nf, "ret"] == 0).all() and tr.loc[nf, "entry_ts"].isna().all()
    s = bt.summary
    assert s["n_alerts"] == w.n and s["n_trades"] == int((~nf).sum()) and s["no_fill"] == int(nf.sum())
    assert s["no_data"] == int((~w.ok).sum()) and s["intrabar"] == "ohlc"
    filled = tr.loc[~nf]
    assert s["avg_ret"] == pytest.approx(filled["ret"].mean())
    assert s["ambiguous_share"] == pytest.approx(filled["ambiguous"].mean())
    assert (filled["hold_s"] == filled["exit_ts"] - filled["entry_ts"]).all()
    # the trades come in alert-time order and the equity curve is their running sum
    order = np.argsort(w.alert_ts_ms[w.ok], kind="stable")
    assert list(tr["alert_id"]) == list(w.alert_id[w.ok][order])
    assert bt.equity["equity"].iloc[-1] == pytest.approx(filled["ret"].sum())
    assert bt.equity["drawdown"].max() == pytest.approx(s["max_drawdown"])
    # per-caller rows add up
    pc = bt.per_caller.set_index("caller")
    assert pc["n_trades"].sum() == s["n_trades"] and pc["sum_ret"].sum() == pytest.approx(s["sum_ret"])
    # unlimited capital takes every filled trade: pnl = stake * sum of returns
    ps = bt.portfolio.summary
    assert ps["n_taken"] == s["n_trades"] and ps["final_equity"] - 1e9 == pytest.approx(
        filled["ret"].sum(), abs=1e-5
    )
    with pytest.raises(ValueError, match="needs a Strategy"):
        backtest(w, StrategyGrid(tp=[2, 3]))  # type: ignore[arg-type]
