"""The console tests' helpers: a live server with the operations API and the console on a fixed clock.

The projection is fed the way the topics would feed it: events through
:meth:`Projection.apply_event`, and every action the API records (claims, answered)
through :meth:`Projection.apply_action`, as :class:`console.feed.TopicFeed` reads them
back from the actions topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from console.projection import Projection
from console.web import build_console, mount_console
from edge.actions import MemoryActionSink
from edge.config_store import MemoryConfigStore
from edge.ops import build_operations_api
from edge.ops_config import Principal
from records.actions import StaffAction
from records.links import LinkSigner
from tests.support.ops import COVERAGE_TEXT, LINK_SECRET, ROME, FixedClock

OPERATE_TOKEN = "console-operate-token"
READ_TOKEN = "console-read-token"
TOKENS = {OPERATE_TOKEN: Principal("ops:anna", "operate"), READ_TOKEN: Principal("grafana", "read")}
SESSION_SECRET = "console-session-secret-for-tests"
NOW = datetime(2026, 11, 23, 20, 0, tzinfo=ROME)  # Monday, reduced hours in Rome, marta on call


class FeedingActionSink(MemoryActionSink):
    """A memory action sink whose records also reach the projection, as the actions topic would."""

    def __init__(self, projection: Projection) -> None:
        super().__init__()
        self.projection = projection

    async def record(self, action: StaffAction) -> None:
        await super().record(action)
        self.projection.apply_action(action.conversation.encode("utf-8"), action.to_json())


def event(number: int, at: datetime, *, text: str = "Ci siete? Il mio ordine non è arrivato", kind: str = "dm",
          channel: str = "whatsapp", account: str = "acme.it.whatsapp", author: str = "Ana Lopez",
          conversation: str | None = None, followers: int | None = 10) -> bytes:
    """One event of the events topic (README: Events)."""
    return orjson.dumps({
        "id": f"wa:m_{number:04d}", "account": account, "channel": channel, "kind": kind,
        "conversation": conversation or f"wa:PHONE_1:CUST_{number:04d}",
        "author": {"id": f"CUST_{number:04d}", "name": author, "followers": followers},
        "text": text, "lang": "it", "at": at.isoformat(), "in_reply_to": None,
    })


def seed(projection: Projection) -> dict[str, str]:
    """A few conversations of care-it: routed (reduced hours), paged (urgent), off-hours backlog (Sunday)."""
    projection.apply_event(event(1, NOW - timedelta(minutes=20), author="Ana <b>Lopez</b>",
                                 text="<script>alert(1)</script> dov'è il mio ordine?"))
    projection.apply_event(event(2, NOW - timedelta(minutes=5), text="Hanno clonato la mia carta, frode!", author="Bruno"))
    projection.apply_event(event(3, NOW - timedelta(days=1, hours=2), author="Carla", followers=1_000_000))
    projection.apply_event(event(4, NOW - timedelta(days=1, hours=5), author="Dario", text="quando arriva il pacco?"))
    return {"routed": "wa:PHONE_1:CUST_0001", "paged": "wa:PHONE_1:CUST_0002",
            "backlog_late": "wa:PHONE_1:CUST_0003", "backlog_early": "wa:PHONE_1:CUST_0004"}


@dataclass
class Console:
    """A running server: the operations API at /api/v1 and the console at /console."""

    url: str
    store: MemoryConfigStore
    projection: Projection
    sink: FeedingActionSink
    clock: FixedClock
    signer: LinkSigner
    conversations: dict[str, str]


def build_root(clock: FixedClock) -> tuple[web.Application, dict[str, Any]]:
    store = MemoryConfigStore(COVERAGE_TEXT, clock=clock, filename="coverage.yaml")
    projection = Projection(store.coverage)
    sink = FeedingActionSink(projection)
    signer = LinkSigner(LINK_SECRET, ttl=timedelta(hours=12), clock=clock, base_url="http://127.0.0.1/api/v1/actions")
    root = web.Application()
    root.add_subapp("/api/v1", build_operations_api(store, sink, TOKENS, signer, clock))
    mount_console(root, build_console(store, projection, TOKENS, SESSION_SECRET, clock=clock, signer=signer))
    return root, {"store": store, "projection": projection, "sink": sink, "signer": signer}


async def running_console(clock: FixedClock | None = None) -> AsyncIterator[Console]:
    """Serve the console on a free loopback port until the generator is closed."""
    clock = clock or FixedClock(NOW)
    root, parts = build_root(clock)
    await parts["sink"].start()
    conversations = seed(parts["projection"])
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        yield Console(url=str(server.make_url("")).rstrip("/"), clock=clock, conversations=conversations, **parts)
    finally:
        await server.close()
