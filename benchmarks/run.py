"""alertlab benchmarks, one command: ``python benchmarks/run.py``.

Each phase runs in its own subprocess so its peak RSS is its own. Results are printed as a
table and written to ``benchmarks/results/latest.json`` (``--out``), with the disk use of the
store and the path cache at the end. ``--memory-gb`` sets every phase's memory budget.

Phases
* ``generate``: synthetic market (clean), candles streamed to one Parquet file (bounded memory);
* ``ingest``: ``ingest candles`` + ``ingest alerts`` of those files (``prepare`` = both);
* ``cold``: baseline with an empty path cache (cut windows + metrics + leaderboard);
* ``warm``: the same baseline again (windows and metrics served from the path cache);
* ``warm_metrics``: windows from the cache, metrics recomputed (kernel + table);
* ``kernel``: the metrics kernel alone over all bars (bars/s, single thread);
* further phases (``engine_*``, ``optimize_*``, ``dist_*``) when those modules are present.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rss_mb() -> float:
    """Peak resident set (``ru_maxrss``): anonymous memory plus the touched pages of mapped files."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _AnonPeak:
    """Peak anonymous RSS (``RssAnon`` of /proc/self/status, sampled every 20 ms): the memory the
    process holds itself, without the page cache of the memory-mapped window files, which
    ``ru_maxrss`` also counts."""

    def __init__(self) -> None:
        import threading

        self.peak_kb = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _sample(self) -> None:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                        return
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        self._sample()
        return self.peak_kb / 1024


def _spec(n_alerts: int, seed: int):
    from alertlab.demo.market import DemoSpec

    return DemoSpec(
        seed=seed, n_alerts=n_alerts, n_tokens=n_alerts, n_callers=100, history_hours=50.0, clean=True
    )


def phase_generate(home: Path, n_alerts: int, seed: int) -> dict:
    """The synthetic market, candles streamed to one Parquet file block by block (bounded memory)."""
    from alertlab.demo.market import write_market_parquet

    t0 = time.perf_counter()
    src = home / "bench-input"
    src.mkdir(parents=True, exist_ok=True)
    alerts, n_bars = write_market_parquet(_spec(n_alerts, seed), src / "candles.parquet")
    alerts.to_csv(src / "alerts.csv", index=False)
    return {
        "seconds": time.perf_counter() - t0,
        "n_alerts": len(alerts),
        "n_candles": n_bars,
        "candles_parquet_bytes": (src / "candles.parquet").stat().st_size,
    }


def phase_ingest(home: Path) -> dict:
    """``ingest candles`` + ``ingest alerts`` of the generated files."""
    import pyarrow.parquet as pq

    from alertlab.ingest import ingest_alerts, ingest_candles
    from alertlab.store import resolve_home

    src = home / "bench-input"
    n_bars = pq.ParquetFile(src / "candles.parquet").metadata.num_rows
    h = resolve_home(home)
    t1 = time.perf_counter()
    rc = ingest_candles(h, [src / "candles.parquet"])
    t_c = time.perf_counter() - t1
    t2 = time.perf_counter()
    ra = ingest_alerts(h, [src / "alerts.csv"])
    t_a = time.perf_counter() - t2
    return {
        "seconds": t_c + t_a,
        "n_alerts": ra.rows_accepted,
        "n_candles": n_bars,
        "ingest_candles_s": t_c,
        "ingest_candles_rows_per_s": n_bars / t_c,
        "ingest_alerts_s": t_a,
        "candle_rejects": rc.rows_rejected,
        "alert_rejects": ra.rows_rejected,
    }


def _du(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def disk_use(home: Path) -> dict:
    """Disk use of the bench home: input files, candle store (+ catalog), path cache, studies."""
    from alertlab.store import resolve_home

    h = resolve_home(home)
    return {
        "input_bytes": _du(home / "bench-input"),
        "store_bytes": _du(h.candles_dir) + _du(h.catalog_path),
        "path_cache_bytes": _du(h.cache_dir),
        "studies_bytes": _du(h.studies_dir),
    }


def phase_baseline(home: Path, force: bool) -> dict:
    from alertlab.app.baseline import run_baseline

    t0 = time.perf_counter()
    r = run_baseline(home, force_recompute=force)
    dt_ = time.perf_counter() - t0
    return {
        "seconds": dt_,
        "cache_hit": r.cache.hit,
        "metrics_cached": r.metrics_cached,
        "n_alerts": r.windows.n,
        "n_bars": int(r.windows.offsets[-1]),
        "timings": r.run.timings,
    }


def phase_warm_metrics(home: Path) -> dict:
    from alertlab.app.baseline import select_alerts
    from alertlab.store import resolve_home
    from alertlab.truth.metrics import baseline_table
    from alertlab.windows.cache import get_windows
    from alertlab.windows.spec import WindowSpec

    h = resolve_home(home)
    t0 = time.perf_counter()
    w, info = get_windows(h, select_alerts(h), WindowSpec())
    t1 = time.perf_counter()
    baseline_table(w)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "windows_s": t1 - t0, "metrics_s": t2 - t1, "cache_hit": info.hit}


def phase_kernel(home: Path) -> dict:
    """The metrics kernel over all bars, one thread: ``bars_per_s`` with every page resident (the
    budget lifted for this timing: the kernel alone), ``bars_per_s_budgeted`` under the memory
    budget (alert ranges, pages released and faulted back from the page cache between them)."""
    import numpy as np

    from alertlab.app.baseline import select_alerts
    from alertlab.store import resolve_home
    from alertlab.truth.metrics import compute_metrics
    from alertlab.util.memory import set_memory_budget_gb
    from alertlab.windows.cache import get_windows
    from alertlab.windows.spec import WindowSpec

    h = resolve_home(home)
    w, _ = get_windows(h, select_alerts(h), WindowSpec())
    compute_metrics(w, np.arange(min(w.n, 10)))  # compile
    n_bars = int(w.offsets[-1])
    out: dict = {"n_bars": n_bars}
    for key, budget in (("budgeted", None), ("resident", 1024.0)):
        set_memory_budget_gb(budget)
        if budget:  # page the bars in, so the timing is the kernel alone
            for k in ("ts", "high", "low", "close"):
                np.asarray(getattr(w, k)).sum()
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            compute_metrics(w)
            best = min(best, time.perf_counter() - t0)
        out[f"seconds_{key}"] = best
        out["bars_per_s" if key == "resident" else "bars_per_s_budgeted"] = n_bars / best
    out["seconds"] = out["seconds_resident"]
    return out


PHASES = {
    "generate": lambda a: phase_generate(Path(a.home), a.alerts, a.seed),
    "ingest": lambda a: phase_ingest(Path(a.home)),
    "cold": lambda a: phase_baseline(Path(a.home), force=True),
    "warm": lambda a: phase_baseline(Path(a.home), force=False),
    "warm_metrics": lambda a: phase_warm_metrics(Path(a.home)),
    "kernel": lambda a: phase_kernel(Path(a.home)),
}


def _extra_phases() -> dict:
    """Engine/optimizer benchmarks live in their own modules beside this file."""
    extra = {}
    for mod in ("bench_engine", "bench_optimize", "bench_ingest", "bench_distributed"):
        if (HERE / f"{mod}.py").exists():
            sys.path.insert(0, str(HERE))
            m = __import__(mod)
            extra.update(m.PHASES)
    return extra


def _write(a: argparse.Namespace, home: Path, results: dict, quiet: bool = False) -> Path:
    """Disk use, summary ratios and the results file (written after every phase, so an interrupted
    run keeps what it measured)."""
    if home.exists():
        results["disk"] = disk_use(home)
        if not quiet:
            print(f"{'disk':>16}: {json.dumps(results['disk'])}", flush=True)
    if "cold" in results and "warm" in results:
        results["summary"] = {"warm_speedup": results["cold"]["seconds"] / results["warm"]["seconds"]}
        if "warm_metrics" in results:
            results["summary"]["warm_recompute_speedup"] = (
                results["cold"]["seconds"] / results["warm_metrics"]["seconds"]
            )
    for fmt in ("parquet", "csv"):
        if f"ingest_{fmt}" in results and f"ingest_floor_{fmt}" in results:
            results.setdefault("summary", {})[f"ingest_{fmt}_vs_duckdb_floor"] = (
                results[f"ingest_{fmt}"]["seconds"] / results[f"ingest_floor_{fmt}"]["seconds"]
            )
    vb = results.get("engine_vectorbt", {})
    if "ratio" in vb:
        results.setdefault("summary", {})["vectorbt_ratio_same_subset"] = vb["ratio"]
        if "engine_tpsl" in results:
            results["summary"]["vectorbt_ratio_full_grid_1t"] = (
                results["engine_tpsl"]["alert_combos_per_s_1t"] / vb["vectorbt_alert_combos_per_s"]
            )
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    budget = a.memory_gb if a.memory_gb is not None else os.environ.get("ALERTLAB_MEMORY_GB", 2.0)
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count()},
                "alerts": a.alerts,
                "memory_gb": budget,
                "results": results,
            },
            indent=1,
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default=str(HERE / "results" / "bench-home"))
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--only", default="", help="comma list of phases")
    ap.add_argument("--keep", action="store_true", help="reuse an existing prepared home")
    ap.add_argument("--trials", type=int, default=1000, help="trials of the optimizer phases")
    ap.add_argument(
        "--memory-gb", type=float, default=None, help="memory budget of every phase ($ALERTLAB_MEMORY_GB)"
    )
    ap.add_argument(
        "--drop-input", action="store_true", help="delete the generated input files after the ingest (disk)"
    )
    ap.add_argument("--out", default=str(HERE / "results" / "latest.json"), help="results JSON")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    a = ap.parse_args()
    phases = {**PHASES, **_extra_phases()}
    if a.phase:  # child process: run one phase, print JSON
        anon = _AnonPeak()
        res = phases[a.phase](a)
        res["peak_rss_mb"] = _rss_mb()
        res["peak_anon_mb"] = anon.stop()
        res["loadavg_1m"] = os.getloadavg()[0]  # the machine is shared: how busy it was
        print("RESULT " + json.dumps(res))
        return
    wanted: list[str] = []
    for p in a.only.split(",") if a.only else phases:
        wanted += ["generate", "ingest"] if p == "prepare" else [p] if p else []
    unknown = [p for p in wanted if p not in phases]
    if unknown:
        raise SystemExit(f"unknown phase(s) {', '.join(unknown)}; known: prepare, {', '.join(phases)}")
    home = Path(a.home)
    if "generate" in wanted and home.exists() and not a.keep:
        import shutil

        shutil.rmtree(home)
    elif a.keep:
        wanted = [p for p in wanted if p not in ("generate", "ingest")]
    # the phases measure this checkout's code, whatever alertlab is installed
    src = str(HERE.parent / "src")
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    if a.memory_gb is not None:
        env["ALERTLAB_MEMORY_GB"] = str(a.memory_gb)
    results = {}
    for p in wanted:
        cmd = [
            sys.executable,
            __file__,
            "--phase",
            p,
            "--home",
            a.home,
            "--alerts",
            str(a.alerts),
            "--seed",
            str(a.seed),
            "--trials",
            str(a.trials),
        ]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"phase {p} failed")
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
        results[p] = json.loads(line[7:])
        results[p]["wall_s"] = time.perf_counter() - t0
        print(f"{p:>16}: {json.dumps(results[p], default=str)}", flush=True)
        if p == "ingest" and a.drop_input:
            import shutil

            shutil.rmtree(home / "bench-input", ignore_errors=True)
        _write(a, home, results, quiet=True)
    print(f"written {_write(a, home, results)}")


if __name__ == "__main__":
    main()
