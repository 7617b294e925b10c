"""Optimizer benchmarks (run through ``benchmarks/run.py``; each phase in its own process).

Both phases run a fresh study of ``--trials`` (default 1,000) trials on every alert of the prepared home
(10,000 by default) with the default search space, 4 rolling walk-forward folds and the random
sampler — it measures the pipeline (engine batches, fold summaries, storage, analysis with PBO /
DSR), not TPE's own model fitting, whose cost grows with the number of trials whatever the data.

* ``optimize_cold``: the path cache is cleared first, so the windows are cut from the candles;
* ``optimize_warm``: the same study settings again (a new study), windows served from the cache.

Figures: wall seconds, trials per second (whole run and search phase), phase timings, whether the
cache was hit, and the study's PBO / DSR / recommended options as a sanity check.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def _run(home: str, study: str, cold: bool, seed: int, trials: int) -> dict:
    from alertlab.app.optimize import run_optimize
    from alertlab.optimize.options import OptimizeOptions
    from alertlab.store import resolve_home
    from alertlab.windows.cache import clear_entries

    h = resolve_home(Path(home))
    shutil.rmtree(h.studies_dir / study, ignore_errors=True)  # a fresh study of `trials` trials
    cleared = clear_entries(h) if cold else 0
    opts = OptimizeOptions(trials=trials, sampler="random", seed=seed, folds=4, min_trades=20)
    t0 = time.perf_counter()
    r = run_optimize(h, options=opts, study=study)
    seconds = time.perf_counter() - t0
    s = r.study
    tm = r.run.timings
    return {
        "seconds": seconds,
        "cache_entries_cleared": cleared,
        "cache_hit": r.cache.hit,
        "n_alerts": s.n_alerts,
        "n_days": s.n_days,
        "n_folds": len(s.folds),
        "trials": s.counts["n_trials"],
        "trials_per_s": s.counts["new_trials"] / seconds,
        "search_trials_per_s": s.counts["new_trials"] / tm["search"],
        "batch_size": opts.batch_for(s.n_alerts),
        "windows_s": tm["windows"],
        "search_s": tm["search"],
        "analysis_s": tm["analysis"],
        "export_s": tm.get("export", 0.0),
        "n_feasible": s.counts["n_feasible"],
        "pbo": None if s.pbo is None else s.pbo["pbo"],
        "dsr": None if s.dsr is None else s.dsr["dsr"],
        "recommended": None if s.recommended is None else s.recommended["options"],
    }


PHASES = {
    "optimize_cold": lambda a: _run(a.home, "bench-optimize-cold", cold=True, seed=a.seed, trials=a.trials),
    "optimize_warm": lambda a: _run(a.home, "bench-optimize-warm", cold=False, seed=a.seed, trials=a.trials),
}
