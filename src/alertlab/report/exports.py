"""Parquet exports: every file carries key/value metadata (alertlab version, run config, fingerprint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from alertlab.store import atomic_dir, atomic_file
from alertlab.windows.model import Windows

META_KEY = b"alertlab"


def _with_meta(table: pa.Table, provenance: dict) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    return table.replace_schema_metadata(meta)


def read_provenance(path: str | Path) -> dict:
    """The alertlab metadata of an exported Parquet file."""
    md = pq.read_schema(path).metadata or {}
    return json.loads(md[META_KEY])


def write_table(table: pa.Table, path: str | Path, provenance: dict) -> Path:
    """Write one Parquet file atomically with provenance metadata."""
    path = Path(path)
    with atomic_file(path) as tmp:
        pq.write_table(_with_meta(table, provenance), tmp)
    return path


def write_partitioned(
    table: pa.Table,
    directory: str | Path,
    by: str,
    provenance: dict,
    extra: dict[str, pa.Table] | None = None,
) -> Path:
    """Write ``table`` as a hive-partitioned dataset under ``directory`` (replaced atomically).

    ``extra`` files (name → table) are written beside the partitions, e.g. ``leaderboard.parquet``.
    """
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        for name, t in (extra or {}).items():
            pq.write_table(_with_meta(t, provenance), tmp / name)
        part = pa.schema([pa.field(by, table.schema.field(by).type)])
        ds.write_dataset(
            _with_meta(table, provenance),
            tmp / "alerts",
            format="parquet",
            partitioning=ds.partitioning(part, flavor="hive"),
            existing_data_behavior="overwrite_or_ignore",
            file_options=ds.ParquetFileFormat().make_write_options(),
        )
    return directory


def window_batches(w: Windows, max_bars: int = 2_000_000) -> Iterator[pa.RecordBatch]:
    """The bars of every window (ok or truncated) as record batches of at most ~``max_bars`` rows.

    Columns: ``alert_id, bar_index, ts, dur_s, open, high, low, close, volume, high_raw, low_raw,
    high_mult, low_mult, close_mult`` (``high``/``low`` guarded, ``*_raw`` as stored; multiples of
    the entry price E). Memory stays bounded by ``max_bars``.
    """
    # filled in by Windows.__post_init__ when not given
    assert w.dur is not None and w.high_raw is not None and w.low_raw is not None
    counts = np.diff(w.offsets)
    i, n = 0, w.n
    while i < n:
        j, tot = i, 0
        while j < n and (tot == 0 or tot + counts[j] <= max_bars):
            tot += int(counts[j])
            j += 1
        s, e = int(w.offsets[i]), int(w.offsets[j])
        c = counts[i:j]
        owner = np.repeat(np.arange(i, j), c)
        bar_index = np.arange(e - s) - np.repeat(w.offsets[i:j] - s, c)
        ep = w.entry_price[owner]
        hi, lo, cl = (np.asarray(getattr(w, k)[s:e]) for k in ("high", "low", "close"))
        yield pa.record_batch(
            {
                "alert_id": pa.array(w.alert_id[owner].astype(str), pa.string()),
                "bar_index": pa.array(bar_index.astype(np.int32)),
                "ts": pa.array(np.asarray(w.ts[s:e]).astype("datetime64[s]"), pa.timestamp("s", tz="UTC")),
                "dur_s": pa.array(np.asarray(w.dur[s:e]).astype(np.int64)),
                "open": np.asarray(w.open[s:e]),
                "high": hi,
                "low": lo,
                "close": cl,
                "volume": np.asarray(w.volume[s:e]),
                "high_raw": np.asarray(w.high_raw[s:e]),
                "low_raw": np.asarray(w.low_raw[s:e]),
                "high_mult": hi / ep,
                "low_mult": lo / ep,
                "close_mult": cl / ep,
            }
        )
        i = j


def write_windows(w: Windows, directory: str | Path, provenance: dict) -> tuple[Path, int]:
    """Write every window's bars as one Parquet dataset (several files, streamed)."""
    directory = Path(directory)
    n_rows = 0
    with atomic_dir(directory) as tmp:
        writer, part, rows_in_part = None, 0, 0
        for batch in window_batches(w):
            if writer is None:
                schema = batch.schema.with_metadata(
                    {META_KEY: json.dumps(provenance, sort_keys=True, default=str)}
                )
                writer = pq.ParquetWriter(tmp / f"part-{part:05d}.parquet", schema)
            writer.write_batch(batch)
            n_rows += batch.num_rows
            rows_in_part += batch.num_rows
            if rows_in_part >= 10_000_000:
                writer.close()
                writer, part, rows_in_part = None, part + 1, 0
        if writer is not None:
            writer.close()
        if n_rows == 0:
            schema = pa.schema(
                [
                    ("alert_id", pa.string()),
                    ("bar_index", pa.int32()),
                    ("ts", pa.timestamp("s", tz="UTC")),
                    ("dur_s", pa.int64()),
                ]
                + [
                    (k, pa.float64())
                    for k in (
                        "open",
                        "high",
                        "low",
                        "close",
                        "volume",
                        "high_raw",
                        "low_raw",
                        "high_mult",
                        "low_mult",
                        "close_mult",
                    )
                ]
            )
            schema = schema.with_metadata({META_KEY: json.dumps(provenance, sort_keys=True, default=str)})
            pq.write_table(schema.empty_table(), tmp / "part-00000.parquet")
    return directory, n_rows
