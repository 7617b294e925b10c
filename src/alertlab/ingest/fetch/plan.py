"""Which candles a set of alerts needs: per token, merged time ranges, minus what is already fetched.

For an alert at ``t`` (epoch s) the needed range is ``[t − pre, t + lag + H + tf)`` rounded outwards
to the timeframe ``tf``: the window's entry bar opens at most ``lag`` after the call (the window
stage's entry rule) and the window then runs ``H``; one more bar makes room for the entry bar
itself. Ranges of one token are merged when they overlap or touch (a gap between two alerts' ranges
is not fetched).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

Range = tuple[int, int]


@dataclass
class TokenPlan:
    """One token's needed ranges (half-open epoch-second intervals) and its pool hint."""

    chain: str
    token: str
    ranges: list[Range]
    n_alerts: int
    pool_hint: str | None = None
    todo: list[Range] = field(default_factory=list)  # ranges still to fetch (after subtraction)


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Union of half-open ranges, sorted; overlapping or touching ranges become one."""
    out: list[list[int]] = []
    for s, e in sorted((int(s), int(e)) for s, e in ranges if e > s):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def subtract(ranges: Iterable[Range], covered: Iterable[Range]) -> list[Range]:
    """The parts of ``ranges`` not inside ``covered`` (both unions of half-open ranges)."""
    cov = merge(covered)
    out: list[Range] = []
    for s, e in merge(ranges):
        cur = s
        for cs, ce in cov:
            if ce <= cur or cs >= e:
                continue
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out


def needed_ranges(alerts: pd.DataFrame, tf_s: int, pre_s: int, lag_s: int, horizon_s: int) -> list[TokenPlan]:
    """Per (chain, token) of ``alerts`` (columns chain, token, ts_ms[, pool]), the merged needed ranges.

    The pool hint of a token is the one given on its latest alert that has one.
    """
    if alerts.empty:
        return []
    t = alerts["ts_ms"].to_numpy(np.int64) // 1000
    start = np.floor_divide(t - pre_s, tf_s) * tf_s
    end = -np.floor_divide(-(t + lag_s + horizon_s + tf_s), tf_s) * tf_s
    df = pd.DataFrame(
        {
            "chain": alerts["chain"].to_numpy(),
            "token": alerts["token"].to_numpy(),
            "start": start,
            "end": end,
            "ts": t,
        }
    )
    if "pool" in alerts.columns:
        df["pool"] = alerts["pool"].to_numpy()
    plans = []
    for (chain, token), g in df.groupby(["chain", "token"], sort=True):
        hint = None
        if "pool" in g.columns:
            hints = g.loc[g["pool"].notna() & (g["pool"].astype(str).str.strip() != ""), ["ts", "pool"]]
            if len(hints):
                hint = str(hints.sort_values("ts", kind="stable")["pool"].iloc[-1]).strip()
        plans.append(
            TokenPlan(str(chain), str(token), merge(zip(g["start"], g["end"], strict=True)), len(g), hint)
        )
    return plans
