"""Wiring through the command line: every flag reaches the run's recorded config and changes the
result where it should; the take-profit rule; the tables the README promises; terminal widths;
``--help`` text; path-cache keys per window rule and per candle change; the study's embargo.

One small demo home (module fixture) serves every test; all runs use a 6 h horizon so they share
one path-cache entry unless a test changes a window rule on purpose.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import duckdb
import numpy as np
import optuna
import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from alertlab.app.optimize import run_optimize
from alertlab.cli import app
from alertlab.cli import render as render_mod
from alertlab.demo.market import DemoSpec, make_demo
from alertlab.engine import Strategy, backtest
from alertlab.engine.summary import mean_lower_bound, t_quantile_975
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.optimize.evaluate import EngineSettings, strategy_config, time_order
from alertlab.optimize.space import SearchSpace
from alertlab.optimize.storage import open_storage
from alertlab.optimize.study import OptimizeOptions
from alertlab.store import Home
from alertlab.store.candles import bucket_file, bucket_of
from alertlab.windows import cache as cache_mod
from alertlab.windows.select import select_alerts
from alertlab.windows.spec import Selection, WindowSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()
H = ["--horizon-hours", "6"]
BASE = ["--tp", "3", "--sl", "0.5", *H]
LAG_CALLER = "Lag Tester"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    root = tmp_path_factory.mktemp("wiring")
    spec = DemoSpec(seed=5, n_callers=6, n_tokens=60, n_alerts=150, days=8, history_hours=24, clean=True)
    files = make_demo(root / "in", spec)
    h = Home(root / "home")
    ingest_candles(h, [files.candles_dir])
    ingest_alerts(h, [files.alerts_csv])
    # one alert 150 s before its token's first bar: entry lag 150 s (ok by default, stale at 60 s)
    a = select_alerts(h).iloc[0]
    t = pq.read_table(bucket_file(h, a["chain"], bucket_of(a["token"])), filters=[("token", "=", a["token"])])
    first = int(pd.Series(t["ts"].to_numpy()).min())
    extra = root / "lag.csv"
    pd.DataFrame(
        {"caller": [LAG_CALLER], "chain": [a["chain"]], "token": [a["token"]], "ts": [(first - 150) * 1000]}
    ).to_csv(extra, index=False)
    rep = ingest_alerts(h, [extra])
    assert rep.rows_new == 1
    return h


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """A fixed 200-column console (pytest-xdist workers may set $COLUMNS); width tests override it."""
    monkeypatch.setattr(render_mod.console, "width", 200)
    monkeypatch.setattr(render_mod, "WIDE", False)


def cli(home: Home | None, *args: str, env: dict | None = None):
    extra = ["--home", str(home.root)] if home is not None else []
    return runner.invoke(app, [*args, *extra], env=env)


def ok_json(home: Home, *args: str) -> dict:
    r = cli(home, *args, "--json")
    assert r.exit_code == 0, (args, r.output)
    return json.loads(r.stdout)


def run_row(home: Home, run_id: str) -> dict:
    con = duckdb.connect(str(home.catalog_path), read_only=True)
    try:
        row = con.execute(
            "SELECT kind, config, counts, fingerprint, cache_hit FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
    finally:
        con.close()
    assert row is not None, run_id
    return {
        "kind": row[0],
        "config": json.loads(row[1]),
        "counts": json.loads(row[2]),
        "fingerprint": row[3],
        "cache_hit": row[4],
    }


def dig(d: dict, path: str):
    for k in path.split("."):
        d = d[k]
    return d


def last_run_id(home: Home) -> str:
    con = duckdb.connect(str(home.catalog_path), read_only=True)
    try:
        return con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()


def numbers(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def same(a: dict, b: dict) -> bool:
    a, b = numbers(a), numbers(b)
    return a.keys() == b.keys() and all(
        (x == y)
        or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        or (x is None and y is None)
        for x, y in ((a[k], b[k]) for k in a)
    )


# ------------------------------------------------------------------------------------------
# one take-profit rule, everywhere


def test_tp_and_tp_ladder_together_is_one_clear_error(home, tmp_path):
    r = cli(home, "bt", "--tp", "3", "--tp-ladder", "2:0.5,4:0.5", *H)
    assert r.exit_code == 2 and "give --tp or --tp-ladder, not both" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    # the ladder check still runs: a bad ladder is named in the same line
    r = cli(home, "bt", "--tp", "3", "--tp-ladder", "2:0.5,4:0.6", *H)
    assert r.exit_code == 2 and "not both" in r.output and "fractions sum to 1.1 > 1" in r.output
    r = cli(home, "bt", "--tp-ladder", "2:0.5,4:0.6", *H)
    assert r.exit_code == 2 and "--tp-ladder fractions sum to 1.1 > 1" in r.output
    # a strategy file holding both is rejected the same way (in the file's own words)
    both = tmp_path / "both.json"
    both.write_text(json.dumps({"tp": 3, "tp_ladder": "2:0.5,4:0.5"}))
    r = cli(home, "bt", "--strategy-config", str(both), *H)
    assert r.exit_code == 2 and "give tp or tp_ladder, not both" in r.output and str(both) in r.output
    # a take-profit flag replaces the file's take-profit rule, whichever of the two it holds
    f = tmp_path / "tp.json"
    f.write_text(json.dumps({"tp": 2.0, "sl": 0.6}))
    d = ok_json(home, "bt", "--strategy-config", str(f), "--tp-ladder", "2:0.5,4:0.5", *H)
    assert (
        d["strategy"]["tp"] is None
        and d["strategy"]["tp_ladder"] == "2:0.5,4:0.5"
        and d["strategy"]["sl"] == 0.6
    )
    # and a search space that can turn both on is rejected before any trial runs
    sp = tmp_path / "space.json"
    sp.write_text(json.dumps({"tp": {"low": 2, "high": 4}, "tp_ladder": {"choices": ["2:0.5,4:0.5", None]}}))
    r = cli(home, "optimize", "--space", str(sp), "--trials", "2", *H)
    assert r.exit_code == 2 and "give tp or tp_ladder, not both" in r.output


# ------------------------------------------------------------------------------------------
# every backtest flag reaches the recorded config and changes the result


@pytest.fixture(scope="module")
def base_bt(home) -> dict:
    return ok_json(home, "bt", *BASE)


BT_CASES = [
    # (extra flags, config path, recorded value, flags of the run it must differ from: None = BASE)
    (["--breakeven-at", "1.5"], "strategy.breakeven_at", 1.5, None),
    (
        ["--breakeven-at", "1.5", "--breakeven-offset", "0.2"],
        "strategy.breakeven_offset",
        0.2,
        ["--breakeven-at", "1.5"],
    ),
    (["--trail", "0.3"], "strategy.trail", 0.3, None),
    (["--trail", "0.3", "--trail-activation", "1.8"], "strategy.trail_activation", 1.8, ["--trail", "0.3"]),
    (["--time-stop-hours", "0.5"], "strategy.time_stop_hours", 0.5, None),
    (["--entry-delay-bars", "3"], "strategy.entry_delay_bars", 3, None),
    (["--dip", "0.2"], "strategy.dip", 0.2, None),
    (["--dip", "0.2", "--dip-window", "5"], "strategy.dip_window_min", 5.0, ["--dip", "0.2"]),
    (["--fee-bps", "100"], "strategy.fee_bps", 100.0, None),
    (["--slippage-bps", "150"], "strategy.slippage_bps", 150.0, None),
    (["--interval-seconds", "300"], "window.interval_s", 300, None),
    (["--horizon-hours", "3"], "window.horizon_hours", 3.0, None),
    (["--caller", "Lag Tester"], "selection.callers", ["Lag Tester"], None),
    (["--from", "2025-09-04"], "selection.date_from", "2025-09-04", None),
    (["--to", "2025-09-04"], "selection.date_to", "2025-09-04", None),
    (["--capital", "1000", "--stake-pct", "0.1"], "portfolio.stake_pct", 0.1, None),
    (
        ["--capital", "1000", "--stake-pct", "0.1", "--max-open", "1"],
        "portfolio.max_open",
        1,
        ["--capital", "1000", "--stake-pct", "0.1"],
    ),
    (
        ["--capital", "1000", "--stake", "50"],
        "portfolio.stake",
        50.0,
        ["--capital", "1000", "--stake-pct", "0.1"],
    ),
    (
        ["--capital", "500", "--stake", "50"],
        "portfolio.capital",
        500.0,
        ["--capital", "1000", "--stake", "50"],
    ),
]


@pytest.mark.parametrize(
    ("extra", "path", "value", "against"), BT_CASES, ids=[" ".join(c[0]) for c in BT_CASES]
)
def test_backtest_flag_reaches_config_and_result(home, base_bt, extra, path, value, against):
    args = [*BASE, *extra] if "--horizon-hours" not in extra else ["--tp", "3", "--sl", "0.5", *extra]
    d = ok_json(home, "bt", *args)
    rec = run_row(home, d["run_id"])
    assert rec["kind"] == "backtest"
    assert dig(rec["config"], path) == value
    ref = base_bt if against is None else ok_json(home, "bt", *BASE, *against)
    if path.startswith("portfolio"):
        assert d["portfolio"] != ref.get("portfolio"), extra
    else:
        assert not same(d["summary"], ref["summary"]), extra


def test_intrabar_flag_selects_the_policy(home, base_bt):
    d = ok_json(home, "bt", *BASE, "--intrabar", "optimistic")
    assert run_row(home, d["run_id"])["config"]["strategy"]["intrabar"] == "optimistic"
    assert d["summary"]["avg_ret"] == pytest.approx(base_bt["summary"]["avg_ret_optimistic"], rel=1e-12)
    assert base_bt["summary"]["avg_ret"] == pytest.approx(
        base_bt["summary"]["avg_ret_pessimistic"], rel=1e-12
    )


def test_max_entry_lag_reaches_backtest_and_baseline(home):
    for cmd in ("bt", "baseline"):
        extra = BASE if cmd == "bt" else H
        default = ok_json(home, cmd, *extra)
        tight = ok_json(home, cmd, *extra, "--max-entry-lag-s", "60")
        rec_d, rec_t = run_row(home, default["run_id"]), run_row(home, tight["run_id"])
        assert rec_t["config"]["window"]["max_entry_lag_s"] == 60, cmd
        assert rec_t["fingerprint"] != rec_d["fingerprint"], cmd
        if cmd == "baseline":
            assert tight["counts"]["status_stale"] == default["counts"]["status_stale"] + 1
        else:
            assert tight["summary"]["n_trades"] == default["summary"]["n_trades"] - 1


def test_export_flags_write_files_and_record_them(home, tmp_path):
    outs = {
        "per_trade": (
            ["bt", *BASE, "--export-per-trade-parquet", str(tmp_path / "t.parquet")],
            tmp_path / "t.parquet",
        ),
        "grid": (
            ["bt", "--tp", "2,3", "--sl", "0.5", *H, "--export-grid-parquet", str(tmp_path / "g.parquet")],
            tmp_path / "g.parquet",
        ),
        "baseline": (
            ["baseline", *H, "--export-baseline-parquet", str(tmp_path / "b.parquet")],
            tmp_path / "b.parquet",
        ),
        "per_alert_bars": (
            ["baseline", *H, "--export-per-alert-parquet", str(tmp_path / "bars")],
            tmp_path / "bars",
        ),
        "per_caller": (
            ["baseline", *H, "--export-per-caller-parquet", str(tmp_path / "pc")],
            tmp_path / "pc",
        ),
    }
    for name, (args, path) in outs.items():
        d = ok_json(home, *args)
        assert path.exists(), name
        con = duckdb.connect(str(home.catalog_path), read_only=True)
        try:
            got = con.execute("SELECT name, path FROM results WHERE run_id = ?", [d["run_id"]]).fetchall()
        finally:
            con.close()
        assert (name, str(path)) in [(n, p) for n, p in got], (name, got)


def test_force_recompute_and_alertlab_home(home, tmp_path):
    d = ok_json(home, "bt", *BASE, "--force-recompute")
    rec = run_row(home, d["run_id"])
    assert rec["config"]["force_recompute"] is True and rec["cache_hit"] is False and d["cache_hit"] is False
    b = ok_json(home, "baseline", *H, "--force-recompute")
    assert run_row(home, b["run_id"])["config"]["force_recompute"] is True and b["cache_hit"] is False
    # $ALERTLAB_HOME: no --home, the run lands in that workspace
    r = runner.invoke(app, ["bt", *BASE, "--json"], env={"ALERTLAB_HOME": str(home.root)})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["run_id"] == last_run_id(home)


def test_optimize_flags_reach_the_recorded_config(home, tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"tp": {"choices": [2, 3, 4]}, "sl": {"choices": [0.4, 0.6]}}))
    trials, cfg = tmp_path / "trials.parquet", tmp_path / "best.yaml"
    d = ok_json(
        home,
        "optimize",
        *H,
        "--space",
        str(space),
        "--sampler",
        "random",
        "--trials",
        "6",
        "--seed",
        "3",
        "--batch-size",
        "3",
        "--folds",
        "2",
        "--min-trades",
        "2",
        "--max-dd",
        "50",
        "--objective",
        "sharpe",
        "--fee-bps",
        "10",
        "--slippage-bps",
        "20",
        "--intrabar",
        "optimistic",
        "--pbo-blocks",
        "4",
        "--neighbours",
        "2",
        "--study",
        "wired",
        "--workers",
        "2",
        "--export-trials-parquet",
        str(trials),
        "--export-config",
        str(cfg),
    )
    o = run_row(home, d["run_id"])["config"]
    opts = o["options"]
    assert opts["space"] == {"tp": {"choices": [2, 3, 4]}, "sl": {"choices": [0.4, 0.6]}}
    assert (opts["sampler"], opts["trials"], opts["seed"], opts["batch_size"], opts["folds"]) == (
        "random",
        6,
        3,
        3,
        2,
    )
    assert (opts["min_trades"], opts["max_dd"], opts["objective"]) == (2, 50.0, "sharpe")
    assert (opts["fee_bps"], opts["slippage_bps"], opts["intrabar"]) == (10.0, 20.0, "optimistic")
    assert (opts["pbo_blocks"], opts["neighbours"], opts["workers"]) == (4, 2, 2)
    assert o["study"] == "wired" and o["window"]["horizon_hours"] == 6.0
    assert trials.exists() and cfg.exists()
    rec = Strategy.from_file(cfg)
    assert (rec.fee_bps, rec.slippage_bps, rec.intrabar) == (10.0, 20.0, "optimistic")
    assert rec.tp in (2, 3, 4) and rec.sl in (0.4, 0.6)
    t = pd.read_parquet(trials)
    assert set(t["p_tp"].dropna()) <= {2, 3, 4} and set(t["p_sl"].dropna()) <= {0.4, 0.6}
    # two worker processes ran the trials
    study = optuna.load_study(
        study_name=d["study"], storage=open_storage(home.studies_dir / "wired" / "journal.log")
    )
    assert len({t.user_attrs["owner"]["pid"] for t in study.trials}) == 2
    assert d["n_complete"] == 6


def test_optimize_trials_means_completed_trials(home, tmp_path):
    space = tmp_path / "space.json"
    space.write_text(
        json.dumps(
            {"tp": 3, "sl": 0.5, "dip": {"choices": [None, 0.2]}, "entry_delay_bars": {"choices": [0, 1]}}
        )
    )
    d = ok_json(
        home,
        "optimize",
        *H,
        "--space",
        str(space),
        "--sampler",
        "random",
        "--trials",
        "10",
        "--seed",
        "5",
        "--folds",
        "2",
        "--min-trades",
        "1",
        "--study",
        "completed",
    )
    assert d["n_complete"] == 10 and d["n_failed"] > 0 and d["n_trials"] == 10 + d["n_failed"]
    r = cli(
        home,
        "optimize",
        *H,
        "--space",
        str(space),
        "--sampler",
        "random",
        "--trials",
        "10",
        "--seed",
        "5",
        "--folds",
        "2",
        "--min-trades",
        "1",
        "--study",
        "completed",
    )
    assert r.exit_code == 0, r.output
    assert f"10 completed of 10 (0 new; {d['n_failed']} failed and replaced" in " ".join(r.output.split())


# ------------------------------------------------------------------------------------------
# the embargo of a real study


def test_every_fold_embargo_equals_the_horizon_and_matches_the_engine(home):
    horizon_h = 6.0
    d = ok_json(
        home,
        "optimize",
        "--horizon-hours",
        str(horizon_h),
        "--sampler",
        "random",
        "--trials",
        "4",
        "--folds",
        "3",
        "--min-trades",
        "1",
        "--study",
        "embargo",
    )
    assert len(d["folds"]) == 3
    for f in d["folds"]:
        assert f["test_from"] - f["train_to"] == int(horizon_h * 3_600_000), f
    # the same pipeline in Python: every train alert's window ends before its fold's test span starts,
    # and the study's fold metrics are the engine's backtest over the study's own folds
    spec = WindowSpec(horizon_hours=horizon_h)
    res = run_optimize(
        home,
        Selection(),
        spec,
        OptimizeOptions(
            space=SearchSpace.from_dict({"tp": {"choices": [2, 4]}, "sl": {"choices": [0.5]}}),
            sampler="random",
            trials=2,
            folds=3,
            min_trades=1,
        ),
        study="embargo-py",
    )
    s = res.study
    w, _ = cache_mod.get_windows(home, select_alerts(home), spec)
    order = time_order(w, np.flatnonzero(w.status == 0))
    ts = np.asarray(w.alert_ts_ms, dtype=np.int64)
    for f in s.folds:
        assert f.test_from - f.train_to == spec.horizon_s * 1000
        tr, te = ts[order[f.train_idx]], ts[order[f.test_idx]]
        assert tr.size and te.size and tr.max() + spec.horizon_s * 1000 <= f.test_from <= te.min()
    study = optuna.load_study(
        study_name=s.name, storage=open_storage(home.studies_dir / "embargo-py" / "journal.log")
    )
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        r = t.user_attrs["result"]
        cfg = strategy_config(r["options"], EngineSettings())
        for j, f in enumerate(s.folds):
            for split, pos in (("train", f.train_idx), ("test", f.test_idx)):
                want = backtest(w, cfg, order[pos]).summary["avg_ret"]
                assert r["folds"][split]["avg_ret"][j] == pytest.approx(want, rel=1e-12), (t.number, j, split)


# ------------------------------------------------------------------------------------------
# path-cache keys


def test_fingerprint_changes_with_every_window_rule(home):
    alerts = select_alerts(home)
    fp = lambda **kw: cache_mod.fingerprint(home, alerts, WindowSpec(**kw))[0]  # noqa: E731
    base = fp(interval_s=60, horizon_hours=6)
    assert fp(interval_s=60, horizon_hours=6) == base
    assert fp(interval_s=300, horizon_hours=6) != base
    assert fp(interval_s=60, horizon_hours=7) != base
    assert fp(interval_s=60, horizon_hours=6, max_entry_lag_s=60) != base
    assert fp(interval_s=60, horizon_hours=6, max_entry_lag_s=300) == base  # the default is 5·I: same rule
    assert cache_mod.fingerprint(home, alerts.iloc[1:], WindowSpec(horizon_hours=6))[0] != base


def test_fingerprint_follows_the_candles_of_selected_tokens_only(home, tmp_path):
    alerts = select_alerts(home)
    caller = alerts["caller"].value_counts().index[0]
    mine = alerts[alerts["caller"] == caller]
    groups = {(c, bucket_of(t)) for c, t in zip(mine["chain"], mine["token"], strict=True)}
    spec = WindowSpec(horizon_hours=6)
    before = cache_mod.fingerprint(home, mine, spec)[0]

    def add_bars(chain: str, token: str, name: str) -> None:
        t = pq.read_table(
            bucket_file(home, chain, bucket_of(token)), filters=[("token", "=", token)]
        ).to_pandas()
        last = t.sort_values("ts").iloc[-1]
        ts = int(last["ts"]) + 60 * np.arange(1, 4)
        p = float(last["close"])
        df = pd.DataFrame(
            {"timestamp": ts, "open": p, "high": p * 1.01, "low": p * 0.99, "close": p, "volume": 1.0}
        )
        d = tmp_path / name
        d.mkdir()
        df.to_csv(d / f"{chain}_{token}.csv", index=False)
        ingest_candles(home, [d])

    other = alerts[
        [(c, bucket_of(t)) not in groups for c, t in zip(alerts["chain"], alerts["token"], strict=True)]
    ]
    assert len(other), "the fixture needs a token in a bucket the caller does not read"
    o = other.iloc[0]
    add_bars(o["chain"], o["token"], "unrelated")
    assert cache_mod.fingerprint(home, mine, spec)[0] == before  # another bucket: same key
    m = mine.iloc[0]
    add_bars(m["chain"], m["token"], "selected")
    assert cache_mod.fingerprint(home, mine, spec)[0] != before  # new candles for a selected token


# ------------------------------------------------------------------------------------------
# what the user sees


def table_titles(out: str) -> str:
    return " ".join(out.split())


def test_backtest_prints_every_promised_table(home):
    r = cli(home, "bt", *BASE)
    assert r.exit_code == 0, r.output
    out = table_titles(r.output)
    assert "strategy: tp 3 · sl 0.5 · fees 30 bps · slippage 50 bps · pessimistic intrabar" in out
    for title in (
        "backtest (native bars, 6h horizon; pessimistic intrabar",
        "exit reasons",
        "per caller (≥ 10 trades), ranked by the lower 95% bound of the mean return",
        "path cache:",
    ):
        assert title in out, title
    for reason in ("tp", "sl", "horizon", "no_fill"):
        assert f"│ {reason} " in r.output
    d = ok_json(home, "bt", *BASE)
    s = d["summary"]
    exits = sum(v for k, v in s.items() if k.startswith("exit_"))
    assert exits == s["n_trades"] and s["exit_tp"] > 0 and s["exit_sl"] > 0
    plain = cli(home, "backtest", *H)
    assert plain.exit_code == 0 and "hold to horizon (no exit rule given)" in plain.output
    grid = cli(home, "bt", "--tp", "2,3", "--sl", "0.5", *H)
    assert grid.exit_code == 0 and "grid: 2 combinations" in table_titles(grid.output)
    port = cli(home, "bt", *BASE, "--capital", "1000", "--stake", "10")
    assert port.exit_code == 0 and "portfolio" in port.output and "final_equity" in port.output


def test_baseline_and_optimize_print_their_tables(home):
    r = cli(home, "baseline", *H, "--min-calls", "5")
    assert r.exit_code == 0, r.output
    out = table_titles(r.output)
    assert (
        "caller leaderboard (≥ 5 usable calls), ranked by the lower 95% Wilson bound of the 2x hit rate"
        in out
    )
    assert "native bars, 6h horizon" in out
    assert "first_call: share of calls that were the first call of the token in the store" in out
    r = cli(
        home,
        "optimize",
        *H,
        "--sampler",
        "random",
        "--trials",
        "4",
        "--folds",
        "2",
        "--min-trades",
        "1",
        "--study",
        "tables",
    )
    assert r.exit_code == 0, r.output
    out = table_titles(r.output)
    for title in (
        "optimize",
        "study",
        "walk-forward folds",
        "leaderboard: feasible trials, best robust score first",
        "recommended (max robust score, not max training score)",
    ):
        assert title in out, title


def test_per_caller_ranking_is_sample_aware(home):
    st = pytest.importorskip("scipy.stats")
    from alertlab.app.backtest import run_backtest

    res = run_backtest(Strategy(tp=3, sl=0.5), home, spec=WindowSpec(horizon_hours=6)).result
    trades = res.trades[res.trades["exit_reason"] != "no_fill"]
    for _, row in res.per_caller.iterrows():  # plain-loop reference: mean − t(n−1)·s/√n
        r = [float(x) for x in trades.loc[trades["caller"] == row["caller"], "ret"]]
        n = len(r)
        if n < 2:
            assert math.isnan(row["avg_ret_lo95"])
            continue
        m = sum(r) / n
        sd = math.sqrt(sum((x - m) ** 2 for x in r) / (n - 1))
        assert row["n_trades"] == n
        assert row["avg_ret_lo95"] == pytest.approx(m - st.t.ppf(0.975, n - 1) * sd / math.sqrt(n), abs=1e-4)
    pc = res.per_caller
    r = cli(home, "bt", *BASE, "--min-calls", "10")
    shown = [c for c in pc["caller"] if f"│ {c}" in r.output]
    hidden = pc[pc["n_trades"] < 10]["caller"].tolist()
    assert LAG_CALLER in hidden and LAG_CALLER not in shown
    want = pc[pc["n_trades"] >= 10].sort_values("avg_ret_lo95", ascending=False)["caller"].tolist()
    pos = [r.output.index(f"│ {c}") for c in want]
    assert pos == sorted(pos)  # printed in the order of the lower bound
    assert f"{len(hidden)} caller(s) with fewer than 10 trades not shown" in r.output


def test_t_quantile_matches_scipy():
    st = pytest.importorskip("scipy.stats")
    df = np.arange(1, 400)
    np.testing.assert_allclose(t_quantile_975(df), st.t.ppf(0.975, df), atol=3e-4)
    assert math.isnan(mean_lower_bound(0.1, 0.2, 1)) and mean_lower_bound(0.1, 0.0, 5) == 0.1


@pytest.mark.parametrize("width", [80, 120])
def test_main_tables_fit_the_terminal_without_wrapping(home, monkeypatch, width):
    monkeypatch.setattr(render_mod.console, "width", width)
    for args in (
        ["bt", *BASE],
        ["baseline", *H, "--min-calls", "5"],
        ["quality"],
        [
            "optimize",
            *H,
            "--sampler",
            "random",
            "--trials",
            "4",
            "--folds",
            "2",
            "--min-trades",
            "1",
            "--study",
            "tables",
        ],
    ):
        r = cli(home, *args)
        assert r.exit_code == 0, (args, r.output)
        rows = [ln for ln in r.output.splitlines() if ln[:1] in "┏┃┡│└┌┗╭"]
        if args[0] == "bt":  # every caller of the per-caller table on exactly one line
            callers = [c for c in select_alerts(home)["caller"].value_counts().index if f"│ {c}" in r.output]
            assert callers and all(sum(f"│ {c}" in ln for ln in rows) == 1 for c in callers)
        assert rows, args
        assert max(cell_len(ln) for ln in rows) <= width, (args, max(rows, key=cell_len))
        # no row wrapped: every body line of a table has its cells on one line (no empty continuation cells)
        for ln in rows:
            if ln.startswith("│") and ln.count("│") > 2:
                cells = [c.strip() for c in ln.strip("│").split("│")]
                assert any(cells), ln
    # --wide shows every column, wider than the terminal if it must
    monkeypatch.setattr(render_mod.console, "width", 80)
    narrow = cli(home, "bt", *BASE)
    wide = cli(home, "bt", *BASE, "--wide")
    assert "column(s) left out at this width" in narrow.output and "--wide shows all" in narrow.output
    assert "left out" not in wide.output and "worst_ret" in wide.output
    render_mod.WIDE = False


def test_render_fits_declared_columns():
    df = pd.DataFrame(
        {
            "caller": ["a" * 30, "b"],
            "n": [12, 3],
            "x": [0.1234, -0.5],
            "iv": [300, 3600],
            "ts": [1_757_000_000, 1_757_000_000_000],
        }
    )
    cols = [
        render_mod.Col("n", "int"),
        render_mod.Col("caller"),
        render_mod.Col("x", "ret", help="a return"),
        render_mod.Col("iv", "interval"),
        render_mod.Col("ts", "ts"),
    ]
    t = render_mod.frame_table(df, "t", cols)
    for width in (40, 80, 120):
        con = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        render_mod.print_tables([t], out=con)
        text = con.export_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("│", "┃"))]
        assert max(cell_len(ln) for ln in lines) <= width
        assert len([ln for ln in lines if ln.startswith("│")]) == 2  # one line per row
    assert render_mod.fmt(300, "interval") == "5m" and render_mod.fmt(3600, "interval") == "1h"
    assert render_mod.fmt(90, "interval") == "1m30s" and render_mod.fmt(86400, "interval") == "1d"
    assert (
        render_mod.fmt(0.1234, "ret") == "+12.3%"
        and render_mod.fmt(1_757_000_000, "ts") == "2025-09-04 15:33"
    )
    assert render_mod.fmt(1_757_000_000_000, "ts") == "2025-09-04 15:33"
    with pytest.raises(ValueError, match="unknown display kind"):
        render_mod.Col("x", "percentish")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name)


def test_help_has_no_python_type_placeholders():
    root = typer.main.get_command(app)
    seen = 0
    for path in [(), *_commands(root)]:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
        assert r.exit_code == 0, (path, r.output)
        for bad in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list", "<%Y", "<Path>", "<datetime>"):
            assert bad not in r.output, (path, bad)
        seen += 1
    assert seen >= 12
    r = runner.invoke(app, ["bt", "--help"], env={"COLUMNS": "160"})
    assert "M[,M…]" in r.output and "M:W,…[;…]" in r.output and "YYYY-MM-DD" in r.output


def test_demo_ends_with_next_commands_and_home_size(tmp_path):
    r = runner.invoke(
        app,
        ["demo", "--alerts", "100", "--seed", "2", "--home", str(tmp_path / "demo")],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    out = r.output
    assert "next, try:" in out and "alertlab backtest --tp 3 --sl 0.5" in out and "alertlab optimize" in out
    assert out.rstrip().splitlines()[-1].strip().startswith("alertlab ")
    size = sum(f.stat().st_size for f in (tmp_path / "demo").rglob("*") if f.is_file()) / 1e6
    said = float(out.split(f"home: {tmp_path / 'demo'} (")[1].split(" MB")[0].replace(",", ""))
    assert said == pytest.approx(size, rel=0.05, abs=0.2) and "MB; removed " in out
    assert not list((tmp_path / "demo" / "demo-input").rglob("candles"))
    assert not [p for p in (tmp_path / "demo" / "cache" / "windows").glob("*") if not p.name.startswith(".")]
    assert Path(tmp_path / "demo" / "catalog.duckdb").exists()


BASELINE_CASES = [
    (
        ["--min-calls", "3"],
        "min_calls",
        3,
        lambda a, b: a["counts"]["callers_ranked"] != b["counts"]["callers_ranked"],
    ),
    (
        ["--rank-by", "ath_median"],
        "rank_by",
        "ath_median",
        lambda a, b: [r["caller"] for r in a["leaderboard"]] != [r["caller"] for r in b["leaderboard"]],
    ),
    (
        ["--interval-seconds", "300"],
        "window.interval_s",
        300,
        lambda a, b: a["counts"]["bars"] != b["counts"]["bars"],
    ),
    (
        ["--horizon-hours", "3"],
        "window.horizon_hours",
        3.0,
        lambda a, b: a["counts"]["bars"] != b["counts"]["bars"],
    ),
    (
        ["--caller", LAG_CALLER, "--min-calls", "1"],
        "selection.callers",
        [LAG_CALLER],
        lambda a, b: a["counts"]["alerts"] == 1,
    ),
    (
        ["--chain", "solana"],
        "selection.chains",
        ["solana"],
        lambda a, b: a["counts"]["alerts"] < b["counts"]["alerts"],
    ),
]


@pytest.mark.parametrize(
    ("extra", "path", "value", "differs"), BASELINE_CASES, ids=[" ".join(c[0]) for c in BASELINE_CASES]
)
def test_baseline_flag_reaches_config_and_result(home, extra, path, value, differs):
    base = ok_json(home, "baseline", *H, "--min-calls", "5")
    args = (
        [*H, "--min-calls", "5", *extra] if "--horizon-hours" not in extra else ["--min-calls", "5", *extra]
    )
    d = ok_json(home, "baseline", *args)
    rec = run_row(home, d["run_id"])
    assert rec["kind"] == "baseline" and dig(rec["config"], path) == value
    assert differs(d, base), extra


def test_optimize_fold_and_storage_flags(home, tmp_path):
    journal = tmp_path / "elsewhere.log"
    d = ok_json(
        home,
        "optimize",
        *H,
        "--sampler",
        "random",
        "--trials",
        "3",
        "--min-trades",
        "1",
        "--anchored",
        "--train-days",
        "3",
        "--test-days",
        "2",
        "--stale-after",
        "120",
        "--storage",
        str(journal),
        "--study",
        "spans",
    )
    o = run_row(home, d["run_id"])["config"]
    assert (o["options"]["anchored"], o["options"]["train_days"], o["options"]["test_days"]) == (
        True,
        3.0,
        2.0,
    )
    assert o["options"]["stale_after"] == 120.0 and o["storage"] == str(journal) and journal.exists()
    folds = d["folds"]
    assert len({f["train_from"] for f in folds}) == 1  # anchored: every fold trains from the first alert
    assert all(f["test_to"] - f["test_from"] <= 2 * 86_400_000 for f in folds)
    pc = ok_json(
        home,
        "optimize",
        *H,
        "--sampler",
        "random",
        "--trials",
        "2",
        "--folds",
        "2",
        "--min-trades",
        "1",
        "--per-caller",
        "--min-calls",
        "20",
        "--study",
        "callers",
    )
    o = run_row(home, pc["run_id"])["config"]
    assert o["per_caller"] is True and o["min_calls"] == 20
    assert {r["caller"] for r in pc["skipped_callers"]} >= {LAG_CALLER}
    assert all(r["n_alerts"] >= 20 for r in pc["per_caller"])
