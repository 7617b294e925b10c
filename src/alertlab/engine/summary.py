"""Trade statistics shared by backtests, grids and the optimizer (the formulas live here only).

Inputs are per-alert net returns with NaN for "no trade" (no window or no fill). Definitions, over
the n trades (non-NaN returns) r_1..r_n:

* ``win_rate`` = share of trades with r > 0; ``avg_ret`` = mean r; ``median_ret``; ``sum_ret``.
* ``avg_win`` = mean of r > 0; ``avg_loss`` = mean of the non-winning trades (r ≤ 0).
* ``profit_factor`` = Σ(r > 0) / |Σ(r < 0)|; inf when there are wins but no losses, NaN with neither.
* ``expectancy`` = win_rate·avg_win + (1 − win_rate)·avg_loss (equals avg_ret by construction;
  a missing side contributes 0).
* ``sharpe`` = mean / std (sample std, ddof 1), per trade, not annualised; ``t_stat`` = sharpe·√n
  (t-statistic of the mean). NaN when n < 2 or std = 0.
* ``worst_ret`` / ``best_ret``: min / max r.
* ``max_drawdown``: the equity curve with a fixed stake of 1 per alert, in the given alert order
  (callers pass alerts in alert-time order), equity_t = Σ_{≤t} r (untraded alerts add 0), starting
  at 0; max drawdown = max_t (max_{u≤t} equity_u − equity_t), in stakes (2.5 = two and a half stakes).
* with exit reasons: ``no_fill`` (alerts whose order never filled), ``no_data`` (alerts without a
  window) and ``exit_<reason>`` counts; with ambiguity flags: ``ambiguous_share`` = ambiguous trades
  / n; with pessimistic / optimistic returns: their means over the trades.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alertlab.engine.enums import EXIT_REASONS

# raw per-row statistics produced by the kernel (column order)
_RAW = (
    "n_trades",
    "n_win",
    "sum",
    "sum_win",
    "sum_neg",
    "sum_nonpos",
    "m2",
    "min",
    "max",
    "median",
    "max_dd",
    "n_amb",
    "sum_p",
    "n_p",
    "sum_o",
    "n_o",
    "no_data",
    *(f"c{k}" for k in range(len(EXIT_REASONS))),
)
_R = {k: i for i, k in enumerate(_RAW)}
_NR = len(EXIT_REASONS)  # exit codes 0.._NR-1 (no_fill last)
_C0 = _R["c0"]  # column of the first exit-code count

SUMMARY_KEYS: tuple[str, ...] = (
    "n_alerts",
    "n_trades",
    "no_fill",
    "no_data",
    "win_rate",
    "avg_ret",
    "median_ret",
    "sum_ret",
    "std_ret",
    "avg_win",
    "avg_loss",
    "profit_factor",
    "expectancy",
    "sharpe",
    "t_stat",
    "worst_ret",
    "best_ret",
    "max_drawdown",
    *(f"exit_{r}" for r in EXIT_REASONS[:-1]),
    "ambiguous_share",
    "avg_ret_pessimistic",
    "avg_ret_optimistic",
)
_INT_KEYS = {"n_alerts", "n_trades", "no_fill", "no_data", *(f"exit_{r}" for r in EXIT_REASONS[:-1])}


@njit(cache=True, nogil=True)
def _stats_kernel(ret, code, amb, ret_p, ret_o, out):  # noqa: C901 (Numba kernel: every summary statistic in one pass)
    """Raw statistics per row of ``(n_params, n_alerts)`` matrices into ``out[n_params, len(_RAW)]``.

    Alerts are in alert-time order along a row. ``code`` / ``amb`` / ``ret_p`` / ``ret_o`` may have 0
    rows (not given)."""
    n_params, n_alerts = ret.shape
    has_code = code.shape[0] > 0
    has_amb = amb.shape[0] > 0
    has_p = ret_p.shape[0] > 0
    has_o = ret_o.shape[0] > 0
    buf = np.empty(n_alerts)
    counts = np.zeros(_NR, dtype=np.int64)
    for p in range(n_params):
        nt = 0
        nw = 0
        sm = 0.0
        sw = 0.0
        sneg = 0.0
        snp = 0.0
        mn = np.inf
        mx = -np.inf
        eq = 0.0
        pk = 0.0
        dd = 0.0
        na = 0
        sp = 0.0
        npp = 0
        so = 0.0
        no = 0
        nd = 0
        counts[:] = 0
        for a in range(n_alerts):
            r = ret[p, a]
            if has_code:
                c = code[p, a]
                if c < 0:
                    nd += 1
                elif c < _NR:
                    counts[c] += 1
            if np.isnan(r):
                continue
            buf[nt] = r
            nt += 1
            sm += r
            if r > 0:
                nw += 1
                sw += r
            else:
                snp += r
                if r < 0:
                    sneg += r
            if r < mn:
                mn = r
            if r > mx:
                mx = r
            eq += r
            if eq > pk:
                pk = eq
            if pk - eq > dd:
                dd = pk - eq
            if has_amb and amb[p, a]:
                na += 1
            if has_p and not np.isnan(ret_p[p, a]):
                sp += ret_p[p, a]
                npp += 1
            if has_o and not np.isnan(ret_o[p, a]):
                so += ret_o[p, a]
                no += 1
        m2 = 0.0
        med = np.nan
        if nt > 0:
            mean = sm / nt
            for j in range(nt):
                m2 += (buf[j] - mean) * (buf[j] - mean)
            med = np.median(buf[:nt])
        row = out[p]
        row[0] = nt
        row[1] = nw
        row[2] = sm
        row[3] = sw
        row[4] = sneg
        row[5] = snp
        row[6] = m2
        row[7] = mn if nt > 0 else np.nan
        row[8] = mx if nt > 0 else np.nan
        row[9] = med
        row[10] = dd
        row[11] = na
        row[12] = sp
        row[13] = npp
        row[14] = so
        row[15] = no
        row[16] = nd
        for k in range(_NR):
            row[_C0 + k] = counts[k]


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _derive(raw: np.ndarray, n_alerts: int, has_code: bool, has_amb: bool, has_p: bool, has_o: bool) -> dict:
    """Summary metrics (arrays over rows) from raw kernel statistics."""
    g = {k: raw[:, i] for k, i in _R.items()}
    n = g["n_trades"]
    n_win = g["n_win"]
    n_nonwin = n - n_win
    n_neg_sum = g["sum_neg"]
    win_rate = _div(n_win, n)
    avg = _div(g["sum"], n)
    avg_win = _div(g["sum_win"], n_win)
    avg_loss = _div(g["sum_nonpos"], n_nonwin)
    with np.errstate(divide="ignore", invalid="ignore"):
        pf = np.where(
            n_neg_sum < 0,
            g["sum_win"] / np.abs(np.where(n_neg_sum < 0, n_neg_sum, -1.0)),
            np.where(g["sum_win"] > 0, np.inf, np.nan),
        )
        std = np.where(n >= 2, np.sqrt(g["m2"] / np.maximum(n - 1, 1)), np.nan)
        sharpe = np.where((n >= 2) & (std > 0), avg / np.where(std > 0, std, 1.0), np.nan)
    expectancy = np.where(
        n > 0, np.nan_to_num(win_rate * avg_win) + np.nan_to_num((1 - win_rate) * avg_loss), np.nan
    )
    out = {
        "n_alerts": np.full(raw.shape[0], n_alerts, dtype=np.int64),
        "n_trades": n.astype(np.int64),
        "win_rate": win_rate,
        "avg_ret": avg,
        "median_ret": g["median"],
        "sum_ret": g["sum"],
        "std_ret": std,
        "avg_win": avg_win,
        "avg_loss": avg_loss,
        "profit_factor": pf,
        "expectancy": expectancy,
        "sharpe": sharpe,
        "t_stat": sharpe * np.sqrt(n),
        "worst_ret": g["min"],
        "best_ret": g["max"],
        "max_drawdown": g["max_dd"],
    }
    if has_code:
        out["no_fill"] = g[f"c{len(EXIT_REASONS) - 1}"].astype(np.int64)
        out["no_data"] = g["no_data"].astype(np.int64)
        for k, r in enumerate(EXIT_REASONS[:-1]):
            out[f"exit_{r}"] = g[f"c{k}"].astype(np.int64)
    if has_amb:
        out["ambiguous_share"] = _div(g["n_amb"], n)
    if has_p:
        out["avg_ret_pessimistic"] = _div(g["sum_p"], g["n_p"])
    if has_o:
        out["avg_ret_optimistic"] = _div(g["sum_o"], g["n_o"])
    return {k: out[k] for k in SUMMARY_KEYS if k in out}


def summarize_rows(
    ret: np.ndarray,
    exit_reason: np.ndarray | None = None,
    ambiguous: np.ndarray | None = None,
    ret_pessimistic: np.ndarray | None = None,
    ret_optimistic: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Summaries of each row of ``(n_params, n_alerts)`` matrices (alerts in alert-time order).

    Returns a dict of arrays of length n_params (see module docs)."""
    ret = np.ascontiguousarray(ret, dtype=np.float64)
    if ret.ndim != 2:
        raise ValueError("summarize_rows expects (n_params, n_alerts) arrays")
    shape0 = (0, ret.shape[1])

    def arr(x, dtype):
        return np.ascontiguousarray(x, dtype=dtype) if x is not None else np.zeros(shape0, dtype)

    code = arr(exit_reason, np.int8)
    amb = arr(ambiguous, np.bool_)
    rp = arr(ret_pessimistic, np.float64)
    ro = arr(ret_optimistic, np.float64)
    for name, x in (
        ("exit_reason", code),
        ("ambiguous", amb),
        ("ret_pessimistic", rp),
        ("ret_optimistic", ro),
    ):
        if x.shape[0] and x.shape != ret.shape:
            raise ValueError(f"{name} shape {x.shape} != ret shape {ret.shape}")
    raw = np.empty((ret.shape[0], len(_RAW)))
    _stats_kernel(ret, code, amb, rp, ro, raw)
    given = (
        exit_reason is not None,
        ambiguous is not None,
        ret_pessimistic is not None,
        ret_optimistic is not None,
    )
    return _derive(raw, ret.shape[1], *given)


def summarize_columns(
    ret: np.ndarray,
    exit_reason: np.ndarray | None = None,
    ambiguous: np.ndarray | None = None,
    ret_pessimistic: np.ndarray | None = None,
    ret_optimistic: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """:func:`summarize_rows` for the engine's alert-major ``(n_alerts, n_params)`` layout."""
    t = [
        None if x is None else np.asarray(x).T
        for x in (exit_reason, ambiguous, ret_pessimistic, ret_optimistic)
    ]
    return summarize_rows(np.asarray(ret).T, *t)


def summarize(
    ret: np.ndarray,
    exit_reason: np.ndarray | None = None,
    ambiguous: np.ndarray | None = None,
    ret_pessimistic: np.ndarray | None = None,
    ret_optimistic: np.ndarray | None = None,
    alert_ts: np.ndarray | None = None,
) -> dict:
    """Summary of one strategy (1-D arrays over alerts) or of several (2-D ``(n_params, n_alerts)``).

    ``ret``: net returns, NaN = no trade. Optional: ``exit_reason`` codes (−1 no window, 6 no_fill),
    ``ambiguous`` flags, pessimistic / optimistic returns, and ``alert_ts`` to order the equity curve
    (otherwise the given order is taken as alert-time order). 1-D input gives a dict of Python
    scalars, 2-D a dict of arrays. Formulas: see the module docstring.
    """
    ret = np.asarray(ret, dtype=np.float64)
    one = ret.ndim == 1
    if ret.ndim not in (1, 2):
        raise ValueError("ret must be 1-D (one strategy) or 2-D (n_params, n_alerts)")
    extra = [
        None if x is None else np.asarray(x)
        for x in (exit_reason, ambiguous, ret_pessimistic, ret_optimistic)
    ]
    if alert_ts is not None:
        order = np.argsort(np.asarray(alert_ts), kind="stable")
        ret = ret[..., order]
        extra = [None if x is None else x[..., order] for x in extra]
    rows = [None if x is None else (x[None, :] if one else x) for x in extra]
    out = summarize_rows(ret[None, :] if one else ret, *rows)
    if not one:
        return out
    return {k: (int(v[0]) if k in _INT_KEYS else float(v[0])) for k, v in out.items()}


def t_quantile_975(df: np.ndarray | float) -> np.ndarray:
    """Student-t 97.5% quantile for ``df`` degrees of freedom (elementwise; NaN for df < 1).

    Tabulated for df 1–4; Cornish–Fisher expansion around the normal quantile (Abramowitz & Stegun
    26.7.5) from df 5 on, within 3e-4 of the exact value (checked against scipy in the tests).
    """
    d = np.asarray(df, dtype=np.float64)
    z = 1.959963984540054
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
        g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
        t = z + g1 / d + g2 / d**2 + g3 / d**3 + g4 / d**4
    for k, exact in (
        (1, 12.706204736174707),
        (2, 4.302652729749464),
        (3, 3.182446305284263),
        (4, 2.7764451051977987),
    ):
        t = np.where(d == k, exact, t)
    return np.where(d >= 1, t, np.nan)


def mean_lower_bound(mean: np.ndarray | float, std: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
    """Lower bound of the two-sided 95% t confidence interval of a mean: ``mean − t₀.₉₇₅(n−1)·std/√n``.

    A sample-aware figure for ranking: three lucky trades have a wide interval and a low bound.
    NaN when n < 2 (or std is NaN); equals the mean when std is 0.
    """
    m, s, k = (np.asarray(x, dtype=np.float64) for x in (mean, std, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k >= 2, m - t_quantile_975(k - 1) * s / np.sqrt(k), np.nan)
