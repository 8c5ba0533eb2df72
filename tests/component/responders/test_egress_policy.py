"""The egress policy itself: addresses, allow-list entries, names, DNS rebinding, TLS."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from responders.base import HttpAnswer, Outcome, Permanent, Retry, post
from responders.config import ResponderSettings
from responders.egress import (
    Egress,
    EgressPolicy,
    EgressResolver,
)
from tests.support.serve import Serve


class Dns(AbstractResolver):
    """A fake DNS: each name answers the next list of addresses in turn (the last one repeats)."""

    def __init__(self, answers: dict[str, Sequence[Sequence[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        turns = self.answers.get(host)
        if turns is None:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        answer = turns[min(len(self.asked_for(host)), len(turns) - 1)]
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host, host=address, port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0, flags=socket.AI_NUMERICHOST,
            )
            for address in answer
        ]

    def asked_for(self, host: str) -> list[str]:
        return [name for name in self.asked if name == host]

    async def close(self) -> None:
        return None


def egress(allow: Sequence[str], dns: Dns, clock: Callable[[], float] = lambda: 0.0) -> Egress:
    policy = EgressPolicy.from_entries(allow)
    return Egress(policy, EgressResolver(policy, dns, clock=clock))


async def send(
    session: aiohttp.ClientSession, url: str, policy: Egress, settings: ResponderSettings | None = None
) -> HttpAnswer | Outcome:
    return await post(
        session, url, body=b"{}", headers={}, settings=settings or ResponderSettings(),
        platform="test", egress=policy,
    )


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"id": "m1", "host": request.headers.get("Host")})


class TestNames:
    @pytest.mark.parametrize(
        ("url", "allow", "answers", "expected"),
        [
            pytest.param("https://internal.example/hook", [], [["10.1.2.3"]],
                         "internal.example resolves to 10.1.2.3, a private address", id="name_to_private"),
            pytest.param("https://meta.example/", [], [["169.254.169.254"]],
                         "meta.example resolves to 169.254.169.254, a link-local address", id="name_to_metadata"),
            pytest.param("https://mixed.example/", [], [["93.184.216.34", "127.0.0.1"]],
                         "mixed.example resolves to 127.0.0.1, a loopback address", id="one_bad_address_of_two"),
            pytest.param("https://v6.example/", [], [["::ffff:127.0.0.1"]],
                         "v6.example resolves to ::ffff:127.0.0.1, a loopback address", id="ipv4_mapped"),
            pytest.param("http://public.example/", [], [["93.184.216.34"]],
                         "public.example: plain http is allowed only to egress_allow", id="http_to_public"),
            pytest.param("ftp://public.example/", [], [["93.184.216.34"]],
                         "public.example: scheme 'ftp'", id="other_scheme"),
            pytest.param("/no/host", [], [["93.184.216.34"]], "a URL without a host", id="no_host"),
            pytest.param("https://internal.example/", ["internal.example:8443"], [["10.1.2.3"]],
                         "internal.example resolves to 10.1.2.3, a private address", id="listed_name_other_port"),
        ],
    )
    async def test_refused(
        self, url: str, allow: list[str], answers: list[list[str]], expected: str, session: aiohttp.ClientSession
    ) -> None:
        """A name is judged by every address it resolves to; http and other schemes need the allow-list."""
        dns = Dns({"internal.example": answers, "meta.example": answers, "mixed.example": answers,
                   "v6.example": answers, "public.example": answers})
        outcome = await send(session, url, egress(allow, dns))
        assert isinstance(outcome, Permanent), outcome
        assert (True, True) == (outcome.alert_operations, expected in outcome.reason), outcome.reason

    async def test_listed_name_connects_to_its_address_with_its_name(
        self, session: aiohttp.ClientSession, serve: Serve
    ) -> None:
        """A listed host name connects to the address it resolved to and keeps its name in Host."""
        async with serve(ok) as (port, seen):
            dns = Dns({"pager.internal": [["127.0.0.1"]]})
            answer = await send(session, f"http://pager.internal:{port}/hook", egress(["pager.internal"], dns))
        assert isinstance(answer, HttpAnswer), answer
        assert (200, f"pager.internal:{port}", 1) == (answer.status, answer.json()["host"], len(seen))

    async def test_next_address_when_the_first_does_not_connect(
        self, session: aiohttp.ClientSession, serve: Serve
    ) -> None:
        """When the first checked address refuses the connection, the next one is tried."""
        async with serve(ok) as (port, seen):
            dns = Dns({"two.internal": [["127.0.0.3", "127.0.0.1"]]})
            answer = await send(session, f"http://two.internal:{port}/", egress(["127.0.0.0/8"], dns))
        assert isinstance(answer, HttpAnswer), answer
        assert (200, 1) == (answer.status, len(seen))

    async def test_dns_rebinding_cannot_redirect_the_connection(
        self, session: aiohttp.ClientSession, serve: Serve
    ) -> None:
        """The connection goes to the address that was checked, not to what the name resolves to later."""
        async with serve(ok) as (port, seen):
            # Checked: 127.0.0.2 (allowed, nothing listens). Any later lookup: 127.0.0.1 (refused, the server).
            dns = Dns({"rebind.example": [["127.0.0.2"], ["127.0.0.1"]]})
            outcome = await send(session, f"http://rebind.example:{port}/", egress(["127.0.0.2"], dns))
        assert isinstance(outcome, Retry), outcome
        assert (0, ["rebind.example"]) == (len(seen), dns.asked)

    async def test_checked_answers_are_reused_for_ten_seconds(
        self, session: aiohttp.ClientSession, serve: Serve
    ) -> None:
        """A name is looked up again only after the DNS cache time, on the injected clock."""
        now = [0.0]
        async with serve(ok) as (port, _):
            dns = Dns({"pager.internal": [["127.0.0.1"]]})
            policy = egress(["pager.internal"], dns, clock=lambda: now[0])
            url = f"http://pager.internal:{port}/"
            await send(session, url, policy)
            now[0] = 9.9
            await send(session, url, policy)
            lookups_within = len(dns.asked)
            now[0] = 10.1
            await send(session, url, policy)
        assert (1, 2) == (lookups_within, len(dns.asked))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


class TestTls:
    @pytest.mark.parametrize(
        ("certified", "expected"),
        [
            pytest.param("hooks.example", HttpAnswer, id="certificate_for_the_name"),
            pytest.param("other.example", Retry, id="certificate_for_another_name"),
        ],
    )
    async def test_pinned_connection_verifies_the_name(
        self, ca: trustme.CA, certified: str, expected: type, serve: Serve
    ) -> None:
        """An https request pinned to the checked address still verifies the certificate against the host name."""
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(certified).configure_cert(server_context)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        async with serve(ok, ssl_context=server_context) as (port, seen):
            dns = Dns({"hooks.example": [["127.0.0.1"]]})
            connector = aiohttp.TCPConnector(ssl=client_context)
            async with aiohttp.ClientSession(connector=connector) as session:
                answer = await send(session, f"https://hooks.example:{port}/services/T1", egress(["127.0.0.1"], dns))
        assert isinstance(answer, expected), answer
        if isinstance(answer, HttpAnswer):
            assert (200, f"hooks.example:{port}") == (answer.status, answer.json()["host"])
        else:
            assert [] == seen

