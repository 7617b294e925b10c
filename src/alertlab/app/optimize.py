"""``alertlab optimize`` as one call: select alerts → windows (path cache) → studies → exports.

Windows come from the path cache once per run (a hit when they were cut before); every trial of
every study reads those arrays only. The run is recorded in the catalog (config, data fingerprint,
code version, timings, counts), and its exports in the ``results`` table.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alertlab.optimize.analysis import StudyResult
from alertlab.optimize.options import CLUSTER_WORKERS, OptimizeOptions
from alertlab.optimize.report import trials_long_table, write_config
from alertlab.optimize.storage import safe_name
from alertlab.optimize.study import default_study_name, run_study, study_identity
from alertlab.store import Home, resolve_home
from alertlab.store.runs import Run, record_result
from alertlab.windows.cache import CacheInfo
from alertlab.windows.model import DEFAULT_MIN_COVERAGE
from alertlab.windows.spec import Selection, WindowSpec


@dataclass
class OptimizeResult:
    """A recorded optimize run: one study (or one per caller), the cache it read, the files written."""

    run: Run
    cache: CacheInfo
    studies: list[StudyResult]
    per_caller: pd.DataFrame | None
    skipped_callers: list[dict] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    diagnosis: str | None = None

    @property
    def study(self) -> StudyResult:
        """The study of a run without ``per_caller``."""
        return self.studies[0]


def _caller_groups(w, min_calls: int, min_coverage: float) -> tuple[list[tuple[str, np.ndarray]], list[dict]]:
    ok = w.usable(min_coverage)
    callers = np.asarray(w.caller, dtype=object).astype(str)
    groups, skipped = [], []
    for c in sorted(set(callers)):
        idx = np.flatnonzero((callers == c) & ok)
        if idx.size >= min_calls:
            groups.append((c, idx))
        else:
            skipped.append(
                {"caller": c, "n_alerts": int(idx.size), "reason": f"fewer than {min_calls} usable alerts"}
            )
    return groups, skipped


def _config_path(base: Path | None, default_dir: Path, caller: str | None) -> Path:
    if base is None:
        return default_dir / (
            "recommended.json" if caller is None else f"recommended-{safe_name(caller)}.json"
        )
    base = Path(base)
    return base if caller is None else base.with_name(f"{base.stem}-{safe_name(caller)}{base.suffix}")


def per_caller_table(studies: list[StudyResult]) -> pd.DataFrame:
    """One row per caller study: counts, recommended parameters, train/test/robust, DSR, PBO."""
    rows = []
    for s in studies:
        rec = s.recommended or {}
        row = {
            "caller": s.caller,
            "study": s.name,
            "n_alerts": s.n_alerts,
            "n_trials": s.counts["n_trials"],
            "n_feasible": s.counts["n_feasible"],
            "trial": rec.get("trial"),
            "train": rec.get("train"),
            "test": rec.get("test"),
            "robust": rec.get("robust"),
            "dsr": (s.dsr or {}).get("dsr"),
            "pbo": (s.pbo or {}).get("pbo"),
        }
        for k in s.options.space.names:
            row[f"p_{k}"] = (rec.get("options") or {}).get(k)
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values("robust", ascending=False, na_position="last", kind="stable").reset_index(
            drop=True
        )
    return df


def run_optimize(
    home: Home | str | Path | None = None,
    selection: Selection | None = None,
    spec: WindowSpec | None = None,
    options: OptimizeOptions | None = None,
    *,
    study: str | None = None,
    storage: str | None = None,
    per_caller: bool = False,
    min_calls: int = 50,
    force_recompute: bool = False,
    progress: bool = False,
    export_trials_parquet: str | Path | None = None,
    export_config: str | Path | None = None,
    cluster: str | None = None,
    cluster_data: str = "auto",
) -> OptimizeResult:
    """Optimise exit strategies on the selected alerts (see :mod:`alertlab.optimize.study`).

    ``study``/``storage``: name and Optuna storage (default a journal file in
    ``<home>/studies/<study>/``). ``per_caller``: one study per caller with at least ``min_calls``
    ok alerts (study names ``<study>@<caller>``). Exports: ``export_trials_parquet`` (long table),
    ``export_config`` (recommended strategy, JSON/YAML/TOML by suffix; default
    ``<home>/studies/<study>/recommended.json``, per caller ``recommended-<caller>.json``).
    ``cluster``: evaluate the trial batches on a Dask cluster (ask/tell stays here, in the study's
    storage; see :mod:`alertlab.distributed`); the study is identical to a local one.
    """
    if cluster and options is not None and options.workers > 1:
        raise ValueError(CLUSTER_WORKERS)
    if cluster:  # fail fast on a malformed address or a missing extra
        from alertlab.distributed.cluster import preflight

        preflight(cluster, cluster_data)
    home = home if isinstance(home, Home) else resolve_home(home)
    sel, spec = selection or Selection(), spec or WindowSpec()
    options = options or OptimizeOptions()
    if export_config is not None and Path(export_config).suffix.lower() not in (
        ".json",
        ".yaml",
        ".yml",
        ".toml",
    ):
        raise ValueError(f"--export-config {export_config}: use a .json, .yaml, .yml or .toml file")
    if int(min_calls) != min_calls or min_calls < 1:
        raise ValueError(f"min_calls must be an integer >= 1, got {min_calls!r}")
    config = {
        "options": options.to_dict(),
        "study": study,
        "storage": storage,
        "per_caller": per_caller,
        "min_calls": min_calls if per_caller else None,
        "force_recompute": force_recompute,
        **({"cluster": cluster, "cluster_data": cluster_data} if cluster else {}),
    }
    from alertlab.app.run import open_run  # the use cases' shared skeleton (select → windows → record)

    with (
        open_run(home, "optimize", sel, spec, config, force=force_recompute, progress=progress) as ctx,
        contextlib.ExitStack() as stack,
    ):
        run, w, info = ctx.run, ctx.w, ctx.info
        counts, why = ctx.status_counts, ctx.diagnosis
        usable = ctx.usable_idx()
        # the usable set depends on --min-coverage, which is not part of the window fingerprint
        ident = (
            info.fingerprint
            if spec.min_coverage == DEFAULT_MIN_COVERAGE
            else f"{info.fingerprint}:cov{spec.min_coverage:g}"
        )
        base = study or default_study_name(study_identity(options, ident, int(w.horizon_s)))
        study_dir = home.studies_dir / safe_name(base)
        run.config["study"] = base
        groups: Sequence[tuple[str | None, np.ndarray]]
        if per_caller:
            groups, skipped = _caller_groups(w, min_calls, spec.min_coverage)
            if not groups:
                raise ValueError(
                    f"no caller has at least --min-calls={min_calls} usable alerts"
                    + (f" ({why})" if why else "")
                )
        else:
            groups, skipped = [(None, usable)], []
        studies: list[StudyResult] = []
        from alertlab.distributed.run import study_evaluators  # no Dask import without a cluster

        make_evaluator = stack.enter_context(study_evaluators(cluster, cluster_data, w, info.path, progress))
        for caller, idx in groups:
            t0 = time.perf_counter()
            try:
                res = run_study(
                    w,
                    options,
                    study_dir,
                    alert_idx=idx,
                    study=base,
                    storage=storage,
                    caller=caller,
                    windows_path=info.path,
                    progress=progress,
                    make_evaluator=make_evaluator,
                )
            except ValueError as exc:
                if caller is None:
                    raise
                skipped.append({"caller": caller, "n_alerts": int(idx.size), "reason": str(exc)})
                continue
            finally:
                run.timings["studies"] = round(run.timings.get("studies", 0.0) + time.perf_counter() - t0, 6)
            for k, v in res.timings.items():
                run.timings[k] = round(run.timings.get(k, 0.0) + v, 6)
            studies.append(res)
        if not studies:
            raise ValueError(
                "no caller study could be run: " + "; ".join(f"{s['caller']}: {s['reason']}" for s in skipped)
            )
        table = per_caller_table(studies) if per_caller else None
        out = OptimizeResult(run, info, studies, table, skipped, status_counts=counts, diagnosis=why)
        with run.phase("export"):
            _export(home, out, study_dir, export_trials_parquet, export_config, per_caller)
        run.counts = {
            "alerts": int(w.n),
            **{f"status_{k}": v for k, v in counts.items()},
            **({"diagnosis": why} if why else {}),
            "studies": len(studies),
            "callers_skipped": len(skipped),
            **{
                k: int(sum(s.counts[k] for s in studies))
                for k in ("n_trials", "n_complete", "n_failed", "n_feasible", "new_trials")
            },
            "recommended": int(sum(s.recommended is not None for s in studies)),
        }
    return out


def _export(
    home: Home, out: OptimizeResult, study_dir: Path, trials_file, config_file, per_caller: bool
) -> None:
    from alertlab.report.exports import write_table

    prov = out.run.provenance()
    if trials_file is not None:
        table = trials_long_table(out.studies, with_caller=per_caller)
        path = write_table(table, Path(trials_file), prov)
        record_result(home, out.run, "trials", str(path), table.num_rows)
        out.exports["trials_parquet"] = str(path)
    for s in out.studies:
        if s.config is None:
            continue
        path = _config_path(Path(config_file) if config_file else None, study_dir, s.caller)
        assert s.recommended is not None  # a config is only set together with its recommended trial
        header = {
            "study": s.name,
            "trial": s.recommended["trial"],
            "objective": s.options.objective,
            "run_id": out.run.run_id,
            "fingerprint": out.run.fingerprint,
        }
        write_config(s.config, path, header)
        record_result(
            home,
            out.run,
            "recommended_config" if s.caller is None else f"recommended_config@{s.caller}",
            str(path),
            1,
        )
        out.exports["config" if s.caller is None else f"config@{s.caller}"] = str(path)
