"""``offhours decisions`` as a user runs it: a subprocess reading the session broker.

Decision records are produced straight to a topic of the test's own, keyed by
conversation as the triage agent keys them; each test waits for the line it expects
(or the ``watching`` line on stderr) with a deadline, never a blind sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from brokers.tansu import EmbeddedBroker
from edge.config_store import ensure_topic
from tests.integration.workers import ROOT

pytestmark = pytest.mark.broker

DEADLINE = 30.0


@dataclass
class WatchProcess:
    """One ``python -m offhours decisions ...`` child; threads keep its stdout and stderr lines."""

    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    watching: threading.Event = field(default_factory=threading.Event)
    readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            reader = threading.Thread(target=self._read, args=(stream, into), daemon=True)
            reader.start()
            self.readers.append(reader)

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            text = line.decode().rstrip("\n")
            into.append(text)
            if into is self.errors and text.startswith("watching "):
                self.watching.set()

    @classmethod
    def spawn(cls, arguments: Sequence[str]) -> WatchProcess:
        """Run ``offhours`` with ``arguments`` (``decisions ...``), with no OFFHOURS_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
        env["PYTHONPATH"] = str(ROOT)
        process = subprocess.Popen(
            [sys.executable, "-m", "offhours", *arguments],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        return cls(process)

    async def wait_watching(self) -> None:
        """Until the command holds its start positions (its ``watching`` line)."""
        if not await asyncio.to_thread(self.watching.wait, DEADLINE):
            raise AssertionError(f"offhours decisions did not start: {self.errors}")

    async def wait_lines(self, count: int) -> list[dict[str, object]]:
        """The first ``count`` decisions printed, once that many are."""
        end = time.monotonic() + DEADLINE
        while len(self.lines) < count:
            if time.monotonic() > end or self.process.poll() is not None and len(self.lines) < count:
                raise AssertionError(f"expected {count} decisions, got {self.lines}; stderr: {self.errors}")
            await asyncio.sleep(0.05)
        return [orjson.loads(line) for line in self.lines[:count]]

    def interrupt(self) -> int:
        """Ctrl-C; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> int:
        """Wait for the exit and for the last line read; the exit code."""
        try:
            code = self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"offhours decisions did not stop; stderr: {self.errors}") from None
        for reader in self.readers:
            reader.join(DEADLINE)
        return code

    def decisions(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.lines]


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
