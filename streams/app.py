"""The Faust app: topics, the ``conversations`` table and the triage agent.

:func:`create_app` builds one :class:`OffhoursApp` from one :class:`Settings` and the
:class:`~schedules.Coverage` to start with; there is no module-level app. The app
carries its topics (``app.stream_topics``), its tables (``app.conversations``,
``app.escalations``) and the coverage in use (``app.coverage``, a :class:`CoverageHolder`
that a reload swaps).

Tables (bytes keys and values, keyed by conversation like the inputs):

- ``conversations``: :class:`~triage.state.ConversationState` bytes;
- ``escalations``: :class:`~promises.rules.PendingEscalation` bytes of the latest
  routed or paged message of a conversation that nobody has claimed (see
  :mod:`streams.sweeps`).

Topics (names from the settings, all with ``settings.partitions`` partitions):

- events (input: :class:`~records.wire.SocialEvent`, README "Events"), keyed by conversation;
- decisions: one :class:`~records.wire.Decision` JSON per event, keyed like the
  event, carrying the event's headers plus ``offhours-source`` (see :mod:`records.headers`);
- acks and routes: the outboxes of :class:`~records.wire.AckRequest` and
  :class:`~records.wire.RouteRequest`, read by the responders;
- dead letters: a :class:`~records.wire.DeadLetter` for each rejected input;
- config: reserved for coverage reload notices;
- actions (``settings.ops.actions_topic``): the records of :mod:`records.actions` (staff
  claims and answers from :mod:`edge.actions`, the sweeps' ticks), keyed by conversation
  and co-partitioned with the events, so the worker that decides a
  conversation's events also applies its claims and answers to the same table entry.

Agents:

- ``triage`` (:func:`decide_batch`, :func:`decide_event`): takes events in batches of
  up to :data:`TRIAGE_BATCH` and decides each in order, one decision per event. A policy that raises for
  one event never stops the worker: the event gets a ``reject`` decision with reason
  ``internal error: <exception type>`` (no customer text) and a dead letter.
- ``actions`` (:func:`apply_action`): decodes each record (:func:`records.actions.decode_action`)
  and dispatches on its type: a :class:`~records.actions.Claim` records the claimer and
  the time on the conversation's state, an :class:`~records.actions.Answered` marks it
  answered, and both end the conversation's pending escalation; an
  :class:`~records.actions.EscalationTick` (from a worker's sweep,
  :func:`promises.ticks.escalation_tick`) sends the escalation step due and records
  it, a :class:`~records.actions.ReminderTick` the follow-through reminder due, a
  :class:`~records.actions.WindowTick` the early route before a reply window closes;
  :class:`~records.actions.ExpireTick` and :class:`~records.actions.LedgerExpireTick`
  delete what is older than the retention (:mod:`streams.retention`); an unreadable
  record is a dead letter.

With ``metrics`` (:class:`~streams.metrics.Metrics`) the agents count
``decisions{action,mode}`` (mode ``none`` when the event has none) and
``dead_letters{topic}``, and observe ``webhook_to_decision_seconds`` for events that carry
the ``offhours-received`` header (receipt time, POSIX seconds or ISO 8601).

Values travel as raw bytes (orjson on our side); no Faust Records on the hot path.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import faust
from faust.streams import (
    _current_event,  # the event a table write belongs to (faust.streams.current_event)
)
from faust.types import EventT

from brokers.client import faust_credentials
from promises.routes import pending_from_route
from promises.rules import EscalationStep, FirstResponseStats, PendingEscalation
from promises.sla import FirstResponse
from promises.ticks import escalation_on_tick, reminder_on_tick, window_on_tick
from records.actions import (
    ActionInvalid,
    ActionRecord,
    Answered,
    Claim,
    EscalationTick,
    ExpireTick,
    LedgerExpireTick,
    ReminderTick,
    WindowTick,
    decode_action,
)
from records.headers import (
    HEADER_RECEIVED,
    HEADER_SOURCE,
    header_list,
    header_value,
    position,
    with_header,
)
from records.wire import DeadLetter, Decision, RouteRequest, raw_field
from schedules import Coverage, CoverageInvalid, load_coverage
from streams.metrics import Metrics, observe_first_response
from streams.retention import apply_expiry, apply_ledger_expiry
from streams.settings import Settings
from streams.sweeps import keep_due_index
from streams.timers import PromiseTimers
from streams.transport import quiet_noack_take
from streams.watchdog import Progress
from triage.policy import Triage, TriageResult, handover_facts, rejected
from triage.state import ConversationState

log = logging.getLogger(__name__)

TRIAGE_BATCH = 500
"""The most events the triage agent takes from Faust at a time."""
TRIAGE_WITHIN = 0.005
"""How long (s) the triage agent waits for a batch to fill; a quiet stream's event waits at most this."""


class Decider(Protocol):
    """The pure triage policy: ``triage.policy.Triage`` bound to one coverage."""

    def decide(
        self, raw: bytes, state: ConversationState | None, stats: FirstResponseStats | None = None
    ) -> TriageResult: ...


def _real_triage(coverage: Coverage) -> Decider:
    return Triage(coverage)


def _decode_state(raw: bytes | None) -> ConversationState | None:
    return None if raw is None else ConversationState.from_bytes(raw)


class CoverageHolder:
    """The coverage in use and the triage policy bound to it; swapped whole on reload.

    The agent reads ``holder.triage`` once per event, so a swap takes effect at the
    next event and an event is never decided against half of two coverages.
    """

    def __init__(
        self,
        coverage: Coverage,
        path: Path | None = None,
        *,
        decider: Callable[[Coverage], Decider] = _real_triage,
    ) -> None:
        self._decider = decider
        self._listeners: list[Callable[[Coverage], None]] = []
        self.path = path
        self.coverage = coverage
        self.triage = decider(coverage)

    def swap(self, coverage: Coverage) -> None:
        """Use ``coverage`` from the next event on."""
        self.triage = self._decider(coverage)
        self.coverage = coverage
        for listener in self._listeners:
            listener(coverage)

    def on_swap(self, listener: Callable[[Coverage], None]) -> None:
        """Call ``listener(coverage)`` after every swap (the promise timers re-plan openings)."""
        self._listeners.append(listener)

    def reload(self, path: Path | None = None) -> bool:
        """Load the coverage file again; with an invalid file keep the current coverage.

        Returns True when the new coverage is in use; on an invalid file logs every
        problem and returns False.
        """
        target = path or self.path
        if target is None:
            raise ValueError("no coverage file to reload")
        try:
            coverage = load_coverage(target)
        except CoverageInvalid as exc:
            log.error("coverage file %s is invalid; keeping the coverage in use:\n%s", target, exc)
            return False
        except OSError as exc:
            log.error("coverage file %s cannot be read (%s); keeping the coverage in use", target, exc)
            return False
        self.swap(coverage)
        self.path = Path(target)
        log.info("coverage reloaded from %s", target)
        return True


@dataclass(frozen=True, slots=True)
class PipelineTopics:
    """The app's topics, by role."""

    events: faust.TopicT
    decisions: faust.TopicT
    acks: faust.TopicT
    routes: faust.TopicT
    dead_letters: faust.TopicT
    config: faust.TopicT
    actions: faust.TopicT

    def all(self) -> list[faust.TopicT]:
        return [self.events, self.decisions, self.acks, self.routes, self.dead_letters, self.config, self.actions]


class OffhoursApp(faust.App):
    """A :class:`faust.App` that carries offhours' topics, table, coverage and settings.

    ``metrics`` is None when nothing records metrics; ``clock`` (POSIX seconds) is what
    the receipt-to-decision latency is measured against and the promise timers plan
    from. ``promise_timers`` is set by :func:`streams.worker.running_worker` once the
    worker is ready.
    """

    settings: Settings
    stream_topics: PipelineTopics
    conversations: faust.Table
    escalations: faust.Table
    reply_times: faust.Table
    coverage: CoverageHolder
    metrics: Metrics | None
    clock: Callable[[], float]
    promise_timers: PromiseTimers | None
    decoded_reply_times: dict[bytes, tuple[bytes, FirstResponseStats]]
    progress: Progress | None


def faust_options(settings: Settings) -> dict[str, Any]:
    """The Faust configuration for ``settings``, tuned for fast start-up and failover.

    Measured on Tansu: a fresh worker took ~30 s to be ready with Faust's defaults. The
    broker completes a group join only after about half the session timeout, and
    notices a dead member after the full session timeout, so both start-up and failover
    scale with ``broker_session_timeout``; the defaults (60 s rebalance timeout, 3 s
    heartbeat) are far longer than a loopback broker needs. The heartbeat must stay well
    below the session timeout so that a busy but live worker keeps its partitions.

    Three options accommodate Tansu and apply only there (``settings.on_tansu``; the
    deploy README's "Settings on Apache Kafka vs the embedded broker" says why): the
    transport with Tansu's idle fetch wait (100 ms), the recovery consistency check off
    and one record per produce batch. On Apache Kafka the idle wait is Faust's 1.5 s
    (answered as soon as records arrive), the check on, 16 KiB batches.

    On every broker the transport is Faust's aiokafka transport with the safe fetch
    hand-off and the 25 ms fetch wait while records come, of :mod:`streams.transport`
    (``offhours+apache://`` on Kafka, ``offhours+kafka://`` on Tansu): Faust's stock
    hand-off loses the records of a partition taken over with no committed offset
    (issue 17, the takeover stall), and its 1.5 s wait stalls the triage agent under
    load on both brokers.
    """
    tansu = settings.on_tansu
    broker: str | None = settings.broker_url
    if broker is not None:
        from streams.transport import APACHE_SCHEME, SCHEME, transport_url

        # Faust's own kafka:// transport parks idle fetches for 1.5 s, which Tansu holds
        # in full on every hop; and its fetch hand-off loses records (see streams.transport).
        broker = transport_url(broker, SCHEME if tansu else APACHE_SCHEME)
    session = settings.session_timeout
    return {
        "broker": broker,
        "broker_credentials": faust_credentials(settings),
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication,
        "broker_session_timeout": session,
        "broker_heartbeat_interval": max(0.1, min(3.0, session / 6)),
        "broker_rebalance_timeout": max(session, 2.0),
        "broker_request_timeout": max(session * 2, 10.0),
        "broker_commit_interval": 0.5,
        "consumer_auto_offset_reset": "earliest",
        "stream_recovery_delay": 0.0,
        # Tansu reports a partition's highwater as the base offset of its last batch + 1,
        # short of that batch's other records, so a worker that applied the whole batch
        # holds a "persisted offset 599 > highwater 597" and Faust's check crashes its
        # recovery for good (seen after a SIGKILL). Recovery still reads to highwater.
        # Apache Kafka's highwater is exact: the check stays on there, as Faust ships it.
        "recovery_consistency_check": not tansu,
        "producer_acks": -1,
        # Tansu's end offset is the base offset of a partition's last batch + 1, so with
        # one record per batch it is exact and changelog recovery reads every record
        # (with several, a worker taking over a partition missed its newest state).
        "producer_max_batch_size": 1 if settings.record_per_batch else 16384,
        "web_enabled": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }


def create_app(
    settings: Settings,
    coverage: Coverage,
    *,
    decider: Callable[[Coverage], Decider] | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
) -> OffhoursApp:
    """Build the app for ``settings`` starting with ``coverage``.

    ``settings.broker_url`` must be set (start the embedded broker first). ``decider``
    binds the policy to a coverage; None means ``triage.policy.Triage``. ``metrics``
    receives the agents' counters (module docstring); None records nothing.
    The responders are not installed here: :func:`streams.worker.running_worker` does.
    """
    if settings.broker_url is None:
        raise ValueError("settings.broker_url is not set: start the embedded broker first")
    app = OffhoursApp(settings.app_id, **faust_options(settings))
    app.settings = settings
    app.metrics = metrics
    app.clock = clock
    app.promise_timers = None
    app.decoded_reply_times = {}
    app.progress = None
    app.coverage = CoverageHolder(coverage, settings.coverage_file, decider=decider or _real_triage)

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            replicas=settings.replication,
        )

    app.stream_topics = PipelineTopics(
        events=topic(settings.events_topic),
        decisions=topic(settings.decisions_topic),
        acks=topic(settings.acks_topic),
        routes=topic(settings.routes_topic),
        dead_letters=topic(settings.dead_letter_topic),
        config=topic(settings.config_topic),
        actions=topic(settings.ops.actions_topic),
    )
    def table(name: str, help: str) -> faust.Table:
        # bytes -> Faust's "raw" serializer, also for the changelog and its recovery
        # (a Schema here breaks changelog recovery).
        return app.Table(
            name, default=None, key_type=bytes, value_type=bytes, partitions=settings.partitions, help=help
        )

    app.conversations = table("conversations", "conversation state (ConversationState bytes) by conversation key")
    app.escalations = table("escalations", "pending escalation (PendingEscalation bytes) by conversation key")
    keep_due_index(app)  # the sweeps' due-time index follows both tables (streams.due_index)
    app.reply_times = table(
        "reply-times", "recent first responses (FirstResponseStats bytes) of one partition's conversations, key p<N>"
    )

    @app.agent(app.stream_topics.events, name="triage")
    async def triage(stream: faust.StreamT) -> None:
        # Faust's noack_take, minus its 5 ms idle wakes (an idle worker's largest CPU cost).
        async for events in quiet_noack_take(stream, TRIAGE_BATCH, within=TRIAGE_WITHIN):
            await decide_batch(app, stream, events)

    @app.agent(app.stream_topics.actions, name="actions")
    async def actions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await apply_action(app, event)

    return app


@dataclass(slots=True)
class _Unwritten:
    """A conversation's state decided in this batch and not yet written to the table.

    ``seen`` is the table's value when the batch last read it: a different value there
    later means the actions agent wrote the entry meanwhile (a claim, an answer).
    ``event`` is the batch's last event of the conversation, the one its write goes with.
    """

    state: ConversationState
    seen: bytes | None
    event: EventT


async def decide_batch(app: OffhoursApp, stream: faust.StreamT, events: Sequence[EventT]) -> None:
    """Decide a batch the triage agent took, each event in order and on its own.

    Taking events in batches saves Faust's per-event stream steps (a no-op agent relayed
    2.2 times the events/s, bench/README.md). Each event is the current event while it
    is decided, so its outbox records and table writes go with its own partition. The
    ``conversations`` table is written once per conversation per batch, at the end: an
    event reads the state the batch's previous event of its conversation left, and the
    write goes with the conversation's last event (the same partition), so a
    conversation that writes three messages in a burst costs one changelog record, not
    three. The events are acknowledged after those writes: Faust flushes the producer
    before it commits an offset, so a committed event always has its records and its
    state on the broker, and a batch redelivered after a crash is decided again from
    the state before it (or, where the state reached the changelog, recognised as
    processed): the same decisions. A broker error writes the states of the events
    decided before it, acknowledges the whole batch, as Faust acknowledges an event
    whose agent crashed, and propagates: reconciliation re-decides whatever has no decision.
    """
    unwritten: dict[bytes, _Unwritten] = {}
    try:
        for event in events:
            _current_event.set(weakref.ref(event))
            await decide_event(app, event, unwritten)
    finally:
        try:
            _write_states(app, unwritten)
        finally:
            _current_event.set(None)
            for event in events:
                await stream.ack(event)


def _write_states(app: OffhoursApp, unwritten: dict[bytes, _Unwritten]) -> None:
    """Write each conversation's latest state of the batch, with its last event current."""
    table = app.conversations
    for key, pending in unwritten.items():
        _current_event.set(weakref.ref(pending.event))
        try:
            state = _with_actions(app, key, pending)
        except Exception:
            # An entry the actions agent left unreadable: the batch's state wins, and
            # the other conversations of the batch are still written.
            log.exception("triage: conversation %r unreadable in the table; writing the batch's state", key)
            state = pending.state
        table[key] = state.to_bytes()
    unwritten.clear()


def _with_actions(app: OffhoursApp, key: bytes, pending: _Unwritten) -> ConversationState:
    """``pending.state`` with what the actions agent wrote to the entry since the batch read it."""
    current = app.conversations.get(key)
    if current == pending.seen or current is None:
        return pending.state
    state = _keep_actions(pending.state, _decode_state(pending.seen), ConversationState.from_bytes(current))
    pending.state, pending.seen = state, current
    return state


async def decide_event(
    app: OffhoursApp, event: EventT, unwritten: dict[bytes, _Unwritten] | None = None
) -> Decision:
    """Decide one input event and emit everything it causes; never raises for a bad event.

    Order matters for crash safety: the acknowledgment and route outbox records go
    first, then the decision, then the table write, then the dead letter. Faust commits
    the input offset only after all of them are flushed, so a crash anywhere in between
    makes the event be decided again: a send may repeat (the responders' ledger dedupes
    by ``ack_id``/``route_id``, which derive from the event id) but is never lost. The
    decision comes after the outboxes so that a decision on the audit log always means
    its side effects were handed over.

    An exception from the policy (or from decoding the stored state) rejects this one
    event with reason ``internal error: <type>`` and a dead letter, and the agent goes
    on with the next; broker errors while emitting still propagate (Faust retries).

    With ``unwritten`` (:func:`decide_batch`) the conversation's new state is kept
    there, for the batch to write at its end, instead of written to the table at once.
    """
    raw: bytes = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
    key: bytes | None = event.key
    message = event.message
    pending = unwritten.get(key) if unwritten is not None and key is not None else None
    stored = app.conversations.get(key) if key is not None and pending is None else None
    stats_key = reply_times_key(message.partition)
    try:
        if pending is not None and key is not None:
            before: ConversationState | None = _with_actions(app, key, pending)
        else:
            before = _decode_state(stored)
        stats = _partition_stats(app, stats_key)
        outcome = app.coverage.triage.decide(raw, before, stats)
    except Exception as exc:
        # The reason names the type only: an exception's text may quote the customer.
        log.exception("triage: policy failed on %s:%s", message.partition, message.offset)
        before = None
        stats = None
        outcome = _internal_error(raw, exc)
    decision = outcome.decision

    headers = with_header(
        header_list(message.headers), HEADER_SOURCE, position(message.partition, message.offset)
    )
    topics = app.stream_topics
    route = outcome.route
    if outcome.ack is not None:
        await emit(app, topics.acks, key, outcome.ack.to_json(), headers)
    if route is not None:
        await emit(app, topics.routes, key, route.to_json(), headers)
    await emit(app, topics.decisions, key, decision.to_json(), headers)
    if key is not None and outcome.state is not None:
        state = outcome.state
        current, seen = app.conversations.get(key), (stored if pending is None else pending.seen)
        if current != seen and current is not None:
            state = _keep_actions(state, before, ConversationState.from_bytes(current))
            seen = current
        state = handover_facts(state, outcome)
        if unwritten is None:
            app.conversations[key] = state.to_bytes()
        elif pending is None:
            unwritten[key] = _Unwritten(state, seen, event)
        else:
            pending.state, pending.seen, pending.event = state, seen, event
        if route is not None and state.claimed_by is None:
            # A claimed conversation has someone on it: its new messages do not escalate.
            _start_escalation(app, key, route)
    response = outcome.first_response
    if response is not None:
        _record_first_response(app, stats_key, stats, response)
    _count_decision(app, decision, message.topic, headers)
    if app.progress is not None:
        app.progress.note(message.partition, message.offset)
    if decision.action == "reject":
        letter = DeadLetter.of(raw, decision.reason, message.topic, _received_at(message.timestamp))
        await emit(app, topics.dead_letters, key, letter.to_json(), headers)
    return decision


async def emit(
    app: OffhoursApp, topic: faust.TopicT, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    """Hand one record of the triage agent to the producer.

    Straight to the producer, not through ``topic.send``: Faust's per-record future and
    callback bookkeeping cost more than the send itself (a no-op agent relayed 45 % more
    events/s, bench/README.md), and the guarantee is the same, since Faust flushes the
    producer before it commits an input offset. Keys partition as with ``topic.send``.
    """
    await app.producer.send(topic.get_topic_name(), key, value, None, None, headers)


def _internal_error(raw: bytes, exc: Exception) -> TriageResult:
    return rejected(raw_field(raw, "id"), f"internal error: {type(exc).__name__}")


def _keep_actions(
    state: ConversationState, before: ConversationState | None, current: ConversationState
) -> ConversationState:
    """``state`` with the on-call actions applied while its event was being decided.

    The actions agent writes the same table entry; between the triage agent's read and
    its write (the outbox sends are awaited in between) a claim or an answer may land,
    and writing the policy's state as is would erase it.
    """
    answered_meanwhile = current.status == "answered" and (before is None or before.status != "answered")
    return replace(
        state,
        claimed_by=current.claimed_by,
        claimed_at=current.claimed_at,
        status="answered" if answered_meanwhile else state.status,
    )


def reply_times_key(partition: int) -> bytes:
    """The ``reply_times`` key of ``partition``'s first responses.

    One entry per partition, written only from that partition's events, so it lives in
    the partition's own changelog and moves with it. Conversations spread evenly over
    the partitions, so each entry is a sample of every team's recent responses.
    """
    return f"p{partition}".encode()


def _partition_stats(app: OffhoursApp, key: bytes) -> FirstResponseStats | None:
    """The partition's recent first responses, decoded once per stored value.

    Every event of the partition reads them, and the stored JSON holds up to 500
    responses per team and mode: the last decoding is kept beside the bytes it came
    from (one per partition) and reused while the table holds those bytes.
    """
    raw = app.reply_times.get(key)
    if raw is None:
        return None
    cached = app.decoded_reply_times.get(key)
    if cached is not None and cached[0] == raw:
        return cached[1]
    stats = FirstResponseStats.from_bytes(raw)
    app.decoded_reply_times[key] = (raw, stats)
    return stats


def _record_first_response(
    app: OffhoursApp, key: bytes, stats: FirstResponseStats | None, response: FirstResponse
) -> None:
    """Add ``response`` to the partition's recent first responses and to the metrics."""
    updated = (stats or FirstResponseStats()).record(
        response.team, response.mode, response.customer_at, response.replied_at
    )
    raw = updated.to_bytes()
    app.reply_times[key] = raw
    app.decoded_reply_times[key] = (raw, updated)
    team = app.coverage.coverage.teams.get(response.team)
    if app.metrics is not None and team is not None:
        observe_first_response(app.metrics, response, team.escalation.target_for(response.mode))


def _start_escalation(app: OffhoursApp, key: bytes, route: RouteRequest) -> None:
    """Make ``route`` the conversation's pending escalation, unless it already is.

    A redelivered event routes again; keeping its row keeps the steps already sent.
    """
    stored = app.escalations.get(key)
    if stored is not None and PendingEscalation.from_bytes(stored).event_id == route.event_id:
        return
    app.escalations[key] = pending_from_route(route).to_bytes()


def _count_decision(app: OffhoursApp, decision: Decision, topic: str, headers: list[tuple[str, bytes]]) -> None:
    metrics = app.metrics
    if metrics is None:
        return
    metrics.decision(decision.action, decision.mode or "none").inc()
    if decision.action == "reject":
        metrics.dead_letters.labels(topic=topic).inc()
    received = _receipt_time(header_value(headers, HEADER_RECEIVED))
    if received is not None:
        metrics.webhook_to_decision.observe(max(0.0, app.clock() - received))


def _receipt_time(value: bytes | None) -> float | None:
    """The ``offhours-received`` header as POSIX seconds; None when absent or unreadable."""
    if not value:
        return None
    text = value.decode("ascii", "replace").strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        received = datetime.fromisoformat(text)
    except ValueError:
        return None
    return received.timestamp() if received.tzinfo is not None else None


async def apply_action(app: OffhoursApp, event: EventT) -> ConversationState | None:
    """Apply one actions-topic record (:mod:`records.actions`); never raises for a bad record.

    The record's type says what to do: a claim records the claimer and the time
    (:meth:`ConversationState.claimed`), an answered mark marks the conversation
    answered, and both drop the conversation's pending escalation (someone has it); the
    ticks go to :func:`apply_escalation`, :func:`apply_reminder`, :func:`apply_window`,
    :func:`~streams.retention.apply_expiry` and :func:`~streams.retention.apply_ledger_expiry`.
    The table entry of a claim or answer is the record's key
    (the conversation), written from the actions partition of the same number, which
    the same worker holds. An action for a conversation with no state yet starts one
    whose ``team`` is empty until its first event is decided. An unreadable record is
    a dead letter and the agent goes on. Returns the state written, or None.
    """
    raw: bytes = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
    key: bytes | None = event.key
    message = event.message
    try:
        action: ActionRecord = decode_action(raw)
        if key is None:
            raise ActionInvalid("record without a conversation key")
        stored = app.conversations.get(key)
        state = _decode_state(stored) or ConversationState(team="")
    except Exception as exc:
        reason = f"invalid action: {exc}" if isinstance(exc, ActionInvalid) else f"internal error: {type(exc).__name__}"
        letter = DeadLetter.of(raw, reason, message.topic, _received_at(message.timestamp))
        await app.stream_topics.dead_letters.send(key=key, value=letter.to_json())
        if app.metrics is not None:
            app.metrics.dead_letters.labels(topic=message.topic).inc()
        log.warning("actions: dead letter from %s:%s: %s", message.partition, message.offset, reason)
        return None
    match action:
        case EscalationTick():
            await apply_escalation(app, key, action)
        case ReminderTick():
            await apply_reminder(app, key, action)
        case WindowTick():
            await apply_window(app, key, action)
        case ExpireTick():
            apply_expiry(app, action, message.partition)
        case LedgerExpireTick():
            apply_ledger_expiry(app, action, message.partition)
        case Claim() | Answered():
            return _apply_staff_action(app, key, stored, state, action)
    return None


def _apply_staff_action(
    app: OffhoursApp, key: bytes, stored: bytes | None, state: ConversationState, action: Claim | Answered
) -> ConversationState:
    """A claim or an answered mark on the conversation's state; either ends its pending escalation."""
    if app.escalations.get(key) is not None:
        del app.escalations[key]
    updated = state.claimed(action.member or "", action.seconds) if isinstance(action, Claim) else state.answered()
    if updated != state or stored is None:
        app.conversations[key] = updated.to_bytes()
    return updated


async def apply_escalation(app: OffhoursApp, key: bytes, tick: EscalationTick) -> EscalationStep | None:
    """Apply an escalation tick to the conversation's pending escalation; returns the step sent.

    :func:`~promises.ticks.escalation_on_tick` says what the tick does (nothing when it
    is stale or early; drop the row; or send a step). The route goes out before the row
    is written, so a crash in between repeats the step with the same ``route_id`` (the
    ledger sends it once); the row is written only if no newer route replaced it
    meanwhile.
    """
    stored = app.escalations.get(key)
    pending = None if stored is None else PendingEscalation.from_bytes(stored)
    result = escalation_on_tick(tick, pending, app.coverage.coverage.teams)
    if result.drop:
        del app.escalations[key]
    if result.step is None or result.route is None or result.after is None:
        return None
    await app.stream_topics.routes.send(key=key, value=result.route.to_json())
    if app.escalations.get(key) == stored:
        app.escalations[key] = result.after.to_bytes()
    if app.metrics is not None:
        app.metrics.escalation_steps.labels(team=result.step.team).inc()
    log.info("escalation %s sent for team %s", result.step.id, result.step.team)
    return result.step


async def apply_reminder(app: OffhoursApp, key: bytes, tick: ReminderTick) -> RouteRequest | None:
    """Send the follow-through reminder the tick names, if still due and not sent; returns its route.

    :func:`~promises.ticks.reminder_on_tick` says whether it is. A claim reminder also
    starts the escalation chain of the claim (unless one is pending). The route goes
    out before the state records it, so a crash in between repeats the same
    ``route_id`` (``remind:<kind>:<conversation>:<due>``), which the delivery ledger
    sends once. A ``reply_by`` reminder is a breach of the promise made to the
    customer: counted in ``offhours_promise_breaches_total``.
    """
    state = _decode_state(app.conversations.get(key))
    result = reminder_on_tick(tick, state, app.coverage.coverage.teams)
    if state is None or result is None:
        return None
    reminder, team = result.reminder, result.reminder.team
    await app.stream_topics.routes.send(key=key, value=result.route.to_json())
    escalation = result.escalation_to_start(pending=app.escalations.get(key) is not None)
    if escalation is not None:
        app.escalations[key] = escalation.to_bytes()
    current = _decode_state(app.conversations.get(key)) or state
    app.conversations[key] = current.reminder_sent(reminder.id).to_bytes()
    if app.metrics is not None:
        app.metrics.reminders.labels(team=team).inc()
        if reminder.breach:
            app.metrics.promise_breaches.labels(team=team, kind=reminder.kind).inc()
    log.info("reminder %s sent for team %s", reminder.id, team)
    return result.route


async def apply_window(app: OffhoursApp, key: bytes, tick: WindowTick) -> RouteRequest | None:
    """Route a conversation whose reply window closes before the team opens; returns the route.

    :func:`~promises.ticks.window_on_tick` says whether the customer message the tick
    was swept for is still the last one and still waits. The conversation is marked
    with that message (routed once) and the mechanism a human reply needs after the
    window (``reply_via``), and the route's escalation chain starts when nobody has
    claimed the conversation.
    """
    state = _decode_state(app.conversations.get(key))
    result = window_on_tick(tick, state, app.coverage.coverage.teams)
    if state is None or result is None:
        return None
    await app.stream_topics.routes.send(key=key, value=result.route.to_json())
    current = _decode_state(app.conversations.get(key)) or state
    app.conversations[key] = replace(current, window_routed=result.window_routed, reply_via=result.reply_via).to_bytes()
    escalation = result.escalation_to_start(current, pending=app.escalations.get(key) is not None)
    if escalation is not None:
        app.escalations[key] = escalation.to_bytes()
    log.info("reply window of %s routed early for team %s", result.route.route_id, result.route.team)
    return result.route


def _received_at(timestamp: float | None) -> str | None:
    # The broker's record time, not now(): replaying a topic gives the same dead letters.
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
