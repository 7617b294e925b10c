"""Politeness: one token bucket for every request of a run, and the retry policy.

Kept small on purpose (no helper library): the retry decision depends on the response
(``Retry-After`` on 429, 5xx, timeouts, 404 = an answer), and the limiter and the retries must
share one injectable clock so tests run the exact schedule without sleeping.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Clock:
    """Time sources used by the fetch run (tests inject fakes)."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], float] = time.time


class TokenBucket:
    """At most ``per_minute`` requests per minute, at most ``burst`` back to back.

    The default ``burst=1`` spaces requests evenly (60/per_minute seconds apart), so no sliding
    minute ever sees more than ``per_minute`` requests. :meth:`block` holds every request until a
    server-given time (HTTP 429 ``Retry-After``).
    """

    def __init__(self, per_minute: float, burst: int = 1, clock: Clock | None = None) -> None:
        if not per_minute > 0 or not math.isfinite(per_minute):
            raise ValueError(f"rate limit must be a positive number of requests per minute, got {per_minute}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.clock = clock or Clock()
        self.interval = 60.0 / per_minute
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = self.clock.monotonic()

    def acquire(self) -> float:
        """Take one token, sleeping until there is one; returns the seconds waited."""
        waited = 0.0
        while True:
            now = self.clock.monotonic()
            if now < self.updated:  # blocked (Retry-After)
                d = self.updated - now
            else:
                self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.interval)
                self.updated = now
                if self.tokens >= 1.0 - 1e-9:
                    self.tokens = max(self.tokens - 1.0, 0.0)
                    return waited
                d = (1.0 - self.tokens) * self.interval
            self.clock.sleep(d)
            waited += d

    def block(self, seconds: float) -> None:
        """No request before ``seconds`` from now; then one may go at once."""
        until = self.clock.monotonic() + max(seconds, 0.0)
        if until > self.updated:
            self.updated = until
            self.tokens = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``max_attempts`` tries per request in all.

    The wait before retry ``k`` (k = 1, 2, …) after a 5xx, a timeout, a connection error or a 429
    without ``Retry-After`` is ``min(cap_s, base_s·2^(k-1))`` scaled by a uniform jitter in
    [0.5, 1]. A 429 with ``Retry-After`` waits exactly what the server asks (at most
    ``max_retry_after_s``).
    """

    max_attempts: int = 5
    base_s: float = 2.0
    cap_s: float = 120.0
    max_retry_after_s: float = 3600.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.cap_s, self.base_s * 2.0 ** (attempt - 1)) * (0.5 + 0.5 * self.rng.random())


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent/unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - now_wall, 0.0)
