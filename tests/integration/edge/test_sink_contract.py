"""One contract for the event sinks: :class:`MemoryEventSink` and :class:`KafkaEventSink`.

Every test runs twice, on the memory sink (``[memory]``) and on the Kafka sink against
the real embedded broker (``[kafka]``), with the same assertions: what the edge relies
on when it publishes (README "Layout": the edge writes the events topic).

- what is accepted comes out unchanged, keyed by conversation, in the order given;
- nothing is published before ``start()`` or after ``stop()``: ``RuntimeError``;
- an event that cannot be written as JSON, or a record over the producer's
  ``max_request_size``, is refused with the Kafka client's own error, and the events
  of the call before it are published (the edge answers 503, the platform retries,
  the triage is idempotent by event id);
- publishing the same event twice publishes it twice (the sink does not dedupe).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import MessageSizeTooLargeError

from brokers.tansu import EmbeddedBroker
from edge.sink import KafkaEventSink, MemoryEventSink
from records.wire import SocialEvent, parse_event

SINKS = ("memory", pytest.param("kafka", marks=pytest.mark.broker))


def event(number: int, conversation: str = "crm:c1", **changes: Any) -> SocialEvent:
    data = {"id": f"crm:{number}", "account": "a", "channel": "generic", "kind": "dm",
            "conversation": conversation, "author": {"id": "u"}, "text": f"message {number}",
            "at": "2026-11-23T22:14:05+01:00", **changes}
    return SocialEvent.model_validate(data)


@dataclass
class Subject:
    """A sink under the contract and a way to read back what it published, in order."""

    sink: MemoryEventSink | KafkaEventSink
    broker: EmbeddedBroker | None
    topic: str

    async def published(self, until: str | set[str]) -> list[tuple[str, SocialEvent]]:
        """``(key, event)`` of the published events, once every id of ``until`` is among them.

        Kafka keeps the order within a key (a partition) only: with one ``until`` on one
        conversation, the events are those published before and with it, in order.
        """
        wanted = {until} if isinstance(until, str) else until
        if isinstance(self.sink, MemoryEventSink):
            found = [(e.conversation, e) for e in self.sink.events]
        else:
            found = await self._read(wanted)
        ids = [e.id for _, e in found]
        assert wanted <= set(ids), f"{sorted(wanted - set(ids))} not published: {ids}"
        if isinstance(until, str):
            return found[: ids.index(until) + 1]
        return found

    async def _read(self, wanted: set[str]) -> list[tuple[str, SocialEvent]]:
        assert self.broker is not None
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.broker.bootstrap,
                                    auto_offset_reset="earliest", group_id=f"contract-{uuid.uuid4().hex[:8]}")
        await consumer.start()
        try:
            found: list[tuple[str, SocialEvent]] = []
            while not wanted <= {e.id for _, e in found}:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=20)
                found.extend((r.key.decode(), parse_event(r.value)) for rs in batch.values() for r in rs)
            return found
        finally:
            await consumer.stop()


@pytest.fixture(params=SINKS)
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    """The sink of this run, not started; a started Kafka sink is stopped at the end."""
    topic = f"contract.events.{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield Subject(MemoryEventSink(), None, topic)
        return
    broker = request.getfixturevalue("edge_broker")
    sink = KafkaEventSink(broker.bootstrap, topic)
    try:
        yield Subject(sink, broker, topic)
    finally:
        await sink.stop()


class TestEventSinkContract:
    async def test_events_come_out_unchanged_keyed_and_in_order(self, subject: Subject) -> None:
        """Two conversations interleaved over two calls: each event once, unchanged, keyed by its conversation, in order."""
        events = [event(1, "crm:a"), event(2, "crm:b"), event(3, "crm:a"), event(4, "crm:a", lang="it")]
        await subject.sink.start()
        await subject.sink.publish(events[:2])
        await subject.sink.publish(events[2:])
        published = await subject.published(until={"crm:2", "crm:4"})
        by_key = {key: [e for k, e in published if k == key] for key in ("crm:a", "crm:b")}
        assert {"crm:a": [events[0], events[2], events[3]], "crm:b": [events[1]]} == by_key

    async def test_an_empty_call_publishes_nothing(self, subject: Subject) -> None:
        """``publish([])`` returns and adds nothing: the next event is the first one published."""
        await subject.sink.start()
        await subject.sink.publish([])
        await subject.sink.publish([event(1)])
        assert ["crm:1"] == [e.id for _, e in await subject.published(until="crm:1")]

    async def test_publish_before_start_is_refused(self, subject: Subject) -> None:
        """A sink nobody started raises RuntimeError instead of losing or keeping the events."""
        with pytest.raises(RuntimeError):
            await subject.sink.publish([event(1)])

    async def test_publish_after_stop_is_refused(self, subject: Subject) -> None:
        """After ``stop()`` publish raises RuntimeError again; a new start publishes."""
        await subject.sink.start()
        await subject.sink.publish([event(1)])
        await subject.sink.stop()
        with pytest.raises(RuntimeError):
            await subject.sink.publish([event(2)])
        await subject.sink.start()
        await subject.sink.publish([event(3)])
        assert ["crm:1", "crm:3"] == [e.id for _, e in await subject.published(until="crm:3")]

    async def test_an_unwritable_event_is_refused_after_the_ones_before_it(self, subject: Subject) -> None:
        """An integer beyond 64 bits (an extra field) cannot be JSON: orjson's error; the event before it is published."""
        await subject.sink.start()
        with pytest.raises(orjson.JSONEncodeError):
            await subject.sink.publish([event(1), event(2, extra_count=2**70), event(3)])
        await subject.sink.publish([event(4)])
        assert ["crm:1", "crm:4"] == [e.id for _, e in await subject.published(until="crm:4")]

    async def test_a_record_over_the_request_size_is_refused_after_the_ones_before_it(self, subject: Subject) -> None:
        """An event of more than 1 MiB as JSON: MessageSizeTooLargeError; the event before it is published."""
        too_big = event(2, attachment="x" * (1024 * 1024 + 1))
        await subject.sink.start()
        with pytest.raises(MessageSizeTooLargeError):
            await subject.sink.publish([event(1), too_big, event(3)])
        await subject.sink.publish([event(4)])
        assert ["crm:1", "crm:4"] == [e.id for _, e in await subject.published(until="crm:4")]

    async def test_the_same_event_twice_is_published_twice(self, subject: Subject) -> None:
        """The sink does not dedupe (a retried webhook may publish again; the triage dedupes by id)."""
        await subject.sink.start()
        await subject.sink.publish([event(1)])
        await subject.sink.publish([event(1), event(2)])
        assert ["crm:1", "crm:1", "crm:2"] == [e.id for _, e in await subject.published(until="crm:2")]
