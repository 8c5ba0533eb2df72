"""Driving the promise rules from the workers: escalation sweeps and the handover digest.

The rules are in :mod:`promises.rules`; this module gathers their input from the
worker's tables and emits what they return.

Escalation. A routed or paged message that waits for a claim is one row of the
``escalations`` table (key: the conversation, so the row lives on the partition of
the conversation's events and actions; value: :class:`~promises.rules.PendingEscalation`
bytes of the latest route of that conversation). Each worker sweeps the rows of the
partitions it holds (:func:`sweep_escalations`) and, for each one whose next step is
due, sends an *escalation tick* (:func:`escalation_tick`) to the actions topic, keyed by
the conversation (the ticks are the typed records of :mod:`records.actions`). The actions agent applies the tick (:func:`streams.app.apply_action`):
it asks :func:`~promises.rules.next_escalation` for the step due at the tick's
instant, sends it to the routes outbox and records it as sent. So every read and write
of a row happens inside the agent that owns its partition (Faust's stores write only
from a stream event), a claim and an escalation of one conversation are applied in
order, and a tick that is swept twice, or redelivered, finds the step already sent and
does nothing. A crash between the route and the table write makes the tick apply
again with the same ``route_id`` (``esc:<event_id>:<n>``), which the delivery ledger
sends once.

Follow-through and reply windows. The same sweep reads the ``conversations`` rows of
the held partitions (:func:`sweep_promises`): a promised reply-by time passed without a
staff reply, or a claim unanswered past the team's ``claim_limit``, is a ``remind``
tick; a waiting Facebook/Instagram/WhatsApp conversation whose reply window closes
before the team opens is a ``window`` tick. The actions agent applies them against the
state of that moment and records what it sent on the conversation.

Retention. The same sweep finds the conversations, pending escalations and delivery
ledger entries older than ``settings.retention`` and posts ``expire`` and
``expire_ledger`` ticks; the actions agent deletes them (:mod:`streams.retention`).

Handover. At each opening (:class:`~streams.timers.PromiseTimers`) each worker sends
the digest of the backlog held in *its own* partitions of the ``conversations`` table
(:func:`hand_over`): one route per team, opening and worker partitions, with the
deterministic id ``handover:<team>:<opening>:p<partitions>``. With several workers the
team gets one digest per worker that holds part of its backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from brokers.client import partition_of
from promises.rules import (
    BacklogItem,
    Digest,
    EscalationStep,
    FollowUp,
    PendingEscalation,
    Reminder,
    escalation_due,
    handover_digest,
    member_notify,
    needs_early_route,
    overdue,
    reply_mechanism,
)
from records.actions import EscalationTick, ReminderTick, WindowTick
from records.platforms import window_closes
from records.wire import (
    EscalationNote,
    HandoverItem,
    Notify,
    ReminderNote,
    RouteRequest,
    WindowNote,
)
from schedules import Team
from streams.retention import (
    expired_conversations,
    send_expiries,
    sweep_ledger,
)
from triage.state import ConversationState

if TYPE_CHECKING:
    from streams.app import OffhoursApp

log = logging.getLogger(__name__)

_PROMISE_NOTES = ("kind", "waiting_since")
"""The notes every escalation, reminder and reply-window route has carried, null when unknown."""


def held_rows(rows: Iterable[tuple[bytes, bytes]], held: Collection[int], partitions: int) -> Iterator[tuple[bytes, bytes]]:
    """The table rows whose key belongs to a partition in ``held``.

    A worker's in-memory store may still carry rows of partitions a rebalance took away;
    only the holder of a partition acts on its rows.
    """
    for key, value in rows:
        if value is not None and partition_of(key, partitions) in held:
            yield key, value


def pending_from_route(route: RouteRequest) -> PendingEscalation:
    """The pending escalation a route starts: the route's event, team, mode and time.

    ``routed_at`` is the routed event's own time, so a replay of the events gives the
    same rows and the same step due times.
    """
    return PendingEscalation(
        event_id=route.event_id,
        team=route.team,
        conversation=route.conversation,
        mode=route.mode,
        routed_at=datetime.fromisoformat(route.at),
        routed_to=tuple(notify.member for notify in route.to),
        channel=route.channel,
        account=route.account,
        author_name=route.author_name,
        text=route.text,
        window_closes=route.window_closes,
        kind=route.kind,
    )


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


def escalation_reason(step: EscalationStep, team: Team, mode: str) -> str:
    """What the escalated staff read: how long the message waited and who is escalated to."""
    minutes = int(team.escalation.chain_for(mode).after.total_seconds() // 60) * (step.n + 1)
    names = ", ".join(notify.name or notify.member for notify in step.notify)
    unit = "minute" if minutes == 1 else "minutes"
    return f"not claimed within {minutes} {unit}: escalated to {names}"


def escalation_route(step: EscalationStep, pending: PendingEscalation, team: Team) -> RouteRequest:
    """The route of one escalation step, repeating the routed message.

    ``route_id`` is the step's id (``esc:<event_id>:<n>``): the ledger sends it once.
    """
    return RouteRequest(
        route_id=step.id,
        event_id=step.event_id,
        team=step.team,
        action="route",
        mode=pending.mode,
        to=list(step.notify),
        channel=pending.channel,
        account=pending.account,
        conversation=step.conversation,
        author_name=pending.author_name,
        text=pending.text,
        at=step.due.astimezone(team.timezone).isoformat(timespec="seconds"),
        next_open=None,
        window_closes=pending.window_closes,
        reason=escalation_reason(step, team, pending.mode),
        escalation=EscalationNote(step=step.n, link=step.link, routed_at=pending.routed_at.isoformat()),
        kind=pending.kind,
        waiting_since=pending.routed_at.astimezone(team.timezone).isoformat(timespec="seconds"),
        keep_null=_PROMISE_NOTES,
    )


def backlog_of(rows: Iterable[tuple[bytes, bytes]], team: Team, opening_at: datetime) -> list[BacklogItem]:
    """The off-hours backlog of ``team`` at ``opening_at`` among ``rows`` of the conversations table.

    A conversation is in the backlog when it is open (not marked answered), its last
    customer message came before the opening while the team was not open, and no staff
    reply came after that message.
    """
    items: list[BacklogItem] = []
    for key, value in rows:
        state = ConversationState.from_bytes(value)
        if state.team != team.id or state.status != "open" or state.customer_at is None:
            continue
        if state.staff_at is not None and state.staff_at >= state.customer_at:
            continue
        last_message = datetime.fromtimestamp(state.customer_at, UTC)
        if last_message >= opening_at or team.at(last_message).mode == "open":
            continue
        first_waiting = state.waiting_since if state.waiting_since is not None else state.customer_at
        reply_by, promised = state.promise()
        items.append(
            BacklogItem(
                conversation=key.decode("utf-8", "replace"),
                channel=state.channel or "generic",
                waiting_since=datetime.fromtimestamp(min(first_waiting, state.customer_at), UTC),
                urgent=state.urgent,
                ack_text=promised,
                reply_by=_instant(reply_by),
                kind=state.kind,
                account=state.account,
                author_name=state.author_name,
                text=state.text,
            )
        )
    return items


def digest_route(digest: Digest, team: Team, held: Collection[int]) -> RouteRequest:
    """The one route that hands ``digest`` over: to the staff on call at the opening, else all staff.

    ``route_id`` is ``<digest id>:p<partitions>``: each worker's digest (of the
    partitions it holds) is sent once per opening.
    """
    members = team.on_call_at(digest.opening_at) or tuple(team.staff)
    to = [
        Notify(member=member, name=team.staff[member].name, uris=list(team.staff[member].notify))
        for member in members
        if member in team.staff
    ]
    partitions = ",".join(str(partition) for partition in sorted(held))
    reason = ("you are on call at the opening" if team.on_call_at(digest.opening_at)
              else "nobody is on call at the opening, so all the team's staff get it")
    return RouteRequest(
        route_id=f"{digest.id}:p{partitions}",
        event_id=digest.id,
        team=team.id,
        action="route",
        mode="open",
        to=to,
        channel="generic",
        account="",
        conversation="",
        author_name=None,
        text=digest.text(),
        at=digest.opening_at.isoformat(timespec="seconds"),
        next_open=None,
        reason=reason,
        handover=tuple(
            HandoverItem(
                conversation=item.conversation,
                channel=item.channel,
                kind=item.kind,
                account=item.account,
                author_name=item.author_name,
                text=item.text,
                urgent=item.urgent,
                waiting_since=None if item.waiting_since is None else item.waiting_since.isoformat(timespec="seconds"),
                waited_seconds=int(item.waited.total_seconds()),
                promised=item.promised,
                reply_by=None if item.reply_by is None else item.reply_by.isoformat(timespec="seconds"),
                link=item.link,
                action=item.action,
            )
            for item in digest.items
        ),
        partitions=tuple(sorted(held)),
    )


def handover_route(rows: Iterable[tuple[bytes, bytes]], team: Team, opening_at: datetime, held: Collection[int]) -> RouteRequest | None:
    """The handover route of ``team`` at ``opening_at`` for ``rows``, or None when nothing waits."""
    backlog = backlog_of(rows, team, opening_at)
    if not backlog:
        return None
    return digest_route(handover_digest(team, backlog, opening_at), team, held)


def held_partitions(app: OffhoursApp) -> set[int]:
    """The partitions of the events topic (and so of the tables) this worker holds now."""
    topic = app.settings.events_topic
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}


async def sweep_escalations(app: OffhoursApp, now: datetime, held: Collection[int] | None = None) -> int:
    """Send an escalation tick for each pending escalation due at ``now`` in this worker's partitions.

    ``held`` is the partitions to sweep (default: those this worker holds now). Returns
    how many ticks were sent. The actions agent applies them
    (:func:`streams.app.apply_escalation`); a tick it finds stale does nothing, so a
    sweep may run as often as wanted, on every worker.
    """
    held = held_partitions(app) if held is None else held
    if not held:
        return 0
    rows = held_rows(list(app.escalations.items()), held, app.settings.partitions)
    return await _send_ticks(app, due_ticks(rows, app.coverage.coverage.teams, now))


async def _send_ticks(app: OffhoursApp, ticks: Sequence[tuple[bytes, EscalationTick | ReminderTick | WindowTick]]) -> int:
    for key, tick in ticks:
        await app.stream_topics.actions.send(key=key, value=tick.to_json())
    return len(ticks)


async def hand_over(app: OffhoursApp, team: Team, opening_at: datetime) -> RouteRequest | None:
    """Send ``team``'s handover digest of this worker's partitions at ``opening_at``; returns it.

    Nothing is sent when no conversation of the team waits in these partitions.
    """
    held = held_partitions(app)
    rows = held_rows(list(app.conversations.items()), held, app.settings.partitions)
    route = handover_route(rows, team, opening_at, held)
    if route is not None:
        await app.stream_topics.routes.send(key=f"handover:{team.id}".encode(), value=route.to_json())
        if app.metrics is not None:
            app.metrics.handovers.labels(team=team.id).inc()
        log.info("handover %s sent (%d waiting)", route.route_id, len(route.handover or ()))
    return route


# -- follow-through and reply windows -------------------------------------------------


def _instant(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def follow_up_of(conversation: str, state: ConversationState, team: Team) -> FollowUp:
    """What :func:`~promises.rules.overdue` needs to know of one conversation's state.

    A staff reply counts when it came after the customer's last message. A claim that
    goes unanswered escalates as its own pending escalation, ``claim:<conversation>:<at>``,
    in the team's mode at the claim.
    """
    claimed_at = _instant(state.claimed_at)
    replied = None if state.waiting() else _instant(state.staff_at)
    reply_by, _ = state.promise()
    return FollowUp(
        conversation=conversation,
        team=state.team,
        event_id=f"claim:{conversation}:{state.claimed_at}",
        mode=team.at(claimed_at).mode if claimed_at is not None else "open",
        acknowledged_at=_instant(state.ack_at),
        reply_by=_instant(reply_by),
        staff_replied_at=replied,
        claimed_by=state.claimed_by,
        claimed_at=claimed_at,
        answered=state.status == "answered",
        sent=frozenset(state.reminded),
    )


def reminders_due(conversation: str, state: ConversationState, team: Team, now: datetime) -> list[Reminder]:
    """The follow-through reminders of one conversation due at ``now`` and not yet sent."""
    return overdue([follow_up_of(conversation, state, team)], {team.id: team}, now)


def window_route_due(state: ConversationState, team: Team, now: datetime) -> bool:
    """True when the conversation must be routed now to be answered inside its reply window.

    Only for a customer still waiting, and once per customer message (``window_routed``
    holds the message time whose window was routed).
    """
    if not state.waiting() or state.channel is None or state.customer_at is None:
        return False
    if state.window_routed == state.customer_at:
        return False
    last = datetime.fromtimestamp(state.customer_at, UTC)
    return needs_early_route(team, state.channel, state.kind, last, now, team.escalation.window_margin)


def promise_ticks(
    rows: Iterable[tuple[bytes, bytes | ConversationState]], teams: dict[str, Team], now: datetime
) -> list[tuple[bytes, ReminderTick | WindowTick]]:
    """The follow-through and reply-window ticks due at ``now`` for ``rows`` of the conversations table
    (values as stored, or already decoded)."""
    ticks: list[tuple[bytes, ReminderTick | WindowTick]] = []
    for key, value in rows:
        state = value if isinstance(value, ConversationState) else ConversationState.from_bytes(value)
        team = teams.get(state.team)
        if team is None or state.status != "open":
            continue
        conversation = key.decode("utf-8", "replace")
        for reminder in reminders_due(conversation, state, team, now):
            ticks.append((key, ReminderTick(conversation=conversation, reminder_id=reminder.id, at=now)))
        if state.customer_at is not None and window_route_due(state, team, now):
            ticks.append((key, WindowTick(conversation=conversation, customer_at=state.customer_at, at=now)))
    return ticks


def _staff_or_team(team: Team, members: Iterable[str]) -> list[Notify]:
    """``members`` who can be notified; all the team's staff when none can (its inbox)."""
    notify = [n for n in (member_notify(team, m) for m in members) if n is not None]
    if notify:
        return notify
    return [n for n in (member_notify(team, m) for m in team.staff) if n is not None]


def local_moment(instant: datetime, zone: tzinfo) -> str:
    """An instant as staff read it, in the team's zone: ``Tue 24 Nov 09:30``."""
    return instant.astimezone(zone).strftime("%a %d %b %H:%M")


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    return f"{hours} h" if hours else f"{mins} min"


def _waiting_since(state: ConversationState, zone: tzinfo) -> str | None:
    """Since when the customer waits (their first unanswered message), in the team's zone."""
    since = state.waiting_since if state.waiting_since is not None else state.customer_at
    return None if since is None else datetime.fromtimestamp(since, UTC).astimezone(zone).isoformat(timespec="seconds")


def _customer_route(state: ConversationState, team: Team, conversation: str, route_id: str, now: datetime,
                    to: list[Notify], reason: str, note: ReminderNote | WindowNote) -> RouteRequest:
    """A route about one waiting conversation, with who wrote, what, where and since when (from its state)."""
    zone = team.timezone
    return RouteRequest(
        route_id=route_id,
        event_id=route_id,
        team=team.id,
        action="route",
        mode=team.at(now).mode,
        to=to,
        channel=state.channel or "generic",
        account=state.account or "",
        conversation=conversation,
        author_name=state.author_name,
        text=state.text,
        at=now.astimezone(zone).isoformat(timespec="seconds"),
        next_open=None,
        window_closes=_window_text(state, zone),
        reason=reason,
        reminder=note if isinstance(note, ReminderNote) else None,
        window=note if isinstance(note, WindowNote) else None,
        kind=state.kind,
        waiting_since=_waiting_since(state, zone),
        keep_null=_PROMISE_NOTES,
    )


def reminder_route(reminder: Reminder, state: ConversationState, team: Team) -> RouteRequest:
    """The route of a follow-through reminder; ``route_id`` is the reminder's id (sent once).

    It repeats the customer's message (author, words, channel, account, since when they
    wait) and says what was promised or who claimed it; ``at`` and the mode are the
    reminder's due time.
    """
    zone = team.timezone
    if reminder.kind == "reply_by":
        reason = (f"the customer was promised a reply by {local_moment(reminder.due, zone)} "
                  "and no staff has replied yet")
    else:
        limit = int(team.escalation.claim_limit.total_seconds() // 60)
        claimer = team.staff[reminder.to[0]].name if reminder.to and reminder.to[0] in team.staff else reminder.to[0]
        reason = f"claimed by {claimer or reminder.to[0]} and not answered within {limit} minutes"
    _, promised = state.promise()
    return _customer_route(
        state, team, reminder.conversation, reminder.id, reminder.due, _staff_or_team(team, reminder.to), reason,
        ReminderNote(kind=reminder.kind, breach=reminder.breach, promised=promised),
    )


def window_route(state: ConversationState, team: Team, conversation: str, now: datetime) -> tuple[RouteRequest, str]:
    """The early route of a conversation whose reply window closes before the team opens.

    Goes to the staff on call at ``now`` (all the team's staff when nobody is) with the
    customer's message; says when the window closes, when the team opens (after it),
    how long is left to reply and how a reply must be sent after it; returns the route
    and that after-window mechanism (``human_agent``, ``template`` or ``none``) to mark
    on the state. ``route_id`` is ``window:<conversation>:<customer message POSIX seconds>``.
    """
    assert state.customer_at is not None and state.channel is not None
    zone = team.timezone
    last = datetime.fromtimestamp(state.customer_at, UTC)
    closes = window_closes(state.channel, state.kind, last)
    assert closes is not None
    after = reply_mechanism(state.channel, state.kind, last, closes)
    human = window_closes(state.channel, state.kind, last, human_agent=True)
    later = {"human_agent": f"after it, only with the HUMAN_AGENT tag until {local_moment(human, zone)}" if human else "",
             "template": "after it, only an approved WhatsApp template",
             "public_reply": "after it, only a public reply under the comment",
             "none": "after it, wait for the customer to write again"}.get(after, "")
    opening = team.at(now).next_open
    opens = ("the team does not open within 400 days" if opening is None
             else f"the team opens {local_moment(opening, zone)}, after it")
    reason = (f"the reply window closes {local_moment(closes, zone)} and {opens}; routed {_duration(closes - now)} "
              f"before the window closes so a person can still reply in it")
    if later:
        reason += f"; {later}"
    route_id = f"window:{conversation}:{state.customer_at}"
    route = _customer_route(
        state, team, conversation, route_id, now, _staff_or_team(team, team.on_call_at(now)), reason,
        WindowNote(closes=closes.isoformat(), after=after, promised=state.promise()[1]),
    )
    route = replace(route, next_open=None if opening is None else opening.astimezone(zone).isoformat(timespec="seconds"),
                    window_closes=closes.astimezone(zone).isoformat(timespec="seconds"))
    return route, after


def _window_text(state: ConversationState, zone) -> str | None:
    if state.channel is None or state.customer_at is None:
        return None
    closes = window_closes(state.channel, state.kind, datetime.fromtimestamp(state.customer_at, UTC))
    return None if closes is None else closes.astimezone(zone).isoformat(timespec="seconds")


async def sweep_promises(app: OffhoursApp, now: datetime) -> int:
    """Send the escalation, follow-through, reply-window and expiry ticks due at ``now`` in this worker's partitions.

    Returns how many ticks were sent. The actions agent applies each against the
    conversation's state at that moment (:func:`streams.app.apply_action`), so a tick
    that is stale (a reply came, the reminder was sent) does nothing. A conversation
    older than ``settings.retention`` gets an ``expire`` tick and no other, and the
    ledger entries of the held partitions older than it ``expire_ledger`` ticks
    (:mod:`streams.retention`).
    """
    held = held_partitions(app)
    if not held:
        return 0
    partitions = app.settings.partitions
    teams = app.coverage.coverage.teams
    # Decoded once: the expiry and the promise rules both read every row.
    conversations = [(key, ConversationState.from_bytes(value))
                     for key, value in held_rows(list(app.conversations.items()), held, partitions)]
    escalations = list(held_rows(list(app.escalations.items()), held, partitions))
    expiring = expired_conversations(app, conversations, escalations, now)
    gone = {key for key, _ in expiring}
    count = await _send_ticks(app, due_ticks([row for row in escalations if row[0] not in gone], teams, now))
    count += await _send_ticks(app, promise_ticks([row for row in conversations if row[0] not in gone], teams, now))
    count += await send_expiries(app, expiring, now)
    return count + await sweep_ledger(app, now, held)
