"""Ingestion into the canonical store: alerts → catalog table, candles → bucketed Parquet.

See :mod:`alertlab.ingest.alerts` and :mod:`alertlab.ingest.candles` for every normalisation rule;
Telegram Desktop exports: :mod:`alertlab.ingest.telegram` (``ingest_telegram``).
"""

from alertlab.ingest.alerts import (
    derive_alert_id,
    ingest_alert_table,
    ingest_alerts,
    list_alerts,
    load_alerts,
)
from alertlab.ingest.candles import detect_intervals, ingest_candles
from alertlab.ingest.quality import IngestReport, quality_table, token_quality
from alertlab.store.candles import bucket_of, candle_bucket_path

__all__ = [
    "IngestReport",
    "bucket_of",
    "candle_bucket_path",
    "derive_alert_id",
    "detect_intervals",
    "ingest_alert_table",
    "ingest_alerts",
    "ingest_candles",
    "list_alerts",
    "load_alerts",
    "quality_table",
    "token_quality",
]
