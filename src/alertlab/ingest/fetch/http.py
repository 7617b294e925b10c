"""The HTTP side of a fetch run: one httpx client, the rate limiter, retries and the response cache.

Every response that answers the question (status 200, and 404 where the caller says 404 is an
answer) is written — atomically, before anyone parses it — to
``<home>/fetch/responses/<source>/<kk>/<key>.json.gz`` where ``key`` is the SHA-256 of the request
(source, path, sorted query parameters, public headers; never the API key, never the host, so a
mirror shares the cache). The file is gzipped JSON ``{"request", "status", "fetched_at", "body"}``
with the raw body text (``zcat FILE | jq -r .body``); gzip because 1,000-bar pages are ~100 kB of
text each and a large fetch keeps thousands of them. A rerun (after a crash or kill -9) re-reads these files instead of asking again.

A cached response is reused only while it can not have changed: requests without a time bound
(token pools) always, time-bounded requests (OHLCV) only if the whole asked period was in the past
when the response was received, with ``settle_s`` to spare for the source's own indexing and caching
(``asks_until + settle_s <= fetched_at``); otherwise the request is sent again.
``refresh=True`` ignores the cache (and rewrites it).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from alertlab.ingest.fetch.ratelimit import Clock, RetryPolicy, TokenBucket, parse_retry_after
from alertlab.store import atomic_file

USER_AGENT = "alertlab-fetch/0.1 (python-httpx)"


class FetchError(Exception):
    """This token cannot be fetched now (recorded as failed with this reason; the run goes on)."""


class SourceAborted(Exception):
    """The source refuses the whole run (no credits, bad key): stop with this message."""


@dataclass
class Response:
    """A response as cached: status, raw body, receipt time (epoch s) and its cache file."""

    status: int
    body: str
    fetched_at: int
    path: Path
    from_cache: bool
    attempts: int = 0

    def json(self) -> Any:
        """The body parsed as JSON (:class:`FetchError` naming the cache file if it is not)."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise FetchError(f"response is not JSON ({exc}); see {self.path}") from None


Event = Callable[..., None]


class ApiClient:
    """GET requests to one source: rate-limited, retried, cached on disk."""

    def __init__(
        self,
        source: str,
        base_url: str,
        cache_root: Path,
        limiter: TokenBucket,
        policy: RetryPolicy,
        *,
        public_headers: Mapping[str, str] | None = None,
        secret_headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        refresh: bool = False,
        settle_s: int = 120,
        clock: Clock | None = None,
        on_event: Event | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source, self.base_url = source, base_url.rstrip("/")
        self.cache_root = Path(cache_root)
        self.limiter, self.policy = limiter, policy
        self.public_headers = dict(public_headers or {})
        self.refresh, self.settle_s = refresh, settle_s
        self.clock = clock or limiter.clock
        self.on_event = on_event or (lambda *a, **k: None)
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **self.public_headers,
            **(secret_headers or {}),
        }
        self.http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=True,
        )
        self.requests = 0  # sent over the network
        self.cache_hits = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ cache
    def cache_path(
        self, path: str, params: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Path:
        """Where the response to this request is (or will be) kept."""
        hdr = {**self.public_headers, **(headers or {})}
        req = {
            "source": self.source,
            "path": path,
            "params": {k: str(params[k]) for k in sorted(params)},
            "headers": {k.lower(): hdr[k] for k in sorted(hdr)},
        }
        key = hashlib.sha256(json.dumps(req, sort_keys=True).encode()).hexdigest()
        return self.cache_root / self.source / key[:2] / f"{key}.json.gz"

    def _read_cache(self, file: Path) -> Response | None:
        try:
            with gzip.open(file, "rt", encoding="utf-8") as fh:
                doc = json.load(fh)
            return Response(int(doc["status"]), str(doc["body"]), int(doc["fetched_at"]), file, True)
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: ask again

    def _write_cache(
        self,
        file: Path,
        path: str,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        status: int,
        body: str,
        fetched_at: int,
    ) -> None:
        doc = {
            "request": {
                "source": self.source,
                "base_url": self.base_url,
                "path": path,
                "params": {k: str(v) for k, v in params.items()},
                "headers": {**self.public_headers, **headers},
            },
            "status": status,
            "fetched_at": fetched_at,
            "body": body,
        }
        with atomic_file(file) as tmp, gzip.open(tmp, "wt", encoding="utf-8", compresslevel=5) as fh:
            json.dump(doc, fh)

    def evict(self, response: Response) -> None:
        """Forget a cached response that turned out to be an error (so a rerun asks again)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(response.path)

    # ------------------------------------------------------------------ requests
    def get(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        answers: tuple[int, ...] = (200,),
        asks_until: int | None = None,
    ) -> Response:
        """The response to ``GET path?params`` whose status is in ``answers``.

        Raises :class:`FetchError` for other statuses and for retries exhausted, and
        :class:`SourceAborted` for 401/403 (the key or the account is refused).
        """
        headers = dict(headers or {})
        file = self.cache_path(path, params, headers)
        hit = self._usable_cache(file, path, answers, asks_until)
        if hit is not None:
            return hit
        last = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            self.limiter.acquire()
            self.requests += 1
            self.on_event("request", path=path)
            delay: float | None = None
            try:
                r = self.http.get(path, params=dict(params), headers=headers)
            except httpx.TimeoutException:
                last = "timeout"
            except httpx.TransportError as exc:
                last = f"connection error ({type(exc).__name__}: {exc})"
            else:
                if r.status_code in answers:
                    fetched_at = int(self.clock.wall())
                    self._write_cache(file, path, params, headers, r.status_code, r.text, fetched_at)
                    return Response(r.status_code, r.text, fetched_at, file, False, attempt)
                last, delay = self._retryable(r, path)
            if attempt == self.policy.max_attempts:
                break
            if delay is None:
                delay = self.policy.backoff(attempt)
            self.on_event("wait", seconds=delay, reason=last)
            self.limiter.block(delay)
        raise FetchError(f"{last} after {self.policy.max_attempts} attempts ({path})")

    def _usable_cache(
        self, file: Path, path: str, answers: tuple[int, ...], asks_until: int | None
    ) -> Response | None:
        """The cached response when it answers (status in ``answers``) and was fetched after the
        asked range had settled; None otherwise, or with ``refresh``."""
        if self.refresh:
            return None
        hit = self._read_cache(file)
        if hit is None or hit.status not in answers:
            return None
        if asks_until is not None and asks_until + self.settle_s > hit.fetched_at:
            return None
        self.cache_hits += 1
        self.on_event("cache", path=path)
        return hit

    def _retryable(self, r: httpx.Response, path: str) -> tuple[str, float | None]:
        """Why an unanswered status is worth a retry, and the server's wait (429 ``Retry-After``);
        raises :class:`SourceAborted` for 401/403 and :class:`FetchError` for other 4xx."""
        if r.status_code in (401, 403):
            raise SourceAborted(
                f"{self.source} refused the request (HTTP {r.status_code}): {_message(r.text)}"
            )
        if r.status_code == 429:
            ra = parse_retry_after(r.headers.get("Retry-After"), self.clock.wall())
            return "HTTP 429 (rate limited)", min(
                ra, self.policy.max_retry_after_s
            ) if ra is not None else None
        if r.status_code >= 500:
            return f"HTTP {r.status_code}", None
        raise FetchError(f"HTTP {r.status_code} on {path}: {_message(r.text)}")


def _message(body: str, limit: int = 200) -> str:
    """A short human message from an error body (JSON ``message``/``errors[].title`` or the text)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:limit] or "(empty body)"
    if isinstance(doc, dict):
        if doc.get("message"):
            return str(doc["message"])[:limit]
        errs = doc.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            return str(errs[0].get("title") or errs[0].get("detail") or errs[0])[:limit]
        st = doc.get("status")
        if isinstance(st, dict) and st.get("error_message"):
            return str(st["error_message"])[:limit]
    return json.dumps(doc)[:limit]
