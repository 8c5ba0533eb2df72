"""What the edge writes to the log: no secrets in access lines, refusals rate-limited."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.ratelog import RateLimitedLog
from edge.sink import MemoryEventSink
from offhours.service import serving
from streams.settings import Settings

VERIFY_TOKEN = "verify-token-0123456789"
CRC_TOKEN = "Q3JjVG9rZW5Gcm9tWA0123456789"
LINK_TOKEN = "eyJhY3Rpb24iOiJjbGFpbSJ9.c2lnbmF0dXJlLXNlY3JldA"
META_SECRET = "meta-app-secret-0123456789abcdef"
SETTINGS = EdgeSettings(meta_app_secret=META_SECRET, meta_verify_token=VERIFY_TOKEN,
                        x_consumer_secret="x-consumer-secret-0123456789")
BODY = orjson.dumps({"object": "page", "entry": []})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRateLimitedLog:
    @pytest.mark.parametrize(
        ("times", "expected"),
        [
            pytest.param([0, 1, 2], ["refused 1"], id="burst_logs_once"),
            pytest.param([0, 30, 59.9, 60], ["refused 1", "refused 4 (and 2 more since the last such line)"],
                         id="next_line_after_the_interval_counts_the_held"),
            pytest.param([0, 60, 120], ["refused 1", "refused 2", "refused 3"], id="sparse_refusals_all_logged"),
        ],
    )
    def test_one_line_per_interval(self, caplog: pytest.LogCaptureFixture, times: list[float], expected: list[str]) -> None:
        """Refusals of one key log at most one line per interval; the next line says how many were held."""
        clock = FakeClock()
        limited = RateLimitedLog(logging.getLogger("test.ratelog"), interval=60, clock=clock)
        with caplog.at_level(logging.WARNING, logger="test.ratelog"):
            for n, at in enumerate(times, 1):
                clock.now = 1000.0 + at
                limited.warning("meta", "refused %d", n)
        assert expected == [r.getMessage() for r in caplog.records]

    def test_keys_are_separate(self, caplog: pytest.LogCaptureFixture) -> None:
        """A flood on one webhook does not hide the first refusal of another."""
        limited = RateLimitedLog(logging.getLogger("test.ratelog"), interval=60, clock=FakeClock())
        with caplog.at_level(logging.WARNING, logger="test.ratelog"):
            for key in ("meta", "meta", "x", "meta", "x"):
                limited.warning(key, "%s refused", key)
        assert ["meta refused", "x refused"] == [r.getMessage() for r in caplog.records]


class TestRefusedRequests:
    async def test_forged_flood_logs_one_line_per_interval(self, caplog: pytest.LogCaptureFixture) -> None:
        """Ten forged Meta posts log one warning; the next after a minute says nine more were refused."""
        clock = FakeClock()
        app = build_webhooks(SETTINGS, MemoryEventSink(), clock=clock)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            with caplog.at_level(logging.WARNING, logger="edge.webhooks"):
                statuses = [(await client.post("/webhooks/meta", data=BODY,
                                               headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})).status
                            for _ in range(10)]
                clock.now += 61
                await client.post("/webhooks/meta", data=BODY)
        lines = [r.getMessage() for r in caplog.records if r.name == "edge.webhooks"]
        assert ([403] * 10, ["meta webhook refused: signature does not match",
                             "meta webhook refused: signature missing (and 9 more since the last such line)"]) == (
            statuses, lines)


@pytest.fixture
async def served() -> AsyncIterator[str]:
    """The webhooks and an action-link route served as the service serves them (offhours.service.serving)."""

    async def action_page(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    root = web.Application()
    root.add_subapp("/webhooks", build_webhooks(SETTINGS, MemoryEventSink(), prefix=""))
    root.router.add_get("/api/v1/actions/{token}", action_page)
    async with serving(root, Settings(web_host="127.0.0.1", web_port=0)) as base:
        yield base


class TestAccessLog:
    @pytest.mark.parametrize(
        ("target", "secret", "logged"),
        [
            pytest.param(f"/webhooks/meta?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
                         VERIFY_TOKEN, '"GET /webhooks/meta?hub.mode=***&hub.verify_token=***&hub.challenge=*** HTTP/1.1" 200',
                         id="meta_verify_token"),
            pytest.param(f"/webhooks/x?crc_token={CRC_TOKEN}", CRC_TOKEN,
                         '"GET /webhooks/x?crc_token=*** HTTP/1.1" 200', id="x_crc_token"),
            pytest.param(f"/api/v1/actions/{LINK_TOKEN}", LINK_TOKEN, '"GET /api/v1/actions/*** HTTP/1.1" 200',
                         id="action_link_token"),
        ],
    )
    async def test_secrets_are_not_logged(
        self, served: str, caplog: pytest.LogCaptureFixture, target: str, secret: str, logged: str
    ) -> None:
        """The service's access log (-v) records path, status and parameter names, never tokens or the Referer."""
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            async with aiohttp.ClientSession() as session:
                async with session.get(served + target, headers={"Referer": served + target}) as r:
                    await r.read()
        lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
        assert (1, False, True) == (len(lines), any(secret in line for line in lines), logged in lines[0])

