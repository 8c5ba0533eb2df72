"""Escalations and the handover driven by the workers: pure helpers, then the real embedded broker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edge.actions import action_record
from promises.rules import PendingEscalation
from records.wire import RouteRequest
from schedules import Coverage
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sweeps import held_partitions
from streams.worker import running_worker
from tests.support.streams_actions import record_actions
from tests.support.streams_app import (
    MONDAY_EVENING,
    event,
    read_until,
    sample_value,
    send,
)
from tests.support.streams_escalations import (
    CONVERSATION,
    KEY,
    MONDAY_OPENING,
    SUNDAY_MORNING,
    SWEEP_EVERY,
    SteppedClock,
    escalating_coverage,
    escalations_changelog,
    first_route,
    read_routes,
)
from tests.support.workers import TopicReader


@pytest.fixture
def coverage(tmp_path) -> Coverage:
    return escalating_coverage(tmp_path)


async def all_routes(settings: Settings) -> list[RouteRequest]:
    """Every route on the routes outbox up to its end."""
    async with TopicReader(settings, settings.routes_topic) as reader:
        return read_routes(await reader.read_all())


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

