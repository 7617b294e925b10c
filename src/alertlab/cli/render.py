"""Terminal rendering: rich tables from DataFrames / dicts, and JSON output for machines."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:  # pipes and CI: don't squeeze tables into 80 columns
    console = Console(width=220)


def _fmt(v: Any, col: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        if col.endswith("_ts") and v > 10**9:  # epoch seconds / ms → UTC time
            return pd.Timestamp(int(v), unit="ms" if v > 10**11 else "s", tz="UTC").strftime("%Y-%m-%d %H:%M")
        if col.endswith("_s") and not col.startswith("n"):
            return _duration(int(v))
        return str(int(v)) if col in ("row", "source_row", "rank", "trial", "fold") else f"{int(v):,}"
    if isinstance(v, float | np.floating):
        v = float(v)
        if col.endswith("_s"):
            return _duration(v)
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        if "ret" in col or "dd" in col or col == "expectancy":
            return f"{v:+.1%}"
        if any(k in col for k in ("rate", "share", "_lo", "_hi", "win")) and abs(v) <= 1:
            return f"{v:.1%}"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 0.01 else f"{v:.2f}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M")
    return str(v)


def _duration(s: float) -> str:
    if s < 3600:
        return f"{s / 60:.0f}m"
    if s < 86400 * 2:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def frame_table(df: pd.DataFrame, title: str = "", columns: Sequence[str] | None = None,
                max_rows: int = 50) -> Table:
    """A rich Table of ``df`` (first ``max_rows`` rows), numbers formatted by column meaning."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    t = Table(title=title, header_style="bold", show_lines=False)
    for c in cols:
        numeric = pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        t.add_column(c, justify="right" if numeric else "left", overflow="fold")
    for _, row in df.head(max_rows).iterrows():
        t.add_row(*[_fmt(row[c], c) for c in cols])
    if len(df) > max_rows:
        t.caption = f"{len(df) - max_rows} more rows not shown (use --json or a Parquet export)"
    return t


def kv_table(d: dict, title: str = "") -> Table:
    t = Table(title=title, show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value", justify="right")
    for k, v in d.items():
        t.add_row(str(k), _fmt(v, str(k)) if not isinstance(v, dict) else json.dumps(v, default=str))
    return t


def _jsonable(o: Any) -> Any:
    if isinstance(o, pd.DataFrame):
        return json.loads(o.to_json(orient="records", date_format="iso"))
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating | float):
        f = float(o)
        return None if math.isnan(f) else (str(f) if math.isinf(f) else f)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return o


def print_json(obj: Any) -> None:
    """One JSON document on stdout (NaN → null, ±inf → strings)."""
    print(json.dumps(_jsonable(obj), indent=1, default=str))


def print_tables(tables: Iterable[Table]) -> None:
    for t in tables:
        console.print(t)


def leaderboard_view(board: pd.DataFrame) -> pd.DataFrame:
    """Compact leaderboard for the terminal: rates with their Wilson bounds in one cell."""

    def pct(v: float) -> str:
        return "–" if pd.isna(v) else f"{v:.0%}"

    v = pd.DataFrame({"rank": board["rank"], "caller": board["caller"], "n": board["n"],
                      "tokens": board["n_tokens"], "first_call": board["first_call_share"].map(pct)})
    for k in (2, 5, 10):
        v[f"hit{k}x [95% CI]"] = [f"{pct(r)} [{pct(lo)}–{pct(hi)}]" for r, lo, hi in
                                  zip(board[f"hit{k}x_rate"], board[f"hit{k}x_lo"], board[f"hit{k}x_hi"], strict=True)]
    v["ATH median [95% CI]"] = [f"{m:.2f}x [{lo:.2f}–{hi:.2f}]" for m, lo, hi in
                                zip(board["ath_median"], board["ath_median_lo"], board["ath_median_hi"], strict=True)]
    v["ATH p95"] = board["ath_p95"].map(lambda x: f"{x:.1f}x")
    v["time_to_2x_median_s"] = board["time_to_2x_median_s"]
    v["dd_pre2x_median"] = board["dd_pre2x_median"]
    v["ret_end_median"] = board["ret_end_median"]
    return v


STATUS_KEYS = ("usable", "ok", "truncated", "below_min_coverage", "missing", "stale", "bad_entry")


def status_view(counts: dict[str, int]) -> dict[str, int]:
    """Status counts in display order (usable first; below_min_coverage = truncated but not usable)."""
    return {k.replace("_", " "): int(counts.get(k, 0)) for k in STATUS_KEYS}


def print_diagnosis(msg: str | None) -> None:
    """The one-line 'why nothing / why most not usable, what to try' message, on the console."""
    if msg:
        console.print(f"[bold yellow]note:[/] {msg}", highlight=False, soft_wrap=True)
