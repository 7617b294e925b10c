"""The ``alertlab`` command line: a thin layer over the Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from alertlab.cli.options import (  # noqa: F401 - re-exported for command modules
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
    leaderboard_view,
    print_diagnosis,
    print_json,
    print_tables,
    status_view,
)
from alertlab.store import resolve_home

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  help="Truth layer and exit-strategy lab for crypto caller alerts.")
ingest_app = typer.Typer(no_args_is_help=True, help="Ingest alerts or candles into the store.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect and maintain the path cache.")
app.add_typer(ingest_app, name="ingest")
app.add_typer(cache_app, name="cache")




def _show_ingest(report, as_json: bool) -> None:
    d = report.to_dict()
    if as_json:
        print_json(d)
        return
    counts = {k: d[k] for k in ("rows_read", "rows_accepted", "rows_new", "rows_duplicate", "rows_rejected")}
    if d.get("conflicts"):
        counts["conflicts_resolved"] = d["conflicts"]
    tables = [kv_table(counts, f"ingest {d['kind']}: {len(d['files'])} file(s)")]
    if d["reject_reasons"]:
        tables.append(frame_table(pd.DataFrame(sorted(d["reject_reasons"].items(), key=lambda kv: -kv[1]),
                                               columns=["reason", "rows"]), "rejected rows (quarantined)"))
        tables.append(frame_table(pd.DataFrame(d["rejects_sample"]), "sample of rejected rows (see `alertlab rejects`)"))
    if d.get("quality"):
        tables.append(frame_table(pd.DataFrame(d["quality"]), "candle quality (tokens touched)", max_rows=20))
    print_tables(tables)


@ingest_app.command("alerts")
def ingest_alerts_cmd(paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet files.")],
                      home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Ingest alert files: normalise, validate (bad rows quarantined with file and row), dedup."""
    from alertlab.ingest import ingest_alerts

    _check_paths(paths)
    _show_ingest(ingest_alerts(resolve_home(home), paths, progress=not as_json), as_json)


@ingest_app.command("candles")
def ingest_candles_cmd(paths: Annotated[list[Path], typer.Argument(help="Files or directories (CSV, Parquet, JSON).")],
                       home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Ingest candle files: detect bar intervals, quarantine bad bars, resolve duplicates, store as Parquet."""
    from alertlab.ingest import ingest_candles

    _check_paths(paths)
    _show_ingest(ingest_candles(resolve_home(home), paths, progress=not as_json), as_json)


def _check_paths(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or directory: {', '.join(missing)}")


@app.command()
def quality(home: HomeOpt = None, chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
            token: Annotated[str | None, typer.Option(help="Only this token.")] = None,
            wick_guard: WickGuardOpt = None,
            gaps: Annotated[int, typer.Option("--gaps", help="Longest gaps to list.")] = 30,
            as_json: JsonOpt = False) -> None:
    """Candle quality per token (intervals and their ranges, gaps incl. interval switches, no-trade share,
    suspect bars) and per token/interval series (bars, gaps, zero-volume share, conflicts)."""
    from alertlab.ingest import quality_table, token_quality

    if wick_guard is not None and not wick_guard > 1:
        fail(f"--wick-guard k must be > 1 (got {wick_guard})")
    h = resolve_home(home)
    q = quality_table(h, chain=chain, token=token)
    tq, gq = token_quality(h, chain=chain, token=token, wick_guard=wick_guard)
    if as_json:
        print_json({"tokens": tq, "gaps": gq, "series": q})
        return
    top = gq.sort_values("length_s", ascending=False).head(gaps)
    print_tables([
        frame_table(tq, f"candle quality per token ({len(tq)} tokens; gaps include interval switches)", max_rows=200),
        frame_table(top, f"gaps ({len(gq)} in all, {int(gq['at_switch'].sum()) if len(gq) else 0} at an interval "
                         f"switch; longest {len(top)})", max_rows=gaps),
        frame_table(q, f"candle quality per series ({len(q)} token/interval series)", max_rows=200),
    ])


@app.command()
def rejects(home: HomeOpt = None, limit: Annotated[int, typer.Option(help="Rows to show.")] = 50,
            as_json: JsonOpt = False) -> None:
    """Quarantined rows with file, row number and reason."""
    con = resolve_home(home).connect()
    try:
        summary = con.execute("SELECT kind, reason, count(*) AS rows FROM rejects GROUP BY ALL ORDER BY rows DESC").df()
        rows = con.execute("SELECT kind, source_file, source_row, reason FROM rejects "
                           "ORDER BY kind, source_file, source_row LIMIT ?", [limit]).df()
    finally:
        con.close()
    if as_json:
        print_json({"summary": summary, "rows": rows})
    else:
        print_tables([frame_table(summary, "rejects by reason"), frame_table(rows, "rejected rows", max_rows=limit)])


# ------------------------------------------------------------------------------------------- baseline

@app.command()
def baseline(
    home: HomeOpt = None, from_: FromOpt = None, to: ToOpt = None, caller: CallerOpt = None, chain: ChainOpt = None,
    interval_seconds: IntervalOpt = None, horizon_hours: HorizonOpt = 48.0, max_entry_lag_s: LagOpt = None,
    wick_guard: WickGuardOpt = None, no_wick_guard: NoWickGuardOpt = False, min_coverage: MinCoverageOpt = None,
    min_calls: Annotated[int, typer.Option("--min-calls", help="Callers with fewer usable alerts are not ranked.")] = 10,
    rank_by: Annotated[str, typer.Option("--rank-by", help="Leaderboard column to rank by (descending).")] = "hit2x_lo",
    force_recompute: ForceOpt = False, as_json: JsonOpt = False,
    export_baseline_parquet: Annotated[Path | None, typer.Option(help="Write the per-alert table to FILE.")] = None,
    export_per_alert_parquet: Annotated[Path | None, typer.Option(help="Write every window's bars as a dataset in DIR.")] = None,
    export_per_caller_parquet: Annotated[Path | None, typer.Option(help="Write DIR/leaderboard.parquet + per-alert rows partitioned by caller.")] = None,
    cluster: ClusterOpt = None, cluster_data: ClusterDataOpt = "auto",
) -> None:
    """Baseline path metrics per alert (ATH, time to 2x…10x, drawdowns) and the caller leaderboard."""
    from alertlab.app.baseline import run_baseline

    sel, spec = _selection_spec(from_, to, caller, chain, interval_seconds, horizon_hours, max_entry_lag_s,
                                wick_guard, no_wick_guard, min_coverage)
    try:
        r = run_baseline(resolve_home(home), sel, spec, min_calls=min_calls, rank_by=rank_by,
                         force_recompute=force_recompute, progress=not as_json,
                         export_baseline_parquet=export_baseline_parquet,
                         export_per_alert_parquet=export_per_alert_parquet,
                         export_per_caller_parquet=export_per_caller_parquet,
                         cluster=cluster, cluster_data=cluster_data)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"run_id": r.run.run_id, "fingerprint": r.cache.fingerprint, "cache_hit": r.cache.hit,
                    "counts": r.run.counts, "status_counts": r.status_counts, "diagnosis": r.diagnosis,
                    "timings": r.run.timings, "leaderboard": r.leaderboard, "hidden_callers": r.hidden_callers})
        return
    _print_baseline(r, min_calls)


def _print_baseline(r, min_calls: int) -> None:
    c = r.run.counts
    head = {"run": r.run.run_id, "alerts": c["alerts"], **status_view(r.status_counts), "bars": c["bars"],
            "path cache": "hit" if r.cache.hit else "built", "seconds": r.run.timings.get("total", 0.0)}
    print_tables([kv_table(head, "baseline"),
                  frame_table(leaderboard_view(r.leaderboard),
                              f"caller leaderboard (≥ {min_calls} usable calls; ranked by {r.run.config['rank_by']})",
                              max_rows=30)])
    if len(r.hidden_callers):
        console.print(f"{len(r.hidden_callers)} caller(s) with fewer than {min_calls} usable calls not ranked "
                      f"(lower --min-calls to see them).")
    print_diagnosis(r.diagnosis)


app.command("bl", hidden=True, help="Alias of baseline.")(baseline)


@app.command()
def runs(home: HomeOpt = None, limit: Annotated[int, typer.Option(help="Most recent runs to show.")] = 20,
         as_json: JsonOpt = False) -> None:
    """Recorded runs: kind, config, data fingerprint, code version, cache hit, timings, counts."""
    con = resolve_home(home).connect()
    try:
        df = con.execute("SELECT run_id, kind, started_at, code_version, fingerprint, cache_hit, "
                         "json_extract(timings, '$.total')::DOUBLE AS seconds, counts, config FROM runs "
                         "ORDER BY started_at DESC LIMIT ?", [limit]).df()
    finally:
        con.close()
    if as_json:
        print_json(df)
    else:
        print_tables([frame_table(df.drop(columns=["config"]), f"last {len(df)} runs (--json for configs)")])


# ------------------------------------------------------------------------------------------- cache

@cache_app.command("ls")
def cache_ls(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List path-cache entries."""
    from alertlab.windows.cache import list_entries

    df = pd.DataFrame(list_entries(resolve_home(home)))
    if not df.empty:
        df["created_at"] = pd.to_datetime(df["created_at"], unit="s", utc=True)
    if as_json:
        print_json(df)
    else:
        print_tables([frame_table(df, f"path cache ({len(df)} entries)")])


@cache_app.command("verify")
def cache_verify(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Re-hash every cache file against its recorded digest; exit 1 on any mismatch."""
    from alertlab.windows.cache import verify_entries

    res = verify_entries(resolve_home(home))
    if as_json:
        print_json(res)
    else:
        df = pd.DataFrame(res)
        if not df.empty:
            df["problems"] = df["problems"].map(lambda p: ", ".join(p) or "–")
        print_tables([frame_table(df, "cache verify")])
    if any(not r["ok"] for r in res):
        raise typer.Exit(1)


@cache_app.command("clear")
def cache_clear(fingerprint: Annotated[list[str] | None, typer.Argument(help="Fingerprints (prefixes); all if omitted.")] = None,
                home: HomeOpt = None) -> None:
    """Delete cache entries (they are rebuilt on demand)."""
    from alertlab.windows.cache import clear_entries

    n = clear_entries(resolve_home(home), fingerprint or None)
    console.print(f"removed {n} cache entr{'y' if n == 1 else 'ies'}")


# ------------------------------------------------------------------------------------------- demo

@app.command()
def demo(
    home: HomeOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic market.")] = 7,
    alerts: Annotated[int, typer.Option("--alerts", help="Number of synthetic alerts.")] = 3000,
    keep_input: Annotated[bool, typer.Option("--keep-input", help="Keep the generated candle CSVs after ingest.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a synthetic memecoin market, ingest it, run the baseline and print the leaderboard."""
    from alertlab.app.demo import run_demo

    try:
        out = run_demo(resolve_home(home), seed=seed, n_alerts=alerts, progress=not as_json, keep_input=keep_input)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"home": str(out.home.root), "planted_ranking": out.planted, "leaderboard": out.baseline.leaderboard,
                    "report": str(out.report.path) if out.report else None,
                    "ingest": {"alerts": out.alerts_report.to_dict(), "candles": out.candles_report.to_dict()},
                    "counts": out.baseline.run.counts, "timings": out.baseline.run.timings})
        return
    _show_ingest(out.alerts_report, False)
    _show_ingest(out.candles_report, False)
    _print_baseline(out.baseline, 10)
    top = out.planted[:5]
    console.print(f"planted best callers: {', '.join(top)}  (home: {out.home.root})")
    for n in out.notes:
        console.print(n, highlight=False)
    if out.report:
        h = f" --home {out.home.root}"
        console.print(f"report: {out.report.path}\nnext: alertlab bt{h} --tp 3 --sl 0.5 · alertlab optimize{h} "
                      f"--study demo --trials 1000 · alertlab report{h} --study demo --open", highlight=False)


from alertlab.cli.backtest import register as _reg_bt  # noqa: E402

_reg_bt(app)

from alertlab.cli.optimize import register as _reg_opt  # noqa: E402

_reg_opt(app)

from alertlab.cli.fetch import register as _reg_fetch  # noqa: E402

_reg_fetch(app)
from alertlab.cli.telegram import register as _reg_tg  # noqa: E402

_reg_tg(app, ingest_app)
import alertlab.cli.report as _report  # noqa: E402

_report.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
