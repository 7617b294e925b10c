"""``alertlab fetch candles``: fetch exactly the candles the selected alerts need, politely and resumably.

One run: select alerts → needed ranges per token (:mod:`.plan`) → minus the ranges already fetched
(catalog ``fetch_ranges``; ``refresh`` ignores them) → for each token: pool, bars (rate-limited,
retried, every response cached on disk before parsing, :mod:`.http`) → a staged Parquet file with
the declared timeframe → the normal candle ingest (validation, quarantine, atomic bucket writes) →
the catalog records the fetched ranges and the token's state (``fetch_status``).

Rules a rerun relies on:

* a range is recorded only up to ``floor((now − settle)/tf)·tf``: bars still forming, or not yet
  indexed by the source, are neither stored nor claimed; ranges starting later are not asked;
* a token's ranges count as fetched for a run at timeframe ``tf`` when the source's recorded
  (coarsest) timeframe for the token is at most ``tf``;
* ``ok`` tokens are asked only for ranges not fetched yet, ``failed`` tokens again, ``no_pool``
  tokens only with ``refresh`` (or another source);
* a token is all or nothing: its bars are ingested and its ranges recorded only when every range
  came back; a failure is recorded with its reason and the run goes on. ``success: false`` from
  Birdeye or HTTP 401/403 stop the run (tokens finished so far stay stored).
* rejected bars are quarantined with ``source_file`` = the cached response file and
  ``source_row`` = the bar's 0-based index in that response's list (the ``raw`` record repeats both).

``fetch_status`` keeps one row per (chain, token, source): ``state``, ``reason``, the pool used and
its side (base / quote / hint / token), the coarsest timeframe fetched, ``attempts`` (runs that
tried the token), and the requests and bars of the last attempt. Known limit: ``refresh`` picks
the pool again; if the most liquid pool changed, bars of the old pool stay where the new one has
none (both pools' ranges are recorded).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal, cast

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from alertlab.ingest.fetch.base import BarRows, Pool
from alertlab.ingest.fetch.birdeye import CHUNK_BARS, Birdeye
from alertlab.ingest.fetch.geckoterminal import PAGE_LIMIT, GeckoTerminal
from alertlab.ingest.fetch.http import ApiClient, FetchError, SourceAborted
from alertlab.ingest.fetch.networks import (
    BIRDEYE,
    BIRDEYE_KEY_ENV,
    GECKOTERMINAL,
    TIMEFRAMES,
    UnsupportedChain,
    base_url,
    network_id,
)
from alertlab.ingest.fetch.plan import TokenPlan, needed_ranges, subtract
from alertlab.ingest.fetch.ratelimit import Clock, RetryPolicy, TokenBucket
from alertlab.store import Home, atomic_file
from alertlab.util.progress import bar
from alertlab.windows.spec import Selection, WindowSpec

OK, NO_POOL, FAILED = "ok", "no_pool", "failed"
_WINDOW = WindowSpec()


class FetchOptions(BaseModel):
    """Options of a fetch run (the CLI flags)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["geckoterminal", "birdeye"] = GECKOTERMINAL
    timeframe: Literal["1m", "5m", "15m", "1h"] = "1m"
    pre_minutes: float = Field(60.0, ge=0)
    horizon_hours: float = Field(_WINDOW.horizon_hours, gt=0)
    max_entry_lag_s: int = Field(_WINDOW.entry_lag_s, ge=0)
    rate_limit: float = Field(30.0, gt=0, description="requests per minute")
    refresh: bool = False
    api_url: str | None = None
    max_attempts: int = Field(5, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    settle_s: int = Field(120, ge=0)

    @property
    def tf_s(self) -> int:
        return TIMEFRAMES[self.timeframe]

    @property
    def lag_s(self) -> int:
        """Entry lag allowance: the window's limit, at least one bar of the fetched timeframe."""
        return max(self.max_entry_lag_s, self.tf_s)


@dataclass
class FetchReport:
    """What a run did. ``failures`` / ``no_pool`` list ``{chain, token, reason}``."""

    source: str
    timeframe: str
    alerts: int = 0
    tokens: int = 0
    tokens_already_fetched: int = 0
    tokens_no_pool_earlier: int = 0
    tokens_to_fetch: int = 0
    tokens_fetched: int = 0
    tokens_no_pool: int = 0
    tokens_failed: int = 0
    bars_received: int = 0
    bars_written: int = 0
    bars_rejected: int = 0
    requests: int = 0
    cached_responses: int = 0
    aborted: str | None = None
    failures: list[dict] = field(default_factory=list)
    no_pool: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _now_bar(now: float, settle_s: int, tf_s: int) -> int:
    return int(math.floor((now - settle_s) / tf_s)) * tf_s


def _secret_headers(opts: FetchOptions, env: dict[str, str]) -> dict[str, str]:
    """The source's API key header (Birdeye), or a one-line error before any request."""
    if opts.source != BIRDEYE:
        return {}
    key = (env.get(BIRDEYE_KEY_ENV) or "").strip()
    if not key:
        raise ValueError(f"--source birdeye needs an API key in ${BIRDEYE_KEY_ENV} (nothing was requested)")
    return {"X-API-KEY": key}


def _check_chains(opts: FetchOptions, sel: Selection) -> None:
    """Every ``--chain`` must be one the source serves (one-line error otherwise)."""
    from alertlab.ingest.chains import normalize_chain

    for ch in sel.chains:
        try:
            network_id(opts.source, normalize_chain(ch) or ch.strip().lower())
        except UnsupportedChain as exc:
            raise ValueError(f"--chain {ch}: {exc}") from None


def _work(
    home: Home,
    opts: FetchOptions,
    plans: list[TokenPlan],
    rep: FetchReport,
    now: float,
    ready: int,
    status: dict,
    covered: dict,
) -> list[TokenPlan]:
    """The tokens that still need requests, with their ranges to fetch (``todo``); the others are
    counted in ``rep`` (unsupported chain: recorded as failed; no pool earlier; already fetched)."""
    work: list[TokenPlan] = []
    for p in plans:
        try:
            network_id(opts.source, p.chain)
        except UnsupportedChain as exc:
            _record(home, p, opts, FAILED, str(exc), None, 0, 0, [], int(now))
            rep.tokens_failed += 1
            rep.failures.append({"chain": p.chain, "token": p.token, "reason": str(exc)})
            continue
        st = status.get((p.chain, p.token))
        if not opts.refresh and st is not None and st["state"] == NO_POOL:
            rep.tokens_no_pool_earlier += 1
            continue
        todo = p.ranges if opts.refresh else subtract(p.ranges, covered.get((p.chain, p.token), []))
        todo = [(s, min(e, ready)) for s, e in todo if s < ready]
        if not todo:
            rep.tokens_already_fetched += 1
            continue
        p.todo = todo
        work.append(p)
    return work


def run_fetch(
    home: Home,
    selection: Selection | None = None,
    options: FetchOptions | None = None,
    *,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
    policy: RetryPolicy | None = None,
    env: dict[str, str] | None = None,
) -> FetchReport:
    """Fetch the candles of the selected alerts into the store (see the module docstring).

    Raises ``ValueError`` for a user mistake found before any request (no alerts, missing API key,
    a ``--chain`` the source does not know).
    """
    from alertlab.windows.select import NO_ALERTS, select_alerts

    opts = options or FetchOptions()
    env = dict(os.environ) if env is None else env
    clock = clock or Clock()
    say = say or (lambda msg: None)
    secret = _secret_headers(opts, env)
    sel = selection or Selection()
    _check_chains(opts, sel)
    alerts = select_alerts(home, sel)
    if alerts.empty:
        raise ValueError(NO_ALERTS)
    alerts = _with_pool_hints(home, alerts)
    tf = opts.tf_s
    plans = needed_ranges(
        alerts, tf, int(round(opts.pre_minutes * 60)), opts.lag_s, int(round(opts.horizon_hours * 3600))
    )
    rep = FetchReport(source=opts.source, timeframe=opts.timeframe, alerts=len(alerts), tokens=len(plans))
    now = clock.wall()
    ready = _now_bar(now, opts.settle_s, tf)

    status, ranges = _load_state(home, opts.source)
    work = _work(home, opts, plans, rep, now, ready, status, _covered(ranges, tf))
    rep.tokens_to_fetch = len(work)
    if not work:
        return rep
    est = sum(_estimate_requests(opts.source, p, tf) for p in work)
    say(
        f"fetch plan: {len(work)} token(s) to fetch from {opts.source} at {opts.timeframe} "
        f"({rep.tokens_already_fetched} already fetched, {rep.tokens_no_pool_earlier} without a pool earlier); "
        f"at most {est} request(s), ≤ {_human(est * 60.0 / opts.rate_limit)} at {opts.rate_limit:g}/min "
        "(cached responses are not asked again)"
    )

    limiter = TokenBucket(opts.rate_limit, clock=clock)
    policy = policy or RetryPolicy(max_attempts=opts.max_attempts)
    with bar(_desc(opts.source, 0, 0), total=len(work), enabled=progress) as pb:

        def on_event(kind: str, **kw: object) -> None:
            if kind == "wait":
                pb.update(
                    description=_desc(opts.source, client.requests, rep.bars_received)
                    + f" · waiting {float(cast(float, kw['seconds'])):.0f}s ({kw['reason']})"
                )
            else:
                pb.update(description=_desc(opts.source, client.requests, rep.bars_received))

        client = ApiClient(
            opts.source,
            base_url(opts.source, opts.api_url),
            home.root / "fetch" / "responses",
            limiter,
            policy,
            secret_headers=secret,
            timeout_s=opts.timeout_s,
            refresh=opts.refresh,
            settle_s=opts.settle_s,
            clock=clock,
            on_event=on_event,
            transport=transport,
        )
        src = (
            GeckoTerminal(client, opts.timeframe)
            if opts.source == GECKOTERMINAL
            else Birdeye(client, opts.timeframe)
        )
        try:
            for p in work:
                req0 = client.requests
                try:
                    _fetch_token(home, src, p, opts, rep, status.get((p.chain, p.token)), client, now)
                except SourceAborted as exc:
                    rep.aborted = str(exc)
                    break
                except FetchError as exc:
                    st = status.get((p.chain, p.token)) or {}
                    _record(
                        home,
                        p,
                        opts,
                        FAILED,
                        str(exc),
                        st.get("pool"),
                        client.requests - req0,
                        0,
                        [],
                        int(clock.wall()),
                        st,
                    )
                    rep.tokens_failed += 1
                    rep.failures.append({"chain": p.chain, "token": p.token, "reason": str(exc)})
                pb.advance()
                pb.update(description=_desc(opts.source, client.requests, rep.bars_received))
        finally:
            rep.requests, rep.cached_responses = client.requests, client.cache_hits
            client.close()
    return rep


def _fetch_token(
    home: Home,
    src: GeckoTerminal | Birdeye,
    p: TokenPlan,
    opts: FetchOptions,
    rep: FetchReport,
    st: dict | None,
    client: ApiClient,
    now: float,
) -> None:
    req0 = client.requests
    pool = src.pool(p.chain, p.token, p.pool_hint)
    if pool is None:
        reason = f"{src.name} has no pool for this token"
        _record(
            home, p, opts, NO_POOL, reason, None, client.requests - req0, 0, [], int(client.clock.wall()), st
        )
        rep.tokens_no_pool += 1
        rep.no_pool.append({"chain": p.chain, "token": p.token, "reason": reason})
        return
    rows = BarRows()
    pieces: list[tuple[int, int, int]] = []
    for s, e in p.todo:
        got = src.bars(p.chain, p.token, pool, s, e)
        for name in ("ts", "open", "high", "low", "close", "volume", "response", "item"):
            getattr(rows, name).extend(getattr(got, name))
        pieces.append((s, e, int(got.fetched_at if got.fetched_at is not None else now)))
    rep.bars_received += len(rows)
    written = rejected = 0
    if len(rows):
        written, rejected = _ingest(home, p, opts, rows)
    rep.bars_written += written
    rep.bars_rejected += rejected
    _record(
        home, p, opts, OK, None, pool, client.requests - req0, len(rows), pieces, int(client.clock.wall()), st
    )
    rep.tokens_fetched += 1


def _ingest(home: Home, p: TokenPlan, opts: FetchOptions, rows: BarRows) -> tuple[int, int]:
    """Stage the token's bars (declared timeframe, provenance columns) and run the normal ingest."""
    from alertlab.ingest.candles import ingest_candles

    n = len(rows)
    ts = np.array([-1 if t is None else t for t in rows.ts], np.int64)
    order = np.lexsort((np.arange(n), ts == -1, ts))  # by time, unreadable times last
    take = order.tolist()
    table = pa.table(
        {
            "chain": pa.array([p.chain] * n, pa.string()),
            "token": pa.array([p.token] * n, pa.string()),
            "ts": pa.array([rows.ts[i] for i in take], pa.int64()),
            **{
                c: pa.array([getattr(rows, c)[i] for i in take], pa.float64())
                for c in ("open", "high", "low", "close", "volume")
            },
            "interval_s": pa.array([opts.tf_s] * n, pa.int32()),
            "response": pa.array([rows.response[i] for i in take], pa.string()),
            "item": pa.array([rows.item[i] for i in take], pa.int32()),
        }
    )
    staged = (
        home.root / "fetch" / "staged" / opts.source / p.chain / f"{p.token}-{uuid.uuid4().hex[:12]}.parquet"
    )
    with atomic_file(staged) as tmp:
        pq.write_table(table, tmp)
    report = ingest_candles(home, [staged])
    # quarantined bars name the cached response they came from, and their index in it
    con = home.connect()
    try:
        bad = con.execute(
            "SELECT DISTINCT source_row FROM rejects WHERE kind = 'candles' AND source_file = ? "
            "AND source_row IS NOT NULL",
            [str(staged)],
        ).fetchall()
        if bad:
            resp, item = table["response"].to_pylist(), table["item"].to_pylist()
            con.executemany(
                "UPDATE rejects SET source_file = ?, source_row = ? WHERE kind = 'candles' "
                "AND source_file = ? AND source_row = ?",
                [[resp[r - 2], item[r - 2], str(staged), r] for (r,) in bad if 2 <= r < n + 2],
            )
    finally:
        con.close()
    return report.rows_new, report.rows_rejected


# ------------------------------------------------------------------------------------------- catalog


def _load_state(home: Home, source: str) -> tuple[dict, pd.DataFrame]:
    con = home.connect()
    try:
        st = con.execute(
            "SELECT chain, token, state, reason, pool, attempts, timeframe_s FROM fetch_status "
            "WHERE source = ?",
            [source],
        ).df()
        rg = con.execute(
            "SELECT r.chain, r.token, r.start_ts, r.end_ts, r.source, s.timeframe_s FROM fetch_ranges r "
            "LEFT JOIN fetch_status s USING (chain, token, source)"
        ).df()
    finally:
        con.close()
    status = {(r["chain"], r["token"]): r for r in st.to_dict("records")}
    return status, rg


def _covered(ranges: pd.DataFrame, tf: int) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Per (chain, token): fetched ranges from any source at a timeframe no coarser than ``tf``."""
    out: dict[tuple[str, str], list[tuple[int, int]]] = {}
    if ranges.empty:
        return out
    r = ranges[ranges["timeframe_s"].isna() | (ranges["timeframe_s"].fillna(0) <= tf)]
    for c, t, s, e in zip(r["chain"], r["token"], r["start_ts"], r["end_ts"], strict=True):
        out.setdefault((c, t), []).append((int(s), int(e)))
    return out


def _record(
    home: Home,
    p: TokenPlan,
    opts: FetchOptions,
    state: str,
    reason: str | None,
    pool: Pool | str | None,
    requests: int,
    bars: int,
    pieces: list[tuple[int, int, int]],
    when: int,
    st: dict | None = None,
) -> None:
    """One transaction: the token's fetch_status row and (if any) its merged fetch_ranges."""
    pool_addr = pool.address if isinstance(pool, Pool) else pool
    pool_addr = pool_addr or None
    side = pool.side if isinstance(pool, Pool) else (st or {}).get("pool_side")
    con = home.connect()
    try:
        con.begin()
        old = con.execute(
            "SELECT attempts, timeframe_s FROM fetch_status WHERE chain = ? AND token = ? AND source = ?",
            [p.chain, p.token, opts.source],
        ).fetchone()
        attempts = (int(old[0] or 0) if old else 0) + 1
        tf = opts.tf_s
        if old and old[1] is not None and state == OK:
            tf = max(int(old[1]), tf)
        elif old and old[1] is not None:
            tf = int(old[1])
        con.execute(
            "DELETE FROM fetch_status WHERE chain = ? AND token = ? AND source = ?",
            [p.chain, p.token, opts.source],
        )
        con.execute(
            "INSERT INTO fetch_status (chain, token, source, state, reason, pool, pool_side, timeframe_s, "
            "attempts, requests, bars, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                p.chain,
                p.token,
                opts.source,
                state,
                reason,
                pool_addr,
                side if pool_addr or side else None,
                tf if state == OK or old else None,
                attempts,
                requests,
                bars,
                when,
            ],
        )
        if pieces:
            cur = con.execute(
                "SELECT start_ts, end_ts, fetched_at FROM fetch_ranges WHERE chain = ? AND token = ? "
                "AND source = ? AND pool IS NOT DISTINCT FROM ?",
                [p.chain, p.token, opts.source, pool_addr],
            ).fetchall()
            merged = _merge_with_time([(int(a), int(b), int(c)) for a, b, c in cur] + pieces)
            con.execute(
                "DELETE FROM fetch_ranges WHERE chain = ? AND token = ? AND source = ? "
                "AND pool IS NOT DISTINCT FROM ?",
                [p.chain, p.token, opts.source, pool_addr],
            )
            con.executemany(
                "INSERT INTO fetch_ranges (chain, token, start_ts, end_ts, source, pool, fetched_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[p.chain, p.token, s, e, opts.source, pool_addr, f] for s, e, f in merged],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.close()


def _merge_with_time(rows: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Merge overlapping/touching ranges; a merged range keeps the latest fetch time of its parts."""
    out: list[list[int]] = []
    for s, e, f in sorted(rows):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
            out[-1][2] = max(out[-1][2], f)
        else:
            out.append([s, e, f])
    return [tuple(r) for r in out]  # type: ignore[misc]


def _with_pool_hints(home: Home, alerts: pd.DataFrame) -> pd.DataFrame:
    """Add the alerts' ``pool`` column when the catalog's alerts table has one (a pasted pool)."""
    con = home.connect()
    try:
        row = con.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'alerts' "
            "AND column_name = 'pool'"
        ).fetchone()
        assert row is not None  # count(*) always returns one row
        has = row[0]
        if not has:
            return alerts
        hints = con.execute("SELECT alert_id, pool FROM alerts WHERE pool IS NOT NULL").df()
    finally:
        con.close()
    return alerts.drop(columns=["pool"], errors="ignore").merge(hints, on="alert_id", how="left")


def _estimate_requests(source: str, p: TokenPlan, tf: int) -> int:
    per = (PAGE_LIMIT if source == GECKOTERMINAL else CHUNK_BARS) * tf
    n = sum(math.ceil((e - s) / per) for s, e in p.todo)
    return n + (len(p.todo) + (0 if p.pool_hint else 1) if source == GECKOTERMINAL else 0)


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _desc(source: str, requests: int, bars: int) -> str:
    return f"fetch {source}: {requests} req, {bars:,} bars"


# ------------------------------------------------------------------------------------------- status


def fetch_status(home: Home) -> dict[str, pd.DataFrame]:
    """The catalog's view of fetched candles: counts by source/state, tokens not ok, ranges per source."""
    con = home.connect()
    try:
        summary = con.execute(
            "SELECT source, state, count(*) AS tokens, sum(bars) AS bars_last_run, max(to_timestamp(updated_at)) "
            "AS last_update FROM fetch_status GROUP BY ALL ORDER BY source, state"
        ).df()
        problems = con.execute(
            "SELECT chain, token, source, state, reason, attempts, to_timestamp(updated_at) AS updated_at "
            "FROM fetch_status WHERE state <> 'ok' ORDER BY state, chain, token"
        ).df()
        ranges = con.execute(
            "SELECT source, count(DISTINCT chain || ':' || token) AS tokens, count(*) AS ranges, "
            "round(sum(end_ts - start_ts) / 3600.0, 1) AS hours, to_timestamp(min(start_ts)) AS first, "
            "to_timestamp(max(end_ts)) AS last FROM fetch_ranges GROUP BY ALL ORDER BY source"
        ).df()
    finally:
        con.close()
    return {"summary": summary, "problems": problems, "ranges": ranges}


__all__ = ["FetchOptions", "FetchReport", "fetch_status", "run_fetch"]
