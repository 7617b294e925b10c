"""The window stage: per-alert bar windows cut once from the candle store and kept in the path cache.

* ``model``: :class:`Windows` (ragged arrays: offsets + flat bars) and the status codes.
* ``spec``: :class:`Selection` (which alerts) and :class:`WindowSpec` (interval, horizon, entry rules).
* ``cut``: token series (native or aggregated), the bad-tick guard, the cut rules.
* ``cache``: the content-addressed path cache on disk.
* ``diagnose``: status counts and the one-line "why nothing usable, what to try" message.
* ``select``: store → selected alerts → windows.
"""

from alertlab.windows.model import BAD_ENTRY, MISSING, OK, STALE, STATUS_NAMES, TRUNCATED, Windows

__all__ = ["BAD_ENTRY", "MISSING", "OK", "STALE", "STATUS_NAMES", "TRUNCATED", "Windows"]
