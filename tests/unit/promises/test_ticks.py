"""What a sweep's tick does when the actions agent applies it (promises.ticks), without a broker.

care-it of tests/support/promises.py (Europe/Rome): reduced Monday 19:00-24:00, escalating
after 15 minutes to the next on call, then anna, then the Slack channel, walked twice;
marta on call the week of 23 November, luca the next. The reminder and window cases use
the example coverage's care-it (giulia on call the week of 16 November, 2 h window margin).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from promises.routes import pending_from_route
from promises.rules import PendingEscalation
from promises.ticks import (
    NOTHING,
    EscalationTickResult,
    escalation_on_tick,
    reminder_on_tick,
    window_on_tick,
)
from records.actions import EscalationTick, ReminderTick, WindowTick
from schedules import Team, load_coverage
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.promises import ROME, rome
from triage.state import ConversationState

CONVERSATION = "fb:PAGE_111:PSID_222"
ROUTED = rome("2026-11-23 21:14")  # Monday, reduced; marta on call
FRIDAY_EVENING = datetime(2026, 11, 20, 20, 0, tzinfo=ROME)  # reduced; giulia on call
SATURDAY_18 = datetime(2026, 11, 21, 18, 0, tzinfo=ROME)  # the WhatsApp window (Sat 20:00) minus the 2 h margin


def seconds(instant: datetime) -> int:
    return int(instant.timestamp())


def routed(*, sent: int = 0, claimed: bool = False) -> PendingEscalation:
    return PendingEscalation(event_id="fb:m_1", team="care-it", conversation=CONVERSATION, mode="reduced",
                             routed_at=ROUTED, routed_to=("marta",), sent=sent, claimed=claimed,
                             channel="facebook", text="Il mio ordine")


def tick(at: datetime, *, sent: int = 0, event_id: str = "fb:m_1") -> EscalationTick:
    return EscalationTick(conversation=CONVERSATION, event_id=event_id, sent=sent, at=at)


@pytest.fixture
def teams(care_it: Team) -> dict[str, Team]:
    return {"care-it": care_it}


@pytest.fixture(scope="module")
def example() -> dict[str, Team]:
    return dict(load_coverage(EXAMPLE_COVERAGE).teams)


def waiting(at: datetime, **changes) -> ConversationState:
    """A care-it WhatsApp conversation whose customer wrote at ``at`` and was acknowledged then."""
    base = ConversationState(team="care-it", customer_at=seconds(at), waiting_since=seconds(at), ack_at=seconds(at),
                             channel="whatsapp", promised="Ciao", author_name="Ana", text="Dov'è il mio ordine?")
    return replace(base, **changes)


class TestEscalationOnTick:
    def test_due_step_is_sent_to_the_next_on_call_and_recorded(self, teams) -> None:
        """15 minutes unclaimed: step 0 to luca (after marta), id esc:<event>:0, the row then counts one step sent."""
        result = escalation_on_tick(tick(ROUTED + timedelta(minutes=15)), routed(), teams)
        assert result.step is not None and result.route is not None and result.after is not None
        expected = ("esc:fb:m_1:0", "esc:fb:m_1:0", ["luca"], 1, False)
        assert expected == (result.step.id, result.route.route_id, [n.member for n in result.route.to],
                            result.after.sent, result.drop)
        assert result.route.reason.startswith("not claimed within 15 minutes: escalated to Luca Bianchi")
        assert ("facebook", "Il mio ordine", 0) == (result.route.channel, result.route.text, result.route.escalation.step)

    def test_second_step_goes_to_the_lead(self, teams) -> None:
        """One step sent, 30 minutes unclaimed: step 1 to anna."""
        result = escalation_on_tick(tick(ROUTED + timedelta(minutes=30), sent=1), routed(sent=1), teams)
        assert ("esc:fb:m_1:1", ["anna"], 2) == (result.step.id, [n.member for n in result.route.to], result.after.sent)

    @pytest.mark.parametrize(
        ("pending", "swept"),
        [
            pytest.param(None, tick(ROUTED + timedelta(hours=1)), id="no_row_claimed_since"),
            pytest.param(routed(sent=1), tick(ROUTED + timedelta(hours=1)), id="step_sent_since_the_sweep"),
            pytest.param(routed(), tick(ROUTED + timedelta(hours=1), event_id="fb:m_2"), id="newer_route_replaced_the_row"),
            pytest.param(routed(), tick(ROUTED + timedelta(minutes=14)), id="not_yet_due"),
        ],
    )
    def test_stale_or_early_tick_does_nothing(self, teams, pending, swept) -> None:
        """A tick applies only to the row it was swept from, once its step is due."""
        assert NOTHING == escalation_on_tick(swept, pending, teams)

    @pytest.mark.parametrize(
        ("pending", "team_known"),
        [
            pytest.param(routed(sent=6), True, id="chain_walked_twice"),
            pytest.param(routed(claimed=True), True, id="claimed"),
            pytest.param(routed(), False, id="team_left_the_coverage"),
        ],
    )
    def test_done_row_is_dropped(self, teams, pending, team_known) -> None:
        """A row with nothing more to send, or of a team no longer covered, is deleted."""
        swept = tick(ROUTED + timedelta(days=1), sent=pending.sent)
        assert EscalationTickResult(drop=True) == escalation_on_tick(swept, pending, teams if team_known else {})


class TestReminderOnTick:
    def test_promised_time_passed_sends_the_reminder_once(self, example) -> None:
        """Reply-by passed without a reply: the reminder to giulia, a breach, no escalation started."""
        reply_by = FRIDAY_EVENING + timedelta(minutes=40)
        state = waiting(FRIDAY_EVENING, reply_by=seconds(reply_by))
        reminder_id = f"remind:reply_by:c:{seconds(reply_by)}"
        result = reminder_on_tick(ReminderTick(conversation="c", reminder_id=reminder_id, at=SATURDAY_18), state, example)
        assert result is not None
        expected = (reminder_id, reminder_id, ["giulia"], True, None, None)
        assert expected == (result.reminder.id, result.route.route_id, [n.member for n in result.route.to],
                            result.reminder.breach, result.escalation, result.escalation_to_start(pending=False))

    def test_claim_reminder_starts_the_claims_escalation_with_the_message(self, example) -> None:
        """Claimed by luca and not answered in 30 minutes: a reminder to luca, and the claim's chain (unless one is pending)."""
        claimed = FRIDAY_EVENING + timedelta(minutes=5)
        state = waiting(FRIDAY_EVENING, claimed_by="luca", claimed_at=seconds(claimed))
        reminder_id = f"remind:claim:c:{seconds(claimed + timedelta(minutes=30))}"
        result = reminder_on_tick(ReminderTick(conversation="c", reminder_id=reminder_id, at=SATURDAY_18), state, example)
        assert result is not None and result.escalation is not None
        escalation = result.escalation
        expected = (["luca"], f"claim:c:{seconds(claimed)}", "whatsapp", "Dov'è il mio ordine?", "Ana")
        assert expected == ([n.member for n in result.route.to], escalation.event_id, escalation.channel,
                            escalation.text, escalation.author_name)
        assert (escalation, None) == (result.escalation_to_start(pending=False), result.escalation_to_start(pending=True))

    @pytest.mark.parametrize(
        ("changes", "known"),
        [
            pytest.param({"reminded": ("remind:reply_by:c:{due}",)}, True, id="already_sent"),
            pytest.param({"staff_at": "replied"}, True, id="staff_replied"),
            pytest.param({"status": "answered"}, True, id="answered"),
            pytest.param({}, False, id="team_left_the_coverage"),
        ],
    )
    def test_stale_tick_does_nothing(self, example, changes, known) -> None:
        """A reminder sent, a reply, an answered mark or an unknown team: nothing to send."""
        due = seconds(FRIDAY_EVENING + timedelta(minutes=40))
        values = {"reminded": (f"remind:reply_by:c:{due}",), "staff_at": seconds(FRIDAY_EVENING) + 600}
        state = waiting(FRIDAY_EVENING, reply_by=due, **{key: values.get(key, value) for key, value in changes.items()})
        swept = ReminderTick(conversation="c", reminder_id=f"remind:reply_by:c:{due}", at=SATURDAY_18)
        assert reminder_on_tick(swept, state, example if known else {}) is None

    def test_no_state_or_another_reminder_does_nothing(self, example) -> None:
        """No conversation state, or a reminder id that is not due: nothing."""
        swept = ReminderTick(conversation="c", reminder_id="remind:reply_by:c:1", at=SATURDAY_18)
        assert (None, None) == (reminder_on_tick(swept, None, example),
                                reminder_on_tick(swept, waiting(FRIDAY_EVENING), example))


class TestWindowOnTick:
    def test_window_closing_before_the_opening_routes_early_and_marks_the_state(self, example) -> None:
        """Friday 20:00 WhatsApp, Saturday 18:00: routed to giulia, marked with the message and the template after it."""
        state = waiting(FRIDAY_EVENING)
        swept = WindowTick(conversation="c", customer_at=seconds(FRIDAY_EVENING), at=SATURDAY_18)
        result = window_on_tick(swept, state, example)
        assert result is not None
        expected = (f"window:c:{seconds(FRIDAY_EVENING)}", ["giulia"], seconds(FRIDAY_EVENING), "template")
        assert expected == (result.route.route_id, [n.member for n in result.route.to], result.window_routed,
                            result.reply_via)
        assert pending_from_route(result.route) == result.escalation

    def test_escalation_starts_only_when_unclaimed_and_none_pending(self, example) -> None:
        """The early route's chain starts like any route's: not on a claimed conversation, not over a pending one."""
        swept = WindowTick(conversation="c", customer_at=seconds(FRIDAY_EVENING), at=SATURDAY_18)
        result = window_on_tick(swept, waiting(FRIDAY_EVENING), example)
        assert result is not None
        claimed = waiting(FRIDAY_EVENING, claimed_by="luca", claimed_at=seconds(FRIDAY_EVENING))
        assert (result.escalation, None, None) == (
            result.escalation_to_start(waiting(FRIDAY_EVENING), pending=False),
            result.escalation_to_start(claimed, pending=False),
            result.escalation_to_start(waiting(FRIDAY_EVENING), pending=True),
        )

    @pytest.mark.parametrize(
        "state",
        [
            pytest.param(waiting(FRIDAY_EVENING + timedelta(hours=1)), id="a_newer_message_came"),
            pytest.param(waiting(FRIDAY_EVENING, window_routed=seconds(FRIDAY_EVENING)), id="already_routed"),
            pytest.param(waiting(FRIDAY_EVENING, staff_at=seconds(FRIDAY_EVENING) + 60), id="staff_replied"),
            pytest.param(waiting(FRIDAY_EVENING, status="answered"), id="answered"),
            pytest.param(None, id="no_state"),
        ],
    )
    def test_stale_tick_does_nothing(self, example, state) -> None:
        """Only the message swept, still the last, still waiting and not yet routed, is routed."""
        swept = WindowTick(conversation="c", customer_at=seconds(FRIDAY_EVENING), at=SATURDAY_18)
        assert window_on_tick(swept, state, example) is None
