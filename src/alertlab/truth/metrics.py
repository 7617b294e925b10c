"""Baseline path metrics: what happened to the price after each alert, one Numba pass per window.

For every alert with a window (status ok or truncated) with entry price ``E`` (open of the entry
bar) and bars from the entry bar on. Windows may mix bar durations (5-minute bars, then hourly
ones) and have holes. Every time metric is ``ts - entry_ts`` of the bar where the event happens,
i.e. the *start* of the crossing bar, in seconds: its precision is that bar's duration (the
window's coarsest is ``resolution_s``). A no-trade bar (or a hole) is time passing at the last
traded price: its close is that price, so it never makes a new high or low.

- ``ath_mult`` = max(high) / E with the guarded highs (bad-tick guard, ``alertlab.windows.cut``);
  ``ath_mult_raw`` = the same with the highs as stored; ``time_to_ath_s`` = first bar reaching
  the (guarded) maximum.
- ``time_to_{2,3,4,5,10}x_s`` = first bar with high >= N * E (null if never).
- ``dd_overall`` = min(low) / E - 1.
- ``dd_initial`` = min(low) / E - 1 over the bars up to and including the first bar whose close > E
  (= ``dd_overall`` if no close ever exceeds E).
- ``dd_pre2x`` = min(low) / E - 1 up to and including the first 2x bar (null without 2x).
- ``time_underwater_pre2x_s`` = time before the 2x bar spent with the last close < E: the sum over
  the bars ``j`` before the 2x bar with close < E of ``ts[j+1] - ts[j]`` (a bar's close holds until
  the next bar opens).
- ``dd_after_2x`` = min(low strictly after the 2x bar) / (2E) - 1 (null without 2x or bar after it).
- ``dd_after_ath`` = min(low strictly after the ATH bar) / max(high) - 1 (null if the ATH bar is last).
- ``ret_end`` = last close / E - 1.

Alerts without a window (and windows with no bars or a non-positive entry) get null metrics. The kernel
writes into preallocated column-major outputs: float metrics NaN for null, time metrics int64 with
-1 for null.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa

from alertlab.windows.mapped import is_mapped, pass_groups
from alertlab.windows.model import OK, STATUS_NAMES, TRUNCATED, Windows

METRICS_VERSION = 2  # bump when a metric's definition changes (names the derived cache files)
MULTIPLES = (2, 3, 4, 5, 10)
_MULTS = np.array(MULTIPLES, dtype=np.float64)

FLOAT_METRICS: tuple[str, ...] = (
    "ath_mult",
    "ath_mult_raw",
    "dd_overall",
    "dd_initial",
    "dd_pre2x",
    "dd_after_2x",
    "dd_after_ath",
    "ret_end",
)
INT_METRICS: tuple[str, ...] = (
    "time_to_ath_s",
    "time_to_2x_s",
    "time_to_3x_s",
    "time_to_4x_s",
    "time_to_5x_s",
    "time_to_10x_s",
    "time_underwater_pre2x_s",
)
METRIC_COLUMNS: tuple[str, ...] = (
    "ath_mult",
    "ath_mult_raw",
    "time_to_ath_s",
    "time_to_2x_s",
    "time_to_3x_s",
    "time_to_4x_s",
    "time_to_5x_s",
    "time_to_10x_s",
    "dd_overall",
    "dd_initial",
    "dd_pre2x",
    "time_underwater_pre2x_s",
    "dd_after_2x",
    "dd_after_ath",
    "ret_end",
)
ID_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "caller",
    "chain",
    "token",
    "alert_ts",
    "entry_ts",
    "entry_price",
    "entry_lag_s",
    "status",
    "n_bars",
    "resolution_s",
    "coverage",
    "gap_share",
    "data_end_ts",
    "n_suspect_bars",
    "is_first_call",
)
BASELINE_COLUMNS: tuple[str, ...] = ID_COLUMNS + METRIC_COLUMNS

# row indices into the kernel outputs
F_ATH, F_ATH_RAW, F_DD, F_DD_INIT, F_DD_PRE2X, F_DD_AFTER2X, F_DD_AFTER_ATH, F_RET_END = range(8)
I_ATH, I_2X, I_3X, I_4X, I_5X, I_10X, I_UNDERWATER = range(7)
N_FLOAT, N_INT = len(FLOAT_METRICS), len(INT_METRICS)


@nb.njit(cache=True, nogil=True)
def _one_window(r, s, e, ts, high, low, close, high_raw, suspect, t0, entry, out_f, out_i):  # noqa: C901 (Numba kernel: every path metric in one pass per window)
    """Metrics of bars ``[s, e)`` into column ``r`` of the outputs (nulls pre-filled by caller).

    Memory traffic is the cost here: the loop streams ``high``, ``low`` and ``close`` only. ``ts``
    is read where something happens (a crossing, entering or leaving the underwater state) and
    ``high_raw`` only for windows with guarded bars (``suspect``; elsewhere it equals ``high``)."""
    mx = -np.inf  # running max(high) and its first bar
    j_mx = s
    mn = np.inf  # running min(low)
    mn_after_mx = np.inf  # min(low) strictly after the current max bar
    init_done = False
    mn_init = np.inf
    k = 0  # index of the next multiple to reach
    nxt = _MULTS[0] * entry
    j2 = -1  # the 2x bar
    mn_after2 = np.inf
    under = 0  # seconds with the last close < E, up to the start of the current underwater run
    uw_on = False  # the last close is < E (an underwater run is open since ts uw_t)
    uw_t = 0
    for j in range(s, e):
        h = high[j]
        lo = low[j]
        c = close[j]
        if lo < mn:
            mn = lo
        if j2 >= 0 and lo < mn_after2:
            mn_after2 = lo
        if h > mx:
            mx = h
            j_mx = j
            mn_after_mx = np.inf
        elif lo < mn_after_mx:
            mn_after_mx = lo
        if not init_done and c > entry:
            init_done = True
            mn_init = mn
        if h >= nxt:
            if k == 0:
                j2 = j
                out_f[F_DD_PRE2X, r] = mn / entry - 1.0
                out_i[I_UNDERWATER, r] = under + (ts[j] - uw_t if uw_on else 0)
            while k < _MULTS.shape[0] and h >= _MULTS[k] * entry:
                out_i[I_2X + k, r] = ts[j] - t0
                k += 1
            nxt = _MULTS[k] * entry if k < _MULTS.shape[0] else np.inf
        if c < entry:  # underwater runs, telescoped: a run from bar i to bar m adds ts[m + 1] - ts[i]
            if not uw_on:
                uw_on = True
                uw_t = ts[j]
        elif uw_on:
            under += ts[j] - uw_t
            uw_on = False
    mx_raw = mx
    if suspect > 0:
        for j in range(s, e):
            if high_raw[j] > mx_raw:
                mx_raw = high_raw[j]
    out_f[F_ATH, r] = mx / entry
    out_f[F_ATH_RAW, r] = mx_raw / entry
    out_i[I_ATH, r] = ts[j_mx] - t0
    out_f[F_DD, r] = mn / entry - 1.0
    out_f[F_DD_INIT, r] = (mn_init if init_done else mn) / entry - 1.0
    if j2 >= 0 and j2 < e - 1:
        out_f[F_DD_AFTER2X, r] = mn_after2 / (2.0 * entry) - 1.0
    if j_mx < e - 1:
        out_f[F_DD_AFTER_ATH, r] = mn_after_mx / mx - 1.0
    out_f[F_RET_END, r] = close[e - 1] / entry - 1.0


@nb.njit(cache=True, nogil=True)
def _fill(
    r, a, offsets, ts, high, low, close, high_raw, n_suspect, entry_ts, entry_price, status, out_f, out_i
):
    for q in range(out_f.shape[0]):
        out_f[q, r] = np.nan
    for q in range(out_i.shape[0]):
        out_i[q, r] = -1
    s = offsets[a]
    e = offsets[a + 1]
    entry = entry_price[a]
    if (status[a] != OK and status[a] != TRUNCATED) or e <= s or not (entry > 0.0):
        return
    _one_window(r, s, e, ts, high, low, close, high_raw, n_suspect[a], entry_ts[a], entry, out_f, out_i)


@nb.njit(cache=True, nogil=True)
def metrics_kernel(
    offsets, ts, high, low, close, high_raw, n_suspect, entry_ts, entry_price, status, alert_idx, out_f, out_i
):
    """Single-thread kernel: metrics of alerts ``alert_idx`` into columns ``0..m-1`` of the outputs.

    ``out_f`` is float64 ``(N_FLOAT, m)`` in FLOAT_METRICS order (NaN = null); ``out_i`` int64
    ``(N_INT, m)`` in INT_METRICS order (-1 = null). One pass over each window's bars.
    """
    for r in range(alert_idx.shape[0]):
        _fill(
            r,
            alert_idx[r],
            offsets,
            ts,
            high,
            low,
            close,
            high_raw,
            n_suspect,
            entry_ts,
            entry_price,
            status,
            out_f,
            out_i,
        )


@nb.njit(cache=True, parallel=True, nogil=True)
def metrics_kernel_parallel(
    offsets, ts, high, low, close, high_raw, n_suspect, entry_ts, entry_price, status, alert_idx, out_f, out_i
):
    """Same as :func:`metrics_kernel`, alerts spread over threads with ``prange``."""
    for r in nb.prange(alert_idx.shape[0]):
        _fill(
            r,
            alert_idx[r],
            offsets,
            ts,
            high,
            low,
            close,
            high_raw,
            n_suspect,
            entry_ts,
            entry_price,
            status,
            out_f,
            out_i,
        )


def compute_metrics(
    w: Windows, alert_idx: np.ndarray | None = None, parallel: bool = False
) -> dict[str, np.ndarray]:
    """Metrics of every alert (or of ``alert_idx``), keyed by METRIC_COLUMNS in that order.

    Float columns carry NaN and ``time_*`` columns (int64) carry -1 for null. ``parallel`` uses the
    prange kernel (worth it only on many cores with the machine otherwise idle).
    """
    idx = (
        np.arange(w.n, dtype=np.int64)
        if alert_idx is None
        else np.ascontiguousarray(alert_idx, dtype=np.int64)
    )
    if idx.size and (idx.min() < 0 or idx.max() >= w.n):
        raise IndexError(f"alert_idx out of range for {w.n} alerts")
    m = idx.shape[0]
    out_f = np.empty((N_FLOAT, m), dtype=np.float64)
    out_i = np.empty((N_INT, m), dtype=np.int64)
    kernel = metrics_kernel_parallel if parallel else metrics_kernel
    offsets = np.ascontiguousarray(w.offsets, dtype=np.int64)
    args = (
        offsets,
        np.ascontiguousarray(w.ts, dtype=np.int64),
        np.ascontiguousarray(w.high, dtype=np.float64),
        np.ascontiguousarray(w.low, dtype=np.float64),
        np.ascontiguousarray(w.close, dtype=np.float64),
        np.ascontiguousarray(w.high_raw, dtype=np.float64),
        np.ascontiguousarray(w.n_suspect, dtype=np.int64),
        np.ascontiguousarray(w.entry_ts, dtype=np.int64),
        np.ascontiguousarray(w.entry_price, dtype=np.float64),
        np.ascontiguousarray(w.status, dtype=np.int8),
    )
    # memory-mapped windows (the path cache) beyond the budget: passes of at most bars_per_pass()
    # bars in storage order, their pages released after each; windows in RAM: one pass
    groups = pass_groups(offsets, idx) if is_mapped(args[1]) else None
    if groups is None:
        kernel(*args, idx, out_f, out_i)
    else:
        for pos in groups:
            f = np.empty((N_FLOAT, pos.shape[0]), dtype=np.float64)
            i = np.empty((N_INT, pos.shape[0]), dtype=np.int64)
            kernel(*args, np.ascontiguousarray(idx[pos]), f, i)
            out_f[:, pos], out_i[:, pos] = f, i
            w.release_pages()
    cols = {name: out_f[q] for q, name in enumerate(FLOAT_METRICS)}
    cols.update({name: out_i[q] for q, name in enumerate(INT_METRICS)})
    return {name: cols[name] for name in METRIC_COLUMNS}


def _strings(a: np.ndarray) -> pa.Array:
    return pa.array([None if x is None else str(x) for x in a], type=pa.string())


def baseline_table(w: Windows, parallel: bool = False) -> pa.Table:
    """Per-alert baseline table, columns exactly BASELINE_COLUMNS, one row per alert (ok or not).

    ``alert_ts`` is ``timestamp[ms, UTC]``, ``entry_ts`` and ``data_end_ts`` ``timestamp[s, UTC]``
    (null when there is no entry bar / no data), ``entry_price`` null when NaN, ``entry_lag_s`` null
    without an entry bar, ``status`` the status name (ok, missing, stale, bad_entry, truncated),
    ``resolution_s`` null for an empty window, ``gap_share`` null without a window, metrics null where
    undefined (``time_*`` int64).
    """
    met = compute_metrics(w, parallel=parallel)
    entry_ts = np.asarray(w.entry_ts, dtype=np.int64)
    entry_price = np.asarray(w.entry_price, dtype=np.float64)
    lag = np.asarray(w.entry_lag_s, dtype=np.int64)
    res = np.asarray(w.resolution_s, dtype=np.int64)
    gap = np.asarray(w.gap_share, dtype=np.float64)
    dend = np.asarray(w.data_end_ts, dtype=np.int64)
    arrays = {
        "alert_id": _strings(w.alert_id),
        "caller": _strings(w.caller),
        "chain": _strings(w.chain),
        "token": _strings(w.token),
        "alert_ts": pa.array(np.asarray(w.alert_ts_ms, dtype=np.int64), type=pa.timestamp("ms", tz="UTC")),
        "entry_ts": pa.array(entry_ts, type=pa.timestamp("s", tz="UTC"), mask=entry_ts == 0),
        "entry_price": pa.array(entry_price, type=pa.float64(), mask=np.isnan(entry_price)),
        "status": pa.array(
            np.asarray(STATUS_NAMES, dtype=object)[np.asarray(w.status)].tolist(), type=pa.string()
        ),
        "entry_lag_s": pa.array(lag, type=pa.int64(), mask=lag < 0),
        "n_bars": pa.array(np.asarray(w.n_bars, dtype=np.int64), type=pa.int64()),
        "resolution_s": pa.array(res, type=pa.int64(), mask=res <= 0),
        "coverage": pa.array(np.asarray(w.coverage, dtype=np.float64), type=pa.float64()),
        "gap_share": pa.array(gap, type=pa.float64(), mask=np.isnan(gap)),
        "data_end_ts": pa.array(dend, type=pa.timestamp("s", tz="UTC"), mask=dend <= 0),
        "n_suspect_bars": pa.array(np.asarray(w.n_suspect, dtype=np.int64), type=pa.int64()),
        "is_first_call": pa.array(np.asarray(w.is_first_call, dtype=bool), type=pa.bool_()),
    }
    for name in METRIC_COLUMNS:
        v = met[name]
        if v.dtype == np.int64:
            arrays[name] = pa.array(v, type=pa.int64(), mask=v < 0)
        else:
            arrays[name] = pa.array(v, type=pa.float64(), mask=np.isnan(v))
    return pa.table([arrays[c] for c in BASELINE_COLUMNS], names=list(BASELINE_COLUMNS))
