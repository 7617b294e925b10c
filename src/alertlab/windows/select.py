"""Which alerts a run reads, and their windows from the path cache."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from alertlab.store import Home
from alertlab.windows.cache import CacheInfo, get_windows
from alertlab.windows.model import Windows
from alertlab.windows.spec import Selection, WindowSpec

NO_ALERTS = "no alerts match the selection (ingest alerts first, or widen --from/--to/--caller/--chain)"
"""The one line a run whose selection matches no alert fails with."""


def select_alerts(home: Home, selection: Selection | None = None) -> pd.DataFrame:
    """Alerts of the store matching ``selection``, sorted by (ts_ms, alert_id).

    ``is_first_call`` is computed over the whole store, so filtering by caller does not
    turn a caller's late calls into first calls.
    """
    from alertlab.ingest import load_alerts
    from alertlab.ingest.chains import normalize_chain

    sel = selection or Selection()
    a = load_alerts(home)
    if sel.date_from:
        a = a[a["ts_ms"] >= _day_ms(sel.date_from)]
    if sel.date_to:
        a = a[a["ts_ms"] < _day_ms(sel.date_to + dt.timedelta(days=1))]
    if sel.callers:
        wanted = {c.casefold() for c in sel.callers}
        a = a[a["caller"].str.casefold().isin(wanted)]
    if sel.chains:
        chains = {normalize_chain(c) or c.strip().lower() for c in sel.chains}
        a = a[a["chain"].isin(chains)]
    return a.sort_values(["ts_ms", "alert_id"], kind="stable").reset_index(drop=True)


def _day_ms(d: dt.date) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp() * 1000)


def load_windows(
    home: Home,
    selection: Selection | None = None,
    spec: WindowSpec | None = None,
    force: bool = False,
    progress: bool = False,
) -> tuple[Windows, CacheInfo]:
    """Windows of the selected alerts (path cache hit, or built once and cached)."""
    alerts = select_alerts(home, selection)
    if alerts.empty:
        raise ValueError(NO_ALERTS)
    return get_windows(home, alerts, spec or WindowSpec(), force=force, progress=progress)
