"""The general simulator: one Numba bar loop per (alert, parameter set), alerts outer, params inner.

Semantics (the single source of truth, mirrored by ``tests/engine_reference.py``):

No-trade bars. A bar with volume 0 and open = high = low = close is a no-trade bar (the source
repeated the last price; nobody traded). It triggers nothing (no stop, take-profit, ladder rung,
trailing or breakeven update, dip fill) and fills nothing; the loop skips it as time passing. With
``fill_on_zero_volume`` (for sources without volume) every bar counts as traded, the old behaviour.
Windows may mix bar durations (5-minute bars, then hourly ones, with holes between): every rule is
stated per bar and by bar timestamps, never by bar counts of a fixed interval.

Entry. Immediate: P = open of the window's first traded bar f, exits from bar f. Delay N: P = open
of the first traded bar at or after window bar N (N counts bars of any kind: time passes), exits
from that bar (none → ``no_fill``). Dip: limit L = E·(1 − dip), E = open of the first traded bar
f0; fill on the first traded bar j with ts < ts_f0 + window and low ≤ L, at P = min(open_j, L);
exits from bar j+1, except that on the fill bar a stop level (computed from peak = P) reached by its
low stops the trade at the stop under the ``pessimistic`` and ``ohlc`` policies (on any price path
the low comes after a limit fill) but not under ``optimistic``; such a trade is flagged ambiguous.
No fill → ``no_fill``. A non-positive or non-finite P is treated as ``no_fill`` (nothing to buy).

Peak. Starts at P and takes each traded position bar's high after the bar is processed, so bar i
sees the highs strictly before it. A dip fill bar's high counts only when the fill was at its open
(the whole bar is then after the fill); an intrabar fill bar adds nothing (its high may precede
the fill).

Stop on bar i = max of the active levels: ``sl·P``; ``P·(1+X)`` once peak ≥ ``breakeven_at·P``;
``peak·(1−trail)`` once peak ≥ ``trail_activation·P``. Ties name trail, then breakeven, then sl.

Per traded bar, in order: (1) ts ≥ fill ts + time stop → all at the open (``time``; a time stop
that falls due on no-trade bars thus fills at the next traded bar's open, and the deadline is by
bar ts, so on mixed intervals it is the first traded bar whose ts ≥ entry ts + T); (2) open ≤ stop →
all at the open; (3) ladder levels ≤ open fill at the open; (4) stop ≥ low and a remaining level ≤
high: ambiguous, the intrabar policy decides (pessimistic: all at the stop; optimistic: those levels
at their prices, the rest at the stop; ohlc: close ≥ open → stop first, else TPs first); (5) else
stop ≥ low → all at the stop; levels ≤ high fill at their prices. Unsold at the end → the close of
the window's last traded bar: reason ``horizon``, or ``end_of_data`` when the window is truncated
(status TRUNCATED: the token's data ends before the horizon, the outcome after it is unknown). A
time stop still pending at the end exits the same way. Remaining levels are always the top of the
ascending ladder.

Stamps: fills at an open carry the bar's ts; intrabar fills and the final close carry the bar's
end (ts + that bar's duration). ``exit_ts`` is the stamp of the closing fill, ``exit_price`` the
fraction-weighted mean of the fill prices (before slippage). ``peak_mult`` = peak / P where the
peak includes the exit bar's high unless the position was closed at that bar's open.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from alertlab.engine.enums import (
    BREAKEVEN,
    END_OF_DATA,
    EXIT_REASONS,
    HORIZON,
    NO_FILL,
    NO_TRADE,
    OHLC,
    OPT,
    PESS,
    POLICIES,
    SL,
    TIME,
    TP,
    TRAIL,
    policy_code,
)
from alertlab.engine.params import (
    C_BE_AT,
    C_BE_OFF,
    C_DELAY,
    C_DIP,
    C_DIP_WIN_S,
    C_FEE,
    C_LEV,
    C_NLEV,
    C_REST,
    C_SL,
    C_SLIP,
    C_TIME_S,
    C_TRAIL,
    C_TRAIL_ACT,
    C_W,
)

__all__ = [
    "BREAKEVEN",
    "END_OF_DATA",
    "EXIT_REASONS",
    "HORIZON",
    "NO_FILL",
    "NO_TRADE",
    "OHLC",
    "OPT",
    "PESS",
    "POLICIES",
    "SL",
    "TIME",
    "TP",
    "TRAIL",
    "cost_factor",
    "finish_returns",
    "general_kernel",
    "policy_code",
    "sim_one",
]


def traded(tr, i):
    """Bar i is a traded bar (``tr`` None = every bar is; the overload below compiles that away).

    The bar loops never test this per bar: a no-trade bar repeats one price, so the loops test it
    only when that bar's prices would trigger something (a new high, a level reached, a deadline),
    which keeps the common path free of a load and a data-dependent branch per bar."""
    return tr is None or tr[i] != 0


def bar_end(ts, dur, interval_s, i):
    """End of bar i: ts + its duration (``dur`` None = every bar lasts ``interval_s``; the overload
    below compiles that case without a load per bar)."""
    return ts[i] + (interval_s if dur is None else dur[i])


def rec_fill(fills, n, stamp, price, weight, reason, bar):
    """Trace hook: record fill n as (stamp, price, weight, reason, window bar) in ``fills`` (None =
    no trace).

    The hot path passes None and the overload below compiles the hook away; :func:`trace_one`
    passes arrays, so a traced trade runs the very same rules as the simulated one."""
    if fills is not None:
        fills[n, 0] = stamp
        fills[n, 1] = price
        fills[n, 2] = weight
        fills[n, 3] = reason
        fills[n, 4] = bar


def rec_levels(levels, j, stop, nxt):
    """Trace hook: the stop and the next take-profit level in force on window bar j."""
    if levels is not None:
        levels[j, 0] = stop
        levels[j, 1] = nxt


@overload(rec_fill, inline="always")
def _rec_fill_nb(fills, n, stamp, price, weight, reason, bar):
    if isinstance(fills, types.NoneType):
        return lambda fills, n, stamp, price, weight, reason, bar: None

    def impl(fills, n, stamp, price, weight, reason, bar):
        fills[n, 0] = stamp
        fills[n, 1] = price
        fills[n, 2] = weight
        fills[n, 3] = reason
        fills[n, 4] = bar

    return impl


@overload(rec_levels, inline="always")
def _rec_levels_nb(levels, j, stop, nxt):
    if isinstance(levels, types.NoneType):
        return lambda levels, j, stop, nxt: None

    def impl(levels, j, stop, nxt):
        levels[j, 0] = stop
        levels[j, 1] = nxt

    return impl


@overload(traded, inline="always")
def _traded_nb(tr, i):
    if isinstance(tr, types.NoneType):
        return lambda tr, i: True
    return lambda tr, i: tr[i] != 0


@overload(bar_end, inline="always")
def _bar_end_nb(ts, dur, interval_s, i):
    if isinstance(dur, types.NoneType):
        return lambda ts, dur, interval_s, i: ts[i] + interval_s
    return lambda ts, dur, interval_s, i: ts[i] + dur[i]


@njit(cache=True, nogil=True)
def cost_factor(fee: float, slip: float) -> float:
    """(1−f)²·(1−s)/(1+s): net proceeds per unit of gross exit/entry ratio."""
    return (1.0 - fee) * (1.0 - fee) * (1.0 - slip) / (1.0 + slip)


@njit(cache=True, nogil=True)
def finish_returns(acc: float, P: float, kc: float) -> tuple[float, float]:
    """Net and gross return of a trade whose fills sum to ``acc`` = Σ w·X, bought at reference P."""
    gross = acc / P
    return kc * gross - 1.0, gross - 1.0


@njit(cache=True, nogil=True)
def _stop_level(peak, slP, has_sl, beT, beL, has_be, trT, keep, has_tr):
    stop = -np.inf
    why = -1
    if has_sl:
        stop = slP
        why = SL
    if has_be and peak >= beT and beL >= stop:
        stop = beL
        why = BREAKEVEN
    if has_tr and peak >= trT:
        lvl = peak * keep
        if lvl >= stop:
            stop = lvl
            why = TRAIL
    return stop, why


@njit(cache=True, nogil=True)
def _rest_of(prm, k, nlev):
    rem = prm[C_REST]
    for j in range(k, nlev):
        rem += prm[C_W + j]
    return rem


@njit(cache=True, nogil=True)
def sim_one(s, e, ts, op, hi, lo, cl, tr, dur, prm, policy, interval_s, eod, fills, levels):  # noqa: C901 (Numba bar simulator: one pass per window, a branch per exit rule (the docstring is the spec))
    """Simulate one trade on bars ``[s, e)`` (e > s); ``tr`` / ``dur`` as in :func:`general_kernel`,
    ``eod``: the window is truncated (a final close is ``end_of_data``); ``fills`` / ``levels``:
    trace outputs or None (see :func:`rec_fill`, :func:`rec_levels`). Returns
    ``(code, P, entry_ts, exit_ts, acc, wsum, n_fills, peak, ambiguous)`` with acc = Σ w·X."""
    nlev = int(prm[C_NLEV])
    rest = prm[C_REST]
    dip = prm[C_DIP]
    is_dip = not np.isnan(dip)
    at_open = True
    if is_dip:
        f0 = s
        while f0 < e and not traded(tr, f0):
            f0 += 1
        if f0 >= e:
            return NO_FILL, np.nan, 0, 0, 0.0, 0.0, 0, np.nan, False
        limit = op[f0] * (1.0 - dip)
        wend = np.inf if np.isnan(prm[C_DIP_WIN_S]) else ts[f0] + prm[C_DIP_WIN_S]
        f = -1
        for j in range(f0, e):
            if ts[j] >= wend:
                break
            if lo[j] <= limit and traded(tr, j):
                f = j
                break
        if f < 0:
            return NO_FILL, np.nan, 0, 0, 0.0, 0.0, 0, np.nan, False
        at_open = op[f] <= limit
        P = op[f] if at_open else limit
        start = f + 1
    else:
        d = 0 if np.isnan(prm[C_DELAY]) else int(prm[C_DELAY])
        f = s + d
        while f < e and not traded(tr, f):
            f += 1
        if f >= e:
            return NO_FILL, np.nan, 0, 0, 0.0, 0.0, 0, np.nan, False
        P = op[f]
        start = f
    if not (P > 0.0 and np.isfinite(P)):
        return NO_FILL, np.nan, 0, 0, 0.0, 0.0, 0, np.nan, False

    sl = prm[C_SL]
    has_sl = not np.isnan(sl)
    slP = sl * P if has_sl else 0.0
    has_be = not np.isnan(prm[C_BE_AT])
    beT = prm[C_BE_AT] * P if has_be else 0.0
    beL = P * (1.0 + prm[C_BE_OFF]) if has_be else 0.0
    has_tr = not np.isnan(prm[C_TRAIL])
    trT = prm[C_TRAIL_ACT] * P if has_tr else 0.0
    keep = 1.0 - prm[C_TRAIL] if has_tr else 0.0
    fts = ts[f]
    deadline = np.inf if np.isnan(prm[C_TIME_S]) else fts + prm[C_TIME_S]

    peak = P
    stop, why = _stop_level(peak, slP, has_sl, beT, beL, has_be, trT, keep, has_tr)
    amb = False
    acc = 0.0
    wsum = 0.0
    nf = 0
    k = 0
    nxt = prm[C_LEV] * P if nlev > 0 else np.inf

    if is_dip:
        rec_levels(levels, f - s, stop, nxt)
        if lo[f] <= stop:  # the fill bar's low reaches the stop: policy dependent
            amb = True
            if policy != OPT:
                rem = _rest_of(prm, 0, nlev)
                if at_open and hi[f] > peak:
                    peak = hi[f]
                rec_fill(fills, 0, bar_end(ts, dur, interval_s, f), stop, rem, why, f - s)
                return why, P, fts, bar_end(ts, dur, interval_s, f), rem * stop, rem, 1, peak, amb
        if at_open and hi[f] > peak:
            peak = hi[f]
            stop, why = _stop_level(peak, slP, has_sl, beT, beL, has_be, trT, keep, has_tr)

    # every bar, traded or not: a no-trade bar is tested for being one only where its price would
    # trigger something (see traded); otherwise it passes like any quiet bar
    for i in range(start, e):
        o = op[i]
        rec_levels(levels, i - s, stop, nxt)
        if ts[i] >= deadline:  # (1) time stop
            if not traded(tr, i):  # a no-trade bar fills nothing: the next traded bar's open
                continue
            rem = _rest_of(prm, k, nlev)
            rec_fill(fills, nf, ts[i], o, rem, TIME, i - s)
            return TIME, P, fts, ts[i], acc + rem * o, wsum + rem, nf + 1, peak, amb
        if o <= stop:  # (2) gap through the stop
            if not traded(tr, i):
                continue
            rem = _rest_of(prm, k, nlev)
            rec_fill(fills, nf, ts[i], o, rem, why, i - s)
            return why, P, fts, ts[i], acc + rem * o, wsum + rem, nf + 1, peak, amb
        if o >= nxt:  # (3) ladder levels at or below the open fill at the open
            if not traded(tr, i):
                continue
            while k < nlev and o >= prm[C_LEV + k] * P:
                rec_fill(fills, nf, ts[i], o, prm[C_W + k], TP, i - s)
                acc += prm[C_W + k] * o
                wsum += prm[C_W + k]
                nf += 1
                k += 1
            nxt = prm[C_LEV + k] * P if k < nlev else np.inf
            if k == nlev and rest == 0.0:
                return TP, P, fts, ts[i], acc, wsum, nf, peak, amb
        h = hi[i]
        if lo[i] <= stop:
            if not traded(tr, i):
                continue
            if h >= nxt:  # (4) stop and take profit both inside the bar
                amb = True
                if policy == OPT or (policy == OHLC and cl[i] < o):
                    while k < nlev and h >= prm[C_LEV + k] * P:
                        lv = prm[C_LEV + k] * P
                        rec_fill(fills, nf, bar_end(ts, dur, interval_s, i), lv, prm[C_W + k], TP, i - s)
                        acc += prm[C_W + k] * lv
                        wsum += prm[C_W + k]
                        nf += 1
                        k += 1
                    if h > peak:
                        peak = h
                    if k == nlev and rest == 0.0:
                        return TP, P, fts, bar_end(ts, dur, interval_s, i), acc, wsum, nf, peak, amb
            rem = _rest_of(prm, k, nlev)  # (4 stop part / 5) the rest at the stop
            if h > peak:
                peak = h
            rec_fill(fills, nf, bar_end(ts, dur, interval_s, i), stop, rem, why, i - s)
            return (
                why,
                P,
                fts,
                bar_end(ts, dur, interval_s, i),
                acc + rem * stop,
                wsum + rem,
                nf + 1,
                peak,
                amb,
            )
        if h >= nxt:  # (5) take-profit levels inside the bar
            if not traded(tr, i):
                continue
            while k < nlev and h >= prm[C_LEV + k] * P:
                lv = prm[C_LEV + k] * P
                rec_fill(fills, nf, bar_end(ts, dur, interval_s, i), lv, prm[C_W + k], TP, i - s)
                acc += prm[C_W + k] * lv
                wsum += prm[C_W + k]
                nf += 1
                k += 1
            nxt = prm[C_LEV + k] * P if k < nlev else np.inf
            if k == nlev and rest == 0.0:
                if h > peak:
                    peak = h
                return TP, P, fts, bar_end(ts, dur, interval_s, i), acc, wsum, nf, peak, amb
        if h > peak and traded(tr, i):
            peak = h
            stop, why = _stop_level(peak, slP, has_sl, beT, beL, has_be, trT, keep, has_tr)
    # unsold at the end: the rest at the close of the last traded bar (the fill bar is traded)
    lt = e - 1
    while not traded(tr, lt):  # the fill bar is traded, so this stops
        lt -= 1
    rem = _rest_of(prm, k, nlev)
    c = END_OF_DATA if eod else HORIZON
    rec_fill(fills, nf, bar_end(ts, dur, interval_s, lt), cl[lt], rem, c, lt - s)
    return c, P, fts, bar_end(ts, dur, interval_s, lt), acc + rem * cl[lt], wsum + rem, nf + 1, peak, amb


@njit(cache=True, nogil=True)
def general_kernel(
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
    params,
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
    """Fill the ``(n_alerts, n_params)`` outputs for every (alert, param) pair.

    ``tr`` (uint8 per bar, 1 = traded; None = every bar traded), ``dur`` (int64 bar durations; None =
    all ``interval_s``), ``trunc`` (uint8 per window, 1 = truncated: a final close is
    ``end_of_data``; empty = none). ``ret`` (chosen policy), ``ret_p`` / ``ret_o`` (pessimistic /
    optimistic) are NaN when there is no trade (no window, or no fill). ``ambiguous`` trades are
    re-run under the other policies; all others are policy independent. The ``full`` outputs are
    only written when ``full``.
    """
    n_alerts = alert_idx.shape[0]
    n_params = params.shape[0]
    has_trunc = trunc.shape[0] > 0
    for a in range(n_alerts):
        i = alert_idx[a]
        s = offsets[i]
        e = offsets[i + 1]
        eod = has_trunc and trunc[i] != 0
        for p in range(n_params):
            if e <= s:
                c = NO_TRADE
                r = np.nan
                rp = np.nan
                ro = np.nan
                ab = False
                if full:
                    ret_g[a, p] = np.nan
                    entry_ts[a, p] = 0
                    entry_px[a, p] = np.nan
                    exit_ts[a, p] = 0
                    exit_px[a, p] = np.nan
                    n_fills[a, p] = 0
                    peak_mult[a, p] = np.nan
            else:
                prm = params[p]
                kc = cost_factor(prm[C_FEE], prm[C_SLIP])
                c, P, ets, xts, acc, wsum, nf, pk, ab = sim_one(
                    s, e, ts, op, hi, lo, cl, tr, dur, prm, policy, interval_s, eod, None, None
                )
                if c == NO_FILL:
                    r = np.nan
                    rg = np.nan
                    rp = np.nan
                    ro = np.nan
                else:
                    r, rg = finish_returns(acc, P, kc)
                    rp = r
                    ro = r
                    if ab:
                        if policy != PESS:
                            c2, P2, _, _, acc2, _, _, _, _ = sim_one(
                                s, e, ts, op, hi, lo, cl, tr, dur, prm, PESS, interval_s, eod, None, None
                            )
                            rp, _ = finish_returns(acc2, P2, kc)
                        if policy != OPT:
                            c2, P2, _, _, acc2, _, _, _, _ = sim_one(
                                s, e, ts, op, hi, lo, cl, tr, dur, prm, OPT, interval_s, eod, None, None
                            )
                            ro, _ = finish_returns(acc2, P2, kc)
                if full:
                    ret_g[a, p] = rg
                    entry_ts[a, p] = ets
                    entry_px[a, p] = P
                    exit_ts[a, p] = xts
                    exit_px[a, p] = acc / wsum if wsum > 0 else np.nan
                    n_fills[a, p] = nf
                    peak_mult[a, p] = pk / P
            ret[a, p] = r
            ret_p[a, p] = rp
            ret_o[a, p] = ro
            code[a, p] = c
            amb[a, p] = ab
