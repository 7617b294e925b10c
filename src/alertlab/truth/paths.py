"""Price multiple paths after the call: the input of the report's fan charts.

Definition (one place): for alert ``i`` and an offset ``h`` hours, ``t = entry_ts + h·3600``; the
multiple is the close of the last bar of the window that has *ended* by ``t`` (bar end = bar ts +
the bar's own duration, ``w.dur``: windows mix 5-minute and hourly bars) divided by the entry price (the entry bar's open, as every baseline metric).
Before the first bar has ended the multiple is 1 (the entry price is the only traded price known).
Missing bars inside the window are quiet time at the last traded price (the same convention as
``ret_end``). When the windows carry a per-alert ``data_end_ts`` (the token's data ends inside the
horizon), offsets after it are NaN: the outcome there is unknown, not flat. Offsets past the
horizon are NaN. Only usable alerts (:meth:`Windows.usable`: ok, or truncated with coverage at
least ``min_coverage``) get values; others are NaN rows.
"""

from __future__ import annotations

import numpy as np

from alertlab.windows.model import DEFAULT_MIN_COVERAGE, TRUNCATED, Windows

FAN_QUANTILES: tuple[float, ...] = (5.0, 25.0, 50.0, 75.0, 95.0)


def multiples_at(
    w: Windows, alert_idx: np.ndarray, hours: np.ndarray, min_coverage: float = DEFAULT_MIN_COVERAGE
) -> np.ndarray:
    """``(len(alert_idx), len(hours))`` price multiples at ``entry_ts + hours`` (see module docs)."""
    idx = np.asarray(alert_idx, dtype=np.int64)
    hs = np.asarray(hours, dtype=np.float64)
    out = np.full((idx.size, hs.size), np.nan)
    use = w.usable(min_coverage)
    end_ts = w.data_end_ts
    dur = w.dur if w.dur is not None else np.full(len(w.ts), w.interval_s, np.int64)
    off = np.asarray(w.offsets, dtype=np.int64)
    for r, i in enumerate(idx):
        if not use[i]:
            continue
        p = float(w.entry_price[i])
        if not (np.isfinite(p) and p > 0):
            continue
        s, e = off[i], off[i + 1]
        t = int(w.entry_ts[i]) + hs * 3600.0
        ends = np.asarray(w.ts[s:e], dtype=np.float64) + np.asarray(dur[s:e], dtype=np.float64)
        k = np.searchsorted(ends, t, side="right") - 1  # last bar ended by t
        closes = np.asarray(w.close[s:e], dtype=np.float64)
        m = np.where(k >= 0, closes[np.maximum(k, 0)] / p if e > s else 1.0, 1.0)
        m = np.where((hs < 0) | (hs * 3600.0 > w.horizon_s), np.nan, m)
        if end_ts is not None and int(w.status[i]) == TRUNCATED:
            m = np.where(t > float(end_ts[i]), np.nan, m)
        out[r] = m
    return out


def fan_quantiles(multiples: np.ndarray, quantiles: tuple[float, ...] = FAN_QUANTILES) -> np.ndarray:
    """Per-offset percentiles over alerts (rows), NaNs ignored: ``(len(quantiles), n_offsets)``.

    Linear interpolation (numpy's default, as the leaderboard's quantiles); NaN where no alert
    has a value (the number of alerts behind each offset is ``(~isnan(multiples)).sum(0)``).
    """
    m = np.asarray(multiples, dtype=np.float64)
    out = np.full((len(quantiles), m.shape[1]), np.nan)
    have = (~np.isnan(m)).any(axis=0)
    if have.any():
        out[:, have] = np.nanpercentile(m[:, have], quantiles, axis=0)
    return out
