"""Assemble report sections into one self-contained HTML file (Jinja2 template shipped with the package).

Self-containment: plotly.js is embedded once in the page (no CDN), every figure's data is inlined
as JSON in one ``<script type="application/json">`` block and drawn by a few lines of glue in the
template (figures of hidden panels are drawn when their panel is selected, which keeps the page
fast). No ``src``/``href`` attribute points to the network; the page works offline.
"""

from __future__ import annotations

import html as _html
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from alertlab.store import atomic_file

TEMPLATE = "report.html.j2"


@dataclass
class Block:
    """One item of a section: ``kind`` is fig | kv | table | leaderboard | panels | note | caption | reading."""

    kind: str
    payload: Any
    title: str = ""
    note: str | None = None
    half: bool = False


@dataclass
class Section:
    """A report section: an id (anchor), a title, one plain-language sentence and its blocks."""

    id: str
    title: str
    explain: str
    blocks: list[Block] = field(default_factory=list)

    def fig(self, fig: go.Figure, note: str | None = None, half: bool = False) -> None:
        self.blocks.append(Block("fig", fig, note=note, half=half))

    def kv(self, title: str, items: dict[str, Any]) -> None:
        self.blocks.append(Block("kv", {k: _fmt(v) for k, v in items.items()}, title=title))

    def table(self, title: str, df: pd.DataFrame) -> None:
        self.blocks.append(Block("table", df, title=title))

    def note(self, text: str) -> None:
        """A placeholder: what is missing and which flags would fill it."""
        self.blocks.append(Block("note", text))

    def caption(self, text: str) -> None:
        """A small explanatory line under the section's content."""
        self.blocks.append(Block("caption", text))

    def reading(self, text: str) -> None:
        self.blocks.append(Block("reading", text))

    def leaderboard(self, board: pd.DataFrame, hidden: list[str], rank_by: str) -> None:
        self.blocks.append(
            Block(
                "leaderboard",
                board,
                title=f"Leaderboard (ranked by {rank_by}; "
                f"{len(hidden)} caller(s) below --min-calls not ranked)",
            )
        )

    def panel(self, label: str, figs: list[go.Figure]) -> None:
        if not self.blocks or self.blocks[-1].kind != "panels":
            self.blocks.append(Block("panels", []))
        self.blocks[-1].payload.append((label, figs))


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–" if math.isnan(v) else ("∞" if v > 0 else "−∞")
        return f"{v:,.4g}" if abs(v) < 1e3 else f"{v:,.0f}"
    return str(v)


# ------------------------------------------------------------------------------------ leaderboard table

_GROUPED = {f"hit{m}x_rate": (f"hit{m}x_lo", f"hit{m}x_hi") for m in (2, 3, 5, 10)}
_GROUPED["ath_median"] = ("ath_median_lo", "ath_median_hi")
_HIDDEN = {c for pair in _GROUPED.values() for c in pair}


def _cell(col: str, v: Any, row: pd.Series) -> tuple[str, str]:
    """(display text, sort key) of one leaderboard cell; formats by column name, any column works."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–", ""
    if isinstance(v, str):
        return _html.escape(v), v  # the text is inserted as markup, the key is escaped by the template
    x = float(v)
    if col in _GROUPED:
        lo, hi = (row.get(c) for c in _GROUPED[col])
        if col.startswith("hit"):
            return f"{x:.0%} <small>[{lo:.0%}, {hi:.0%}]</small>", f"{x:.6g}"
        return f"{x:.2f}x <small>[{lo:.2f}, {hi:.2f}]</small>", f"{x:.6g}"
    if col.endswith("_s"):
        return f"{x / 3600:.1f} h", f"{x:.6g}"
    if col.startswith("ath_"):
        return f"{x:.2f}x", f"{x:.6g}"
    if col.endswith(("_rate", "_share", "_lo", "_hi")) or col.startswith(("dd_", "ret_", "coverage")):
        return f"{x:.0%}" if abs(x) >= 0.1 else f"{x:.1%}", f"{x:.6g}"
    if float(x).is_integer():
        return f"{int(x):,}", f"{x:.6g}"
    return f"{x:.3g}", f"{x:.6g}"


def _header(col: str) -> str:
    names = {
        "n": "n",
        "n_tokens": "tokens",
        "first_call_share": "first call",
        "ath_median": "ATH median [95% CI]",
        "time_to_2x_median_s": "t→2x median",
        "dd_pre2x_median": "DD before 2x",
        "dd_overall_median": "DD overall",
        "ret_end_median": "return at end",
    }
    if col in names:
        return names[col]
    if col.startswith("hit") and col.endswith("_rate"):
        return f"hit {col[3:-5]} [95%]"
    return col.replace("_", " ")


def leaderboard_table(board: pd.DataFrame) -> dict[str, Any]:
    """Header and rows of the sortable leaderboard table (all columns of the board, grouped bounds)."""
    first = ["rank", "caller"]
    cols = first + [c for c in board.columns if c not in first and c not in _HIDDEN]
    rows = []
    for _, r in board.iterrows():
        rows.append([(*_cell(c, r[c], r), c) for c in cols])
    return {"cols": [(c, _header(c)) for c in cols], "rows": rows}


# ----------------------------------------------------------------------------------------- rendering


@lru_cache(maxsize=1)
def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("alertlab.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


# plotly.js's "cartesian" partial bundle (npm plotly.js-cartesian-dist-min, MIT, shipped in vendor/):
# a third of the full bundle, so the page parses its script in about a third of the time. Used when
# every figure's traces are in it and it is the plotly.js version the installed plotly writes for.
CARTESIAN_VERSION = "4.1.1"
CARTESIAN_TRACES = frozenset(
    {"bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour", "image", "pie"}
    | {"scatter", "scatterternary", "violin"}
)


def _bundled_plotlyjs_version() -> str:
    """The plotly.js version the installed plotly ships (and writes figure JSON for)."""
    from importlib import resources

    head = (
        (resources.files("plotly") / "package_data" / "plotly.min.js").open("r", encoding="utf-8").read(200)
    )
    m = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", head)
    return m.group(1) if m else ""


def plotly_js_for(trace_types: set[str]) -> tuple[str, str]:
    """``(bundle name, script)``: the cartesian partial bundle when it can draw every trace type and
    matches the installed plotly's plotly.js version, else plotly's full bundle."""
    from importlib import resources

    if trace_types <= CARTESIAN_TRACES and _bundled_plotlyjs_version() == CARTESIAN_VERSION:
        f = resources.files("alertlab.report") / "vendor" / f"plotly-cartesian-{CARTESIAN_VERSION}.min.js"
        return "cartesian", f.read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs

    return "full", get_plotlyjs()


def _script_safe(text: str) -> str:
    """JSON/JS safe inside a <script> element (no closing tag or comment opener can appear)."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _figure_json(figs: dict[str, go.Figure]) -> str:
    """``{"template": <shared layout template>, "figs": {id: {data, layout}}}``: the (large) plotly
    template is stored once and re-attached to every layout by the page's glue."""
    out, template = {}, None
    for k, f in figs.items():
        d = json.loads(pio.to_json(f, validate=False))
        t = d["layout"].pop("template", None)
        template = template or t
        out[k] = d
    return json.dumps({"template": template, "figs": out}, separators=(",", ":"))


def render_report(sections: list[Section], path: str | Path, meta: dict[str, Any]) -> int:
    """Render ``sections`` to ``path`` (atomically); returns the number of figures embedded."""
    from markupsafe import Markup

    figs: dict[str, Any] = {}

    def add(fig: go.Figure) -> str:
        fid = f"fig{len(figs) + 1}"
        figs[fid] = fig
        return fid

    view = []
    for s in sections:
        blocks: list[dict[str, Any]] = []
        for b in s.blocks:
            if b.kind == "fig":
                blocks.append({"kind": "fig", "id": add(b.payload), "note": b.note, "half": b.half})
            elif b.kind == "panels":
                blocks.append(
                    {
                        "kind": "panels",
                        "box": f"{s.id}-panels",
                        "panels": [(label, [add(f) for f in fs]) for label, fs in b.payload],
                    }
                )
            elif b.kind == "table":
                df = b.payload
                blocks.append(
                    {
                        "kind": "table",
                        "title": b.title,
                        "cols": list(df.columns),
                        "rows": [[_fmt(v) for v in row] for row in df.itertuples(index=False)],
                    }
                )
            elif b.kind == "leaderboard":
                blocks.append({"kind": "leaderboard", "title": b.title, **leaderboard_table(b.payload)})
            else:
                blocks.append({"kind": b.kind, "title": b.title, "payload": b.payload})
        view.append({"id": s.id, "title": s.title, "explain": s.explain, "blocks": blocks})
    data = _figure_json(figs)
    page = (
        _env()
        .get_template(TEMPLATE)
        .render(
            sections=view,
            meta=meta,
            plotly_js=Markup(_script_safe(plotly_js_for({t.type for f in figs.values() for t in f.data})[1])),
            figdata=Markup(_script_safe(data)),
        )
    )
    with atomic_file(Path(path)) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return len(figs)
