"""Escalations and the handover driven by the workers: pure helpers, then the real embedded broker."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from brokers.client import partition_of
from promises.routes import pending_from_route
from promises.rules import PendingEscalation
from promises.ticks import due_ticks, escalation_tick
from records.actions import ActionInvalid, EscalationTick, decode_action
from records.wire import RouteRequest
from schedules import Coverage
from streams.sweeps import backlog_of, handover_route, held_rows
from tests.support.streams_app import (
    MONDAY_EVENING,
    ROME,
)
from tests.support.streams_escalations import (
    CONVERSATION,
    KEY,
    MONDAY_OPENING,
    SUNDAY_MORNING,
    escalating_coverage,
)
from triage.state import ConversationState


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

