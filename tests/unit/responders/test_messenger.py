"""Messenger/Instagram comments: public replies under the comment, private replies, their limits."""

from __future__ import annotations

import pytest

from records.wire import AckRequest
from responders.buckets import TokenBuckets
from responders.fakes.samples import ack_request
from responders.messenger import (
    PRIVATE_REPLIES_PER_HOUR,
    SEND_API_PER_SECOND,
)
from tests.support.responders_messenger import comment, sender


class TestMessengerLimits:
    @pytest.mark.parametrize(
        ("request_", "expected"),
        [
            pytest.param(ack_request(), ["messenger:page:acme.it.facebook:PAGE_111"], id="dm_send_api_only"),
            pytest.param(
                comment(False),
                ["messenger:page:acme.it.facebook:PAGE_111", "messenger:private-replies:acme.it.facebook:PAGE_111"],
                id="private_reply_also_hourly_bucket",
            ),
            pytest.param(comment(True), [], id="public_reply_not_a_send_api_call"),
        ],
    )
    def test_buckets_by_kind_of_reply(self, request_: AckRequest, expected: list[str]) -> None:
        """A private reply counts against the Page's Send API and its private-reply buckets."""
        assert expected == [limit.key for limit in sender().limits(request_)]

    def test_no_hour_holds_more_than_750_private_replies(self) -> None:
        """A backlog of private replies starts at once, yet the first hour holds at most 750 of them."""
        now = 0.0
        buckets = TokenBuckets(lambda: now)
        limits = sender().limits(comment(False))
        send_times = [buckets.reserve(limits) for _ in range(PRIVATE_REPLIES_PER_HOUR + 100)]
        in_first_hour = sum(1 for at in send_times if at < 3600)
        assert 0 == send_times[0]
        assert PRIVATE_REPLIES_PER_HOUR - 10 <= in_first_hour <= PRIVATE_REPLIES_PER_HOUR
        assert SEND_API_PER_SECOND == limits[0].rate

