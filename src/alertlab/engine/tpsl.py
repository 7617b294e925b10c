"""Plain TP/SL grids by first passage: no bar scan per parameter set.

For a plain row (one take-profit level selling everything and/or a fixed stop, immediate entry,
nothing path dependent) the stop and the target are constant, so the trade is decided by the
first bar whose high reaches T = tp·P and the first bar whose low reaches S = sl·P. Per window we
build the running max of highs and running min of lows once, find each distinct level's first
crossing by binary search on these monotone arrays, and combine per parameter set with exactly the
per-bar rules of :mod:`alertlab.engine.kernel`:

* stop bar first: open ≤ S → sold at the open (gap), else at S;
* target bar first: open ≥ T → sold at the open, else at T;
* same bar: open ≤ S → stop at the open; open ≥ T → target at the open; otherwise both lie
  inside the bar (ambiguous) and the intrabar policy picks S or T.

Bars before the first crossing cannot trigger anything (a bar whose open is ≤ S has low ≤ S, one
whose open is ≥ T has high ≥ T), so the result equals the general simulator's bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alertlab.engine.kernel import (
    HORIZON,
    NO_FILL,
    NO_TRADE,
    OHLC,
    OPT,
    PESS,
    SL,
    TP,
    cost_factor,
    finish_returns,
)


@njit(cache=True, nogil=True)
def _first_ge(a, n, x):
    """First j < n with a[j] >= x for nondecreasing a (n if none)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] >= x:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True)
def _first_le(a, n, x):
    """First j < n with a[j] <= x for nonincreasing a (n if none)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True, inline="always")
def _outcome(pol, j, jt, js, n, s, e, ts, op, hi, cl, pmax, P, T, S, interval_s):
    """(code, exit price, exit ts, peak) of a plain trade under one policy."""
    if jt == n and js == n:
        pk = pmax[n - 1] if pmax[n - 1] > P else P
        return HORIZON, cl[e - 1], ts[e - 1] + interval_s, pk
    b = s + j
    o = op[b]
    prev = P
    if j > 0 and pmax[j - 1] > P:
        prev = pmax[j - 1]
    incl = pmax[j] if pmax[j] > P else P
    if js == j and o <= S:
        return SL, o, ts[b], prev
    if jt == j and o >= T:
        return TP, o, ts[b], prev
    if js == j and jt == j:  # both inside the bar
        if pol == PESS or (pol == OHLC and cl[b] >= o):
            return SL, S, ts[b] + interval_s, incl
        return TP, T, ts[b] + interval_s, incl
    if js == j:
        return SL, S, ts[b] + interval_s, incl
    return TP, T, ts[b] + interval_s, incl


@njit(cache=True, nogil=True)
def tpsl_kernel(
    offsets,
    ts,
    op,
    hi,
    lo,
    cl,
    alert_idx,
    tp_u,
    sl_u,
    p_tp,
    p_sl,
    fee,
    slip,
    policy,
    interval_s,
    full,
    ret,
    ret_p,
    ret_o,
    code,
    amb,
    ret_g,
    entry_ts,
    entry_px,
    exit_ts,
    exit_px,
    n_fills,
    peak_mult,
):
    """Outputs as :func:`alertlab.engine.kernel.general_kernel` for plain TP/SL rows.

    ``tp_u`` / ``sl_u``: distinct take-profit / stop multiples; ``p_tp[p]`` / ``p_sl[p]``: index of
    parameter set p's level in them (−1 = rule off); ``fee`` / ``slip``: per-row cost fractions.
    """
    n_alerts = alert_idx.shape[0]
    n_params = p_tp.shape[0]
    kcs = np.empty(n_params)
    for p in range(n_params):
        kcs[p] = cost_factor(fee[p], slip[p])
    itp = np.empty(tp_u.shape[0], dtype=np.int64)
    isl = np.empty(sl_u.shape[0], dtype=np.int64)
    for a in range(n_alerts):
        i = alert_idx[a]
        s = offsets[i]
        e = offsets[i + 1]
        n = e - s
        P = op[s] if n > 0 else np.nan
        if n <= 0 or not (P > 0.0 and np.isfinite(P)):
            c0 = NO_TRADE if n <= 0 else NO_FILL
            for p in range(n_params):
                ret[a, p] = np.nan
                ret_p[a, p] = np.nan
                ret_o[a, p] = np.nan
                code[a, p] = c0
                amb[a, p] = False
                if full:
                    ret_g[a, p] = np.nan
                    entry_ts[a, p] = 0
                    entry_px[a, p] = np.nan
                    exit_ts[a, p] = 0
                    exit_px[a, p] = np.nan
                    n_fills[a, p] = 0
                    peak_mult[a, p] = np.nan
            continue
        pmax = np.empty(n)
        pmin = np.empty(n)
        mx = hi[s]
        mn = lo[s]
        for j in range(n):
            if hi[s + j] > mx:
                mx = hi[s + j]
            if lo[s + j] < mn:
                mn = lo[s + j]
            pmax[j] = mx
            pmin[j] = mn
        for u in range(tp_u.shape[0]):
            itp[u] = _first_ge(pmax, n, tp_u[u] * P)
        for u in range(sl_u.shape[0]):
            isl[u] = _first_le(pmin, n, sl_u[u] * P)
        for p in range(n_params):
            jt = n
            T = np.inf
            if p_tp[p] >= 0:
                jt = itp[p_tp[p]]
                T = tp_u[p_tp[p]] * P
            js = n
            S = -np.inf
            if p_sl[p] >= 0:
                js = isl[p_sl[p]]
                S = sl_u[p_sl[p]] * P
            j = jt if jt < js else js
            kc = kcs[p]
            c, x, xts, pk = _outcome(policy, j, jt, js, n, s, e, ts, op, hi, cl, pmax, P, T, S, interval_s)
            r, rg = finish_returns(1.0 * x, P, kc)
            ab = j < n and jt == j and js == j and op[s + j] > S and op[s + j] < T
            rp = r
            ro = r
            if ab:
                _, xp, _, _ = _outcome(PESS, j, jt, js, n, s, e, ts, op, hi, cl, pmax, P, T, S, interval_s)
                rp, _ = finish_returns(1.0 * xp, P, kc)
                _, xo, _, _ = _outcome(OPT, j, jt, js, n, s, e, ts, op, hi, cl, pmax, P, T, S, interval_s)
                ro, _ = finish_returns(1.0 * xo, P, kc)
            ret[a, p] = r
            ret_p[a, p] = rp
            ret_o[a, p] = ro
            code[a, p] = c
            amb[a, p] = ab
            if full:
                ret_g[a, p] = rg
                entry_ts[a, p] = ts[s]
                entry_px[a, p] = P
                exit_ts[a, p] = xts
                exit_px[a, p] = x
                n_fills[a, p] = 1
                peak_mult[a, p] = pk / P
