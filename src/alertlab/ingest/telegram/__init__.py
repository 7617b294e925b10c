"""Telegram Desktop exports → alerts (see :mod:`alertlab.ingest.telegram.calls`)."""
