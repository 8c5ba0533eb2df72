"""Escalations and the handover driven by the workers: pure helpers, then the real embedded broker."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from brokers.client import partition_of
from edge.actions import action_record
from promises.routes import pending_from_route
from promises.rules import PendingEscalation
from promises.ticks import due_ticks, escalation_tick
from records.actions import ActionInvalid, EscalationTick, decode_action
from records.wire import RouteRequest
from schedules import Coverage, load_coverage
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sweeps import backlog_of, handover_route, held_partitions, held_rows
from streams.worker import running_worker
from tests.conftest import EXAMPLE_COVERAGE
from tests.integration.workers import TopicReader
from tests.streams.test_actions import record_actions
from tests.streams.test_app import (
    MONDAY_EVENING,
    ROME,
    event,
    read_until,
    sample_value,
    send,
)
from triage.state import ConversationState

WAIT = 30.0  # seconds: a bound on a wait for an event, never a sleep
SWEEP_EVERY = timedelta(milliseconds=100)
CONVERSATION = "fb:PAGE_111:PSID_222"
KEY = CONVERSATION.encode()
SUNDAY_MORNING = datetime(2026, 11, 22, 10, 0, tzinfo=ROME)  # care-it closed
MONDAY_OPENING = datetime(2026, 11, 23, 9, 0, tzinfo=ROME)
ESCALATION_BLOCK = """    escalation:
      reduced: {after: 1m, chain: [next_on_call, lead:giulia], repeat: 1}
"""


def escalating_coverage(tmp_path) -> Coverage:
    """The example coverage with care-it escalating after 1 minute: next on call, then giulia."""
    text = EXAMPLE_COVERAGE.read_text(encoding="utf-8").replace("  care-us:\n", ESCALATION_BLOCK + "  care-us:\n", 1)
    path = tmp_path / "coverage.yaml"
    path.write_text(text, encoding="utf-8")
    return load_coverage(path)


class SteppedClock:
    """A clock the test moves; it counts its reads so a test can wait for whole sweeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._reads = 0
        self._read = asyncio.Event()

    def __call__(self) -> float:
        self._reads += 1
        self._read.set()
        return self.now.timestamp()

    def move_to(self, instant: datetime) -> None:
        self.now = instant

    async def sweeps(self, count: int = 2) -> None:
        """Return once the clock was read ``count`` more times (the sweep reads it once each)."""
        target = self._reads + count
        while self._reads < target:
            self._read.clear()
            await asyncio.wait_for(self._read.wait(), WAIT)


def routed(at: datetime, *, sent: int = 0, event_id: str = "fb:m_1") -> PendingEscalation:
    return PendingEscalation(event_id=event_id, team="care-it", conversation=CONVERSATION, mode="reduced",
                             routed_at=at, routed_to=("marta",), sent=sent)


@pytest.fixture
def coverage(tmp_path) -> Coverage:
    return escalating_coverage(tmp_path)


class TestDueTicks:
    @pytest.mark.parametrize(
        ("pending", "now", "expected"),
        [
            pytest.param(routed(MONDAY_EVENING), MONDAY_EVENING + timedelta(seconds=59), [], id="not_yet_due"),
            pytest.param(routed(MONDAY_EVENING), MONDAY_EVENING + timedelta(minutes=1), [0], id="first_step_due"),
            pytest.param(routed(MONDAY_EVENING, sent=1), MONDAY_EVENING + timedelta(minutes=1, seconds=30), [], id="second_step_not_yet"),
            pytest.param(routed(MONDAY_EVENING, sent=1), MONDAY_EVENING + timedelta(minutes=2), [1], id="second_step_due"),
            pytest.param(routed(MONDAY_EVENING, sent=2), MONDAY_EVENING + timedelta(hours=1), [], id="chain_done"),
        ],
    )
    def test_tick_carries_the_steps_sent(self, coverage, pending, now, expected) -> None:
        """A row gets a tick once its next step is due, naming the steps sent when swept."""
        ticks = due_ticks([(KEY, pending.to_bytes())], coverage.teams, now)
        assert expected == [tick.sent for _, tick in ticks]

    def test_row_of_a_team_no_longer_covered_is_left_alone(self, coverage) -> None:
        """A pending escalation of an unknown team yields no tick."""
        pending = PendingEscalation(event_id="x", team="gone", conversation="c", mode="reduced", routed_at=MONDAY_EVENING)
        assert [] == due_ticks([(b"c", pending.to_bytes())], coverage.teams, MONDAY_EVENING + timedelta(days=1))


class TestPendingFromRoute:
    def test_route_starts_a_pending_escalation_at_the_event_time(self) -> None:
        """A route's pending escalation starts at the routed event's time and survives the wire form."""
        route = RouteRequest(
            route_id="route:fb:m_1", event_id="fb:m_1", team="care-it", action="route", mode="reduced",
            to=[], channel="facebook", account="acme.it.facebook", conversation=CONVERSATION,
            author_name="Ana Lopez", text="Il mio ordine", at=MONDAY_EVENING.isoformat(), next_open=None,
        )
        pending = pending_from_route(route)
        expected = (MONDAY_EVENING, 0, "facebook", "Il mio ordine")
        assert expected == (pending.routed_at, pending.sent, pending.channel, pending.text)
        assert pending == PendingEscalation.from_bytes(pending.to_bytes())


class TestEscalationTick:
    def test_tick_reads_back_as_an_action(self) -> None:
        """The sweep's tick is an escalate action with the event id and steps sent."""
        tick = escalation_tick(routed(MONDAY_EVENING, sent=1), MONDAY_EVENING + timedelta(minutes=2))
        action = decode_action(tick.to_json())
        expected = (EscalationTick, "escalate", CONVERSATION, "fb:m_1", 1, MONDAY_EVENING + timedelta(minutes=2))
        assert expected == (type(action), action.action, action.conversation, action.event_id, action.sent, action.instant)

    def test_tick_without_steps_sent_is_invalid(self) -> None:
        """A tick that does not say how many steps were sent is rejected."""
        raw = b'{"action": "escalate", "conversation": "c", "event_id": "e", "at": "2026-11-23T21:00:00+01:00"}'
        with pytest.raises(ActionInvalid) as caught:
            decode_action(raw)
        assert "an escalation tick needs event_id and sent" == str(caught.value)


class TestHeldRows:
    def test_only_rows_of_held_partitions(self) -> None:
        """Rows whose key hashes to a partition the worker does not hold are skipped."""
        keys = [f"conv-{index}".encode() for index in range(40)]
        rows = [(key, b"{}") for key in keys]
        expected = [key for key in keys if partition_of(key, 4) in {0, 3}]
        assert expected == [key for key, _ in held_rows(rows, {0, 3}, 4)]


def state(customer_at: datetime, **changes) -> bytes:
    return ConversationState(team="care-it", customer_at=int(customer_at.timestamp()), channel="facebook",
                             **changes).to_bytes()


class TestBacklog:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(state(SUNDAY_MORNING), ["c"], id="closed_hours_message_waits"),
            pytest.param(state(MONDAY_EVENING - timedelta(days=1, hours=4)), ["c"], id="sunday_evening_waits"),
            pytest.param(state(datetime(2026, 11, 20, 10, 0, tzinfo=ROME)), [], id="open_hours_message_is_the_inbox"),
            pytest.param(state(SUNDAY_MORNING, status="answered"), [], id="answered"),
            pytest.param(state(SUNDAY_MORNING, staff_at=int(SUNDAY_MORNING.timestamp()) + 60), [], id="staff_replied"),
            pytest.param(state(MONDAY_OPENING + timedelta(minutes=5)), [], id="after_the_opening"),
            pytest.param(ConversationState(team="care-us", customer_at=int(SUNDAY_MORNING.timestamp())).to_bytes(), [],
                         id="other_team"),
        ],
    )
    def test_backlog_is_off_hours_and_unanswered(self, coverage, value, expected) -> None:
        """Only open, unanswered conversations whose last message came off hours are handed over."""
        items = backlog_of([(b"c", value)], coverage.teams["care-it"], MONDAY_OPENING)
        assert expected == [item.conversation for item in items]

    def test_nothing_waiting_sends_nothing(self, coverage) -> None:
        """With an empty backlog there is no handover route."""
        assert handover_route([], coverage.teams["care-it"], MONDAY_OPENING, {0}) is None

    def test_digest_route_id_names_the_partitions(self, coverage) -> None:
        """The handover route id is the digest id plus the worker's partitions, and reaches the staff on call."""
        route = handover_route([(b"c", state(SUNDAY_MORNING))], coverage.teams["care-it"], MONDAY_OPENING, {2, 0})
        expected = (f"handover:care-it:{int(MONDAY_OPENING.timestamp())}:p0,2", ["marta"])
        assert expected == (route.route_id, [notify.member for notify in route.to])


def read_routes(records) -> list[RouteRequest]:
    return [RouteRequest.from_json(record.value) for record in records]


async def first_route(settings: Settings, prefix: str) -> RouteRequest:
    """The first route on the routes outbox whose id starts with ``prefix`` (waits for it)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    async with TopicReader(settings, settings.routes_topic) as reader:
        while asyncio.get_running_loop().time() < deadline:
            await reader.poll(0.2)
            for route in read_routes(reader.records):
                if route.route_id.startswith(prefix):
                    return route
    raise AssertionError(f"no route {prefix}* within {WAIT} s")


async def all_routes(settings: Settings) -> list[RouteRequest]:
    """Every route on the routes outbox up to its end."""
    async with TopicReader(settings, settings.routes_topic) as reader:
        return read_routes(await reader.read_all())


def escalations_changelog(app) -> str:
    return app.escalations.changelog_topic.get_topic_name()


@pytest.mark.broker
class TestEscalationOnTheBroker:
    async def test_unclaimed_route_escalates_once_to_the_next_on_call(self, settings, coverage) -> None:
        """Not claimed within 1 minute: exactly one escalation, to luca (next on the rotation), counted,
        repeating the customer's message and their wait."""
        clock = SteppedClock(MONDAY_EVENING)
        metrics = Metrics()
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY,
                                  metrics=metrics) as app:
            await send(settings, (KEY, event("fb:m_e1", MONDAY_EVENING), []))
            await read_until(settings, escalations_changelog(app), 1)
            clock.move_to(MONDAY_EVENING + timedelta(minutes=1, seconds=1))
            await read_until(settings, escalations_changelog(app), 2)
            await clock.sweeps()
            await read_until(settings, settings.routes_topic, 2)
            routes = await all_routes(settings)
            steps = sample_value(metrics, "offhours_escalation_steps_total", team="care-it")
        expected = [
            ("route:fb:m_e1", ["marta"], None),
            ("esc:fb:m_e1:0", ["luca"], "not claimed within 1 minute: escalated to Luca Bianchi"),
        ]
        actual = [(r.route_id, [n.member for n in r.to], r.reason if r.route_id.startswith("esc:") else None)
                  for r in routes]
        step = routes[-1]
        assert expected == actual
        assert (1.0, "Il mio ordine non è arrivato", "dm", MONDAY_EVENING.isoformat(timespec="seconds")) == (
            steps, step.text, step.extra["kind"], step.extra["waiting_since"])

    async def test_claim_before_the_deadline_stops_escalation(self, settings, coverage) -> None:
        """A claim on the actions topic before the minute is up: no escalation, even 25 minutes later."""
        clock = SteppedClock(MONDAY_EVENING)
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY) as app:
            await send(settings, (KEY, event("fb:m_e2", MONDAY_EVENING), []))
            await read_until(settings, escalations_changelog(app), 1)
            await record_actions(settings, action_record(
                action="claim", conversation=CONVERSATION, member="marta", by="link:marta", via="link",
                at=MONDAY_EVENING + timedelta(seconds=30), link_token="token-marta"))
            await read_until(settings, escalations_changelog(app), 2)
            # Within the claim limit (30 min) and the promised reply time (40 min): only
            # the escalation chain (1 and 2 minutes) would have been due.
            clock.move_to(MONDAY_EVENING + timedelta(minutes=25))
            await clock.sweeps()
            await read_until(settings, settings.routes_topic, 1)
            routes = await all_routes(settings)
            pending = app.escalations.get(KEY)
        assert (["route:fb:m_e2"], None) == ([r.route_id for r in routes], pending)

    async def test_restart_does_not_repeat_a_sent_step(self, settings, coverage) -> None:
        """A new worker on the same topics recovers the sent step: it sends only the next one, once."""
        clock = SteppedClock(MONDAY_EVENING)
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY) as app:
            await send(settings, (KEY, event("fb:m_e3", MONDAY_EVENING), []))
            await read_until(settings, escalations_changelog(app), 1)
            clock.move_to(MONDAY_EVENING + timedelta(minutes=1, seconds=1))
            await read_until(settings, escalations_changelog(app), 2)
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY) as app:
            recovered = PendingEscalation.from_bytes(app.escalations[KEY])
            held = held_partitions(app)
            await clock.sweeps()
            clock.move_to(MONDAY_EVENING + timedelta(minutes=2, seconds=1))
            await read_until(settings, escalations_changelog(app), 3)
            await clock.sweeps()
            await read_until(settings, settings.routes_topic, 3)
            routes = await all_routes(settings)
        assert (1, set(range(settings.partitions))) == (recovered.sent, held)
        expected = [("route:fb:m_e3", ["marta"]), ("esc:fb:m_e3:0", ["luca"]), ("esc:fb:m_e3:1", ["giulia"])]
        assert expected == [(r.route_id, [n.member for n in r.to]) for r in routes]


@pytest.mark.broker
class TestHandoverOnTheBroker:
    async def test_opening_sends_one_digest_urgent_first(self, settings, coverage) -> None:
        """With the clock just before the opening, the timer fires and one digest lists the backlog, urgent first,
        with each customer's words, counted once."""
        clock = SteppedClock(MONDAY_OPENING - timedelta(hours=1))
        metrics = Metrics()
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY,
                                  metrics=metrics) as app:
            await send(
                settings,
                (b"fb:PAGE_111:PSID_1", event("fb:m_h1", SUNDAY_MORNING, conversation="fb:PAGE_111:PSID_1"), []),
                (b"fb:PAGE_111:PSID_2", event("fb:m_h2", SUNDAY_MORNING + timedelta(hours=2),
                                              conversation="fb:PAGE_111:PSID_2", text="Carta clonata!"), []),
            )
            await read_until(settings, settings.decisions_topic, 2)
            planned = app.promise_timers.planned()["care-it"]
            clock.move_to(MONDAY_OPENING - timedelta(seconds=1))
            app.coverage.swap(coverage)  # a coverage swap plans the openings again from the clock
            digest = await first_route(settings, "handover:")
            routes = await all_routes(settings)
            handovers = sample_value(metrics, "offhours_handovers_total", team="care-it")
        expected = (MONDAY_OPENING, ["fb:PAGE_111:PSID_2", "fb:PAGE_111:PSID_1"], [True, False], 1,
                    ["Carta clonata!", "Il mio ordine non è arrivato"], 1.0)
        actual = (planned, [item["conversation"] for item in digest.extra["handover"]],
                  [item["urgent"] for item in digest.extra["handover"]],
                  sum(1 for r in routes if r.route_id.startswith("handover:")),
                  [item["text"] for item in digest.extra["handover"]], handovers)
        assert expected == actual
