"""A Chatwoot desk end to end on the real broker (issue 18).

The fake Chatwoot (responders/fakes/chatwoot.py) sends its signed account webhooks to the
running edge (the service's webhook app on a free port, producing events and the desk's
staff actions); one worker (triage, responders, promise sweeps every second) decides and
acts back through the fake's Application API. Every clock (the worker's, the edge's, the
fake's, which dates the messages and signs the webhooks) is one test clock that starts on
Monday 23 November 2026, 21:00 in Madrid (care-es reduced, pablo on call) and runs on
with real time; the test moves it forward to make the escalations due, so the test holds
on any date.

- a customer writes at the reduced hour: exactly one public acknowledgment (with the
  marker) in the conversation, labels, a private note, the conversation assigned to the
  on-call agent; Chatwoot's webhooks of offhours' own writes, and a redelivery of the
  customer's webhook (same ``X-Chatwoot-Delivery``), post nothing more;
- the on-call agent replies in the desk (the customer having waited 45 s more on the test
  clock): no escalation follows, and that reply is the conversation's first response,
  measured alike by the worker (the partition's recent first responses, which later
  acknowledgments promise from) and by ``offhours sla report`` (the events topic read
  through :class:`promises.sla.ResponseTracker`): the reply's time minus the customer's
  message's, both dated by the test clock, in the team's mode at the message (reduced);
- a second conversation nobody answers walks the escalation chain: reassigned to the next
  on call, then to the lead, each with its note;
- a conversation Chatwoot cannot reply to now (``can_reply`` false): no public message, a
  note saying what would have been sent and why not, and the failed acknowledgment's page
  (a note, the on-call agent, priority urgent);
- Tuesday 09:00, the opening (the clock moved there and the opening timer planned again
  from it): the two conversations still waiting get the handover's note ("overnight
  backlog, n of 2, ...") in the digest's order and are with the member on duty, pablo.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import SecretStr

from brokers.tansu import EmbeddedBroker
from edge.actions import KafkaActionSink
from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.sink import KafkaEventSink
from promises.rules import FirstResponseStats
from promises.sla import ResponseTracker, sla_rows
from responders.fakes import FakeSlack
from responders.fakes.chatwoot import FakeChatwoot, Message
from schedules import Coverage, load_coverage_text
from streams.app import OffhoursApp
from streams.worker import running_worker
from tests.conftest import settings_for
from tests.support.workers import TopicReader
from triage.state import ConversationState

pytestmark = [pytest.mark.broker, pytest.mark.asyncio(loop_scope="module")]

MADRID = ZoneInfo("Europe/Madrid")
START = datetime(2026, 11, 23, 21, 0, tzinfo=MADRID)  # Monday, reduced 18:00-22:00; pablo on call
SECRET = "e2e-chatwoot-webhook-secret"
TOKEN = "e2e-chatwoot-user-token-0123456789"
ACCOUNT, INBOX = 7, 12
ANSWERED, UNANSWERED, WINDOW_CLOSED = 4821, 4822, 4823
OFFHOURS_USER, LUCIA, PABLO = 5, 31, 32
WAIT = 60.0

COVERAGE = """\
teams:
  care-es:
    name: Atención al cliente
    timezone: Europe/Madrid
    locale: es
    chatwoot: {{account: {account}, inboxes: [{inbox}]}}
    hours:
      mon-fri: ["09:00-18:00 open", "18:00-22:00 reduced"]
    on_call:
      rotation: {{members: [lucia, pablo], start: "2026-11-02 09:00", every: 1w}}
    escalation:
      reduced: {{after: 2m, chain: [next_on_call, "lead:pablo"], repeat: 1}}
    staff:
      lucia: {{name: Lucía Fernández, chatwoot_agent: {lucia}, notify: ["slack:{slack}"]}}
      pablo: {{name: Pablo Ruiz, chatwoot_agent: {pablo}, notify: ["slack:{slack}"]}}
"""


class TestClock:
    """POSIX seconds from ``START``, running with real time; :meth:`advance` jumps ahead."""

    __test__ = False

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self._jumped = 0.0

    def __call__(self) -> float:
        return START.timestamp() + (time.monotonic() - self._origin) + self._jumped

    def advance(self, delta: timedelta) -> None:
        self._jumped += delta.total_seconds()


def the_desk(clock: Callable[[], float]) -> FakeChatwoot:
    desk = FakeChatwoot(clock=clock)
    desk.add_account(ACCOUNT, "Acme España")
    desk.add_user(OFFHOURS_USER, "offhours", token=TOKEN, accounts=(ACCOUNT,), role="administrator")
    desk.add_user(LUCIA, "Lucía Fernández", accounts=(ACCOUNT,))
    desk.add_user(PABLO, "Pablo Ruiz", accounts=(ACCOUNT,))
    desk.add_inbox(ACCOUNT, INBOX, "Acme España Facebook", "Channel::FacebookPage", members=(LUCIA, PABLO))
    desk.add_labels(ACCOUNT, "offhours", "offhours-reduced", "offhours-closed")
    desk.add_conversation(ACCOUNT, ANSWERED, inbox=INBOX, contact=(88213, "Ana López"), source_id="PSID_1")
    desk.add_conversation(ACCOUNT, UNANSWERED, inbox=INBOX, contact=(88214, "Sam Lee"), source_id="PSID_2")
    desk.add_conversation(ACCOUNT, WINDOW_CLOSED, inbox=INBOX, contact=(88215, "Kim Park"), source_id="PSID_3",
                          can_reply=False)
    return desk


@dataclass
class Running:
    desk: FakeChatwoot
    slack: FakeSlack
    app: OffhoursApp
    clock: TestClock
    routes: TopicReader
    events: TopicReader
    coverage: Coverage

    def messages(self, conversation: int) -> list[Message]:
        return self.desk.conversation(ACCOUNT, conversation).messages

    def acknowledgments(self, conversation: int) -> list[Message]:
        return [m for m in self.messages(conversation) if m.message_type == "outgoing" and not m.private
                and str(m.content_attributes.get("offhours_id", "")).startswith("ack:")]

    def notes(self, conversation: int) -> list[str]:
        return [m.content or "" for m in self.messages(conversation) if m.private]

    def assignments(self, conversation: int) -> list[int]:
        path = f"/api/v1/accounts/{ACCOUNT}/conversations/{conversation}/assignments"
        return [a.request.json()["assignee_id"] for a in self.desk.answers if a.ok and a.request.path == path]

    def assignee(self, conversation: int) -> int | None:
        user = self.desk.conversation(ACCOUNT, conversation).assignee
        return None if user is None else user.id

    def state(self, conversation: int) -> ConversationState | None:
        raw = self.app.conversations.get(f"cw:{ACCOUNT}:{conversation}".encode())
        return None if raw is None else ConversationState.from_bytes(raw)

    def recent_first_responses(self, mode: str = "reduced") -> list[int]:
        """The worker's recent first responses of care-es in ``mode`` (seconds), from the reply-times table."""
        raw = self.app.reply_times.get(b"p0")  # one partition
        return [] if raw is None else FirstResponseStats.from_bytes(raw).durations("care-es", mode)

    async def flush(self) -> None:
        """Chatwoot sends the webhooks of what offhours changed at once: send them, all accepted."""
        sent = await self.desk.deliver_pending()
        assert [] == [(d.event, d.statuses) for d in sent if d.statuses[-1] != 200]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    clock = TestClock()
    desk, slack = the_desk(clock), FakeSlack()
    for fake in (desk, slack):
        await fake.start()
    base = settings_for(broker, f"chatwoot-e2e-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("e2e"))
    responders = base.responders.model_copy(update={
        "deliver": True, "chatwoot_url": desk.url, "chatwoot_token": SecretStr(TOKEN), "egress_allow": ("127.0.0.1",),
        "backoff_base": 0.2, "backoff_max": 1.0,
    })
    settings = base.with_overrides(partitions=1, responders=responders)
    coverage = load_coverage_text(
        COVERAGE.format(account=ACCOUNT, inbox=INBOX, lucia=LUCIA, pablo=PABLO, slack=slack.webhook_url),
        filename="chatwoot-e2e.yaml",
    )
    edge_settings = EdgeSettings(chatwoot_webhook_secret=SECRET, chatwoot_own_senders=[f"user:{OFFHOURS_USER}"])
    sink = KafkaEventSink(settings.bootstrap_servers, settings.events_topic)
    actions = KafkaActionSink(settings.bootstrap_servers, settings.ops.actions_topic, partitions=settings.partitions)
    webhooks = build_webhooks(
        edge_settings, sink, now=lambda: datetime.fromtimestamp(clock(), UTC),
        coverage=lambda: coverage, actions=actions,
    )
    runner = web.AppRunner(webhooks, access_log=None)
    try:
        async with running_worker(settings, coverage, reconcile=False, clock=clock,
                                  sweep_every=timedelta(seconds=1)) as app:
            await actions.start()
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            desk.add_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/chatwoot", SECRET)
            async with (TopicReader(settings, settings.routes_topic) as routes,
                        TopicReader(settings, settings.events_topic) as events):
                yield Running(desk, slack, app, clock, routes, events, coverage)
    finally:
        await runner.cleanup()
        await actions.stop()
        for fake in (desk, slack):
            await fake.stop()


async def until(done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``done`` until it holds, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.05)


async def customer_writes(running: Running, conversation: int, text: str) -> Message:
    message = await running.desk.customer_writes(ACCOUNT, conversation, text)
    [delivery] = [d for d in running.desk.webhook_deliveries if d.json().get("id") == message.id]
    assert [200] == delivery.statuses
    return message


async def acknowledged_and_assigned(running: Running, conversation: int) -> None:
    """One acknowledgment posted, the labels, the private note and the on-call agent assigned."""
    await running.desk.wait_until(
        lambda _: bool(running.acknowledgments(conversation)) and running.assignee(conversation) == PABLO
        and "offhours-reduced" in running.desk.conversation(ACCOUNT, conversation).labels
        and any("offhours routed this conversation to Pablo Ruiz" in note for note in running.notes(conversation)),
        timeout=WAIT,
    )


class TestChatwootDeskEndToEnd:
    async def test_a_customer_at_the_reduced_hour_is_acknowledged_once_and_assigned(self, running: Running) -> None:
        message = await customer_writes(running, ANSWERED, "Hola, mi pedido 4471 no ha llegado")
        await acknowledged_and_assigned(running, ANSWERED)
        [ack] = running.acknowledgments(ANSWERED)
        assert {"offhours_id": f"ack:cw:{ACCOUNT}:{message.id}"} == ack.content_attributes
        [note] = running.notes(ANSWERED)
        assert "reduced" in note and (ack.content or "") in note  # why, and what the customer was promised
        # Chatwoot's webhooks of offhours' own message, note, labels and assignment: nothing posted, no claim.
        await running.flush()
        # Chatwoot retries the customer's webhook (same X-Chatwoot-Delivery).
        [original] = [d for d in running.desk.webhook_deliveries if d.json().get("id") == message.id]
        assert 200 == await running.desk.redeliver(original)
        await running.slack.wait_until(lambda s: any(a.ok for a in s.answers), timeout=WAIT)

    async def test_a_second_conversation_is_acknowledged_and_assigned(self, running: Running) -> None:
        await customer_writes(running, UNANSWERED, "Me han cobrado dos veces")
        await acknowledged_and_assigned(running, UNANSWERED)
        await running.flush()
        state = running.state(UNANSWERED)
        assert state is not None and state.claimed_by is None  # offhours' own assignment is no claim

    async def test_the_agents_reply_in_the_desk_stops_the_escalation(self, running: Running) -> None:
        running.clock.advance(timedelta(seconds=45))  # the customer waits on; the chain's first step is due at 2 min
        reply = await running.desk.agent_replies(ACCOUNT, ANSWERED, PABLO, "Hola Ana, lo miro ahora mismo")
        await until(lambda: (state := running.state(ANSWERED)) is not None and state.status == "answered",
                    "the desk reply marks the conversation answered")
        [written] = [m for m in running.messages(ANSWERED) if m.message_type == "incoming"]
        waited = int(reply.created_at) - int(written.created_at)  # both dated by the one test clock
        assert 45 <= waited < 120

        # The worker measured it: the partition's recent first responses (the figures acknowledgments promise).
        await until(lambda: running.recent_first_responses() == [waited], "the worker records the first response")

        # The SLA report measures the same from the events topic, as `offhours sla report` reads it.
        tracker = ResponseTracker(running.coverage)
        for record in await running.events.read_all():
            tracker.add_raw(record.value, f"offset {record.offset}")
        [response] = [r for r in tracker.responses() if r.conversation == f"cw:{ACCOUNT}:{ANSWERED}"]
        assert ("care-es", "reduced", waited) == (response.team, response.mode, response.seconds)
        assert datetime.fromtimestamp(int(written.created_at), UTC) == response.customer_at
        [row] = sla_rows(tracker.responses(), running.coverage)
        assert ("care-es", "reduced", 1, timedelta(seconds=waited)) == (row.team, row.mode, row.count, row.median)

    async def test_the_unanswered_one_walks_the_chain_and_the_answered_one_stays(self, running: Running) -> None:
        running.clock.advance(timedelta(minutes=5))  # both steps of the chain are due (2 and 4 minutes)
        await running.desk.wait_until(lambda _: running.assignments(UNANSWERED) == [PABLO, LUCIA], timeout=WAIT)
        await running.flush()  # Chatwoot's webhook of that reassignment: offhours' own, no claim
        await running.desk.wait_until(lambda _: running.assignments(UNANSWERED) == [PABLO, LUCIA, PABLO], timeout=WAIT)
        notes = running.notes(UNANSWERED)
        assert ["escalated: nobody claimed it in 2 minutes; now with Lucía Fernández.",
                "escalated: nobody claimed it in 4 minutes; now with Pablo Ruiz."] == [
            note for note in notes if note.startswith("escalated:")]
        # The answered conversation: the sweep that sent the first step sent nothing for it.
        records = await running.routes.read_all()
        route_ids = [orjson.loads(r.value)["route_id"] for r in records]
        [written] = [m.id for m in running.messages(UNANSWERED) if m.message_type == "incoming"]
        assert [f"esc:cw:{ACCOUNT}:{written}:0", f"esc:cw:{ACCOUNT}:{written}:1"] == [
            rid for rid in route_ids if rid.startswith("esc:")]
        assert [PABLO] == running.assignments(ANSWERED)
        # Exactly one acknowledgment in each conversation, whatever was redelivered; in the answered
        # one nothing but the customer's message, the acknowledgment, the note and the agent's reply.
        assert (1, 1) == (len(running.acknowledgments(ANSWERED)), len(running.acknowledgments(UNANSWERED)))
        assert sorted([("incoming", False), ("outgoing", False), ("outgoing", True), ("outgoing", False)]) == sorted(
            (m.message_type, m.private) for m in running.messages(ANSWERED))

    async def test_a_closed_reply_window_leaves_a_note_and_pages_the_on_call_agent(self, running: Running) -> None:
        await customer_writes(running, WINDOW_CLOSED, "¿Siguen ahí?")
        conversation = running.desk.conversation(ACCOUNT, WINDOW_CLOSED)
        await running.desk.wait_until(
            lambda _: conversation.priority == "urgent" and running.assignee(WINDOW_CLOSED) == PABLO
            and any("Not delivered to the customer" in note for note in running.notes(WINDOW_CLOSED)), timeout=WAIT)
        notes = running.notes(WINDOW_CLOSED)
        assert [] == [m for m in running.messages(WINDOW_CLOSED) if m.message_type == "outgoing" and not m.private]
        assert any(note.startswith("offhours did not send its acknowledgment") and "can_reply false" in note
                   for note in notes)
        assert any(note.startswith("offhours paged this conversation to Pablo Ruiz") for note in notes)
        await running.flush()

    async def test_the_opening_hands_the_backlog_over_in_the_desk(self, running: Running) -> None:
        """Tuesday 09:00: the conversations still waiting (the unanswered one, written first, then the
        one Chatwoot could not reply to) get the handover's note in the digest's order and are with
        the member on duty at the opening (pablo); the answered one is not in the backlog."""
        opening = datetime(2026, 11, 24, 9, 0, tzinfo=MADRID)
        running.clock.advance(timedelta(seconds=opening.timestamp() - running.clock() - 1))
        assert running.app.promise_timers is not None
        running.app.promise_timers.plan(running.coverage)  # the timer waits on the system clock: plan again from the test clock

        def handover_notes(conversation: int) -> list[Message]:
            return [m for m in running.messages(conversation)
                    if m.private and (m.content or "").startswith("offhours handover at the opening")]

        await until(lambda: all(handover_notes(c) for c in (UNANSWERED, WINDOW_CLOSED)), "the handover's notes")
        await until(lambda: running.assignee(UNANSWERED) == PABLO == running.assignee(WINDOW_CLOSED),
                    "both with the member on duty at the opening")
        [first], [second] = handover_notes(UNANSWERED), handover_notes(WINDOW_CLOSED)
        assert first.id < second.id  # written in the digest's order
        assert "overnight backlog, 1 of 2, waiting since Mon 23 Nov 21:" in (first.content or "")
        assert "overnight backlog, 2 of 2, waiting since Mon 23 Nov 21:" in (second.content or "")
        assert {"For Pablo Ruiz."} == {(m.content or "").rsplit(". ", 1)[-1] for m in (first, second)}
        assert first.content_attributes["offhours_id"] == (
            f"handover:care-es:{int(opening.timestamp())}|cw:{ACCOUNT}:{UNANSWERED}|desk:note")
        assert [] == handover_notes(ANSWERED)
        records = await running.routes.read_all()
        [digest] = [orjson.loads(r.value) for r in records if orjson.loads(r.value)["route_id"].startswith("handover:")]
        assert [UNANSWERED, WINDOW_CLOSED] == [item["desk"]["conversation"] for item in digest["extra"]["handover"]]
        await running.flush()  # Chatwoot's webhooks of those writes: offhours' own, no claim
        state = running.state(UNANSWERED)
        assert state is not None and state.claimed_by is None
