"""Cutting alert windows: a token's bar series (native or aggregated), the bad-tick guard, the cut rules.

Series. A token's bars are used at the data's own resolution: bars of every stored interval, each
with its duration ``dur``. Where bars of different intervals overlap in time (two sources), the
finer bars win and a coarser bar overlapping any of them is dropped (its span is covered, at
least partly, by finer data). With an explicit interval ``I`` bars finer than ``I`` are first
aggregated into I-slots by the slot their open falls in (per slot only the coarsest finer interval
present is used: first open, max high, min low, last close, summed volume), native ``I`` bars win
over aggregated ones, and coarser bars are kept as they are. Nothing is forward-filled.

No-trade bar: volume 0 and open = high = low = close (the source repeated the last price).

Bad-tick guard (factor ``k``; see README "Bad-tick guard"): with ``pc`` the previous bar's close
and ``no`` the next bar's open in the token's series (the bar's own open/close at the series
ends), a bar's high is suspect when ``high > k * max(open, close, pc, no)`` and its low when
``low < min(open, close, pc, no) / k``. A suspect extreme is clamped to the bar's body
(``max(open, close)`` / ``min(open, close)``); the bar counts once in ``n_suspect`` however many of
its extremes were clamped. ``high_raw``/``low_raw`` keep the stored values.

Cut, per alert with call time ``t`` (epoch s, rounded up from ms):

* entry bar = the first traded bar with ``ts >= t``; none (no bar at or after the call) →
  ``missing``; bars after the call but none traded → ``stale``;
* ``entry_lag_s = ts_entry - t``; ``lag > max(max_entry_lag_s, dur_entry)`` → ``stale``;
* entry open not > 0 → ``bad_entry``;
* window = the bars with ``ts_entry <= ts < ts_entry + H``;
* ``data_end_ts`` = the token's known data end: max(end of its last stored bar, end of its fetched
  ranges); ``coverage = (min(data_end, ts_entry + H) - ts_entry) / H``; ``truncated`` when
  ``data_end < ts_entry + H`` (bars and metrics kept);
* ``gap_share`` = share of the known part of the horizon ``[ts_entry, min(data_end, ts_entry + H))``
  not covered by any bar (quiet time: nothing traded, or the source skipped it);
* ``resolution_s`` = the coarsest bar duration in the window; ``n_suspect`` = guarded bars in it.
"""

from __future__ import annotations

from pathlib import Path

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alertlab.store.candles import KEY_SHIFT
from alertlab.windows.model import BAD_ENTRY, MISSING, OK, STALE, TRUNCATED

PRICE_FIELDS = ("open", "high", "low", "close", "volume")
SERIES_FIELDS = ("ts", "dur", "open", "high", "low", "close", "volume", "high_raw", "low_raw")


def _empty_series(n_tokens: int) -> dict[str, np.ndarray]:
    out = {
        k: np.empty(0, np.int64 if k in ("ts", "dur", "code") else np.float64)
        for k in (*SERIES_FIELDS, "code")
    }
    out["suspect"] = np.empty(0, np.bool_)
    out["traded"] = np.empty(0, np.bool_)
    out["token_end"] = np.zeros(n_tokens, np.int64)
    return out


def _aggregate(code, iv, ts, o, h, lo, c, v, interval_s: int) -> dict[str, np.ndarray]:
    """Bars finer than I into I-slots (coarsest finer interval present per slot)."""
    slot = (ts // interval_s) * interval_s
    key = code * KEY_SHIFT + slot
    order = np.lexsort((ts, -iv, key))
    key, iv, ts = key[order], iv[order], ts[order]
    o, h, lo, c, v = o[order], h[order], lo[order], c[order], v[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    grp = np.cumsum(first) - 1
    best = iv[first][grp]
    keep = iv == best
    key, ts, o, h, lo, c, v = key[keep], ts[keep], o[keep], h[keep], lo[keep], c[keep], v[keep]
    order = np.lexsort((ts, key))
    key, o, h, lo, c, v = key[order], o[order], h[order], lo[order], c[order], v[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)] - 1
    k = key[starts]
    return {
        "code": k // KEY_SHIFT,
        "ts": k % KEY_SHIFT,
        "open": o[starts],
        "high": np.maximum.reduceat(h, starts),
        "low": np.minimum.reduceat(lo, starts),
        "close": c[ends],
        "volume": np.add.reduceat(v, starts),
    }


def resolve_overlaps(code: np.ndarray, ts: np.ndarray, dur: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Keep mask: levels by ascending ``rank`` (finer first); a bar overlapping a kept bar is dropped."""
    keep = np.zeros(len(ts), bool)
    kkey = np.empty(0, np.int64)
    kend = np.empty(0, np.int64)
    for r in np.unique(rank):
        sel = np.flatnonzero(rank == r)
        if len(kkey):
            cstart = code[sel] * KEY_SHIFT + ts[sel]
            pos = np.searchsorted(kkey, cstart + dur[sel], side="left") - 1
            pc_ = np.maximum(pos, 0)
            clash = (pos >= 0) & (kkey[pc_] // KEY_SHIFT == code[sel]) & (kend[pc_] > ts[sel])
            sel = sel[~clash]
        keep[sel] = True
        nk = code[sel] * KEY_SHIFT + ts[sel]
        allk = np.concatenate([kkey, nk])
        alle = np.concatenate([kend, ts[sel] + dur[sel]])
        o = np.argsort(allk, kind="stable")
        kkey, kend = allk[o], alle[o]
    return keep


@nb.njit(cache=True, nogil=True)
def guard_kernel(code, op, hi, lo, cl, k, out_hi, out_lo, suspect):
    """The bad-tick guard over series sorted by (code, ts); ``k <= 0`` turns it off."""
    n = op.shape[0]
    for j in range(n):
        out_hi[j] = hi[j]
        out_lo[j] = lo[j]
        suspect[j] = False
        if k <= 0.0:
            continue
        o = op[j]
        c = cl[j]
        p = cl[j - 1] if j > 0 and code[j - 1] == code[j] else o
        q = op[j + 1] if j + 1 < n and code[j + 1] == code[j] else c
        ref_hi = max(max(o, c), max(p, q))
        ref_lo = min(min(o, c), min(p, q))
        if hi[j] > k * ref_hi:
            out_hi[j] = max(o, c)
            suspect[j] = True
        if lo[j] < ref_lo / k:
            out_lo[j] = min(o, c)
            suspect[j] = True


def guard(
    code: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, k: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Guarded high, guarded low and the suspect flag of bars sorted by (code, ts)."""
    n = len(o)
    gh, gl, sus = np.empty(n), np.empty(n), np.empty(n, np.bool_)
    guard_kernel(
        np.ascontiguousarray(code, np.int64),
        np.ascontiguousarray(o, np.float64),
        np.ascontiguousarray(h, np.float64),
        np.ascontiguousarray(lo, np.float64),
        np.ascontiguousarray(c, np.float64),
        float(k or 0.0),
        gh,
        gl,
        sus,
    )
    return gh, gl, sus


def no_trade(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """No-trade bars: volume 0 and open = high = low = close."""
    return (v == 0) & (o == h) & (h == lo) & (lo == c)


def load_series(
    path: Path, tokens: list[str], interval_s: int | None, wick_guard: float | None
) -> dict[str, np.ndarray]:
    """Bar series of ``tokens`` from one candle bucket, sorted by (code, ts); code = index in ``tokens``.

    Returns ``code`` and SERIES_FIELDS per bar, ``suspect`` and ``traded`` flags, and
    ``token_end[code]`` = end of the token's last stored bar (0 when it has none).
    """
    if not path.exists() or not tokens:
        return _empty_series(len(tokens))
    t = pq.read_table(
        path, columns=["token", "interval_s", "ts", *PRICE_FIELDS], filters=[("token", "in", tokens)]
    )
    code = pc.index_in(t["token"], value_set=pa.array(tokens)).to_numpy(zero_copy_only=False).astype(np.int64)
    iv = t["interval_s"].to_numpy().astype(np.int64)
    ts = t["ts"].to_numpy().astype(np.int64)
    px = {k: t[k].to_numpy().astype(np.float64) for k in PRICE_FIELDS}
    token_end = np.zeros(len(tokens), np.int64)
    if len(ts):
        np.maximum.at(token_end, code, ts + iv)
    parts = []
    if interval_s is None:
        parts.append({"code": code, "ts": ts, "dur": iv, "rank": iv * 2, **px})
    else:
        i = int(interval_s)
        fine = iv < i
        keep = ~fine
        parts.append(
            {
                "code": code[keep],
                "ts": ts[keep],
                "dur": iv[keep],
                "rank": iv[keep] * 2,
                **{k: v[keep] for k, v in px.items()},
            }
        )
        if fine.any():
            o, h, lo, c, v = (px[k][fine] for k in PRICE_FIELDS)
            agg = _aggregate(code[fine], iv[fine], ts[fine], o, h, lo, c, v, i)
            m = len(agg["ts"])
            parts.append({**agg, "dur": np.full(m, i, np.int64), "rank": np.full(m, 2 * i + 1, np.int64)})
    s = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = resolve_overlaps(s["code"], s["ts"], s["dur"], s["rank"])
    s = {k: v[keep] for k, v in s.items()}
    order = np.lexsort((s["ts"], s["code"]))
    s = {k: v[order] for k, v in s.items()}
    del s["rank"]
    s["high_raw"], s["low_raw"] = s["high"], s["low"]
    s["high"], s["low"], s["suspect"] = guard(
        s["code"], s["open"], s["high_raw"], s["low_raw"], s["close"], wick_guard
    )
    s["traded"] = ~no_trade(s["open"], s["high_raw"], s["low_raw"], s["close"], s["volume"])
    s["token_end"] = token_end
    return s


@nb.njit(cache=True, nogil=True)
def _cut_kernel(  # noqa: C901 (Numba kernel: the cut rules in one pass per alert)
    codes,
    t_call,
    gstart,
    gend,
    ts,
    dur,
    op,
    traded,
    suspect,
    data_end,
    horizon,
    max_lag,
    status,
    entry_ts,
    entry_px,
    lag,
    start,
    count,
    res,
    cov,
    gap,
    dend,
    nsus,
):
    for a in range(codes.shape[0]):
        c = codes[a]
        status[a] = MISSING
        entry_ts[a] = 0
        entry_px[a] = np.nan
        lag[a] = -1
        start[a] = 0
        count[a] = 0
        res[a] = 0
        cov[a] = 0.0
        gap[a] = np.nan
        dend[a] = data_end[c] if c >= 0 else 0
        nsus[a] = 0
        if c < 0:
            continue
        s, e = gstart[c], gend[c]
        if s >= e:
            continue
        t = t_call[a]
        lo, hi = s, e  # first bar with ts >= t
        while lo < hi:
            mid = (lo + hi) // 2
            if ts[mid] < t:
                lo = mid + 1
            else:
                hi = mid
        if lo >= e:
            continue  # no bar at or after the call: missing
        j = lo
        while j < e and not traded[j]:
            j += 1
        if j >= e:
            status[a] = STALE  # bars after the call, but nothing traded on them
            continue
        lag[a] = ts[j] - t
        entry_ts[a] = ts[j]
        entry_px[a] = op[j]
        if lag[a] > max(max_lag, dur[j]):
            status[a] = STALE
            continue
        if not (op[j] > 0.0):
            status[a] = BAD_ENTRY
            continue
        t0 = ts[j]
        stop = t0 + horizon
        known_end = min(dend[a], stop)
        k = j
        covered = 0
        r = 0
        ns = 0
        while k < e and ts[k] < stop:
            b_end = min(ts[k] + dur[k], known_end)
            if b_end > ts[k]:
                covered += b_end - ts[k]
            if dur[k] > r:
                r = dur[k]
            if suspect[k]:
                ns += 1
            k += 1
        start[a] = j
        count[a] = k - j
        res[a] = r
        nsus[a] = ns
        known = known_end - t0
        cov[a] = max(0.0, min(1.0, known / horizon))
        gap[a] = max(0.0, 1.0 - covered / known) if known > 0 else 0.0
        status[a] = TRUNCATED if dend[a] < stop else OK


def cut_windows(
    codes: np.ndarray,
    alert_ts_ms: np.ndarray,
    series: dict[str, np.ndarray],
    data_end: np.ndarray,
    horizon_s: int,
    max_entry_lag_s: int,
) -> dict[str, np.ndarray]:
    """Cut rules of the module docstring for alerts (token ``codes``, -1 = no such token in ``series``).

    ``data_end[code]`` is each token's known data end. Returns per-alert ``status, entry_ts,
    entry_price, entry_lag_s, start, count, resolution_s, coverage, gap_share, data_end_ts,
    n_suspect``; the window of alert ``a`` is ``series[...][start[a]:start[a] + count[a]]``.
    """
    n = len(codes)
    codes = np.ascontiguousarray(codes, np.int64)
    n_tok = len(data_end)
    sc = series["code"]
    gstart = np.searchsorted(sc, np.arange(n_tok), side="left").astype(np.int64)
    gend = np.searchsorted(sc, np.arange(n_tok), side="right").astype(np.int64)
    out: dict[str, np.ndarray] = {
        "status": np.empty(n, np.int8),
        "entry_ts": np.empty(n, np.int64),
        "entry_price": np.empty(n),
        "entry_lag_s": np.empty(n, np.int64),
        "start": np.empty(n, np.int64),
        "count": np.empty(n, np.int64),
        "resolution_s": np.empty(n, np.int64),
        "coverage": np.empty(n),
        "gap_share": np.empty(n),
        "data_end_ts": np.empty(n, np.int64),
        "n_suspect": np.empty(n, np.int64),
    }
    t_call = -(-np.asarray(alert_ts_ms, np.int64) // 1000)
    _cut_kernel(
        codes,
        t_call,
        gstart,
        gend,
        np.ascontiguousarray(series["ts"], np.int64),
        np.ascontiguousarray(series["dur"], np.int64),
        np.ascontiguousarray(series["open"], np.float64),
        np.ascontiguousarray(series["traded"], np.bool_),
        np.ascontiguousarray(series["suspect"], np.bool_),
        np.ascontiguousarray(data_end, np.int64),
        np.int64(horizon_s),
        np.int64(max_entry_lag_s),
        out["status"],
        out["entry_ts"],
        out["entry_price"],
        out["entry_lag_s"],
        out["start"],
        out["count"],
        out["resolution_s"],
        out["coverage"],
        out["gap_share"],
        out["data_end_ts"],
        out["n_suspect"],
    )
    return out
