"""Statistics that keep the optimiser honest: DSR, PSR, PBO (CSCV), neighbourhood stability.

* :func:`probabilistic_sharpe_ratio` / :func:`deflated_sharpe_ratio` / :func:`expected_max_sharpe`:
  Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting and Non-Normality", JPM 40(5). Sharpe ratios are **per period** (not
  annualised) and kurtosis is the plain (non-excess) kurtosis, 3 for a normal.
* :func:`pbo_cscv`: Probability of Backtest Overfitting by Combinatorially Symmetric
  Cross-Validation, Bailey, Borwein, López de Prado & Zhu (2015/2017), "The Probability of
  Backtest Overfitting", J. Computational Finance.
* :func:`daily_returns`: per-day equal-weight returns of every trial, the input of both.
* :func:`neighbourhood_stability`: is a trial's test score shared by its parameter neighbours,
  or a lonely spike?

Conventions shared by everything here: the Sharpe ratio of a return series is
``mean / std`` with the sample standard deviation (``ddof=1``); a series with zero spread (or
fewer than two observations) has Sharpe 0 ("undefined Sharpe counts as no edge"), never a
division by zero. NaN returns mean "no trade that period" and count as a 0 return.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from statistics import NormalDist

import numba
import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_MS_PER_DAY = 86_400_000
_CSCV_CHUNK_ELEMS = 2_000_000  # combinations × trials processed per chunk (bounds memory)


# --------------------------------------------------------------------------------------------
# Sharpe, PSR, DSR
# --------------------------------------------------------------------------------------------


def sharpe_ratio(returns: np.ndarray, axis: int = 0) -> np.ndarray | float:
    """Per-period Sharpe ratio ``mean / std(ddof=1)`` along ``axis``; 0 where std is 0 or n < 2.

    NaN returns are treated as 0 (no trade that period).
    """
    r = np.asarray(returns, dtype=np.float64)
    r = np.where(np.isnan(r), 0.0, r)
    if r.shape[axis] < 2:
        sr = np.zeros_like(r.sum(axis=axis))
    else:
        mean = r.mean(axis=axis)
        std = r.std(axis=axis, ddof=1)
        scale = np.sqrt(np.mean(r * r, axis=axis))
        ok = std > 1e-12 * scale
        sr = np.where(ok, mean / np.where(ok, std, 1.0), 0.0)
    return float(sr) if np.ndim(sr) == 0 else sr


def expected_max_sharpe(sr_var: float, n_trials: int) -> float:
    """Expected maximum of ``n_trials`` null Sharpe estimates with variance ``sr_var`` (mean 0).

    ``SR0 = sqrt(V) * ((1-γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))`` (γ = Euler–Mascheroni), the
    extreme-value approximation of Bailey & López de Prado (2014). With a single trial there is
    no selection and the benchmark is 0.
    """
    if not (sr_var >= 0.0) or not math.isfinite(sr_var):
        raise ValueError(f"sr_var must be a finite variance >= 0, got {sr_var!r}")
    n = int(n_trials)
    if n < 1 or n != n_trials:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if n == 1 or sr_var == 0.0:
        return 0.0
    z = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n) + EULER_GAMMA * _NORMAL.inv_cdf(
        1.0 - 1.0 / (n * math.e)
    )
    return math.sqrt(sr_var) * z


def probabilistic_sharpe_ratio(sr: float, n_obs: int, sr_benchmark: float, skew: float, kurt: float) -> float:
    """Probability that the true Sharpe exceeds ``sr_benchmark`` given the estimate ``sr``.

    ``PSR = Φ((SR - SR*) sqrt(T-1) / sqrt(1 - skew·SR + (kurt-1)/4 · SR²))`` with per-period
    ``sr``, ``n_obs = T`` observations, sample ``skew`` and non-excess ``kurt`` of the returns.
    """
    if n_obs < 2:
        raise ValueError(f"n_obs must be >= 2, got {n_obs}")
    for name, v in (("sr", sr), ("sr_benchmark", sr_benchmark), ("skew", skew), ("kurt", kurt)):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if denom <= 0.0:
        raise ValueError(
            f"inconsistent moments: 1 - skew*sr + (kurt-1)/4*sr^2 = {denom:.4g} <= 0 "
            f"(sr={sr}, skew={skew}, kurt={kurt}; real data always has kurt >= 1 + skew^2)"
        )
    return _NORMAL.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom))


def deflated_sharpe_ratio(
    sr: float, n_obs: int, sr_trials_var: float, n_trials: int, skew: float, kurt: float
) -> float:
    """DSR: the PSR of ``sr`` against the expected maximum Sharpe of ``n_trials`` null trials.

    ``sr_trials_var`` is the variance of the (per-period) Sharpe estimates across the trials.
    """
    return probabilistic_sharpe_ratio(sr, n_obs, expected_max_sharpe(sr_trials_var, n_trials), skew, kurt)


def _moments(r: np.ndarray) -> tuple[float, float]:
    """Sample skewness and non-excess kurtosis (population moment ratios); (0, 3) if constant."""
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    if m2 <= 1e-24 * max(float(np.mean(r * r)), np.finfo(np.float64).tiny):
        return 0.0, 3.0
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2)


def dsr_from_returns(daily_returns_of_chosen: np.ndarray, trials_sharpes: np.ndarray, n_trials: int) -> dict:
    """DSR of the chosen trial from its per-period returns and the Sharpes of all trials tried.

    ``trials_sharpes`` are the per-period Sharpe ratios (see :func:`sharpe_ratio`) of the trials
    the choice was made among; their sample variance (``ddof=1``, non-finite values dropped) is
    ``V[SR_n]`` — 0 when fewer than two are finite, which makes the benchmark 0 (plain PSR).
    ``n_trials`` is the number of independent trials to deflate for (can be an effective count).

    Returns ``sr`` (per period), ``skew``, ``kurt`` (non-excess), ``n_obs``, ``sr_trials_var``,
    ``n_trials``, ``sr0`` (expected max null Sharpe), ``dsr`` and ``psr`` (PSR against 0).
    """
    r = np.asarray(daily_returns_of_chosen, dtype=np.float64).ravel()
    if r.size < 2:
        raise ValueError(f"need at least 2 return observations, got {r.size}")
    if np.isinf(r).any():
        raise ValueError("daily returns must be finite (NaN = no trade is allowed, inf is not)")
    r = np.where(np.isnan(r), 0.0, r)
    s = np.asarray(trials_sharpes, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    sr_var = float(np.var(s, ddof=1)) if s.size >= 2 else 0.0
    sr = float(sharpe_ratio(r))
    skew, kurt = _moments(r)
    sr0 = expected_max_sharpe(sr_var, n_trials)
    return {
        "sr": sr,
        "skew": skew,
        "kurt": kurt,
        "n_obs": int(r.size),
        "sr_trials_var": sr_var,
        "n_trials": int(n_trials),
        "sr0": sr0,
        "dsr": probabilistic_sharpe_ratio(sr, r.size, sr0, skew, kurt),
        "psr": probabilistic_sharpe_ratio(sr, r.size, 0.0, skew, kurt),
    }


# --------------------------------------------------------------------------------------------
# Daily returns
# --------------------------------------------------------------------------------------------


def alert_day_index(alert_ts_ms: np.ndarray) -> tuple[np.ndarray, int]:
    """UTC calendar day of each alert, counted from the first alert's day: ``(day_idx, n_days)``."""
    ts = np.asarray(alert_ts_ms, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    day = ts // _MS_PER_DAY
    day = day - day.min()
    return day, int(day.max()) + 1


@numba.njit(cache=True, nogil=True)
def _daily_returns_kernel(alert_day, trade_ret, n_days):
    n_trials, n_alerts = trade_ret.shape
    out = np.zeros((n_days, n_trials))
    cnt = np.zeros(n_days, dtype=np.int64)
    for t in range(n_trials):
        cnt[:] = 0
        for a in range(n_alerts):
            r = trade_ret[t, a]
            if r == r:  # not NaN
                d = alert_day[a]
                out[d, t] += r
                cnt[d] += 1
        for d in range(n_days):
            if cnt[d] > 0:
                out[d, t] /= cnt[d]
    return out


def daily_returns(alert_day: np.ndarray, trade_ret: np.ndarray, n_days: int | None = None) -> np.ndarray:
    """Per-day equal-weight mean return of each trial's trades: a ``(n_days, n_trials)`` matrix.

    ``alert_day`` (``n_alerts``, int >= 0) is the day a trade is entered (e.g. from
    :func:`alert_day_index`); ``trade_ret`` is ``(n_trials, n_alerts)`` with NaN where the trial
    made no trade. A day's return is the mean of the trades entered that day (an equal-weight
    book of that day's calls); days without trades return 0. ``n_days`` defaults to
    ``max(alert_day) + 1``.
    """
    day = np.asarray(alert_day)
    if day.ndim != 1 or (day.size and not np.issubdtype(day.dtype, np.integer)):
        raise ValueError("alert_day must be a 1-d integer array")
    day = day.astype(np.int64)
    tr = np.asarray(trade_ret, dtype=np.float64)
    if tr.ndim == 1:
        tr = tr[None, :]
    if tr.ndim != 2 or tr.shape[1] != day.size:
        raise ValueError(f"trade_ret must be (n_trials, {day.size}), got shape {np.shape(trade_ret)}")
    if np.isinf(tr).any():
        raise ValueError("trade_ret has infinite values")
    if day.size and day.min() < 0:
        raise ValueError("alert_day must be >= 0")
    need = int(day.max()) + 1 if day.size else 0
    if n_days is None:
        n_days = need
    if n_days < need:
        raise ValueError(f"n_days={n_days} but alert_day reaches {need - 1}")
    return _daily_returns_kernel(day, np.ascontiguousarray(tr), int(n_days))


# --------------------------------------------------------------------------------------------
# PBO by CSCV
# --------------------------------------------------------------------------------------------


def _half_set_pairs(n_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The C(S, S/2) in-sample block sets, lexicographic, paired with their complements.

    Returns ``w`` (0/1 float matrix, one row per set that contains block 0 — half of all sets),
    ``ia`` (index of that set among all combinations) and ``ib`` (index of its complement).
    """
    combos = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    index = {c: i for i, c in enumerate(combos)}
    full = frozenset(range(n_blocks))
    firsts = [c for c in combos if c[0] == 0]
    w = np.zeros((len(firsts), n_blocks))
    ia = np.empty(len(firsts), dtype=np.int64)
    ib = np.empty(len(firsts), dtype=np.int64)
    for r, c in enumerate(firsts):
        w[r, list(c)] = 1.0
        ia[r] = index[c]
        ib[r] = index[tuple(sorted(full - set(c)))]
    return w, ia, ib


@numba.njit(cache=True, nogil=True, inline="always")
def _block_metric(s, q, n, mu, use_sharpe):
    """Metric of one trial on a set of ``n`` rows from sums ``s``/``q`` of mean-centred returns.

    Columns are centred by their full-sample mean ``mu`` (the variance is shift-invariant, so this
    only protects ``q - n·mean²`` from cancellation); the raw mean is ``s/n + mu``. Sharpe uses
    ddof=1 and is 0 when the spread is (numerically) zero or ``n < 2``.
    """
    mean_c = s / n
    if not use_sharpe:
        return mean_c + mu
    if n < 2.0:
        return 0.0
    ss = q - n * mean_c * mean_c
    if ss <= 0.0 or ss <= 1e-13 * q:
        return 0.0
    return (mean_c + mu) / np.sqrt(ss / (n - 1.0))


TIE_RTOL = 1e-9
"""Metrics closer than this (relative) are ties: the order of mathematically equal scores must not
depend on float rounding (two trials with Sharpe 1/√3 computed two ways differ in the last bit)."""


@numba.njit(cache=True, nogil=True, inline="always")
def _tie_tol(a, b):
    return TIE_RTOL * max(abs(a), abs(b))


@numba.njit(cache=True, nogil=True)
def _select_rank(is_m, oos_m, k, best, is_best, oos_best, logits):
    """Combination ``k``: IS-best trial (first on ties) and its OOS mid-rank logit (as ``_oos_logit``)."""
    n = is_m.shape[0]
    bi = 0
    for j in range(1, n):
        if is_m[j] > is_m[bi] + _tie_tol(is_m[j], is_m[bi]):
            bi = j
    sel = oos_m[bi]
    less = 0
    eq = 0
    for j in range(n):
        if abs(oos_m[j] - sel) <= _tie_tol(oos_m[j], sel):
            eq += 1
        elif oos_m[j] < sel:
            less += 1
    w = (less + (eq + 1) / 2.0) / (n + 1.0)
    best[k] = bi
    is_best[k] = is_m[bi]
    oos_best[k] = sel
    logits[k] = np.log(w / (1.0 - w))


@numba.njit(cache=True, nogil=True)
def _cscv_kernel(s_a, q_a, n_a, tot_s, tot_q, n_tot, mu, use_sharpe, ia, ib, best, is_best, oos_best, logits):
    """For each half-set A (row) and its complement B: combination ``ia`` (IS = A, OOS = B) and
    combination ``ib`` (IS = B, OOS = A), each metric computed once from block aggregates."""
    c, n = s_a.shape
    ma = np.empty(n)
    mb = np.empty(n)
    for i in range(c):
        na = n_a[i]
        nb = n_tot - na
        for j in range(n):
            ma[j] = _block_metric(s_a[i, j], q_a[i, j], na, mu[j], use_sharpe)
            mb[j] = _block_metric(tot_s[j] - s_a[i, j], tot_q[j] - q_a[i, j], nb, mu[j], use_sharpe)
        _select_rank(ma, mb, ia[i], best, is_best, oos_best, logits)
        _select_rank(mb, ma, ib[i], best, is_best, oos_best, logits)


def _oos_logit(is_m: np.ndarray, oos_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per combination: IS-best trial (first on ties), its IS and OOS metric, and its OOS logit.

    The OOS rank uses mid-ranks for ties (``#lower + (#equal + 1) / 2``, itself included in
    ``#equal``), so an all-tied OOS gives ω̄ = 1/2 and λ = 0 — no evidence of skill.
    """
    n = is_m.shape[1]
    rows = np.arange(is_m.shape[0])
    best = np.zeros(is_m.shape[0], dtype=np.int64)
    for r in rows:  # scan in trial order: a later trial wins only by more than the tie tolerance
        for j in range(1, n):
            a, c = is_m[r, j], is_m[r, best[r]]
            if a > c + TIE_RTOL * max(abs(a), abs(c)):
                best[r] = j
    sel = oos_m[rows, best][:, None]
    tie = np.abs(oos_m - sel) <= TIE_RTOL * np.maximum(np.abs(oos_m), np.abs(sel))
    rank = ((oos_m < sel) & ~tie).sum(axis=1) + (tie.sum(axis=1) + 1) / 2.0
    w = rank / (n + 1.0)
    return best, is_m[rows, best], oos_m[rows, best], np.log(w / (1.0 - w))


def pbo_cscv(perf: np.ndarray, n_blocks: int = 16, metric: Callable | str = "sharpe") -> dict:
    """Probability of Backtest Overfitting by CSCV for a ``T × N`` matrix of per-period returns.

    Rows (periods, e.g. days, in time order) are split into ``n_blocks`` (even) contiguous blocks
    of near-equal size (``np.array_split``: sizes differ by at most one). For each of the
    C(S, S/2) ways to pick half the blocks as in-sample (the rest out-of-sample) the trial with
    the best IS metric is chosen (first index on ties, scores within ``TIE_RTOL`` relative being
    ties), its OOS relative rank ω̄ = rank/(N+1) (mid-rank on ties) gives the logit λ = ln(ω̄/(1-ω̄)), and PBO is the share of λ <= 0.

    ``metric``: ``"sharpe"`` (mean/std, ddof=1, 0 when std is 0) or ``"mean"`` — both computed
    from per-block sums so all combinations cost a few matrix products — or a callable mapping
    a ``(rows, N)`` return matrix to ``N`` scores (evaluated per combination on the gathered rows:
    general but slow). NaN returns count as 0 (no trades that period); inf is an error.

    Returns a dict: ``pbo``, ``logits`` (λ per combination), ``best_trial``, ``is_best`` and
    ``oos_best`` (metric of the chosen trial IS and OOS), ``slope``/``intercept`` of the OOS-on-IS
    regression of the chosen trial (performance degradation: slope < 0 or well below 1 means IS
    gains do not carry OOS; NaN when IS values vary by no more than 1e-9 relative), ``prob_loss``
    (share of combinations whose chosen trial has OOS metric < 0), ``n_combinations`` and
    ``n_blocks``. The metric is rank-based for PBO, so ``"sharpe"`` vs ``"mean"`` only changes which
    notion of "best" is tested; days are the natural rows (see :func:`daily_returns`).
    """
    m = _check_perf(perf, n_blocks)
    t, n = m.shape
    bounds = np.cumsum([0] + [len(b) for b in np.array_split(np.arange(t), n_blocks)])
    w_half, ia, ib = _half_set_pairs(n_blocks)
    n_comb = 2 * w_half.shape[0]
    best = np.empty(n_comb, dtype=np.int64)
    is_best = np.empty(n_comb)
    oos_best = np.empty(n_comb)
    logits = np.empty(n_comb)
    out = (best, is_best, oos_best, logits)
    if callable(metric):
        _cscv_callable(m, metric, bounds, w_half, ia, ib, out)
    elif metric in ("sharpe", "mean"):
        _cscv_moments(m, metric == "sharpe", bounds, w_half, ia, ib, out)
    else:
        raise ValueError(f"metric must be 'sharpe', 'mean' or a callable, got {metric!r}")
    slope, intercept = _degradation(is_best, oos_best)
    return {
        "pbo": float(np.mean(logits <= 0.0)),
        "logits": logits,
        "best_trial": best,
        "is_best": is_best,
        "oos_best": oos_best,
        "slope": slope,
        "intercept": intercept,
        "prob_loss": float(np.mean(oos_best < 0.0)),
        "n_combinations": int(n_comb),
        "n_blocks": int(n_blocks),
    }


def _check_perf(perf: np.ndarray, n_blocks: int) -> np.ndarray:
    m = np.asarray(perf, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"perf must be a T x N matrix, got shape {m.shape}")
    t, n = m.shape
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be an even number >= 2, got {n_blocks}")
    if t < n_blocks:
        raise ValueError(f"need at least n_blocks={n_blocks} periods (rows), got {t}")
    if n < 2:
        raise ValueError(f"need at least 2 trials (columns) to select among, got {n}")
    if np.isinf(m).any():
        raise ValueError("perf has infinite values")
    return np.where(np.isnan(m), 0.0, m)


def _cscv_callable(
    m: np.ndarray,
    metric: Callable,
    bounds: np.ndarray,
    w_half: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    out: tuple,
) -> None:
    """General metric: evaluated per combination on the gathered rows (slow, any callable)."""
    best, is_best, oos_best, logits = out
    n_blocks, n = w_half.shape[1], m.shape[1]
    blocks = [np.arange(bounds[b], bounds[b + 1]) for b in range(n_blocks)]
    for r in range(w_half.shape[0]):
        a_rows = np.concatenate([blocks[b] for b in range(n_blocks) if w_half[r, b] > 0])
        b_rows = np.concatenate([blocks[b] for b in range(n_blocks) if w_half[r, b] == 0])
        ma = np.asarray(metric(m[a_rows]), dtype=np.float64).reshape(1, n)
        mb = np.asarray(metric(m[b_rows]), dtype=np.float64).reshape(1, n)
        if not (np.all(np.isfinite(ma)) and np.all(np.isfinite(mb))):
            raise ValueError("the metric callable returned non-finite scores")
        for k, (is_m, oos_m) in ((ia[r], (ma, mb)), (ib[r], (mb, ma))):
            b_, ib_, ob_, lg_ = _oos_logit(is_m, oos_m)
            best[k], is_best[k], oos_best[k], logits[k] = b_[0], ib_[0], ob_[0], lg_[0]


def _cscv_moments(
    m: np.ndarray,
    use_sharpe: bool,
    bounds: np.ndarray,
    w_half: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    out: tuple,
) -> None:
    """Sharpe or mean from per-block sums: every combination costs a few matrix products."""
    t, n = m.shape
    mu = m.mean(axis=0)
    c = m - mu
    bsum = np.add.reduceat(c, bounds[:-1], axis=0)
    bsq = np.add.reduceat(c * c, bounds[:-1], axis=0)
    bcnt = np.diff(bounds).astype(np.float64)
    tot_s, tot_q = bsum.sum(axis=0), bsq.sum(axis=0)
    chunk = max(1, _CSCV_CHUNK_ELEMS // n)
    for lo in range(0, w_half.shape[0], chunk):
        w = w_half[lo : lo + chunk]
        sl = slice(lo, lo + w.shape[0])
        s_a, q_a, n_a = w @ bsum, w @ bsq, w @ bcnt
        _cscv_kernel(s_a, q_a, n_a, tot_s, tot_q, float(t), mu, use_sharpe, ia[sl], ib[sl], *out)


def _degradation(is_best: np.ndarray, oos_best: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of OOS on IS for the chosen trials (NaN when IS does not vary)."""
    dx = is_best - is_best.mean()
    sxx = float(dx @ dx)
    if np.ptp(is_best) > 1e-9 * float(np.max(np.abs(is_best))):  # IS values vary beyond rounding
        slope = float(dx @ (oos_best - oos_best.mean())) / sxx
        return slope, float(oos_best.mean() - slope * is_best.mean())
    return float("nan"), float("nan")


# --------------------------------------------------------------------------------------------
# Neighbourhood stability
# --------------------------------------------------------------------------------------------

OFF_COORD = -1.0
"""Coordinate given to a parameter that is off (NaN) in normalised space: one full range below
the lowest on-value, so "rule off" is a distinct, distant place rather than a missing value."""


def neighbourhood_stability(params: np.ndarray, test_objective: np.ndarray, k: int = 5) -> np.ndarray:
    """Median test objective of each trial's ``k`` nearest trials in normalised parameter space.

    ``params`` is ``N × D`` normalised to [0, 1] (see ``SearchSpace.normalise``); NaN (rule off)
    becomes :data:`OFF_COORD`. Distance is Euclidean. The neighbourhood **includes the trial
    itself** (always first), then the nearest others, ties broken by lower trial index; with
    ``k > N`` all trials are used. NaN objectives (failed trials) are ignored in the median; a
    neighbourhood of only NaN gives NaN. A high score whose neighbours score poorly is a
    lonely spike — likely overfit; a plateau keeps its value here.
    """
    p = np.asarray(params, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    y = np.asarray(test_objective, dtype=np.float64).ravel()
    if p.ndim != 2 or p.shape[0] != y.size:
        raise ValueError(f"params must be (N, D) with N = {y.size}, got shape {np.shape(params)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = y.size
    if n == 0:
        return np.zeros(0)
    p = np.where(np.isnan(p), OFF_COORD, p)
    kk = min(int(k), n)
    out = np.empty(n)
    chunk = max(1, 2_000_000 // max(n * max(p.shape[1], 1), 1))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        d2 = ((p[lo:hi, None, :] - p[None, :, :]) ** 2).sum(axis=2)
        d2[np.arange(hi - lo), np.arange(lo, hi)] = -1.0  # itself first
        nn = np.argsort(d2, axis=1, kind="stable")[:, :kk]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[lo:hi] = np.nanmedian(y[nn], axis=1)
    return out
