"""Test helpers: random nasty :class:`~alertlab.windows.Windows` and hand-built ones.

``random_windows`` draws memecoin-like paths with everything that breaks naive code: gaps (missing
bars, so bar index != time), flat zero-volume stretches (no-trade bars: volume 0 and open = high =
low = close; optionally also at the start of a window, at its end and as a whole dead tail), rugs
(-99 % in one bar), pumps past 10x, prices from 1e-9 up, single-bar and truncated windows (alert
near the end of the data; optionally with status TRUNCATED), mixed bar intervals (fine bars, a
hole, then hourly bars, as in files that switch from 5-minute to hourly candles), non-ok alerts
with empty windows, and planted exact cases (high == N*E, ties for the maximum, ATH on the first /
last bar, 2x in the entry bar, close == E). Bars are guard-clean: low <= open, close <= high. ``windows_from_bars`` builds a ``Windows`` from
explicit bars for hand-written cases. Import with ``from windowgen import ...`` (pytest puts
``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from alertlab.windows import BAD_ENTRY, MISSING, OK, STALE, Windows
from alertlab.windows.model import TRUNCATED

MULTIPLES = (2, 3, 4, 5, 10)
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_PLANTS = ("exact_nx", "tie_max", "ath_last", "ath_first", "2x_entry", "close_eq_entry", "exact_2x_last")


def _alert_id(caller: str, chain: str, token: str, ts_ms: int) -> str:
    return hashlib.sha1(f"{caller}|{chain}|{token}|{ts_ms}".encode()).hexdigest()[:16]


def first_call_flags(
    chain: np.ndarray, token: np.ndarray, ts_ms: np.ndarray, alert_id: np.ndarray
) -> np.ndarray:
    """``is_first_call`` per the convention: earliest alert per (chain, token), ties by alert_id."""
    best: dict[tuple[str, str], tuple[int, str, int]] = {}
    for i in range(len(ts_ms)):
        key = (str(chain[i]), str(token[i]))
        cand = (int(ts_ms[i]), str(alert_id[i]), i)
        if key not in best or cand < best[key]:
            best[key] = cand
    out = np.zeros(len(ts_ms), dtype=bool)
    for _, _, i in best.values():
        out[i] = True
    return out


def _one_path(
    rng: np.random.Generator,
    ks: np.ndarray,
    entry: float,
    p_flat: float,
    flat_len: tuple[int, int],
    p_rug: float,
    flat_edges: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[np.ndarray, ...]:
    """OHLCV for the kept bar slots ``ks`` (bar offsets from the entry bar, ks[0] == 0).

    ``flat_edges`` = chances of a no-trade run at the start, at the end, and of a dead tail (every
    bar from a random point on)."""
    m = len(ks)
    sigma = rng.uniform(0.003, 0.06)
    mu = rng.normal(0.0, sigma / 20)
    steps = np.diff(ks, prepend=0).astype(np.float64)  # slots elapsed since the previous kept bar
    ret = mu * np.maximum(steps, 1) + sigma * np.sqrt(np.maximum(steps, 1)) * rng.standard_normal(m)
    if rng.random() < 0.5:  # a pump (sometimes past 10x), often followed by a dump
        p0 = int(rng.integers(0, m))
        plen = int(rng.integers(1, max(2, m // 4) + 1))
        ret[p0 : p0 + plen] += np.log(rng.uniform(1.2, 40.0)) / plen
        if rng.random() < 0.6 and p0 + plen < m:
            d0 = p0 + plen
            dlen = int(rng.integers(1, max(2, m // 3) + 1))
            ret[d0 : d0 + dlen] -= np.log(rng.uniform(1.5, 30.0)) / dlen
    rug = rng.random(m) < p_rug
    rug[0] = False
    ret[rug] = np.log(rng.uniform(0.005, 0.012, size=int(rug.sum())))  # ~ -99 % in one bar
    flat = np.zeros(m, dtype=bool)
    starts = np.flatnonzero(rng.random(m) < p_flat)
    for s in starts:
        flat[s : s + int(rng.integers(flat_len[0], flat_len[1] + 1))] = True
    flat[0] = False
    if rng.random() < flat_edges[0]:  # the window opens with bars where nothing traded
        flat[: int(rng.integers(1, max(2, m // 3) + 1))] = True
    if rng.random() < flat_edges[1]:  # ... or ends with them
        flat[m - int(rng.integers(1, max(2, m // 3) + 1)) :] = True
    if rng.random() < flat_edges[2]:  # a dead tail: nothing trades from some point on
        flat[int(rng.integers(0, m)) :] = True
    rug &= ~flat
    ret[0] = rng.normal(0.0, sigma)  # entry bar: open = entry, close moves
    ret[flat] = 0.0
    close = entry * np.exp(np.cumsum(ret))
    close = np.maximum(close, 1e-300)
    jitter = np.where((rng.random(m) < 0.3) & ~flat, rng.normal(0.0, sigma / 4, size=m), 0.0)
    open_ = np.empty(m)
    open_[0] = entry
    open_[1:] = close[:-1] * np.exp(jitter[1:])
    wick = np.where(flat, 0.0, np.abs(rng.normal(0.0, sigma, size=(2, m))))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    low[rug] = np.minimum(low[rug], close[rug] * rng.uniform(0.5, 1.0, size=int(rug.sum())))
    volume = np.where(flat, 0.0, rng.lognormal(8.0, 2.0, size=m))
    return open_, high, low, close, volume


def _plant(rng: np.random.Generator, kind: str, o, h, lo, c, entry: float) -> None:
    """Plant one exact edge case in place, keeping low <= open, close <= high."""
    m = len(h)
    if kind == "exact_nx":  # high exactly N * E on a random bar, others below it
        n = int(rng.choice(MULTIPLES))
        j = int(rng.integers(0, m))
        target = n * entry
        h[:] = np.minimum(h, np.nextafter(target, 0.0) if rng.random() < 0.5 else h)
        h[j] = target
    elif kind == "tie_max" and m >= 2:  # the maximum reached on two bars
        j = int(np.argmax(h))
        other = int(rng.integers(0, m - 1))
        h[other + (other >= j)] = h[j]  # any other bar, before or after the first maximum
    elif kind == "ath_last":
        h[-1] = h.max() * rng.uniform(1.0, 3.0)
    elif kind == "ath_first":
        h[0] = h.max() * rng.uniform(1.0, 3.0)
    elif kind == "2x_entry":
        h[0] = 2 * entry if rng.random() < 0.5 else entry * rng.uniform(2.0, 12.0)
    elif kind == "close_eq_entry":
        j = int(rng.integers(0, m))
        c[j] = entry
        h[j] = max(h[j], entry)
        lo[j] = min(lo[j], entry)
    elif kind == "exact_2x_last":  # the 2x bar is the last bar: nothing after it
        h[:-1] = np.minimum(h[:-1], np.nextafter(2 * entry, 0.0))
        h[-1] = 2 * entry
    o[:] = np.minimum(o, h)
    c[:] = np.minimum(c, h)
    lo[:] = np.minimum(lo, np.minimum(o, c))


def random_windows(
    rng: np.random.Generator,
    n_alerts: int,
    interval_s: int = 60,
    horizon_s: int = 48 * 3600,
    *,
    p_nonok: float = 0.1,
    p_single: float = 0.05,
    p_truncated: float = 0.2,
    p_gap: float = 0.03,
    max_gap_bars: int = 30,
    p_flat: float = 0.01,
    flat_len: tuple[int, int] = (3, 60),
    p_rug: float = 0.003,
    p_plant: float = 0.4,
    p_mixed: float = 0.0,
    coarse_s: int = 3600,
    p_flat_start: float = 0.0,
    p_flat_end: float = 0.0,
    p_flat_tail: float = 0.0,
    mark_truncated: bool = False,
    price_range: tuple[float, float] = (1e-9, 1e2),
    n_callers: int = 8,
    n_tokens: int | None = None,
    chains: Sequence[str] = ("solana", "bsc", "base", "ethereum"),
    start_ts: int = 1_700_000_000,
    span_s: int = 30 * 86400,
) -> Windows:
    """Random nasty windows for ``n_alerts`` alerts (deterministic given ``rng``'s state).

    Each ok window starts at its entry bar (ts = entry_ts, open = entry_price) and keeps bars at
    multiples of ``interval_s`` inside ``[entry_ts, entry_ts + horizon_s)``; gaps drop whole bars.
    Window kinds: single bar (``p_single``), truncated tail as for an alert near the end of the data
    (``p_truncated``), else the full horizon minus gaps. ``p_plant`` is the per-alert chance of one
    planted exact case. Non-ok alerts (``p_nonok``) get MISSING (entry 0 / NaN), STALE (an entry
    bar but no window) or BAD_ENTRY (entry open 0 or NaN), all with empty windows. Alerts share
    tokens (``n_tokens``, default ~n/3) so ``is_first_call`` is non-trivial; each alert's path is
    drawn independently. Alert times fall inside the bar before the entry bar's open, or exactly on
    it (about 1 in 5).

    ``p_mixed``: chance of a mixed-interval window: bars of ``interval_s`` for a random stretch,
    then a hole of 10-50 minutes, then bars of ``coarse_s`` on the ``coarse_s`` grid (each bar's
    duration in ``dur``). ``p_flat_start`` / ``p_flat_end`` / ``p_flat_tail``: chances of a run of
    no-trade bars at the start, at the end, and of a dead tail. ``mark_truncated``: windows whose
    bars stop before the horizon (the truncated kind above) get status TRUNCATED, as a token whose
    data ends early does; otherwise they stay OK.
    """
    if interval_s <= 0 or horizon_s < interval_s:
        raise ValueError("need interval_s > 0 and horizon_s >= interval_s")
    n_slots = -(-horizon_s // interval_s)  # slots k with k * interval_s < horizon_s
    n_tokens = max(1, n_alerts // 3) if n_tokens is None else n_tokens
    tok_names = ["".join(rng.choice(list(_B58), size=int(rng.integers(32, 45)))) for _ in range(n_tokens)]
    tok_chain = [str(rng.choice(list(chains))) for _ in range(n_tokens)]
    for t in range(n_tokens):
        if tok_chain[t] != "solana":  # EVM style address, lower-cased
            tok_names[t] = "0x" + "".join(rng.choice(list("0123456789abcdef"), size=40))

    alert_id = np.empty(n_alerts, dtype=object)
    caller = np.empty(n_alerts, dtype=object)
    chain = np.empty(n_alerts, dtype=object)
    token = np.empty(n_alerts, dtype=object)
    alert_ts_ms = np.empty(n_alerts, dtype=np.int64)
    status = np.zeros(n_alerts, dtype=np.int8)
    entry_ts = np.zeros(n_alerts, dtype=np.int64)
    entry_price = np.full(n_alerts, np.nan)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("ts", "dur", "open", "high", "low", "close", "volume")
    }
    counts = np.zeros(n_alerts, dtype=np.int64)
    if p_mixed > 0 and (coarse_s % interval_s or coarse_s <= interval_s):
        raise ValueError("mixed windows need coarse_s a multiple of interval_s, larger than it")

    for i in range(n_alerts):
        t = int(rng.integers(0, n_tokens))
        caller[i] = f"caller_{int(rng.integers(0, n_callers)):02d}"
        token[i], chain[i] = tok_names[t], tok_chain[t]
        e_ts = (start_ts + int(rng.integers(0, span_s))) // interval_s * interval_s
        if rng.random() < 0.2:
            ts_ms = e_ts * 1000  # exactly on the bar boundary
        else:
            ts_ms = e_ts * 1000 - int(rng.integers(1, interval_s * 1000))
        alert_ts_ms[i] = ts_ms
        alert_id[i] = _alert_id(caller[i], chain[i], token[i], ts_ms)
        if rng.random() < p_nonok:
            st = int(rng.choice([MISSING, STALE, BAD_ENTRY]))
            status[i] = st
            if st == STALE:
                entry_ts[i] = e_ts + int(rng.integers(1, 100)) * interval_s
                entry_price[i] = float(np.exp(rng.uniform(np.log(price_range[0]), np.log(price_range[1]))))
            elif st == BAD_ENTRY:
                entry_ts[i] = e_ts
                entry_price[i] = 0.0 if rng.random() < 0.5 else np.nan
            continue
        entry = float(np.exp(rng.uniform(np.log(price_range[0]), np.log(price_range[1]))))
        u = rng.random()
        if u < p_single:
            end = 1
        elif u < p_single + p_truncated:
            end = int(rng.integers(1, n_slots + 1))
        else:
            end = n_slots
        step = np.where(rng.random(end) < p_gap, 1 + rng.integers(1, max_gap_bars + 1, size=end), 1)
        ks = np.concatenate([[0], np.cumsum(step)])
        ks = ks[ks < end]
        dur = np.full(len(ks), interval_s, dtype=np.int64)
        if rng.random() < p_mixed:  # fine bars, a hole, then coarse bars on their own grid
            r = coarse_s // interval_s
            k_fine = int(rng.integers(1, max(2, min(n_slots, 6 * r)) + 1))
            hole = -(-int(rng.integers(600, 3001)) // interval_s)  # 10-50 minutes, in fine slots
            k0 = k_fine + hole
            k0 += (-(e_ts // interval_s + k0)) % r  # first coarse bar on the coarse grid
            kc = np.arange(k0, end, r)
            ks = np.concatenate([ks[ks < k_fine], kc])
            dur = np.concatenate([np.full(int((ks < k_fine).sum()), interval_s), np.full(len(kc), coarse_s)])
        edges = (p_flat_start, p_flat_end, p_flat_tail)
        o, h, lo, c, v = _one_path(rng, ks, entry, p_flat, flat_len, p_rug, edges)
        if rng.random() < p_plant:
            _plant(rng, str(rng.choice(_PLANTS)), o, h, lo, c, entry)
        status[i] = TRUNCATED if (mark_truncated and end < n_slots) else OK
        entry_ts[i] = e_ts
        entry_price[i] = o[0]
        cols["ts"].append(e_ts + ks * interval_s)
        cols["dur"].append(dur.astype(np.int64))
        for k, arr in zip(("open", "high", "low", "close", "volume"), (o, h, lo, c, v), strict=True):
            cols[k].append(arr)
        counts[i] = len(ks)

    return _assemble(
        cols,
        counts,
        interval_s,
        horizon_s,
        alert_id,
        caller,
        chain,
        token,
        alert_ts_ms,
        status,
        entry_ts,
        entry_price,
        "random_windows",
    )


def _assemble(
    cols,
    counts,
    interval_s,
    horizon_s,
    ids,
    caller,
    chain,
    token,
    ts_ms,
    status,
    entry_ts,
    entry_price,
    generator: str,
) -> Windows:
    """A Windows from per-alert bar column lists (ragged) and the per-alert arrays."""
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    flat = {
        k: (np.concatenate(v) if v else np.empty(0)).astype(np.int64 if k in ("ts", "dur") else np.float64)
        for k, v in cols.items()
    }
    return Windows(
        interval_s=int(interval_s),
        horizon_s=int(horizon_s),
        alert_id=ids,
        caller=caller,
        chain=chain,
        token=token,
        alert_ts_ms=ts_ms,
        is_first_call=first_call_flags(chain, token, ts_ms, ids),
        status=status,
        entry_ts=entry_ts,
        entry_price=entry_price,
        offsets=offsets,
        meta={"generator": generator},
        **flat,
    )


def _bars_to_columns(b, entry_ts: int, interval_s: int) -> dict[str, np.ndarray]:
    """One alert's bars as column arrays; see ``windows_from_bars`` for accepted forms."""
    if isinstance(b, Mapping):
        d = {k: np.asarray(v) for k, v in b.items()}
    elif isinstance(b, Sequence) and len(b) > 0 and isinstance(b[0], Mapping):
        d = {k: np.asarray([bar[k] for bar in b]) for k in b[0]}
    else:
        a = np.asarray(b, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] not in (4, 5):
            raise ValueError("array bars must have shape (n, 4) OHLC or (n, 5) OHLCV")
        d = {"open": a[:, 0], "high": a[:, 1], "low": a[:, 2], "close": a[:, 3]}
        if a.shape[1] == 5:
            d["volume"] = a[:, 4]
    unknown = set(d) - {"ts", "k", "dur", "open", "high", "low", "close", "volume"}
    if unknown:
        raise ValueError(f"unknown bar keys {sorted(unknown)}")
    n = len(d["open"])
    if "ts" in d and "k" in d:
        raise ValueError("give bar times as 'ts' (epoch s) or 'k' (bar offsets), not both")
    if "ts" in d:
        ts = d["ts"].astype(np.int64)
    elif "k" in d:
        ts = entry_ts + d["k"].astype(np.int64) * interval_s
    else:
        ts = entry_ts + np.arange(n, dtype=np.int64) * interval_s
    out = {"ts": ts}
    for k in ("open", "high", "low", "close"):
        out[k] = d[k].astype(np.float64)
    out["volume"] = d["volume"].astype(np.float64) if "volume" in d else np.ones(n)
    out["dur"] = d["dur"].astype(np.int64) if "dur" in d else np.full(n, int(interval_s), np.int64)
    if any(len(v) != n for v in out.values()):
        raise ValueError("all bar columns must have the same length")
    return out


def windows_from_bars(
    bars: Sequence,
    interval_s: int,
    horizon_s: int,
    entry_ts: int | Sequence[int] = 1_700_000_040,
    *,
    status: Sequence[int] | None = None,
    caller: Sequence[str] | None = None,
    chain: Sequence[str] | None = None,
    token: Sequence[str] | None = None,
    alert_ts_ms: Sequence[int] | None = None,
    alert_id: Sequence[str] | None = None,
) -> Windows:
    """A ``Windows`` from explicit bars, one entry of ``bars`` per alert.

    Each entry is ``None`` (a non-ok alert: MISSING unless ``status`` says otherwise), a dict of
    columns ``open, high, low, close`` (+ optional ``volume``, and bar times as ``ts`` epoch seconds
    or ``k`` bar offsets from the entry bar; default consecutive bars; optional ``dur`` bar durations,
    default ``interval_s``), a list of per-bar dicts with the same keys, or an ``(n, 4|5)`` OHLC[V]
    array of consecutive bars. ``entry_ts`` (scalar or per alert) must be a multiple of
    ``interval_s``; the first bar must sit at it and all bars on the grid inside ``[entry_ts,
    entry_ts + horizon_s)``, strictly increasing, not overlapping the previous bar, else ValueError.
    Alerts with status OK or TRUNCATED have bars; the others none.
    Defaults: callers ``c0, c1, ...``, chain ``solana``, distinct tokens, alert exactly at entry.
    """
    n = len(bars)
    ets = np.broadcast_to(np.asarray(entry_ts, dtype=np.int64), (n,)).copy()
    st = np.array(
        [OK if b is not None else MISSING for b in bars] if status is None else status, dtype=np.int8
    )
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("ts", "dur", "open", "high", "low", "close", "volume")
    }
    counts = np.zeros(n, dtype=np.int64)
    entry_price = np.full(n, np.nan)
    for i, b in enumerate(bars):
        if ets[i] % interval_s:
            raise ValueError(f"alert {i}: entry_ts {ets[i]} is not a multiple of interval_s")
        if b is None or st[i] not in (OK, TRUNCATED):
            if b is not None and len(b) > 0:
                raise ValueError(f"alert {i}: alerts without an entry have no bars")
            if st[i] in (OK, TRUNCATED):
                raise ValueError(f"alert {i}: ok / truncated alerts need at least one bar")
            if st[i] == MISSING:
                ets[i] = 0
            continue
        d = _bars_to_columns(b, int(ets[i]), interval_s)
        ts = d["ts"]
        if len(ts) == 0:
            raise ValueError(f"alert {i}: ok alerts need at least one bar")
        if ts[0] != ets[i]:
            raise ValueError(f"alert {i}: first bar ts {ts[0]} != entry_ts {ets[i]}")
        overlap = np.any(ts[1:] < ts[:-1] + d["dur"][:-1]) or np.any(d["dur"] <= 0)
        if np.any(ts % interval_s) or overlap or ts[-1] >= ets[i] + horizon_s:
            raise ValueError(
                f"alert {i}: bar ts must be increasing multiples of interval_s inside the horizon"
            )
        entry_price[i] = d["open"][0]
        for k in cols:
            cols[k].append(d[k])
        counts[i] = len(ts)
    caller_a = np.array([f"c{i}" for i in range(n)] if caller is None else list(caller), dtype=object)
    chain_a = np.array(["solana"] * n if chain is None else list(chain), dtype=object)
    token_a = np.array([f"tok{i}" for i in range(n)] if token is None else list(token), dtype=object)
    ts_ms = np.asarray(ets * 1000 if alert_ts_ms is None else alert_ts_ms, dtype=np.int64)
    if alert_id is None:
        ids = np.array(
            [_alert_id(caller_a[i], chain_a[i], token_a[i], int(ts_ms[i])) for i in range(n)], dtype=object
        )
    else:
        ids = np.array(list(alert_id), dtype=object)
    return _assemble(
        cols,
        counts,
        interval_s,
        horizon_s,
        ids,
        caller_a,
        chain_a,
        token_a,
        ts_ms,
        st,
        ets,
        entry_price,
        "windows_from_bars",
    )
