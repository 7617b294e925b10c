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


def run_demo(home: Home, seed: int = 7, n_alerts: int = 3000, progress: bool = False,
             keep_input: bool = False) -> DemoResult:
    """Generate the demo market (deterministic for a seed), ingest it and run the baseline.

    The generated candle CSVs (several hundred MB) are deleted once ingested unless
    ``keep_input``: the seed regenerates them byte for byte. The alerts CSV and the truth file stay.
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
    return DemoResult(home, planted_ranking(spec), ra, rc, bl)
