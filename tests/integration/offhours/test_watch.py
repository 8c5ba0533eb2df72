"""``offhours decisions`` as a user runs it: a subprocess reading the session broker.

Decision records are produced straight to a topic of the test's own, keyed by
conversation as the triage agent keys them; each test waits for the line it expects
(or the ``watching`` line on stderr) with a deadline, never a blind sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from brokers.tansu import EmbeddedBroker
from edge.config_store import ensure_topic
from tests.support.watch import DEADLINE, WatchProcess

pytestmark = pytest.mark.broker


def decision(event_id: str) -> bytes:
    """A decision record as the triage agent writes it (README: Decisions)."""
    return orjson.dumps({
        "event_id": event_id, "team": "care-it", "mode": "closed", "action": "queue", "route_to": [],
        "ack": {"text": "Grazie, ti rispondiamo domani.", "lang": "it", "public": False},
        "ack_suppressed": None, "next_open": "2026-11-23T09:00:00+01:00", "reason": "closed",
    })


async def publish(broker: EmbeddedBroker, topic: str, records: Sequence[tuple[str, str]]) -> None:
    """Produce ``(conversation, event_id)`` decisions to ``topic``, keyed by conversation."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        pending = [await producer.send(topic, key=key.encode(), value=decision(eid)) for key, eid in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@pytest.fixture
async def decisions_topic(broker: EmbeddedBroker, unique_name: str) -> str:
    """A decisions topic of this test with two partitions."""
    topic = f"{unique_name}.decisions"
    await ensure_topic(broker.bootstrap, topic, partitions=2)
    return topic


STORED = [("fb:P:a", "fb:m_a1"), ("fb:P:b", "fb:m_b1"), ("fb:P:a", "fb:m_a2")]


class TestDecisionsCommand:
    """``offhours decisions``: the decisions topic as JSON lines."""

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            pytest.param([], ["fb:m_a1", "fb:m_a2", "fb:m_b1"], id="every_decision"),
            pytest.param(["--conversation", "fb:P:a"], ["fb:m_a1", "fb:m_a2"], id="one_conversation_in_order"),
            pytest.param(["--conversation", "fb:P:none"], [], id="unknown_conversation_prints_nothing"),
        ],
    )
    async def test_prints_the_decisions_on_the_topic_and_exits(
        self, broker: EmbeddedBroker, decisions_topic: str, filters: list[str], expected: list[str]
    ) -> None:
        """Without --follow it prints each stored decision once as a JSON line, then exits 0."""
        await publish(broker, decisions_topic, STORED)
        watch = WatchProcess.spawn(["decisions", "--broker", broker.url, "--topic", decisions_topic, *filters])
        code = await asyncio.to_thread(watch.finish)
        printed = [d["event_id"] for d in watch.decisions()]
        ordered = printed if filters else sorted(printed)
        assert (0, expected) == (code, ordered)

    async def test_follow_prints_new_decisions_until_interrupted(
        self, broker: EmbeddedBroker, decisions_topic: str
    ) -> None:
        """With --follow it skips what was stored, prints each new decision, and exits 0 on Ctrl-C."""
        await publish(broker, decisions_topic, [("fb:P:a", "fb:m_old")])
        watch = WatchProcess.spawn(["decisions", "--broker", broker.url, "--topic", decisions_topic, "--follow"])
        try:
            await watch.wait_watching()
            await publish(broker, decisions_topic, [("fb:P:a", "fb:m_new1"), ("fb:P:b", "fb:m_new2")])
            printed = sorted(d["event_id"] for d in await watch.wait_lines(2))
        finally:
            code = watch.interrupt()
        assert (0, ["fb:m_new1", "fb:m_new2"], 2) == (code, printed, len(watch.lines))

    async def test_follow_from_beginning_prints_stored_then_new(
        self, broker: EmbeddedBroker, decisions_topic: str
    ) -> None:
        """--follow --from-beginning prints the stored decisions first, then the new ones as they come."""
        await publish(broker, decisions_topic, [("fb:P:a", "fb:m_old")])
        watch = WatchProcess.spawn(
            ["decisions", "--broker", broker.url, "--topic", decisions_topic, "--follow", "--from-beginning"]
        )
        try:
            await watch.wait_lines(1)
            await publish(broker, decisions_topic, [("fb:P:a", "fb:m_new")])
            printed = [d["event_id"] for d in await watch.wait_lines(2)]
        finally:
            code = watch.interrupt()
        assert (0, ["fb:m_old", "fb:m_new"]) == (code, printed)

    async def test_follow_waits_for_the_topic_to_exist(self, broker: EmbeddedBroker, unique_name: str) -> None:
        """With --follow on a topic not created yet it waits, then prints the topic's first decision."""
        topic = f"{unique_name}.decisions"
        watch = WatchProcess.spawn(["decisions", "--broker", broker.url, "--topic", topic, "--follow"])
        try:
            end = time.monotonic() + DEADLINE
            while not any(line.startswith("waiting for topic") for line in watch.errors):
                assert time.monotonic() < end, watch.errors
                await asyncio.sleep(0.05)
            await ensure_topic(broker.bootstrap, topic, partitions=1)
            await watch.wait_watching()
            await publish(broker, topic, [("fb:P:a", "fb:m_first")])
            printed = [d["event_id"] for d in await watch.wait_lines(1)]
        finally:
            code = watch.interrupt()
        assert (0, ["fb:m_first"]) == (code, printed)

    @pytest.mark.parametrize(
        ("arguments", "expected"),
        [
            pytest.param(["--topic", "no.such.topic"], (1, "no topic 'no.such.topic'"), id="missing_topic"),
            pytest.param(None, (2, "no broker"), id="no_broker"),
        ],
    )
    async def test_errors_exit_non_zero_with_the_reason(
        self, broker: EmbeddedBroker, arguments: list[str] | None, expected: tuple[int, str]
    ) -> None:
        """A missing topic exits 1, a missing broker exits 2; stderr says what is wrong, stdout stays empty."""
        command = ["decisions"] if arguments is None else ["decisions", "--broker", broker.url, *arguments]
        watch = WatchProcess.spawn(command)
        code = await asyncio.to_thread(watch.finish)
        message = expected[1] in "\n".join(watch.errors)
        assert (expected[0], True, []) == (code, message, watch.lines)

