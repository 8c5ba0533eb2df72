"""WhatsApp, X, Telegram and generic payloads normalized to events (README: Events; ids: docs/platforms.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from edge.normalize import InvalidPayload, Skipped, generic, telegram, whatsapp, x

ACCOUNTS = {"PNID_5": "acme.it.whatsapp", "900": "acme_it_x", "acme_help_bot": "acme.it.telegram"}
RECEIVED = datetime(2026, 11, 23, 21, 14, 5, tzinfo=UTC)


def dumped(result: Any) -> tuple[list[dict[str, Any]], list[Skipped]]:
    return [event.model_dump(mode="json") for event in result.events], result.skipped


def wa_value(**value: Any) -> dict[str, Any]:
    base = {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID_5"}}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA_1", "changes": [{"field": "messages", "value": {**base, **value}}]}]}


def wa_message(wamid: str, kind: str = "text", **fields: Any) -> dict[str, Any]:
    return {"from": "447700900123", "id": wamid, "timestamp": "1717000200", "type": kind, **fields}


class TestWhatsApp:
    def run(self, payload: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Skipped]]:
        return dumped(whatsapp.normalize(payload, ACCOUNTS, received_at=RECEIVED))

    def test_documented_message(self) -> None:
        """The Cloud API's documented text-message sample becomes exactly the expected event."""
        payload = wa_value(contacts=[{"profile": {"name": "Sam Lee"}, "wa_id": "447700900123"}],
                           messages=[wa_message("wamid.TEST1", text={"body": "Hi, refund please"})])
        expected = [{
            "id": "wa:wamid.TEST1", "account": "acme.it.whatsapp", "channel": "whatsapp", "kind": "dm",
            "conversation": "wa:PNID_5:447700900123", "author": {"id": "447700900123", "name": "Sam Lee", "followers": None},
            "text": "Hi, refund please", "lang": None, "at": "2024-05-29T16:30:00Z", "in_reply_to": None,
        }]
        assert (expected, []) == self.run(payload)

    def test_status_callbacks_are_skipped(self) -> None:
        """Status callbacks of our own sends produce no event."""
        payload = wa_value(statuses=[{"id": "wamid.OUT9", "status": "failed", "timestamp": "1717000300",
                                      "recipient_id": "447700900123"}])
        assert ([], [Skipped("entry[0].changes[0].statuses[0]", "status callback (failed)")]) == self.run(payload)

    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            pytest.param(wa_message("w1", "image", image={"id": "i", "caption": "the dent"}), "the dent", id="image_caption"),
            pytest.param(wa_message("w2", "audio", audio={"id": "a"}), None, id="audio_no_text"),
            pytest.param(wa_message("w3", "button", button={"text": "Talk to us"}), "Talk to us", id="button"),
            pytest.param(wa_message("w4", "interactive", interactive={"type": "list_reply", "list_reply": {"title": "Refund"}}),
                         "Refund", id="list_reply"),
        ],
    )
    def test_non_text_messages(self, message: dict[str, Any], expected: str | None) -> None:
        """A non-text message is a dm with its caption or title as text, or none."""
        events, _ = self.run(wa_value(messages=[message]))
        assert [expected] == [e["text"] for e in events]

    def test_reaction_is_skipped_and_batch_continues(self) -> None:
        """A reaction is skipped; the other messages of the batch are produced, in order."""
        payload = wa_value(messages=[
            wa_message("w1", text={"body": "one"}),
            wa_message("w2", "reaction", reaction={"message_id": "w1", "emoji": "+"}),
            wa_message("w3", text={"body": "three"}, context={"id": "w1"}),
        ])
        events, skipped = self.run(payload)
        assert ([("wa:w1", None), ("wa:w3", "wa:w1")], [Skipped("entry[0].changes[0].messages[1]", "reaction, not a message")]) == (
            [(e["id"], e["in_reply_to"]) for e in events], skipped
        )


def dm(event_id: str, sender: str, recipient: str, **create: Any) -> dict[str, Any]:
    return {"type": "message_create", "id": event_id, "created_timestamp": "1717000400000",
            "message_create": {"target": {"recipient_id": recipient}, "sender_id": sender,
                               "message_data": {"text": "My card was charged twice"}, **create}}


def tweet(tweet_id: str, user: str, **fields: Any) -> dict[str, Any]:
    return {"id_str": tweet_id, "text": "@acme_help app crashes on login", "created_at": "Wed Jun 05 10:00:00 +0000 2024",
            "user": {"id_str": user, "screen_name": f"cust_{user}"}, "in_reply_to_status_id_str": None, **fields}


class TestX:
    def run(self, payload: dict[str, Any], app_id: str | None = None) -> tuple[list[dict[str, Any]], list[Skipped]]:
        return dumped(x.normalize(payload, ACCOUNTS, received_at=RECEIVED, app_id=app_id))

    def test_documented_dm(self) -> None:
        """The Account Activity API's documented DM becomes exactly the expected event."""
        payload = {"for_user_id": "900", "direct_message_events": [dm("1790000000000000001", "777", "900")],
                   "users": {"777": {"id": "777", "screen_name": "cust_777", "followers_count": 120}}}
        expected = [{
            "id": "x:1790000000000000001", "account": "acme_it_x", "channel": "x", "kind": "dm",
            "conversation": "x:900:777", "author": {"id": "777", "name": "cust_777", "followers": 120},
            "text": "My card was charged twice", "lang": None, "at": "2024-05-29T16:33:20Z", "in_reply_to": None,
        }]
        assert (expected, []) == self.run(payload)

    def test_documented_mention(self) -> None:
        """The Account Activity API's documented mention becomes a mention in the customer's conversation."""
        payload = {"for_user_id": "900", "user_has_blocked": False, "tweet_create_events": [tweet("1790000000000000002", "777")]}
        events, _ = self.run(payload)
        assert [("x:1790000000000000002", "mention", "x:900:777", "2024-06-05T10:00:00Z")] == [
            (e["id"], e["kind"], e["conversation"], e["at"]) for e in events
        ]

    @pytest.mark.parametrize(
        ("create", "app_id", "expected"),
        [
            pytest.param({}, "APP_1", [("agent_reply", "x:900:777", "900")], id="staff_dm"),
            pytest.param({"source_app_id": "APP_1"}, "APP_1", [], id="our_acknowledgment"),
        ],
    )
    def test_own_dms(self, create: dict[str, Any], app_id: str, expected: list[tuple[str, str, str]]) -> None:
        """The account's own DM is an agent_reply, unless our app sent it (then skipped)."""
        payload = {"for_user_id": "900", "direct_message_events": [dm("1", "900", "777", **create)]}
        events, _ = self.run(payload, app_id=app_id)
        assert expected == [(e["kind"], e["conversation"], e["author"]["id"]) for e in events]

    @pytest.mark.parametrize(
        ("item", "expected"),
        [
            pytest.param(tweet("5", "900", in_reply_to_user_id_str="777", in_reply_to_status_id_str="4"),
                         ("agent_reply", "x:900:777", "x:4"), id="own_reply_to_customer"),
            pytest.param(tweet("6", "777", truncated=True, extended_tweet={"full_text": "long text"}),
                         ("mention", "x:900:777", None), id="truncated_customer_tweet"),
        ],
    )
    def test_tweets(self, item: dict[str, Any], expected: tuple[Any, ...]) -> None:
        """Own replies to customers are agent_reply; customer tweets are mentions."""
        events, _ = self.run({"for_user_id": "900", "tweet_create_events": [item]})
        assert [expected] == [(e["kind"], e["conversation"], e["in_reply_to"]) for e in events]

    def test_truncated_tweet_uses_full_text(self) -> None:
        """A truncated tweet's text is extended_tweet.full_text."""
        events, _ = self.run({"for_user_id": "900", "tweet_create_events": [
            tweet("6", "777", truncated=True, extended_tweet={"full_text": "long text"})]})
        assert ["long text"] == [e["text"] for e in events]

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            pytest.param({"tweet_create_events": [tweet("7", "900")]}, "own post, not a reply to a customer", id="own_post"),
            pytest.param({"tweet_create_events": [tweet("8", "777", retweeted_status={"id_str": "1"})]}, "retweet, not a message", id="retweet"),
            pytest.param({"favorite_events": [{"id": "f"}]}, "favorite_events: not a message", id="favorite"),
        ],
    )
    def test_skipped(self, payload: dict[str, Any], reason: str) -> None:
        """Own posts, retweets and non-message activity produce no event."""
        events, skipped = self.run({"for_user_id": "900", **payload})
        assert ([], [reason]) == (events, [s.reason for s in skipped])

    def test_created_at_with_offset(self) -> None:
        """created_at with a non-zero offset is converted to UTC, whatever the locale."""
        assert datetime(2024, 6, 5, 8, 30, tzinfo=UTC) == x.parse_created_at("Wed Jun 05 10:00:00 +0130 2024")

    def test_missing_for_user_id_is_invalid(self) -> None:
        """A payload without for_user_id is not an Account Activity payload."""
        with pytest.raises(InvalidPayload):
            x.normalize({"tweet_create_events": []}, ACCOUNTS, received_at=RECEIVED)


def update(**message: Any) -> dict[str, Any]:
    base = {"message_id": 42, "date": 1717000500,
            "from": {"id": 123456, "is_bot": False, "first_name": "Kim", "username": "kim_t"},
            "chat": {"id": 123456, "type": "private", "first_name": "Kim"}, "text": "Order never arrived"}
    return {"update_id": 500001, "message": {**base, **message}}


class TestTelegram:
    def run(self, payload: dict[str, Any], account: str | None = None) -> tuple[list[dict[str, Any]], list[Skipped]]:
        return dumped(telegram.normalize(payload, ACCOUNTS, received_at=RECEIVED, bot="acme_help_bot", account=account))

    def test_documented_update(self) -> None:
        """The Bot API's documented private-chat update becomes exactly the expected event."""
        expected = [{
            "id": "tg:123456:42", "account": "acme.it.telegram", "channel": "telegram", "kind": "dm",
            "conversation": "tg:acme_help_bot:123456", "author": {"id": "123456", "name": "Kim", "followers": None},
            "text": "Order never arrived", "lang": None, "at": "2024-05-29T16:35:00Z", "in_reply_to": None,
        }]
        assert (expected, []) == self.run(update())

    def test_group_message_is_a_mention_with_int64_chat(self) -> None:
        """A group message is public (a mention); a chat id beyond 32 bits is kept exactly."""
        events, _ = self.run(update(chat={"id": -1001234567890123, "type": "supergroup", "title": "Acme fans"},
                                    reply_to_message={"message_id": 41}))
        assert [("tg:-1001234567890123:42", "mention", "tg:acme_help_bot:-1001234567890123", "tg:-1001234567890123:41")] == [
            (e["id"], e["kind"], e["conversation"], e["in_reply_to"]) for e in events
        ]

    def test_configured_account_wins(self) -> None:
        """telegram_bot_account, when given, is the account of every update."""
        events, _ = self.run(update(), account="acme.us.telegram")
        assert ["acme.us.telegram"] == [e["account"] for e in events]

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            pytest.param({"update_id": 1, "edited_message": {}}, "edited_message is not a new message", id="edited"),
            pytest.param({"update_id": 2, "callback_query": {}}, "callback_query is not a new message", id="callback"),
            pytest.param(update(**{"from": {"id": 9, "is_bot": True}}), "message from a bot", id="bot"),
            pytest.param(update(**{"from": {"id": 7000000001, "is_bot": True, "first_name": "Acme Help",
                                            "username": "acme_help_bot"},
                                   "chat": {"id": -1001234567890, "type": "supergroup", "title": "Acme fans"}}),
                         "message from a bot", id="our_own_bot_in_a_group"),
            pytest.param({"update_id": 3, "channel_post": {"message_id": 7, "date": 1717000500,
                                                           "chat": {"id": -1009876543210, "type": "channel", "title": "Acme news"},
                                                           "text": "New timetable"}},
                         "channel_post: a channel's own post, not a customer writing", id="channel_post"),
        ],
    )
    def test_skipped(self, payload: dict[str, Any], reason: str) -> None:
        """Edits, callbacks, channel posts and bots' messages (our own included) produce no event."""
        events, skipped = self.run(payload)
        assert ([], [reason]) == (events, [s.reason for s in skipped])


EVENT = {"id": "crm:1", "account": "acme.it.facebook", "channel": "generic", "kind": "dm",
         "conversation": "crm:c1", "author": {"id": "u1"}, "text": "hi", "lang": None,
         "at": "2026-11-23T22:14:05+01:00", "in_reply_to": None}


class TestGeneric:
    @pytest.mark.parametrize(
        ("payload", "expected_ids"),
        [
            pytest.param(EVENT, ["crm:1"], id="one_object"),
            pytest.param([EVENT, {**EVENT, "id": "crm:2"}], ["crm:1", "crm:2"], id="list"),
        ],
    )
    def test_valid(self, payload: Any, expected_ids: list[str]) -> None:
        """An event object (README: Events), or a list of them, is taken as it is."""
        assert expected_ids == [e.id for e in generic.normalize(payload).events]

    def test_invalid_items_name_their_fault(self) -> None:
        """Each invalid item is listed with its position and the field at fault."""
        result = generic.normalize([EVENT, {**EVENT, "at": "2026-11-23T22:14:05"}, 3])
        expected = [
            Skipped("[1]", "at: Value error, needs a UTC offset or Z, e.g. 2026-11-23T21:14:05Z"),
            Skipped("[2]", "expected a JSON object, got int"),
        ]
        assert expected == result.skipped

    def test_scalar_is_invalid(self) -> None:
        """A body that is neither an object nor a list is refused as a whole."""
        with pytest.raises(InvalidPayload):
            generic.normalize("event")
