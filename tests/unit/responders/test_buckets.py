"""Token buckets per destination, with an injected clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from responders.base import Limit
from responders.buckets import TokenBuckets


class ManualClock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Rome")).timestamp()

    def __call__(self) -> float:
        return self.now


class TestTokenBuckets:
    @pytest.mark.parametrize(
        ("limit", "sends", "expected_waits"),
        [
            pytest.param(Limit("slack", 1.0, 1.0), 3, [0.0, 1.0, 2.0], id="slack_one_per_second"),
            pytest.param(
                Limit("telegram_chat", 1.0, 1.0), 2, [0.0, 1.0], id="telegram_one_per_chat"
            ),
            pytest.param(
                Limit("whatsapp_pair", 1 / 6, 1.0),
                3,
                [0.0, 6.0, 12.0],
                id="whatsapp_pair_every_six_seconds",
            ),
            pytest.param(
                Limit("x_user", 200 / 900, 200.0),
                201,
                [0.0] * 200 + [4.5],
                id="x_200_per_15_minutes",
            ),
            pytest.param(
                Limit("page", 300.0, 300.0),
                301,
                [0.0] * 300 + [1 / 300],
                id="messenger_300_per_second",
            ),
        ],
    )
    def test_reservations_queue_behind_the_burst(
        self, limit: Limit, sends: int, expected_waits: list[float]
    ) -> None:
        """Within the burst sends go now; after it each waits its turn at the bucket's rate."""
        buckets = TokenBuckets(ManualClock())
        waits = [buckets.reserve([limit]) for _ in range(sends)]
        assert expected_waits == pytest.approx(waits)

    def test_tokens_refill_as_the_clock_moves(self) -> None:
        """After waiting the announced time the next send goes without waiting."""
        clock = ManualClock()
        buckets = TokenBuckets(clock)
        limit = Limit("slack", 1.0, 1.0)
        buckets.reserve([limit])
        clock.now += 1.0
        assert 0.0 == buckets.reserve([limit])

    def test_the_slowest_bucket_decides(self) -> None:
        """A send counted against two buckets waits for the emptier one."""
        buckets = TokenBuckets(ManualClock())
        number = Limit("number", 80.0, 80.0)
        pair = Limit("pair", 1 / 6, 1.0)
        waits = [buckets.reserve([number, pair]) for _ in range(2)]
        assert [0.0, 6.0] == pytest.approx(waits)

    def test_destinations_are_independent(self) -> None:
        """A full bucket for one chat does not delay another chat."""
        buckets = TokenBuckets(ManualClock())
        buckets.reserve([Limit("chat:1", 1.0, 1.0)])
        assert 0.0 == buckets.reserve([Limit("chat:2", 1.0, 1.0)])
