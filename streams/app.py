"""The Faust app: topics, the ``conversations`` table and the triage agent.

:func:`create_app` builds one :class:`OffhoursApp` from one :class:`Settings` and the
:class:`~schedules.Coverage` to start with; there is no module-level app. The app
carries its topics (``app.stream_topics``), its table (``app.conversations``) and the coverage
in use (``app.coverage``, a :class:`CoverageHolder` that a reload swaps).

Topics (names from the settings, all with ``settings.partitions`` partitions):

- events (input, CONTRACT §2), keyed by conversation;
- decisions: one :class:`~streams.records.Decision` JSON per event, keyed like the
  event, carrying the event's headers plus ``offhours-source`` (see :mod:`streams.codec`);
- acks and routes: the outboxes of :class:`~streams.records.AckRequest` and
  :class:`~streams.records.RouteRequest`, read by the responders;
- dead letters: a :class:`~streams.records.DeadLetter` for each rejected input;
- config: reserved for coverage reload notices;
- actions (``settings.ops.actions_topic``): on-call actions (:func:`edge.actions.action_record`),
  keyed by conversation and co-partitioned with the events, so the worker that decides a
  conversation's events also applies its claims and answers to the same table entry.

Agents:

- ``triage`` (:func:`decide_event`): one decision per event. A policy that raises for
  one event never stops the worker: the event gets a ``reject`` decision with reason
  ``internal error: <exception type>`` (no customer text) and a dead letter.
- ``actions`` (:func:`apply_action`): ``claim`` records the claimer and the time on the
  conversation's state, ``answered`` marks it answered; an unreadable action is a dead letter.

With ``metrics`` (:class:`~streams.metrics.Metrics`) the agents count
``decisions{action,mode}`` (mode ``none`` when the event has none) and
``dead_letters{topic}``, and observe ``webhook_to_decision_seconds`` for events that carry
the ``offhours-received`` header (receipt time, POSIX seconds or ISO 8601).

Values travel as raw bytes (orjson on our side); no Faust Records on the hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import faust
import orjson
from faust.types import EventT

from schedules import Coverage, CoverageInvalid, load_coverage
from streams.codec import HEADER_SOURCE, header_list, header_value, position, with_header
from streams.metrics import Metrics
from streams.policy import Triage
from streams.records import AckRequest, DeadLetter, Decision, RouteRequest
from streams.settings import Settings
from streams.state import ConversationState

log = logging.getLogger(__name__)

HEADER_RECEIVED = "offhours-received"
"""When the ingest received the event (POSIX seconds or ISO 8601); optional."""


class Outcome(Protocol):
    """What the triage policy returns for one event (see ``streams.policy.Outcome``)."""

    decision: Decision
    state: ConversationState | None
    ack: AckRequest | None
    route: RouteRequest | None


class Decider(Protocol):
    """The pure triage policy: ``streams.policy.Triage`` bound to one coverage."""

    def decide(self, raw: bytes, state: ConversationState | None) -> Outcome: ...


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
        self.path = path
        self.coverage = coverage
        self.triage = decider(coverage)

    def swap(self, coverage: Coverage) -> None:
        """Use ``coverage`` from the next event on."""
        self.triage = self._decider(coverage)
        self.coverage = coverage

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
    the receipt-to-decision latency is measured against.
    """

    settings: Settings
    stream_topics: PipelineTopics
    conversations: faust.Table
    coverage: CoverageHolder
    metrics: Metrics | None
    clock: Callable[[], float]


def faust_options(settings: Settings) -> dict[str, Any]:
    """The Faust configuration for ``settings``, tuned for fast start-up and failover.

    Measured on Tansu: a fresh worker took ~30 s to be ready with Faust's defaults. The
    broker completes a group join only after about half the session timeout, and
    notices a dead member after the full session timeout, so both start-up and failover
    scale with ``broker_session_timeout``; the defaults (60 s rebalance timeout, 3 s
    heartbeat) are far longer than a loopback broker needs. The heartbeat must stay well
    below the session timeout so that a busy but live worker keeps its partitions.
    """
    session = settings.session_timeout
    return {
        "broker": settings.broker_url,
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
        "recovery_consistency_check": False,
        "producer_acks": -1,
        # Tansu's end offset is the base offset of a partition's last batch + 1, so with
        # one record per batch it is exact and changelog recovery reads every record
        # (with several, a worker taking over a partition missed its newest state).
        "producer_max_batch_size": 1 if settings.one_record_batches else 16384,
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
    binds the policy to a coverage; None means ``streams.policy.Triage``. ``metrics``
    receives the agents' counters (module docstring); None records nothing.
    The responders are not installed here: :func:`streams.worker.running_worker` does.
    """
    if settings.broker_url is None:
        raise ValueError("settings.broker_url is not set: start the embedded broker first")
    app = OffhoursApp(settings.app_id, **faust_options(settings))
    app.settings = settings
    app.metrics = metrics
    app.clock = clock
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
    app.conversations = app.Table(
        "conversations",
        default=None,
        # bytes -> Faust's "raw" serializer, also for the changelog and its recovery.
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        help="conversation state (ConversationState bytes) by conversation key",
    )

    @app.agent(app.stream_topics.events, name="triage")
    async def triage(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await decide_event(app, event)

    @app.agent(app.stream_topics.actions, name="actions")
    async def actions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await apply_action(app, event)

    return app


async def decide_event(app: OffhoursApp, event: EventT) -> Decision:
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
    """
    raw: bytes = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
    key: bytes | None = event.key
    message = event.message
    stored = app.conversations.get(key) if key is not None else None
    try:
        before = _decode_state(stored)
        outcome = app.coverage.triage.decide(raw, before)
    except Exception as exc:
        # The reason names the type only: an exception's text may quote the customer.
        log.exception("triage: policy failed on %s:%s", message.partition, message.offset)
        before = None
        outcome = _internal_error(raw, exc)
    decision = outcome.decision

    headers = with_header(
        header_list(message.headers), HEADER_SOURCE, position(message.partition, message.offset)
    )
    topics = app.stream_topics
    if outcome.ack is not None:
        await topics.acks.send(key=key, value=outcome.ack.to_json(), headers=headers)
    if outcome.route is not None:
        await topics.routes.send(key=key, value=outcome.route.to_json(), headers=headers)
    await topics.decisions.send(key=key, value=decision.to_json(), headers=headers)
    if key is not None and outcome.state is not None:
        current = app.conversations.get(key)
        state = outcome.state
        if current != stored and current is not None:
            state = _keep_actions(state, before, ConversationState.from_bytes(current))
        app.conversations[key] = state.to_bytes()
    _count_decision(app, decision, message.topic, headers)
    if decision.action == "reject":
        letter = DeadLetter(
            raw=raw.decode("utf-8", "replace"),
            reason=decision.reason,
            topic=message.topic,
            at=_received_at(message.timestamp),
        )
        await topics.dead_letters.send(key=key, value=letter.to_json(), headers=headers)
    return decision


@dataclass(frozen=True, slots=True)
class _Rejected:
    decision: Decision
    state: ConversationState | None = None
    ack: AckRequest | None = None
    route: RouteRequest | None = None


def _internal_error(raw: bytes, exc: Exception) -> Outcome:
    return _Rejected(
        Decision(
            event_id=_event_id(raw),
            team=None,
            mode=None,
            action="reject",
            route_to=[],
            ack=None,
            ack_suppressed=None,
            next_open=None,
            reason=f"internal error: {type(exc).__name__}",
        )
    )


def _event_id(raw: bytes) -> str | None:
    """The event's ``id`` when the input is JSON with a non-empty string id, else None."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    event_id = data.get("id") if isinstance(data, dict) else None
    return event_id if isinstance(event_id, str) and event_id else None


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


def _count_decision(app: OffhoursApp, decision: Decision, topic: str, headers: list[tuple[str, bytes]]) -> None:
    metrics = app.metrics
    if metrics is None:
        return
    metrics.decisions.labels(action=decision.action, mode=decision.mode or "none").inc()
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


class ActionInvalid(ValueError):
    """An on-call action record that cannot be applied; the message says why."""


@dataclass(frozen=True, slots=True)
class OnCallAction:
    """The part of an on-call action record (:func:`edge.actions.action_record`) the state needs."""

    action: str
    conversation: str
    member: str | None
    at: int

    @classmethod
    def from_json(cls, raw: bytes) -> OnCallAction:
        """Read an action record, raising :class:`ActionInvalid` with what is wrong."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ActionInvalid("not JSON") from None
        if not isinstance(data, dict):
            raise ActionInvalid("not a JSON object")
        action = data.get("action")
        if action not in ("claim", "answered"):
            raise ActionInvalid("action must be claim or answered")
        conversation = data.get("conversation")
        if not isinstance(conversation, str) or not conversation:
            raise ActionInvalid("conversation missing")
        member = data.get("member")
        if member is not None and not isinstance(member, str):
            raise ActionInvalid("member must be a string")
        if action == "claim" and not member:
            raise ActionInvalid("a claim needs a member")
        try:
            at = datetime.fromisoformat(str(data.get("at")))
        except ValueError:
            raise ActionInvalid("at must be ISO 8601") from None
        if at.tzinfo is None:
            raise ActionInvalid("at needs a UTC offset")
        return cls(action=action, conversation=conversation, member=member, at=int(at.timestamp()))


async def apply_action(app: OffhoursApp, event: EventT) -> ConversationState | None:
    """Apply one on-call action to its conversation's state; never raises for a bad record.

    ``claim`` records the claimer and the time (:meth:`ConversationState.claimed`),
    ``answered`` marks the conversation answered. The table entry is the record's key
    (the conversation), written from the actions partition of the same number, which
    the same worker holds. An action for a conversation with no state yet starts one
    whose ``team`` is empty until its first event is decided. An unreadable record is
    a dead letter and the agent goes on. Returns the state written, or None.
    """
    raw: bytes = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
    key: bytes | None = event.key
    message = event.message
    try:
        action = OnCallAction.from_json(raw)
        if key is None:
            raise ActionInvalid("record without a conversation key")
        stored = app.conversations.get(key)
        state = _decode_state(stored) or ConversationState(team="")
    except Exception as exc:
        reason = f"invalid action: {exc}" if isinstance(exc, ActionInvalid) else f"internal error: {type(exc).__name__}"
        letter = DeadLetter(
            raw=raw.decode("utf-8", "replace"), reason=reason, topic=message.topic,
            at=_received_at(message.timestamp),
        )
        await app.stream_topics.dead_letters.send(key=key, value=letter.to_json())
        if app.metrics is not None:
            app.metrics.dead_letters.labels(topic=message.topic).inc()
        log.warning("actions: dead letter from %s:%s: %s", message.partition, message.offset, reason)
        return None
    if action.action == "claim":
        updated = state.claimed(action.member or "", action.at)
    else:
        updated = state.answered()
    if updated != state or stored is None:
        app.conversations[key] = updated.to_bytes()
    return updated


def _received_at(timestamp: float | None) -> str | None:
    # The broker's record time, not now(): replaying a topic gives the same dead letters.
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
