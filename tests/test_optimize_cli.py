"""``alertlab optimize`` end to end on a small synthetic home: CLI output, exports, catalog records,
the path cache (no window rebuild per trial), study reuse checks, per-caller studies, SQL storage."""

from __future__ import annotations

import json

import optuna
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alertlab.cli import app
from alertlab.demo.market import DemoSpec, make_demo
from alertlab.engine import Strategy
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.optimize.space import DEFAULT_SPACE
from alertlab.optimize.study import OptimizeOptions
from alertlab.report.exports import read_provenance
from alertlab.store import resolve_home
from alertlab.windows import cache as cache_mod
from alertlab.windows.spec import WindowSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()
BASE = ["--horizon-hours", "6", "--folds", "3", "--min-trades", "3", "--sampler", "random"]
LONG_COLUMNS = [
    "trial",
    "fold",
    "split",
    "from_ts",
    "to_ts",
    "n_trades",
    "avg_ret",
    "median_ret",
    "sum_ret",
    "win_rate",
    "sharpe",
    "profit_factor",
    "objective",
    *[f"p_{k}" for k in DEFAULT_SPACE.names],
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("opt-home")
    spec = DemoSpec(seed=3, n_alerts=300, n_tokens=150, n_callers=6, days=30, history_hours=12, clean=True)
    files = make_demo(root / "in", spec)
    h = resolve_home(root / "home")
    ingest_candles(h, [files.candles_dir])
    ingest_alerts(h, [files.alerts_csv])
    return h


def invoke(args: list[str]):
    res = runner.invoke(app, ["optimize", *args])
    return res


def test_json_exports_and_recommended_config(home, tmp_path):
    trials_file, cfg_file = tmp_path / "trials.parquet", tmp_path / "best.toml"
    res = invoke(
        [
            "--home",
            str(home.root),
            *BASE,
            "--trials",
            "12",
            "--study",
            "cli",
            "--json",
            "--export-trials-parquet",
            str(trials_file),
            "--export-config",
            str(cfg_file),
        ]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    for key in (
        "run_id",
        "study",
        "folds",
        "recommended",
        "dsr",
        "pbo",
        "leaderboard",
        "n_trials",
        "timings",
    ):
        assert key in doc
    assert doc["study"] == "cli" and doc["n_trials"] == 12 and len(doc["folds"]) == 3
    assert 0.0 <= doc["pbo"]["pbo"] <= 1.0 and 0.0 <= doc["dsr"]["dsr"] <= 1.0
    rec = doc["recommended"]
    loaded = Strategy.from_file(cfg_file)
    assert loaded == Strategy(**rec["config"])
    assert loaded.fee_bps == 30.0 and loaded.slippage_bps == 50.0 and loaded.intrabar == "pessimistic"
    table = pq.read_table(trials_file)
    assert table.column_names == LONG_COLUMNS
    assert table.num_rows == doc["n_complete"] * 3 * 2
    assert read_provenance(trials_file)["run_id"] == doc["run_id"]
    # the study and its exports are recorded in the catalog
    con = home.connect()
    try:
        kind, fp, cfg = con.execute(
            "SELECT kind, fingerprint, config FROM runs WHERE run_id = ?", [doc["run_id"]]
        ).fetchone()
        names = {
            r[0] for r in con.execute("SELECT name FROM results WHERE run_id = ?", [doc["run_id"]]).fetchall()
        }
    finally:
        con.close()
    assert kind == "optimize" and fp == doc["fingerprint"] and json.loads(cfg)["study"] == "cli"
    assert names == {"trials", "recommended_config"}
    # the default config file lands in the study directory; tables print without --json
    res = invoke(["--home", str(home.root), *BASE, "--trials", "14", "--study", "cli"])
    assert res.exit_code == 0, res.output
    assert "recommended" in res.stdout and "leaderboard" in res.stdout
    assert Strategy.from_file(home.studies_dir / "cli" / "recommended.json") is not None


def test_no_window_rebuild_and_no_candle_read_per_trial(home, monkeypatch):
    from alertlab.app.optimize import run_optimize

    cache_mod.clear_entries(home)
    spec = WindowSpec(horizon_hours=6)
    opts = OptimizeOptions(trials=15, sampler="random", folds=3, min_trades=3)
    before = dict(cache_mod.COUNTERS)
    cold = run_optimize(home, spec=spec, options=opts, study="counters")
    assert (
        cache_mod.COUNTERS["builds"] - before["builds"] == 1 and cache_mod.COUNTERS["hits"] == before["hits"]
    )
    assert cold.study.counts["new_trials"] == 15 and not cold.cache.hit

    def boom(*a, **k):
        raise AssertionError("candles read or windows cut during a warm study")

    monkeypatch.setattr(cache_mod, "load_series", boom)
    monkeypatch.setattr(cache_mod, "_build", boom)
    before = dict(cache_mod.COUNTERS)
    warm = run_optimize(
        home, spec=spec, options=OptimizeOptions(**{**opts.__dict__, "trials": 40}), study="counters"
    )
    assert (
        cache_mod.COUNTERS["hits"] - before["hits"] == 1 and cache_mod.COUNTERS["builds"] == before["builds"]
    )
    assert warm.cache.hit and warm.study.counts["new_trials"] == 25 and warm.study.counts["n_trials"] == 40
    assert warm.run.cache_hit and warm.run.fingerprint == cold.run.fingerprint


def test_changed_settings_on_a_named_study_are_rejected(home):
    args = ["--home", str(home.root), *BASE, "--trials", "4", "--study", "fixed"]
    assert invoke(args).exit_code == 0
    res = invoke([*args, "--objective", "sharpe"])
    assert res.exit_code == 2 and "different objective" in res.output
    res = invoke([*args, "--fee-bps", "10"])
    assert res.exit_code == 2 and "fees/slippage/intrabar" in res.output
    res = invoke([*args[:-2], "--sampler", "annealing", "--study", "x"])
    assert res.exit_code == 2 and "sampler: Input should be 'random', 'tpe' or 'grid'" in res.output


def test_per_caller_studies_and_sql_storage(home, tmp_path):
    trials_file = tmp_path / "pc.parquet"
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    res = invoke(
        [
            "--home",
            str(home.root),
            *BASE,
            "--folds",
            "2",
            "--trials",
            "6",
            "--per-caller",
            "--min-calls",
            "45",
            "--storage",
            url,
            "--study",
            "pc",
            "--json",
            "--export-trials-parquet",
            str(trials_file),
        ]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    callers = [r["caller"] for r in doc["per_caller"]]
    assert len(callers) == len(doc["studies"]) >= 2
    assert {s["study"] for s in doc["studies"]} == {f"pc@{c}" for c in callers}
    assert all(s["n_trials"] == 6 for s in doc["studies"])
    assert any(r["reason"].startswith("fewer than 45") for r in doc["skipped_callers"])
    names = optuna.get_all_study_names(storage=url)
    assert sorted(names) == sorted(f"pc@{c}" for c in callers)
    table = pq.read_table(trials_file)
    assert table.column_names == ["caller", *LONG_COLUMNS]
    assert set(table.column("caller").to_pylist()) == set(callers)
    for k, path in doc["exports"].items():
        if k.startswith("config@"):
            assert Strategy.from_file(path) is not None
