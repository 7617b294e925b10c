"""The window stage: per-alert bar windows cut once from the candle store and kept in the path cache.

* ``model``: :class:`Windows` (ragged arrays: offsets + flat bars) and the status codes.
* ``spec``: :class:`Selection` (which alerts) and :class:`WindowSpec` (interval, horizon, entry rules).
* ``cache``: cutting windows and the content-addressed path cache on disk.
* ``select``: store → selected alerts → windows.
"""

from alertlab.windows.model import BAD_ENTRY, MISSING, OK, STALE, STATUS_NAMES, Windows

__all__ = ["BAD_ENTRY", "MISSING", "OK", "STALE", "STATUS_NAMES", "Windows"]
