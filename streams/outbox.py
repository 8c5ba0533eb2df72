"""Faust wiring of the responders: the acks and routes outboxes, the delivery ledger.

:func:`install` adds to an app, without starting anything:

- a table (``deliveries`` by default) that is the delivery ledger, keyed by ack id or
  notification key, with the statuses of :mod:`responders.delivery`, each stored with
  the time it was written and its partition (:class:`TableLedger`) so that it expires
  after ``settings.retention`` (:mod:`streams.retention`);
- an agent on the acks outbox that sends each :class:`~records.wire.AckRequest`
  at most once, and one on the routes outbox that notifies staff for each
  :class:`~records.wire.RouteRequest`;
- a dead-letter sink: every delivery given up is a :class:`~records.wire.DeadLetter`
  on the dead-letter topic, with the request and the reason;
- the failed-acknowledgment page: a customer whose acknowledgment failed is paged to
  the on-call staff that ``on_call(team, now)`` names, as a ``RouteRequest`` with id
  ``"escalation:" + ack_id`` on the routes outbox (:func:`failed_ack_page`; the id's
  prefix predates the name and stays, running systems have it). It carries who wrote and what (the
  request's ``author_name`` and ``customer_text``), the team's mode at that moment
  (``mode_at(team, now)``; none without it) and the reason, worded for staff:
  "the customer did not get our acknowledgment because …". Without ``on_call`` the
  dead letter is the only trace (the log says so);
- the deliveries topic (``settings.deliveries_topic``): one
  :class:`~responders.delivery.DeliveryOutcome` JSON record per attempt and per
  give-up, keyed by conversation, for audit and first-response timing. A failure to
  publish one is logged and does not stop the delivery.

Each agent runs ``responders.concurrency`` deliveries at once (Faust agent
concurrency), so retries of one delivery hold back one of them, not the outbox;
:class:`~responders.config.ResponderSettings` bounds how long (``max_attempts``,
``backoff_max``, ``retry_after_max``). They share one
:class:`~responders.delivery.DeliveryLoop`: the same token buckets, and deliveries of
the same key take turns. Faust commits an outbox offset only once every record below it
is done. The ledger is written from the agent that consumes the record, so its
changelog goes to the record's partition and a redelivered record finds its ledger
entry on the same worker.

``topics`` may carry ready Faust topics as attributes ``acks``, ``routes``,
``dead_letters`` and ``deliveries``; a missing one is declared from the settings' topic
names. With ``metrics`` each acknowledgment delivered counts in ``acks_sent{channel}``,
each given up in ``acks_failed{channel}`` (a ledger skip counts in neither), each
staff notification delivered in ``notifications_sent{notifier,kind}`` and each given up
in ``notifications_failed{notifier,kind}`` (notifier: the URI scheme, ``slack``,
``mailto``…; kind: :data:`responders.notice.NOTICE_KINDS`), and each dead letter in
``dead_letters{topic}``.
Importing this module has no side effect.

What the agents do with a record is decided by module-level functions, pure and tested
without a broker: :func:`decode_request` (a request, or why not), :func:`outbox_dead_letter`
(the dead letter of a delivery given up), :func:`failed_ack_page` (the page, or none),
:func:`ack_metric` (which counter an acknowledgment's report moves); :func:`install`
only wires them to the topics, the table and the responders.

:func:`on_call_from`, :func:`notify_secrets_from` and :func:`claim_links` build the
``on_call``, ``notify_secrets`` and ``claim_link`` arguments from the coverage in use
and the operations settings. Route records carry their notify URIs masked
(:meth:`RouteRequest.to_json`); the routes agent finds each secret again among
``notify_secrets(team)`` before it delivers (:func:`unmasked`). An app with a
``delivery_guard`` (:data:`DeliveryGuard`; the service's stop sets one) has every delivery
awaited through it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import faust
import orjson
from faust.streams import current_event

from records.links import LinkSigner
from records.secrets import MASK, mask_value
from records.wire import AckRequest, DeadLetter, Notify, RouteRequest
from responders.base import utc_from_epoch
from responders.buckets import TokenBuckets
from responders.delivery import (
    ClaimLink,
    DeliveryLoop,
    DeliveryOutcome,
    Report,
    Responders,
    RetryPolicy,
)
from responders.notice import Notice
from responders.registry import build_registry
from streams.retention import LedgerEntry, ledger_status
from streams.settings import Settings

if TYPE_CHECKING:
    from schedules import Coverage
    from streams.metrics import Metrics

log = logging.getLogger(__name__)

OnCall = Callable[[str, datetime], list[Notify]]
"""``(team, now) -> staff to page``: who answers a customer whose acknowledgment failed."""
ModeAt = Callable[[str, datetime], str]
"""``(team, now) -> mode``: the team's mode (open, reduced, closed) at ``now``."""
NotifySecrets = Callable[[str, str], list[str]]
"""``(team, member) -> notify URIs`` of the coverage in use (see :func:`unmasked`)."""
DeliveryGuard = Callable[[str, bytes, Coroutine[Any, Any, Any]], Awaitable[Any]]
"""``guard(source, raw, delivery)``: how an outbox agent awaits one delivery when its app has
one as ``app.delivery_guard`` (``offhours.drain`` counts the deliveries in flight and, at the
stop's deadline, hands them back instead of waiting for their retries). ``source`` is
``acks`` or ``routes``, ``raw`` the outbox record; returns the delivery's result, or None
when the delivery was handed back."""


RAW = faust.Schema(key_serializer="raw", value_serializer="raw")


class TableLedger:
    """The delivery ledger backed by a Faust table (``get``/``set`` of a status string).

    Keys and values are stored as UTF-8 bytes: a raw table hands back bytes after
    recovery from its changelog, so writing bytes keeps lookups equal before and after.
    Each value carries, beside the status, when it was written (``clock``) and the
    partition whose changelog it goes to (the record being delivered: Faust writes a
    table from the current event's partition), ``delivered@1764000000:3``
    (:class:`~streams.retention.LedgerEntry`), so that the owner of that partition can
    delete it once it is older than ``settings.retention`` (:mod:`streams.retention`).
    A plain status, written before, still reads as that status.
    """

    def __init__(self, table: Any, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def get(self, key: str) -> str | None:
        value = self._table.get(key.encode())
        return None if value is None else ledger_status(value)

    def set(self, key: str, status: str) -> None:
        event = current_event()
        partition = None if event is None else event.message.partition
        self._table[key.encode()] = LedgerEntry(status, int(self._clock()), partition).to_bytes()


@dataclass(frozen=True, slots=True)
class Outbox:
    """What :func:`install` added to the app."""

    ledger_table: Any
    acks_topic: Any
    routes_topic: Any
    dead_letter_topic: Any
    deliveries_topic: Any
    acks_agent: Any
    routes_agent: Any


def _decode(value: Any, record: type[AckRequest] | type[RouteRequest]) -> Any:
    if isinstance(value, record):
        return value
    if isinstance(value, dict):
        value = orjson.dumps(value)
    return record.from_json(value)


def decode_request(value: Any, record: type[AckRequest] | type[RouteRequest]) -> tuple[Any, str | None]:
    """``(request, None)`` for an outbox record (bytes, a dict or already a ``record``);
    ``(None, reason)`` when it does not decode, the reason naming the type and the error."""
    try:
        return _decode(value, record), None
    except (TypeError, ValueError, KeyError) as exc:
        return None, f"undecodable {record.__name__}: {type(exc).__name__}"


def outbox_dead_letter(raw: bytes, source: str, reason: str, settings: Settings, now: float) -> DeadLetter:
    """The dead letter of a record of the ``source`` outbox (``acks`` or ``routes``) given up
    for ``reason`` at ``now`` (POSIX seconds), naming that outbox's topic."""
    topic_name = settings.acks_topic if source == "acks" else settings.routes_topic
    return DeadLetter.of(raw, reason, topic_name, utc_from_epoch(now).isoformat())


def ack_metric(status: str) -> Literal["acks_sent", "acks_failed"] | None:
    """The counter an acknowledgment's final status moves: delivered, given up, or none (a ledger skip)."""
    if status == "delivered":
        return "acks_sent"
    if status == "dead":
        return "acks_failed"
    return None


def failed_ack_page(
    request: AckRequest, reason: str, now: datetime, on_call: OnCall | None, mode_at: ModeAt | None
) -> RouteRequest | None:
    """The failed-acknowledgment page about ``request`` at ``now``: to the staff ``on_call``
    names, in the team's mode ``mode_at`` says ("" without it); None without ``on_call``."""
    if on_call is None:
        return None
    mode = mode_at(request.team, now) if mode_at is not None else ""
    return failed_ack_route(request, on_call(request.team, now), mode, reason)


def _topic(app: faust.App, topics: Any, attribute: str, name: str) -> Any:
    existing = getattr(topics, attribute, None) if topics is not None else None
    if existing is not None:
        return existing
    return app.topic(name, value_serializer="raw", key_serializer="raw")


def install(
    app: faust.App,
    topics: Any,
    settings: Settings,
    ledger_table_name: str = "deliveries",
    *,
    on_call: OnCall | None = None,
    mode_at: ModeAt | None = None,
    notify_secrets: NotifySecrets | None = None,
    claim_link: ClaimLink | None = None,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> Outbox:
    """Add the responders' table, agents and dead-letter sink to ``app`` (see module doc)."""
    responder_settings = settings.responders
    acks = _topic(app, topics, "acks", settings.acks_topic)
    routes = _topic(app, topics, "routes", settings.routes_topic)
    dead_letters = _topic(app, topics, "dead_letters", settings.dead_letter_topic)
    deliveries = _topic(app, topics, "deliveries", settings.deliveries_topic)
    table = app.Table(
        ledger_table_name,
        default=None,
        # bytes -> Faust's "raw" serializer, also for the changelog and its recovery
        # (a Schema alone is ignored there, and recovery then fails decoding JSON).
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        help="delivery status (sending, retrying, delivered, dead) @ POSIX seconds : partition, by ack id or notification key",
    )
    ledger = TableLedger(table, clock)
    registry = build_registry(responder_settings, clock)
    policy = RetryPolicy.from_settings(responder_settings)
    jitter = random.Random().random

    async def dead_letter(raw: bytes, source: str, reason: str) -> None:
        letter = outbox_dead_letter(raw, source, reason, settings, clock())
        log.warning("dead letter from %s: %s", letter.topic, reason)
        await dead_letters.send(value=letter.to_json())
        if metrics is not None:
            metrics.dead_letters.labels(topic=letter.topic).inc()

    async def page_failed_ack(request: AckRequest, reason: str) -> None:
        page = failed_ack_page(request, reason, utc_from_epoch(clock()), on_call, mode_at)
        if page is None:
            log.warning("acknowledgment %s failed and no on-call resolver is installed", request.ack_id)
            return
        await routes.send(key=request.conversation.encode(), value=page.to_json())

    async def decoded(value: Any, record: type[AckRequest] | type[RouteRequest], source: str) -> Any:
        request, reason = decode_request(value, record)
        if reason is not None:
            raw = value if isinstance(value, bytes) else str(value).encode()
            await dead_letter(raw, source, reason)
        return request

    async def publish(outcome: DeliveryOutcome) -> None:
        try:
            await deliveries.send(key=outcome.conversation.encode(), value=outcome.to_json())
        except Exception as exc:  # the audit record must not cost the customer the delivery
            log.error("deliveries: could not publish %s %s (%s)", outcome.id, outcome.status,
                      type(exc).__name__)

    def count_ack(request: AckRequest, status: str) -> None:
        counter = ack_metric(status)
        if metrics is not None and counter is not None:
            getattr(metrics, counter).labels(channel=request.channel).inc()

    # One loop for every concurrent delivery of both outboxes: the rate limits and the
    # per-key turns must be shared, or concurrency would multiply the limits.
    loop = DeliveryLoop(ledger=ledger, policy=policy, buckets=TokenBuckets(clock), jitter=jitter)

    def responders(session: aiohttp.ClientSession) -> Responders:
        return Responders(
            registry=registry,
            loop=loop,
            session=session,
            clock=clock,
            dead_letter=dead_letter,
            escalate=page_failed_ack,
            claim_link=claim_link,
            publish=publish,
            notified=None if metrics is None else notification_counter(metrics),
        )

    async def deliver_acks(stream: Any) -> None:
        async with aiohttp.ClientSession() as session:
            outbox = responders(session)
            async for value in stream:
                request = await decoded(value, AckRequest, "acks")
                if request is not None:
                    report = await _guarded(app, "acks", _raw(value, request), outbox.acknowledge(request))
                    if report is not None:
                        count_ack(request, report.status)

    async def deliver_routes(stream: Any) -> None:
        async with aiohttp.ClientSession() as session:
            outbox = responders(session)
            async for value in stream:
                request = await decoded(value, RouteRequest, "routes")
                if request is not None:
                    await _guarded(app, "routes", _raw(value, request), outbox.route(unmasked(request, notify_secrets)))

    concurrency = responder_settings.concurrency
    acks_agent = app.agent(acks, name=f"{ledger_table_name}.acks", concurrency=concurrency)(deliver_acks)
    routes_agent = app.agent(routes, name=f"{ledger_table_name}.routes", concurrency=concurrency)(deliver_routes)
    return Outbox(table, acks, routes, dead_letters, deliveries, acks_agent, routes_agent)


async def _guarded(app: faust.App, source: str, raw: bytes, delivery: Coroutine[Any, Any, Any]) -> Any:
    guard: DeliveryGuard | None = getattr(app, "delivery_guard", None)
    if guard is None:
        return await delivery
    return await guard(source, raw, delivery)


def _raw(value: Any, request: AckRequest | RouteRequest) -> bytes:
    return value if isinstance(value, bytes) else request.to_json()


def notification_counter(metrics: Metrics) -> Callable[[Notice, Report], None]:
    """The :class:`~responders.delivery.Responders` ``notified`` hook that counts each staff
    notification in ``notifications_sent{notifier,kind}`` (delivered) or
    ``notifications_failed{notifier,kind}`` (given up); a ledger skip counts in neither."""

    def count(notice: Notice, report: Report) -> None:
        labels = {"notifier": notice.scheme, "kind": notice.kind}
        if report.status == "delivered":
            metrics.notifications_sent.labels(**labels).inc()
        elif report.status == "dead":
            metrics.notifications_failed.labels(**labels).inc()

    return count


def failed_ack_route(request: AckRequest, staff: list[Notify], mode: str, reason: str) -> RouteRequest:
    """The page to ``staff`` about a customer whose acknowledgment ``request`` failed for ``reason``.

    ``route_id`` ``escalation:<ack id>``; it repeats who wrote, what, where and when (the
    customer's message time: their wait), the team's ``mode`` now, the acknowledgment that
    was not delivered (``extra``) and why (:func:`failed_ack_reason`).
    """
    return RouteRequest(
        route_id=f"escalation:{request.ack_id}",
        event_id=request.event_id,
        team=request.team,
        action="page",
        mode=mode,
        to=staff,
        channel=request.channel,
        account=request.account,
        conversation=request.conversation,
        author_name=request.author_name,
        text=request.customer_text,
        at=request.at,
        next_open=None,
        window_closes=request.window_closes,
        reason=failed_ack_reason(reason),
        extra={"ack_id": request.ack_id, "ack_text": request.text, "kind": request.kind},
        desk=request.desk,
    )


def failed_ack_reason(reason: str) -> str:
    """What on-call staff read about a failed acknowledgment: that it failed, and why."""
    return f"the customer did not get our acknowledgment because {reason}; a person must answer them"


def notify_secrets_from(coverage: Callable[[], Coverage]) -> NotifySecrets:
    """``secrets(team, member)``: the notify URIs of ``member`` in the coverage in use, in
    their order (``member`` "" : the team's escalation channels), among which a route's
    masked URIs are found again."""

    def secrets(team: str, member: str) -> list[str]:
        found = coverage().teams.get(team)
        if found is None:
            return []
        if member:
            staff = found.staff.get(member)
            return list(staff.notify) if staff is not None else []
        return [link.target for chain in found.escalation.chains.values() for link in chain.chain
                if link.kind == "channel" and link.target]

    return secrets


def unmasked(request: RouteRequest, secrets: NotifySecrets | None) -> RouteRequest:
    """``request`` with its masked notify URIs back to the secrets of its team's coverage.

    A member's URIs are written in the order of its ``notify`` list, so the URI at the
    same position is taken when it masks alike; otherwise the one URI of the member that
    does. A URI that is no longer in the coverage (it changed since the route was
    written), or that two of them could be, is dropped with an error in the log.
    """
    if secrets is None or not any(MASK in uri for member in request.to for uri in member.uris):
        return request
    to = []
    for member in request.to:
        known = secrets(request.team, member.member)
        uris = []
        for position, uri in enumerate(member.uris):
            if MASK not in uri:
                uris.append(uri)
                continue
            alike = [secret for secret in known if mask_value(secret) == uri]
            if position < len(known) and known[position] in alike:
                uris.append(known[position])
            elif len(alike) == 1:
                uris.append(alike[0])
            else:
                log.error("route %s: a notify target of %s is %s in the coverage (%s); not sent there",
                          request.route_id, member.member or "the escalation channel",
                          "no longer" if not alike else "ambiguous", uri)
        to.append(replace(member, uris=uris))
    return replace(request, to=to)


def mode_from(coverage: Callable[[], Coverage]) -> ModeAt:
    """``mode_at(team, now)`` over the coverage that ``coverage()`` returns at call time
    (empty for a team it does not have)."""

    def mode_at(team: str, now: datetime) -> str:
        found = coverage().teams.get(team)
        return "" if found is None else found.at(now).mode

    return mode_at


def on_call_from(coverage: Callable[[], Coverage]) -> OnCall:
    """``on_call(team, now)`` over the coverage that ``coverage()`` returns at call time.

    The staff on call for ``team`` at ``now`` with their notify URIs; a member missing
    from ``staff`` is left out, an unknown team has nobody. Reading the coverage at each
    call means a reloaded coverage file applies to the next failed-acknowledgment page.
    """

    def on_call(team: str, now: datetime) -> list[Notify]:
        found = coverage().teams.get(team)
        if found is None:
            return []
        return [
            Notify(member=member, name=found.staff[member].name, uris=list(found.staff[member].notify),
                   chatwoot_agent=found.staff[member].chatwoot_agent)
            for member in found.on_call_at(now)
            if member in found.staff
        ]

    return on_call


def claim_links(settings: Settings, clock: Callable[[], float] = time.time) -> ClaimLink:
    """``claim_link(route, notify)``: a signed link that claims the route's conversation.

    Signed with ``settings.ops.link_secret``, valid for ``settings.ops.link_ttl`` from
    ``clock()``, under ``settings.ops.actions_base_url``. None when no link can be made
    for that recipient (an escalation channel has no member; a ``|`` in an id).
    """
    ops = settings.ops
    signer = LinkSigner(
        ops.link_secret.get_secret_value(),
        ttl=ops.link_ttl,
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
        base_url=ops.actions_base_url,
    )

    def claim_link(route: RouteRequest, notify: Notify) -> str | None:
        try:
            return signer.url("claim", route.conversation, notify.member)
        except ValueError:
            return None

    return claim_link
