"""DSR / PSR / PBO (CSCV) / daily returns / neighbourhood stability against independent references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from alertlab.optimize import stats as S
from alertlab.optimize.stats import (
    alert_day_index,
    daily_returns,
    deflated_sharpe_ratio,
    dsr_from_returns,
    expected_max_sharpe,
    neighbourhood_stability,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)

# ---------------------------------------------------------------------------------------------
# plain-Python references, written from the papers' definitions
# ---------------------------------------------------------------------------------------------


def ref_sharpe(x) -> float:
    """mean / sample std (ddof=1); 0 when the spread is numerically zero or n < 2 (module convention)."""
    x = [0.0 if v != v else float(v) for v in x]
    n = len(x)
    if n < 2:
        return 0.0
    mean = sum(x) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    rms = math.sqrt(sum(v * v for v in x) / n)
    return 0.0 if sd <= 1e-12 * rms else mean / sd


def ref_mean(x) -> float:
    x = [0.0 if v != v else float(v) for v in x]
    return sum(x) / len(x)


def ref_pbo(perf: np.ndarray, n_blocks: int, metric) -> dict:
    """CSCV by brute force: every C(S, S/2) split via itertools, trial by trial."""
    t, n = perf.shape
    blocks = np.array_split(np.arange(t), n_blocks)
    logits, best, isb, oosb = [], [], [], []
    for comb in itertools.combinations(range(n_blocks), n_blocks // 2):
        is_rows = [r for b in comb for r in blocks[b]]
        oos_rows = [r for b in range(n_blocks) if b not in comb for r in blocks[b]]
        is_m = [metric([perf[r, j] for r in is_rows]) for j in range(n)]
        oos_m = [metric([perf[r, j] for r in oos_rows]) for j in range(n)]

        def tie(x, y):  # equal within 1e-9 relative: rounding must not order equal scores
            return abs(x - y) <= 1e-9 * max(abs(x), abs(y))

        b = 0
        for j in range(n):
            if is_m[j] > is_m[b] and not tie(is_m[j], is_m[b]):
                b = j
        lower = sum(1 for j in range(n) if oos_m[j] < oos_m[b] and not tie(oos_m[j], oos_m[b]))
        equal = sum(1 for j in range(n) if tie(oos_m[j], oos_m[b]))
        w = (lower + (equal + 1) / 2) / (n + 1)
        logits.append(math.log(w / (1 - w)))
        best.append(b)
        isb.append(is_m[b])
        oosb.append(oos_m[b])
    isb, oosb = np.array(isb), np.array(oosb)
    # performance degradation: OLS slope; undefined when IS values only differ by rounding
    slope = np.polyfit(isb, oosb, 1)[0] if np.ptp(isb) > 1e-9 * np.abs(isb).max() else float("nan")
    return {
        "pbo": sum(1 for v in logits if v <= 0) / len(logits),
        "logits": np.array(logits),
        "best_trial": np.array(best),
        "is_best": isb,
        "oos_best": oosb,
        "slope": slope,
        "prob_loss": float(np.mean(oosb < 0)),
    }


def nasty_perf(rng: np.random.Generator, t: int, n: int) -> np.ndarray:
    """Daily returns with no-trade days (NaN), a never-trading trial, a duplicated trial, a constant
    non-zero trial, rug-sized losses and memecoin-sized wins."""
    m = rng.standard_normal((t, n)) * rng.uniform(0.01, 0.5, n)
    m += rng.normal(0, 0.02, n)
    m[rng.random((t, n)) < 0.3] = np.nan
    m[rng.random((t, n)) < 0.02] = -0.99
    m[rng.random((t, n)) < 0.02] = 25.0
    if n >= 4:
        m[:, 1] = np.nan
        m[:, 2] = m[:, 0]
        m[:, 3] = 0.01
    return m


def assert_pbo_equal(got: dict, ref: dict) -> None:
    np.testing.assert_array_equal(got["best_trial"], ref["best_trial"])
    np.testing.assert_allclose(got["logits"], ref["logits"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["is_best"], ref["is_best"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["oos_best"], ref["oos_best"], rtol=1e-9, atol=1e-12)
    assert got["pbo"] == ref["pbo"]
    assert got["prob_loss"] == ref["prob_loss"]
    if math.isnan(ref["slope"]):
        assert math.isnan(got["slope"])
    else:
        assert got["slope"] == pytest.approx(ref["slope"], rel=1e-7, abs=1e-10)


# ---------------------------------------------------------------------------------------------
# DSR / PSR
# ---------------------------------------------------------------------------------------------


def test_dsr_reproduces_the_papers_numerical_example():
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
    # Backtest Overfitting and Non-Normality", JPM 40(5), numerical example: N = 100 trials with
    # V[SR_n] = 1/2 (annualised), best SR = 2.5 annualised over 5 years of daily data (T = 1250,
    # 250 days a year), skew = -3, kurtosis = 10. The paper states SR0 ≈ 0.1132 (daily) and
    # DSR ≈ 0.9004. The formula matches vectorbt's returns/metrics.py::deflated_sharpe_ratio.
    sr = 2.5 / math.sqrt(250)
    v = 0.5 / 250
    assert expected_max_sharpe(v, 100) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(sr, 1250, v, 100, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # same thing through the PSR with SR0 as the benchmark
    assert probabilistic_sharpe_ratio(sr, 1250, expected_max_sharpe(v, 100), -3.0, 10.0) == dsr


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_expected_max_sharpe_matches_monte_carlo_of_normal_maxima(n):
    rng = np.random.default_rng(n)
    for var in (1.0, 0.04):
        mc = (rng.standard_normal((4000, n)) * math.sqrt(var)).max(axis=1).mean()
        # the extreme-value approximation overshoots by ~2 % at N=10, less for larger N
        assert expected_max_sharpe(var, n) == pytest.approx(mc, rel=0.035)


def test_expected_max_sharpe_matches_max_of_null_sharpe_estimates():
    # brute force: N strategies of pure-noise daily returns, their estimated Sharpes, the max
    rng = np.random.default_rng(7)
    t, n, reps = 250, 100, 300
    maxima, variances = [], []
    for _ in range(reps):
        srs = sharpe_ratio(rng.standard_normal((t, n)))
        maxima.append(srs.max())
        variances.append(srs.var(ddof=1))
    assert expected_max_sharpe(float(np.mean(variances)), n) == pytest.approx(np.mean(maxima), rel=0.03)


def test_expected_max_sharpe_properties_and_validation():
    assert expected_max_sharpe(1.0, 1) == 0.0
    assert expected_max_sharpe(0.0, 50) == 0.0
    vals = [expected_max_sharpe(1.0, n) for n in (2, 5, 10, 100, 1000, 10**5)]
    assert all(a < b for a, b in itertools.pairwise(vals))
    assert expected_max_sharpe(4.0, 37) == pytest.approx(2 * expected_max_sharpe(1.0, 37))
    for bad in [(-1.0, 10), (float("nan"), 10), (1.0, 0), (1.0, 2.5)]:
        with pytest.raises(ValueError):
            expected_max_sharpe(*bad)


def test_psr_basics_and_moments_effect():
    assert probabilistic_sharpe_ratio(0.1, 500, 0.1, 0.0, 3.0) == pytest.approx(0.5)
    # normal returns: z = SR sqrt(T-1) / sqrt(1 + SR^2/2)
    sr, t = 0.08, 400
    z = sr * math.sqrt(t - 1) / math.sqrt(1 + sr * sr / 2)
    assert probabilistic_sharpe_ratio(sr, t, 0.0, 0.0, 3.0) == pytest.approx(sps.norm.cdf(z), abs=1e-12)
    base = probabilistic_sharpe_ratio(sr, t, 0.0, 0.0, 3.0)
    assert probabilistic_sharpe_ratio(sr, t, 0.0, -2.0, 3.0) < base  # negative skew hurts
    assert probabilistic_sharpe_ratio(sr, t, 0.0, 0.0, 12.0) < base  # fat tails hurt
    assert probabilistic_sharpe_ratio(sr, 2 * t, 0.0, 0.0, 3.0) > base  # longer record helps
    with pytest.raises(ValueError):
        probabilistic_sharpe_ratio(sr, 1, 0.0, 0.0, 3.0)
    with pytest.raises(ValueError, match="inconsistent moments"):
        probabilistic_sharpe_ratio(1.0, 100, 0.0, 5.0, 1.0)
    assert deflated_sharpe_ratio(sr, t, 0.01, 20, 0.0, 3.0) < deflated_sharpe_ratio(sr, t, 0.01, 2, 0.0, 3.0)


def test_psr_is_calibrated_under_the_null():
    # true Sharpe 0, normal returns: P(PSR > 0.95) should be ~5 %
    rng = np.random.default_rng(11)
    r = rng.standard_normal((250, 3000))
    srs = sharpe_ratio(r)
    psr = np.array([probabilistic_sharpe_ratio(s, 250, 0.0, 0.0, 3.0) for s in srs])
    assert np.mean(psr > 0.95) == pytest.approx(0.05, abs=0.015)


def test_dsr_deflates_a_selected_null_winner():
    rng = np.random.default_rng(5)
    t, n = 250, 50
    naive, deflated = [], []
    for _ in range(300):
        r = rng.standard_normal((t, n))
        srs = sharpe_ratio(r)
        d = dsr_from_returns(r[:, int(np.argmax(srs))], srs, n)
        naive.append(d["psr"] > 0.95)
        deflated.append(d["dsr"] > 0.95)
    assert np.mean(naive) > 0.5  # the best of 50 noise strategies looks "significant"
    assert np.mean(deflated) <= 0.1  # the DSR sees through it


def test_dsr_from_returns_matches_scipy_moments():
    rng = np.random.default_rng(3)
    r = rng.standard_t(4, 600) * 0.05 + 0.01
    r[::7] = np.nan  # no-trade days count as 0
    trials = rng.normal(0.0, 0.05, 40)
    d = dsr_from_returns(r, trials, 40)
    x = np.nan_to_num(r)
    assert d["sr"] == pytest.approx(x.mean() / x.std(ddof=1))
    assert d["skew"] == pytest.approx(sps.skew(x))
    assert d["kurt"] == pytest.approx(sps.kurtosis(x, fisher=False))
    assert d["sr_trials_var"] == pytest.approx(np.var(trials, ddof=1))
    assert d["n_obs"] == 600
    assert d["sr0"] == pytest.approx(expected_max_sharpe(np.var(trials, ddof=1), 40))
    assert d["dsr"] == pytest.approx(
        deflated_sharpe_ratio(d["sr"], 600, d["sr_trials_var"], 40, d["skew"], d["kurt"])
    )
    assert d["psr"] == pytest.approx(probabilistic_sharpe_ratio(d["sr"], 600, 0.0, d["skew"], d["kurt"]))
    assert d["dsr"] < d["psr"]
    one = dsr_from_returns(r, [0.3, np.nan], 1)
    assert one["sr0"] == 0.0 and one["dsr"] == one["psr"]
    flat = dsr_from_returns(np.zeros(30), trials, 40)
    assert flat["sr"] == 0.0 and (flat["skew"], flat["kurt"]) == (0.0, 3.0)
    with pytest.raises(ValueError):
        dsr_from_returns(np.array([0.1]), trials, 40)
    with pytest.raises(ValueError):
        dsr_from_returns(np.array([0.1, np.inf]), trials, 40)


def test_sharpe_ratio_guards():
    assert sharpe_ratio(np.zeros(10)) == 0.0
    assert sharpe_ratio(np.full(10, 0.01)) == 0.0
    assert sharpe_ratio(np.array([0.5])) == 0.0
    np.testing.assert_array_equal(sharpe_ratio(np.ones((1, 3))), np.zeros(3))
    x = np.array([0.1, np.nan, -0.05, 0.2])
    assert sharpe_ratio(x) == pytest.approx(ref_sharpe(x))
    m = np.random.default_rng(0).standard_normal((30, 4))
    np.testing.assert_allclose(sharpe_ratio(m), [ref_sharpe(m[:, j]) for j in range(4)])
    np.testing.assert_allclose(sharpe_ratio(m.T, axis=1), [ref_sharpe(m[:, j]) for j in range(4)])


# ---------------------------------------------------------------------------------------------
# daily returns
# ---------------------------------------------------------------------------------------------


def ref_daily_returns(day, tr, n_days):
    out = np.zeros((n_days, tr.shape[0]))
    for t in range(tr.shape[0]):
        for d in range(n_days):
            vals = [tr[t, a] for a in range(len(day)) if day[a] == d and not math.isnan(tr[t, a])]
            out[d, t] = sum(vals) / len(vals) if vals else 0.0
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(1, 5), st.integers(0, 3))
def test_daily_returns_matches_loop_reference(seed, n_alerts, n_trials, extra_days):
    rng = np.random.default_rng(seed)
    day = rng.integers(0, 6, n_alerts)
    tr = rng.normal(0, 1, (n_trials, n_alerts))
    tr[rng.random(tr.shape) < 0.4] = np.nan
    tr[rng.random(tr.shape) < 0.05] = -0.99
    n_days = (int(day.max()) + 1 if n_alerts else 0) + extra_days
    got = daily_returns(day, tr, n_days)
    assert got.shape == (n_days, n_trials)
    np.testing.assert_allclose(got, ref_daily_returns(day, tr, n_days), rtol=1e-12, atol=1e-15)
    if n_alerts:
        np.testing.assert_allclose(daily_returns(day, tr), got[: int(day.max()) + 1])


def test_daily_returns_validation_and_day_index():
    with pytest.raises(ValueError):
        daily_returns(np.array([0, 1]), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        daily_returns(np.array([0, -1]), np.zeros((1, 2)))
    with pytest.raises(ValueError):
        daily_returns(np.array([0, 3]), np.zeros((1, 2)), n_days=2)
    with pytest.raises(ValueError):
        daily_returns(np.array([0.0, 1.0]), np.zeros((1, 2)))
    with pytest.raises(ValueError):
        daily_returns(np.array([0, 1]), np.array([[0.1, np.inf]]))
    np.testing.assert_allclose(
        daily_returns(np.array([0, 0, 2]), np.array([0.1, 0.3, np.nan])), [[0.2], [0], [0]]
    )
    day_ms = 86_400_000
    ts = np.array([5 * day_ms - 1, 5 * day_ms, 7 * day_ms + 123, 5 * day_ms + 10])
    day, n = alert_day_index(ts)
    assert day.tolist() == [0, 1, 3, 1] and n == 4
    assert alert_day_index(np.array([], dtype=np.int64))[1] == 0


# ---------------------------------------------------------------------------------------------
# PBO by CSCV
# ---------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([2, 4, 6, 8]),
    st.integers(0, 9),
    st.integers(2, 9),
    st.sampled_from(["sharpe", "mean"]),
)
def test_pbo_matches_brute_force_reference(seed, n_blocks, extra_rows, n, metric):
    rng = np.random.default_rng(seed)
    t = n_blocks * 3 + extra_rows  # uneven block sizes when extra_rows % n_blocks != 0
    perf = nasty_perf(rng, t, n)
    got = pbo_cscv(perf, n_blocks=n_blocks, metric=metric)
    ref = ref_pbo(perf, n_blocks, ref_sharpe if metric == "sharpe" else ref_mean)
    assert got["n_combinations"] == math.comb(n_blocks, n_blocks // 2)
    assert_pbo_equal(got, ref)


def test_pbo_chunked_path_and_callable_metric_match_reference(monkeypatch):
    rng = np.random.default_rng(42)
    perf = nasty_perf(rng, 61, 9)
    ref = ref_pbo(perf, 8, ref_sharpe)
    monkeypatch.setattr(S, "_CSCV_CHUNK_ELEMS", 20)  # 2 half-sets per chunk: many chunks
    assert_pbo_equal(pbo_cscv(perf, n_blocks=8), ref)
    monkeypatch.undo()
    cb = pbo_cscv(
        perf, n_blocks=8, metric=lambda x: np.array([ref_sharpe(x[:, j]) for j in range(x.shape[1])])
    )
    assert_pbo_equal(cb, ref)
    with pytest.raises(ValueError, match="non-finite"):
        pbo_cscv(perf, n_blocks=4, metric=lambda x: np.full(x.shape[1], np.nan))


def test_pbo_ties_are_deterministic_and_neutral():
    # every trial identical: IS best is trial 0, OOS all tied -> mid-rank -> logit 0 -> PBO 1
    col = np.random.default_rng(1).standard_normal(40)
    res = pbo_cscv(np.tile(col[:, None], (1, 5)), n_blocks=4)
    assert (res["best_trial"] == 0).all()
    np.testing.assert_allclose(res["logits"], 0.0, atol=1e-15)
    assert res["pbo"] == 1.0
    # never-trading trials (all NaN) are all-zero: Sharpe 0, tied
    res = pbo_cscv(np.full((20, 3), np.nan), n_blocks=2)
    assert res["pbo"] == 1.0 and res["prob_loss"] == 0.0 and math.isnan(res["slope"])


def test_pbo_is_about_one_half_on_pure_noise():
    pbos = []
    for seed in range(6):
        perf = np.random.default_rng(100 + seed).standard_normal((320, 200))
        res = pbo_cscv(perf, n_blocks=16)
        assert res["n_combinations"] == 12870
        assert 0.15 <= res["pbo"] <= 0.85
        pbos.append(res["pbo"])
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.15)


def test_pbo_is_about_zero_with_a_planted_edge():
    rng = np.random.default_rng(9)
    perf = rng.standard_normal((400, 200))
    perf[:, [17, 80, 151]] += 0.3  # three trials with a real daily edge among 197 noise trials
    res = pbo_cscv(perf, n_blocks=16)
    assert res["pbo"] <= 0.02
    assert res["prob_loss"] <= 0.02
    assert np.isin(res["best_trial"], [17, 80, 151]).mean() > 0.95
    assert np.median(res["logits"]) > 3


def test_pbo_falls_as_the_planted_edge_grows():
    base = np.random.default_rng(1).standard_normal((400, 200))
    pbos, mean_logit = [], []
    for drift in (0.0, 0.05, 0.1, 0.2, 0.4):
        perf = base.copy()
        perf[:, :3] += drift
        res = pbo_cscv(perf, n_blocks=10)
        pbos.append(res["pbo"])
        mean_logit.append(res["logits"].mean())
    assert all(a >= b for a, b in itertools.pairwise(pbos))
    assert all(a < b for a, b in itertools.pairwise(mean_logit[:4]))
    assert pbos[0] > 0.3 and pbos[-1] == 0.0


def test_pbo_large_matrix_runs_vectorised():
    perf = np.random.default_rng(2).standard_normal((500, 2000))
    perf[np.random.default_rng(3).random(perf.shape) < 0.5] = np.nan
    res = pbo_cscv(perf)
    assert res["n_combinations"] == 12870 and res["logits"].shape == (12870,)
    assert 0.0 <= res["pbo"] <= 1.0 and np.isfinite(res["logits"]).all()


def test_pbo_validation():
    ok = np.zeros((20, 3))
    for kwargs in ({"n_blocks": 3}, {"n_blocks": 0}, {"n_blocks": 22}, {"metric": "sortino"}):
        with pytest.raises(ValueError):
            pbo_cscv(ok, **kwargs)
    with pytest.raises(ValueError):
        pbo_cscv(np.zeros((20, 1)))
    with pytest.raises(ValueError):
        pbo_cscv(np.zeros(20))
    bad = ok.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError):
        pbo_cscv(bad, n_blocks=4)


# ---------------------------------------------------------------------------------------------
# neighbourhood stability
# ---------------------------------------------------------------------------------------------


def ref_stability(params, y, k):
    p = np.where(np.isnan(params), -1.0, params)
    out = []
    for i in range(len(y)):
        d = [
            (0 if j == i else 1, sum((p[i, c] - p[j, c]) ** 2 for c in range(p.shape[1])), j)
            for j in range(len(y))
        ]
        d.sort(key=lambda x: (x[0], x[1], x[2]))
        vals = [y[j] for _, _, j in d[:k] if not math.isnan(y[j])]
        out.append(float(np.median(vals)) if vals else float("nan"))
    return np.array(out)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 4), st.integers(1, 8))
def test_neighbourhood_stability_matches_reference(seed, n, d, k):
    rng = np.random.default_rng(seed)
    params = rng.choice([0.0, 0.25, 0.5, 1.0, np.nan], size=(n, d))  # coarse grid: many ties
    y = rng.normal(size=n)
    y[rng.random(n) < 0.2] = np.nan
    np.testing.assert_allclose(
        neighbourhood_stability(params, y, k), ref_stability(params, y, k), equal_nan=True
    )


def test_neighbourhood_stability_semantics():
    params = np.array([[0.0], [0.1], [0.2], [0.9], [np.nan]])
    y = np.array([1.0, 2.0, 3.0, 100.0, -5.0])
    np.testing.assert_allclose(neighbourhood_stability(params, y, 1), y)  # itself only
    # the spike at 0.9 is alone: its 3-neighbourhood is itself, 0.2 and 0.1 -> median 3
    assert neighbourhood_stability(params, y, 3)[3] == 3.0
    # rule off (NaN -> -1) is far from every on-value: nearest to it are 0.0 then 0.1
    assert neighbourhood_stability(params, y, 2)[4] == pytest.approx(-2.0)
    np.testing.assert_allclose(neighbourhood_stability(params, y, 50), np.full(5, 2.0))
    assert neighbourhood_stability(np.zeros((0, 2)), np.zeros(0)).shape == (0,)
    assert np.isnan(neighbourhood_stability(np.zeros((2, 1)), np.array([np.nan, np.nan]), 2)).all()
    with pytest.raises(ValueError):
        neighbourhood_stability(params, y, 0)
    with pytest.raises(ValueError):
        neighbourhood_stability(params, y[:3])
