"""Chatwoot account-webhook bodies normalized to events and desk signals (edge.normalize.chatwoot)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from edge.normalize import InvalidPayload, Limits, Normalized, Skipped, chatwoot
from records.actions import Answered, Claim, decode_action
from tests.support.chatwoot import (
    ACCOUNT,
    BOT,
    CONTACT,
    CONVERSATION,
    FACEBOOK_INBOX,
    LUCIA,
    MESSAGE,
    OTHER_TEAM_INBOX,
    PABLO,
    STRANGER,
    WHATSAPP_INBOX,
    agent,
    agent_bot,
    conversation_event,
    coverage,
    message_created,
)

RECEIVED = datetime(2026, 11, 27, 21, 2, 49, tzinfo=UTC)
DELIVERY = "3f1c9a52-7d4e-4b8a-9e0f-5a6b7c8d9e01"
COVERAGE = coverage()


def run(body: Any, **options: Any) -> Normalized:
    options.setdefault("coverage", COVERAGE)
    return chatwoot.normalize(body, received_at=RECEIVED, **options)


def events(body: Any, **options: Any) -> tuple[list[dict[str, Any]], list[Skipped]]:
    result = run(body, **options)
    return [event.model_dump(mode="json") for event in result.events], result.skipped


DESK = {"kind": "chatwoot", "account": ACCOUNT, "inbox": FACEBOOK_INBOX, "conversation": CONVERSATION,
        "message": MESSAGE, "can_reply": True, "status": "open", "assignee": None, "contact": CONTACT}


class TestCustomerMessage:
    def test_incoming_message_is_a_dm_with_the_desk(self) -> None:
        """A contact's message on a Facebook inbox becomes exactly this event."""
        expected = [{
            "id": f"cw:{ACCOUNT}:{MESSAGE}", "account": f"chatwoot:{ACCOUNT}/{FACEBOOK_INBOX}", "channel": "facebook",
            "kind": "dm", "conversation": f"cw:{ACCOUNT}:{CONVERSATION}",
            "author": {"id": str(CONTACT), "name": "Ana López", "followers": None},
            "text": "Hola, mi pedido 4471 no ha llegado", "lang": None, "at": "2026-11-27T21:02:48.123000Z",
            "in_reply_to": None, "desk": DESK,
        }]
        assert (expected, []) == events(message_created())

    def test_the_event_on_the_wire(self) -> None:
        """The desk key travels with the event as JSON, 64-bit ids as numbers."""
        event = run(message_created(message=2**63 - 1)).events[0]
        wire = orjson.loads(event.to_json())
        assert (f"cw:{ACCOUNT}:{2**63 - 1}", 2**63 - 1, "chatwoot") == (wire["id"], wire["desk"]["message"], wire["desk"]["kind"])

    @pytest.mark.parametrize(
        ("channel", "expected"),
        [
            ("Channel::FacebookPage", "facebook"),
            ("Channel::Instagram", "instagram"),
            ("Channel::Whatsapp", "whatsapp"),
            ("Channel::TwitterProfile", "x"),
            ("Channel::Telegram", "telegram"),
            ("Channel::WebWidget", "generic"),
            ("Channel::Api", "generic"),
            ("Channel::Email", "generic"),
            ("Channel::Sms", "generic"),
            ("Channel::Line", "generic"),
            ("Channel::TwilioSms", "generic"),
        ],
    )
    def test_channel(self, channel: str, expected: str) -> None:
        """The inbox's channel type names the event's channel; a desk-only channel is generic."""
        assert expected == run(message_created(channel=channel)).events[0].channel

    def test_inbox_from_the_conversation_when_the_body_has_no_inbox(self) -> None:
        body = message_created(inbox=WHATSAPP_INBOX, channel="Channel::Whatsapp")
        del body["inbox"]
        assert f"chatwoot:{ACCOUNT}/{WHATSAPP_INBOX}" == run(body).events[0].account

    @pytest.mark.parametrize(
        ("created_at", "expected"),
        [
            pytest.param("2026-11-27T21:02:48.123Z", "2026-11-27T21:02:48.123000Z", id="rails_iso"),
            pytest.param("2026-11-27 21:02:48 UTC", "2026-11-27T21:02:48Z", id="documented_sample"),
            pytest.param(1795813368, "2026-11-27T21:02:48Z", id="unix_seconds"),
            pytest.param("1795813368", "2026-11-27T21:02:48Z", id="unix_seconds_text"),
            pytest.param("2026-11-27T22:02:48+01:00", "2026-11-27T21:02:48Z", id="offset"),
            pytest.param(None, "2026-11-27T21:02:49Z", id="absent_is_the_request_time"),
        ],
    )
    def test_created_at(self, created_at: Any, expected: str) -> None:
        body = message_created()
        body["created_at"] = created_at
        assert expected == run(body).events[0].model_dump(mode="json")["at"]

    def test_attachment_without_text(self) -> None:
        """A photo with no caption: the event has no text, the message is still answered."""
        assert [None] == [event.text for event in run(message_created(content=None)).events]

    def test_desk_state_is_carried(self) -> None:
        """The conversation's status, assignee and reply window as the desk sees them."""
        desk = run(message_created(status="pending", assignee=PABLO, can_reply=False)).events[0].model_dump()["desk"]
        assert ("pending", PABLO, False) == (desk["status"], desk["assignee"], desk["can_reply"])

    def test_ids_as_digit_strings(self) -> None:
        """Chatwoot's documented sample writes some ids as strings: read as their numbers."""
        body = message_created()
        body["account"]["id"], body["id"] = "7", "1902837"
        assert f"cw:{ACCOUNT}:{MESSAGE}" == run(body).events[0].id


class TestStaffAndOwnMessages:
    def test_agent_reply(self) -> None:
        """An agent's outgoing message is an agent_reply by that agent, in the customer's conversation."""
        (event,), skipped = events(message_created(message_type="outgoing", sender=agent(), content="Te lo miro ahora",
                                                   message=MESSAGE + 1, assignee=PABLO))
        assert ("agent_reply", {"id": str(PABLO), "name": "Pablo Ruiz", "followers": None}, f"cw:{ACCOUNT}:{CONVERSATION}",
                f"cw:{ACCOUNT}:{MESSAGE + 1}", CONTACT, []) == (
            event["kind"], event["author"], event["conversation"], event["id"], event["desk"]["contact"], skipped,
        )

    def test_own_message_by_its_mark(self) -> None:
        """offhours' acknowledgment, posted with a user token, comes back marked: skipped."""
        body = message_created(message_type="outgoing", sender=agent(), content_attributes={"offhours_id": "ack:cw:7:1902837"})
        assert ([], [Skipped(f"message {MESSAGE}", "offhours' own message")]) == events(body)

    @pytest.mark.parametrize("sender", ["agent_bot:3", "user:32"])
    def test_own_message_by_its_sender(self, sender: str) -> None:
        """An unmarked message from the identity offhours posts as (own_senders): skipped."""
        who = agent_bot() if sender.startswith("agent_bot") else agent()
        body = message_created(message_type="outgoing", sender=who)
        assert ([], [Skipped(f"message {MESSAGE}", "offhours' own message")]) == events(body, own_senders=[sender])

    def test_another_bot_is_not_staff(self) -> None:
        """Another agent bot's message (a chatbot's answer) is not a staff reply."""
        result = run(message_created(message_type="outgoing", sender=agent_bot(BOT + 1)))
        assert ([], ["outgoing message not written by staff (sender type 'agent_bot'): a bot, an automation or a campaign"]) == (
            result.events, [s.reason for s in result.skipped]
        )

    def test_campaign_without_sender(self) -> None:
        body = message_created(message_type="outgoing")
        body["sender"] = None
        assert ["outgoing message not written by staff (sender type None): a bot, an automation or a campaign"] == [
            s.reason for s in run(body).skipped
        ]


SKIPPED = [
    pytest.param(message_created(private=True, message_type="outgoing", sender=agent()),
                 "private note: for staff only, the customer never sees it", id="private_note"),
    pytest.param(message_created(message_type="activity", sender=None, content="Conversation was marked resolved by Pablo Ruiz"),
                 "activity message: a line the desk writes itself, not a customer or staff message", id="activity"),
    pytest.param(message_created(message_type="template", sender=None),
                 "template message: a form or card the desk sends, not a customer or staff message", id="template"),
    pytest.param({**message_created(), "event": "message_updated"},
                 "message_updated: an edit or a delivery status of a message already received", id="message_updated"),
    pytest.param({"event": "contact_created", "id": CONTACT, "name": "Ana López", "account": {"id": ACCOUNT}},
                 "contact_created: a contact, no message", id="contact_created"),
    pytest.param({"event": "webwidget_triggered", "id": 90517, "source_id": "405f1d30", "current_conversation": None},
                 "webwidget_triggered: a visitor opened the web widget, no message", id="webwidget_triggered"),
    pytest.param({"event": "inbox_created", "id": 44}, "inbox_created carries no customer message", id="unknown_event"),
    pytest.param({**message_created(), "message_type": "incoming", "sender": agent()},
                 "incoming message not from a contact (sender type 'user')", id="incoming_from_a_user"),
]


class TestSkipped:
    @pytest.mark.parametrize(("body", "reason"), SKIPPED)
    def test_skipped_with_reason(self, body: dict[str, Any], reason: str) -> None:
        result = run(body)
        assert ([], [], [reason]) == (result.events, result.actions, [s.reason for s in result.skipped])


class TestMalformed:
    @pytest.mark.parametrize(
        ("change", "fault"),
        [
            pytest.param(lambda b: b.pop("account"), "account.id is missing", id="no_account"),
            pytest.param(lambda b: b.__setitem__("id", 2**64), "is not a positive id of at most 64 bits", id="id_beyond_64_bits"),
            pytest.param(lambda b: b.__setitem__("id", -5), "is not a positive id", id="negative_id"),
            pytest.param(lambda b: b.__setitem__("id", {"x": 1}), "id is not a whole number", id="id_object"),
            pytest.param(lambda b: b.__setitem__("conversation", None), "conversation is missing", id="no_conversation"),
            pytest.param(lambda b: b.__setitem__("conversation", "4821"), "conversation is not an object", id="conversation_text"),
            pytest.param(lambda b: b.__setitem__("created_at", "yesterday"), "malformed:", id="bad_time"),
            pytest.param(lambda b: b.__setitem__("created_at", "3026-11-27T21:02:48Z"), "is not between 2000-01-01 and 2100-01-01", id="time_far_ahead"),
            pytest.param(lambda b: b["sender"].__setitem__("id", None), "sender.id is missing", id="no_sender_id"),
            pytest.param(lambda b: b["conversation"].__setitem__("id", 1.5), "conversation.id is not a whole number", id="fractional_conversation"),
        ],
    )
    def test_skipped_as_malformed(self, change: Any, fault: str) -> None:
        """A body that is a message but has a fault is skipped, naming it (no error, no event)."""
        body = message_created()
        change(body)
        result = run(body)
        assert ([], 1, True) == (result.events, len(result.skipped), fault in result.skipped[0].reason), result.skipped

    def test_text_over_the_limit(self) -> None:
        result = run(message_created(content="a" * 101), limits=Limits(max_text_chars=100))
        assert ([], ["text of 101 characters is over the limit of 100 (OFFHOURS_EDGE__MAX_TEXT_CHARS)"]) == (
            result.events, [s.reason for s in result.skipped]
        )

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            pytest.param([message_created()], "expected a JSON object, got list", id="list"),
            pytest.param({"id": MESSAGE}, "event is missing: not a Chatwoot webhook body", id="no_event"),
            pytest.param({"event": 5}, "event is not a string: 5", id="event_number"),
        ],
    )
    def test_not_a_chatwoot_body(self, body: Any, reason: str) -> None:
        with pytest.raises(InvalidPayload) as caught:
            run(body)
        assert reason == caught.value.reason


def only_action(result: Normalized) -> Claim | Answered:
    assert ([], [], 1) == (result.events, result.skipped, len(result.actions)), result.skipped
    return result.actions[0]


class TestDeskSignals:
    def test_assignment_is_a_claim_by_the_member(self) -> None:
        """Assigned to agent 32 in the desk: pablo (chatwoot_agent 32) claims the conversation."""
        body = conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)})
        action = only_action(run(body, delivery=DELIVERY))
        assert {
            "action_id": f"claim:chatwoot:{DELIVERY}", "action": "claim", "conversation": f"cw:{ACCOUNT}:{CONVERSATION}",
            "event_id": None, "member": "pablo", "by": f"chatwoot:agent:{PABLO}", "via": "chatwoot",
            "at": "2026-11-27T21:02:49+00:00",
        } == action.to_dict()

    def test_offhours_own_assignment_is_no_claim(self) -> None:
        """offhours names the agent it assigns in the custom attribute offhours_assignee first:
        that assignment's webhook is skipped; a later one to another agent is a claim."""
        body = conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)})
        result = run({**body, "custom_attributes": {"offhours_assignee": PABLO}}, delivery=DELIVERY)
        assert ([], [f"offhours' own assignment to agent {PABLO}: no claim"]) == (
            result.actions, [skip.reason for skip in result.skipped])
        other = conversation_event("conversation_updated", assignee=LUCIA, changed={"assignee_id": (PABLO, LUCIA)})
        claim = only_action(run({**other, "custom_attributes": {"offhours_assignee": PABLO}}, delivery=DELIVERY))
        assert "lucia" == claim.member

    def test_the_record_reads_back(self) -> None:
        """What the worker's actions agent reads is the claim written."""
        body = conversation_event("conversation_updated", assignee=LUCIA, changed={"assignee_id": (PABLO, LUCIA)})
        action = only_action(run(body, delivery=DELIVERY))
        assert action == decode_action(action.to_json())

    def test_resolved_is_answered(self) -> None:
        body = conversation_event("conversation_status_changed", status="resolved", assignee=LUCIA,
                                  changed={"status": ("open", "resolved")})
        action = only_action(run(body, delivery=DELIVERY))
        assert (Answered, "lucia", f"chatwoot:agent:{LUCIA}", f"answered:chatwoot:{DELIVERY}") == (
            type(action), action.member, action.by, action.action_id,
        )

    def test_resolved_without_assignee(self) -> None:
        body = conversation_event("conversation_status_changed", status="resolved", changed={"status": ("pending", "resolved")})
        action = only_action(run(body))
        assert (None, "chatwoot", f"answered:chatwoot:{ACCOUNT}:{CONVERSATION}:-:{int(RECEIVED.timestamp())}") == (
            action.member, action.by, action.action_id,
        )

    def test_created_already_assigned(self) -> None:
        """A conversation auto-assigned as it is created: a claim."""
        action = only_action(run(conversation_event("conversation_created", assignee=LUCIA)))
        assert (Claim, "lucia") == (type(action), action.member)

    def test_agent_of_the_team_that_answers_the_inbox(self) -> None:
        """Agent 31 is lucia in care-es and joao in care-pt: the inbox's team decides."""
        body = conversation_event("conversation_updated", inbox=OTHER_TEAM_INBOX, assignee=LUCIA,
                                  changed={"assignee_id": (None, LUCIA)})
        assert "joao" == only_action(run(body)).member

    def test_account_from_the_coverage_when_the_body_has_none(self) -> None:
        """A conversation body without messages names no account: the inbox's team gives it."""
        body = conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)})
        body["messages"] = []
        assert f"cw:{ACCOUNT}:{CONVERSATION}" == only_action(run(body)).conversation

    @pytest.mark.parametrize(
        ("body", "options", "reason"),
        [
            pytest.param(conversation_event("conversation_updated", assignee=STRANGER, changed={"assignee_id": (None, STRANGER)}),
                         {}, f"Chatwoot agent {STRANGER} is no staff member of team 'care-es' (no chatwoot_agent: {STRANGER})",
                         id="unknown_agent"),
            pytest.param(conversation_event("conversation_updated", changed={"assignee_id": (PABLO, None)}),
                         {}, "unassigned: nothing to record", id="unassigned"),
            pytest.param(conversation_event("conversation_updated", assignee=PABLO, changed={"label_list": ([], ["vip"])}),
                         {}, "changes label_list: no assignment (a resolution is read from conversation_status_changed)",
                         id="labels_changed"),
            pytest.param(conversation_event("conversation_updated", status="resolved", changed={"status": ("open", "resolved")}),
                         {}, "changes status: no assignment (a resolution is read from conversation_status_changed)",
                         id="resolution_in_conversation_updated"),
            pytest.param(conversation_event("conversation_updated", assignee=PABLO), {},
                         "no changed_attributes: what changed is unknown (Chatwoot before 2.x?)", id="no_changed_attributes"),
            pytest.param(conversation_event("conversation_status_changed", status="open", changed={"status": ("resolved", "open")}),
                         {}, "status 'open': nothing to record (only resolved is answered)", id="reopened"),
            pytest.param(conversation_event("conversation_created"), {},
                         "a new conversation: its messages arrive as message_created", id="created_unassigned"),
            pytest.param(conversation_event("conversation_updated", inbox=999, assignee=PABLO, changed={"assignee_id": (None, PABLO)}),
                         {}, "no team of the coverage answers Chatwoot inbox 999", id="inbox_of_no_team"),
            pytest.param(conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)}),
                         {"coverage": None}, "no coverage known yet: the desk's agents cannot be told apart", id="no_coverage"),
        ],
    )
    def test_skipped_with_reason(self, body: dict[str, Any], options: dict[str, Any], reason: str) -> None:
        result = run(body, **options)
        assert ([], [], [reason]) == (result.events, result.actions, [s.reason for s in result.skipped])

    def test_odd_delivery_id_is_not_used(self) -> None:
        """A delivery header that is not an id (spaces, quotes) does not become part of the record's id."""
        body = conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)})
        action = only_action(run(body, delivery='x" or 1=1'))
        assert action.action_id == f"claim:chatwoot:{ACCOUNT}:{CONVERSATION}:{PABLO}:{int(RECEIVED.timestamp())}"
