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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from alertlab.errors import UserError
from alertlab.util.memory import duckdb_memory_limit

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
        rows_new BIGINT, details JSON, ingested_at TIMESTAMPTZ DEFAULT now(),
        status VARCHAR DEFAULT 'complete', pid BIGINT)""",
    """CREATE TABLE IF NOT EXISTS rejects (
        ingest_id VARCHAR, kind VARCHAR, source_file VARCHAR, source_row BIGINT,
        reason VARCHAR, raw JSON, rejected_at TIMESTAMPTZ DEFAULT now(), file_sha256 VARCHAR)""",
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
    # hardening: interrupted-ingest marks and rejects keyed by file content
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS status VARCHAR DEFAULT 'complete'",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS pid BIGINT",
    "ALTER TABLE rejects ADD COLUMN IF NOT EXISTS file_sha256 VARCHAR",
]
# how long a connection waits for another process's short catalog write (DuckDB allows one
# writing process, or several read-only ones); $ALERTLAB_CATALOG_WAIT_S overrides
CATALOG_WAIT_S = 600.0
_LOCK_CONFLICT = "Could not set lock on file"


@dataclass(frozen=True)
class Home:
    """Paths of one workspace. ``connect()`` opens its catalog (creating the schema).

    ``origin`` says where the path came from (``--home``, ``$ALERTLAB_HOME``, the default) for
    error messages; it is not part of equality.
    """

    root: Path
    origin: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """How error messages name this workspace (``ALERTLAB_HOME=/x`` or ``workspace /x``)."""
        return (
            f"{self.origin}={self.root}" if self.origin.startswith("ALERTLAB") else f"workspace {self.root}"
        )

    @property
    def exists(self) -> bool:
        """True when the workspace has a catalog (something was ingested or computed)."""
        return self.catalog_path.is_file()

    def ensure(self) -> None:
        """Create the workspace directory; a file in its place or an unwritable one is a :class:`UserError`."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(
                f"{self.label} is a file, not a directory: pass --home DIR (or set ALERTLAB_HOME) "
                "to a directory"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create {self.label}: {exc.strerror or exc}; pass --home DIR "
                "(or set ALERTLAB_HOME) to a writable directory"
            ) from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise UserError(
                f"{self.label} is not writable: pass --home DIR (or set ALERTLAB_HOME) "
                "to a writable directory"
            )

    def require(self) -> None:
        """For read-only commands: a missing workspace is an error, never silently created."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(
                f"{self.label} is a file, not a directory: pass --home DIR (or set ALERTLAB_HOME) "
                "to a workspace directory"
            )
        if not self.exists:
            raise UserError(
                f"no workspace at {self.root} (no catalog.duckdb): ingest data first "
                "(`alertlab ingest candles DIR`, `alertlab ingest alerts FILE`) or pass --home "
                "(or set ALERTLAB_HOME) to an existing workspace"
            )

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

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the catalog; read-write creates the home and schema if needed.

        ``read_only`` never creates anything (a missing workspace is a :class:`UserError`) and
        lets several processes read at once. Either mode waits while another process holds the
        catalog for a write (see :data:`CATALOG_WAIT_S`) instead of failing on DuckDB's file lock.
        """
        if read_only:
            self.require()
        else:
            self.ensure()
        con = _connect_waiting(self.catalog_path, read_only)
        try:  # every catalog connection works under the memory budget (alertlab --memory-gb)
            con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
        except BaseException:
            con.close()
            raise
        if not read_only:
            try:
                for stmt in SCHEMA + MIGRATIONS:
                    con.execute(stmt)
            except BaseException:
                con.close()
                raise
        return con


def _connect_waiting(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that retries while another process holds the file's lock."""
    deadline = time.monotonic() + float(os.environ.get("ALERTLAB_CATALOG_WAIT_S", CATALOG_WAIT_S))
    delay, told = 0.02, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "not a valid DuckDB database file" in str(exc):
                raise UserError(
                    f"{path} is not an alertlab catalog (not a DuckDB database); move it away or "
                    "pass --home DIR for a fresh workspace"
                ) from exc
            if _LOCK_CONFLICT not in str(exc):
                raise
            holder = str(exc).split("(PID ")[-1].split(")")[0] if "(PID " in str(exc) else "?"
            if time.monotonic() > deadline:
                raise UserError(
                    f"the catalog {path} stayed busy (PID {holder} is using it); try again when it "
                    "has finished"
                ) from exc
            if not told and delay >= 0.5:
                print(
                    f"waiting for PID {holder} to release the catalog {path} …", file=sys.stderr, flush=True
                )
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def resolve_home(home: str | Path | None = None) -> Home:
    """``home`` if given, else ``$ALERTLAB_HOME``, else ``./alertlab-data``. Nothing is created here."""
    if home:
        root, origin = home, "--home"
    elif os.environ.get("ALERTLAB_HOME"):
        root, origin = os.environ["ALERTLAB_HOME"], "ALERTLAB_HOME"
    else:
        root, origin = DEFAULT_HOME, "default"
    return Home(Path(root).expanduser().resolve(), origin)
