"""Telegram Desktop exports (JSON or HTML) → alerts; the rules are in :mod:`alertlab.ingest.telegram.calls`.

Modules: ``addresses`` (address/link/chain-hint extraction), ``botreply`` (bot list and reply
parsing), ``json_export`` (streamed with ijson), ``html_export`` (selectolax), ``model`` (the
message both readers deliver), ``calls`` (messages → alert rows → the ordinary alert ingest).
"""

from alertlab.ingest.telegram.calls import TelegramReport, extract_calls, ingest_telegram

__all__ = ["TelegramReport", "extract_calls", "ingest_telegram"]
