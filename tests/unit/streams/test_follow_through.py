"""Follow-through, reply windows and measured promises: pure rules, then the real embedded broker.

The example coverage's care-it (Europe/Rome): weekdays 09:00-19:00 open and 19:00-24:00
reduced, Saturday 10:00-18:00 reduced, Sunday closed; giulia is on call the week of
16 November, marta the week of 23 November.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from promises.routes import window_route
from promises.rules import FirstResponseStats
from promises.ticks import reminders_due, window_route_due
from records.actions import ReminderTick, WindowTick, decode_action
from schedules import Coverage, load_coverage
from streams.sweeps import backlog_of, promise_ticks
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.streams_app import (
    ROME,
    event,
)
from tests.support.streams_follow_through import (
    FRIDAY_EVENING,
    SATURDAY_18,
    WA_CONVERSATION,
    seconds,
)
from triage.policy import Triage
from triage.state import ConversationState

MONDAY_OPENING = datetime(2026, 11, 23, 9, 0, tzinfo=ROME)


def waiting(at: datetime, **changes) -> ConversationState:
    """A care-it conversation whose customer wrote at ``at`` and was acknowledged then."""
    base = ConversationState(team="care-it", customer_at=seconds(at), waiting_since=seconds(at),
                             ack_at=seconds(at), channel="whatsapp", promised="Ciao")
    return replace(base, **changes)


@pytest.fixture
def coverage() -> Coverage:
    """The example coverage file as shipped (default escalation: 30-minute claim limit, 2 h window margin)."""
    return load_coverage(EXAMPLE_COVERAGE)


def decide(triage: Triage, raw: bytes, state: ConversationState | None, stats: FirstResponseStats | None = None):
    return triage.decide(raw, state, stats)


class TestReplyWindow:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            pytest.param(SATURDAY_18 - timedelta(minutes=1), False, id="before_the_margin"),
            pytest.param(SATURDAY_18, True, id="at_window_close_minus_margin"),
            pytest.param(SATURDAY_18 + timedelta(hours=1, minutes=59), True, id="inside_the_margin"),
            pytest.param(SATURDAY_18 + timedelta(hours=2), False, id="window_closed"),
        ],
    )
    def test_friday_evening_whatsapp_is_routed_before_the_window_closes(self, coverage, now, expected) -> None:
        """A Friday 20:00 WhatsApp message, team open again Monday: routed from Saturday 18:00 until 20:00."""
        assert expected == window_route_due(waiting(FRIDAY_EVENING), coverage.teams["care-it"], now)

    @pytest.mark.parametrize(
        "state",
        [
            pytest.param(waiting(FRIDAY_EVENING, window_routed=seconds(FRIDAY_EVENING)), id="already_routed"),
            pytest.param(waiting(FRIDAY_EVENING, staff_at=seconds(FRIDAY_EVENING) + 60), id="staff_replied"),
            pytest.param(waiting(FRIDAY_EVENING, status="answered"), id="answered"),
            pytest.param(waiting(FRIDAY_EVENING, channel="telegram"), id="no_window_on_telegram"),
            pytest.param(waiting(datetime(2026, 11, 22, 11, 0, tzinfo=ROME)), id="sunday_message_team_opens_in_time"),
        ],
    )
    def test_no_early_route(self, coverage, state) -> None:
        """Routed once per message, only while the customer waits, only where a window closes before the opening."""
        sunday_noon = datetime(2026, 11, 22, 12, 0, tzinfo=ROME)
        now = sunday_noon if state.customer_at == seconds(datetime(2026, 11, 22, 11, 0, tzinfo=ROME)) else SATURDAY_18
        assert window_route_due(state, coverage.teams["care-it"], now) is False

    def test_a_new_message_opens_a_new_window_to_route(self, coverage) -> None:
        """After the route, a new customer message restarts the window: it is routed again, later."""
        later = FRIDAY_EVENING + timedelta(hours=3)
        state = waiting(FRIDAY_EVENING, window_routed=seconds(FRIDAY_EVENING), customer_at=seconds(later))
        team = coverage.teams["care-it"]
        assert (False, True) == (window_route_due(state, team, SATURDAY_18),
                                 window_route_due(state, team, SATURDAY_18 + timedelta(hours=3)))

    @pytest.mark.parametrize(
        ("channel", "after", "says"),
        [
            pytest.param("whatsapp", "template", "approved WhatsApp template", id="whatsapp_template"),
            pytest.param("facebook", "human_agent", "HUMAN_AGENT tag until Fri 27 Nov 20:00", id="messenger_human_agent"),
        ],
    )
    def test_route_says_when_the_window_closes_and_how_to_reply_after(self, coverage, channel, after, says) -> None:
        """The early route goes to the staff on call and names the closing time and the mechanism after it."""
        state = waiting(FRIDAY_EVENING, channel=channel)
        route, mechanism = window_route(state, coverage.teams["care-it"], WA_CONVERSATION, SATURDAY_18)
        expected = (f"window:{WA_CONVERSATION}:{seconds(FRIDAY_EVENING)}", ["giulia"], "2026-11-21T20:00:00+01:00",
                    after, True)
        actual = (route.route_id, [n.member for n in route.to], route.window_closes, mechanism, says in route.reason)
        assert expected == actual


class TestFollowThrough:
    def test_promised_time_passed_without_reply_reminds_on_call_and_is_a_breach(self, coverage) -> None:
        """Acknowledged, reply-by passed, no staff reply: one reply_by reminder to the staff on call."""
        reply_by = FRIDAY_EVENING + timedelta(minutes=40)
        state = waiting(FRIDAY_EVENING, reply_by=seconds(reply_by))
        reminders = reminders_due("c", state, coverage.teams["care-it"], reply_by + timedelta(minutes=1))
        expected = [(f"remind:reply_by:c:{seconds(reply_by)}", "reply_by", ("giulia",), True)]
        assert expected == [(r.id, r.kind, r.to, r.breach) for r in reminders]

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param({"staff_at": seconds(FRIDAY_EVENING) + 600}, id="staff_replied_in_time"),
            pytest.param({"status": "answered"}, id="answered"),
            pytest.param({"reminded": (f"remind:reply_by:c:{seconds(FRIDAY_EVENING) + 2400}",)}, id="already_sent"),
        ],
    )
    def test_no_reminder(self, coverage, changes) -> None:
        """A reply, an answered mark or a reminder already sent: nothing more to remind."""
        state = waiting(FRIDAY_EVENING, reply_by=seconds(FRIDAY_EVENING) + 2400, **changes)
        assert [] == reminders_due("c", state, coverage.teams["care-it"], FRIDAY_EVENING + timedelta(hours=1))

    def test_claim_not_answered_reminds_the_claimer_then_escalates(self, coverage) -> None:
        """Claimed by luca, no reply within the 30-minute claim limit: a reminder to luca, and a chain to start."""
        claimed = FRIDAY_EVENING + timedelta(minutes=5)
        state = waiting(FRIDAY_EVENING, claimed_by="luca", claimed_at=seconds(claimed))
        reminders = reminders_due("c", state, coverage.teams["care-it"], claimed + timedelta(minutes=31))
        reminder = reminders[0]
        expected = ("claim", ("luca",), f"claim:c:{seconds(claimed)}", claimed + timedelta(minutes=30))
        assert expected == (reminder.kind, reminder.to, reminder.escalation.event_id, reminder.escalation.routed_at)

    def test_sweep_ticks_name_the_reminder_and_the_window(self, coverage) -> None:
        """One sweep over the table: a reminder tick and a window tick for the Friday WhatsApp conversation."""
        state = waiting(FRIDAY_EVENING, reply_by=seconds(FRIDAY_EVENING) + 2400)
        ticks = promise_ticks([(b"c", state.to_bytes())], coverage.teams, SATURDAY_18)
        expected = [ReminderTick(conversation="c", reminder_id=f"remind:reply_by:c:{seconds(FRIDAY_EVENING) + 2400}",
                                 at=SATURDAY_18),
                    WindowTick(conversation="c", customer_at=seconds(FRIDAY_EVENING), at=SATURDAY_18)]
        assert expected == [tick for _, tick in ticks]


class TestWaitingAndPromises:
    def test_first_response_counts_from_the_first_waiting_message(self, coverage) -> None:
        """Two customer messages, then a staff reply: the response is measured from the first, in its mode."""
        triage = Triage(coverage)
        state = decide(triage, event("fb:m_1", FRIDAY_EVENING), None).state
        state = decide(triage, event("fb:m_2", FRIDAY_EVENING + timedelta(minutes=10)), state).state
        reply = event("fb:r_1", FRIDAY_EVENING + timedelta(minutes=30), kind="agent_reply", author={"id": "marta"})
        outcome = decide(triage, reply, state)
        again = decide(triage, event("fb:r_2", FRIDAY_EVENING + timedelta(minutes=50), kind="agent_reply",
                                     author={"id": "marta"}), outcome.state)
        response = outcome.first_response
        expected = ("reduced", timedelta(minutes=30), None, None)
        assert expected == (response.mode, response.waited, outcome.state.waiting_since, again.first_response)

    def test_acknowledgment_records_the_promised_reply_by(self, coverage) -> None:
        """The reply-by time promised in the acknowledgment is kept on the conversation (40 min configured)."""
        outcome = decide(Triage(coverage), event("fb:m_1", FRIDAY_EVENING), None)
        assert seconds(FRIDAY_EVENING + timedelta(minutes=40)) == outcome.state.reply_by

    @pytest.mark.parametrize(
        ("samples", "minutes", "expected"),
        [
            pytest.param(0, 0, timedelta(minutes=40), id="no_data_configured"),
            pytest.param(19, 12, timedelta(minutes=40), id="too_few_configured"),
            pytest.param(20, 12, timedelta(minutes=12), id="measured_median_12"),
            pytest.param(40, 25, timedelta(minutes=25), id="measured_median_25"),
        ],
    )
    def test_learned_reply_time_moves_with_measured_data(self, coverage, samples, minutes, expected) -> None:
        """The promise is the measured median of recent reduced-hours responses once there are 20 of them."""
        stats = FirstResponseStats()
        start = FRIDAY_EVENING - timedelta(days=7)
        for n in range(samples):
            customer_at = start + timedelta(minutes=n)
            stats = stats.record("care-it", "reduced", customer_at, customer_at + timedelta(minutes=minutes))
        outcome = decide(Triage(coverage), event("fb:m_1", FRIDAY_EVENING), None, stats)
        assert seconds(FRIDAY_EVENING + expected) == outcome.state.reply_by

    def test_backlog_shows_the_promise_and_the_first_waiting_message(self, coverage) -> None:
        """The handover item waits since the first unanswered message and carries the reply-by promised."""
        saturday = datetime(2026, 11, 21, 19, 0, tzinfo=ROME)
        state = waiting(saturday, customer_at=seconds(saturday) + 3600, reply_by=seconds(MONDAY_OPENING) + 7200)
        item = backlog_of([(b"c", state.to_bytes())], coverage.teams["care-it"], MONDAY_OPENING)[0]
        expected = (saturday.astimezone(UTC), (MONDAY_OPENING + timedelta(hours=2)).astimezone(UTC))
        assert expected == (item.waiting_since, item.reply_by)


def test_tick_wire_forms_are_json() -> None:
    """Ticks are plain JSON objects the actions agent reads back as the same ticks."""
    state = waiting(FRIDAY_EVENING, reply_by=seconds(FRIDAY_EVENING) + 60)
    ticks = promise_ticks([(b"c", state.to_bytes())], load_coverage(EXAMPLE_COVERAGE).teams, SATURDAY_18)
    assert ticks and all(isinstance(orjson.loads(tick.to_json()), dict) and decode_action(tick.to_json()) == tick
                         for _, tick in ticks)

