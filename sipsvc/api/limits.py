"""The request rate limit of the HTTP API, per token (the body size and JSON depth limits are
in ``requests.py``).

The rate limit is a token bucket per auth token, held in each worker process: ``rate_limit``
requests per second with bursts of ``rate_burst``. Per process and not in Redis on purpose:
the check costs no round trip on every API request, and a node's processes share the load of
one client's connections roughly evenly, so the effective limit across a node is at most
``workers`` times the configured one (documented in the README). Requests without a token
(health, metrics, anonymous quickcall) are not limited here.
"""

from __future__ import annotations

import math
import time
from typing import Awaitable, Callable

from aiohttp import web

from . import envelope
from .requests import auth_token

MAX_TRACKED = 100_000  # tokens with a bucket; idle (full) buckets are dropped past this

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # token -> [tokens left, last refill]

    def retry_after(self, token: str) -> int:
        """0 when a request with ``token`` may go ahead now (and count it), else the whole
        seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(token)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._prune(now)
            bucket = self._buckets[token] = [self.burst, now]
        else:
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket[0]) / self.rate))

    def _prune(self, now: float) -> None:
        full = [token for token, (left, last) in self._buckets.items()
                if left + (now - last) * self.rate >= self.burst]
        for token in full:
            del self._buckets[token]
        if len(self._buckets) >= MAX_TRACKED:  # every one busy: a flood of made-up tokens
            self._buckets.clear()


def rate_limit_middleware(limiter: RateLimiter):
    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = auth_token(request)
        if token is not None:
            wait = limiter.retry_after(token)
            if wait:
                response = envelope.error(request, 429, "rate_limited", {
                    "message": f"more than {limiter.rate:g} requests per second with this token; "
                               f"retry after {wait} s"})
                response.headers["Retry-After"] = str(wait)
                return response
        return await handler(request)

    return rate_limit

