"""``alertlab optimize``: search exit strategies on walk-forward folds and recommend one honestly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    _pydantic_msg,
    _selection_spec,
    fail,
    set_wide,
)
from alertlab.cli.render import (
    Col,
    console,
    frame_table,
    kv_table,
    print_diagnosis,
    print_json,
    print_tables,
    status_view,
)
from alertlab.store import resolve_home

BOARD_ROWS = 15


def optimize(
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
    space: Annotated[
        Path | None,
        typer.Option(
            "--space", help="Search space file (.json/.yaml/.toml); default: the documented default space."
        ),
    ] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="random | tpe | grid.")] = "tpe",
    trials: Annotated[
        int,
        typer.Option(
            "--trials",
            help="Completed trials the study ends with; failed ones (invalid combinations) are replaced "
            "and reported; a rerun resumes up to N; with --sampler grid at most one trial per grid point.",
        ),
    ] = 200,
    seed: Annotated[
        int, typer.Option("--seed", help="Sampler seed (each worker and resume gets its own).")
    ] = 0,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Trials per engine call (default: 32 for tpe, else up to 256)."),
    ] = None,
    objective: Annotated[
        str,
        typer.Option(
            "--objective",
            help="avg_ret | median_ret | sum_ret | sharpe | profit_factor | expectancy (engine summary formulas), "
            "mean over training folds.",
        ),
    ] = "avg_ret",
    min_trades: Annotated[
        int,
        typer.Option(
            "--min-trades", help="Feasible only with at least this many trades in every training fold."
        ),
    ] = 20,
    max_dd: Annotated[
        float | None,
        typer.Option(
            "--max-dd", help="Feasible only if every training fold's max drawdown (stakes) is at most this."
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", help="Walk-forward folds by alert time.")] = 4,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Train from the first alert (else rolling).")
    ] = False,
    train_days: Annotated[
        float | None, typer.Option("--train-days", help="Train span in days (with --test-days).")
    ] = None,
    test_days: Annotated[
        float | None, typer.Option("--test-days", help="Test span in days (with --train-days).")
    ] = None,
    pbo_blocks: Annotated[int, typer.Option("--pbo-blocks", help="CSCV blocks of days for PBO (even).")] = 16,
    neighbours: Annotated[
        int, typer.Option("--neighbours", help="k nearest trials of the neighbourhood stability.")
    ] = 5,
    fee_bps: Annotated[float, typer.Option("--fee-bps", help="Fee per side, basis points.")] = 30.0,
    slippage_bps: Annotated[
        float, typer.Option("--slippage-bps", help="Slippage per side, basis points.")
    ] = 50.0,
    intrabar: Annotated[
        str, typer.Option("--intrabar", help="pessimistic | optimistic | ohlc (TP and SL in one bar).")
    ] = "pessimistic",
    fill_on_zero_volume: Annotated[
        bool,
        typer.Option(
            "--fill-on-zero-volume",
            help="Let flat zero-volume bars trigger and fill (for sources without volume); default: "
            "no-trade bars fill nothing.",
        ),
    ] = False,
    study: Annotated[
        str | None,
        typer.Option(
            "--study", help="Study name (default: derived from data + settings, so a rerun resumes)."
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="SQLAlchemy URL (e.g. postgresql://… to share across machines) or a journal file; "
            "default <home>/studies/<study>/journal.log.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Local worker processes on the study.")] = 1,
    stale_after: Annotated[
        float,
        typer.Option(
            "--stale-after", help="Seconds without heartbeat before another machine's trial is failed."
        ),
    ] = 600.0,
    per_caller: Annotated[bool, typer.Option("--per-caller", help="One study per caller.")] = False,
    min_calls: Annotated[
        int, typer.Option("--min-calls", help="With --per-caller: callers with fewer ok alerts are skipped.")
    ] = 50,
    export_trials_parquet: Annotated[
        Path | None, typer.Option(help="Write one row per (trial, fold, split) to FILE.")
    ] = None,
    export_config: Annotated[
        Path | None,
        typer.Option(
            help="Recommended strategy file (.json/.yaml/.toml); default <home>/studies/<study>/recommended.json."
        ),
    ] = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
    cluster: ClusterOpt = None,
    cluster_data: ClusterDataOpt = "auto",
) -> None:
    """Optimise exit strategies (Optuna) on walk-forward folds; recommend by out-of-sample robustness.

    The recommendation maximises robust = (test score + median test score of its nearest neighbours) / 2
    over feasible trials; DSR and PBO say how much the search may have fooled itself.
    """
    from alertlab.app.optimize import run_optimize
    from alertlab.optimize.evaluate import EngineSettings
    from alertlab.optimize.options import OptimizeOptions
    from alertlab.optimize.space import load_space

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
    if space is not None and not space.exists():
        fail(f"no such space file: {space}")
    try:
        opts = OptimizeOptions(
            space=load_space(space),
            objective=objective,
            sampler=sampler,
            trials=trials,
            seed=seed,
            batch_size=batch_size,
            folds=folds,
            anchored=anchored,
            train_days=train_days,
            test_days=test_days,
            min_trades=min_trades,
            max_dd=max_dd,
            settings=EngineSettings(
                fee_bps=fee_bps,
                slippage_bps=slippage_bps,
                intrabar=intrabar,
                fill_on_zero_volume=fill_on_zero_volume,
            ),
            pbo_blocks=pbo_blocks,
            neighbours=neighbours,
            workers=workers,
            stale_after=stale_after,
        )
        res = run_optimize(
            resolve_home(home),
            sel,
            spec,
            opts,
            study=study,
            storage=storage,
            per_caller=per_caller,
            min_calls=min_calls,
            force_recompute=force_recompute,
            progress=not as_json,
            export_trials_parquet=export_trials_parquet,
            export_config=export_config,
            cluster=cluster,
            cluster_data=cluster_data,
        )
    except ValidationError as exc:
        fail(_pydantic_msg(exc))
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json(_json_doc(res))
    else:
        _print(res)
    if not per_caller and res.study.recommended is None:
        raise typer.Exit(1)


SCORE_HELP = "objective: mean over training folds (train), over test folds (test)"
FOLD_COLS = [
    Col("fold", "id"),
    Col("train_from", "ts", "train from"),
    Col("train_to", "ts", "train to"),
    Col("test_from", "ts", "test from"),
    Col("test_to", "ts", "test to"),
    Col("n_train", "int", "train alerts"),
    Col("n_test", "int", "test alerts"),
]


def _param_cols(names) -> list[Col]:
    return [Col(f"p_{k}", "text" if k == "tp_ladder" else "num", k) for k in names]


def _board_cols(s) -> list[Col]:
    return [
        Col("trial", "id"),
        Col("robust", "num", help="(test + median test of the nearest trials) / 2: the ranking"),
        Col("test", "num", help="objective, mean over the test folds"),
        Col("train", "num", help="objective, mean over the training folds"),
        *_param_cols(s.options.space.names),
        Col("neighbourhood", "num", "nbhd", "median test score of the nearest trials"),
        Col("train_rank", "id", "train rank", "rank by training score (1 = best)"),
        Col("n_trades_train", "int", "trades train", "fewest trades of a training fold"),
        Col("n_trades_test", "int", "trades test", "fewest trades of a test fold"),
    ]


def _per_caller_cols(names) -> list[Col]:
    return [
        Col("caller"),
        Col("n_alerts", "int", "alerts"),
        Col("robust", "num", help="of the recommended trial"),
        Col("test", "num"),
        Col("train", "num"),
        *_param_cols(names),
        Col("dsr", "num", "DSR", "deflated Sharpe ratio of the recommendation"),
        Col("pbo", "num", "PBO", "probability of backtest overfitting"),
        Col("n_trials", "int", "trials"),
        Col("n_feasible", "int", "feasible"),
        Col("trial", "id"),
        Col("study"),
    ]


def _board(s) -> pd.DataFrame:
    cols = [
        "trial",
        "train",
        "test",
        "neighbourhood",
        "robust",
        "train_rank",
        "n_trades_train",
        "n_trades_test",
    ]
    cols += [c for c in s.trials.columns if c.startswith("p_")]
    df = s.trials[s.trials["feasible"].fillna(False).astype(bool)]
    return df[cols].head(BOARD_ROWS).reset_index(drop=True).astype(object)


def _summary(s) -> dict:
    d = s.summary()
    d["study_timings"] = d.pop("timings")
    return d


def _json_doc(res) -> dict:
    head = {
        "run_id": res.run.run_id,
        "fingerprint": res.cache.fingerprint,
        "cache_hit": res.cache.hit,
        "counts": res.run.counts,
        "status_counts": res.status_counts,
        "diagnosis": res.diagnosis,
        "timings": res.run.timings,
        "exports": res.exports,
    }
    if res.per_caller is None:
        s = res.study
        return {**head, **_summary(s), "leaderboard": _board(s)}
    return {
        **head,
        "per_caller": res.per_caller,
        "skipped_callers": res.skipped_callers,
        "studies": [{**_summary(s), "leaderboard": _board(s)} for s in res.studies],
    }


def _fmt_dsr(s) -> str:
    return "–" if s.dsr is None else f"{s.dsr['dsr']:.3f} (SR/day {s.dsr['sr']:.3f}, SR0 {s.dsr['sr0']:.3f})"


def _fmt_pbo(s) -> str:
    return "–" if s.pbo is None else f"{s.pbo['pbo']:.3f} ({s.pbo['n_combinations']:,} CSCV splits)"


def _print(res) -> None:
    head = {
        "run": res.run.run_id,
        "path cache": "hit" if res.cache.hit else "built",
        "alerts": res.run.counts.get("alerts", 0),
        "studies": len(res.studies),
        "seconds": res.run.timings.get("total", 0.0),
    }
    tables = [kv_table(head, "optimize"), kv_table(status_view(res.status_counts), "alerts by status")]
    if res.per_caller is not None:
        names = res.studies[0].options.space.names if res.studies else []
        tables.append(
            frame_table(
                res.per_caller,
                f"per-caller studies ({len(res.studies)}), best robust score first",
                _per_caller_cols(names),
                max_rows=100,
            )
        )
        if res.skipped_callers:
            tables.append(
                frame_table(
                    pd.DataFrame(res.skipped_callers),
                    "callers skipped",
                    [Col("caller"), Col("n_alerts", "int", "alerts"), Col("reason")],
                    max_rows=100,
                )
            )
        print_tables(tables)
        for k, v in res.exports.items():
            console.print(f"{k}: {v}", highlight=False)
        print_diagnosis(res.diagnosis)
        return
    s = res.study
    c = s.counts
    info = {
        "study": s.name,
        "storage": s.storage,
        "objective": f"{s.options.objective} (mean over training folds)",
        "sampler": s.options.sampler,
        "trials": f"{c['n_complete']} completed of {s.target} ({c['new_trials']} new; {c['n_failed']} failed "
        f"and replaced; {c['n_infeasible']} infeasible; {c['n_running']} running; {c['n_trials']} in all)",
        "DSR (recommended)": _fmt_dsr(s),
        "PBO": _fmt_pbo(s),
    }
    tables.append(kv_table(info, "study"))
    folds = pd.DataFrame([f.as_dict() for f in s.folds])
    for k in ("train_from", "train_to", "test_from", "test_to"):
        folds[k] = pd.to_datetime(folds[k], unit="ms", utc=True)
    folds = folds.astype(object)
    tables.append(
        frame_table(folds, "walk-forward folds (alert time, half-open; embargo = horizon)", FOLD_COLS)
    )
    tables.append(
        frame_table(_board(s), "leaderboard: feasible trials, best robust score first", _board_cols(s))
    )
    rec = s.recommended
    if rec is not None:
        bt = rec["best_train_trial"]
        tables.append(
            kv_table(
                {
                    "trial": rec["trial"],
                    "strategy": s.config.describe() if s.config is not None else "–",
                    "options": ", ".join(
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in rec["options"].items()
                    ),
                    "train / test / robust": f"{rec['train']:.4g} / {rec['test']:.4g} / {rec['robust']:.4g}",
                    "best-by-train trial": f"#{bt['trial']}: train {bt['train']:.4g}, test {bt['test']:.4g}",
                    "config file": res.exports.get("config", "–"),
                },
                "recommended (max robust score, not max training score)",
            )
        )
    print_tables(tables)
    for n in s.notes:
        console.print(f"[yellow]note:[/] {n}", highlight=False)
    print_diagnosis(res.diagnosis)
    if "trials_parquet" in res.exports:
        console.print(f"trials: {res.exports['trials_parquet']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``optimize`` command to the CLI app."""
    app.command("optimize")(optimize)
