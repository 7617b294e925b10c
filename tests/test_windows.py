"""Window cutting and the path cache against a plain-loop reference."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertlab.windows import BAD_ENTRY, MISSING, OK, STALE
from alertlab.windows.cache import _load_bucket_bars, cut_windows, gather


def ref_cut(alert_token, alert_ts_ms, series, interval_s, horizon_s, max_lag):
    """Obviously-correct window cut: one alert at a time, one bar at a time."""
    out = []
    for tok, ts_ms in zip(alert_token, alert_ts_ms, strict=True):
        nominal = math.ceil(ts_ms / 1000 / interval_s) * interval_s
        if ts_ms % (interval_s * 1000) == 0:
            nominal = ts_ms // 1000
        bars = series.get(tok, [])
        entry = None
        for b in bars:
            if b[0] >= nominal:
                entry = b
                break
        if entry is None:
            out.append((MISSING, None, None, []))
            continue
        if entry[0] - nominal > max_lag:
            out.append((STALE, entry[0], entry[1], []))
            continue
        if not (entry[1] > 0):
            out.append((BAD_ENTRY, entry[0], entry[1], []))
            continue
        win = [b for b in bars if entry[0] <= b[0] < entry[0] + horizon_s]
        out.append((OK, entry[0], entry[1], win))
    return out


def _random_market(rng, n_tokens, interval_s):
    series = {}
    for t in range(n_tokens):
        n = int(rng.integers(0, 60))
        start = 1_700_000_000 // interval_s * interval_s + int(rng.integers(0, 50)) * interval_s
        steps = rng.choice([1, 1, 1, 2, 7], size=n)  # gaps
        ts = start + np.cumsum(steps) * interval_s
        opens = np.exp(rng.normal(-15, 5, size=n))
        opens[rng.random(n) < 0.05] = 0.0  # bad entries
        series[t] = [(int(a), float(o)) for a, o in zip(ts, opens, strict=True)]
    return series


def _bars_dict(series):
    code, ts, op = [], [], []
    for t in sorted(series):
        for a, o in series[t]:
            code.append(t)
            ts.append(a)
            op.append(o)
    n = len(ts)
    arr = np.asarray(op, np.float64)
    return {"code": np.asarray(code, np.int64), "ts": np.asarray(ts, np.int64), "open": arr,
            "high": arr * 1.1, "low": arr * 0.9, "close": arr, "volume": np.zeros(n)}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), interval_s=st.sampled_from([60, 300]),
       horizon_bars=st.integers(1, 40), lag_bars=st.integers(0, 6))
def test_cut_matches_reference(seed, interval_s, horizon_bars, lag_bars):
    rng = np.random.default_rng(seed)
    series = _random_market(rng, 6, interval_s)
    bars = _bars_dict(series)
    n_alerts = 40
    tok = rng.integers(0, 7, size=n_alerts)  # token 6 has no candles at all
    base = 1_700_000_000 * 1000
    ts_ms = base + rng.integers(-20 * interval_s, 90 * interval_s, size=n_alerts) * 1000
    ts_ms[::3] += rng.integers(0, interval_s * 1000, size=len(ts_ms[::3]))  # off-boundary, ms precision
    # alerts exactly at the last bar and after the end of data
    for t, s in series.items():
        if s:
            ts_ms[t] = s[-1][0] * 1000
            ts_ms[t + 7] = s[-1][0] * 1000 + 1
    horizon_s, max_lag = horizon_bars * interval_s, lag_bars * interval_s
    status, ets, ep, start, cnt = cut_windows(tok, ts_ms, bars, interval_s, horizon_s, max_lag)
    ref = ref_cut(tok, ts_ms, series, interval_s, horizon_s, max_lag)
    flat = gather(start, cnt)
    offs = np.concatenate([[0], np.cumsum(cnt)])
    for i, (rs, rts, rop, rwin) in enumerate(ref):
        assert status[i] == rs, (i, status[i], rs)
        if rs != MISSING:
            assert ets[i] == rts
            assert ep[i] == rop or (np.isnan(ep[i]) and np.isnan(rop))
        got = [(int(bars["ts"][j]), float(bars["open"][j])) for j in flat[offs[i]:offs[i + 1]]]
        assert got == rwin


def test_boundary_alert_enters_that_bar():
    bars = {"code": np.zeros(3, np.int64), "ts": np.array([600, 660, 720]), "open": np.ones(3),
            "high": np.ones(3), "low": np.ones(3), "close": np.ones(3), "volume": np.zeros(3)}
    st_, ets, *_ = cut_windows(np.array([0, 0]), np.array([660_000, 660_001]), bars, 60, 3600, 300)
    assert list(st_) == [OK, OK]
    assert list(ets) == [660, 720]


def test_gather_empty_and_ranges():
    assert gather(np.array([5, 0, 2]), np.array([0, 0, 0])).size == 0
    assert list(gather(np.array([5, 0, 2]), np.array([2, 0, 3]))) == [5, 6, 2, 3, 4]


def _write_bucket(path, rows):
    t = pa.table({k: [r[i] for r in rows] for i, k in enumerate(
        ["chain", "token", "interval_s", "ts", "open", "high", "low", "close", "volume"])})
    t = t.cast(pa.schema([("chain", pa.string()), ("token", pa.string()), ("interval_s", pa.int32()),
                          ("ts", pa.int64()), ("open", pa.float64()), ("high", pa.float64()),
                          ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.float64())]))
    pq.write_table(t, path)


def ref_aggregate(rows, token, interval_s):
    """Per I-slot: native I bar if present; else aggregate the coarsest finer interval present."""
    native = {r[3]: r for r in rows if r[1] == token and r[2] == interval_s}
    slots: dict[int, list] = {}
    for r in rows:
        if r[1] == token and r[2] < interval_s and interval_s % r[2] == 0:
            slots.setdefault(r[3] // interval_s * interval_s, []).append(r)
    out = {ts: (r[4], r[5], r[6], r[7], r[8]) for ts, r in native.items()}
    for slot, rs in slots.items():
        if slot in native:
            continue
        best = max(r[2] for r in rs)
        rs = sorted([r for r in rs if r[2] == best], key=lambda r: r[3])
        out[slot] = (rs[0][4], max(r[5] for r in rs), min(r[6] for r in rs), rs[-1][7], sum(r[8] for r in rs))
    return sorted(out.items())


@pytest.mark.parametrize("interval_s", [60, 300, 3600])
def test_aggregation_up_never_down(tmp_path, interval_s):
    rng = np.random.default_rng(interval_s)
    rows = []
    for tok in ("a", "b"):
        t0 = 1_700_000_000 // 3600 * 3600
        for iv, n in ((60, 50), (300, 30), (3600, 5)):  # 1m, then 5m, then 1h regime
            for k in range(n):
                if rng.random() < 0.15:
                    continue  # missing bar
                o = float(np.exp(rng.normal(-10, 3)))
                rows.append(("solana", tok, iv, t0 + k * iv, o, o * 1.5, o * 0.5, o * 1.1, float(rng.random())))
            t0 += n * iv
    path = tmp_path / "b00.parquet"
    _write_bucket(path, sorted(rows, key=lambda r: (r[1], r[2], r[3])))
    bars = _load_bucket_bars(path, ["a", "b"], interval_s)
    for code, tok in enumerate(["a", "b"]):
        m = bars["code"] == code
        got = list(zip(bars["ts"][m].tolist(), zip(*(bars[k][m].tolist() for k in
                                                      ("open", "high", "low", "close", "volume")), strict=True),
                       strict=True))
        exp = ref_aggregate(rows, tok, interval_s)
        assert [g[0] for g in got] == [e[0] for e in exp]
        for g, e in zip(got, exp, strict=True):
            np.testing.assert_allclose(g[1], e[1], rtol=1e-12)
        assert np.all(np.diff(bars["ts"][m]) > 0)
