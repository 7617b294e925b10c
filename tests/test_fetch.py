"""``alertlab fetch candles``: the real client against a local server replaying the documented shapes."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.ingest.fetch import FetchOptions, run_fetch
from alertlab.ingest.fetch.plan import merge, subtract
from alertlab.ingest.fetch.ratelimit import Clock, RetryPolicy, TokenBucket, parse_retry_after
from alertlab.store import Home
from alertlab.windows.spec import Selection

from fetch_server import FakeApi, Market, b58, fixture, series, serve, sol_address

SRC = Path(__file__).resolve().parents[1] / "src"
T0 = 1759320000  # 2025-10-01 12:00 UTC
H = 3600
SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


class FakeClock:
    """Monotonic time that only moves when slept; wall time is real (responses are stamped)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, d: float) -> None:
        self.sleeps.append(d)
        self.t += d

    def clock(self) -> Clock:
        return Clock(monotonic=self.monotonic, sleep=self.sleep, wall=time.time)


@pytest.fixture
def api():
    a = FakeApi()
    srv = serve(a)
    yield a
    a.release.set()
    srv.shutdown()
    srv.server_close()


def add_alerts(
    home: Home, tmp: Path, rows: list[tuple[str, str, str, int]], name: str = "alerts.csv"
) -> None:
    df = pd.DataFrame(rows, columns=["caller", "chain", "token", "ts"])
    df["ts"] = df["ts"] * 1000
    path = tmp / name
    df.to_csv(path, index=False)
    rep = ingest_alerts(home, [path])
    assert rep.rows_rejected == 0, rep.rejects_sample


def stored(home: Home, token: str) -> pd.DataFrame:
    files = sorted(home.candles_dir.rglob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=["ts"])
    t = pd.concat([pq.read_table(f).to_pandas() for f in files])
    t = t[t["token"] == token].sort_values("ts").reset_index(drop=True)
    return t


def expect(bars: list[list], s: int, e: int) -> pd.DataFrame:
    df = pd.DataFrame(
        [b for b in bars if s <= b[0] < e], columns=["ts", "open", "high", "low", "close", "volume"]
    )
    return df.reset_index(drop=True)


def same_bars(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want) > 0
    np.testing.assert_array_equal(got["ts"].to_numpy(), want["ts"].to_numpy())
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy())


def needed(ts: int, tf: int = 60, pre: int = 3600, lag: int = 300, horizon: int = 48 * H) -> tuple[int, int]:
    """The issue's rule, written independently: [t − pre, t + lag + H + one bar), outwards to tf."""
    s = (ts - pre) // tf * tf
    e = -(-(ts + lag + horizon + tf) // tf) * tf
    return s, e


def catalog(home: Home, sql: str) -> pd.DataFrame:
    con = home.connect()
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def gecko_opts(api: FakeApi, **kw) -> FetchOptions:
    return FetchOptions(api_url=api.url + "/api/v2", rate_limit=kw.pop("rate_limit", 60000), **kw)


# ---------------------------------------------------------------------------------------- unit parts


def test_merge_and_subtract():
    assert merge([(5, 10), (0, 3), (3, 4), (9, 12), (20, 20)]) == [(0, 4), (5, 12)]
    assert subtract([(0, 100)], [(10, 20), (15, 30), (90, 200)]) == [(0, 10), (30, 90)]
    assert subtract([(0, 10), (20, 30)], []) == [(0, 10), (20, 30)]
    assert subtract([(0, 10)], [(0, 10)]) == []


def test_token_bucket_spaces_requests_and_honours_block():
    fc = FakeClock()
    tb = TokenBucket(120, clock=fc.clock())  # one request per 0.5 s
    times = []
    for _ in range(50):
        tb.acquire()
        times.append(fc.t)
    gaps = np.diff(times)
    assert gaps.min() >= 0.5 - 1e-9
    assert times[-1] - times[0] == pytest.approx(49 * 0.5)
    for i in range(
        len(times)
    ):  # no sliding minute holds more than 120 (nor, here, more than the spacing allows)
        assert sum(1 for t in times if times[i] <= t < times[i] + 60) <= 120
    tb.block(7.0)
    t = fc.t
    tb.acquire()
    assert fc.t == pytest.approx(t + 7.0)
    tb.acquire()
    assert fc.t == pytest.approx(t + 7.5)
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_retry_after_and_backoff():
    assert parse_retry_after("7", 0) == 7.0
    assert parse_retry_after(None, 0) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon", 0) is None
    p = RetryPolicy(base_s=2.0, cap_s=10.0)
    for k, hi in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)):
        d = p.backoff(k)
        assert hi / 2 <= d <= hi


def test_import_does_not_load_the_http_client():
    code = "import sys, alertlab, alertlab.cli; assert 'httpx' not in sys.modules, 'httpx imported'"
    r = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def test_declared_interval_wins_over_detection(home, tmp_path):
    tok = sol_address("declared")
    ts = [T0 + 300 * k for k in range(12)]  # every 5th minute: detection alone says 300
    tab = pa.table(
        {
            "chain": ["solana"] * 12,
            "token": [tok] * 12,
            "ts": ts,
            "open": [1.0] * 12,
            "high": [1.0] * 12,
            "low": [1.0] * 12,
            "close": [1.0] * 12,
            "volume": [1.0] * 12,
        }
    )
    pq.write_table(tab, tmp_path / "plain.parquet")
    pq.write_table(
        tab.append_column("interval_s", pa.array([60] * 12, pa.int32())), tmp_path / "declared.parquet"
    )
    bad = tab.slice(0, 2).append_column("interval_s", pa.array([7, 60], pa.int32()))
    bad = bad.set_column(2, "ts", pa.array([T0 + 30, T0 + 90], pa.int64()))
    pq.write_table(bad, tmp_path / "bad.parquet")
    ingest_candles(home, [tmp_path / "plain.parquet"])
    assert set(stored(home, tok)["interval_s"]) == {300}
    ingest_candles(home, [tmp_path / "declared.parquet"])
    got = stored(home, tok)
    assert sorted(got.loc[got["interval_s"] == 60, "ts"]) == ts
    rep = ingest_candles(home, [tmp_path / "bad.parquet"])
    assert rep.rows_rejected == 2
    assert all("declared interval_s" in r["reason"] for r in rep.rejects_sample)


# ---------------------------------------------------------------------------------------- GeckoTerminal


def gecko_world(api: FakeApi):
    """A: base side of its most liquid pool, 3 pages; B: quote side; C: no pool; D: pool without bars;
    E: sparse 1-minute bars only on 5-minute marks."""
    A, B, C, D, E = (sol_address(n) for n in "ABCDE")
    PA, PA2, PB, PD, PE = (sol_address("pool" + n) for n in ("A", "A2", "B", "D", "E"))
    api.add(
        Market(
            "solana",
            A,
            pools=[(PA2, "120.5", A, USDC), (PA, "90000.1", A, SOL)],
            bars={
                (PA, A): series("A", T0 - 3 * H, T0 + 70 * H),
                (PA2, A): series("A2", T0 - 3 * H, T0 + 70 * H, price=9.0),
            },
        )
    )
    api.add(
        Market(
            "solana",
            B,
            pools=[(PB, "5000", USDC, B)],
            bars={
                (PB, B): series("B-own", T0 - 3 * H, T0 + 60 * H, price=2.0),
                (PB, "base"): series("USDC", T0 - 3 * H, T0 + 60 * H, price=1.0),
            },
        )
    )
    api.add(Market("solana", D, pools=[(PD, "10", D, SOL)], bars={(PD, D): []}))
    api.add(
        Market(
            "solana",
            E,
            pools=[(PE, "10", E, SOL)],
            bars={(PE, E): [b for b in series("E", T0 - 3 * H, T0 + 60 * H, keep=0.9) if b[0] % 300 == 0]},
        )
    )
    alerts = [
        ("alice", "solana", A, T0),
        ("bob", "solana", A, T0 + 10 * H),
        ("alice", "solana", B, T0 + 1800),
        ("carol", "solana", C, T0),
        ("bob", "solana", D, T0),
        ("carol", "solana", E, T0),
    ]
    return (A, B, C, D, E), (PA, PB, PD, PE), alerts


def test_geckoterminal_run_faults_rerun_and_refresh(home, tmp_path, api):
    (A, B, C, D, E), (PA, PB, PD, PE), alerts = gecko_world(api)
    add_alerts(home, tmp_path, alerts)
    api.fault("/ohlcv/", ("429", 7), ("500",), ("timeout", 1.5))
    api.fault(f"/tokens/{B}/pools", ("503",))
    fc = FakeClock()
    rep = run_fetch(
        home,
        None,
        gecko_opts(api, timeout_s=0.5),
        clock=fc.clock(),
        policy=RetryPolicy(max_attempts=5, base_s=0.25),
    )
    assert (rep.tokens, rep.tokens_fetched, rep.tokens_no_pool, rep.tokens_failed) == (5, 4, 1, 0), (
        rep.failures
    )
    assert rep.no_pool == [
        {"chain": "solana", "token": C, "reason": "geckoterminal has no pool for this token"}
    ]
    assert 7.0 in fc.sleeps  # Retry-After honoured exactly
    assert len([s for s in fc.sleeps if s != 7.0 and s >= 0.125]) >= 3  # 500, timeout, 503 backed off

    sA = needed(T0)[0], needed(T0 + 10 * H)[1]
    same_bars(stored(home, A), expect(api.markets[A].bars[(PA, A)], *sA))
    assert set(stored(home, A)["interval_s"]) == {60}
    rB = needed(T0 + 1800)
    same_bars(
        stored(home, B), expect(api.markets[B].bars[(PB, B)], *rB)
    )  # the token's own price, not the base's
    assert stored(home, D).empty and stored(home, C).empty
    gotE = stored(home, E)
    same_bars(gotE, expect(api.markets[E].bars[(PE, E)], *needed(T0)))
    assert set(gotE["interval_s"]) == {60}  # sparse 1-minute stays 1-minute (declared timeframe)

    # requests: the token's own price always asked, pages walk backwards from the range end
    ohlcv = api.requests("/ohlcv/minute", status=200)
    assert all(
        r.query["token"] in (A, B, D, E)
        and r.query["currency"] == "usd"
        and r.query["limit"] == "1000"
        and r.query["aggregate"] == "1"
        for r in ohlcv
    )
    a_pages = [r for r in ohlcv if PA in r.path]
    befores = [int(r.query["before_timestamp"]) for r in a_pages]
    assert befores[0] == sA[1] and befores == sorted(befores, reverse=True) and len(befores) == 3
    for prev, nxt in zip(befores, befores[1:], strict=False):  # next before = oldest ts of the previous page
        page = [b[0] for b in api.markets[A].bars[(PA, A)] if b[0] <= prev][-1000:]
        assert nxt == min(page)
    assert not any(
        sol_address("poolA2") in r.path for r in api.requests()
    )  # the less liquid pool: never asked
    assert len(api.requests(f"/tokens/{C}/pools")) == 1  # 404 = no pool, not retried
    assert len([r for r in api.requests(PD) if r.status == 200]) == 1  # empty page: stop
    ok = [(r.path, tuple(sorted(r.query.items()))) for r in api.requests(status=200)]
    assert len(ok) == len(set(ok))  # no request answered twice

    fr = catalog(home, "SELECT * FROM fetch_ranges ORDER BY token")
    assert len(fr) == 4 and set(fr["source"]) == {"geckoterminal"}
    row = fr[fr["token"] == A].iloc[0]
    assert (row["start_ts"], row["end_ts"], row["pool"]) == (sA[0], sA[1], PA)
    assert (fr["fetched_at"] >= fr["end_ts"]).all()
    fs = catalog(
        home, "SELECT token, state, pool, pool_side, timeframe_s, attempts FROM fetch_status"
    ).set_index("token")
    assert fs.loc[B, "pool_side"] == "quote" and fs.loc[A, "pool_side"] == "base"
    assert fs.loc[C, "state"] == "no_pool" and fs.loc[D, "state"] == "ok"
    assert (fs["timeframe_s"].dropna() == 60).all()

    # rerun: nothing new to fetch, nothing asked
    n = len(api.log)
    rep2 = run_fetch(home, None, gecko_opts(api), clock=FakeClock().clock())
    assert len(api.log) == n and rep2.requests == 0
    assert (rep2.tokens_already_fetched, rep2.tokens_no_pool_earlier, rep2.tokens_to_fetch) == (4, 1, 0)

    # --refresh asks again (cache ignored) and the store keeps the same bars
    before = stored(home, A)
    rep3 = run_fetch(home, None, gecko_opts(api, refresh=True), clock=FakeClock().clock())
    assert rep3.requests > 0 and rep3.cached_responses == 0 and len(api.log) > n
    pd.testing.assert_frame_equal(stored(home, A), before)
    assert len(catalog(home, "SELECT * FROM fetch_ranges")) == 4


def test_failed_token_recorded_and_only_it_retried(home, tmp_path, api):
    F, G = sol_address("F"), sol_address("G")
    PF, PG = sol_address("poolF"), sol_address("poolG")
    api.add(
        Market("solana", F, pools=[(PF, "1", F, SOL)], bars={(PF, F): series("F", T0 - 2 * H, T0 + 50 * H)})
    )
    api.add(
        Market("solana", G, pools=[(PG, "1", G, SOL)], bars={(PG, G): series("G", T0 - 2 * H, T0 + 50 * H)})
    )
    add_alerts(home, tmp_path, [("a", "solana", F, T0), ("a", "solana", G, T0)])
    api.fault(PF, *[("500",)] * 3)
    rep = run_fetch(
        home,
        None,
        gecko_opts(api, max_attempts=3),
        clock=FakeClock().clock(),
        policy=RetryPolicy(max_attempts=3, base_s=0.01),
    )
    assert rep.tokens_fetched == 1 and rep.tokens_failed == 1
    assert rep.failures[0]["token"] == F and "HTTP 500 after 3 attempts" in rep.failures[0]["reason"]
    assert stored(home, F).empty and not stored(home, G).empty
    st = catalog(home, f"SELECT state, reason, attempts FROM fetch_status WHERE token = '{F}'").iloc[0]
    assert st["state"] == "failed" and st["attempts"] == 1
    n = len(api.log)
    rep2 = run_fetch(home, None, gecko_opts(api), clock=FakeClock().clock())
    assert rep2.tokens_fetched == 1 and rep2.tokens_already_fetched == 1
    assert all(G not in r.path and PG not in r.path for r in api.log[n:])  # only F asked again
    same_bars(stored(home, F), expect(api.markets[F].bars[(PF, F)], *needed(T0)))
    st = catalog(home, f"SELECT state, attempts FROM fetch_status WHERE token = '{F}'").iloc[0]
    assert st["state"] == "ok" and st["attempts"] == 2


def test_bad_bar_quarantined_naming_the_cached_response(home, tmp_path, api):
    Q, PQ = sol_address("Q"), sol_address("poolQ")
    bars = series("Q", T0 - 2 * H, T0 + 50 * H)
    bad_i = 100
    bars[bad_i] = [bars[bad_i][0], 1.0, 0.5, 0.4, 1.2, 5.0]  # high < max(open, close)
    api.add(Market("solana", Q, pools=[(PQ, "1", Q, SOL)], bars={(PQ, Q): bars}))
    add_alerts(home, tmp_path, [("a", "solana", Q, T0)])
    rep = run_fetch(home, None, gecko_opts(api), clock=FakeClock().clock())
    assert rep.bars_rejected == 1
    rj = catalog(
        home, "SELECT source_file, source_row, reason, raw FROM rejects WHERE kind = 'candles'"
    ).iloc[0]
    assert "high < max(open, close)" in rj["reason"]
    raw = json.loads(rj["raw"])["values"]
    assert raw["response"] == rj["source_file"] and raw["item"] == rj["source_row"]
    with gzip.open(rj["source_file"], "rt") as fh:  # the cached response itself
        doc = json.load(fh)
    row = json.loads(doc["body"])["data"]["attributes"]["ohlcv_list"][int(rj["source_row"])]
    assert row == bars[bad_i]
    assert bars[bad_i][0] not in set(stored(home, Q)["ts"])


def test_unknown_chain_is_a_clear_error(home, tmp_path, api):
    raw = b"\x41" + hashlib.sha256(b"tron").digest()[:20]
    tron = b58(raw + hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4])
    add_alerts(home, tmp_path, [("a", "tron", tron, T0)])
    with pytest.raises(ValueError, match="not supported by birdeye"):
        run_fetch(
            home,
            Selection(chains=["tron"]),
            FetchOptions(source="birdeye", api_url=api.url),
            env={"BIRDEYE_API_KEY": "k"},
        )
    rep = run_fetch(home, None, FetchOptions(source="birdeye", api_url=api.url), env={"BIRDEYE_API_KEY": "k"})
    assert rep.tokens_failed == 1 and "not supported by birdeye" in rep.failures[0]["reason"]
    assert api.log == []


# ---------------------------------------------------------------------------------------- Birdeye


def test_birdeye_chunks_headers_and_success_false(home, tmp_path, api):
    K, L = sol_address("K"), sol_address("L")
    api.add(Market("solana", K, token_bars=series("K", T0 - 3 * H, T0 + 60 * H)))
    api.add(Market("solana", L, token_bars=series("L", T0 - 3 * H, T0 + 60 * H)))
    add_alerts(home, tmp_path, [("a", "solana", K, T0)])
    opts = FetchOptions(source="birdeye", api_url=api.url, rate_limit=60000)
    with pytest.raises(ValueError, match="BIRDEYE_API_KEY"):
        run_fetch(home, None, opts, env={})
    assert api.log == []  # missing key: nothing asked
    rep = run_fetch(home, None, opts, env={"BIRDEYE_API_KEY": "test-key"}, clock=FakeClock().clock())
    assert rep.tokens_fetched == 1 and rep.aborted is None
    s, e = needed(T0)
    same_bars(stored(home, K), expect(api.markets[K].token_bars, s, e))
    reqs = api.requests("/defi/ohlcv")
    assert len(reqs) == -(-(e - s) // 60000)
    for r in reqs:
        assert r.headers["x-api-key"] == "test-key" and r.headers["x-chain"] == "solana"
        assert r.query["type"] == "1m" and r.query["currency"] == "usd" and r.query["address"] == K
        assert (int(r.query["time_to"]) - int(r.query["time_from"])) // 60 + 1 <= 1000  # bar opens asked
    assert int(reqs[0].query["time_from"]) == s and int(reqs[-1].query["time_to"]) == e - 1
    cached = list((home.root / "fetch" / "responses").rglob("*.json.gz"))
    assert cached and all(
        b"test-key" not in gzip.decompress(p.read_bytes()) for p in cached
    )  # key never written

    add_alerts(home, tmp_path, [("a", "solana", L, T0)], "more.csv")
    api.fault("/defi/ohlcv", ("birdeye_false",))
    rep = run_fetch(home, None, opts, env={"BIRDEYE_API_KEY": "test-key"}, clock=FakeClock().clock())
    assert rep.aborted == "Birdeye says: Compute units usage limit exceeded"
    assert stored(home, L).empty
    rep = run_fetch(home, None, opts, env={"BIRDEYE_API_KEY": "test-key"}, clock=FakeClock().clock())
    assert rep.aborted is None and rep.tokens_fetched == 1 and rep.tokens_already_fetched == 1
    same_bars(stored(home, L), expect(api.markets[L].token_bars, s, e))


def test_recorded_samples_give_exactly_their_bars(home, tmp_path, api):
    """The recorded pools + OHLCV page and the recorded Birdeye items, served back, give exactly their bars."""
    pools = fixture("geckoterminal_token_pools.json")
    tok = pools["data"][0]["relationships"]["base_token"]["data"]["id"].removeprefix("solana_")
    pool = pools["data"][0]["attributes"]["address"]
    page = fixture("geckoterminal_ohlcv_minute.json")["data"]["attributes"]["ohlcv_list"]
    assert [r[0] for r in page] == sorted((r[0] for r in page), reverse=True)  # newest first
    api.add(Market("solana", tok, pools=[(pool, "84123.4567", tok, SOL)], bars={(pool, tok): sorted(page)}))
    t_alert = min(r[0] for r in page) + 3600
    add_alerts(home, tmp_path, [("a", "solana", tok, t_alert)])
    run_fetch(home, None, gecko_opts(api), clock=FakeClock().clock())
    same_bars(stored(home, tok), expect(sorted(page), 0, 2**40))
    assert catalog(home, "SELECT pool_side FROM fetch_status")["pool_side"][0] == "base"

    items = fixture("birdeye_ohlcv.json")["data"]["items"]
    bird = Home(tmp_path / "bird")
    api.markets[tok].token_bars = [
        [it["unixTime"], it["o"], it["h"], it["l"], it["c"], it["v"]] for it in items
    ]
    add_alerts(bird, tmp_path, [("a", "solana", tok, t_alert)], "bird.csv")
    run_fetch(
        bird,
        None,
        FetchOptions(source="birdeye", api_url=api.url, rate_limit=60000),
        env={"BIRDEYE_API_KEY": "test-key"},
        clock=FakeClock().clock(),
    )
    want = pd.DataFrame(
        [[it["unixTime"], it["o"], it["h"], it["l"], it["c"], it["v"]] for it in items],
        columns=["ts", "open", "high", "low", "close", "volume"],
    )
    same_bars(stored(bird, tok), want)


# ---------------------------------------------------------------------------------------- politeness


def test_rate_limit_holds_against_a_real_server(home, tmp_path, api):
    toks = [sol_address(f"r{i}") for i in range(4)]
    for i, t in enumerate(toks):
        p = sol_address(f"rpool{i}")
        api.add(Market("solana", t, pools=[(p, "1", t, SOL)], bars={(p, t): series(t, T0, T0 + 3 * H)}))
    add_alerts(home, tmp_path, [("a", "solana", t, T0 + 2 * H) for t in toks])
    t0 = time.monotonic()
    rep = run_fetch(home, None, gecko_opts(api, rate_limit=600, horizon_hours=1))  # one request per 0.1 s
    elapsed = time.monotonic() - t0
    ts = sorted(r.t for r in api.log)
    assert rep.requests == len(ts) >= 8
    assert elapsed >= 0.1 * (len(ts) - 1) - 0.02
    for i in range(len(ts)):  # k requests never arrive within less than (k-1)·0.1 s (50 ms network jitter)
        for j in range(i + 1, len(ts)):
            assert ts[j] - ts[i] >= 0.1 * (j - i) - 0.05


# ---------------------------------------------------------------------------------------- resume after kill -9


def _cli(home: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from alertlab.cli import main; main()",
        "fetch",
        "candles",
        "--home",
        str(home),
        "--api-url",
        url,
        "--rate-limit",
        "60000",
        "--json",
    ]


def test_kill_9_mid_run_then_rerun_equals_uninterrupted(tmp_path, api):
    toks = [sol_address(f"k{i}") for i in range(3)]
    for i, t in enumerate(toks):
        p = sol_address(f"kpool{i}")
        api.add(
            Market("solana", t, pools=[(p, "1", t, SOL)], bars={(p, t): series(t, T0 - 2 * H, T0 + 55 * H)})
        )
    rows = [("a", "solana", t, T0 + 600 * i) for i, t in enumerate(toks)]
    h1, h2 = Home(tmp_path / "interrupted"), Home(tmp_path / "straight")
    add_alerts(h1, tmp_path, rows)
    add_alerts(h2, tmp_path, rows)
    url = api.url + "/api/v2"
    env = {**os.environ, "PYTHONPATH": str(SRC)}

    api.block_at = 5  # the 5th OHLCV request hangs: token 1 done (3 pages), token 2 half-way
    proc = subprocess.Popen(_cli(h1.root, url), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert api.blocked.wait(60), "the run never reached the 5th OHLCV request"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    api.block_at = None
    api.release.set()
    first = [(r.path, tuple(sorted(r.query.items()))) for r in api.requests(status=200)]
    assert catalog(h1, "SELECT count(*) AS n FROM fetch_status WHERE state = 'ok'")["n"][0] >= 1

    n = len(api.log)
    r = subprocess.run(_cli(h1.root, url), env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    again = [(x.path, tuple(sorted(x.query.items()))) for x in api.log[n:] if x.status]
    assert again and not set(again) & set(first), "a response already on disk was asked again"

    run_fetch(h2, None, FetchOptions(api_url=url, rate_limit=60000))
    for t in toks:
        pd.testing.assert_frame_equal(stored(h1, t), stored(h2, t))
    q = "SELECT chain, token, start_ts, end_ts, source, pool FROM fetch_ranges ORDER BY token"
    pd.testing.assert_frame_equal(catalog(h1, q), catalog(h2, q))
    q = "SELECT chain, token, state, pool, bars IS NOT NULL AS b FROM fetch_status ORDER BY token"
    pd.testing.assert_frame_equal(catalog(h1, q), catalog(h2, q))


# ---------------------------------------------------------------------------------------- CLI


def test_cli_fetch_candles_and_status(home, tmp_path, api):
    from alertlab.cli import app

    A, C = sol_address("cliA"), sol_address("cliC")
    PA = sol_address("clipool")
    api.add(
        Market(
            "solana", A, pools=[(PA, "1", A, SOL)], bars={(PA, A): series("cliA", T0 - 2 * H, T0 + 50 * H)}
        )
    )
    add_alerts(home, tmp_path, [("a", "solana", A, T0), ("a", "solana", C, T0)])
    runner = CliRunner()
    args = [
        "fetch",
        "candles",
        "--home",
        str(home.root),
        "--api-url",
        api.url + "/api/v2",
        "--rate-limit",
        "60000",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "tokens_fetched" in r.output and "tokens without a pool" in r.output and C in r.output
    r = runner.invoke(app, [*args, "--json"])
    d = json.loads(r.output)
    assert d["tokens_already_fetched"] == 1 and d["tokens_no_pool_earlier"] == 1 and d["requests"] == 0
    r = runner.invoke(app, ["fetch", "status", "--home", str(home.root)])
    assert r.exit_code == 0 and "no_pool" in r.output and C in r.output
    r = runner.invoke(app, ["fetch", "candles", "--home", str(home.root), "--timeframe", "2m"])
    assert r.exit_code == 2 and "timeframe" in r.output
    r = runner.invoke(
        app,
        ["fetch", "candles", "--home", str(home.root), "--source", "birdeye"],
        env={"BIRDEYE_API_KEY": ""},
    )
    assert r.exit_code == 2 and "BIRDEYE_API_KEY" in r.output
    r = runner.invoke(app, ["fetch", "candles", "--home", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no workspace at" in r.output  # a fresh path is not a workspace


def test_pool_hint_on_the_alert_wins(home, tmp_path, api):
    A, PX, PH = sol_address("hintA"), sol_address("hintPX"), sol_address("hintPH")
    api.add(
        Market(
            "solana",
            A,
            pools=[(PX, "99999", A, SOL)],
            bars={
                (PX, A): series("PX", T0 - 2 * H, T0 + 50 * H),
                (PH, A): series("PH", T0 - 2 * H, T0 + 50 * H),
            },
        )
    )
    add_alerts(home, tmp_path, [("a", "solana", A, T0)])
    con = home.connect()  # the alerts table carries the pool pasted in the call (Telegram ingest fills it)
    con.execute("UPDATE alerts SET pool = ? WHERE token = ?", [f"solana_{PH}", A])
    con.close()
    run_fetch(home, None, gecko_opts(api), clock=FakeClock().clock())
    assert api.requests("/pools", status=200) and not api.requests("/tokens/")  # no pool lookup
    assert all(PH in r.path for r in api.requests("/ohlcv/"))
    same_bars(stored(home, A), expect(api.markets[A].bars[(PH, A)], *needed(T0)))
    st = catalog(home, "SELECT pool, pool_side FROM fetch_status").iloc[0]
    assert (st["pool"], st["pool_side"]) == (PH, "hint")


def test_range_reaching_past_now_is_recorded_up_to_the_fetch_and_continued_later(home, tmp_path, api):
    now = int(time.time())
    R, PR = sol_address("recent"), sol_address("poolRecent")
    bars = series("recent", now - 4 * H, now + 2 * H, keep=1.0)  # the fake has "future" bars: never taken
    api.add(Market("solana", R, pools=[(PR, "1", R, SOL)], bars={(PR, R): bars}))
    t_alert = now - H
    add_alerts(home, tmp_path, [("a", "solana", R, t_alert)])
    run_fetch(home, None, gecko_opts(api), clock=FakeClock().clock())
    cap1 = (now - 120) // 60 * 60  # last complete bar two minutes (settle) before the fetch
    fr = catalog(home, "SELECT start_ts, end_ts, fetched_at FROM fetch_ranges")
    assert len(fr) == 1 and fr["start_ts"][0] == needed(t_alert)[0]
    assert cap1 <= fr["end_ts"][0] <= cap1 + 60 and fr["end_ts"][0] <= fr["fetched_at"][0]
    got = stored(home, R)
    assert got["ts"].max() < fr["end_ts"][0]
    same_bars(got, expect(bars, needed(t_alert)[0], int(fr["end_ts"][0])))

    later = FakeClock()  # ten minutes later: only the tail is asked, and the range grows
    c = later.clock()
    c.wall = lambda: time.time() + 600
    n = len(api.log)
    run_fetch(home, None, gecko_opts(api), clock=c)
    new = api.log[n:]
    assert [r.path.endswith("/ohlcv/minute") for r in new] == [True]
    end1 = int(fr["end_ts"][0])
    fr2 = catalog(home, "SELECT start_ts, end_ts, fetched_at FROM fetch_ranges")
    assert len(fr2) == 1 and fr2["end_ts"][0] >= end1 + 540 and fr2["end_ts"][0] <= fr2["fetched_at"][0]
    assert int(new[0].query["before_timestamp"]) == fr2["end_ts"][0]
    same_bars(stored(home, R), expect(bars, needed(t_alert)[0], int(fr2["end_ts"][0])))


def test_coarser_timeframe_does_not_count_as_fetched_for_a_finer_one(home, tmp_path, api):
    A, PA = sol_address("tfA"), sol_address("tfPool")
    api.add(
        Market("solana", A, pools=[(PA, "1", A, SOL)], bars={(PA, A): series("tfA", T0 - 3 * H, T0 + 52 * H)})
    )
    add_alerts(home, tmp_path, [("a", "solana", A, T0)])
    rep = run_fetch(home, None, gecko_opts(api, timeframe="1h"), clock=FakeClock().clock())
    hours = api.requests("/ohlcv/hour")
    assert rep.tokens_fetched == 1 and hours and all(r.query["aggregate"] == "1" for r in hours)
    assert set(stored(home, A)["interval_s"]) == {3600}
    rep = run_fetch(home, None, gecko_opts(api, timeframe="1m"), clock=FakeClock().clock())
    assert rep.tokens_fetched == 1 and api.requests("/ohlcv/minute")
    n = len(api.log)
    rep = run_fetch(home, None, gecko_opts(api, timeframe="5m"), clock=FakeClock().clock())
    assert rep.tokens_already_fetched == 0 and rep.tokens_fetched == 1  # 1h ranges were recorded: coarsest 1h
    assert [r.query["aggregate"] for r in api.log[n:] if "ohlcv" in r.path] and all(
        r.query["aggregate"] == "5" for r in api.log[n:] if "ohlcv" in r.path
    )
    n = len(api.log)
    rep = run_fetch(home, None, gecko_opts(api, timeframe="1h"), clock=FakeClock().clock())
    assert rep.tokens_already_fetched == 1 and len(api.log) == n
