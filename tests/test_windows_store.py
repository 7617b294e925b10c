"""Windows end to end through the store: fetched ranges, cache key, guard flags, the one-line messages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alertlab.app.baseline import run_baseline
from alertlab.cli import app
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.windows import OK, STALE, TRUNCATED, cache
from alertlab.windows.spec import WindowSpec

runner = CliRunner()
T0 = 1_760_000_400  # a full hour (2025-10-09T09:00:00Z)
TOK = "0x" + "1f" * 20
OTHER = "0x" + "2e" * 20


def candles(path, ts, price=1.0, vol=1.0, wick: dict | None = None):
    rows = []
    for k, t in enumerate(ts):
        p = price * (1 + 0.01 * np.sin(k))
        h = p * 1.01 if not wick or k not in wick else p * wick[k]
        rows.append((t, p, h, p * 0.99, p, vol))
    pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"]).to_csv(
        path, index=False
    )


def alerts(path, rows):
    pd.DataFrame(
        [{"caller_name": c, "mint": m, "chain": "bsc", "alert_ts_ms": t} for c, m, t in rows]
    ).to_csv(path, index=False)


@pytest.fixture
def small_home(home, tmp_path):
    """One token with 2 h of 1-minute bars then nothing; alerts at its start and on a token without candles."""
    f = tmp_path / f"bsc_{TOK}_20251009-0900_20251009-1100.csv"
    candles(f, [T0 + 60 * k for k in range(120)], wick={30: 800.0})
    ingest_candles(home, [f])
    a = tmp_path / "alerts.csv"
    alerts(a, [("ann", TOK, (T0 - 30) * 1000), ("bob", TOK, (T0 + 1800 + 10) * 1000)])
    ingest_alerts(home, [a])
    return home


def test_fetched_ranges_extend_the_known_data_end(small_home):
    spec = WindowSpec(horizon_hours=6)
    r = run_baseline(small_home, spec=spec, min_calls=1)
    w = r.windows
    assert list(w.status) == [TRUNCATED, TRUNCATED]
    assert w.data_end_ts[0] == T0 + 7200 and w.coverage[0] == pytest.approx(7200 / 21600)
    assert r.status_counts["usable"] == 0 and "below --min-coverage 0.8" in r.diagnosis
    # the fetcher says it asked the source up to T0 + 8 h: the quiet end is not truncation
    con = small_home.connect()
    con.execute(
        "CREATE TABLE IF NOT EXISTS fetch_ranges(chain VARCHAR, token VARCHAR, start_ts BIGINT, "
        "end_ts BIGINT, source VARCHAR, pool VARCHAR, fetched_at BIGINT)"
    )  # the fetcher's table
    con.execute(
        "INSERT INTO fetch_ranges VALUES ('bsc', ?, ?, ?, 'geckoterminal', 'p1', ?), "
        "('bsc', ?, ?, ?, 'geckoterminal', 'p1', ?), ('bsc', ?, 0, ?, 'x', 'p', 0)",
        [TOK, T0 - 3600, T0 + 4 * 3600, T0, TOK, T0, T0 + 8 * 3600, T0, OTHER, T0 + 99 * 3600],
    )
    con.close()
    r2 = run_baseline(small_home, spec=spec, min_calls=1)
    w2 = r2.windows
    assert r2.cache.fingerprint != r.cache.fingerprint  # fetched ranges are part of the cache key
    assert list(w2.status) == [OK, OK] and list(w2.data_end_ts) == [T0 + 8 * 3600] * 2
    assert w2.coverage[0] == 1.0 and w2.gap_share[0] == pytest.approx(1 - 7200 / 21600)
    assert w2.entry_ts[1] == T0 + 1860 and w2.gap_share[1] == pytest.approx(1 - (7200 - 1860) / 21600)
    assert r2.status_counts["usable"] == 2 and r2.diagnosis is None


def test_cache_key_is_the_format_version_not_the_commit(small_home, monkeypatch):
    spec = WindowSpec(horizon_hours=6)
    fp1 = run_baseline(small_home, spec=spec).cache.fingerprint
    monkeypatch.setattr("alertlab.store.runs.code_version", lambda: "another-commit")
    assert run_baseline(small_home, spec=spec).cache.fingerprint == fp1
    monkeypatch.setattr(cache, "WINDOWS_FORMAT_VERSION", cache.WINDOWS_FORMAT_VERSION + 1)
    assert run_baseline(small_home, spec=spec).cache.fingerprint != fp1
    # the guard factor is part of the window rules (and so of the key)
    monkeypatch.undo()
    assert (
        run_baseline(small_home, spec=WindowSpec(horizon_hours=6, wick_guard=None)).cache.fingerprint != fp1
    )
    assert (
        run_baseline(small_home, spec=WindowSpec(horizon_hours=6, min_coverage=0.1)).cache.fingerprint == fp1
    )


def test_guard_on_by_default_and_flags(small_home):
    r = run_baseline(small_home, spec=WindowSpec(horizon_hours=6, min_coverage=0.0), min_calls=1)
    t = r.to_pandas().set_index("caller")
    assert t.loc["ann", "ath_mult_raw"] > 700 and t.loc["ann", "ath_mult"] < 1.1
    assert t.loc["ann", "n_suspect_bars"] == 1 and t.loc["bob", "n_suspect_bars"] == 0
    code, out = _cli(
        small_home,
        "baseline",
        "--horizon-hours",
        "6",
        "--min-coverage",
        "0",
        "--no-wick-guard",
        "--min-calls",
        "1",
        "--json",
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["status_counts"]["usable"] == 2
    assert max(row["ath_median"] for row in doc["leaderboard"]) > 700  # unguarded: the tick is the ATH
    for bad, msg in (
        (["--wick-guard", "0.5"], "must be a finite number > 1"),
        (["--wick-guard", "5", "--no-wick-guard"], "contradict"),
        (["--min-coverage", "1.5"], "min_coverage"),
    ):
        code, out = _cli(small_home, "baseline", *bad)
        assert code == 2 and msg in out and "Traceback" not in out, out


def _cli(home, *args):
    r = runner.invoke(app, [*args, "--home", str(home.root)])
    return r.exit_code, r.output


def test_never_a_silent_empty_result(home, tmp_path):
    # hourly data that starts 5 h after the calls; and calls on a token with no candles
    f = tmp_path / f"bsc_{TOK}_20251009-0900_20251019-0900.csv"
    candles(f, [T0 + 5 * 3600 + 3600 * k for k in range(200)])
    ingest_candles(home, [f])
    a = tmp_path / "alerts.csv"
    alerts(a, [(f"c{k}", OTHER, (T0 + 60 * k) * 1000) for k in range(4)])
    ingest_alerts(home, [a])
    code, out = _cli(home, "baseline", "--min-calls", "1")
    assert (
        code == 0 and "0 of 4 alerts usable: 4 missing, the store has no candles for these tokens" in out
    ), out
    assert "usable" in out and "missing" in out  # the status table
    for cmd in (["bt", "--tp", "3"], ["optimize", "--trials", "2"]):
        code, out = _cli(home, *cmd)
        assert code == 2 and "0 of 4 alerts usable: 4 missing" in out and "Traceback" not in out, (cmd, out)
    a2 = tmp_path / "alerts2.csv"
    alerts(a2, [(f"d{k}", TOK, (T0 + 60 * k) * 1000) for k in range(3)])
    ingest_alerts(home, [a2])
    r = run_baseline(home, min_calls=1)
    assert (r.windows.status[np.asarray(r.windows.token) == TOK] == STALE).all()
    assert (
        "3 stale, the first traded bar opens more than 300 s (or its own duration) after the call"
        in r.diagnosis
    )
    assert "see --max-entry-lag-s" in r.diagnosis
    code, out = _cli(home, "bt", "--tp", "3", "--max-entry-lag-s", "20000", "--horizon-hours", "6", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["status_counts"] == {
        "ok": 3,
        "missing": 4,
        "stale": 0,
        "bad_entry": 0,
        "truncated": 0,
        "below_min_coverage": 0,
        "usable": 3,
    }
    assert doc["diagnosis"].startswith("3 of 7 alerts usable: 4 missing")


def test_usable_mask_and_subset(small_home):
    w = run_baseline(small_home, spec=WindowSpec(horizon_hours=6, min_coverage=0.3)).windows
    assert list(w.coverage >= 0.3) == [True, False]  # 2 h of 6 h, then 1.5 h of 6 h
    assert list(w.usable(0.3)) == [True, False] and list(w.usable(0.2)) == [True, True]
    assert list(w.usable_idx(0.3)) == [0] and w.status_counts(0.3)["below_min_coverage"] == 1
    sub = w.subset(np.array([1]))
    assert sub.n == 1 and sub.alert_id[0] == w.alert_id[1] and sub.offsets.tolist() == [0, w.n_bars[1]]
    for k in ("ts", "dur", "high", "high_raw", "low_raw", "volume"):
        assert np.array_equal(getattr(sub, k), w.bars(1)[k])
    assert sub.coverage[0] == w.coverage[1] and sub.data_end_ts[0] == w.data_end_ts[1]
    assert w.subset(np.arange(w.n)) is w
