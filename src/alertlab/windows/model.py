"""Alert windows: the ragged per-alert bar arrays every later step reads.

A :class:`Windows` holds, for ``n`` alerts, one window of bars each, stored
ragged: bars of alert ``i`` are ``flat[offsets[i]:offsets[i+1]]``. Alerts without an entry
(missing, stale, bad_entry) have empty windows; ok and truncated alerts keep their bars. Times are
epoch seconds (UTC), prices float64. Kernels receive the plain arrays, never this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OK, MISSING, STALE, BAD_ENTRY, TRUNCATED = 0, 1, 2, 3, 4
STATUS_NAMES = ("ok", "missing", "stale", "bad_entry", "truncated")
DEFAULT_MIN_COVERAGE = 0.8
BAR_ARRAYS = ("ts", "dur", "open", "high", "low", "close", "volume", "high_raw", "low_raw")


@dataclass(frozen=True)
class Windows:
    """Per-alert windows cut from the candle store (see ``alertlab.windows.cache``).

    Per-alert arrays (length ``n``): ``alert_id, caller, chain, token`` (object str),
    ``alert_ts_ms`` (int64 epoch ms), ``is_first_call`` (bool), ``status`` (int8, one of
    OK/MISSING/STALE/BAD_ENTRY/TRUNCATED), ``entry_ts`` (int64 epoch s, the entry bar's open; 0 when
    none), ``entry_price`` (float64, entry bar open; NaN when none), ``entry_lag_s`` (entry bar open
    minus the call, s; -1 when no bar), ``resolution_s`` (coarsest bar of the window, s; 0 when
    empty), ``coverage`` (share of the horizon inside the token's known data), ``gap_share`` (share
    of that known part without any bar: quiet time), ``data_end_ts`` (end of the token's known data,
    epoch s; 0 when the token has no bars), ``n_suspect`` (bars of the window clamped by the
    bad-tick guard).

    Ragged bar arrays: ``offsets`` (int64, n+1) and flat ``ts`` (int64 epoch s, bar open), ``dur``
    (int64, bar duration s), ``open, high, low, close, volume`` (float64; ``high``/``low`` are the
    guarded values) and ``high_raw``/``low_raw`` (the extremes as stored, before the guard).
    ``interval_s`` is the requested aggregation interval, or, for native windows, the finest bar
    duration present (a nominal figure: per-bar durations are in ``dur``).
    """

    interval_s: int
    horizon_s: int
    alert_id: np.ndarray
    caller: np.ndarray
    chain: np.ndarray
    token: np.ndarray
    alert_ts_ms: np.ndarray
    is_first_call: np.ndarray
    status: np.ndarray
    entry_ts: np.ndarray
    entry_price: np.ndarray
    offsets: np.ndarray
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dur: np.ndarray | None = None
    high_raw: np.ndarray | None = None
    low_raw: np.ndarray | None = None
    entry_lag_s: np.ndarray | None = None
    resolution_s: np.ndarray | None = None
    coverage: np.ndarray | None = None
    gap_share: np.ndarray | None = None
    data_end_ts: np.ndarray | None = None
    n_suspect: np.ndarray | None = None
    fingerprint: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # windows built by hand (tests, synthetic data) get the derived arrays filled in
        n = int(self.alert_id.shape[0])
        nb = int(self.ts.shape[0])
        st = np.asarray(self.status)
        has = np.diff(np.asarray(self.offsets)) > 0
        fill = object.__setattr__
        if self.dur is None:
            fill(self, "dur", np.full(nb, int(self.interval_s), np.int64))
        if self.high_raw is None:
            fill(self, "high_raw", self.high)
        if self.low_raw is None:
            fill(self, "low_raw", self.low)
        if self.entry_lag_s is None:
            lag = np.where(
                has,
                np.asarray(self.entry_ts, np.int64) - (-(-np.asarray(self.alert_ts_ms, np.int64) // 1000)),
                -1,
            )
            fill(self, "entry_lag_s", lag.astype(np.int64))
        if self.resolution_s is None:
            fill(self, "resolution_s", np.where(has, int(self.interval_s), 0).astype(np.int64))
        if self.data_end_ts is None:
            end = np.zeros(n, np.int64)
            if nb:
                last = np.maximum(np.asarray(self.offsets)[1:] - 1, 0)
                end = np.where(has, np.asarray(self.ts)[last] + np.asarray(self.dur)[last], 0)
            fill(self, "data_end_ts", end.astype(np.int64))
        if self.coverage is None:
            fill(
                self, "coverage", np.where((st == OK) | (st == TRUNCATED), 1.0, 0.0) * np.where(has, 1.0, 0.0)
            )
        if self.gap_share is None:
            fill(self, "gap_share", np.where(has, 0.0, np.nan))
        if self.n_suspect is None:
            fill(self, "n_suspect", np.zeros(n, np.int64))

    @property
    def n(self) -> int:
        return int(self.alert_id.shape[0])

    @property
    def n_bars(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def ok(self) -> np.ndarray:
        return self.status == OK

    def usable(self, min_coverage: float = DEFAULT_MIN_COVERAGE) -> np.ndarray:
        """Alerts that count (leaderboard, backtests, grids, optimizer): ok windows and truncated
        windows whose coverage is at least ``min_coverage``."""
        st = np.asarray(self.status)
        cov = np.asarray(self.coverage, np.float64)
        return (st == OK) | ((st == TRUNCATED) & (cov >= min_coverage - 1e-12))

    def usable_idx(self, min_coverage: float = DEFAULT_MIN_COVERAGE) -> np.ndarray:
        """Indices of :meth:`usable` alerts (int64, storage order)."""
        return np.flatnonzero(self.usable(min_coverage)).astype(np.int64)

    def subset(self, idx: np.ndarray) -> Windows:
        """A new :class:`Windows` with alerts ``idx`` only (their bars copied, contiguous)."""
        idx = np.asarray(idx, np.int64)
        if idx.size == self.n and np.array_equal(idx, np.arange(self.n)):
            return self
        off = np.asarray(self.offsets)
        start, count = off[idx], off[idx + 1] - off[idx]
        from alertlab.windows.cache import gather

        flat = gather(start, count)
        per = {k: np.asarray(getattr(self, k))[idx] for k in _PER_ALERT}
        bars = {k: np.asarray(getattr(self, k))[flat] for k in BAR_ARRAYS}
        return Windows(
            interval_s=self.interval_s,
            horizon_s=self.horizon_s,
            offsets=np.concatenate([[0], np.cumsum(count)]).astype(np.int64),
            fingerprint=self.fingerprint,
            meta=dict(self.meta),
            **per,
            **bars,
        )

    def status_counts(self, min_coverage: float = DEFAULT_MIN_COVERAGE) -> dict[str, int]:
        """Alerts per status plus ``below_min_coverage`` (truncated, not usable) and ``usable``."""
        st = np.asarray(self.status)
        out = {name: int((st == code).sum()) for code, name in enumerate(STATUS_NAMES)}
        use = self.usable(min_coverage)
        out["below_min_coverage"] = int(((st == TRUNCATED) & ~use).sum())
        out["usable"] = int(use.sum())
        return out

    def bars(self, i: int) -> dict[str, np.ndarray]:
        """The bars of alert ``i`` as a dict of arrays (views, no copy)."""
        s, e = int(self.offsets[i]), int(self.offsets[i + 1])
        return {k: getattr(self, k)[s:e] for k in BAR_ARRAYS}

    def release_pages(self) -> int:
        """Drop the resident pages of memory-mapped bar arrays (see :mod:`alertlab.windows.mapped`)."""
        from alertlab.windows.mapped import release

        return release(getattr(self, k) for k in BAR_ARRAYS)

    def status_names(self) -> np.ndarray:
        return np.asarray(STATUS_NAMES, dtype=object)[self.status]


def time_order(w: Windows, alert_idx: np.ndarray | None = None) -> np.ndarray:
    """Alert indices sorted by (alert_ts_ms, alert_id): the one alert order of backtests and studies."""
    idx = np.arange(w.n, dtype=np.int64) if alert_idx is None else np.asarray(alert_idx, dtype=np.int64)
    ts = np.asarray(w.alert_ts_ms, dtype=np.int64)[idx]
    ids = np.asarray(w.alert_id, dtype=object)[idx].astype(str)
    return idx[np.lexsort((ids, ts))]


_PER_ALERT = (
    "alert_id",
    "caller",
    "chain",
    "token",
    "alert_ts_ms",
    "is_first_call",
    "status",
    "entry_ts",
    "entry_price",
    "entry_lag_s",
    "resolution_s",
    "coverage",
    "gap_share",
    "data_end_ts",
    "n_suspect",
)
