"""Ingestion into the canonical store: alerts → catalog table, candles → bucketed Parquet.

See :mod:`alertlab.data.alerts` and :mod:`alertlab.data.candles` for every normalisation rule.
"""

from alertlab.data.alerts import derive_alert_id, ingest_alerts, load_alerts
from alertlab.data.candles import bucket_of, candle_bucket_path, detect_intervals, ingest_candles
from alertlab.data.quality import IngestReport, quality_table

__all__ = [
    "IngestReport",
    "bucket_of",
    "candle_bucket_path",
    "derive_alert_id",
    "detect_intervals",
    "ingest_alerts",
    "ingest_candles",
    "load_alerts",
    "quality_table",
]
