"""The console's access rules on a live aiohttp server (no browser), and its pages with 10,000 open conversations."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from console.views import BACKLOG_PREVIEW, QUEUE_LIMIT
from tests.support.console import (
    NOW,
    OPERATE_TOKEN,
    READ_TOKEN,
    Console,
    event,
    running_console,
)

PAGES = ("/console/", "/console/timeline", "/console/preview?at=2026-12-24T02:00", "/console/queue",
         "/console/overrides", "/console/reply-times")


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    async for running in running_console():
        yield running


def browser_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(session: aiohttp.ClientSession, console: Console, token: str) -> str:
    async with session.post(f"{console.url}/console/login", data={"token": token}) as answer:
        assert answer.status == 200 and answer.url.path == "/console/"
        return re.search(r'name="csrf" value="([^"]+)"', await answer.text()).group(1)  # type: ignore[union-attr]


async def test_nothing_is_readable_without_signing_in(console: Console) -> None:
    async with browser_session() as session:
        for page in PAGES:
            async with session.get(f"{console.url}{page}", allow_redirects=False) as answer:
                assert answer.status == 303 and answer.headers["Location"] == "/console/login", page
        async with session.post(f"{console.url}/console/login", data={"token": "wrong"}) as answer:
            assert answer.status == 401


async def test_the_session_cookie_is_httponly_and_samesite(console: Console) -> None:
    async with browser_session() as session, session.post(
        f"{console.url}/console/login", data={"token": OPERATE_TOKEN}, allow_redirects=False
    ) as answer:
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        assert OPERATE_TOKEN not in cookie


async def test_a_form_without_its_csrf_token_or_from_elsewhere_is_refused(console: Console) -> None:
    async with browser_session() as session:
        csrf = await sign_in(session, console, OPERATE_TOKEN)
        form = {"conversation": console.conversations["routed"], "member": "marta"}
        async with session.post(f"{console.url}/console/queue/claim", data=form) as answer:
            assert answer.status == 403
        async with session.post(f"{console.url}/console/queue/claim", data={**form, "csrf": csrf},
                                headers={"Origin": "https://evil.example"}) as answer:
            assert answer.status == 403
        assert console.sink.records == []
        async with session.post(f"{console.url}/console/queue/claim", data={**form, "csrf": csrf}) as answer:
            assert answer.status == 200 and "claim recorded" in await answer.text()
        assert [action.member for action in console.sink.records] == ["marta"]


async def test_a_read_token_cannot_change_anything(console: Console) -> None:
    async with browser_session() as session:
        csrf = await sign_in(session, console, READ_TOKEN)
        form = {"csrf": csrf, "team": "care-it", "kind": "mode", "day": "2026-11-24", "start": "14:00", "end": "16:00", "mode": "closed"}
        async with session.post(f"{console.url}/console/overrides/add", data=form) as answer:
            assert "403" in answer.url.query.get("error", "") and "operate" in answer.url.query["error"]
        assert console.store.current().overrides == ()


async def test_every_page_renders_with_10000_open_conversations(console: Console) -> None:
    # 10,000 more open conversations over 4 days; how fast the pages are is bench/console.py's to measure.
    for n in range(10, 10_010):
        console.projection.apply_event(event(n, NOW - timedelta(minutes=n % 5760)))
    waiting = sum(1 for _ in console.projection.open_conversations())
    assert waiting >= 10_000
    shows = {
        "/console/": ('data-team="care-it"', 'data-team="care-us"'),
        "/console/timeline": ('<svg id="timeline"',),
        "/console/preview?at=2026-12-24T02:00": ('id="preview-result"',),
        # the routed table comes first, longest waiting first: 5,759 minutes before Monday 20:00 (Thursday, reduced)
        "/console/queue": (f"<small>{waiting} waiting for a person</small>",
                           f'<small>{len(console.projection.pending)}</small>',
                           'data-conversation="wa:PHONE_1:CUST_5759"'),
        "/console/overrides": ("Natale",),
        "/console/reply-times": (f"<small>{len(console.projection.messages)} messages",),
    }
    assert set(shows) == set(PAGES)
    async with browser_session() as session:
        await sign_in(session, console, OPERATE_TOKEN)
        for page, marks in shows.items():
            async with session.get(f"{console.url}{page}") as answer:
                assert answer.status == 200, page
                text = await answer.text()
            for mark in marks:
                assert mark in text, (page, mark)
            if page == "/console/queue":
                assert re.findall(r'<tr data-conversation="([^"]+)"', text)[0] == "wa:PHONE_1:CUST_5759"
                # 100 routed rows and the first rows of each team's backlog, with a link to the rest.
                assert text.count("<tr data-conversation=") == QUEUE_LIMIT + BACKLOG_PREVIEW
                assert 'href="?team=care-it">all of care-it\'s backlog</a>' in text
        async with session.get(f"{console.url}/console/queue?team=care-it") as answer:
            team_text = await answer.text()
        assert team_text.count("<tr data-conversation=") == 2 * QUEUE_LIMIT  # 100 routed, 100 of the backlog
