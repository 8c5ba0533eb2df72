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
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from brokers.client import KafkaConnection, connection_options
from records.headers import HEADER_RECEIVED
from records.wire import SocialEvent

DEFAULT_MAX_REQUEST_SIZE = 1024 * 1024
"""aiokafka's default ``max_request_size`` (bytes), which :class:`KafkaEventSink` keeps."""


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
    """Keeps published events in :attr:`events`, in order; ``failure`` makes publish raise it.

    It refuses what :class:`KafkaEventSink` refuses, the same way (the contract suite in
    ``tests/integration/edge/test_sink_contract.py`` runs both): ``publish`` before :meth:`start` or
    after :meth:`stop` raises ``RuntimeError`` (:func:`edge.app.build_webhooks` starts
    and stops it as it does the Kafka sink); each event is written as its wire JSON, so
    one that cannot be (an integer beyond 64 bits) raises orjson's error, and a record
    over the producer's ``max_request_size`` raises aiokafka's
    ``MessageSizeTooLargeError``. As with the Kafka sink, the events before the one
    refused are published.
    """

    def __init__(self, *, max_request_size: int = DEFAULT_MAX_REQUEST_SIZE) -> None:
        self.events: list[SocialEvent] = []
        self.failure: Exception | None = None
        self.started = False
        self._max_request_size = max_request_size

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def publish(self, events: list[SocialEvent]) -> None:
        if not self.started:
            raise RuntimeError("MemoryEventSink.publish before start()")
        if self.failure is not None:
            raise self.failure
        headers = [(HEADER_RECEIVED, b"0" * 20)]  # as long as the Kafka sink's receipt stamp, or longer
        for event in events:
            key, value = event.conversation.encode(), event.to_json()
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
            if size > self._max_request_size:
                raise MessageSizeTooLargeError(
                    f"The message is {size} bytes when serialized which is larger than the maximum "
                    "request size you have configured with the max_request_size configuration"
                )
            self.events.append(event)

    async def __aenter__(self) -> MemoryEventSink:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


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
