"""Issue 17, race #2: a seek while Faust's drain loop still hands on a batch fetched before it.

Faust's own consumer code runs here for real (``Consumer._drain_messages``,
``getmany``, ``perform_seek``, ``seek``), on a Faust app's consumer whose consumer
thread calls straight into aiokafka's real fetch path (``Fetcher.fetched_records``,
``seek_to_committed``, ``seek``) on records "prefetched" without a broker. The
scenario is the one measured in the failover rounds: recovery seeks the input partition
to its committed offset (14) while the drain loop is handing on records 14..548 of a
fetch made before the seek; the seek lands during the callback of record 20. aiokafka
then fetches 14..548 again. With Faust's stock consumer the drain loop's read offset
ends at 548 and every record fetched again below it is skipped ("DROPPED MESSAGE
ROFF"); with :class:`streams.transport.SeekSafeConsumer` the records fetched again
are all handed on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import FetchResult
from aiokafka.structs import ConsumerRecord
from faust.types import TP
from mode.utils.futures import maybe_async

import streams.transport  # noqa: F401  (registers the offhours+ schemes)
from tests.support.brokerless import brokerless_consumer

EVENTS = TP("t.events", 2)
OTHER = TP("t.events", 3)  # no committed offset: never sought, its batch stays current
COMMITTED = 14
FETCHED = range(COMMITTED, 549)
OTHER_FETCHED = range(0, 40)
SEEK_DURING = 20  # the record whose callback is running when the seek lands


class Prefetched:
    """aiokafka's ``PartitionRecords`` as the fetcher uses it: records and the next offset."""

    def __init__(self, tp: TP, offsets: range) -> None:
        self._tp = tp
        self._offsets = iter(offsets)
        self.next_fetch_offset = offsets.start

    def __iter__(self) -> Prefetched:
        return self

    def __next__(self) -> ConsumerRecord[bytes, bytes]:
        offset = next(self._offsets)
        self.next_fetch_offset = offset + 1
        return ConsumerRecord(
            self._tp.topic, self._tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, ()
        )


def kafka_consumer(tps: Iterable[TP], committed: dict[TP, int | None]) -> AIOKafkaConsumer:
    """An aiokafka consumer holding ``tps``, its real fetch and seek paths, and ``committed`` offsets."""
    consumer = brokerless_consumer(tps)
    consumer._max_poll_records = None

    async def committed_offset(tp: TP) -> int | None:
        return committed[tp]

    consumer.committed = committed_offset  # type: ignore[method-assign]
    return consumer


def prefetch(consumer: AIOKafkaConsumer, tp: TP, offsets: range) -> None:
    """aiokafka's background fetch brought ``offsets`` of ``tp`` (a fetch at ``offsets.start``)."""
    subscription = consumer._subscription
    subscription.seek(tp, offsets.start)
    consumer._fetcher._records[tp] = FetchResult(
        tp, assignment=subscription.subscription.assignment, partition_records=Prefetched(tp, offsets), backoff=0
    )


def position(consumer: AIOKafkaConsumer, tp: TP) -> int:
    return consumer._subscription.subscription.assignment.state_value(tp).position


def faust_consumer(scheme: str, kafka: AIOKafkaConsumer) -> Any:
    """A Faust app's consumer (never started) whose consumer thread runs its calls inline on ``kafka``."""
    app = faust.App("seek-during-fetch", broker=f"{scheme}://localhost:1", autodiscover=False)
    consumer = app.consumer
    thread = consumer._thread
    thread._consumer = kafka

    async def call_thread(fun: Any, *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))

    thread.call_thread = call_thread
    consumer._active_partitions = {EVENTS, OTHER}
    return consumer


async def drain_while_recovery_seeks(scheme: str) -> tuple[list[int], list[int], list[int], Any]:
    """Run Faust's drain loop over a fetch of 14..548; the seek to 14 lands during record 20.

    Returns the offsets of EVENTS handed to the callback before the seek and after it,
    those of OTHER, and the consumer.
    """
    kafka = kafka_consumer({EVENTS, OTHER}, {EVENTS: COMMITTED, OTHER: None})
    prefetch(kafka, EVENTS, FETCHED)
    prefetch(kafka, OTHER, OTHER_FETCHED)
    consumer = faust_consumer(scheme, kafka)
    fetcher = faust.Service()  # what _drain_messages checks to stop: its _stopped event
    before: list[int] = []
    after: list[int] = []
    other: list[int] = []
    sought = False

    async def callback(message: Any) -> None:
        nonlocal sought
        if message.partition == OTHER.partition:
            other.append(message.offset)
            return
        (after if sought else before).append(message.offset)
        if message.offset == SEEK_DURING and not sought:
            # Recovery: "Seek stream partitions to committed offsets" (faust/tables/recovery.py).
            await consumer.perform_seek()
            sought = True
            assert COMMITTED == position(kafka, EVENTS)
            # The broker answers aiokafka's next fetch, from the committed offset.
            prefetch(kafka, EVENTS, FETCHED)

    stock_getmany = consumer.getmany

    async def getmany(timeout: float) -> Any:
        if sought and EVENTS not in kafka._fetcher._records:  # the fetch again was handed on
            fetcher._stopped.set()  # the drain loop ends here
            return
        async for tp, message in stock_getmany(timeout):
            yield tp, message

    consumer.callback = callback
    consumer.getmany = getmany  # read by _drain_messages when it starts
    await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=10)
    return before, after, other, consumer


STOCK = "kafka"
OURS = [streams.transport.SCHEME, streams.transport.APACHE_SCHEME]


async def test_stock_faust_skips_the_records_fetched_again_after_the_seek() -> None:
    """What the fix is for: the old batch moves Faust's read offset past the seek."""
    before, after, other, consumer = await drain_while_recovery_seeks(STOCK)
    assert list(range(COMMITTED, SEEK_DURING + 1)) == before
    # The rest of the old batch went on after the seek, and left the read offset at its end;
    # of the records fetched again from 14, only the last was not skipped.
    assert [*range(SEEK_DURING + 1, FETCHED.stop), FETCHED[-1]] == after
    assert list(OTHER_FETCHED) == other


@pytest.mark.parametrize("scheme", OURS, ids=["tansu", "apache"])
async def test_every_record_fetched_again_after_the_seek_is_handed_on(scheme: str) -> None:
    before, after, other, consumer = await drain_while_recovery_seeks(scheme)
    assert list(range(COMMITTED, SEEK_DURING + 1)) == before
    assert list(FETCHED) == after  # nothing of the old batch after the seek; all of the new one
    assert list(OTHER_FETCHED) == other  # a partition not sought keeps its batch, once
    assert FETCHED[-1] == consumer._read_offset[EVENTS]


@pytest.mark.parametrize("scheme", OURS, ids=["tansu", "apache"])
async def test_a_seek_by_faust_consumer_seek_counts_too(scheme: str) -> None:
    """``Consumer.seek`` (the watchdog's) runs in the consumer thread and starts a new generation."""
    kafka = kafka_consumer({EVENTS}, {EVENTS: None})
    consumer = faust_consumer(scheme, kafka)
    read_offsets = consumer._read_offset
    assert isinstance(read_offsets, streams.transport.ReadOffsets)
    read_offsets.in_hand = (EVENTS, 300, read_offsets.generation(EVENTS))  # a callback running
    await consumer.seek(EVENTS, 0)
    assert 0 == position(kafka, EVENTS)
    assert 1 == read_offsets.generation(EVENTS)
    assert read_offsets[EVENTS] is None  # Faust's seek wrote its position (None for 0)
    read_offsets[EVENTS] = 300  # the drain loop, once the callback returns
    assert read_offsets[EVENTS] is None
    read_offsets[EVENTS] = 5  # a record fetched after the seek
    assert 5 == read_offsets[EVENTS]


class TestReadOffsets:
    def test_a_seek_to_the_offset_in_hand_keeps_its_position(self) -> None:
        """The seek's write and the drain loop's carry the same value: either order leaves it."""
        read_offsets = streams.transport.ReadOffsets()
        read_offsets[EVENTS] = 40
        read_offsets.in_hand = (EVENTS, 14, 0)
        read_offsets.sought(EVENTS)
        read_offsets[EVENTS] = 14  # Consumer.seek(EVENTS, 14)
        read_offsets[EVENTS] = 14  # the drain loop, for the record in hand
        assert 14 == read_offsets[EVENTS]

    def test_writes_without_a_seek_go_through(self) -> None:
        read_offsets = streams.transport.ReadOffsets()
        read_offsets.in_hand = (EVENTS, 7, 0)
        read_offsets[EVENTS] = 7
        assert 7 == read_offsets[EVENTS]
        assert read_offsets[OTHER] is None  # Faust's default
