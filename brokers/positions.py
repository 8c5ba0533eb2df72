"""Moving an assigned consumer to the start or the end of its partitions, exactly.

aiokafka's ``seek_to_beginning`` and ``seek_to_end`` only ask for a reset, and a reset
already under way wins: right after ``assign`` the consumer resets every partition on
its own, with its ``auto_offset_reset`` (``latest`` by default), and when that answer
arrives after ``seek_to_beginning`` was called it is applied instead. The consumer
then starts at the end and silently skips every record already on the topic (seen on
both brokers: a reconciliation pass missed the decisions written before it started,
and re-issued events that had been decided).

These helpers ask the broker for the offsets first and then ``seek`` to them: a seek
cancels any pending reset, so the position is the one asked for.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


async def seek_to_beginning(consumer: AIOKafkaConsumer, *partitions: TopicPartition) -> None:
    """Position ``consumer`` at the first record of each of ``partitions`` (assigned to it)."""
    for tp, offset in (await consumer.beginning_offsets(list(partitions))).items():
        consumer.seek(tp, offset)


async def seek_to_end(consumer: AIOKafkaConsumer, *partitions: TopicPartition) -> None:
    """Position ``consumer`` after the last record of each of ``partitions`` (assigned to it)."""
    for tp, offset in (await consumer.end_offsets(list(partitions))).items():
        consumer.seek(tp, offset)
