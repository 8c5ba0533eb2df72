"""Faust's aiokafka transport with a safe fetch hand-off (every broker) and, on Tansu, a short fetch wait.

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

The short fetch wait (Tansu only)
---------------------------------

faust-streaming builds its worker consumer with ``fetch_max_wait_ms=1500`` fixed in
code, with no setting to change it. A fetch for partitions with no new records is
parked by the broker for up to that long. Apache Kafka answers a parked fetch as soon
as records arrive, but the embedded Tansu broker does not: it holds the fetch for the
whole wait. Measured on Tansu (one record every 50 ms, plain aiokafka), the median
produce -> consume delay was 414 ms with a 1,500 ms wait, 129 ms with 500 ms, 25 ms with
100 ms and 3 ms with 25 ms (12 ms at most). Each Faust hop of the pipeline (events ->
triage, acks -> delivery) paid that delay. Shorter than 25 ms gained nothing and cost
throughput in a side-by-side run of a no-op agent (more empty fetches to answer).

:data:`FETCH_MAX_WAIT_MS` bounds how long an idle fetch is parked. On a broker that
answers parked fetches early it changes only how often an idle consumer asks again
(about 40 small requests per second per broker connection), not when records arrive.

Schemes
-------

:data:`SCHEME` (``offhours+kafka://``) names :class:`Transport`, the Tansu transport:
the safe hand-off and the short fetch wait (``Settings.on_tansu``, see
:func:`streams.app.faust_options`). :data:`APACHE_SCHEME` (``offhours+apache://``)
names :class:`ApacheTransport`, used on Apache Kafka: the safe hand-off only, with
Faust's own fetch wait. Importing this module makes Faust find both by scheme.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from typing import Any

import aiokafka
from aiokafka.errors import IllegalStateError
from faust.transport import drivers
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

FETCH_MAX_WAIT_MS = 25
"""How long the broker may park a fetch that finds no records (Faust fixes 1,500 ms)."""

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


class SafeFetchConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's consumer thread; records reach Faust only for partitions it reads."""

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: Set[TP] | None,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Mapping[TP, list[Any]]:
        if active_partitions is None:  # a client-only app reads everything it subscribed to
            return await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        records = await super()._fetch_records(
            consumer,
            ActiveView(active_partitions),  # type: ignore[arg-type]
            timeout=timeout,
            max_records=max_records,
        )
        return self._deliverable(consumer, records, active_partitions)

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


class ConsumerThread(SafeFetchConsumerThread):
    """The safe hand-off; the worker consumer fetches with :data:`FETCH_MAX_WAIT_MS` (Tansu)."""

    def _create_worker_consumer(self, transport: driver.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher; not started yet here.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class ApacheConsumer(driver.Consumer):
    """Faust's aiokafka consumer running :class:`SafeFetchConsumerThread`."""

    def _new_consumer_thread(self) -> SafeFetchConsumerThread:
        return SafeFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Consumer(driver.Consumer):
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
