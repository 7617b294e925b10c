"""The workspace: one DuckDB catalog plus Parquet/array files, under one directory.

Layout::

    <home>/catalog.duckdb          alerts, ingest_log, rejects, candle_files, candle_quality, runs, results,
                                   fetch_ranges, fetch_status
    <home>/fetch/responses/<source>/   raw API responses, content-addressed by request (fetch cache)
    <home>/candles/<chain>/b<NN>.parquet   candle buckets, sorted by (chain, token, interval_s, ts)
    <home>/cache/windows/<fingerprint>/    path cache entries (memory-mappable .npy + alerts.parquet)
    <home>/studies/                        optuna storage
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

DEFAULT_HOME = "alertlab-data"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id VARCHAR PRIMARY KEY, caller VARCHAR NOT NULL, chain VARCHAR NOT NULL,
        token VARCHAR NOT NULL, ts_ms BIGINT NOT NULL, ticker VARCHAR, price_at_alert DOUBLE,
        mcap_at_alert DOUBLE, chat_id VARCHAR, message_id VARCHAR,
        source_file VARCHAR, source_row BIGINT, ingested_at TIMESTAMPTZ DEFAULT now(),
        caller_id VARCHAR, source VARCHAR, forwarded BOOLEAN, pool VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ingest_log (
        ingest_id VARCHAR, kind VARCHAR, source_file VARCHAR, file_sha256 VARCHAR,
        rows_read BIGINT, rows_accepted BIGINT, rows_rejected BIGINT, rows_duplicate BIGINT,
        rows_new BIGINT, details JSON, ingested_at TIMESTAMPTZ DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS rejects (
        ingest_id VARCHAR, kind VARCHAR, source_file VARCHAR, source_row BIGINT,
        reason VARCHAR, raw JSON, rejected_at TIMESTAMPTZ DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS candle_files (
        path VARCHAR PRIMARY KEY, chain VARCHAR, bucket INTEGER, n_rows BIGINT,
        content_hash VARCHAR, written_at TIMESTAMPTZ DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS candle_quality (
        chain VARCHAR, token VARCHAR, interval_s INTEGER, n_bars BIGINT, first_ts BIGINT,
        last_ts BIGINT, n_gaps BIGINT, missing_bars BIGINT, zero_volume_share DOUBLE,
        n_conflicts BIGINT, n_rejected BIGINT, updated_at TIMESTAMPTZ DEFAULT now(),
        PRIMARY KEY (chain, token, interval_s))""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        code_version VARCHAR, config JSON, fingerprint VARCHAR, cache_hit BOOLEAN,
        timings JSON, counts JSON)""",
    """CREATE TABLE IF NOT EXISTS results (
        run_id VARCHAR, name VARCHAR, path VARCHAR, n_rows BIGINT, created_at TIMESTAMPTZ DEFAULT now())""",
    # candles fetched from APIs (alertlab.ingest.fetch): per token, the time ranges [start_ts, end_ts)
    # (epoch s) whose bars are in the store; end_ts <= fetched_at, so minutes without bars inside a
    # range are minutes without swaps. One token's ranges of one source and pool are merged.
    """CREATE TABLE IF NOT EXISTS fetch_ranges (
        chain VARCHAR, token VARCHAR, start_ts BIGINT, end_ts BIGINT, source VARCHAR, pool VARCHAR,
        fetched_at BIGINT)""",
    """CREATE TABLE IF NOT EXISTS fetch_status (
        chain VARCHAR, token VARCHAR, source VARCHAR, state VARCHAR, reason VARCHAR, pool VARCHAR,
        pool_side VARCHAR, timeframe_s INTEGER, attempts INTEGER, requests BIGINT, bars BIGINT,
        updated_at BIGINT, PRIMARY KEY (chain, token, source))""",
]


# Columns added after the first schema: homes created earlier get them on the next connect (NULL
# for existing rows). Telegram provenance: caller_id (sender id), source (label), forwarded, pool.
MIGRATIONS = [
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS caller_id VARCHAR",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS source VARCHAR",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS forwarded BOOLEAN",
    "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS pool VARCHAR",
]


@dataclass(frozen=True)
class Home:
    """Paths of one workspace. ``connect()`` opens its catalog (creating the schema)."""

    root: Path

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def candles_dir(self) -> Path:
        return self.root / "candles"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache" / "windows"

    @property
    def studies_dir(self) -> Path:
        return self.root / "studies"

    def connect(self) -> duckdb.DuckDBPyConnection:
        """Open the catalog read-write, creating the home and schema if needed."""
        self.root.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.catalog_path))
        for stmt in SCHEMA + MIGRATIONS:
            con.execute(stmt)
        return con


def resolve_home(home: str | Path | None = None) -> Home:
    """``home`` if given, else ``$ALERTLAB_HOME``, else ``./alertlab-data``."""
    root = home or os.environ.get("ALERTLAB_HOME") or DEFAULT_HOME
    return Home(Path(root).expanduser().resolve())
