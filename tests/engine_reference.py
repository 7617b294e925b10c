"""Plain-loop reference of the exit-strategy engine, written from the spec (slow, obviously correct).

One trade at a time, bar by bar, with an explicit list of fills ``(fraction, price, stamp, why)``.
Nothing here imports the engine's kernels; the only shared input is a scalar config as a plain
dict (``StrategyConfig.model_dump()``), whose ladder text is parsed here independently.

Documented engine choices reproduced here (see ``alertlab/engine/kernel.py``):
* dip: the fill bar's low reaching the stop (stop from peak = P) stops the trade at the stop under
  pessimistic and ohlc, not under optimistic; the trade is flagged ambiguous either way. The fill
  bar's high joins the peak only when the fill was at the bar's open.
* a non-positive / non-finite P → no_fill.
* stamps: fills at an open → bar ts; intrabar fills and the horizon close → bar ts + interval.
* peak_mult includes the exit bar's high unless the position was closed at that bar's open.
"""

from __future__ import annotations

import math

import numpy as np

REASONS = ("tp", "sl", "breakeven", "trail", "time", "horizon", "no_fill")


def parse_ladder_text(text: str) -> list[tuple[float, float]]:
    pairs = []
    for part in text.split(","):
        m, w = part.split(":")
        pairs.append((float(m), float(w)))
    return sorted(pairs)


def _levels(cfg: dict) -> tuple[list[list], float]:
    """[[multiple, fraction, filled], ...] ascending, and the riding rest."""
    if cfg.get("tp") is not None:
        pairs = [(float(cfg["tp"]), 1.0)]
    elif cfg.get("tp_ladder") is not None:
        pairs = parse_ladder_text(cfg["tp_ladder"])
    else:
        return [], 1.0
    total = sum(w for _, w in pairs)
    if abs(total - 1.0) <= 1e-9:
        return [[m, w / total, False] for m, w in pairs], 0.0
    return [[m, w, False] for m, w in pairs], 1.0 - total


def reference_trade(bars: dict, cfg: dict, intrabar: str, interval_s: int) -> dict | None:
    """Simulate one alert. ``bars``: dict of equal-length sequences ts/open/high/low/close.

    Returns None for an alert without bars, else a dict with exit_reason, entry_ts, entry_price,
    exit_ts, exit_price, n_fills, ret, ret_gross, peak_mult, ambiguous, fills.
    """
    ts = [int(x) for x in bars["ts"]]
    OP = [float(x) for x in bars["open"]]
    HI = [float(x) for x in bars["high"]]
    LO = [float(x) for x in bars["low"]]
    CL = [float(x) for x in bars["close"]]
    n = len(ts)
    if n == 0:
        return None
    no_fill = {
        "exit_reason": "no_fill",
        "entry_ts": None,
        "entry_price": math.nan,
        "exit_ts": None,
        "exit_price": math.nan,
        "n_fills": 0,
        "ret": math.nan,
        "ret_gross": math.nan,
        "peak_mult": math.nan,
        "ambiguous": False,
        "fills": [],
    }

    # ---- entry
    dip = cfg.get("dip")
    fill_at_open = True
    if dip is not None:
        limit = OP[0] * (1.0 - dip)
        win = cfg.get("dip_window_min")
        fill_bar = None
        for j in range(n):
            if win is not None and not (ts[j] < ts[0] + win * 60.0):
                break
            if LO[j] <= limit:
                fill_bar = j
                break
        if fill_bar is None:
            return no_fill
        P = min(OP[fill_bar], limit)
        fill_at_open = OP[fill_bar] <= limit
        first_exit_bar = fill_bar + 1
    else:
        delay = int(cfg.get("entry_delay_bars") or 0)
        if n <= delay:
            return no_fill
        fill_bar = delay
        P = OP[fill_bar]
        first_exit_bar = fill_bar
    if not (P > 0 and math.isfinite(P)):
        return no_fill

    levels, rest = _levels(cfg)
    fills: list[tuple[float, float, int, str]] = []

    def left() -> float:
        return rest + sum(lv[1] for lv in levels if not lv[2])

    def closed() -> bool:
        return rest == 0.0 and all(lv[2] for lv in levels)

    def stop_of(peak: float) -> tuple[float | None, str | None]:
        cands = []  # (level, priority, name): higher priority wins ties
        if cfg.get("sl") is not None:
            cands.append((cfg["sl"] * P, 0, "sl"))
        if cfg.get("breakeven_at") is not None and peak >= cfg["breakeven_at"] * P:
            cands.append((P * (1.0 + cfg.get("breakeven_offset", 0.0)), 1, "breakeven"))
        if cfg.get("trail") is not None and peak >= cfg.get("trail_activation", 1.0) * P:
            cands.append((peak * (1 - cfg["trail"]), 2, "trail"))
        if not cands:
            return None, None
        best = max(cands, key=lambda c: (c[0], c[1]))
        return best[0], best[2]

    def sell_rest(price: float, stamp: int, why: str) -> None:
        fills.append((left(), price, stamp, why))
        for lv in levels:
            lv[2] = True

    def fill_level(lv: list, price: float, stamp: int) -> None:
        fills.append((lv[1], price, stamp, "tp"))
        lv[2] = True

    peak = P
    ambiguous = False
    deadline = (
        ts[fill_bar] + cfg["time_stop_hours"] * 3600.0 if cfg.get("time_stop_hours") is not None else None
    )
    done = False

    if dip is not None:
        stop, why = stop_of(peak)
        if stop is not None and LO[fill_bar] <= stop:
            ambiguous = True
            if intrabar != "optimistic":
                if fill_at_open:
                    peak = max(peak, HI[fill_bar])
                sell_rest(stop, ts[fill_bar] + interval_s, why)
                done = True
        if not done and fill_at_open:
            peak = max(peak, HI[fill_bar])

    i = first_exit_bar
    while not done and i < n:
        stop, why = stop_of(peak)
        # 1. time stop
        if deadline is not None and ts[i] >= deadline:
            sell_rest(OP[i], ts[i], "time")
            done = True
            break
        # 2. gap through the stop
        if stop is not None and OP[i] <= stop:
            sell_rest(OP[i], ts[i], why)
            done = True
            break
        # 3. ladder levels at or below the open
        for lv in levels:
            if not lv[2] and OP[i] >= lv[0] * P:
                fill_level(lv, OP[i], ts[i])
        if closed():
            done = True
            break
        stop_inside = stop is not None and LO[i] <= stop <= HI[i]
        tps_inside = [lv for lv in levels if not lv[2] and LO[i] <= lv[0] * P <= HI[i]]
        # 4. both inside: intrabar policy
        if stop_inside and tps_inside:
            ambiguous = True
            tp_first = intrabar == "optimistic" or (intrabar == "ohlc" and CL[i] < OP[i])
            if tp_first:
                for lv in tps_inside:
                    fill_level(lv, lv[0] * P, ts[i] + interval_s)
            if not closed():
                sell_rest(stop, ts[i] + interval_s, why)
            peak = max(peak, HI[i])
            done = True
            break
        # 5. one kind inside
        if stop_inside:
            sell_rest(stop, ts[i] + interval_s, why)
            peak = max(peak, HI[i])
            done = True
            break
        for lv in tps_inside:
            fill_level(lv, lv[0] * P, ts[i] + interval_s)
        peak = max(peak, HI[i])
        if closed():
            done = True
            break
        i += 1
    if not done:
        sell_rest(CL[n - 1], ts[n - 1] + interval_s, "horizon")

    f = (cfg.get("fee_bps", 30.0)) / 1e4
    s = (cfg.get("slippage_bps", 50.0)) / 1e4
    ret = sum(w * (1 - f) ** 2 * x * (1 - s) / (P * (1 + s)) for w, x, _, _ in fills) - 1
    ret_gross = sum(w * x / P for w, x, _, _ in fills) - 1
    wsum = sum(w for w, _, _, _ in fills)
    return {
        "exit_reason": fills[-1][3],
        "entry_ts": ts[fill_bar],
        "entry_price": P,
        "exit_ts": fills[-1][2],
        "exit_price": sum(w * x for w, x, _, _ in fills) / wsum,
        "n_fills": len(fills),
        "ret": ret,
        "ret_gross": ret_gross,
        "peak_mult": peak / P,
        "ambiguous": ambiguous,
        "fills": fills,
    }


def reference_run(w, cfg: dict, intrabar: str, alert_idx=None) -> list[dict | None]:
    """reference_trade for every alert (in ``alert_idx`` order) of a Windows."""
    idx = range(w.n) if alert_idx is None else alert_idx
    out = []
    for i in idx:
        out.append(reference_trade(w.bars(int(i)), cfg, intrabar, w.interval_s) if w.status[i] == 0 else None)
    return out


def lattice_windows(
    rng: np.random.Generator,
    n_alerts: int,
    max_bars: int = 12,
    interval_s: int = 60,
    base: float | None = None,
):
    """Tiny windows whose prices sit on a dyadic lattice of the entry price, so that take-profit,
    stop, breakeven and trailing levels (dyadic multiples) are hit exactly and ties are common.
    Includes rugs (0.01·E), flat bars, gaps in ts and single-bar windows. Returns a Windows."""
    from windowgen import windows_from_bars

    grid = np.array(
        [
            0.01,
            0.25,
            0.375,
            0.5,
            0.625,
            0.75,
            0.875,
            1.0,
            1.125,
            1.25,
            1.5,
            1.75,
            2.0,
            2.5,
            3.0,
            3.5,
            4.0,
            5.0,
            6.0,
            8.0,
        ]
    )
    bars = []
    for _ in range(n_alerts):
        E = base if base is not None else float(2.0 ** rng.integers(-30, 8))
        m = 1 if rng.random() < 0.1 else int(rng.integers(1, max_bars + 1))
        k = np.concatenate([[0], np.cumsum(rng.integers(1, 4, size=m - 1) if m > 1 else [])]).astype(int)
        rows = []
        for j in range(m):
            if rng.random() < 0.1:  # flat zero-volume bar
                v = float(rng.choice(grid))
                o = h = lo = c = v
            else:
                o, c = (float(x) for x in rng.choice(grid, size=2))
                h = max(o, c, float(rng.choice(grid)))
                lo = min(o, c, float(rng.choice(grid)))
            if j == 0:
                o = 1.0
                h, lo = max(h, o), min(lo, o)
            rows.append(
                {
                    "k": k[j],
                    "open": o * E,
                    "high": h * E,
                    "low": lo * E,
                    "close": c * E,
                    "volume": 0.0 if o == h == lo == c else 1.0,
                }
            )
        bars.append({key: [r[key] for r in rows] for key in rows[0]})
    return windows_from_bars(
        bars,
        interval_s,
        horizon_s=interval_s * (3 * max_bars + 2),
        entry_ts=1_700_000_040 - 1_700_000_040 % interval_s,
    )
