"""Dask scale-out on one machine (run through ``benchmarks/run.py``; each phase in its own process).

* ``dist_grid``: the 10,000-alert × 1,000-combination TP/SL grid (``run_grid``) on the plain local
  path (all threads), then on ``local:1`` and ``local:2`` (``LocalCluster`` worker processes,
  windows by shared path): cluster start, first run (workers load the Numba kernels) and a
  second, steady run; results checked equal to the local grid bit for bit.
* ``dist_optimize``: a fresh 2,000-trial study (random sampler, default space, 4 folds, as
  ``bench_optimize``) on the plain local path, ``--cluster local:1`` and ``--cluster local:2``;
  the recommendation checked equal.

What it measures is Dask's overhead on one machine: task scheduling, result transfer (the
``(alerts, combinations)`` blocks travel from worker processes to the driver) and worker start-up,
against a local path that already runs the kernels on all cores.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

TRIALS = 2000


def _grid(n_tp: int, n_sl: int):
    from alertlab.engine import StrategyGrid

    tps = np.round(np.geomspace(1.2, 20, n_tp), 4).tolist()
    sls = np.round(np.linspace(0.2, 0.95, n_sl), 4).tolist()
    return StrategyGrid(tp=tps, sl=sls)


def dist_grid(a) -> dict:
    from alertlab.distributed.cluster import session
    from alertlab.engine import run_grid
    from alertlab.store import resolve_home
    from alertlab.windows.select import load_windows

    w, info = load_windows(resolve_home(Path(a.home)))
    for k in ("ts", "open", "high", "low", "close"):
        np.asarray(getattr(w, k)).sum()
    cfg = _grid(40, 25)
    run_grid(w, _grid(2, 2))  # compile / load the kernels
    t0 = time.perf_counter()
    ref = run_grid(w, cfg)
    out = {"n_alerts": w.n, "n_combinations": cfg.n_combinations, "local_s": time.perf_counter() - t0}
    for n in (1, 2):
        t0 = time.perf_counter()
        with session(f"local:{n}") as s:
            t1 = time.perf_counter()
            mode = s.bind(w, info.path)
            g1 = run_grid(w, cfg, simulate=s.simulate_cols)
            t2 = time.perf_counter()
            g2 = run_grid(w, cfg, simulate=s.simulate_cols)
            t3 = time.perf_counter()
            out[f"local{n}"] = {
                "start_s": t1 - t0,
                "first_s": t2 - t1,
                "steady_s": t3 - t2,
                "data": mode,
                "tasks": s.tasks,
                "equal": bool(ref.equals(g1) and ref.equals(g2)),
                "overhead_vs_local": (t3 - t2) / out["local_s"],
            }
    return out


def _study(home, study: str, cluster: str | None, seed: int):
    from alertlab.app.optimize import run_optimize
    from alertlab.optimize.study import OptimizeOptions

    shutil.rmtree(home.studies_dir / study, ignore_errors=True)
    opts = OptimizeOptions(trials=TRIALS, sampler="random", seed=seed, folds=4, min_trades=20)
    t0 = time.perf_counter()
    r = run_optimize(home, options=opts, study=study, cluster=cluster)
    sec = time.perf_counter() - t0
    s = r.study
    return r, {
        "seconds": sec,
        "search_s": r.run.timings["search"],
        "trials": s.counts["n_trials"],
        "trials_per_s": s.counts["new_trials"] / sec,
    }


def dist_optimize(a) -> dict:
    from alertlab.store import resolve_home

    h = resolve_home(Path(a.home))
    ref, out = _study(h, "bench-dist-local", None, a.seed)
    res = {"local": out}
    for n in (1, 2):
        r, o = _study(h, f"bench-dist-local{n}", f"local:{n}", a.seed)
        o["same_recommendation"] = r.study.recommended == ref.study.recommended
        res[f"local{n}"] = o
    return res


PHASES = {"dist_grid": dist_grid, "dist_optimize": dist_optimize}
