"""Shared normalizer helpers: account resolution, time forms, reply targets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from edge.normalize import (
    ReplyTarget,
    from_epoch_ms,
    reply_target,
    resolve_account,
)
from streams.records import SocialEvent


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


def event(**fields: Any) -> SocialEvent:
    base = {"account": "a", "author": {"id": "AUTHOR"}, "at": "2026-11-23T21:14:05Z"}
    return SocialEvent.model_validate({**base, **fields})


class TestReplyTarget:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            pytest.param({"id": "fb:m_abc123", "channel": "facebook", "kind": "dm", "conversation": "fb:PAGE_111:PSID_222"},
                         ReplyTarget("PSID_222", "m_abc123"), id="messenger_dm"),
            pytest.param({"id": "fb:POST_9_CMT_7", "channel": "facebook", "kind": "comment", "conversation": "fb:PAGE_111:POST_9_CMT_7"},
                         ReplyTarget("AUTHOR", "POST_9_CMT_7"), id="facebook_comment"),
            pytest.param({"id": "wa:wamid.TEST1", "channel": "whatsapp", "kind": "dm", "conversation": "wa:PNID_5:447700900123"},
                         ReplyTarget("447700900123", "wamid.TEST1"), id="whatsapp"),
            pytest.param({"id": "x:179", "channel": "x", "kind": "mention", "conversation": "x:900:777"},
                         ReplyTarget("AUTHOR", "179"), id="x_mention"),
            pytest.param({"id": "tg:-100123:42", "channel": "telegram", "kind": "mention", "conversation": "tg:bot:-100123"},
                         ReplyTarget("-100123", "42"), id="telegram_group"),
        ],
    )
    def test_recovers_platform_ids(self, fields: dict[str, Any], expected: ReplyTarget) -> None:
        """The recipient and the platform message id come back out of id and conversation."""
        assert expected == reply_target(event(**fields))
