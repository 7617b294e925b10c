"""The memory budget after ingest: chunked window cutting, memory-mapped passes, DuckDB limits.

Chunking must be invisible: a cut, a metrics pass or a grid under a tiny budget gives exactly the
bytes / numbers of one unbounded pass. The warm path opens its bar arrays memory-mapped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import alertlab
from alertlab.app.baseline import run_baseline
from alertlab.demo.market import DemoSpec, make_market_arrays, write_market_parquet
from alertlab.engine import StrategyConfig, run_grid
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.store import Home
from alertlab.truth.metrics import baseline_table, compute_metrics
from alertlab.util.memory import set_memory_budget_gb
from alertlab.windows import cache, mapped
from alertlab.windows.mapped import bar_ranges, is_mapped, release
from alertlab.windows.model import Windows
from alertlab.windows.select import load_windows, select_alerts
from alertlab.windows.spec import WindowSpec

SPEC = DemoSpec(seed=5, n_alerts=420, n_tokens=300, n_callers=12, history_hours=6.0, clean=True)


@pytest.fixture(scope="module")
def market_home(tmp_path_factory) -> Home:
    """A demo market (300 tokens, several per store bucket) ingested into a fresh workspace."""
    from alertlab.store import resolve_home

    root = tmp_path_factory.mktemp("budget")
    alerts, _ = write_market_parquet(SPEC, root / "candles.parquet")
    alerts.to_csv(root / "alerts.csv", index=False)
    h = resolve_home(root / "home")
    ingest_candles(h, [root / "candles.parquet"])
    ingest_alerts(h, [root / "alerts.csv"])
    return h


@pytest.fixture(autouse=True)
def _budget_reset():
    yield
    set_memory_budget_gb(None)


def _entry_bytes(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and p.name != "meta.json"}


def test_streamed_market_equals_the_in_memory_one(tmp_path):
    spec = DemoSpec(seed=3, n_alerts=700, n_tokens=600, n_callers=10, history_hours=4.0, clean=True)
    alerts, candles = make_market_arrays(spec)
    alerts2, n = write_market_parquet(spec, tmp_path / "c.parquet")
    got = pq.read_table(tmp_path / "c.parquet").to_pandas()
    want = candles.assign(chain=candles["chain"].astype(str), token=candles["token"].astype(str))
    assert n == len(candles) and pq.ParquetFile(tmp_path / "c.parquet").num_row_groups == 2  # 2 blocks
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True))
    pd.testing.assert_frame_equal(alerts2, alerts)


def test_token_chunks_split_by_stored_rows(market_home):
    a = select_alerts(market_home)
    b = cache.bucket_of(a["token"].iloc[0])
    path = cache.bucket_path(market_home, a["chain"].iloc[0], b)
    rows = pq.read_table(path, columns=["token"]).column("token").to_pandas().value_counts()
    tokens = sorted(rows.index)
    assert len(tokens) >= 3
    assert cache.token_chunks(path, tokens, 10**9) == [tokens]  # fits: one run, file not read
    cap = int(rows.max()) + 1
    runs = cache.token_chunks(path, tokens, cap)
    assert [t for r in runs for t in r] == tokens and len(runs) > 1
    assert all(sum(rows[t] for t in r) <= cap for r in runs)
    assert cache.token_chunks(path, tokens, 1) == [[t] for t in tokens]  # one token per run at worst


def test_cut_under_a_tiny_budget_is_byte_identical(market_home, monkeypatch):
    alerts = select_alerts(market_home)
    spec = WindowSpec()
    w1, info1 = cache.get_windows(market_home, alerts, spec, force=True)
    one = _entry_bytes(info1.path)
    n_buckets = len({(c, cache.bucket_of(t)) for c, t in zip(alerts["chain"], alerts["token"], strict=True)})
    assert w1.meta["cut_chunks"] == n_buckets  # the default budget cuts whole buckets
    # 0.25 GB at 64 MB a row: a few rows per cut step, i.e. one token at a time
    set_memory_budget_gb(0.25)
    monkeypatch.setattr(cache, "CUT_BYTES_PER_ROW", 64 << 20)
    assert cache.cut_rows_per_chunk() == 2
    w2, info2 = cache.get_windows(market_home, alerts, spec, force=True)
    assert info2.fingerprint == info1.fingerprint  # the budget is not part of the cache key
    assert w2.meta["cut_chunks"] == alerts["token"].nunique() > n_buckets
    assert _entry_bytes(info2.path) == one
    # aggregated windows too (the finer bars are aggregated per token, within a run)
    spec5 = WindowSpec(interval_s=300)
    w3, info3 = cache.get_windows(market_home, alerts, spec5, force=True)
    small = _entry_bytes(info3.path)
    monkeypatch.setattr(cache, "CUT_BYTES_PER_ROW", 640)
    set_memory_budget_gb(None)
    w4, info4 = cache.get_windows(market_home, alerts, spec5, force=True)
    assert w4.meta["cut_chunks"] < w3.meta["cut_chunks"] and _entry_bytes(info4.path) == small


def test_warm_baseline_opens_the_bars_memory_mapped(market_home):
    run_baseline(market_home, force_recompute=True)
    r = run_baseline(market_home)
    assert r.cache.hit and r.metrics_cached
    for k in ("ts", "dur", "open", "high", "low", "close", "volume", "high_raw", "low_raw"):
        assert is_mapped(getattr(r.windows, k)), k
    assert not is_mapped(np.asarray(r.windows.offsets).copy())
    # a subset is copied into RAM: release leaves it alone
    sub = r.windows.subset(np.arange(3))
    assert not is_mapped(sub.ts) and sub.release_pages() == 0
    assert r.windows.release_pages() == 9
    assert float(np.asarray(r.windows.close).sum()) > 0  # readable again after the release


def test_metrics_in_budget_sized_passes_equal_one_pass(market_home, monkeypatch):
    w, _ = load_windows(market_home)
    assert is_mapped(w.high)
    ram = w.subset(np.arange(w.n - 1))  # in RAM: one pass
    want = compute_metrics(ram)
    passes = []
    monkeypatch.setattr(mapped, "BYTES_PER_BAR", 1 << 22)  # 0.25 GB / 4 budget: 16 bars a pass
    set_memory_budget_gb(0.25)
    real = Windows.release_pages

    def counting(self: Windows) -> int:
        passes.append(1)
        return real(self)

    monkeypatch.setattr(Windows, "release_pages", counting)
    got = compute_metrics(w, np.arange(w.n - 1))
    assert len(passes) > 10
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    set_memory_budget_gb(None)
    t1 = baseline_table(w)
    monkeypatch.setattr(mapped, "BYTES_PER_BAR", 128)
    assert t1.equals(baseline_table(w))


def test_grid_in_budget_sized_passes_equals_one_pass(market_home, monkeypatch):
    w, _ = load_windows(market_home)
    ram = w.subset(np.arange(w.n - 1))
    cfgs = [  # first-passage kernel, then the bar simulator
        StrategyConfig(tp=[1.5, 2.0, 4.0], sl=[0.3, 0.6]),
        StrategyConfig(tp=[1.5, 4.0], sl=0.5, trail=[0.1, 0.2]),
    ]
    want = [run_grid(ram, cfg) for cfg in cfgs]
    calls: list[int] = []
    real = mapped.release

    def counting(arrays):
        calls.append(1)
        return real(arrays)

    monkeypatch.setattr("alertlab.engine.drivers.release", counting)
    monkeypatch.setattr(mapped, "BYTES_PER_BAR", 1 << 22)
    set_memory_budget_gb(0.25)
    for cfg, expect in zip(cfgs, want, strict=True):
        calls.clear()
        got = run_grid(w, cfg, alert_idx=np.arange(w.n - 1))
        assert len(calls) > 10
        pd.testing.assert_frame_equal(got, expect)


def test_bar_ranges():
    counts = np.array([3, 0, 5, 2, 9, 1])
    assert bar_ranges(counts, 100) == [(0, 6)]
    r = bar_ranges(counts, 5)
    assert r[0][0] == 0 and r[-1][1] == 6 and all(b > a for a, b in r)
    assert all(a1 == b0 for (_, a1), (b0, _) in zip(r, r[1:], strict=False))
    assert all(counts[a:b].sum() <= 5 or b - a == 1 for a, b in r)
    assert (4, 5) in r  # 9 bars > 5: a range of its own
    assert bar_ranges(np.zeros(0, np.int64), 5) == []
    assert release([np.arange(4)]) == 0


def test_pass_groups_follow_storage_order():
    offsets = np.concatenate([[0], np.cumsum([3, 0, 5, 2, 9, 1, 4])])
    idx = np.array([6, 2, 0, 5, 3, 4, 1])  # e.g. alerts in time order
    assert mapped.pass_groups(offsets, idx, 100) is None
    groups = mapped.pass_groups(offsets, idx, 6)
    assert groups is not None
    assert sorted(np.concatenate(groups).tolist()) == list(range(7))  # every position once
    stored = [np.sort(idx[g]) for g in groups]  # each pass: consecutive windows of the files
    assert all(np.array_equal(s, np.arange(s[0], s[-1] + 1)) for s in stored)
    assert all(np.all(np.diff(g) > 0) for g in groups)
    assert all(np.diff(offsets)[idx[g]].sum() <= 6 or len(g) == 1 for g in groups)


def test_cache_survives_a_new_commit_and_version(market_home, monkeypatch):
    spec = WindowSpec(horizon_hours=3)
    first = run_baseline(market_home, spec=spec)
    builds = cache.COUNTERS["builds"]
    monkeypatch.setattr(cache, "code_version", lambda: "9.9.9+deadbeef0000")
    monkeypatch.setattr("alertlab.store.runs.code_version", lambda: "9.9.9+deadbeef0000")
    monkeypatch.setattr(alertlab, "__version__", "9.9.9")
    again = run_baseline(market_home, spec=spec)
    assert again.cache.hit and again.metrics_cached and cache.COUNTERS["builds"] == builds
    assert again.cache.fingerprint == first.cache.fingerprint
    assert again.run.provenance()["code_version"] == "9.9.9+deadbeef0000"  # runs record the new code


def test_catalog_connections_take_the_budget(market_home):
    def limit() -> str:
        con = market_home.connect(read_only=True)
        try:
            return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        finally:
            con.close()

    default = limit()
    set_memory_budget_gb(0.5)  # 60 % of it: ~300 MB
    small = limit()
    assert small != default and "MiB" in small and float(small.split()[0]) < 320
