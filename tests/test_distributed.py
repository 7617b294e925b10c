"""Scale-out on real Dask servers: a ``dask scheduler`` and two ``dask worker`` processes (fixture
``dask_cluster``) and ``local:2``. Grids, backtests, baselines and studies must equal the local run
bit for bit, whatever the chunking, also when a worker is SIGKILLed mid-run; errors are one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alertlab.cli import app
from alertlab.demo.market import DemoSpec, make_demo
from alertlab.engine import Strategy, StrategyGrid, backtest, run_grid
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.store import resolve_home
from alertlab.truth.metrics import baseline_table
from alertlab.windows.select import load_windows
from alertlab.windows.spec import WindowSpec

from services import child_env
from windowgen import random_windows

pytest.importorskip("distributed", reason="dask.distributed not installed: pip install -e '.[test]'")

runner = CliRunner()
H = ["--horizon-hours", "6"]
GRID = ["--tp", "1.5,2,3,5", "--sl", "0.3,0.5,0.7", "--time-stop-hours", "2,6"]
RICH = StrategyGrid(
    tp=[1.5, 2.0, 3.0, 6.0],
    sl=[0.4, 0.6],
    trail=[0.2, 0.35],
    trail_activation=1.5,
    breakeven_at=[2.0],
    time_stop_hours=[1.0, 3.0],
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist-home")
    spec = DemoSpec(seed=3, n_alerts=300, n_tokens=150, n_callers=6, days=30, history_hours=12, clean=True)
    files = make_demo(root / "in", spec)
    h = resolve_home(root / "home")
    ingest_candles(h, [files.candles_dir])
    ingest_alerts(h, [files.alerts_csv])
    w, info = load_windows(h, None, WindowSpec(horizon_hours=6))
    return h, w, info


def cli(*args: str):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res


def same_table(a, b) -> bool:
    return a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None))


def session(address, data="auto", **kw):
    from alertlab.distributed.cluster import session as open_session

    return open_session(address, data, **kw)


def killer(pids: list[int], after: int = 1):
    """An ``on_task`` callback that SIGKILLs the given PIDs once ``after`` tasks have completed."""
    state = {"n": 0, "killed": False}

    def on_task(_weight: float) -> None:
        state["n"] += 1
        if state["n"] >= after and not state["killed"]:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            state["killed"] = True

    return on_task, state


# ------------------------------------------------------------------------------------------- tcp


def test_cli_grid_baseline_and_study_on_a_tcp_cluster_equal_local(demo, dask_cluster, tmp_path):
    h, _, _ = demo
    home = ["--home", str(h.root)]
    cl = ["--cluster", dask_cluster.address]

    cli("bt", *home, *H, *GRID, "--json", "--export-grid-parquet", str(tmp_path / "g0.parquet"))
    r = cli("bt", *home, *H, *GRID, "--json", *cl, "--export-grid-parquet", str(tmp_path / "g1.parquet"))
    g0, g1 = pq.read_table(tmp_path / "g0.parquet"), pq.read_table(tmp_path / "g1.parquet")
    assert g0.num_rows == 24 and same_table(g0, g1)
    assert json.loads(r.stdout)["n_combinations"] == 24

    b = ["baseline", *home, *H, "--force-recompute", "--json"]
    r0 = cli(*b, "--export-baseline-parquet", str(tmp_path / "b0.parquet"))
    r1 = cli(*b, *cl, "--export-baseline-parquet", str(tmp_path / "b1.parquet"))
    assert same_table(pq.read_table(tmp_path / "b0.parquet"), pq.read_table(tmp_path / "b1.parquet"))
    assert json.loads(r0.stdout)["leaderboard"] == json.loads(r1.stdout)["leaderboard"]

    o = [
        "optimize",
        *home,
        *H,
        "--folds",
        "3",
        "--min-trades",
        "3",
        "--sampler",
        "tpe",
        "--seed",
        "5",
        "--trials",
        "16",
        "--batch-size",
        "8",
        "--json",
    ]
    s0 = json.loads(cli(*o, "--study", "loc", "--export-trials-parquet", str(tmp_path / "t0.parquet")).stdout)
    s1 = json.loads(
        cli(*o, "--study", "dsk", *cl, "--export-trials-parquet", str(tmp_path / "t1.parquet")).stdout
    )
    assert s0["n_trials"] == s1["n_trials"] == 16
    assert s0["recommended"] is not None and s0["recommended"] == s1["recommended"]
    assert s0["dsr"] == s1["dsr"] and s0["pbo"] == s1["pbo"]
    assert same_table(pq.read_table(tmp_path / "t0.parquet"), pq.read_table(tmp_path / "t1.parquet"))


@pytest.mark.parametrize("data", ["shared", "scatter"])
def test_grid_survives_a_killed_worker(demo, dask_cluster, data):
    _, w, info = demo
    local = run_grid(w, RICH)
    victim = dask_cluster.alive_workers()[0]
    with session(dask_cluster.address, data, alert_chunks=3, param_chunks=16) as s:
        assert s.bind(w, info.path) == data
        s.on_task, state = killer([victim.pid])
        remote = run_grid(w, RICH, simulate=s.simulate_cols)
        assert state["killed"] and victim.wait(10) == -signal.SIGKILL
        assert s.tasks == 3 * 16
        if data == "scatter":  # the victim held a scattered chunk: it was sent again
            assert s.resubmitted > 0
    assert local.equals(remote)
    dask_cluster.add_worker()
    dask_cluster.wait_workers(2)


def test_chunking_does_not_change_a_bit(dask_cluster):
    """Nasty in-memory windows (gaps, flat bars, rugs, tiny prices; no path: scattered), many
    chunkings, the full per-trade backtest and the grid summaries."""
    w = random_windows(np.random.default_rng(11), 180, horizon_s=6 * 3600)
    cfg = Strategy(tp=3.0, sl=0.5, trail=0.3, trail_activation=1.5, time_stop_hours=2)
    ref_grid, ref_bt = run_grid(w, RICH), backtest(w, cfg)
    with session(dask_cluster.address) as s:
        assert s.bind(w, None) == "scatter"
        for ac, pc in ((1, 1), (3, 5), (7, 2), (180, 1)):
            s.alert_chunks, s.param_chunks = ac, pc
            assert run_grid(w, RICH, simulate=s.simulate_cols).equals(ref_grid), (ac, pc)
            bt = backtest(w, cfg, simulate=s.simulate_cols)
            assert bt.trades.equals(ref_bt.trades) and bt.summary == ref_bt.summary
            assert bt.per_caller.equals(ref_bt.per_caller) and bt.equity.equals(ref_bt.equity)
            assert baseline_table(w).equals(s.baseline_table(w))


# ------------------------------------------------------------------------------------------- local:N


def test_local_cluster_grid_baseline_study_and_killed_worker(demo, tmp_path):
    """``local:2`` (the CLI path differs from tcp:// only in connecting: covered by the errors test)."""
    from alertlab.optimize.study import OptimizeOptions, run_study

    _, w, info = demo
    local = run_grid(w, RICH)
    opts = OptimizeOptions(sampler="random", seed=2, trials=12, batch_size=6, folds=3, min_trades=3)
    s0 = run_study(w, opts, tmp_path / "s0", study="s")
    with session("local:2", alert_chunks=2, param_chunks=12) as s:
        assert s.bind(w, info.path) == "shared"
        assert baseline_table(w).equals(s.baseline_table(w))
        pids = list(s.client.run(os.getpid).values())
        s.on_task, state = killer(pids[:1])
        assert run_grid(w, RICH, simulate=s.simulate_cols).equals(local)  # the nanny restarts it
        assert state["killed"]
        s.on_task = None
        from alertlab.distributed.evaluate import ClusterEvaluator

        def make(*a, **k):
            return ClusterEvaluator(*a, session=s, **k)

        s1 = run_study(w, opts, tmp_path / "s1", study="s", make_evaluator=make)
    assert s0.recommended == s1.recommended and s0.trials.equals(s1.trials)
    assert s0.fold_metrics.equals(s1.fold_metrics)


# ------------------------------------------------------------------------------------------- errors


def test_clear_one_line_errors(demo, monkeypatch):
    from services import free_port

    h, _, _ = demo
    monkeypatch.setenv("ALERTLAB_DASK_TIMEOUT", "2")
    base = ["bt", "--home", str(h.root), *H, *GRID]
    cases = [
        (["--cluster", f"tcp://127.0.0.1:{free_port()}"], "cannot reach the Dask scheduler"),
        (["--cluster", "127.0.0.1"], "expected tcp://HOST:PORT"),
        (["--cluster", "local:0"], "N >= 1"),
        (["--cluster", "local:1", "--cluster-data", "nfs"], "--cluster-data must be one of"),
    ]
    for extra, msg in cases:
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 2, res.output
        assert (
            msg in res.output and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
        )
    res = runner.invoke(
        app, ["optimize", "--home", str(h.root), *H, "--workers", "2", "--cluster", "local:1"]
    )
    assert res.exit_code == 2 and "--workers 1" in res.output
    monkeypatch.setenv("ALERTLAB_DASK_SCHEDULER", "local:0")  # the environment variable is read too
    res = runner.invoke(app, base)
    assert res.exit_code == 2 and "N >= 1" in res.output
    # without the extra (dask made unimportable in a fresh interpreter)
    code = (
        "import sys; sys.modules['distributed'] = None; sys.argv = ['alertlab', *sys.argv[1:]];"
        "from alertlab.cli import main; main()"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, *base, "--cluster", "local:1"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "pip install 'alertlab[distributed]'" in p.stdout + p.stderr, (
        p.stdout + p.stderr
    )
    assert "Traceback" not in p.stdout + p.stderr


def test_no_dask_import_on_the_default_path():
    code = (
        "import sys, alertlab, alertlab.cli, alertlab.app.baseline, alertlab.app.backtest, "
        "alertlab.app.optimize, alertlab.distributed, alertlab.distributed.run;"
        "bad = [m for m in ('dask', 'distributed') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stdout + p.stderr
