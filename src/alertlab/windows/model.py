"""Alert windows: the ragged per-alert bar arrays every later step reads.

A :class:`Windows` holds, for ``n`` alerts, one window of bars each, stored
ragged: bars of alert ``i`` are ``flat[offsets[i]:offsets[i+1]]``. Non-ok
alerts (``status != OK``) have empty windows. Times are epoch seconds (UTC),
prices float64. Kernels receive the plain arrays, never this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OK, MISSING, STALE, BAD_ENTRY = 0, 1, 2, 3
STATUS_NAMES = ("ok", "missing", "stale", "bad_entry")


@dataclass(frozen=True)
class Windows:
    """Per-alert windows cut from the candle store (see ``alertlab.windows.cache``).

    Per-alert arrays (length ``n``): ``alert_id, caller, chain, token`` (object str),
    ``alert_ts_ms`` (int64 epoch ms), ``is_first_call`` (bool), ``status`` (int8, one of
    OK/MISSING/STALE/BAD_ENTRY), ``entry_ts`` (int64 epoch s, the entry bar's ts; 0 when
    missing), ``entry_price`` (float64, entry bar open; NaN when missing).
    Ragged bar arrays: ``offsets`` (int64, n+1) and flat ``ts`` (int64 epoch s, bar open),
    ``open, high, low, close, volume`` (float64).
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
    fingerprint: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.alert_id.shape[0])

    @property
    def n_bars(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def ok(self) -> np.ndarray:
        return self.status == OK

    @property
    def coverage(self) -> np.ndarray:
        return self.n_bars / (self.horizon_s / self.interval_s)

    def bars(self, i: int) -> dict[str, np.ndarray]:
        """The bars of alert ``i`` as a dict of arrays (views, no copy)."""
        s, e = int(self.offsets[i]), int(self.offsets[i + 1])
        return {k: getattr(self, k)[s:e] for k in ("ts", "open", "high", "low", "close", "volume")}

    def status_names(self) -> np.ndarray:
        return np.asarray(STATUS_NAMES, dtype=object)[self.status]


def time_order(w: Windows, alert_idx: np.ndarray | None = None) -> np.ndarray:
    """Alert indices sorted by (alert_ts_ms, alert_id): the one alert order of backtests and studies."""
    idx = np.arange(w.n, dtype=np.int64) if alert_idx is None else np.asarray(alert_idx, dtype=np.int64)
    ts = np.asarray(w.alert_ts_ms, dtype=np.int64)[idx]
    ids = np.asarray(w.alert_id, dtype=object)[idx].astype(str)
    return idx[np.lexsort((ids, ts))]
