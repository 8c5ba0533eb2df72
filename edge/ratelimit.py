"""Per-client rate limit of the webhook routes: a token bucket per client address.

Platforms deliver from a few addresses and must never be refused, so the defaults are
generous (``OFFHOURS_EDGE__RATE_PER_SECOND`` 200, ``OFFHOURS_EDGE__RATE_BURST`` 400);
what the limit stops is one address flooding the edge with requests it has to read
and verify. Each address may make ``burst`` requests at once and ``rate`` per second on
average; beyond that the answer is ``429`` with ``Retry-After`` (whole seconds) before
the body is read or any signature checked. ``rate`` 0 turns the limit off.

The address is the connection's peer (``request.remote``): behind a reverse proxy
every request comes from the proxy, so there the limit applies to all traffic through
it together (raise it, or limit at the proxy). Buckets live in memory, per process, on
an injected monotonic clock; at most ``max_keys`` are kept (full ones are dropped
first: they hold nothing).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from edge.ratelog import RateLimitedLog

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens per second, ``burst`` at most, one per request."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = 10_000,
    ) -> None:
        if rate < 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be >= 0, burst and max_keys >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0 when there was one, else the seconds until there is."""
        if self.rate == 0:
            return 0.0
        now = self._clock()
        tokens, then = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        if len(self._buckets) > self._max_keys:
            self._forget(now)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        for key, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self.rate >= self.burst:
                del self._buckets[key]
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


def client_address(request: web.Request) -> str:
    """The key of a request's bucket: the peer address of its connection."""
    return request.remote or "unknown"


def rate_limit_middleware(buckets: TokenBuckets, refusals: RateLimitedLog) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware answering ``429`` with ``Retry-After`` to a client over its rate."""

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = buckets.take(client_address(request))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            refusals.warning("rate", "webhook request refused: client over %g requests/s", buckets.rate)
            raise web.HTTPTooManyRequests(
                text=orjson.dumps({"error": f"too many requests from this address; retry in {retry} s"}).decode(),
                content_type="application/json",
                headers={"Retry-After": str(retry)},
            )
        return await handler(request)

    return rate_limit
