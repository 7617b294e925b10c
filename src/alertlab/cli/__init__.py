"""The ``alertlab`` command line: a thin layer over the Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from alertlab.cli.boundary import ErrorBoundary, NoWaitOpt, apply_no_wait, root_callback
from alertlab.cli.helptext import install as _install_help
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
    WideOpt,
    _pydantic_msg,
    _selection_spec,
    fail,
    set_wide,
)
from alertlab.cli.render import (
    BASELINE_HEAD_HELP,
    BASELINE_HEAD_KINDS,
    CACHE_COLS,
    QUALITY_COLS,
    REJECT_COLS,
    REJECT_SUMMARY_COLS,
    RUNS_COLS,
    console,
    frame_table,
    interval_text,
    kv_table,
    leaderboard_view,
    print_diagnosis,
    print_json,
    print_tables,
    status_view,
)
from alertlab.errors import UserError
from alertlab.store import resolve_home

_install_help()  # --help shows value names (N, FILE, M[,M…]), not Python types

app = typer.Typer(
    cls=ErrorBoundary,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    help="Truth layer and exit-strategy lab for crypto caller alerts.",
)
app.callback()(root_callback)
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
    if d.get("chain_corrected"):
        counts["chain_corrected"] = d["chain_corrected"]
    if d.get("files_rejected"):
        counts["files_rejected"] = len(d["files_rejected"])
    tables = [kv_table(counts, f"ingest {d['kind']}: {len(d['files'])} file(s)")]
    if d.get("files_rejected"):
        tables.append(frame_table(pd.DataFrame(d["files_rejected"]), "files not ingested (the others were)"))
    if d["reject_reasons"]:
        tables.append(
            frame_table(
                pd.DataFrame(
                    sorted(d["reject_reasons"].items(), key=lambda kv: -kv[1]), columns=["reason", "rows"]
                ),
                "rejected rows (quarantined)",
            )
        )
        tables.append(
            frame_table(pd.DataFrame(d["rejects_sample"]), "sample of rejected rows (see `alertlab rejects`)")
        )
    if d.get("quality"):
        tables.append(
            frame_table(
                pd.DataFrame(d["quality"]), "candle quality (tokens touched)", QUALITY_COLS, max_rows=20
            )
        )
    print_tables(tables)


@ingest_app.command("alerts")
def ingest_alerts_cmd(
    paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet files.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    no_wait: NoWaitOpt = False,
) -> None:
    """Ingest alert files: normalise, validate (bad rows quarantined with file and row), dedup."""
    from alertlab.ingest import ingest_alerts

    apply_no_wait(no_wait)
    _check_paths(paths)
    _show_ingest(ingest_alerts(resolve_home(home), paths, progress=not as_json), as_json)


@ingest_app.command("candles")
def ingest_candles_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (CSV, Parquet, JSON).")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help="Chain of every row of these files (overrides columns and file names, e.g. for 0x….csv).",
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="Token of every row of the one file given.")
    ] = None,
    no_wait: NoWaitOpt = False,
) -> None:
    """Ingest candle files: detect bar intervals, quarantine bad bars, resolve duplicates, store as Parquet.

    Chain and token come from --chain/--token when given, else from columns, else from the file
    name <chain>_<token>[_<from>_<to>].csv (or <address>.csv for Solana/Tron). Malformed lines are
    quarantined with their line number; unreadable files are skipped and listed.
    """
    from alertlab.ingest import ingest_candles

    apply_no_wait(no_wait)
    _check_paths(paths)
    _show_ingest(
        ingest_candles(resolve_home(home), paths, progress=not as_json, chain=chain, token=token), as_json
    )


def _check_paths(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or directory: {', '.join(missing)}")


@app.command()
def quality(
    home: HomeOpt = None,
    chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
    token: Annotated[str | None, typer.Option(help="Only this token.")] = None,
    wick_guard: WickGuardOpt = None,
    gaps: Annotated[int, typer.Option("--gaps", help="Longest gaps to list.")] = 30,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Candle quality per token (intervals and their ranges, gaps incl. interval switches, no-trade share,
    suspect bars) and per token/interval series (bars, gaps, zero-volume share, conflicts)."""
    from alertlab.ingest import quality_table, token_quality

    set_wide(wide)
    if wick_guard is not None and not wick_guard > 1:
        fail(f"--wick-guard k must be > 1 (got {wick_guard})")
    h = resolve_home(home)
    q = quality_table(h, chain=chain, token=token)
    tq, gq = token_quality(h, chain=chain, token=token, wick_guard=wick_guard)
    if as_json:
        print_json({"tokens": tq, "gaps": gq, "series": q})
        return
    top = gq.sort_values("length_s", ascending=False).head(gaps)
    print_tables(
        [
            frame_table(
                tq,
                f"candle quality per token ({len(tq)} tokens; gaps include interval switches)",
                max_rows=200,
            ),
            frame_table(
                top,
                f"gaps ({len(gq)} in all, {int(gq['at_switch'].sum()) if len(gq) else 0} at an interval "
                f"switch; longest {len(top)})",
                max_rows=gaps,
            ),
            frame_table(
                q, f"candle quality per series ({len(q)} token/interval series)", QUALITY_COLS, max_rows=200
            ),
        ]
    )


@app.command()
def rejects(
    home: HomeOpt = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 50,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Quarantined rows with file, row number and reason."""
    set_wide(wide)
    con = resolve_home(home).connect(read_only=True)
    try:
        summary = con.execute(
            "SELECT kind, reason, count(*) AS rows FROM rejects GROUP BY ALL ORDER BY rows DESC"
        ).df()
        rows = con.execute(
            "SELECT kind, source_file, source_row, reason FROM rejects "
            "ORDER BY kind, source_file, source_row LIMIT ?",
            [limit],
        ).df()
    finally:
        con.close()
    if as_json:
        print_json({"summary": summary, "rows": rows})
    else:
        print_tables(
            [
                frame_table(summary, "rejects by reason", REJECT_SUMMARY_COLS),
                frame_table(rows, "rejected rows", REJECT_COLS, max_rows=limit),
            ]
        )


# ------------------------------------------------------------------------------------------- baseline


@app.command()
def baseline(
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
        int, typer.Option("--min-calls", help="Callers with fewer usable alerts are not ranked.")
    ] = 10,
    rank_by: Annotated[
        str, typer.Option("--rank-by", help="Leaderboard column to rank by (descending).")
    ] = "hit2x_lo",
    force_recompute: ForceOpt = False,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
    export_baseline_parquet: Annotated[
        Path | None, typer.Option(help="Write the per-alert table to FILE.")
    ] = None,
    export_per_alert_parquet: Annotated[
        Path | None, typer.Option(help="Write every window's bars as a dataset in DIR.")
    ] = None,
    export_per_caller_parquet: Annotated[
        Path | None,
        typer.Option(help="Write DIR/leaderboard.parquet + per-alert rows partitioned by caller."),
    ] = None,
    cluster: ClusterOpt = None,
    cluster_data: ClusterDataOpt = "auto",
) -> None:
    """Baseline path metrics per alert (ATH, time to 2x…10x, drawdowns) and the caller leaderboard."""
    from alertlab.app.baseline import run_baseline

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
    try:
        r = run_baseline(
            resolve_home(home),
            sel,
            spec,
            min_calls=min_calls,
            rank_by=rank_by,
            force_recompute=force_recompute,
            progress=not as_json,
            export_baseline_parquet=export_baseline_parquet,
            export_per_alert_parquet=export_per_alert_parquet,
            export_per_caller_parquet=export_per_caller_parquet,
            cluster=cluster,
            cluster_data=cluster_data,
        )
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "run_id": r.run.run_id,
                "fingerprint": r.cache.fingerprint,
                "cache_hit": r.cache.hit,
                "counts": r.run.counts,
                "status_counts": r.status_counts,
                "diagnosis": r.diagnosis,
                "timings": r.run.timings,
                "leaderboard": r.leaderboard,
                "hidden_callers": r.hidden_callers,
            }
        )
        return
    _print_baseline(r, min_calls)


def _print_baseline(r, min_calls: int) -> None:
    c = r.run.counts
    win = r.run.config["window"]
    bars = "native" if win.get("interval_s") is None else interval_text(win["interval_s"])
    head = {
        "run": r.run.run_id,
        "windows": f"{bars} bars, {interval_text(win['horizon_hours'] * 3600)} horizon",
        "alerts": c["alerts"],
        **status_view(r.status_counts),
        "bars": c["bars"],
        "path cache": "hit" if r.cache.hit else "built",
        "seconds": r.run.timings.get("total", 0.0),
    }
    view, cols = leaderboard_view(r.leaderboard)
    rank_by = r.run.config["rank_by"]
    what = "the lower 95% Wilson bound of the 2x hit rate" if rank_by == "hit2x_lo" else rank_by
    print_tables(
        [
            kv_table(head, "baseline", kinds=BASELINE_HEAD_KINDS, help=BASELINE_HEAD_HELP),
            frame_table(
                view, f"caller leaderboard (≥ {min_calls} usable calls), ranked by {what}", cols, max_rows=30
            ),
        ]
    )
    if len(r.hidden_callers):
        console.print(
            f"{len(r.hidden_callers)} caller(s) with fewer than {min_calls} usable calls not ranked "
            f"(lower --min-calls to see them)."
        )
    print_diagnosis(r.diagnosis)


app.command("bl", hidden=True, help="Alias of baseline.")(baseline)


@app.command()
def runs(
    home: HomeOpt = None,
    limit: Annotated[int, typer.Option(help="Most recent runs to show.")] = 20,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Recorded runs: kind, config, data fingerprint, code version, cache hit, timings, counts."""
    set_wide(wide)
    con = resolve_home(home).connect(read_only=True)
    try:
        df = con.execute(
            "SELECT run_id, kind, started_at, code_version, fingerprint, cache_hit, "
            "json_extract(timings, '$.total')::DOUBLE AS seconds, counts, config FROM runs "
            "ORDER BY started_at DESC LIMIT ?",
            [limit],
        ).df()
    finally:
        con.close()
    if as_json:
        print_json(df)
    else:
        print_tables([frame_table(df, f"last {len(df)} runs (--json for configs)", RUNS_COLS)])


# ------------------------------------------------------------------------------------------- cache


@cache_app.command("ls")
def cache_ls(home: HomeOpt = None, as_json: JsonOpt = False, wide: WideOpt = False) -> None:
    """List path-cache entries."""
    set_wide(wide)
    from alertlab.windows.cache import list_entries

    h = resolve_home(home)
    h.require()
    df = pd.DataFrame(list_entries(h))
    if not df.empty:
        df["created_at"] = pd.to_datetime(df["created_at"], unit="s", utc=True)
    if as_json:
        print_json(df)
    else:
        print_tables([frame_table(df, f"path cache ({len(df)} entries)", CACHE_COLS)])


@cache_app.command("verify")
def cache_verify(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Re-hash every cache file against its recorded digest; exit 1 on any mismatch."""
    from alertlab.windows.cache import verify_entries

    h = resolve_home(home)
    h.require()
    res = verify_entries(h)
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
def cache_clear(
    fingerprint: Annotated[
        list[str] | None, typer.Argument(help="Fingerprints (prefixes); all if omitted.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Delete cache entries (they are rebuilt on demand)."""
    from alertlab.store.lock import workspace_lock
    from alertlab.windows.cache import clear_entries, list_entries

    h = resolve_home(home)
    h.require()
    known = [e["fingerprint"] for e in list_entries(h)]
    unknown = [f for f in fingerprint or [] if not any(k.startswith(f) for k in known)]
    if unknown:
        raise UserError(
            f"no cache entry {', '.join(unknown)} in {h.root} (`alertlab cache ls` lists "
            f"{len(known)} entr{'y' if len(known) == 1 else 'ies'})"
        )
    with workspace_lock(h, "cache clear"):
        n = clear_entries(h, fingerprint or None)
    console.print(f"removed {n} cache entr{'y' if n == 1 else 'ies'}")


# ------------------------------------------------------------------------------------------- demo


@app.command()
def demo(
    home: HomeOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic market.")] = 7,
    alerts: Annotated[int, typer.Option("--alerts", help="Number of synthetic alerts.")] = 3000,
    keep_input: Annotated[
        bool, typer.Option("--keep-input", help="Keep the generated candle CSVs after ingest.")
    ] = False,
    keep_cache: Annotated[
        bool,
        typer.Option(
            "--keep-cache",
            help="Keep the baseline's path-cache entry (else removed; rebuilt on the next run).",
        ),
    ] = False,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Skip the 200-trial demo study and the HTML report (faster).")
    ] = False,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Make a synthetic memecoin market, ingest it, run the baseline and print the leaderboard."""
    from alertlab.app.demo import NEXT_COMMANDS, run_demo

    set_wide(wide)
    try:
        out = run_demo(
            resolve_home(home),
            seed=seed,
            n_alerts=alerts,
            progress=not as_json,
            keep_input=keep_input,
            keep_cache=keep_cache,
            report=not no_report,
        )
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "home": str(out.home.root),
                "planted_ranking": out.planted,
                "leaderboard": out.baseline.leaderboard,
                "report": str(out.report.path) if out.report else None,
                "ingest": {"alerts": out.alerts_report.to_dict(), "candles": out.candles_report.to_dict()},
                "counts": out.baseline.run.counts,
                "timings": out.baseline.run.timings,
                "home_bytes": out.home_bytes,
                "removed_bytes": out.removed_bytes,
                "next": [c for c, _ in NEXT_COMMANDS],
            }
        )
        return
    _show_ingest(out.alerts_report, False)
    _show_ingest(out.candles_report, False)
    _print_baseline(out.baseline, 10)
    top = out.planted[:5]
    console.print(f"planted best callers: {', '.join(top)}", highlight=False)
    for n in out.notes:
        console.print(n, highlight=False)
    removed = (
        f"; removed {out.removed_bytes / 1e6:,.0f} MB it can regenerate: the generated candle CSVs "
        "(from the seed) and the path cache (from the store)"
        if out.removed_bytes
        else ""
    )
    console.print(f"home: {out.home.root} ({out.home_bytes / 1e6:,.1f} MB{removed})", highlight=False)
    if out.report:
        console.print(
            f"report: {out.report.path}  (open it in a browser: self-contained, works offline)",
            highlight=False,
            soft_wrap=True,
        )
    home_flag = f" --home {out.home.root}" if home is not None else ""
    console.print("next, try:", highlight=False)
    for cmd, what in NEXT_COMMANDS:
        console.print(f"  {cmd}{home_flag}   [dim]# {what}[/]", highlight=False)


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
