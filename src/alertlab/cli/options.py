"""Command-line options shared by every command (data selection, window rules, output)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from alertlab.cli.render import console

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Workspace directory (default $ALERTLAB_HOME or ./alertlab-data).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


def fail(msg: str) -> None:
    from rich.markup import escape  # a message may hold brackets, e.g. pip install 'alertlab[extra]'

    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False)
    raise typer.Exit(2)


FromOpt = Annotated[dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First UTC date (inclusive).")]
ToOpt = Annotated[dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last UTC date (inclusive).")]
CallerOpt = Annotated[list[str] | None, typer.Option("--caller", help="Caller name (repeatable, case-insensitive).")]
ChainOpt = Annotated[list[str] | None, typer.Option("--chain", help="Chain (repeatable).")]
IntervalOpt = Annotated[int, typer.Option("--interval-seconds", help="Bar interval I in seconds (finer bars are aggregated up).")]
HorizonOpt = Annotated[float, typer.Option("--horizon-hours", help="Window length H after the entry bar.")]
LagOpt = Annotated[int | None, typer.Option("--max-entry-lag-s", help="Entry bar later than nominal by more → stale (default 5·I).")]
ForceOpt = Annotated[bool, typer.Option("--force-recompute", help="Rebuild windows and metrics even if cached.")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", envvar="ALERTLAB_DASK_SCHEDULER", show_envvar=True,
    help="Run the heavy steps on Dask: tcp://HOST:PORT (a dask scheduler) or local:N (N worker processes "
         "here). Needs alertlab[distributed].")]
ClusterDataOpt = Annotated[str, typer.Option(
    "--cluster-data", help="How windows reach the workers: auto (shared path if every worker can read "
                           "the path cache, else scatter), shared, scatter.")]


def _selection_spec(from_, to, caller, chain, interval_seconds, horizon_hours, max_entry_lag_s):
    from alertlab.windows.spec import Selection, WindowSpec

    try:
        sel = Selection(date_from=from_.date() if from_ else None, date_to=to.date() if to else None,
                        callers=caller or [], chains=chain or [])
        spec = WindowSpec(interval_s=interval_seconds, horizon_hours=horizon_hours, max_entry_lag_s=max_entry_lag_s)
    except ValidationError as exc:
        fail(_pydantic_msg(exc))
    return sel, spec


def _pydantic_msg(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
