"""The one table of what each candle source calls our chains, timeframes and base URLs."""

from __future__ import annotations

import os
from typing import Final

GECKOTERMINAL: Final = "geckoterminal"
BIRDEYE: Final = "birdeye"
SOURCES = (GECKOTERMINAL, BIRDEYE)

# our canonical chain → the source's network id (alertlab.ingest.chains spells the chains)
NETWORKS: dict[str, dict[str, str]] = {
    GECKOTERMINAL: {"solana": "solana", "bsc": "bsc", "ethereum": "eth", "base": "base", "tron": "tron"},
    BIRDEYE: {"solana": "solana", "ethereum": "ethereum", "base": "base", "bsc": "bsc"},
}

BASE_URLS = {
    GECKOTERMINAL: "https://api.geckoterminal.com/api/v2",
    BIRDEYE: "https://public-api.birdeye.so",
}
URL_ENV = {GECKOTERMINAL: "ALERTLAB_GECKOTERMINAL_URL", BIRDEYE: "ALERTLAB_BIRDEYE_URL"}
BIRDEYE_KEY_ENV = "BIRDEYE_API_KEY"

# --timeframe → bar seconds, GeckoTerminal (timeframe, aggregate), Birdeye type
TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}
GECKO_TIMEFRAME: dict[str, tuple[str, int]] = {
    "1m": ("minute", 1),
    "5m": ("minute", 5),
    "15m": ("minute", 15),
    "1h": ("hour", 1),
}
BIRDEYE_TYPE: dict[str, str] = {"1m": "1m", "5m": "5m", "15m": "15m", "1h": "1H"}


class UnsupportedChain(ValueError):
    """The source has no network id for this chain."""


def network_id(source: str, chain: str) -> str:
    """The source's network id of ``chain``; :class:`UnsupportedChain` names the supported ones."""
    table = NETWORKS[source]
    if chain not in table:
        raise UnsupportedChain(
            f"chain {chain!r} is not supported by {source} (supported: {', '.join(sorted(table))})"
        )
    return table[chain]


def base_url(source: str, override: str | None = None) -> str:
    """``--api-url`` if given, else the source's environment variable, else the public URL."""
    url = override or os.environ.get(URL_ENV[source]) or BASE_URLS[source]
    return url.rstrip("/")
