"""Times of any common spelling → int64 epoch milliseconds (UTC), vectorised.

Rules:

* Numbers (or numeric strings) are epochs, unit by magnitude: ``|x| >= 1e17`` nanoseconds,
  ``>= 1e14`` microseconds, ``>= 1e11`` milliseconds, else seconds (fractions kept to the ms).
* Other strings are ISO-8601 (``2025-12-15T12:42:42Z``, ``2025-12-15 23:42:42+11``,
  ``...+05:30``, ``2025-12-15``); a string without an offset (naive) is taken as UTC.
* Results outside [2000-01-01, 2100-01-01) are errors (out of range), as are empty values and
  unparsable strings. Every value gets an error code, never a silent default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

OK, EMPTY, UNPARSABLE, OUT_OF_RANGE = 0, 1, 2, 3
REASONS = {
    EMPTY: "missing time",
    UNPARSABLE: "unparsable time",
    OUT_OF_RANGE: "time out of range (not 2000-2099)",
}
MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
_NUMERIC_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _numbers_to_ms(x: np.ndarray) -> np.ndarray:
    """Epoch numbers (float64 or int64) → ms as float64 (NaN stays NaN)."""
    if x.dtype.kind in "iu":
        xi = x.astype(np.int64)
        a = np.abs(xi)
        out = np.where(
            a >= 10**17,
            xi // 1_000_000,
            np.where(a >= 10**14, xi // 1_000, np.where(a >= 10**11, xi, xi * 1000)),
        )
        return out.astype(np.float64)
    xf = x.astype(np.float64)
    a = np.abs(xf)
    with np.errstate(invalid="ignore"):
        return np.where(a >= 1e17, xf / 1e6, np.where(a >= 1e14, xf / 1e3, np.where(a >= 1e11, xf, xf * 1e3)))


def _finish(ms: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bad_range = (err == OK) & ~((ms >= MIN_MS) & (ms < MAX_MS))
    err = np.where(bad_range, OUT_OF_RANGE, err).astype(np.int8)
    out = np.where(err == OK, np.rint(np.nan_to_num(ms, nan=0.0)), 0).astype(np.int64)
    return out, err


def _strings_to_ms(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    s = s.astype("string").str.strip()
    n = len(s)
    ms = np.full(n, np.nan)
    err = np.full(n, UNPARSABLE, np.int8)
    empty = (s.isna() | (s == "")).to_numpy(bool)
    err[empty] = EMPTY
    numeric = s.str.match(_NUMERIC_RE).fillna(False).to_numpy(bool) & ~empty
    if numeric.any():
        vals = pd.to_numeric(s[numeric], errors="coerce").to_numpy(np.float64)
        ms[numeric] = _numbers_to_ms(vals)
        err[numeric] = np.where(np.isfinite(ms[numeric]), OK, UNPARSABLE)
    iso = ~numeric & ~empty
    if iso.any():
        dt = pd.to_datetime(s[iso], format="ISO8601", utc=True, errors="coerce")
        good = dt.notna().to_numpy(bool)
        vals = np.full(int(iso.sum()), np.nan)
        vals[good] = dt[good].dt.as_unit("ms").astype("int64").to_numpy(np.int64).astype(np.float64)
        ms[iso] = vals
        err[iso] = np.where(good, OK, UNPARSABLE)
    return ms, err


def to_epoch_ms(values: object) -> tuple[np.ndarray, np.ndarray]:
    """Parse times to ``(ms int64, err int8)``; ``err`` is OK/EMPTY/UNPARSABLE/OUT_OF_RANGE, ms=0 on error.

    Accepts a pandas Series, numpy array, pyarrow (chunked) array or a sequence; numeric dtypes
    are epochs, timestamp dtypes are converted (naive = UTC), strings/objects are parsed per value.
    """
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
            values = pd.Series(values.to_pandas())  # naive timestamps are localised to UTC below
        elif pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            arr = values.to_numpy(zero_copy_only=False)
            if pa.types.is_integer(values.type) and values.null_count:
                arr = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
            values = arr
        else:
            values = values.to_pandas()
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        ms = _numbers_to_ms(values)
        err = np.where(np.isfinite(ms), OK, EMPTY).astype(np.int8)
        return _finish(ms, err)
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is None:
            s = s.dt.tz_localize("UTC")
        good = s.notna().to_numpy(bool)
        ms = np.full(len(s), np.nan)
        ms[good] = s[good].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy().astype(np.float64)
        return _finish(ms, np.where(good, OK, EMPTY).astype(np.int8))
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        arr = s.to_numpy(np.float64, na_value=np.nan) if s.hasnans else s.to_numpy()
        ms = _numbers_to_ms(np.asarray(arr))
        return _finish(ms, np.where(np.isfinite(ms), OK, EMPTY).astype(np.int8))
    ms, err = _strings_to_ms(s)
    return _finish(ms, err)


def reason_of(err: int) -> str:
    """Human reason for an error code."""
    return REASONS[int(err)]
