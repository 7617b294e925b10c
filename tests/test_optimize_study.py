"""The study runner: exact fold metrics, scoring against a plain reference, planted optima, PBO/DSR,
resume, stale trials, workers, identity checks, grid, exports."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import signal
import statistics
import threading
import time
from datetime import datetime, timedelta

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from alertlab.engine import Strategy, backtest, encode_params, trade_returns
from alertlab.optimize import evaluate as evaluate_mod
from alertlab.optimize.evaluate import FOLD_METRICS, EngineSettings, Evaluator, strategy_config, time_order
from alertlab.optimize.report import trials_long_table, write_config
from alertlab.optimize.space import SearchSpace
from alertlab.optimize.stats import OFF_COORD, expected_max_sharpe
from alertlab.optimize.storage import FileLock, host_key, is_stale, open_storage
from alertlab.optimize.study import OptimizeOptions, run_study

from windowgen import random_windows, windows_from_bars

optuna.logging.set_verbosity(optuna.logging.WARNING)

NO_COSTS = EngineSettings(fee_bps=0.0, slippage_bps=0.0)
TPSL = SearchSpace.from_dict({"tp": {"low": 1.5, "high": 6.0, "log": True}, "sl": {"low": 0.3, "high": 0.9}})
RICH = SearchSpace.from_dict(
    {
        "tp": {"low": 1.3, "high": 8.0, "log": True},
        "sl": {"low": 0.3, "high": 0.9},
        "trail": {"choices": [None, 0.2, 0.4]},
        "trail_activation": {"low": 1.0, "high": 3.0, "when": "trail"},
        "breakeven_at": {"choices": [None, 1.5, 2.5]},
        "time_stop_hours": {"choices": [None, 1, 3]},
        "entry_delay_bars": {"low": 0, "high": 2, "int": True},
    }
)
T0 = 1_700_006_400  # a UTC midnight


# ---------------------------------------------------------------------------------------------
# synthetic markets


def planted_windows(rng: np.random.Generator, n: int = 600, days: int = 60) -> object:
    """60 % of paths rise to 3.0–3.3x entry then collapse to 0.2x; the rest top out at 1.2–1.7x and
    collapse. Best exit: take profit just under 3x (any stop), every other tp loses."""
    bars, ets = [], []
    for _ in range(n):
        peak = 3.0 + 0.3 * rng.random() if rng.random() < 0.6 else 1.2 + 0.5 * rng.random()
        up = int(rng.integers(10, 40))
        c = np.concatenate([np.linspace(1.0, peak, up + 1)[1:], np.full(120 - up, 0.2)])
        o = np.concatenate([[1.0], c[:-1]])
        bars.append(np.column_stack([o, np.maximum(o, c), np.minimum(o, c), c]))
        ets.append(T0 + int(rng.integers(0, days * 86400)) // 60 * 60)
    return windows_from_bars(bars, 60, 120 * 60, entry_ts=ets)


def gapwalk_windows(rng: np.random.Generator, n: int = 500, days: int = 96, sigma: float = 0.05) -> object:
    """Pure noise: a martingale that moves only by gaps between flat bars, so every exit fills at a
    bar open on the path and every strategy's expected return is exactly 0."""
    bars, ets = [], []
    for _ in range(n):
        r = rng.normal(-sigma * sigma / 2, sigma, 120)
        r[0] = 0.0
        c = np.exp(np.cumsum(r))
        bars.append(np.column_stack([c, c, c, c]))
        ets.append(T0 + int(rng.integers(0, days * 86400)) // 60 * 60)
    return windows_from_bars(bars, 60, 120 * 60, entry_ts=ets)


def nasty_windows(seed: int = 5, n: int = 300, tie_ms: int = 0) -> object:
    """Random nasty windows; ``tie_ms`` floors alert times to that grid so many alerts share a
    time and the alert_id tie-break of the alert order matters (equity curves, float sums)."""
    w = random_windows(np.random.default_rng(seed), n, horizon_s=6 * 3600, span_s=40 * 86400)
    if tie_ms:
        w = dataclasses.replace(w, alert_ts_ms=w.alert_ts_ms // tie_ms * tie_ms)
    return w


def load(result) -> optuna.Study:
    return optuna.load_study(study_name=result.name, storage=open_storage(result.storage))


# ---------------------------------------------------------------------------------------------
# plain-Python references


def ref_mean(xs):
    return sum(xs) / len(xs)


def ref_scores(train_obj: list[float], test_obj: list[float]) -> tuple[float, float]:
    """Train: mean over folds, defined only if every fold is finite; test: mean of the finite folds."""
    train = ref_mean(train_obj) if all(math.isfinite(x) for x in train_obj) else float("nan")
    fin = [x for x in test_obj if math.isfinite(x)]
    return train, (ref_mean(fin) if fin else float("nan"))


def ref_recommend(rows: list[dict], coords: list[list[float]], k: int) -> tuple[dict, dict, int | None]:
    """Neighbourhood median (brute force), robust score and the chosen trial number."""
    feas = [i for i, r in enumerate(rows) if r["feasible"]]
    nb, rob = {}, {}
    for i in feas:
        dists = []
        for j in feas:
            d2 = sum(
                ((OFF_COORD if a != a else a) - (OFF_COORD if b != b else b)) ** 2
                for a, b in zip(coords[i], coords[j], strict=True)
            )
            dists.append((-1.0 if j == i else d2, j))
        dists.sort()
        vals = [rows[j]["test"] for _, j in dists[:k] if rows[j]["test"] == rows[j]["test"]]
        nb[i] = statistics.median(vals) if vals else float("nan")
        rob[i] = (rows[i]["test"] + nb[i]) / 2
    best = None
    for i in feas:
        if not math.isfinite(rob[i]):
            continue
        key = (rob[i], rows[i]["test"], -rows[i]["trial"])
        if best is None or key > best[0]:
            best = (key, rows[i]["trial"])
    return nb, rob, None if best is None else best[1]


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def planted_study(tmp_path_factory):
    w = planted_windows(np.random.default_rng(1))
    opts = OptimizeOptions(
        space=TPSL, trials=120, sampler="random", seed=1, min_trades=1, folds=3, settings=NO_COSTS
    )
    return w, run_study(w, opts, tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
def nasty_study(tmp_path_factory):
    w = nasty_windows(tie_ms=6 * 3_600_000)
    opts = OptimizeOptions(
        space=RICH, trials=24, sampler="tpe", seed=3, min_trades=54, max_dd=3.3, folds=3, batch_size=8
    )
    return w, run_study(w, opts, tmp_path_factory.mktemp("nasty"))


# ---------------------------------------------------------------------------------------------
# evaluation


def test_fold_metrics_equal_engine_backtest(nasty_study):
    w, res = nasty_study
    study = load(res)
    order = time_order(w, np.flatnonzero(w.status == 0))
    checked = 0
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        r = t.user_attrs["result"]
        cfg = strategy_config(r["options"], EngineSettings())
        for j, fold in enumerate(res.folds):
            for split, pos in (("train", fold.train_idx), ("test", fold.test_idx)):
                want = backtest(w, cfg, order[pos]).summary
                got = r["folds"][split]
                for key in FOLD_METRICS:
                    g = got[key][j]
                    g = float("nan") if g is None else float(g)
                    assert g == want[key] or (math.isnan(g) and math.isnan(want[key])), (t.number, split, key)
                assert (got["objective"][j] is None and math.isnan(want["avg_ret"])) or got["objective"][
                    j
                ] == want["avg_ret"]
                checked += 1
    assert checked == res.counts["n_complete"] * len(res.folds) * 2 > 0
    # the long table carries the same numbers
    row = res.fold_metrics.iloc[0]
    t = study.trials[int(row["trial"])]
    assert row["avg_ret"] == t.user_attrs["result"]["folds"][row["split"]]["avg_ret"][int(row["fold"])]


def test_one_engine_call_per_batch(tmp_path, monkeypatch):
    calls = []
    real = evaluate_mod.trade_returns

    def counting(w, params, alert_idx=None, intrabar="pessimistic", fill_on_zero_volume=False):
        calls.append(params.shape[0])
        return real(w, params, alert_idx, intrabar, fill_on_zero_volume)

    monkeypatch.setattr(evaluate_mod, "trade_returns", counting)
    w = nasty_windows(7, 200)
    opts = OptimizeOptions(space=RICH, trials=20, sampler="random", batch_size=5, min_trades=0, folds=2)
    res = run_study(w, opts, tmp_path)
    assert calls == [5, 5, 5, 5]  # 4 batches, each one call over all params; analysis reused them
    assert res.counts["n_trials"] == 20


def test_scores_constraints_and_recommendation_match_reference(nasty_study):
    w, res = nasty_study
    study = load(res)
    o = res.options
    rows, coords = [], []
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        r = t.user_attrs["result"]
        f = r["folds"]
        fobj = {
            s: [float("nan") if v is None else float(v) for v in f[s]["objective"]] for s in ("train", "test")
        }
        train, test = ref_scores(fobj["train"], fobj["test"])
        min_n = min(f["train"]["n_trades"])
        worst_dd = max(0.0 if v is None else v for v in f["train"]["max_drawdown"])
        feasible = min_n >= o.min_trades and worst_dd <= o.max_dd and math.isfinite(train)
        assert r["feasible"] == feasible
        assert (r["train"] is None and math.isnan(train)) or r["train"] == pytest.approx(train, rel=1e-12)
        assert (r["test"] is None and math.isnan(test)) or r["test"] == pytest.approx(test, rel=1e-12)
        assert t.value == (train if math.isfinite(train) else -math.inf) or t.value == pytest.approx(train)
        parts = [o.min_trades - min_n, worst_dd - o.max_dd, 0.0 if math.isfinite(train) else 1.0]
        assert r["constraints"] == parts
        assert t.constraints == {"violation": sum(max(c, 0.0) for c in parts)}
        rows.append({"trial": t.number, "feasible": feasible, "test": test})
        coords.append(o.space.normalise([r["options"]])[0].tolist())
    assert any(r["feasible"] for r in rows) and not all(r["feasible"] for r in rows)
    nb, rob, chosen = ref_recommend(rows, coords, o.neighbours)
    table = res.trials.set_index("trial")
    for i, r in enumerate(rows):
        if i in nb:
            assert table.loc[r["trial"], "neighbourhood"] == pytest.approx(nb[i], rel=1e-12, nan_ok=True)
            assert table.loc[r["trial"], "robust"] == pytest.approx(rob[i], rel=1e-12, nan_ok=True)
        else:
            assert math.isnan(table.loc[r["trial"], "robust"])
    assert res.recommended["trial"] == chosen
    assert table.loc[chosen, "feasible"]


def test_no_feasible_trial_gives_no_recommendation(tmp_path):
    w = nasty_windows(9, 150)
    opts = OptimizeOptions(space=TPSL, trials=6, sampler="random", min_trades=10_000, folds=2)
    res = run_study(w, opts, tmp_path)
    assert res.recommended is None and res.config is None
    assert res.counts["n_infeasible"] == 6 and any("feasible" in n for n in res.notes)
    assert res.pbo is None and res.dsr is None


# ---------------------------------------------------------------------------------------------
# planted optimum, PBO, DSR


def test_planted_optimum_is_recovered(planted_study):
    _, res = planted_study
    rec = res.recommended
    assert 2.5 <= rec["options"]["tp"] <= 3.05
    assert rec["test"] > 0.8  # ~ 0.6 * (tp - 1) - 0.4 * 0.8 with tp near 3
    # the table shows train, test and robust side by side, sorted by robust
    assert list(res.trials.columns[:9]) == [
        "trial",
        "state",
        "feasible",
        "train",
        "test",
        "neighbourhood",
        "robust",
        "train_rank",
        "robust_rank",
    ]
    assert res.trials["robust"].iloc[0] == rec["robust"]


def test_planted_edge_has_pbo_near_zero_and_sane_dsr(planted_study):
    _, res = planted_study
    assert res.pbo["pbo"] < 0.05
    d = res.dsr
    assert 0.0 <= d["dsr"] <= d["psr"] <= 1.0
    assert d["psr"] > 0.999 and d["sr"] > 0.5
    assert d["n_trials"] == res.counts["n_trials"] == 120


def test_dsr_matches_independent_daily_returns(planted_study):
    """DSR recomputed from the engine's per-trade backtests grouped by UTC day, by hand."""
    w, res = planted_study
    study = load(res)
    order = time_order(w, np.flatnonzero(w.status == 0))
    day0 = int(w.alert_ts_ms[order].min()) // 86_400_000
    n_days = int(w.alert_ts_ms[order].max()) // 86_400_000 - day0 + 1
    ts_of = dict(zip(w.alert_id, w.alert_ts_ms, strict=True))

    def daily(cfg):
        tr = backtest(w, cfg, order).trades
        sums, cnts = [0.0] * n_days, [0] * n_days
        for aid, r, reason in zip(tr["alert_id"], tr["ret"], tr["exit_reason"], strict=True):
            if reason == "no_fill":
                continue
            d = int(ts_of[aid]) // 86_400_000 - day0
            sums[d] += r
            cnts[d] += 1
        return [s / c if c else 0.0 for s, c in zip(sums, cnts, strict=True)]

    def sharpe(x):
        m = ref_mean(x)
        sd = math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1))
        return m / sd if sd > 1e-12 * math.sqrt(ref_mean([v * v for v in x])) else 0.0

    trials = study.get_trials(states=(TrialState.COMPLETE,))
    chosen = study.trials[res.recommended["trial"]]
    x = daily(strategy_config(chosen.user_attrs["result"]["options"], NO_COSTS))
    sr = sharpe(x)
    m = ref_mean(x)
    m2 = ref_mean([(v - m) ** 2 for v in x])
    skew = ref_mean([(v - m) ** 3 for v in x]) / m2**1.5
    kurt = ref_mean([(v - m) ** 4 for v in x]) / m2**2
    nd = statistics.NormalDist()
    psr = nd.cdf(sr * math.sqrt(len(x) - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr * sr))
    d = res.dsr
    assert d["n_obs"] == n_days
    assert d["sr"] == pytest.approx(sr, rel=1e-9)
    assert d["skew"] == pytest.approx(skew, rel=1e-9) and d["kurt"] == pytest.approx(kurt, rel=1e-9)
    assert d["psr"] == pytest.approx(psr, rel=1e-9, abs=1e-12)
    # the deflation uses the variance of every completed trial's daily Sharpe (engine returns, one call)
    cfgs = [strategy_config(t.user_attrs["result"]["options"], NO_COSTS) for t in trials]
    ret = trade_returns(w, encode_params(cfgs), order)
    day = [int(ts) // 86_400_000 - day0 for ts in w.alert_ts_ms[order]]
    all_srs = []
    for row in ret:
        sums, cnts = [0.0] * n_days, [0] * n_days
        for d_, r in zip(day, row, strict=True):
            if r == r:
                sums[d_] += r
                cnts[d_] += 1
        all_srs.append(sharpe([s_ / c if c else 0.0 for s_, c in zip(sums, cnts, strict=True)]))
    assert all_srs[[t.number for t in trials].index(chosen.number)] == pytest.approx(sr, rel=1e-12)
    v = statistics.variance(all_srs)
    assert d["sr_trials_var"] == pytest.approx(v, rel=1e-9)
    assert d["sr0"] == pytest.approx(expected_max_sharpe(v, 120), rel=1e-12)


def test_pbo_is_about_one_half_on_pure_noise(tmp_path):
    pbos, dsrs = [], []
    for seed in range(8):
        w = gapwalk_windows(np.random.default_rng(100 + seed))
        opts = OptimizeOptions(
            space=SearchSpace.from_dict(
                {"tp": {"low": 1.05, "high": 3, "log": True}, "sl": {"low": 0.3, "high": 0.95}}
            ),
            trials=30,
            sampler="random",
            seed=seed,
            min_trades=1,
            folds=3,
            settings=NO_COSTS,
        )
        res = run_study(w, opts, tmp_path / str(seed))
        pbos.append(res.pbo["pbo"])
        dsrs.append(res.dsr["dsr"])
    assert 0.3 <= float(np.mean(pbos)) <= 0.7, pbos
    assert all(0.0 <= p <= 1.0 for p in pbos)
    assert float(np.mean(dsrs)) < 0.7, dsrs  # no edge: deflated Sharpe mostly unconvincing


# ---------------------------------------------------------------------------------------------
# persistence: resume, stale trials, interruption, workers, identity


def _orphan(study: optuna.Study, st, owner: dict | None) -> int:
    t = study.ask()
    if owner is not None:
        st.set_trial_user_attr(t._trial_id, "owner", owner)
    return t.number


def test_resume_reaches_exact_total_and_fails_stale_trials(tmp_path):
    w = nasty_windows(11, 200)
    opts = OptimizeOptions(space=TPSL, trials=10, sampler="tpe", seed=0, min_trades=0, folds=2, batch_size=4)
    r1 = run_study(w, opts, tmp_path, study="s")
    assert r1.counts["n_trials"] == 10 and r1.counts["new_trials"] == 10
    opts25 = OptimizeOptions(**{**opts.__dict__, "trials": 25})
    r2 = run_study(w, opts25, tmp_path, study="s")
    assert r2.counts["n_trials"] == 25 and r2.counts["new_trials"] == 15
    assert sorted(t.number for t in load(r2).trials) == list(range(25))

    # a worker that died (its lock file is gone) and one still alive (we hold its lock)
    st = open_storage(tmp_path / "journal.log")
    study = optuna.load_study(study_name="s", storage=st)
    dead = _orphan(
        study,
        st,
        {"host": host_key(), "pid": 999_999, "lock": str(tmp_path / "gone.lock"), "hb": time.time()},
    )
    live_lock = FileLock(tmp_path / "alive.lock")
    live_lock.acquire()
    try:
        live = _orphan(
            study,
            st,
            {"host": host_key(), "pid": os.getpid(), "lock": str(tmp_path / "alive.lock"), "hb": time.time()},
        )
        r3 = run_study(w, OptimizeOptions(**{**opts.__dict__, "trials": 30}), tmp_path, study="s")
        trials = load(r3).trials
        # 30 = completed + running: the stale trial failed and was replaced, the live one counts
        assert len(trials) == 31 and r3.counts["n_trials"] == 31
        assert trials[dead].state == TrialState.FAIL
        assert trials[dead].user_attrs["fail_reason"].startswith("stale")
        assert trials[live].state == TrialState.RUNNING
        assert r3.counts["n_failed"] == 1 and r3.counts["n_running"] == 1 and r3.counts["n_complete"] == 29
    finally:
        live_lock.release()
    # the live worker has died now: its trial is failed and one new trial replaces it
    r4 = run_study(w, OptimizeOptions(**{**opts.__dict__, "trials": 30}), tmp_path, study="s")
    assert load(r4).trials[live].state == TrialState.FAIL
    assert r4.counts["n_trials"] == 32 and r4.counts["n_failed"] == 2 and r4.counts["new_trials"] == 1
    assert r4.counts["n_complete"] == 30


def test_other_machine_trials_go_stale_by_heartbeat():
    now = time.time()
    start = datetime.now() - timedelta(hours=2)

    def frozen(owner):
        return optuna.trial.FrozenTrial(
            number=0,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=start,
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={} if owner is None else {"owner": owner},
            system_attrs={},
            intermediate_values={},
            trial_id=0,
        )

    far = {"host": "other-machine/abc", "pid": 1, "lock": "/nonexistent", "hb": now - 1000}
    assert is_stale(frozen(far), 600, now).startswith("stale: no heartbeat")
    assert is_stale(frozen({**far, "hb": now - 10}), 600, now) is None
    assert is_stale(frozen(None), 600, now) is not None  # no owner: judged by its start time
    assert is_stale(frozen(None), 3 * 3600, now) is None


def test_interrupted_batch_is_failed_and_resume_completes(tmp_path, monkeypatch):
    w = nasty_windows(13, 150)
    opts = OptimizeOptions(space=TPSL, trials=12, sampler="random", min_trades=0, folds=2, batch_size=4)
    real = Evaluator.evaluate
    n = {"calls": 0}

    def flaky(self, configs):
        n["calls"] += 1
        if n["calls"] == 2:
            raise KeyboardInterrupt
        return real(self, configs)

    monkeypatch.setattr(Evaluator, "evaluate", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_study(w, opts, tmp_path, study="i")
    monkeypatch.setattr(Evaluator, "evaluate", real)
    study = optuna.load_study(study_name="i", storage=open_storage(tmp_path / "journal.log"))
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 4 + [TrialState.FAIL] * 4
    assert all(t.user_attrs["fail_reason"] == "interrupted" for t in study.trials[4:])
    res = run_study(w, opts, tmp_path, study="i")
    assert res.counts["n_trials"] == 16 and res.counts["n_failed"] == 4 and res.counts["n_complete"] == 12


def test_two_workers_share_one_study_without_duplicates(tmp_path):
    w = nasty_windows(17, 200)
    opts = OptimizeOptions(
        space=RICH, trials=40, sampler="random", seed=4, min_trades=0, folds=2, batch_size=2, workers=2
    )
    res = run_study(w, opts, tmp_path, study="pool")
    trials = load(res).trials
    assert sorted(t.number for t in trials) == list(range(40))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    pids = {t.user_attrs["owner"]["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 40  # different seeds per worker
    assert res.counts["n_trials"] == 40 and res.recommended is not None
    again = run_study(w, opts, tmp_path, study="pool")
    assert again.counts["n_trials"] == 40 and again.counts["new_trials"] == 0


def test_a_killed_worker_does_not_stop_the_others(tmp_path):
    """SIGKILL one of two worker processes mid-study (default journal storage): the run still ends,
    with the exact total of trials, and notes the worker that died (why ``_run_workers`` keeps its
    own process code: a process pool would abort every pending task on one dead worker)."""
    w = nasty_windows(23, 300)
    opts = OptimizeOptions(
        space=RICH, trials=80, sampler="random", seed=6, min_trades=0, folds=2, batch_size=2, workers=2
    )
    out: dict = {}

    def run() -> None:
        try:
            out["res"] = run_study(w, opts, tmp_path, study="kill")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            out["err"] = exc

    th = threading.Thread(target=run)
    th.start()
    victim, deadline = None, time.monotonic() + 90
    while victim is None and time.monotonic() < deadline and th.is_alive():
        time.sleep(0.1)
        try:
            study = optuna.load_study(study_name="kill", storage=open_storage(tmp_path / "journal.log"))
        except KeyError:
            continue
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        kids = [p for p in mp.active_children() if p.pid is not None]
        if len(done) >= 4 and len(kids) == 2:
            victim = kids[0].pid
            os.kill(victim, signal.SIGKILL)
    th.join(180)
    assert victim is not None, "the study ended before a worker could be killed"
    assert not th.is_alive(), "the study did not finish after a worker was killed"
    if "err" in out:
        raise out["err"]
    res = out["res"]
    assert any("exited without reporting" in n for n in res.notes), res.notes
    trials = load(res).trials
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == 80 and res.counts["n_trials"] == len(trials)
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert {t.user_attrs["owner"]["pid"] for t in done} - {victim}  # the survivor finished the study


def test_reusing_a_study_name_with_other_settings_is_rejected(tmp_path):
    w = nasty_windows(19, 150)
    opts = OptimizeOptions(space=TPSL, trials=4, sampler="random", min_trades=0, folds=2)
    run_study(w, opts, tmp_path, study="same")
    with pytest.raises(ValueError, match="different objective"):
        run_study(w, OptimizeOptions(**{**opts.__dict__, "objective": "sharpe"}), tmp_path, study="same")
    with pytest.raises(ValueError, match="different search space"):
        run_study(w, OptimizeOptions(**{**opts.__dict__, "space": RICH}), tmp_path, study="same")
    with pytest.raises(ValueError, match="different data"):
        run_study(nasty_windows(20, 150), opts, tmp_path, study="same")
    # the default name is derived from the settings: a different objective is simply another study
    a = run_study(w, opts, tmp_path)
    b = run_study(w, OptimizeOptions(**{**opts.__dict__, "objective": "sharpe"}), tmp_path)
    assert a.name != b.name and b.counts["new_trials"] == 4


# ---------------------------------------------------------------------------------------------
# samplers, invalid combinations, exports, options


def test_grid_sampler_covers_the_grid_once_and_caps_the_total(tmp_path):
    space = SearchSpace.from_dict({"tp": {"choices": [2, 3, 4]}, "sl": {"choices": [0.5, 0.7]}})
    w = nasty_windows(21, 150)
    opts = OptimizeOptions(space=space, trials=50, sampler="grid", min_trades=0, folds=2)
    res = run_study(w, opts, tmp_path)
    assert res.target == 6 and res.counts["n_trials"] == 6
    combos = {(t.params["tp"], t.params["sl"]) for t in load(res).trials}
    assert combos == {(a, b) for a in (2, 3, 4) for b in (0.5, 0.7)}
    with pytest.raises(ValueError, match="grid"):
        OptimizeOptions(space=TPSL, sampler="grid")


def test_invalid_combinations_fail_are_replaced_and_reported(tmp_path):
    """--trials N means N completed trials: invalid samples fail with the engine's reason, are
    counted and reported, and new samples replace them."""
    space = SearchSpace.from_dict(
        {"tp": 3.0, "sl": 0.5, "dip": {"choices": [None, 0.2]}, "entry_delay_bars": {"choices": [0, 1]}}
    )
    w = nasty_windows(23, 150)
    res = run_study(
        w, OptimizeOptions(space=space, trials=12, sampler="random", seed=5, min_trades=0, folds=2), tmp_path
    )
    trials = load(res).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and len(done) == 12 and res.counts["n_complete"] == 12
    assert res.counts["n_failed"] == len(failed) and res.counts["n_trials"] == 12 + len(failed)
    assert all(
        t.params["dip"] is not None
        and t.params["entry_delay_bars"] > 0
        and "cannot be combined" in t.user_attrs["fail_reason"]
        for t in failed
    )
    assert not res.notes or all("short" not in n for n in res.notes)


def test_a_space_that_only_fails_stops_and_says_so(tmp_path):
    space = SearchSpace.from_dict({"tp": 3.0, "dip": 0.2, "entry_delay_bars": {"choices": [1, 2]}})
    res = run_study(
        nasty_windows(23, 150),
        OptimizeOptions(space=space, trials=4, sampler="random", seed=2, min_trades=0, folds=2, batch_size=4),
        tmp_path,
    )
    assert res.counts["n_complete"] == 0 and res.counts["n_failed"] == 12  # budget max(4, 10), whole batches
    assert any("short of 4 completed" in n and "cannot be combined" in n for n in res.notes)


def test_long_table_columns_and_config_files(nasty_study, tmp_path):
    _, res = nasty_study
    table = trials_long_table([res])
    base = [
        "trial",
        "fold",
        "split",
        "from_ts",
        "to_ts",
        "n_trades",
        "avg_ret",
        "median_ret",
        "sum_ret",
        "win_rate",
        "sharpe",
        "profit_factor",
        "objective",
    ]
    assert table.column_names == base + [f"p_{k}" for k in RICH.names]
    assert table.num_rows == res.counts["n_complete"] * len(res.folds) * 2
    df = table.to_pandas()
    assert set(df["split"]) == {"train", "test"}
    f0 = res.folds[0]
    first = df[(df.fold == 0) & (df.split == "test")].iloc[0]
    assert (
        first["from_ts"].value // 1_000_000 == f0.test_from
        and first["to_ts"].value // 1_000_000 == f0.test_to
    )
    assert str(table.schema.field("p_entry_delay_bars").type) == "int64"
    assert str(table.schema.field("from_ts").type) == "timestamp[ms, tz=UTC]"
    cfg = res.config
    for suffix in (".json", ".yaml", ".toml"):
        p = write_config(cfg, tmp_path / f"rec{suffix}", {"study": res.name})
        assert Strategy.from_file(p) == cfg
    with pytest.raises(ValueError, match="end in"):
        write_config(cfg, tmp_path / "rec.txt")


def test_options_are_validated():
    for bad, match in (
        ({"objective": "cagr"}, "objective"),
        ({"sampler": "cmaes"}, "sampler"),
        ({"folds": 0}, "out-of-sample"),
        ({"train_days": 5.0}, "both"),
        ({"pbo_blocks": 7}, "even"),
        ({"trials": 0}, "trials"),
        ({"max_dd": -1.0}, "max_dd"),
    ):
        with pytest.raises(ValueError, match=match):
            OptimizeOptions(**bad)
    with pytest.raises(ValueError, match="intrabar"):
        EngineSettings(intrabar="random")
    with pytest.raises(ValueError, match="give tp or tp_ladder, not both"):
        strategy_config({"tp": 2.0, "tp_ladder": "2:1"}, EngineSettings())
    # dependents of a rule that is off are dropped, not an error
    assert strategy_config({"tp": 2.0, "trail_activation": 2.0}, EngineSettings()).trail is None
