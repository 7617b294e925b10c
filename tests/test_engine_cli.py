"""``--fill-on-zero-volume`` end to end: accepted by ``bt`` and ``optimize``, changes the trades on
data with no-trade bars, and is recorded with the strategy (run config, recommended config)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from alertlab.cli import app
from alertlab.demo.market import DemoSpec, make_demo
from alertlab.engine import Strategy
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.store import resolve_home

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A small demo market with its quirks on: dead stretches of flat zero-volume bars."""
    root = tmp_path_factory.mktemp("fzv-home")
    spec = DemoSpec(seed=5, n_alerts=200, n_tokens=100, n_callers=5, days=20, history_hours=12)
    files = make_demo(root / "in", spec)
    h = resolve_home(root / "home")
    ingest_candles(h, [files.candles_dir])
    ingest_alerts(h, [files.alerts_csv])
    return h


def _bt(home, *args: str) -> dict:
    res = runner.invoke(app, ["bt", "--home", str(home.root), "--horizon-hours", "12", "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_bt_flag_is_recorded_and_changes_fills(home):
    args = ("--tp", "3", "--sl", "0.6", "--time-stop-hours", "4", "--trail", "0.3")
    new, old = _bt(home, *args), _bt(home, *args, "--fill-on-zero-volume")
    assert new["strategy"]["fill_on_zero_volume"] is False and old["strategy"]["fill_on_zero_volume"] is True
    assert new["summary"]["fill_on_zero_volume"] is False and old["summary"]["fill_on_zero_volume"] is True
    assert new["summary"]["n_trades"] > 0
    assert new["summary"]["avg_ret"] != old["summary"]["avg_ret"]  # the demo has no-trade bars
    back = _bt(home, *args, "--no-fill-on-zero-volume")
    assert back["summary"]["avg_ret"] == new["summary"]["avg_ret"]


def test_bt_flag_from_a_strategy_file(home, tmp_path):
    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps({"tp": 3, "sl": 0.6, "fill_on_zero_volume": True}))
    doc = _bt(home, "--strategy-config", str(cfg))
    assert doc["strategy"]["fill_on_zero_volume"] is True
    assert (
        _bt(home, "--strategy-config", str(cfg), "--no-fill-on-zero-volume")["strategy"][
            "fill_on_zero_volume"
        ]
        is False
    )


def test_optimize_flag_reaches_the_recommended_config(home, tmp_path):
    out = tmp_path / "best.json"
    res = runner.invoke(
        app,
        [
            "optimize",
            "--home",
            str(home.root),
            "--horizon-hours",
            "12",
            "--folds",
            "2",
            "--min-trades",
            "1",
            "--sampler",
            "random",
            "--trials",
            "4",
            "--fill-on-zero-volume",
            "--json",
            "--export-config",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["recommended"] is not None, doc
    assert doc["recommended"]["config"]["fill_on_zero_volume"] is True
    assert Strategy.from_file(out).fill_on_zero_volume is True
