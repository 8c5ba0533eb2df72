"""What the sweeps' ticks ask and what each one does when it is applied, pure.

A worker's sweep (:mod:`streams.sweeps`) reads its tables and posts a tick
(:mod:`records.actions`) for each promise due; the actions agent
(:func:`streams.app.apply_action`) later applies it against the table rows of that
moment. Both halves of the rule are here, with the instant and the coverage's teams as
parameters:

- due: :func:`due_ticks` (escalation ticks of the escalations table's rows),
  :func:`reminders_due` and :func:`window_route_due` (follow-through and reply-window
  ticks of a conversation's state); and when next: :func:`next_tick_at`, the first
  instant any of them (or a held desk conversation's release) could be due for one
  conversation, which the sweeps' due-time index (``streams/due_index.py``) waits for;
- applied: :func:`escalation_on_tick`, :func:`reminder_on_tick` and
  :func:`window_on_tick` say whether the tick still applies (not stale, still due,
  still waiting), which route to send and what to write: an
  :class:`EscalationTickResult`, :class:`ReminderTickResult` or
  :class:`WindowTickResult`. The agent sends the route, then writes.

The rules themselves are :mod:`promises.rules`; the routes, :mod:`promises.routes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from promises.routes import (
    ConversationView,
    escalation_route,
    next_release_at,
    pending_from_route,
    reminder_route,
    window_route,
)
from promises.rules import (
    EscalationStep,
    FollowUp,
    PendingEscalation,
    Reminder,
    escalation_due,
    needs_early_route,
    next_early_route_at,
    next_escalation,
    next_reminder_at,
    overdue,
)
from records.actions import EscalationTick, ReminderTick, WindowTick
from records.wire import RouteRequest

if TYPE_CHECKING:
    from schedules import Team


def utc_instant(seconds: int | None) -> datetime | None:
    """POSIX seconds as an aware instant in UTC; None stays None."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def follow_up_of(conversation: str, state: ConversationView, team: Team) -> FollowUp:
    """What :func:`~promises.rules.overdue` needs to know of one conversation's state.

    A staff reply counts when it came after the customer's last message. A claim that
    goes unanswered escalates as its own pending escalation, ``claim:<conversation>:<at>``,
    in the team's mode at the claim.
    """
    claimed_at = utc_instant(state.claimed_at)
    replied = None if state.waiting() else utc_instant(state.staff_at)
    reply_by, _ = state.promise()
    return FollowUp(
        conversation=conversation,
        team=state.team,
        event_id=f"claim:{conversation}:{state.claimed_at}",
        mode=team.at(claimed_at).mode if claimed_at is not None else "open",
        acknowledged_at=utc_instant(state.ack_at),
        reply_by=utc_instant(reply_by),
        staff_replied_at=replied,
        claimed_by=state.claimed_by,
        claimed_at=claimed_at,
        answered=state.status == "answered",
        sent=frozenset(state.reminded),
    )


def reminders_due(conversation: str, state: ConversationView, team: Team, now: datetime) -> list[Reminder]:
    """The follow-through reminders of one conversation due at ``now`` and not yet sent."""
    return overdue([follow_up_of(conversation, state, team)], {team.id: team}, now)


def window_route_due(state: ConversationView, team: Team, now: datetime) -> bool:
    """True when the conversation must be routed now to be answered inside its reply window.

    Only for a customer still waiting, and once per customer message (``window_routed``
    holds the message time whose window was routed).
    """
    last = _unrouted_message_at(state)
    if last is None or state.channel is None:
        return False
    return needs_early_route(team, state.channel, state.kind, last, now, team.escalation.window_margin)


def _unrouted_message_at(state: ConversationView) -> datetime | None:
    """When the waiting customer's message was sent, unless its reply window was routed
    already (``window_routed``); None otherwise. The callers check the channel."""
    if not state.waiting() or state.customer_at is None:
        return None
    if state.window_routed == state.customer_at:
        return None
    return datetime.fromtimestamp(state.customer_at, UTC)


def next_tick_at(
    conversation: str,
    state: ConversationView | None,
    pending: PendingEscalation | None,
    teams: Mapping[str, Team],
    now: datetime,
) -> datetime | None:
    """The first instant at or after ``now`` at which a sweep could find something due for
    one conversation (``now`` or earlier when something is due already); None when
    nothing will be until one of its rows changes or the coverage is swapped.

    ``state`` is its row of the conversations table, ``pending`` of the escalations
    table. It answers for every rule the sweep asks: the escalation's next step
    (:func:`~promises.rules.escalation_due`; none once a staff reply came at or after the
    route), the follow-through reminders (:func:`~promises.rules.next_reminder_at`),
    the reply window's early route (:func:`~promises.rules.next_early_route_at`) and a
    held desk conversation's release (:func:`~promises.routes.next_release_at`). So
    whenever :func:`due_ticks`, :func:`reminders_due`, :func:`window_route_due` or
    :func:`~promises.routes.release_due` says "due at t" (t >= ``now``, rows and
    coverage unchanged), the answer is <= t: the sweeps' due-time index
    (``streams/due_index.py``) waits until then instead of asking at every sweep.
    """
    found: list[datetime] = []
    if pending is not None:
        team = teams.get(pending.team)
        replied = state is not None and pending.replied(state.staff_at)
        due = None if team is None or replied else escalation_due(pending, team)
        if due is not None:
            found.append(due)
    team = None if state is None or state.status != "open" else teams.get(state.team)
    if state is not None and team is not None:
        reminder = next_reminder_at(follow_up_of(conversation, state, team), team)
        window = next_window_route_at(state, team, now)
        release = next_release_at(state, team, now)
        found.extend(at for at in (reminder, window, release) if at is not None)
    return min(found, default=None)


def next_window_route_at(state: ConversationView, team: Team, now: datetime) -> datetime | None:
    """The first instant at or after ``now`` at which :func:`window_route_due` could be true; None: never for this message."""
    last = _unrouted_message_at(state)
    if last is None or state.channel is None:
        return None
    return next_early_route_at(team, state.channel, state.kind, last, now, team.escalation.window_margin)


def escalation_tick(pending: PendingEscalation, now: datetime) -> EscalationTick:
    """The actions-topic record asking the partition's owner to escalate ``pending`` at ``now``.

    ``sent`` is the number of steps sent when the sweep saw the row: a tick applies only
    while that still holds, so two ticks of one sweep state never send two steps.
    """
    return EscalationTick(conversation=pending.conversation, event_id=pending.event_id, sent=pending.sent, at=now)


def due_ticks(rows: Iterable[tuple[bytes, bytes]], teams: dict[str, Team], now: datetime) -> list[tuple[bytes, EscalationTick]]:
    """The escalation ticks due at ``now`` for ``rows`` of the escalations table.

    A row of a team the coverage no longer has, or whose chain is done or claimed, is
    left alone (the agent drops exhausted rows when it applies their last tick).
    """
    ticks: list[tuple[bytes, EscalationTick]] = []
    for key, value in rows:
        pending = PendingEscalation.from_bytes(value)
        team = teams.get(pending.team)
        if team is None:
            continue
        due = escalation_due(pending, team)
        if due is not None and due <= now:
            ticks.append((key, escalation_tick(pending, now)))
    return ticks


# -- applying a tick ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EscalationTickResult:
    """What an escalation tick does to its row of the escalations table.

    With ``route``: send it (the escalation step ``step``), then write ``after`` (the row
    with the step recorded as sent) unless a newer route replaced the row meanwhile.
    With ``drop``: delete the row (its chain is done, nobody on the rest of it is
    reachable, or its team left the coverage). Neither: nothing (a stale or early tick).
    """

    step: EscalationStep | None = None
    route: RouteRequest | None = None
    after: PendingEscalation | None = None
    drop: bool = False


NOTHING = EscalationTickResult()
"""An escalation tick that does nothing."""


def escalation_on_tick(
    tick: EscalationTick, pending: PendingEscalation | None, teams: Mapping[str, Team]
) -> EscalationTickResult:
    """What ``tick`` does to ``pending``, the conversation's row of the escalations table now.

    The tick applies only to the pending escalation it was swept from (same event id,
    same number of steps sent): a repeated or stale tick, or one for a conversation
    claimed since (no row), does nothing. A row whose chain is done, or whose team left
    the coverage, is dropped; so is one whose step is due while nobody on the rest of
    the chain is reachable.
    """
    if pending is None or pending.event_id != tick.event_id or pending.sent != tick.sent:
        return NOTHING
    team = teams.get(pending.team)
    due = None if team is None else escalation_due(pending, team)
    if team is None or due is None:
        return EscalationTickResult(drop=True)
    step = next_escalation(pending, team, tick.instant)
    if step is None:
        return EscalationTickResult(drop=True) if due <= tick.instant else NOTHING
    return EscalationTickResult(step=step, route=escalation_route(step, pending, team), after=pending.after_sent(step))


def _open(state: ConversationView | None, teams: Mapping[str, Team]) -> Team | None:
    """The team of an open conversation; None when there is no state, it is not open or its team left the coverage."""
    if state is None or state.status != "open":
        return None
    return teams.get(state.team)


@dataclass(frozen=True, slots=True)
class ReminderTickResult:
    """A reminder tick that applies: send ``route`` (the reminder ``reminder``), then record
    ``reminder.id`` as sent on the conversation's state.

    ``escalation`` is the pending escalation a ``claim`` reminder starts (the claim's,
    with the conversation's message), None for a ``reply_by`` one.
    """

    reminder: Reminder
    route: RouteRequest
    escalation: PendingEscalation | None = None

    def escalation_to_start(self, pending: bool) -> PendingEscalation | None:
        """The row to write in the escalations table; None when ``pending`` (one is there already) or none starts."""
        return None if pending else self.escalation


def reminder_on_tick(
    tick: ReminderTick, state: ConversationView | None, teams: Mapping[str, Team]
) -> ReminderTickResult | None:
    """The reminder ``tick`` names, if it is still due and not sent at the tick's instant; else None.

    Only for an open conversation of a team in ``teams``.
    """
    team = _open(state, teams)
    if state is None or team is None:
        return None
    due = {reminder.id: reminder for reminder in reminders_due(tick.conversation, state, team, tick.instant)}
    reminder = due.get(tick.reminder_id)
    if reminder is None:
        return None
    escalation = None if reminder.escalation is None else replace(
        reminder.escalation, channel=state.channel or "generic", kind=state.kind, account=state.account or "",
        author_name=state.author_name, text=state.text, desk=state.desk,
    )
    return ReminderTickResult(reminder, reminder_route(reminder, state, team), escalation)


@dataclass(frozen=True, slots=True)
class WindowTickResult:
    """A reply-window tick that applies: send ``route``, then mark the conversation's state
    ``window_routed`` (the customer message routed, once) and ``reply_via`` (how a human
    reply is sent after the window: ``human_agent``, ``template``, ``public_reply`` or
    ``none``); ``escalation`` is the pending escalation the route starts.
    """

    route: RouteRequest
    window_routed: int
    reply_via: str
    escalation: PendingEscalation

    def escalation_to_start(self, current: ConversationView, pending: bool) -> PendingEscalation | None:
        """The row to write in the escalations table: none when the conversation is claimed
        (someone has it) or ``pending`` (one is there already)."""
        return None if pending or current.claimed_by is not None else self.escalation


def window_on_tick(
    tick: WindowTick, state: ConversationView | None, teams: Mapping[str, Team]
) -> WindowTickResult | None:
    """The early route ``tick`` asks for, if the customer message it was swept for is still the
    last one, still waits and its reply window closes before the team opens; else None."""
    team = _open(state, teams)
    if state is None or team is None or state.customer_at is None:
        return None
    if state.customer_at != tick.customer_at or not window_route_due(state, team, tick.instant):
        return None
    route, after = window_route(state, team, tick.conversation, tick.instant)
    return WindowTickResult(route, state.customer_at, after, pending_from_route(route))
