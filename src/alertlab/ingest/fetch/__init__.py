"""Candles from public APIs (GeckoTerminal, Birdeye) for the alerts in the store.

Only ``alertlab fetch`` talks to the network; importing this package does not.
See :mod:`alertlab.ingest.fetch.runner` for the run's rules.
"""

from alertlab.ingest.fetch.runner import FetchOptions, FetchReport, fetch_status, run_fetch

__all__ = ["FetchOptions", "FetchReport", "fetch_status", "run_fetch"]
