"""Keeping promises: escalation, reply windows, handover at opening, follow-through, SLA.

Pure: no Faust, asyncio, environment or clock. Every function takes the instant it
reasons about (``now``, ``opening_at``) and the team's coverage (:class:`schedules.Team`);
the agents load a snapshot from their tables, call one function and emit what it returns.
:mod:`streams.timers` only decides *when* these functions are called; :mod:`promises.ticks`
says what each sweep tick does with them, and :mod:`promises.routes` words their routes.

Idempotency: everything that leads to a message has a deterministic id, so a sweep that
runs twice, or a worker that takes over a partition after a rebalance, sends nothing
twice when the caller records the ids it sent (the responders' ledger does):

* an escalation step: ``esc:<event_id>:<n>`` (``n`` counts from 0 along the chain);
* a reminder: ``remind:<kind>:<conversation>:<due POSIX seconds>``;
* an early route before a reply window closes: ``window:<conversation>:<message time>``;
* a handover digest: ``handover:<team>:<opening POSIX seconds>``.

Priority never depends on followers: nothing here reads them.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import orjson

from records.platforms import is_private_reply, window_closes
from records.stored import exact_json
from records.wire import Notify

if TYPE_CHECKING:
    from schedules import CoverageAt, Team
    from schedules.model import EscalationLink

# How far ahead the rotation is searched for the next member to escalate to.
ROTATION_LOOKAHEAD = timedelta(days=60)

ReplyMechanism = Literal["free_form", "human_agent", "template", "public_reply", "none"]
ReminderKind = Literal["reply_by", "claim"]


def _seconds(instant: datetime) -> int:
    return int(instant.timestamp())


# -- escalation -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingEscalation:
    """A routed or paged message waiting for a claim: one row of the escalations table.

    ``routed_at`` is when it was routed (or, for a claim that went unanswered, when the
    claimer was reminded); ``mode`` picks the team's chain; ``sent`` counts the steps
    already sent, so the next one is step ``sent``. ``claimed`` ends the escalation.
    ``channel``, ``kind``, ``account``, ``author_name``, ``text`` and ``window_closes``
    repeat the routed message, so an escalation tells the next person what is waiting;
    ``desk`` is its care desk's conversation (the event's ``desk`` block), so each step
    acts in the desk too (None: none; rows written before it read as None).
    """

    event_id: str
    team: str
    conversation: str
    mode: str
    routed_at: datetime
    routed_to: tuple[str, ...] = ()
    sent: int = 0
    claimed: bool = False
    channel: str = "generic"
    account: str = ""
    author_name: str | None = None
    text: str | None = None
    window_closes: str | None = None
    kind: str | None = None
    desk: dict[str, Any] | None = None

    def after_sent(self, step: EscalationStep) -> PendingEscalation:
        """This escalation with ``step`` recorded as sent (the next step follows it)."""
        return replace(self, sent=max(self.sent, step.n + 1))

    def replied(self, staff_at: float | None) -> bool:
        """Whether a staff reply at ``staff_at`` (POSIX seconds; None: none yet) came at or
        after the message this escalates: then it needs no further step."""
        return staff_at is not None and staff_at >= self.routed_at.timestamp()

    def to_bytes(self) -> bytes:
        """The table's wire form (JSON; ``routed_at`` in ISO 8601; ``desk`` only when set)."""
        data: dict[str, Any] = {
            "event_id": self.event_id, "team": self.team, "conversation": self.conversation,
            "mode": self.mode, "routed_at": self.routed_at.isoformat(),
            "routed_to": list(self.routed_to), "sent": self.sent, "claimed": self.claimed,
            "channel": self.channel, "account": self.account, "author_name": self.author_name,
            "text": self.text, "window_closes": self.window_closes, "kind": self.kind,
        }
        if self.desk is not None:
            data["desk"] = self.desk
        return exact_json(data)  # lives on as the table's value

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> PendingEscalation:
        """Read :meth:`to_bytes` output back."""
        data = orjson.loads(raw)
        return cls(
            event_id=data["event_id"], team=data["team"], conversation=data["conversation"],
            mode=data["mode"], routed_at=datetime.fromisoformat(data["routed_at"]),
            routed_to=tuple(data.get("routed_to", ())), sent=data.get("sent", 0),
            claimed=data.get("claimed", False), channel=data.get("channel", "generic"),
            account=data.get("account", ""), author_name=data.get("author_name"), text=data.get("text"),
            window_closes=data.get("window_closes"), kind=data.get("kind"), desk=data.get("desk"),
        )


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One escalation to send: who to notify about ``event_id`` and why.

    ``id`` is ``esc:<event_id>:<n>``: the same step always has the same id, so the
    delivery ledger never sends it twice.
    """

    id: str
    event_id: str
    team: str
    conversation: str
    n: int
    due: datetime
    link: str
    notify: tuple[Notify, ...]


def escalation_due(pending: PendingEscalation, team: Team) -> datetime | None:
    """When the next step of ``pending`` is due, or None when it is claimed or exhausted."""
    chain = team.escalation.chain_for(pending.mode)
    if pending.claimed or pending.sent >= chain.steps:
        return None
    return pending.routed_at + chain.after * (pending.sent + 1)


def next_escalation(pending: PendingEscalation, team: Team, now: datetime) -> EscalationStep | None:
    """The escalation step due at ``now``, or None (not yet due, claimed, or chain done).

    Step ``n`` is due ``(n + 1) * after`` after ``routed_at`` and notifies link
    ``n % len(chain)``; the chain is walked ``repeat`` times. A link that reaches nobody
    (no rotation member other than those on call, a lead without notify targets) is
    skipped for the next one within the same walk; when none is reachable, None. Only
    the step due now is returned: after a long outage the chain resumes where it
    stopped rather than sending every missed step at once.
    """
    due = escalation_due(pending, team)
    if due is None or now < due:
        return None
    chain = team.escalation.chain_for(pending.mode)
    for n in range(pending.sent, chain.steps):
        notify = _reach(chain.chain[n % len(chain.chain)], n // len(chain.chain), pending, team, now)
        if notify:
            return EscalationStep(
                id=f"esc:{pending.event_id}:{n}",
                event_id=pending.event_id,
                team=pending.team,
                conversation=pending.conversation,
                n=n,
                due=due,
                link=str(chain.chain[n % len(chain.chain)]),
                notify=notify,
            )
    return None


def next_on_call(team: Team, now: datetime, walk: int = 0) -> str | None:
    """The rotation member who follows the staff on call at ``now``.

    Upcoming shifts (:meth:`schedules.Team.on_call_shifts`, overrides applied) are read
    in order; members on call now are left out. ``walk`` picks a later one on a later
    walk of the chain (0: the next, 1: the one after, cyclically). None when nobody else
    is on the rotation.
    """
    current = set(team.on_call_at(now))
    upcoming: list[str] = []
    for shift in team.on_call_shifts(now, now + ROTATION_LOOKAHEAD):
        if shift.member not in current and shift.member not in upcoming:
            upcoming.append(shift.member)
    return upcoming[walk % len(upcoming)] if upcoming else None


def member_notify(team: Team, member: str) -> Notify | None:
    """``member`` of ``team`` with their notify URIs; None when unknown or unreachable."""
    staff = team.staff.get(member)
    if staff is None or not staff.notify:
        return None
    return Notify(member=member, name=staff.name, uris=list(staff.notify), chatwoot_agent=staff.chatwoot_agent)


def _reach(link: EscalationLink, walk: int, pending: PendingEscalation, team: Team, now: datetime) -> tuple[Notify, ...]:
    if link.kind == "channel":
        return (Notify(member="", name="escalation channel", uris=[link.target or ""]),)
    member = next_on_call(team, now, walk) if link.kind == "next_on_call" else link.target
    notify = None if member is None else member_notify(team, member)
    return () if notify is None else (notify,)


# -- reply windows ----------------------------------------------------------------


def reply_mechanism(channel: str, kind: str | None, last_customer_at: datetime, at: datetime) -> ReplyMechanism:
    """How a human reply sent at ``at`` reaches the customer (windows: :mod:`records.platforms`).

    ``free_form`` inside the reply window (or on a platform without one);
    ``public_reply`` for a Facebook/Instagram comment after its 7-day private-reply
    window; ``human_agent`` on Facebook/Instagram after the 24 h window, up to 7 days;
    ``template`` on WhatsApp after it; ``none`` on Facebook/Instagram after 7 days
    (wait for the customer to write again).
    """
    standard = window_closes(channel, kind, last_customer_at)
    if standard is None or at < standard:
        return "free_form"
    if is_private_reply(channel, kind or "dm"):
        return "public_reply"
    if channel == "whatsapp":
        return "template"
    human = window_closes(channel, kind, last_customer_at, human_agent=True)
    return "human_agent" if human is not None and at < human else "none"


def early_route_at(
    team: Team, channel: str, kind: str | None, last_customer_at: datetime, now: datetime, margin: timedelta
) -> datetime | None:
    """When to route a waiting conversation to on-call staff so it is answered in its window.

    The route is due ``margin`` before the reply window closes, so staff have ``margin``
    to answer. None when no route is needed: the platform has no window, the window has
    already closed, or the team is open at some instant from ``now`` to that time (its
    inbox will answer in time).
    """
    deadline = window_closes(channel, kind, last_customer_at)
    if deadline is None or now >= deadline:
        return None
    route_at = deadline - margin
    coverage = team.at(now)
    if coverage.next_open is not None and coverage.next_open <= max(route_at, now):
        return None
    return route_at


def next_early_route_at(
    team: Team, channel: str, kind: str | None, last_customer_at: datetime, now: datetime, margin: timedelta
) -> datetime | None:
    """The first instant at or after ``now`` at which :func:`needs_early_route` could be true
    (``now`` itself when it is); None when it never is again for this message.

    Before ``margin`` ahead of the window's close that is that instant; from it until
    the window closes the route is needed whenever the team is not open, so while it
    is open the answer is the end of the open stretch (None when that comes only after
    the window closed). The due-time index of the sweeps (``streams/due_index.py``)
    waits for it instead of asking at every sweep.
    """
    deadline = window_closes(channel, kind, last_customer_at)
    if deadline is None or now >= deadline:
        return None
    route_at = deadline - margin
    if now < route_at:
        return route_at
    if needs_early_route(team, channel, kind, last_customer_at, now, margin):
        return now
    until = team.at(now).until
    return until if until is not None and until < deadline else None


def needs_early_route(
    team: Team, channel: str, kind: str | None, last_customer_at: datetime, now: datetime, margin: timedelta
) -> bool:
    """True when the conversation must be routed now to be answered inside its window.

    That is when the next opening falls after the window closes minus ``margin`` and
    ``now`` is past that instant (but before the window closes).
    """
    route_at = early_route_at(team, channel, kind, last_customer_at, now, margin)
    return route_at is not None and route_at <= now


# -- handover at opening ----------------------------------------------------------


def next_opening(team: Team, after: datetime) -> datetime | None:
    """The first transition to ``open`` strictly after ``after``, or None within 400 days."""
    coverage = team.at(after)
    if coverage.mode != "open":
        return coverage.next_open
    if coverage.until is None:
        return None
    return team.at(coverage.until).next_open


def openings(team: Team, start: datetime, end: datetime) -> list[datetime]:
    """Every transition to ``open`` in ``[start, end)``, aware in the team's zone.

    A transition is an instant whose mode is ``open`` while the instant before is not;
    adjacent open stretches (across days, rules and overrides) merge, so they count
    once. Boundaries follow the engine's daylight-saving policy
    (:meth:`schedules.WallTime.to_instant`): an opening inside a spring-forward gap
    happens at the end of the gap; one at an ambiguous fall-back time at its first
    occurrence.
    """
    stretches = team.stretches(start - timedelta(seconds=1), end)
    return [stretch.start for stretch in stretches[1:] if stretch.mode == "open"]


@dataclass(frozen=True, slots=True)
class BacklogItem:
    """A conversation waiting off hours for the team, as the handover sees it.

    ``waiting_since`` is the customer's first unanswered message; ``ack_text`` and
    ``reply_by`` are what the customer was promised (None when not acknowledged since
    they started waiting). ``kind``, ``account``, ``author_name`` and ``text`` are the
    latest message's (None when unknown). ``link`` is a ready link to the conversation,
    None when the notifier makes it (the claim link). ``followers`` is carried from the
    event but never used to order or select. ``desk`` is the conversation's care-desk
    block (README "Events"), None for a platform's conversation.
    """

    conversation: str
    channel: str
    waiting_since: datetime
    urgent: bool = False
    ack_text: str | None = None
    reply_by: datetime | None = None
    link: str | None = None
    followers: int | None = None
    kind: str | None = None
    account: str | None = None
    author_name: str | None = None
    text: str | None = None
    desk: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One line of the handover digest; the conversation becomes ``queue`` for the inbox."""

    conversation: str
    channel: str
    urgent: bool
    waited: timedelta
    promised: str | None
    reply_by: datetime | None
    link: str | None
    action: Literal["queue"] = "queue"
    waiting_since: datetime | None = None
    kind: str | None = None
    account: str | None = None
    author_name: str | None = None
    text: str | None = None
    desk: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    """The off-hours backlog handed to the team at an opening, urgent first."""

    team: str
    opening_at: datetime
    items: tuple[DigestItem, ...]

    @property
    def id(self) -> str:
        """``handover:<team>:<opening POSIX seconds>``: one digest per team and opening."""
        return f"handover:{self.team}:{_seconds(self.opening_at)}"

    def text(self) -> str:
        """A plain-text summary (one line per conversation, its link when it has one); the
        notifiers render the digest from the route's items (:mod:`responders.notice`)."""
        noun = "conversation" if len(self.items) == 1 else "conversations"
        lines = [f"Handover {self.opening_at.isoformat(timespec='minutes')}: {len(self.items)} {noun} waiting for {self.team}"]
        for item in self.items:
            minutes = int(item.waited.total_seconds() // 60)
            promise = (f"promised a reply by {item.reply_by.isoformat(timespec='minutes')}" if item.reply_by
                       else "no reply time promised")
            mark = "URGENT " if item.urgent else ""
            link = f" {item.link}" if item.link else ""
            lines.append(f"- {mark}{item.channel} {item.conversation}: waited {minutes // 60}h{minutes % 60:02d}, {promise}{link}")
        return "\n".join(lines)


def handover_digest(team: Team, backlog_items: Iterable[BacklogItem], opening_at: datetime) -> Digest:
    """The handover digest for ``team`` at ``opening_at``.

    Order: urgent first, then longest waiting (earliest ``waiting_since``), then by
    conversation id so that equal items keep a stable order. Followers are never read.
    """
    ordered = sorted(backlog_items, key=lambda item: (not item.urgent, item.waiting_since, item.conversation))
    zone = team.timezone
    return Digest(
        team=team.id,
        opening_at=opening_at.astimezone(zone),
        items=tuple(
            DigestItem(
                conversation=item.conversation,
                channel=item.channel,
                urgent=item.urgent,
                waited=max(opening_at - item.waiting_since, timedelta(0)),
                promised=item.ack_text,
                reply_by=None if item.reply_by is None else item.reply_by.astimezone(zone),
                link=item.link,
                waiting_since=item.waiting_since.astimezone(zone),
                kind=item.kind,
                account=item.account,
                author_name=item.author_name,
                text=item.text,
                desk=item.desk,
            )
            for item in ordered
        ),
    )


# -- follow-through -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What follow-through knows about one open conversation.

    ``reply_by`` is the time promised in its acknowledgment (None: no promise);
    ``staff_replied_at`` the first staff reply after it; ``claimed_by``/``claimed_at``
    who claimed it and when; ``answered`` ends all follow-through. ``sent`` holds the
    reminder ids already sent, so a sweep sends each once.
    """

    conversation: str
    team: str
    event_id: str
    mode: str
    acknowledged_at: datetime | None = None
    reply_by: datetime | None = None
    staff_replied_at: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    answered: bool = False
    sent: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder to send, and the breach or escalation it records.

    ``kind`` ``reply_by``: the promised reply time passed without a staff reply; ``to``
    is the staff on call, or empty for the team's inbox; ``breach`` is True.
    ``claim``: a claim went unanswered within the team's ``claim_limit``; ``to`` is the
    claimer and ``escalation`` the pending escalation that continues the chain.
    """

    id: str
    kind: ReminderKind
    conversation: str
    team: str
    due: datetime
    to: tuple[str, ...]
    breach: bool = False
    escalation: PendingEscalation | None = None


def overdue(conversations: Iterable[FollowUp], teams: Mapping[str, Team], now: datetime) -> list[Reminder]:
    """The reminders due at ``now`` that have not been sent, ordered by due time.

    * Acknowledged, no staff reply by ``reply_by``: a ``reply_by`` reminder to the staff
      on call (the team's inbox when nobody is), and a breach.
    * Claimed, no staff reply within the team's ``escalation.claim_limit`` of the claim:
      a ``claim`` reminder to the claimer, which starts an escalation (the team's chain
      for the conversation's mode, from the reminder's due time).

    Conversations of a team not in ``teams`` are skipped (the coverage dropped it).
    """
    found: list[Reminder] = []
    for follow_up in conversations:
        team = teams.get(follow_up.team)
        if team is None or follow_up.answered:
            continue
        for reminder in _reminders(follow_up, team, now):
            if reminder.id not in follow_up.sent:
                found.append(reminder)
    return sorted(found, key=lambda reminder: (reminder.due, reminder.id))


def next_reminder_at(follow_up: FollowUp, team: Team) -> datetime | None:
    """When the first reminder of ``follow_up`` not yet sent falls due (perhaps already
    passed); None when none ever will (answered, replied in time, all sent).

    The same conditions as :func:`overdue`, without the instant: a reminder's due time
    depends only on the conversation and the team's ``claim_limit``. The due-time index
    of the sweeps (``streams/due_index.py``) waits for it.
    """
    if follow_up.answered:
        return None
    found: list[datetime] = []
    reply_by = follow_up.reply_by
    if (follow_up.acknowledged_at is not None and reply_by is not None and not _replied_by(follow_up, reply_by)
            and f"remind:reply_by:{follow_up.conversation}:{_seconds(reply_by)}" not in follow_up.sent):
        found.append(reply_by)
    if follow_up.claimed_by is not None and follow_up.claimed_at is not None:
        due = follow_up.claimed_at + team.escalation.claim_limit
        if not _replied_by(follow_up, due) and f"remind:claim:{follow_up.conversation}:{_seconds(due)}" not in follow_up.sent:
            found.append(due)
    return min(found, default=None)


def _replied_by(follow_up: FollowUp, deadline: datetime) -> bool:
    return follow_up.staff_replied_at is not None and follow_up.staff_replied_at <= deadline


def _reminders(follow_up: FollowUp, team: Team, now: datetime) -> list[Reminder]:
    found: list[Reminder] = []
    reply_by = follow_up.reply_by
    if follow_up.acknowledged_at is not None and reply_by is not None and reply_by <= now and not _replied_by(follow_up, reply_by):
        found.append(
            Reminder(
                id=f"remind:reply_by:{follow_up.conversation}:{_seconds(reply_by)}",
                kind="reply_by",
                conversation=follow_up.conversation,
                team=follow_up.team,
                due=reply_by,
                to=team.on_call_at(now),
                breach=True,
            )
        )
    if follow_up.claimed_by is not None and follow_up.claimed_at is not None:
        due = follow_up.claimed_at + team.escalation.claim_limit
        if due <= now and not _replied_by(follow_up, due):
            found.append(
                Reminder(
                    id=f"remind:claim:{follow_up.conversation}:{_seconds(due)}",
                    kind="claim",
                    conversation=follow_up.conversation,
                    team=follow_up.team,
                    due=due,
                    to=(follow_up.claimed_by,),
                    escalation=PendingEscalation(
                        event_id=follow_up.event_id,
                        team=follow_up.team,
                        conversation=follow_up.conversation,
                        mode=follow_up.mode,
                        routed_at=due,
                        routed_to=(follow_up.claimed_by,),
                    ),
                )
            )
    return found


# -- first-response SLA -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseSummary:
    """First-response times of one team and mode: count, percentiles and breaches."""

    count: int
    p50: timedelta | None
    p90: timedelta | None
    p99: timedelta | None
    breaches: int


@dataclass(frozen=True, slots=True)
class FirstResponseStats:
    """Recent first-response durations (customer message to first ``agent_reply``).

    A bounded reservoir per ``(team, mode)``: the latest ``limit`` samples, and only
    those within ``window`` of the newest one (the clock is the samples' own time).
    Immutable: :meth:`record` returns the new stats, to store in a table.
    """

    samples: Mapping[tuple[str, str], tuple[tuple[int, int], ...]] = field(default_factory=dict)
    limit: int = 500
    window: timedelta = timedelta(days=28)

    def record(self, team: str, mode: str, customer_at: datetime, replied_at: datetime) -> FirstResponseStats:
        """These stats with one first response added (``mode`` is that at ``customer_at``)."""
        duration = max(_seconds(replied_at) - _seconds(customer_at), 0)
        at = _seconds(replied_at)
        kept = [sample for sample in self.samples.get((team, mode), ()) if sample[0] > at - self.window.total_seconds()]
        insort(kept, (at, duration))
        samples = dict(self.samples)
        samples[(team, mode)] = tuple(kept[-self.limit:])
        return replace(self, samples=samples)

    def durations(self, team: str, mode: str) -> list[int]:
        """The kept durations of ``team`` and ``mode`` in seconds, sorted."""
        return sorted(duration for _, duration in self.samples.get((team, mode), ()))

    def percentile(self, team: str, mode: str, q: float) -> timedelta | None:
        """The ``q``-th percentile (nearest rank, 0 < q <= 100), or None without samples."""
        durations = self.durations(team, mode)
        if not durations:
            return None
        rank = max(-(-len(durations) * q // 100), 1)
        return timedelta(seconds=durations[int(rank) - 1])

    def summary(self, team: str, mode: str, target: timedelta | None = None) -> ResponseSummary:
        """Count, p50/p90/p99 and how many responses took longer than ``target``."""
        durations = self.durations(team, mode)
        limit = None if target is None else target.total_seconds()
        return ResponseSummary(
            count=len(durations),
            p50=self.percentile(team, mode, 50),
            p90=self.percentile(team, mode, 90),
            p99=self.percentile(team, mode, 99),
            breaches=0 if limit is None else sum(1 for duration in durations if duration > limit),
        )

    def to_bytes(self) -> bytes:
        """The table's wire form (JSON)."""
        return exact_json(
            {
                "limit": self.limit,
                "window": int(self.window.total_seconds()),
                "samples": [[team, mode, [list(s) for s in kept]] for (team, mode), kept in self.samples.items()],
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> FirstResponseStats:
        """Read :meth:`to_bytes` output back."""
        data = orjson.loads(raw)
        return cls(
            samples={(team, mode): tuple((at, d) for at, d in kept) for team, mode, kept in data["samples"]},
            limit=data["limit"],
            window=timedelta(seconds=data["window"]),
        )


MIN_SAMPLES = 20
"""Fewer first responses than this and the configured reply time is promised instead."""


def promised_reply_within(
    stats: FirstResponseStats,
    team: Team,
    mode: str,
    coverage_at: CoverageAt,
    configured: timedelta,
    *,
    min_samples: int = MIN_SAMPLES,
) -> timedelta:
    """How long after ``coverage_at.at`` an acknowledgment promises a human reply.

    The recent median first response of ``team`` in ``mode`` (``configured`` when there
    are fewer than ``min_samples``), capped by the mode's first-response target, then
    floored by the schedule: when the team is closed the promise is never earlier than
    its next opening (nobody is there before). The schedule wins
    over the target: an honest promise beats a met target. With no opening within 400
    days the capped value stands.
    """
    median = stats.percentile(team.id, mode, 50) if len(stats.durations(team.id, mode)) >= min_samples else None
    within = configured if median is None else median
    target = team.escalation.target_for(mode)
    if target is not None:
        within = min(within, target)
    if coverage_at.mode == "closed" and coverage_at.next_open is not None:
        within = max(within, coverage_at.next_open - coverage_at.at)
    return within
