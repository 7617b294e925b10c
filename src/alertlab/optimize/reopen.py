"""Reopen a finished study by name and analyse it again, without running a trial.

The report (``alertlab report --study NAME``) needs the same :class:`StudyResult` that ``alertlab
optimize`` printed. The study's options come from the latest recorded ``optimize`` run of that
study (every option, incl. ``pbo_blocks`` and ``neighbours``), or else from the identity stored in
the study itself; the target is the number of trials the study already holds, so the runner asks
for none and only re-analyses (DSR, PBO, stability) on the given windows. Windows of another
selection or window rule are refused by the study's identity check, with the usual message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from alertlab.optimize.evaluate import EngineSettings
from alertlab.optimize.space import SearchSpace
from alertlab.optimize.storage import open_storage, quiet_optuna, safe_name
from alertlab.optimize.study import IDENTITY_ATTR, OptimizeOptions, StudyResult, run_study
from alertlab.store import Home
from alertlab.windows.model import DEFAULT_MIN_COVERAGE, Windows


def _recorded_options(home: Home, base: str) -> dict[str, Any] | None:
    con = home.connect()
    try:
        row = con.execute(
            "SELECT config FROM runs WHERE kind = 'optimize' AND json_extract_string(config, '$.study') = ? "
            "ORDER BY started_at DESC LIMIT 1",
            [base],
        ).fetchone()
    finally:
        con.close()
    return json.loads(row[0]).get("options") if row else None


def _options(recorded: dict[str, Any] | None, identity: dict[str, Any], n_trials: int) -> OptimizeOptions:
    folds = identity.get("folds", {})
    cons = identity.get("constraints", {})
    kw: dict[str, Any] = {
        "space": SearchSpace.from_dict(identity["space"]),
        "objective": identity["objective"],
        "folds": int(folds.get("k", 4)),
        "anchored": bool(folds.get("anchored", False)),
        "train_days": folds.get("train_days"),
        "test_days": folds.get("test_days"),
        "min_trades": int(cons.get("min_trades", 20)),
        "max_dd": cons.get("max_dd"),
        "settings": EngineSettings(**identity.get("engine", {})),
    }
    if recorded:
        for k in ("pbo_blocks", "neighbours", "seed", "batch_size"):
            if k in recorded:
                kw[k] = recorded[k]
    # the study already holds n_trials: target = n_trials means no new trial is asked
    return OptimizeOptions(**kw, trials=max(1, n_trials), sampler="random")


def reopen_study(
    home: Home,
    name: str,
    w: Windows,
    windows_path: str | Path | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> StudyResult:
    """The :class:`StudyResult` of study ``name`` (``base`` or ``base@caller``) on windows ``w``.

    The alerts are the usable ones under ``min_coverage``, as ``alertlab optimize`` chose them, so
    the study's identity (which covers the alert set) matches."""
    import optuna

    base, _, caller = name.partition("@")
    study_dir = home.studies_dir / safe_name(base)
    storage = study_storage(home, name)
    if not Path(storage).exists():
        raise ValueError(
            f"--study {name}: no study in {study_dir} (run `alertlab optimize --study {base}` first)"
        )
    with quiet_optuna():
        try:
            st = optuna.load_study(study_name=name, storage=open_storage(storage))
        except KeyError:
            raise ValueError(f"--study {name}: no study of that name in {storage}") from None
    identity = st.user_attrs.get(IDENTITY_ATTR)
    if identity is None:
        raise ValueError(
            f"--study {name}: the study has no alertlab identity (not made by alertlab optimize)"
        )
    n_trials = len(st.get_trials(deepcopy=False))
    opts = _options(_recorded_options(home, base), identity, n_trials)
    idx = w.usable_idx(min_coverage)
    if caller:
        idx = idx[np.asarray(w.caller, dtype=object)[idx].astype(str) == caller]
    try:
        return run_study(
            w,
            opts,
            study_dir,
            alert_idx=idx,
            study=base,
            storage=storage,
            caller=caller or None,
            windows_path=windows_path,
        )
    except ValueError as exc:
        raise ValueError(f"--study {name}: {exc}") from None


def study_storage(home: Home, name: str) -> str:
    """The default journal file of study ``name`` (``base`` or ``base@caller``) in ``home``."""
    return str(home.studies_dir / safe_name(name.partition("@")[0]) / "journal.log")


def param_importance(storage: str, name: str) -> dict[str, float]:
    """Optuna's PED-ANOVA importances of the searched options for the training objective.

    Only complete trials with a finite value take part (infeasible trials carry −inf); empty when
    fewer than 3 such trials remain or Optuna cannot rank the parameters.
    """
    import warnings

    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    with quiet_optuna():
        st = optuna.load_study(study_name=name, storage=open_storage(storage))
        good = [
            t
            for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.value is not None and np.isfinite(t.value)
        ]
        if len(good) < 3:
            return {}
        copy = optuna.create_study(direction="maximize")
        copy.add_trials(good)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                imp = get_param_importances(copy, evaluator=PedAnovaImportanceEvaluator())
            except (ValueError, RuntimeError):
                return {}
    return {k: float(v) for k, v in imp.items()}
