"""Issue 7 on the real candle files (``../shared/data/real/candles``; skipped when absent).

Counts come from the data's own manifest (MATCHES.csv) and the CSV rows, never hard-coded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alertlab.app.backtest import run_backtest
from alertlab.app.baseline import run_baseline
from alertlab.engine import Strategy
from alertlab.ingest import ingest_alerts, ingest_candles, token_quality
from alertlab.windows import OK, STALE
from alertlab.windows.cache import load_entry
from alertlab.windows.spec import WindowSpec
from conftest import REAL_DATA

pytestmark = pytest.mark.real
H = 48 * 3600
WICK_TOKEN = "0x000ae314e2a2172a039b26378814c252734f556a"


def _traded(r) -> bool:
    return not (r.volume == 0 and r.open == r.high == r.low == r.close)


def _hourly_start(df: pd.DataFrame) -> int:
    """Index of the first row of the hourly section: on the hour, followed by the next hour, and not
    5 minutes after the previous bar (a 5-minute bar that opens on the hour stays a 5-minute bar)."""
    ts = df["timestamp"].to_numpy()
    for i in range(len(ts) - 1):
        if ts[i] % 3600 == 0 and ts[i + 1] - ts[i] == 3600 and (i == 0 or ts[i] - ts[i - 1] != 300):
            return i
    raise AssertionError("no hourly section")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Store with every real candle file and alerts placed on them; the CSVs by token."""
    from alertlab.store import Home

    real_data = REAL_DATA
    if not (real_data / "MATCHES.csv").exists():
        pytest.skip(f"real data not found at {real_data}: clone alertlab next to shared/ to run these tests")

    root = tmp_path_factory.mktemp("real")
    home = Home(root / "home")
    manifest = pd.read_csv(real_data / "MATCHES.csv")
    ingest_candles(home, [real_data / "candles"])
    rng = np.random.default_rng(7)
    csv, rows, expect = {}, [], []
    for _, m in manifest.iterrows():
        tok = m["token_address"].lower()
        df = pd.read_csv(real_data / "candles" / m["file"])
        csv[tok] = df
        hs = _hourly_start(df)
        last_end = int(df["timestamp"].iloc[-1]) + 3600
        # hourly section: a traded bar on the hour with a full horizon of data after it
        cands = [
            i
            for i in range(hs + 1, len(df))
            if _traded(df.iloc[i]) and df["timestamp"].iloc[i] + H <= last_end
        ]
        for i in rng.choice(cands, size=min(2, len(cands)), replace=False) if cands else []:
            t = int(df["timestamp"].iloc[i])
            rows.append(
                {
                    "caller_name": f"c{len(rows) % 6}",
                    "mint": m["token_address"],
                    "chain": "bsc",
                    "alert_ts_ms": (t - 600) * 1000 - int(rng.integers(0, 1000)),
                }
            )
            expect.append(("hourly", tok, t))
        # 5-minute section: a traded bar, 2 minutes after the call
        five = [i for i in range(1, hs) if _traded(df.iloc[i]) and df["timestamp"].iloc[i] % 300 == 0]
        if five:
            i = int(rng.choice(five))
            t = int(df["timestamp"].iloc[i])
            rows.append(
                {
                    "caller_name": "five",
                    "mint": m["token_address"],
                    "chain": "bsc",
                    "alert_ts_ms": (t - 120) * 1000,
                }
            )
            expect.append(("five", tok, t))
    # just before the wick on bsc_0x000ae314: the last traded hourly bar at least 3 h before the tick
    df = csv[WICK_TOKEN]
    k = int(df["high"].idxmax())
    j = max(i for i in range(k - 3) if _traded(df.iloc[i]) and df["timestamp"].iloc[i] % 3600 == 0)
    t = int(df["timestamp"].iloc[j])
    rows.append({"caller_name": "wick", "mint": WICK_TOKEN, "chain": "bsc", "alert_ts_ms": (t - 300) * 1000})
    expect.append(("wick", WICK_TOKEN, t))
    pd.DataFrame(rows).to_csv(root / "alerts.csv", index=False)
    ingest_alerts(home, [root / "alerts.csv"])
    return home, manifest, csv, expect


def _window_of(w, token: str, entry: int) -> int:
    hit = np.flatnonzero((np.asarray(w.token) == token) & (np.asarray(w.entry_ts) == entry))
    assert len(hit) == 1, (token, entry)
    return int(hit[0])


def test_hourly_and_switch_windows_ok_at_default_settings(real):
    home, manifest, csv, expect = real
    r = run_baseline(home, min_calls=1)
    w = r.windows
    assert w.n == len(expect) and r.status_counts["usable"] == w.n, r.diagnosis
    n_hourly = n_five = 0
    for kind, tok, t in expect:
        i = _window_of(w, tok, t)
        assert w.status[i] == OK and w.coverage[i] == 1.0 and w.resolution_s[i] == 3600
        df = csv[tok]
        inside = df[(df["timestamp"] >= t) & (df["timestamp"] < t + H)]
        b = w.bars(i)
        assert b["ts"].tolist() == inside["timestamp"].tolist()  # every stored bar, none lost
        hs_ts = int(df["timestamp"].iloc[_hourly_start(df)])
        dur = np.where(inside["timestamp"].to_numpy() >= hs_ts, 3600, 300)
        assert b["dur"].tolist() == dur.tolist()
        covered = np.minimum(inside["timestamp"].to_numpy() + dur, t + H) - inside["timestamp"].to_numpy()
        assert w.gap_share[i] == pytest.approx(1 - covered.sum() / H, abs=1e-12)
        if kind == "five":
            n_five += 1
            assert b["dur"][0] == 300 and b["dur"][-1] == 3600  # one continuous window across the switch
            assert w.entry_lag_s[i] == 120
        elif kind == "hourly":
            n_hourly += 1
            assert w.entry_lag_s[i] == 600 or 600 < w.entry_lag_s[i] < 601
    assert n_hourly >= len(manifest) and n_five >= len(manifest) // 2


@pytest.mark.parametrize("interval_s", [60, 300, 3600])
def test_explicit_interval_keeps_coarser_bars(real, interval_s):
    """--interval-seconds 60/300 used to drop the hourly bars (alerts missing, 6 h windows ranked as
    48 h); coarser bars are now kept as they are, finer ones aggregated (3600: the 5-minute bars)."""
    home, _, _, expect = real
    native = run_baseline(home, min_calls=1).windows
    r = run_baseline(home, spec=WindowSpec(interval_s=interval_s), min_calls=1)
    w = r.windows
    assert w.n == native.n
    for kind, tok, t in expect:
        j = _window_of(native, tok, t)
        if kind == "five" and interval_s == 3600:
            # the 5-minute bars are aggregated to hourly slots: the call waits for the next traded slot
            i = int(np.flatnonzero(np.asarray(w.alert_id) == native.alert_id[j])[0])
            assert (
                w.status[i] == STALE
                and w.entry_lag_s[i] > 3600
                or (
                    w.status[i] == OK
                    and set(w.bars(i)["dur"].tolist()) == {3600}
                    and w.entry_lag_s[i] <= 3600
                )
            )
            continue
        i = _window_of(w, tok, t)
        assert w.status[i] == OK and w.coverage[i] == 1.0 and w.resolution_s[i] == 3600
        assert w.bars(i)["ts"].tolist() == native.bars(j)["ts"].tolist()


def test_wick_is_guarded(real):
    home, _, csv, expect = real
    r = run_baseline(home, min_calls=1)
    t = next(t for kind, _tok, t in expect if kind == "wick")
    df = r.to_pandas()
    row = df[(df["token"] == WICK_TOKEN) & (df["caller"] == "wick")].iloc[0]
    assert row["status"] == "ok"
    assert row["ath_mult_raw"] > 1000
    assert row["ath_mult"] < 10 and row["n_suspect_bars"] >= 1
    # the guarded ATH is a traded price: the highest close/open in the window bounds it within the body
    src = csv[WICK_TOKEN]
    inside = src[(src["timestamp"] >= t) & (src["timestamp"] < t + H)]
    body_top = inside[["open", "close"]].max(axis=1)
    entry = inside["open"].iloc[0]
    good = inside["high"] <= 10 * np.maximum(body_top, 0)
    assert row["ath_mult"] == pytest.approx(max(inside["high"][good].max(), body_top.max()) / entry)
    assert (df.loc[df["caller"] == "wick", "time_to_10x_s"].isna()).all()


def test_no_fill_on_a_no_trade_bar(real):
    home, _, _, _ = real
    cfg = Strategy(tp=5.0, sl=0.5, time_stop_hours=3.0)
    bt = run_backtest(cfg, home)
    w = load_entry(bt.cache.path)
    trades = bt.result.trades
    assert len(trades) == bt.status_counts["usable"] > 0
    ids = {a: i for i, a in enumerate(w.alert_id)}
    n_checked = 0
    for tr in trades.itertuples():
        if tr.exit_reason == "no_fill":
            continue
        b = w.bars(ids[tr.alert_id])
        traded = ~(
            (b["volume"] == 0) & (b["open"] == b["high"]) & (b["high"] == b["low"]) & (b["low"] == b["close"])
        )
        e = np.flatnonzero(b["ts"] == int(tr.entry_ts))
        assert len(e) == 1 and traded[e[0]]
        x = np.flatnonzero((b["ts"] == int(tr.exit_ts)) | (b["ts"] + b["dur"] == int(tr.exit_ts)))
        assert len(x) >= 1 and traded[x].any(), (tr.alert_id, tr.exit_reason)
        n_checked += 1
    assert n_checked > 0 and (trades["exit_reason"] == "time").any()
    wick = trades[trades["caller"] == "wick"].iloc[0]
    assert wick["exit_reason"] != "tp" and wick["ret"] < 1.0  # no +392% from the bad tick
    assert set(trades["exit_reason"]) <= {"tp", "sl", "time", "horizon", "end_of_data", "no_fill"}


def test_quality_reports_the_switch_gaps(real):
    home, manifest, csv, _ = real
    tq, gq = token_quality(home)
    assert len(tq) == manifest["token_address"].str.lower().nunique()
    n_expected = 0
    for tok, df in csv.items():
        hs = _hourly_start(df)
        last5 = int(df["timestamp"].iloc[hs - 1])
        first1h = int(df["timestamp"].iloc[hs])
        mine = gq[(gq["token"] == tok) & gq["at_switch"]]
        row = tq[tq["token"] == tok].iloc[0]
        assert "300 s:" in row["intervals"] and "3600 s:" in row["intervals"]
        assert row["no_trade_share"] == pytest.approx(np.mean([not _traded(r) for r in df.itertuples()]))
        if first1h > last5 + 300:
            n_expected += 1
            assert len(mine) == 1 and int(mine["length_s"].iloc[0]) == first1h - last5 - 300
            assert row["n_gaps"] >= 1 and row["n_switch_gaps"] == 1
        else:
            assert mine.empty
    assert n_expected > 0
    assert tq.loc[tq["token"] == WICK_TOKEN, "n_suspect"].iloc[0] >= 2
