"""Command-line options shared by every command (data selection, window rules, output)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from alertlab.cli.render import console

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Workspace directory (default $ALERTLAB_HOME or ./alertlab-data)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="Show every table column (default: those that fit the terminal).")
]


def set_wide(wide: bool) -> None:
    """Apply ``--wide`` to the table renderer."""
    from alertlab.cli import render

    render.WIDE = bool(wide)


def fail(msg: str) -> None:
    console.print(
        f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True
    )  # one line, never wrapped
    raise typer.Exit(2)


FromOpt = Annotated[
    dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First UTC date (inclusive).")
]
ToOpt = Annotated[
    dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last UTC date (inclusive).")
]
CallerOpt = Annotated[
    list[str] | None, typer.Option("--caller", help="Caller name (repeatable, case-insensitive).")
]
ChainOpt = Annotated[list[str] | None, typer.Option("--chain", help="Chain (repeatable).")]
IntervalOpt = Annotated[
    int | None,
    typer.Option(
        "--interval-seconds",
        help="Aggregate bars finer than I seconds up to I (coarser bars kept as they are); "
        "default: the data's own resolution.",
    ),
]
HorizonOpt = Annotated[float, typer.Option("--horizon-hours", help="Window length H after the entry bar.")]
LagOpt = Annotated[
    int | None,
    typer.Option(
        "--max-entry-lag-s",
        help="Stale when the first traded bar opens more than max(S, that bar's duration) "
        "after the call (default 300).",
    ),
]
WickGuardOpt = Annotated[
    float | None,
    typer.Option(
        "--wick-guard",
        help="Bad-tick guard factor k: a high above k·max(open, close, previous close, next open) "
        "(or a low below their min / k) is clamped to the bar's body (default 10).",
    ),
]
NoWickGuardOpt = Annotated[bool, typer.Option("--no-wick-guard", help="Turn the bad-tick guard off.")]
MinCoverageOpt = Annotated[
    float | None,
    typer.Option(
        "--min-coverage",
        help="Truncated windows count only when their data covers at least this share of the "
        "horizon (default 0.8).",
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force-recompute", help="Rebuild windows and metrics even if cached.")
]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        envvar="ALERTLAB_DASK_SCHEDULER",
        show_envvar=True,
        help="Run the heavy steps on Dask: tcp://HOST:PORT (a dask scheduler) or local:N (N worker processes "
        "here). Needs alertlab[distributed].",
    ),
]
ClusterDataOpt = Annotated[
    str,
    typer.Option(
        "--cluster-data",
        help="How windows reach the workers: auto (shared path if every worker can read "
        "the path cache, else scatter), shared, scatter.",
    ),
]


def _selection_spec(
    from_,
    to,
    caller,
    chain,
    interval_seconds,
    horizon_hours,
    max_entry_lag_s,
    wick_guard=None,
    no_wick_guard=False,
    min_coverage=None,
):
    from alertlab.windows.spec import DEFAULT_WICK_GUARD, Selection, WindowSpec

    if no_wick_guard and wick_guard is not None:
        fail("--wick-guard and --no-wick-guard contradict each other; give one")
    guard = None if no_wick_guard else (DEFAULT_WICK_GUARD if wick_guard is None else wick_guard)
    try:
        sel = Selection(
            date_from=from_.date() if from_ else None,
            date_to=to.date() if to else None,
            callers=caller or [],
            chains=chain or [],
        )
        extra = {} if min_coverage is None else {"min_coverage": min_coverage}
        spec = WindowSpec(
            interval_s=interval_seconds,
            horizon_hours=horizon_hours,
            max_entry_lag_s=max_entry_lag_s,
            wick_guard=guard,
            **extra,
        )
    except ValidationError as exc:
        fail(_pydantic_msg(exc))
    return sel, spec


def _pydantic_msg(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
