"""The webhook edge's memory of recently produced event ids.

Platforms redeliver: Meta batches may repeat a message and retries last hours,
Telegram retries an update until it gets a 2xx. :class:`RecentIds` lets one ingest
replica drop a redelivery it has already produced: a bounded set (oldest first out)
whose ids expire ``ttl`` after they were claimed, on an injected monotonic clock.

It is per replica and in memory: behind a balancer a redelivery may reach another
replica, and a restart forgets everything. The triage is idempotent by event ``id``
(README: Events: the same ``id`` twice is the same message), which covers the rest; this
only saves the stream from most of the duplicates.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import timedelta


class RecentIds:
    """Ids claimed within the last ``ttl``, at most ``capacity`` of them."""

    def __init__(
        self,
        ttl: timedelta,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._ttl = ttl.total_seconds()
        self._capacity = capacity
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def claim(self, ids: Iterable[str]) -> list[str]:
        """Mark ``ids`` as seen and return those not seen before (a repeat within ``ids`` too)."""
        now = self._clock()
        self._expire(now)
        fresh = []
        for event_id in ids:
            if event_id in self._expiry:
                continue
            self._expiry[event_id] = now + self._ttl
            fresh.append(event_id)
            if len(self._expiry) > self._capacity:
                self._expiry.popitem(last=False)
        return fresh

    def release(self, ids: Iterable[str]) -> None:
        """Forget ``ids`` (their production failed): a redelivery must be produced."""
        for event_id in ids:
            self._expiry.pop(event_id, None)

    def __contains__(self, event_id: object) -> bool:
        expiry = self._expiry.get(event_id) if isinstance(event_id, str) else None
        return expiry is not None and expiry > self._clock()

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._expiry)

    def _expire(self, now: float) -> None:
        # Claims are appended in clock order, so the expired ones are at the front.
        while self._expiry:
            event_id, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                return
            del self._expiry[event_id]
