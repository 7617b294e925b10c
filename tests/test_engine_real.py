"""The engine on the real candle files (``../shared/data/real/candles``: 5-minute bars, then hourly
bars, flat zero-volume filler): no trade fills on a no-trade bar, truncated windows end as
``end_of_data``, and the engine agrees with the plain-loop reference trade for trade.

Windows are built here straight from the files (independently of the window cutter): for alerts
placed at random times, the bars from the first traded bar at or after the alert up to 48 h later,
each bar lasting until the next one (at most an hour); status 4 when the file ends before 48 h.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alertlab.engine import EXIT_REASONS, Strategy, backtest, encode_params, simulate

from engine_reference import is_no_trade_bar, reference_trade
from windowgen import windows_from_bars

H = 48 * 3600
BASE = 300  # every bar of these files opens on the 5-minute grid

STRATEGIES = [
    Strategy(tp=3, sl=0.5),
    Strategy(tp=2, sl=0.8, time_stop_hours=6),
    Strategy(trail=0.3, time_stop_hours=12),
    Strategy(tp_ladder="1.5:0.5,3:0.5", breakeven_at=1.3, sl=0.6, entry_delay_bars=2),
    Strategy(dip=0.1, dip_window_min=240, tp=2, sl=0.7),
    Strategy(time_stop_hours=1),
]


@pytest.fixture(scope="module")
def real_windows():
    from conftest import REAL_DATA

    files = (
        pd.read_csv(REAL_DATA / "MATCHES.csv")["file"].tolist()
        if (REAL_DATA / "MATCHES.csv").exists()
        else []
    )
    if not files:
        pytest.skip(f"real candle files not found under {REAL_DATA}")
    rng = np.random.default_rng(7)
    bars, status, entry = [], [], []
    for name in files:
        d = pd.read_csv(REAL_DATA / "candles" / name).sort_values("timestamp")
        ts = d["timestamp"].to_numpy(np.int64)
        nxt = np.append(ts[1:], ts[-1] + 3600)
        dur = np.minimum(nxt - ts, 3600)
        flat = (
            (d["volume"].to_numpy() == 0)
            & (d["open"] == d["high"]).to_numpy()
            & (d["high"] == d["low"]).to_numpy()
            & (d["low"] == d["close"]).to_numpy()
        )
        data_end = int(ts[-1] + dur[-1])
        for _ in range(8):
            call = int(rng.integers(ts[0], ts[-1]))
            j = int(np.searchsorted(ts, call))
            while j < len(ts) and flat[j]:
                j += 1
            if j >= len(ts):
                continue
            k = int(np.searchsorted(ts, ts[j] + H))
            sl = slice(j, k)
            bars.append(
                {
                    "ts": ts[sl],
                    "dur": dur[sl],
                    **{c: d[c].to_numpy()[sl] for c in ("open", "high", "low", "close", "volume")},
                }
            )
            status.append(4 if data_end < ts[j] + H else 0)
            entry.append(int(ts[j]))
    return windows_from_bars(bars, BASE, H, entry_ts=entry, status=status)


def _bar_at(b: dict, stamp: int, at_open: bool) -> int:
    """Index of the bar opening (at_open) or ending at ``stamp``."""
    key = b["ts"] if at_open else b["ts"] + b["dur"]
    hit = np.flatnonzero(key == stamp)
    assert hit.size == 1, (stamp, at_open)
    return int(hit[0])


def test_real_windows_hold_the_nasty_cases(real_windows):
    w = real_windows
    flat = np.array([is_no_trade_bar(*x) for x in zip(w.open, w.high, w.low, w.close, w.volume, strict=True)])
    assert flat.mean() > 0.05, "expected flat zero-volume filler in the real files"
    assert set(np.unique(w.dur)) >= {300, 3600} and (w.status == 4).any() and (w.status == 0).any()


@pytest.mark.parametrize(
    "cfg",
    STRATEGIES,
    ids=lambda c: ",".join(f"{k}={v}" for k, v in c.model_dump(exclude_defaults=True).items()),
)
def test_no_fill_on_a_no_trade_bar(real_windows, cfg):
    w = real_windows
    bt = backtest(w, cfg)
    t = bt.trades.set_index("alert_id")
    pos = {a: i for i, a in enumerate(w.alert_id)}
    filled = t[t["exit_reason"] != "no_fill"]
    assert len(filled) > 20
    for aid, r in filled.iterrows():
        i = pos[aid]
        b = w.bars(i)
        e = _bar_at(b, int(r["entry_ts"]), at_open=True)
        assert not is_no_trade_bar(b["open"][e], b["high"][e], b["low"][e], b["close"][e], b["volume"][e])
        reason = r["exit_reason"]
        assert reason != "horizon" or w.status[i] == 0
        assert reason != "end_of_data" or w.status[i] == 4
        x_open = np.flatnonzero(b["ts"] == r["exit_ts"])
        x = (
            int(x_open[0])
            if x_open.size
            and reason in ("time", "sl", "trail", "breakeven", "tp")
            and math.isclose(r["exit_price"], b["open"][x_open[0]])
            else _bar_at(b, int(r["exit_ts"]), at_open=False)
        )
        assert not is_no_trade_bar(b["open"][x], b["high"][x], b["low"][x], b["close"][x], b["volume"][x]), (
            aid,
            reason,
        )
        if reason in ("horizon", "end_of_data"):  # the last traded bar of the window
            later = [
                j
                for j in range(x + 1, len(b["ts"]))
                if not is_no_trade_bar(b["open"][j], b["high"][j], b["low"][j], b["close"][j], b["volume"][j])
            ]
            assert not later
    if cfg.time_stop_hours is None:
        assert (t["exit_reason"] == "end_of_data").any()


def test_engine_matches_reference_on_real_windows(real_windows):
    w = real_windows
    for cfg in STRATEGIES:
        for fzv in (False, True):
            c = cfg.model_copy(update={"fill_on_zero_volume": fzv})
            ta = simulate(w, encode_params([c]), fill_on_zero_volume=fzv)
            for a in range(w.n):
                r = reference_trade(w.bars(a), c.model_dump(), "pessimistic", w.interval_s, w.status[a] == 4)
                assert EXIT_REASONS[ta.exit_reason[0, a]] == r["exit_reason"]
                if r["exit_reason"] != "no_fill":
                    assert ta.exit_ts[0, a] == r["exit_ts"] and ta.entry_ts[0, a] == r["entry_ts"]
                    assert ta.ret[0, a] == pytest.approx(r["ret"], rel=1e-9, abs=1e-12)


def test_old_behaviour_does_fill_on_no_trade_bars(real_windows):
    """The check above can fail: with --fill-on-zero-volume the same trades do sell on filler."""
    w = real_windows
    ta = simulate(w, encode_params([Strategy(time_stop_hours=1)]), fill_on_zero_volume=True)
    on_flat = 0
    for a in range(w.n):
        b = w.bars(a)
        if ta.exit_reason[0, a] < 0 or EXIT_REASONS[ta.exit_reason[0, a]] != "time":
            continue
        x = _bar_at(b, int(ta.exit_ts[0, a]), at_open=True)
        on_flat += is_no_trade_bar(b["open"][x], b["high"][x], b["low"][x], b["close"][x], b["volume"][x])
    assert on_flat > 0
