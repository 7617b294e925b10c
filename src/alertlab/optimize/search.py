"""The search loop of one worker: ask a batch under the study lock, evaluate it in one engine call, tell."""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from alertlab.optimize.evaluate import (
    FOLD_METRICS,
    SPLITS,
    Evaluator,
    effective_options,
    strategy_config,
)
from alertlab.optimize.folds import Fold
from alertlab.optimize.options import CONSTRAINT_KEY, RESULT_ATTR, OptimizeOptions
from alertlab.optimize.space import SearchSpace
from alertlab.optimize.storage import (
    FAIL_ATTR,
    OWNER_ATTR,
    RETRIED_ATTR,
    AskLock,
    Heartbeat,
    WorkerIdentity,
    fail_stale_trials,
    open_storage,
    quiet_optuna,
    to_jsonable,
)
from alertlab.windows.model import Windows


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

    if job.windows_path is None:
        raise ValueError("a worker job needs windows or the path of their cache entry")
    return load_entry(Path(job.windows_path), job.fingerprint)


ProgressFn = Callable[[int, int, float], None]
"""Called after each batch with (trials in the study, trials evaluated by this worker, best train)."""


def _fail(study: optuna.Study, storage, trial: optuna.Trial, reason: str) -> None:
    try:
        storage.set_trial_user_attr(trial._trial_id, FAIL_ATTR, reason)
        study.tell(trial, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):  # already finished (failed as stale elsewhere)
        pass


def trials_missing(trials: list[optuna.trial.FrozenTrial], job: _Job) -> int:
    """Trials still to ask for: ``--trials N`` means N **completed** trials (running ones count,
    since they will complete); failed trials (an invalid combination, an interrupted batch, a dead
    worker) are replaced by new samples and reported. The grid sampler tries each grid point once:
    there a failed point (an invalid combination) counts, since asking it again would fail again.
    A trial lost with a killed worker is queued again with its parameters (a WAITING trial, see
    :func:`~alertlab.optimize.storage.fail_stale_trials`): the retry is asked first and counts."""
    states = [t.state for t in trials]
    have = states.count(TrialState.COMPLETE) + states.count(TrialState.RUNNING)
    if job.options.sampler == "grid":  # a lost trial queued again (WAITING) is asked, not counted
        have += sum(1 for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get(RETRIED_ATTR))
    return job.target - have


def _n_counted(study: optuna.Study, job: _Job) -> int:
    return job.target - trials_missing(study.get_trials(deepcopy=False), job)


def failure_budget(target: int) -> int:
    """Failed trials one worker accepts before it stops short of the target (a space whose samples
    are mostly invalid must not loop forever); the study then says so in its notes."""
    return max(int(target), 10)


def _search(job: _Job, evaluator: Evaluator, on_batch: ProgressFn | None = None) -> dict[int, np.ndarray]:
    """Run one worker until the study holds ``job.target`` completed trials (see
    :func:`trials_missing`) or the worker's failure budget is spent; returns its trials' daily returns."""
    o = job.options
    study, study_st = _open_study(job)
    lock = AskLock(Path(job.lock_dir), job.study_name, job.storage)
    hb_every = min(30.0, o.stale_after / 4)
    daily: dict[int, np.ndarray] = {}
    done = 0
    n_failed_here = 0
    best = -math.inf
    try:
        with WorkerIdentity(Path(job.workers_dir)) as me, quiet_optuna():
            while True:
                trials: list[optuna.Trial] = []
                told: set[int] = set()
                try:
                    if not _ask(study, study_st, lock, job, me, n_failed_here, trials):
                        break
                    with Heartbeat(study_st, me, [t._trial_id for t in trials], hb_every):
                        opts, cfgs, bad = _configs(trials, o)
                        ev = evaluator.evaluate(cfgs)
                    for t in trials:
                        if t.number in bad:
                            _fail(study, study_st, t, bad[t.number])
                            told.add(t.number)
                            n_failed_here += 1
                    best = max(best, _tell(study, study_st, ev, opts, daily, told))
                except BaseException as exc:
                    why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc!r}"[:500]
                    for t in trials:
                        if t.number not in told:
                            _fail(study, study_st, t, why)
                    raise
                done += len(trials)
                if on_batch is not None:
                    on_batch(_n_counted(study, job), done, best)
    finally:
        lock.close()
    return daily


def _open_study(job: _Job) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """The study with this worker's sampler, and its storage."""
    o = job.options
    study_st = open_storage(job.storage)
    with quiet_optuna():
        probe = optuna.load_study(study_name=job.study_name, storage=study_st)
        n0 = len(probe.get_trials(deepcopy=False))
        # the grid sampler maps trial number n to point n of its seeded shuffle: every worker must
        # use the same shuffle (the study seed), or two workers would evaluate the same point
        seed = job.seed if o.sampler == "grid" else _worker_seed(job.seed, job.worker, n0)
        sampler = make_sampler(o.sampler, o.space, seed)
        study = optuna.load_study(study_name=job.study_name, storage=study_st, sampler=sampler)
    return study, study_st


def _ask(
    study: optuna.Study,
    study_st: optuna.storages.BaseStorage,
    lock: AskLock,
    job: _Job,
    me: WorkerIdentity,
    n_failed_here: int,
    trials: list[optuna.Trial],
) -> bool:
    """Under the ask lock: fail stale trials, then ask the next batch into ``trials`` (appended one
    by one, so a failure midway still fails the ones asked). False when nothing is left to do."""
    with lock:
        fail_stale_trials(study, study_st, job.options.stale_after)
        k = min(job.batch, trials_missing(study.get_trials(deepcopy=False), job))
        if k <= 0 or n_failed_here >= failure_budget(job.target):
            return False
        for _ in range(k):
            t = study.ask()
            trials.append(t)
            study_st.set_trial_user_attr(t._trial_id, OWNER_ATTR, me.owner())
    return True


def _configs(trials: list[optuna.Trial], o: Any) -> tuple[list, list, dict[int, str]]:
    """Each trial's sampled options as an engine strategy; the invalid ones by trial number, with why."""
    opts, cfgs, bad = [], [], {}
    for t in trials:
        eff = effective_options(o.space.suggest(t))
        try:
            cfgs.append(strategy_config(eff, o.settings))
            opts.append((t, eff))
        except ValueError as exc:
            bad[t.number] = str(exc)
    return opts, cfgs, bad


def _tell(
    study: optuna.Study,
    study_st: optuna.storages.BaseStorage,
    ev: Any,
    opts: list,
    daily: dict[int, np.ndarray],
    told: set[int],
) -> float:
    """Record the evaluated trials (result attribute, constraint, value); returns the best feasible value."""
    best = -math.inf
    for i, (t, eff) in enumerate(opts):
        res = _result_attr(ev, i, eff)
        study_st.set_trial_user_attr(t._trial_id, RESULT_ATTR, res)
        # one value for the sampler (sum of violations, 0 = feasible); the parts are in the result attribute
        t.set_constraint(CONSTRAINT_KEY, float(np.maximum(ev.constraints[i], 0.0).sum()))
        value = float(ev.train[i]) if np.isfinite(ev.train[i]) else -math.inf
        # a trial failed as stale by another machine meanwhile stays failed
        with contextlib.suppress(UpdateFinishedTrialError, ValueError):
            study.tell(t, value)
        told.add(t.number)
        daily[t.number] = ev.daily[:, i].copy()
        if ev.feasible[i] and value > best:
            best = value
    return best


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
