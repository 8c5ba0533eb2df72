"""The delivery loop: at most one acknowledgment per customer message, bounded retries.

Plain asyncio, no Faust. :class:`DeliveryLoop` delivers one keyed message:

1. it consults the :class:`Ledger` — a key already ``delivered`` (or ``dead``) is never
   sent again, so a redelivered outbox record costs no HTTP call;
2. it reserves a token from every rate-limit bucket the send counts against and
   sleeps (through the injected ``sleep``) until the buckets allow it;
3. it marks the key ``sending``, makes one attempt through the adapter, and records
   the result: ``delivered``; ``retrying`` after a :class:`~responders.base.Retry`,
   then sleeps the platform's requested wait or an exponential backoff with jitter
   (:class:`RetryPolicy`) and tries again; ``dead`` after a
   :class:`~responders.base.Permanent` or after ``max_attempts`` — with a dead letter
   saying why.

Every outcome is observable: :class:`Responders` hands one :class:`DeliveryOutcome` to
its ``publish`` sink per attempt (``delivered``, ``retry`` or ``permanent``) and one
more (``dead``) when a delivery is given up, whatever the cause (permanent failure,
exhausted retries, outcome unknown, no adapter). A ledger skip publishes nothing: no
attempt was made.

:class:`Responders` applies the loop to the two outboxes: an acknowledgment
(:class:`~records.wire.AckRequest`) goes to the channel's sender, and a dead
acknowledgment is escalated so that a human answers the customer (a comment answered
both privately and in public is two deliveries, see :meth:`Responders.acknowledge`); a route
(:class:`~records.wire.RouteRequest`) goes to every ``notify`` URI of every staff
member in ``to``, each one keyed and retried on its own.

Crash window (which side we chose)
----------------------------------
The ledger and the platform cannot be updated atomically. Between the HTTP request
leaving and ``delivered`` being durable in the ledger (for the Faust table: its
changelog record written), a crash leaves the key ``sending`` (or, if even that mark
was not yet durable, absent) and the outbox record is redelivered:

- **acknowledgments choose at most once**: a key found ``sending`` is not sent again;
  it is dead-lettered as "outcome unknown" and escalated to staff, who see whether the
  customer got it. A customer never receives the same automated acknowledgment twice
  from this path; the price is that an acknowledgment lost in that window is replaced
  by a human follow-up. If the crash also lost the ``sending`` mark (it is written
  just before the request, but the changelog write is asynchronous), the send is
  repeated: that narrower window is the one left open.
- **acknowledgments through a care desk** (:mod:`responders.desk`) close that window:
  a key found ``sending`` is sent again, and the desk finds the earlier attempt by the
  marker it carries, so it is posted once either way.
- **staff notifications choose at least once**: a key found ``sending`` is sent again.
  A duplicate page is a nuisance; a lost one leaves a customer unanswered. Generic
  webhooks carry a stable ``Idempotency-Key`` so receivers can drop the repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, Protocol

import aiohttp
import orjson

from promises.routes import is_release
from records.stored import exact_json
from records.wire import AckRequest, Notify, RouteRequest

from .base import (
    Clock,
    Delivered,
    Limit,
    Outcome,
    Permanent,
    Retry,
    fingerprint,
    utc_from_epoch,
)
from .buckets import TokenBuckets
from .config import ResponderSettings
from .desk import DeskWrite, acts_in_desk, desk_kind, hands_over_in_desk
from .notice import Notice
from .registry import Registry

log = logging.getLogger(__name__)

SENDING = "sending"
RETRYING = "retrying"
DELIVERED = "delivered"
DEAD = "dead"

Sleep = Callable[[float], Awaitable[None]]
DeadLetterSink = Callable[[bytes, str, str], Awaitable[None]]
"""``(raw request JSON, source outbox ("acks" or "routes"), reason)``."""
Escalate = Callable[[AckRequest, str], Awaitable[None]]
"""Hands a customer message whose acknowledgment failed to on-call staff, with the reason."""
ClaimLink = Callable[[RouteRequest, Notify], str | None]
Observe = Callable[[int, Outcome], Awaitable[None]]
"""Called after each attempt with its number (1-based) and its outcome."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """One outcome of one delivery: a record of the deliveries topic (audit, first-response timing).

    ``id`` is the ledger key (the ack id, ``<ack id>:public`` for the public reply under a
    comment, or a notice key whose URI part is hashed);
    ``kind`` is ``ack`` (to a customer) or ``notice`` (to staff); ``channel`` is the
    customer's channel for an ack, the notify scheme (``slack``, ``mailto``…) for a
    notice; ``status`` is ``delivered``, ``retry`` or ``permanent`` for one attempt
    and ``dead`` when the delivery is given up; ``attempt`` is the attempt's number
    (for ``dead``, the attempts made); ``message_id`` is the platform's id of a
    delivered message when it gives one; ``at`` is the responders' clock, ISO 8601 UTC.
    ``event_id``, ``team`` and ``conversation`` tie the outcome to the customer message.
    """

    id: str
    kind: Literal["ack", "notice"]
    channel: str
    status: Literal["delivered", "retry", "permanent", "dead"]
    attempt: int
    message_id: str | None
    reason: str
    at: str
    event_id: str
    team: str
    conversation: str

    def to_json(self) -> bytes:
        return exact_json(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeliveryOutcome:
        return cls(**orjson.loads(raw))


Publish = Callable[[DeliveryOutcome], Awaitable[None]]
"""Where :class:`Responders` hands every :class:`DeliveryOutcome`."""
Notified = Callable[[Notice, "Report"], None]
"""Told of each staff notification once its delivery ended (the metrics count it)."""


class Ledger(Protocol):
    """Delivery status by key (``sending``, ``retrying``, ``delivered``, ``dead``)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, status: str) -> None: ...


class MemoryLedger:
    """A ledger in a dict: for tests and one-shot runs (the service uses a Faust table)."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.statuses.get(key)

    def set(self, key: str, status: str) -> None:
        self.statuses[key] = status


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries: exponential backoff with jitter, honouring the platform's wait.

    The n-th retry waits ``min(backoff_max, backoff_base * 2**(n-1))`` scaled by a
    jitter factor in ``[0.5, 1.0]``; when the platform asked for a wait, the larger of
    the two, clamped to ``retry_after_max``. After ``max_attempts`` sends, give up.
    """

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 120.0
    retry_after_max: float = 900.0

    @classmethod
    def from_settings(cls, settings: ResponderSettings) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            retry_after_max=settings.retry_after_max,
        )

    def delay(self, attempt: int, requested: float | None, jitter: float) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based); ``jitter`` in [0, 1)."""
        backoff = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * (0.5 + jitter / 2)
        if requested is None:
            return backoff
        return min(max(requested, backoff), self.retry_after_max)


@dataclass(frozen=True, slots=True)
class Report:
    """What happened to one keyed delivery: ``delivered``, ``dead`` or ``skipped`` (ledger)."""

    key: str
    status: Literal["delivered", "dead", "skipped"]
    attempts: int
    reason: str = ""
    outcome: Outcome | None = None


@dataclass(slots=True)
class _KeyTurn:
    """The deliveries of one key in flight: they take turns on ``lock``."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0


class DeliveryLoop:
    """Delivers keyed messages through the ledger, the rate limits and the retry policy."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        policy: RetryPolicy,
        buckets: TokenBuckets,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float],
    ) -> None:
        self.ledger = ledger
        self.policy = policy
        self.buckets = buckets
        self._sleep = sleep
        self._jitter = jitter
        self._in_flight: dict[str, _KeyTurn] = {}

    async def deliver(
        self,
        key: str,
        limits: Sequence[Limit],
        attempt: Callable[[], Awaitable[Outcome]],
        *,
        repeat_unknown: bool,
        observe: Observe | None = None,
    ) -> Report:
        """Deliver ``key`` once (see the module docstring); never raises for a send failure.

        ``repeat_unknown`` says what to do with a key left ``sending`` by a crash:
        send again (True) or give it up as "outcome unknown" (False). ``observe`` is
        awaited after each attempt, once its result is in the ledger.

        Deliveries run concurrently (the outbox agents' concurrency); two of the same
        ``key`` (a record redelivered while its first copy is still being sent) run one
        after the other, so the second finds the first's outcome in the ledger.
        """
        turn = self._in_flight.get(key)
        if turn is None:
            turn = self._in_flight[key] = _KeyTurn()
        turn.holders += 1
        try:
            async with turn.lock:
                return await self._deliver(key, limits, attempt, repeat_unknown=repeat_unknown, observe=observe)
        finally:
            turn.holders -= 1
            if turn.holders == 0:
                del self._in_flight[key]

    async def _deliver(
        self,
        key: str,
        limits: Sequence[Limit],
        attempt: Callable[[], Awaitable[Outcome]],
        *,
        repeat_unknown: bool,
        observe: Observe | None,
    ) -> Report:
        status = self.ledger.get(key)
        if status == DELIVERED:
            return Report(key, "skipped", 0, "already delivered")
        if status == DEAD:
            return Report(key, "skipped", 0, "already dead-lettered")
        if status == SENDING and not repeat_unknown:
            self.ledger.set(key, DEAD)
            return Report(key, "dead", 0, "outcome unknown: a previous attempt may have been sent")
        last: Outcome | None = None
        for number in range(1, self.policy.max_attempts + 1):
            wait = self.buckets.reserve(limits)
            if wait > 0:
                await self._sleep(wait)
            self.ledger.set(key, SENDING)
            last = await self._attempt(attempt)
            if isinstance(last, Delivered):
                self.ledger.set(key, DELIVERED)
                await _observed(observe, number, last)
                return Report(key, "delivered", number, outcome=last)
            if isinstance(last, Permanent):
                self.ledger.set(key, DEAD)
                if last.alert_operations:
                    log.error("delivery %s: alert operations: %s", key, last.reason)
                await _observed(observe, number, last)
                return Report(key, "dead", number, last.reason, last)
            self.ledger.set(key, RETRYING)
            await _observed(observe, number, last)
            if number < self.policy.max_attempts:
                delay = self.policy.delay(number, last.after, self._jitter())
                log.info("delivery %s: retry in %.1f s (%s)", key, delay, last.reason)
                await self._sleep(delay)
        self.ledger.set(key, DEAD)
        reason = last.reason if last is not None else "no attempt"
        attempts = self.policy.max_attempts
        return Report(key, "dead", attempts, f"gave up after {attempts} attempts: {reason}", last)

    @staticmethod
    async def _attempt(attempt: Callable[[], Awaitable[Outcome]]) -> Outcome:
        try:
            return await attempt()
        except Exception as exc:  # an adapter bug must not kill the loop; the bound still applies
            log.error("adapter raised %s", type(exc).__name__)
            return Retry(None, f"adapter error ({type(exc).__name__})")


async def _observed(observe: Observe | None, number: int, outcome: Outcome) -> None:
    if observe is not None:
        await observe(number, outcome)


class Responders:
    """Delivers the two outboxes: acknowledgments to customers, routes to staff.

    With ``publish`` every attempt and every give-up is a :class:`DeliveryOutcome`
    (see the module docstring); ``notified`` is told of each staff notification and its
    :class:`Report` (``delivered``, ``dead`` or ``skipped``) when its delivery ends.
    """

    def __init__(
        self,
        *,
        registry: Registry,
        loop: DeliveryLoop,
        session: aiohttp.ClientSession,
        clock: Clock,
        dead_letter: DeadLetterSink,
        escalate: Escalate | None = None,
        claim_link: ClaimLink | None = None,
        publish: Publish | None = None,
        notified: Notified | None = None,
    ) -> None:
        self.registry = registry
        self._notified = notified
        self.loop = loop
        self._session = session
        self._clock = clock
        self._dead_letter = dead_letter
        self._escalate = escalate
        self._claim_link = claim_link
        self._publish = publish

    async def acknowledge(self, request: AckRequest) -> Report:
        """Send one acknowledgment at most once; a dead one is dead-lettered and escalated.

        A request with ``private_text`` (a Facebook/Instagram comment whose team also
        wants a public reply) is two deliveries, each at most once under its own ledger
        key: first the private reply (key ``ack_id``, text ``private_text``), then the
        public reply under the comment (key ``ack_id + ":public"``, text ``text``). The
        public reply is sent whatever became of the private one: it stands on its own
        (it invites the customer to write privately and says when a person answers).

        A dead private reply is dead-lettered and escalated as any acknowledgment. A
        dead public reply is only dead-lettered, its reason prefixed ``public reply:``:
        the customer got the private reply, or staff were already asked to answer.
        The report returned is the private reply's (the acknowledgment proper), so the
        caller counts one acknowledgment per customer message.

        A request whose ``desk`` block names a desk offhours drives (Chatwoot) is
        acknowledged through that desk instead (:meth:`_desk_acknowledge`,
        :mod:`responders.desk`); any other ``desk`` key is ignored.
        """
        if acts_in_desk(request.desk):
            return await self._desk_acknowledge(request)
        if request.private_text is None:
            return await self._acknowledge_once(request, request.ack_id, escalate=True)
        private, public = split_comment_replies(request)
        report = await self._acknowledge_once(private, request.ack_id, escalate=True)
        await self._acknowledge_once(
            public, public_reply_key(request.ack_id), escalate=False, reason_prefix="public reply: "
        )
        return report

    async def _acknowledge_once(
        self, request: AckRequest, key: str, *, escalate: bool, reason_prefix: str = ""
    ) -> Report:
        sender = self.registry.senders.get(request.channel)
        observe = self._observer(
            key, "ack", request.channel, request.event_id, request.team, request.conversation
        )
        if sender is None:
            reason = f"no sender for channel {request.channel!r}"
            report = await self.loop.deliver(
                key, (), lambda: _refuse(reason), repeat_unknown=False, observe=observe
            )
        else:
            report = await self.loop.deliver(
                key,
                sender.limits(request),
                lambda: sender.send(request, self._session),
                repeat_unknown=False,
                observe=observe,
            )
        if report.status == "dead":
            await self._given_up(observe, report)
            await self._dead_letter(request.to_json(), "acks", reason_prefix + report.reason)
            if escalate and self._escalate is not None:
                await self._escalate(request, report.reason)
        return report

    async def _desk_acknowledge(self, request: AckRequest) -> Report:
        """An acknowledgment through the request's desk (:mod:`responders.desk`).

        The message is posted under the ack id (so the ledger counts it as the
        acknowledgment); a key left ``sending`` by a crash is tried again, since the desk
        finds the earlier attempt by its marker and never posts twice. Once delivered, the
        conversation is labelled. Given up, it is dead-lettered and escalated as any
        acknowledgment; when the desk could not reply on the channel, a private note says
        what would have been sent and why not, first.
        """
        actions = self.registry.desks.get(desk_kind(request.desk) or "")
        observe = self._observer(
            request.ack_id, "ack", request.channel, request.event_id, request.team, request.conversation
        )
        if actions is None:  # a registry built without its desks
            reason = f"no desk for desk kind {desk_kind(request.desk)!r}"
            report = await self.loop.deliver(
                request.ack_id, (), lambda: _refuse(reason), repeat_unknown=False, observe=observe
            )
        else:
            write = actions.acknowledgment(request)
            report = await self.loop.deliver(
                write.key, write.limits, lambda: write.send(self._session), repeat_unknown=True, observe=observe
            )
            if report.status == "delivered":
                await self._desk_write(actions.labels(request), request.to_json(), "acks", request)
            elif report.status == "dead" and actions.window_closed(report.outcome):
                await self._desk_write(
                    actions.window_closed_note(request, report.reason), request.to_json(), "acks", request
                )
        if report.status == "dead":
            await self._given_up(observe, report)
            await self._dead_letter(request.to_json(), "acks", report.reason)
            if self._escalate is not None:
                await self._escalate(request, report.reason)
        return report

    async def _desk_write(
        self, write: DeskWrite, raw: bytes, source: str, request: AckRequest | RouteRequest
    ) -> Report:
        """One desk write other than the acknowledgment, delivered on its own key; a write
        given up is dead-lettered (``desk <what>: <reason>``). Staff-facing: ``notice`` outcomes."""
        observe = self._observer(
            write.key, "notice", "chatwoot", request.event_id, request.team,
            request.conversation if write.conversation is None else write.conversation,
        )
        report = await self.loop.deliver(
            write.key, write.limits, lambda: write.send(self._session), repeat_unknown=True, observe=observe
        )
        if report.status == "dead":
            await self._given_up(observe, report)
            await self._dead_letter(raw, source, f"desk {write.what}: {report.reason}")
        return report

    async def _desk_route(self, request: RouteRequest) -> list[Report]:
        """A route's desk writes (note, assignment, priority), one after the other; a
        handover digest's, conversation after conversation in the digest's order."""
        raw = request.to_json()
        if request.handover:
            writes = [write for actions in self.registry.desks.values() for write in actions.handover(request)]
        else:
            actions = self.registry.desks.get(desk_kind(request.desk) or "")
            writes = [] if actions is None else actions.route(request)
        return [await self._desk_write(write, raw, "routes", request) for write in writes]

    async def route(self, request: RouteRequest) -> list[Report]:
        """Notify every ``notify`` URI of every member in ``to``, each delivered on its own.

        A route with a ``desk`` block also acts in that desk (:mod:`responders.desk`),
        beside the notices; so does a handover digest with desk conversations (it assigns
        them). The desk's reports come first. A release (a held conversation set
        ``open``, :func:`promises.routes.release_route`) is a desk write only.
        """
        if not acts_in_desk(request.desk) and not hands_over_in_desk(request):
            return await self._notify_all(request)
        if is_release(request):  # a held conversation released in the desk: nobody to notify
            return await self._desk_route(request)
        desk, notices = await asyncio.gather(self._desk_route(request), self._notify_all(request))
        return [*desk, *notices]

    async def _notify_all(self, request: RouteRequest) -> list[Report]:
        if not request.to:
            await self._dead_letter(request.to_json(), "routes", "no staff to notify")
            return [Report(request.route_id, "dead", 0, "no staff to notify")]
        now = utc_from_epoch(self._clock())
        jobs = [
            self._notify(request, member, uri, now) for member in request.to for uri in member.uris
        ]
        if not jobs:
            await self._dead_letter(request.to_json(), "routes", "no notify URI for any member")
            return [Report(request.route_id, "dead", 0, "no notify URI for any member")]
        return list(await asyncio.gather(*jobs))

    async def _notify(
        self, request: RouteRequest, member: Notify, uri: str, now: datetime
    ) -> Report:
        notice = Notice(
            route=request, member=member, uri=uri, now=now,
            claim_url=self._link(request, request.conversation, member),
            links=self._digest_links(request, member),
        )
        key = notice_key(notice)
        notifier = self.registry.notifiers.get(notice.scheme)
        observe = self._observer(
            key, "notice", notice.scheme, request.event_id, request.team, request.conversation
        )
        if notifier is None:
            reason = f"no notifier for scheme {notice.scheme!r}"
            report = await self.loop.deliver(
                key, (), lambda: _refuse(reason), repeat_unknown=True, observe=observe
            )
        else:
            report = await self.loop.deliver(
                key,
                notifier.limits(notice),
                lambda: notifier.send(notice, self._session),
                repeat_unknown=True,
                observe=observe,
            )
        if report.status == "dead":
            await self._given_up(observe, report)
            reason = f"notify {member.member} via {notice.scheme}: {report.reason}"
            await self._dead_letter(request.to_json(), "routes", reason)
        if self._notified is not None:
            self._notified(notice, report)
        return report

    def _link(self, request: RouteRequest, conversation: str, member: Notify) -> str | None:
        """The claim link of ``conversation`` for ``member``, or None (no signer, no conversation)."""
        if self._claim_link is None or not conversation:
            return None
        if conversation != request.conversation:
            request = replace(request, conversation=conversation)
        return self._claim_link(request, member)

    def _digest_links(self, request: RouteRequest, member: Notify) -> dict[str, str]:
        """A claim link per conversation of a handover digest (none for other routes)."""
        links: dict[str, str] = {}
        for item in request.extra.get("handover", ()):
            conversation = item.get("conversation", "") if isinstance(item, dict) else ""
            link = self._link(request, conversation, member)
            if link is not None:
                links[conversation] = link
        return links


    def _observer(
        self,
        key: str,
        kind: Literal["ack", "notice"],
        channel: str,
        event_id: str,
        team: str,
        conversation: str,
    ) -> _Observer | None:
        if self._publish is None:
            return None
        return _Observer(
            self._publish, self._clock, key, kind, channel, event_id, team, conversation
        )

    @staticmethod
    async def _given_up(observer: _Observer | None, report: Report) -> None:
        if observer is not None:
            await observer.dead(report)


@dataclass(frozen=True, slots=True)
class _Observer:
    """Turns the attempts of one delivery into :class:`DeliveryOutcome` records."""

    publish: Publish
    clock: Clock
    key: str
    kind: Literal["ack", "notice"]
    channel: str
    event_id: str
    team: str
    conversation: str

    async def __call__(self, number: int, outcome: Outcome) -> None:
        if isinstance(outcome, Delivered):
            await self._emit("delivered", number, "", outcome.message_id)
        elif isinstance(outcome, Permanent):
            await self._emit("permanent", number, outcome.reason)
        else:
            await self._emit("retry", number, outcome.reason)

    async def dead(self, report: Report) -> None:
        await self._emit("dead", report.attempts, report.reason)

    async def _emit(
        self,
        status: Literal["delivered", "retry", "permanent", "dead"],
        attempt: int,
        reason: str,
        message_id: str | None = None,
    ) -> None:
        await self.publish(
            DeliveryOutcome(
                id=self.key,
                kind=self.kind,
                channel=self.channel,
                status=status,
                attempt=attempt,
                message_id=message_id,
                reason=reason,
                at=utc_from_epoch(self.clock()).isoformat(),
                event_id=self.event_id,
                team=self.team,
                conversation=self.conversation,
            )
        )


async def _refuse(reason: str) -> Outcome:
    """The outcome of a message that no adapter can send (unknown channel or scheme)."""
    return Permanent(reason, alert_operations=True)


def public_reply_key(ack_id: str) -> str:
    """The ledger key of the public reply that goes with the private reply ``ack_id``."""
    return f"{ack_id}:public"


def split_comment_replies(request: AckRequest) -> tuple[AckRequest, AckRequest]:
    """A request with ``private_text`` as its two replies: ``(private, public)``.

    Neither part carries ``private_text``, so each one alone is an ordinary
    acknowledgment: the private reply (``public`` False) and the public one (True).
    Raises ``ValueError`` for a request without ``private_text``.
    """
    if request.private_text is None:
        raise ValueError(f"{request.ack_id}: no private reply to split off")
    private = replace(request, text=request.private_text, public=False, private_text=None)
    public = replace(request, public=True, private_text=None)
    return private, public


def notice_key(notice: Notice) -> str:
    """The ledger key of one notification; the URI is hashed (webhook URLs are secrets)."""
    return (
        f"{notice.route.route_id}|{notice.member.member}|{notice.scheme}:{fingerprint(notice.uri)}"
    )


def statuses(reports: Sequence[Report]) -> Mapping[str, int]:
    """How many reports ended in each status (for logs and tests)."""
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.status] = counts.get(report.status, 0) + 1
    return counts
