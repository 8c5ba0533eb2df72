"""Follow-through, reply windows and measured promises: pure rules, then the real embedded broker.

The example coverage's care-it (Europe/Rome): weekdays 09:00-19:00 open and 19:00-24:00
reduced, Saturday 10:00-18:00 reduced, Sunday closed; giulia is on call the week of
16 November, marta the week of 23 November.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from promises.rules import FirstResponseStats
from records.wire import RouteRequest
from schedules import Coverage, load_coverage
from streams.app import reply_times_key
from streams.metrics import Metrics
from streams.worker import running_worker
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.streams_app import (
    MONDAY_EVENING,
    event,
    read_until,
    sample_value,
    send,
)
from tests.support.streams_escalations import (
    SWEEP_EVERY,
    SteppedClock,
    escalations_changelog,
    first_route,
)
from tests.support.streams_follow_through import (
    FRIDAY_EVENING,
    SATURDAY_18,
    WA_CONVERSATION,
    seconds,
    whatsapp,
)
from triage.state import ConversationState


@pytest.fixture
def coverage() -> Coverage:
    """The example coverage file as shipped (default escalation: 30-minute claim limit, 2 h window margin)."""
    return load_coverage(EXAMPLE_COVERAGE)


@pytest.mark.broker
class TestPromisesOnTheBroker:
    async def test_friday_whatsapp_routed_before_its_window_closes(self, settings, coverage) -> None:
        """Friday 20:00 on WhatsApp, nobody replies: on Saturday 18:00 the staff on call get it, with the closing time."""
        clock = SteppedClock(FRIDAY_EVENING)
        key = WA_CONVERSATION.encode()
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY) as app:
            await send(settings, (key, whatsapp("wa:w1", FRIDAY_EVENING), []))
            await read_until(settings, settings.decisions_topic, 1)
            clock.move_to(SATURDAY_18 + timedelta(minutes=1))
            route = await first_route(settings, "window:")
            await read_until(settings, escalations_changelog(app), 2)
            state = ConversationState.from_bytes(app.conversations[key])
        expected = ("2026-11-21T20:00:00+01:00", ["giulia"], "template", seconds(FRIDAY_EVENING),
                    ("Ana", "Il mio ordine non è arrivato", "acme.it.whatsapp", "dm"), "2026-11-20T20:00:00+01:00")
        assert expected == (route.window_closes, [n.member for n in route.to], state.reply_via, state.window_routed,
                            (route.author_name, route.text, route.account, route.extra["kind"]), route.extra["waiting_since"])

    async def test_missed_reply_by_reminds_once_and_counts_a_breach(self, settings, coverage) -> None:
        """Acknowledged at 21:14 with a reply promised by 21:54: past it, one reminder and one breach."""
        clock = SteppedClock(MONDAY_EVENING)
        metrics = Metrics()
        key = b"fb:PAGE_111:PSID_222"
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY,
                                  metrics=metrics) as app:
            await send(settings, (key, event("fb:m_f1", MONDAY_EVENING), []))
            await read_until(settings, settings.decisions_topic, 1)
            await read_until(settings, app.conversations.changelog_topic.get_topic_name(), 1)
            clock.move_to(MONDAY_EVENING + timedelta(minutes=41))
            reminder = await first_route(settings, "remind:reply_by:")
            await clock.sweeps(4)
            records = await read_until(settings, settings.routes_topic, 1)
            reminders = [r for r in (RouteRequest.from_json(x.value) for x in records)
                         if r.route_id.startswith("remind:reply_by:")]
            breaches = sample_value(metrics, "offhours_promise_breaches_total", team="care-it", kind="reply_by")
            sent = sample_value(metrics, "offhours_reminders_total", team="care-it")
        expected = (["marta"], 1, 1.0, 1.0, ("Ana Lopez", "Il mio ordine non è arrivato"))
        assert expected == ([n.member for n in reminder.to], len({r.route_id for r in reminders}), breaches, sent,
                            (reminder.author_name, reminder.text))

    async def test_staff_reply_is_measured_into_the_partition_stats(self, settings, coverage) -> None:
        """A staff reply 25 minutes after the customer: one first response in the stats table and the histogram."""
        clock = SteppedClock(MONDAY_EVENING)
        metrics = Metrics()
        key = b"fb:PAGE_111:PSID_9"
        reply = event("fb:r_9", MONDAY_EVENING + timedelta(minutes=25), conversation=key.decode(),
                      kind="agent_reply", author={"id": "marta"})
        async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY,
                                  metrics=metrics) as app:
            await send(settings, (key, event("fb:m_9", MONDAY_EVENING, conversation=key.decode()), []))
            records = await read_until(settings, settings.decisions_topic, 1)
            await send(settings, (key, reply, []))
            records = await read_until(settings, settings.decisions_topic, 2)
            partition = records[0].partition
            stats = FirstResponseStats.from_bytes(app.reply_times[reply_times_key(partition)])
            count = sample_value(metrics, "offhours_first_response_seconds_count", team="care-it", mode="reduced")
        assert ([1500], 1.0) == (stats.durations("care-it", "reduced"), count)

