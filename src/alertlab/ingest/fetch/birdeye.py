"""Birdeye (key in ``BIRDEYE_API_KEY``): ``GET /defi/ohlcv`` per token, in chunks of <= 1000 bars.

``GET /defi/ohlcv?address=&type=1m|5m|15m|1H&currency=usd&time_from=&time_to=`` with headers
``X-API-KEY`` and ``x-chain`` → ``{"success": true, "data": {"items": [{"unixTime", "o", "h", "l",
"c", "v", "type", "address"}]}}``. ``time_from``/``time_to`` are inclusive, so a chunk asks
``[a, a + 1000·tf − 1]``. ``success: false`` (e.g. compute units exhausted) stops the whole run
with Birdeye's message; the response is not kept, so a rerun asks again. Birdeye prices the token
itself (no pool); a pool hint from the alert is not used.
"""

from __future__ import annotations

from alertlab.ingest.fetch.base import BarRows, Pool, as_ts
from alertlab.ingest.fetch.http import ApiClient, FetchError, SourceAborted, _message
from alertlab.ingest.fetch.networks import BIRDEYE, BIRDEYE_TYPE, TIMEFRAMES, network_id

CHUNK_BARS = 1000


class Birdeye:
    """The Birdeye side of a fetch run (one timeframe)."""

    name = BIRDEYE

    def __init__(self, client: ApiClient, timeframe: str) -> None:
        self.client, self.timeframe = client, timeframe
        self.type = BIRDEYE_TYPE[timeframe]
        self.tf_s = TIMEFRAMES[timeframe]

    def pool(self, chain: str, token: str, hint: str | None = None) -> Pool:
        network_id(self.name, chain)  # unsupported chain → clear error before any request
        return Pool("", "token")

    def bars(self, chain: str, token: str, pool: Pool, start: int, end: int) -> BarRows:
        """Bars with ``start <= ts < end``, oldest chunk first."""
        net = network_id(self.name, chain)
        out = BarRows()
        seen: set[int] = set()
        step = CHUNK_BARS * self.tf_s
        for a in range(start, end, step):
            b = min(a + step, end) - 1
            params = {"address": token, "type": self.type, "currency": "usd", "time_from": a, "time_to": b}
            r = self.client.get("/defi/ohlcv", params, headers={"x-chain": net}, asks_until=b + 1)
            out.saw(r.fetched_at)
            doc = r.json()
            if not isinstance(doc, dict):
                self.client.evict(r)
                raise FetchError(f"Birdeye response is not an object; was {r.path}")
            if doc.get("success") is not True:
                self.client.evict(r)
                raise SourceAborted(f"Birdeye says: {_message(r.body)}")
            items = (doc.get("data") or {}).get("items") if isinstance(doc.get("data"), dict) else None
            if not isinstance(items, list):
                self.client.evict(r)
                raise FetchError(f"Birdeye response without data.items; was {r.path}")
            for i, it in enumerate(items):
                it = it if isinstance(it, dict) else {}
                ts = as_ts(it.get("unixTime"))
                if ts is not None:
                    if not (start <= ts < end) or ts in seen:
                        continue
                    seen.add(ts)
                out.add(ts, [it.get(k) for k in ("o", "h", "l", "c", "v")], r.path, i)
        return out
