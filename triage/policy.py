"""The triage policy: one event and its conversation's state in, one decision out.

Pure: no Faust, Kafka, asyncio, environment or clock. The event's ``at`` is the clock;
the team's coverage at that instant (:meth:`schedules.Team.at`) decides the mode.
The triage agent decodes, calls :meth:`Triage.decide`, stores ``TriageResult.state`` and
emits the decision, the acknowledgment and the route; it sends rejects to the
dead-letter topic with the decision's reason.

Rules (README: Decisions):

* ``agent_reply``: ``ignore``; the conversation is marked answered by that staff member.
* ``open``: ``queue`` for the team's inbox, no acknowledgment unless ``ack_when_open``.
* ``reduced``: ``route`` to the staff on call, else to ``triage.reduced_staff``; when
  nobody at all is there, ``queue`` for the handover at the next opening, and the
  acknowledgment promises that opening, as when closed.
* ``closed``: ``queue`` for the handover at the next opening.
* Urgent (:mod:`triage.urgency`) in any mode: ``page`` the staff on call (in reduced
  hours also ``reduced_staff`` when nobody is on call); when nobody is there the message
  is queued as above and the reason says so. A page is never suppressed.
* Outside open hours every customer message is acknowledged, unless staff replied in
  the conversation within ``agent_active`` (``ack_suppressed: agent_active``) or it was
  acknowledged within ``ack_cooldown`` (``duplicate``). Mentions and comments get the
  short public acknowledgment when ``public_reply``; otherwise a private one where the
  platform allows a private reply to a comment (Facebook, Instagram), else none. A
  Facebook/Instagram comment answered in public also gets that private reply: the
  decision's ``ack`` stays the public text, and the acknowledgment request carries the
  ``dm`` text as ``private_text``.
* A message in a conversation already routed to the same staff, unanswered, within
  ``ack_cooldown`` is decided ``route`` again but sends no new route.
* Nothing looks at ``author.followers``.
* Idempotency: an event already recorded in the state (a Kafka redelivery) gets the
  same decision, no state change, and the same acknowledgment and route requests again
  (same ids): a crash may have lost them after the state was stored, and the delivery
  ledger sends each id at most once, so the customer and staff get each one once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from promises.rules import FirstResponseStats, promised_reply_within
from promises.sla import FirstResponse
from records.platforms import is_private_reply, reply_target, window_closes
from records.wire import (
    PUBLIC_KINDS,
    Ack,
    AckRequest,
    Decision,
    InvalidEvent,
    Notify,
    RouteRequest,
    SocialEvent,
    parse_event,
    raw_field,
)
from triage.acks import AckFacts, AckKind, AckWriter, format_moment
from triage.state import ConversationState, Processed, Suppression, kept_text
from triage.urgency import UrgencyRules

if TYPE_CHECKING:
    from schedules import Coverage, CoverageAt, Team, TriageOptions

# No measured first responses yet: every promise is the configured one.
NO_STATS = FirstResponseStats()


@dataclass(frozen=True, slots=True)
class TriageResult:
    """What to do with one event: the decision to publish, and what to store and send."""

    decision: Decision
    state: ConversationState | None
    """The conversation's new state to store; None leaves the table alone."""
    ack: AckRequest | None
    """The acknowledgment to put on the acks outbox; None sends nothing."""
    route: RouteRequest | None
    """The route or page to put on the routes outbox; None sends nothing."""
    first_response: FirstResponse | None = None
    """The first response this staff reply gave a waiting customer, for the SLA figures."""


def handover_facts(state: ConversationState, outcome: TriageResult) -> ConversationState:
    """``state`` with what the handover digest shows: channel, urgency, the promise made.

    The worker's triage agent stores it; the console's projection keeps it alike.
    """
    channel, promised = state.channel, state.promised
    if outcome.ack is not None:
        channel, promised = outcome.ack.channel, outcome.ack.text
    elif outcome.route is not None:
        channel = outcome.route.channel
    urgent = state.urgent or outcome.decision.action == "page"
    if (channel, promised, urgent) == (state.channel, state.promised, state.urgent):
        return state
    return replace(state, channel=channel, promised=promised, urgent=urgent)


@dataclass(frozen=True, slots=True)
class _TeamPolicy:
    team: Team
    urgency: UrgencyRules
    acks: AckWriter


@dataclass(frozen=True, slots=True)
class _Plan:
    action: Literal["queue", "route", "page"]
    route_to: tuple[str, ...]
    staff_note: str


class Triage:
    """Built once per Coverage snapshot; holds compiled urgency rules and templates."""

    __slots__ = ("_coverage", "_teams")

    def __init__(self, coverage: Coverage) -> None:
        """Compile every team's urgency rules and acknowledgment templates.

        Raises :class:`triage.acks.AckTemplateError` or ``ValueError`` (a bad urgent
        pattern) naming the team, so that a service handed a bad file keeps its old Triage.
        """
        self._coverage = coverage
        self._teams = {
            team_id: _TeamPolicy(team, UrgencyRules.from_options(team.triage), AckWriter(team))
            for team_id, team in coverage.teams.items()
        }

    @property
    def coverage(self) -> Coverage:
        """The coverage snapshot this triage was built from."""
        return self._coverage

    def conversation_key(self, raw: bytes) -> str | None:
        """The event's ``conversation`` (the table and partition key), or None when unreadable."""
        return raw_field(raw, "conversation")

    def decide(
        self, raw: bytes, state: ConversationState | None, stats: FirstResponseStats | None = None
    ) -> TriageResult:
        """Decide one event (the Kafka message value) given its conversation's state.

        ``stats`` are the recent measured first responses (:mod:`promises.rules`): an
        acknowledgment promises the measured median reply time of the team and mode
        (:func:`~promises.rules.promised_reply_within`); without them, or with too few,
        the configured ``triage.reply_within``.
        """
        try:
            event = parse_event(raw)
        except InvalidEvent as exc:
            reason = exc.reason.replace("Value error, ", "")
            return rejected(raw_field(raw, "id"), f"invalid event: {reason}")
        team = self._coverage.team_for_account(event.account)
        if team is None:
            return rejected(event.id, f"unknown account {event.account!r}: no team lists it under accounts")
        policy = self._teams[team.id]
        coverage_at = team.at(event.at)
        processed = state.processed(event.id) if state is not None else None
        if event.kind == "agent_reply":
            return _staff_reply(team, event, coverage_at, state, processed)
        return _customer_message(policy, event, coverage_at, state, processed, stats or NO_STATS)


def rejected(event_id: str | None, reason: str) -> TriageResult:
    """The outcome of an input that cannot be decided: a ``reject`` with ``reason``, nothing else."""
    decision = Decision(
        event_id=event_id,
        team=None,
        mode=None,
        action="reject",
        route_to=[],
        ack=None,
        ack_suppressed=None,
        next_open=None,
        reason=reason,
    )
    return TriageResult(decision, None, None, None)


def _seconds(instant: datetime) -> int:
    return int(instant.timestamp())


def _next_open_text(coverage_at: CoverageAt) -> str | None:
    # As CoverageAt.to_contract() writes it, without its other three instants.
    next_open = coverage_at.next_open
    return None if next_open is None else next_open.isoformat(timespec="seconds")


def _staff_reply(
    team: Team,
    event: SocialEvent,
    coverage_at: CoverageAt,
    state: ConversationState | None,
    processed: Processed | None,
) -> TriageResult:
    decision = Decision(
        event_id=event.id,
        team=coverage_at.team,
        mode=coverage_at.mode,
        action="ignore",
        route_to=[],
        ack=None,
        ack_suppressed=None,
        next_open=_next_open_text(coverage_at),
        reason=f"staff reply by {event.author.id}; conversation answered",
    )
    if processed is not None:
        return TriageResult(decision, None, None, None)
    at = _seconds(event.at)
    current = state or ConversationState(team=coverage_at.team)
    newer = current.staff_at is None or at >= current.staff_at
    response = _first_response(team, event, current)
    updated = replace(
        current,
        team=coverage_at.team,
        status="answered",
        staff_at=at if newer else current.staff_at,
        staff_id=event.author.id if newer else current.staff_id,
        waiting_since=None if response is not None else current.waiting_since,
    ).remember(event.id)
    return TriageResult(decision, updated, None, None, response)


def _first_response(team: Team, event: SocialEvent, state: ConversationState) -> FirstResponse | None:
    """The first response ``event`` (a staff reply) gives, when a customer was waiting for one.

    Measured from the first customer message since the previous staff reply; the mode
    is the team's at that message. A reply that came before it (events out of order)
    answers nothing.
    """
    if state.waiting_since is None or event.at.timestamp() < state.waiting_since:
        return None
    customer_at = datetime.fromtimestamp(state.waiting_since, team.timezone)
    return FirstResponse(
        team=team.id,
        mode=team.at(customer_at).mode,
        conversation=event.conversation,
        customer_at=customer_at,
        replied_at=event.at,
    )


def _plan(policy: _TeamPolicy, coverage_at: CoverageAt, urgent: bool) -> _Plan:
    on_call = tuple(coverage_at.on_call)
    reduced_staff = tuple(policy.team.triage.reduced_staff)
    if coverage_at.mode == "reduced":
        staff, note = (on_call, "on call") if on_call else (reduced_staff, "reduced staff")
    else:
        staff, note = on_call, "on call"
    if urgent and staff:
        return _Plan("page", staff, note)
    if coverage_at.mode == "reduced" and staff:
        return _Plan("route", staff, note)
    return _Plan("queue", (), note)


def _clock(instant: datetime | None, zone: tzinfo, *, end: bool = False) -> str:
    # Local "HH:MM"; a stretch that ends at midnight reads "24:00", as operators write it.
    if instant is None:
        return "…"
    text = instant.astimezone(zone).strftime("%H:%M")
    return "24:00" if end and text == "00:00" else text


def _mode_text(policy: _TeamPolicy, coverage_at: CoverageAt) -> str:
    """"reduced hours 19:00-24:00", "closed (holiday: …) until lunedì 28 dicembre alle 09:00"."""
    zone = policy.team.timezone
    label = coverage_at.mode
    if coverage_at.note:
        label += f" ({coverage_at.source}: {coverage_at.note})"
    if coverage_at.mode != "closed" and coverage_at.since is None and coverage_at.until is None:
        return f"{label} at all hours (no change within 400 days)"
    if coverage_at.mode != "closed":
        return f"{label} hours {_clock(coverage_at.since, zone)}-{_clock(coverage_at.until, zone, end=True)}"
    if coverage_at.next_open is None:
        return f"{label}; no opening within 400 days"
    return f"{label} until {format_moment(coverage_at.next_open, zone, policy.acks.team_locale)}"


def _customer_message(
    policy: _TeamPolicy,
    event: SocialEvent,
    coverage_at: CoverageAt,
    state: ConversationState | None,
    processed: Processed | None,
    stats: FirstResponseStats,
) -> TriageResult:
    team = policy.team
    triage = team.triage
    at = _seconds(event.at)
    urgent, rule = policy.urgency.is_urgent(event.text)
    plan = _plan(policy, coverage_at, urgent)
    mode = coverage_at.mode

    reasons = [_mode_text(policy, coverage_at)]
    if plan.action == "page":
        reasons.append(f"urgent ({rule}); paging {plan.staff_note}: {', '.join(plan.route_to)}")
    elif plan.action == "route":
        reasons.append(f"{plan.staff_note}: {', '.join(plan.route_to)}")
    else:
        if urgent:
            reasons.append(f"urgent ({rule}) but nobody is on call")
        elif mode == "reduced":
            reasons.append("nobody is on call")
        reasons.append("queued for the team's inbox" if mode == "open" else "queued for the handover")

    route_held = False
    if plan.action == "route":
        route_held = processed.route_held if processed is not None else _already_routed(state, plan, at, triage.ack_cooldown)
        if route_held:
            reasons.append(f"already routed to {', '.join(plan.route_to)} and unanswered: no new route")

    ack: Ack | None = None
    promised_by: datetime | None = None
    private_text: str | None = None
    suppressed: Suppression | None = None
    if mode != "open" or triage.ack_when_open:
        suppressed = processed.suppressed if processed is not None else _suppression(state, at, triage)
        if suppressed == "agent_active":
            reasons.append(f"no acknowledgment: staff replied within {_minutes(triage.agent_active)}")
        elif suppressed == "duplicate":
            reasons.append(f"no acknowledgment: already acknowledged within {_minutes(triage.ack_cooldown)}")
        else:
            kind = _ack_kind(event, triage.public_reply)
            if kind is None:
                reasons.append(f"no acknowledgment: public replies are off and {event.channel} has no private reply to a {event.kind}")
            else:
                facts = _ack_facts(event, team, coverage_at, plan, stats)
                promised_by = facts.reply_by
                ack = policy.acks.write(kind, event.lang, facts)
                if _also_private_reply(event, kind):
                    # Same facts, and the public reply's language so the two replies agree.
                    private_text = policy.acks.write("dm", ack.lang, facts).text

    decision = Decision(
        event_id=event.id,
        team=team.id,
        mode=mode,
        action=plan.action,
        route_to=list(plan.route_to),
        ack=ack,
        ack_suppressed=suppressed,
        next_open=_next_open_text(coverage_at),
        reason="; ".join(reasons),
    )
    routed_now = plan.action == "page" or (plan.action == "route" and not route_held)
    ack_request = _ack_request(event, team.id, ack, private_text, mode) if ack is not None else None
    route_request = _route_request(event, team, decision, rule) if routed_now else None
    if processed is not None:
        # A redelivery: no state change, and the same outbox records again. The state
        # may have reached its changelog while the records were lost with a crashed
        # worker; the delivery ledger sends each id (ack:/route:<event id>) at most once.
        return TriageResult(decision, None, ack_request, route_request)

    current = state or ConversationState(team=team.id)
    customer_at = max(at, current.customer_at or at)
    # One new state (dataclasses.replace per change was a tenth of the policy's time).
    changes: dict[str, Any] = {
        "team": team.id,
        "status": "open",
        "customer_at": customer_at,
        "kind": event.kind,
        "waiting_since": _waiting_since(current, at),
        "ack_at": max(at, current.ack_at or at) if ack is not None else current.ack_at,
        "reply_by": _seconds(promised_by) if ack is not None and promised_by is not None else current.reply_by,
        "routed_to": plan.route_to if routed_now else current.routed_to,
        "routed_at": at if routed_now else current.routed_at,
        "desk": desk_of(event) or current.desk,
        "recent": current.recent_with(event.id, suppressed=suppressed, route_held=route_held),
    }
    if customer_at == at:
        # The conversation's latest customer message: what reminders, early routes and
        # the handover quote to staff (as ConversationState.wrote keeps them).
        changes.update(author_name=event.author.name, text=kept_text(event.text), account=event.account)
    return TriageResult(decision, replace(current, **changes), ack_request, route_request)


def _waiting_since(state: ConversationState, at: int) -> int:
    """The first customer message since the last staff reply, with one more at ``at``."""
    if state.waiting_since is not None and (state.staff_at is None or state.staff_at < state.waiting_since):
        return min(state.waiting_since, at)
    return at


def _minutes(delay: timedelta) -> str:
    minutes = round(delay.total_seconds() / 60)
    return f"{minutes} min" if minutes < 120 or minutes % 60 else f"{minutes // 60} h"


def _suppression(state: ConversationState | None, at: int, triage: TriageOptions) -> Suppression | None:
    # Staff talking in the conversation wins over a recent acknowledgment: it is the
    # better explanation of why no automatic text was sent. A reply or acknowledgment
    # recorded *after* this message (events out of order) also counts as recent.
    if state is None:
        return None
    if state.staff_at is not None and at - state.staff_at < triage.agent_active.total_seconds():
        return "agent_active"
    if state.ack_at is not None and at - state.ack_at < triage.ack_cooldown.total_seconds():
        return "duplicate"
    return None


def _already_routed(state: ConversationState | None, plan: _Plan, at: int, cooldown: timedelta) -> bool:
    return (
        state is not None
        and state.status == "open"
        and state.routed_to == plan.route_to
        and state.routed_at is not None
        and at - state.routed_at < cooldown.total_seconds()
    )


def _ack_kind(event: SocialEvent, public_reply: bool) -> AckKind | None:
    if event.kind not in PUBLIC_KINDS:
        return "dm"
    if public_reply:
        return "public"
    if is_private_reply(event.channel, event.kind):
        return "dm"
    return None


def _also_private_reply(event: SocialEvent, kind: AckKind) -> bool:
    """A Facebook/Instagram comment answered in public also gets a private reply (the ``dm`` text)."""
    return kind == "public" and is_private_reply(event.channel, event.kind)


def _staff_name(team: Team, member: str) -> str:
    staff = team.staff.get(member)
    return staff.name if staff is not None and staff.name else member


def _ack_facts(event: SocialEvent, team: Team, coverage_at: CoverageAt, plan: _Plan, stats: FirstResponseStats) -> AckFacts:
    """What the acknowledgment promises: never a reply before a person who gets the message is on duty.

    A message routed or paged now is seen now; a queued one at the next opening. So
    reduced hours with nobody on duty (no one on call, no reduced staff) promise what a
    closed team promises, and the acknowledgment is written as for ``closed``: the
    next opening, never the evening team's reply time that nobody is there to keep.
    """
    triage = team.triage
    mode = coverage_at.mode
    if mode == "reduced" and plan.action == "queue":
        mode = "closed"
    if mode == "closed":
        # The promise is about the next opening: a person answers from then, within the
        # delay measured (or configured) for open hours.
        configured = triage.reply_within.get("open", timedelta(hours=2))
        if coverage_at.next_open is None:
            within, reply_by = configured, None
        else:
            within = promised_reply_within(stats, team, "open", team.at(coverage_at.next_open), configured)
            reply_by = coverage_at.next_open + within
    else:
        configured = triage.reply_within.get(mode, timedelta(hours=2))
        within = promised_reply_within(stats, team, mode, coverage_at, configured)
        reply_by = event.at + within
    return AckFacts(
        mode=mode,
        at=event.at,
        next_open=coverage_at.next_open,
        reply_within=within,
        reply_by=reply_by,
        staff_name=_staff_name(team, plan.route_to[0]) if plan.route_to else None,
        customer_name=event.author.name,
        paged=plan.action == "page",
    )


def _window_closes(event: SocialEvent) -> str | None:
    closes = window_closes(event.channel, event.kind, event.at)
    return None if closes is None else closes.isoformat(timespec="seconds")


def desk_of(event: SocialEvent) -> dict[str, Any] | None:
    """The event's ``desk`` block (a care desk's conversation, README "Events"), or None."""
    desk = (event.model_extra or {}).get("desk")
    return dict(desk) if isinstance(desk, dict) else None


def _ack_request(
    event: SocialEvent, team_id: str, ack: Ack, private_text: str | None = None, mode: str | None = None
) -> AckRequest:
    """The outbox record of ``ack``; ``private_text`` is the private reply sent beside a public one."""
    target = reply_target(event)
    return AckRequest(
        ack_id=f"ack:{event.id}",
        event_id=event.id,
        team=team_id,
        account=event.account,
        channel=event.channel,
        kind=event.kind,
        conversation=event.conversation,
        recipient=target.recipient,
        reply_to=target.message_id,
        text=ack.text,
        lang=ack.lang,
        public=ack.public,
        at=event.at.isoformat(timespec="seconds"),
        window_closes=_window_closes(event),
        author_name=event.author.name,
        customer_text=event.text,
        private_text=private_text,
        desk=desk_of(event),
        mode=mode,
    )


def _route_request(event: SocialEvent, team: Team, decision: Decision, rule: str | None) -> RouteRequest:
    to = [
        Notify(
            member=member,
            name=_staff_name(team, member),
            uris=list(team.staff[member].notify) if member in team.staff else [],
            chatwoot_agent=team.staff[member].chatwoot_agent if member in team.staff else None,
        )
        for member in decision.route_to
    ]
    # The message's kind lets a notice name the channel ("Facebook Messenger", "Facebook comment").
    extra: dict[str, object] = {"reply_to": reply_target(event).message_id, "kind": event.kind}
    if rule is not None:
        extra["urgent_rule"] = rule
    if decision.ack is not None:
        extra["promised"] = decision.ack.text
    return RouteRequest(
        route_id=f"route:{event.id}",
        event_id=event.id,
        team=team.id,
        action="page" if decision.action == "page" else "route",
        mode=decision.mode or "",
        to=to,
        channel=event.channel,
        account=event.account,
        conversation=event.conversation,
        author_name=event.author.name,
        text=event.text,
        at=event.at.isoformat(timespec="seconds"),
        next_open=decision.next_open,
        window_closes=_window_closes(event),
        reason=decision.reason,
        extra=extra,
        desk=desk_of(event),
    )
