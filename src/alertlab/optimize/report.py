"""Study outputs: the long per-(trial, fold, split) table and the recommended config file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import yaml

from alertlab.engine import Strategy
from alertlab.optimize.evaluate import LONG_METRICS
from alertlab.optimize.space import INT_OPTIONS, STR_OPTIONS
from alertlab.store import atomic_file
from alertlab.util.configfile import CONFIG_SUFFIXES

if TYPE_CHECKING:
    from alertlab.optimize.analysis import StudyResult


def trials_long_table(results: Sequence[StudyResult], with_caller: bool = False) -> pa.Table:
    """One row per (trial, fold, split) of every completed trial.

    Columns: ``trial, fold, split`` ('train' | 'test'), ``from_ts, to_ts`` (the split's alert-time
    span, half-open, UTC timestamps in ms), ``n_trades, avg_ret, median_ret, sum_ret, win_rate,
    sharpe, profit_factor, objective`` (``engine.summary`` formulas; ``objective`` is the study's
    objective metric) and ``p_<option>`` per option of the search space (null = rule off).
    ``with_caller`` prepends a ``caller`` column (per-caller studies).
    """
    names: list[str] = []
    for r in results:
        for k in r.options.space.names:
            if k not in names:
                names.append(k)
    cols: dict[str, list] = {
        c: []
        for c in (
            "caller",
            "trial",
            "fold",
            "split",
            "from_ts",
            "to_ts",
            *LONG_METRICS,
            *[f"p_{k}" for k in names],
        )
    }
    for r in results:
        df = r.fold_metrics
        n = len(df)
        cols["caller"].extend([r.caller] * n)
        for c in ("trial", "fold", "split", "from_ts", "to_ts", *LONG_METRICS):
            cols[c].extend(df[c].tolist())
        for k in names:
            c = f"p_{k}"
            cols[c].extend(df[c].tolist() if c in df.columns else [None] * n)
    fields: list[tuple[str, pa.DataType]] = [
        ("trial", pa.int64()),
        ("fold", pa.int32()),
        ("split", pa.string()),
        ("from_ts", pa.timestamp("ms", tz="UTC")),
        ("to_ts", pa.timestamp("ms", tz="UTC")),
        ("n_trades", pa.int64()),
        *[(c, pa.float64()) for c in LONG_METRICS[1:]],
    ]
    for k in names:
        typ = pa.string() if k in STR_OPTIONS else pa.int64() if k in INT_OPTIONS else pa.float64()
        fields.append((f"p_{k}", typ))
    if with_caller:
        fields.insert(0, ("caller", pa.string()))
    arrays = []
    for name, typ in fields:
        vals = cols[name]
        if typ == pa.float64() and not name.startswith("p_"):
            arrays.append(pa.array(np.asarray(vals, dtype=np.float64), type=typ))
        elif name.startswith("p_"):
            arrays.append(pa.array([_param_value(v, typ) for v in vals], type=typ))
        else:
            arrays.append(pa.array(vals, type=typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _param_value(v: Any, typ: pa.DataType) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if typ == pa.string():
        return str(v)
    if typ == pa.int64():
        return int(v)
    return float(v)


def config_mapping(cfg: Strategy) -> dict[str, Any]:
    """The options of a strategy that are set (rules off are left out), costs and intrabar included."""
    if not isinstance(cfg, Strategy):
        raise ValueError("a recommended config must be one Strategy, not a grid")
    return cfg.model_dump(exclude_none=True)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML cannot hold {v!r}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=True)  # a valid TOML basic string
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def write_config(cfg: Strategy, path: str | Path, header: dict[str, Any] | None = None) -> Path:
    """Write a strategy as JSON, YAML or TOML (by suffix) that ``Strategy.from_file`` loads as-is.

    ``header`` (YAML/TOML only, as comments) records where the strategy came from.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ValueError(f"{path}: config files must end in {', '.join(CONFIG_SUFFIXES)}")
    data = config_mapping(cfg)
    comments = "".join(f"# {k}: {v}\n" for k, v in (header or {}).items())
    if suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    elif suffix in (".yaml", ".yml"):
        text = comments + yaml.safe_dump(data, sort_keys=False)
    else:
        text = comments + "".join(f"{k} = {_toml_value(v)}\n" for k, v in data.items())
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    loaded = Strategy.from_file(path)
    if loaded != cfg:  # the file must round-trip to the very same strategy
        raise RuntimeError(f"{path}: written config does not load back to the same strategy")
    return path
