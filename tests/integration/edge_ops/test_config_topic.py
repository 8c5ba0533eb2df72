"""The configuration topic on the real embedded broker: one worker's change reaches the others."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from brokers.tansu import EmbeddedBroker
from edge.actions import KafkaActionSink
from edge.config_store import ConfigDocument, KafkaConfigStore
from edge.ops import build_operations_api
from records.links import LinkSigner
from schedules import Coverage
from tests.support.ops import (
    AUTH,
    COVERAGE_TEXT,
    IDENTITY,
    LINK_SECRET,
    ROME,
    TOKEN,
    FixedClock,
)

pytestmark = pytest.mark.broker
SEEN_WITHIN = 10.0
TUESDAY_15 = datetime(2026, 11, 24, 15, 0, tzinfo=ROME)


@pytest.fixture(scope="module")
def broker() -> AsyncIterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


class Follower:
    """Records each coverage a store calls back with, and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.seen: list[Coverage] = []
        self._changed = asyncio.Condition()

    async def __call__(self, coverage: Coverage) -> None:
        async with self._changed:
            self.seen.append(coverage)
            self._changed.notify_all()

    async def until(self, condition) -> Coverage:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.seen and condition(self.seen[-1])), SEEN_WITHIN)
            return self.seen[-1]


def _strike_closed(coverage: Coverage) -> bool:
    return coverage.teams["care-it"].mode_at(TUESDAY_15) == "closed"


class TestConfigTopic:
    async def test_a_change_reaches_a_second_worker_and_a_restarted_one(self, any_broker) -> None:
        """A change made through worker A's API is applied by worker B within seconds; worker C,
        started later, starts from it; on Tansu and on Apache Kafka."""
        broker = any_broker
        suffix = uuid.uuid4().hex[:8]
        topics = {"topic": f"offhours.config.{suffix}", "audit_topic": f"offhours.audit.{suffix}"}
        clock = FixedClock()
        worker_a = KafkaConfigStore(broker.bootstrap, clock=clock, **topics)
        worker_b = KafkaConfigStore(broker.bootstrap, clock=clock, **topics)
        worker_c = KafkaConfigStore(broker.bootstrap, clock=clock, **topics)
        actions = KafkaActionSink(broker.bootstrap, f"offhours.actions.{suffix}", partitions=1)
        follower_b, follower_c = Follower(), Follower()
        await worker_a.start(seed=COVERAGE_TEXT)
        await worker_b.start(seed=COVERAGE_TEXT)
        await actions.start()
        try:
            await worker_b.follow(follower_b)
            signer = LinkSigner(LINK_SECRET, ttl=timedelta(hours=12), clock=clock)
            root = web.Application()
            root.add_subapp("/api/v1", build_operations_api(worker_a, actions, {TOKEN: IDENTITY}, signer, clock))
            async with TestClient(TestServer(root, host="127.0.0.1")) as client:
                added = await client.post("/api/v1/teams/care-it/overrides", headers=AUTH, json={
                    "from": "2026-11-24 14:00", "to": "2026-11-25 00:00", "mode": "closed", "note": "sciopero"})
                assert 201 == added.status
                seen_by_b = await follower_b.until(_strike_closed)
            await worker_c.start()
            await worker_c.follow(follower_c)
            started_from = await follower_c.until(lambda coverage: True)
            assert (2, 2, 2) == (worker_a.current().version, worker_b.current().version, worker_c.current().version)
            assert ("closed", "closed") == (
                seen_by_b.teams["care-it"].mode_at(TUESDAY_15), started_from.teams["care-it"].mode_at(TUESDAY_15))
            assert [IDENTITY] == [event["who"] for event in await _read_all(broker, topics["audit_topic"])
                                  if event["what"].startswith("added override")]
        finally:
            for worker in (worker_a, worker_b, worker_c):
                await worker.stop()
            await actions.stop()

    async def test_an_invalid_document_on_the_topic_is_skipped(self, broker: EmbeddedBroker) -> None:
        """A worker handed an invalid document keeps the coverage it had."""
        suffix = uuid.uuid4().hex[:8]
        clock = FixedClock()
        worker = KafkaConfigStore(broker.bootstrap, clock=clock, topic=f"offhours.config.{suffix}",
                                  audit_topic=f"offhours.audit.{suffix}")
        await worker.start(seed=COVERAGE_TEXT)
        follower = Follower()
        await worker.follow(follower)
        # Another writer (an older release, a hand-made record) puts an invalid document, then a valid one.
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            broken = ConfigDocument(yaml="teams: {care-it: {timezone: Mars/Olympus}}", version=5)
            await producer.send_and_wait(worker.topic, value=broken.to_json(), key=b"coverage")
            good = ConfigDocument(yaml=COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza"), version=6)
            await producer.send_and_wait(worker.topic, value=good.to_json(), key=b"coverage")
            await follower.until(lambda coverage: coverage.teams["care-it"].name == "Assistenza")
            assert (6, ["Assistenza Italia", "Assistenza"]) == (
                worker.current().version, [c.teams["care-it"].name for c in follower.seen])
        finally:
            await producer.stop()
            await worker.stop()


class GatedKafkaStore(KafkaConfigStore):
    """A store whose validation of a topic document waits for the test's signal."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate_timed_out: bool | None = None

    def load(self, document: ConfigDocument) -> Coverage:
        if document.version >= 5:
            self.entered.set()
            self.gate_timed_out = not self.gate.wait(timeout=2.0)
        return super().load(document)


class TestTopicDocumentsOffTheLoop:
    async def test_a_document_from_the_topic_validates_off_the_event_loop(self, broker: EmbeddedBroker) -> None:
        """While a worker validates a document read from the topic, its event loop keeps running."""
        suffix = uuid.uuid4().hex[:8]
        worker = GatedKafkaStore(broker.bootstrap, clock=FixedClock(), topic=f"offhours.config.{suffix}",
                                 audit_topic=f"offhours.audit.{suffix}")
        await worker.start(seed=COVERAGE_TEXT)
        follower = Follower()
        await worker.follow(follower)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            changed = ConfigDocument(yaml=COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza"), version=5)
            await producer.send_and_wait(worker.topic, value=changed.to_json(), key=b"coverage")
            # Resumes only if the loop runs while the thread validates (else after the gate's 2 s timeout).
            await asyncio.to_thread(worker.entered.wait, SEEN_WITHIN)
            worker.gate.set()
            await follower.until(lambda coverage: coverage.teams["care-it"].name == "Assistenza")
            assert (False, 5) == (worker.gate_timed_out, worker.current().version)
        finally:
            await producer.stop()
            await worker.stop()

    async def test_a_topic_document_naming_a_host_file_is_skipped(self, broker: EmbeddedBroker, tmp_path) -> None:
        """A document on the topic whose holidays name a host file (a valid calendar) is refused like an API one."""
        (tmp_path / "host.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:a@t\r\n"
            "DTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260820\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        suffix = uuid.uuid4().hex[:8]
        worker = KafkaConfigStore(broker.bootstrap, clock=FixedClock(), topic=f"offhours.config.{suffix}",
                                  audit_topic=f"offhours.audit.{suffix}")
        await worker.start(seed=COVERAGE_TEXT)
        follower = Follower()
        await worker.follow(follower)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            reading = COVERAGE_TEXT.replace("    holidays:\n      country: IT", f"    holidays:\n      ics: {tmp_path / 'host.ics'}\n      country: IT", 1)
            await producer.send_and_wait(worker.topic, value=ConfigDocument(yaml=reading, version=5).to_json(), key=b"coverage")
            good = ConfigDocument(yaml=COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza"), version=6)
            await producer.send_and_wait(worker.topic, value=good.to_json(), key=b"coverage")
            await follower.until(lambda coverage: coverage.teams["care-it"].name == "Assistenza")
            assert [None, None] == [c.teams["care-it"].holidays.name_of(date(2026, 8, 20)) for c in follower.seen]
        finally:
            await producer.stop()
            await worker.stop()


async def _read_all(broker: EmbeddedBroker, topic: str) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [orjson.loads(record.value) for records in batches.values() for record in records]
    finally:
        await consumer.stop()
