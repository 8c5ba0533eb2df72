"""KafkaEventSink and the webhook app against the real embedded broker."""

from __future__ import annotations

import asyncio
import gc
import socket
import uuid
import warnings
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaConnectionError

from brokers.tansu import EmbeddedBroker
from edge import signatures
from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.sink import KafkaEventSink
from records.headers import HEADER_RECEIVED
from records.wire import parse_event

pytestmark = pytest.mark.broker

TG_SECRET = "tg_secret-1_0123456789"
GENERIC_SECRET = "generic-secret-0123456789"


def unique(name: str) -> str:
    """A topic or group name no other test uses."""
    return f"{name}.{uuid.uuid4().hex[:12]}"


def update(update_id: int, chat: int, message_id: int) -> bytes:
    return orjson.dumps({"update_id": update_id, "message": {"message_id": message_id, "date": 1717000500,
        "from": {"id": chat, "is_bot": False, "first_name": "Kim"}, "chat": {"id": chat, "type": "private"},
        "text": f"message {message_id}"}})


async def read(broker: EmbeddedBroker, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    return [(record.key, record.value) for record in await read_records(broker, topic, count)]


async def read_records(broker: EmbeddedBroker, topic: str, count: int) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                group_id=unique("edge-test"))
    await consumer.start()
    try:
        records: list[ConsumerRecord] = []
        while len(records) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=20)
            records.extend(r for rs in batch.values() for r in rs)
        return records
    finally:
        await consumer.stop()


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestKafkaEventSink:
    """KafkaEventSink: keyed records with the receipt time, a clean failed start."""

    async def test_webhook_events_reach_the_topic_keyed_by_conversation(self, edge_broker: EmbeddedBroker) -> None:
        """Signed Telegram updates go through the app onto the topic once each, keyed by conversation."""
        topic = unique("social.events")
        sink = KafkaEventSink(edge_broker.bootstrap, topic)
        settings = EdgeSettings(telegram_secret_token=TG_SECRET, telegram_bot="acme_help_bot",
                                accounts={"acme_help_bot": "acme.it.telegram"})
        app = build_webhooks(settings, sink, now=lambda: datetime(2026, 11, 23, tzinfo=UTC))
        bodies = [update(1, 111, 1), update(2, 222, 1), update(1, 111, 1)]
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            statuses = []
            for body in bodies:
                response = await client.post("/webhooks/telegram", data=body,
                                             headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
                statuses.append(response.status)
        records = await read(edge_broker, topic, 2)
        produced = sorted((key.decode(), parse_event(value).id) for key, value in records)
        assert ([200, 200, 200], [("tg:acme_help_bot:111", "tg:111:1"), ("tg:acme_help_bot:222", "tg:222:1")]) == (
            statuses, produced
        )

    async def test_publish_before_start_fails(self) -> None:
        """Publishing on a sink that was never started raises instead of losing events."""
        sink = KafkaEventSink("127.0.0.1:9", unique("never"))
        with pytest.raises(RuntimeError):
            await sink.publish([])

    async def test_signature_of_generic_events_is_checked_before_producing(self, edge_broker: EmbeddedBroker) -> None:
        """A forged generic delivery writes nothing to the topic; the next valid one is the first record."""
        topic = unique("social.events")
        sink = KafkaEventSink(edge_broker.bootstrap, topic)
        app = build_webhooks(EdgeSettings(generic_secret=GENERIC_SECRET), sink)
        event = {"id": "crm:1", "account": "a", "channel": "generic", "kind": "dm", "conversation": "crm:c1",
                 "author": {"id": "u"}, "at": "2026-11-23T22:14:05+01:00"}
        forged = orjson.dumps({**event, "id": "crm:forged"})
        valid = orjson.dumps(event)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            refused = await client.post("/webhooks/generic", data=forged, headers={"X-Offhours-Signature": "sha256=00"})
            accepted = await client.post("/webhooks/generic", data=valid,
                                         headers={"X-Offhours-Signature": signatures.generic_signature(GENERIC_SECRET, valid)})
        records = await read(edge_broker, topic, 1)
        assert ((403, 200), ["crm:1"]) == ((refused.status, accepted.status), [parse_event(v).id for _, v in records])

    async def test_each_record_carries_the_receipt_time(self, edge_broker: EmbeddedBroker) -> None:
        """Every produced record has the offhours-received header: the sink clock as POSIX seconds text."""
        topic = unique("social.events")
        received = datetime(2026, 11, 23, 21, 14, 5, 250000, tzinfo=UTC).timestamp()
        events = [
            parse_event(orjson.dumps({"id": f"crm:{n}", "account": "a", "channel": "generic", "kind": "dm",
                                      "conversation": f"crm:c{n}", "author": {"id": "u"},
                                      "at": "2026-11-23T22:14:05+01:00"}))
            for n in (1, 2)
        ]
        async with KafkaEventSink(edge_broker.bootstrap, topic, clock=lambda: received) as sink:
            await sink.publish(events)
        records = await read_records(edge_broker, topic, 2)
        stamps = sorted((parse_event(r.value).id, dict(r.headers)[HEADER_RECEIVED]) for r in records)
        assert [("crm:1", b"1795468445.25"), ("crm:2", b"1795468445.25")] == stamps

    async def test_failed_start_leaves_no_producer_open(self) -> None:
        """A start against an unreachable broker raises and closes its producer (no unclosed warning)."""
        sink = KafkaEventSink(f"127.0.0.1:{closed_port()}", unique("never"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(KafkaConnectionError):
                await sink.start()
            gc.collect()
        unclosed = [str(w.message) for w in caught if "Unclosed AIOKafkaProducer" in str(w.message)]
        assert [] == unclosed
