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
- config: reserved for coverage reload notices.

Values travel as raw bytes (orjson on our side); no Faust Records on the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import faust
from faust.types import EventT

from schedules import Coverage, CoverageInvalid, load_coverage
from streams.codec import HEADER_SOURCE, header_list, position, with_header
from streams.policy import Triage
from streams.records import AckRequest, DeadLetter, Decision, RouteRequest
from streams.settings import Settings
from streams.state import ConversationState

log = logging.getLogger(__name__)


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

    def all(self) -> list[faust.TopicT]:
        return [self.events, self.decisions, self.acks, self.routes, self.dead_letters, self.config]


class OffhoursApp(faust.App):
    """A :class:`faust.App` that carries offhours' topics, table, coverage and settings."""

    settings: Settings
    stream_topics: PipelineTopics
    conversations: faust.Table
    coverage: CoverageHolder


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
        "web_enabled": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }


def create_app(
    settings: Settings,
    coverage: Coverage,
    *,
    decider: Callable[[Coverage], Decider] | None = None,
) -> OffhoursApp:
    """Build the app for ``settings`` starting with ``coverage``.

    ``settings.broker_url`` must be set (start the embedded broker first). ``decider``
    binds the policy to a coverage; None means ``streams.policy.Triage``.
    """
    if settings.broker_url is None:
        raise ValueError("settings.broker_url is not set: start the embedded broker first")
    app = OffhoursApp(settings.app_id, **faust_options(settings))
    app.settings = settings
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

    return app


async def decide_event(app: OffhoursApp, event: EventT) -> Decision:
    """Decide one input event and emit everything it causes.

    Order matters for crash safety: the acknowledgment and route outbox records go
    first, then the decision, then the table write, then the dead letter. Faust commits
    the input offset only after all of them are flushed, so a crash anywhere in between
    makes the event be decided again: a send may repeat (the responders' ledger dedupes
    by ``ack_id``/``route_id``, which derive from the event id) but is never lost. The
    decision comes after the outboxes so that a decision on the audit log always means
    its side effects were handed over.
    """
    raw: bytes = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
    key: bytes | None = event.key
    message = event.message
    stored = app.conversations.get(key) if key is not None else None
    outcome = app.coverage.triage.decide(raw, _decode_state(stored))
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
        app.conversations[key] = outcome.state.to_bytes()
    if decision.action == "reject":
        letter = DeadLetter(
            raw=raw.decode("utf-8", "replace"),
            reason=decision.reason,
            topic=message.topic,
            at=_received_at(message.timestamp),
        )
        await topics.dead_letters.send(key=key, value=letter.to_json(), headers=headers)
    return decision


def _received_at(timestamp: float | None) -> str | None:
    # The broker's record time, not now(): replaying a topic gives the same dead letters.
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")

