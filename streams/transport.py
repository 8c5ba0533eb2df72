"""Faust's aiokafka transport with a safe fetch hand-off and a short fetch wait (every broker).

The fetch hand-off (issue 17, the "takeover stall")
---------------------------------------------------

Faust's consumer passes aiokafka its set of *active* partitions (those it reads now,
``Consumer._active_partitions``) and aiokafka returns records of those partitions
only, advancing its fetch position past them. Two things in the stock code combine to
lose records:

- Faust passes its live set, and changes it while aiokafka waits for records (up to
  a second): table recovery resumes the changelog partitions, then pauses them again
  when it has read them. aiokafka's ``Fetcher.fetched_records`` filters with
  ``if partitions and tp not in partitions``, so an *empty* set means *every*
  partition: once recovery pauses the last changelog partition, aiokafka hands over
  the records it prefetched for the input partitions (still paused in Faust), and
  advances their positions.
- Faust's ``Consumer.getmany`` drops records of a partition not active, silently.

Recovery then seeks each input partition to its committed offset
(``Consumer.perform_seek``), which undoes the loss only where something was
committed: aiokafka's ``seek_to_committed`` leaves a partition with no committed
offset (or 0) where it is, past the dropped records. A worker that took over such a
partition never read them, decided nothing from it, logged nothing, and the group
never committed it: the stall :mod:`streams.watchdog` was written for. Measured in the
failover rounds on Tansu with the consumer instrumented: aiokafka returned records
75..529 of an input partition while Faust's active set was empty, and Faust dropped all
of them (a partition with a commit, read again after the seek); a partition nobody
had committed was left at aiokafka position 510 with nothing decided.

:class:`SafeFetchConsumerThread` closes both holes: aiokafka gets a live *view* of the
active set that is never empty in aiokafka's sense (an empty view fetches nothing), and
records that are not deliverable when they come back (their partition paused
meanwhile, or the flow stopped) are not handed to Faust: their partition is sought back
to the first of them, so aiokafka fetches them again once the partition is read.

The seek during a fetched batch (issue 17, race #2)
--------------------------------------------------

Table recovery seeks the input partitions to their committed offsets
(``Consumer.perform_seek`` -> ``seek_to_committed``, faust/transport/consumer.py
``perform_seek``) while the flow is on and the drain loop (``Consumer._drain_messages``)
may still be handing on a batch fetched *before* the seek. Faust records what was read
per partition in ``Consumer._read_offset``; the seek sets it to the new position, but
the drain loop then writes it again for every later record of the old batch (and for
the record whose callback was running during the seek): ``set_read_offset(tp, offset)``
after ``callback(message)``. The records aiokafka fetches again from the new position
are below that offset and are all skipped ("DROPPED MESSAGE ROFF", Faust's dev log
only). Measured on Tansu after the hand-off fix: read offset 549 right after a seek to
14; on Apache Kafka it matches the stall "last decided 57, records up to 284, committed
58".

:class:`SeekSafeConsumer` gives each partition a *seek generation*, bumped in the
consumer thread in the same step as the aiokafka seek (:meth:`SafeFetchConsumerThread.seek`
and its ``seek_to_committed``; Faust's ``_seek`` runs the seek in that thread too). A
fetch is tagged with the generations of its partitions when aiokafka hands it over
(:class:`Fetched`). ``getmany`` does not hand on a record whose partition was sought
since its fetch (aiokafka fetches it again from the new position), and
:class:`ReadOffsets` ignores the drain loop's ``_read_offset`` write for such a record.
The seeks' own writes (``Consumer.seek``, ``perform_seek``) go through. Line numbers
below are those of faust-streaming 0.15.3 and aiokafka 0.14.0.

The short fetch wait
--------------------

faust-streaming builds its worker consumer with ``fetch_max_wait_ms=1500`` fixed in
code, with no setting to change it. A fetch for partitions with no new records is
parked by the broker for up to that long, and it stalls the worker on both brokers:

- The embedded Tansu broker holds every parked fetch for the whole wait, even when
  records arrive. Measured on Tansu (one record every 50 ms, plain aiokafka), the median
  produce -> consume delay was 414 ms with a 1,500 ms wait, 129 ms with 500 ms, 25 ms
  with 100 ms and 3 ms with 25 ms (12 ms at most). Each Faust hop of the pipeline
  (events -> triage, acks -> delivery) paid that delay.
- Apache Kafka answers a parked fetch as soon as records arrive on a partition it
  names, but aiokafka sends one fetch at a time per broker, and leaves out of it every
  partition whose records Faust has not taken yet. Under load the events partitions
  are such partitions: the fetch goes out without them, for the quiet ones (actions,
  the tables' changelogs), and is parked for 1.5 s while the events pile up behind it.
  Seen in the deployed shape (``python -m bench.latency --shape deployed --broker
  kafka``, 300 events/s): the triage agent got no event for 1.3 s out of every 1.7 s,
  decisions came 0.55 s (p50) to 1.7 s (p99) after their webhook and the lag grew; with
  the 25 ms wait they came in 14 ms (p50) and 180 ms (p99), and 15 / 430 ms at 500/s.

:data:`FETCH_MAX_WAIT_MS` bounds how long a fetch is parked while records come. Shorter
than 25 ms gained nothing on Tansu and cost throughput in a side-by-side run of a no-op
agent (more empty fetches to answer).

Once the worker has had no records for :data:`IDLE_AFTER` seconds the wait grows
(:class:`FetchWait`) and the first fetch with records brings it back. On Tansu it grows
to :data:`IDLE_FETCH_MAX_WAIT_MS`: an idle ``offhours run`` asked Tansu 40 times a second
for nothing, which cost the broker about 10 % of a core and the worker's consumer thread
3 % (``python -m bench.idle``: 4 % and 1.3 % with the idle wait); the first event after
a quiet spell is picked up within 100 ms instead of 25 ms. On Apache Kafka it grows to
Faust's own 1,500 ms (:data:`APACHE_IDLE_FETCH_MAX_WAIT_MS`): an idle worker takes no
records, so its fetch names every partition and Kafka answers it as soon as one arrives.

Schemes
-------

:data:`SCHEME` (``offhours+kafka://``) names :class:`Transport`, the Tansu transport:
the safe hand-off, the seek generations and the short fetch wait with Tansu's idle wait
(``Settings.on_tansu``, see :func:`streams.app.faust_options`). :data:`APACHE_SCHEME`
(``offhours+apache://``) names :class:`ApacheTransport`, used on Apache Kafka: the same
with Kafka's idle wait. Importing this module makes Faust find both by scheme.

The quiet take
--------------

:func:`quiet_noack_take` is Faust's ``Stream.noack_take`` without its idle ticks: the
stock one wakes every ``within`` seconds with nothing to take, which was most of an
idle worker's event loop (``python -m bench.idle``). For the triage agent.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

import aiokafka
from aiokafka.errors import IllegalStateError
from faust.transport import drivers
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, Message

FETCH_MAX_WAIT_MS = 25
"""How long the broker may park a fetch that finds no records while records come (Faust fixes 1,500 ms)."""

IDLE_FETCH_MAX_WAIT_MS = 100
"""The fetch wait on Tansu once the worker has had no records for :data:`IDLE_AFTER` seconds (:class:`FetchWait`)."""

APACHE_IDLE_FETCH_MAX_WAIT_MS = 1500
"""The fetch wait on Apache Kafka once idle: Faust's own (Kafka answers a parked fetch when records arrive)."""

IDLE_AFTER = 2.0
"""Seconds without a record before the worker consumer's fetch wait grows to its idle wait
(:data:`IDLE_FETCH_MAX_WAIT_MS` on Tansu, :data:`APACHE_IDLE_FETCH_MAX_WAIT_MS` on Apache Kafka)."""

SCHEME = "offhours+kafka"
"""The broker URL scheme that selects :class:`Transport` (Tansu)."""

APACHE_SCHEME = "offhours+apache"
"""The broker URL scheme that selects :class:`ApacheTransport` (Apache Kafka)."""


class ActiveView(Set[TP]):
    """A live, read-only view of Faust's active partitions for aiokafka.

    Membership follows Faust's set as it changes during a fetch (a partition resumed
    while aiokafka waits is returned in the same fetch, as with the stock hand-off),
    but the view is never false: aiokafka reads an empty partition set as "every
    partition", an empty view as nothing.
    """

    __slots__ = ("_live",)

    def __init__(self, live: Set[TP]) -> None:
        self._live = live

    def __contains__(self, tp: object) -> bool:
        return tp in self._live

    def __iter__(self) -> Iterator[TP]:
        return iter(set(self._live))

    def __len__(self) -> int:
        return len(self._live)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"ActiveView({set(self._live)!r})"


class ReadOffsets(defaultdict[TP, int | None]):
    """Faust's ``Consumer._read_offset`` that keeps a seek's position against older records.

    Also holds each partition's seek generation (:attr:`seeks`) and the record that
    ``getmany`` handed on last (:attr:`in_hand`). ``Consumer._drain_messages`` caches
    ``self._read_offset.__setitem__`` at its start (faust/transport/consumer.py:1181) and
    calls it with the offset of the record it just handed to the callback (:1223, after
    the callback, which a seek may interrupt); that write is ignored when the record's
    partition was sought since the record was fetched. Every other write goes through:
    ``Consumer.seek`` (:593) writes through ``__setitem__`` with the new position (a
    value other than the record's, or the same value, which the ignored write would
    have left anyway: the first matching write consumes :attr:`in_hand`), and
    ``perform_seek`` (:568) writes with ``update``, which a ``dict`` subclass does not
    route through ``__setitem__``.
    """

    def __init__(self) -> None:
        super().__init__(lambda: None)  # as Faust's own (faust/transport/consumer.py:481)
        self.seeks: dict[TP, int] = {}
        """The seek generation of each partition: how many times it was sought (in the consumer thread)."""
        self.in_hand: tuple[TP, int, int] | None = None
        """The record ``getmany`` handed on last: partition, offset, generation of its fetch."""

    def sought(self, tp: TP) -> None:
        """``tp`` was sought: records fetched before are stale."""
        self.seeks[tp] = self.seeks.get(tp, 0) + 1

    def generation(self, tp: TP) -> int:
        return self.seeks.get(tp, 0)

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        in_hand = self.in_hand
        if in_hand is not None and in_hand[0] == tp and in_hand[1] == offset:
            self.in_hand = None
            if in_hand[2] != self.generation(tp):
                return  # the drain loop, for a record fetched before a seek of tp
        super().__setitem__(tp, offset)


class Fetched(dict[TP, list[Any]]):
    """A fetch's records, with the seek generation of each partition when aiokafka handed them over."""

    __slots__ = ("seeks",)

    def __init__(self, records: Mapping[TP, list[Any]], seeks: Mapping[TP, int]) -> None:
        super().__init__(records)
        self.seeks = seeks


class SafeFetchConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's consumer thread; records reach Faust only for partitions it reads, tagged with their seek generation."""

    def _read_offsets(self) -> ReadOffsets | None:
        read_offset = getattr(self.consumer, "_read_offset", None)
        return read_offset if isinstance(read_offset, ReadOffsets) else None

    def seek(self, partition: TP, offset: int) -> None:
        """aiokafka's seek, and a new seek generation for ``partition`` in the same step.

        Runs in the consumer thread (:meth:`SeekSafeConsumer._seek`, :meth:`_seek_to_committed`),
        so no fetch is handed over between the two.
        """
        super().seek(partition, offset)
        read_offsets = self._read_offsets()
        if read_offsets is not None:
            read_offsets.sought(partition)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's ``seek_to_committed`` (faust/transport/drivers/aiokafka.py:786), each seek through :meth:`seek`."""
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        # aiokafka's AIOKafkaConsumer.seek_to_committed (aiokafka/consumer/consumer.py:864), but seeking with
        # self.seek: a partition with no committed offset (or 0) stays where it is, and
        # its fetched records stay current.
        consumer = self._ensure_consumer()
        committed: dict[TP, int] = {}
        for tp in consumer.assignment():
            offset = await consumer.committed(tp)
            committed[tp] = offset
            if offset and offset > 0:
                self.seek(tp, offset)
        return committed

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: Set[TP] | None,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Mapping[TP, list[Any]]:
        if active_partitions is None:  # a client-only app reads everything it subscribed to
            records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        else:
            records = await super()._fetch_records(
                consumer,
                ActiveView(active_partitions),  # type: ignore[arg-type]
                timeout=timeout,
                max_records=max_records,
            )
            records = self._deliverable(consumer, records, active_partitions)
        # No await since aiokafka handed the records over: no seek ran in between.
        return self._tagged(records)

    def _tagged(self, records: Mapping[TP, list[Any]]) -> Mapping[TP, list[Any]]:
        read_offsets = self._read_offsets()
        if read_offsets is None:
            return records
        return Fetched(records, {tp: read_offsets.generation(tp) for tp in records})

    def _deliverable(
        self, consumer: aiokafka.AIOKafkaConsumer, records: Mapping[TP, list[Any]], active: Set[TP]
    ) -> Mapping[TP, list[Any]]:
        """The records Faust's ``getmany`` will hand on; the others are fetched again later.

        ``getmany`` hands on a partition's records while the flow is on and the
        partition is active (or only held back by a full buffer); anything else it drops
        after aiokafka moved past it. Such records are kept out and their partition is
        sought back to the first of them.
        """
        flowing = self.consumer.flow_active
        buffered = self.consumer._buffered_partitions
        kept: dict[TP, list[Any]] = {}
        for tp, batch in records.items():
            if flowing and (tp in active or tp in buffered):
                kept[tp] = batch
            elif batch:
                self._rewind(consumer, tp, batch[0].offset)
        return kept

    def _rewind(self, consumer: aiokafka.AIOKafkaConsumer, tp: TP, offset: int) -> None:
        try:
            consumer.seek(tp, offset)
        except IllegalStateError:
            pass  # no longer assigned: the next assignment starts from the committed offset


@dataclass(slots=True)
class FetchWait:
    """The fetch wait of the worker consumer: short while records come, longer once idle.

    With a 25 ms wait an idle worker asks the broker 40 times a second (Tansu parks
    every fetch that finds nothing for the whole wait), and the broker and the worker's
    consumer thread spend their idle CPU answering and reading empty fetches
    (``python -m bench.idle``). After ``idle_after`` seconds without a record the wait
    becomes ``idle_ms``; the first fetch that returns records brings it back to
    ``busy_ms``. What it costs: the first event after a quiet spell waits for the
    parked fetch, up to ``idle_ms`` (and its acknowledgment's hop up to as much again,
    a fetch already parked with the long wait); the events after it see ``busy_ms``.
    Pure: the caller passes the clock.
    """

    busy_ms: int = FETCH_MAX_WAIT_MS
    idle_ms: int = IDLE_FETCH_MAX_WAIT_MS
    idle_after: float = IDLE_AFTER
    last_records: float | None = None

    def after_fetch(self, records: bool, now: float) -> int:
        """The wait the next fetch should ask for, after a fetch that returned ``records`` at ``now``."""
        if records or self.last_records is None:
            self.last_records = now
            return self.busy_ms
        return self.idle_ms if now - self.last_records >= self.idle_after else self.busy_ms


class ConsumerThread(SafeFetchConsumerThread):
    """The safe hand-off; the worker consumer fetches with :data:`FETCH_MAX_WAIT_MS`, and
    :attr:`idle_fetch_wait_ms` once idle (:class:`FetchWait`; Tansu's)."""

    idle_fetch_wait_ms: int = IDLE_FETCH_MAX_WAIT_MS
    _fetch_wait: FetchWait | None = None

    def _create_worker_consumer(self, transport: driver.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher; not started yet here.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        self._fetch_wait = FetchWait(idle_ms=self.idle_fetch_wait_ms)
        return consumer

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: Set[TP] | None,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Mapping[TP, list[Any]]:
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        fetcher = getattr(consumer, "_fetcher", None)
        if self._fetch_wait is not None and fetcher is not None:
            # aiokafka reads it each time it builds a fetch request (Fetcher._get_actions_per_node).
            fetcher._fetch_max_wait_ms = self._fetch_wait.after_fetch(any(records.values()), time.monotonic())
        return records


class ApacheConsumerThread(ConsumerThread):
    """:class:`ConsumerThread` with Apache Kafka's idle wait, :data:`APACHE_IDLE_FETCH_MAX_WAIT_MS`."""

    idle_fetch_wait_ms = APACHE_IDLE_FETCH_MAX_WAIT_MS


class SeekSafeConsumer(driver.Consumer):
    """Faust's aiokafka consumer that does not hand on records fetched before a seek of their partition."""

    _read_offset: ReadOffsets

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Replaces Faust's defaultdict (faust/transport/consumer.py:481) before anything is read.
        self._read_offset = ReadOffsets()
        self._fetched_seeks: Mapping[TP, int] | None = None

    async def _seek(self, partition: TP, offset: int) -> None:
        # Faust's ThreadDelegateConsumer._seek (faust/transport/consumer.py:1453) calls the
        # thread's seek from this (the event loop's) thread, while the consumer thread may be
        # handing over a fetch; run it in the consumer thread, as seek_to_committed is.
        await self._thread.call_thread(self._thread.seek, partition, offset)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's ``getmany`` without the records of a partition sought since their fetch.

        ``Consumer.getmany`` hands on one fetch (``_wait_next_records`` -> ``_getmany``)
        record by record while the drain loop runs each callback; a seek can come in
        between. aiokafka fetches the records skipped here again from the new position.
        """
        read_offsets = self._read_offset
        async for tp, message in super().getmany(timeout):
            current = read_offsets.generation(tp)
            fetched = current if self._fetched_seeks is None else self._fetched_seeks.get(tp, current)
            if fetched != current:
                continue  # sought since its fetch: aiokafka's position is the seek's
            read_offsets.in_hand = (tp, message.offset, fetched)
            yield tp, message

    async def _getmany(self, active_partitions: Set[TP] | None, timeout: float) -> Mapping[TP, list[Any]]:
        # Faust's Consumer.getmany (faust/transport/consumer.py:693) calls this once, through
        # _wait_next_records, before handing on the first record of the fetch.
        records = await super()._getmany(active_partitions, timeout)
        self._fetched_seeks = records.seeks if isinstance(records, Fetched) else None
        return records


class ApacheConsumer(SeekSafeConsumer):
    """Faust's aiokafka consumer running :class:`ApacheConsumerThread` (Apache Kafka)."""

    def _new_consumer_thread(self) -> ApacheConsumerThread:
        return ApacheConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Consumer(SeekSafeConsumer):
    """Faust's aiokafka consumer running :class:`ConsumerThread` (Tansu)."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class ApacheTransport(driver.Transport):
    """Faust's aiokafka transport with :class:`ApacheConsumer` (Apache Kafka)."""

    Consumer = ApacheConsumer


class Transport(driver.Transport):
    """Faust's aiokafka transport with :class:`Consumer` (Tansu)."""

    Consumer = Consumer


def transport_url(broker_url: str, scheme: str = SCHEME) -> str:
    """``broker_url`` (``kafka://a:9092,kafka://b:9092``) with every scheme set to ``scheme``."""
    return ",".join(f"{scheme}://{url.split('://', 1)[-1]}" for url in broker_url.split(","))


drivers.TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
drivers.TRANSPORTS.aliases.setdefault(APACHE_SCHEME, f"{__name__}:ApacheTransport")


async def quiet_noack_take(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Faust's ``Stream.noack_take(max_, within)`` (faust/streams.py:683) without its idle ticks.

    Faust's version waits for a full buffer with a ``within`` timeout in a loop, so an
    idle agent wakes every ``within`` seconds (every 5 ms for the triage agent), and
    each wake runs mode's ``wait_first`` (two tasks created and cancelled): about 3 %
    of a core for nothing (``python -m bench.idle``, cProfile of the idle worker's
    event loop: ``noack_take`` and ``wait_first`` are more than half of it). Here an
    empty buffer waits for its first event without a timeout, and the ``within``
    window starts with that event; the rest is Faust's: the events are buffered by a
    stream processor, yielded as a list of at most ``max_`` and acknowledged once the
    caller is done with the list.

    What it changes for a quiet stream: an event alone in its window is handed on
    ``within`` after it arrived (Faust's: at the next tick, between 0 and ``within``).
    """
    from mode.utils.aiter import aiter
    from mode.utils.futures import notify

    buffer: list[Any] = []
    first = asyncio.Event()
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    enable_acks: bool = stream.enable_acks

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            buffer.append(event)
            first.set()
            if len(buffer) >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await stream.wait(buffer_consumed)
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            if not buffer:
                await stream.wait_for_stopped(first)  # no timeout: nothing to hand on
            await stream.wait_for_stopped(buffer_full, timeout=within)
            if buffer:
                consuming = stream.loop.create_future()
                try:
                    yield list(buffer)
                finally:
                    taken = list(buffer)
                    buffer.clear()
                    first.clear()
                    for event in taken:
                        await stream.ack(event)
                    notify(consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)
