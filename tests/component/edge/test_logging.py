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
from edge.sink import MemoryEventSink
from offhours.service import serving
from streams.settings import Settings
from tests.support.edge_logging import FakeClock

VERIFY_TOKEN = "verify-token-0123456789"


CRC_TOKEN = "Q3JjVG9rZW5Gcm9tWA0123456789"


LINK_TOKEN = "eyJhY3Rpb24iOiJjbGFpbSJ9.c2lnbmF0dXJlLXNlY3JldA"


META_SECRET = "meta-app-secret-0123456789abcdef"


SETTINGS = EdgeSettings(meta_app_secret=META_SECRET, meta_verify_token=VERIFY_TOKEN,
                        x_consumer_secret="x-consumer-secret-0123456789")


BODY = orjson.dumps({"object": "page", "entry": []})


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

