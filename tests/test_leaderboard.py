"""Caller leaderboard against plain-loop references; Wilson against scipy; bootstrap coverage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

import alertlab.truth.leaderboard as lb
from alertlab.truth.leaderboard import (
    LEADERBOARD_COLUMNS,
    bootstrap_median_ci,
    caller_stats,
    leaderboard,
    wilson_interval,
)
from alertlab.truth.metrics import baseline_table

from windowgen import random_windows

Z = 1.959963984540054


def ref_wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    denom = 1 + Z * Z / n
    center = (p + Z * Z / (2 * n)) / denom
    half = Z / denom * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def ref_quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    h = (len(s) - 1) * q
    f = math.floor(h)
    return s[f] if f + 1 >= len(s) else s[f] + (h - f) * (s[f + 1] - s[f])


def ref_median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def ref_boot(xs: list[float], n_boot: int, seed: int) -> tuple[float, float]:
    """Same resample draws as the spec'd seeded bootstrap, medians and percentiles by hand."""
    idx = np.random.default_rng(seed).integers(0, len(xs), size=(n_boot, len(xs)))
    meds = [ref_median([xs[j] for j in row]) for row in idx.tolist()]
    return ref_quantile(meds, 0.025), ref_quantile(meds, 0.975)


def ref_board(rows: list[dict], min_calls: int, n_boot: int, seed: int) -> dict[str, dict]:
    by: dict[str, list[dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            by.setdefault(r["caller"], []).append(r)
    out = {}
    for caller, rs in by.items():
        n = len(rs)
        if n < min_calls:
            continue
        d = {
            "n": n,
            "n_tokens": len({(r["chain"], r["token"]) for r in rs}),
            "first_call_share": sum(1 for r in rs if r["is_first_call"]) / n,
        }
        for m in (2, 3, 5, 10):
            k = sum(1 for r in rs if r[f"time_to_{m}x_s"] is not None)
            d[f"hit{m}x_rate"] = k / n
            d[f"hit{m}x_lo"], d[f"hit{m}x_hi"] = ref_wilson(k, n)
        ath = [r["ath_mult"] for r in rs]
        d["ath_median"] = ref_median(ath)
        d["ath_median_lo"], d["ath_median_hi"] = ref_boot(ath, n_boot, seed)
        for q in (25, 75, 95):
            d[f"ath_p{q}"] = ref_quantile(ath, q / 100)
        hit = [r for r in rs if r["time_to_2x_s"] is not None]
        d["time_to_2x_median_s"] = ref_median([r["time_to_2x_s"] for r in hit]) if hit else None
        d["dd_pre2x_median"] = ref_median([r["dd_pre2x"] for r in hit]) if hit else None
        d["dd_overall_median"] = ref_median([r["dd_overall"] for r in rs])
        d["ret_end_median"] = ref_median([r["ret_end"] for r in rs])
        out[caller] = d
    order = sorted(out, key=lambda c: (-out[c]["hit2x_lo"], -out[c]["n"], c))
    for i, c in enumerate(order):
        out[c]["rank"] = i + 1
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_board_matches_reference(seed):
    w = random_windows(np.random.default_rng(seed), 400, 300, 24 * 3600, n_callers=12, n_tokens=60)
    table = baseline_table(w)
    rows = table.to_pylist()
    n_boot = 300
    board = leaderboard(table, min_calls=25, n_boot=n_boot, seed=seed)
    ref = ref_board(rows, 25, n_boot, seed)
    assert tuple(board.columns) == LEADERBOARD_COLUMNS
    assert set(board["caller"]) == set(ref)
    assert board.attrs["n_hidden"] == 12 - len(ref) and len(ref) >= 3
    assert board.attrs["n_hidden"] >= 1
    for rec in board.to_dict("records"):
        exp = ref[rec["caller"]]
        for c in LEADERBOARD_COLUMNS[1:]:
            if exp[c] is None:
                assert math.isnan(rec[c]), (rec["caller"], c)
            else:
                assert rec[c] == pytest.approx(exp[c], rel=1e-12, abs=1e-15), (rec["caller"], c)
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    # the same board from a pandas DataFrame, and with -1 sentinels instead of null times
    df = table.to_pandas()
    pd.testing.assert_frame_equal(board, leaderboard(df, min_calls=25, n_boot=n_boot, seed=seed))
    times = [c for c in df.columns if c.startswith("time_")]
    df[times] = df[times].fillna(-1).astype(np.int64)
    pd.testing.assert_frame_equal(board, leaderboard(df, min_calls=25, n_boot=n_boot, seed=seed))


def _calls(spec):
    rows = []
    for caller, n, k in spec:
        for i in range(n):
            hit = i < k
            rows.append(
                {
                    "caller": caller,
                    "chain": "solana",
                    "token": f"{caller}{i}",
                    "status": "ok",
                    "is_first_call": True,
                    "ath_mult": 3.0 if hit else 1.2,
                    "time_to_2x_s": 600 if hit else None,
                    "time_to_3x_s": 900 if hit else None,
                    "time_to_5x_s": None,
                    "time_to_10x_s": None,
                    "dd_pre2x": -0.1 if hit else None,
                    "dd_overall": -0.3,
                    "ret_end": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_lucky_five_ranks_below_sixty_of_hundred():
    df = _calls((("lucky", 5, 5), ("steady", 100, 60), ("meh", 40, 8)))
    board = leaderboard(df, n_boot=200)  # default min_calls=10 keeps 5/5 off the board
    assert list(board["caller"]) == ["steady", "meh"]
    assert board.attrs["n_hidden"] == 1 and board.attrs["hidden_callers"] == ["lucky"]
    assert board.attrs["min_calls"] == 10
    # Without the min_calls cut, 5/5 has Wilson lower bound 5/(5+z^2) = 0.566 > 0.502 for 60/100:
    # the lower bound alone does not demote a perfect short record; min_calls is what does.
    everyone = leaderboard(df, min_calls=1, n_boot=200)
    assert list(everyone["caller"]) == ["lucky", "steady", "meh"]
    # 4/5 (raw 80 %) ranks below 60/100 on the lower bound, above it on the raw rate
    df4 = _calls((("lucky4", 5, 4), ("steady", 100, 60)))
    assert list(leaderboard(df4, min_calls=1, n_boot=200)["caller"]) == ["steady", "lucky4"]
    assert list(leaderboard(df4, min_calls=1, n_boot=200, rank_by="hit2x_rate")["caller"]) == [
        "lucky4",
        "steady",
    ]


def test_rank_by_ties_nan_and_errors():
    rows = []
    for caller, n, t2 in (("b", 10, 60), ("a", 10, 60), ("c", 12, 60), ("d", 10, None)):
        for i in range(n):
            chain = "base" if (caller, i) == ("a", 1) else "bsc"  # same address on another chain
            rows.append(
                {
                    "caller": caller,
                    "chain": chain,
                    "token": "0xt",
                    "status": "ok",
                    "is_first_call": i == 0,
                    "ath_mult": 2.0,
                    "time_to_2x_s": t2,
                    "time_to_3x_s": None,
                    "time_to_5x_s": None,
                    "time_to_10x_s": None,
                    "dd_pre2x": -0.2 if t2 else None,
                    "dd_overall": -0.5,
                    "ret_end": 0.1,
                }
            )
    rows.append(dict(rows[0], status="missing", caller="zz"))  # non-ok rows are ignored
    df = pd.DataFrame(rows)
    asc = leaderboard(df, rank_by="time_to_2x_median_s", ascending=True, n_boot=50)
    assert list(asc["caller"]) == ["c", "a", "b", "d"]  # ties: n desc, then name; NaN last
    desc = leaderboard(df, rank_by="time_to_2x_median_s", ascending=False, n_boot=50)
    assert list(desc["caller"]) == ["c", "a", "b", "d"]
    assert asc.loc[asc.caller == "a", "n_tokens"].item() == 2
    assert asc.loc[asc.caller == "b", "n_tokens"].item() == 1
    assert asc.loc[asc.caller == "a", "first_call_share"].item() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="hit2x_lo"):
        leaderboard(df, rank_by="nope")
    empty = leaderboard(df.iloc[:0])
    assert tuple(empty.columns) == LEADERBOARD_COLUMNS and len(empty) == 0
    assert set(caller_stats(df, n_boot=50)["caller"]) == {"a", "b", "c", "d"}


def test_wilson_against_scipy_and_edges():
    ks, ns = [], []
    for n in (1, 2, 5, 17, 100, 1000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            if 0 <= k <= n:
                ks.append(k)
                ns.append(n)
    lo, hi = wilson_interval(np.array(ks), np.array(ns))
    for i, (k, n) in enumerate(zip(ks, ns, strict=True)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert lo[i] == pytest.approx(ci.low, abs=1e-12) and hi[i] == pytest.approx(ci.high, abs=1e-12), (
            k,
            n,
        )
        rl, rh = ref_wilson(k, n)
        assert lo[i] == pytest.approx(rl, abs=1e-12) and hi[i] == pytest.approx(rh, abs=1e-12)
    lo, hi = wilson_interval(np.array([0, 5, 0, 1]), np.array([5, 5, 1, 1]))
    assert lo[0] == 0.0 and hi[1] == 1.0 and lo[2] == 0.0 and hi[3] == 1.0
    assert hi[0] == pytest.approx(Z**2 / (5 + Z**2))  # k=0: upper bound z^2 / (n + z^2)
    assert lo[3] == pytest.approx(1 / (1 + Z**2))  # n=1, k=1
    lo, hi = wilson_interval(np.array([0]), np.array([0]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    with pytest.raises(ValueError):
        wilson_interval(np.array([3]), np.array([2]))


def test_bootstrap_reference_chunking_and_edges(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.lognormal(0, 1, size=37)
    got = bootstrap_median_ci(x, n_boot=400, seed=11)
    assert got == pytest.approx(ref_boot(x.tolist(), 400, 11), rel=1e-12)
    monkeypatch.setattr(lb, "_BOOT_CELLS", 37 * 7)  # 7 resamples per chunk
    assert bootstrap_median_ci(x, n_boot=400, seed=11) == got
    assert bootstrap_median_ci(np.array([4.0]), n_boot=50) == (4.0, 4.0)
    assert all(math.isnan(v) for v in bootstrap_median_ci(np.array([np.nan])))
    with pytest.raises(ValueError):
        bootstrap_median_ci(x, n_boot=0)


def test_bootstrap_coverage_near_nominal():
    """Percentile bootstrap of the median of lognormal samples (n=60) covers the true median ~95 %."""
    rng = np.random.default_rng(123)
    trials, hits = 300, 0
    for t in range(trials):
        x = rng.lognormal(0.3, 1.2, size=60)  # true median exp(0.3)
        lo, hi = bootstrap_median_ci(x, n_boot=400, seed=t)
        hits += lo <= math.exp(0.3) <= hi
    assert 0.89 <= hits / trials <= 0.99
