"""Platform facts: reply targets and reply windows, one definition for every caller."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from records.platforms import (
    ReplyTarget,
    platform_message_id,
    reply_target,
    reply_window,
    window_closes,
)
from records.wire import SocialEvent

ROME = ZoneInfo("Europe/Rome")
WROTE = datetime(2026, 11, 23, 21, 0, tzinfo=ROME)


def event(**fields: Any) -> SocialEvent:
    base = {"account": "a", "author": {"id": "AUTHOR"}, "at": "2026-11-23T21:14:05Z"}
    return SocialEvent.model_validate({**base, **fields})


class TestReplyTarget:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            pytest.param({"id": "fb:m_abc123", "channel": "facebook", "kind": "dm", "conversation": "fb:PAGE_111:PSID_222"},
                         ReplyTarget("PSID_222", "m_abc123"), id="messenger_dm"),
            pytest.param({"id": "ig:aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx", "channel": "instagram", "kind": "dm",
                          "conversation": "ig:17841400000000000:1234567890123456"},
                         ReplyTarget("1234567890123456", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"), id="instagram_dm"),
            pytest.param({"id": "fb:POST_9_CMT_7", "channel": "facebook", "kind": "comment", "conversation": "fb:PAGE_111:POST_9_CMT_7"},
                         ReplyTarget("AUTHOR", "POST_9_CMT_7"), id="facebook_comment"),
            pytest.param({"id": "wa:wamid.TEST1", "channel": "whatsapp", "kind": "dm", "conversation": "wa:PNID_5:447700900123"},
                         ReplyTarget("447700900123", "wamid.TEST1"), id="whatsapp"),
            pytest.param({"id": "x:1790000000000000001", "channel": "x", "kind": "dm", "conversation": "x:900:777"},
                         ReplyTarget("777", "1790000000000000001"), id="x_dm"),
            pytest.param({"id": "x:179", "channel": "x", "kind": "mention", "conversation": "x:900:777"},
                         ReplyTarget("AUTHOR", "179"), id="x_mention"),
            pytest.param({"id": "tg:6123456789:4182", "channel": "telegram", "kind": "dm", "conversation": "tg:acme_bot:6123456789",
                          "author": {"id": "6123456789"}},
                         ReplyTarget("6123456789", "4182"), id="telegram_private_64_bit"),
            pytest.param({"id": "tg:-1001234567890:42", "channel": "telegram", "kind": "mention",
                          "conversation": "tg:acme_bot:-1001234567890", "author": {"id": "6123456789"}},
                         ReplyTarget("-1001234567890", "42"), id="telegram_supergroup_replies_in_the_group"),
            pytest.param({"id": "crm-881", "channel": "generic", "kind": "dm", "conversation": "crm:881"},
                         ReplyTarget("881", "crm-881"), id="generic_keeps_its_id"),
        ],
    )
    def test_recovers_platform_ids(self, fields: dict[str, Any], expected: ReplyTarget) -> None:
        """The recipient and the platform message id come back out of id and conversation."""
        assert expected == reply_target(event(**fields))

    @pytest.mark.parametrize(
        ("event_id", "expected"),
        [
            pytest.param("tg:6123456789:4182", "4182", id="telegram_message_id_only"),
            pytest.param("wa:wamid.HBgLMTU1NTAwMDExMTEVAgASGBQzQUQ2", "wamid.HBgLMTU1NTAwMDExMTEVAgASGBQzQUQ2", id="wamid"),
            pytest.param("x:1790000000000000002", "1790000000000000002", id="tweet"),
            pytest.param("plain", "plain", id="no_prefix"),
        ],
    )
    def test_platform_message_id(self, event_id: str, expected: str) -> None:
        """The prefix (and Telegram's chat id) is stripped: what is left is what the platform calls the message."""
        assert expected == platform_message_id(event_id)


class TestReplyWindow:
    @pytest.mark.parametrize(
        ("channel", "kind", "human_agent", "expected"),
        [
            pytest.param("facebook", "dm", False, timedelta(hours=24), id="messenger_24h"),
            pytest.param("instagram", "dm", False, timedelta(hours=24), id="instagram_24h"),
            pytest.param("whatsapp", "dm", False, timedelta(hours=24), id="whatsapp_customer_service_24h"),
            pytest.param("facebook", "comment", False, timedelta(days=7), id="comment_private_reply_7d"),
            pytest.param("instagram", "comment", False, timedelta(days=7), id="instagram_comment_private_reply_7d"),
            pytest.param("facebook", "dm", True, timedelta(days=7), id="human_agent_7d"),
            pytest.param("whatsapp", "dm", True, timedelta(hours=24), id="whatsapp_has_no_human_agent"),
            pytest.param("x", "dm", False, None, id="x_none"),
            pytest.param("telegram", "mention", False, None, id="telegram_none"),
            pytest.param("generic", "dm", False, None, id="generic_none"),
        ],
    )
    def test_window(self, channel: str, kind: str, human_agent: bool, expected: timedelta | None) -> None:
        """How long each platform accepts a reply after the customer's last message."""
        assert expected == reply_window(channel, kind, human_agent=human_agent)

    def test_window_closes_from_the_message_time(self) -> None:
        """The window is counted from the customer's message, in the message's own zone."""
        assert datetime(2026, 11, 24, 21, 0, tzinfo=ROME) == window_closes("whatsapp", "dm", WROTE)
