"""Helpers of the distributed tests: worker processes and reading topics back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from brokers.positions import seek_to_beginning
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``python -m streams.worker`` use ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
    values = {
        "BROKER_URL": settings.broker_url or "",
        "COVERAGE_FILE": str(settings.coverage_file),
        "APP_ID": settings.app_id,
        "EVENTS_TOPIC": settings.events_topic,
        "DECISIONS_TOPIC": settings.decisions_topic,
        "ACKS_TOPIC": settings.acks_topic,
        "ROUTES_TOPIC": settings.routes_topic,
        "DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        "CONFIG_TOPIC": settings.config_topic,
        "PARTITIONS": str(settings.partitions),
        "REPLICATION": str(settings.replication),
        "STORE": settings.store,
        "SESSION_TIMEOUT": str(settings.session_timeout),
        "RECONCILE_INTERVAL": str(settings.reconcile_interval),
        "WATCHDOG_AFTER": str(settings.watchdog_after),
        "SWEEP_INTERVAL": str(settings.sweep_interval),
        "DELIVERIES_TOPIC": settings.deliveries_topic,
        "ONE_RECORD_BATCHES": "true" if settings.one_record_batches else "false",
        "DATA_DIR": str(settings.data_dir),
        "OPS__ACTIONS_TOPIC": settings.ops.actions_topic,
        "OPS__AUDIT_TOPIC": settings.ops.audit_topic,
        # These workers have no platforms to talk to: the acks outbox is what is checked.
        "RESPONDERS__DELIVER": "true" if settings.responders.deliver else "false",
    }
    env.update({f"OFFHOURS_{k}": v for k, v in values.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class WorkerProcess:
    """One ``python -m streams.worker`` child, its stderr kept in a file.

    A thread reads its stdout: ``READY`` sets :attr:`ready`, ``ASSIGNED 0,2`` updates
    :attr:`partitions` (the events partitions it holds).
    """

    index: int
    process: subprocess.Popen[bytes]
    log_path: Path
    ready: threading.Event = field(default_factory=threading.Event)
    partitions: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            text = line.decode().strip()
            if text == "READY":
                self.ready.set()
            elif text.startswith("ASSIGNED"):
                held = text.removeprefix("ASSIGNED").strip()
                self.partitions = frozenset(int(p) for p in held.split(",") if p)

    @classmethod
    def spawn(cls, index: int, settings: Settings, log_dir: Path) -> WorkerProcess:
        log_path = log_dir / f"worker-{index}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"],
            env=worker_env(settings),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log_path.open("wb"),
        )
        return cls(index, process, log_path)

    async def wait_ready(self, timeout: float) -> None:
        """Wait for the worker's ``READY`` line (it holds partitions and is recovered)."""
        if not await asyncio.to_thread(self.ready.wait, timeout):
            raise AssertionError(f"worker {self.index} did not start:\n{self.log()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


async def produce(settings: Settings, records: Iterable[tuple[bytes, bytes]]) -> None:
    """Produce ``(key, value)`` records to the events topic and wait for the broker's acks."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = [await producer.send(settings.events_topic, key=k, value=v) for k, v in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@dataclass
class TopicReader:
    """Reads one topic from the beginning, keeping every record, as it grows."""

    settings: Settings
    topic: str
    records: list[ConsumerRecord] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers, enable_auto_commit=False
        )
        await self._consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(self.settings.partitions)]
        self._consumer.assign(tps)
        await seek_to_beginning(self._consumer, *tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self, timeout: float = 0.2) -> list[ConsumerRecord]:
        """Fetch what arrived since the last poll (waits at most ``timeout`` s)."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=5000)
        fresh = [record for records in batches.values() for record in records]
        self.records.extend(fresh)
        return fresh

    async def end_offsets(self) -> dict[int, int]:
        """The topic's current end offset per partition."""
        assert self._consumer is not None
        tps = [TopicPartition(self.topic, p) for p in range(self.settings.partitions)]
        ends = await self._consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def read_all(self, settle: float = 0.5) -> list[ConsumerRecord]:
        """Everything up to the topic's current end.

        Past the reported end the reader keeps fetching until a poll comes back empty:
        Tansu reports the end as the base offset of the last batch plus one.
        """
        assert self._consumer is not None
        tps = [TopicPartition(self.topic, p) for p in range(self.settings.partitions)]
        ends = await self._consumer.end_offsets(tps)
        deadline = time.monotonic() + 30
        while True:
            behind = [tp for tp in tps if await self._consumer.position(tp) < ends[tp]]
            if not behind:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {self.topic} to its end")
            await self.poll(settle)
        while await self.poll(settle):
            pass
        return self.records
