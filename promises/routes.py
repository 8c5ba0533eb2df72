"""The routes the promise rules send staff, pure: escalation steps, follow-through
reminders, early reply-window routes and the handover digest.

Each function builds one :class:`~records.wire.RouteRequest` from what the rules of
:mod:`promises.rules` decided and the facts of the conversation, worded for staff;
:mod:`promises.ticks` calls them when a tick applies, and the handover sweep
(:mod:`streams.sweeps`) for the digest. Every ``route_id`` is deterministic, so the
delivery ledger sends each route once:

* an escalation step: ``esc:<event_id>:<n>`` (:func:`escalation_route`);
* a follow-through reminder: ``remind:<kind>:<conversation>:<due>`` (:func:`reminder_route`);
* an early route before a reply window closes: ``window:<conversation>:<message time>``
  (:func:`window_route`);
* a handover digest: ``handover:<team>:<opening>:p<partitions>`` (:func:`digest_route`).

A handover's conversations that came through a care desk are also assigned in the desk,
in the digest's order (:func:`handover_assignments`). In open hours a held inbox's new
conversation is released: ``release:<conversation>:<message time>`` (:func:`release_route`,
a desk write only, nobody notified).

A conversation's state is read through :class:`ConversationView`, the fields these
rules read of :class:`triage.state.ConversationState` (:mod:`triage` sits above this
package, so the rules name the fields, not the class).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from promises.rules import (
    Digest,
    DigestItem,
    EscalationStep,
    PendingEscalation,
    Reminder,
    member_notify,
    reply_mechanism,
)
from records.platforms import window_closes
from records.wire import (
    EscalationNote,
    HandoverItem,
    Notify,
    ReminderNote,
    RouteRequest,
    WindowNote,
)

if TYPE_CHECKING:
    from schedules import Team

_PROMISE_NOTES = ("kind", "waiting_since")
"""The notes every escalation, reminder and reply-window route has carried, null when unknown."""


class ConversationView(Protocol):
    """What the promise rules read of one conversation's state (:class:`triage.state.ConversationState`).

    POSIX seconds for the instants; ``waiting()`` and ``promise()`` as the state defines them.
    """

    @property
    def team(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def account(self) -> str | None: ...
    @property
    def author_name(self) -> str | None: ...
    @property
    def text(self) -> str | None: ...
    @property
    def customer_at(self) -> int | None: ...
    @property
    def waiting_since(self) -> int | None: ...
    @property
    def ack_at(self) -> int | None: ...
    @property
    def staff_at(self) -> int | None: ...
    @property
    def routed_at(self) -> int | None: ...
    @property
    def claimed_by(self) -> str | None: ...
    @property
    def claimed_at(self) -> int | None: ...
    @property
    def reminded(self) -> tuple[str, ...]: ...
    @property
    def window_routed(self) -> int | None: ...
    @property
    def desk(self) -> dict[str, Any] | None: ...

    def waiting(self) -> bool: ...

    def promise(self) -> tuple[int | None, str | None]: ...


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
        desk=route.desk,
    )


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
        desk=pending.desk,
    )


def digest_route(digest: Digest, team: Team, held: Collection[int]) -> RouteRequest:
    """The one route that hands ``digest`` over: to the staff on call at the opening, else all staff.

    ``route_id`` is ``<digest id>:p<partitions>``: each worker's digest (of the
    partitions it holds) is sent once per opening.
    """
    members = team.on_call_at(digest.opening_at) or tuple(team.staff)
    to = [
        Notify(member=member, name=team.staff[member].name, uris=list(team.staff[member].notify),
               chatwoot_agent=team.staff[member].chatwoot_agent)
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
                desk=_held(item, team),
            )
            for item in digest.items
        ),
        partitions=tuple(sorted(held)),
    )


def _held(item: DigestItem, team: Team) -> dict[str, Any] | None:
    """The item's desk block, with ``hold: true`` when its team holds its Chatwoot inbox
    (``chatwoot: {hold: true}``: the conversation waits ``pending`` and is released at the opening)."""
    if item.desk is None:
        return None
    desk = team.chatwoot
    if desk is not None and desk.hold and item.desk.get("kind") == "chatwoot" and item.desk.get("inbox") in desk.inboxes:
        return {**item.desk, "hold": True}
    return dict(item.desk)


@dataclass(frozen=True, slots=True)
class HandoverAssignment:
    """One backlog conversation of a handover assigned in its desk: the digest's item, its
    place in the handover (``position`` of ``total``, 1-based) and the member it goes to."""

    item: HandoverItem
    position: int
    total: int
    member: Notify


def handover_assignments(route: RouteRequest) -> list[HandoverAssignment]:
    """The desk assignments of a handover digest's route (docs/chatwoot.md, "The handover at the opening").

    The conversations with a ``desk`` block, in the digest's order (urgent first, then
    longest waiting; never by followers), go round-robin to the route's members (those
    on call at the opening, else all the team's staff) who have a ``chatwoot_agent``, in
    the route's order: the first to the first member, the second to the second, ...
    and all to the one member when only one has an agent. ``position`` and ``total``
    count every conversation of the digest, so the desk's note matches the staff's
    digest. None when no member has an agent, or no conversation came through a desk.
    """
    items = route.handover or ()
    agents = [notify for notify in route.to if notify.chatwoot_agent is not None]
    if not agents:
        return []
    assignments: list[HandoverAssignment] = []
    for position, item in enumerate(items, start=1):
        if item.desk is None:
            continue
        assignments.append(HandoverAssignment(item, position, len(items), agents[len(assignments) % len(agents)]))
    return assignments


RELEASE_PREFIX = "release:"
"""The ``route_id`` prefix of a release: acted on in the desk only, nobody is notified."""


def is_release(route: RouteRequest) -> bool:
    """True for a release route (:func:`release_route`)."""
    return route.route_id.startswith(RELEASE_PREFIX)


def release_due(state: ConversationView, team: Team, now: datetime) -> bool:
    """True when the conversation waits ``pending`` in an inbox its team holds
    (``chatwoot: {hold: true}``) while the team is open at ``now``, or was routed or paged
    to staff since the customer started waiting: release it now, or it hides from the
    agents' default view (docs/chatwoot.md, "Hold mode"). Otherwise offhours holds it
    (closed hours, nobody routed) until the handover at the opening releases it.

    ``pending`` is the status the conversation had at the customer's latest message
    (its ``desk`` block); releasing an already open conversation writes nothing.
    """
    desk, held = state.desk, team.chatwoot
    if held is None or not held.hold or desk is None or desk.get("kind") != "chatwoot":
        return False
    if desk.get("status") != "pending" or desk.get("inbox") not in held.inboxes:
        return False
    if state.status != "open" or not state.waiting():
        return False
    since = state.waiting_since if state.waiting_since is not None else state.customer_at
    routed = state.routed_at is not None and since is not None and state.routed_at >= since
    return routed or team.at(now).mode == "open"


def next_release_at(state: ConversationView, team: Team, now: datetime) -> datetime | None:
    """The first instant at or after ``now`` at which :func:`release_due` could be true
    (``now`` itself when it is); None when not before the conversation changes.

    A held conversation routed since its customer started waiting is due now; one not
    routed, at the team's next opening (None when no opening within 400 days). The
    due-time index of the sweeps (``streams/due_index.py``) waits for it.
    """
    if not _waits_held(state, team):
        return None
    return now if release_due(state, team, now) else team.at(now).next_open


def _waits_held(state: ConversationView, team: Team) -> bool:
    """True when ``state`` waits ``pending`` in an inbox ``team`` holds (:func:`release_due` without the clock)."""
    desk, held = state.desk, team.chatwoot
    if held is None or not held.hold or desk is None or desk.get("kind") != "chatwoot":
        return False
    if desk.get("status") != "pending" or desk.get("inbox") not in held.inboxes:
        return False
    return state.status == "open" and state.waiting()


def release_route(state: ConversationView, team: Team, conversation: str, now: datetime) -> RouteRequest:
    """The release of a held conversation (:func:`release_due`): its status set ``open`` in the desk.

    ``route_id`` is ``release:<conversation>:<customer message POSIX seconds>``, so each
    message's conversation is released once (the delivery ledger); it notifies nobody.
    """
    route_id = f"{RELEASE_PREFIX}{conversation}:{state.customer_at}"
    return RouteRequest(
        route_id=route_id,
        event_id=route_id,
        team=team.id,
        action="route",
        mode="open",
        to=[],
        channel=state.channel or "generic",
        account=state.account or "",
        conversation=conversation,
        author_name=state.author_name,
        text=None,
        at=now.astimezone(team.timezone).isoformat(timespec="seconds"),
        next_open=None,
        reason="held inbox: released (status open) so the agents see it",
        desk=state.desk,
    )


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


def _waiting_since(state: ConversationView, zone: tzinfo) -> str | None:
    """Since when the customer waits (their first unanswered message), in the team's zone."""
    since = state.waiting_since if state.waiting_since is not None else state.customer_at
    return None if since is None else datetime.fromtimestamp(since, UTC).astimezone(zone).isoformat(timespec="seconds")


def _customer_route(state: ConversationView, team: Team, conversation: str, route_id: str, now: datetime,
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
        desk=state.desk,
    )


def reminder_route(reminder: Reminder, state: ConversationView, team: Team) -> RouteRequest:
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


def window_route(state: ConversationView, team: Team, conversation: str, now: datetime) -> tuple[RouteRequest, str]:
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


def _window_text(state: ConversationView, zone) -> str | None:
    if state.channel is None or state.customer_at is None:
        return None
    closes = window_closes(state.channel, state.kind, datetime.fromtimestamp(state.customer_at, UTC))
    return None if closes is None else closes.astimezone(zone).isoformat(timespec="seconds")
