"""The operations API tests' helpers and fixtures: a fixed clock in Rome, memory stores, a live app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edge.actions import MemoryActionSink
from edge.config_store import MemoryConfigStore
from edge.ops import build_operations_api
from records.links import LinkSigner

ROME = ZoneInfo("Europe/Rome")
COVERAGE_TEXT = (Path(__file__).parent / "ops_coverage.yaml").read_text(encoding="utf-8")
TOKEN = "s3cr3t-anna"
IDENTITY = "ops:anna"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LINK_SECRET = "link-secret-for-tests"


class FixedClock:
    """A clock the test moves by hand; starts on Monday 2026-11-23 at 20:00 in Rome (reduced hours)."""

    def __init__(self, now: datetime = datetime(2026, 11, 23, 20, 0, tzinfo=ROME)) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store(clock: FixedClock) -> MemoryConfigStore:
    return MemoryConfigStore(COVERAGE_TEXT, clock=clock, filename="coverage.yaml")


@pytest.fixture
async def sink() -> MemoryActionSink:
    """A started memory action sink (the service starts its Kafka sink before serving)."""
    actions = MemoryActionSink()
    await actions.start()
    return actions


@pytest.fixture
def signer(clock: FixedClock) -> LinkSigner:
    return LinkSigner(LINK_SECRET, ttl=timedelta(hours=12), clock=clock, base_url="http://127.0.0.1/api/v1/actions")


@pytest.fixture
async def client(
    store: MemoryConfigStore, sink: MemoryActionSink, signer: LinkSigner, clock: FixedClock
) -> AsyncIterator[TestClient]:
    root = web.Application()
    root.add_subapp("/api/v1", build_operations_api(store, sink, {TOKEN: IDENTITY}, signer, clock))
    async with TestClient(TestServer(root, host="127.0.0.1")) as test_client:
        yield test_client
