"""Where the webhook edge puts the events it accepted.

The edge depends only on :class:`EventSink`; :class:`KafkaEventSink` produces to the
events topic with a plain aiokafka producer (no Faust in the edge) and
:class:`MemoryEventSink` keeps them in a list for component tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, runtime_checkable

from aiokafka import AIOKafkaProducer

from brokers.client import KafkaConnection, connection_options
from records.headers import HEADER_RECEIVED
from records.wire import SocialEvent


class EventSink(Protocol):
    """Accepts events for the stream. ``publish`` returns once every event is durably stored,
    and raises when any could not be (the edge then answers 503 so the platform retries)."""

    async def publish(self, events: list[SocialEvent]) -> None: ...


@runtime_checkable
class ManagedSink(Protocol):
    """A sink with a connection to open before the first ``publish`` and to close at the end."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class MemoryEventSink:
    """Keeps published events in :attr:`events`, in order; ``failure`` makes publish raise it."""

    def __init__(self) -> None:
        self.events: list[SocialEvent] = []
        self.failure: Exception | None = None

    async def publish(self, events: list[SocialEvent]) -> None:
        if self.failure is not None:
            raise self.failure
        self.events.extend(events)


class KafkaEventSink:
    """Produces each event as compact JSON to ``topic``, keyed by its ``conversation``.

    ``acks="all"``: an event counts as published once every in-sync replica has it.
    ``idempotent`` turns on the idempotent producer (no duplicates from the producer's
    own retries); use it on Apache Kafka. The embedded Tansu broker answers
    ``InitProducerId`` with an unknown error, so it is off by default. Either way a
    retried webhook may produce an event twice; the triage is idempotent by event id.
    ``kafka`` is the brokers, or :func:`brokers.client.client_options` (TLS/SASL).

    Each record carries the header ``offhours-received``: ``clock()`` (POSIX seconds,
    as decimal text) when the events of a request are published, which is when the
    webhook received them up to its verification and normalisation. The triage
    measures ``offhours_webhook_to_decision_seconds`` from it.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        *,
        idempotent: bool = False,
        client_id: str = "offhours-ingest",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic = topic
        self._clock = clock
        self._options = connection_options(kafka)
        self._options.update(client_id=client_id, acks="all", enable_idempotence=idempotent)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect; the producer is made here because aiokafka needs the running loop.

        When connecting fails the producer is closed before the error propagates, so a
        failed start leaves nothing open and may be retried.
        """
        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Flush what is pending and disconnect; idempotent."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, events: list[SocialEvent]) -> None:
        if self._producer is None:
            raise RuntimeError("KafkaEventSink.publish before start()")
        headers = [(HEADER_RECEIVED, repr(self._clock()).encode("ascii"))]
        deliveries = [
            await self._producer.send(
                self.topic, value=event.to_json(), key=event.conversation.encode(), headers=headers
            )
            for event in events
        ]
        await asyncio.gather(*deliveries)

    async def __aenter__(self) -> KafkaEventSink:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
