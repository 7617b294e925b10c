"""Engine benchmarks (run through ``benchmarks/run.py``; each phase in its own process).

* ``engine_tpsl``: 10,000 alerts × 1,000 (tp, sl) combinations through ``run_grid`` (first-passage
  path), one thread and all threads: alert-combinations per second.
* ``engine_path``: 100 trailing × breakeven combinations × all alerts through the bar simulator:
  bar-steps per second, counted as combinations × window bars (every bar of every window is a
  step a bar scan would take; positions that exit early visit fewer, so this is the work
  covered, not the instructions executed).
* ``engine_vectorbt``: the same TP/SL grid in vectorbt (``pip install -e '.[bench]'``) on a subset
  it can hold as a dense (time × alert·combination) matrix, and alertlab on the very same subset,
  timed in the same process: the ratio of alert-combinations per second.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np


def _windows(home: str):
    from alertlab.store import resolve_home
    from alertlab.windows.mapped import bar_ranges, bars_per_pass
    from alertlab.windows.select import load_windows

    w, _ = load_windows(resolve_home(Path(home)))
    # page in, range by range under the memory budget: time the engine, not the disk (the pages
    # stay in the OS page cache; the process keeps only what a pass holds)
    for b0, b1 in bar_ranges(np.diff(w.offsets), bars_per_pass()):
        s, e = int(w.offsets[b0]), int(w.offsets[b1])
        for k in ("ts", "dur", "open", "high", "low", "close", "volume"):
            np.asarray(getattr(w, k))[s:e].sum()
        w.release_pages()
    return w


def _grid(n_tp: int, n_sl: int):
    from alertlab.engine import StrategyGrid

    tps = np.round(np.geomspace(1.2, 20, n_tp), 4).tolist()
    sls = np.round(np.linspace(0.2, 0.95, n_sl), 4).tolist()
    return StrategyGrid(tp=tps, sl=sls)


def _timed(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _threads(n: int) -> None:
    os.environ["ALERTLAB_THREADS"] = str(n)


def engine_tpsl(a) -> dict:
    from alertlab.engine import run_grid

    w = _windows(a.home)
    cfg = _grid(40, 25)
    use = w.usable_idx()  # what backtests and the optimizer simulate: ok + truncated >= min coverage
    run_grid(w, _grid(2, 2), alert_idx=use)  # compile
    out = {"n_alerts": int(use.size), "n_combinations": cfg.n_combinations, "n_bars": int(w.offsets[-1])}
    for threads in (1, os.cpu_count() or 1):
        _threads(threads)
        s = _timed(lambda: run_grid(w, cfg, alert_idx=use), repeat=1)
        out[f"seconds_{threads}t"] = s
        out[f"alert_combos_per_s_{threads}t"] = use.size * cfg.n_combinations / s
    return out


def engine_path(a) -> dict:
    from alertlab.engine import StrategyGrid, run_grid

    w = _windows(a.home)
    cfg = StrategyGrid(
        trail=np.round(np.linspace(0.1, 0.55, 10), 3).tolist(),
        breakeven_at=np.round(np.linspace(1.3, 4.0, 10), 3).tolist(),
        sl=0.5,
        tp=10.0,
    )
    run_grid(w, StrategyGrid(trail=[0.2, 0.3], breakeven_at=[1.5, 2.0], sl=0.5, tp=10.0))
    n_bars = int(w.offsets[-1])
    out = {"n_alerts": int(w.usable_idx().size), "n_combinations": cfg.n_combinations, "n_bars": n_bars}
    visited = _visited_bar_steps(w, cfg)
    out["visited_bar_steps"] = visited
    for threads in (1, os.cpu_count() or 1):
        _threads(threads)
        s = _timed(lambda: run_grid(w, cfg), repeat=1)
        out[f"seconds_{threads}t"] = s
        out[f"bar_steps_per_s_{threads}t"] = cfg.n_combinations * n_bars / s
        out[f"visited_bar_steps_per_s_{threads}t"] = visited / s
    return out


def _visited_bar_steps(w, cfg) -> int:
    """Bars actually stepped through: from each position's entry bar to its exit bar, inclusive."""
    from alertlab.engine import encode_params, simulate

    tr = simulate(w, encode_params(cfg.expand()))
    pos = tr.alert_idx
    counts = np.diff(w.offsets)
    owner = np.repeat(np.arange(w.n), counts)
    key = owner.astype(np.int64) * (1 << 34) + np.asarray(w.ts)
    filled = tr.exit_reason >= 0
    base = (pos.astype(np.int64) * (1 << 34))[None, :]
    i_in = np.searchsorted(key, base + tr.entry_ts) - w.offsets[pos][None, :]
    i_out = np.searchsorted(key, base + tr.exit_ts) - w.offsets[pos][None, :]
    return int(np.where(filled, i_out - i_in + 1, 0).sum())


def engine_vectorbt(a) -> dict:
    try:
        import vectorbt as vbt
    except ImportError:
        return {"skipped": "vectorbt not installed: python -m pip install -e '.[bench]'"}
    import pandas as pd

    from alertlab.engine import StrategyGrid, run_grid

    w = _windows(a.home)
    n_sub, n_tp, n_sl = 200, 10, 10  # 20,000 dense columns: ~8 GB peak in vectorbt
    ok = np.flatnonzero(w.ok)[:n_sub]
    tps = np.round(np.geomspace(1.5, 10, n_tp), 4)
    sls = np.round(np.linspace(0.3, 0.9, n_sl), 4)
    T = int(np.max(np.diff(w.offsets)[ok]))
    dense = {k: np.full((T, len(ok)), np.nan) for k in ("open", "high", "low", "close")}
    for j, i in enumerate(ok):
        s, e = int(w.offsets[i]), int(w.offsets[i + 1])
        for k in dense:
            dense[k][: e - s, j] = getattr(w, k)[s:e]
    combos = [(tp, sl) for tp in tps for sl in sls]
    n_cols = len(ok) * len(combos)
    tile = {k: pd.DataFrame(np.tile(v, (1, len(combos)))) for k, v in dense.items()}
    tp_stop = np.repeat([tp - 1 for tp, _ in combos], len(ok))
    sl_stop = np.repeat([1 - sl for _, sl in combos], len(ok))
    entries = pd.DataFrame(np.zeros((T, n_cols), bool))
    entries.iloc[0] = True

    def run_vbt():
        pf = vbt.Portfolio.from_signals(
            tile["close"],
            entries,
            open=tile["open"],
            high=tile["high"],
            low=tile["low"],
            sl_stop=sl_stop,
            tp_stop=tp_stop,
            fees=0.003,
            slippage=0.005,
            accumulate=False,
        )
        return pf.total_return()

    run_vbt_small = run_vbt  # first call compiles vectorbt's numba functions
    run_vbt_small()
    t_vbt = _timed(run_vbt, repeat=1)
    cfg = StrategyGrid(tp=tps.tolist(), sl=sls.tolist())
    run_grid(w, cfg, alert_idx=ok)
    _threads(1)
    t_al = _timed(lambda: run_grid(w, cfg, alert_idx=ok), repeat=3)
    rate_vbt, rate_al = n_cols / t_vbt, n_cols / t_al
    return {
        "subset_alerts": len(ok),
        "n_combinations": len(combos),
        "dense_rows": T,
        "vectorbt_s": t_vbt,
        "alertlab_s_1t": t_al,
        "vectorbt_alert_combos_per_s": rate_vbt,
        "alertlab_alert_combos_per_s_1t": rate_al,
        "ratio": rate_al / rate_vbt,
        "vectorbt_version": vbt.__version__,
    }


PHASES = {"engine_tpsl": engine_tpsl, "engine_path": engine_path, "engine_vectorbt": engine_vectorbt}
