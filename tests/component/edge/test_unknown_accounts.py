"""Which events the webhooks report as "no coverage account": those no team of the coverage in force lists.

The README's generic-webhook step posts the first line of ``examples/events.jsonl``
(channel ``facebook``, account ``acme.it.facebook``) with no ``OFFHOURS_EDGE__ACCOUNTS``
mapping; the shipped coverage lists that account, so nothing may be reported.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from edge import signatures
from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.config_store import MemoryConfigStore
from edge.sink import MemoryEventSink
from edge.webhooks import INGEST
from offhours.service import _known_account
from tests.support.edge_unknown_accounts import EXAMPLES, NOW

GENERIC_SECRET = "dev-generic-secret"


META_SECRET = "test_app_secret_0123456789abcdef"


README_EVENT = (EXAMPLES / "events.jsonl").read_text(encoding="utf-8").splitlines()[0].encode() + b"\n"


def _messenger(page: str) -> bytes:
    return orjson.dumps({"object": "page", "entry": [{"id": page, "time": 1717000000123, "messaging": [
        {"sender": {"id": "PSID_222"}, "recipient": {"id": page}, "timestamp": 1717000000000,
         "message": {"mid": f"m_{page}", "text": "Where is my order?"}}]}]})


def _generic(account: str) -> bytes:
    return orjson.dumps({"id": f"crm:{account}", "account": account, "channel": "facebook", "kind": "dm",
                         "conversation": "crm:c1", "author": {"id": "u1"}, "at": "2026-11-23T22:14:05+01:00"})


@pytest.fixture
def store() -> MemoryConfigStore:
    """The coverage in force: the shipped example, as the config topic would hold it."""
    return MemoryConfigStore((EXAMPLES / "coverage.yaml").read_text(encoding="utf-8"), clock=lambda: NOW)


@pytest.fixture
async def clients() -> AsyncIterator[list[TestClient]]:
    made: list[TestClient] = []
    yield made
    for client in made:
        await client.close()


async def _client(made: list[TestClient], known_account=None, **settings) -> TestClient:
    edge = EdgeSettings(generic_secret=GENERIC_SECRET, meta_app_secret=META_SECRET, **settings)
    app = build_webhooks(edge, MemoryEventSink(), now=lambda: NOW, known_account=known_account)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    made.append(client)
    return client


async def _post_generic(client: TestClient, body: bytes) -> int:
    headers = {"X-Offhours-Signature": signatures.generic_signature(GENERIC_SECRET, body),
               "Content-Type": "application/json"}
    return (await client.post("/webhooks/generic", data=body, headers=headers)).status


async def _post_meta(client: TestClient, body: bytes) -> int:
    headers = {"X-Hub-Signature-256": signatures.meta_signature(META_SECRET, body), "Content-Type": "application/json"}
    return (await client.post("/webhooks/meta", data=body, headers=headers)).status


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "edge.webhooks"]


class TestGenericWebhook:
    async def test_the_readme_step_reports_nothing(
        self, clients: list[TestClient], store: MemoryConfigStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The documented event, signed as the README signs it, is produced with no warning
        (on main it logged "no coverage account for 'acme.it.facebook'": the check asked the
        platform-id mapping, which the generic webhook does not use)."""
        client = await _client(clients, known_account=_known_account(store))
        status = await _post_generic(client, README_EVENT)
        assert (200, 0, []) == (status, client.app[INGEST].stats.unknown_accounts, _warnings(caplog))

    async def test_without_a_coverage_nothing_is_claimed(
        self, clients: list[TestClient], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A generic event names its coverage account itself: with no coverage to ask, no warning."""
        client = await _client(clients)
        status = await _post_generic(client, README_EVENT)
        assert (200, 0, []) == (status, client.app[INGEST].stats.unknown_accounts, _warnings(caplog))

    async def test_an_account_no_team_lists_is_reported(
        self, clients: list[TestClient], store: MemoryConfigStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A generic event for an account the coverage in force does not list is produced, counted and logged."""
        client = await _client(clients, known_account=_known_account(store))
        status = await _post_generic(client, _generic("acme.fr.facebook"))
        assert (200, 1) == (status, client.app[INGEST].stats.unknown_accounts)
        assert ["generic webhook: no coverage account for 'acme.fr.facebook' (event 'crm:acme.fr.facebook')"] == _warnings(caplog)


class TestPlatformWebhook:
    async def test_a_mapped_page_of_a_listed_account_reports_nothing(
        self, clients: list[TestClient], store: MemoryConfigStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = await _client(clients, known_account=_known_account(store), accounts={"PAGE_111": "acme.it.facebook"})
        status = await _post_meta(client, _messenger("PAGE_111"))
        assert (200, 0, []) == (status, client.app[INGEST].stats.unknown_accounts, _warnings(caplog))

    async def test_a_mapping_to_an_account_no_team_lists_is_reported(
        self, clients: list[TestClient], store: MemoryConfigStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The mapping names an account, but the coverage in force has no team for it: the triage will reject it."""
        client = await _client(clients, known_account=_known_account(store), accounts={"PAGE_333": "acme.fr.facebook"})
        await _post_meta(client, _messenger("PAGE_333"))
        assert (1, ["meta webhook: no coverage account for 'acme.fr.facebook' (event 'fb:m_PAGE_333')"]) == (
            client.app[INGEST].stats.unknown_accounts, _warnings(caplog))

    async def test_without_a_coverage_an_unmapped_page_is_reported(
        self, clients: list[TestClient], caplog: pytest.LogCaptureFixture
    ) -> None:
        client = await _client(clients, accounts={"PAGE_111": "acme.it.facebook"})
        await _post_meta(client, _messenger("PAGE_999"))
        assert 1 == client.app[INGEST].stats.unknown_accounts

