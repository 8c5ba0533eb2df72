"""What offhours does in a team's care desk when a message came through it.

An acknowledgment or a route whose ``desk`` block names a Chatwoot conversation
(``{"kind": "chatwoot", "account": 7, "conversation": 4821, ...}``, the event's, README
"Events") is acted on through the desk (:class:`~responders.chatwoot.ChatwootDesk`)
instead of the platform, which the desk owns:

- an acknowledgment is posted as a public message of the conversation (Chatwoot sends
  it to the customer), then the conversation is labelled ``offhours`` and
  ``offhours-<mode>``; when Chatwoot cannot reply on the channel now
  (:class:`~responders.chatwoot.ReplyWindowClosed`) a private note says what would have
  been sent and why not, and the acknowledgment fails like any other (the failed
  acknowledgment's page routes the customer to staff);
- a route or a page posts a private note (who it went to, the decision's reason, what
  the customer was promised) and assigns the conversation to the first routed member
  with a ``chatwoot_agent``; a page also sets the priority ``urgent``; so do the promise
  rules' routes about the conversation (a reply-by or claim reminder, a route before its
  reply window closes) and the page of a failed acknowledgment;
- an escalation step (``esc:<event>:<n>``) reassigns the conversation to the step's
  member, with a note ``escalated: nobody claimed it in N minutes``;
- a handover digest (``handover:<team>:<opening>:p<partitions>``) assigns each of its
  desk conversations, in the digest's order, round-robin to the members on duty at the
  opening who have a ``chatwoot_agent`` (:func:`promises.routes.handover_assignments`),
  each with a note ``overnight backlog, n of N, waiting since ..., promised ...``; a
  conversation of a held inbox (``chatwoot: {hold: true}``) is first set ``open``. A
  conversation a person assigned meanwhile keeps its assignee (their claim). Keys:
  ``handover:<team>:<opening>|<conversation>|desk:<what>``, one per conversation and
  handover whichever worker's digest carries it;
- a release (``release:<conversation>:<message time>``, a held inbox's new conversation
  in open hours) sets the conversation's status ``open``, and nothing else.

Staff still get their ``notify`` notices as for any route. Each write is one keyed
delivery of :class:`~responders.delivery.DeliveryLoop` (its ledger, rate limits and
retries) under its own key (:class:`DeskWrite`): the acknowledgment under its ack id,
the rest under ``<ack or route id>|desk:<what>``; every message posted carries that key
as its ``content_attributes.offhours_id`` marker, so a retry or a redelivered record
never posts twice (:mod:`responders.chatwoot`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from promises.routes import HandoverAssignment, handover_assignments, is_release
from records.wire import AckRequest, RouteRequest

from .base import Clock, Limit, Outcome, Permanent
from .chatwoot import ChatwootDesk, DeskConversation, ReplyWindowClosed
from .config import ResponderSettings

CHATWOOT = "chatwoot"
LABEL = "offhours"
"""The label on every conversation offhours acknowledged in the desk (with ``offhours-<mode>``)."""

Send = Callable[[aiohttp.ClientSession], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class DeskWrite:
    """One write in the desk, delivered on its own: its ledger key (and marker), what it
    is (``acknowledgment``, ``labels``, ``note``, ``assign``, ``priority``), the rate
    limits it counts against, and the one attempt."""

    key: str
    what: str
    limits: Sequence[Limit]
    send: Send
    conversation: str | None = None
    """The conversation it is about when not the request's own (a handover's item)."""


def desk_kind(desk: Mapping[str, Any] | None) -> str | None:
    """The kind of desk a request's ``desk`` block names (``chatwoot``), or None."""
    if not isinstance(desk, Mapping):
        return None
    kind = desk.get("kind")
    return kind if isinstance(kind, str) else None


def acts_in_desk(desk: Mapping[str, Any] | None) -> bool:
    """True when a request with this ``desk`` block is acted on through a desk offhours drives."""
    return desk_kind(desk) == CHATWOOT


def desk_key(request_id: str, what: str) -> str:
    """The ledger key (and marker) of a desk write about ``request_id`` other than the acknowledgment."""
    return f"{request_id}|desk:{what}"


def window_note(request: AckRequest, reason: str) -> str:
    """The private note when the acknowledgment could not be sent: what it said and why not."""
    return (
        "offhours did not send its acknowledgment to the customer: Chatwoot cannot reply on this "
        f"channel now ({reason}). A person must answer. It would have said:\n\n{request.text}"
    )


def route_note(request: RouteRequest) -> str:
    """The private note of a route, a page or an escalation step (see the module doc)."""
    names = ", ".join(notify.name or notify.member for notify in request.to) or "nobody (no staff to notify)"
    if request.escalation is not None:
        minutes = _minutes_between(request.escalation.routed_at, request.at)
        waited = f" in {minutes} minute{'s' if minutes != 1 else ''}" if minutes is not None else ""
        return f"escalated: nobody claimed it{waited}; now with {names}."
    mode = f" ({request.mode} hours)" if request.mode else ""
    if request.reminder is not None:
        first = f"offhours reminded {names} of this conversation{mode}"
    elif request.window is not None:
        first = f"offhours routed this conversation to {names} before its reply window closes{mode}"
    else:
        verb = "paged" if request.action == "page" else "routed"
        first = f"offhours {verb} this conversation to {names}{mode}"
    lines = [first]
    if request.reason:
        lines.append(f"Why: {request.reason}")
    promised = request.promised or next(
        (note.promised for note in (request.reminder, request.window) if note is not None and note.promised), None)
    if request.ack_text is not None:
        lines.append(f"Not delivered to the customer: {request.ack_text}")
    elif promised is not None:
        lines.append(f"The customer was promised: {promised}")
    elif request.reminder is None and request.window is None:
        lines.append("The customer got no acknowledgment from offhours.")
    return "\n".join(lines)


def _local(instant: str | None) -> str | None:
    """An ISO 8601 instant (in the team's zone) as staff read it: ``Mon 30 Nov 02:14``."""
    if instant is None:
        return None
    try:
        return datetime.fromisoformat(instant).strftime("%a %d %b %H:%M")
    except ValueError:
        return instant


def handover_note(request: RouteRequest, assignment: HandoverAssignment) -> str:
    """The private note of a handover's assignment (see the module doc)::

        offhours handover at the opening (Mon 30 Nov 09:00): overnight backlog, 2 of 5,
        waiting since Sun 29 Nov 22:14, promised a reply by Mon 30 Nov 09:40 ("...").
        For Lucía Fernández.
    """
    item = assignment.item
    urgent = " (urgent)" if item.urgent else ""
    since = _local(item.waiting_since)
    waiting = f", waiting since {since}" if since else ""
    by = _local(item.reply_by)
    if item.promised and by:
        promised = f'promised a reply by {by} ("{item.promised}")'
    elif item.promised:
        promised = f'promised "{item.promised}"'
    elif by:
        promised = f"promised a reply by {by}"
    else:
        promised = "promised nothing (no acknowledgment from offhours)"
    name = assignment.member.name or assignment.member.member
    return (f"offhours handover at the opening ({_local(request.at)}): overnight backlog, "
            f"{assignment.position} of {assignment.total}{urgent}{waiting}, {promised}. For {name}.")


def _minutes_between(start: str, end: str) -> int | None:
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except ValueError:
        return None
    return max(0, int(delta.total_seconds() // 60))


def assignee_of(request: RouteRequest) -> tuple[str, int] | None:
    """The first member of the route with a ``chatwoot_agent``: ``(name, agent id)``, or None."""
    for notify in request.to:
        if notify.chatwoot_agent is not None:
            return notify.name or notify.member, notify.chatwoot_agent
    return None


class DeskActions:
    """The desk writes of acknowledgments and routes (see the module doc); one per service."""

    def __init__(self, desk: ChatwootDesk) -> None:
        self.desk = desk

    @classmethod
    def build(cls, settings: ResponderSettings, clock: Clock) -> DeskActions:
        return cls(ChatwootDesk(settings, clock))

    def _conversation(self, desk: Mapping[str, Any] | None) -> DeskConversation | Permanent:
        try:
            return DeskConversation.from_desk(desk or {})
        except ValueError as exc:
            return Permanent(f"{CHATWOOT}: unusable desk block: {exc}")

    def _write(self, key: str, what: str, desk: Mapping[str, Any] | None,
               act: Callable[[aiohttp.ClientSession, DeskConversation], Awaitable[Outcome]],
               about: str | None = None) -> DeskWrite:
        conversation = self._conversation(desk)
        if isinstance(conversation, Permanent):
            refusal = conversation

            async def refuse(session: aiohttp.ClientSession) -> Outcome:
                return refusal

            return DeskWrite(key, what, (), refuse, about)
        found = conversation

        async def send(session: aiohttp.ClientSession) -> Outcome:
            return await act(session, found)

        return DeskWrite(key, what, self.desk.limits(found), send, about)

    # -- acknowledgments -------------------------------------------------------------

    def acknowledgment(self, request: AckRequest) -> DeskWrite:
        """The acknowledgment, a public message in the conversation, under the ack id."""
        text = request.private_text or request.text
        return self._write(
            request.ack_id, "acknowledgment", request.desk,
            lambda session, conversation: self.desk.post_ack(session, conversation, text, request.ack_id),
        )

    def labels(self, request: AckRequest) -> DeskWrite:
        """``offhours`` and ``offhours-<mode>`` added to the conversation's labels."""
        labels = [LABEL] + ([f"{LABEL}-{request.mode}"] if request.mode else [])
        return self._write(
            desk_key(request.ack_id, "labels"), "labels", request.desk,
            lambda session, conversation: self.desk.merge_labels(session, conversation, labels),
        )

    def window_closed_note(self, request: AckRequest, reason: str) -> DeskWrite:
        """The private note that says the acknowledgment could not be sent, and what it said."""
        key = desk_key(request.ack_id, "note")
        text = window_note(request, reason)
        return self._write(
            key, "note", request.desk,
            lambda session, conversation: self.desk.post_note(session, conversation, text, key),
        )

    @staticmethod
    def window_closed(outcome: Outcome | None) -> bool:
        """True when an acknowledgment's last outcome says the desk cannot reply on the channel now."""
        return isinstance(outcome, ReplyWindowClosed)

    # -- routes ----------------------------------------------------------------------

    def route(self, request: RouteRequest) -> list[DeskWrite]:
        """A route's writes, in order: the note, the assignment (when a routed member has a
        ``chatwoot_agent``) and, for a page, the priority ``urgent``."""
        if is_release(request):
            return [self._write(
                desk_key(request.route_id, "status"), "status", request.desk,
                lambda session, conversation: self.desk.set_status(session, conversation, "open"),
            )]
        note_key = desk_key(request.route_id, "note")
        text = route_note(request)
        writes = [self._write(
            note_key, "note", request.desk,
            lambda session, conversation: self.desk.post_note(session, conversation, text, note_key),
        )]
        assignee = assignee_of(request)
        if assignee is not None:
            agent = assignee[1]
            writes.append(self._write(
                desk_key(request.route_id, "assign"), "assign", request.desk,
                lambda session, conversation: self.desk.assign(session, conversation, agent),
            ))
        if request.action == "page":
            writes.append(self._write(
                desk_key(request.route_id, "priority"), "priority", request.desk,
                lambda session, conversation: self.desk.set_priority(session, conversation, "urgent"),
            ))
        return writes


    # -- the handover at the opening ----------------------------------------------------

    def handover(self, request: RouteRequest) -> list[DeskWrite]:
        """A handover digest's writes, conversation after conversation in the digest's order:
        the note, the release (``open``) of a held conversation, the assignment."""
        writes: list[DeskWrite] = []
        for assignment in handover_assignments(request):
            item = assignment.item
            if desk_kind(item.desk) != CHATWOOT:
                continue
            base = f"{request.event_id}|{item.conversation}"
            note_key, text, agent = desk_key(base, "note"), handover_note(request, assignment), assignment.member.chatwoot_agent
            assert agent is not None
            writes.append(self._write(
                note_key, "note", item.desk,
                lambda session, conversation, key=note_key, text=text: self.desk.post_note(session, conversation, text, key),
                item.conversation,
            ))
            if (item.desk or {}).get("hold") is True:
                writes.append(self._write(
                    desk_key(base, "status"), "status", item.desk,
                    lambda session, conversation: self.desk.set_status(session, conversation, "open"),
                    item.conversation,
                ))
            writes.append(self._write(
                desk_key(base, "assign"), "assign", item.desk,
                lambda session, conversation, agent=agent: self.desk.assign(session, conversation, agent, keep_claim=True),
                item.conversation,
            ))
        return writes


def hands_over_in_desk(request: RouteRequest) -> bool:
    """True when ``request`` is a handover digest with a conversation of a desk offhours drives."""
    return any(acts_in_desk(item.desk) for item in request.handover or ())


def build_desks(settings: ResponderSettings, clock: Clock) -> Mapping[str, DeskActions]:
    """The desks offhours can act through, by ``desk.kind``."""
    return {CHATWOOT: DeskActions.build(settings, clock)}
