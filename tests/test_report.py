"""The HTML report: fan-chart multiples against a plain loop, the writer without a browser (structure,
self-containment, size), the CLI, and the demo report rendered in real headless Chromium.

The browser test drives Debian's ``chromium`` through Playwright (``executable_path``; no browser
download). ``ALERTLAB_UPDATE_SCREENSHOT=1`` also writes ``docs/report.png``.
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from alertlab.cli import app
from alertlab.demo.market import DemoSpec, make_demo
from alertlab.engine import PortfolioConfig, Strategy, StrategyGrid
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.store import Home
from alertlab.truth.paths import fan_quantiles, multiples_at

from windowgen import random_windows

REPO = Path(__file__).resolve().parents[1]
SPEC = DemoSpec(seed=5, n_callers=12, n_tokens=200, n_alerts=600, days=14)
SECTIONS = ("data", "callers", "per-caller", "strategy", "trades", "grid", "study")
MAX_BYTES = 8_000_000  # plotly.js (~4.8 MB) once + the demo's data
runner = CliRunner()


# ------------------------------------------------------------------------------------- fan multiples


def ref_multiples(w, idx, hours):
    """Plain loop: close of the last bar ended by entry + h (bar end = ts + its own duration) over the
    entry price; 1 before the first bar ends; NaN past the horizon, past the data end of a truncated
    window, or for alerts that are not usable (ok, or truncated with coverage >= 0.8)."""
    out = np.full((len(idx), len(hours)), np.nan)
    for r, i in enumerate(idx):
        truncated = w.status[i] == 4
        if not (w.status[i] == 0 or (truncated and w.coverage[i] >= 0.8)):
            continue
        b = w.bars(i)
        o = w.offsets[i]
        for c, h in enumerate(hours):
            if h * 3600 > w.horizon_s:
                continue
            t = w.entry_ts[i] + h * 3600
            if truncated and t > w.data_end_ts[i]:
                continue
            m = 1.0
            for k in range(len(b["ts"])):
                if b["ts"][k] + w.dur[o + k] <= t:
                    m = b["close"][k] / w.entry_price[i]
            out[r, c] = m
    return out


def test_multiples_at_matches_plain_loop():
    rng = np.random.default_rng(12)
    w = random_windows(rng, 60, interval_s=300, horizon_s=6 * 3600, p_gap=0.2, p_truncated=0.3)
    idx = np.arange(w.n)
    hours = np.array([0.0, 0.05, 0.0833, 0.5, 1.0, 2.4, 5.99, 6.0, 6.5])
    got = multiples_at(w, idx, hours)
    np.testing.assert_allclose(got, ref_multiples(w, idx, hours), rtol=1e-12, equal_nan=True)
    assert np.isnan(got[w.status != 0]).all() and np.isnan(got[:, -1]).all()
    q = fan_quantiles(got)
    ok = got[w.status == 0]
    have = ~np.isnan(ok).all(axis=0)
    np.testing.assert_allclose(q[2][have], np.nanmedian(ok[:, have], axis=0))
    assert np.isnan(q[:, ~have]).all()
    assert (np.diff(q, axis=0)[:, ~np.isnan(q[0])] >= 0).all()  # 5 ≤ 25 ≤ 50 ≤ 75 ≤ 95


# ------------------------------------------------------------------------------------- demo report


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 600-alert demo home with a small optimize study and its full report."""
    from alertlab.app.optimize import run_optimize
    from alertlab.app.report import run_report
    from alertlab.optimize import OptimizeOptions

    root = tmp_path_factory.mktemp("report")
    files = make_demo(root / "input", SPEC)
    home = Home(root / "home")
    ingest_candles(home, [files.candles_dir])
    ingest_alerts(home, [files.alerts_csv])
    run_optimize(
        home,
        options=OptimizeOptions(trials=24, sampler="random", folds=2, pbo_blocks=8, min_trades=5),
        study="demo-study",
    )
    rep = run_report(
        home,
        strategy=StrategyGrid(tp=[1.5, 2, 3, 5], sl=[0.3, 0.5, 0.7]),
        portfolio=PortfolioConfig(capital=10_000, stake_pct=0.02, max_open=20),
        study="demo-study",
        min_calls=5,
    )
    return home, rep


class _Refs(html.parser.HTMLParser):
    """Every src/href/action attribute of the page and the ids of its figure divs."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.figs: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        for a in ("src", "href", "action", "data", "poster", "srcset"):
            if d.get(a):
                self.refs.append((tag, a, d[a]))
        if "fig" in (d.get("class") or "").split():
            self.figs.append(d["id"])
        if tag == "section":
            self.sections.append(d["id"])


def test_report_structure_and_self_contained(demo):
    home, rep = demo
    page = rep.path.read_text(encoding="utf-8")
    assert rep.path.parent == home.root / "reports" and rep.path.name == f"report-{rep.run.run_id}.html"
    p = _Refs()
    p.feed(page)
    assert tuple(p.sections) == SECTIONS == tuple(rep.sections)
    assert not [r for r in p.refs if re.match(r"\s*(https?:)?//", r[2], re.I)], (
        p.refs
    )  # nothing from a network
    assert all(r[2].startswith("#") for r in p.refs), p.refs  # only in-page anchors
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=", page, re.I)
    assert (
        len(re.findall(r"\* plotly\.js (\(cartesian - minified\) )?v\d", page)) == 1
    )  # inlined exactly once
    # every figure is drawn by the small cartesian bundle (a third of the full one: faster first paint)
    assert "* plotly.js (cartesian - minified) v" in page
    data = json.loads(
        re.search(r'<script type="application/json" id="figdata">(.*?)</script>', page, re.S)
        .group(1)
        .replace("<\\/", "</")
    )
    assert sorted(data["figs"]) == sorted(p.figs) and len(p.figs) == rep.n_figures
    assert rep.size_bytes == rep.path.stat().st_size < MAX_BYTES
    # every section has its sentence and real content (no "give --x" placeholder in the full demo)
    for sid in SECTIONS:
        body = page.split(f'<section id="{sid}"', 1)[1].split("</section>", 1)[0]
        assert 'class="explain"' in body and 'class="empty"' not in body, sid
    assert "not distinguishable from luck" in page or "survives deflation" in page


def test_leaderboard_table_matches_board(demo):
    from alertlab.app.baseline import run_baseline

    home, rep = demo
    board = run_baseline(home, min_calls=5).leaderboard
    page = rep.path.read_text(encoding="utf-8")
    table = page.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    callers = re.findall(r'<td class="caller" data-v="([^"]*)">', table)
    import html as h

    assert [h.unescape(c) for c in callers] == board["caller"].tolist()


def test_cli_report_default_path_and_errors(demo, monkeypatch):
    import webbrowser

    home, _ = demo
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    r = runner.invoke(
        app,
        [
            "report",
            "--home",
            str(home.root),
            "--min-calls",
            "5",
            "--tp",
            "3",
            "--sl",
            "0.5",
            "--trades",
            "2",
            "--top-callers",
            "2",
            "--open",
        ],
    )
    assert r.exit_code == 0, r.output
    m = re.search(r"report: (\S+\.html)", r.output)
    assert m and Path(m.group(1)).exists() and Path(m.group(1)).parent == home.root / "reports"
    assert opened == [Path(m.group(1)).resolve().as_uri()]
    page = Path(m.group(1)).read_text(encoding="utf-8")
    assert "Give a grid" in page and "Give --study NAME" in page  # the sections say what would fill them
    # nobody ranked: the report is still written (its Data section shows why) and says so
    r = runner.invoke(
        app, ["report", "--home", str(home.root), "--min-calls", "100000", "--tp", "3", "--sl", "0.5"]
    )
    m2 = re.search(
        r"warning: no caller ranked: (\d+) of 600 alerts have a usable window \((\d+) ok", r.output
    )
    assert r.exit_code == 0 and m2 and int(m2.group(1)) >= int(m2.group(2)) > 500, r.output
    page = Path(re.search(r"report: (\S+\.html)", r.output).group(1)).read_text(encoding="utf-8")
    assert "No caller ranked" in page and 'id="leaderboard"' not in page
    for args, msg in (
        (["--tp", "3", "--grid-axes", "tp,sl"], "needs a grid"),
        (["--tp", "2,3", "--grid-axes", "tp,trail"], "--grid-axes"),
        (["--tp", "2,3"], "heatmap needs two"),
        (["--study", "nope"], "no study"),
        (["--out", "x.pdf"], "HTML file"),
        (["--objective", "magic", "--tp", "2,3", "--sl", "0.5"], "--objective"),
        (["--capital", "1000", "--stake", "10"], "needs a strategy"),
    ):
        r = runner.invoke(app, ["report", "--home", str(home.root), "--min-calls", "5", *args])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (args, r.output)


# ------------------------------------------------------------------------------------- real browser


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip(
            "NO BROWSER: Debian's `chromium` is not installed, the report was NOT tested in a browser "
            "(apt-get install chromium; .ci/run installs it)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("NO PLAYWRIGHT: pip install '.[test]' to test the report in a real browser")
    return exe


def test_report_in_headless_chromium(demo):
    from playwright.sync_api import sync_playwright

    exe = _chromium()
    home, rep = demo
    url = rep.path.resolve().as_uri()
    from alertlab.app.baseline import run_baseline

    first = run_baseline(home, min_calls=5).leaderboard["caller"].iloc[0]
    errors: list[str] = []
    remote: list[str] = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=exe,
            headless=True,
            viewport={"width": 1280, "height": 900},
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
            timeout=60_000,
        )
        try:
            page = ctx.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: None if r.url.startswith(("file:", "data:", "blob:")) else remote.append(r.url),
            )
            t0 = time.perf_counter()
            page.goto(url, wait_until="load", timeout=60_000)
            page.wait_for_function(
                "document.querySelectorAll('#data .fig[data-drawn]').length >= 2", timeout=60_000
            )
            load_s = time.perf_counter() - t0
            timing = page.evaluate("window.alertlabTimes")
            for sid in SECTIONS:
                assert page.locator(f"section#{sid} h2").is_visible(), sid
            assert page.locator("#leaderboard tbody tr").first.locator("td.caller").inner_text() == first
            # every panel of every selector, then every figure: one plotly SVG root each
            for sel in page.locator("select.pick").all():
                for v in sel.locator("option").evaluate_all("os => os.map(o => o.value)"):
                    sel.select_option(v)
                    page.evaluate("window.alertlabDrawAll()")
                    box = sel.get_attribute("data-box")
                    page.wait_for_function(
                        f"Array.from(document.querySelectorAll('#{box} .panel:not([hidden]) .fig'))"
                        ".every(f => f.querySelector('svg.main-svg'))",
                        timeout=60_000,
                    )
                sel.select_option("0")
            page.evaluate("window.alertlabDrawAll()")
            n_figs = page.locator(".fig").count()
            assert n_figs == rep.n_figures
            n_drawn = page.evaluate(
                "Array.from(document.querySelectorAll('.fig')).filter("
                "f => f.querySelector('svg.main-svg')).length"
            )
            assert n_drawn == n_figs
            # sorting and filtering the leaderboard
            page.locator("#leaderboard th.n").click()
            ns = [int(x.replace(",", "")) for x in page.locator("#leaderboard td.n").all_inner_texts()]
            assert ns == sorted(ns, reverse=True)
            page.fill("#lb-filter", first[:4])
            assert 1 <= page.locator("#leaderboard tbody tr:not([hidden])").count() < len(ns)
            page.fill("#lb-filter", "")
            page.locator("#leaderboard th.rank").click()
            page.locator("#leaderboard th.rank").click()
            assert page.locator("#leaderboard tbody tr").first.locator("td.caller").inner_text() == first
            if os.environ.get("ALERTLAB_UPDATE_SCREENSHOT") == "1":  # the top of the page: data and callers
                page.evaluate("window.scrollTo(0, 0)")
                out = REPO / "docs" / "report.png"
                page.screenshot(
                    path=str(out),
                    full_page=True,
                    type="png",
                    clip={"x": 0, "y": 0, "width": 1280, "height": 2350},
                )
            # a phone: every figure drawn, nothing wider than the screen (wide tables scroll inside their box)
            phone = ctx.new_page()
            phone.set_viewport_size({"width": 390, "height": 844})
            phone.on("pageerror", lambda e: errors.append(str(e)))
            phone.goto(url, wait_until="load", timeout=60_000)
            phone.evaluate("window.alertlabDrawAll()")
            phone.wait_for_function(
                "document.querySelectorAll('.fig[data-drawn]').length >= 10", timeout=60_000
            )
            assert phone.evaluate("document.documentElement.scrollWidth") <= 392
            print(
                f"report {rep.size_bytes / 1e6:.2f} MB, {rep.n_figures} figures; first figures drawn "
                f"{load_s:.2f}s after navigation; plotly.js parsed in {timing['plotly'] - timing['start']:.0f} ms"
            )
        finally:
            ctx.close()
    assert not errors, errors
    assert not remote, remote


# ------------------------------------------------------------------------------- notebook API, new fields


def test_plot_functions_for_notebooks(demo):
    import plotly.graph_objects as go

    import alertlab
    from alertlab.app.backtest import run_backtest

    home, _ = demo
    res = alertlab.run_baseline(home, min_calls=5)
    bt = run_backtest(Strategy(tp_ladder="2:0.5,4:0.5", sl=0.5), home)
    caller = res.leaderboard["caller"].iloc[0]
    alert = bt.result.trades.loc[bt.result.trades["n_fills"] > 1, "alert_id"].iloc[0]
    figs = [
        alertlab.plot_leaderboard(res),
        alertlab.plot_fan(res, caller),
        alertlab.plot_ath_distribution(res, caller),
        alertlab.plot_time_to_2x(res),
        alertlab.plot_equity(bt),
        alertlab.plot_exit_reasons(bt),
        alertlab.plot_returns(bt),
        alertlab.plot_intrabar_band(bt),
        alertlab.plot_per_caller_results(bt),
        alertlab.plot_trade(res, bt, alert),
        alertlab.plot_status(res),
        alertlab.plot_coverage(res),
    ]
    assert all(isinstance(f, go.Figure) and f.data for f in figs)
    assert alertlab.plot_portfolio(bt) is None  # no --capital: no portfolio figure
    trade = figs[9]
    by_name = {t.name: t for t in trade.data}
    row = bt.result.trades.loc[bt.result.trades["alert_id"] == alert].iloc[0]
    fills = by_name["fills"]  # each partial fill drawn, not only the mean exit
    assert len(fills.x) == int(row["n_fills"]) > 1
    frac = np.asarray(fills.customdata[:, 1], dtype=float)
    mean_px = float((np.asarray(fills.y, dtype=float) * frac).sum() / frac.sum())
    assert mean_px == pytest.approx(float(row["exit_price"]), rel=1e-9)
    p = float(row["entry_price"])
    stop = np.asarray(by_name["stop"].y, dtype=float)
    tp = np.asarray(by_name["next take-profit"].y, dtype=float)
    assert np.nanmin(stop) == pytest.approx(0.5 * p, rel=1e-6)  # float32 on the page
    assert np.nanmin(tp) == pytest.approx(2 * p, rel=1e-6) and np.nanmax(tp) == pytest.approx(4 * p, rel=1e-6)
    # the fan chart's median is the truth layer's quantile, not a figure-side formula
    w = res.windows
    idx = np.flatnonzero((w.status == 0) & (w.caller == caller))
    q = fan_quantiles(multiples_at(w, idx, np.arange(0, w.horizon_s / 3600 + 1e-9, 0.5)))
    np.testing.assert_allclose(np.asarray(figs[1].data[2].y, dtype=float), q[2])


def test_new_result_fields_appear_without_rewriting(demo):
    """Statuses, leaderboard columns and suspect bars added later by the window model show up as is."""
    import types

    import pandas as pd

    from alertlab.app.backtest import run_backtest
    from alertlab.app.baseline import run_baseline
    from alertlab.report.figures import plot_status, plot_trade
    from alertlab.report.html import leaderboard_table

    fake = types.SimpleNamespace(
        status_names=lambda: np.array(["ok"] * 5 + ["truncated"] * 2 + ["below_min_coverage"])
    )
    fig = plot_status(fake)
    assert list(fig.data[0].y) == ["ok", "truncated", "below_min_coverage"] and list(fig.data[0].x) == [
        5,
        2,
        1,
    ]
    board = pd.DataFrame(
        {"rank": [1], "caller": ["a"], "n": [12], "coverage_median": [0.93], "n_truncated": [3]}
    )
    t = leaderboard_table(board)
    assert [c for c, _ in t["cols"]] == ["rank", "caller", "n", "coverage_median", "n_truncated"]
    assert t["rows"][0][3][0] == "93%" and t["rows"][0][4][0] == "3"

    home, _ = demo
    res = run_baseline(home, min_calls=5)
    w = res.windows
    bt = run_backtest(Strategy(tp=3, sl=0.5), home)
    alert = bt.result.trades["alert_id"].iloc[0]
    i = int(np.flatnonzero(w.alert_id == alert)[0])
    suspect = np.zeros(w.ts.shape[0], dtype=bool)
    suspect[w.offsets[i] + 3] = True
    object.__setattr__(w, "suspect", suspect)  # as a window model with a bad-tick guard would carry
    try:
        fig = plot_trade(w, bt, alert)
    finally:
        object.__delattr__(w, "suspect")
    marks = [t for t in fig.data if t.name == "suspect bar"]
    assert len(marks) == 1 and len(marks[0].x) == 1 and marks[0].x[0] == w.ts[w.offsets[i] + 3] * 1000.0


def test_plotly_bundle_choice() -> None:
    """The cartesian partial bundle only when it can draw every trace and matches the installed
    plotly's plotly.js; anything else (a candlestick, a map) gets the full bundle."""
    from alertlab.report.html import CARTESIAN_VERSION, _bundled_plotlyjs_version, plotly_js_for

    name, js = plotly_js_for({"scatter", "bar", "heatmap", "histogram"})
    assert (name == "cartesian") == (_bundled_plotlyjs_version() == CARTESIAN_VERSION)
    assert f"v{CARTESIAN_VERSION}" in js[:200] or name == "full"
    name, js = plotly_js_for({"scatter", "candlestick"})
    assert name == "full" and "Candlestick" in js or "candlestick" in js
