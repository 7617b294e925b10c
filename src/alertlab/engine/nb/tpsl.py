"""Plain TP/SL grids by first passage: no bar scan per parameter set.

For a plain row (one take-profit level selling everything and/or a fixed stop, immediate entry,
nothing path dependent) the stop and the target are constant, so the trade is decided by the
first bar whose high reaches T = tp·P and the first bar whose low reaches S = sl·P. Per window we
build the running max of highs and running min of lows once, find each distinct level's first
crossing by binary search on these monotone arrays, and combine per parameter set with exactly the
per-bar rules of :mod:`alertlab.engine.nb.kernel`:

* stop bar first: open ≤ S → sold at the open (gap), else at S;
* target bar first: open ≥ T → sold at the open, else at T;
* same bar: open ≤ S → stop at the open; open ≥ T → target at the open; otherwise both lie
  inside the bar (ambiguous) and the intrabar policy picks S or T.

No-trade bars (see the kernel) trigger nothing: the running max / min take traded bars only (they
carry their value over no-trade bars), so a first crossing always lands on a traded bar. The entry is the open of the
window's first traded bar; a trade neither level closes sells at the close of the window's last
traded bar (``horizon``, or ``end_of_data`` for a truncated window).

Bars before the first crossing cannot trigger anything (a bar whose open is ≤ S has low ≤ S, one
whose open is ≥ T has high ≥ T), so the result equals the general simulator's bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alertlab.engine.enums import END_OF_DATA, HORIZON, NO_FILL, NO_TRADE, OHLC, PESS, SL, TP
from alertlab.engine.nb.kernel import bar_end, cost_factor, traded


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


@njit(cache=True, nogil=True)
def _level_outcome(j, s, ts, dur, op, pmax, P, L, is_tp, interval_s):
    """Exit of a one-level trade first crossed on bar s + j: (price, stamp, peak).

    At the open when the bar opens beyond the level (gap), else at the level inside the bar."""
    b = s + j
    o = op[b]
    if (is_tp and o >= L) or (not is_tp and o <= L):
        prev = P
        if j > 0 and pmax[j - 1] > P:
            prev = pmax[j - 1]
        return o, ts[b], prev
    return L, bar_end(ts, dur, interval_s, b), (pmax[j] if pmax[j] > P else P)


@njit(cache=True, nogil=True)
def tpsl_kernel(  # noqa: C901 (Numba first-passage kernel: one pass per window, kept in one loop for speed)
    offsets,
    ts,
    op,
    hi,
    lo,
    cl,
    tr,
    dur,
    trunc,
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
    """Outputs as :func:`alertlab.engine.nb.kernel.general_kernel` for plain TP/SL rows.

    ``tp_u`` / ``sl_u``: distinct take-profit / stop multiples; ``p_tp[p]`` / ``p_sl[p]``: index of
    parameter set p's level in them (−1 = rule off); ``fee`` / ``slip``: per-row cost fractions;
    ``tr`` / ``dur`` / ``trunc``: traded flags, bar durations and truncated windows as there. The
    running max / min take traded bars only (a bar is tested for being traded only when it would
    set a new extreme), so a first crossing always lands on a traded bar.

    Per window, each distinct level's first crossing and its one-level exit (price/P, stamp, peak)
    are computed once. A combination then exits by its target's outcome when the target bar comes
    first, by its stop's when the stop bar comes first; on a shared bar the open decides (≤ S: stop
    gap, ≥ T: target gap) and otherwise the bar is ambiguous and the policy picks one of the two
    (both at their levels). So each combination costs a few comparisons and one multiply.
    """
    n_alerts = alert_idx.shape[0]
    n_params = p_tp.shape[0]
    n_tp = tp_u.shape[0]
    n_sl = sl_u.shape[0]
    kcs = np.empty(n_params)
    for p in range(n_params):
        kcs[p] = cost_factor(fee[p], slip[p])
    # per distinct level: first crossing, level price, gross multiple, exit price, stamp, peak
    t_j = np.empty(n_tp, dtype=np.int64)
    t_lv = np.empty(n_tp)
    t_g = np.empty(n_tp)
    t_x = np.empty(n_tp)
    t_ts = np.empty(n_tp, dtype=np.int64)
    t_pk = np.empty(n_tp)
    s_j = np.empty(n_sl, dtype=np.int64)
    s_lv = np.empty(n_sl)
    s_g = np.empty(n_sl)
    s_x = np.empty(n_sl)
    s_ts = np.empty(n_sl, dtype=np.int64)
    s_pk = np.empty(n_sl)
    has_trunc = trunc.shape[0] > 0
    nmax = 0  # one scratch buffer for the running max / min, sized for the longest window
    for a in range(n_alerts):
        i = alert_idx[a]
        if offsets[i + 1] - offsets[i] > nmax:
            nmax = offsets[i + 1] - offsets[i]
    pmax = np.empty(nmax)
    pmin = np.empty(nmax)
    for a in range(n_alerts):
        i = alert_idx[a]
        e = offsets[i + 1]
        s = offsets[i]
        while s < e and not traded(tr, s):  # the entry is the first traded bar
            s += 1
        n = e - s
        P = op[s] if n > 0 else np.nan
        if n <= 0 or not (P > 0.0 and np.isfinite(P)):
            c0 = NO_TRADE if offsets[i + 1] <= offsets[i] else NO_FILL
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
        mx = hi[s]
        mn = lo[s]
        for j in range(n):
            b = s + j
            hb = hi[b]
            if hb > mx and traded(tr, b):
                mx = hb
            lb = lo[b]
            if lb < mn and traded(tr, b):
                mn = lb
            pmax[j] = mx
            pmin[j] = mn
        lt = e - 1
        while not traded(tr, lt):  # the entry bar is traded, so this stops
            lt -= 1
        for u in range(n_tp):
            lv = tp_u[u] * P
            j = _first_ge(pmax, n, lv)
            t_j[u] = j
            t_lv[u] = lv
            if j < n:
                t_x[u], t_ts[u], t_pk[u] = _level_outcome(j, s, ts, dur, op, pmax, P, lv, True, interval_s)
                t_g[u] = (1.0 * t_x[u]) / P
        for v in range(n_sl):
            lv = sl_u[v] * P
            j = _first_le(pmin, n, lv)
            s_j[v] = j
            s_lv[v] = lv
            if j < n:
                s_x[v], s_ts[v], s_pk[v] = _level_outcome(j, s, ts, dur, op, pmax, P, lv, False, interval_s)
                s_g[v] = (1.0 * s_x[v]) / P
        h_x = cl[lt]
        h_g = (1.0 * h_x) / P
        h_ts = bar_end(ts, dur, interval_s, lt)
        h_c = END_OF_DATA if (has_trunc and trunc[i] != 0) else HORIZON
        h_pk = pmax[n - 1] if pmax[n - 1] > P else P
        for p in range(n_params):
            u = p_tp[p]
            v = p_sl[p]
            jt = t_j[u] if u >= 0 else n
            js = s_j[v] if v >= 0 else n
            ab = False
            if jt < js:
                pick = 1
            elif js < jt:
                pick = 2
            elif jt == n:
                pick = 0
            else:  # both levels first crossed on the same bar
                bj = s + jt
                o = op[bj]
                if o <= s_lv[v]:
                    pick = 2
                elif o >= t_lv[u]:
                    pick = 1
                else:
                    ab = True
                    pick = 2 if (policy == PESS or (policy == OHLC and cl[bj] >= o)) else 1
            kc = kcs[p]
            if pick == 1:
                g = t_g[u]
                c = TP
            elif pick == 2:
                g = s_g[v]
                c = SL
            else:
                g = h_g
                c = h_c
            r = kc * g - 1.0
            ret[a, p] = r
            code[a, p] = c
            amb[a, p] = ab
            if ab:
                ret_p[a, p] = kc * s_g[v] - 1.0
                ret_o[a, p] = kc * t_g[u] - 1.0
            else:
                ret_p[a, p] = r
                ret_o[a, p] = r
            if full:
                ret_g[a, p] = g - 1.0
                entry_ts[a, p] = ts[s]
                entry_px[a, p] = P
                n_fills[a, p] = 1
                if pick == 1:
                    exit_ts[a, p] = t_ts[u]
                    exit_px[a, p] = t_x[u]
                    peak_mult[a, p] = t_pk[u] / P
                elif pick == 2:
                    exit_ts[a, p] = s_ts[v]
                    exit_px[a, p] = s_x[v]
                    peak_mult[a, p] = s_pk[v] / P
                else:
                    exit_ts[a, p] = h_ts
                    exit_px[a, p] = h_x
                    peak_mult[a, p] = h_pk / P
