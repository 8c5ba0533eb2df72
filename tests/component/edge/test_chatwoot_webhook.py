"""POST /webhooks/chatwoot end to end over real HTTP: signed Chatwoot deliveries to events and staff actions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from edge import signatures
from edge.actions import MemoryActionSink
from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.sink import MemoryEventSink
from edge.webhooks import INGEST
from tests.support.chatwoot import (
    ACCOUNT,
    BOT,
    CONVERSATION,
    CREATED_S,
    FACEBOOK_INBOX,
    LUCIA,
    MESSAGE,
    PABLO,
    STRANGER,
    agent,
    agent_bot,
    conversation_event,
    coverage,
    message_created,
)

SECRET = "cw-webhook-secret-4f9a1c2e7b"
NOW = datetime(2026, 11, 27, 21, 2, 50, tzinfo=UTC)
STAMP = str(CREATED_S + 1)
SETTINGS = EdgeSettings(chatwoot_webhook_secret=SECRET, chatwoot_own_senders=[f"agent_bot:{BOT}"])
COVERAGE = coverage()


class Desk:
    """A running webhook app, its event and action sinks, and a way to post as Chatwoot does."""

    def __init__(self, client: TestClient, events: MemoryEventSink, actions: MemoryActionSink) -> None:
        self.client = client
        self.events = events
        self.actions = actions
        self.deliveries = 0

    async def post(
        self, body: dict[str, Any] | bytes, *, delivery: str | None = None, stamp: str = STAMP,
        secret: str = SECRET, headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        self.deliveries += 1
        sent = {
            "Content-Type": "application/json",
            "X-Chatwoot-Signature": signatures.chatwoot_signature(secret, raw, stamp),
            "X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Delivery": delivery or f"5b0e6f0c-1d2a-4c3b-8e9f-{self.deliveries:012d}",
        }
        if headers is not None:
            sent = {**sent, **headers}
            sent = {name: value for name, value in sent.items() if value != ""}
        response = await self.client.post("/webhooks/chatwoot", data=raw, headers=sent)
        return response.status, await response.json()


MakeDesk = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def make_desk() -> AsyncIterator[MakeDesk]:
    made: list[tuple[TestClient, MemoryActionSink]] = []

    async def make(settings: EdgeSettings = SETTINGS, with_coverage: bool = True) -> Desk:
        events, actions = MemoryEventSink(), MemoryActionSink()
        await actions.start()
        app = build_webhooks(
            settings, events, now=lambda: NOW, coverage=(lambda: COVERAGE) if with_coverage else None, actions=actions,
        )
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        made.append((client, actions))
        return Desk(client, events, actions)

    yield make
    for client, actions in made:
        await client.close()
        await actions.stop()


class TestMessages:
    async def test_customer_message_is_produced_with_the_desk(self, make_desk: MakeDesk) -> None:
        """A signed message_created from a contact: one dm event, keyed by its conversation, with the desk key."""
        desk = await make_desk()
        status, answer = await desk.post(message_created())
        (event,) = desk.events.events
        assert (200, {"produced": 1, "duplicates": 0, "skipped": [], "recorded": 0}) == (status, answer)
        assert (f"cw:{ACCOUNT}:{MESSAGE}", f"chatwoot:{ACCOUNT}/{FACEBOOK_INBOX}", "dm", f"cw:{ACCOUNT}:{CONVERSATION}") == (
            event.id, event.account, event.kind, event.conversation,
        )
        assert {"kind": "chatwoot", "account": ACCOUNT, "inbox": FACEBOOK_INBOX, "conversation": CONVERSATION,
                "message": MESSAGE, "can_reply": True, "status": "open", "assignee": None, "contact": 88213} == (
            orjson.loads(event.to_json())["desk"]
        )

    async def test_redelivery_is_a_duplicate(self, make_desk: MakeDesk) -> None:
        """Chatwoot's retry carries the same X-Chatwoot-Delivery: answered 200, nothing produced twice."""
        desk = await make_desk()
        first = await desk.post(message_created(), delivery="0d5e1c8a-6b7f-4e2d-9a3c-111111111111")
        second = await desk.post(message_created(), delivery="0d5e1c8a-6b7f-4e2d-9a3c-111111111111")
        assert ((200, 1), (200, {"produced": 0, "duplicates": 1, "skipped": [], "recorded": 0}), 1) == (
            (first[0], first[1]["produced"]), second, len(desk.events.events),
        )

    async def test_same_message_in_another_delivery_is_a_duplicate(self, make_desk: MakeDesk) -> None:
        """A second webhook of the account delivering the same message: deduped by the event id."""
        desk = await make_desk()
        await desk.post(message_created())
        status, answer = await desk.post(message_created())
        assert (200, 0, 1, 1) == (status, answer["produced"], answer["duplicates"], len(desk.events.events))

    async def test_agent_reply(self, make_desk: MakeDesk) -> None:
        desk = await make_desk()
        status, answer = await desk.post(message_created(message_type="outgoing", sender=agent(), message=MESSAGE + 1,
                                                         content="Te lo miro ahora mismo", assignee=PABLO))
        assert (200, 1, ["agent_reply"], [str(PABLO)]) == (
            status, answer["produced"], [e.kind for e in desk.events.events], [e.author.id for e in desk.events.events],
        )

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(message_created(message_type="outgoing", sender=agent(), content_attributes={"offhours_id": "ack:cw:7:1902837"}),
                         id="marked"),
            pytest.param(message_created(message_type="outgoing", sender=agent_bot()), id="our_agent_bot"),
        ],
    )
    async def test_own_message_is_skipped(self, make_desk: MakeDesk, body: dict[str, Any]) -> None:
        desk = await make_desk()
        status, answer = await desk.post(body)
        assert (200, 0, ["offhours' own message"], []) == (
            status, answer["produced"], [s["reason"] for s in answer["skipped"]], desk.events.events,
        )

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            pytest.param(message_created(private=True, message_type="outgoing", sender=agent()),
                         "private note: for staff only, the customer never sees it", id="private_note"),
            pytest.param(message_created(message_type="activity", sender=None, content="Assigned to Pablo Ruiz by Lucía Fernández"),
                         "activity message: a line the desk writes itself, not a customer or staff message", id="activity"),
        ],
    )
    async def test_notes_and_activity_are_skipped(self, make_desk: MakeDesk, body: dict[str, Any], reason: str) -> None:
        desk = await make_desk()
        status, answer = await desk.post(body)
        assert (200, {"produced": 0, "duplicates": 0, "skipped": [{"ref": f"message {MESSAGE}", "reason": reason}],
                      "recorded": 0}, []) == (status, answer, desk.events.events)


class TestDeskSignals:
    async def test_assignment_records_a_claim(self, make_desk: MakeDesk) -> None:
        """Assigned to agent 32 in the desk: pablo's claim on the actions topic, no event."""
        desk = await make_desk()
        delivery = "7a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
        status, answer = await desk.post(
            conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)}),
            delivery=delivery,
        )
        assert (200, {"produced": 0, "duplicates": 0, "skipped": [], "recorded": 1}, []) == (status, answer, desk.events.events)
        assert [{
            "action_id": f"claim:chatwoot:{delivery}", "action": "claim", "conversation": f"cw:{ACCOUNT}:{CONVERSATION}",
            "event_id": None, "member": "pablo", "by": f"chatwoot:agent:{PABLO}", "via": "chatwoot",
            "at": "2026-11-27T21:02:50+00:00",
        }] == desk.actions.actions

    async def test_resolution_records_answered(self, make_desk: MakeDesk) -> None:
        desk = await make_desk()
        status, answer = await desk.post(conversation_event(
            "conversation_status_changed", status="resolved", assignee=LUCIA, changed={"status": ("open", "resolved")},
        ))
        assert (200, 1, [("answered", "lucia")]) == (
            status, answer["recorded"], [(a["action"], a["member"]) for a in desk.actions.actions],
        )

    async def test_redelivered_assignment_is_recorded_once(self, make_desk: MakeDesk) -> None:
        desk = await make_desk()
        body = conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)})
        await desk.post(body, delivery="7a2b3c4d-5e6f-4a1b-8c2d-000000000001")
        status, answer = await desk.post(body, delivery="7a2b3c4d-5e6f-4a1b-8c2d-000000000001")
        assert (200, {"produced": 0, "duplicates": 1, "skipped": [], "recorded": 0}, 1) == (
            status, answer, len(desk.actions.actions),
        )

    async def test_unknown_agent_is_skipped(self, make_desk: MakeDesk) -> None:
        desk = await make_desk()
        status, answer = await desk.post(
            conversation_event("conversation_updated", assignee=STRANGER, changed={"assignee_id": (None, STRANGER)}))
        assert (200, 0, 1, []) == (status, answer["recorded"], len(answer["skipped"]), desk.actions.actions)

    async def test_without_coverage_the_signal_is_skipped(self, make_desk: MakeDesk) -> None:
        desk = await make_desk(with_coverage=False)
        status, answer = await desk.post(
            conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)}))
        assert (200, ["no coverage known yet: the desk's agents cannot be told apart"], []) == (
            status, [s["reason"] for s in answer["skipped"]], desk.actions.actions,
        )

    async def test_failed_action_sink_is_retried_by_the_desk(self, make_desk: MakeDesk) -> None:
        """The actions topic down: 503 and the same delivery, retried, is recorded."""
        desk = await make_desk()
        body = conversation_event("conversation_updated", assignee=PABLO, changed={"assignee_id": (None, PABLO)})
        await desk.actions.stop()
        failed = await desk.post(body, delivery="7a2b3c4d-5e6f-4a1b-8c2d-000000000002")
        await desk.actions.start()
        retried = await desk.post(body, delivery="7a2b3c4d-5e6f-4a1b-8c2d-000000000002")
        assert ((503, 200), 1) == ((failed[0], retried[0]), len(desk.actions.actions))


class TestRefused:
    async def test_wrong_signature_is_403(self, make_desk: MakeDesk) -> None:
        desk = await make_desk()
        status, answer = await desk.post(message_created(), secret="another-secret-of-some-other-desk")
        assert (403, {"error": "chatwoot signature does not match"}, []) == (status, answer, desk.events.events)

    @pytest.mark.parametrize("header", ["X-Chatwoot-Signature", "X-Chatwoot-Timestamp"])
    async def test_missing_header_is_401(self, make_desk: MakeDesk, header: str) -> None:
        desk = await make_desk()
        status, answer = await desk.post(message_created(), headers={header: ""})
        assert (401, {"error": "chatwoot signature missing"}, []) == (status, answer, desk.events.events)

    @pytest.mark.parametrize("offset", [-301, 301])
    async def test_stale_timestamp_is_refused(self, make_desk: MakeDesk, offset: int) -> None:
        """A correctly signed delivery stamped over five minutes from the clock (a replay) is refused."""
        desk = await make_desk()
        status, answer = await desk.post(message_created(), stamp=str(int(NOW.timestamp()) + offset))
        assert (401, True, []) == (status, "timestamp is more than 300 s" in answer["error"], desk.events.events)
        assert 1 == desk.client.app[INGEST].stats.refused

    async def test_secret_unset_is_503_naming_the_variable(self, make_desk: MakeDesk) -> None:
        desk = await make_desk(EdgeSettings())
        status, answer = await desk.post(message_created())
        assert (503, {"error": "chatwoot webhooks are not configured: set OFFHOURS_EDGE__CHATWOOT_WEBHOOK_SECRET"}) == (
            status, answer,
        )

    async def test_not_json_is_400(self, make_desk: MakeDesk) -> None:
        desk = await make_desk()
        status, answer = await desk.post(b"event=message_created")
        assert (400, True) == (status, answer["error"].startswith("malformed JSON"))

    async def test_not_a_chatwoot_body_is_400(self, make_desk: MakeDesk) -> None:
        desk = await make_desk()
        status, answer = await desk.post({"object": "page", "entry": []})
        assert (400, {"error": "event is missing: not a Chatwoot webhook body"}) == (status, answer)
