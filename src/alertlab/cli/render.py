"""Terminal rendering: rich tables from DataFrames / dicts, and JSON output for machines.

Every table declares its columns (:class:`Col`: DataFrame column, display format, header and a
legend line) in the command that prints it; nothing is guessed from column names here. A table is
fitted to the console width when printed: columns are kept in their declared order (most important
first) while they fit, the others are named in a note under the table; ``--wide`` (:data:`WIDE`) shows them all.
Rows never wrap (cells that still do not fit end with an ellipsis).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

console = Console()
if not console.is_terminal:  # pipes and CI: don't squeeze tables into 80 columns unless $COLUMNS says so
    console = Console(width=int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 220)

WIDE = False
"""Show every column even if the table gets wider than the console (``--wide``)."""

KINDS = ("text", "int", "id", "num", "pct", "ret", "mult", "dur", "interval", "ts", "bool", "mb", "sec")
"""Display formats: ``int`` 1,234 · ``id`` 1234 (row numbers, trial ids) · ``num`` 2 decimals (3
significant under 0.01) · ``pct`` 12.3% · ``ret`` signed +12.3% · ``mult`` 2.15x · ``dur`` a duration
in seconds as 45m / 3.2h / 4.1d · ``interval`` a bar interval in seconds as 30s / 5m / 1h / 1d ·
``ts`` epoch seconds or ms, or a timestamp, as UTC ``YYYY-MM-DD HH:MM`` · ``bool`` yes/no · ``mb``
megabytes · ``sec`` seconds with 2 decimals."""


@dataclass(frozen=True)
class Col:
    """One declared table column: ``name`` in the frame, display ``kind`` (see :data:`KINDS`),
    header ``label`` (default: ``name``) and ``help`` for the legend under the table."""

    name: str
    kind: str = "text"
    label: str | None = None
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: unknown display kind {self.kind!r}")

    @property
    def header(self) -> str:
        return self.label or self.name


def interval_text(seconds: float) -> str:
    """A bar interval as people write it: ``30s``, ``5m``, ``1h``, ``4h``, ``1d`` (``1m30s`` if uneven)."""
    s = int(round(float(seconds)))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n and s % n == 0:
            return f"{s // n}{unit}"
    if s >= 60:
        return f"{s // 60}m{s % 60}s"
    return f"{s}s"


def duration_text(s: float) -> str:
    """A duration in seconds, rounded for reading: ``45m``, ``3.2h``, ``4.1d`` (exact bar multiples
    such as 300 s print like intervals)."""
    s = float(s)
    if s < 3600:
        return f"{s / 60:.0f}m" if s >= 60 or s == 0 else f"{s:.0f}s"
    if s < 86400 * 2:
        return f"{s / 3600:.0f}h" if s % 3600 == 0 else f"{s / 3600:.1f}h"
    return f"{s / 86400:.0f}d" if s % 86400 == 0 else f"{s / 86400:.1f}d"


def _missing(v: Any) -> bool:
    if v is None or v is pd.NaT or v is pd.NA:
        return True
    return isinstance(v, float | np.floating) and math.isnan(v)


def _ts_text(v: Any) -> str:
    """A timestamp (or epoch seconds / milliseconds, told apart by size) as ``YYYY-MM-DD HH:MM``."""
    if isinstance(v, pd.Timestamp | np.datetime64) or hasattr(v, "strftime"):
        t = pd.Timestamp(v)
    else:
        ms = int(v)
        t = pd.Timestamp(ms, unit="ms" if abs(ms) > 10**11 else "s", tz="UTC")
    return t.strftime("%Y-%m-%d %H:%M")


def _num_text(x: float) -> str:
    """A plain number: thousands grouped, small values with 3 significant digits, else 2 decimals."""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if 0 < abs(x) < 0.01 else f"{x:.2f}"


_NUMBER_FORMATS: dict[str, Callable[[float], str]] = {
    "int": lambda x: f"{x:,.0f}",
    "id": lambda x: f"{x:.0f}",
    "pct": lambda x: f"{x:.1%}",
    "ret": lambda x: f"{x:+.1%}",
    "mult": lambda x: f"{x:.2f}x",
    "dur": duration_text,
    "interval": interval_text,
    "mb": lambda x: f"{x:,.1f} MB",
    "sec": lambda x: f"{x:.2f}s",
    "bool": lambda x: "yes" if x else "no",
}
"""Text of a finite number per display kind (``num`` and any other kind: :func:`_num_text`)."""


def fmt(v: Any, kind: str = "text") -> str:
    """Text of one value in a declared display ``kind``."""
    if _missing(v):
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if kind == "text" or isinstance(v, str):
        return str(v)
    if kind == "ts":
        return _ts_text(v)
    x = float(v)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return _NUMBER_FORMATS.get(kind, _num_text)(x)


def _kind_of(s: pd.Series) -> str:
    """Display kind of an undeclared column, by its dtype only (never by its name)."""
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    if pd.api.types.is_integer_dtype(s):
        return "int"
    if pd.api.types.is_float_dtype(s):
        return "num"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "ts"
    return "text"


@dataclass
class FitTable:
    """A table waiting for the console width: see :meth:`render`."""

    df: pd.DataFrame
    cols: list[Col]
    title: str
    max_rows: int
    note: str = ""

    def cells(self) -> list[list[str]]:
        return [
            [fmt(v, c.kind) for c, v in zip(self.cols, row, strict=True)]
            for row in self.df[[c.name for c in self.cols]].head(self.max_rows).itertuples(index=False)
        ]

    def choose(self, width: int, wide: bool) -> list[int]:
        """Indices of the columns shown: declared order, each kept while the table still fits."""
        cells = self.cells()
        need = [
            max([cell_len(c.header)] + [cell_len(r[i]) for r in cells]) + 3 for i, c in enumerate(self.cols)
        ]
        if wide:
            return list(range(len(self.cols)))
        used, keep = 1, list[int]()
        for i, n in enumerate(need):
            if used + n <= width or not keep:
                keep.append(i)
                used += n
        return keep

    def render(self, width: int, wide: bool = False) -> RenderableType:
        keep = self.choose(width, wide)
        cols = [self.cols[i] for i in keep]
        t = Table(title=self.title, header_style="bold", show_lines=False)
        for c in cols:
            right = c.kind != "text" and c.kind != "ts"
            t.add_column(c.header, justify="right" if right else "left", no_wrap=True, overflow="ellipsis")
        cells = self.cells()
        for r in cells:
            t.add_row(*[r[i] for i in keep])
        notes = []
        if len(self.df) > self.max_rows:
            notes.append(
                f"{len(self.df) - self.max_rows} more rows not shown (use --json or a Parquet export)"
            )
        hidden = [c.header for i, c in enumerate(self.cols) if i not in keep]
        if hidden:
            notes.append(
                f"{len(hidden)} column(s) left out at this width: {', '.join(hidden)} (--wide shows all)"
            )
        legend = [f"{c.header}: {c.help}" for c in cols if c.help]
        if legend:
            notes.append(" · ".join(legend))
        if self.note:
            notes.append(self.note)
        return with_notes(t, notes)

    def __rich_console__(self, console: Console, options: Any) -> Any:
        """Printed directly (``console.print(table)``): fitted to the width rich offers."""
        yield self.render(options.max_width, WIDE)

    def width_needed(self) -> int:
        cells = self.cells()
        return 1 + sum(
            max([cell_len(c.header)] + [cell_len(r[i]) for r in cells]) + 3 for i, c in enumerate(self.cols)
        )


def frame_table(
    df: pd.DataFrame,
    title: str = "",
    columns: Sequence[str | Col] | None = None,
    max_rows: int = 50,
    note: str = "",
) -> FitTable:
    """A table of ``df`` (first ``max_rows`` rows) with declared columns (a bare name gets a
    format from its dtype); fitted to the console when printed."""
    cols: list[Col] = []
    for c in columns if columns is not None else list(df.columns):
        col = c if isinstance(c, Col) else Col(str(c), _kind_of(df[c]) if c in df.columns else "text")
        if col.name in df.columns:
            cols.append(col)
    return FitTable(df, cols, title, max_rows, note)


def with_notes(table: Table, notes: Sequence[str]) -> RenderableType:
    """The table followed by its notes (legend, hidden rows/columns) as plain lines under it."""
    notes = [n for n in notes if n]
    if not notes:
        return table
    return Group(table, Text("\n".join(notes), style="dim"))


def kv_table(
    d: Mapping[str, Any],
    title: str = "",
    kinds: Mapping[str, str] | None = None,
    help: Mapping[str, str] | None = None,
) -> RenderableType:
    """Key/value table; ``kinds`` declares the display kind per key (others: ints with thousands,
    floats with 2 decimals, text as is); ``help`` adds a legend line per key."""
    kinds = kinds or {}
    t = Table(title=title, show_header=False)
    t.add_column("key", style="bold", no_wrap=True)
    t.add_column("value", justify="right", overflow="fold")
    for k, v in d.items():
        if isinstance(v, dict):
            text = json.dumps(_jsonable(v), default=str)
        else:
            kind = kinds.get(str(k)) or (
                "int"
                if isinstance(v, int | np.integer) and not isinstance(v, bool)
                else "num"
                if isinstance(v, float | np.floating)
                else "text"
            )
            text = fmt(v, kind)
        t.add_row(str(k), text)
    return with_notes(t, [" · ".join(f"{k}: {h}" for k, h in (help or {}).items() if k in d)])


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


def print_tables(tables: Iterable[RenderableType | FitTable], out: Console | None = None) -> None:
    """Print tables, fitting each :class:`FitTable` to the console width (all columns with ``--wide``)."""
    out = out or console
    for t in tables:
        if isinstance(t, FitTable):
            rt = t.render(out.width, WIDE)
            if WIDE and t.width_needed() > out.width:
                Console(
                    file=out.file,
                    width=t.width_needed() + 2,
                    force_terminal=out.is_terminal,
                    no_color=out.no_color,
                ).print(rt)
                continue
            out.print(rt)
        else:
            out.print(t)


def leaderboard_view(board: pd.DataFrame) -> tuple[pd.DataFrame, list[Col]]:
    """Compact leaderboard for the terminal (rates with their Wilson bounds in one cell) and its columns."""

    def pct(v: float) -> str:
        return "–" if pd.isna(v) else f"{v:.0%}"

    v = pd.DataFrame(
        {
            "rank": board["rank"],
            "caller": board["caller"],
            "n": board["n"],
            "tokens": board["n_tokens"],
            "first_call": board["first_call_share"],
        }
    )
    for k in (2, 5, 10):
        v[f"hit{k}x"] = [
            f"{pct(r)} [{pct(lo)}–{pct(hi)}]"
            for r, lo, hi in zip(
                board[f"hit{k}x_rate"], board[f"hit{k}x_lo"], board[f"hit{k}x_hi"], strict=True
            )
        ]
    v["ath_median"] = [
        f"{m:.2f}x [{lo:.2f}–{hi:.2f}]"
        for m, lo, hi in zip(board["ath_median"], board["ath_median_lo"], board["ath_median_hi"], strict=True)
    ]
    v["ath_p95"] = board["ath_p95"]
    v["to_2x"] = board["time_to_2x_median_s"]
    v["dd_pre2x"] = board["dd_pre2x_median"]
    v["ret_end"] = board["ret_end_median"]
    cols = [
        Col("rank", "id"),
        Col("caller"),
        Col("n", "int", help="ok calls"),
        Col("hit2x", "text", "hit2x [95% CI]", "share of calls reaching 2x the entry, Wilson 95% interval"),
        Col(
            "ath_median",
            "text",
            "ATH median [95% CI]",
            "median all-time-high multiple in the window, bootstrap 95% interval",
        ),
        Col("tokens", "int", help="distinct tokens called"),
        Col("first_call", "pct", help="share of calls that were the first call of the token in the store"),
        Col("hit5x", "text", "hit5x [95% CI]"),
        Col("hit10x", "text", "hit10x [95% CI]"),
        Col("ath_p95", "mult", help="95th percentile of the ATH multiple"),
        Col("to_2x", "dur", help="median time to 2x (calls that hit it)"),
        Col("dd_pre2x", "ret", help="median drawdown before 2x (calls that hit it)"),
        Col("ret_end", "ret", help="median return at the end of the window"),
    ]
    return v, cols


QUALITY_COLS = [
    Col("chain"),
    Col("token"),
    Col("interval_s", "interval", "interval", "bar interval of the series"),
    Col("n_bars", "int", "bars"),
    Col("n_gaps", "int", "gaps", "holes of one or more missing bars"),
    Col("missing_bars", "int", "missing", "bars absent between the first and the last bar"),
    Col("zero_volume_share", "pct", "zero_vol", "share of bars with zero volume"),
    Col("n_conflicts", "int", "conflicts", "bars with differing duplicates (resolved deterministically)"),
    Col("n_rejected", "int", "rejected", "bad bars quarantined (`alertlab rejects`)"),
    Col("first_ts", "ts", "first bar"),
    Col("last_ts", "ts", "last bar"),
    Col("updated_at", "ts", "updated"),
]
"""``alertlab quality`` and the ingest summary's quality table."""

REJECT_SUMMARY_COLS = [Col("kind"), Col("reason"), Col("rows", "int")]
REJECT_COLS = [
    Col("kind"),
    Col("source_row", "id", "row", "row number in the file (header = row 0)"),
    Col("reason"),
    Col("source_file", label="file"),
]
RUNS_COLS = [
    Col("run_id", label="run"),
    Col("kind"),
    Col("started_at", "ts", "started (UTC)"),
    Col("seconds", "sec"),
    Col("cache_hit", "bool", "cache hit", "windows served from the path cache"),
    Col("fingerprint", help="path-cache entry the run read"),
    Col("code_version", label="code"),
    Col("counts"),
]
CACHE_COLS = [
    Col("fingerprint"),
    Col("interval_s", "interval", "interval"),
    Col("horizon_h", "num", "horizon h"),
    Col("n_alerts", "int", "alerts"),
    Col("n_bars", "int", "bars"),
    Col("size_mb", "mb", "size"),
    Col("n_ok", "int", "ok"),
    Col("n_missing", "int", "missing"),
    Col("n_stale", "int", "stale"),
    Col("n_bad_entry", "int", "bad_entry"),
    Col("created_at", "ts", "created (UTC)"),
    Col("code_version", label="code"),
]
BASELINE_HEAD_KINDS = {
    "alerts": "int",
    "usable": "int",
    "ok": "int",
    "truncated": "int",
    "below min coverage": "int",
    "missing": "int",
    "stale": "int",
    "bad entry": "int",
    "bars": "int",
    "seconds": "sec",
}
BASELINE_HEAD_HELP = {
    "usable": "ok windows plus truncated windows with coverage >= --min-coverage",
    "ok": "full-horizon windows",
    "truncated": "the token's data ends before the horizon",
    "below min coverage": "truncated windows under --min-coverage (not used)",
    "missing": "no bar at or after the call",
    "stale": "first traded bar later than max(--max-entry-lag-s, its bar duration)",
    "bad entry": "entry bar open not a positive price",
}


STATUS_KEYS = ("usable", "ok", "truncated", "below_min_coverage", "missing", "stale", "bad_entry")


def status_view(counts: dict[str, int]) -> dict[str, int]:
    """Status counts in display order (usable first; below_min_coverage = truncated but not usable)."""
    return {k.replace("_", " "): int(counts.get(k, 0)) for k in STATUS_KEYS}


def print_diagnosis(msg: str | None) -> None:
    """The one-line 'why nothing / why most not usable, what to try' message, on the console."""
    if msg:
        console.print(f"[bold yellow]note:[/] {msg}", highlight=False, soft_wrap=True)
