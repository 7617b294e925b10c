"""Exit-strategy optimiser: search space, walk-forward folds, study runner, DSR / PBO statistics.

* :mod:`~alertlab.optimize.space` — what is searched; :mod:`~alertlab.optimize.folds` — folds by time;
* :mod:`~alertlab.optimize.evaluate` — batches of configs through the engine, fold metrics, scores;
* :mod:`~alertlab.optimize.study` — Optuna studies (resume, workers, stale trials), the recommendation;
* :mod:`~alertlab.optimize.storage` — storages, locks, heartbeats;
* :mod:`~alertlab.optimize.stats` — DSR, PSR, PBO (CSCV), neighbourhood stability;
* :mod:`~alertlab.optimize.report` — the long trials table and the recommended config file;

The ``alertlab optimize`` command as a call (select → windows → study → exports → run record) is a
use case: :func:`alertlab.app.optimize.run_optimize` (also ``alertlab.run_optimize``).

Members are imported lazily so importing one submodule stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "SearchSpace": "alertlab.optimize.space",
    "load_space": "alertlab.optimize.space",
    "DEFAULT_SPACE": "alertlab.optimize.space",
    "make_folds": "alertlab.optimize.folds",
    "EngineSettings": "alertlab.optimize.evaluate",
    "Evaluator": "alertlab.optimize.evaluate",
    "OBJECTIVES": "alertlab.optimize.evaluate",
    "OptimizeOptions": "alertlab.optimize.options",
    "StudyResult": "alertlab.optimize.analysis",
    "SAMPLERS": "alertlab.optimize.options",
    "run_study": "alertlab.optimize.study",
    "trials_long_table": "alertlab.optimize.report",
    "write_config": "alertlab.optimize.report",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'alertlab.optimize' has no attribute {name!r}")
