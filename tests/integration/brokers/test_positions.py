"""brokers.positions: a consumer asked for the start (or end) of a topic is there, even
when the reset aiokafka starts on its own right after ``assign`` is still under way.

aiokafka's own ``seek_to_beginning`` lost that race in 3 to 7 of these 24 tries on
each broker (the consumer then began at the end and skipped every record), which is
how a reconciliation pass once re-issued events that had been decided."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from brokers.apache import KafkaServer
from brokers.positions import seek_to_beginning, seek_to_end
from brokers.tansu import EmbeddedBroker

pytestmark = pytest.mark.broker

RECORDS = 3
# How long after ``assign`` the seek is asked for: from at once to well after the reset.
DELAYS = [0.0, 0.0, 0.001, 0.001, 0.002, 0.005, 0.005, 0.01] * 3


async def topic_with_records(bootstrap: str, topic: str) -> TopicPartition:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send_and_wait(topic, f"record {n}".encode())
    finally:
        await producer.stop()
    return TopicPartition(topic, 0)


async def positions_after(bootstrap: str, tp: TopicPartition, seek, reset: str) -> list[int]:
    """The position of a fresh consumer after ``seek``, once per delay of :data:`DELAYS`."""
    found = []
    for delay in DELAYS:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset=reset)
        await consumer.start()
        try:
            consumer.assign([tp])
            await asyncio.sleep(delay)
            await seek(consumer, tp)
            found.append(await consumer.position(tp))
        finally:
            await consumer.stop()
    return found


async def test_seek_to_beginning_starts_at_the_first_record(any_broker: EmbeddedBroker | KafkaServer,
                                                            unique_name: str) -> None:
    """With the default reset (latest) racing it, every consumer starts at offset 0."""
    tp = await topic_with_records(any_broker.bootstrap, f"{unique_name}.positions")
    assert [0] * len(DELAYS) == await positions_after(any_broker.bootstrap, tp, seek_to_beginning, "latest")


async def test_seek_to_end_starts_after_the_last_record(any_broker: EmbeddedBroker | KafkaServer,
                                                        unique_name: str) -> None:
    """With a reset to the earliest racing it, every consumer starts after the last record."""
    tp = await topic_with_records(any_broker.bootstrap, f"{unique_name}.positions")
    assert [RECORDS] * len(DELAYS) == await positions_after(any_broker.bootstrap, tp, seek_to_end, "earliest")
