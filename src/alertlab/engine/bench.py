"""Throughput measurement of the engine (a script, not a test): ``python -m alertlab.engine.bench``.

Synthetic market: ``--alerts`` windows of ``--bars`` one-minute bars (log random walk with pumps
and dumps). Measures (1) a plain TP/SL grid of ``--tpsl`` combinations through the first-passage
path, in alert-combinations per second, and (2) ``--path`` trailing / breakeven combinations
through the bar simulator, in bar-steps per second (bars actually processed, counted from the
exit bars) per thread. Set ``ALERTLAB_THREADS`` to pin the thread count.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from alertlab.engine import StrategyConfig, encode_params, run_grid, simulate, trade_returns
from alertlab.engine.backtest import n_threads
from alertlab.windows import OK, Windows


def synthetic_windows(n_alerts: int, n_bars: int, seed: int = 0, interval_s: int = 60) -> Windows:
    """``n_alerts`` full windows of ``n_bars`` bars each (vectorised, ~n_alerts·n_bars·48 bytes)."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.004, 0.03, (n_alerts, 1))
    steps = rng.standard_normal((n_alerts, n_bars)) * sigma - sigma**2 / 2
    pump_at = rng.integers(0, n_bars, n_alerts)
    pump = np.where(rng.random(n_alerts) < 0.5, np.log(rng.uniform(1.2, 20.0, n_alerts)), 0.0)
    rows = np.arange(n_alerts)
    steps[rows, pump_at] += pump
    dump_at = np.minimum(pump_at + rng.integers(1, 200, n_alerts), n_bars - 1)
    steps[rows, dump_at] -= pump * rng.uniform(0.5, 1.5, n_alerts)
    close = np.exp(np.cumsum(steps, axis=1)) * np.exp(rng.uniform(np.log(1e-8), np.log(10.0), (n_alerts, 1)))
    open_ = np.empty_like(close)
    open_[:, 0] = close[:, 0] / np.exp(steps[:, 0])
    open_[:, 1:] = close[:, :-1]
    wick = np.abs(rng.standard_normal((2, n_alerts, n_bars))) * sigma
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    t0 = 1_700_000_000 // interval_s * interval_s + rng.integers(0, 30 * 1440, n_alerts) * interval_s
    ts = t0[:, None] + np.arange(n_bars)[None, :] * interval_s
    ids = np.array([f"a{i:07d}" for i in range(n_alerts)], dtype=object)
    return Windows(
        interval_s=interval_s,
        horizon_s=n_bars * interval_s,
        alert_id=ids,
        caller=np.array([f"c{i % 50}" for i in range(n_alerts)], dtype=object),
        chain=np.full(n_alerts, "solana", dtype=object),
        token=ids.copy(),
        alert_ts_ms=t0 * 1000,
        is_first_call=np.ones(n_alerts, dtype=bool),
        status=np.full(n_alerts, OK, dtype=np.int8),
        entry_ts=t0,
        entry_price=open_[:, 0].copy(),
        offsets=np.arange(n_alerts + 1, dtype=np.int64) * n_bars,
        ts=ts.ravel(),
        open=open_.ravel(),
        high=high.ravel(),
        low=low.ravel(),
        close=close.ravel(),
        volume=np.ones(n_alerts * n_bars),
    )


def _bar_steps(w: Windows, ta) -> int:
    """Bars processed: from the entry bar through the exit bar, per (param, alert)."""
    n_bars = int(w.n_bars[0])
    first = w.ts[w.offsets[:-1]]
    k = (ta.exit_ts - first[None, :] + w.interval_s - 1) // w.interval_s  # exit bar index (+1 when intrabar)
    return int(np.clip(k, 1, n_bars).sum())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--bars", type=int, default=2_880)
    ap.add_argument("--tpsl", type=int, default=1_000, help="TP/SL combinations (40 TP × N/40 SL)")
    ap.add_argument("--path", type=int, default=100, help="trailing/breakeven combinations (10 × N/10)")
    a = ap.parse_args(argv)
    t = time.perf_counter()
    w = synthetic_windows(a.alerts, a.bars)
    print(
        f"windows: {a.alerts} alerts x {a.bars} bars in {time.perf_counter() - t:.1f}s; threads={n_threads()}"
    )

    n_tp = 40
    n_sl = max(1, a.tpsl // n_tp)
    grid = StrategyConfig(
        tp=list(np.round(np.geomspace(1.2, 20, n_tp), 4)), sl=list(np.linspace(0.3, 0.95, n_sl))
    )
    params = encode_params(grid.expand())
    trade_returns(w, params[:2], np.arange(10))  # compile / load
    t = time.perf_counter()
    trade_returns(w, params)
    dt = time.perf_counter() - t
    cells = a.alerts * len(params)
    print(f"tp/sl first passage: {len(params)} combos -> {cells / dt / 1e6:.1f}M alert-combos/s ({dt:.2f}s)")
    t = time.perf_counter()
    run_grid(w, grid)
    dt = time.perf_counter() - t
    print(f"tp/sl run_grid incl. summaries: {cells / dt / 1e6:.1f}M alert-combos/s ({dt:.2f}s)")

    n_be = max(1, a.path // 10)
    path = StrategyConfig(
        trail=list(np.linspace(0.1, 0.6, 10)), breakeven_at=list(np.linspace(1.2, 4.0, n_be)), sl=0.5
    )
    pp = encode_params(path.expand())
    trade_returns(w, pp[:2], np.arange(10))
    t = time.perf_counter()
    trade_returns(w, pp)
    dt = time.perf_counter() - t
    ta = simulate(w, pp)
    steps = _bar_steps(w, ta)
    threads = min(n_threads(), os.cpu_count() or 1)
    print(
        f"trail/breakeven bar simulator: {len(pp)} combos, {steps / 1e6:.0f}M bar-steps in {dt:.2f}s -> "
        f"{steps / dt / 1e6:.0f}M bar-steps/s ({steps / dt / 1e6 / threads:.0f}M per thread); "
        f"{a.alerts * len(pp) / dt / 1e6:.2f}M alert-combos/s"
    )
    hold = StrategyConfig(
        trail=list(np.linspace(0.90, 0.99, 10)), trail_activation=list(np.linspace(50, 95, n_be))
    )
    hp = encode_params(hold.expand())  # stops far away: every trade runs all bars (worst case)
    t = time.perf_counter()
    trade_returns(w, hp)
    dt = time.perf_counter() - t
    steps = _bar_steps(w, simulate(w, hp[:5]))  # nearly all horizon: estimate from a sample
    steps = steps * len(hp) // 5
    print(
        f"full-window worst case: {len(hp)} combos, {steps / 1e6:.0f}M bar-steps in {dt:.2f}s -> "
        f"{steps / dt / 1e6:.0f}M bar-steps/s ({steps / dt / 1e6 / threads:.0f}M per thread)"
    )


if __name__ == "__main__":
    main()
