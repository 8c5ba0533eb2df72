"""``offhours decisions``: the decisions topic as JSON Lines, so nobody needs kcat.

:func:`watch_decisions` reads the decisions topic (README: Decisions) with a plain aiokafka
consumer that joins no group and commits nothing: watching never moves the offsets of
a worker or of another watcher, and any number of watchers can run at once. Each
decision is printed as one compact JSON object per line, in the order of its
partition (decisions of one conversation share a partition, so their order holds;
across conversations the order is the order of arrival).

- Without ``follow``: every decision on the topic now, then return.
- With ``follow``: decisions from now on (with ``from_beginning``, the existing ones
  first), until ``stopping`` is set (Ctrl-C in the command).

``conversation`` keeps only the decisions of that conversation (the record key).
"""

from __future__ import annotations

import asyncio
from typing import TextIO

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from brokers.client import KafkaConnection, connection_options
from brokers.positions import seek_to_beginning, seek_to_end

POLL_SECONDS = 0.5
TOPIC_WAIT_SECONDS = 1.0


class WatchError(Exception):
    """The decisions cannot be read (e.g. the topic does not exist); the message says why."""


async def watch_decisions(
    kafka: KafkaConnection,
    topic: str,
    *,
    out: TextIO,
    err: TextIO,
    follow: bool = False,
    from_beginning: bool = False,
    conversation: str | None = None,
    stopping: asyncio.Event | None = None,
) -> int:
    """Print the decisions of ``topic`` to ``out`` as JSON Lines; returns how many were printed.

    Once the consumer holds its start positions, a line ``watching TOPIC ...`` goes to
    ``err`` (a decision made after it is printed is never missed with ``follow``).
    A record that is not JSON is reported on ``err`` with its position and skipped.
    ``kafka`` is the brokers, or :func:`brokers.client.client_options` (TLS/SASL).
    Raises :class:`WatchError` when the topic does not exist and ``follow`` is off
    (with ``follow`` it waits for the topic), and aiokafka's ``KafkaError`` when the
    broker cannot be reached.
    """
    stopping = stopping or asyncio.Event()
    partitions = await _partitions_of(kafka, topic, follow=follow, stopping=stopping, err=err)
    if partitions is None:
        return 0
    consumer = AIOKafkaConsumer(
        **connection_options(kafka),
        group_id=None,
        enable_auto_commit=False,
        client_id="offhours-decisions",
    )
    try:
        await consumer.start()
        consumer.assign(partitions)
        if from_beginning or not follow:
            await seek_to_beginning(consumer, *partitions)
        else:
            await seek_to_end(consumer, *partitions)
        ends = None if follow else await consumer.end_offsets(partitions)
        print(f"watching {topic}{' (Ctrl-C to stop)' if follow else ''}", file=err, flush=True)
        return await _print_until(consumer, ends, out=out, err=err, conversation=conversation, stopping=stopping)
    finally:
        await consumer.stop()


async def _partitions_of(
    kafka: KafkaConnection, topic: str, *, follow: bool, stopping: asyncio.Event, err: TextIO
) -> list[TopicPartition] | None:
    """The partitions of ``topic``; with ``follow`` waits for the topic to exist.

    None when ``stopping`` is set before it does. Asks for the metadata of every topic:
    a request naming this one could make the broker create it.
    """
    told = False
    admin = AIOKafkaAdminClient(**connection_options(kafka), client_id="offhours-decisions")
    try:
        await admin.start()
        while not stopping.is_set():
            described = await admin.describe_topics()
            found = sorted(
                part["partition"]
                for entry in described
                if entry["topic"] == topic and entry["error_code"] == 0
                for part in entry["partitions"]
            )
            if found:
                return [TopicPartition(topic, p) for p in found]
            if not follow:
                raise WatchError(f"no topic {topic!r} on the broker (see OFFHOURS_DECISIONS_TOPIC / --topic)")
            if not told:
                print(f"waiting for topic {topic} to exist", file=err, flush=True)
                told = True
            await _wait(stopping, TOPIC_WAIT_SECONDS)
    finally:
        await admin.close()
    return None


async def _print_until(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int] | None,
    *,
    out: TextIO,
    err: TextIO,
    conversation: str | None,
    stopping: asyncio.Event,
) -> int:
    """Print fetched decisions until every partition reached ``ends`` (None: until stopped)."""
    key = conversation.encode() if conversation is not None else None
    printed = 0
    while not stopping.is_set():
        if ends is not None and await _reached(consumer, ends):
            break
        batches = await consumer.getmany(timeout_ms=int(POLL_SECONDS * 1000))
        for records in batches.values():
            for record in records:
                if key is not None and record.key != key:
                    continue
                line = decision_line(record)
                if line is None:
                    print(f"skipped {record.topic}:{record.partition}:{record.offset}: not JSON", file=err)
                    continue
                out.write(line + "\n")
                printed += 1
        out.flush()
    return printed


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return False
    return True


def decision_line(record: ConsumerRecord) -> str | None:
    """The record's decision as one compact JSON line; None when the value is not JSON."""
    try:
        decision = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return None
    return orjson.dumps(decision).decode()


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass
