"""Caller leaderboard: hit rates with Wilson bounds, ATH quantiles with a bootstrap CI of the median.

Only ok alerts count. Callers with fewer than ``min_calls`` ok alerts are left off the board; their
number and names are in ``df.attrs["n_hidden"]`` / ``df.attrs["hidden_callers"]`` and their stats
in :func:`caller_stats`. The default ranking is the Wilson lower bound of the 2x hit rate, so a
caller with 5 lucky calls out of 5 cannot outrank one with 60 out of 100.

Definitions: hit Nx = ``time_to_Nx_s`` not null (negative sentinels count as null); quantiles use
linear interpolation (numpy's default); ``time_to_2x_median_s`` and ``dd_pre2x_median`` are medians
over the alerts that hit 2x; the other medians over all ok alerts; ``n_tokens`` counts distinct
(chain, token); ``first_call_share`` is the share of ok alerts with ``is_first_call``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from alertlab.windows.model import DEFAULT_MIN_COVERAGE, OK, TRUNCATED

HIT_MULTIPLES = (2, 3, 5, 10)
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "caller",
    "n",
    "n_tokens",
    "first_call_share",
    *(f"hit{m}x_{s}" for m in HIT_MULTIPLES for s in ("rate", "lo", "hi")),
    "ath_median",
    "ath_median_lo",
    "ath_median_hi",
    "ath_p25",
    "ath_p75",
    "ath_p95",
    "time_to_2x_median_s",
    "dd_pre2x_median",
    "dd_overall_median",
    "ret_end_median",
    "rank",
)
RANKABLE_COLUMNS: tuple[str, ...] = tuple(c for c in LEADERBOARD_COLUMNS if c not in ("caller", "rank"))
_Z95 = 1.959963984540054
_BOOT_CELLS = 4_000_000  # resample matrix cells per chunk (bounds memory to ~32 MB)


def wilson_interval(k: np.ndarray, n: np.ndarray, z: float = _Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes out of n (elementwise); NaN where n == 0.

    Exact endpoints at the edges: lower bound 0 when k == 0, upper bound 1 when k == n.
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("need 0 <= k <= n")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        z2 = z * z
        denom = 1.0 + z2 / n
        center = (p + z2 / (2.0 * n)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
        lo = np.clip(center - half, 0.0, 1.0)
        hi = np.clip(center + half, 0.0, 1.0)
    lo = np.where(k == 0, 0.0, lo)
    hi = np.where(k == n, 1.0, hi)
    bad = n <= 0
    lo = np.where(bad, np.nan, lo)
    hi = np.where(bad, np.nan, hi)
    return lo, hi


def bootstrap_median_ci(
    values: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the median: ``n_boot`` resamples drawn with ``default_rng(seed)``.

    NaNs are dropped first; (NaN, NaN) for no values. Resamples are drawn row by row in chunks,
    so the result does not depend on the chunk size.
    """
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise ValueError("need n_boot >= 1 and 0 < alpha < 1")
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    n = v.shape[0]
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    meds = np.empty(n_boot)
    rows = max(1, _BOOT_CELLS // n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        meds[start:stop] = np.median(v[idx], axis=1)
    lo, hi = np.percentile(meds, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        raise ValueError(f"baseline is missing column {name!r}")
    return df[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _ok_rows(baseline: pd.DataFrame | pa.Table, min_coverage: float = DEFAULT_MIN_COVERAGE) -> pd.DataFrame:
    """The usable rows: status ok, or truncated with coverage >= ``min_coverage``."""
    df = baseline.to_pandas() if isinstance(baseline, pa.Table) else baseline
    if "status" not in df.columns:
        raise ValueError("baseline is missing column 'status'")
    status = df["status"]
    num = pd.api.types.is_numeric_dtype(status)
    ok = (status == (OK if num else "ok")).to_numpy(dtype=bool).copy()
    if "coverage" in df.columns:
        cov = df["coverage"].to_numpy(dtype=np.float64, na_value=0.0)
        trunc = (status == (TRUNCATED if num else "truncated")).to_numpy(dtype=bool)
        ok |= trunc & (cov >= min_coverage - 1e-12)
    return df.loc[ok]


def caller_stats(
    baseline: pd.DataFrame | pa.Table,
    n_boot: int = 2000,
    seed: int = 0,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pd.DataFrame:
    """Unranked per-caller statistics over usable alerts (ok, or truncated with coverage >=
    ``min_coverage``; every caller, no ``min_calls`` cut), sorted by caller.

    Columns are LEADERBOARD_COLUMNS without ``rank``. Each caller's bootstrap uses ``seed``, so its CI
    does not depend on which other callers are present.
    """
    df = _ok_rows(baseline, min_coverage)
    cols = [c for c in LEADERBOARD_COLUMNS if c != "rank"]
    if len(df) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "caller" else np.float64) for c in cols})
    work = pd.DataFrame(
        {
            "caller": df["caller"].to_numpy(dtype=object),
            "token_key": (df["chain"].astype(str) + "\x00" + df["token"].astype(str)).to_numpy(),
            "first": df["is_first_call"].to_numpy(dtype=np.float64, na_value=0.0),
            "ath": _column(df, "ath_mult"),
            "dd_overall": _column(df, "dd_overall"),
            "ret_end": _column(df, "ret_end"),
        }
    )
    for m in HIT_MULTIPLES:
        t = _column(df, f"time_to_{m}x_s")
        work[f"hit{m}"] = (t >= 0).astype(np.float64)  # NaN >= 0 is False
    t2 = _column(df, "time_to_2x_s")
    hit2 = t2 >= 0
    work["t2"] = np.where(hit2, t2, np.nan)
    work["dd_pre2x"] = np.where(hit2, _column(df, "dd_pre2x"), np.nan)

    g = work.groupby("caller", sort=True)
    out = pd.DataFrame(index=g.size().index)
    out["n"] = g.size().astype(np.int64)
    out["n_tokens"] = g["token_key"].nunique().astype(np.int64)
    out["first_call_share"] = g["first"].mean()
    n = out["n"].to_numpy(dtype=np.float64)
    for m in HIT_MULTIPLES:
        k = g[f"hit{m}"].sum().to_numpy()
        lo, hi = wilson_interval(k, n)
        out[f"hit{m}x_rate"] = k / n
        out[f"hit{m}x_lo"] = lo
        out[f"hit{m}x_hi"] = hi
    out["ath_median"] = g["ath"].median()
    ci = {c: bootstrap_median_ci(grp.to_numpy(), n_boot=n_boot, seed=seed) for c, grp in g["ath"]}
    out["ath_median_lo"] = [ci[c][0] for c in out.index]
    out["ath_median_hi"] = [ci[c][1] for c in out.index]
    for q in (25, 75, 95):
        out[f"ath_p{q}"] = g["ath"].quantile(q / 100)
    out["time_to_2x_median_s"] = g["t2"].median()
    out["dd_pre2x_median"] = g["dd_pre2x"].median()
    out["dd_overall_median"] = g["dd_overall"].median()
    out["ret_end_median"] = g["ret_end"].median()
    out = out.reset_index(names="caller")
    return out[cols].reset_index(drop=True)


def leaderboard(
    baseline: pd.DataFrame | pa.Table,
    min_calls: int = 10,
    rank_by: str = "hit2x_lo",
    ascending: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pd.DataFrame:
    """Ranked caller board (columns LEADERBOARD_COLUMNS) from a baseline table (see ``baseline_table``).

    Callers with fewer than ``min_calls`` ok alerts are excluded; ``attrs`` holds ``min_calls``,
    ``n_hidden`` and ``hidden_callers``. Sorted by ``rank_by`` (``ascending`` as given, NaN last),
    ties by ``n`` descending then caller name; ``rank`` is 1..k in that order.
    """
    return rank_callers(
        caller_stats(baseline, n_boot=n_boot, seed=seed, min_coverage=min_coverage),
        min_calls,
        rank_by,
        ascending,
    )


def rank_callers(
    stats: pd.DataFrame, min_calls: int = 10, rank_by: str = "hit2x_lo", ascending: bool = False
) -> pd.DataFrame:
    """Rank precomputed :func:`caller_stats` (the cheap part of :func:`leaderboard`, same rules)."""
    if rank_by not in RANKABLE_COLUMNS:
        raise ValueError(f"unknown rank_by {rank_by!r}; valid: {', '.join(RANKABLE_COLUMNS)}")
    if min_calls < 0:
        raise ValueError("min_calls must be >= 0")
    keep = stats["n"].to_numpy() >= min_calls
    hidden = stats.loc[~keep, "caller"].tolist()
    board = stats.loc[keep].sort_values(
        [rank_by, "n", "caller"], ascending=[ascending, False, True], na_position="last", kind="mergesort"
    )
    board = board.reset_index(drop=True)
    board["rank"] = np.arange(1, len(board) + 1, dtype=np.int64)
    board = board[list(LEADERBOARD_COLUMNS)]
    board.attrs.update({"min_calls": int(min_calls), "n_hidden": len(hidden), "hidden_callers": hidden})
    return board
