"""Helpers of the scale-out test: workers that time their assignments, the group watched.

:class:`TimedWorker` is a :class:`~tests.support.workers.WorkerProcess` that also
keeps when it printed its last ``ASSIGNED`` line. :class:`GroupWatch` asks the broker
for the consumer group's state and members every few tens of milliseconds, so a test
can tell when a membership change reached the group (a new member joining, a dead one
expired after the session timeout) rather than when the test caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient

from streams.settings import Settings
from tests.support.workers import WorkerProcess


@dataclass
class TimedWorker(WorkerProcess):
    """A worker process that also records when (monotonic s) its assignment last changed."""

    assigned_at: float = 0.0

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            text = line.decode().strip()
            if text == "READY":
                self.ready.set()
            elif text.startswith("ASSIGNED"):
                held = text.removeprefix("ASSIGNED").strip()
                # The time first: whoever sees the new partitions also sees when they came.
                self.assigned_at = time.monotonic()
                self.partitions = frozenset(int(p) for p in held.split(",") if p)


@dataclass(frozen=True)
class GroupSample:
    """The group as the broker described it at monotonic time ``at``."""

    at: float
    state: str
    members: frozenset[str]


@dataclass
class GroupWatch:
    """Samples the consumer group ``settings.app_id`` from the broker until closed."""

    settings: Settings
    interval: float = 0.05
    samples: list[GroupSample] = field(default_factory=list)
    _admin: AIOKafkaAdminClient | None = None
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GroupWatch:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers)
        await self._admin.start()
        await self._sample()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._admin is not None and self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._admin.close()

    async def _sample(self) -> None:
        assert self._admin is not None
        (response,) = await self._admin.describe_consumer_groups([self.settings.app_id])
        # DescribeGroups v2: (error_code, group, state, protocol_type, protocol, members)
        _, _, state, _, _, members = response.groups[0]
        self.samples.append(GroupSample(time.monotonic(), state, frozenset(m[0] for m in members)))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._sample()

    def members(self) -> frozenset[str]:
        """The members in the latest sample."""
        return self.samples[-1].members

    def changed_after(self, since: float) -> float | None:
        """When the group first differed (state or members) from how it was at ``since``:
        the time of the last sample that did not show the change yet.

        A lower bound, not the sample that shows it: on Apache Kafka a rebalance takes
        well under a sampling round trip, so the workers may hold their new partitions
        before the first sample that shows the group changed. None when no sample after
        ``since`` shows a change yet.
        """
        before = [s for s in self.samples if s.at <= since]
        if not before:
            return None
        reference = before[-1]
        previous = reference
        for sample in self.samples[len(before):]:
            if sample.state != reference.state or sample.members != reference.members:
                return previous.at
            previous = sample
        return None
