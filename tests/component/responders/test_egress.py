"""Regressions through the real adapters: loopback targets, redirects, large answers (real local servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from responders.base import Delivered, Outcome, Permanent, Retry
from responders.config import AccountCredentials, ResponderSettings
from responders.fakes import (
    FakeGraph,
    FakePlatform,
    FakeSlack,
    FakeTeams,
    FakeTelegram,
    FakeWebhook,
    FakeX,
)
from responders.fakes.samples import (
    NOW,
    WROTE_AT,
    ack_request,
    fixed_clock,
    route_request,
)
from responders.messenger import MessengerSender
from responders.notice import Notice
from responders.slack import SlackNotifier
from responders.teams import TeamsNotifier
from responders.telegram import TelegramNotifier
from responders.webhook import WebhookNotifier, WebhookSender
from responders.x import XSender
from tests.support.serve import Serve

TOKEN = "EAAG-test-page-token"
SECRET = "whsec-test-signing"
CLOCK = fixed_clock()


def notice(uri: str) -> Notice:
    request = route_request([uri])
    return Notice(route=request, member=request.to[0], uri=uri, now=NOW, claim_url=None)


def graph() -> FakeGraph:
    fake = FakeGraph({TOKEN}, clock=CLOCK)
    fake.add_customer("PSID_222", WROTE_AT)
    return fake


def x_fake() -> FakeX:
    fake = FakeX({TOKEN}, clock=CLOCK)
    fake.add_user("777")
    return fake


def telegram_fake() -> FakeTelegram:
    fake = FakeTelegram({TOKEN})
    fake.add_message(99887766, 1)
    return fake


@dataclass(frozen=True)
class Local:
    """An adapter told to send to a fake on 127.0.0.1, with the settings it gets."""

    make_fake: Callable[[], FakePlatform]
    send: Callable[[FakePlatform, ResponderSettings, aiohttp.ClientSession], Awaitable[Outcome]]
    settings: Callable[[FakePlatform], dict[str, Any]]


LOCAL_TARGETS = [
    pytest.param(
        Local(
            FakeSlack,
            lambda fake, s, http: SlackNotifier(s, CLOCK).send(notice("slack:" + fake.webhook_url), http),
            lambda fake: {},
        ),
        id="slack_notify_uri",
    ),
    pytest.param(
        Local(
            FakeTeams,
            lambda fake, s, http: TeamsNotifier(s, CLOCK).send(notice("teams:" + fake.webhook_url), http),
            lambda fake: {},
        ),
        id="teams_notify_uri",
    ),
    pytest.param(
        Local(
            lambda: FakeWebhook(SECRET),
            lambda fake, s, http: WebhookNotifier(s, CLOCK).send(notice("webhook:" + fake.hook_url), http),
            lambda fake: {"signing_secret": SECRET},
        ),
        id="webhook_notify_uri",
    ),
    pytest.param(
        Local(
            lambda: FakeWebhook(SECRET),
            lambda fake, s, http: WebhookSender(s, CLOCK).send(
                ack_request(channel="generic", account="acme.crm"), http
            ),
            lambda fake: {
                "accounts": {"acme.crm": AccountCredentials(webhook_url=fake.hook_url, signing_secret=SECRET)}
            },
        ),
        id="generic_webhook_url",
    ),
    pytest.param(
        Local(
            graph,
            lambda fake, s, http: MessengerSender(s, CLOCK).send(ack_request(), http),
            lambda fake: {
                "graph_base_url": fake.url,
                "accounts": {"acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN)},
            },
        ),
        id="graph_base_url",
    ),
    pytest.param(
        Local(
            x_fake,
            lambda fake, s, http: XSender(s, CLOCK).send(
                ack_request(channel="x", account="acme_it_x", recipient="777", reply_to="1"), http
            ),
            lambda fake: {"x_base_url": fake.url, "accounts": {"acme_it_x": AccountCredentials(access_token=TOKEN)}},
        ),
        id="x_base_url",
    ),
    pytest.param(
        Local(
            telegram_fake,
            lambda fake, s, http: TelegramNotifier(s, CLOCK).send(notice("telegram:99887766"), http),
            lambda fake: {"telegram_base_url": fake.url, "telegram_notify_token": TOKEN},
        ),
        id="telegram_base_url",
    ),
]


@pytest.mark.parametrize("local", LOCAL_TARGETS)
class TestLoopbackTargets:
    async def test_refused_by_default(self, local: Local, session: aiohttp.ClientSession) -> None:
        """Without an allow-list a loopback target is Permanent, alerts operations, names the host only, and hears nothing."""
        async with local.make_fake() as fake:
            settings = ResponderSettings(**local.settings(fake))
            outcome = await local.send(fake, settings, session)
            received = len(fake.requests)
        assert isinstance(outcome, Permanent), outcome
        expected = (True, True, True, False, 0)
        actual = (
            outcome.alert_operations,
            "egress refused" in outcome.reason,
            "127.0.0.1" in outcome.reason,
            f":{fake.port}/" in outcome.reason or TOKEN in outcome.reason,
            received,
        )
        assert expected == actual

    @pytest.mark.parametrize(
        "allow",
        [
            pytest.param(lambda port: ["127.0.0.1"], id="address"),
            pytest.param(lambda port: [f"127.0.0.1:{port}"], id="address_and_port"),
            pytest.param(lambda port: ["127.0.0.0/8"], id="cidr"),
            pytest.param(lambda port: ["10.0.0.0/8", "::1", "127.0.0.1"], id="several"),
        ],
    )
    async def test_allow_list_lets_it_through(
        self, local: Local, allow: Callable[[int], list[str]], session: aiohttp.ClientSession
    ) -> None:
        """A loopback target in egress_allow (address, address:port, CIDR) is delivered."""
        async with local.make_fake() as fake:
            assert fake.port is not None
            settings = ResponderSettings(egress_allow=allow(fake.port), **local.settings(fake))
            outcome = await local.send(fake, settings, session)
        assert isinstance(outcome, Delivered), outcome

    async def test_allow_list_for_another_port_refuses(
        self, local: Local, session: aiohttp.ClientSession
    ) -> None:
        """An allow-list entry with a port allows that port only."""
        async with local.make_fake() as fake:
            assert fake.port is not None
            other = fake.port + 1 if fake.port < 65535 else fake.port - 1
            settings = ResponderSettings(egress_allow=[f"127.0.0.1:{other}"], **local.settings(fake))
            outcome = await local.send(fake, settings, session)
            received = len(fake.requests)
        assert (True, 0) == (isinstance(outcome, Permanent) and outcome.alert_operations, received)


LOCAL = ResponderSettings(egress_allow=["127.0.0.1"])


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"id": "m1"})


class TestRedirects:
    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    async def test_redirect_is_permanent_and_not_followed(
        self, status: int, session: aiohttp.ClientSession, serve: Serve
    ) -> None:
        """A 3xx answer is Permanent with an alert; the place it points at hears nothing."""
        async with serve(ok) as (target_port, target_seen):

            async def redirect(request: web.Request) -> web.Response:
                return web.Response(status=status, headers={"Location": f"http://127.0.0.1:{target_port}/x"})

            async with serve(redirect) as (port, seen):
                outcome = await SlackNotifier(LOCAL, CLOCK).send(
                    notice(f"slack:http://127.0.0.1:{port}/services/T1/B1/abc"), session
                )
        assert isinstance(outcome, Permanent), outcome
        expected = (True, f"HTTP {status}", 1, 0)
        actual = (outcome.alert_operations, outcome.reason.split(": ")[1], len(seen), len(target_seen))
        assert expected == actual


BIG = 32 * 1024 * 1024


def streaming(status: int, written: list[int], done: asyncio.Event) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler that streams a ``BIG`` JSON answer (chunked, no length) and counts what it could write."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * (256 * 1024)
        try:
            await response.write(b'{"id": "m1", "pad": "')
            while written[0] < BIG:
                await response.write(chunk)
                written[0] += len(chunk)
            await response.write(b'"}')
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            done.set()
        return response

    return handler


class TestLargeAnswers:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            pytest.param(200, Delivered(None), id="2xx_delivered_without_id"),
            pytest.param(503, Retry(None, "webhook: HTTP 503"), id="5xx_retry"),
            pytest.param(400, Permanent("webhook: HTTP 400"), id="4xx_permanent"),
        ],
    )
    async def test_answer_over_one_mib_is_not_read(
        self, status: int, expected: Outcome, session: aiohttp.ClientSession, serve: Serve
    ) -> None:
        """A 32 MiB streamed answer is cut off after 1 MiB and means what its status means."""
        written, done = [0], asyncio.Event()
        async with serve(streaming(status, written, done)) as (port, _):
            settings = ResponderSettings(
                egress_allow=["127.0.0.1"],
                accounts={"acme.crm": AccountCredentials(webhook_url=f"http://127.0.0.1:{port}/hook",
                                                         signing_secret=SECRET)},
            )
            outcome = await WebhookSender(settings, CLOCK).send(
                ack_request(channel="generic", account="acme.crm"), session
            )
            await asyncio.wait_for(done.wait(), 10)
        assert (expected, True) == (outcome, written[0] < BIG)

    async def test_small_answer_is_read_whole(self, session: aiohttp.ClientSession, serve: Serve) -> None:
        """An ordinary answer is read in full (the message id comes through)."""

        async def small(request: web.Request) -> web.Response:
            return web.Response(body=orjson.dumps({"id": "m1", "pad": "x" * 1000}), content_type="application/json")

        async with serve(small) as (port, _):
            settings = ResponderSettings(
                egress_allow=["127.0.0.1"],
                accounts={"acme.crm": AccountCredentials(webhook_url=f"http://127.0.0.1:{port}/hook",
                                                         signing_secret=SECRET)},
            )
            outcome = await WebhookSender(settings, CLOCK).send(
                ack_request(channel="generic", account="acme.crm"), session
            )
        assert Delivered("m1") == outcome
