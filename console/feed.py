"""Reads the events, actions and routes topics from their start into a :class:`~console.projection.Projection`.

One consumer without a consumer group (it joins no group and commits nothing, so it
never takes partitions from a worker), subscribed to all partitions of the three
topics, reading from the earliest offset the broker still keeps (the topics'
retention) and then following them. The same in ``offhours run`` and in every
``offhours ingest`` replica: each web process builds the whole view on its own from
the broker, whichever processes run the workers (docs/console.md "The queue"), unless
``OFFHOURS_OPS__CONSOLE=false`` turns its console off. It yields to the event loop
every :data:`YIELD_EVERY` records, so catching up never holds a webhook of the same
process for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from brokers.client import KafkaConnection, connection_options
from console.projection import Projection

log = logging.getLogger(__name__)

YIELD_EVERY = 50
"""Records applied between two turns of the event loop, so a webhook of the same
process waits behind a few dozen decisions, not behind a whole fetched batch."""


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics the console reads."""

    events: str
    actions: str
    routes: str


class TopicFeed:
    """Feeds ``projection`` from the topics until stopped; ``start``/``stop`` as the service's resources."""

    def __init__(self, connection: KafkaConnection, topics: Topics, projection: Projection) -> None:
        self._connection = connection
        self.topics = topics
        self.projection = projection
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **connection_options(self._connection), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", client_id="offhours-console",
        )
        await consumer.start()
        consumer.subscribe([self.topics.events, self.topics.actions, self.topics.routes])
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(consumer), name="console feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("console: reading the topics failed; retrying")
                await asyncio.sleep(1)
                continue
            applied = 0
            for partition, records in batches.items():
                for record in records:
                    with contextlib.suppress(Exception):
                        self._apply(partition.topic, partition.partition, record.key, record.value)
                    applied += 1
                    if applied % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # the webhooks of this process answer in between
                await asyncio.sleep(0)

    def _apply(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        if topic == self.topics.events:
            self.projection.apply_event(value, partition)
        elif topic == self.topics.actions:
            self.projection.apply_action(key, value)
        elif topic == self.topics.routes:
            self.projection.apply_route(value)
