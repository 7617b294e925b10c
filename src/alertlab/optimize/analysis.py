"""Analysis of a finished study: recommendation (robust score), DSR, PBO, stability, result tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from alertlab.engine import Strategy
from alertlab.optimize.evaluate import (
    LONG_METRICS,
    SPLITS,
    Evaluator,
    strategy_config,
)
from alertlab.optimize.folds import Fold
from alertlab.optimize.options import RESULT_ATTR, OptimizeOptions
from alertlab.optimize.search import _Job, failure_budget, trials_missing
from alertlab.optimize.space import OPTION_NAMES
from alertlab.optimize.stats import dsr_from_returns, neighbourhood_stability, pbo_cscv, sharpe_ratio
from alertlab.optimize.storage import (
    FAIL_ATTR,
    describe_storage,
    float_of,
)

# ---------------------------------------------------------------------------------------------
# results


@dataclass
class StudyResult:
    """One finished (or resumed) study.

    ``trials``: one row per trial of the study (every state): ``trial, state, feasible, train, test,
    neighbourhood, robust, train_rank, robust_rank, n_trades_train, n_trades_test, note`` and
    ``p_<option>`` columns. ``fold_metrics``: long table, one row per (complete trial, fold, split)
    (see :func:`alertlab.optimize.report.trials_long_table`). ``recommended``: the chosen trial (or
    None when no trial is feasible) and ``config`` its :class:`Strategy`.
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
    config: Strategy | None
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


@dataclass
class _Scores:
    """Per completed trial (aligned with ``done``): options, scores, feasibility, ranks, choice."""

    opts: list[dict[str, Any]]
    numbers: np.ndarray
    train: np.ndarray
    test: np.ndarray
    feasible: np.ndarray
    nbhd: np.ndarray
    robust: np.ndarray
    chosen: int | None

    @property
    def feasible_idx(self) -> np.ndarray:
        return np.flatnonzero(self.feasible)


def _daily_matrix(
    job: _Job, evaluator: Evaluator, done: list[dict], opts: list[dict], cache: dict
) -> np.ndarray:
    """Daily returns of every completed trial: cached from the search, the rest through the engine."""
    daily = np.zeros((evaluator.n_days, len(done)))
    missing = [i for i, d in enumerate(done) if d["number"] not in cache]
    for i, d in enumerate(done):
        if d["number"] in cache:
            daily[:, i] = cache[d["number"]]
    for lo in range(0, len(missing), job.batch):
        part = missing[lo : lo + job.batch]
        cfgs = [strategy_config(opts[i], job.options.settings) for i in part]
        daily[:, part] = evaluator.daily(cfgs)
    return daily


def _scores(o: OptimizeOptions, done: list[dict], notes: list[str]) -> _Scores:
    """Neighbourhood stability, robust score and the recommendation (best robust, then test, then first)."""
    n = len(done)
    opts = [{k: d["res"]["options"].get(k) for k in OPTION_NAMES} for d in done]
    train = np.array([float_of(d["res"]["train"]) for d in done])
    test = np.array([float_of(d["res"]["test"]) for d in done])
    feasible = np.array([bool(d["res"]["feasible"]) for d in done], dtype=bool)
    numbers = np.array([d["number"] for d in done], dtype=np.int64)
    nbhd = np.full(n, np.nan)
    robust = np.full(n, np.nan)
    fi = np.flatnonzero(feasible)
    if fi.size:
        norm = o.space.normalise([opts[i] for i in fi])
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
    return _Scores(opts, numbers, train, test, feasible, nbhd, robust, chosen)


def _dsr(daily: np.ndarray, sc: _Scores, n_trials: int, notes: list[str]) -> dict | None:
    """Deflated Sharpe Ratio of the recommendation, deflated by every trial of the study."""
    if sc.chosen is None:
        return None
    if daily.shape[0] < 2:
        notes.append("DSR needs at least 2 days of alerts")
        return None
    try:
        d = dsr_from_returns(daily[:, sc.chosen], np.asarray(sharpe_ratio(daily, axis=0)), n_trials=n_trials)
    except ValueError as exc:
        notes.append(f"DSR not computed: {exc}")
        return None
    return {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in d.items()}


def _pbo(o: OptimizeOptions, daily: np.ndarray, sc: _Scores, notes: list[str]) -> dict | None:
    """Probability of Backtest Overfitting by CSCV over the feasible trials' daily returns."""
    fi = sc.feasible_idx
    n_days = int(daily.shape[0])
    if fi.size < 2:
        notes.append("PBO needs at least 2 feasible trials")
        return None
    if n_days < o.pbo_blocks:
        notes.append(f"PBO needs at least --pbo-blocks={o.pbo_blocks} days of alerts, the data has {n_days}")
        return None
    metric = "sharpe" if o.objective == "sharpe" else "mean"
    p = pbo_cscv(daily[:, fi], n_blocks=o.pbo_blocks, metric=metric)
    return {
        "pbo": p["pbo"],
        "metric": metric,
        "n_blocks": p["n_blocks"],
        "n_combinations": p["n_combinations"],
        "n_trials": int(fi.size),
        "n_days": n_days,
        "slope": p["slope"],
        "intercept": p["intercept"],
        "prob_loss": p["prob_loss"],
        "logit_median": float(np.median(p["logits"])),
    }


def _trial_table(rows: list[dict], done: list[dict], sc: _Scores, names: list[str]) -> pd.DataFrame:
    """One row per trial of the study (every state), best robust score first."""
    train_rank = _rank(sc.train, sc.feasible)
    robust_rank = _rank(sc.robust, sc.feasible)
    by_number = {r["trial"]: r for r in rows}
    for i, d in enumerate(done):
        res = d["res"]
        by_number[d["number"]].update(
            feasible=bool(sc.feasible[i]),
            train=sc.train[i],
            test=sc.test[i],
            neighbourhood=sc.nbhd[i],
            robust=sc.robust[i],
            train_rank=train_rank[i],
            robust_rank=robust_rank[i],
            n_trades_train=int(sum(res["folds"]["train"]["n_trades"])),
            n_trades_test=int(sum(res["folds"]["test"]["n_trades"])),
            note="; ".join(res.get("violations") or []),
            **{f"p_{k}": sc.opts[i][k] for k in names},
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
        *[f"p_{k}" for k in names],
        "note",
    ]
    for c in cols:
        if c not in table.columns:
            table[c] = np.nan if c not in ("state", "note") else ""
    table = table[cols]
    table["note"] = table["note"].fillna("")
    return table.sort_values(
        ["robust", "test", "trial"], ascending=[False, False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)


def _recommendation(done: list[dict], sc: _Scores, cfg: Strategy) -> dict[str, Any]:
    """The recommended trial with its folds, beside the best-training trial (shown, never chosen)."""
    assert sc.chosen is not None
    c = sc.chosen
    r = done[c]["res"]
    best_train = int(np.nanargmax(np.where(sc.feasible, sc.train, -np.inf))) if sc.feasible.any() else c
    return {
        "trial": int(sc.numbers[c]),
        "options": {k: v for k, v in sc.opts[c].items() if v is not None},
        "config": cfg.model_dump(exclude_none=True),
        "train": sc.train[c],
        "test": sc.test[c],
        "neighbourhood": sc.nbhd[c],
        "robust": sc.robust[c],
        "train_rank": int(_rank(sc.train, sc.feasible)[c]),
        "folds": {
            s: {
                "n_trades": list(r["folds"][s]["n_trades"]),
                "objective": [float_of(x) for x in r["folds"][s]["objective"]],
            }
            for s in SPLITS
        },
        "best_train_trial": {
            "trial": int(sc.numbers[best_train]),
            "train": sc.train[best_train],
            "test": sc.test[best_train],
            "robust": sc.robust[best_train],
        },
    }


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
    """The whole study: scores, recommendation, DSR, PBO and the result tables."""
    o = job.options
    trials = study.get_trials(deepcopy=False)
    done, rows = _rows(trials)
    notes: list[str] = []
    sc = _scores(o, done, notes)
    daily = _daily_matrix(job, evaluator, done, sc.opts, daily_cache)
    dsr = _dsr(daily, sc, len(trials), notes)
    pbo = _pbo(o, daily, sc, notes)
    cfg = strategy_config(sc.opts[sc.chosen], o.settings) if sc.chosen is not None else None
    recommended = _recommendation(done, sc, cfg) if cfg is not None else None
    states = [t.state for t in trials]
    n_failed = states.count(TrialState.FAIL)
    short = trials_missing(trials, job)
    if short > 0 and n_failed:
        reasons = sorted(
            {str(t.user_attrs.get(FAIL_ATTR, "failed")) for t in trials if t.state == TrialState.FAIL}
        )
        notes.append(
            f"stopped {short} trial(s) short of {job.target} completed: {n_failed} failed (at most "
            f"{failure_budget(job.target)} failures per run); reasons: {'; '.join(reasons[:3])}"
        )
    counts = {
        "n_trials": len(trials),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_failed": states.count(TrialState.FAIL),
        "n_running": states.count(TrialState.RUNNING),
        "n_feasible": int(sc.feasible.sum()),
        "n_infeasible": int(len(done) - sc.feasible.sum()),
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
        trials=_trial_table(rows, done, sc, o.space.names),
        fold_metrics=_long_rows(done, job.folds, sc.opts, o.space.names),
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
