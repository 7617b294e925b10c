"""Drivers over the kernels: full simulation, the optimizer's fast returns, backtests and grids.

Every entry point runs the same two kernels: plain TP/SL rows go through the first-passage path
(:mod:`alertlab.engine.nb.tpsl`), everything else through the bar simulator
(:mod:`alertlab.engine.nb.kernel`); both give identical results on plain rows. Work is split over
threads by alert chunks (the kernels release the GIL); set ``ALERTLAB_THREADS`` to override the
thread count (default: CPU count).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alertlab.engine.enums import EXIT_REASONS, NO_FILL, NO_TRADE, policy_code
from alertlab.engine.nb.kernel import general_kernel
from alertlab.engine.nb.tpsl import tpsl_kernel
from alertlab.engine.params import (
    C_FEE,
    C_LEV,
    C_NLEV,
    C_SL,
    C_SLIP,
    GRID_FIELDS,
    Strategy,
    StrategyGrid,
    encode_params,
    plain_tpsl_rows,
    validate_params,
)
from alertlab.engine.portfolio import PortfolioConfig, PortfolioResult, run_portfolio
from alertlab.engine.summary import mean_lower_bound, summarize_columns
from alertlab.windows.mapped import bars_per_pass, is_mapped, pass_groups, release
from alertlab.windows.model import TRUNCATED, Windows, time_order

TRADE_COLUMNS = (
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
)
DEFAULT_MAX_CELLS = 2_000_000  # (param × alert) cells a grid chunk may hold (~60 MB of outputs)

_LIGHT = ("ret", "ret_p", "ret_o", "code", "amb")
_FULL = ("ret_g", "entry_ts", "entry_px", "exit_ts", "exit_px", "n_fills", "peak_mult")
_DTYPES = {
    "ret": np.float64,
    "ret_p": np.float64,
    "ret_o": np.float64,
    "code": np.int8,
    "amb": np.bool_,
    "ret_g": np.float64,
    "entry_ts": np.int64,
    "entry_px": np.float64,
    "exit_ts": np.int64,
    "exit_px": np.float64,
    "n_fills": np.int32,
    "peak_mult": np.float64,
}


def n_threads() -> int:
    """Worker threads for the kernels (``ALERTLAB_THREADS`` or the CPU count)."""
    env = os.environ.get("ALERTLAB_THREADS")
    if env:
        return max(1, int(env))
    return max(1, os.cpu_count() or 1)


@dataclass
class TradeArrays:
    """Per-(param, alert) outputs, arrays shaped ``(n_params, n_alerts)``.

    ``ret`` / ``ret_gross`` / ``ret_pessimistic`` / ``ret_optimistic``: NaN when there is no trade
    (``exit_reason`` −1 = no window, ``NO_FILL`` = no_fill). ``exit_reason`` int8 codes index
    ``EXIT_REASONS``. Times are epoch seconds (0 = none), ``hold_s = exit_ts − entry_ts``.
    ``alert_idx``: the alerts (indices into the Windows) of the columns.
    """

    alert_idx: np.ndarray
    ret: np.ndarray
    ret_gross: np.ndarray
    ret_pessimistic: np.ndarray
    ret_optimistic: np.ndarray
    exit_reason: np.ndarray
    ambiguous: np.ndarray
    entry_ts: np.ndarray
    entry_price: np.ndarray
    exit_ts: np.ndarray
    exit_price: np.ndarray
    n_fills: np.ndarray
    peak_mult: np.ndarray
    hold_s: np.ndarray


_DERIVED: dict[int, dict[str, object]] = {}


def _derived(w: Windows, fill_on_zero_volume: bool) -> tuple[np.ndarray | None, ...]:
    """Per-Windows arrays the kernels need besides OHLC, computed once per Windows object.

    ``tr``: uint8 per bar, 0 for a no-trade bar (volume 0 and open = high = low = close); None when
    every bar traded or with ``fill_on_zero_volume``. ``dur``: int64 bar durations
    (``Windows.dur``), None when every bar lasts ``interval_s``. ``trunc``: uint8 per window, 1 =
    status TRUNCATED (empty when there is none). None compiles the kernels without the test or the
    load (see ``nb.kernel.traded`` / ``bar_end``).
    """
    key = id(w)
    memo = _DERIVED.get(key)
    if memo is None:
        memo = _DERIVED[key] = {}
        weakref.finalize(w, _DERIVED.pop, key, None)
    if "tr" not in memo:
        o, h, lo, c, v = w.open, w.high, w.low, w.close, w.volume
        nb = int(np.asarray(o).shape[0])
        traded = np.empty(nb, dtype=np.uint8)
        step = bars_per_pass() if is_mapped(o) else max(nb, 1)
        for b0 in range(0, nb, step):  # mapped windows: in budget-sized runs of bars, pages released
            sl = slice(b0, b0 + step)
            traded[sl] = ~(
                (np.asarray(v[sl]) == 0) & (o[sl] == h[sl]) & (h[sl] == lo[sl]) & (lo[sl] == c[sl])
            )
            if step < nb:
                w.release_pages()
        memo["tr"] = None if bool(traded.all()) else traded
        d = getattr(w, "dur", None)
        uniform = d is None or len(d) == 0 or bool((np.asarray(d) == int(w.interval_s)).all())
        memo["dur"] = None if uniform else np.ascontiguousarray(d, dtype=np.int64)
        st = np.asarray(w.status)
        memo["trunc"] = (
            (st == TRUNCATED).astype(np.uint8) if np.any(st == TRUNCATED) else np.empty(0, np.uint8)
        )
    tr: np.ndarray | None = None if fill_on_zero_volume else memo["tr"]  # type: ignore[assignment]
    dur: np.ndarray | None = memo["dur"]  # type: ignore[assignment]
    trunc: np.ndarray = memo["trunc"]  # type: ignore[assignment]
    return tr, dur, trunc


def _bars(w: Windows, fill_on_zero_volume: bool = False) -> tuple[np.ndarray | None, ...]:
    """The kernels' bar arguments: offsets, ts, OHLC, traded flags, durations, truncated flags."""
    f = np.ascontiguousarray
    return (
        f(w.offsets, dtype=np.int64),
        f(w.ts, dtype=np.int64),
        f(w.open, dtype=np.float64),
        f(w.high, dtype=np.float64),
        f(w.low, dtype=np.float64),
        f(w.close, dtype=np.float64),
        *_derived(w, fill_on_zero_volume),
    )


def _alert_idx(w: Windows, alert_idx: np.ndarray | None) -> np.ndarray:
    if alert_idx is None:
        return np.arange(w.n, dtype=np.int64)
    idx = np.ascontiguousarray(alert_idx, dtype=np.int64)
    if idx.ndim != 1:
        raise ValueError("alert_idx must be 1-D")
    if idx.size and (idx.min() < 0 or idx.max() >= w.n):
        raise ValueError(f"alert_idx out of range [0, {w.n})")
    return idx


def _alloc(n_alerts: int, n_params: int, full: bool) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {k: np.empty((n_alerts, n_params), dtype=_DTYPES[k]) for k in _LIGHT}
    for k in _FULL:
        shape = (n_alerts, n_params) if full else (0, 0)
        out[k] = np.empty(shape, dtype=_DTYPES[k])
    return out


def _chunks(bars, alert_idx: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split alert positions into ≤ ``parts`` ranges of similar bar counts."""
    n = alert_idx.shape[0]
    if parts <= 1 or n < 2 * parts:
        return [(0, n)]
    offsets = bars[0]
    work = np.cumsum(offsets[alert_idx + 1] - offsets[alert_idx] + 1)
    cuts = np.searchsorted(work, work[-1] * np.arange(1, parts) / parts)
    edges = np.unique(np.concatenate([[0], cuts, [n]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _tpsl_args(params: np.ndarray) -> tuple[np.ndarray, ...]:
    tp = np.where(params[:, C_NLEV] == 1, params[:, C_LEV], np.nan)
    sl = params[:, C_SL]
    tp_u = np.unique(tp[~np.isnan(tp)])
    sl_u = np.unique(sl[~np.isnan(sl)])
    p_tp = np.where(np.isnan(tp), -1, np.searchsorted(tp_u, np.nan_to_num(tp))).astype(np.int64)
    p_sl = np.where(np.isnan(sl), -1, np.searchsorted(sl_u, np.nan_to_num(sl))).astype(np.int64)
    return (
        tp_u,
        sl_u,
        p_tp,
        p_sl,
        np.ascontiguousarray(params[:, C_FEE]),
        np.ascontiguousarray(params[:, C_SLIP]),
    )


def _run_kernel(
    bars, interval_s: int, alert_idx: np.ndarray, params: np.ndarray, policy: int, full: bool, plain: bool
) -> dict[str, np.ndarray]:
    """Run one kernel on all alerts (threaded by alert chunks) into fresh (n_alerts, n_params) outputs."""
    out = _alloc(alert_idx.shape[0], params.shape[0], full)
    targs = _tpsl_args(params) if plain else None

    def run(idx: np.ndarray, dst: dict[str, np.ndarray]) -> None:
        def work(rng: tuple[int, int]) -> None:
            a0, a1 = rng
            views = [dst[k][a0:a1] for k in _LIGHT] + [dst[k][a0:a1] if full else dst[k] for k in _FULL]
            if plain:
                assert targs is not None
                tpsl_kernel(*bars, idx[a0:a1], *targs, policy, interval_s, full, *views)  # type: ignore[call-arg]  # numba Dispatcher stub
            else:
                general_kernel(*bars, idx[a0:a1], params, policy, interval_s, full, *views)  # type: ignore[call-arg]  # numba Dispatcher stub

        parts = _chunks(bars, idx, n_threads())
        if len(parts) == 1:
            work(parts[0])
        else:
            with ThreadPoolExecutor(len(parts)) as ex:
                list(ex.map(work, parts))

    # memory-mapped windows (the path cache) beyond the budget: passes of at most bars_per_pass()
    # bars in storage order, the pages released after each (every alert's row is independent)
    groups = pass_groups(bars[0], alert_idx) if is_mapped(bars[1]) else None
    if groups is None:
        run(alert_idx, out)
        return out
    for pos in groups:
        sub = _alloc(pos.shape[0], params.shape[0], full)
        run(np.ascontiguousarray(alert_idx[pos]), sub)
        for k, v in sub.items():
            if v.shape[0]:
                out[k][pos] = v
        release(bars)
    return out


def _simulate_cols(
    w: Windows,
    params: np.ndarray,
    alert_idx: np.ndarray,
    intrabar: str,
    full: bool,
    method: str = "auto",
    fill_on_zero_volume: bool = False,
) -> dict[str, np.ndarray]:
    """(n_alerts, n_params) outputs, routing plain TP/SL rows to the first-passage kernel."""
    policy = policy_code(intrabar)
    if method not in ("auto", "general", "tpsl"):
        raise ValueError(f"method must be auto, general or tpsl; got {method!r}")
    bars = _bars(w, fill_on_zero_volume)
    plain = plain_tpsl_rows(params)
    if method == "tpsl" and not plain.all():
        raise ValueError("method='tpsl' needs plain TP/SL rows only (see plain_tpsl_rows)")
    if method == "general":
        plain[:] = False
    if plain.all() or not plain.any():
        return _run_kernel(bars, w.interval_s, alert_idx, params, policy, full, bool(plain.all()))
    out = _alloc(alert_idx.shape[0], params.shape[0], full)
    for mask, is_plain in ((plain, True), (~plain, False)):
        sub = _run_kernel(
            bars, w.interval_s, alert_idx, np.ascontiguousarray(params[mask]), policy, full, is_plain
        )
        for k, v in sub.items():
            if v.shape[0]:
                out[k][:, mask] = v
    return out


SimulateFn = Callable[..., dict[str, np.ndarray]]
"""``(w, params, alert_idx, intrabar, full, fill_on_zero_volume=...)`` → the ``(alerts, params)`` outputs."""
"""``(w, params, alert_idx, intrabar, full) -> (n_alerts, n_params) output arrays``: the kernel pass
behind backtests, grids and the optimizer; :meth:`alertlab.distributed.tasks.Session.simulate_cols`
computes the identical arrays on a Dask cluster."""


def simulate(
    w: Windows,
    params: np.ndarray,
    alert_idx: np.ndarray | None = None,
    intrabar: str = "pessimistic",
    method: str = "auto",
    fill_on_zero_volume: bool = False,
) -> TradeArrays:
    """Full per-(param, alert) outputs for a parameter matrix (see :func:`encode_params`).

    ``method``: ``auto`` (plain TP/SL rows by first passage, others by the bar simulator),
    ``general`` (bar simulator for all rows) or ``tpsl`` (first passage; plain rows only).
    ``fill_on_zero_volume``: treat no-trade bars as traded (the old behaviour; see the kernel).
    Arrays are ``(n_params, n_alerts)`` (transposed views of the kernels' alert-major outputs).
    """
    params = validate_params(params)
    idx = _alert_idx(w, alert_idx)
    o = _simulate_cols(w, params, idx, intrabar, True, method, fill_on_zero_volume)
    hold = np.where(o["code"] >= 0, o["exit_ts"] - o["entry_ts"], 0)
    hold[o["code"] == NO_FILL] = 0
    return TradeArrays(
        alert_idx=idx,
        ret=o["ret"].T,
        ret_gross=o["ret_g"].T,
        ret_pessimistic=o["ret_p"].T,
        ret_optimistic=o["ret_o"].T,
        exit_reason=o["code"].T,
        ambiguous=o["amb"].T,
        entry_ts=o["entry_ts"].T,
        entry_price=o["entry_px"].T,
        exit_ts=o["exit_ts"].T,
        exit_price=o["exit_px"].T,
        n_fills=o["n_fills"].T,
        peak_mult=o["peak_mult"].T,
        hold_s=hold.T,
    )


def trade_returns(
    w: Windows,
    params: np.ndarray,
    alert_idx: np.ndarray | None = None,
    intrabar: str = "pessimistic",
    fill_on_zero_volume: bool = False,
    simulate: SimulateFn | None = None,
) -> np.ndarray:
    """Net returns ``(n_params, n_alerts)``, NaN for no trade / no fill: the optimizer's fast entry point.

    ``simulate``: a drop-in for the local kernel pass (see :data:`SimulateFn`)."""
    params = validate_params(params)
    idx = _alert_idx(w, alert_idx)
    o = (simulate or _simulate_cols)(w, params, idx, intrabar, False, fill_on_zero_volume=fill_on_zero_volume)
    return np.ascontiguousarray(o["ret"].T)


# ------------------------------------------------------------------------------------------------ backtest


@dataclass
class BacktestResult:
    """A scalar strategy's run: per-trade table, summary, per-caller breakdown, equity curve, portfolio."""

    config: Strategy
    trades: pd.DataFrame
    summary: dict
    per_caller: pd.DataFrame
    equity: pd.DataFrame
    portfolio: PortfolioResult | None = None


def _scalar(d: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in ((k, v[0]) for k, v in d.items())}


def backtest(
    w: Windows,
    cfg: Strategy,
    alert_idx: np.ndarray | None = None,
    portfolio: PortfolioConfig | None = None,
    simulate: SimulateFn | None = None,
) -> BacktestResult:
    """Backtest one (scalar) strategy on the given alerts.

    ``trades``: one row per alert with a window (columns ``TRADE_COLUMNS``, alert-time order);
    ``no_fill`` rows carry ret 0 (and NA times/prices) and are left out of the statistics.
    ``summary``: :func:`summarize` metrics under ``cfg.intrabar`` plus the pessimistic and
    optimistic averages side by side and ``ambiguous_share``; ``per_caller``: the same metrics per
    caller, plus ``avg_ret_lo95`` (lower 95% t bound of the mean, see ``mean_lower_bound``); ``equity``: fixed stake of 1 per alert in alert-time order (columns ``alert_id,
    alert_ts_ms, caller, ret, equity, drawdown``); ``portfolio``: :func:`run_portfolio` when given.
    """
    if not isinstance(cfg, Strategy):
        raise ValueError(f"backtest needs a Strategy, not a {type(cfg).__name__}; use run_grid for grids")
    idx = time_order(w, _alert_idx(w, alert_idx))
    params = encode_params([cfg])
    o = (simulate or _simulate_cols)(
        w, params, idx, cfg.intrabar, True, fill_on_zero_volume=cfg.fill_on_zero_volume
    )
    col = {k: v[:, 0] for k, v in o.items()}
    code = col["code"]
    summary = _scalar(summarize_columns(o["ret"], o["code"], o["amb"], o["ret_p"], o["ret_o"]))
    summary["intrabar"] = cfg.intrabar
    summary["fill_on_zero_volume"] = cfg.fill_on_zero_volume

    has = code != NO_TRADE
    filled = has & (code != NO_FILL)
    ti = idx[has]
    reasons = np.asarray(EXIT_REASONS, dtype=object)
    entry_ts = pd.array(np.where(filled, col["entry_ts"], 0)[has], dtype="Int64")
    exit_ts = pd.array(np.where(filled, col["exit_ts"], 0)[has], dtype="Int64")
    nf = ~filled[has]
    entry_ts[nf] = pd.NA
    exit_ts[nf] = pd.NA
    hold = pd.array((col["exit_ts"] - col["entry_ts"])[has], dtype="Int64")
    hold[nf] = pd.NA
    trades = pd.DataFrame(
        {
            "alert_id": np.asarray(w.alert_id, dtype=object)[ti],
            "caller": np.asarray(w.caller, dtype=object)[ti],
            "chain": np.asarray(w.chain, dtype=object)[ti],
            "token": np.asarray(w.token, dtype=object)[ti],
            "entry_ts": entry_ts,
            "entry_price": col["entry_px"][has],
            "exit_ts": exit_ts,
            "exit_price": col["exit_px"][has],
            "exit_reason": reasons[code[has].astype(np.int64)],
            "n_fills": col["n_fills"][has].astype(np.int64),
            "hold_s": hold,
            "ret": np.where(nf, 0.0, col["ret"][has]),
            "ret_gross": np.where(nf, 0.0, col["ret_g"][has]),
            "peak_mult": col["peak_mult"][has],
            "ambiguous": col["amb"][has],
        },
        columns=list(TRADE_COLUMNS),
    )

    callers = np.asarray(w.caller, dtype=object)[idx].astype(str)
    rows = []
    for c in sorted(set(callers)):
        m = callers == c
        s = _scalar(summarize_columns(o["ret"][m], o["code"][m], o["amb"][m], o["ret_p"][m], o["ret_o"][m]))
        rows.append({"caller": c, **s})
    per_caller = pd.DataFrame(rows)
    if len(per_caller):
        per_caller["avg_ret_lo95"] = mean_lower_bound(
            per_caller["avg_ret"], per_caller["std_ret"], per_caller["n_trades"]
        )

    r0 = np.nan_to_num(col["ret"])
    eq = np.cumsum(r0)
    peak = np.maximum.accumulate(np.concatenate([[0.0], eq]))[1:]
    equity = pd.DataFrame(
        {
            "alert_id": np.asarray(w.alert_id, dtype=object)[idx],
            "alert_ts_ms": np.asarray(w.alert_ts_ms, dtype=np.int64)[idx],
            "caller": np.asarray(w.caller, dtype=object)[idx],
            "ret": r0,
            "equity": eq,
            "drawdown": peak - eq,
        }
    )
    port = run_portfolio(trades, portfolio) if portfolio is not None else None
    return BacktestResult(
        config=cfg, trades=trades, summary=summary, per_caller=per_caller, equity=equity, portfolio=port
    )


# ------------------------------------------------------------------------------------------------ grid


def _param_frame(cfg: StrategyGrid, combos: list[Strategy]) -> pd.DataFrame:
    """Parameter columns under their option names for the options this grid uses."""
    fields = []
    for f in GRID_FIELDS:
        v = getattr(cfg, f)
        if v is None:
            continue
        if f == "breakeven_offset" and cfg.breakeven_at is None:
            continue
        if f == "trail_activation" and cfg.trail is None:
            continue
        fields.append(f)
    return pd.DataFrame({f: [getattr(c, f) for c in combos] for f in fields})


def run_grid(
    w: Windows,
    cfg: StrategyGrid,
    alert_idx: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
    simulate: SimulateFn | None = None,
) -> pd.DataFrame:
    """Evaluate every strategy of a grid: one summary row per combination.

    Columns: ``combo`` (index in :meth:`StrategyGrid.expand` order), the option columns, then the
    :func:`summarize` metrics under ``cfg.intrabar`` (incl. ``avg_ret_pessimistic`` /
    ``avg_ret_optimistic``, ``ambiguous_share``, ``max_drawdown`` in alert-time order). Memory is
    bounded: parameter chunks of ``max_cells // n_alerts`` rows are simulated and summarised in
    turn. ``progress(k)`` is called after each chunk with the number of combinations just finished.
    ``simulate``: a drop-in for the local kernel pass (e.g. a Dask cluster, :data:`SimulateFn`).
    """
    if not isinstance(cfg, StrategyGrid):
        raise ValueError(f"run_grid needs a StrategyGrid, not a {type(cfg).__name__}; use backtest")
    combos = cfg.expand()
    params = encode_params(combos)
    idx = time_order(w, _alert_idx(w, alert_idx))
    n_alerts = max(1, idx.shape[0])
    chunk = max(1, int(max_cells) // n_alerts)
    plain = plain_tpsl_rows(params)
    metrics: dict[str, np.ndarray] = {}
    # plain rows first, then the rest, so each chunk runs a single kernel
    order = np.concatenate([np.flatnonzero(plain), np.flatnonzero(~plain)])
    for c0 in range(0, len(order), chunk):
        rows = order[c0 : c0 + chunk]
        o = (simulate or _simulate_cols)(
            w,
            np.ascontiguousarray(params[rows]),
            idx,
            cfg.intrabar,
            False,
            fill_on_zero_volume=cfg.fill_on_zero_volume,
        )
        s = summarize_columns(o["ret"], o["code"], o["amb"], o["ret_p"], o["ret_o"])
        for k, v in s.items():
            if k not in metrics:
                metrics[k] = np.empty(len(combos), dtype=v.dtype)
            metrics[k][rows] = v
        if progress is not None:
            progress(len(rows))
    out = _param_frame(cfg, combos)
    out.insert(0, "combo", np.arange(len(combos)))
    for k, v in metrics.items():
        out[k] = v
    out["intrabar"] = cfg.intrabar
    out["fill_on_zero_volume"] = cfg.fill_on_zero_volume
    return out
