"""The operations API as an attacker meets it: host files, stalls, secrets, scopes, rate limits."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edge.actions import MemoryActionSink
from edge.config_store import ConfigDocument, FollowerState, MemoryConfigStore
from edge.ops import build_operations_api
from edge.ops_config import OpsSettings, Principal, api_calendars
from records.links import LinkSigner
from schedules import Coverage
from tests.support.ops import AUTH, COVERAGE_TEXT, IDENTITY, TOKEN, FixedClock

CANARY = "CANARY_SECRET=do-not-answer-me"
SLACK = "slack:https://hooks.slack.example/T1/B1/abc"
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
    "BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;VALUE=DATE:20260814\r\nDTEND;VALUE=DATE:20260815\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
ALIAS_BOMB = """\
teams:
  t:
    timezone: Europe/Rome
    triage:
      urgent: {keywords: &a [x,x,x,x,x,x,x,x,x]}
      reduced_staff: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
      ack_cooldown: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
      agent_active: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
      reply_within: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
      public_reply: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
      ack_when_open: [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""

ClientFactory = Callable[..., Awaitable[TestClient]]


class Ticks:
    """A monotonic clock the test moves by hand (the rate limiter's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make_client(clock: FixedClock) -> AsyncIterator[ClientFactory]:
    """Builds API clients over a given store, tokens and options; closes them at the end."""
    clients: list[TestClient] = []

    async def make(store: MemoryConfigStore | None = None, tokens: dict[str, Any] | None = None, **options: Any) -> TestClient:
        signer = LinkSigner("link-secret-for-tests", ttl=timedelta(hours=12), clock=clock)
        actions = MemoryActionSink()
        await actions.start()
        api = build_operations_api(
            store or MemoryConfigStore(COVERAGE_TEXT, clock=clock), actions,
            tokens if tokens is not None else {TOKEN: IDENTITY}, signer, clock, **options)
        root = web.Application()
        root.add_subapp("/api/v1", api)
        client = TestClient(TestServer(root, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _with_ics(value: str) -> str:
    return COVERAGE_TEXT.replace("      mode: closed                   # mode for a holiday (default closed)\n",
                                 f"      mode: closed\n      ics: '{value}'\n")


async def _put(client: TestClient, text: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    current = await client.get("/api/v1/coverage", headers=headers or AUTH)
    response = await client.put("/api/v1/coverage", data=text.encode(),
                                headers={**(headers or AUTH), "If-Match": current.headers["ETag"]})
    return response.status, await response.json(content_type=None)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """Host files that must stay unknown to API callers, and a calendars folder."""
    (tmp_path / "secret.env").write_text(CANARY + "\n")
    folder = tmp_path / "calendars"
    folder.mkdir()
    (folder / "closures.ics").write_text(CALENDAR)
    (folder / "notes.ics").write_text(CANARY + "\n")
    (folder / "sub").mkdir()
    (folder / "escape.ics").symlink_to(tmp_path / "secret.env")
    os.mkfifo(folder / "pipe.ics")
    return tmp_path


class TestHostFiles:
    @pytest.mark.parametrize(
        "ics",
        [
            pytest.param("/proc/self/environ", id="process_environment"),
            pytest.param("{host}/secret.env", id="absolute_path_to_a_secret"),
            pytest.param("../../../../../../{host}/secret.env", id="dot_dot"),
            pytest.param("/etc/passwd", id="passwd"),
        ],
    )
    async def test_ics_from_the_api_never_reads_a_host_file(self, make_client: ClientFactory, host: Path, ics: str) -> None:
        """Without a calendars folder, any 'ics' is refused with how to enable it; no content, no path in the answer."""
        client = await make_client()
        status, body = await _put(client, _with_ics(ics.format(host=host)))
        [problem] = body["problems"]
        assert (422, 16) == (status, problem["line"])
        assert "OFFHOURS_OPS__HOLIDAY_CALENDARS_DIR" in problem["hint"]
        answer = str(body)
        assert (False, False, False, False) == ("CANARY" in answer, "PATH=" in answer, "root:" in answer, str(host) in answer)

    async def test_every_calendar_fault_gets_the_same_answer(self, make_client: ClientFactory, host: Path, clock: FixedClock) -> None:
        """Missing, a folder, a FIFO, a link out of the folder, not a calendar: one answer, the name aside (no existence oracle)."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock, calendars=api_calendars(host / "calendars"))
        client = await make_client(store)
        answers = []
        for name in ("missing.ics", "sub", "pipe.ics", "escape.ics", "notes.ics"):
            status, body = await _put(client, _with_ics(name))
            answers.append((status, [(p["line"], p["message"].replace(name, "NAME"), p["hint"]) for p in body["problems"]]))
        assert 1 == len({str(answer) for answer in answers}), answers
        assert (False, False) == ("CANARY" in str(answers), str(host) in str(answers))

    async def test_a_calendar_of_the_folder_is_used(self, make_client: ClientFactory, host: Path, clock: FixedClock) -> None:
        """With the folder configured, a plain name of a calendar in it closes its days."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock, calendars=api_calendars(host / "calendars"))
        client = await make_client(store)
        status, _ = await _put(client, _with_ics("closures.ics"))
        coverage = await client.get("/api/v1/teams/care-it/coverage", params={"at": "2026-08-14T10:00"}, headers=AUTH)
        assert (200, "holiday") == (status, (await coverage.json())["source"])

    async def test_problems_never_name_a_host_path(self, make_client: ClientFactory, clock: FixedClock) -> None:
        """A store given the coverage file's full path names only the file in problems."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock, filename="/srv/offhours/private/coverage.yaml")
        client = await make_client(store)
        status, body = await _put(client, COVERAGE_TEXT.replace("Europe/Rome ", "Europe/Roma "))
        assert (422, ["coverage.yaml"]) == (status, [p["file"] for p in body["problems"]])


class GatedStore(MemoryConfigStore):
    """A store whose validation waits for the test's signal, to see whether the event loop is free meanwhile."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate_timed_out: bool | None = None

    def load(self, document: ConfigDocument) -> Coverage:
        if document.version > 1:  # not the seed
            self.entered.set()
            self.gate_timed_out = not self.gate.wait(timeout=2.0)
        return super().load(document)


class TestEventLoop:
    async def test_a_request_is_answered_while_a_coverage_validates(self, make_client: ClientFactory, clock: FixedClock) -> None:
        """While a PUT /coverage is parsed and validated, another request is answered (validation is off the loop)."""
        store = GatedStore(COVERAGE_TEXT, clock=clock)
        client = await make_client(store)
        etag = store.current().etag
        put = asyncio.ensure_future(client.put(
            "/api/v1/coverage", data=COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza"),
            headers={**AUTH, "If-Match": f'"{etag}"'}))
        await asyncio.to_thread(store.entered.wait, 5.0)
        teams = await client.get("/api/v1/teams", headers=AUTH)
        store.gate.set()
        put_status = (await put).status
        assert (200, 200, False) == (teams.status, put_status, store.gate_timed_out)

    async def test_the_alias_bomb_is_refused_fast(self, make_client: ClientFactory) -> None:
        """The alias bomb sent to PUT /coverage is refused with one line-numbered problem, in well under a second."""
        client = await make_client()
        started = time.perf_counter()
        status, body = await _put(client, ALIAS_BOMB)
        elapsed = time.perf_counter() - started
        assert (422, [6]) == (status, [p["line"] for p in body["problems"]])
        assert elapsed < 1.0

    async def test_a_body_over_the_limit_is_refused_unread(self, make_client: ClientFactory) -> None:
        """A coverage larger than max_coverage_bytes gets 413."""
        client = await make_client(max_coverage_bytes=4096)
        status, body = await _put(client, COVERAGE_TEXT + "#" * 8192 + "\n")
        assert (413, "too-large") == (status, body["type"].rsplit(":", 1)[1])


class TestSameValidationAsTheWorker:
    @pytest.mark.parametrize(
        "template",
        [
            pytest.param("Ciao {{ order_number }}", id="unknown_variable"),
            pytest.param("{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}", id="loop"),
            pytest.param("x" * 700, id="too_long"),
        ],
    )
    async def test_a_template_the_worker_refuses_is_refused(self, make_client: ClientFactory, template: str) -> None:
        """The API refuses templates the worker would refuse (it used to accept them, and the worker kept its old coverage)."""
        client = await make_client()
        text = COVERAGE_TEXT.replace("    holidays:\n      country: IT", f"    triage: {{templates: {{it: {{dm: '{template}'}}}}}}\n    holidays:\n      country: IT", 1)
        status, body = await _put(client, text)
        assert (422, [11]) == (status, [p["line"] for p in body["problems"]])


class TestFollowers:
    async def test_a_follower_that_refuses_a_version_is_reported(self, clock: FixedClock) -> None:
        """When the worker (a follower) raises on a new coverage, the store says which version it refused and keeps the last taken."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock)

        def worker(coverage: Coverage) -> None:
            if coverage.teams["care-it"].name == "Assistenza":
                raise ValueError("refused")

        await store.follow(worker)
        await store.publish(ConfigDocument(yaml=COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza")),
                            expected_etag=None, who=IDENTITY, what="test")
        assert FollowerState(applied=1, refused=2, error="ValueError") == store.followers

    async def test_the_api_says_which_version_this_worker_decides_with(self, make_client: ClientFactory, clock: FixedClock) -> None:
        """GET /coverage as JSON shows the version the API serves and the one this process's worker applied or refused."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock)

        def worker(coverage: Coverage) -> None:
            if coverage.teams["care-it"].name == "Assistenza":
                raise ValueError("refused")

        await store.follow(worker)
        await store.publish(ConfigDocument(yaml=COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza")),
                            expected_etag=None, who=IDENTITY, what="test")
        client = await make_client(store)
        answer = await (await client.get("/api/v1/coverage", headers={**AUTH, "Accept": "application/json"})).json()
        assert (2, {"applied": 1, "refused": 2, "error": "ValueError"}) == (answer["version"], answer["worker"])


class TestSecrets:
    @pytest.mark.parametrize("accept", [pytest.param("application/yaml", id="yaml"), pytest.param("application/json", id="json")])
    async def test_webhook_urls_are_masked(self, make_client: ClientFactory, accept: str) -> None:
        """GET /coverage masks the secret part of Slack and webhook URLs, as YAML and as JSON."""
        client = await make_client()
        response = await client.get("/api/v1/coverage", headers={**AUTH, "Accept": accept})
        text = await response.text()
        assert (False, False, True) == ("B1/abc" in text, "pager.example/hook" in text, "T1/B…/****" in text)

    async def test_get_then_put_keeps_the_secrets(self, make_client: ClientFactory, clock: FixedClock) -> None:
        """The masked text read, edited and put back keeps every secret it masked."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock)
        client = await make_client(store)
        read = await client.get("/api/v1/coverage", headers=AUTH)
        edited = (await read.text()).replace("Assistenza Italia", "Assistenza")
        written = await client.put("/api/v1/coverage", data=edited.encode(), headers={**AUTH, "If-Match": read.headers["ETag"]})
        assert (200, COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza")) == (written.status, store.current().yaml)
        assert SLACK in store.coverage().teams["care-it"].staff["marta"].notify
        assert "B1/abc" not in await written.text()

    async def test_a_masked_value_that_matches_no_secret_is_refused(self, make_client: ClientFactory, clock: FixedClock) -> None:
        """A masked value with nothing to restore (an invented one) is refused at its line, not stored as ****."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock)
        client = await make_client(store)
        status, body = await _put(client, COVERAGE_TEXT.replace(SLACK, "slack:https://hooks.slack.example/T9/B…/****"))
        assert (422, [24], 1) == (status, [p["line"] for p in body["problems"]], store.current().version)


SCOPE_TOKENS = {"r-token": Principal("ops:reader", "read"), "o-token": Principal("ops:operator", "operate"), TOKEN: IDENTITY}
CALLS = [
    ("GET", "/api/v1/teams", None),
    ("GET", "/api/v1/coverage", None),
    ("GET", "/api/v1/coverage?unmasked=true", None),
    ("POST", "/api/v1/conversations/fb:P:U/claim", {"member": "marta"}),
    ("POST", "/api/v1/teams/care-it/overrides", {"from": "2026-11-24 14:00", "to": "2026-11-25 00:00", "mode": "closed"}),
    ("PUT", "/api/v1/coverage", None),
]


class TestScopes:
    @pytest.mark.parametrize(
        ("token", "expected"),
        [
            pytest.param("r-token", [200, 200, 403, 403, 403, 403], id="read"),
            pytest.param("o-token", [200, 200, 403, 202, 201, 403], id="operate"),
            pytest.param(TOKEN, [200, 200, 200, 202, 201, 200], id="admin_plain_token"),
        ],
    )
    async def test_each_scope_does_what_it_may(self, make_client: ClientFactory, clock: FixedClock, token: str, expected: list[int]) -> None:
        """read: GET; operate: also overrides and claims; admin (a plain token): also PUT and unmasked reads."""
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock)
        client = await make_client(store, SCOPE_TOKENS)
        headers = {"Authorization": f"Bearer {token}"}
        statuses = []
        for method, path, body in CALLS:
            extra = {"If-Match": f'"{store.current().etag}"'} if method == "PUT" else {}
            data = COVERAGE_TEXT.encode() if method == "PUT" else None
            response = await client.request(method, path, json=body, data=data, headers={**headers, **extra})
            statuses.append(response.status)
        assert expected == statuses

    async def test_forbidden_names_the_scope_needed(self, make_client: ClientFactory) -> None:
        """403 is problem+json naming the scope the route needs."""
        client = await make_client(tokens=SCOPE_TOKENS)
        response = await client.post("/api/v1/conversations/fb:P:U/claim", json={"member": "marta"},
                                     headers={"Authorization": "Bearer r-token"})
        body = await response.json(content_type=None)
        assert (403, "application/problem+json", True) == (response.status, response.content_type, "scope 'operate'" in body["detail"])

    def test_settings_read_scoped_and_plain_tokens(self) -> None:
        """A plain token is admin; {token, scope} gives the scope."""
        settings = OpsSettings(tokens={"ops:anna": "s3cr3t-anna-token", "ops:bo": {"token": "bo-token-0123456", "scope": "read"}})
        assert {"s3cr3t-anna-token": Principal("ops:anna", "admin"), "bo-token-0123456": Principal("ops:bo", "read")} == settings.bearer_tokens()


class TestRateLimit:
    async def test_a_token_over_its_rate_gets_429_then_recovers(self, make_client: ClientFactory) -> None:
        """Beyond the burst a token gets 429 with Retry-After; after that wait it is served again; other tokens are not held back."""
        ticks = Ticks()
        client = await make_client(tokens=SCOPE_TOKENS, rate_limit=0.5, rate_burst=2, monotonic=ticks)
        statuses = [(await client.get("/api/v1/teams", headers=AUTH)).status for _ in range(3)]
        limited = await client.get("/api/v1/teams", headers=AUTH)
        other = await client.get("/api/v1/teams", headers={"Authorization": "Bearer r-token"})
        ticks.now += float(limited.headers["Retry-After"])
        recovered = await client.get("/api/v1/teams", headers=AUTH)
        assert ([200, 200, 429], 429, "2", 200, 200) == (statuses, limited.status, limited.headers["Retry-After"], other.status, recovered.status)

    async def test_guessing_tokens_is_limited_per_address(self, make_client: ClientFactory) -> None:
        """Requests without a valid token spend their address's bucket: guessing stops at the burst."""
        client = await make_client(rate_limit=1.0, rate_burst=3, monotonic=Ticks())
        statuses = [(await client.get("/api/v1/teams", headers={"Authorization": f"Bearer guess-{n}"})).status for n in range(5)]
        assert [401, 401, 401, 429, 429] == statuses
