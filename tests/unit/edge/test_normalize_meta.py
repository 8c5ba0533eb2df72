"""Messenger and Instagram payloads normalized to events (README: Events; ids: docs/platforms.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from edge.normalize import InvalidPayload, Skipped, meta

ACCOUNTS = {"PAGE_111": "acme.it.facebook", "IG_1": "acme.it.instagram"}
RECEIVED = datetime(2026, 11, 23, 21, 14, 5, tzinfo=UTC)


def messenger(*messaging: dict[str, Any], object_: str = "page", owner: str = "PAGE_111") -> dict[str, Any]:
    return {"object": object_, "entry": [{"id": owner, "time": 1717000000123, "messaging": list(messaging)}]}


def message(mid: str, sender: str = "PSID_222", recipient: str = "PAGE_111", **fields: Any) -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": 1717000000000,
        "message": {"mid": mid, **fields},
    }


def feed(**value: Any) -> dict[str, Any]:
    base = {
        "item": "comment", "verb": "add", "comment_id": "POST_9_CMT_7", "post_id": "PAGE_111_POST_9",
        "parent_id": "PAGE_111_POST_9", "from": {"id": "USER_333", "name": "Ana Lopez"},
        "message": "Broken on arrival", "created_time": 1717000099,
    }
    return {"object": "page", "entry": [{"id": "PAGE_111", "time": 1717000100,
            "changes": [{"field": "feed", "value": {**base, **value}}]}]}


def run(payload: dict[str, Any], app_id: str | None = None) -> tuple[list[dict[str, Any]], list[Skipped]]:
    result = meta.normalize(payload, ACCOUNTS, received_at=RECEIVED, app_id=app_id)
    return [event.model_dump(mode="json") for event in result.events], result.skipped


class TestMessenger:
    def test_documented_message(self) -> None:
        """Meta's documented Messenger sample becomes exactly the expected event."""
        payload = messenger(message("m_abc123", text="Where is my order?"))
        expected = [{
            "id": "fb:m_abc123", "account": "acme.it.facebook", "channel": "facebook", "kind": "dm",
            "conversation": "fb:PAGE_111:PSID_222", "author": {"id": "PSID_222", "name": None, "followers": None},
            "text": "Where is my order?", "lang": None, "at": "2024-05-29T16:26:40Z", "in_reply_to": None,
        }]
        assert (expected, []) == run(payload)

    def test_batch_keeps_order(self) -> None:
        """Several entries and messages give one event each, in payload order."""
        payload = {"object": "page", "entry": [
            {"id": "PAGE_111", "messaging": [message("m_1", text="a"), message("m_2", text="b")]},
            {"id": "PAGE_111", "messaging": [message("m_3", sender="PSID_9", text="c")]},
        ]}
        events, _ = run(payload)
        assert [("fb:m_1", "fb:PAGE_111:PSID_222"), ("fb:m_2", "fb:PAGE_111:PSID_222"),
                ("fb:m_3", "fb:PAGE_111:PSID_9")] == [(e["id"], e["conversation"]) for e in events]

    def test_echo_of_staff_reply_is_agent_reply(self) -> None:
        """An echo sent from the page inbox is an agent_reply in the customer's conversation."""
        payload = messenger(message("m_echo", sender="PAGE_111", recipient="PSID_222", is_echo=True, text="On it"))
        events, _ = run(payload, app_id="APP_1")
        assert [("agent_reply", "fb:PAGE_111:PSID_222", "PAGE_111")] == [
            (e["kind"], e["conversation"], e["author"]["id"]) for e in events
        ]

    def test_echo_of_our_acknowledgment_is_skipped(self) -> None:
        """An echo sent by our own app is our acknowledgment, not a staff reply."""
        payload = messenger(message("m_ack", sender="PAGE_111", recipient="PSID_222", is_echo=True, app_id=1234))
        assert ([], [Skipped("entry[0].messaging[0]", "echo of our own acknowledgment")]) == run(payload, app_id="1234")

    @pytest.mark.parametrize(
        ("item", "reason"),
        [
            pytest.param({"delivery": {"mids": ["m_1"]}}, "delivery callback, not a message", id="delivery"),
            pytest.param({"read": {"watermark": 1}}, "read callback, not a message", id="read"),
            pytest.param({"reaction": {"mid": "m_1", "action": "react"}}, "reaction callback, not a message", id="reaction"),
            pytest.param({"postback": {"title": "Start"}}, "postback callback, not a message", id="postback"),
        ],
    )
    def test_callbacks_are_skipped(self, item: dict[str, Any], reason: str) -> None:
        """Delivery, read, reaction and postback callbacks produce no event."""
        payload = messenger({"sender": {"id": "PSID_222"}, "recipient": {"id": "PAGE_111"}, "timestamp": 1, **item})
        assert ([], [Skipped("entry[0].messaging[0]", reason)]) == run(payload)

    def test_attachment_without_text(self) -> None:
        """A message with only attachments is still a dm, with no text."""
        payload = messenger(message("m_img", attachments=[{"type": "image", "payload": {"url": "https://x"}}]))
        events, _ = run(payload)
        assert [("fb:m_img", None)] == [(e["id"], e["text"]) for e in events]

    def test_malformed_item_does_not_spoil_the_batch(self) -> None:
        """A message without sender is skipped with the fault; its neighbours are produced."""
        broken = message("m_bad", text="x")
        del broken["sender"]
        events, skipped = run(messenger(broken, message("m_ok", text="fine")))
        assert (["fb:m_ok"], [Skipped("entry[0].messaging[0]", "malformed: missing field 'sender'")]) == (
            [e["id"] for e in events], skipped
        )

    def test_unknown_page_keeps_its_id_as_account(self) -> None:
        """A page missing from the account map gives an event whose account is the page id."""
        events, _ = run(messenger(message("m_x", recipient="PAGE_999", text="hi"), owner="PAGE_999"))
        assert ["PAGE_999"] == [e["account"] for e in events]

    def test_reply_to_keeps_the_quoted_mid(self) -> None:
        """A reply to an earlier message names it in in_reply_to."""
        events, _ = run(messenger(message("m_2", text="and?", reply_to={"mid": "m_1"})))
        assert ["fb:m_1"] == [e["in_reply_to"] for e in events]


class TestInstagram:
    def test_direct_message(self) -> None:
        """Instagram messages have the Messenger shape, an ig: prefix and the IG account."""
        events, _ = run(messenger(message("aWdfZA", sender="IGSID_5", recipient="IG_1", text="ciao"),
                                  object_="instagram", owner="IG_1"))
        assert [("ig:aWdfZA", "instagram", "acme.it.instagram", "ig:IG_1:IGSID_5")] == [
            (e["id"], e["channel"], e["account"], e["conversation"]) for e in events
        ]

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(
                {"id": "C1", "text": "Still broken", "from": {"id": "IGSID_5", "username": "kim"}, "media": {"id": "M1"}},
                ("ig:C1", "comment", "ig:IG_1:C1", "kim", None), id="top_level_comment",
            ),
            pytest.param(
                {"id": "C2", "text": "+1", "from": {"id": "IGSID_6", "username": "lee"}, "media": {"id": "M1"}, "parent_id": "C1"},
                ("ig:C2", "comment", "ig:IG_1:C1", "lee", "ig:C1"), id="reply_in_thread",
            ),
            pytest.param(
                {"id": "C3", "text": "DM us", "from": {"id": "IG_1", "username": "acme"}, "media": {"id": "M1"}, "parent_id": "C1"},
                ("ig:C3", "agent_reply", "ig:IG_1:C1", "acme", "ig:C1"), id="own_reply",
            ),
        ],
    )
    def test_comments(self, value: dict[str, Any], expected: tuple[Any, ...]) -> None:
        """Comments are keyed by their thread; the account's own reply is an agent_reply."""
        payload = {"object": "instagram", "entry": [{"id": "IG_1", "time": 1717000100,
                   "changes": [{"field": "comments", "value": value}]}]}
        events, _ = run(payload)
        assert [expected] == [
            (e["id"], e["kind"], e["conversation"], e["author"]["name"], e["in_reply_to"]) for e in events
        ]

    def test_comment_time_is_the_entry_time(self) -> None:
        """An Instagram comment has no time of its own: the entry's time is used."""
        payload = {"object": "instagram", "entry": [{"id": "IG_1", "time": 1717000100, "changes": [
            {"field": "comments", "value": {"id": "C1", "text": "x", "from": {"id": "U"}}}]}]}
        events, _ = run(payload)
        assert ["2024-05-29T16:28:20Z"] == [e["at"] for e in events]


class TestFeedComments:
    def test_documented_comment(self) -> None:
        """Meta's documented feed (comment) sample becomes a comment in its own thread."""
        expected = [{
            "id": "fb:POST_9_CMT_7", "account": "acme.it.facebook", "channel": "facebook", "kind": "comment",
            "conversation": "fb:PAGE_111:POST_9_CMT_7", "author": {"id": "USER_333", "name": "Ana Lopez", "followers": None},
            "text": "Broken on arrival", "lang": None, "at": "2024-05-29T16:28:19Z", "in_reply_to": "fb:PAGE_111_POST_9",
        }]
        assert (expected, []) == run(feed())

    def test_page_reply_lands_in_the_customer_thread(self) -> None:
        """The page's own reply under a comment is an agent_reply in that comment's thread."""
        events, _ = run(feed(comment_id="POST_9_CMT_8", parent_id="POST_9_CMT_7", **{"from": {"id": "PAGE_111", "name": "Acme"}}))
        assert [("agent_reply", "fb:PAGE_111:POST_9_CMT_7", "PAGE_111")] == [
            (e["kind"], e["conversation"], e["author"]["id"]) for e in events
        ]

    @pytest.mark.parametrize(
        ("created_time", "expected"),
        [
            pytest.param(1717000099, "2024-05-29T16:28:19Z", id="epoch_seconds"),
            pytest.param(1717000099000, "2024-05-29T16:28:19Z", id="epoch_ms"),
            pytest.param("2024-05-29T16:28:19+0000", "2024-05-29T16:28:19Z", id="iso_meta_offset"),
            pytest.param("2024-05-29T18:28:19+02:00", "2024-05-29T16:28:19Z", id="iso_other_offset"),
        ],
    )
    def test_created_time_forms(self, created_time: Any, expected: str) -> None:
        """created_time in seconds, milliseconds or ISO 8601 is the same instant in UTC."""
        events, _ = run(feed(created_time=created_time))
        assert [expected] == [e["at"] for e in events]

    @pytest.mark.parametrize(
        ("item", "verb"),
        [
            pytest.param("comment", "edited", id="edited"),
            pytest.param("comment", "remove", id="removed"),
            pytest.param("reaction", "add", id="reaction"),
            pytest.param("post", "add", id="post"),
        ],
    )
    def test_other_feed_changes_are_skipped(self, item: str, verb: str) -> None:
        """Only a new comment is a message; other feed changes are skipped with the reason."""
        assert ([], [Skipped("entry[0].changes[0]", f"feed {item}/{verb} is not a new comment")]) == run(
            feed(item=item, verb=verb)
        )


class TestInvalidPayload:
    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param([], id="not_an_object"),
            pytest.param({"object": "user", "entry": []}, id="other_object"),
            pytest.param({"object": "page", "entry": {}}, id="entry_not_a_list"),
        ],
    )
    def test_rejected(self, payload: Any) -> None:
        """A payload that is not a Messenger/Instagram one is refused as a whole."""
        with pytest.raises(InvalidPayload):
            meta.normalize(payload, ACCOUNTS, received_at=RECEIVED)
