"""When a conversation could next need a tick (promises.ticks.next_tick_at), against the rules it mirrors.

For any rows and any two clocks ``now <= t``: if a rule the sweep asks (escalation step,
follow-through reminder, reply-window route, held-desk release) says "due at t", then
``next_tick_at(..., now) <= t``. The due-time index waits for that instant; a later one
would lose a promise. The coverage is tests/support/due_index.py's (care-it with its
chains, claim limit and window margin; care-es holding a Chatwoot inbox).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from promises.routes import next_release_at, release_due
from promises.rules import (
    PendingEscalation,
    escalation_due,
    needs_early_route,
    next_early_route_at,
)
from promises.ticks import due_ticks, next_tick_at, reminders_due, window_route_due
from tests.support.due_index import BASE, SPAN, coverage, instant, pendings, states
from triage.state import ConversationState

TEAMS = coverage().teams
clocks = st.integers(min_value=-SPAN, max_value=SPAN).map(instant)
later = st.integers(min_value=0, max_value=3 * 86400)


def something_due(state: ConversationState | None, pending: PendingEscalation | None, t: datetime) -> bool:
    """Whether the sweep's rules find anything due at ``t`` for the conversation ``c`` (as streams.sweeps asks them)."""
    if pending is not None:
        replied = state is not None and state.staff_at is not None and state.staff_at >= pending.routed_at.timestamp()
        if not replied and due_ticks([(b"c", pending.to_bytes())], TEAMS, t):
            return True
    team = None if state is None or state.status != "open" else TEAMS.get(state.team)
    if state is None or team is None:
        return False
    if reminders_due("c", state, team, t):
        return True
    if state.customer_at is not None and window_route_due(state, team, t):
        return True
    return release_due(state, team, t)


@settings(max_examples=400, deadline=None)
@given(state=st.none() | states(), pending=st.none() | pendings(), now=clocks, ahead=later)
def test_whenever_a_rule_says_due_the_instant_has_come(
    state: ConversationState | None, pending: PendingEscalation | None, now: datetime, ahead: int
) -> None:
    t = now + timedelta(seconds=ahead)
    if something_due(state, pending, t):
        found = next_tick_at("c", state, pending, TEAMS, now)
        assert found is not None and found <= t


@settings(max_examples=300, deadline=None)
@given(state=st.none() | states(), pending=st.none() | pendings(), now=clocks)
def test_due_now_is_due_at_once(state: ConversationState | None, pending: PendingEscalation | None, now: datetime) -> None:
    if something_due(state, pending, now):
        found = next_tick_at("c", state, pending, TEAMS, now)
        assert found is not None and found <= now


@settings(max_examples=300, deadline=None)
@given(state=states(), now=clocks, ahead=later)
def test_the_window_and_release_instants_hold_for_any_later_clock(state: ConversationState, now: datetime, ahead: int) -> None:
    team = TEAMS["care-it"] if state.team != "care-es" else TEAMS["care-es"]
    t = now + timedelta(seconds=ahead)
    if state.channel is not None and state.customer_at is not None:
        last = datetime.fromtimestamp(state.customer_at, BASE.tzinfo)
        margin = team.escalation.window_margin
        if needs_early_route(team, state.channel, state.kind, last, t, margin):
            found = next_early_route_at(team, state.channel, state.kind, last, now, margin)
            assert found is not None and found <= t
    if release_due(state, team, t):
        found = next_release_at(state, team, now)
        assert found is not None and found <= t


def test_an_escalation_waits_for_its_step() -> None:
    pending = PendingEscalation(event_id="fb:m_1", team="care-it", conversation="c", mode="reduced", routed_at=BASE)
    assert escalation_due(pending, TEAMS["care-it"]) == next_tick_at("c", None, pending, TEAMS, BASE)


def test_a_staff_reply_since_the_route_ends_the_wait() -> None:
    pending = PendingEscalation(event_id="fb:m_1", team="care-it", conversation="c", mode="reduced", routed_at=BASE)
    replied = ConversationState(team="care-it", status="answered", staff_at=int(BASE.timestamp()))
    assert next_tick_at("c", replied, pending, TEAMS, BASE) is None


def test_a_staff_reply_counts_from_the_route_on() -> None:
    """The one rule the sweep (streams.sweeps.replied_since_routed) and the index share."""
    pending = PendingEscalation(event_id="fb:m_1", team="care-it", conversation="c", mode="reduced", routed_at=BASE)
    routed = BASE.timestamp()
    assert [False, False, True, True] == [pending.replied(at) for at in (None, routed - 1, routed, routed + 60)]


def test_a_team_the_coverage_dropped_waits_for_nothing() -> None:
    pending = PendingEscalation(event_id="fb:m_1", team="gone", conversation="c", mode="reduced", routed_at=BASE)
    assert next_tick_at("c", ConversationState(team="gone", customer_at=1), pending, TEAMS, BASE) is None


def test_a_promised_reply_by_is_the_reminder_instant() -> None:
    wrote = int(BASE.timestamp())
    state = ConversationState(team="care-it", customer_at=wrote, waiting_since=wrote, ack_at=wrote,
                              reply_by=wrote + 3600, promised="within the hour")
    assert BASE + timedelta(hours=1) == next_tick_at("c", state, None, TEAMS, BASE)
    sent = ConversationState(**{**{n: getattr(state, n) for n in state.__dataclass_fields__},
                                "reminded": (f"remind:reply_by:c:{wrote + 3600}",)})
    assert next_tick_at("c", sent, None, TEAMS, BASE) is None
