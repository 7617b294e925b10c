"""GeckoTerminal (public, no key): token → most liquid pool → OHLCV pages, newest first.

* Pools: ``GET /networks/{net}/tokens/{address}/pools`` → ``data[i]`` with ``attributes.address``,
  ``attributes.reserve_in_usd`` and ``relationships.{base,quote}_token.data.id = "{net}_{address}"``.
  The pool with the largest ``reserve_in_usd`` wins (ties: the API's order, most liquid first);
  404 or an empty list = the token has no pool. A pool hint from the alert wins without asking.
* OHLCV: ``GET /networks/{net}/pools/{pool}/ohlcv/{minute|hour}?aggregate=A&before_timestamp=T
  &limit=1000&currency=usd&token={address}`` → ``data.attributes.ohlcv_list = [[ts, o, h, l, c, v],
  …]`` newest first. ``token={address}`` is always sent, so prices are the token's own even when it
  is the pool's quote side. Paging goes backwards: the next ``before_timestamp`` is the oldest ts
  received; it stops once the range start is reached or on an empty list (or a page that brings
  nothing older). Overlapping pages are deduplicated; minutes without swaps stay absent.
"""

from __future__ import annotations

from alertlab.ingest.fetch.base import BarRows, Pool, as_ts
from alertlab.ingest.fetch.http import ApiClient, FetchError
from alertlab.ingest.fetch.networks import GECKO_TIMEFRAME, GECKOTERMINAL, network_id

PAGE_LIMIT = 1000


class GeckoTerminal:
    """The GeckoTerminal side of a fetch run (one timeframe)."""

    name = GECKOTERMINAL

    def __init__(self, client: ApiClient, timeframe: str) -> None:
        self.client, self.timeframe = client, timeframe
        self.tf_name, self.aggregate = GECKO_TIMEFRAME[timeframe]

    def pool(self, chain: str, token: str, hint: str | None = None) -> Pool | None:
        """The pool to price ``token`` from, or None when GeckoTerminal knows no pool for it."""
        net = network_id(self.name, chain)
        if hint:
            addr = hint.strip()
            return Pool(addr[len(net) + 1 :] if addr.startswith(f"{net}_") else addr, "hint")
        r = self.client.get(f"/networks/{net}/tokens/{token}/pools", {}, answers=(200, 404))
        if r.status == 404:
            return None
        doc = r.json()
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list):
            self.client.evict(r)
            raise FetchError(f"pools response without a data list; was {r.path}")
        best, best_reserve = None, -1.0
        for p in data:
            if not isinstance(p, dict):
                continue
            attrs = p.get("attributes") or {}
            addr = attrs.get("address") or str(p.get("id", "")).removeprefix(f"{net}_")
            if not addr:
                continue
            try:
                reserve = float(attrs.get("reserve_in_usd") or 0.0)
            except (TypeError, ValueError):
                reserve = 0.0
            if reserve != reserve:  # NaN
                reserve = 0.0
            if reserve > best_reserve:
                best, best_reserve = p, reserve
                best_addr = addr
        if best is None:
            return None
        rel = best.get("relationships") or {}
        me = f"{net}_{token}".lower()

        def rid(side: str) -> str:
            return str(((rel.get(side) or {}).get("data") or {}).get("id", "")).lower()

        side = "base" if rid("base_token") == me else "quote" if rid("quote_token") == me else "unknown"
        return Pool(best_addr, side)

    def bars(self, chain: str, token: str, pool: Pool, start: int, end: int) -> BarRows:
        """Bars with ``start <= ts < end`` (paging backwards from ``end``)."""
        net = network_id(self.name, chain)
        path = f"/networks/{net}/pools/{pool.address}/ohlcv/{self.tf_name}"
        out = BarRows()
        seen: set[int] = set()
        before = end
        while True:
            params = {
                "aggregate": self.aggregate,
                "before_timestamp": before,
                "limit": PAGE_LIMIT,
                "currency": "usd",
                "token": token,
            }
            r = self.client.get(path, params, asks_until=before)
            out.saw(r.fetched_at)
            lst = _ohlcv_list(r.json())
            if lst is None:
                self.client.evict(r)
                raise FetchError(f"OHLCV response without data.attributes.ohlcv_list; was {r.path}")
            oldest = None
            for i, row in enumerate(lst):
                vals = list(row) if isinstance(row, list) else []
                ts = as_ts(vals[0]) if vals else None
                if ts is not None:
                    oldest = ts if oldest is None else min(oldest, ts)
                    if not (start <= ts < end) or ts in seen:
                        continue
                    seen.add(ts)
                vals = (vals[1:6] + [None] * 5)[:5]
                out.add(ts, vals, r.path, i)  # unreadable rows go on to be quarantined
            if oldest is None or oldest <= start or oldest >= before:
                return out
            before = oldest


def _ohlcv_list(doc: object) -> list | None:
    try:
        lst = doc["data"]["attributes"]["ohlcv_list"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    return lst if isinstance(lst, list) else None
