"""Hand-written cases: each step of the per-bar order, each tie rule, each entry model.

Every case is checked on the bar simulator, on the first-passage path when the config is plain,
and against the plain-loop reference. Entry price E = 1, one-minute bars, zero costs unless said.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from alertlab.engine import EXIT_REASONS, Strategy, encode_params, plain_tpsl_rows, simulate

from engine_reference import reference_trade
from windowgen import windows_from_bars

T0 = 1_700_000_040
IV = 60
FREE = {"fee_bps": 0.0, "slippage_bps": 0.0}


def one(bars, intrabar: str = "pessimistic", truncated: bool = False, **opts) -> dict:
    """Run one alert's bars ([(o, h, l, c[, volume])] consecutive, or a dict with 'k' / 'ts' /
    'dur' / 'volume') through every path; ``truncated``: the window has status TRUNCATED (4)."""
    cfg = Strategy(**{**FREE, **opts})
    if isinstance(bars, dict):
        b = {k: list(v) for k, v in bars.items()}
    else:
        b = {
            "open": [x[0] for x in bars],
            "high": [x[1] for x in bars],
            "low": [x[2] for x in bars],
            "close": [x[3] for x in bars],
            "volume": [x[4] if len(x) > 4 else 1.0 for x in bars],
        }
    w = windows_from_bars([b], IV, horizon_s=IV * 200, entry_ts=T0, status=[4 if truncated else 0])
    params = encode_params([cfg])
    methods = ["general", "tpsl"] if plain_tpsl_rows(params)[0] else ["general"]
    outs = []
    for m in methods:
        ta = simulate(w, params, intrabar=intrabar, method=m, fill_on_zero_volume=cfg.fill_on_zero_volume)
        outs.append(
            {
                k: getattr(ta, k)[0, 0].item()
                for k in (
                    "ret",
                    "ret_gross",
                    "exit_reason",
                    "exit_ts",
                    "exit_price",
                    "entry_ts",
                    "entry_price",
                    "n_fills",
                    "peak_mult",
                    "ambiguous",
                    "hold_s",
                    "ret_pessimistic",
                    "ret_optimistic",
                )
            }
        )
    for o in outs[1:]:
        assert o == pytest.approx(outs[0], nan_ok=True)
    out = outs[0]
    out["reason"] = EXIT_REASONS[out["exit_reason"]]
    ref = reference_trade(w.bars(0), cfg.model_dump(), intrabar, IV, truncated)
    assert ref["exit_reason"] == out["reason"]
    if out["reason"] != "no_fill":
        assert ref["ret"] == pytest.approx(out["ret"], abs=1e-12)
        assert ref["exit_ts"] == out["exit_ts"] and ref["n_fills"] == out["n_fills"]
        assert ref["ambiguous"] == out["ambiguous"]
    return out


def ts(k: int) -> int:
    return T0 + k * IV


# ---------------------------------------------------------------------------- step 1: time stop


def test_time_stop_sells_at_open_of_first_bar_past_deadline_after_gap():
    bars = {
        "k": [0, 1, 5, 6],
        "open": [1, 1.1, 1.3, 1.4],
        "high": [1.1, 1.2, 1.5, 1.6],
        "low": [0.9, 1.0, 1.2, 1.3],
        "close": [1.1, 1.2, 1.4, 1.5],
    }
    r = one(
        bars, time_stop_hours=3 / 60
    )  # deadline ts0 + 180 s: bars 1 (60 s) < it, bar 5 (300 s) first after
    assert r["reason"] == "time" and r["exit_price"] == 1.3 and r["exit_ts"] == ts(5)
    assert r["hold_s"] == 300 and r["peak_mult"] == pytest.approx(1.2)


def test_time_stop_beats_gap_through_stop_on_the_same_bar():
    r = one([(1, 1.1, 0.9, 1), (1, 1.1, 0.9, 1), (0.3, 0.4, 0.2, 0.3)], time_stop_hours=0.025, sl=0.5)  # 90 s
    assert r["reason"] == "time" and r["exit_price"] == 0.3


def test_time_stop_deadline_exactly_on_bar_ts():
    r = one([(1, 1.1, 0.9, 1)] * 20, time_stop_hours=0.25)  # bar 15 at exactly +900 s is due
    assert r["reason"] == "time" and r["exit_ts"] == ts(15)


# ---------------------------------------------------------------------------- step 2: gap through the stop


def test_gap_through_stop_sells_at_open_not_at_stop():
    r = one([(1, 1.2, 0.9, 1.1), (0.4, 0.45, 0.01, 0.02)], sl=0.5, tp=3)
    assert (
        r["reason"] == "sl"
        and r["exit_price"] == 0.4
        and r["exit_ts"] == ts(1)
        and r["ret"] == pytest.approx(-0.6)
    )
    assert r["peak_mult"] == pytest.approx(1.2)  # the gap bar's range is after the exit


def test_open_exactly_at_stop_is_a_gap_fill():
    r = one([(1, 1.2, 0.9, 1.1), (0.5, 0.6, 0.1, 0.2)], sl=0.5)
    assert r["reason"] == "sl" and r["exit_price"] == 0.5 and r["exit_ts"] == ts(1)


def test_rug_minus_99_percent_in_one_bar():
    r = one([(1, 1.05, 0.95, 1.0), (1.0, 1.0, 0.01, 0.01)], sl=0.7)
    assert r["reason"] == "sl" and r["exit_price"] == 0.7 and r["exit_ts"] == ts(1) + IV
    r = one([(1, 1.05, 0.95, 1.0), (1.0, 1.0, 0.01, 0.01)])
    assert r["reason"] == "horizon" and r["ret"] == pytest.approx(-0.99)


# ---------------------------------------------------------------------------- step 3: levels at the open


def test_ladder_levels_below_open_fill_at_open():
    r = one([(1, 1.1, 0.9, 1.05), (2.5, 2.6, 2.4, 2.5)], tp_ladder="1.5:0.5,2:0.5", sl=0.5)
    assert r["reason"] == "tp" and r["n_fills"] == 2 and r["exit_price"] == 2.5 and r["exit_ts"] == ts(1)
    assert r["peak_mult"] == pytest.approx(1.1)


def test_tp_open_exactly_at_level():
    r = one([(1, 1.1, 0.9, 1.05), (2.0, 2.6, 1.9, 2.5)], tp=2)
    assert r["reason"] == "tp" and r["exit_price"] == 2.0 and r["exit_ts"] == ts(1)


def test_level_at_open_then_level_inside_same_bar():
    r = one([(1, 1.1, 0.9, 1.05), (2, 3.5, 1.9, 3)], tp_ladder="1.5:0.5,3:0.5")
    assert r["reason"] == "tp" and r["n_fills"] == 2 and r["exit_price"] == pytest.approx(2.5)
    assert r["exit_ts"] == ts(1) + IV and r["peak_mult"] == pytest.approx(3.5)


# ---------------------------------------------------------------------------- step 4: ambiguous bar

AMB = [(1, 1.1, 0.9, 1.0), (1.0, 2.5, 0.4, 1.2)]  # bar 1 spans both sl 0.5 and tp 2 (close >= open)
AMB_DOWN = [(1, 1.1, 0.9, 1.0), (1.0, 2.5, 0.4, 0.8)]  # same, close < open


@pytest.mark.parametrize(
    ("bars", "policy", "reason", "price"),
    [
        (AMB, "pessimistic", "sl", 0.5),
        (AMB, "optimistic", "tp", 2.0),
        (AMB, "ohlc", "sl", 0.5),
        (AMB_DOWN, "ohlc", "tp", 2.0),
        (AMB_DOWN, "pessimistic", "sl", 0.5),
    ],
)
def test_ambiguous_bar_policies(bars, policy, reason, price):
    r = one(bars, policy, tp=2, sl=0.5)
    assert r["reason"] == reason and r["exit_price"] == price and r["ambiguous"]
    assert r["ret_pessimistic"] == pytest.approx(-0.5) and r["ret_optimistic"] == pytest.approx(1.0)


def test_ambiguous_optimistic_levels_first_rest_at_stop():
    r = one(AMB, "optimistic", tp_ladder="1.5:0.25,2:0.25,3:0.5", sl=0.5)
    # 1.5 and 2 are inside the bar, 3 is not: 0.25*1.5 + 0.25*2 + 0.5*0.5
    assert r["reason"] == "sl" and r["n_fills"] == 3 and r["exit_price"] == pytest.approx(1.125)
    p = one(AMB, "pessimistic", tp_ladder="1.5:0.25,2:0.25,3:0.5", sl=0.5)
    assert p["n_fills"] == 1 and p["exit_price"] == 0.5 and p["ret_optimistic"] == pytest.approx(r["ret"])


def test_touching_levels_exactly_is_inside():
    r = one([(1, 1.1, 0.9, 1.0), (1.0, 2.0, 0.5, 1.0)], "pessimistic", tp=2, sl=0.5)
    assert r["ambiguous"] and r["reason"] == "sl"


# ---------------------------------------------------------------------------- step 5: one side inside


def test_stop_inside_sells_all_at_stop():
    r = one([(1, 1.1, 0.9, 1.0), (0.9, 1.0, 0.45, 0.6)], tp_ladder="2:0.5", sl=0.5)
    assert r["reason"] == "sl" and r["exit_price"] == 0.5 and r["n_fills"] == 1 and not r["ambiguous"]


def test_several_levels_in_one_bar_and_rest_rides_to_horizon():
    r = one(
        [(1, 1.1, 0.9, 1.0), (1.2, 2.5, 1.1, 2.2), (2.2, 2.3, 2.0, 2.1)], tp_ladder="1.5:0.25,2:0.25,3:0.25"
    )
    assert r["reason"] == "horizon" and r["n_fills"] == 3
    assert r["exit_price"] == pytest.approx(0.25 * 1.5 + 0.25 * 2 + 0.5 * 2.1)
    assert r["exit_ts"] == ts(2) + IV


def test_entry_bar_itself_can_take_profit():
    r = one([(1, 2.5, 0.9, 2.0)], tp=2, sl=0.5)
    assert r["reason"] == "tp" and r["exit_price"] == 2 and r["exit_ts"] == ts(0) + IV


def test_single_bar_window_horizon():
    r = one([(1, 1.2, 0.8, 1.1)], sl=0.5, tp=3)
    assert r["reason"] == "horizon" and r["exit_price"] == 1.1 and r["exit_ts"] == ts(1)
    assert r["peak_mult"] == pytest.approx(1.2)


# ---------------------------------------------------------------------------- stops from the past peak


def test_no_same_bar_look_ahead_for_trailing():
    bars = [(1, 1.05, 0.95, 1.0), (1.0, 4.0, 1.5, 3.0), (3.0, 3.1, 1.9, 2.0)]
    r = one(bars, trail=0.5)
    # bar 1: stop from peak 1.05 -> 0.525, low 1.5 safe although 4 * 0.5 = 2 > 1.5; bar 2: stop 2.0
    assert r["reason"] == "trail" and r["exit_price"] == 2.0 and r["exit_ts"] == ts(2) + IV
    assert r["peak_mult"] == pytest.approx(4.0)


def test_trailing_activation_reached_exactly():
    bars = [(1, 1.05, 0.95, 1.0), (1.0, 2.0, 0.9, 1.8), (1.8, 1.9, 1.4, 1.5)]
    assert one(bars, trail=0.25, trail_activation=2.0)["reason"] == "trail"  # peak 2.0 >= 2·P: stop 1.5
    r = one(bars, trail=0.25, trail_activation=2.5)
    assert r["reason"] == "horizon"


def test_breakeven_activation_and_offset():
    bars = [(1, 1.05, 0.95, 1.0), (1.0, 1.5, 0.9, 1.4), (1.4, 1.45, 1.0, 1.1)]
    r = one(bars, breakeven_at=1.5, sl=0.5)
    assert r["reason"] == "breakeven" and r["exit_price"] == 1.0 and r["ret"] == 0.0
    r = one(bars, breakeven_at=1.5, breakeven_offset=0.25, sl=0.5)
    assert r["reason"] == "breakeven" and r["exit_price"] == 1.25
    assert one(bars, breakeven_at=1.6, sl=0.5)["reason"] == "horizon"


@pytest.mark.parametrize(
    ("opts", "reason"),
    [
        ({"trail": 0.5, "breakeven_at": 1.5, "sl": 0.25}, "trail"),  # peak 2: trail 1.0 == breakeven 1.0
        ({"breakeven_at": 1.25, "breakeven_offset": -0.25, "sl": 0.75}, "breakeven"),  # 0.75 == 0.75
        ({"trail": 0.625, "sl": 0.75}, "trail"),  # peak 2: 2·0.375 = 0.75 == sl
        (
            {"trail": 0.5, "breakeven_at": 1.5, "breakeven_offset": -0.25, "sl": 0.5},
            "trail",
        ),  # 1.0 > 0.75 > 0.5
    ],
)
def test_ties_name_the_more_specific_rule(opts, reason):
    bars = [(1, 2.0, 0.95, 1.9), (1.9, 1.95, 0.1, 0.2)]
    r = one(bars, **opts)
    assert r["reason"] == reason


def test_gap_through_trailing_stop_names_trail():
    r = one([(1, 3.0, 0.95, 2.9), (1.0, 1.1, 0.9, 1.0)], trail=0.5, sl=0.5)
    assert r["reason"] == "trail" and r["exit_price"] == 1.0 and r["exit_ts"] == ts(1)


# ---------------------------------------------------------------------------- entries


def test_delay_entry_and_no_fill():
    bars = [(1, 1.1, 0.9, 1.0), (1.2, 1.3, 1.1, 1.2), (1.5, 3.1, 1.4, 2.0)]
    r = one(bars, entry_delay_bars=2, tp=2)
    assert (
        r["entry_price"] == 1.5 and r["entry_ts"] == ts(2) and r["reason"] == "tp" and r["exit_price"] == 3.0
    )
    r = one(bars, entry_delay_bars=3, tp=2)
    assert r["reason"] == "no_fill" and math.isnan(r["ret"])


def test_delay_counts_bars_not_minutes():
    bars = {"k": [0, 7], "open": [1, 2], "high": [1, 2.2], "low": [1, 1.9], "close": [1, 2.1]}
    r = one(bars, entry_delay_bars=1)
    assert r["entry_ts"] == ts(7) and r["entry_price"] == 2


def test_dip_fill_intrabar_at_limit_exits_from_next_bar():
    bars = [(1, 1.1, 0.9, 1.0), (0.95, 3.0, 0.7, 0.9), (0.9, 1.3, 0.85, 1.2)]
    r = one(bars, dip=0.2, tp=1.5)  # limit 0.8 filled on bar 1; its high 3.0 ≥ 1.2 is not used
    assert r["entry_price"] == pytest.approx(0.8) and r["entry_ts"] == ts(1)
    assert r["reason"] == "tp" and r["exit_price"] == pytest.approx(1.2) and r["exit_ts"] == ts(2) + IV
    assert r["peak_mult"] == pytest.approx(1.3 / 0.8)  # the intrabar fill bar's high is not in the peak


def test_dip_fill_at_open_uses_open_and_its_high():
    bars = [(1, 1.1, 0.9, 1.0), (0.7, 0.9, 0.65, 0.8), (0.8, 0.85, 0.75, 0.8)]
    r = one(bars, dip=0.2)
    assert r["entry_price"] == 0.7 and r["peak_mult"] == pytest.approx(0.9 / 0.7) and r["reason"] == "horizon"


def test_dip_no_fill_and_window_boundary():
    bars = [(1, 1.1, 0.9, 1.0), (1.0, 1.1, 0.95, 1.0), (1.0, 1.0, 0.5, 0.6)]
    assert one(bars, dip=0.2, dip_window_min=2)["reason"] == "no_fill"  # bar 2 at exactly +120 s is outside
    assert one(bars, dip=0.2, dip_window_min=2.01)["entry_ts"] == ts(2)
    assert one(bars, dip=0.6)["reason"] == "no_fill"
    assert one(bars[:1], dip=0.05)["entry_ts"] == ts(0)  # the entry bar itself can fill


def test_dip_fill_bar_stop_depends_on_policy():
    bars = [(1, 1.1, 0.9, 1.0), (0.9, 0.95, 0.3, 0.5), (0.5, 0.6, 0.45, 0.55)]
    p = one(bars, "pessimistic", dip=0.2, sl=0.5)  # P 0.8, stop 0.4 reached by the fill bar's low 0.3
    assert (
        p["reason"] == "sl"
        and p["exit_price"] == pytest.approx(0.4)
        and p["ambiguous"]
        and p["exit_ts"] == ts(1) + IV
    )
    assert one(bars, "ohlc", dip=0.2, sl=0.5)["reason"] == "sl"
    o = one(bars, "optimistic", dip=0.2, sl=0.5)
    assert o["reason"] == "horizon" and o["exit_price"] == 0.55 and o["ambiguous"]
    assert p["ret_optimistic"] == pytest.approx(o["ret"]) and o["ret_pessimistic"] == pytest.approx(p["ret"])


def test_non_ok_alert_has_no_trade():
    w = windows_from_bars([None, [(1, 1, 1, 1)]], IV, horizon_s=IV * 10)
    ta = simulate(w, encode_params([Strategy(tp=2)]))
    assert (
        ta.exit_reason[0, 0] == -1
        and np.isnan(ta.ret[0, 0])
        and ta.exit_reason[0, 1] == EXIT_REASONS.index("horizon")
    )


def test_costs_formula():
    r = one([(1, 2.5, 0.9, 2.0)], tp=2, fee_bps=30.0, slippage_bps=50.0)
    assert r["ret"] == pytest.approx(0.997**2 * 2 * 0.995 / 1.005 - 1, rel=1e-12)
    assert r["ret_gross"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------- issue 7: no-trade bars
# A no-trade bar has volume 0 and open = high = low = close: nobody traded at that price.

NT = 0.0  # volume of a no-trade bar


def test_no_trade_bar_triggers_no_stop_and_no_take_profit():
    bars = [(1, 1.1, 0.9, 1.0), (0.3, 0.3, 0.3, 0.3, NT), (3.0, 3.0, 3.0, 3.0, NT), (1.0, 1.2, 0.95, 1.1)]
    r = one(bars, tp=2, sl=0.5)
    assert r["reason"] == "horizon" and r["exit_price"] == 1.1 and r["exit_ts"] == ts(3) + IV
    assert r["peak_mult"] == pytest.approx(1.2)  # the 3.0 filler is no peak
    old = one(bars, tp=2, sl=0.5, fill_on_zero_volume=True)  # the old behaviour: sold at the filler
    assert old["reason"] == "sl" and old["exit_price"] == 0.3 and old["exit_ts"] == ts(1)
    # a zero-volume bar with a range is not a no-trade bar (open != high): it still triggers
    assert one([(1, 1.1, 0.9, 1.0), (1.0, 1.0, 0.4, 0.5, NT)], sl=0.5)["reason"] == "sl"


def test_no_trade_bar_moves_no_ladder_trail_or_breakeven():
    bars = [(1, 1.1, 0.9, 1.0), (2.5, 2.5, 2.5, 2.5, NT), (1.0, 1.05, 0.8, 1.0), (1.0, 1.0, 1.0, 1.0)]
    r = one(bars, tp_ladder="2:0.5", trail=0.5, breakeven_at=2.0, breakeven_offset=0.1)
    assert r["reason"] == "horizon" and r["n_fills"] == 1 and r["exit_price"] == 1.0
    old = one(
        bars, tp_ladder="2:0.5", trail=0.5, breakeven_at=2.0, breakeven_offset=0.1, fill_on_zero_volume=True
    )
    assert old["reason"] == "trail" and old["n_fills"] == 2  # rung at the filler open, trail 1.25 gapped


def test_time_stop_due_on_no_trade_bar_fills_at_next_traded_open():
    bars = [(1, 1.1, 0.9, 1.0), (1.0, 1.0, 1.0, 1.0, NT), (1.0, 1.0, 1.0, 1.0, NT), (1.3, 1.4, 1.2, 1.3)]
    r = one(bars, time_stop_hours=1 / 60)  # due at bar 1 (+60 s), a no-trade bar
    assert r["reason"] == "time" and r["exit_price"] == 1.3 and r["exit_ts"] == ts(3)
    assert one(bars, time_stop_hours=1 / 60, fill_on_zero_volume=True)["exit_ts"] == ts(1)
    # due on no-trade bars up to the end: nothing traded after the deadline → the final close
    tail = [(1, 1.1, 0.9, 1.05), (1.05, 1.05, 1.05, 1.05, NT), (1.05, 1.05, 1.05, 1.05, NT)]
    r = one(tail, time_stop_hours=1 / 60)
    assert r["reason"] == "horizon" and r["exit_price"] == 1.05 and r["exit_ts"] == ts(0) + IV
    assert one(tail, time_stop_hours=1 / 60, truncated=True)["reason"] == "end_of_data"


def test_horizon_sells_at_last_traded_close_and_truncated_is_end_of_data():
    bars = [(1, 1.1, 0.9, 1.0), (1.0, 1.3, 0.95, 1.2), (0.7, 0.7, 0.7, 0.7, NT), (0.7, 0.7, 0.7, 0.7, NT)]
    r = one(bars, tp=3)
    assert r["reason"] == "horizon" and r["exit_price"] == 1.2 and r["exit_ts"] == ts(1) + IV
    e = one(bars, tp=3, truncated=True)
    assert e["reason"] == "end_of_data" and e["exit_price"] == 1.2 and e["exit_ts"] == ts(1) + IV
    assert one(bars, tp=3, truncated=True, fill_on_zero_volume=True)["exit_price"] == 0.7
    # a truncated window whose trade ends before the data does keeps its real exit reason
    assert one(bars, tp=1.25, truncated=True)["reason"] == "tp"


def test_entries_wait_for_a_traded_bar():
    bars = [(1, 1, 1, 1, NT), (1.0, 1.0, 1.0, 1.0, NT), (1.2, 1.5, 1.1, 1.4), (1.4, 1.5, 1.3, 1.45)]
    r = one(bars, tp=3)
    assert r["entry_ts"] == ts(2) and r["entry_price"] == 1.2
    assert one(bars, entry_delay_bars=1)["entry_ts"] == ts(2)  # bar 1 did not trade: wait
    assert one(bars, entry_delay_bars=3)["entry_ts"] == ts(3)
    d = one(bars, dip=0.1)  # E = 1.2 (first traded open): limit 1.08, bar 3's low 1.3 never reaches it
    assert d["reason"] == "no_fill"
    d = one(bars, dip=0.08)  # limit 1.104: bar 2's low 1.1 fills intrabar
    assert d["entry_ts"] == ts(2) and d["entry_price"] == pytest.approx(1.104)
    assert one(bars[:2], tp=2)["reason"] == "no_fill"  # nothing ever traded
    assert one(bars, tp=3, fill_on_zero_volume=True)["entry_ts"] == ts(0)


def test_dip_limit_ignores_no_trade_bars():
    bars = [(1, 1.1, 0.95, 1.0), (0.5, 0.5, 0.5, 0.5, NT), (0.9, 1.0, 0.85, 0.95)]
    r = one(bars, dip=0.2)
    assert r["reason"] == "no_fill"
    assert one(bars, dip=0.2, fill_on_zero_volume=True)["entry_price"] == 0.5


def test_mixed_intervals_stamps_and_time_stop():
    """5-minute bars, a hole, then hourly bars: stamps use each bar's own duration, the time stop
    falls due at the first bar whose ts >= entry ts + T."""
    b = {
        "ts": [T0, T0 + 300, T0 + 600, T0 + 2400, T0 + 6000],
        "dur": [300, 300, 300, 3600, 3600],
        "open": [1.0, 1.0, 1.1, 1.2, 1.5],
        "high": [1.05, 1.1, 1.2, 2.5, 1.6],
        "low": [0.95, 0.98, 1.05, 1.1, 1.4],
        "close": [1.0, 1.1, 1.2, 1.5, 1.55],
    }
    r = one(b, tp=2)  # hit inside the first hourly bar: stamped at its end
    assert r["reason"] == "tp" and r["exit_ts"] == T0 + 2400 + 3600
    r = one(b, time_stop_hours=0.5)  # due at T0 + 1800: the first bar at or after it opens at +2400
    assert r["reason"] == "time" and r["exit_ts"] == T0 + 2400 and r["exit_price"] == 1.2
    r = one(b, tp=5)
    assert r["reason"] == "horizon" and r["exit_ts"] == T0 + 6000 + 3600 and r["exit_price"] == 1.55


def test_backtest_reports_end_of_data():
    from alertlab.engine import backtest

    bars = [(1, 1.1, 0.9, 1.0, 1), (1.0, 1.3, 0.95, 1.2, 1), (1.2, 1.2, 1.2, 1.2, NT)]
    w = windows_from_bars([bars, bars], IV, horizon_s=IV * 10, status=[4, 0])
    bt = backtest(w, Strategy(tp=3))
    assert sorted(bt.trades["exit_reason"]) == ["end_of_data", "horizon"]
    assert bt.summary["exit_end_of_data"] == 1 and bt.summary["exit_horizon"] == 1
    assert (bt.trades["exit_ts"] == ts(1) + IV).all()
