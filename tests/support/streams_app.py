"""The streams tests' builders on a real broker: an event of care-it, Monday instants in Rome,
send to the events topic, read a topic until it holds enough records, a metric's sample
(they were in tests/streams/test_app.py)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaProducer

from streams.metrics import Metrics
from streams.settings import Settings
from tests.support.workers import TopicReader

ROME = ZoneInfo("Europe/Rome")


def event(event_id: str, at: datetime, *, conversation: str = "fb:PAGE_111:PSID_222", **changes: Any) -> bytes:
    data = {
        "id": event_id,
        "account": "acme.it.facebook",
        "channel": "facebook",
        "kind": "dm",
        "conversation": conversation,
        "author": {"id": "PSID_222", "name": "Ana Lopez", "followers": 120},
        "text": "Il mio ordine non è arrivato",
        "lang": "it",
        "at": at.isoformat(),
        "in_reply_to": None,
    }
    data.update(changes)
    return orjson.dumps(data)


MONDAY_EVENING = datetime(2026, 11, 23, 21, 14, tzinfo=ROME)  # care-it reduced, marta on call


MONDAY_MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=ROME)  # care-it open


async def send(settings: Settings, *records: tuple[bytes | None, bytes, list[tuple[str, bytes]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(settings.events_topic, key=key, value=value, headers=headers)
    finally:
        await producer.stop()


async def read_until(settings: Settings, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """Records of ``topic`` once there are at least ``count`` of them (or the timeout)."""
    deadline = time.monotonic() + timeout
    async with TopicReader(settings, topic) as reader:
        while len(reader.records) < count and time.monotonic() < deadline:
            await reader.poll(0.2)
        return reader.records


def sample_value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)

