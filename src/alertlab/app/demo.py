"""``alertlab demo``: synthetic market → ingest → baseline, all inside one home."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace

from alertlab.store import Home


@dataclass
class DemoResult:
    home: Home
    planted: list[str]
    alerts_report: object
    candles_report: object
    baseline: object
    report: object = None  # ReportRun: the HTML report of the demo (None with report=False)
    notes: tuple[str, ...] = ()


DEMO_STUDY = "demo"


def run_demo(home: Home, seed: int = 7, n_alerts: int = 3000, progress: bool = False,
             keep_input: bool = False, report: bool = True) -> DemoResult:
    """Generate the demo market (deterministic for a seed), ingest it and run the baseline.

    The generated candle CSVs (several hundred MB) are deleted once ingested unless
    ``keep_input``: the seed regenerates them byte for byte. The alerts CSV and the truth file stay.
    ``report``: also run a small optimizer study (``demo``, 200 random trials) and write the HTML
    report (a TP × SL grid, the study's recommendation replayed with compounding capital).
    """
    from alertlab.app.baseline import run_baseline
    from alertlab.demo.market import DemoSpec, make_demo, planted_ranking
    from alertlab.ingest import ingest_alerts, ingest_candles

    if n_alerts < 100:
        raise ValueError("--alerts must be at least 100 for a meaningful leaderboard")
    spec = DemoSpec(seed=seed)
    spec = replace(spec, n_alerts=n_alerts, n_tokens=max(50, n_alerts * spec.n_tokens // spec.n_alerts))
    files = make_demo(home.root / "demo-input" / f"seed{seed}-n{n_alerts}", spec)
    rc = ingest_candles(home, [files.candles_dir], progress=progress)  # first: EVM alerts resolve chains from it
    ra = ingest_alerts(home, [files.alerts_csv], progress=progress)
    if not keep_input:
        shutil.rmtree(files.candles_dir, ignore_errors=True)
    bl = run_baseline(home, progress=progress)
    out = DemoResult(home, planted_ranking(spec), ra, rc, bl)
    if report:
        out.report, out.notes = _demo_report(home, progress)
    return out


def _demo_report(home: Home, progress: bool):
    from alertlab.app.report import run_report
    from alertlab.engine import PortfolioConfig, StrategyConfig
    from alertlab.optimize import OptimizeOptions, run_optimize

    notes: list[str] = []
    study: str | None = DEMO_STUDY
    try:
        run_optimize(home, options=OptimizeOptions(trials=200, sampler="random"), study=DEMO_STUDY, progress=progress)
    except ValueError as exc:  # e.g. too few days for the folds at a small --alerts: report without it
        notes.append(f"no demo study: {exc}")
        study = None
    rep = run_report(home, strategy=StrategyConfig(tp=[1.5, 2, 3, 5, 10], sl=[0.3, 0.5, 0.7]),
                     portfolio=PortfolioConfig(capital=10_000, stake_pct=0.02, max_open=20), study=study,
                     progress=progress)
    return rep, tuple(notes)
