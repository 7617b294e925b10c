"""Grids: first-passage TP/SL path == bar simulator, grid rows == backtests, chunking, entry points."""

from __future__ import annotations

import numpy as np
import pytest

from alertlab.engine import (
    EXIT_REASONS,
    Strategy,
    StrategyGrid,
    backtest,
    encode_params,
    plain_tpsl_rows,
    run_grid,
    simulate,
    summarize,
    trade_returns,
)

from engine_reference import lattice_windows
from windowgen import random_windows

FIELDS = (
    "ret",
    "ret_gross",
    "ret_pessimistic",
    "ret_optimistic",
    "exit_reason",
    "ambiguous",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "n_fills",
    "peak_mult",
    "hold_s",
)


@pytest.fixture(scope="module")
def windows():
    return random_windows(np.random.default_rng(17), 150, horizon_s=4 * 3600, p_rug=0.01, p_gap=0.05)


@pytest.fixture(scope="module")
def lattice():
    return lattice_windows(np.random.default_rng(18), 200, p_dead_start=0.15, p_truncated=0.2, p_mixed=0.3)


@pytest.fixture(scope="module")
def mixed():
    """5-minute then hourly bars, no-trade runs (start, middle, end, dead tails), truncated windows."""
    return random_windows(
        np.random.default_rng(19),
        120,
        interval_s=300,
        horizon_s=24 * 3600,
        p_rug=0.01,
        p_gap=0.05,
        p_flat=0.05,
        flat_len=(2, 30),
        p_mixed=0.6,
        p_flat_start=0.2,
        p_flat_end=0.2,
        p_flat_tail=0.15,
        p_truncated=0.3,
        mark_truncated=True,
    )


@pytest.mark.parametrize("fzv", [False, True])
@pytest.mark.parametrize("policy", ["pessimistic", "optimistic", "ohlc"])
def test_first_passage_equals_bar_simulator(policy, fzv, windows, lattice, mixed):
    cfg = StrategyGrid(tp=[1.5, 2, 3, 4, 5, 10], sl=[0.5, 0.7, 0.75, 0.875, 0.9], fee_bps=[0, 30])
    extra = StrategyGrid(tp=[2, 3])  # no stop
    extra2 = StrategyGrid(sl=[0.5, 0.75])  # no target
    params = encode_params(cfg.expand() + extra.expand() + extra2.expand() + [Strategy()])
    assert plain_tpsl_rows(params).all()
    for w in (windows, lattice, mixed):
        fast = simulate(w, params, intrabar=policy, method="tpsl", fill_on_zero_volume=fzv)
        slow = simulate(w, params, intrabar=policy, method="general", fill_on_zero_volume=fzv)
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(fast, f), getattr(slow, f), err_msg=f)
        if w is mixed:  # truncated windows end as end_of_data on both paths
            assert (fast.exit_reason == EXIT_REASONS.index("end_of_data")).any()
    amb = simulate(lattice, params, intrabar=policy, method="tpsl", fill_on_zero_volume=fzv).ambiguous
    assert amb.any()  # the lattice exercises the same-bar case


def test_fill_on_zero_volume_reaches_grids_and_returns(mixed):
    """The setting changes results on windows with no-trade bars, through every entry point."""
    cfg = StrategyGrid(tp=[2, 3], sl=0.7, time_stop_hours=[1, 6])
    old = cfg.model_copy(update={"fill_on_zero_volume": True})
    params = encode_params(cfg.expand())
    new_r, old_r = trade_returns(mixed, params), trade_returns(mixed, params, fill_on_zero_volume=True)
    assert not np.array_equal(new_r, old_r, equal_nan=True)
    g_new, g_old = run_grid(mixed, cfg), run_grid(mixed, old)
    np.testing.assert_allclose(g_new["avg_ret"], summarize(new_r)["avg_ret"], rtol=1e-12)
    np.testing.assert_allclose(g_old["avg_ret"], summarize(old_r)["avg_ret"], rtol=1e-12)
    assert (~g_new["fill_on_zero_volume"]).all() and g_old["fill_on_zero_volume"].all()
    bt = backtest(mixed, old.expand()[0])
    assert bt.summary["fill_on_zero_volume"] is True
    np.testing.assert_allclose(bt.summary["avg_ret"], g_old["avg_ret"].iloc[0], rtol=1e-12)


def test_grid_rows_equal_backtests(windows):
    cfg = StrategyGrid(tp=[2, 4], sl=[0.6, 0.8], time_stop_hours=[1, 3], intrabar="optimistic")
    grid = run_grid(windows, cfg)
    assert len(grid) == 8 and list(grid.columns[:4]) == ["combo", "tp", "sl", "time_stop_hours"]
    for row, c in zip(grid.itertuples(), cfg.expand(), strict=True):
        assert (row.tp, row.sl, row.time_stop_hours) == (c.tp, c.sl, c.time_stop_hours)
        s = backtest(windows, c).summary
        for k in (
            "n_trades",
            "avg_ret",
            "median_ret",
            "profit_factor",
            "max_drawdown",
            "exit_time",
            "exit_sl",
            "avg_ret_pessimistic",
            "avg_ret_optimistic",
            "ambiguous_share",
        ):
            assert getattr(row, k) == pytest.approx(s[k], nan_ok=True), k


def test_grid_mixed_paths_chunking_and_progress(windows):
    cfg = StrategyGrid(tp=[1.5, 3], sl=[0.5, 0.8], entry_delay_bars=[0, 2], fee_bps=[0, 30])
    full = run_grid(windows, cfg)
    seen: list[int] = []
    small = run_grid(windows, cfg, progress=seen.append, max_cells=3 * windows.n)
    assert sum(seen) == 16 and len(seen) == 6  # chunks of 3 combos
    assert full.drop(columns="intrabar").equals(small.drop(columns="intrabar"))
    params = encode_params(cfg.expand())
    r = trade_returns(windows, params)
    s = summarize(r)
    np.testing.assert_allclose(full["avg_ret"], s["avg_ret"], rtol=1e-12)
    np.testing.assert_allclose(full["median_ret"], s["median_ret"], rtol=1e-12)


def test_trade_returns_matches_simulate_and_subsets(windows):
    cfg = StrategyGrid(
        tp_ladder=["2:0.5,4:0.5", "3:1"],
        sl=[0.5, 0.7],
        trail=[0.2, 0.4],
        trail_activation=1.5,
        dip=[0.05],
        dip_window_min=20,
    )
    params = encode_params(cfg.expand())
    r = trade_returns(windows, params, intrabar="ohlc")
    ta = simulate(windows, params, intrabar="ohlc")
    np.testing.assert_array_equal(r, ta.ret)
    assert r.flags.c_contiguous and r.shape == (len(params), windows.n)
    idx = np.array([5, 3, 3, 100, 0])
    np.testing.assert_array_equal(trade_returns(windows, params, idx, "ohlc"), r[:, idx])
    with pytest.raises(ValueError, match="alert_idx"):
        trade_returns(windows, params, np.array([windows.n]))
    with pytest.raises(ValueError, match="intrabar"):
        trade_returns(windows, params, intrabar="best")
    with pytest.raises(ValueError, match="plain"):
        simulate(windows, params, method="tpsl")


def test_thread_split_is_invisible(windows, monkeypatch):
    params = encode_params(StrategyGrid(tp=[2, 3], trail=[0.3], sl=0.5).expand() + [Strategy(tp=2)])
    monkeypatch.setenv("ALERTLAB_THREADS", "1")
    one = simulate(windows, params)
    monkeypatch.setenv("ALERTLAB_THREADS", "3")
    three = simulate(windows, params)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(one, f), getattr(three, f))


def test_grid_of_ladders_and_param_columns(windows):
    cfg = StrategyGrid(tp_ladder=["2:0.5,4:0.5", "3:1"], breakeven_at=[1.5, 2], breakeven_offset=0.1)
    g = run_grid(windows, cfg)
    assert list(g["tp_ladder"]) == ["2:0.5,4:0.5", "2:0.5,4:0.5", "3:1", "3:1"]
    assert list(g["breakeven_at"]) == [1.5, 2, 1.5, 2] and (g["breakeven_offset"] == 0.1).all()
    assert "trail_activation" not in g.columns and "avg_ret" in g.columns
