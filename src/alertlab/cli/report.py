"""``alertlab report``: one self-contained interactive HTML report (figures of every result)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from alertlab.cli.backtest import (
    BreakevenAtOpt,
    BreakevenOffsetOpt,
    CapitalOpt,
    DipOpt,
    DipWindowOpt,
    EntryDelayBarsOpt,
    FeeBpsOpt,
    FillOnZeroVolumeOpt,
    IntrabarOpt,
    MaxOpenOpt,
    SlippageBpsOpt,
    SlOpt,
    StakeOpt,
    StakePctOpt,
    StrategyConfigOpt,
    TimeStopHoursOpt,
    TpLadderOpt,
    TpOpt,
    TrailActivationOpt,
    TrailOpt,
    build_strategy,
    portfolio_flags,
    strategy_flags,
)
from alertlab.cli.options import (
    CallerOpt,
    ChainOpt,
    FromOpt,
    HomeOpt,
    HorizonOpt,
    IntervalOpt,
    JsonOpt,
    LagOpt,
    MinCoverageOpt,
    NoWickGuardOpt,
    ToOpt,
    WickGuardOpt,
    _pydantic_msg,
    _selection_spec,
    fail,
)
from alertlab.cli.render import console, print_json


def open_in_browser(path: Path) -> bool:
    """Open ``path`` in the default browser (``webbrowser``); False when no browser is available."""
    import webbrowser

    return webbrowser.open(path.resolve().as_uri())


def _axes(grid_axes: str | None) -> tuple[str, str] | None:
    """``--grid-axes tp,sl`` → ``("tp", "sl")``; one-line error unless exactly two options."""
    if grid_axes is None:
        return None
    parts = [a.strip().replace("-", "_") for a in grid_axes.split(",") if a.strip()]
    if len(parts) != 2:
        fail(f"--grid-axes {grid_axes!r}: give two options separated by a comma, e.g. tp,sl")
    return parts[0], parts[1]


def _print_report(r, as_json: bool, open_: bool) -> None:
    if as_json:
        print_json(
            {
                "run_id": r.run.run_id,
                "path": str(r.path),
                "bytes": r.size_bytes,
                "sections": r.sections,
                "figures": r.n_figures,
                "timings": r.run.timings,
                "warnings": r.warnings,
            }
        )
    else:
        console.print(
            f"report: {r.path}  ({r.size_bytes / 1e6:.1f} MB, {r.n_figures} figures, "
            f"{r.run.timings.get('total', 0):.1f}s)",
            highlight=False,
            soft_wrap=True,
        )  # a path never wraps
    for msg in r.warnings:
        console.print(f"[bold yellow]warning:[/] {msg}", highlight=False, soft_wrap=True)
    if open_ and not open_in_browser(r.path):
        console.print("no browser available here: open the file above yourself", highlight=False)


def register(app: typer.Typer) -> None:

    @app.command("report")
    def report(
        home: HomeOpt = None,
        from_: FromOpt = None,
        to: ToOpt = None,
        caller: CallerOpt = None,
        chain: ChainOpt = None,
        interval_seconds: IntervalOpt = None,
        horizon_hours: HorizonOpt = 48.0,
        max_entry_lag_s: LagOpt = None,
        wick_guard: WickGuardOpt = None,
        no_wick_guard: NoWickGuardOpt = False,
        min_coverage: MinCoverageOpt = None,
        min_calls: Annotated[
            int, typer.Option("--min-calls", help="Callers with fewer ok alerts are not ranked.")
        ] = 10,
        rank_by: Annotated[
            str, typer.Option("--rank-by", help="Leaderboard column to rank by (descending).")
        ] = "hit2x_lo",
        strategy_config: StrategyConfigOpt = None,
        tp: TpOpt = None,
        tp_ladder: TpLadderOpt = None,
        sl: SlOpt = None,
        breakeven_at: BreakevenAtOpt = None,
        breakeven_offset: BreakevenOffsetOpt = None,
        trail: TrailOpt = None,
        trail_activation: TrailActivationOpt = None,
        time_stop_hours: TimeStopHoursOpt = None,
        entry_delay_bars: EntryDelayBarsOpt = None,
        dip: DipOpt = None,
        dip_window: DipWindowOpt = None,
        fee_bps: FeeBpsOpt = None,
        slippage_bps: SlippageBpsOpt = None,
        intrabar: IntrabarOpt = None,
        fill_on_zero_volume: FillOnZeroVolumeOpt = None,
        capital: CapitalOpt = None,
        stake: StakeOpt = None,
        stake_pct: StakePctOpt = None,
        max_open: MaxOpenOpt = None,
        grid_axes: Annotated[
            str | None,
            typer.Option(
                "--grid-axes",
                help="Two grid options for the heatmap, e.g. 'tp,sl' (default: the first two varied).",
            ),
        ] = None,
        objective: Annotated[
            str, typer.Option(help="Grid metric of the heatmap and of the best cell.")
        ] = "avg_ret",
        study: Annotated[
            str | None,
            typer.Option(
                "--study", help="Add the Study section of this optimize study (name as given to optimize)."
            ),
        ] = None,
        top_callers: Annotated[
            int, typer.Option("--top-callers", help="Callers in the Per caller selector.")
        ] = 8,
        trades: Annotated[
            int, typer.Option("--trades", help="Trades drawn on candles (best, worst, ambiguous, laddered).")
        ] = 8,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="HTML file to write (default <home>/reports/report-<run id>.html)."),
        ] = None,
        open_: Annotated[
            bool, typer.Option("--open", help="Open the report in the default browser.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Write one self-contained interactive HTML report: data, callers, per caller, strategy, trades, grid, study."""
        from alertlab.app.report import run_report
        from alertlab.store import resolve_home

        sel, spec = _selection_spec(
            from_,
            to,
            caller,
            chain,
            interval_seconds,
            horizon_hours,
            max_entry_lag_s,
            wick_guard,
            no_wick_guard,
            min_coverage,
        )
        if out is not None and out.suffix.lower() not in (".html", ".htm"):
            fail(f"--out {out}: the report is an HTML file (use a .html name)")
        axes = _axes(grid_axes)
        try:
            flags = strategy_flags(
                tp,
                tp_ladder,
                sl,
                breakeven_at,
                breakeven_offset,
                trail,
                trail_activation,
                time_stop_hours,
                entry_delay_bars,
                dip,
                dip_window,
                fee_bps,
                slippage_bps,
                intrabar,
                fill_on_zero_volume,
            )
            given = strategy_config is not None or any(v is not None for v in flags.values())
            strategy = build_strategy(strategy_config, flags) if given else None
            if capital is not None and strategy is None and study is None:
                fail("--capital needs a strategy (--tp/--sl…, --strategy-config or --study)")
            port = portfolio_flags(capital, stake, stake_pct, max_open)
        except ValidationError as exc:
            fail(_pydantic_msg(exc))
        except (typer.BadParameter, ValueError) as exc:
            fail(str(exc))
        try:
            r = run_report(
                resolve_home(home),
                sel,
                spec,
                strategy=strategy,
                portfolio=port,
                study=study,
                out=out,
                min_calls=min_calls,
                rank_by=rank_by,
                top_callers=top_callers,
                n_trades=trades,
                grid_axes=axes,
                objective=objective,
                progress=not as_json,
            )
        except ValueError as exc:
            fail(str(exc))
        _print_report(r, as_json, open_)
