"""Issue 17: a worker on Apache Kafka runs as a Kafka operator expects; Tansu keeps its accommodations.

One in-process worker (:func:`streams.worker.running_worker`) per broker, with the
settings the tests use there (:func:`tests.conftest.settings_for`: one record per batch
on Tansu only). On Apache Kafka: Faust's aiokafka transport with only the safe fetch
hand-off of :mod:`streams.transport` (a fix of Faust, on both brokers), whose worker
consumer parks idle fetches for Faust's 1,500 ms, the recovery consistency check on,
16 KiB produce batches; on Tansu the opposite of each. The stalled-partition watchdog
runs on both (it fired on Apache Kafka too; deploy/README.md). Both decide the events
they are given.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.transport.drivers import aiokafka as stock

import streams.transport as tansu_transport
from brokers.apache import KafkaServer
from brokers.positions import seek_to_beginning
from brokers.tansu import EmbeddedBroker
from records.wire import Decision
from schedules import load_coverage
from streams.settings import Settings
from streams.worker import running_worker
from tests.conftest import EXAMPLE_COVERAGE, settings_for

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

EVENTS = 40
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday morning


def events() -> list[tuple[bytes, bytes]]:
    """``(key, value)`` of :data:`EVENTS` customer messages over ten conversations."""
    out = []
    for n in range(EVENTS):
        conversation = f"conv-{n % 10}"
        event = {
            "id": f"ev-{n}",
            "account": "acme.it.facebook",
            "channel": "facebook",
            "kind": "dm",
            "conversation": conversation,
            "author": {"id": f"user-{n % 10}", "name": "Ana", "followers": n},
            "text": "il mio ordine non è arrivato",
            "lang": None,
            "at": (START + timedelta(minutes=n)).isoformat(),
            "in_reply_to": None,
        }
        out.append((conversation.encode(), orjson.dumps(event)))
    return out


async def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(settings.events_topic, key=k, value=v) for k, v in records])
    finally:
        await producer.stop()


async def decided(settings: Settings, wanted: int, timeout: float = 60.0) -> dict[str, Decision]:
    """The decisions topic read from its start until ``wanted`` distinct events have one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, Decision] = {}
    try:
        tps = [TopicPartition(settings.decisions_topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await seek_to_beginning(consumer, *tps)
        deadline = time.monotonic() + timeout
        while len(found) < wanted and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    decision = Decision.from_json(record.value)
                    found[decision.event_id] = decision
    finally:
        await consumer.stop()
    return found


def worker_fetch_wait_ms(app: object) -> tuple[int, int]:
    """How long the worker consumer lets the broker park a fetch: while records come, once idle.

    The fetcher's own value is one of the two (which one depends on how long the start took).
    """
    thread = app.consumer._thread  # type: ignore[attr-defined]
    waits = (thread._fetch_wait.busy_ms, thread._fetch_wait.idle_ms)
    assert thread._consumer._fetcher._fetch_max_wait_ms in waits
    return waits


async def run_worker(broker: EmbeddedBroker | KafkaServer, name: str, data_dir: Path) -> dict[str, object]:
    settings = settings_for(broker, name, data_dir)
    coverage = load_coverage(EXAMPLE_COVERAGE)
    async with running_worker(settings, coverage, reconcile=False, promises=False) as app:
        seen = {
            "transport": type(app.transport),
            "fetch wait ms": worker_fetch_wait_ms(app),
            "consistency check": app.conf.recovery_consistency_check,
            "max batch": app.conf.producer_max_batch_size,
            "watchdog": app.progress is not None,
        }
        await produce(settings, events())
        decisions = await decided(settings, EVENTS)
    seen["decided"] = sorted(decisions)
    seen["actions"] = {d.action for d in decisions.values()}
    return seen


class TestWorkerByBroker:
    async def test_on_apache_kafka_the_stock_transport_decides_every_event(
        self, kafka_broker: KafkaServer, unique_name: str, tmp_path: Path
    ) -> None:
        seen = await run_worker(kafka_broker, unique_name, tmp_path / "data")
        assert sorted(f"ev-{n}" for n in range(EVENTS)) == seen.pop("decided")
        assert issubclass(seen["transport"], stock.Transport)  # type: ignore[arg-type]
        assert {"transport": tansu_transport.ApacheTransport, "fetch wait ms": (25, 1500), "consistency check": True,
                "max batch": 16384, "watchdog": True} == {k: v for k, v in seen.items() if k != "actions"}
        assert seen["actions"] and "reject" not in seen["actions"]

    async def test_on_tansu_every_accommodation_stays(
        self, broker: EmbeddedBroker, unique_name: str, tmp_path: Path
    ) -> None:
        seen = await run_worker(broker, unique_name, tmp_path / "data")
        assert sorted(f"ev-{n}" for n in range(EVENTS)) == seen.pop("decided")
        assert {"transport": tansu_transport.Transport, "fetch wait ms": (25, 100),
                "consistency check": False, "max batch": 1, "watchdog": True} == {
                    k: v for k, v in seen.items() if k != "actions"}
