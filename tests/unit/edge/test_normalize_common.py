"""Shared normalizer helpers: account resolution, time forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.normalize import from_epoch_ms, resolve_account


class TestResolveAccount:
    @pytest.mark.parametrize(
        ("accounts", "expected"),
        [
            pytest.param({"900": "acme_it_x"}, "acme_it_x", id="plain_id"),
            pytest.param({"900": "other", "x:900": "acme_it_x"}, "acme_it_x", id="qualified_wins"),
            pytest.param({"fb:900": "acme.it.facebook"}, "900", id="other_channel_ignored"),
            pytest.param({}, "900", id="unknown_keeps_the_id"),
        ],
    )
    def test_resolve(self, accounts: dict[str, str], expected: str) -> None:
        """The channel-qualified key wins, then the plain id; unknown ids stay as they are."""
        assert expected == resolve_account(accounts, "x", "900")


class TestEpochMs:
    def test_milliseconds_are_exact(self) -> None:
        """Epoch milliseconds keep their exact millisecond, without float rounding."""
        assert datetime(2024, 5, 29, 16, 26, 40, 123000, tzinfo=UTC) == from_epoch_ms("1717000000123")
