"""Plotly figures of the report, one function per chart, built from the result objects the CLI prints.

Every number drawn comes from a result object as it is: :class:`~alertlab.app.baseline.BaselineResult`
(per-alert ``table``, ``leaderboard``, ``windows``), the caller statistics of
:func:`~alertlab.truth.leaderboard.caller_stats`, :class:`~alertlab.engine.BacktestResult`
(``trades``, ``summary``, ``per_caller``, ``equity``, ``portfolio``), a grid frame of
:func:`~alertlab.engine.run_grid` and an optimizer :class:`~alertlab.optimize.StudyResult`. What the
results lack is computed once in the truth/engine layers (fan-chart multiples:
:mod:`alertlab.truth.paths`; the no-skill band: :func:`~alertlab.truth.leaderboard.wilson_interval`).
Figures are plain ``plotly.graph_objects.Figure`` objects, so notebooks show them inline.

Optional result fields (window statuses beyond ok/missing/stale/bad_entry, per-alert coverage and
resolution, suspect bars, end-of-data exits) are drawn when present: nothing here lists them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

FONT = "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK = "#1b2733"
BLUE = "#2b5d9b"
TEAL = "#138d90"
RED = "#c0392b"
GREEN = "#1e8449"
GREY = "#8795a1"
LIGHT = "#d5dde5"
AMBER = "#d68910"
PALETTE = (BLUE, TEAL, AMBER, RED, "#7d3c98", GREEN, GREY, "#a04000", "#1abc9c", "#5d6d7e")
HOURS = 3600.0


_TEMPLATE: list[Any] = []


def _template() -> Any:
    """A small white template, built once: assigning plotly's full ``plotly_white`` costs ~0.1–0.3 s
    per figure (it is validated every time) and adds ~7 kB of JSON to each figure."""
    if not _TEMPLATE:
        axis = dict(
            gridcolor="#eef2f5",
            linecolor=LIGHT,
            showline=True,
            ticks="outside",
            tickcolor=LIGHT,
            zeroline=False,
            automargin=True,
            title=dict(standoff=8),
        )
        _TEMPLATE.append(
            go.layout.Template(
                layout=dict(
                    paper_bgcolor="white",
                    plot_bgcolor="white",
                    colorway=list(PALETTE),
                    font=dict(family=FONT, color=INK),
                    xaxis=axis,
                    yaxis=axis,
                    hoverlabel=dict(align="left"),
                    hovermode="closest",
                )
            )
        )
    return _TEMPLATE[0]


def _style(fig: go.Figure, title: str | None = None, height: int = 300, **layout: Any) -> go.Figure:
    fig.update_layout(
        template=_template(),
        height=height,
        margin=dict(l=56, r=16, t=34 if title else 14, b=40),
        font=dict(family=FONT, size=11, color=INK),
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=13)) if title else None,
        legend=dict(
            orientation="h",
            yanchor="bottom",
            y=1.0,
            xanchor="right",
            x=1.0,
            font=dict(size=10),
            bgcolor="rgba(255,255,255,0)",
        ),
        hoverlabel=dict(font=dict(family=FONT, size=11)),
        bargap=0.08,
        **layout,
    )
    return fig


def _frame(x: Any) -> pd.DataFrame:
    """A per-alert table as pandas (BaselineResult, pyarrow Table or DataFrame)."""
    t = getattr(x, "table", x)
    return t.to_pandas() if hasattr(t, "to_pandas") and not isinstance(t, pd.DataFrame) else t


def _bt(x: Any) -> Any:
    """The BacktestResult of a BacktestRun (``.result``) or the result itself."""
    return getattr(x, "result", None) or x


def _usable_rows(df: pd.DataFrame, caller: str | None) -> pd.DataFrame:
    st = df["status"]
    ok = (st == 0) if pd.api.types.is_numeric_dtype(st) else (st.astype(str) == "ok")
    if "usable" in df.columns:  # a later window model may say which rows count
        ok = df["usable"].astype(bool)
    d = df.loc[ok.to_numpy(dtype=bool)]
    return d if caller is None else d.loc[d["caller"] == caller]


def _vmark(fig: go.Figure, x: float, text: str, color: str, dash: str, side: str = "left") -> None:
    """A vertical line on a log x axis: shapes take data values, annotations take log10 (plotly.js)."""
    fig.add_vline(x=x, line=dict(color=color, dash=dash, width=1))
    fig.add_annotation(
        x=np.log10(x),
        y=1.0,
        yref="paper",
        text=text,
        showarrow=False,
        xanchor=side,
        yanchor="bottom",
        font=dict(size=10, color=color),
    )


# --------------------------------------------------------------------------------------------- data


def plot_status(w: Any) -> go.Figure:
    """Alerts by window status (every status the windows report, most frequent first)."""
    w = getattr(w, "windows", w)
    names, counts = np.unique(np.asarray(w.status_names(), dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    names, counts = names[order], counts[order]
    colors = [GREEN if n == "ok" else AMBER if n in ("truncated", "stale") else RED for n in names]
    total = max(1, int(counts.sum()))
    fig = go.Figure(
        go.Bar(
            x=counts,
            y=names,
            orientation="h",
            marker_color=colors,
            text=[f"{c:,} ({c / total:.0%})" for c in counts],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} alerts<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _style(fig, "Window status", height=220, xaxis_title="alerts")


def plot_coverage(w: Any) -> go.Figure:
    """Share of the horizon each usable window covers, and the bar resolution of the windows."""

    w = getattr(w, "windows", w)
    use = w.usable()
    cov = np.asarray(w.coverage, dtype=np.float64)[use]
    res = getattr(w, "resolution_s", None)
    res = np.full(int(use.sum()), w.interval_s) if res is None else np.asarray(res)[use]
    rv, rc = np.unique(res, return_counts=True)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.68, 0.32],
        horizontal_spacing=0.12,
        subplot_titles=("coverage of the horizon", "bar resolution"),
    )
    fig.add_trace(
        go.Histogram(
            x=np.minimum(cov, 1.0),
            xbins=dict(start=0, end=1.0001, size=0.05),
            marker_color=BLUE,
            name="coverage",
            hovertemplate="coverage %{x}: %{y:,} alerts<extra></extra>",
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Bar(
            x=[_dur(v) for v in rv],
            y=rc,
            marker_color=TEAL,
            name="resolution",
            hovertemplate="%{x}: %{y:,} alerts<extra></extra>",
        ),
        1,
        2,
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1.05], dtick=0.2, row=1, col=1)  # the whole 0–100% scale
    fig.update_annotations(font_size=11)
    return _style(fig, None, height=220, showlegend=False)


def _dur(s: float) -> str:
    s = float(s)
    if s % 3600 == 0:
        return f"{s / 3600:g}h"
    if s % 60 == 0:
        return f"{s / 60:g}m"
    return f"{s:g}s"


# ------------------------------------------------------------------------------------------ callers


def plot_leaderboard(board: Any, top: int = 25) -> go.Figure:
    """Top callers: 2x hit rate with its Wilson 95% interval, ATH median with its bootstrap CI."""
    b = getattr(board, "leaderboard", board).head(top)
    y = [f"{int(r)}. {c}" for r, c in zip(b["rank"], b["caller"], strict=True)]
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=("hit 2x rate · Wilson 95%", "ATH median · bootstrap 95% CI"),
    )
    rate = b["hit2x_rate"].to_numpy(float)
    fig.add_trace(
        go.Scatter(
            x=rate,
            y=y,
            mode="markers",
            marker=dict(color=BLUE, size=7),
            name="hit 2x",
            error_x=dict(
                type="data",
                symmetric=False,
                array=b["hit2x_hi"].to_numpy(float) - rate,
                arrayminus=rate - b["hit2x_lo"].to_numpy(float),
                color=BLUE,
                thickness=1.4,
                width=0,
            ),
            customdata=np.c_[b["n"], b["hit2x_lo"], b["hit2x_hi"]],
            hovertemplate="%{y}<br>hit 2x %{x:.1%} [%{customdata[1]:.1%}, %{customdata[2]:.1%}]"
            "<br>n = %{customdata[0]}<extra></extra>",
        ),
        1,
        1,
    )
    med = b["ath_median"].to_numpy(float)
    fig.add_trace(
        go.Scatter(
            x=med,
            y=y,
            mode="markers",
            marker=dict(color=TEAL, size=7, symbol="diamond"),
            name="ATH median",
            error_x=dict(
                type="data",
                symmetric=False,
                array=b["ath_median_hi"].to_numpy(float) - med,
                arrayminus=med - b["ath_median_lo"].to_numpy(float),
                color=TEAL,
                thickness=1.4,
                width=0,
            ),
            customdata=np.c_[b["ath_median_lo"], b["ath_median_hi"]],
            hovertemplate="%{y}<br>ATH median %{x:.2f}x [%{customdata[0]:.2f}, %{customdata[1]:.2f}]"
            "<extra></extra>",
        ),
        1,
        2,
    )
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=10))
    fig.update_xaxes(tickformat=".0%", row=1, col=1)
    fig.update_xaxes(type="log", row=1, col=2, ticksuffix="x")
    fig.update_annotations(font_size=11)
    return _style(fig, None, height=max(340, 70 + 17 * len(b)), showlegend=False)


def plot_hit_rate_vs_calls(stats: pd.DataFrame, min_calls: int = 0) -> go.Figure:
    """Each caller's 2x hit rate against its number of ok calls, over the 95% band of a no-skill caller.

    The band is the Wilson 95% interval (the leaderboard's formula) of a caller hitting at the pooled
    rate of all callers: points inside it are indistinguishable from the crowd at that sample size.
    """
    from alertlab.truth.leaderboard import wilson_interval

    s = stats.loc[stats["n"] > 0]
    n = s["n"].to_numpy(float)
    k = s["hit2x_rate"].to_numpy(float) * n
    p0 = float(k.sum() / n.sum()) if n.sum() else float("nan")
    grid = np.unique(np.round(np.geomspace(1, max(2.0, n.max() if n.size else 2) * 1.15, 120)))
    lo, hi = wilson_interval(p0 * grid, grid)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.r_[grid, grid[::-1]],
            y=np.r_[hi, lo[::-1]],
            fill="toself",
            fillcolor="rgba(135,149,161,0.18)",
            line=dict(width=0),
            hoverinfo="skip",
            name="95% band, no skill",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=grid,
            y=np.full(grid.size, p0),
            mode="lines",
            line=dict(color=GREY, dash="dot"),
            name=f"pooled rate {p0:.1%}",
            hoverinfo="skip",
        )
    )
    ranked = n >= min_calls
    for mask, name, color in ((ranked, "ranked", BLUE), (~ranked, f"< {min_calls} calls (not ranked)", GREY)):
        if mask.any():
            fig.add_trace(
                go.Scatter(
                    x=n[mask],
                    y=s["hit2x_rate"].to_numpy(float)[mask],
                    mode="markers",
                    name=name,
                    marker=dict(color=color, size=7, line=dict(color="white", width=0.5)),
                    text=s["caller"].to_numpy(str)[mask],
                    customdata=np.c_[
                        s["hit2x_lo"].to_numpy(float)[mask], s["hit2x_hi"].to_numpy(float)[mask]
                    ],
                    hovertemplate="%{text}<br>n = %{x}<br>hit 2x %{y:.1%} [%{customdata[0]:.1%}, "
                    "%{customdata[1]:.1%}]<extra></extra>",
                )
            )
    fig.update_xaxes(type="log", title="ok calls (log)")
    fig.update_yaxes(tickformat=".0%", title="hit 2x rate", rangemode="tozero")
    fig = _style(fig, "Hit 2x rate vs number of calls", height=340)
    return fig.update_layout(
        legend=dict(x=0.99, y=0.99, xanchor="right", yanchor="top", bgcolor="rgba(255,255,255,0.85)")
    )


# --------------------------------------------------------------------------------------- per caller


def plot_ath_distribution(table: Any, caller: str | None = None) -> go.Figure:
    """Histogram of ATH multiples (log bins, log axis) with the median and the 2x line."""
    d = _usable_rows(_frame(table), caller)
    a = d["ath_mult"].to_numpy(float)
    a = a[np.isfinite(a) & (a > 0)]
    fig = go.Figure()
    if a.size:
        lo, hi = np.log10(max(a.min(), 1e-3)), np.log10(a.max())
        edges = np.linspace(lo, max(hi, lo + 0.05), 36)
        cnt, e = np.histogram(np.log10(a), bins=edges)
        mids, widths = 10 ** ((e[:-1] + e[1:]) / 2), 10 ** e[1:] - 10 ** e[:-1]
        fig.add_trace(
            go.Bar(
                x=mids,
                y=cnt,
                width=widths,
                marker_color=BLUE,
                marker_line_width=0,
                customdata=np.c_[10 ** e[:-1], 10 ** e[1:]],
                hovertemplate="%{customdata[0]:.2f}x–%{customdata[1]:.2f}x: %{y} calls<extra></extra>",
            )
        )
        med = float(np.median(a))
        _vmark(fig, med, f"median {med:.2f}x", INK, "dot", "left" if med >= 2.0 else "right")
        _vmark(fig, 2.0, "2x", RED, "solid", "right" if med >= 2.0 else "left")
    fig.update_xaxes(type="log", title="ATH multiple of the entry price (log)", ticksuffix="x")
    fig.update_yaxes(title="calls")
    return _style(fig, "ATH multiple", height=260, showlegend=False)


def plot_time_to_2x(table: Any, caller: str | None = None) -> go.Figure:
    """Hours from entry to the first 2x among the calls that reached it (title: share reaching it)."""
    d = _usable_rows(_frame(table), caller)
    t = d["time_to_2x_s"].to_numpy(float)
    hit = t[np.isfinite(t) & (t >= 0)] / HOURS
    share = hit.size / max(1, len(d))
    fig = go.Figure(
        go.Histogram(x=hit, nbinsx=40, marker_color=TEAL, hovertemplate="%{x} h: %{y} calls<extra></extra>")
    )
    if hit.size:
        fig.add_vline(
            x=float(np.median(hit)),
            line=dict(color=INK, dash="dot", width=1),
            annotation_text=f"median {np.median(hit):.1f} h",
            annotation_font_size=10,
        )
    fig.update_xaxes(title="hours to 2x", rangemode="tozero")
    fig.update_yaxes(title="calls")
    return _style(
        fig, f"Time to 2x ({hit.size} of {len(d)} calls, {share:.0%}, reach it)", height=260, showlegend=False
    )


def plot_fan(w: Any, caller: str | None = None, step_hours: float = 0.5) -> go.Figure:
    """Median and 25–75% / 5–95% bands of the price multiple vs hours since the call (log axis)."""
    from alertlab.truth.paths import FAN_QUANTILES, fan_quantiles, multiples_at

    w = getattr(w, "windows", w)
    idx = np.flatnonzero(w.usable() & ((np.asarray(w.caller) == caller) if caller is not None else True))
    hours = np.arange(0.0, w.horizon_s / HOURS + 1e-9, step_hours)
    m = multiples_at(w, idx, hours)
    q = fan_quantiles(m, FAN_QUANTILES)
    n = (~np.isnan(m)).sum(axis=0)
    fig = go.Figure()
    for (a, b), alpha, label in (((0, 4), 0.14, "5–95%"), ((1, 3), 0.30, "25–75%")):
        fig.add_trace(
            go.Scatter(
                x=np.r_[hours, hours[::-1]],
                y=np.r_[q[b], q[a][::-1]],
                fill="toself",
                fillcolor=f"rgba(43,93,155,{alpha})",
                line=dict(width=0),
                name=label,
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=hours,
            y=q[2],
            mode="lines",
            line=dict(color=BLUE, width=2),
            name="median",
            customdata=np.c_[q[0], q[1], q[3], q[4], n],
            hovertemplate="%{x} h: median %{y:.2f}x<br>25–75%: %{customdata[1]:.2f}–"
            "%{customdata[2]:.2f}x<br>5–95%: %{customdata[0]:.2f}–"
            "%{customdata[3]:.2f}x<br>%{customdata[4]} calls<extra></extra>",
        )
    )
    fig.add_hline(y=1.0, line=dict(color=GREY, width=1, dash="dot"))
    fig.update_xaxes(title="hours since the call (entry bar)", rangemode="tozero")
    fig.update_yaxes(type="log", title="price / entry (log)", ticksuffix="x")
    return _style(fig, "Price multiple after the call", height=260)


# ----------------------------------------------------------------------------------------- strategy


def plot_equity(bt: Any) -> go.Figure:
    """Cumulative net return with a fixed stake of 1 per alert (alert-time order), underwater below."""
    r = _bt(bt)
    eq = r.equity
    x = pd.to_datetime(eq["alert_ts_ms"], unit="ms", utc=True)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=eq["equity"],
            mode="lines",
            line=dict(color=BLUE, width=1.6),
            name="fixed stake",
            customdata=np.c_[eq["caller"], eq["ret"]],
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>equity %{y:.2f} stakes<br>"
            "%{customdata[0]}: %{customdata[1]:+.1%}<extra></extra>",
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=-eq["drawdown"],
            mode="lines",
            fill="tozeroy",
            line=dict(color=RED, width=1),
            fillcolor="rgba(192,57,43,0.25)",
            name="drawdown",
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>drawdown %{y:.2f} stakes<extra></extra>",
        ),
        2,
        1,
    )
    fig.update_yaxes(title="Σ return (stakes)", row=1, col=1)
    fig.update_yaxes(title="underwater", row=2, col=1)
    return _style(fig, "Equity, fixed stake of 1 per alert", height=340, showlegend=False)


def plot_portfolio(bt: Any) -> go.Figure | None:
    """Portfolio replay (finite capital, compounding with ``stake_pct``): equity and underwater %."""
    r = _bt(bt)
    if getattr(r, "portfolio", None) is None or not len(r.portfolio.equity):
        return None
    eq = r.portfolio.equity
    x = pd.to_datetime(eq["ts"], unit="s", utc=True)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=eq["equity"],
            mode="lines",
            line=dict(color=TEAL, width=1.6),
            name="equity",
            line_shape="hv",
            customdata=eq["n_open"],
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>equity %{y:,.0f}<br>%{customdata} open<extra></extra>",
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=-eq["drawdown"],
            mode="lines",
            fill="tozeroy",
            line=dict(color=RED, width=1),
            line_shape="hv",
            fillcolor="rgba(192,57,43,0.25)",
            name="drawdown",
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>drawdown %{y:.1%}<extra></extra>",
        ),
        2,
        1,
    )
    fig.update_yaxes(title="equity (marked at cost)", row=1, col=1)
    fig.update_yaxes(title="underwater", tickformat=".0%", row=2, col=1)
    return _style(fig, "Portfolio equity (finite capital)", height=340, showlegend=False)


def plot_exit_reasons(bt: Any) -> go.Figure:
    """Trades by exit reason (the summary's ``exit_*`` counts and ``no_fill``, whatever reasons exist)."""
    s = _bt(bt).summary
    items = [(k[5:], int(v)) for k, v in s.items() if k.startswith("exit_")]
    if s.get("no_fill"):
        items.append(("no_fill", int(s["no_fill"])))
    items = [(k, v) for k, v in items if v > 0] or items
    items.sort(key=lambda kv: -kv[1])
    color = {"tp": GREEN, "sl": RED, "trail": AMBER, "breakeven": GREY, "time": BLUE, "horizon": BLUE}
    fig = go.Figure(
        go.Bar(
            x=[k for k, _ in items],
            y=[v for _, v in items],
            marker_color=[color.get(k, GREY) for k, _ in items],
            hovertemplate="%{x}: %{y:,}<extra></extra>",
        )
    )
    fig.update_yaxes(title="trades")
    return _style(fig, "Exit reasons", height=260, showlegend=False)


def plot_returns(bt: Any) -> go.Figure:
    """Distribution of net trade returns (filled trades), with mean and median."""
    r = _bt(bt)
    t = r.trades
    ret = t.loc[t["exit_reason"] != "no_fill", "ret"].to_numpy(float)
    fig = go.Figure(
        go.Histogram(x=ret, nbinsx=60, marker_color=BLUE, hovertemplate="%{x}: %{y} trades<extra></extra>")
    )
    for v, name, dash, pos in (
        (r.summary.get("avg_ret"), "mean", "solid", "top right"),
        (r.summary.get("median_ret"), "median", "dot", "bottom right"),
    ):
        if v is not None and np.isfinite(v):
            fig.add_vline(
                x=v,
                line=dict(color=INK, width=1, dash=dash),
                annotation_text=f"{name} {v:+.1%}",
                annotation_font_size=10,
                annotation_position=pos,
            )
    fig.update_xaxes(title="net return per trade", tickformat=".0%")
    fig.update_yaxes(title="trades")
    return _style(fig, "Return distribution", height=260, showlegend=False)


def plot_intrabar_band(bt: Any) -> go.Figure:
    """Average return under the pessimistic and optimistic intrabar policies, and the run's own."""
    s = _bt(bt).summary
    rows = [
        ("pessimistic", s.get("avg_ret_pessimistic"), RED),
        (f"run ({s.get('intrabar', '')})", s.get("avg_ret"), INK),
        ("optimistic", s.get("avg_ret_optimistic"), GREEN),
    ]
    fig = go.Figure()
    lo, hi = s.get("avg_ret_pessimistic"), s.get("avg_ret_optimistic")
    if lo is not None and hi is not None:
        fig.add_shape(
            type="rect", x0=lo, x1=hi, y0=-0.4, y1=2.4, fillcolor="rgba(214,137,16,0.15)", line_width=0
        )
    fig.add_trace(
        go.Scatter(
            x=[v for _, v, _ in rows],
            y=[n for n, _, _ in rows],
            mode="markers+text",
            marker=dict(color=[c for _, _, c in rows], size=10),
            text=[f"{v:+.2%}" if v is not None else "" for _, v, _ in rows],
            textposition="top center",
            hovertemplate="%{y}: %{x:+.2%} per trade<extra></extra>",
        )
    )
    vals = [v for _, v, _ in rows if v is not None and np.isfinite(v)]
    if vals:
        pad = max(max(vals) - min(vals), 0.01) * 0.6
        fig.update_xaxes(range=[min(vals) - pad, max(vals) + pad])
    fig.update_xaxes(title="average net return per trade", tickformat=".1%")
    amb = s.get("ambiguous_share")
    title = "Intrabar ambiguity band" + (f" ({amb:.1%} of trades ambiguous)" if amb is not None else "")
    return _style(fig, title, height=200, showlegend=False)


def plot_per_caller_results(bt: Any, top: int = 30) -> go.Figure:
    """Average net return per caller, with the pessimistic–optimistic range as the error bar."""
    pc = _bt(bt).per_caller
    pc = pc.loc[pc["n_trades"] > 0].sort_values("avg_ret", ascending=False).head(top)
    avg = pc["avg_ret"].to_numpy(float)
    has_band = {"avg_ret_pessimistic", "avg_ret_optimistic"} <= set(pc.columns)
    err = None
    if has_band:
        err = dict(
            type="data",
            symmetric=False,
            color=GREY,
            thickness=1.2,
            width=0,
            array=np.maximum(pc["avg_ret_optimistic"].to_numpy(float) - avg, 0),
            arrayminus=np.maximum(avg - pc["avg_ret_pessimistic"].to_numpy(float), 0),
        )
    fig = go.Figure(
        go.Bar(
            x=avg,
            y=pc["caller"],
            orientation="h",
            marker_color=np.where(avg >= 0, GREEN, RED),
            error_x=err,
            customdata=np.c_[
                pc["n_trades"], pc["win_rate"], pc.get("sharpe", pd.Series(np.nan, index=pc.index))
            ],
            hovertemplate="%{y}<br>avg %{x:+.2%} · %{customdata[0]} trades<br>win rate %{customdata[1]:.0%} · "
            "sharpe/trade %{customdata[2]:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=10))
    fig.update_xaxes(title="average net return per trade (bar: pessimistic–optimistic)", tickformat=".0%")
    return _style(fig, "Per caller", height=max(220, 60 + 16 * len(pc)), showlegend=False)


# ----------------------------------------------------------------------------------- trades on candles


def plot_trade(w: Any, bt: Any, alert_id: str) -> go.Figure:
    """Candles of one alert's window with the entry, every fill (partial take-profits one by one),
    the stop as it moved (breakeven, trailing) and the next take-profit level, bar by bar; suspect
    bars are marked when the windows flag them. The fills and levels come from the bar simulator's
    own trace (:func:`alertlab.engine.trace.trace_trade`), the title from the backtest's trade row."""
    from alertlab.engine.trace import trace_trade

    w = getattr(w, "windows", w)
    r = _bt(bt)
    ids = np.asarray(w.alert_id, dtype=object)
    hits = np.flatnonzero(ids == alert_id)
    if not hits.size:
        raise ValueError(f"unknown alert_id {alert_id!r}")
    i = int(hits[0])
    b = w.bars(i)
    x = np.asarray(b["ts"], dtype=np.float64) * 1000.0  # epoch ms on a date axis: compact binary in the page
    px = {
        k: np.asarray(b[k], dtype=np.float32) for k in ("open", "high", "low", "close")
    }  # display precision
    fig = go.Figure(_candles(x, np.asarray(b["dur"], dtype=np.float64) * 1000.0, px))
    suspect = getattr(w, "suspect", None)
    if suspect is not None:
        s, e = int(w.offsets[i]), int(w.offsets[i + 1])
        sm = np.asarray(suspect[s:e], dtype=bool)
        if sm.any():
            fig.add_trace(
                go.Scatter(
                    x=x[sm],
                    y=px["high"][sm],
                    mode="markers",
                    name="suspect bar",
                    marker=dict(symbol="x", color=AMBER, size=9),
                )
            )
    t = r.trades.loc[r.trades["alert_id"] == alert_id]
    title = f"{w.caller[i]} · {w.token[i][:10]}… · "
    if len(t) and t["exit_reason"].iloc[0] != "no_fill":
        row = t.iloc[0]
        tr = trace_trade(w, i, r.config)
        _draw_levels(fig, x, np.asarray(b["dur"], dtype=np.float64) * 1000.0, tr.levels)
        fig.add_trace(
            go.Scatter(
                x=[tr.entry_ts * 1000.0],
                y=[tr.entry_price],
                mode="markers",
                name="entry",
                marker=dict(symbol="triangle-up", size=13, color=BLUE, line=dict(color="white", width=1)),
                hovertemplate="entry<br>%{y:.4g}<extra></extra>",
            )
        )
        f = tr.fills
        stamp = pd.to_datetime(f["ts"].to_numpy(), unit="s").strftime("%Y-%m-%d %H:%M").to_numpy(object)
        fig.add_trace(
            go.Scatter(
                x=x[f["bar"].to_numpy()],  # on the candle it happened in (the stamp is in the hover)
                y=f["price"].to_numpy(),
                mode="markers",
                name="fills" if len(f) > 1 else f"exit: {row['exit_reason']}",
                marker=dict(
                    symbol="triangle-down",
                    size=np.clip(8 + 10 * f["fraction"].to_numpy(), 8, 16),
                    color=[
                        GREEN if rs == "tp" else (RED if rs in ("sl", "trail", "breakeven") else INK)
                        for rs in f["reason"]
                    ],
                    line=dict(color=INK, width=1.2),
                ),
                customdata=np.c_[f["reason"].to_numpy(object), f["fraction"].to_numpy(), stamp],
                hovertemplate="%{customdata[0]} · %{customdata[1]:.0%} of the position<br>%{y:.4g}"
                " · stamped %{customdata[2]}<extra></extra>",
            )
        )
        title += f"{row['exit_reason']} · {row['ret']:+.1%} net · {int(row['n_fills'])} fill(s)"
        if bool(row["ambiguous"]):
            title += " · ambiguous bar"
        # open on the trade (from a little before the entry to a little after the exit); zoom out for all
        t0, t1 = int(row["entry_ts"]) * 1000.0, int(row["exit_ts"]) * 1000.0
        pad = max((t1 - t0) * 0.25, 3600e3)
        fig.update_xaxes(range=[t0 - pad, min(t1 + pad, float(x[-1]) + w.interval_s * 1000.0)])
    else:
        title += "no fill"
    fig.update_layout(xaxis_rangeslider_visible=False)
    fig.update_xaxes(type="date")
    fig.update_yaxes(type="log", title="price (log)", dtick="D2")
    return _style(fig, title, height=360)


def _candles(x: np.ndarray, dur_ms: np.ndarray, px: dict[str, np.ndarray]) -> list[go.BaseTraceType]:
    """Candles as floating bars (body open↔close) whose error bars are the wicks: plain bar traces,
    which the report's small plotly.js bundle draws (it has no candlestick trace), one per colour."""
    o, h, lo, c = px["open"], px["high"], px["low"], px["close"]
    bottom = np.minimum(o, c)
    body = np.maximum(np.maximum(o, c) - bottom, bottom * np.float32(1e-3))  # a flat bar stays a tick
    top = bottom + body
    uniform = dur_ms.size > 0 and bool((dur_ms == dur_ms[0]).all())
    out: list[go.BaseTraceType] = []
    for m, color, name in ((c >= o, GREEN, "up"), (c < o, RED, "down")):
        if not m.any():
            continue
        out.append(
            go.Bar(
                x=x[m],
                y=body[m],
                base=bottom[m],
                width=float(dur_ms[0]) * 0.7 if uniform else (dur_ms[m] * 0.7).astype(np.float32),
                marker=dict(color=color, line=dict(width=0)),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=h[m] - top[m],
                    arrayminus=top[m] - lo[m],
                    color=color,
                    thickness=1,
                    width=0,
                ),
                customdata=np.c_[o[m], h[m], lo[m], c[m]],
                hovertemplate="O %{customdata[0]:.4g} H %{customdata[1]:.4g}<br>"
                "L %{customdata[2]:.4g} C %{customdata[3]:.4g}<extra></extra>",
                name=f"bars ({name})",
                showlegend=False,
            )
        )
    return out


def _draw_levels(fig: go.Figure, x: np.ndarray, dur_ms: np.ndarray, levels: pd.DataFrame) -> None:
    """The stop and the next take-profit level in force on each bar while the position is open, as
    step lines spanning each candle (a candle is centred on its open time)."""
    for col, name, color, dash in (
        ("stop", "stop", RED, "dash"),
        ("take_profit", "next take-profit", GREEN, "dot"),
    ):
        ok = np.flatnonzero(np.isfinite(levels[col].to_numpy(np.float64)))
        if not ok.size:
            continue
        k = int(ok[-1])
        # no-trade bars move nothing: the level in force carries over them while the position is open
        y = levels[col].iloc[: k + 1].ffill().to_numpy(np.float64)
        xs = np.append(x[: k + 1] - dur_ms[: k + 1] / 2, x[k] + dur_ms[k] / 2)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=np.append(y, y[-1]).astype(np.float32),
                mode="lines",
                name=name,
                line=dict(color=color, width=1.3, dash=dash, shape="hv"),
                connectgaps=False,
                hovertemplate=f"{name} %{{y:.4g}}<extra></extra>",
            )
        )


# --------------------------------------------------------------------------------------------- grid


def plot_grid(grid: pd.DataFrame, x: str, y: str, objective: str = "avg_ret") -> go.Figure:
    """Heatmap of ``objective`` over two grid options; other options take their best cell (on hover)."""
    g = grid.copy()
    for c in (x, y, objective):
        if c not in g.columns:
            raise ValueError(f"grid has no column {c!r}")
    g[x], g[y] = g[x].astype(str), g[y].astype(str)
    best = g.sort_values(objective, ascending=False, na_position="last").groupby([y, x], sort=False).head(1)
    xs = sorted(g[x].unique(), key=_num_key)
    ys = sorted(g[y].unique(), key=_num_key)
    piv = best.set_index([y, x])
    z = np.full((len(ys), len(xs)), np.nan)
    hover = np.empty((len(ys), len(xs)), dtype=object)
    others = [c for c in grid.columns if c not in (x, y, "combo") and c in _option_columns(grid)]
    for a, yy in enumerate(ys):
        for b_, xx in enumerate(xs):
            if (yy, xx) not in piv.index:
                hover[a, b_] = ""
                continue
            row = piv.loc[(yy, xx)]
            z[a, b_] = row[objective]
            extra = "".join(f"<br>{o} = {row[o]}" for o in others)
            hover[a, b_] = (
                f"{objective} {row[objective]:.4g}<br>n_trades {int(row['n_trades'])}"
                f"<br>ambiguous {row.get('ambiguous_share', float('nan')):.1%}"
                f"<br>pess / opt {row.get('avg_ret_pessimistic', float('nan')):+.2%} / "
                f"{row.get('avg_ret_optimistic', float('nan')):+.2%}{extra}"
            )
    pct = objective in ("avg_ret", "median_ret", "win_rate", "avg_ret_pessimistic", "avg_ret_optimistic")
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=xs,
            y=ys,
            text=hover,
            hovertemplate=f"{x} %{{x}} · {y} %{{y}}<br>%{{text}}<extra></extra>",
            colorscale="RdYlGn",
            zmid=0 if pct else None,
            texttemplate="%{z:.1%}" if pct else "%{z:.3g}",
            textfont=dict(size=10),
            colorbar=dict(thickness=10, tickformat=".0%" if pct else None),
        )
    )
    fig.update_xaxes(title=x, type="category")
    fig.update_yaxes(title=y, type="category")
    return _style(fig, f"{objective} by {x} × {y}", height=max(240, 90 + 34 * len(ys)))


def _num_key(v: str) -> tuple:
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)


def _option_columns(grid: pd.DataFrame) -> list[str]:
    from alertlab.engine.params import GRID_FIELDS

    return [c for c in grid.columns if c in GRID_FIELDS]


# -------------------------------------------------------------------------------------------- study


def plot_study_trials(study: Any) -> go.Figure:
    """Every complete trial's training and out-of-sample objective by trial number, running best train."""
    t = study.trials
    t = t.loc[t["state"] == "complete"].sort_values("trial")
    obj = study.options.objective
    fig = go.Figure()
    feas = t["feasible"].astype(bool).to_numpy()
    fig.add_trace(
        go.Scatter(
            x=t["trial"],
            y=t["train"],
            mode="markers",
            name="train (in-sample)",
            marker=dict(color=np.where(feas, BLUE, LIGHT), size=5),
            hovertemplate="trial %{x}<br>train %{y:.4g}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=t["trial"],
            y=t["test"],
            mode="markers",
            name="test (out-of-sample)",
            marker=dict(color=np.where(feas, AMBER, LIGHT), size=5, symbol="diamond"),
            hovertemplate="trial %{x}<br>test %{y:.4g}<extra></extra>",
        )
    )
    best = pd.Series(np.where(feas, t["train"].to_numpy(float), -np.inf)).cummax().replace(-np.inf, np.nan)
    fig.add_trace(
        go.Scatter(
            x=t["trial"],
            y=best,
            mode="lines",
            line=dict(color=BLUE, width=1.5, shape="hv"),
            name="best train so far",
            hoverinfo="skip",
        )
    )
    rec = study.recommended
    if rec:
        fig.add_trace(
            go.Scatter(
                x=[rec["trial"]],
                y=[rec["test"]],
                mode="markers",
                name="recommended",
                marker=dict(symbol="star", size=14, color=RED, line=dict(color="white", width=1)),
                hovertemplate="recommended trial %{x}<br>test %{y:.4g}<extra></extra>",
            )
        )
    fig.update_xaxes(title="trial")
    fig.update_yaxes(title=obj)
    return _style(fig, f"Trials ({obj}; grey = infeasible)", height=300)


def plot_param_importance(importance: Mapping[str, float], method: str = "") -> go.Figure:
    """Horizontal bars of parameter importances (as given, e.g. Optuna's evaluator on the study)."""
    items = sorted(importance.items(), key=lambda kv: kv[1])
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in items],
            y=[k for k, _ in items],
            orientation="h",
            marker_color=TEAL,
            hovertemplate="%{y}: %{x:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(title="importance for the training objective" + (f" ({method})" if method else ""))
    return _style(fig, "Parameter importance", height=max(180, 60 + 26 * len(items)), showlegend=False)


def plot_folds(study: Any, trial: int | None = None) -> go.Figure:
    """In-sample vs out-of-sample objective per walk-forward fold for one trial (default: recommended)."""
    fm = study.fold_metrics
    if trial is None:
        trial = (study.recommended or {}).get("trial")
    d = fm.loc[fm["trial"] == trial] if trial is not None else fm.iloc[0:0]
    fig = go.Figure()
    for split, color, name in (("train", BLUE, "in-sample (train)"), ("test", AMBER, "out-of-sample (test)")):
        s = d.loc[d["split"] == split].sort_values("fold")
        fig.add_trace(
            go.Bar(
                x=[f"fold {int(f) + 1}" for f in s["fold"]],
                y=s["objective"],
                name=name,
                marker_color=color,
                customdata=s["n_trades"],
                hovertemplate=f"{name}<br>%{{x}}: %{{y:.4g}}<br>%{{customdata}} trades<extra></extra>",
            )
        )
    fig.add_hline(y=0, line=dict(color=GREY, width=1))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=study.options.objective)
    return _style(fig, f"Walk-forward folds, trial {trial}", height=260)


def study_reading(study: Any) -> str:
    """One plain line on DSR and PBO: is the recommendation's edge distinguishable from luck?"""
    n = study.counts.get("n_trials", 0)
    parts = []
    dsr = (study.dsr or {}).get("dsr")
    if dsr is None:
        parts.append("no DSR (" + ("; ".join(study.notes) or "no recommendation") + ")")
    elif dsr < 0.95:
        parts.append(
            f"the recommended configuration's edge is not distinguishable from luck after {n:,} trials "
            f"(DSR {dsr:.2f} < 0.95)"
        )
    else:
        parts.append(
            f"the recommended configuration's Sharpe survives deflation for {n:,} trials (DSR {dsr:.2f})"
        )
    pbo = (study.pbo or {}).get("pbo")
    if pbo is not None:
        verdict = (
            "likely overfit"
            if pbo > 0.5
            else "some overfitting risk"
            if pbo > 0.2
            else "low overfitting risk"
        )
        parts.append(
            f"PBO {pbo:.0%}: in {pbo:.0%} of the CSCV splits the in-sample best ranks in the bottom half "
            f"out of sample ({verdict})"
        )
    return "; ".join(parts) + "."


def top_callers(board: pd.DataFrame, n: int) -> Sequence[str]:
    """The first ``n`` callers of the leaderboard, in rank order."""
    return [str(c) for c in board["caller"].head(n)]
