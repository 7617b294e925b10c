"""The candle-store format: one place that says where a token's bars live and how they are laid out.

``<home>/candles/<chain>/b<NN>.parquet``, bucket ``NN = crc32(token) % 64``, rows sorted by
``(chain, token, interval_s, ts)``. Ingest writes this format; the window stage reads it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from alertlab.store.home import Home

N_BUCKETS = 64
PRICES = ("open", "high", "low", "close")
VALUES = (*PRICES, "volume")
STORE_SCHEMA = pa.schema(
    [("chain", pa.string()), ("token", pa.string()), ("interval_s", pa.int32()), ("ts", pa.int64())]
    + [(c, pa.float64()) for c in VALUES]
)
#: bar ts < 2**34 s (year 2514): a token code above it makes one sortable int64 key per (token, ts)
KEY_SHIFT = np.int64(1) << np.int64(34)


def bucket_of(token: str) -> int:
    """Store bucket of a (normalised) token: ``zlib.crc32(token.encode()) % 64``."""
    return zlib.crc32(token.encode()) % N_BUCKETS


def bucket_file(home: Home, chain: str, bucket: int) -> Path:
    """Path of one bucket file of ``chain``."""
    return home.candles_dir / chain / f"b{bucket:02d}.parquet"


def candle_bucket_path(home: Home, chain: str, token: str) -> Path:
    """``<home>/candles/<chain>/b<NN>.parquet`` holding ``token``'s bars (chain/token normalised)."""
    return bucket_file(home, chain, bucket_of(token))
