"""Token buckets per destination, with an injected clock.

Each :class:`~responders.base.Limit` names a bucket (a page, a phone number, a
recipient pair, a webhook) holding up to ``burst`` tokens, refilled at ``rate`` per
second. :meth:`TokenBuckets.reserve` takes one token from every bucket a send counts
against and returns how long the caller must wait before sending. Balances may go
negative: each reservation queues behind the earlier ones, so concurrent senders
share a bucket fairly without polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .base import Clock, Limit

PRUNE_ABOVE = 10_000


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now


class TokenBuckets:
    """The buckets of one delivery loop (instance state, never shared between services)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def reserve(self, limits: Sequence[Limit]) -> float:
        """Take one token from each bucket; the seconds to wait before sending (0 = now)."""
        now = self._clock()
        wait = 0.0
        for limit in limits:
            bucket = self._buckets.get(limit.key)
            if bucket is None:
                bucket = self._buckets[limit.key] = _Bucket(
                    limit.rate, limit.burst, limit.burst, now
                )
            bucket.refill(now)
            bucket.tokens -= 1.0
            if bucket.tokens < 0:
                wait = max(wait, -bucket.tokens / bucket.rate)
        if len(self._buckets) > PRUNE_ABOVE:
            self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        # A full bucket is the same as no bucket: forgetting it keeps memory bounded
        # when every recipient has its own pair bucket.
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.burst:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
