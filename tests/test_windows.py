"""The window stage against plain-loop references written from issue 7's rules.

Series at the data's own resolution (finer bars win where intervals overlap), optional
aggregation up to I, the bad-tick guard, the cut (first traded bar at/after the call, stale rule
max(lag, bar duration), truncated/coverage/gap_share), on random nasty markets.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertlab.windows import BAD_ENTRY, MISSING, OK, STALE, TRUNCATED
from alertlab.windows.cache import gather
from alertlab.windows.cut import cut_windows, load_series

FIELDS = ["chain", "token", "interval_s", "ts", "open", "high", "low", "close", "volume"]


# ----------------------------------------------------------------------------------- references


def ref_series(rows, token, interval_s):
    """One token's series: list of dicts (ts, dur, open, high, low, close, volume), sorted by ts.

    Candidates by priority (shorter duration first; at equal duration a stored bar before an
    aggregated one); a candidate overlapping an already kept bar in time is dropped.
    """
    mine = [r for r in rows if r[1] == token]
    cands = []  # (priority, bar)
    if interval_s is None:
        for r in mine:
            cands.append(
                ((r[2], 0), dict(ts=r[3], dur=r[2], open=r[4], high=r[5], low=r[6], close=r[7], volume=r[8]))
            )
    else:
        slots = {}
        for r in mine:
            if r[2] >= interval_s:
                cands.append(
                    (
                        (r[2], 0),
                        dict(ts=r[3], dur=r[2], open=r[4], high=r[5], low=r[6], close=r[7], volume=r[8]),
                    )
                )
            else:
                slots.setdefault(r[3] // interval_s * interval_s, []).append(r)
        for slot, rs in slots.items():
            best = max(r[2] for r in rs)
            rs = sorted([r for r in rs if r[2] == best], key=lambda r: r[3])
            cands.append(
                (
                    (interval_s, 1),
                    dict(
                        ts=slot,
                        dur=interval_s,
                        open=rs[0][4],
                        high=max(r[5] for r in rs),
                        low=min(r[6] for r in rs),
                        close=rs[-1][7],
                        volume=sum(r[8] for r in rs),
                    ),
                )
            )
    kept = []
    for _, b in sorted(cands, key=lambda c: (c[0], c[1]["ts"])):
        if all(b["ts"] + b["dur"] <= k["ts"] or k["ts"] + k["dur"] <= b["ts"] for k in kept):
            kept.append(b)
    return sorted(kept, key=lambda b: b["ts"])


def ref_guard(series, k):
    """Guarded high/low and suspect flag per bar (neighbours: previous close, next open)."""
    out = []
    for i, b in enumerate(series):
        pc = series[i - 1]["close"] if i > 0 else b["open"]
        no = series[i + 1]["open"] if i + 1 < len(series) else b["close"]
        g = dict(b, high_raw=b["high"], low_raw=b["low"], suspect=False)
        if k is not None:
            if b["high"] > k * max(b["open"], b["close"], pc, no):
                g["high"], g["suspect"] = max(b["open"], b["close"]), True
            if b["low"] < min(b["open"], b["close"], pc, no) / k:
                g["low"], g["suspect"] = min(b["open"], b["close"]), True
        out.append(g)
    return out


def is_no_trade(b):
    return b["volume"] == 0 and b["open"] == b["high"] == b["low"] == b["close"]


def ref_cut(series, data_end, ts_ms, horizon, max_lag):
    """One alert: (status, entry_ts, entry_price, lag, window bars, coverage, gap_share, resolution, n_suspect)."""
    t = -(-ts_ms // 1000)
    after = [b for b in series if b["ts"] >= t]
    if not after:
        return dict(status=MISSING, window=[])
    traded = [b for b in after if not is_no_trade(b)]
    if not traded:
        return dict(status=STALE, window=[], lag=-1)
    e = traded[0]
    lag = e["ts"] - t
    res = dict(entry_ts=e["ts"], entry_price=e["open"], lag=lag, window=[])
    if lag > max(max_lag, e["dur"]):
        return dict(res, status=STALE)
    if not e["open"] > 0:
        return dict(res, status=BAD_ENTRY)
    end = e["ts"] + horizon
    win = [b for b in series if e["ts"] <= b["ts"] < end]
    known_end = min(data_end, end)
    covered = sum(max(0, min(b["ts"] + b["dur"], known_end) - b["ts"]) for b in win)
    known = known_end - e["ts"]
    return dict(
        res,
        status=TRUNCATED if data_end < end else OK,
        window=win,
        coverage=max(0.0, min(1.0, known / horizon)),
        gap_share=max(0.0, 1 - covered / known) if known > 0 else 0.0,
        resolution=max(b["dur"] for b in win),
        n_suspect=sum(b["suspect"] for b in win),
    )


# ----------------------------------------------------------------------------------- random nasty markets


def random_token_rows(rng, chain, token, t0):
    """Regimes of 60/300/3600 s bars (any order), holes between and inside, flat zero-volume
    filler, bad ticks (x100-x5000 highs, /1000 lows), genuine pumps, 1e-9 prices, and sometimes a
    second source overlapping the first at another interval."""
    rows = []
    t = t0
    price = float(np.exp(rng.uniform(-21, 2)))
    for _ in range(int(rng.integers(1, 4))):
        iv = int(rng.choice([60, 300, 3600]))
        t = -(-t // iv) * iv + iv * int(rng.integers(0, 3))
        for _k in range(int(rng.integers(1, 40))):
            u = rng.random()
            if u < 0.12:
                t += iv * int(rng.integers(1, 8))  # hole
            o = price
            if rng.random() < 0.3:
                rows.append((chain, token, iv, t, o, o, o, o, 0.0))  # no-trade filler
            else:
                c = o * float(np.exp(rng.normal(0, 0.3)))
                if rng.random() < 0.05:
                    c = o * float(rng.uniform(3, 6))  # a genuine pump bar (closes up there)
                h = max(o, c) * float(np.exp(abs(rng.normal(0, 0.2))))
                lo = min(o, c) * float(np.exp(-abs(rng.normal(0, 0.2))))
                if rng.random() < 0.05:
                    h = max(o, c) * float(rng.uniform(3, 5))  # genuine one-bar wick
                if rng.random() < 0.04:
                    h = max(o, c) * float(rng.uniform(100, 5000))  # bad tick
                if rng.random() < 0.02:
                    lo = min(o, c) / 1000.0
                v = 0.0 if rng.random() < 0.05 else float(rng.random())
                rows.append((chain, token, iv, t, o, h, lo, c, v))
                price = c
            t += iv
    if rng.random() < 0.25 and rows:  # a second source at another interval over part of the range
        iv2 = int(rng.choice([60, 300, 3600]))
        a = rows[int(rng.integers(0, len(rows)))][3] // iv2 * iv2
        taken = {(r[2], r[3]) for r in rows}
        for k in range(int(rng.integers(1, 10))):
            if (iv2, a + k * iv2) not in taken:
                o = price * float(np.exp(rng.normal(0, 0.1)))
                rows.append((chain, token, iv2, a + k * iv2, o, o * 1.2, o * 0.8, o, 1.0))
    if rng.random() < 0.05 and rows:
        r = rows[0]
        rows[0] = (*r[:4], 0.0, r[5], 0.0, r[7], r[8])  # non-positive open (bad entry)
    return rows


def write_bucket(path, rows):
    t = pa.table({k: [r[i] for r in rows] for i, k in enumerate(FIELDS)})
    t = t.cast(
        pa.schema(
            [
                ("chain", pa.string()),
                ("token", pa.string()),
                ("interval_s", pa.int32()),
                ("ts", pa.int64()),
                ("open", pa.float64()),
                ("high", pa.float64()),
                ("low", pa.float64()),
                ("close", pa.float64()),
                ("volume", pa.float64()),
            ]
        )
    )
    pq.write_table(
        t.sort_by([("token", "ascending"), ("interval_s", "ascending"), ("ts", "ascending")]), path
    )


def random_alert_times(rng, rows, n):
    ts = sorted(r[3] for r in rows)
    lo, hi = ts[0] - 7200, ts[-1] + 7200
    out = [
        int(rng.integers(lo, hi)) * 1000 + int(rng.integers(0, 1000)) * int(rng.random() < 0.5)
        for _ in range(n)
    ]
    out += [ts[0] * 1000, ts[-1] * 1000, ts[-1] * 1000 + 1, int(rng.choice(ts)) * 1000 - 1]
    return out


def check_against_reference(rng, tmp_path, interval_s, horizon, max_lag, k):
    tokens = [f"t{i}" for i in range(5)]
    rows = []
    for tok in tokens[:4]:  # t4 has no candles at all
        rows += random_token_rows(rng, "solana", tok, 1_700_000_000 + int(rng.integers(0, 86400)))
    path = tmp_path / "b.parquet"
    write_bucket(path, rows)
    series = load_series(path, tokens, interval_s, k)
    data_end = series["token_end"].copy()
    alerts = []
    for q, tok in enumerate(tokens):
        mine = [r for r in rows if r[1] == tok]
        for ms in random_alert_times(rng, mine, 8) if mine else [1_700_000_000_000]:
            alerts.append((q, ms))
    codes = np.array([a[0] for a in alerts])
    ms = np.array([a[1] for a in alerts], np.int64)
    cut = cut_windows(codes, ms, series, data_end, horizon, max_lag)
    flat = gather(cut["start"], cut["count"])
    offs = np.concatenate([[0], np.cumsum(cut["count"])])
    n_checked = {s: 0 for s in (OK, MISSING, STALE, BAD_ENTRY, TRUNCATED)}
    for q, tok in enumerate(tokens):
        ser = ref_guard(ref_series(rows, tok, interval_s), k)
        m = series["code"] == q
        got = [
            dict(
                ts=int(series["ts"][j]),
                dur=int(series["dur"][j]),
                high=float(series["high"][j]),
                low=float(series["low"][j]),
                high_raw=float(series["high_raw"][j]),
                suspect=bool(series["suspect"][j]),
            )
            for j in np.flatnonzero(m)
        ]
        assert [(b["ts"], b["dur"], b["high"], b["low"], b["high_raw"], b["suspect"]) for b in ser] == [
            (b["ts"], b["dur"], b["high"], b["low"], b["high_raw"], b["suspect"]) for b in got
        ]
        assert data_end[q] == max((r[3] + r[2] for r in rows if r[1] == tok), default=0)
    for i, (q, t_ms) in enumerate(alerts):
        ser = ref_guard(ref_series(rows, tokens[q], interval_s), k)
        ref = ref_cut(ser, int(data_end[q]), int(t_ms), horizon, max_lag)
        assert cut["status"][i] == ref["status"], (i, tokens[q], t_ms, cut["status"][i], ref)
        n_checked[ref["status"]] += 1
        if "entry_ts" in ref:
            assert cut["entry_ts"][i] == ref["entry_ts"] and cut["entry_lag_s"][i] == ref["lag"]
            assert cut["entry_price"][i] == ref["entry_price"]
        win = [int(series["ts"][j]) for j in flat[offs[i] : offs[i + 1]]]
        assert win == [b["ts"] for b in ref["window"]]
        if ref["status"] in (OK, TRUNCATED):
            assert cut["coverage"][i] == pytest.approx(ref["coverage"], abs=1e-12)
            assert cut["gap_share"][i] == pytest.approx(ref["gap_share"], abs=1e-12)
            assert cut["resolution_s"][i] == ref["resolution"] and cut["n_suspect"][i] == ref["n_suspect"]
            assert cut["data_end_ts"][i] == data_end[q]
    return n_checked


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    interval_s=st.sampled_from([None, None, 60, 300, 900, 3600]),
    horizon_h=st.sampled_from([1, 6, 48]),
    max_lag=st.sampled_from([0, 60, 300, 7200]),
    k=st.sampled_from([None, 10.0, 2.5]),
)
def test_series_guard_and_cut_match_reference(tmp_path_factory, seed, interval_s, horizon_h, max_lag, k):
    rng = np.random.default_rng(seed)
    check_against_reference(rng, tmp_path_factory.mktemp("w"), interval_s, horizon_h * 3600, max_lag, k)


def test_reference_comparison_covers_every_status(tmp_path):
    """The random markets really produce every status (so the comparison above can fail on each)."""
    total = {}
    for seed in range(12):
        rng = np.random.default_rng(seed)
        got = check_against_reference(rng, tmp_path, None, 48 * 3600, 300, 10.0)
        for s_, v in got.items():
            total[s_] = total.get(s_, 0) + v
    assert all(total[s_] > 0 for s_ in (OK, MISSING, STALE, TRUNCATED)), total


# ----------------------------------------------------------------------------------- hand cases


def _one_token(tmp_path, bars, interval_s=None, k=10.0, horizon=48 * 3600, lag=300, alerts_ms=()):
    rows = [("solana", "x", *b) for b in bars]
    path = tmp_path / "one.parquet"
    write_bucket(path, rows)
    s = load_series(path, ["x"], interval_s, k)
    cut = cut_windows(
        np.zeros(len(alerts_ms), np.int64), np.asarray(alerts_ms, np.int64), s, s["token_end"], horizon, lag
    )
    return s, cut


def test_hourly_call_enters_next_hour_never_before(tmp_path):
    """Call at 10:10 on hourly bars: entry at the 11:00 open (lag 50 min <= 1 h bar), ok."""
    h0 = 1_700_002_800  # a full hour
    bars = [(3600, h0 + i * 3600, 1.0 + i, 1.5 + i, 0.9 + i, 1.0 + i, 5.0) for i in range(60)]
    s, cut = _one_token(tmp_path, bars, alerts_ms=[(h0 + 600) * 1000])
    assert cut["status"][0] == OK and cut["entry_ts"][0] == h0 + 3600 and cut["entry_price"][0] == 2.0
    assert cut["entry_lag_s"][0] == 3000 and cut["count"][0] == 48 and cut["resolution_s"][0] == 3600
    # the same call on 1-minute bars that start 10 minutes late is stale (300 s limit kept)
    bars1 = [(60, h0 + 1200 + i * 60, 1.0, 1.1, 0.9, 1.0, 1.0) for i in range(100)]
    _, cut1 = _one_token(tmp_path, bars1, alerts_ms=[(h0 + 600) * 1000])
    assert cut1["status"][0] == STALE and cut1["entry_lag_s"][0] == 600


def test_entry_waits_for_a_traded_bar_and_truncation(tmp_path):
    t0 = 1_700_000_400
    bars = [
        (300, t0, 1.0, 1.0, 1.0, 1.0, 0.0),  # no-trade filler right at the call
        (300, t0 + 300, 1.2, 1.3, 1.1, 1.25, 3.0),
        (300, t0 + 600, 1.25, 1.25, 1.25, 1.25, 0.0),
        (3600, t0 // 3600 * 3600 + 7200, 1.3, 1.4, 1.2, 1.3, 2.0),
    ]
    _, cut = _one_token(tmp_path, bars, alerts_ms=[t0 * 1000])
    assert cut["status"][0] == TRUNCATED and cut["entry_ts"][0] == t0 + 300 and cut["entry_price"][0] == 1.2
    end = t0 // 3600 * 3600 + 7200 + 3600
    assert cut["data_end_ts"][0] == end and cut["count"][0] == 3
    assert cut["coverage"][0] == pytest.approx((end - (t0 + 300)) / (48 * 3600))
    covered = 600 + 3600
    assert cut["gap_share"][0] == pytest.approx(1 - covered / (end - (t0 + 300)))


def test_interval_aggregates_finer_keeps_coarser(tmp_path):
    t0 = 1_700_002_800
    bars = [(60, t0 + i * 60, 1.0 + i, 1.0 + i + 0.5, 1.0 + i - 0.5, 1.0 + i + 0.2, 1.0) for i in range(10)]
    bars += [(3600, t0 + 3600 * (1 + i), 9.0, 10.0, 8.0, 9.5, 2.0) for i in range(3)]
    s, _ = _one_token(tmp_path, bars, interval_s=300)
    assert s["ts"].tolist() == [t0, t0 + 300, t0 + 3600, t0 + 7200, t0 + 10800]
    assert s["dur"].tolist() == [300, 300, 3600, 3600, 3600]
    assert s["open"][0] == 1.0 and s["high"][0] == 5.5 and s["low"][0] == 0.5 and s["close"][0] == 5.2
    assert s["volume"][0] == 5.0


# ----------------------------------------------------------------------------------- the guard


def test_guard_clamps_ticks_keeps_wicks_and_pumps(tmp_path):
    t0 = 1_700_002_800
    p = [1.8] * 12
    bars = [(3600, t0 + i * 3600, p[i], p[i] * 1.02, p[i] * 0.98, p[i], 1.0) for i in range(12)]
    bars[3] = (3600, t0 + 3 * 3600, 1.8, 2255.0, 1.7, 1.8, 1.0)  # bad tick: 1250x
    bars[6] = (3600, t0 + 6 * 3600, 1.8, 1.8 * 4.5, 1.7, 1.8, 1.0)  # genuine one-bar 4.5x wick
    bars[8] = (3600, t0 + 8 * 3600, 1.8, 1.85, 1.8 / 5000, 1.8, 1.0)  # bad low tick
    s, _ = _one_token(tmp_path, bars)
    assert s["suspect"].tolist() == [i in (3, 8) for i in range(12)]
    assert s["high"][3] == 1.8 and s["high_raw"][3] == 2255.0
    assert s["high"][6] == 1.8 * 4.5 and s["low"][8] == 1.8 and s["low_raw"][8] == 1.8 / 5000
    # a genuine multi-bar 5x pump: each bar's high is confirmed by its close / the next open
    pump = [1.0, 1.8, 3.2, 5.0, 5.1, 4.0]
    bars2 = [
        (
            300,
            t0 + i * 300,
            (pump[i - 1] if i else 1.0),
            pump[i] * 1.05,
            (pump[i - 1] if i else 1.0) * 0.95,
            pump[i],
            1.0,
        )
        for i in range(len(pump))
    ]
    s2, _ = _one_token(tmp_path, bars2)
    assert not s2["suspect"].any() and np.array_equal(s2["high"], s2["high_raw"])
    # even a single-bar 5x candle that closes at the top is a trade, not a tick
    bars3 = [
        (300, t0, 1.0, 1.0, 1.0, 1.0, 1.0),
        (300, t0 + 300, 1.0, 5.2, 1.0, 5.0, 1.0),
        (300, t0 + 600, 5.0, 5.0, 4.0, 4.2, 1.0),
    ]
    s3, _ = _one_token(tmp_path, bars3)
    assert not s3["suspect"].any()
    # off: nothing clamped
    s4, _ = _one_token(tmp_path, bars, k=None)
    assert not s4["suspect"].any() and s4["high"][3] == 2255.0


def test_gather_empty_and_ranges():
    assert gather(np.array([5, 0, 2]), np.array([0, 0, 0])).size == 0
    assert list(gather(np.array([5, 0, 2]), np.array([2, 0, 3]))) == [5, 6, 2, 3, 4]


# ----------------------------------------------------------------------------------- metrics on mixed windows


def test_metrics_on_mixed_guarded_windows_match_reference(tmp_path):
    """Metrics over windows cut from the random nasty markets (mixed 1m/5m/1h bars, holes, no-trade
    filler, bad ticks, truncated windows) against the plain reference, guarded and raw ATH."""
    from alertlab.truth.metrics import compute_metrics
    from alertlab.windows.model import Windows
    from test_metrics import NULL_METRICS, assert_matches, ref_metrics

    n_mixed = n_sus = n_trunc = 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        tokens = [f"t{i}" for i in range(4)]
        rows = []
        for tok in tokens:
            rows += random_token_rows(rng, "solana", tok, 1_700_000_000 + int(rng.integers(0, 86400)))
        path = tmp_path / f"m{seed}.parquet"
        write_bucket(path, rows)
        series = load_series(path, tokens, None, 10.0)
        codes, ms = [], []
        for q, tok in enumerate(tokens):
            for t in random_alert_times(rng, [r for r in rows if r[1] == tok], 10):
                codes.append(q)
                ms.append(t)
        cut = cut_windows(
            np.array(codes), np.array(ms, np.int64), series, series["token_end"], 6 * 3600, 3600
        )
        flat = gather(cut["start"], cut["count"])
        n = len(codes)
        w = Windows(
            interval_s=60,
            horizon_s=6 * 3600,
            alert_id=np.arange(n).astype(str).astype(object),
            caller=np.full(n, "c", object),
            chain=np.full(n, "solana", object),
            token=np.asarray(tokens, object)[codes],
            alert_ts_ms=np.array(ms, np.int64),
            is_first_call=np.zeros(n, bool),
            status=cut["status"],
            entry_ts=cut["entry_ts"],
            entry_price=cut["entry_price"],
            offsets=np.concatenate([[0], np.cumsum(cut["count"])]),
            **{
                k: series[k][flat]
                for k in ("ts", "dur", "open", "high", "low", "close", "volume", "high_raw", "low_raw")
            },
            coverage=cut["coverage"],
            n_suspect=cut["n_suspect"],
        )
        ref = []
        for i in range(n):
            if w.status[i] not in (OK, TRUNCATED) or w.n_bars[i] == 0:
                ref.append(dict(NULL_METRICS))
            else:
                ref.append(ref_metrics(w.bars(i), int(w.entry_ts[i]), float(w.entry_price[i]), 0))
                b = w.bars(i)
                n_mixed += len(set(b["dur"].tolist())) > 1
                n_sus += bool(w.n_suspect[i])
                n_trunc += w.status[i] == TRUNCATED
        assert_matches(compute_metrics(w), ref)
    assert n_mixed > 0 and n_sus > 0 and n_trunc > 0, (n_mixed, n_sus, n_trunc)
