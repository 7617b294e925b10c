"""``alertlab backtest`` (alias ``bt``): exit strategies, grids and portfolio replays."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    _pydantic_msg,
    _selection_spec,
    fail,
)
from alertlab.cli.render import (
    console,
    frame_table,
    kv_table,
    print_diagnosis,
    print_json,
    print_tables,
    status_view,
)

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
        raise typer.BadParameter(f"--{name}: expected {'integers' if integer else 'numbers'} "
                                 f"separated by commas, got {text!r}") from None
    return vals[0] if len(vals) == 1 else vals


def parse_ladders(text: str | None) -> Any:
    """``"2:0.5,4:0.5"`` is one ladder; ``"2:0.5,4:0.5;3:1"`` is a grid of two ladders."""
    if text is None:
        return None
    ladders = [p.strip() for p in text.split(";") if p.strip()]
    return ladders[0] if len(ladders) == 1 else ladders


def build_strategy(config_file: Path | None, flags: dict[str, Any]):
    """Strategy from ``--strategy-config`` (if any) with command-line flags overriding it."""
    from alertlab.engine import StrategyConfig

    base: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.exists():
            raise typer.BadParameter(f"--strategy-config: no such file {config_file}")
        base = StrategyConfig.from_file(config_file).model_dump(exclude_defaults=True)
    base.update({k: v for k, v in flags.items() if v is not None})
    if base.get("tp_ladder") is not None and flags.get("tp") is not None:
        base.pop("tp_ladder")
    if base.get("tp") is not None and flags.get("tp_ladder") is not None:
        base.pop("tp")
    return StrategyConfig(**base)


def _print_result(bt, as_json: bool) -> None:
    r = bt.result
    if as_json:
        doc = {"run_id": bt.run.run_id, "fingerprint": bt.cache.fingerprint, "cache_hit": bt.cache.hit,
               "status_counts": bt.status_counts, "diagnosis": bt.diagnosis,
               "strategy": bt.strategy.model_dump(mode="json"), "summary": r.summary, "per_caller": r.per_caller,
               "max_drawdown": float(r.equity["drawdown"].max()) if len(r.equity) else 0.0}
        if r.portfolio is not None:
            doc["portfolio"] = r.portfolio.summary
        print_json(doc)
        return
    s = dict(r.summary)
    from alertlab.engine import EXIT_REASONS

    reasons = {r: s[f"exit_{r}"] for r in EXIT_REASONS if f"exit_{r}" in s}
    if "no_fill" in s:
        reasons["no_fill"] = s["no_fill"]
    main_keys = ["n_alerts", "n_trades", "no_fill", "win_rate", "avg_ret", "median_ret", "sum_ret", "profit_factor",
                 "expectancy", "sharpe", "t_stat", "worst_ret", "ambiguous_share", "avg_ret_pessimistic",
                 "avg_ret_optimistic"]
    head = {k: s[k] for k in main_keys if k in s}
    head["max_drawdown (stake 1/alert)"] = float(r.equity["drawdown"].max()) if len(r.equity) else 0.0
    fills = "; fills on no-trade bars" if s.get("fill_on_zero_volume") else ""
    tables = [kv_table(status_view(bt.status_counts), "alerts by status"),
              kv_table(head, f"backtest ({s.get('intrabar', '')} intrabar{fills}; run {bt.run.run_id})")]
    if reasons:
        tables.append(kv_table(reasons, "exit reasons"))
    pc = r.per_caller.sort_values("avg_ret", ascending=False) if len(r.per_caller) else r.per_caller
    cols = [c for c in ("caller", "n_trades", "win_rate", "avg_ret", "median_ret", "sum_ret", "profit_factor",
                        "sharpe", "ambiguous_share") if c in pc.columns]
    tables.append(frame_table(pc, "per caller", columns=cols, max_rows=30))
    if r.portfolio is not None:
        tables.append(kv_table(r.portfolio.summary, "portfolio"))
    print_tables(tables)


def _print_grid(bt, as_json: bool, top: int) -> None:
    g: pd.DataFrame = bt.grid
    if as_json:
        print_json({"run_id": bt.run.run_id, "fingerprint": bt.cache.fingerprint, "cache_hit": bt.cache.hit,
                    "status_counts": bt.status_counts, "diagnosis": bt.diagnosis, "n_combinations": len(g), "grid": g})
        return
    axes = list(bt.strategy.grid_axes())
    cols = [*axes, "n_trades", "win_rate", "avg_ret", "median_ret", "profit_factor", "sharpe",
            "avg_ret_pessimistic", "avg_ret_optimistic", "ambiguous_share", "max_drawdown"]
    best = g.sort_values("avg_ret", ascending=False)
    print_tables([kv_table(status_view(bt.status_counts), "alerts by status"),
                  frame_table(best, f"grid: {len(g)} combinations, top {min(top, len(g))} by avg_ret "
                                    f"(run {bt.run.run_id})", columns=[c for c in cols if c in g.columns],
                              max_rows=top)])


def register(app: typer.Typer) -> None:

    def backtest(
        home: HomeOpt = None, from_: FromOpt = None, to: ToOpt = None, caller: CallerOpt = None,
        chain: ChainOpt = None, interval_seconds: IntervalOpt = None, horizon_hours: HorizonOpt = 48.0,
        max_entry_lag_s: LagOpt = None, wick_guard: WickGuardOpt = None, no_wick_guard: NoWickGuardOpt = False,
        min_coverage: MinCoverageOpt = None, force_recompute: ForceOpt = False,
        strategy_config: Annotated[Path | None, typer.Option(help="JSON/YAML/TOML strategy; flags override it.")] = None,
        tp: Annotated[str | None, typer.Option(help="Take profit, multiple of P (comma list = grid).")] = None,
        tp_ladder: Annotated[str | None, typer.Option(help="Ladder 'M:W,M:W' (';' separates ladders of a grid).")] = None,
        sl: Annotated[str | None, typer.Option(help="Stop loss, multiple of P (0.5 = -50%).")] = None,
        breakeven_at: Annotated[str | None, typer.Option(help="Move the stop to P(1+offset) once the peak reached M·P.")] = None,
        breakeven_offset: Annotated[str | None, typer.Option(help="Breakeven offset X (default 0).")] = None,
        trail: Annotated[str | None, typer.Option(help="Trailing stop: peak·(1-PCT), PCT as a fraction.")] = None,
        trail_activation: Annotated[str | None, typer.Option(help="Trail once the peak reached M·P (default 1).")] = None,
        time_stop_hours: Annotated[str | None, typer.Option(help="Sell the rest at the open H hours after the fill.")] = None,
        entry_delay_bars: Annotated[str | None, typer.Option(help="Buy at the open of the N-th bar after the entry bar.")] = None,
        dip: Annotated[str | None, typer.Option(help="Limit buy at E·(1-PCT), PCT as a fraction.")] = None,
        dip_window: Annotated[str | None, typer.Option(help="Dip limit order lifetime in minutes.")] = None,
        fee_bps: Annotated[str | None, typer.Option(help="Fee per side in bps (default 30).")] = None,
        slippage_bps: Annotated[str | None, typer.Option(help="Slippage per side in bps (default 50).")] = None,
        intrabar: Annotated[str | None, typer.Option(help="pessimistic | optimistic | ohlc (stop vs TP inside one bar).")] = None,
        fill_on_zero_volume: Annotated[bool | None, typer.Option(
            "--fill-on-zero-volume/--no-fill-on-zero-volume",
            help="Let flat zero-volume bars trigger and fill (for sources without volume); default: "
                 "no-trade bars fill nothing.")] = None,
        capital: Annotated[float | None, typer.Option(help="Portfolio mode: starting capital.")] = None,
        stake: Annotated[float | None, typer.Option(help="Portfolio: fixed stake per trade.")] = None,
        stake_pct: Annotated[float | None, typer.Option(help="Portfolio: stake as a fraction of equity.")] = None,
        max_open: Annotated[int | None, typer.Option(help="Portfolio: maximum open positions.")] = None,
        top: Annotated[int, typer.Option(help="Grid rows to show.")] = 20,
        export_per_trade_parquet: Annotated[Path | None, typer.Option(help="Write the per-trade table to FILE.")] = None,
        export_grid_parquet: Annotated[Path | None, typer.Option(help="Write one row per grid combination to FILE.")] = None,
        as_json: JsonOpt = False,
        cluster: ClusterOpt = None,
        cluster_data: ClusterDataOpt = "auto",
    ) -> None:
        """Replay exit strategies over every alert: TP/SL, ladders, trailing, breakeven, time stop, delayed/dip entries."""
        from alertlab.app.backtest import run_backtest
        from alertlab.engine import PortfolioConfig
        from alertlab.store import resolve_home

        sel, spec = _selection_spec(from_, to, caller, chain, interval_seconds, horizon_hours, max_entry_lag_s,
                                    wick_guard, no_wick_guard, min_coverage)
        try:
            flags = {
                "tp": parse_numbers("tp", tp), "tp_ladder": parse_ladders(tp_ladder), "sl": parse_numbers("sl", sl),
                "breakeven_at": parse_numbers("breakeven-at", breakeven_at),
                "breakeven_offset": parse_numbers("breakeven-offset", breakeven_offset),
                "trail": parse_numbers("trail", trail), "trail_activation": parse_numbers("trail-activation", trail_activation),
                "time_stop_hours": parse_numbers("time-stop-hours", time_stop_hours),
                "entry_delay_bars": parse_numbers("entry-delay-bars", entry_delay_bars, integer=True),
                "dip": parse_numbers("dip", dip), "dip_window_min": parse_numbers("dip-window", dip_window),
                "fee_bps": parse_numbers("fee-bps", fee_bps), "slippage_bps": parse_numbers("slippage-bps", slippage_bps),
                "intrabar": intrabar, "fill_on_zero_volume": fill_on_zero_volume,
            }
            strategy = build_strategy(strategy_config, flags)
            port = None
            if capital is not None or stake is not None or stake_pct is not None or max_open is not None:
                if capital is None:
                    fail("--stake/--stake-pct/--max-open need --capital (portfolio mode)")
                port = PortfolioConfig(capital=capital, stake=stake, stake_pct=stake_pct, max_open=max_open)
        except ValidationError as exc:
            fail(_pydantic_msg(exc))
        except (typer.BadParameter, ValueError) as exc:
            fail(str(exc))
        try:
            bt = run_backtest(strategy, resolve_home(home), sel, spec, portfolio=port, force_recompute=force_recompute,
                              progress=not as_json, export_per_trade_parquet=export_per_trade_parquet,
                              export_grid_parquet=export_grid_parquet, cluster=cluster, cluster_data=cluster_data)
        except ValueError as exc:
            fail(str(exc))
        if bt.grid is not None:
            _print_grid(bt, as_json, top)
        else:
            _print_result(bt, as_json)
        if not as_json:
            console.print(f"path cache: {'hit' if bt.cache.hit else 'built'} ({bt.cache.fingerprint}); "
                          f"{bt.run.timings.get('engine', 0):.2f}s in the engine")
            print_diagnosis(bt.diagnosis)

    app.command("backtest")(backtest)
    app.command("bt", hidden=True, help="Alias of backtest.")(backtest)
