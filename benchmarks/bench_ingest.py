"""Candle ingest against DuckDB's own floor on the same file (issue: ingest at the speed of the disk).

``ingest_prepare`` writes ``ingest-input/candles.parquet`` and ``candles.csv`` (600 tokens of
1-minute bars, ≈ 3.1M rows, the demo market in clean mode). The floor phases do the least any
candle store must do, in one DuckDB statement: read, drop rows with impossible OHLC, sort by
(chain, token, ts), write Parquet. The alertlab phases run ``ingest candles`` into a fresh home
(interval regimes, quarantine, conflicts, quality, bucketed atomic writes). The ratio of the two
walls is the figure of merit; each phase runs in its own process so its peak RSS is its own.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

_FLOOR = """COPY (SELECT chain::VARCHAR AS chain, token::VARCHAR AS token, ts, open, high, low, close, volume
  FROM {src} WHERE open > 0 AND high > 0 AND low > 0 AND close > 0 AND volume >= 0
   AND low <= least(open, close) AND high >= greatest(open, close)
  ORDER BY chain, token, ts) TO '{dst}' (FORMAT parquet)"""


def _input(home: Path) -> Path:
    return home.parent / "ingest-input"


def phase_ingest_prepare(home: Path, seed: int) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from alertlab.demo.market import DemoSpec, make_market_arrays

    spec = DemoSpec(seed=seed, n_alerts=600, n_tokens=600, n_callers=20, history_hours=96.0, clean=True)
    _, candles = make_market_arrays(spec)
    d = _input(home)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    t = pa.Table.from_pandas(candles, preserve_index=False)
    t = t.cast(
        pa.schema([(f.name, pa.string() if f.name in ("chain", "token") else f.type) for f in t.schema])
    )
    pq.write_table(t, d / "candles.parquet")
    pacsv.write_csv(t, d / "candles.csv")
    return {
        "rows": t.num_rows,
        "parquet_mb": (d / "candles.parquet").stat().st_size / 2**20,
        "csv_mb": (d / "candles.csv").stat().st_size / 2**20,
    }


def _floor(home: Path, fmt: str) -> dict:
    import duckdb

    d = _input(home)
    src = (
        f"read_parquet('{d / 'candles.parquet'}')" if fmt == "parquet" else f"read_csv('{d / 'candles.csv'}')"
    )
    t0 = time.perf_counter()
    duckdb.connect().execute(_FLOOR.format(src=src, dst=d / f"floor-{fmt}.parquet"))
    return {"seconds": time.perf_counter() - t0}


def _ours(home: Path, fmt: str) -> dict:
    from alertlab.ingest import ingest_candles
    from alertlab.store import resolve_home

    h = home.parent / f"ingest-home-{fmt}"
    shutil.rmtree(h, ignore_errors=True)
    t0 = time.perf_counter()
    rep = ingest_candles(resolve_home(h), [_input(home) / f"candles.{fmt}"])
    dt = time.perf_counter() - t0
    return {"seconds": dt, "rows": rep.rows_read, "rows_per_s": rep.rows_read / dt}


PHASES = {
    "ingest_prepare": lambda a: phase_ingest_prepare(Path(a.home), a.seed),
    "ingest_floor_parquet": lambda a: _floor(Path(a.home), "parquet"),
    "ingest_parquet": lambda a: _ours(Path(a.home), "parquet"),
    "ingest_floor_csv": lambda a: _floor(Path(a.home), "csv"),
    "ingest_csv": lambda a: _ours(Path(a.home), "csv"),
}


def main() -> None:
    """``python benchmarks/bench_ingest.py [--repeat N] [--src DIR ...]``: floor and alertlab interleaved, medians.

    Each measurement is its own process (``run.py --phase``), so each peak RSS is its own; the
    floor and each alertlab tree (``--src``, default this checkout's ``src``; give two to compare
    before/after) alternate, so that load from other users of the machine hits all alike.
    """
    import argparse
    import json
    import os
    import statistics
    import subprocess
    import sys

    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--home", default=str(here / "results" / "bench-home"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--formats", default="parquet,csv")
    ap.add_argument("--src", action="append", help="alertlab source tree(s) to measure")
    a = ap.parse_args()
    trees = a.src or [str(here.parent / "src")]

    def phase(name: str, src: str) -> dict:
        env = {**os.environ, "PYTHONPATH": src}
        cmd = [sys.executable, str(here / "run.py"), "--phase", name, "--home", a.home, "--seed", str(a.seed)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"phase {name} failed:\n{out.stderr[-3000:]}")
        return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])

    if not (_input(Path(a.home)) / "candles.csv").exists():
        print("prepare:", phase("ingest_prepare", trees[0]), flush=True)
    rows = []
    for fmt in a.formats.split(","):
        runs: dict[str, list[dict]] = {"floor": [], **{t: [] for t in trees}}
        for _ in range(a.repeat):
            runs["floor"].append(phase(f"ingest_floor_{fmt}", trees[0]))
            for t in trees:
                runs[t].append(phase(f"ingest_{fmt}", t))
            print(fmt, *(f"{k}={v[-1]['seconds']:.2f}s" for k, v in runs.items()), flush=True)
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        rss = {k: statistics.median(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
        for t in trees:
            n = runs[t][0]["rows"]
            rows.append(
                (fmt, t, med["floor"], rss["floor"], med[t], rss[t], med[t] / med["floor"], n / med[t])
            )
    print(
        f"\n{'input':8} {'floor s':>8} {'floor RSS':>10} {'alertlab s':>11} {'alertlab RSS':>13} {'ratio':>6} {'rows/s':>10}  tree"
    )
    for fmt, t, fs, fr, os_, or_, ratio, rps in rows:
        print(f"{fmt:8} {fs:8.2f} {fr:8.0f}MB {os_:11.2f} {or_:11.0f}MB {ratio:6.2f} {rps:10,.0f}  {t}")


if __name__ == "__main__":
    main()
