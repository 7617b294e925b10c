"""The truth layer as one call: select alerts → windows (path cache) → metrics → leaderboard → exports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from alertlab.app.run import open_run
from alertlab.store import Home, atomic_file
from alertlab.store.runs import Run, record_result
from alertlab.windows.cache import CacheInfo, derived_path
from alertlab.windows.model import Windows
from alertlab.windows.spec import Selection, WindowSpec


@dataclass
class BaselineResult:
    """Per-alert metrics (``table``), the caller ``leaderboard`` and how they were obtained."""

    table: pa.Table
    leaderboard: pd.DataFrame
    hidden_callers: list[str]
    windows: Windows
    cache: CacheInfo
    run: Run
    metrics_cached: bool
    status_counts: dict[str, int]
    diagnosis: str | None = None

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()


def run_baseline(
    home: Home | str | Path | None = None,
    selection: Selection | None = None,
    spec: WindowSpec | None = None,
    min_calls: int = 10,
    rank_by: str = "hit2x_lo",
    force_recompute: bool = False,
    progress: bool = False,
    export_baseline_parquet: str | Path | None = None,
    export_per_alert_parquet: str | Path | None = None,
    export_per_caller_parquet: str | Path | None = None,
    cluster: str | None = None,
    cluster_data: str = "auto",
) -> BaselineResult:
    """Compute baseline path metrics for every selected alert and rank callers.

    Windows come from the path cache (built on a miss); the per-alert metrics table is kept
    beside the cache entry, so a warm rerun only reads it back. Every run is recorded in the
    catalog with its config, fingerprint, cache hit and timings. ``cluster``: compute the metrics
    on a Dask cluster (``tcp://host:port`` or ``local:N``; ``cluster_data``: ``auto``, ``shared`` or
    ``scatter``, see :mod:`alertlab.distributed.tasks`); the table is identical to a local run.
    """
    from alertlab.truth.leaderboard import caller_stats, rank_callers
    from alertlab.truth.metrics import METRICS_VERSION, baseline_table

    if cluster:  # fail fast on a malformed address or a missing extra
        from alertlab.distributed.cluster import preflight

        preflight(cluster, cluster_data)
    config = {
        "min_calls": min_calls,
        "rank_by": rank_by,
        "force_recompute": force_recompute,
        **({"cluster": cluster, "cluster_data": cluster_data} if cluster else {}),
    }
    with open_run(home, "baseline", selection, spec, config, force=force_recompute, progress=progress) as ctx:
        home, run, spec, w, info = ctx.home, ctx.run, ctx.spec, ctx.w, ctx.info
        mpath = derived_path(
            info, f"baseline-m{METRICS_VERSION}.arrow"
        )  # Arrow IPC keeps exact types (Parquet has no timestamp[s])
        cached = mpath.exists() and not force_recompute
        with run.phase("metrics"):
            if cached:
                table = feather.read_table(mpath, memory_map=True)  # uncompressed: zero-copy
            else:
                if cluster:
                    from alertlab.distributed.run import baseline_on_cluster

                    table = baseline_on_cluster(cluster, cluster_data, w, info.path, progress)
                else:
                    table = baseline_table(w)
                with atomic_file(mpath) as tmp:
                    feather.write_feather(table, tmp, compression="uncompressed")
            table = table.sort_by([("alert_ts", "ascending"), ("alert_id", "ascending")])
        with run.phase("leaderboard"):
            spath = derived_path(info, f"caller_stats-m{METRICS_VERSION}-cov{spec.min_coverage:g}.arrow")
            if cached and spath.exists():
                stats = feather.read_table(spath, memory_map=True).to_pandas()
            else:
                stats = caller_stats(table, min_coverage=spec.min_coverage)
                with atomic_file(spath) as tmp:
                    feather.write_feather(
                        pa.Table.from_pandas(stats, preserve_index=False), tmp, compression="uncompressed"
                    )
            board = rank_callers(stats, min_calls=min_calls, rank_by=rank_by)
            hidden = list(board.attrs.get("hidden_callers", []))
        wc = ctx.window_counts()
        run.counts = {
            "alerts": wc.pop("alerts"),
            "bars": info.n_bars,
            "callers_ranked": len(board),
            "callers_hidden": len(hidden),
            "metrics_cached": cached,
            **wc,
        }
        result = BaselineResult(table, board, hidden, w, info, run, cached, ctx.status_counts, ctx.diagnosis)
        _export(home, result, export_baseline_parquet, export_per_alert_parquet, export_per_caller_parquet)
    return result


def _export(home: Home, r: BaselineResult, baseline_file, per_alert_dir, per_caller_dir) -> None:
    from alertlab.report import exports

    prov = r.run.provenance()
    with r.run.phase("exports"):
        if baseline_file:
            p = exports.write_table(r.table, baseline_file, prov)
            record_result(home, r.run, "baseline", str(p), r.table.num_rows)
        if per_alert_dir:
            p, n = exports.write_windows(r.windows, per_alert_dir, prov)
            record_result(home, r.run, "per_alert_bars", str(p), n)
        if per_caller_dir:
            board = pa.Table.from_pandas(r.leaderboard, preserve_index=False)
            p = exports.write_partitioned(
                r.table, per_caller_dir, "caller", prov, {"leaderboard.parquet": board}
            )
            record_result(home, r.run, "per_caller", str(p), r.table.num_rows)
