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

import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from alertlab.optimize.analysis import StudyResult, _analyse
from alertlab.optimize.evaluate import (
    Evaluator,
    time_order,
)
from alertlab.optimize.folds import make_folds
from alertlab.optimize.options import (
    CLUSTER_WORKERS,
    IDENTITY_ATTR,
    RESULT_ATTR,
    STUDY_FORMAT,
    OptimizeOptions,
)
from alertlab.optimize.search import ProgressFn, _Job, _n_counted, _search
from alertlab.optimize.storage import (
    canonical_json,
    describe_storage,
    fail_stale_trials,
    open_storage,
    quiet_optuna,
    to_jsonable,
)
from alertlab.optimize.workers import _run_workers
from alertlab.windows.model import OK, TRUNCATED, Windows


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

    ``alert_idx``: the alerts to use (default all); only alerts with a window (status ok or
    truncated; the caller picks which truncated ones count, see ``Windows.usable``) take part.
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
    st = np.asarray(w.status)[idx]
    idx = idx[(st == OK) | (st == TRUNCATED)]
    if idx.size == 0:
        raise ValueError("no alert with a window (status ok or truncated) to optimise on")
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
    counted_before = _n_counted(opened, job)
    timings = {"setup": time.perf_counter() - t0}

    from alertlab.util.progress import bar

    t1 = time.perf_counter()
    label = f"optimize {name}"
    with bar(label, target, progress) as pb:
        pb.advance(min(counted_before, target))
        state = {"seen": min(counted_before, target), "best": -math.inf}

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
