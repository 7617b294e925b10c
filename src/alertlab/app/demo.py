"""``alertlab demo``: synthetic market → ingest → baseline, all inside one home."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from alertlab.store import Home

if TYPE_CHECKING:
    from alertlab.app.baseline import BaselineResult
    from alertlab.app.report import ReportRun
    from alertlab.ingest.quality import IngestReport


@dataclass
class DemoResult:
    """What the demo made: the reports, the baseline, the home's size and what it removed."""

    home: Home
    planted: list[str]
    alerts_report: IngestReport
    candles_report: IngestReport
    baseline: BaselineResult
    home_bytes: int = 0
    removed_bytes: int = 0
    report: ReportRun | None = None  # the HTML report of the demo (None with report=False)
    notes: tuple[str, ...] = ()


def tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it does not exist)."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


NEXT_COMMANDS: tuple[tuple[str, str], ...] = (
    ("alertlab backtest --tp 3 --sl 0.5", "one exit strategy: summary, exit reasons, per caller"),
    ("alertlab bt --tp 1.5,2,3,5 --sl 0.3,0.5,0.7", "a grid of strategies in one pass"),
    ("alertlab optimize --study demo --trials 1000", "extend the demo study on walk-forward folds"),
    ("alertlab report --study demo --tp 3 --sl 0.5 --open", "the HTML report with a strategy and the study"),
    ("alertlab baseline --min-calls 20 --wide", "the leaderboard with every column"),
    ("alertlab quality", "candle quality per token"),
    ("alertlab rejects", "the rows the ingest quarantined, with file, row and reason"),
)
"""What to try after the demo (each runs on the demo home: add --home if you gave one)."""


DEMO_STUDY = "demo"


def run_demo(
    home: Home,
    seed: int = 7,
    n_alerts: int = 3000,
    progress: bool = False,
    keep_input: bool = False,
    keep_cache: bool = False,
    report: bool = True,
) -> DemoResult:
    """Generate the demo market (deterministic for a seed), ingest it, run the baseline and write the report.

    The generated candle CSVs (several hundred MB) are deleted once ingested unless
    ``keep_input``: the seed regenerates them byte for byte. The alerts CSV and the truth file stay
    (small; they show what went in). ``report``: also run a small optimizer study (``demo``, 200
    random trials) and write the HTML report (a TP × SL grid, the study's recommendation replayed
    with compounding capital). The path-cache entry (~400 MB at the default size) is removed at the
    end unless ``keep_cache``: the next run rebuilds it from the candle store.
    ``home_bytes`` is the home's size afterwards, ``removed_bytes`` what was removed.
    """
    from alertlab.app.baseline import run_baseline
    from alertlab.demo.market import DemoSpec, make_demo, planted_ranking
    from alertlab.ingest import ingest_alerts, ingest_candles

    if n_alerts < 100:
        raise ValueError("--alerts must be at least 100 for a meaningful leaderboard")
    spec = DemoSpec(seed=seed)
    spec = replace(spec, n_alerts=n_alerts, n_tokens=max(50, n_alerts * spec.n_tokens // spec.n_alerts))
    files = make_demo(home.root / "demo-input" / f"seed{seed}-n{n_alerts}", spec)
    rc = ingest_candles(
        home, [files.candles_dir], progress=progress
    )  # first: EVM alerts resolve chains from it
    ra = ingest_alerts(home, [files.alerts_csv], progress=progress)
    removed = 0
    if not keep_input:
        removed = tree_bytes(files.candles_dir)
        shutil.rmtree(files.candles_dir, ignore_errors=True)
    bl = run_baseline(home, progress=progress)
    out = DemoResult(home, planted_ranking(spec), ra, rc, bl)
    if report:
        out.report, out.notes = _demo_report(home, progress)
    if not keep_cache:
        from alertlab.windows.cache import clear_entries

        removed += tree_bytes(bl.cache.path)
        clear_entries(home, [bl.cache.fingerprint])
    con = home.connect()
    try:
        con.execute("CHECKPOINT")  # fold the write-ahead log into the catalog file
    finally:
        con.close()
    out.home_bytes, out.removed_bytes = tree_bytes(home.root), removed
    return out


def _demo_report(home: Home, progress: bool):
    from alertlab.app.optimize import run_optimize
    from alertlab.app.report import run_report
    from alertlab.engine import PortfolioConfig, StrategyGrid
    from alertlab.optimize import OptimizeOptions

    notes: list[str] = []
    study: str | None = DEMO_STUDY
    try:
        run_optimize(
            home, options=OptimizeOptions(trials=200, sampler="random"), study=DEMO_STUDY, progress=progress
        )
    except ValueError as exc:  # e.g. too few days for the folds at a small --alerts: report without it
        notes.append(f"no demo study: {exc}")
        study = None
    rep = run_report(
        home,
        strategy=StrategyGrid(tp=[1.5, 2, 3, 5, 10], sl=[0.3, 0.5, 0.7]),
        portfolio=PortfolioConfig(capital=10_000, stake_pct=0.02, max_open=20),
        study=study,
        progress=progress,
    )
    return rep, tuple(notes)
