"""On-call actions: a member claims a routed or paged message, or marks a conversation answered.

The operations API and the signed links record each action through an
:class:`ActionSink`. The service uses :class:`KafkaActionSink`, which produces one
record per action to the actions topic (``offhours.actions``), keyed by conversation,
so the pipeline can update the conversation's state and stop its escalations; tests
use :class:`MemoryActionSink`.

The records are :class:`records.actions.Claim` and :class:`records.actions.Answered`
(their JSON is in :mod:`records.actions`), made by :func:`action_record`.
``action_id`` is deterministic for a link (the same link clicked twice gives the same
id), so consumers can ignore repeats; actions through the API get a fresh id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer

from brokers.client import KafkaConnection, connection_options
from edge.config_store import ensure_topic
from records.actions import ActionKind, ActionVia, Answered, Claim, StaffAction

__all__ = ["ActionKind", "ActionSink", "ActionVia", "KafkaActionSink", "MemoryActionSink", "action_record"]


def action_record(
    *,
    action: ActionKind,
    conversation: str,
    member: str | None,
    by: str,
    via: ActionVia,
    at: datetime,
    event_id: str | None = None,
    link_token: str | None = None,
) -> StaffAction:
    """One on-call action (:class:`~records.actions.Claim` or :class:`~records.actions.Answered`);
    ``at`` must be aware. With ``link_token`` its id is the link's, else a fresh one."""
    kind = Claim if action == "claim" else Answered
    return kind.new(conversation=conversation, member=member, by=by, via=via, at=at,
                    event_id=event_id, link_token=link_token)


class ActionSink(Protocol):
    """Where on-call actions go; ``record`` returns once the action is durably accepted."""

    async def record(self, action: StaffAction) -> None: ...


class MemoryActionSink:
    """Keeps actions in order: the fake beside the real sink.

    ``records`` are the typed actions, ``actions`` their wire form as the topic would
    carry it (decoded JSON objects). Like :class:`KafkaActionSink` it must be started:
    ``record`` before :meth:`start` or after :meth:`stop` raises ``RuntimeError``
    (the contract suite in ``tests/integration/edge_ops/test_store_contract.py`` runs both).
    """

    def __init__(self) -> None:
        self.records: list[StaffAction] = []
        self.actions: list[dict[str, Any]] = []
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def record(self, action: StaffAction) -> None:
        if not self.started:
            raise RuntimeError("the action sink is not started")
        wire = action.to_json()
        self.records.append(action)
        self.actions.append(orjson.loads(wire))


class KafkaActionSink:
    """Produces actions to ``topic`` keyed by conversation; ``start()`` before use, ``stop()`` after.

    ``record`` waits for the broker's acknowledgment (``acks=all``), so an action the
    API answered 202 for is on the topic.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        partitions: int = 4,
        replication: int = 1,
    ) -> None:
        self._kafka = kafka
        self.topic = topic
        self._partitions = partitions
        self._replication = replication
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await ensure_topic(
            self._kafka, self.topic, partitions=self._partitions, replication=self._replication
        )
        producer = AIOKafkaProducer(**connection_options(self._kafka), acks="all")
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def record(self, action: StaffAction) -> None:
        if self._producer is None:
            raise RuntimeError("the action sink is not started")
        await self._producer.send_and_wait(self.topic, value=action.to_json(), key=action.key)
