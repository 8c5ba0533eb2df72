"""``python -m responders.fakes customer-writes``: the running fake desk's customer writes and the
desk posts the signed webhook offhours checks (docs/chatwoot.md, "Watch it work against the fake desk")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from edge.signatures import Verdict, verify_chatwoot
from responders.fakes.__main__ import CHATWOOT_TOKEN, CHATWOOT_USER, main, sample_desk
from responders.fakes.chatwoot import FakeChatwoot

SECRET = "demo-chatwoot-webhook-secret"


class Receiver:
    """offhours' side: checks each delivery's signature as /webhooks/chatwoot does."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.verdicts: list[Verdict] = []
        self.arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        verdict = verify_chatwoot(SECRET, raw, request.headers.get("X-Chatwoot-Signature"),
                                  request.headers.get("X-Chatwoot-Timestamp"), time.time)
        async with self.arrived:
            self.verdicts.append(verdict)
            self.bodies.append(orjson.loads(raw))
            self.arrived.notify_all()
        if verdict is not Verdict.VALID:
            return web.json_response({"error": verdict.name}, status=403)
        return web.json_response({"produced": 1, "duplicates": 0, "skipped": []})

    async def wait_for(self, count: int) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.bodies) >= count), 5)


@pytest.fixture
async def desk() -> AsyncIterator[FakeChatwoot]:
    async with sample_desk() as fake:
        yield fake


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/chatwoot", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield hook, f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/chatwoot"
    finally:
        await runner.cleanup()


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(main, ["customer-writes", *argv])


async def test_the_customer_writes_and_the_signed_webhook_says_so(
    desk: FakeChatwoot, receiver: tuple[Receiver, str], capsys: pytest.CaptureFixture[str]
) -> None:
    hook, url = receiver
    code = await run_cli("--desk", desk.url, "--webhook", url, "--secret", SECRET, "Hi, my order 4471 has not arrived")
    out = capsys.readouterr().out
    body = hook.bodies[0]
    assert (0, [Verdict.VALID], "message_created", "incoming", "Hi, my order 4471 has not arrived", 10, 1) == (
        code, hook.verdicts, body["event"], body["message_type"], body["content"],
        body["conversation"]["id"], body["account"]["id"],  # type: ignore[index]
    )
    assert out.splitlines() == [
        "message 1001 written by the customer of conversation 10 (account 1)",
        f'message_created -> {url}: 200 {{"produced": 1, "duplicates": 0, "skipped": []}}',
    ]


async def test_a_refused_delivery_exits_1(
    desk: FakeChatwoot, receiver: tuple[Receiver, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong secret: offhours answers 403, and the command says so."""
    hook, url = receiver
    code = await run_cli("--desk", desk.url, "--webhook", url, "--secret", "not-the-secret-0123", "Hello?")
    assert (1, [Verdict.FORGED], True) == (code, hook.verdicts, ": 403 " in capsys.readouterr().out)


async def test_no_secret_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OFFHOURS_EDGE__CHATWOOT_WEBHOOK_SECRET", raising=False)
    assert 2 == await run_cli("--desk", "http://127.0.0.1:9", "Hello?")
    assert "OFFHOURS_EDGE__CHATWOOT_WEBHOOK_SECRET" in capsys.readouterr().err


async def test_no_desk_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert 1 == await run_cli("--desk", "http://127.0.0.1:9", "--secret", SECRET, "Hello?")
    assert "is `python -m responders.fakes` running?" in capsys.readouterr().err


async def test_once_live_the_desk_sends_what_the_api_changes_at_once(
    desk: FakeChatwoot, receiver: tuple[Receiver, str], session: aiohttp.ClientSession
) -> None:
    """As Chatwoot does: offhours' own message and assignment come back through the webhook
    right after the call, the message with its marker, sent by the user offhours acts as."""
    hook, url = receiver
    assert 0 == await run_cli("--desk", desk.url, "--webhook", url, "--secret", SECRET, "Hello?")
    headers = {"api_access_token": CHATWOOT_TOKEN}
    base = f"{desk.url}/api/v1/accounts/1/conversations/10"
    ack = {"content": "We will answer soon.", "message_type": "outgoing", "private": False,
           "content_attributes": {"offhours_id": "ack:cw:1:1001"}}
    async with session.post(f"{base}/messages", json=ack, headers=headers) as answer:
        assert 200 == answer.status
    async with session.post(f"{base}/assignments", json={"assignee_id": 42}, headers=headers) as answer:
        assert 200 == answer.status
    await hook.wait_for(3)
    message, assigned = hook.bodies[1], hook.bodies[2]
    assert (
        ["message_created", "conversation_updated"], {"offhours_id": "ack:cw:1:1001"}, CHATWOOT_USER,
        [{"assignee_id": {"previous_value": None, "current_value": 42}}], {Verdict.VALID},
    ) == (
        [message["event"], assigned["event"]], message["content_attributes"],
        message["sender"]["id"],  # type: ignore[index]
        assigned["changed_attributes"], set(hook.verdicts),
    )
