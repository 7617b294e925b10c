"""One trade, step by step: every fill and the stop / take-profit levels in force on each bar.

:func:`trace_trade` runs the bar simulator's own ``sim_one`` (not a re-implementation) on one alert
with its trace hooks switched on, so what the report draws is what the backtest booked: the fills'
weighted mean price equals the backtest's ``exit_price`` and their count its ``n_fills``. Plain
TP/SL rows, which backtests route to the first-passage kernel, give the same trade (the two
kernels agree bit for bit; see :mod:`alertlab.engine.nb.tpsl`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alertlab.engine.drivers import _bars
from alertlab.engine.enums import EXIT_REASONS, NO_FILL, NO_TRADE, policy_code
from alertlab.engine.nb.kernel import sim_one
from alertlab.engine.params import C_NLEV, encode_params, validate_params
from alertlab.windows.model import TRUNCATED, Windows


def _reason(code: int) -> str:
    return "no_trade" if code == NO_TRADE else EXIT_REASONS[code]


@dataclass(frozen=True)
class TradeTrace:
    """One alert's trade under one scalar strategy.

    ``exit_reason``: the trade's reason (``no_fill`` / ``no_trade`` when there is none);
    ``entry_ts`` / ``entry_price``: the fill (0 / NaN without one); ``fills``: one row per fill in
    order (``ts`` its stamp in epoch s: a bar's open, or its end for an intrabar fill; ``bar``: the
    window bar it happened in; ``price`` before slippage, ``fraction`` of the position, ``reason``);
    ``levels``: per window bar (``ts``) the ``stop`` and the next ``take_profit`` level in force
    while the position was open (NaN before the entry, after the exit, on no-trade bars, or when
    the rule is off).
    """

    alert_index: int
    exit_reason: str
    entry_ts: int
    entry_price: float
    fills: pd.DataFrame
    levels: pd.DataFrame

    @property
    def exit_price(self) -> float:
        """Fraction-weighted mean fill price (the backtest's ``exit_price``)."""
        f = self.fills
        return float((f["price"] * f["fraction"]).sum() / f["fraction"].sum()) if len(f) else float("nan")


def trace_trade(
    w: Windows,
    alert: int | str,
    strategy: Any,
    intrabar: str | None = None,
    fill_on_zero_volume: bool | None = None,
) -> TradeTrace:
    """Trace one alert's trade (``alert``: window index or ``alert_id``) under a scalar ``strategy``.

    ``intrabar`` / ``fill_on_zero_volume`` default to the strategy's own settings.

    >>> tr = trace_trade(windows, "a17", strategy)          # doctest: +SKIP
    >>> tr.fills                                            # doctest: +SKIP
    """
    i = _alert_index(w, alert)
    params = validate_params(encode_params([strategy]))
    prm = np.ascontiguousarray(params[0])
    intrabar = intrabar if intrabar is not None else getattr(strategy, "intrabar", "pessimistic")
    fz = bool(
        fill_on_zero_volume
        if fill_on_zero_volume is not None
        else getattr(strategy, "fill_on_zero_volume", False)
    )
    offsets, ts, op, hi, lo, cl, tr, dur, _trunc = _bars(w, fz)
    assert offsets is not None and ts is not None
    s, e = int(offsets[i]), int(offsets[i + 1])
    bar_ts = np.asarray(ts[s:e], dtype=np.int64)
    levels = np.full((e - s, 2), np.nan)
    empty = pd.DataFrame(
        {"ts": np.empty(0, np.int64), "bar": np.empty(0, np.int64), "price": [], "fraction": [], "reason": []}
    )
    if e <= s:
        return TradeTrace(i, _reason(NO_TRADE), 0, float("nan"), empty, _levels_frame(bar_ts, levels))
    fills = np.full((int(prm[C_NLEV]) + 1, 5), np.nan)
    eod = bool(np.asarray(w.status)[i] == TRUNCATED)
    code, P, ets, _xts, _acc, _wsum, nf, _pk, _amb = sim_one(
        s,
        e,
        ts,
        op,
        hi,
        lo,
        cl,
        tr,
        dur,
        prm,
        policy_code(intrabar),
        int(w.interval_s),
        eod,
        fills,
        levels,
    )
    if code == NO_FILL:
        return TradeTrace(i, _reason(NO_FILL), 0, float("nan"), empty, _levels_frame(bar_ts, levels))
    f = fills[: int(nf)]
    frame = pd.DataFrame(
        {
            "ts": f[:, 0].astype(np.int64),
            "bar": f[:, 4].astype(np.int64),
            "price": f[:, 1],
            "fraction": f[:, 2],
            "reason": [_reason(int(c)) for c in f[:, 3]],
        }
    )
    return TradeTrace(i, _reason(int(code)), int(ets), float(P), frame, _levels_frame(bar_ts, levels))


def _levels_frame(bar_ts: np.ndarray, levels: np.ndarray) -> pd.DataFrame:
    lv = np.where(np.isfinite(levels), levels, np.nan)  # -inf (no stop) / inf (no level left) → NaN
    return pd.DataFrame({"ts": bar_ts, "stop": lv[:, 0], "take_profit": lv[:, 1]})


def _alert_index(w: Windows, alert: int | str) -> int:
    if isinstance(alert, str):
        hits = np.flatnonzero(np.asarray(w.alert_id, dtype=object) == alert)
        if not hits.size:
            raise ValueError(f"unknown alert_id {alert!r}")
        return int(hits[0])
    i = int(alert)
    if not 0 <= i < w.n:
        raise ValueError(f"alert index {i} out of range (0..{w.n - 1})")
    return i
