"""``alertlab report`` as one call: baseline (+ backtest, grid, study) → figures → one HTML file.

Every section is drawn from the result objects the other commands print (``run_baseline``,
``run_backtest``, ``reopen_study``): the report adds pictures, not numbers of its own. Strategy
rules:

* a single strategy (flags or ``--strategy-config``) gives the Strategy and Trades sections;
* a grid gives the Grid heatmap;
* without a single strategy, the Strategy / Trades sections show the ``--study`` recommendation
  (chosen out of sample), else the grid's best cell by the objective, labelled as chosen in-sample
  (the selection bias is named, not hidden);
* none of these: the Strategy, Trades and Grid sections say which flags produce them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alertlab.app.run import open_run
from alertlab.engine import Strategy, StrategyGrid
from alertlab.store import Home, resolve_home
from alertlab.store.runs import Run, record_result
from alertlab.windows.spec import Selection, WindowSpec

GRID_OBJECTIVES = (
    "avg_ret",
    "median_ret",
    "sum_ret",
    "win_rate",
    "profit_factor",
    "sharpe",
    "t_stat",
    "expectancy",
    "avg_ret_pessimistic",
    "avg_ret_optimistic",
)


@dataclass
class ReportRun:
    """A written report: its ``path``, size, the sections it holds and the run record."""

    path: Path
    size_bytes: int
    sections: list[str]
    n_figures: int
    run: Run
    warnings: list[str]


def _data_facts(home: Home, baseline) -> dict[str, Any]:
    """Ingest counts, rejects by reason and candle-quality highlights from the catalog."""
    from alertlab.ingest import quality_table

    con = home.connect()
    try:
        row = con.execute("SELECT count(*) FROM alerts").fetchone()
        assert row is not None  # an aggregate without GROUP BY always returns one row
        n_alerts = row[0]
        rejects = con.execute(
            "SELECT kind, reason, count(*) AS rows FROM rejects GROUP BY ALL ORDER BY rows DESC"
        ).df()
        span = con.execute(
            "SELECT min(ts_ms), max(ts_ms), count(DISTINCT caller), "
            "count(DISTINCT chain || token) FROM alerts"
        ).fetchone()
        assert span is not None  # an aggregate without GROUP BY always returns one row
    finally:
        con.close()
    q = quality_table(home)
    highlights: dict[str, Any] = {
        "token series": len(q),
        "bars stored": int(q["n_bars"].sum()) if len(q) else 0,
    }
    if len(q):
        w = q["n_bars"].to_numpy(float)
        for c in q.columns:
            if c in ("chain", "token", "interval_s", "n_bars", "first_ts", "last_ts", "updated_at"):
                continue
            if not pd.api.types.is_numeric_dtype(q[c]):
                continue
            v = q[c].to_numpy(float)
            if c.endswith("_share"):  # bar-weighted share over all series
                highlights[c.replace("_", " ")] = f"{np.nansum(v * w) / max(w.sum(), 1):.1%}"
            else:  # counts (n_gaps, missing_bars, n_conflicts, n_suspect_bars, …): total and series affected
                highlights[c.replace("_", " ")] = f"{int(np.nansum(v)):,} in {int((v > 0).sum()):,} series"
    first = dt.datetime.fromtimestamp(span[0] / 1000, dt.UTC).strftime("%Y-%m-%d") if span[0] else "–"
    last = dt.datetime.fromtimestamp(span[1] / 1000, dt.UTC).strftime("%Y-%m-%d") if span[1] else "–"
    w = baseline.windows
    facts = {
        "alerts in the store": f"{n_alerts:,}",
        "alerts selected": f"{w.n:,}",
        "callers / tokens": f"{span[2]:,} / {span[3]:,}",
        "alert dates": f"{first} → {last}",
        "window": f"{w.interval_s}s bars, {w.horizon_s / 3600:g} h horizon",
        "rows rejected at ingest": f"{int(rejects['rows'].sum()) if len(rejects) else 0:,}",
    }
    return {"facts": facts, "rejects": rejects, "quality": highlights}


def _caller_stats(baseline) -> pd.DataFrame:
    """The unranked per-caller statistics the baseline cached beside its metrics (computed if absent)."""
    import pyarrow.feather as feather

    from alertlab.truth.leaderboard import caller_stats
    from alertlab.windows.cache import derived_path

    p = derived_path(baseline.cache, "caller_stats.arrow")
    return feather.read_table(p).to_pandas() if p.exists() else caller_stats(baseline.table)


def _pick_trades(trades: pd.DataFrame, n: int) -> list[str]:
    """Alerts worth looking at: best and worst trades, ambiguous bars, multi-fill exits (deduplicated)."""
    t = trades.loc[trades["exit_reason"] != "no_fill"]
    if t.empty or n <= 0:
        return []
    k = max(1, n // 4)
    picks: list[str] = []
    for part in (
        t.nlargest(k, "ret"),
        t.nsmallest(k, "ret"),
        t.loc[t["ambiguous"].astype(bool)].head(k),
        t.loc[t["n_fills"] > 1].nlargest(k, "ret"),
        t.sample(min(len(t), n), random_state=0),
    ):
        for a in part["alert_id"]:
            if a not in picks and len(picks) < n:
                picks.append(str(a))
    return picks


def _check_args(
    strategy: Strategy | StrategyGrid | None,
    grid_axes: tuple[str, str] | None,
    objective: str,
    top_callers: int,
    n_trades: int,
) -> None:
    """Reject report options that cannot work together, before any work is done."""
    if objective not in GRID_OBJECTIVES:
        raise ValueError(f"--objective must be one of {', '.join(GRID_OBJECTIVES)}, got {objective!r}")
    if top_callers < 1 or n_trades < 0:
        raise ValueError("--top-callers must be >= 1 and --trades >= 0")
    if isinstance(strategy, Strategy) and grid_axes is not None:
        raise ValueError(
            "--grid-axes needs a grid (give two options comma lists, e.g. --tp 2,3,5 --sl 0.3,0.5)"
        )
    if isinstance(strategy, StrategyGrid):
        opts = _grid_options(strategy)
        if grid_axes is not None and (len(set(grid_axes)) != 2 or any(a not in opts for a in grid_axes)):
            raise ValueError(
                f"--grid-axes {','.join(grid_axes)}: give two different options of the grid "
                f"({', '.join(opts)})"
            )
        if grid_axes is None and len(opts) < 2:
            raise ValueError(
                f"the grid has only the option {opts[0]}: the heatmap needs two "
                "(e.g. --tp 2,3,5 --sl 0.3,0.5)"
            )


def _no_caller_warning(bl, spec: WindowSpec, min_calls: int) -> list[str]:
    """The warning of a report whose leaderboard is empty (the report is still written)."""
    if not bl.leaderboard.empty:
        return []
    w = bl.windows
    counts = pd.Series(np.asarray(w.status_names(), dtype=str)).value_counts()
    why = ", ".join(f"{n} {k}" for k, n in counts.items())
    return [
        f"no caller ranked: {int(w.usable(spec.min_coverage).sum())} of {w.n} alerts have a usable window "
        f"({why}) and no caller has --min-calls={min_calls} of them; see the Data section"
    ]


def _single_strategy(strategy, st, grid_run, objective: str) -> tuple[Strategy | None, str]:
    """The one strategy the Strategy and Trades sections replay, and how it was chosen."""
    if isinstance(strategy, Strategy):
        return strategy, "the strategy given on the command line"
    if st is not None and st.config is not None:
        assert st.recommended is not None  # set together with the config
        return st.config, (
            f"the recommendation of study {st.name} (trial {st.recommended['trial']}, "
            "chosen on out-of-sample folds)"
        )
    if grid_run is not None and isinstance(strategy, StrategyGrid):
        g = grid_run.grid
        assert g is not None  # a grid strategy run locally always yields its grid
        best = g.sort_values(objective, ascending=False, na_position="last").iloc[0]
        cells = ", ".join(f"{a} = {best[a]}" for a in strategy.axes())
        return strategy.expand()[int(best["combo"])], (
            f"the grid's best cell by {objective} ({cells}), chosen in-sample: expect less out of sample"
        )
    return None, ""


def run_report(
    home: Home | str | Path | None = None,
    selection: Selection | None = None,
    spec: WindowSpec | None = None,
    strategy: Strategy | StrategyGrid | None = None,
    portfolio=None,
    study: str | None = None,
    out: str | Path | None = None,
    min_calls: int = 10,
    rank_by: str = "hit2x_lo",
    top_callers: int = 8,
    n_trades: int = 8,
    grid_axes: tuple[str, str] | None = None,
    objective: str = "avg_ret",
    progress: bool = False,
) -> ReportRun:
    """Write the HTML report; returns where it is and what it holds (see module docs for the rules)."""
    from alertlab.app.backtest import run_backtest
    from alertlab.app.baseline import run_baseline
    from alertlab.report.html import render_report

    home = home if isinstance(home, Home) else resolve_home(home)
    sel, spec = selection or Selection(), spec or WindowSpec()
    _check_args(strategy, grid_axes, objective, top_callers, n_trades)
    config = {
        "strategy": strategy.model_dump(mode="json") if strategy is not None else None,
        "portfolio": portfolio.model_dump(mode="json") if portfolio is not None else None,
        "study": study,
        "min_calls": min_calls,
        "rank_by": rank_by,
        "top_callers": top_callers,
        "trades": n_trades,
        "grid_axes": list(grid_axes) if grid_axes else None,
        "objective": objective,
    }
    with open_run(home, "report", sel, spec, config, windows=False) as ctx:
        run = ctx.run
        with run.phase("baseline"):
            bl = run_baseline(home, sel, spec, min_calls=min_calls, rank_by=rank_by, progress=progress)
        run.fingerprint, run.cache_hit = bl.cache.fingerprint, bl.cache.hit
        warnings = _no_caller_warning(bl, spec, min_calls)

        st = importance = None
        if study:
            from alertlab.optimize.reopen import param_importance, reopen_study, study_storage

            with run.phase("study"):
                st = reopen_study(
                    home, study, bl.windows, windows_path=bl.cache.path, min_coverage=spec.min_coverage
                )
                importance = param_importance(study_storage(home, study), st.name)

        bt = grid_run = None
        with run.phase("backtest"):
            if isinstance(strategy, StrategyGrid):
                grid_run = run_backtest(strategy, home, sel, spec, progress=progress)
            single, chosen_label = _single_strategy(strategy, st, grid_run, objective)
            if single is not None:
                bt = run_backtest(single, home, sel, spec, portfolio=portfolio, progress=progress)

        with run.phase("figures"):
            sections = [
                _data_section(home, bl),
                _callers_section(bl, warnings, rank_by, min_calls),
                _per_caller_section(bl, top_callers),
                *_strategy_sections(bt, bl.windows, chosen_label, portfolio, n_trades),
                _grid_section(strategy, grid_run, grid_axes, objective),
                _study_section(st, importance),
            ]

        path = Path(out) if out else home.root / "reports" / f"report-{run.run_id}.html"
        with run.phase("html"):
            meta = {
                "run": run.run_id,
                "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "home": str(home.root),
                "fingerprint": bl.cache.fingerprint,
            }
            n_fig = render_report(sections, path, meta)
        size = path.stat().st_size
        run.counts = {"sections": len(sections), "figures": n_fig, "bytes": size}
        record_result(home, run, "report", str(path), n_fig)
    return ReportRun(
        path=path,
        size_bytes=size,
        sections=[s.id for s in sections],
        n_figures=n_fig,
        run=run,
        warnings=warnings,
    )


# ------------------------------------------------------------------------------------------------ sections


def _data_section(home: Home, bl):
    from alertlab.report import figures as F
    from alertlab.report.html import Section

    data = _data_facts(home, bl)
    s = Section(
        "data",
        "Data",
        "What went in: alerts and candles ingested, rows rejected and why, "
        "and which alerts got a usable price window.",
    )
    s.kv("Inputs", data["facts"])
    s.kv("Candle quality", data["quality"])
    s.fig(F.plot_status(bl.windows), half=True)
    s.fig(F.plot_coverage(bl.windows), half=True)
    if len(data["rejects"]):
        s.table("Rejected rows by reason", data["rejects"])
    return s


def _callers_section(bl, warnings: list[str], rank_by: str, min_calls: int):
    from alertlab.report import figures as F
    from alertlab.report.html import Section

    board = bl.leaderboard
    s = Section(
        "callers",
        "Callers",
        "Who calls winners: the share of calls that doubled with its 95% "
        "interval, so that a handful of lucky calls does not look like skill.",
    )
    if board.empty:
        s.note(warnings[0].capitalize() + ".")
        return s
    s.leaderboard(board, bl.hidden_callers, rank_by)
    s.fig(F.plot_leaderboard(board, top=25), half=True)
    s.fig(
        F.plot_hit_rate_vs_calls(_caller_stats(bl), min_calls),
        half=True,
        note="Each dot is a caller; the grey "
        "band is where a caller with no skill (hitting at the pooled rate) lands 95% of the time.",
    )
    return s


def _per_caller_section(bl, top_callers: int):
    from alertlab.report import figures as F
    from alertlab.report.html import Section

    board = bl.leaderboard
    s = Section(
        "per-caller",
        "Per caller",
        "How the calls of one caller played out: the size of the "
        "peaks, how fast they came, and the typical path of the price after the call.",
    )
    for c in F.top_callers(board, top_callers):
        s.panel(c, [F.plot_ath_distribution(bl, c), F.plot_time_to_2x(bl, c), F.plot_fan(bl.windows, c)])
    if board.empty:
        s.note("No caller ranked: nothing to show per caller.")
    return s


def _strategy_sections(bt, w, chosen_label: str, portfolio, n_trades: int) -> list:
    """The Strategy and Trades sections of the replayed strategy (or what to give to get them)."""
    from alertlab.report import figures as F
    from alertlab.report.html import Section

    if bt is None:
        out = []
        for sid, title in (("strategy", "Strategy"), ("trades", "Trades on candles")):
            s = Section(
                sid,
                title,
                "Give an exit rule (--tp/--sl…, --strategy-config, or --study with a "
                "recommendation) to see how trading these calls would have gone.",
            )
            s.note("No strategy given.")
            out.append(s)
        return out
    r = bt.result
    assert r is not None  # a single strategy always yields a result
    s = Section(
        "strategy",
        "Strategy",
        "What trading every usable call with one exit rule would "
        f"have returned, after fees and slippage; the rule is {chosen_label}.",
    )
    s.kv("Trades (stake 1 per alert)", {"rule": _rule_text(bt.strategy), **_summary_view(r.summary)})
    if r.portfolio is not None:
        s.kv("Portfolio (finite capital)", _portfolio_view(r.portfolio.summary, portfolio))
    s.fig(F.plot_equity(r))
    pf = F.plot_portfolio(r)
    if pf is not None:
        s.fig(pf)
    s.fig(F.plot_exit_reasons(r), half=True)
    s.fig(F.plot_returns(r), half=True)
    s.fig(
        F.plot_intrabar_band(r),
        note="When a stop and a take-profit both fall inside one bar the "
        "order is unknown: the band spans the pessimistic and optimistic readings.",
    )
    s.fig(F.plot_per_caller_results(r))
    return [s, _trades_section(r, w, n_trades)]


def _trades_section(r, w, n_trades: int):
    from alertlab.report import figures as F
    from alertlab.report.html import Section

    s = Section(
        "trades",
        "Trades on candles",
        "Single trades drawn on their candles: where the rule "
        "bought, where it sold, and the levels it was watching.",
    )
    picks = _pick_trades(r.trades, n_trades)
    for a in picks:
        row = r.trades.loc[r.trades["alert_id"] == a].iloc[0]
        s.panel(f"{row['caller']} · {row['exit_reason']} · {row['ret']:+.1%}", [F.plot_trade(w, r, a)])
    if picks:
        s.caption(
            "Red dashed: the stop in force on each bar (it steps up when breakeven or the trailing "
            "stop moves it); green dotted: the next take-profit level. Each fill is a marker on the "
            "candle it happened in (size: share of the position; hover: reason, price, stamp)."
        )
    else:
        s.note("No trade was filled: nothing to draw.")
    return s


def _grid_section(strategy, grid_run, grid_axes: tuple[str, str] | None, objective: str):
    from alertlab.report import figures as F
    from alertlab.report.html import Section

    s = Section(
        "grid",
        "Grid",
        "The same rule over a grid of settings: where the results are good and "
        "whether the good region is broad (robust) or a single lucky cell.",
    )
    if grid_run is not None and isinstance(strategy, StrategyGrid):
        axes = list(grid_axes) if grid_axes else _grid_options(strategy)[:2]
        s.fig(
            F.plot_grid(grid_run.grid, axes[0], axes[1], objective),
            note=None
            if len(strategy.axes()) <= 2
            else "Other grid options take their best value in each cell (shown on hover).",
        )
    else:
        s.note("Give a grid (e.g. --tp 1.5,2,3,5 --sl 0.3,0.5,0.7) to see the heatmap.")
    return s


def _study_section(st, importance):
    from alertlab.report import figures as F
    from alertlab.report.html import Section

    s = Section(
        "study",
        "Study",
        "The optimizer's search: whether the best settings found in the past "
        "held up on later data, and whether the winner is distinguishable from luck.",
    )
    if st is None:
        s.note("Give --study NAME (a study made by `alertlab optimize --study NAME`) to see it.")
        return s
    s.reading(F.study_reading(st))
    s.kv("Study", _study_view(st))
    s.fig(F.plot_study_trials(st))
    if importance:
        s.fig(F.plot_param_importance(importance, "PED-ANOVA"), half=True)
    else:
        s.note("Parameter importance needs at least 3 complete feasible trials.")
    s.fig(F.plot_folds(st), half=bool(importance))
    return s


def _grid_options(cfg: StrategyGrid) -> list[str]:
    """Options of a grid that can be heatmap axes: the varied ones first, then the fixed ones set."""
    from alertlab.engine.params import GRID_FIELDS

    varied = list(cfg.axes())
    fixed = [
        f
        for f in GRID_FIELDS
        if f not in varied
        and getattr(cfg, f) is not None
        and not (f == "breakeven_offset" and cfg.breakeven_at is None)
        and not (f == "trail_activation" and cfg.trail is None)
        and f not in ("fee_bps", "slippage_bps", "entry_delay_bars")
    ]
    return varied + fixed


def _rule_text(cfg) -> str:
    d = cfg.model_dump(exclude_defaults=True)
    return (
        ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())
        or "hold to the horizon"
    )


def _summary_view(s: dict) -> dict[str, Any]:
    pct = (
        "win_rate",
        "avg_ret",
        "median_ret",
        "worst_ret",
        "best_ret",
        "ambiguous_share",
        "avg_ret_pessimistic",
        "avg_ret_optimistic",
    )
    keys = (
        "n_alerts",
        "n_trades",
        "no_fill",
        "win_rate",
        "avg_ret",
        "median_ret",
        "profit_factor",
        "sharpe",
        "t_stat",
        "max_drawdown",
        "ambiguous_share",
        "avg_ret_pessimistic",
        "avg_ret_optimistic",
    )
    out: dict[str, Any] = {}
    for k in keys:
        if k in s and s[k] is not None:
            v = s[k]
            out[k] = f"{v:+.2%}" if k in pct and "ret" in k else f"{v:.1%}" if k in pct else v
    return out


def _portfolio_view(p: dict, cfg) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sizing": (
            f"{cfg.stake_pct:.1%} of equity (compounding)"
            if cfg.stake_pct
            else f"{cfg.stake:,.0f} per trade (fixed)"
        )
        + (f", at most {cfg.max_open} open" if cfg.max_open else "")
    }
    for k, v in p.items():
        out[k] = (
            f"{v:+.1%}" if k == "total_return" else f"{v:.1%}" if k in ("max_drawdown", "exposure") else v
        )
    return out


def _study_view(st) -> dict[str, Any]:
    rec = st.recommended or {}
    out: dict[str, Any] = {
        "study": st.name,
        "objective": st.options.objective,
        "trials (complete / failed)": f"{st.counts['n_trials']} "
        f"({st.counts['n_complete']} / {st.counts['n_failed']})",
        "feasible": st.counts["n_feasible"],
        "folds": len(st.folds),
    }
    if rec:
        out["recommended trial"] = rec["trial"]
        out["options"] = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec["options"].items()
        )
        out["train / test"] = f"{rec['train']:.4g} / {rec['test']:.4g}"
        bt = rec.get("best_train_trial") or {}
        if bt:
            out["best-train trial: train / test"] = f"{bt['trial']}: {bt['train']:.4g} / {bt['test']:.4g}"
    if st.dsr:
        out["DSR"] = f"{st.dsr['dsr']:.3f} (Sharpe {st.dsr['sr']:.3f} vs expected max {st.dsr['sr0']:.3f})"
    if st.pbo:
        out["PBO"] = f"{st.pbo['pbo']:.2f} ({st.pbo['n_combinations']} CSCV splits)"
    for n in st.notes:
        out.setdefault("notes", n)
    return out
