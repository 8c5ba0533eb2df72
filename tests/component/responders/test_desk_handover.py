"""The handover at the opening through a Chatwoot desk (responders.desk), against the fake desk.

The digest's desk conversations are assigned in the digest's order (urgent first, then
longest waiting, never by followers), round-robin to the members on duty at the opening
who have a ``chatwoot_agent``, each with its note; once per conversation and handover
(ledger and marker); a conversation a person took keeps its assignee; a held inbox's
conversation is released (``open``) before it is assigned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from promises.routes import digest_route, release_due, release_route
from promises.rules import BacklogItem, handover_digest
from records.wire import RouteRequest
from responders.delivery import MemoryLedger
from responders.fakes import FakeWebhook
from responders.fakes.chatwoot import FakeChatwoot
from responders.fakes.samples import fixed_clock
from schedules import Team, load_coverage_text
from tests.support.desk_harness import Harness, desk_harness
from triage.state import ConversationState

MADRID = ZoneInfo("Europe/Madrid")
OPENING = datetime(2026, 11, 30, 9, 0, tzinfo=MADRID)  # Monday 09:00
CLOCK = fixed_clock(OPENING)
TOKEN = "cw-user-token-0123456789abcdef"
SIGNING = "whsec-desk-handover-tests"
ACCOUNT, INBOX = 7, 12
OFFHOURS_USER, LUCIA, PABLO, MARTA = 5, 31, 32, 33
OLDEST, URGENT, NEWEST, PLATFORM_ONLY, TAKEN = 4821, 4822, 4823, 0, 4824


def coverage_text(hook_url: str, *, on_call: str = "", hold: bool = False) -> str:
    held = ", hold: true" if hold else ""
    return (
        "teams:\n  care-es:\n    timezone: Europe/Madrid\n    locale: es\n"
        f"    chatwoot: {{account: {ACCOUNT}, inboxes: [{INBOX}]{held}}}\n"
        '    hours:\n      mon-fri: ["09:00-18:00 open", "18:00-22:00 reduced"]\n'
        + (f'    on_call:\n      rotation: {{members: [{on_call}], start: "2026-11-02 09:00", every: 1w}}\n'
           if on_call else "")
        + "    staff:\n"
        f"      lucia: {{name: Lucía Fernández, chatwoot_agent: {LUCIA}, notify: ['webhook:{hook_url}']}}\n"
        f"      marta: {{name: Marta Rossi, notify: ['webhook:{hook_url}']}}\n"
        f"      pablo: {{name: Pablo Ruiz, chatwoot_agent: {PABLO}, notify: ['webhook:{hook_url}']}}\n"
    )


def team_of(hook_url: str, **options: Any) -> Team:
    return load_coverage_text(coverage_text(hook_url, **options), filename="handover.yaml").teams["care-es"]


def desk_block(conversation: int, status: str = "open") -> dict[str, Any]:
    return {"kind": "chatwoot", "account": ACCOUNT, "inbox": INBOX, "conversation": conversation,
            "message": None, "can_reply": True, "status": status, "assignee": None, "contact": 88000 + conversation}


def backlog(status: str = "open") -> list[BacklogItem]:
    """Four conversations waiting since the night: one urgent (the newest but one), one with a
    huge following (never read), one straight from a platform (no desk)."""
    night = OPENING - timedelta(hours=12)
    return [
        BacklogItem(f"cw:{ACCOUNT}:{NEWEST}", "facebook", night + timedelta(hours=9), followers=2_000_000,
                    desk=desk_block(NEWEST, status)),
        BacklogItem(f"cw:{ACCOUNT}:{URGENT}", "facebook", night + timedelta(hours=6), urgent=True,
                    ack_text="Te responderemos a partir de las 09:00.", reply_by=OPENING + timedelta(minutes=40),
                    desk=desk_block(URGENT, status)),
        BacklogItem("fb:page:t_1", "facebook", night + timedelta(hours=2)),
        BacklogItem(f"cw:{ACCOUNT}:{OLDEST}", "facebook", night + timedelta(hours=1),
                    ack_text="Te responderemos a partir de las 09:00.", desk=desk_block(OLDEST, status)),
    ]


def handover(team: Team, items: list[BacklogItem], partitions: tuple[int, ...] = (0,)) -> RouteRequest:
    return digest_route(handover_digest(team, items, OPENING), team, partitions)


def fake_desk(status: str = "open") -> FakeChatwoot:
    fake = FakeChatwoot(clock=CLOCK, retry_after=1)
    fake.add_account(ACCOUNT)
    fake.add_user(OFFHOURS_USER, "offhours", token=TOKEN, accounts=(ACCOUNT,), role="administrator")
    fake.add_user(LUCIA, "Lucía Fernández", accounts=(ACCOUNT,))
    fake.add_user(PABLO, "Pablo Ruiz", accounts=(ACCOUNT,))
    fake.add_user(MARTA, "Marta Rossi", accounts=(ACCOUNT,))
    fake.add_inbox(ACCOUNT, INBOX, members=(LUCIA, PABLO, MARTA))
    for conversation in (OLDEST, URGENT, NEWEST, TAKEN):
        fake.add_conversation(ACCOUNT, conversation, inbox=INBOX, status=status, source_id=f"PSID_{conversation}")
    return fake


@pytest.fixture
async def cw() -> AsyncIterator[FakeChatwoot]:
    async with fake_desk() as fake:
        yield fake


@pytest.fixture
async def held() -> AsyncIterator[FakeChatwoot]:
    async with fake_desk(status="pending") as fake:
        yield fake


@pytest.fixture
async def hook() -> AsyncIterator[FakeWebhook]:
    async with FakeWebhook(SIGNING) as fake:
        yield fake


def harness(fake: FakeChatwoot, session: aiohttp.ClientSession, ledger: MemoryLedger | None = None) -> Harness:
    return desk_harness(fake, session, token=TOKEN, signing=SIGNING, clock=CLOCK, ledger=ledger, escalate=False)


def desk_writes(fake: FakeChatwoot) -> list[tuple[int, str]]:
    """The desk writes made, in order: (conversation, last part of the POST path)."""
    found = []
    for request in fake.requests:
        if request.method == "POST":
            parts = request.path.split("?")[0].split("/")
            found.append((int(parts[parts.index("conversations") + 1]), parts[-1]))
    return found


def assigned(fake: FakeChatwoot) -> list[tuple[int, int]]:
    """(conversation, agent) of every assignment made, in order."""
    return [(conversation, agent) for (conversation, what), agent in zip(
        desk_writes(fake), [r.json().get("assignee_id") if r.method == "POST" else None
                            for r in fake.requests if r.method == "POST"], strict=True) if what == "assignments"]


def notes(fake: FakeChatwoot, conversation: int) -> list[tuple[str, dict[str, Any]]]:
    return [(m.content or "", m.content_attributes) for m in fake.conversation(ACCOUNT, conversation).messages
            if m.private]


class TestHandoverInTheDesk:
    async def test_assigned_in_the_digest_order_round_robin_with_their_notes(
        self, cw: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        """Nobody on call: the digest goes to all staff; Lucía and Pablo have agents, Marta none.
        Urgent first, then longest waiting (the two-million-follower newest last); the platform's
        conversation keeps its place in the count but nothing happens for it in the desk."""
        h = harness(cw, session)
        route = handover(team_of(hook.hook_url), backlog())
        assert [f"cw:{ACCOUNT}:{URGENT}", f"cw:{ACCOUNT}:{OLDEST}", "fb:page:t_1", f"cw:{ACCOUNT}:{NEWEST}"] == [
            item.conversation for item in route.handover or ()]
        reports = await h.responders.route(route)
        assert [(URGENT, LUCIA), (OLDEST, PABLO), (NEWEST, LUCIA)] == assigned(cw)
        for conversation in (URGENT, OLDEST, NEWEST):
            assert ["messages", "custom_attributes", "assignments"] == [
                what for c, what in desk_writes(cw) if c == conversation]
        [(urgent, marker)] = notes(cw, URGENT)
        assert {"offhours_id": f"handover:care-es:{int(OPENING.timestamp())}|cw:{ACCOUNT}:{URGENT}|desk:note"} == marker
        assert urgent == ("offhours handover at the opening (Mon 30 Nov 09:00): overnight backlog, 1 of 4 (urgent), "
                          "waiting since Mon 30 Nov 03:00, promised a reply by Mon 30 Nov 09:40 "
                          '("Te responderemos a partir de las 09:00."). For Lucía Fernández.')
        [(oldest, _)] = notes(cw, OLDEST)
        assert oldest.startswith("offhours handover at the opening (Mon 30 Nov 09:00): overnight backlog, 2 of 4, "
                                 "waiting since Sun 29 Nov 22:00, promised \"Te responderemos")
        [(newest, _)] = notes(cw, NEWEST)
        assert ("4 of 4, waiting since Mon 30 Nov 06:00, promised nothing (no acknowledgment from offhours). "
                "For Lucía Fernández.") in newest
        assert ([], 3) == (h.dead_letters, len(hook.deliveries))  # and the digest to the three staff as ever
        assert {"delivered"} == {r.status for r in reports}

    async def test_once_per_conversation_and_handover(
        self, cw: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        """The route redelivered, the ledger lost (found by the marker and the assignee), and another
        worker's digest of the same opening (other partitions) carrying a conversation again:
        no second note, no second assignment."""
        team = team_of(hook.hook_url)
        h = harness(cw, session)
        await h.responders.route(handover(team, backlog()))
        made = list(cw.requests)
        again = await h.responders.route(handover(team, backlog()))
        assert {"skipped"} == {r.status for r in again}
        await harness(cw, session).responders.route(handover(team, backlog()))
        await harness(cw, session, h.ledger).responders.route(handover(team, backlog()[:1], partitions=(1,)))
        assert [r for r in made if r.method == "POST"] == [r for r in cw.requests if r.method == "POST"]
        assert all(1 == len(notes(cw, c)) for c in (URGENT, OLDEST, NEWEST))

    async def test_one_member_with_an_agent_on_duty_gets_them_all(
        self, cw: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        await harness(cw, session).responders.route(handover(team_of(hook.hook_url, on_call="pablo"), backlog()))
        assert [(URGENT, PABLO), (OLDEST, PABLO), (NEWEST, PABLO)] == assigned(cw)

    async def test_nobody_on_duty_with_an_agent_leaves_the_desk_alone(
        self, cw: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        h = harness(cw, session)
        await h.responders.route(handover(team_of(hook.hook_url, on_call="marta"), backlog()))
        assert ([], 1) == (desk_writes(cw), len(hook.deliveries))

    async def test_a_conversation_a_person_took_keeps_its_assignee(
        self, cw: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        """Assigned in the desk by a person overnight (no offhours_assignee mark): their claim stays;
        one offhours itself assigned overnight is handed to the member on duty."""
        cw.conversation(ACCOUNT, URGENT).assignee = cw.users[MARTA]
        oldest = cw.conversation(ACCOUNT, OLDEST)
        oldest.assignee, oldest.custom_attributes = cw.users[LUCIA], {"offhours_assignee": LUCIA}
        await harness(cw, session).responders.route(handover(team_of(hook.hook_url, on_call="pablo"), backlog()))
        assert (MARTA, PABLO) == (cw.conversation(ACCOUNT, URGENT).assignee.id, oldest.assignee.id)
        assert [(OLDEST, PABLO), (NEWEST, PABLO)] == assigned(cw)


class TestHoldMode:
    async def test_held_backlog_released_then_assigned_in_order(
        self, held: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        """``chatwoot: {hold: true}``: each pending backlog conversation is set open, then assigned,
        conversation after conversation in the digest's order; once."""
        team = team_of(hook.hook_url, hold=True)
        route = handover(team, backlog(status="pending"))
        assert {True} == {(item.desk or {}).get("hold") for item in route.handover or () if item.desk}
        h = harness(held, session)
        await h.responders.route(route)
        await h.responders.route(route)
        assert [(URGENT, "messages"), (URGENT, "toggle_status"), (URGENT, "custom_attributes"),
                (URGENT, "assignments")] == desk_writes(held)[:4]
        assert [(URGENT, LUCIA), (OLDEST, PABLO), (NEWEST, LUCIA)] == assigned(held)
        assert [URGENT, OLDEST, NEWEST] == [c for c, what in desk_writes(held) if what == "toggle_status"]
        assert {"open"} == {held.conversation(ACCOUNT, c).status for c in (URGENT, OLDEST, NEWEST)}
        assert "pending" == held.conversation(ACCOUNT, TAKEN).status  # not in the backlog: left alone

    async def test_without_hold_a_pending_conversation_keeps_its_status(
        self, held: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        await harness(held, session).responders.route(handover(team_of(hook.hook_url), backlog(status="pending")))
        assert ([], "pending") == ([w for w in desk_writes(held) if w[1] == "toggle_status"],
                                   held.conversation(ACCOUNT, URGENT).status)

    async def test_a_release_in_open_hours_sets_open_and_notifies_nobody(
        self, held: FakeChatwoot, hook: FakeWebhook, session: aiohttp.ClientSession
    ) -> None:
        """The sweep's release of a held inbox's new conversation: one status write, no notice, no
        dead letter; sent again (another sweep, another worker), nothing more."""
        team = team_of(hook.hook_url, hold=True)
        state = ConversationState(team="care-es", channel="facebook", kind="dm", account=f"chatwoot:{ACCOUNT}/{INBOX}",
                                  customer_at=int(OPENING.timestamp()) + 3600,
                                  desk=desk_block(URGENT, "pending"))
        now = OPENING + timedelta(hours=1, seconds=20)
        assert release_due(state, team, now)
        route = release_route(state, team, f"cw:{ACCOUNT}:{URGENT}", now)
        h = harness(held, session)
        reports = await h.responders.route(route)
        again = await harness(held, session).responders.route(route)  # a fresh ledger: the desk says open already
        assert ([(URGENT, "toggle_status")], "open") == (desk_writes(held), held.conversation(ACCOUNT, URGENT).status)
        assert (["delivered"], ["delivered"], [], 0) == (
            [r.status for r in reports], [r.status for r in again], h.dead_letters, len(hook.deliveries))
