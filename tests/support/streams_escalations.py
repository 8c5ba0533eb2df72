"""What ``tests/integration/streams/test_escalations.py`` and ``tests/integration/streams/test_follow_through.py`` and ``tests/integration/streams/test_retention.py`` and ``tests/unit/streams/test_escalations.py`` share (they were one module, tests/streams/test_escalations.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from records.wire import RouteRequest
from schedules import Coverage, load_coverage
from streams.settings import Settings
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.streams_app import (
    ROME,
)
from tests.support.workers import TopicReader

WAIT = 30.0  # seconds: a bound on a wait for an event, never a sleep


SWEEP_EVERY = timedelta(milliseconds=100)


CONVERSATION = "fb:PAGE_111:PSID_222"


KEY = CONVERSATION.encode()


SUNDAY_MORNING = datetime(2026, 11, 22, 10, 0, tzinfo=ROME)  # care-it closed


MONDAY_OPENING = datetime(2026, 11, 23, 9, 0, tzinfo=ROME)


ESCALATION_BLOCK = """    escalation:
      reduced: {after: 1m, chain: [next_on_call, lead:giulia], repeat: 1}
"""


def escalating_coverage(tmp_path) -> Coverage:
    """The example coverage with care-it escalating after 1 minute: next on call, then giulia."""
    text = EXAMPLE_COVERAGE.read_text(encoding="utf-8").replace("  care-us:\n", ESCALATION_BLOCK + "  care-us:\n", 1)
    path = tmp_path / "coverage.yaml"
    path.write_text(text, encoding="utf-8")
    return load_coverage(path)


class SteppedClock:
    """A clock the test moves; it counts its reads so a test can wait for whole sweeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._reads = 0
        self._read = asyncio.Event()

    def __call__(self) -> float:
        self._reads += 1
        self._read.set()
        return self.now.timestamp()

    def move_to(self, instant: datetime) -> None:
        self.now = instant

    async def sweeps(self, count: int = 2) -> None:
        """Return once the clock was read ``count`` more times (the sweep reads it once each)."""
        target = self._reads + count
        while self._reads < target:
            self._read.clear()
            await asyncio.wait_for(self._read.wait(), WAIT)


def read_routes(records) -> list[RouteRequest]:
    return [RouteRequest.from_json(record.value) for record in records]


async def first_route(settings: Settings, prefix: str) -> RouteRequest:
    """The first route on the routes outbox whose id starts with ``prefix`` (waits for it)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    async with TopicReader(settings, settings.routes_topic) as reader:
        while asyncio.get_running_loop().time() < deadline:
            await reader.poll(0.2)
            for route in read_routes(reader.records):
                if route.route_id.startswith(prefix):
                    return route
    raise AssertionError(f"no route {prefix}* within {WAIT} s")


def escalations_changelog(app) -> str:
    return app.escalations.changelog_topic.get_topic_name()

