"""Requests with a ``desk`` block act through the Chatwoot desk (responders.desk), against the fake.

Which desk calls an acknowledgment, a route, a page and an escalation step make, in which
order, each once (ledger and marker), and what a failure becomes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from edge.normalize import chatwoot as normalize_chatwoot
from records.wire import AckRequest, EscalationNote, Notify, RouteRequest
from responders.delivery import (
    SENDING,
    MemoryLedger,
)
from responders.desk import LABEL, route_note
from responders.fakes import FakeWebhook
from responders.fakes.chatwoot import FakeChatwoot
from responders.fakes.samples import ack_request, fixed_clock, route_request
from schedules import load_coverage_text
from tests.support.desk_harness import Harness, desk_harness

TOKEN = "cw-user-token-0123456789abcdef"
SIGNING = "whsec-desk-tests"
CLOCK = fixed_clock()
ACCOUNT, INBOX, CONVERSATION, CLOSED = 7, 12, 4821, 4822
OFFHOURS_USER, LUCIA, PABLO = 5, 31, 32
DESK = {"kind": "chatwoot", "account": ACCOUNT, "inbox": INBOX, "conversation": CONVERSATION,
        "message": None, "can_reply": True, "status": "open", "assignee": None, "contact": 88213}


def fake_desk() -> FakeChatwoot:
    fake = FakeChatwoot(clock=CLOCK, retry_after=1)
    fake.add_account(ACCOUNT)
    fake.add_user(OFFHOURS_USER, "offhours", token=TOKEN, accounts=(ACCOUNT,), role="administrator")
    fake.add_user(LUCIA, "Lucía Fernández", accounts=(ACCOUNT,))
    fake.add_user(PABLO, "Pablo Ruiz", accounts=(ACCOUNT,))
    fake.add_inbox(ACCOUNT, INBOX, members=(LUCIA, PABLO))
    fake.add_labels(ACCOUNT, LABEL, "offhours-reduced", "offhours-closed", "vip")
    fake.add_conversation(ACCOUNT, CONVERSATION, inbox=INBOX, labels=("vip",))
    fake.add_conversation(ACCOUNT, CLOSED, inbox=INBOX, can_reply=False)
    return fake


@pytest.fixture
async def cw() -> AsyncIterator[FakeChatwoot]:
    async with fake_desk() as fake:
        yield fake


@pytest.fixture
async def hook() -> AsyncIterator[FakeWebhook]:
    async with FakeWebhook(SIGNING) as fake:
        yield fake


def harness(fake: FakeChatwoot, session: aiohttp.ClientSession, ledger: MemoryLedger | None = None) -> Harness:
    return desk_harness(fake, session, token=TOKEN, signing=SIGNING, clock=CLOCK, ledger=ledger)


def desk_ack(**changes: Any) -> AckRequest:
    fields: dict[str, Any] = {"ack_id": "ack:cw:7:1902837", "event_id": "cw:7:1902837", "account": "chatwoot:7/12",
                              "conversation": "cw:7:4821", "desk": dict(DESK), "mode": "reduced"}
    return ack_request(**{**fields, **changes})


def desk_route(to: list[Notify], **changes: Any) -> RouteRequest:
    route = route_request([], route_id="route:cw:7:1902837", event_id="cw:7:1902837", account="chatwoot:7/12",
                          conversation="cw:7:4821", desk=dict(DESK), promised="Pablo te responde en 40 minutos.")
    return dataclasses.replace(route, to=to, **changes)


def writes(fake: FakeChatwoot) -> list[str]:
    """The desk writes made, in order: the last part of each POST path."""
    return [r.path.split("?")[0].rsplit("/", 1)[-1] for r in fake.requests if r.method == "POST"]


def messages(fake: FakeChatwoot, conversation: int = CONVERSATION) -> list[tuple[str | None, bool, dict[str, Any]]]:
    return [(m.content, m.private, m.content_attributes) for m in fake.conversation(ACCOUNT, conversation).messages]


PABLO_NOTIFY = Notify("pablo", "Pablo Ruiz", [], chatwoot_agent=PABLO)
LUCIA_NOTIFY = Notify("lucia", "Lucía Fernández", [], chatwoot_agent=LUCIA)


class TestAcknowledgment:
    async def test_posted_once_in_the_conversation_then_labelled(self, cw: FakeChatwoot,
                                                                 session: aiohttp.ClientSession) -> None:
        """One public message marked with the ack id, then the labels; a redelivered request posts nothing."""
        h = harness(cw, session)
        first = await h.responders.acknowledge(desk_ack())
        again = await h.responders.acknowledge(desk_ack())
        assert ("delivered", "skipped") == (first.status, again.status)
        assert [(desk_ack().text, False, {"offhours_id": "ack:cw:7:1902837"})] == messages(cw)
        assert ["messages", "labels"] == writes(cw)
        assert [LABEL, "offhours-reduced", "vip"] == sorted(cw.conversation(ACCOUNT, CONVERSATION).labels)
        assert ([], []) == (h.dead_letters, h.escalations)

    async def test_a_key_left_sending_is_tried_again_and_found(self, cw: FakeChatwoot,
                                                               session: aiohttp.ClientSession) -> None:
        """A crash after the post left the ack ``sending``: the retry finds the marked message, posts nothing."""
        h = harness(cw, session)
        await h.responders.acknowledge(desk_ack())
        h.ledger.set("ack:cw:7:1902837", SENDING)
        report = await h.responders.acknowledge(desk_ack())
        assert "delivered" == report.status
        assert 1 == len(messages(cw))

    async def test_a_5xx_is_retried_never_posted_twice(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        cw.fail_route("messages.create", "server_error")
        report = await harness(cw, session).responders.acknowledge(desk_ack())
        assert ("delivered", 2) == (report.status, report.attempts)
        assert 1 == len(messages(cw))

    async def test_window_closed_leaves_a_note_and_pages_staff(self, cw: FakeChatwoot,
                                                               session: aiohttp.ClientSession) -> None:
        """can_reply false: nothing public; a private note with the text and why; the failed-ack path runs."""
        h = harness(cw, session)
        request = desk_ack(desk={**DESK, "conversation": CLOSED})
        report = await h.responders.acknowledge(request)
        assert "dead" == report.status
        [(content, private, marker)] = messages(cw, CLOSED)
        assert (True, {"offhours_id": "ack:cw:7:1902837|desk:note"}) == (private, marker)
        assert request.text in (content or "") and "can_reply false" in (content or "")
        assert [(request, report.reason)] == h.escalations
        assert ["acks"] == [source for _, source, _ in h.dead_letters]
        assert "labels" not in writes(cw)

    async def test_a_refusal_never_names_the_token(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        cw.fail_route("conversation.show", "unauthorized")
        h = harness(cw, session)
        report = await h.responders.acknowledge(desk_ack())
        assert ("dead", 1) == (report.status, len(h.escalations))
        assert "HTTP 401" in report.reason
        assert not any(TOKEN in reason for _, _, reason in h.dead_letters) and TOKEN not in report.reason

    async def test_an_unusable_desk_block_is_refused(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        h = harness(cw, session)
        report = await h.responders.acknowledge(desk_ack(desk={"kind": "chatwoot", "account": 7}))
        assert ("dead", []) == (report.status, cw.requests)
        assert "desk block without 'conversation'" in report.reason


    async def test_another_desk_kind_takes_the_platform_path(self, cw: FakeChatwoot,
                                                             session: aiohttp.ClientSession) -> None:
        """A ``desk`` key offhours does not drive (an event's own extra key) changes nothing: the platform sender."""
        h = harness(cw, session)
        report = await h.responders.acknowledge(desk_ack(desk={"kind": "helpdesk", "ticket": 9}))
        assert ([], "facebook") == (cw.requests, h.escalations[0][0].channel)
        assert report.reason.startswith("facebook: ")


class TestRoute:
    async def test_note_then_assignment_to_the_first_agent_and_the_notice(
        self, cw: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        """A route: the private note (reason, promise), the conversation assigned to the first member
        with an agent, and the member's notice as ever."""
        h = harness(cw, session)
        route = desk_route([Notify("marta", "Marta Rossi", ["webhook:" + hook.hook_url]), PABLO_NOTIFY, LUCIA_NOTIFY])
        reports = await h.responders.route(route)
        again = await h.responders.route(route)
        assert ["delivered"] * 3 == [r.status for r in reports]
        assert {"skipped"} == {r.status for r in again}
        assert ["messages", "custom_attributes", "assignments"] == writes(cw)
        conversation = cw.conversation(ACCOUNT, CONVERSATION)
        assert (PABLO, {"offhours_assignee": PABLO}) == (conversation.assignee.id, conversation.custom_attributes)
        [(note, private, marker)] = messages(cw)
        assert (True, {"offhours_id": "route:cw:7:1902837|desk:note"}) == (private, marker)
        assert note == route_note(route)
        assert "reduced hours 19:00-24:00; on call: marta" in note and "Pablo te responde en 40 minutos." in note
        assert 1 == len(hook.deliveries)

    async def test_page_sets_urgent(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        reports = await harness(cw, session).responders.route(desk_route([LUCIA_NOTIFY], action="page"))
        assert ["messages", "custom_attributes", "assignments", "toggle_priority"] == writes(cw)
        assert ("urgent", LUCIA) == (cw.conversation(ACCOUNT, CONVERSATION).priority,
                                     cw.conversation(ACCOUNT, CONVERSATION).assignee.id)
        assert "paged" in (messages(cw)[0][0] or "")
        assert {"delivered"} == {r.status for r in reports[:3]}

    async def test_nobody_with_an_agent_gets_the_note_only(self, cw: FakeChatwoot,
                                                            session: aiohttp.ClientSession) -> None:
        await harness(cw, session).responders.route(desk_route([Notify("marta", "Marta Rossi", [])]))
        assert (["messages"], None) == (writes(cw), cw.conversation(ACCOUNT, CONVERSATION).assignee)

    async def test_the_assignment_mark_keeps_other_custom_attributes(self, cw: FakeChatwoot,
                                                                      session: aiohttp.ClientSession) -> None:
        """Chatwoot's custom_attributes POST replaces them: the mark is merged into those the conversation has."""
        cw.conversation(ACCOUNT, CONVERSATION).custom_attributes = {"tier": "gold"}
        await harness(cw, session).responders.route(desk_route([PABLO_NOTIFY]))
        assert {"tier": "gold", "offhours_assignee": PABLO} == cw.conversation(ACCOUNT, CONVERSATION).custom_attributes

    async def test_escalation_step_reassigns_with_its_note(self, cw: FakeChatwoot,
                                                           session: aiohttp.ClientSession) -> None:
        """Step 0 after 15 minutes: reassigned from Pablo to Lucía, ``escalated: nobody claimed it in 15 minutes``."""
        h = harness(cw, session)
        await h.responders.route(desk_route([PABLO_NOTIFY]))
        step = desk_route(
            [LUCIA_NOTIFY], route_id="esc:cw:7:1902837:0", at="2026-11-23T21:24:00+01:00",
            reason="not claimed within 15 minutes: escalated to Lucía Fernández",
            escalation=EscalationNote(step=0, link="next_on_call", routed_at="2026-11-23T21:09:00+01:00"),
        )
        await h.responders.route(step)
        conversation = cw.conversation(ACCOUNT, CONVERSATION)
        assert LUCIA == conversation.assignee.id
        notes = [content for content, private, _ in messages(cw) if private]
        assert "escalated: nobody claimed it in 15 minutes; now with Lucía Fernández." == notes[-1]

    async def test_own_assignment_is_not_read_back_as_a_claim(self, cw: FakeChatwoot,
                                                               session: aiohttp.ClientSession) -> None:
        """The assignment's webhook carries the ``offhours_assignee`` mark: the edge skips it;
        an agent's own reassignment afterwards is a claim."""
        coverage = load_coverage_text(
            f"teams:\n  care-es:\n    timezone: Europe/Madrid\n    chatwoot: {{account: {ACCOUNT}, inboxes: [{INBOX}]}}\n"
            f"    staff:\n      lucia: {{chatwoot_agent: {LUCIA}, notify: ['mailto:l@example.com']}}\n"
            f"      pablo: {{chatwoot_agent: {PABLO}, notify: ['mailto:p@example.com']}}\n",
            filename="desk.yaml",
        )
        await harness(cw, session).responders.route(desk_route([PABLO_NOTIFY]))
        own = [e for e in cw.pending_events if e["event"] == "conversation_updated"
               and any("assignee_id" in change for change in e["changed_attributes"])]
        conversation = cw.conversation(ACCOUNT, CONVERSATION)
        conversation.assignee = cw.users[LUCIA]  # an agent reassigns it in the desk
        theirs = {**cw.conversation_webhook(conversation, {"assignee_id": (PABLO, LUCIA)}), "event": "conversation_updated"}

        def claims(body: dict[str, Any]) -> list[str | None]:
            received = datetime.fromtimestamp(CLOCK(), UTC)
            normalized = normalize_chatwoot.normalize(body, received_at=received, coverage=coverage)
            return [getattr(action, "member", None) for action in normalized.actions]

        assert [[], ["lucia"]] == [claims(body) for body in [*own, theirs]]
