"""The webhook routes' per-address rate limit: token buckets on an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.ratelimit import TokenBuckets
from edge.sink import MemoryEventSink

VERIFY_TOKEN = "verify-token-0123456789"
HANDSHAKE = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class TestTokenBuckets:
    @pytest.mark.parametrize(
        ("rate", "burst", "requests", "expected_waits"),
        [
            pytest.param(2.0, 3, [0, 0, 0, 0], [0, 0, 0, 0.5], id="burst_then_wait_for_one_token"),
            pytest.param(2.0, 3, [0, 0, 0, 0.5], [0, 0, 0, 0], id="half_a_second_refills_one"),
            pytest.param(2.0, 3, [0, 0, 0, 0, 0], [0, 0, 0, 0.5, 0.5], id="refused_requests_spend_nothing"),
            pytest.param(1.0, 1, [0, 10, 10], [0, 0, 1.0], id="refill_stops_at_burst"),
            pytest.param(0.0, 1, [0, 0, 0], [0, 0, 0], id="rate_zero_is_off"),
        ],
    )
    def test_waits(self, rate: float, burst: int, requests: list[float], expected_waits: list[float]) -> None:
        """Each address may make burst requests at once and rate per second; beyond, the wait until the next token."""
        clock = FakeClock()
        buckets = TokenBuckets(rate, burst, clock)
        waits = []
        for at in requests:
            clock.now = 500.0 + at
            waits.append(buckets.take("203.0.113.7"))
        assert expected_waits == pytest.approx(waits)

    def test_addresses_have_their_own_buckets(self) -> None:
        """One address over its rate does not slow another down."""
        buckets = TokenBuckets(1.0, 1, FakeClock())
        assert [0, 1.0, 0] == [buckets.take(a) for a in ("203.0.113.7", "203.0.113.7", "198.51.100.2")]

    def test_memory_is_bounded(self) -> None:
        """At most max_keys buckets are kept, whatever the number of addresses."""
        buckets = TokenBuckets(1.0, 5, FakeClock(), max_keys=100)
        for n in range(1000):
            buckets.take(f"10.0.{n // 256}.{n % 256}")
        assert 100 >= len(buckets)


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


class TestSettings:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            pytest.param({"rate_per_second": -1}, "rate_per_second", id="negative_rate"),
            pytest.param({"rate_burst": 0}, "rate_burst", id="zero_burst"),
        ],
    )
    def test_invalid_rate_settings_are_refused(self, changes: dict[str, Any], field: str) -> None:
        """A negative rate or an empty burst is refused when the settings are built."""
        with pytest.raises(ValidationError) as caught:
            EdgeSettings(**changes)
        assert [(field,)] == [tuple(e["loc"]) for e in caught.value.errors()]

    def test_defaults(self) -> None:
        """The defaults are generous: 200 requests per second per address, bursts of 400."""
        settings = EdgeSettings()
        assert (200.0, 400) == (settings.rate_per_second, settings.rate_burst)
