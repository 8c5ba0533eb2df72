"""The fake platforms refuse what the real platforms refuse, and accept the valid request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from responders.fakes import FakeGraph, FakeTelegram, FakeX
from responders.fakes.samples import running_clock
from tests.support.responders_fakes_refuse import (
    BOT_TOKEN,
    PRIVATE_CHAT,
    PSID,
    SUPERGROUP,
    TOKEN,
)

# -- What a fake cannot be told ------------------------------------------------------------


class TestFakesRefuseImpossibleFacts:
    @pytest.mark.parametrize(
        "tell",
        [
            pytest.param(lambda: FakeTelegram({BOT_TOKEN}).add_message(SUPERGROUP, 1), id="telegram_private_chat_with_negative_id"),
            pytest.param(lambda: FakeTelegram({BOT_TOKEN}).add_message(PRIVATE_CHAT, 1, "supergroup"), id="telegram_supergroup_with_positive_id"),
            pytest.param(lambda: FakeTelegram({BOT_TOKEN}).add_message(PRIVATE_CHAT, 1, "forum"), id="telegram_unknown_chat_type"),
            pytest.param(lambda: FakeTelegram({BOT_TOKEN}).add_message(PRIVATE_CHAT, "42"), id="telegram_message_id_string"),  # type: ignore[arg-type]
            pytest.param(lambda: FakeTelegram({BOT_TOKEN}).add_chat(PRIVATE_CHAT, username="@kim_t"), id="telegram_username_on_private_chat"),
            pytest.param(lambda: FakeX({TOKEN}).add_user("cust_777"), id="x_user_id_not_numeric"),
            pytest.param(lambda: FakeX({TOKEN}).add_tweet("t_201"), id="x_tweet_id_not_numeric"),
            pytest.param(lambda: FakeGraph({TOKEN}).add_customer(PSID, datetime(2026, 11, 23, 21, 0)), id="graph_naive_datetime"),
        ],
    )
    def test_impossible_fact_is_refused(self, tell: Callable[[], None]) -> None:
        """A fake will not be told what no platform could hold (a wrong id shape, chat type or naive time)."""
        with pytest.raises((TypeError, ValueError)):
            tell()


class TestRunningClock:
    def test_starts_at_the_instant_and_runs_with_monotonic_time(self) -> None:
        """running_clock answers the given instant first, then moves as the monotonic clock moves."""
        ticks = iter([100.0, 100.0, 102.5])
        clock = running_clock(datetime(2026, 11, 23, 21, 14, 5, tzinfo=UTC), monotonic=lambda: next(ticks))
        start = datetime(2026, 11, 23, 21, 14, 5, tzinfo=UTC).timestamp()
        assert [start, start + 2.5] == [clock(), clock()]

