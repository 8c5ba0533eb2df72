"""The webhook routes' per-address rate limit: token buckets on an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.sink import MemoryEventSink
from tests.support.edge_rate_limit import FakeClock

VERIFY_TOKEN = "verify-token-0123456789"


HANDSHAKE = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}


MakeClient = Callable[..., Awaitable[tuple[TestClient, FakeClock]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient] = []

    async def make(**settings: Any) -> tuple[TestClient, FakeClock]:
        clock = FakeClock()
        webhooks = build_webhooks(EdgeSettings(meta_verify_token=VERIFY_TOKEN, **settings), MemoryEventSink(),
                                  clock=clock, prefix="")

        @web.middleware
        async def peer_from_header(request: web.Request, handler: Any) -> web.StreamResponse:
            # Test clients all connect from 127.0.0.1: X-Test-Peer stands for another address.
            peer = request.headers.get("X-Test-Peer")
            return await handler(request.clone(remote=peer) if peer else request)

        root = web.Application(middlewares=[peer_from_header])
        root.add_subapp("/webhooks", webhooks)
        client = TestClient(TestServer(root, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client, clock

    yield make
    for client in clients:
        await client.close()


class TestWebhookRateLimit:
    async def test_over_the_rate_is_429_with_retry_after(self, make_client: MakeClient) -> None:
        """Beyond its burst an address gets 429 with Retry-After; after that wait it is served again."""
        client, clock = await make_client(rate_per_second=2, rate_burst=3)
        statuses = [(await client.get("/webhooks/meta", params=HANDSHAKE)).status for _ in range(3)]
        refused = await client.get("/webhooks/meta", params=HANDSHAKE)
        clock.now += 0.5
        again = await client.get("/webhooks/meta", params=HANDSHAKE)
        assert ([200, 200, 200], 429, "1", "too many requests", 200) == (
            statuses, refused.status, refused.headers.get("Retry-After"),
            (await refused.json())["error"][:17], again.status,
        )

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            pytest.param("POST", "/webhooks/meta", id="meta"),
            pytest.param("POST", "/webhooks/x", id="x"),
            pytest.param("GET", "/webhooks/x", id="x_crc"),
            pytest.param("POST", "/webhooks/telegram", id="telegram"),
            pytest.param("POST", "/webhooks/generic", id="generic"),
        ],
    )
    async def test_every_webhook_route_is_limited(self, make_client: MakeClient, method: str, path: str) -> None:
        """Every webhook route counts against the address's bucket, signed or not (refused before any reading)."""
        client, _ = await make_client(rate_per_second=1, rate_burst=1)
        await client.get("/webhooks/meta", params=HANDSHAKE)
        response = await client.request(method, path, data=b"{}")
        assert (429, "1") == (response.status, response.headers.get("Retry-After"))

    async def test_other_addresses_are_served(self, make_client: MakeClient) -> None:
        """A flooding address does not make the platforms' addresses wait."""
        client, _ = await make_client(rate_per_second=1, rate_burst=2)
        flood = [(await client.get("/webhooks/meta", params=HANDSHAKE, headers={"X-Test-Peer": "203.0.113.7"})).status
                 for _ in range(5)]
        platform = (await client.get("/webhooks/meta", params=HANDSHAKE, headers={"X-Test-Peer": "31.13.64.1"})).status
        assert ([200, 200, 429, 429, 429], 200) == (flood, platform)

    async def test_defaults_let_a_platform_burst_through(self, make_client: MakeClient) -> None:
        """With the defaults (200/s, burst 400) a platform's burst of 400 deliveries from one address is served."""
        client, _ = await make_client()
        statuses = {(await client.get("/webhooks/meta", params=HANDSHAKE)).status for _ in range(400)}
        over = await client.get("/webhooks/meta", params=HANDSHAKE)
        assert ({200}, 429) == (statuses, over.status)

    async def test_rate_zero_turns_the_limit_off(self, make_client: MakeClient) -> None:
        """OFFHOURS_EDGE__RATE_PER_SECOND=0 serves every request."""
        client, _ = await make_client(rate_per_second=0, rate_burst=1)
        statuses = {(await client.get("/webhooks/meta", params=HANDSHAKE)).status for _ in range(20)}
        assert {200} == statuses

