"""Cheap integrity checks of a path-cache entry before it is served (never a crash on a damaged one).

A cache entry is memory-mapped and handed to Numba kernels that trust its offsets; a damaged
entry (a crash of the disk, a stray write, a truncated copy) must therefore never be served.
:func:`check_entry` costs O(number of alerts), not O(bars):

* ``meta.json`` parses and names the counts and digests;
* every bar array (``ts``, ``open`` … ``volume``) is a 1-D ``.npy`` of the expected dtype whose
  header length equals the entry's bar count and whose file size is exactly header + data (a
  truncated file would fault when paged in);
* ``offsets.npy`` is int64 with ``n_alerts + 1`` values, starts at 0, never decreases and ends at
  the bar count, and its bytes match the BLAKE2 digest stored at build time;
* ``alerts.parquet`` has ``n_alerts`` rows and matches its stored digest.

:func:`entry_ok` runs them and, on a problem, prints one warning line (the caller rebuilds the
entry). ``alertlab cache verify`` additionally re-hashes the bar arrays.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

BAR_DTYPES = {
    "ts": np.int64,
    "open": np.float64,
    "high": np.float64,
    "low": np.float64,
    "close": np.float64,
    "volume": np.float64,
}


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def _npy_header(path: Path) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header, without mapping the data."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if fortran:
            raise ValueError("Fortran-ordered array")
        return shape, dtype, fh.tell()


def check_entry(path: Path) -> str | None:
    """``None`` when the entry at ``path`` is sound, else what is wrong (one short phrase)."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        n_alerts, n_bars = int(meta["n_alerts"]), int(meta["n_bars"])
        digests = meta["digests"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"meta.json unreadable ({type(exc).__name__})"
    for name, dt in BAR_DTYPES.items():
        problem = _check_bar_array(path / f"{name}.npy", np.dtype(dt), n_bars)
        if problem:
            return problem
    return _check_offsets(path / "offsets.npy", digests, n_alerts, n_bars) or _check_alerts(
        path / "alerts.parquet", digests, n_alerts
    )


def _check_bar_array(f: Path, dt: np.dtype, n_bars: int) -> str | None:
    """A bar array: readable header, the expected dtype and length, and exactly that many bytes."""
    try:
        shape, dtype, start = _npy_header(f)
    except (OSError, ValueError) as exc:
        return f"{f.name} unreadable ({exc})"
    if dtype != dt or shape != (n_bars,):
        return f"{f.name} holds {dtype}{list(shape)}, expected {dt}[{n_bars}]"
    if f.stat().st_size != start + n_bars * dtype.itemsize:
        return f"{f.name} has {f.stat().st_size:,} bytes, expected {start + n_bars * dtype.itemsize:,}"
    return None


def _check_offsets(f: Path, digests: dict, n_alerts: int, n_bars: int) -> str | None:
    """The window offsets: their checksum, int64[n_alerts + 1], monotone from 0 to n_bars."""
    try:
        if digests.get(f.name) and _digest(f) != digests[f.name]:
            return f"{f.name} does not match its stored checksum"
        off = np.load(f, mmap_mode=None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        return f"{f.name} unreadable ({exc})"
    if off.dtype != np.int64 or off.shape != (n_alerts + 1,):
        return f"{f.name} holds {off.dtype}{list(off.shape)}, expected int64[{n_alerts + 1}]"
    if off[0] != 0 or off[-1] != n_bars or (len(off) > 1 and bool(np.any(np.diff(off) < 0))):
        return f"{f.name} is not a monotone 0…n_bars sequence"
    return None


def _check_alerts(f: Path, digests: dict, n_alerts: int) -> str | None:
    """The per-alert table: its checksum and one row per alert."""
    try:
        if digests.get(f.name) and _digest(f) != digests[f.name]:
            return f"{f.name} does not match its stored checksum"
        if pq.ParquetFile(f).metadata.num_rows != n_alerts:
            return f"{f.name} does not hold {n_alerts} rows"
    except (OSError, ValueError) as exc:
        return f"{f.name} unreadable ({type(exc).__name__})"
    return None


def entry_ok(path: Path) -> bool:
    """True when the entry is sound; otherwise warn (one line on stderr) so the caller rebuilds it."""
    problem = check_entry(path)
    if problem is None:
        return True
    print(
        f"warning: path-cache entry {path.name} is damaged ({problem}); rebuilding it",
        file=sys.stderr,
        flush=True,
    )
    return False
