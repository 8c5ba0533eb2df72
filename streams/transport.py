"""Faust's aiokafka transport with a short consumer fetch wait.

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

:data:`SCHEME` names this transport in a broker URL (``offhours+kafka://host:9092``);
importing this module makes Faust find it by that scheme. Everything else is Faust's
``kafka://`` transport unchanged.

It is used on Tansu only (``Settings.on_tansu``, see :func:`streams.app.faust_options`):
on Apache Kafka the worker runs Faust's own ``kafka://`` transport and fetch wait.
"""

from __future__ import annotations

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as driver

FETCH_MAX_WAIT_MS = 25
"""How long the broker may park a fetch that finds no records (Faust fixes 1,500 ms)."""

SCHEME = "offhours+kafka"
"""The broker URL scheme that selects :class:`Transport`."""


class ConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's consumer thread; the worker consumer fetches with :data:`FETCH_MAX_WAIT_MS`."""

    def _create_worker_consumer(self, transport: driver.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher; not started yet here.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(driver.Consumer):
    """Faust's aiokafka consumer running :class:`ConsumerThread`."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    """Faust's aiokafka transport with :class:`Consumer`."""

    Consumer = Consumer


def transport_url(broker_url: str) -> str:
    """``broker_url`` (``kafka://a:9092,kafka://b:9092``) with every scheme set to :data:`SCHEME`."""
    return ",".join(f"{SCHEME}://{url.split('://', 1)[-1]}" for url in broker_url.split(","))


drivers.TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
