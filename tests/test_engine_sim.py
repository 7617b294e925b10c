"""Engine vs the plain-loop reference on nasty random paths, plus per-trade properties.

The windows carry every case of issue 7: no-trade bars (volume 0, open = high = low = close) in
runs at the start, in the middle, at the end and as a dead tail; mixed bar durations (5-minute
bars, a hole, then hourly bars); truncated windows (status 4: ``end_of_data``); 1e-9 prices. Each
rule combination runs with ``fill_on_zero_volume`` off (the default) and on (the old behaviour).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from alertlab.engine import EXIT_REASONS, Strategy, encode_params, simulate

from engine_reference import TRUNCATED_STATUS as TRUNCATED
from engine_reference import is_no_trade_bar, lattice_windows, reference_trade
from windowgen import random_windows

POLICIES = ("pessimistic", "optimistic", "ohlc")

# rule combinations: name -> option keys drawn by _draw
TEMPLATES = {
    "none": (),
    "tp": ("tp",),
    "sl": ("sl",),
    "tp_sl": ("tp", "sl"),
    "ladder": ("ladder",),
    "ladder_sl": ("ladder", "sl"),
    "ladder_rest_trail": ("ladder_rest", "trail"),
    "be_sl": ("be", "sl"),
    "be_off_tp": ("be_off", "tp"),
    "be_off_sl": ("be_off", "sl"),
    "trail": ("trail",),
    "trail_act_tp_sl": ("trail_act", "tp", "sl"),
    "all_stops_ladder": ("trail_act", "be_off", "sl", "ladder"),
    "time_tp_sl": ("time", "tp", "sl"),
    "time_trail": ("time", "trail"),
    "delay_tp_sl": ("delay", "tp", "sl"),
    "delay_ladder_trail_time": ("delay", "ladder", "trail", "time"),
    "dip_tp_sl": ("dip", "tp", "sl"),
    "dip_win_trail_ladder": ("dip_win", "trail", "ladder"),
    "dip_be_time": ("dip", "be", "time", "sl"),
    "dip_sl": ("dip_win", "sl"),
}

LATTICE = {
    "tp": [1.5, 2.0, 3.0, 4.0],
    "sl": [0.5, 0.75, 0.875],
    "be": [1.25, 1.5, 2.0],
    "off": [0.0, 0.25, -0.25],
    "trail": [0.25, 0.5],
    "act": [1.0, 1.5, 2.0],
    "lev": [1.25, 1.5, 2.0, 3.0, 4.0, 5.0],
    "time": [0.05, 0.1],
    "delay": [1, 2, 3],
    "dip": [0.25, 0.5],
    "dip_win": [2.0, 5.0],
}
CONTINUOUS = {
    "tp": [1.5, 2.0, 3.0, 5.0],
    "sl": [0.5, 0.7, 0.9],
    "be": [1.2, 1.5, 2.0],
    "off": [0.0, 0.05, -0.1],
    "trail": [0.1, 0.3],
    "act": [1.0, 1.3, 2.0],
    "lev": [1.3, 1.5, 2.0, 3.0, 5.0, 10.0],
    "time": [0.25, 1.0],
    "delay": [1, 3, 10],
    "dip": [0.1, 0.3],
    "dip_win": [5.0, 30.0],
}


def _draw(rng: np.random.Generator, keys: tuple[str, ...], vals: dict) -> Strategy:
    d: dict = {
        "fee_bps": float(rng.choice([0.0, 30.0])),
        "slippage_bps": float(rng.choice([0.0, 50.0, 100.0])),
    }
    pick = lambda k: rng.choice(vals[k]).item()  # noqa: E731
    for k in keys:
        if k == "tp":
            d["tp"] = pick("tp")
        elif k == "sl":
            d["sl"] = pick("sl")
        elif k in ("ladder", "ladder_rest"):
            n = int(rng.integers(1, 4))
            ms = sorted(rng.choice(vals["lev"], size=n, replace=False).tolist())
            ws = [0.5, 0.25, 0.25][:n] if k == "ladder" and n == 3 else ([0.5, 0.5] if n == 2 else [1.0])
            if k == "ladder_rest":
                ws = [0.25] * n
            d["tp_ladder"] = ",".join(f"{m}:{w}" for m, w in zip(ms, ws, strict=True))
        elif k == "be":
            d["breakeven_at"] = pick("be")
        elif k == "be_off":
            d["breakeven_at"] = pick("be")
            offs = [x for x in vals["off"] if 1 + x < d["breakeven_at"]]
            d["breakeven_offset"] = float(rng.choice(offs))
        elif k == "trail":
            d["trail"] = pick("trail")
        elif k == "trail_act":
            d["trail"] = pick("trail")
            d["trail_activation"] = pick("act")
        elif k == "time":
            d["time_stop_hours"] = pick("time")
        elif k == "delay":
            d["entry_delay_bars"] = pick("delay")
        elif k == "dip":
            d["dip"] = pick("dip")
        elif k == "dip_win":
            d["dip"] = pick("dip")
            d["dip_window_min"] = pick("dip_win")
    return Strategy(**d)


def _check(w, cfg: Strategy, intrabar: str, method: str = "auto") -> int:
    """Compare every alert with the reference; returns the number of trades checked."""
    ta = simulate(
        w, encode_params([cfg]), intrabar=intrabar, method=method, fill_on_zero_volume=cfg.fill_on_zero_volume
    )
    d = cfg.model_dump()
    n_checked = 0
    for a in range(w.n):
        code = int(ta.exit_reason[0, a])
        if w.offsets[a + 1] == w.offsets[a]:
            assert code == -1 and math.isnan(ta.ret[0, a])
            continue
        bars = w.bars(a)
        trunc = int(w.status[a]) == TRUNCATED
        r = reference_trade(bars, d, intrabar, w.interval_s, trunc)
        ctx = f"alert {a} cfg {d} policy {intrabar}: engine {EXIT_REASONS[code]} ref {r['exit_reason']}"
        assert EXIT_REASONS[code] == r["exit_reason"], ctx
        if r["exit_reason"] == "no_fill":
            assert math.isnan(ta.ret[0, a]) and ta.n_fills[0, a] == 0, ctx
            continue
        n_checked += 1
        assert ta.n_fills[0, a] == r["n_fills"], ctx
        assert ta.entry_ts[0, a] == r["entry_ts"] and ta.exit_ts[0, a] == r["exit_ts"], ctx
        assert ta.hold_s[0, a] == r["exit_ts"] - r["entry_ts"], ctx
        assert bool(ta.ambiguous[0, a]) == r["ambiguous"], ctx
        for name, key in (
            ("entry_price", "entry_price"),
            ("exit_price", "exit_price"),
            ("ret", "ret"),
            ("ret_gross", "ret_gross"),
            ("peak_mult", "peak_mult"),
        ):
            got = float(getattr(ta, name)[0, a])
            assert got == pytest.approx(r[key], rel=1e-9, abs=1e-12), f"{name}: {got} vs {r[key]}; {ctx}"
        assert sum(f[0] for f in r["fills"]) == pytest.approx(1.0, abs=1e-12)
        for pol, arr in (("pessimistic", ta.ret_pessimistic), ("optimistic", ta.ret_optimistic)):
            want = (
                r["ret"]
                if (pol == intrabar or not r["ambiguous"])
                else reference_trade(bars, d, pol, w.interval_s, trunc)["ret"]
            )
            assert float(arr[0, a]) == pytest.approx(want, rel=1e-9, abs=1e-12), f"{pol}; {ctx}"
    return n_checked


NASTY_LATTICE = {"p_dead_start": 0.15, "p_truncated": 0.2, "p_mixed": 0.3}


@pytest.fixture(scope="module")
def lattice():
    return lattice_windows(np.random.default_rng(11), 160, **NASTY_LATTICE)


@pytest.fixture(scope="module")
def lattice_tiny():
    """Same lattice at 2**-30 ≈ 1e-9 prices."""
    return lattice_windows(np.random.default_rng(12), 60, base=2.0**-30, **NASTY_LATTICE)


@pytest.fixture(scope="module")
def continuous():
    return random_windows(
        np.random.default_rng(5), 70, horizon_s=2 * 3600, p_rug=0.02, p_gap=0.08, p_flat=0.03
    )


@pytest.fixture(scope="module")
def mixed():
    """5-minute bars, a hole, then hourly bars; no-trade runs everywhere; truncated windows."""
    return random_windows(
        np.random.default_rng(6),
        60,
        interval_s=300,
        horizon_s=12 * 3600,
        p_rug=0.02,
        p_gap=0.05,
        p_flat=0.05,
        flat_len=(2, 20),
        p_mixed=0.6,
        p_flat_start=0.2,
        p_flat_end=0.2,
        p_flat_tail=0.15,
        p_truncated=0.3,
        mark_truncated=True,
    )


def test_generators_are_nasty(lattice, mixed):
    """The windows really hold what the comparisons claim to cover."""
    for w in (lattice, mixed):
        flat = np.array(
            [is_no_trade_bar(*x) for x in zip(w.open, w.high, w.low, w.close, w.volume, strict=True)]
        )
        first = w.offsets[:-1][w.n_bars > 0]
        last = w.offsets[1:][w.n_bars > 0] - 1
        assert flat.mean() > 0.05 and flat[first].any() and flat[last].any()
        assert (w.status == TRUNCATED).sum() >= 5
        assert len(np.unique(w.dur)) >= 2
    assert np.isin(mixed.dur, [300, 3600]).all() and (mixed.dur == 3600).sum() > 100
    dead = [
        a
        for a in range(mixed.n)
        if mixed.n_bars[a] > 1
        and all(
            is_no_trade_bar(*x)
            for x in zip(*(mixed.bars(a)[k] for k in ("open", "high", "low", "close", "volume")), strict=True)
        )
    ]
    assert dead, "expected a window without any traded bar"


@pytest.mark.parametrize("fzv", [False, True], ids=["no_fill_on_flat", "fill_on_zero_volume"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("template", list(TEMPLATES))
def test_engine_matches_reference(template, policy, fzv, lattice, lattice_tiny, continuous, mixed):
    rng = np.random.default_rng(zlib.crc32(f"{template}/{policy}/{fzv}".encode()))
    checked = 0
    draw = lambda vals: _draw(rng, TEMPLATES[template], vals).model_copy(  # noqa: E731
        update={"fill_on_zero_volume": fzv}
    )
    for _ in range(2):
        checked += _check(lattice, draw(LATTICE), policy)
    checked += _check(lattice_tiny, draw(LATTICE), policy)
    checked += _check(continuous, draw(CONTINUOUS), policy)
    checked += _check(mixed, draw(CONTINUOUS), policy)
    assert checked > 50


@pytest.mark.parametrize("fzv", [False, True])
@pytest.mark.parametrize("policy", POLICIES)
def test_general_kernel_matches_reference_on_plain_rows(policy, fzv, lattice, continuous, mixed):
    """The bar simulator (not the first-passage path) on plain TP/SL configs."""
    rng = np.random.default_rng(3)
    for keys in (("tp",), ("sl",), ("tp", "sl"), ()):
        for w, vals in ((lattice, LATTICE), (continuous, CONTINUOUS), (mixed, CONTINUOUS)):
            cfg = _draw(rng, keys, vals).model_copy(update={"fill_on_zero_volume": fzv})
            _check(w, cfg, policy, method="general")
            _check(w, cfg, policy, method="tpsl")


def test_reference_sees_every_branch(lattice):
    """Guard against a generator too tame to exercise the rules: every exit reason and ambiguity occur."""
    seen, amb = set(), 0
    cfgs = [
        Strategy(tp_ladder="1.5:0.5,2:0.5", sl=0.5, breakeven_at=1.25, trail=0.5, trail_activation=2.0),
        Strategy(tp=2.0, sl=0.75, time_stop_hours=0.05),
        Strategy(dip=0.5, dip_window_min=2),
        Strategy(trail=0.25),
        Strategy(breakeven_at=1.5, sl=0.5),
    ]
    moved = 0  # trades that no-trade bars change (vs fill_on_zero_volume)
    for cfg in cfgs:
        old = cfg.model_copy(update={"fill_on_zero_volume": True}).model_dump()
        for a in range(lattice.n):
            trunc = int(lattice.status[a]) == TRUNCATED
            r = reference_trade(lattice.bars(a), cfg.model_dump(), "pessimistic", 60, trunc)
            seen.add(r["exit_reason"])
            amb += r["ambiguous"]
            r0 = reference_trade(lattice.bars(a), old, "pessimistic", 60, trunc)
            moved += (r["exit_reason"], r["exit_ts"], r["entry_ts"]) != (
                r0["exit_reason"],
                r0["exit_ts"],
                r0["entry_ts"],
            )
    assert seen == set(EXIT_REASONS)
    assert amb > 5
    assert moved > 20


# ------------------------------------------------------------------------------------------ properties


def _param_sets(rng, vals, n=12, dip=True):
    names = [t for t in TEMPLATES if dip or "dip" not in t]
    return [_draw(rng, TEMPLATES[names[int(rng.integers(len(names)))]], vals) for _ in range(n)]


def test_pessimistic_le_ohlc_le_optimistic(lattice, continuous):
    """Without dip entries, the policies differ only on the closing ambiguous bar, where the
    pessimistic outcome (all at the stop) is the worst and the optimistic the best."""
    rng = np.random.default_rng(8)
    for w, vals in ((lattice, LATTICE), (continuous, CONTINUOUS)):
        cfgs = _param_sets(rng, vals, dip=False)
        params = encode_params(cfgs)
        res = {p: simulate(w, params, intrabar=p) for p in POLICIES}
        pe, op, oh = (res[p].ret for p in POLICIES)
        ok = ~np.isnan(pe)
        assert np.all(pe[ok] <= op[ok] + 1e-12)
        assert np.all((pe[ok] - 1e-12 <= oh[ok]) & (oh[ok] <= op[ok] + 1e-12))
        for p in POLICIES:  # the side-by-side columns agree with the per-policy runs
            np.testing.assert_array_equal(res[p].ret_pessimistic, pe)
            np.testing.assert_array_equal(res[p].ret_optimistic, op)
            np.testing.assert_array_equal(res[p].ambiguous, res["pessimistic"].ambiguous)
        if w is lattice:  # the lattice makes ambiguous bars common: the bound must be exercised
            strict = ok & res["pessimistic"].ambiguous
            assert strict.sum() > 0 and np.any(pe[strict] < op[strict])


def test_zero_costs_and_fractions(lattice, continuous):
    """With zero fees and slippage ret == ret_gross exactly, and the fraction-weighted exit price
    reproduces ret_gross (the sold fractions sum to 1)."""
    rng = np.random.default_rng(9)
    for w, vals in ((lattice, LATTICE), (continuous, CONTINUOUS)):
        cfgs = [c.model_copy(update={"fee_bps": 0.0, "slippage_bps": 0.0}) for c in _param_sets(rng, vals)]
        ta = simulate(w, encode_params(cfgs))
        ok = ~np.isnan(ta.ret)
        np.testing.assert_array_equal(ta.ret[ok], ta.ret_gross[ok])
        np.testing.assert_allclose(
            ta.exit_price[ok] / ta.entry_price[ok] - 1, ta.ret_gross[ok], rtol=1e-12, atol=1e-12
        )
        assert np.all(ta.peak_mult[ok] >= 1.0)
        assert np.all(ta.hold_s[ok] >= 0)


def test_costs_lower_every_return(continuous):
    cfg = Strategy(tp_ladder="1.5:0.5,3:0.25", sl=0.7, trail=0.3, trail_activation=1.3)
    free = cfg.model_copy(update={"fee_bps": 0.0, "slippage_bps": 0.0})
    ta = simulate(continuous, encode_params([cfg, free]))
    ok = ~np.isnan(ta.ret[0])
    assert np.all(ta.ret[0, ok] < ta.ret[1, ok])
    kc = (1 - 0.003) ** 2 * (1 - 0.005) / 1.005
    np.testing.assert_allclose(ta.ret[0, ok], kc * (1 + ta.ret[1, ok]) - 1, rtol=1e-12)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("template", list(TEMPLATES))
def test_trace_matches_reference_fills(template, policy, lattice, mixed):
    """``trace_trade`` (the kernel's own trace hooks) lists exactly the reference's fills, one by one,
    and an intrabar stop fill happens at the stop level the trace says was in force on that bar."""
    from alertlab.engine.trace import trace_trade

    rng = np.random.default_rng(zlib.crc32(f"trace/{template}/{policy}".encode()))
    checked = stops_checked = 0
    for w, vals in ((lattice, LATTICE), (mixed, CONTINUOUS)):
        cfg = _draw(rng, TEMPLATES[template], vals)
        d = cfg.model_dump()
        for a in rng.choice(w.n, size=min(w.n, 30), replace=False):
            a = int(a)
            tr = trace_trade(w, a, cfg, intrabar=policy)
            if w.offsets[a + 1] == w.offsets[a]:
                assert tr.exit_reason == "no_trade" and tr.fills.empty
                continue
            r = reference_trade(w.bars(a), d, policy, w.interval_s, int(w.status[a]) == TRUNCATED)
            assert tr.exit_reason == r["exit_reason"]
            want = [(fr, px, int(st), why) for fr, px, st, why in r["fills"]]
            got = list(
                zip(
                    tr.fills["fraction"],
                    tr.fills["price"],
                    tr.fills["ts"].tolist(),
                    tr.fills["reason"],
                    strict=True,
                )
            )
            assert len(got) == len(want), (a, d, got, want)
            for g, x in zip(got, want, strict=True):
                assert g[0] == pytest.approx(x[0], abs=1e-12) and g[1] == pytest.approx(x[1], rel=1e-12)
                assert g[2:] == x[2:], (a, d, got, want)
            if r["exit_reason"] == "no_fill":
                continue
            checked += 1
            assert tr.entry_price == pytest.approx(r["entry_price"], rel=1e-12)
            assert tr.exit_price == pytest.approx(r["exit_price"], rel=1e-12)
            last = tr.fills.iloc[-1]
            if last["reason"] in ("sl", "trail", "breakeven"):
                b = w.bars(a)
                ends = np.flatnonzero(b["ts"] + b["dur"] == last["ts"])  # bars the fill may close
                at_open = np.flatnonzero((b["ts"] == last["ts"]) & (b["open"] == last["price"]))
                if ends.size and not at_open.size:  # an intrabar stop fill: at the level in force
                    assert last["price"] == pytest.approx(tr.levels["stop"].iloc[int(ends[0])], rel=1e-12)
                    stops_checked += 1
    assert checked > 10
    if {"sl", "trail", "trail_act"} & set(TEMPLATES[template]):
        assert stops_checked > 0
