"""The webhook routes' per-address rate limit: token buckets on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge.config import EdgeSettings
from edge.ratelimit import TokenBuckets
from tests.support.edge_rate_limit import FakeClock


class TestTokenBuckets:
    @pytest.mark.parametrize(
        ("rate", "burst", "requests", "expected_waits"),
        [
            pytest.param(2.0, 3, [0, 0, 0, 0], [0, 0, 0, 0.5], id="burst_then_wait_for_one_token"),
            pytest.param(2.0, 3, [0, 0, 0, 0.5], [0, 0, 0, 0], id="half_a_second_refills_one"),
            pytest.param(2.0, 3, [0, 0, 0, 0, 0], [0, 0, 0, 0.5, 0.5], id="refused_requests_spend_nothing"),
            pytest.param(1.0, 1, [0, 10, 10], [0, 0, 1.0], id="refill_stops_at_burst"),
            pytest.param(0.0, 1, [0, 0, 0], [0, 0, 0], id="rate_zero_is_off"),
        ],
    )
    def test_waits(self, rate: float, burst: int, requests: list[float], expected_waits: list[float]) -> None:
        """Each address may make burst requests at once and rate per second; beyond, the wait until the next token."""
        clock = FakeClock()
        buckets = TokenBuckets(rate, burst, clock)
        waits = []
        for at in requests:
            clock.now = 500.0 + at
            waits.append(buckets.take("203.0.113.7"))
        assert expected_waits == pytest.approx(waits)

    def test_addresses_have_their_own_buckets(self) -> None:
        """One address over its rate does not slow another down."""
        buckets = TokenBuckets(1.0, 1, FakeClock())
        assert [0, 1.0, 0] == [buckets.take(a) for a in ("203.0.113.7", "203.0.113.7", "198.51.100.2")]

    def test_memory_is_bounded(self) -> None:
        """At most max_keys buckets are kept, whatever the number of addresses."""
        buckets = TokenBuckets(1.0, 5, FakeClock(), max_keys=100)
        for n in range(1000):
            buckets.take(f"10.0.{n // 256}.{n % 256}")
        assert 100 >= len(buckets)


class TestSettings:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            pytest.param({"rate_per_second": -1}, "rate_per_second", id="negative_rate"),
            pytest.param({"rate_burst": 0}, "rate_burst", id="zero_burst"),
        ],
    )
    def test_invalid_rate_settings_are_refused(self, changes: dict[str, Any], field: str) -> None:
        """A negative rate or an empty burst is refused when the settings are built."""
        with pytest.raises(ValidationError) as caught:
            EdgeSettings(**changes)
        assert [(field,)] == [tuple(e["loc"]) for e in caught.value.errors()]

    def test_defaults(self) -> None:
        """The defaults are generous: 200 requests per second per address, bursts of 400."""
        settings = EdgeSettings()
        assert (200.0, 400) == (settings.rate_per_second, settings.rate_burst)

