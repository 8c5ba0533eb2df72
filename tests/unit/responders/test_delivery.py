"""The delivery loop: ledger idempotency, rate limits, bounded retries, dead letters."""

from __future__ import annotations

import pytest

from responders.delivery import (
    RetryPolicy,
)


class TestRetryPolicy:
    @pytest.mark.parametrize(
        ("attempt", "requested", "jitter", "expected"),
        [
            pytest.param(1, None, 0.0, 0.5, id="first_retry_low_jitter"),
            pytest.param(1, None, 1.0, 1.0, id="first_retry_high_jitter"),
            pytest.param(4, None, 1.0, 8.0, id="doubles_each_attempt"),
            pytest.param(20, None, 1.0, 120.0, id="capped_at_backoff_max"),
            pytest.param(1, 17.0, 0.0, 17.0, id="platform_wait_wins_when_longer"),
            pytest.param(4, 1.0, 1.0, 8.0, id="backoff_wins_when_longer"),
            pytest.param(1, 5000.0, 0.0, 900.0, id="platform_wait_clamped"),
        ],
    )
    def test_delay(
        self, attempt: int, requested: float | None, jitter: float, expected: float
    ) -> None:
        """Exponential backoff with jitter, never shorter than the platform asked, clamped."""
        assert expected == RetryPolicy().delay(attempt, requested, jitter)

