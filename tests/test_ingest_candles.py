"""Candle ingestion: formats, interval detection, quarantine, conflicts, the bucketed store, quality.

Interval detection and quality metrics are compared with plain-loop references written from the
rules in ``alertlab.ingest.candles`` / ``alertlab.ingest.quality`` on random nasty series.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alertlab.ingest import bucket_of, candle_bucket_path, detect_intervals, ingest_candles, quality_table
from alertlab.ingest import candles as cmod
from alertlab.ingest.candles import UNDETECTABLE, resolve_from_known
from alertlab.ingest.quality import SUPERSEDED, series_quality
from alertlab.store.candles import STORE_SCHEMA

STD = (60, 300, 900, 1800, 3600, 14400, 86400)
T0 = 1_760_000_400  # a multiple of 3600 (2025-10-09T09:00:00Z)
assert T0 % 3600 == 0


# ---------------------------------------------------------------------------------------------
# plain references


def ref_detect(ts: list[int]) -> list[int]:
    """Rules 1-3b, one bar at a time."""
    return ref_sparse(ts, ref_detect_123(ts))


def ref_sparse(ts: list[int], labels: list[int]) -> list[int]:
    """Rule 3b (sparse is not coarse), written from the docstring: runs of equal labels over the
    labelled bars; a run next to a finer-labelled run takes the finer neighbour's interval unless
    it holds a streak of >= 3 (run at an end) / >= 12 (run between finer runs) exact gaps."""
    pos = [i for i, v in enumerate(labels) if v]
    runs: list[list[int]] = []
    for i in pos:
        if runs and labels[runs[-1][-1]] == labels[i]:
            runs[-1].append(i)
        else:
            runs.append([i])
    out = list(labels)
    for r, run in enumerate(runs):
        lab = labels[run[0]]
        nb = [labels[runs[q][0]] for q in (r - 1, r + 1) if 0 <= q < len(runs)]
        finer = [v for v in nb if v < lab]
        if not finer:
            continue
        need = 12 if len(finer) == 2 else 3
        best = cur = 0
        for i in range(run[0], run[-1]):
            cur = cur + 1 if ts[i + 1] - ts[i] == lab else 0
            best = max(best, cur)
        if best < need:
            for i in run:
                out[i] = min(finer)
    return out


def ref_detect_123(ts: list[int]) -> list[int]:
    """Rules 1-3, one bar at a time."""
    n = len(ts)

    def regular(k: int) -> int:
        g = ts[k + 1] - ts[k]
        return g if g in STD and ts[k] % g == 0 else 0

    gaps = [regular(k) for k in range(n - 1)]

    def in_run(k: int) -> bool:
        return gaps[k] > 0 and (
            (k > 0 and gaps[k - 1] == gaps[k]) or (k + 1 < n - 1 and gaps[k + 1] == gaps[k])
        )

    rule2 = []
    for i in range(n):
        adjacent = [k for k in (i - 1, i) if 0 <= k < n - 1 and gaps[k] > 0]
        strong = [gaps[k] for k in adjacent if in_run(k)]
        rule2.append(min(strong) if strong else (min(gaps[k] for k in adjacent) if adjacent else 0))
    out = list(rule2)
    for i in range(n):
        if rule2[i]:
            continue
        prev = next((rule2[j] for j in range(i - 1, -1, -1) if rule2[j]), 0)
        nxt = next((rule2[j] for j in range(i + 1, n) if rule2[j]), 0)
        if prev and ts[i] % prev == 0:
            out[i] = prev
        elif nxt and ts[i] % nxt == 0:
            out[i] = nxt
    return out


def ref_quality(ts: list[int], vol: list[float], interval: int) -> dict:
    gaps = missing = zero = 0
    for k in range(len(ts)):
        if vol[k] == 0:
            zero += 1
        if k + 1 < len(ts) and ts[k + 1] - ts[k] > interval:
            gaps += 1
            missing += math.ceil((ts[k + 1] - ts[k]) / interval) - 1
    return {
        "n_bars": len(ts),
        "first_ts": ts[0],
        "last_ts": ts[-1],
        "n_gaps": gaps,
        "missing_bars": missing,
        "zero_volume_share": zero / len(ts),
    }


def ref_resolve(code, ts, known):
    """Rule 4, plainly: nearest known bar per aligned interval, ties → smaller interval."""
    out = []
    for c, t in zip(code, ts, strict=True):
        best = None
        for iv in sorted({k[1] for k in known if k[0] == c}):
            if t % iv:
                continue
            d = min(abs(t - k[2]) for k in known if k[0] == c and k[1] == iv)
            if best is None or d < best[0]:
                best = (d, iv)
        out.append(best[1] if best else 0)
    return out


def random_series(rng: random.Random) -> list[int]:
    """Distinct increasing bar opens: regime switches, missing bars, odd transitions, strays."""
    t = T0 - rng.randrange(0, 86400 * 3, 60)
    out: list[int] = []
    for _ in range(rng.randint(1, 4)):
        iv = rng.choice((60, 300, 300, 900, 1800, 3600, 3600, 14400, 86400))
        t = t - t % iv + (iv if out else 0)
        for _ in range(rng.randint(1, 25)):
            if rng.random() < 0.85:
                out.append(t)
            t += iv * (1 if rng.random() < 0.8 else rng.randint(2, 4))
        t += rng.choice((0, 60, 300, 420, 1500, 2100, 7))
        if rng.random() < 0.2:
            out.append(t + rng.randint(1, 50))  # stray, unaligned bar
    return sorted(set(out))


# ---------------------------------------------------------------------------------------------
# kernels against the references


def test_detect_intervals_matches_reference():
    rng = random.Random(5)
    series = [random_series(rng) for _ in range(400)] + [[T0], [T0, T0 + 300], [T0, T0 + 7], []]
    flat = [t for s in series for t in s]
    offsets = np.cumsum([0] + [len(s) for s in series])
    got = detect_intervals(np.array(flat, np.int64), offsets)
    want = [iv for s in series for iv in ref_detect(s)]
    assert got.tolist() == want
    assert (got > 0).mean() > 0.8  # the generator is not degenerate


def test_detect_hand_cases():
    five = [T0 + 300 * k for k in range(72)]
    # switch at an aligned hour: the last 5m bar stays 300, the hourly bars are 3600
    ts = [T0 - 300 * 71 + 300 * k for k in range(72)] + [T0 + 3600 * k for k in range(1, 6)]
    assert detect_intervals(np.array(ts), np.array([0, len(ts)])).tolist() == [300] * 72 + [3600] * 5
    # lone 30-minute transition gap (last 5m bar at :30) does not create an 1800 bar
    ts = [T0 - 1800 - 300 * 71 + 300 * k for k in range(72)] + [T0 + 3600 * k for k in range(5)]
    assert detect_intervals(np.array(ts), np.array([0, len(ts)])).tolist() == [300] * 72 + [3600] * 5
    # 2100 s transition and missing bars: a bar after a gap keeps its run's interval
    ts = five[:10] + five[12:20] + [five[19] + 2100 + 3600 * k for k in range(4)]
    got = detect_intervals(np.array(ts), np.array([0, len(ts)])).tolist()
    assert got == ref_detect(ts)
    # a lone bar between two gaps, aligned to the previous run only
    ts = [T0, T0 + 300, T0 + 600, T0 + 600 + 1500, T0 + 600 + 1500 + 3000]
    assert detect_intervals(np.array(ts), np.array([0, 5])).tolist() == [300, 300, 300, 300, 300]


def sparse_minutes(rng: random.Random, n_minutes: int, p_missing: float, t0: int = T0) -> list[int]:
    return [t0 + 60 * k for k in range(n_minutes) if k == 0 or rng.random() >= p_missing]


def test_sparse_one_minute_series_is_not_relabelled_coarse():
    """Issue 7 item 5: a dead token's 1-minute feed with 40% of minutes missing stays 1-minute."""
    rng = random.Random(11)
    series = [sparse_minutes(rng, 2880, 0.4) for _ in range(20)]
    # a rug: minutes thin out (90% missing) after the first day
    for _ in range(10):
        s = sparse_minutes(rng, 1440, 0.3) + sparse_minutes(rng, 1440, 0.9, T0 + 1440 * 60)
        series.append(sorted(set(s)))
    flat = [t for s in series for t in s]
    offsets = np.cumsum([0] + [len(s) for s in series])
    got = detect_intervals(np.array(flat, np.int64), offsets)
    before = np.array([iv for s in series for iv in ref_detect_123(s)])
    assert (before == 300).sum() > 50  # without rule 3b these series are partly relabelled 5-minute
    assert set(got.tolist()) <= {0, 60} and (got == 60).mean() > 0.99
    assert got.tolist() == [iv for s in series for iv in ref_detect(s)]


def test_sparse_series_ingested_keeps_every_minute(home, tmp_path):
    rng = random.Random(3)
    ts = sparse_minutes(rng, 2880, 0.4)
    tok = "0x" + "ab" * 20
    path = tmp_path / f"bsc_{tok}_20251009-0900_20251011-0900.csv"
    bars_csv(path, ts)
    ingest_candles(home, [path])
    st = store_table(home)
    assert st["ts"].tolist() == ts and set(st["interval_s"]) == {60}


def test_coarse_switch_and_declared_timeframe():
    # 1-minute bars, then a real 5-minute source: the tail run has a long exact-300 streak and stays
    ts = [T0 + 60 * k for k in range(30)] + [T0 + 2100 + 300 * k for k in range(10)]
    assert detect_intervals(np.array(ts), np.array([0, len(ts)])).tolist() == [60] * 30 + [300] * 10
    # a declared timeframe wins; bars off its grid are left undetermined (rule 4 / rejected)
    ts = [T0, T0 + 300, T0 + 420, T0 + 900]
    got = detect_intervals(np.array(ts), np.array([0, 4]), declared=np.array([300]))
    assert got.tolist() == [300, 300, 0, 300]
    with pytest.raises(ValueError, match="declared"):
        detect_intervals(np.array(ts), np.array([0, 4]), declared=np.array([60, 60]))


def test_resolve_from_known_matches_reference():
    rng = random.Random(9)
    for _ in range(50):
        known = [
            (rng.randrange(4), rng.choice((300, 3600, 60)), T0 + rng.randrange(0, 200) * 300)
            for _ in range(30)
        ]
        code = [rng.randrange(5) for _ in range(20)]
        ts = [T0 + rng.randrange(-50, 250) * 300 + rng.choice((0, 0, 60, 7)) for _ in range(20)]
        k = np.array(known, np.int64).reshape(-1, 3)
        got = resolve_from_known(
            np.array(code), np.array(ts, np.int64), k[:, 0], k[:, 1].astype(np.int32), k[:, 2]
        )
        assert got.tolist() == ref_resolve(code, ts, known)


def test_series_quality_matches_reference():
    rng = random.Random(2)
    groups = []
    for _ in range(300):
        iv = rng.choice(STD)
        t = T0 - T0 % iv
        ts = []
        for _ in range(rng.randint(1, 40)):
            ts.append(t)
            t += iv * (1 if rng.random() < 0.7 else rng.randint(2, 9)) + rng.choice((0, 0, 0, 1, iv // 2))
        vol = [0.0 if rng.random() < 0.3 else rng.random() for _ in ts]
        groups.append((ts, vol, iv))
    offsets = np.cumsum([0] + [len(g[0]) for g in groups])
    q = series_quality(
        np.concatenate([g[0] for g in groups]),
        np.concatenate([g[1] for g in groups]),
        offsets,
        np.array([g[2] for g in groups]),
    )
    for i, (ts, vol, iv) in enumerate(groups):
        ref = ref_quality(ts, vol, iv)
        assert {k: q[k][i] for k in ref} == pytest.approx(ref)


# ---------------------------------------------------------------------------------------------
# end-to-end ingests


def bars_csv(path, ts, price=1.0, vol=None, with_keys: tuple[str, str] | None = None) -> None:
    rows = []
    for k, t in enumerate(ts):
        p = price * (1 + 0.01 * (k % 7))
        v = (k % 5) * 10.0 if vol is None else vol
        key = f"{with_keys[0]},{with_keys[1]}," if with_keys else ""
        rows.append(f"{key}{t},{p},{p * 1.05},{p * 0.95},{p * 1.01},{v}")
    head = ("chain,token," if with_keys else "") + "timestamp,open,high,low,close,volume"
    path.write_text(head + "\n" + "\n".join(rows) + "\n")


def evm(i: int) -> str:
    return "0x" + hashlib.sha256(f"tok{i}".encode()).hexdigest()[:40]


def store_table(home) -> pd.DataFrame:
    files = sorted(home.candles_dir.rglob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=STORE_SCHEMA.names)
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def catalog(home, sql: str) -> pd.DataFrame:
    con = home.connect()
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_random_files_end_to_end_against_references(home, tmp_path):
    rng = random.Random(21)
    d = tmp_path / "in"
    d.mkdir()
    known: list[tuple[str, int, int]] = []
    pending: list[tuple[str, int]] = []
    for f in range(12):
        tok = evm(f % 8)  # several files per token, some overlapping in time
        ts = random_series(rng)
        bars_csv(
            d / f"bsc_{tok.upper().replace('0X', '0x')}_20251001-0000_20251002-{f:04d}.csv", ts, price=1e-9
        )
        for t, iv in zip(ts, ref_detect(ts), strict=True):
            (known.append((tok, iv, t)) if iv else pending.append((tok, t)))
    late = ref_resolve([p[0] for p in pending], [p[1] for p in pending], known)  # rule 4
    expected = set(known) | {(tok, iv, t) for (tok, t), iv in zip(pending, late, strict=True) if iv}
    rep = ingest_candles(home, [d])
    assert rep.rows_rejected == sum(1 for iv in late if not iv)
    assert set(rep.reject_reasons) <= {UNDETECTABLE}
    st = store_table(home)
    keys = set(zip(st["token"], st["interval_s"], st["ts"], strict=True))
    assert keys == set(expected)  # every detectable bar stored once, with the reference interval
    assert not st.duplicated(["chain", "token", "interval_s", "ts"]).any()
    assert rep.rows_new == len(st)
    assert rep.rows_accepted == rep.rows_new + rep.rows_duplicate
    # quality table vs the plain reference on the stored series
    q = quality_table(home, chain="BNB")
    assert len(q) == st.groupby(["token", "interval_s"]).ngroups
    for r in q.itertuples():
        s = st[(st.token == r.token) & (st.interval_s == r.interval_s)].sort_values("ts")
        ref = ref_quality(s["ts"].tolist(), s["volume"].tolist(), r.interval_s)
        assert {k: getattr(r, k) for k in ref} == pytest.approx(ref)


def test_switching_file_5m_to_1h(home, tmp_path):
    tok = "0x02e75d28A8AA2a0033b8cf866fCf0bB0E1eE4444"
    start = T0 - 1800 - 300 * 71  # the last 5-minute bar opens at :30, hourly bars start on the hour
    ts = [start + 300 * k for k in range(72)] + [T0 + 3600 * k for k in range(100)]
    path = tmp_path / f"bsc_{tok}_20251008-1627_20251207-1627.csv"
    bars_csv(path, ts)
    rep = ingest_candles(home, [path])
    assert rep.rows_new == 172 and rep.rows_rejected == 0 and rep.conflicts == 0
    st = store_table(home)
    assert set(st["token"]) == {tok.lower()}
    assert st.groupby("interval_s").size().to_dict() == {300: 72, 3600: 100}
    assert candle_bucket_path(home, "bsc", tok.lower()).exists()
    assert {(r["interval_s"], r["n_bars"], r["n_gaps"]) for r in rep.quality} == {
        (300, 72, 0),
        (3600, 100, 0),
    }


def test_birdeye_json_both_key_styles(home, tmp_path):
    mint = "So11111111111111111111111111111111111111112"
    items = [
        {
            "unixTime": T0 + 300 * k,
            "o": 1.0 + k,
            "h": 2.0 + k,
            "l": 0.5 + k,
            "c": 1.5 + k,
            "v": 10.0 * k,
            "address": mint,
            "type": "5m",
        }
        for k in range(6)
    ]
    (tmp_path / f"solana_{mint}_20251009-0900_20251009-1000.json").write_text(
        json.dumps({"data": {"items": items}, "success": True})
    )
    long_items = [
        {
            "chain": "SOL",
            "address": mint,
            "time": T0 + 300 * k,
            "open": 1.0 + k,
            "high": 2.0 + k,
            "low": 0.5 + k,
            "close": 1.5 + k,
            "volume": 10.0 * k,
        }
        for k in range(4, 10)
    ]
    (tmp_path / "birdeye_page2.json").write_text(json.dumps({"data": {"items": long_items}}))
    rep = ingest_candles(home, [tmp_path])
    assert rep.rows_read == 12 and rep.rows_new == 10 and rep.rows_duplicate == 2 and rep.conflicts == 0
    st = store_table(home).sort_values("ts")
    assert (st["chain"] == "solana").all() and (st["token"] == mint).all() and (st["interval_s"] == 300).all()
    assert st["open"].tolist() == [1.0 + k for k in range(10)]
    assert st["volume"].tolist() == [10.0 * k for k in range(10)]


def test_duplicates_conflicts_and_supersede(home, tmp_path):
    tok = evm(1)
    head = "chain,token,ts,open,high,low,close,volume\n"
    a, b, c = T0, T0 + 300, T0 + 600
    f1 = tmp_path / "one.csv"
    f1.write_text(
        head
        + "".join(
            f"bsc,{tok},{r}\n"
            for r in [
                f"{a},1,2,0.5,1.5,10",  # row 2  A
                f"{a},1,2,0.5,1.5,10",  # row 3  exact duplicate of A
                f"{a},1,2,0.5,1.6,20",  # row 4  A': larger volume wins
                f"{b},1,2,0.5,1.5,5",  # row 5  B
                f"{b},1,2,0.5,1.4,5",  # row 6  B': same volume, later row wins
                f"{c},1,2,0.5,1.5,5",  # row 7  C
                f"{c},1,2,0.5,1.5,5",  # row 8  C again: exact duplicate only
            ]
        )
    )
    rep = ingest_candles(home, [f1])
    assert rep.conflicts == 2 and rep.rows_new == 3 and rep.rows_duplicate == 4 and rep.rows_rejected == 0
    st = store_table(home).set_index("ts")
    assert st.loc[a, "close"] == 1.6 and st.loc[a, "volume"] == 20 and st.loc[b, "close"] == 1.4
    sup = catalog(
        home, f"SELECT source_row, raw FROM rejects WHERE reason = '{SUPERSEDED}' ORDER BY source_row"
    )
    assert sup["source_row"].tolist() == [2, 3, 5]
    assert json.loads(sup["raw"][0])["values"]["volume"] == 10
    q = quality_table(home, token=tok)
    assert q["n_conflicts"].tolist() == [2] and q["n_rejected"].tolist() == [0]

    # a later, bigger version supersedes the stored bar; re-ingesting the old file changes nothing
    f2 = tmp_path / "two.csv"
    f2.write_text(head + f"bsc,{tok},{a},1,2,0.5,1.7,30\n")
    rep2 = ingest_candles(home, [f2])
    assert rep2.conflicts == 1 and rep2.rows_new == 0 and rep2.rows_duplicate == 1
    assert store_table(home).set_index("ts").loc[a, "close"] == 1.7
    old = catalog(
        home,
        f"SELECT source_file, source_row FROM rejects WHERE reason = '{SUPERSEDED}' AND source_row IS NULL",
    )
    assert old["source_file"].tolist() == [str(candle_bucket_path(home, "bsc", tok).relative_to(home.root))]
    path = candle_bucket_path(home, "bsc", tok)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    rep3 = ingest_candles(home, [f1, f2])
    assert rep3.rows_new == 0 and (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert quality_table(home, token=tok)["n_conflicts"].tolist() == [2]  # distinct bars, not re-counted


def test_bad_rows_quarantined_with_file_and_row(home, tmp_path):
    tok = evm(2)
    head = "chain,token,timestamp,open,high,low,close,volume\n"
    rows = [
        f"bsc,{tok},{T0},1,2,0.5,1.5,1",  # 2 ok
        f"bsc,{tok},{T0 + 300},NaN,2,0.5,1.5,1",  # 3 NaN price
        f"bsc,{tok},{T0 + 600},abc,2,0.5,1.5,1",  # 4 unparsable price
        f"bsc,{tok},{T0 + 900},0,2,0,1.5,1",  # 5 zero prices
        f"bsc,{tok},{T0 + 1200},1,1.2,0.5,1.5,1",  # 6 high < close
        f"bsc,{tok},{T0 + 1500},1,2,1.2,1.5,1",  # 7 low > open
        f"bsc,{tok},{T0 + 1800},1,2,0.5,1.5,-1",  # 8 negative volume
        f"bsc,{tok},{T0 + 2100},1,2,0.5,1.5,",  # 9 missing volume
        f"bsc,{tok},yesterday,1,2,0.5,1.5,1",  # 10 unparsable ts
        f"bsc,{tok},{(T0 + 2400) * 1000 + 5},1,2,0.5,1.5,1",  # 11 ms with a sub-second part
        f"bsc,0xnothex,{T0 + 2700},1,2,0.5,1.5,1",  # 12 bad EVM token
        f",{tok},{T0 + 3000},1,2,0.5,1.5,1",  # 13 chain missing, EVM token names no chain
        f"bsc,{tok},{T0 + 3300},1,2,0.5,1.5,0",  # 14 ok, zero volume
        f"bsc,{tok},{T0 + 3600},-1,0.9,1.2,1.5,-3",  # 15 several problems
    ]
    f = tmp_path / "bad.csv"
    f.write_text(head + "\n".join(rows) + "\n")
    rep = ingest_candles(home, [f])
    rej = catalog(
        home,
        f"SELECT source_file, source_row, reason, raw FROM rejects WHERE reason <> '{SUPERSEDED}' "
        "ORDER BY source_row",
    )
    assert (rej["source_file"] == str(f.resolve())).all()
    got = dict(zip(rej["source_row"], rej["reason"], strict=True))
    assert sorted(got) == list(range(3, 14)) + [15]
    assert got[3] == "price missing, NaN or infinite" and got[4] == "price missing, NaN or infinite"
    assert got[5] == "non-positive price" and got[6] == "high < max(open, close)"
    assert got[7] == "low > min(open, close)" and got[8] == "negative volume"
    assert got[9] == "volume missing, NaN or infinite" and got[10] == "unparsable ts"
    assert got[11] == "ts not a whole second" and got[12].startswith("invalid bsc address")
    assert "names no chain" in got[13]
    assert got[15].split("; ") == [
        "non-positive price",
        "high < max(open, close)",
        "low > min(open, close)",
        "negative volume",
    ]
    raw = json.loads(rej.set_index("source_row").loc[4, "raw"])
    assert raw["values"]["open"] == "abc" and raw["interval_s"] == 300 and raw["ts"] == T0 + 600
    assert rep.rows_read == 14 and rep.rows_rejected == 12 and rep.rows_new == 2
    assert sum(rep.reject_reasons.values()) == 12 and len(rep.rejects_sample) == 12
    assert [s["row"] for s in rep.rejects_sample] == sorted(got)
    q = quality_table(home, chain="bsc", token=tok.upper().replace("0X", "0x")).iloc[0]
    # rows 3-9 and 15 are quarantined but their ts carry interval 300: they count for the series
    assert q["n_bars"] == 2 and q["n_rejected"] == 8 and q["zero_volume_share"] == 0.5
    assert q["n_gaps"] == 1 and q["missing_bars"] == 10
    ingest_candles(home, [f])
    assert quality_table(home, token=tok).iloc[0]["n_rejected"] == 8  # re-ingest does not inflate it


def test_overlapping_reingest_and_untouched_buckets(home, tmp_path):
    t1, t2 = evm(3), next(evm(i) for i in range(4, 99) if bucket_of(evm(i)) != bucket_of(evm(3)))
    f1, f2, f3 = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    bars_csv(f1, [T0 + 300 * k for k in range(100)], with_keys=("bsc", t1))
    bars_csv(f2, [T0 + 300 * k for k in range(50, 150)], with_keys=("bsc", t1))
    bars_csv(f3, [T0 + 3600 * k for k in range(10)], with_keys=("bsc", t2))
    assert ingest_candles(home, [f1]).rows_new == 100
    r = ingest_candles(home, [f2])
    # values depend on the row index within the file, so the overlap differs → conflicts, not new bars
    assert r.rows_new == 50 and r.rows_duplicate == 50 and r.conflicts > 0
    assert len(store_table(home)) == 150
    p1 = candle_bucket_path(home, "bsc", t1)
    stamp = (p1.stat().st_mtime_ns, p1.read_bytes())
    r = ingest_candles(home, [f3])
    assert r.rows_new == 10 and (p1.stat().st_mtime_ns, p1.read_bytes()) == stamp  # other bucket untouched
    files_before = catalog(home, "SELECT path, n_rows, content_hash FROM candle_files ORDER BY path")
    r = ingest_candles(home, [f1, f2, f3])
    assert r.rows_new == 0 and r.rows_duplicate == 210
    assert (p1.stat().st_mtime_ns, p1.read_bytes()) == stamp
    pd.testing.assert_frame_equal(
        files_before, catalog(home, "SELECT path, n_rows, content_hash FROM candle_files ORDER BY path")
    )
    assert not store_table(home).duplicated(["chain", "token", "interval_s", "ts"]).any()


def test_bucket_files_sorted_hashed_and_listed(home, tmp_path):
    # several tokens sharing one bucket, given out of order and with mixed case
    target = bucket_of(evm(0))
    toks = [evm(i) for i in range(400) if bucket_of(evm(i)) == target][:4]
    rng = random.Random(4)
    rows = []
    for tok in toks:
        for k in rng.sample(range(60), 40):
            p = 1 + k / 100
            rows.append(
                f"BSC,{tok.upper().replace('0X', '0x')},{T0 + 60 * k},{p},{p * 1.1},{p * 0.9},{p},{k}"
            )
    rng.shuffle(rows)
    f = tmp_path / "mixed.csv"
    f.write_text("chain,token,ts,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    ingest_candles(home, [f])
    path = candle_bucket_path(home, "bsc", toks[0])
    assert path == home.candles_dir / "bsc" / f"b{target:02d}.parquet"
    t = pq.read_table(path)
    assert t.schema.equals(STORE_SCHEMA, check_metadata=False)
    df = t.to_pandas()
    assert set(df["token"]) == set(toks)
    key = list(zip(df["chain"], df["token"], df["interval_s"], df["ts"], strict=True))
    assert key == sorted(key) and len(set(key)) == len(key)
    files = catalog(home, "SELECT * FROM candle_files")
    assert files["path"].tolist() == [str(path.relative_to(home.root))]
    assert files["content_hash"][0] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert files["n_rows"][0] == len(df) == 160 and files["bucket"][0] == target


def test_batched_staging_gives_the_same_store(home, tmp_path, monkeypatch):
    from alertlab.store import Home

    rng = random.Random(8)
    cols: dict[str, list] = {
        k: [] for k in ("chain", "token", "ts", "open", "high", "low", "close", "volume")
    }
    for i in range(6):
        for t in random_series(rng):
            cols["chain"].append("bsc" if i % 2 else "base")
            cols["token"].append(evm(i))
            cols["ts"].append(pd.Timestamp(t, unit="s", tz="UTC").isoformat())
            for k, v in (
                ("open", 1.0),
                ("high", 1.2),
                ("low", 0.8),
                ("close", 1.1),
                ("volume", float(t % 7)),
            ):
                cols[k].append(v)
    order = list(range(len(cols["ts"])))
    rng.shuffle(order)
    f = tmp_path / "many.parquet"
    pq.write_table(pa.table({k: [v[i] for i in order] for k, v in cols.items()}), f)
    ref = ingest_candles(home, [f])
    monkeypatch.setattr(cmod, "FLUSH_ROWS", 7)
    monkeypatch.setattr(cmod, "READ_BATCH_ROWS", 5)
    other = Home(tmp_path / "other")
    got = ingest_candles(other, [f])
    assert (got.rows_new, got.rows_rejected, got.conflicts) == (
        ref.rows_new,
        ref.rows_rejected,
        ref.conflicts,
    )
    pd.testing.assert_frame_equal(store_table(home), store_table(other))
    assert got.quality == ref.quality


def test_single_bar_resolved_against_store_or_rejected(home, tmp_path):
    tok, new = evm(10), evm(11)
    f1, f2 = tmp_path / "series.csv", tmp_path / "one.csv"
    bars_csv(f1, [T0 + 300 * k for k in range(10)], with_keys=("bsc", tok))
    f2.write_text(
        "chain,token,ts,open,high,low,close,volume\n"
        f"bsc,{tok},{T0 + 300 * 14},1,1,1,1,0\nbsc,{new},{T0},1,1,1,1,0\n"
    )
    ingest_candles(home, [f1])
    rep = ingest_candles(home, [f2])
    assert rep.rows_new == 1 and rep.rows_rejected == 1
    assert rep.rejects_sample == [{"file": str(f2.resolve()), "row": 3, "reason": UNDETECTABLE}]
    st = store_table(home)
    assert st[st.ts == T0 + 300 * 14]["interval_s"].tolist() == [300]


def test_errors_name_the_file(home, tmp_path):
    f = tmp_path / "prices.csv"
    f.write_text("timestamp,open,high,low,close,volume\n1760000400,1,1,1,1,1\n")
    with pytest.raises(ValueError, match=r"prices\.csv.*no token"):
        ingest_candles(home, [f])
    g = tmp_path / f"bsc_{evm(1)}_20251001-0000_20251002-0000.csv"
    g.write_text("timestamp,open,high,low,close\n1760000400,1,1,1,1\n")
    with pytest.raises(ValueError, match=r"bsc_0x.*volume"):
        ingest_candles(home, [g])
    h = tmp_path / "odd.json"
    h.write_text(json.dumps({"data": {"rows": []}}))
    with pytest.raises(ValueError, match=r"odd\.json"):
        ingest_candles(home, [h])
    with pytest.raises(ValueError, match="no candle files"):
        (tmp_path / "empty").mkdir()
        ingest_candles(home, [tmp_path / "empty"])
    assert not list(home.root.glob(".ingest-*"))  # scratch area cleaned up


def test_empty_files_are_logged_not_fatal(home, tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    (tmp_path / "header_only.csv").write_text("chain,token,timestamp,open,high,low,close,volume\n")
    (tmp_path / "no_candles.json").write_text(json.dumps({"data": {"items": []}, "success": True}))
    bars_csv(tmp_path / "real.csv", [T0 + 60 * k for k in range(5)], with_keys=("bsc", evm(30)))
    rep = ingest_candles(home, [tmp_path], progress=True)
    assert rep.rows_read == rep.rows_new == 5 and len(rep.files) == 4
    log = catalog(
        home, "SELECT source_file, rows_read, rows_new, details, status FROM ingest_log ORDER BY source_file"
    )
    assert log["rows_read"].tolist() == [0, 0, 5, 0]
    assert log["status"].tolist() == ["rejected", "rejected", "complete", "rejected"]
    assert "no data rows" in json.loads(log["details"][0])["error"]
    assert [r["file"].split("/")[-1] for r in rep.files_rejected] == [
        "header_only.csv",
        "no_candles.json",
        "zero.csv",
    ]
    assert json.loads(log["details"][2])["chain_from"] == "column"
