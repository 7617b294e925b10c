"""Baseline path metrics against a plain-Python reference written from the spec."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertlab.truth.metrics import BASELINE_COLUMNS, METRIC_COLUMNS, baseline_table, compute_metrics
from alertlab.windows import OK, STATUS_NAMES, TRUNCATED

from windowgen import random_windows, windows_from_bars

NULL_METRICS = dict.fromkeys(METRIC_COLUMNS)


def ref_metrics(bars: dict, entry_ts: int, entry: float, interval_s: int) -> dict:
    """One window with bars, straight from the spec: a list of bars, times from bar ts.

    ``high``/``low`` are the guarded extremes; ``ath_mult_raw`` uses ``high_raw`` (the stored highs).
    A bar's close holds until the next bar opens (no-trade time at the last traded price).
    """
    ts = [int(t) for t in bars["ts"]]
    hi = [float(x) for x in bars["high"]]
    hi_raw = [float(x) for x in bars.get("high_raw", bars["high"])]
    lo = [float(x) for x in bars["low"]]
    cl = [float(x) for x in bars["close"]]
    n = len(ts)
    out = dict(NULL_METRICS)
    top = max(hi)
    out["ath_mult"] = top / entry
    out["ath_mult_raw"] = max(hi_raw) / entry
    i_ath = hi.index(top)  # first bar reaching the max
    out["time_to_ath_s"] = ts[i_ath] - entry_ts
    first_nx = {}
    for mult in (2, 3, 4, 5, 10):
        hit = [i for i in range(n) if hi[i] >= mult * entry]
        first_nx[mult] = hit[0] if hit else None
        out[f"time_to_{mult}x_s"] = ts[hit[0]] - entry_ts if hit else None
    out["dd_overall"] = min(lo) / entry - 1
    above = [i for i in range(n) if cl[i] > entry]
    out["dd_initial"] = min(lo[: above[0] + 1]) / entry - 1 if above else out["dd_overall"]
    i2 = first_nx[2]
    if i2 is not None:
        out["dd_pre2x"] = min(lo[: i2 + 1]) / entry - 1
        out["time_underwater_pre2x_s"] = sum(ts[i + 1] - ts[i] for i in range(i2) if cl[i] < entry)
        if i2 < n - 1:
            out["dd_after_2x"] = min(lo[i2 + 1 :]) / (2 * entry) - 1
    if i_ath < n - 1:
        out["dd_after_ath"] = min(lo[i_ath + 1 :]) / top - 1
    out["ret_end"] = cl[-1] / entry - 1
    return out


def ref_all(w) -> list[dict]:
    rows = []
    for i in range(w.n):
        if w.status[i] not in (OK, TRUNCATED) or w.n_bars[i] == 0:
            rows.append(dict(NULL_METRICS))
        else:
            rows.append(ref_metrics(w.bars(i), int(w.entry_ts[i]), float(w.entry_price[i]), w.interval_s))
    return rows


def assert_matches(got: dict, ref: list[dict], idx=None) -> None:
    idx = range(len(ref)) if idx is None else idx
    for r, i in enumerate(idx):
        for c in METRIC_COLUMNS:
            g, e = got[c][r], ref[i][c]
            if c.startswith("time_"):
                assert got[c].dtype == np.int64
                assert (g == -1 and e is None) or g == e, (i, c, g, e)
            else:
                assert got[c].dtype == np.float64
                if e is None:
                    assert math.isnan(g), (i, c, g)
                else:
                    assert math.isclose(g, e, rel_tol=1e-12, abs_tol=1e-15), (i, c, g, e)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    interval_s=st.sampled_from([60, 300, 3600]),
    horizon_bars=st.integers(1, 200),
)
def test_random_windows_match_reference(seed, interval_s, horizon_bars):
    rng = np.random.default_rng(seed)
    w = random_windows(
        rng,
        40,
        interval_s,
        horizon_bars * interval_s,
        p_single=0.1,
        p_plant=0.6,
        p_rug=0.02,
        p_gap=0.1,
        p_flat=0.03,
    )
    assert_matches(compute_metrics(w), ref_all(w))


def test_large_random_sample_and_subset():
    """Full 48 h one-minute windows; the exact plants and pumps hit every branch."""
    w = random_windows(np.random.default_rng(7), 150)
    ref = ref_all(w)
    got = compute_metrics(w)
    assert_matches(got, ref)
    # the sample really exercises the branches
    ok = w.ok
    assert np.sum(got["time_to_10x_s"] >= 0) >= 5
    assert np.sum((got["time_to_2x_s"] >= 0) & np.isnan(got["dd_after_2x"])) >= 1  # 2x on last bar
    assert np.sum(ok & np.isnan(got["dd_after_ath"])) >= 1  # ATH on last bar
    assert np.sum(ok & (got["time_to_ath_s"] == 0)) >= 1  # ATH on the entry bar
    assert np.sum(got["time_to_2x_s"] == 0) >= 1  # 2x in the entry bar
    assert np.sum(ok & (w.n_bars == 1)) >= 1
    gaps = [i for i in np.flatnonzero(ok) if np.any(np.diff(w.bars(i)["ts"]) > w.interval_s)]
    assert gaps
    # a subset through alert_idx, unordered and with repeats
    idx = np.array([5, 3, 3, 140, 0, 77], dtype=np.int64)
    assert_matches(compute_metrics(w, idx), ref, idx)
    assert_matches(compute_metrics(w, parallel=True), ref)


def test_hand_case_gaps_times_from_ts():
    """Entry 1.0; bar times skip slots, so times must come from ts, not bar indices."""
    bars = {
        "k": [0, 1, 5, 6, 20, 21],
        "open": [1.0, 0.9, 0.7, 1.5, 2.5, 2.2],
        "high": [1.05, 0.95, 1.6, 2.0, 3.5, 3.5],
        "low": [0.8, 0.6, 0.7, 1.4, 2.0, 1.0],
        "close": [0.9, 0.7, 1.5, 1.9, 2.2, 1.2],
    }
    w = windows_from_bars([bars], 60, 3600, entry_ts=1_700_000_040)
    m = {k: v[0] for k, v in compute_metrics(w).items()}
    assert m["ath_mult"] == 3.5
    assert m["time_to_ath_s"] == 20 * 60  # first of the two tied maxima
    assert m["time_to_2x_s"] == 6 * 60  # high exactly 2 * E counts
    assert m["time_to_3x_s"] == 20 * 60
    assert m["time_to_4x_s"] == -1 and m["time_to_5x_s"] == -1 and m["time_to_10x_s"] == -1
    assert m["dd_overall"] == pytest.approx(0.6 - 1)
    assert m["dd_initial"] == pytest.approx(0.6 - 1)  # first close > 1 is the bar at k=5
    assert m["dd_pre2x"] == pytest.approx(0.6 - 1)
    # closes 0.9 (k=0) and 0.7 (k=1) are below 1 and hold until the next bar opens (k=1, k=5): the
    # hole after k=1 is time at the last traded price 0.7, so 1 + 4 minutes (issue 7; was 2 bars)
    assert m["time_underwater_pre2x_s"] == 5 * 60
    assert m["dd_after_2x"] == pytest.approx(1.0 / 2.0 - 1)
    assert m["dd_after_ath"] == pytest.approx(1.0 / 3.5 - 1)  # the tie bar's low counts
    assert m["ret_end"] == pytest.approx(0.2)


def test_hand_case_single_bar_and_nulls():
    w = windows_from_bars(
        [
            [[1.0, 2.0, 0.5, 1.0]],  # one bar, 2x in the entry bar, close == E
            [[1e-9, 1e-9, 1e-9, 1e-9, 0.0]],  # one flat zero-volume bar at 1e-9
            None,  # missing
            [[1.0, 1.0, 0.01, 0.01], [0.01, 0.011, 0.009, 0.01]],  # rug in the entry bar
        ],
        60,
        600,
    )
    got = compute_metrics(w)
    m0 = {k: v[0] for k, v in got.items()}
    assert m0["time_to_2x_s"] == 0 and m0["time_to_ath_s"] == 0
    assert m0["time_underwater_pre2x_s"] == 0 and m0["dd_pre2x"] == -0.5
    assert math.isnan(m0["dd_after_2x"]) and math.isnan(m0["dd_after_ath"])
    assert m0["dd_initial"] == -0.5 and m0["ret_end"] == 0.0
    m1 = {k: v[1] for k, v in got.items()}
    assert m1["ath_mult"] == 1.0 and m1["dd_overall"] == 0.0 and m1["time_to_2x_s"] == -1
    assert math.isnan(m1["dd_pre2x"]) and m1["time_underwater_pre2x_s"] == -1
    for c in METRIC_COLUMNS:
        v = got[c][2]
        assert v == -1 if c.startswith("time_") else math.isnan(v)
    m3 = {k: v[3] for k, v in got.items()}
    assert m3["dd_overall"] == pytest.approx(-0.991) and m3["ret_end"] == pytest.approx(-0.99)
    assert m3["dd_after_ath"] == pytest.approx(0.009 - 1)


def test_baseline_table_schema_and_values():
    w = random_windows(np.random.default_rng(3), 60, 300, 12 * 3600, p_nonok=0.3)
    t = baseline_table(w)
    assert tuple(t.column_names) == BASELINE_COLUMNS
    assert t.num_rows == w.n
    assert t.schema.field("alert_ts").type == pa.timestamp("ms", tz="UTC")
    assert t.schema.field("entry_ts").type == pa.timestamp("s", tz="UTC")
    for c in METRIC_COLUMNS:
        assert t.schema.field(c).type == (pa.int64() if c.startswith("time_") else pa.float64())
    d = t.to_pylist()
    ref = ref_all(w)
    for i, row in enumerate(d):
        assert row["alert_id"] == w.alert_id[i] and row["caller"] == w.caller[i]
        assert row["status"] == STATUS_NAMES[w.status[i]]
        assert int(row["alert_ts"].timestamp() * 1000) == w.alert_ts_ms[i]
        if w.entry_ts[i] == 0:
            assert row["entry_ts"] is None
        else:
            assert int(row["entry_ts"].timestamp()) == w.entry_ts[i]
        if np.isnan(w.entry_price[i]):
            assert row["entry_price"] is None
        else:
            assert row["entry_price"] == w.entry_price[i]
        assert row["n_bars"] == w.n_bars[i]
        assert row["coverage"] == w.coverage[i]
        assert row["n_suspect_bars"] == 0 and (row["resolution_s"] is None) == (w.n_bars[i] == 0)
        assert row["is_first_call"] == bool(w.is_first_call[i])
        for c in METRIC_COLUMNS:
            if ref[i][c] is None:
                assert row[c] is None, (i, c)
            else:
                assert math.isclose(row[c], ref[i][c], rel_tol=1e-12, abs_tol=1e-15), (i, c)
    assert any(r["status"] != "ok" for r in d) and any(r["entry_ts"] is None for r in d)


def test_empty_and_bad_index():
    w = windows_from_bars([None, None], 60, 600)
    got = compute_metrics(w, np.array([], dtype=np.int64))
    assert all(len(v) == 0 for v in got.values())
    with pytest.raises(IndexError):
        compute_metrics(w, np.array([2]))
    assert baseline_table(w).num_rows == 2


@pytest.mark.parametrize("interval_s,horizon_s", [(60, 7200), (300, 3 * 3600 + 120), (3600, 3600)])
def test_windowgen_respects_windows_contract(interval_s, horizon_s):
    """The generator other tests rely on produces valid Windows (and the planted cases)."""
    w = random_windows(np.random.default_rng(interval_s), 120, interval_s, horizon_s, p_nonok=0.2)
    assert w.offsets[0] == 0 and np.all(np.diff(w.offsets) >= 0) and w.offsets[-1] == len(w.ts)
    assert np.all(w.low > 0) and np.all(w.low <= np.minimum(w.open, w.close))
    assert np.all(w.high >= np.maximum(w.open, w.close))
    for i in range(w.n):
        b = w.bars(i)
        if w.status[i] != OK:
            assert len(b["ts"]) == 0
            continue
        ts = b["ts"]
        assert len(ts) >= 1 and ts[0] == w.entry_ts[i] and b["open"][0] == w.entry_price[i]
        assert np.all(ts % interval_s == 0) and np.all(np.diff(ts) > 0) and ts[-1] < w.entry_ts[i] + horizon_s
        assert w.entry_ts[i] * 1000 - interval_s * 1000 < w.alert_ts_ms[i] <= w.entry_ts[i] * 1000
    first = {}
    for i in np.argsort(w.alert_ts_ms, kind="stable"):
        key = (w.chain[i], w.token[i])
        if key not in first or (w.alert_ts_ms[i], w.alert_id[i]) < (
            w.alert_ts_ms[first[key]],
            w.alert_id[first[key]],
        ):
            first[key] = i
    assert sorted(first.values()) == list(np.flatnonzero(w.is_first_call))
    assert len(first) < w.n  # tokens are shared between alerts
    assert set(np.unique(w.status)) == {0, 1, 2, 3}


def test_windows_from_bars_forms_and_errors():
    per_bar = [
        {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5},
        {"open": 1.5, "high": 1.6, "low": 1.0, "close": 1.2},
    ]
    arr = [[1.0, 2.0, 0.5, 1.5, 7.0], [1.5, 1.6, 1.0, 1.2, 3.0]]
    cols = {
        "ts": [1_700_000_040, 1_700_000_100],
        "open": [1.0, 1.5],
        "high": [2.0, 1.6],
        "low": [0.5, 1.0],
        "close": [1.5, 1.2],
    }
    w = windows_from_bars([per_bar, arr, cols], 60, 600)
    assert list(w.n_bars) == [2, 2, 2]
    assert np.array_equal(w.ts, np.tile([1_700_000_040, 1_700_000_100], 3))
    assert list(w.volume[2:4]) == [7.0, 3.0]
    with pytest.raises(ValueError, match="first bar"):
        windows_from_bars(
            [{"k": [1, 2], "open": [1, 1], "high": [1, 1], "low": [1, 1], "close": [1, 1]}], 60, 600
        )
    with pytest.raises(ValueError, match="inside the horizon"):
        windows_from_bars(
            [{"k": [0, 10], "open": [1, 1], "high": [1, 1], "low": [1, 1], "close": [1, 1]}], 60, 600
        )
    with pytest.raises(ValueError, match="multiple"):
        windows_from_bars([arr], 60, 600, entry_ts=1_700_000_001)
