"""On-call actions: a member claims a routed or paged message, or marks a conversation answered.

The operations API and the signed links record each action through an
:class:`ActionSink`. The service uses :class:`KafkaActionSink`, which produces one
JSON record per action to the actions topic (``offhours.actions``), keyed by
conversation, so the pipeline can update the conversation's state and stop its
escalations; tests use :class:`MemoryActionSink`.

The record (see :func:`action_record`)::

    {"action_id": "claim:fb:P:U:marta:…", "action": "claim" | "answered",
     "conversation": "fb:PAGE_111:PSID_222", "event_id": "fb:m_abc123" | null,
     "member": "marta", "by": "ops:anna" | "link:marta", "via": "api" | "link",
     "at": "2026-11-23T21:20:00+00:00"}

``action_id`` is deterministic for a link (the same link clicked twice gives the same
id), so consumers can ignore repeats; actions through the API get a fresh id.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson
from aiokafka import AIOKafkaProducer

from brokers.client import KafkaConnection, connection_options
from edge.config_store import ensure_topic

ActionKind = Literal["claim", "answered"]
ActionVia = Literal["api", "link"]


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
) -> dict[str, Any]:
    """The wire form of one on-call action (module docstring); ``at`` must be aware."""
    if at.tzinfo is None:
        raise ValueError("the time of an action must be aware")
    if link_token is not None:
        action_id = f"{action}:link:{hashlib.sha256(link_token.encode('utf-8')).hexdigest()[:32]}"
    else:
        action_id = f"{action}:{uuid.uuid4().hex}"
    return {
        "action_id": action_id,
        "action": action,
        "conversation": conversation,
        "event_id": event_id,
        "member": member,
        "by": by,
        "via": via,
        "at": at.isoformat(timespec="seconds"),
    }


class ActionSink(Protocol):
    """Where on-call actions go; ``record`` returns once the action is durably accepted."""

    async def record(self, action: dict[str, Any]) -> None: ...


class MemoryActionSink:
    """Keeps actions in a list, in order: the fake beside the real sink."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []

    async def record(self, action: dict[str, Any]) -> None:
        self.actions.append(dict(action))


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

    async def record(self, action: dict[str, Any]) -> None:
        if self._producer is None:
            raise RuntimeError("the action sink is not started")
        await self._producer.send_and_wait(
            self.topic,
            value=orjson.dumps(action),
            key=str(action["conversation"]).encode("utf-8"),
        )
