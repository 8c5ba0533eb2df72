"""Hold mode in the sweep (streams.sweeps): which held desk conversations are released, and
each release route sent once per worker although the state still says ``pending``."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from schedules import load_coverage_text
from streams.sweeps import _send_releases, releases
from triage.state import ConversationState

COVERAGE = """\
teams:
  care-es:
    timezone: Europe/Madrid
    chatwoot: {account: 7, inboxes: [12], hold: true}
    hours:
      mon-fri: ["09:00-18:00 open"]
"""
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Europe/Madrid"))


def state(conversation: int, status: str) -> ConversationState:
    desk = {"kind": "chatwoot", "account": 7, "inbox": 12, "conversation": conversation, "status": status}
    return ConversationState(team="care-es", customer_at=int(NOW.timestamp()) - 10, desk=desk)


class Routes:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


def test_the_pending_ones_released_once_per_worker() -> None:
    teams = load_coverage_text(COVERAGE).teams
    rows = [(b"cw:7:1", state(1, "pending")), (b"cw:7:2", state(2, "open")), (b"x:3", ConversationState(team="care-es"))]
    due = releases(rows, teams, NOW)
    assert [b"cw:7:1"] == [key for key, _ in due]
    routes = Routes()
    app = SimpleNamespace(stream_topics=SimpleNamespace(routes=routes))
    counts = [asyncio.run(_send_releases(app, due)) for _ in range(2)]  # two sweeps
    assert ([1, 0], [b"cw:7:1"]) == (counts, [key for key, _ in routes.sent])
