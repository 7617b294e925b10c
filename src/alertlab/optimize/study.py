"""The study runner: Optuna search over exit strategies, walk-forward scoring, honest selection.

Flow of :func:`run_study` (on one set of windows):

1. Alerts with a window, in alert-time order, are cut into walk-forward folds
   (:func:`~alertlab.optimize.folds.make_folds`, embargo = the window horizon, so no train trade is
   still open when its test span starts).
2. A persistent Optuna study (see :mod:`alertlab.optimize.storage`) is created or resumed. Its
   identity — data fingerprint, search space, objective, folds, costs, constraints — is stored as
   the study user attribute ``alertlab``; reusing a name with a different identity is an error.
3. Workers ask trials in batches under the study's ask lock (so ``trials`` is the exact final
   total, resumes included), sample them from the space, evaluate the whole batch with **one**
   engine call (:class:`~alertlab.optimize.evaluate.Evaluator`) and store each trial's fold metrics
   as its user attribute ``result``. The value told to Optuna is the train score (``-inf`` when it
   is not finite); infeasible trials are told too, and TPE sees the constraints.
4. Analysis over the whole study: per-day returns of every completed trial (cached from the search,
   else recomputed through the engine in batches), neighbourhood stability, the recommendation,
   the Deflated Sharpe Ratio and PBO.

**Recommendation.** Among feasible trials, the highest **robust score**
``robust = (test + neighbourhood) / 2``: ``test`` is the trial's out-of-sample score (mean test
objective over the folds) and ``neighbourhood`` the median test score of its ``k`` nearest feasible
trials in normalised parameter space (itself included,
:func:`~alertlab.optimize.stats.neighbourhood_stability`). A lonely spike is pulled down by its
neighbours; a plateau keeps its value. Ties: higher test score, then the earlier trial. The best
*training* score is shown beside it, never used to choose.

**Overfitting statistics** (over all alerts of the study, per UTC day of the alert, equal-weight
mean of that day's trades, 0 on days without trades):

* ``dsr``: Deflated Sharpe Ratio of the recommended trial's daily returns, deflated for the number
  of trials of the study (failed ones included) and the variance of the completed trials' daily
  Sharpe ratios;
* ``pbo``: Probability of Backtest Overfitting by CSCV over the feasible trials' daily returns
  (``pbo_blocks`` blocks; metric ``sharpe`` for the sharpe objective, ``mean`` otherwise).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from alertlab.engine import StrategyConfig
from alertlab.optimize.evaluate import (
    FOLD_METRICS,
    LONG_METRICS,
    OBJECTIVES,
    SPLITS,
    EngineSettings,
    Evaluator,
    effective_options,
    strategy_config,
    time_order,
)
from alertlab.optimize.folds import Fold, make_folds
from alertlab.optimize.space import DEFAULT_SPACE, OPTION_NAMES, SearchSpace
from alertlab.optimize.stats import dsr_from_returns, neighbourhood_stability, pbo_cscv, sharpe_ratio
from alertlab.optimize.storage import (
    FAIL_ATTR,
    HAVE_FLOCK,
    OWNER_ATTR,
    AskLock,
    Heartbeat,
    WorkerIdentity,
    canonical_json,
    describe_storage,
    fail_stale_trials,
    float_of,
    open_storage,
    quiet_optuna,
    to_jsonable,
    trials_used,
)
from alertlab.windows.model import Windows

SAMPLERS = ("random", "tpe", "grid")
IDENTITY_ATTR = "alertlab"
RESULT_ATTR = "result"
STUDY_FORMAT = 1
CONSTRAINT_KEY = "violation"
CLUSTER_WORKERS = ("--cluster evaluates trial batches on the cluster from one driver process: use --workers 1 "
                   "(drivers on other machines can share the study through a server --storage)")


@dataclass(frozen=True)
class OptimizeOptions:
    """Everything a study is configured with, validated on construction.

    ``trials``: the total number of trials the study ends with (resumes included; a grid is capped
    at its size; a trial lost with a killed worker is failed and queued again, and only its rerun
    counts, see :func:`~alertlab.optimize.storage.fail_stale_trials`). ``batch_size``: trials per engine call (None: 32 for TPE, else up to 256 limited
    to ~2M (trial × alert) cells). ``folds``/``anchored``/``train_days``/``test_days``: see
    :func:`~alertlab.optimize.folds.make_folds` (at least one out-of-sample fold is required).
    ``min_trades``/``max_dd``: feasibility on every training fold. ``neighbours``: k of the
    neighbourhood stability. ``stale_after``: seconds without heartbeat after which a RUNNING trial
    of another machine is failed.
    """

    space: SearchSpace = DEFAULT_SPACE
    objective: str = "avg_ret"
    sampler: str = "tpe"
    trials: int = 200
    seed: int | None = 0
    batch_size: int | None = None
    folds: int = 4
    anchored: bool = False
    train_days: float | None = None
    test_days: float | None = None
    min_trades: int = 20
    max_dd: float | None = None
    settings: EngineSettings = field(default_factory=EngineSettings)
    pbo_blocks: int = 16
    neighbours: int = 5
    workers: int = 1
    stale_after: float = 600.0

    def __post_init__(self) -> None:
        if not isinstance(self.space, SearchSpace):
            raise ValueError("space must be a SearchSpace (see alertlab.optimize.space.load_space)")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if int(self.trials) != self.trials or self.trials < 1:
            raise ValueError(f"trials must be an integer >= 1, got {self.trials!r}")
        if self.batch_size is not None and (int(self.batch_size) != self.batch_size or self.batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if int(self.folds) != self.folds or self.folds < 0:
            raise ValueError(f"folds must be an integer >= 0, got {self.folds!r}")
        if self.folds == 0 and self.train_days is None:
            raise ValueError(
                "the optimizer needs out-of-sample folds: use --folds >= 1 or --train-days/--test-days"
            )
        if (self.train_days is None) != (self.test_days is None):
            raise ValueError("give both --train-days and --test-days, or neither")
        if int(self.min_trades) != self.min_trades or self.min_trades < 0:
            raise ValueError(f"min_trades must be an integer >= 0, got {self.min_trades!r}")
        if self.max_dd is not None and not (math.isfinite(self.max_dd) and self.max_dd >= 0):
            raise ValueError(f"max_dd must be >= 0 (stakes), got {self.max_dd!r}")
        if int(self.pbo_blocks) != self.pbo_blocks or self.pbo_blocks < 2 or self.pbo_blocks % 2:
            raise ValueError(f"pbo_blocks must be an even integer >= 2, got {self.pbo_blocks!r}")
        if int(self.neighbours) != self.neighbours or self.neighbours < 1:
            raise ValueError(f"neighbours must be an integer >= 1, got {self.neighbours!r}")
        if int(self.workers) != self.workers or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        if self.workers > 1 and not HAVE_FLOCK:
            raise ValueError("several workers need POSIX file locks (fcntl), not available on this system")
        if not (self.stale_after > 0):
            raise ValueError(f"stale_after must be > 0 seconds, got {self.stale_after!r}")
        if self.sampler == "grid":
            self.grid_size()  # raises for continuous ranges

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.space.grid().values())

    def target(self) -> int:
        """Trials the study ends with: ``trials``, capped at the grid size for the grid sampler."""
        return min(int(self.trials), self.grid_size()) if self.sampler == "grid" else int(self.trials)

    def batch_for(self, n_alerts: int) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        if self.sampler == "tpe":
            return 32
        return int(min(256, max(16, 2_000_000 // max(n_alerts, 1))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space.to_dict(),
            "objective": self.objective,
            "sampler": self.sampler,
            "trials": int(self.trials),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "folds": int(self.folds),
            "anchored": bool(self.anchored),
            "train_days": self.train_days,
            "test_days": self.test_days,
            "min_trades": int(self.min_trades),
            "max_dd": self.max_dd,
            **self.settings.as_dict(),
            "pbo_blocks": int(self.pbo_blocks),
            "neighbours": int(self.neighbours),
            "workers": int(self.workers),
            "stale_after": float(self.stale_after),
        }


def study_identity(
    options: OptimizeOptions, data_fingerprint: str, embargo_s: int, caller: str | None = None
) -> dict[str, Any]:
    """What must match for two runs to share a study (stored as the study's ``alertlab`` attribute)."""
    return to_jsonable(
        {
            "format": STUDY_FORMAT,
            "data": data_fingerprint,
            "caller": caller,
            "space": options.space.to_dict(),
            "objective": options.objective,
            "folds": {
                "k": int(options.folds),
                "anchored": bool(options.anchored),
                "train_days": options.train_days,
                "test_days": options.test_days,
                "embargo_s": int(embargo_s),
            },
            "engine": options.settings.as_dict(),
            "constraints": {"min_trades": int(options.min_trades), "max_dd": options.max_dd},
        }
    )


def default_study_name(identity: dict[str, Any]) -> str:
    """``opt-<hash>`` of a study identity (caller excluded): the same command resumes the same study."""
    base = {k: v for k, v in identity.items() if k != "caller"}
    return "opt-" + hashlib.blake2b(canonical_json(base).encode(), digest_size=5).hexdigest()


def data_fingerprint(w: Windows) -> str:
    """The windows' cache fingerprint, or (for windows built in memory) a digest of their contents."""
    if w.fingerprint:
        return w.fingerprint
    h = hashlib.blake2b(digest_size=12)
    h.update("\x1f".join(map(str, w.alert_id)).encode())
    for a in (w.alert_ts_ms, w.status, w.entry_price, w.offsets, w.ts, w.open, w.high, w.low, w.close):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(f"{w.interval_s}/{w.horizon_s}".encode())
    return "mem-" + h.hexdigest()


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if canonical_json(old.get(k)) != canonical_json(new.get(k))]


_WHAT = {
    "data": "data (alerts, candles or window rules)",
    "space": "search space",
    "objective": "objective",
    "folds": "folds",
    "engine": "fees/slippage/intrabar",
    "constraints": "constraints (--min-trades/--max-dd)",
    "caller": "caller",
    "format": "study format",
}


def open_study(storage: str, name: str, identity: dict[str, Any]) -> tuple[optuna.Study, Any]:
    """Create or load a study and check it was made for the same identity (else ``ValueError``)."""
    st = open_storage(storage)
    with quiet_optuna():
        study = optuna.create_study(study_name=name, storage=st, direction="maximize", load_if_exists=True)
    old = study.user_attrs.get(IDENTITY_ATTR)
    if old is None:
        study.set_user_attr(IDENTITY_ATTR, identity)
    else:
        diff = _differences(old, identity)
        if diff:
            what = ", ".join(_WHAT.get(k, k) for k in diff)
            raise ValueError(
                f"study {name!r} in {describe_storage(storage)} was created with a different {what}; "
                f"rerun with the original settings to resume it, or use another --study name"
            )
    return study, st


# ---------------------------------------------------------------------------------------------
# samplers


class _GridSampler(optuna.samplers.GridSampler):
    """GridSampler without its ``study.stop()`` (only valid inside ``optimize``): the runner caps the
    total at the grid size itself."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def make_sampler(name: str, space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of a study: random, TPE (multivariate, grouped for conditional options,
    constant liar for pending trials; it reads the constraints each trial sets) or grid (the space's
    ``grid()``)."""
    with quiet_optuna():
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
        if name == "grid":
            return _GridSampler(space.grid(), seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


def _worker_seed(seed: int | None, worker: int, n_existing: int) -> int | None:
    """Distinct, reproducible seeds per worker and per resume point (a resumed run does not replay)."""
    if seed is None:
        return None
    h = hashlib.blake2b(f"{seed}/{worker}/{n_existing}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "big")


# ---------------------------------------------------------------------------------------------
# the search loop (one worker)


@dataclass
class _Job:
    """Everything one worker needs (picklable, for worker processes)."""

    storage: str
    study_name: str
    lock_dir: str
    workers_dir: str
    windows: Windows | None
    windows_path: str | None
    fingerprint: str
    order: np.ndarray
    folds: list[Fold]
    options: OptimizeOptions
    target: int
    batch: int
    seed: int | None
    worker: int


def _evaluator(job: _Job, w: Windows) -> Evaluator:
    o = job.options
    return Evaluator(w, job.order, job.folds, o.objective, o.settings, o.min_trades, o.max_dd)


def _windows_of(job: _Job) -> Windows:
    if job.windows is not None:
        return job.windows
    from alertlab.windows.cache import load_entry

    return load_entry(Path(job.windows_path), job.fingerprint)


ProgressFn = Callable[[int, int, float], None]
"""Called after each batch with (trials in the study, trials evaluated by this worker, best train)."""


def _fail(study: optuna.Study, storage, trial: optuna.Trial, reason: str) -> None:
    try:
        storage.set_trial_user_attr(trial._trial_id, FAIL_ATTR, reason)
        study.tell(trial, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):  # already finished (failed as stale elsewhere)
        pass


def _search(job: _Job, evaluator: Evaluator, on_batch: ProgressFn | None = None) -> dict[int, np.ndarray]:
    """Run one worker until the study holds ``job.target`` trials; returns its trials' daily returns."""
    o = job.options
    study_st = open_storage(job.storage)
    daily: dict[int, np.ndarray] = {}
    with quiet_optuna():
        probe = optuna.load_study(study_name=job.study_name, storage=study_st)
        n0 = len(probe.get_trials(deepcopy=False))
        # the grid sampler maps trial number n to point n of its seeded shuffle: every worker must
        # use the same shuffle (the study seed), or two workers would evaluate the same point
        seed = job.seed if o.sampler == "grid" else _worker_seed(job.seed, job.worker, n0)
        sampler = make_sampler(o.sampler, o.space, seed)
        study = optuna.load_study(study_name=job.study_name, storage=study_st, sampler=sampler)
    lock = AskLock(Path(job.lock_dir), job.study_name, job.storage)
    hb_every = min(30.0, o.stale_after / 4)
    done = 0
    best = -math.inf
    try:
        with WorkerIdentity(Path(job.workers_dir)) as me, quiet_optuna():
            while True:
                trials: list[optuna.Trial] = []
                told: set[int] = set()
                try:
                    with lock:
                        fail_stale_trials(study, study_st, o.stale_after)
                        used, waiting = trials_used(study)  # queued retries of lost trials run first
                        k = min(job.batch, job.target - used + waiting)
                        if k <= 0:
                            break
                        for _ in range(k):
                            t = study.ask()
                            trials.append(t)
                            study_st.set_trial_user_attr(t._trial_id, OWNER_ATTR, me.owner())
                    with Heartbeat(study_st, me, [t._trial_id for t in trials], hb_every):
                        opts, cfgs, bad = [], [], {}
                        for t in trials:
                            eff = effective_options(o.space.suggest(t))
                            try:
                                cfgs.append(strategy_config(eff, o.settings))
                                opts.append((t, eff))
                            except ValueError as exc:
                                bad[t.number] = str(exc)
                        ev = evaluator.evaluate(cfgs)
                    for t in trials:
                        if t.number in bad:
                            _fail(study, study_st, t, bad[t.number])
                            told.add(t.number)
                    for i, (t, eff) in enumerate(opts):
                        res = _result_attr(ev, i, eff)
                        study_st.set_trial_user_attr(t._trial_id, RESULT_ATTR, res)
                        # one value for the sampler (sum of violations, 0 = feasible); the parts
                        # are in the result attribute
                        t.set_constraint(CONSTRAINT_KEY, float(np.maximum(ev.constraints[i], 0.0).sum()))
                        value = float(ev.train[i]) if np.isfinite(ev.train[i]) else -math.inf
                        # a trial failed as stale by another machine meanwhile stays failed
                        with contextlib.suppress(UpdateFinishedTrialError, ValueError):
                            study.tell(t, value)
                        told.add(t.number)
                        daily[t.number] = ev.daily[:, i].copy()
                        if ev.feasible[i] and value > best:
                            best = value
                except BaseException as exc:
                    why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc!r}"[:500]
                    for t in trials:
                        if t.number not in told:
                            _fail(study, study_st, t, why)
                    raise
                done += len(trials)
                if on_batch is not None:
                    on_batch(len(study.get_trials(deepcopy=False)), done, best)
    finally:
        lock.close()
    return daily


def _result_attr(ev, i: int, eff: dict[str, Any]) -> dict[str, Any]:
    folds = {s: {m: ev.metrics[s][m][i].tolist() for m in (*FOLD_METRICS, "objective")} for s in SPLITS}
    return to_jsonable(
        {
            "options": eff,
            "train": float(ev.train[i]),
            "test": float(ev.test[i]),
            "feasible": bool(ev.feasible[i]),
            "violations": ev.violations[i],
            "constraints": ev.constraints[i].tolist(),
            "folds": folds,
        }
    )


def _worker_entry(job: _Job, out: Any, start: Any) -> None:
    """Body of a worker process: load, wait for the others (a fair start), search, then send back
    ``("ok", worker, daily)`` or an error."""
    if "ALERTLAB_THREADS" not in os.environ:
        os.environ["ALERTLAB_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, job.options.workers)))
    try:
        evaluator = _evaluator(job, _windows_of(job))
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=120)
        daily = _search(job, evaluator)
        out.put(("ok", job.worker, daily))
    except KeyboardInterrupt:
        out.put(("interrupted", job.worker, None))
    except BaseException:  # noqa: BLE001 - reported to the parent with its traceback
        out.put(("error", job.worker, traceback.format_exc()))


def _run_workers(
    jobs: list[_Job], study: optuna.Study, on_poll: Callable[[int], None] | None
) -> tuple[dict[int, np.ndarray], list[str]]:
    """Run jobs in spawned processes, poll the study for progress, merge their daily returns.

    A worker that raises makes the run fail (its traceback is reported); a worker killed from
    outside only leaves a note — its RUNNING trials are failed as stale by the others, which still
    bring the study to its exact total. On Ctrl-C the workers fail their RUNNING trials and exit.
    """
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(len(jobs))
    procs = [ctx.Process(target=_worker_entry, args=(j, out, start), daemon=True) for j in jobs]
    for p in procs:
        p.start()
    daily: dict[int, np.ndarray] = {}
    errors: list[str] = []
    reported: set[int] = set()
    try:
        while len(reported) < len(procs):
            try:
                status, worker, payload = out.get(timeout=0.5)
            except queue_mod.Empty:
                if on_poll is not None:
                    on_poll(len(study.get_trials(deepcopy=False)))
                if not any(p.is_alive() for p in procs) and out.empty():
                    break
                continue
            reported.add(worker)
            if status == "ok":
                daily.update(payload)
            elif status == "interrupted":
                raise KeyboardInterrupt
            else:
                errors.append(f"worker {worker} failed:\n{payload}")
        for p in procs:
            p.join()
    except BaseException:
        # workers in the terminal's process group got the Ctrl-C too: give them time to fail their
        # trials cleanly before interrupting them ourselves
        deadline = time.monotonic() + 5.0
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=15)
            if p.is_alive():
                p.terminate()
        raise
    if errors:
        raise RuntimeError("; ".join(errors))
    notes = [
        f"worker {k} exited without reporting (exit code {p.exitcode}); its running trials were failed"
        for k, p in enumerate(procs)
        if k not in reported
    ]
    if on_poll is not None:
        on_poll(len(study.get_trials(deepcopy=False)))
    return daily, notes


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class StudyResult:
    """One finished (or resumed) study.

    ``trials``: one row per trial of the study (every state): ``trial, state, feasible, train, test,
    neighbourhood, robust, train_rank, robust_rank, n_trades_train, n_trades_test, note`` and
    ``p_<option>`` columns. ``fold_metrics``: long table, one row per (complete trial, fold, split)
    (see :func:`alertlab.optimize.report.trials_long_table`). ``recommended``: the chosen trial (or
    None when no trial is feasible) and ``config`` its :class:`StrategyConfig`.
    """

    name: str
    storage: str
    caller: str | None
    identity: dict[str, Any]
    options: OptimizeOptions
    folds: list[Fold]
    n_alerts: int
    n_days: int
    target: int
    counts: dict[str, int]
    trials: pd.DataFrame
    fold_metrics: pd.DataFrame
    recommended: dict[str, Any] | None
    config: StrategyConfig | None
    dsr: dict[str, Any] | None
    pbo: dict[str, Any] | None
    notes: list[str]
    timings: dict[str, float]

    def fold_spans(self) -> list[dict[str, Any]]:
        """Fold spans (epoch ms, half-open) and alert counts, plus ISO dates for reading."""
        out = []
        for f in self.folds:
            d = f.as_dict()
            for k in ("train_from", "train_to", "test_from", "test_to"):
                d[k + "_iso"] = pd.Timestamp(d[k], unit="ms", tz="UTC").isoformat()
            out.append(d)
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: study, counts, folds, recommendation, DSR and PBO."""
        return {
            "study": self.name,
            "storage": self.storage,
            "caller": self.caller,
            "objective": self.options.objective,
            "sampler": self.options.sampler,
            "target_trials": self.target,
            "n_alerts": self.n_alerts,
            "n_days": self.n_days,
            **self.counts,
            "folds": self.fold_spans(),
            "recommended": self.recommended,
            "dsr": self.dsr,
            "pbo": self.pbo,
            "notes": self.notes,
            "timings": self.timings,
        }


def _rows(trials: list[optuna.trial.FrozenTrial]) -> tuple[list[dict], list[dict]]:
    """Complete trials with results (``res`` decoded) and one display row per trial."""
    done, rows = [], []
    for t in trials:
        res = t.user_attrs.get(RESULT_ATTR)
        row = {"trial": t.number, "state": t.state.name.lower()}
        if t.state == TrialState.COMPLETE and isinstance(res, dict):
            done.append({"number": t.number, "res": res})
        elif t.state == TrialState.FAIL:
            row["note"] = str(t.user_attrs.get(FAIL_ATTR, "failed"))
        rows.append(row)
    return done, rows


def _analyse(
    study: optuna.Study,
    job: _Job,
    evaluator: Evaluator,
    daily_cache: dict[int, np.ndarray],
    caller: str | None,
    identity: dict,
    new_trials: int,
    timings: dict,
) -> StudyResult:
    o = job.options
    space = o.space
    trials = study.get_trials(deepcopy=False)
    done, rows = _rows(trials)
    n = len(done)
    notes: list[str] = []
    opts = [{k: d["res"]["options"].get(k) for k in OPTION_NAMES} for d in done]
    train = np.array([float_of(d["res"]["train"]) for d in done])
    test = np.array([float_of(d["res"]["test"]) for d in done])
    feasible = np.array([bool(d["res"]["feasible"]) for d in done], dtype=bool)
    numbers = np.array([d["number"] for d in done], dtype=np.int64)

    # daily returns of every completed trial: cached from the search, the rest through the engine
    daily = np.zeros((evaluator.n_days, n))
    missing = [i for i, d in enumerate(done) if d["number"] not in daily_cache]
    for i, d in enumerate(done):
        if d["number"] in daily_cache:
            daily[:, i] = daily_cache[d["number"]]
    for lo in range(0, len(missing), job.batch):
        part = missing[lo : lo + job.batch]
        cfgs = [strategy_config(opts[i], o.settings) for i in part]
        daily[:, part] = evaluator.daily(cfgs)

    nbhd = np.full(n, np.nan)
    robust = np.full(n, np.nan)
    fi = np.flatnonzero(feasible)
    if fi.size:
        norm = space.normalise([opts[i] for i in fi])
        nbhd[fi] = neighbourhood_stability(norm, test[fi], k=o.neighbours)
        robust[fi] = (test[fi] + nbhd[fi]) / 2.0
    ok = np.flatnonzero(feasible & np.isfinite(robust))
    chosen = None
    if ok.size:
        order = np.lexsort((numbers[ok], -test[ok], -robust[ok]))
        chosen = int(ok[order[0]])
    elif n:
        notes.append(
            "no feasible trial with a finite test score: relax --min-trades/--max-dd or check the data"
        )

    train_rank = _rank(train, feasible)
    robust_rank = _rank(robust, feasible)

    dsr = pbo = None
    if chosen is not None:
        if evaluator.n_days >= 2:
            try:
                d = dsr_from_returns(daily[:, chosen], sharpe_ratio(daily, axis=0), n_trials=len(trials))
                dsr = {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in d.items()}
            except ValueError as exc:
                notes.append(f"DSR not computed: {exc}")
        else:
            notes.append("DSR needs at least 2 days of alerts")
    if fi.size >= 2 and evaluator.n_days >= o.pbo_blocks:
        metric = "sharpe" if o.objective == "sharpe" else "mean"
        p = pbo_cscv(daily[:, fi], n_blocks=o.pbo_blocks, metric=metric)
        pbo = {
            "pbo": p["pbo"],
            "metric": metric,
            "n_blocks": p["n_blocks"],
            "n_combinations": p["n_combinations"],
            "n_trials": int(fi.size),
            "n_days": int(evaluator.n_days),
            "slope": p["slope"],
            "intercept": p["intercept"],
            "prob_loss": p["prob_loss"],
            "logit_median": float(np.median(p["logits"])),
        }
    elif fi.size < 2:
        notes.append("PBO needs at least 2 feasible trials")
    else:
        notes.append(
            f"PBO needs at least --pbo-blocks={o.pbo_blocks} days of alerts, the data has {evaluator.n_days}"
        )

    # the per-trial table
    by_number = {r["trial"]: r for r in rows}
    for i, d in enumerate(done):
        res = d["res"]
        ntr = res["folds"]["train"]["n_trades"]
        nte = res["folds"]["test"]["n_trades"]
        by_number[d["number"]].update(
            feasible=bool(feasible[i]),
            train=train[i],
            test=test[i],
            neighbourhood=nbhd[i],
            robust=robust[i],
            train_rank=train_rank[i],
            robust_rank=robust_rank[i],
            n_trades_train=int(sum(ntr)),
            n_trades_test=int(sum(nte)),
            note="; ".join(res.get("violations") or []),
            **{f"p_{k}": opts[i][k] for k in space.names},
        )
    table = pd.DataFrame(rows)
    cols = [
        "trial",
        "state",
        "feasible",
        "train",
        "test",
        "neighbourhood",
        "robust",
        "train_rank",
        "robust_rank",
        "n_trades_train",
        "n_trades_test",
        *[f"p_{k}" for k in space.names],
        "note",
    ]
    for c in cols:
        if c not in table.columns:
            table[c] = np.nan if c not in ("state", "note") else ""
    table = table[cols]
    table["note"] = table["note"].fillna("")
    table = table.sort_values(
        ["robust", "test", "trial"], ascending=[False, False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)

    fold_metrics = _long_rows(done, job.folds, opts, space.names)
    recommended = cfg = None
    if chosen is not None:
        cfg = strategy_config(opts[chosen], o.settings)
        r = done[chosen]["res"]
        best_train = int(np.nanargmax(np.where(feasible, train, -np.inf))) if fi.size else chosen
        recommended = {
            "trial": int(numbers[chosen]),
            "options": {k: v for k, v in opts[chosen].items() if v is not None},
            "config": cfg.model_dump(exclude_none=True),
            "train": train[chosen],
            "test": test[chosen],
            "neighbourhood": nbhd[chosen],
            "robust": robust[chosen],
            "train_rank": int(train_rank[chosen]),
            "folds": {
                s: {
                    "n_trades": list(r["folds"][s]["n_trades"]),
                    "objective": [float_of(x) for x in r["folds"][s]["objective"]],
                }
                for s in SPLITS
            },
            "best_train_trial": {
                "trial": int(numbers[best_train]),
                "train": train[best_train],
                "test": test[best_train],
                "robust": robust[best_train],
            },
        }
    states = [t.state for t in trials]
    counts = {
        "n_trials": len(trials),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_failed": states.count(TrialState.FAIL),
        "n_running": states.count(TrialState.RUNNING),
        "n_feasible": int(feasible.sum()),
        "n_infeasible": int(n - feasible.sum()),
        "new_trials": int(new_trials),
    }
    return StudyResult(
        name=job.study_name,
        storage=describe_storage(job.storage),
        caller=caller,
        identity=identity,
        options=o,
        folds=job.folds,
        n_alerts=int(job.order.size),
        n_days=int(evaluator.n_days),
        target=job.target,
        counts=counts,
        trials=table,
        fold_metrics=fold_metrics,
        recommended=to_float_dict(recommended),
        config=cfg,
        dsr=dsr,
        pbo=pbo,
        notes=notes,
        timings=timings,
    )


def to_float_dict(d: Any) -> Any:
    """numpy scalars → Python numbers, recursively (for JSON and equality in tests)."""
    if isinstance(d, dict):
        return {k: to_float_dict(v) for k, v in d.items()}
    if isinstance(d, list):
        return [to_float_dict(v) for v in d]
    if isinstance(d, np.generic):
        return d.item()
    return d


def _rank(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1 = best among ``mask`` with a finite value; 0 elsewhere."""
    out = np.zeros(x.size, dtype=np.int64)
    idx = np.flatnonzero(mask & np.isfinite(x))
    order = idx[np.argsort(-x[idx], kind="stable")]
    out[order] = np.arange(1, order.size + 1)
    return out


def _long_rows(done: list[dict], folds: list[Fold], opts: list[dict], names: list[str]) -> pd.DataFrame:
    """One row per (complete trial, fold, split): spans, fold metrics, objective, parameters."""
    recs = []
    for i, d in enumerate(done):
        f = d["res"]["folds"]
        for j, fold in enumerate(folds):
            for split in SPLITS:
                lo, hi = (
                    (fold.train_from, fold.train_to) if split == "train" else (fold.test_from, fold.test_to)
                )
                m = f[split]
                rec = {
                    "trial": d["number"],
                    "fold": j,
                    "split": split,
                    "from_ts": lo,
                    "to_ts": hi,
                    "n_trades": int(m["n_trades"][j]),
                }
                for key in LONG_METRICS[1:]:
                    rec[key] = float_of(m[key][j])
                for k in names:
                    rec[f"p_{k}"] = opts[i][k]
                recs.append(rec)
    cols = ["trial", "fold", "split", "from_ts", "to_ts", *LONG_METRICS, *[f"p_{k}" for k in names]]
    return pd.DataFrame(recs, columns=cols)


# ---------------------------------------------------------------------------------------------
# public entry point


def run_study(
    w: Windows,
    options: OptimizeOptions,
    study_dir: str | Path,
    *,
    alert_idx: np.ndarray | None = None,
    study: str | None = None,
    storage: str | None = None,
    caller: str | None = None,
    windows_path: str | Path | None = None,
    progress: bool = False,
    on_batch: ProgressFn | None = None,
    make_evaluator: Callable[..., Evaluator] | None = None,
) -> StudyResult:
    """Run (or resume) one study on the windows ``w`` and analyse it.

    ``alert_idx``: the alerts to use (default all); only alerts with a window (status ok) take part.
    ``study_dir``: where the default journal storage, locks and worker files live. ``study``: the
    study name (default ``opt-<hash of its identity>``, so the same command resumes the same
    study). ``storage``: a SQLAlchemy URL or a journal file (default ``<study_dir>/journal.log``).
    ``windows_path``: the path-cache entry ``w`` was loaded from; worker processes map it instead of
    receiving a copy. ``progress``: a rich progress bar; ``on_batch(total, new, best_train)``: called
    after each batch (one worker) or each progress poll (several workers). ``make_evaluator``: builds
    the evaluator instead of :class:`Evaluator` (same arguments), e.g. one whose engine passes run on
    a Dask cluster (:mod:`alertlab.distributed`); needs ``workers == 1``.
    """
    if make_evaluator is not None and options.workers > 1:
        raise ValueError(CLUSTER_WORKERS)
    t0 = time.perf_counter()
    study_dir = Path(study_dir)
    idx = np.arange(w.n, dtype=np.int64) if alert_idx is None else np.asarray(alert_idx, dtype=np.int64)
    idx = idx[np.asarray(w.status)[idx] == 0]
    if idx.size == 0:
        raise ValueError("no alert with a window (status ok) to optimise on")
    order = time_order(w, idx)
    folds = make_folds(
        np.asarray(w.alert_ts_ms, dtype=np.int64)[order],
        k=options.folds or None,
        train_days=options.train_days,
        test_days=options.test_days,
        anchored=options.anchored,
        embargo_s=int(w.horizon_s),
    )
    if any(f.n_test == 0 for f in folds):
        raise ValueError("every fold needs test alerts")
    fp = data_fingerprint(w)
    if alert_idx is not None:
        fp = fp + "/" + hashlib.blake2b(np.ascontiguousarray(order).tobytes(), digest_size=6).hexdigest()
    identity = study_identity(options, fp, int(w.horizon_s), caller)
    name = study or default_study_name(identity)
    if caller is not None:
        name = f"{name}@{caller}"
    storage = storage or str(study_dir / "journal.log")
    target = options.target()
    opened, st = open_study(storage, name, identity)
    n_alerts = int(order.size)
    job = _Job(
        storage=storage,
        study_name=name,
        lock_dir=str(study_dir / "locks"),
        workers_dir=str(study_dir / "workers"),
        windows=None,
        windows_path=None,
        fingerprint=w.fingerprint,
        order=order,
        folds=folds,
        options=options,
        target=target,
        batch=options.batch_for(n_alerts),
        seed=options.seed,
        worker=0,
    )
    evaluator = (make_evaluator or Evaluator)(
        w, order, folds, options.objective, options.settings, options.min_trades, options.max_dd
    )
    n_before = len(opened.get_trials(deepcopy=False))
    timings = {"setup": time.perf_counter() - t0}

    from alertlab.util.progress import bar

    t1 = time.perf_counter()
    label = f"optimize {name}"
    with bar(label, target, progress) as pb:
        pb.advance(min(n_before, target))
        state = {"seen": min(n_before, target), "best": -math.inf}

        def show(total: int, new: int, best: float) -> None:
            total = min(total, target)
            pb.advance(total - state["seen"])
            state["seen"] = total
            state["best"] = max(state["best"], best)
            rate = new / max(time.perf_counter() - t1, 1e-9)
            b = f"{state['best']:.4g}" if math.isfinite(state["best"]) else "–"
            pb.update(description=f"{label} · best train {b} · {rate:.1f} trials/s")
            if on_batch is not None:
                on_batch(total, new, best)

        worker_notes: list[str] = []
        if options.workers == 1:
            daily = _search(job, evaluator, show)
        else:
            jobs = []
            for k in range(options.workers):
                jobs.append(
                    _Job(
                        **{
                            **job.__dict__,
                            "worker": k,
                            "windows": None if windows_path else w,
                            "windows_path": str(windows_path) if windows_path else None,
                        }
                    )
                )

            def poll(total: int) -> None:
                done_now = len([t for t in opened.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))])
                vals = [
                    t.value
                    for t in opened.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.value is not None and (t.user_attrs.get(RESULT_ATTR) or {}).get("feasible")
                ]
                show(total, max(0, done_now - n_before), max(vals) if vals else -math.inf)

            daily, worker_notes = _run_workers(jobs, opened, poll)
    timings["search"] = time.perf_counter() - t1
    new = len(opened.get_trials(deepcopy=False)) - n_before
    t2 = time.perf_counter()
    if worker_notes:  # a killed worker's trials may still be RUNNING: fail them before analysing
        fail_stale_trials(opened, st, options.stale_after)
    result = _analyse(opened, job, evaluator, daily, caller, identity, new, timings)
    result.notes.extend(worker_notes)
    timings["analysis"] = time.perf_counter() - t2
    return result
