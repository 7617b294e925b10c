"""Plain-loop reference of the exit-strategy engine, written from the spec (slow, obviously correct).

One trade at a time, bar by bar, with an explicit list of fills ``(fraction, price, stamp, why)``.
Nothing here imports the engine's kernels; the only shared input is a scalar config as a plain
dict (``Strategy.model_dump()``), whose ladder text is parsed here independently.

Rules of issue 7 (no fills where nothing traded), implemented here from the issue text:
* a no-trade bar (volume 0 and open = high = low = close) triggers nothing and fills nothing. The
  reference first lists the traded bars and simulates on that list only; every entry (immediate,
  delayed, dip) waits for a traded bar. A time stop falls due at the first bar whose ts ≥ entry ts
  + T; if that bar did not trade, the sale happens at the open of the next traded bar (= the first
  traded bar with ts ≥ deadline). Peaks come from traded bars only.
* what is still held at the end sells at the close of the window's last traded bar: exit reason
  ``end_of_data`` when the window is truncated (status 4), else ``horizon``.
* ``fill_on_zero_volume`` in the config: every bar counts as traded (the old behaviour).
* bar durations may differ (5m then 1h): intrabar and final stamps use each bar's own duration.

Documented engine choices reproduced here (see ``alertlab/engine/nb/kernel.py``):
* delay N: the order is placed at window bar N (any kind of bar: time passes) and fills at the
  first traded bar from there; dip: E and the dip window start at the first traded bar.
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

REASONS = ("tp", "sl", "breakeven", "trail", "time", "horizon", "end_of_data", "no_fill")
TRUNCATED_STATUS = 4  # written out here on purpose: the reference shares no code with the engine


def is_no_trade_bar(o: float, h: float, lo: float, c: float, v: float) -> bool:
    """The issue's definition: zero volume and open = high = low = close."""
    return v == 0 and o == h == lo == c


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


def reference_trade(
    bars: dict, cfg: dict, intrabar: str, interval_s: int, truncated: bool = False
) -> dict | None:
    """Simulate one alert. ``bars``: dict of equal-length sequences ts/open/high/low/close (+ optional
    volume, default 1, and dur, default ``interval_s``); ``truncated``: the window's data ends early.

    Returns None for an alert without bars, else a dict with exit_reason, entry_ts, entry_price,
    exit_ts, exit_price, n_fills, ret, ret_gross, peak_mult, ambiguous, fills.
    """
    ts_all = [int(x) for x in bars["ts"]]
    n_all = len(ts_all)
    if n_all == 0:
        return None
    vol = [float(x) for x in bars["volume"]] if "volume" in bars else [1.0] * n_all
    durs = [int(x) for x in bars["dur"]] if bars.get("dur") is not None else [interval_s] * n_all
    o_all = [float(x) for x in bars["open"]]
    h_all = [float(x) for x in bars["high"]]
    l_all = [float(x) for x in bars["low"]]
    c_all = [float(x) for x in bars["close"]]
    every = bool(cfg.get("fill_on_zero_volume"))
    # the bars where something traded, by their position in the window
    keep = [
        j
        for j in range(n_all)
        if every or not is_no_trade_bar(o_all[j], h_all[j], l_all[j], c_all[j], vol[j])
    ]
    ts = [ts_all[j] for j in keep]
    OP = [o_all[j] for j in keep]
    HI = [h_all[j] for j in keep]
    LO = [l_all[j] for j in keep]
    CL = [c_all[j] for j in keep]
    END = [ts_all[j] + durs[j] for j in keep]
    n = len(keep)
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
    if n == 0:
        return no_fill

    # ---- entry (positions below are in the traded list)
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
        later = [j for j in range(n) if keep[j] >= delay]  # traded bars at or after window bar N
        if not later:
            return no_fill
        fill_bar = later[0]
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
                sell_rest(stop, END[fill_bar], why)
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
                    fill_level(lv, lv[0] * P, END[i])
            if not closed():
                sell_rest(stop, END[i], why)
            peak = max(peak, HI[i])
            done = True
            break
        # 5. one kind inside
        if stop_inside:
            sell_rest(stop, END[i], why)
            peak = max(peak, HI[i])
            done = True
            break
        for lv in tps_inside:
            fill_level(lv, lv[0] * P, END[i])
        peak = max(peak, HI[i])
        if closed():
            done = True
            break
        i += 1
    if not done:  # still held: the close of the last traded bar
        sell_rest(CL[n - 1], END[n - 1], "end_of_data" if truncated else "horizon")

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
        has = int(w.offsets[i + 1]) > int(w.offsets[i])
        trunc = int(w.status[i]) == TRUNCATED_STATUS
        out.append(reference_trade(w.bars(int(i)), cfg, intrabar, w.interval_s, trunc) if has else None)
    return out


def lattice_windows(
    rng: np.random.Generator,
    n_alerts: int,
    max_bars: int = 12,
    interval_s: int = 60,
    base: float | None = None,
    p_dead_start: float = 0.0,
    p_truncated: float = 0.0,
    p_mixed: float = 0.0,
):
    """Tiny windows whose prices sit on a dyadic lattice of the entry price, so that take-profit,
    stop, breakeven and trailing levels (dyadic multiples) are hit exactly and ties are common.
    Includes rugs (0.01·E), flat bars (no-trade bars, at any lattice price), gaps in ts and
    single-bar windows. ``p_dead_start``: chance that the window opens with 1-3 no-trade bars;
    ``p_truncated``: chance of status 4 (truncated); ``p_mixed``: chance that bars last up to the
    next bar's start (durations of 1-3 intervals, as in mixed-interval data). Returns a Windows."""
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
    status = []
    for _ in range(n_alerts):
        status.append(4 if rng.random() < p_truncated else 0)
        dead = int(rng.integers(1, 4)) if rng.random() < p_dead_start else 0
        mixed = rng.random() < p_mixed
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
            if j < dead:  # nothing traded yet
                o = h = lo = c = 1.0
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
        steps = [int(k[j + 1] - k[j]) for j in range(m - 1)] + [3]
        for j, r in enumerate(rows):
            r["dur"] = interval_s * (int(rng.integers(1, steps[j] + 1)) if mixed else 1)
        bars.append({key: [r[key] for r in rows] for key in rows[0]})
    return windows_from_bars(
        bars,
        interval_s,
        horizon_s=interval_s * (3 * max_bars + 2),
        entry_ts=1_700_000_040 - 1_700_000_040 % interval_s,
        status=status,
    )
