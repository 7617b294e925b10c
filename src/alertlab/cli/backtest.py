"""``alertlab backtest`` (alias ``bt``): exit strategies, grids and portfolio replays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from pydantic import ValidationError

from alertlab.cli.options import (
    CallerOpt,
    ChainOpt,
    ClusterDataOpt,
    ClusterOpt,
    ForceOpt,
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
    WideOpt,
    _selection_spec,
    fail,
    set_wide,
)
from alertlab.cli.render import (
    Col,
    console,
    frame_table,
    interval_text,
    kv_table,
    print_diagnosis,
    print_json,
    print_tables,
    status_view,
)

if TYPE_CHECKING:
    from alertlab.engine import PortfolioConfig, Strategy, StrategyGrid

NumList = Annotated[str | None, typer.Option()]


def parse_numbers(name: str, text: str | None, integer: bool = False) -> Any:
    """``"2"`` → 2.0, ``"1.5,2,3"`` → [1.5, 2.0, 3.0] (a grid axis); clear error otherwise."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise typer.BadParameter(f"--{name}: empty value")
    try:
        vals = [int(p) if integer else float(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(
            f"--{name}: expected {'integers' if integer else 'numbers'} separated by commas, got {text!r}"
        ) from None
    return vals[0] if len(vals) == 1 else vals


def parse_ladders(text: str | None) -> Any:
    """``"2:0.5,4:0.5"`` is one ladder; ``"2:0.5,4:0.5;3:1"`` is a grid of two ladders."""
    if text is None:
        return None
    ladders = [p.strip() for p in text.split(";") if p.strip()]
    return ladders[0] if len(ladders) == 1 else ladders


FLAG_NAMES = {
    "tp_ladder": "--tp-ladder",
    "tp": "--tp",
    "sl": "--sl",
    "breakeven_at": "--breakeven-at",
    "breakeven_offset": "--breakeven-offset",
    "trail_activation": "--trail-activation",
    "trail": "--trail",
    "time_stop_hours": "--time-stop-hours",
    "entry_delay_bars": "--entry-delay-bars",
    "dip_window_min": "--dip-window",
    "dip": "--dip",
    "fee_bps": "--fee-bps",
    "slippage_bps": "--slippage-bps",
    "intrabar": "--intrabar",
}
"""Strategy option → command-line flag (the CLI's errors name the flag the user typed)."""
_OPTION_RE = re.compile(r"(?<![\w-])(" + "|".join(FLAG_NAMES) + r")(?![\w])")


# Strategy and portfolio flags: one declaration for every command that takes a strategy (bt, report).
StrategyConfigOpt = Annotated[Path | None, typer.Option(help="JSON/YAML/TOML strategy; flags override it.")]
TpOpt = Annotated[
    str | None,
    typer.Option(help="Take profit, multiple of P (comma list = grid); or --tp-ladder, not both."),
]
TpLadderOpt = Annotated[
    str | None,
    typer.Option(
        help="Sell fraction W at M·P for each 'M:W' (';' separates ladders of a grid); or --tp, not both."
    ),
]
SlOpt = Annotated[str | None, typer.Option(help="Stop loss, multiple of P (0.5 = -50%).")]
BreakevenAtOpt = Annotated[
    str | None, typer.Option(help="Move the stop to P(1+offset) once the peak reached M·P.")
]
BreakevenOffsetOpt = Annotated[str | None, typer.Option(help="Breakeven offset X (default 0).")]
TrailOpt = Annotated[str | None, typer.Option(help="Trailing stop: peak·(1-PCT), PCT as a fraction.")]
TrailActivationOpt = Annotated[str | None, typer.Option(help="Trail once the peak reached M·P (default 1).")]
TimeStopHoursOpt = Annotated[
    str | None, typer.Option(help="Sell the rest at the open H hours after the fill.")
]
EntryDelayBarsOpt = Annotated[
    str | None, typer.Option(help="Buy at the open of the N-th bar after the entry bar.")
]
DipOpt = Annotated[str | None, typer.Option(help="Limit buy at E·(1-PCT), PCT as a fraction.")]
DipWindowOpt = Annotated[str | None, typer.Option(help="Dip limit order lifetime in minutes.")]
FeeBpsOpt = Annotated[str | None, typer.Option(help="Fee per side in bps (default 30).")]
SlippageBpsOpt = Annotated[str | None, typer.Option(help="Slippage per side in bps (default 50).")]
IntrabarOpt = Annotated[
    str | None, typer.Option(help="pessimistic | optimistic | ohlc (stop vs TP inside one bar).")
]
FillOnZeroVolumeOpt = Annotated[
    bool | None,
    typer.Option(
        "--fill-on-zero-volume/--no-fill-on-zero-volume",
        help="Let flat zero-volume bars trigger and fill (for sources without volume); default: "
        "no-trade bars fill nothing.",
    ),
]
CapitalOpt = Annotated[float | None, typer.Option(help="Portfolio mode: starting capital.")]
StakeOpt = Annotated[float | None, typer.Option(help="Portfolio: fixed stake per trade.")]
StakePctOpt = Annotated[float | None, typer.Option(help="Portfolio: stake as a fraction of equity.")]
MaxOpenOpt = Annotated[int | None, typer.Option(help="Portfolio: maximum open positions.")]


def strategy_flags(
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
) -> dict[str, Any]:
    """The strategy flags as Strategy/StrategyGrid fields (comma lists parsed into grids; None = not given)."""
    return {
        "tp": parse_numbers("tp", tp),
        "tp_ladder": parse_ladders(tp_ladder),
        "sl": parse_numbers("sl", sl),
        "breakeven_at": parse_numbers("breakeven-at", breakeven_at),
        "breakeven_offset": parse_numbers("breakeven-offset", breakeven_offset),
        "trail": parse_numbers("trail", trail),
        "trail_activation": parse_numbers("trail-activation", trail_activation),
        "time_stop_hours": parse_numbers("time-stop-hours", time_stop_hours),
        "entry_delay_bars": parse_numbers("entry-delay-bars", entry_delay_bars, integer=True),
        "dip": parse_numbers("dip", dip),
        "dip_window_min": parse_numbers("dip-window", dip_window),
        "fee_bps": parse_numbers("fee-bps", fee_bps),
        "slippage_bps": parse_numbers("slippage-bps", slippage_bps),
        "intrabar": intrabar,
        "fill_on_zero_volume": fill_on_zero_volume,
    }


def strategy_error(exc: ValidationError, flags: bool = True) -> str:
    """One line from the model's validation errors; option names become flag names when ``flags``."""
    parts = []
    for e in exc.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        loc = ".".join(map(str, e["loc"]))
        if loc and loc.split(".")[0] not in msg:
            msg = f"{loc}: {msg}"
        parts.append(msg)
    text = "; ".join(parts)
    return _OPTION_RE.sub(lambda m: FLAG_NAMES[m.group(1)], text) if flags else text


def build_strategy(config_file: Path | None, flags: dict[str, Any]) -> Strategy | StrategyGrid:
    """Strategy from ``--strategy-config`` (if any) with command-line flags overriding it.

    ``--tp`` or ``--tp-ladder`` replaces the file's take-profit rule (whichever of the two it
    holds); giving both flags is an error (``give --tp or --tp-ladder, not both``), as is a file
    holding both. A comma list anywhere makes a :class:`StrategyGrid`, else a :class:`Strategy`
    (:func:`strategy_from`); both hold the option table's rules. Raises ``typer.BadParameter``
    with a one-line message.
    """
    from alertlab.engine import load_strategy, strategy_from

    base: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.exists():
            raise typer.BadParameter(f"--strategy-config: no such file {config_file}")
        try:
            base = load_strategy(config_file).model_dump(exclude_unset=True)
        except ValidationError as exc:
            raise typer.BadParameter(
                f"--strategy-config {config_file}: {strategy_error(exc, flags=False)}"
            ) from None
    given = {k: v for k, v in flags.items() if v is not None}
    if "tp" in given or "tp_ladder" in given:
        base.pop("tp", None)
        base.pop("tp_ladder", None)
    base.update(given)
    try:
        return strategy_from(base)
    except ValidationError as exc:
        raise typer.BadParameter(strategy_error(exc)) from None


def portfolio_flags(
    capital: float | None, stake: float | None, stake_pct: float | None, max_open: int | None
) -> PortfolioConfig | None:
    """The portfolio flags as a :class:`PortfolioConfig` (None without any of them).

    ``--stake/--stake-pct/--max-open`` without ``--capital`` is a one-line error; the config's own
    rules raise ``ValidationError`` (the caller prints it as one line).
    """
    from alertlab.engine import PortfolioConfig

    if capital is None and stake is None and stake_pct is None and max_open is None:
        return None
    if capital is None:
        fail("--stake/--stake-pct/--max-open need --capital (portfolio mode)")
    return PortfolioConfig(capital=capital, stake=stake, stake_pct=stake_pct, max_open=max_open)


EXIT_HELP = {
    "tp": "sold (the last part) at a take-profit level",
    "sl": "stop loss",
    "breakeven": "breakeven stop",
    "trail": "trailing stop",
    "time": "time stop",
    "horizon": "held to the end of the window",
    "no_fill": "limit order never filled (no trade)",
}

SUMMARY_KINDS = {
    "n_alerts": "int",
    "n_trades": "int",
    "no_fill": "int",
    "no_data": "int",
    "win_rate": "pct",
    "avg_ret": "ret",
    "median_ret": "ret",
    "sum_ret": "num",
    "profit_factor": "num",
    "expectancy": "ret",
    "sharpe": "num",
    "t_stat": "num",
    "worst_ret": "ret",
    "best_ret": "ret",
    "ambiguous_share": "pct",
    "avg_ret_pessimistic": "ret",
    "avg_ret_optimistic": "ret",
    "max_drawdown": "num",
}
SUMMARY_HELP = {
    "no_fill": "limit orders never filled",
    "avg_ret": "mean net return per trade (fees and slippage included)",
    "sum_ret": "sum of trade returns (stakes of 1)",
    "profit_factor": "gross wins / gross losses",
    "expectancy": "win_rate·avg_win + (1 − win_rate)·avg_loss",
    "sharpe": "mean / std per trade",
    "t_stat": "sharpe·√n",
    "ambiguous_share": "trades whose stop and take-profit lay inside one bar",
    "avg_ret_pessimistic": "mean return if the stop came first in such bars",
    "avg_ret_optimistic": "… if the take-profit came first",
    "max_drawdown": "of the stake-1-per-alert equity, in stakes",
}
PER_CALLER_COLS = [
    Col("n_trades", "int", "n", "trades"),
    Col("caller"),
    Col("avg_ret_lo95", "ret", "ret_lo95", "lower 95% t bound of the mean return (the ranking)"),
    Col("avg_ret", "ret", "avg_ret", "mean net return per trade"),
    Col("win_rate", "pct"),
    Col("median_ret", "ret"),
    Col("sum_ret", "num", help="sum of returns in stakes"),
    Col("profit_factor", "num", "pf", "gross wins / gross losses"),
    Col("sharpe", "num", help="mean / std per trade"),
    Col("worst_ret", "ret"),
    Col("ambiguous_share", "pct", "ambiguous", "stop and take-profit in one bar"),
]
PORTFOLIO_KINDS = {
    "capital": "num",
    "final_equity": "num",
    "total_return": "ret",
    "max_drawdown": "pct",
    "exposure": "pct",
    "n_trades": "int",
    "n_taken": "int",
    "n_skipped_capital": "int",
    "n_skipped_max_open": "int",
    "max_concurrent": "int",
    "avg_stake": "num",
}


def per_caller_view(pc: pd.DataFrame, min_calls: int) -> tuple[pd.DataFrame, int]:
    """Callers with at least ``min_calls`` trades, best lower 95% bound of the mean return first
    (ties: more trades, then name); and the number of callers hidden."""
    if not len(pc):
        return pc, 0
    shown = pc[pc["n_trades"] >= min_calls]
    shown = shown.sort_values(
        ["avg_ret_lo95", "n_trades", "caller"],
        ascending=[False, False, True],
        na_position="last",
        kind="stable",
    )
    return shown, int(len(pc) - len(shown))


def _print_result(bt, as_json: bool, min_calls: int) -> None:
    r = bt.result
    if as_json:
        doc = {
            "run_id": bt.run.run_id,
            "fingerprint": bt.cache.fingerprint,
            "cache_hit": bt.cache.hit,
            "status_counts": bt.status_counts,
            "diagnosis": bt.diagnosis,
            "strategy": bt.strategy.model_dump(mode="json"),
            "strategy_text": bt.strategy.describe(),
            "summary": r.summary,
            "per_caller": r.per_caller,
            "max_drawdown": float(r.equity["drawdown"].max()) if len(r.equity) else 0.0,
        }
        if r.portfolio is not None:
            doc["portfolio"] = r.portfolio.summary
        print_json(doc)
        return
    s = dict(r.summary)
    console.print(f"strategy: {bt.strategy.describe()}", highlight=False, soft_wrap=True)
    main_keys = [
        "n_alerts",
        "n_trades",
        "no_fill",
        "win_rate",
        "avg_ret",
        "median_ret",
        "sum_ret",
        "profit_factor",
        "expectancy",
        "sharpe",
        "t_stat",
        "worst_ret",
        "ambiguous_share",
        "avg_ret_pessimistic",
        "avg_ret_optimistic",
        "max_drawdown",
    ]
    head = {k: s[k] for k in main_keys if k in s}
    win = bt.run.config["window"]
    bars = "native" if win.get("interval_s") is None else interval_text(win["interval_s"])
    where = f"{bars} bars, {interval_text(win['horizon_hours'] * 3600)} horizon"
    fills = "; fills on no-trade bars" if s.get("fill_on_zero_volume") else ""
    tables: list = [
        kv_table(status_view(bt.status_counts), "alerts by status"),
        kv_table(
            head,
            f"backtest ({where}; {s.get('intrabar', '')} intrabar{fills}; run {bt.run.run_id})",
            kinds=SUMMARY_KINDS,
            help=SUMMARY_HELP,
        ),
    ]
    n_tr = max(int(s.get("n_trades", 0)), 1)
    reasons = [(k.removeprefix("exit_"), int(v)) for k, v in s.items() if k.startswith("exit_")]
    reasons.append(("no_fill", int(s.get("no_fill", 0))))
    ex = pd.DataFrame(
        {
            "reason": [k for k, _ in reasons],
            "trades": [v for _, v in reasons],
            "share": [v / n_tr if k != "no_fill" else float("nan") for k, v in reasons],
            "meaning": [EXIT_HELP.get(k, "") for k, _ in reasons],
        }
    )
    tables.append(
        frame_table(
            ex,
            "exit reasons (share of trades)",
            [Col("reason"), Col("trades", "int"), Col("share", "pct"), Col("meaning")],
        )
    )
    pc, hidden = per_caller_view(r.per_caller, min_calls)
    note = f"{hidden} caller(s) with fewer than {min_calls} trades not shown (--min-calls)" if hidden else ""
    tables.append(
        frame_table(
            pc,
            f"per caller (≥ {min_calls} trades), ranked by the lower 95% bound of the mean return",
            PER_CALLER_COLS,
            max_rows=30,
            note=note,
        )
    )
    if r.portfolio is not None:
        tables.append(kv_table(r.portfolio.summary, "portfolio", kinds=PORTFOLIO_KINDS))
    print_tables(tables)


def _print_grid(bt, as_json: bool, top: int) -> None:
    g: pd.DataFrame = bt.grid
    if as_json:
        print_json(
            {
                "run_id": bt.run.run_id,
                "fingerprint": bt.cache.fingerprint,
                "cache_hit": bt.cache.hit,
                "status_counts": bt.status_counts,
                "diagnosis": bt.diagnosis,
                "strategy_text": bt.strategy.describe(),
                "n_combinations": len(g),
                "grid": g,
            }
        )
        return
    console.print(f"strategy grid: {bt.strategy.describe()}", highlight=False, soft_wrap=True)
    axes = [Col(a, "text" if a == "tp_ladder" else "num") for a in bt.strategy.axes()]
    cols = [
        *axes,
        Col("n_trades", "int", "n"),
        Col("avg_ret", "ret"),
        Col("win_rate", "pct"),
        Col("median_ret", "ret"),
        Col("profit_factor", "num", "pf", "gross wins / gross losses"),
        Col("sharpe", "num", help="mean / std per trade"),
        Col("avg_ret_pessimistic", "ret", "avg_pess", "mean return, stop first inside a bar"),
        Col("avg_ret_optimistic", "ret", "avg_opt", "mean return, take-profit first inside a bar"),
        Col("ambiguous_share", "pct", "ambiguous", "stop and take-profit in one bar"),
        Col("max_drawdown", "num", "max_dd", "stake-1-per-alert equity drawdown, in stakes"),
    ]
    best = g.sort_values("avg_ret", ascending=False)
    print_tables(
        [
            kv_table(status_view(bt.status_counts), "alerts by status"),
            frame_table(
                best,
                f"grid: {len(g)} combinations, top {min(top, len(g))} by avg_ret (run {bt.run.run_id})",
                cols,
                max_rows=top,
            ),
        ]
    )


def register(app: typer.Typer) -> None:

    def backtest(
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
        force_recompute: ForceOpt = False,
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
        top: Annotated[int, typer.Option(help="Grid rows to show.")] = 20,
        min_calls: Annotated[
            int, typer.Option("--min-calls", help="Per-caller table: callers with fewer trades are hidden.")
        ] = 10,
        export_per_trade_parquet: Annotated[
            Path | None, typer.Option(help="Write the per-trade table to FILE.")
        ] = None,
        export_grid_parquet: Annotated[
            Path | None, typer.Option(help="Write one row per grid combination to FILE.")
        ] = None,
        as_json: JsonOpt = False,
        wide: WideOpt = False,
        cluster: ClusterOpt = None,
        cluster_data: ClusterDataOpt = "auto",
    ) -> None:
        """Replay exit strategies over every alert: TP/SL, ladders, trailing, breakeven, time stop, delayed/dip entries."""
        from alertlab.app.backtest import run_backtest
        from alertlab.store import resolve_home

        set_wide(wide)
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
        if min_calls < 1:
            fail("--min-calls must be >= 1")
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
            strategy = build_strategy(strategy_config, flags)
            port = portfolio_flags(capital, stake, stake_pct, max_open)
        except ValidationError as exc:  # PortfolioConfig
            fail(strategy_error(exc))
        except typer.BadParameter as exc:
            fail(exc.message)
        except ValueError as exc:
            fail(str(exc))
        try:
            bt = run_backtest(
                strategy,
                resolve_home(home),
                sel,
                spec,
                portfolio=port,
                force_recompute=force_recompute,
                progress=not as_json,
                export_per_trade_parquet=export_per_trade_parquet,
                export_grid_parquet=export_grid_parquet,
                cluster=cluster,
                cluster_data=cluster_data,
            )
        except ValueError as exc:
            fail(str(exc))
        if bt.grid is not None:
            _print_grid(bt, as_json, top)
        else:
            _print_result(bt, as_json, min_calls)
        if not as_json:
            console.print(
                f"path cache: {'hit' if bt.cache.hit else 'built'} ({bt.cache.fingerprint}); "
                f"{bt.run.timings.get('engine', 0):.2f}s in the engine"
            )
            print_diagnosis(bt.diagnosis)

    app.command("backtest")(backtest)
    app.command("bt", hidden=True, help="Alias of backtest.")(backtest)
