"""Why alerts are not usable, in one line: the status counts and what to try.

Every run that reads windows (baseline, bt, optimize) shows :func:`status_counts` and, when no
alert is usable or most are not, the one-line :func:`diagnose` message, so a run never comes back
silently empty.
"""

from __future__ import annotations

import numpy as np

from alertlab.windows.model import BAD_ENTRY, MISSING, STALE, TRUNCATED, Windows


def _dur(s: float) -> str:
    s = float(s)
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def status_counts(w: Windows, min_coverage: float) -> dict[str, int]:
    """``ok, missing, stale, bad_entry, truncated, below_min_coverage, usable`` (see :meth:`Windows.status_counts`)."""
    return w.status_counts(min_coverage)


def reasons(w: Windows, min_coverage: float, max_entry_lag_s: int) -> list[tuple[int, str]]:
    """``(count, text)`` per cause of unusable alerts, largest first."""
    st = np.asarray(w.status)
    end = np.asarray(w.data_end_ts, np.int64)
    call = -(-np.asarray(w.alert_ts_ms, np.int64) // 1000)
    lag = np.asarray(w.entry_lag_s, np.int64)
    cov = np.asarray(w.coverage, np.float64)
    out: list[tuple[int, str]] = []
    miss = st == MISSING
    none = miss & (end <= 0)
    if none.any():
        out.append(
            (
                int(none.sum()),
                "missing, the store has no candles for these tokens "
                "(ingest candle files, or alertlab fetch candles)",
            )
        )
    after = miss & (end > 0)
    if after.any():
        gap = np.median(call[after] - end[after])
        out.append(
            (
                int(after.sum()),
                f"missing, the call comes after the token's candles end (median "
                f"{_dur(gap)} later; fetch newer candles)",
            )
        )
    stale = st == STALE
    dead = stale & (lag < 0)
    if dead.any():
        out.append(
            (
                int(dead.sum()),
                "stale, no traded bar after the call (only zero-volume filler: the token "
                "stopped trading, or the source reports no volume)",
            )
        )
    late = stale & (lag >= 0)
    if late.any():
        med = np.median(lag[late])
        out.append(
            (
                int(late.sum()),
                f"stale, the first traded bar opens more than {max_entry_lag_s} s (or its own "
                f"duration) after the call (median {_dur(med)}: sparse or flat no-trade data, "
                f"or the data starts after the call; see --max-entry-lag-s)",
            )
        )
    bad = st == BAD_ENTRY
    if bad.any():
        out.append(
            (int(bad.sum()), "bad_entry, the entry bar's open is not a positive price (see alertlab quality)")
        )
    low = (st == TRUNCATED) & (cov < min_coverage - 1e-12)
    if low.any():
        h = w.horizon_s / 3600
        out.append(
            (
                int(low.sum()),
                f"truncated below --min-coverage {min_coverage:g}, the token's data ends before "
                f"the {h:g} h horizon (median coverage {np.median(cov[low]):.0%}; lower "
                f"--min-coverage or --horizon-hours, or fetch newer candles)",
            )
        )
    out.sort(key=lambda t: -t[0])
    return out


def diagnose(w: Windows, min_coverage: float, max_entry_lag_s: int, threshold: float = 0.5) -> str | None:
    """One line when no alert is usable or more than ``threshold`` of them are not; else None.

    E.g. ``0 of 62 alerts usable: 62 missing, the store has no candles for these tokens (…)``.
    """
    n = w.n
    use = int(w.usable(min_coverage).sum())
    if n == 0:
        return "0 alerts selected (ingest alerts first, or widen --from/--to/--caller/--chain)"
    if use > 0 and (n - use) <= threshold * n:
        return None
    parts = [f"{k} {text}" for k, text in reasons(w, min_coverage, max_entry_lag_s)]
    return f"{use} of {n} alerts usable: " + "; ".join(parts)
