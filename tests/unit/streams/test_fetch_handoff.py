"""Issue 17, the takeover stall: Faust's fetch hand-off to aiokafka must not lose records.

aiokafka's own fetch path runs here for real (``Fetcher.fetched_records``,
``FetchResult``, the subscription state, ``AIOKafkaConsumer.seek``), on records it
"prefetched" for an input partition, without a broker; Faust's consumer thread is
:class:`streams.transport.SafeFetchConsumerThread` (or, to show what it fixes, Faust's
stock thread). The scenario is the one measured in the failover rounds: during table
recovery the input partition is paused in Faust (not in its active set) while a
changelog partition is read; recovery then pauses the changelog partition, and the
active set is empty while aiokafka waits for records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import FetchResult
from faust.transport.drivers import aiokafka as stock
from faust.types import TP

from streams.transport import ActiveView, ConsumerThread, SafeFetchConsumerThread
from tests.support.brokerless import brokerless_consumer

EVENTS = TP("t.events", 2)
CHANGELOG = TP("t-conversations-changelog", 2)
PREFETCHED = range(75, 530)


class Prefetched:
    """aiokafka's ``PartitionRecords`` as the fetcher uses it: records and the next offset."""

    def __init__(self, offsets: Iterable[int]) -> None:
        self._offsets = iter(offsets)
        self.next_fetch_offset = min(offsets)  # type: ignore[type-var]

    def __iter__(self) -> Prefetched:
        return self

    def __next__(self) -> SimpleNamespace:
        offset = next(self._offsets)
        self.next_fetch_offset = offset + 1
        return SimpleNamespace(offset=offset)


def kafka_consumer(*tps: TP) -> AIOKafkaConsumer:
    """An aiokafka consumer holding ``tps`` at offset 0, with its real fetch path and no broker."""
    return brokerless_consumer(tps)


def prefetch(consumer: AIOKafkaConsumer, tp: TP, offsets: range) -> None:
    """aiokafka's background fetch brought ``offsets`` of ``tp`` (a fetch at ``offsets.start``)."""
    subscription = consumer._subscription
    subscription.seek(tp, offsets.start)
    assignment = subscription.subscription.assignment
    consumer._fetcher._records[tp] = FetchResult(
        tp, assignment=assignment, partition_records=Prefetched(offsets), backoff=0
    )


def a_fetch_response_arrives(consumer: AIOKafkaConsumer) -> None:
    for waiter in list(consumer._fetcher._fetch_waiters):
        if not waiter.done():
            waiter.set_result(None)


def position(consumer: AIOKafkaConsumer, tp: TP) -> int:
    return consumer._subscription.subscription.assignment.state_value(tp).position


def faust_thread(cls: type[stock.AIOKafkaConsumerThread], *, flowing: bool = True) -> Any:
    """Faust's consumer thread of class ``cls``, as far as fetching goes: its consumer's flow state."""
    thread = object.__new__(cls)
    thread.consumer = SimpleNamespace(flow_active=flowing, _buffered_partitions=set())
    return thread


def handed_on(records: dict[TP, list[Any]], active: set[TP], thread: Any) -> dict[TP, list[int]]:
    """What Faust's ``Consumer.getmany`` passes on of ``records``: active (or buffered) partitions only."""
    return {
        tp: [r.offset for r in batch]
        for tp, batch in records.items()
        if tp in active or tp in thread.consumer._buffered_partitions
    }


async def fetch_while_recovery_pauses_the_changelog(
    cls: type[stock.AIOKafkaConsumerThread],
) -> tuple[AIOKafkaConsumer, dict[TP, list[Any]], set[TP]]:
    consumer = kafka_consumer(EVENTS, CHANGELOG)
    prefetch(consumer, EVENTS, PREFETCHED)
    active = {CHANGELOG}  # recovery reads the changelog; the input partition is paused
    thread = faust_thread(cls)
    fetch = asyncio.ensure_future(thread._fetch_records(consumer, active, timeout=0.2))
    await asyncio.sleep(0)
    assert not fetch.done(), "aiokafka waits: nothing fetched for the changelog yet"
    active.discard(CHANGELOG)  # "Done reading from changelog topics": recovery pauses it
    a_fetch_response_arrives(consumer)
    return consumer, await fetch, active


class TestRecoveryPausesTheLastActivePartition:
    async def test_stock_faust_loses_the_records_of_the_paused_input_partition(self) -> None:
        """What the fix is for: aiokafka reads Faust's empty set as every partition."""
        consumer, records, active = await fetch_while_recovery_pauses_the_changelog(stock.AIOKafkaConsumerThread)
        assert EVENTS in records
        assert {} == handed_on(records, active, faust_thread(stock.AIOKafkaConsumerThread))
        assert PREFETCHED.stop == position(consumer, EVENTS)  # moved past records nobody got

    @pytest.mark.parametrize("cls", [SafeFetchConsumerThread, ConsumerThread], ids=["apache", "tansu"])
    async def test_the_input_partition_keeps_its_position(self, cls: type[stock.AIOKafkaConsumerThread]) -> None:
        consumer, records, _ = await fetch_while_recovery_pauses_the_changelog(cls)
        assert {} == records
        assert PREFETCHED.start == position(consumer, EVENTS)
        assert EVENTS in consumer._fetcher._records  # still prefetched, for when the partition is read

    async def test_the_records_reach_faust_once_the_partition_is_resumed(self) -> None:
        consumer, _, active = await fetch_while_recovery_pauses_the_changelog(SafeFetchConsumerThread)
        active.add(EVENTS)  # recovery done: "Resume stream partitions"
        thread = faust_thread(SafeFetchConsumerThread)
        records = await thread._fetch_records(consumer, active, timeout=0.2)
        assert {EVENTS: list(PREFETCHED)} == handed_on(records, active, thread)


class TestActiveView:
    async def test_a_partition_resumed_during_the_wait_is_read_in_the_same_fetch(self) -> None:
        consumer = kafka_consumer(EVENTS, CHANGELOG)
        prefetch(consumer, EVENTS, PREFETCHED)
        active = {CHANGELOG}
        thread = faust_thread(SafeFetchConsumerThread)
        fetch = asyncio.ensure_future(thread._fetch_records(consumer, active, timeout=5.0))
        await asyncio.sleep(0)
        active.add(EVENTS)
        a_fetch_response_arrives(consumer)
        records = await asyncio.wait_for(fetch, 1.0)
        assert list(PREFETCHED) == [r.offset for r in records[EVENTS]]
        assert PREFETCHED.stop == position(consumer, EVENTS)

    def test_never_false_and_follows_the_live_set(self) -> None:
        live: set[TP] = set()
        view = ActiveView(live)
        assert view and EVENTS not in view and 0 == len(view)
        live.add(EVENTS)
        assert EVENTS in view and {EVENTS} == set(view)


class TestRecordsNotDeliverableOnReturn:
    """Records aiokafka returns for a partition paused meanwhile, or after the flow stopped."""

    async def consumed(self) -> tuple[AIOKafkaConsumer, dict[TP, list[Any]]]:
        consumer = kafka_consumer(EVENTS, CHANGELOG)
        prefetch(consumer, EVENTS, PREFETCHED)
        records = await consumer._fetcher.fetched_records({EVENTS}, timeout=0)
        assert PREFETCHED.stop == position(consumer, EVENTS)
        return consumer, records

    async def test_a_partition_paused_meanwhile_is_sought_back_to_its_first_record(self) -> None:
        consumer, records = await self.consumed()
        thread = faust_thread(SafeFetchConsumerThread)
        assert {} == thread._deliverable(consumer, records, set())
        assert PREFETCHED.start == position(consumer, EVENTS)

    async def test_records_after_the_flow_stopped_are_sought_back(self) -> None:
        consumer, records = await self.consumed()
        thread = faust_thread(SafeFetchConsumerThread, flowing=False)
        assert {} == thread._deliverable(consumer, records, {EVENTS})
        assert PREFETCHED.start == position(consumer, EVENTS)

    async def test_a_partition_held_back_by_a_full_buffer_is_delivered(self) -> None:
        """Faust's getmany hands on a buffered partition's records (``on_buffer_full``)."""
        consumer, records = await self.consumed()
        thread = faust_thread(SafeFetchConsumerThread)
        thread.consumer._buffered_partitions.add(EVENTS)
        assert records == thread._deliverable(consumer, records, set())
        assert PREFETCHED.stop == position(consumer, EVENTS)
