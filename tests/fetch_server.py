"""A local HTTP server replaying the GeckoTerminal and Birdeye APIs for the fetch tests.

Every body is built from the recorded shapes in ``tests/fixtures/fetch`` (same keys and nesting).
Markets are synthetic and deterministic; faults (429 with Retry-After, 5xx, a slow answer that
times the client out, Birdeye ``success: false``) are queued per path substring. Every request is
logged (path, query, headers, status) so tests assert the exact requests made.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "fetch"
ALPH = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
GECKO_NET = {"solana": "solana", "bsc": "bsc", "ethereum": "eth", "base": "base", "tron": "tron"}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def b58(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = ALPH[r] + s
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + s


def sol_address(name: str) -> str:
    """A valid Solana address (32 bytes, base58) derived from ``name``."""
    return b58(hashlib.sha256(name.encode()).digest())


def series(name: str, t0: int, t1: int, tf: int = 60, keep: float = 0.7, price: float = 1.0) -> list[list]:
    """Deterministic sparse bars ``[ts, o, h, l, c, v]`` for ts in [t0, t1) on the tf grid, ascending."""
    out = []
    for ts in range(t0 - t0 % tf, t1, tf):
        h = int.from_bytes(hashlib.sha256(f"{name}:{ts}".encode()).digest()[:4], "big") / 2**32
        if h >= keep:
            continue  # a minute without swaps: absent
        c = price * (1.0 + 0.2 * math.sin(ts / 7200.0) + 0.01 * h)
        o = price * (1.0 + 0.2 * math.sin((ts - tf) / 7200.0) + 0.01 * h)
        out.append([ts, o, max(o, c) * (1 + 0.003 * h), min(o, c) * (1 - 0.003 * h), c, 10.0 + 1000 * h])
    return out


@dataclass
class Market:
    """One token: its chain, pools ``[(pool address, reserve, base, quote)]``, bars per (pool, token)."""

    chain: str
    token: str
    pools: list[tuple[str, str, str, str]] = field(default_factory=list)
    bars: dict[tuple[str, str], list[list]] = field(default_factory=dict)  # (pool, token param) → asc bars
    token_bars: list[list] = field(default_factory=list)  # Birdeye: priced per token


@dataclass
class Logged:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    t: float  # arrival (monotonic)


class FakeApi:
    """State of the fake APIs (markets, queued faults, request log)."""

    def __init__(self) -> None:
        self.markets: dict[str, Market] = {}
        self.faults: list[tuple[str, list]] = []  # (path substring, queue of fault specs)
        self.log: list[Logged] = []
        self.lock = threading.Lock()
        self.birdeye_key = "test-key"
        self.overlap = True  # OHLCV pages include the bar at before_timestamp (pages overlap by one)
        self.block_at: int | None = None  # block the n-th OHLCV request (1-based) until release
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.ohlcv_count = 0
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ setup
    def add(self, m: Market) -> Market:
        self.markets[m.token] = m
        return m

    def fault(self, path_part: str, *specs: object) -> None:
        """Queue faults for the next requests whose path contains ``path_part``.

        A spec is ``("429", retry_after or None)``, ``("500",)``, ``("timeout", seconds)``,
        ``("birdeye_false",)``.
        """
        self.faults.append((path_part, list(specs)))

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def requests(self, part: str = "", status: int | None = None) -> list[Logged]:
        with self.lock:
            return [r for r in self.log if part in r.path and (status is None or r.status == status)]

    # ------------------------------------------------------------------ routes
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        u = urlparse(h.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        spec = None
        with self.lock:
            for part, queue in self.faults:
                if part in u.path and queue:
                    spec = queue.pop(0)
                    break
            is_ohlcv = "ohlcv" in u.path
            if is_ohlcv:
                self.ohlcv_count += 1
                n = self.ohlcv_count
        held = is_ohlcv and self.block_at is not None and n == self.block_at
        if held:  # the client is killed meanwhile: the answer reaches nobody (logged with status 0)
            self.blocked.set()
            self.release.wait(30)
        status, body, extra = 500, {"error": "unhandled"}, {}
        if spec is not None and spec[0] == "429":
            status, body = 429, fixture("geckoterminal_429.json")
            if spec[1] is not None:
                extra["Retry-After"] = str(spec[1])
        elif spec is not None and spec[0] in ("500", "502", "503"):
            status, body = int(spec[0]), {"error": "Internal Server Error"}
        elif spec is not None and spec[0] == "birdeye_false":
            status, body = 200, fixture("birdeye_success_false.json")
        else:
            if spec is not None and spec[0] == "timeout":
                time.sleep(spec[1])
            status, body = self.route(u.path, q, headers)
        timed_out = held or (spec is not None and spec[0] == "timeout")
        with self.lock:  # an answer sent after the client gave up is logged with status 0
            self.log.append(Logged(u.path, q, headers, 0 if timed_out else status, arrived))
        data = json.dumps(body).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass  # the client went away (timeout, kill -9)

    def route(self, path: str, q: dict, headers: dict) -> tuple[int, object]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "v2"]:
            parts = parts[2:]
        if parts[:1] == ["networks"] and len(parts) == 5 and parts[2] == "tokens" and parts[4] == "pools":
            return self.gecko_pools(parts[1], parts[3])
        if parts[:1] == ["networks"] and len(parts) == 6 and parts[2] == "pools" and parts[4] == "ohlcv":
            return self.gecko_ohlcv(parts[1], parts[3], parts[5], q)
        if parts == ["defi", "ohlcv"]:
            return self.birdeye_ohlcv(q, headers)
        return 404, fixture("geckoterminal_404.json")

    def gecko_pools(self, net: str, token: str) -> tuple[int, object]:
        m = self.markets.get(token)
        if m is None or not m.pools or GECKO_NET[m.chain] != net:
            return 404, fixture("geckoterminal_404.json")
        doc = fixture("geckoterminal_token_pools.json")
        tmpl = doc["data"][0]
        doc["data"] = []
        for addr, reserve, base, quote in m.pools:
            p = copy.deepcopy(tmpl)
            p["id"] = f"{net}_{addr}"
            p["attributes"]["address"] = addr
            p["attributes"]["reserve_in_usd"] = reserve
            p["relationships"]["base_token"]["data"]["id"] = f"{net}_{base}"
            p["relationships"]["quote_token"]["data"]["id"] = f"{net}_{quote}"
            doc["data"].append(p)
        return 200, doc

    def gecko_ohlcv(self, net: str, pool: str, timeframe: str, q: dict) -> tuple[int, object]:
        tf = {"minute": 60, "hour": 3600, "day": 86400}[timeframe] * int(q.get("aggregate", "1"))
        token = q.get("token", "base")
        bars = None
        for m in self.markets.values():
            if (pool, token) in m.bars:
                bars = m.bars[(pool, token)]
        if bars is None:
            return 404, fixture("geckoterminal_404.json")
        before = int(q.get("before_timestamp", "9999999999"))
        limit = int(q.get("limit", "100"))
        sel = [b for b in bars if (b[0] <= before if self.overlap else b[0] < before) and b[0] % tf == 0]
        page = list(reversed(sel))[:limit]  # newest first
        if not page:
            return 200, fixture("geckoterminal_ohlcv_empty.json")
        doc = fixture("geckoterminal_ohlcv_minute.json")
        doc["data"]["attributes"]["ohlcv_list"] = page
        return 200, doc

    def birdeye_ohlcv(self, q: dict, headers: dict) -> tuple[int, object]:
        if headers.get("x-api-key") != self.birdeye_key:
            return 401, {"success": False, "message": "Unauthorized"}
        m = self.markets.get(q.get("address", ""))
        doc = fixture("birdeye_ohlcv.json")
        tmpl = doc["data"]["items"][0]
        doc["data"]["items"] = []
        if m is None or headers.get("x-chain") != m.chain:
            return 200, doc
        tf = {"1m": 60, "5m": 300, "15m": 900, "1H": 3600}[q["type"]]
        a, b = int(q["time_from"]), int(q["time_to"])
        for ts, o, hi, lo, c, v in m.token_bars:
            if a <= ts <= b and ts % tf == 0:
                it = dict(tmpl)
                it.update(
                    {
                        "o": o,
                        "h": hi,
                        "l": lo,
                        "c": c,
                        "v": v,
                        "unixTime": ts,
                        "address": m.token,
                        "type": q["type"],
                    }
                )
                doc["data"]["items"].append(it)
        return 200, doc


def serve(api: FakeApi) -> ThreadingHTTPServer:
    """Start ``api`` on a random local port in a daemon thread; ``shutdown()`` stops it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            api.handle(self)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    api.server = srv
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
