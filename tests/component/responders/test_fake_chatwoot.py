"""The fake Chatwoot refuses what Chatwoot refuses, keeps state as Chatwoot does, and signs its webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from responders.fakes.chatwoot import FakeChatwoot
from responders.fakes.samples import NOW, fixed_clock

USER_TOKEN = "cw-user-token-marta"
ADMIN_TOKEN = "cw-admin-token"
OUTSIDER_TOKEN = "cw-user-token-outsider"
BOT_TOKEN = "cw-bot-token"
BASE = "/api/v1/accounts/1/conversations/10"


def desk() -> FakeChatwoot:
    fake = FakeChatwoot(clock=fixed_clock())
    fake.add_account(1)
    fake.add_account(2, "Other")
    fake.add_user(42, "Marta Rossi", token=USER_TOKEN, accounts=(1,))
    fake.add_user(43, "Luca Bianchi", accounts=(1,))
    fake.add_user(1, "Admin", token=ADMIN_TOKEN, accounts=(1,), role="administrator")
    fake.add_user(50, "Elsewhere", token=OUTSIDER_TOKEN, accounts=(2,))
    fake.add_inbox(1, 3, members=(42,))
    fake.add_inbox(1, 4, "Acme WhatsApp", "Channel::Whatsapp", members=(43,))
    fake.add_bot(7, "offhours", token=BOT_TOKEN, inboxes=((1, 3),))
    fake.add_labels(1, "offhours", "reduced", "vip")
    fake.add_conversation(1, 10, inbox=3, labels=("vip",))
    fake.add_conversation(1, 11, inbox=3, can_reply=False)
    fake.add_conversation(1, 12, inbox=4)
    return fake


@pytest.fixture
async def cw() -> AsyncIterator[FakeChatwoot]:
    async with desk() as fake:
        yield fake


async def call(
    session: aiohttp.ClientSession, fake: FakeChatwoot, method: str, path: str,
    body: Any = None, token: str | None = USER_TOKEN,
) -> tuple[int, Any]:
    headers = {"api_access_token": token} if token is not None else {}
    async with session.request(method, fake.url + path, json=body, headers=headers) as answer:
        raw = await answer.read()
        try:
            return answer.status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return answer.status, raw.decode()


INVALID_TOKEN = (401, {"error": "Invalid Access Token"})
NOT_FOUND = (404, {"error": "Resource could not be found"})
BOTS = (401, {"error": "Access to this endpoint is not authorized for bots"})
NOT_IN_ACCOUNT = (401, {"error": "You are not authorized to access this account"})
NOT_ALLOWED = (401, {"error": "You are not authorized to do this action"})


class TestAuthentication:
    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", BASE), ("GET", BASE + "/messages"), ("POST", BASE + "/messages"),
         ("POST", BASE + "/assignments"), ("GET", BASE + "/labels"), ("POST", BASE + "/labels"),
         ("POST", BASE + "/toggle_status"), ("POST", BASE + "/toggle_priority")],
    )
    async def test_missing_and_wrong_token(self, cw: FakeChatwoot, session: aiohttp.ClientSession,
                                           method: str, path: str) -> None:
        assert await call(session, cw, method, path, {}, token=None) == (
            401, {"errors": ["You need to sign in or sign up before continuing."]})
        assert await call(session, cw, method, path, {}, token="nope") == INVALID_TOKEN

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", BASE), ("GET", BASE + "/messages"), ("GET", BASE + "/labels"), ("POST", BASE + "/labels"),
         ("GET", "/api/v1/accounts/1/assignable_agents?inbox_ids[]=3")],
    )
    async def test_bot_token_only_on_bot_endpoints(self, cw: FakeChatwoot, session: aiohttp.ClientSession,
                                                   method: str, path: str) -> None:
        assert await call(session, cw, method, path, {"labels": ["vip"]}, token=BOT_TOKEN) == BOTS

    async def test_bot_token_may_post_assign_and_toggle(self, cw: FakeChatwoot,
                                                        session: aiohttp.ClientSession) -> None:
        status, _ = await call(session, cw, "POST", BASE + "/messages", {"content": "hi"}, token=BOT_TOKEN)
        assert status == 200
        assert (await call(session, cw, "POST", BASE + "/toggle_priority", {"priority": "high"},
                           token=BOT_TOKEN))[0] == 200
        assert (await call(session, cw, "POST", BASE + "/toggle_status", {"status": "pending"},
                           token=BOT_TOKEN))[0] == 200
        # A bot sees only the inboxes it is attached to.
        assert await call(session, cw, "POST", "/api/v1/accounts/1/conversations/12/messages",
                          {"content": "hi"}, token=BOT_TOKEN) == NOT_ALLOWED

    async def test_unknown_account_and_conversation(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        assert await call(session, cw, "GET", "/api/v1/accounts/99/conversations/10") == NOT_FOUND
        assert await call(session, cw, "GET", "/api/v1/accounts/1/conversations/999") == NOT_FOUND
        assert await call(session, cw, "POST", "/api/v1/accounts/1/conversations/999/messages",
                          {"content": "x"}) == NOT_FOUND
        assert await call(session, cw, "GET", "/api/v1/accounts/1/conversations/abc") == NOT_FOUND

    async def test_user_outside_account_or_inbox(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        assert await call(session, cw, "GET", BASE, token=OUTSIDER_TOKEN) == NOT_IN_ACCOUNT
        # Marta is no member of inbox 4; the administrator sees every conversation.
        assert await call(session, cw, "GET", "/api/v1/accounts/1/conversations/12") == NOT_ALLOWED
        assert (await call(session, cw, "GET", "/api/v1/accounts/1/conversations/12", token=ADMIN_TOKEN))[0] == 200


class TestMessages:
    async def test_create_keeps_content_attributes_and_lists_them(self, cw: FakeChatwoot,
                                                                  session: aiohttp.ClientSession) -> None:
        status, created = await call(session, cw, "POST", BASE + "/messages", {
            "content": "We answer from 09:00", "message_type": "outgoing", "private": False,
            "content_attributes": {"offhours_id": "ack:1"}})
        assert status == 200
        assert created["content_attributes"] == {"offhours_id": "ack:1"}
        assert created["message_type"] == 1 and created["private"] is False
        assert created["sender"]["type"] == "user" and created["sender"]["id"] == 42
        status, listed = await call(session, cw, "GET", BASE + "/messages")
        assert status == 200 and listed["meta"]["labels"] == ["vip"]
        assert [m["content_attributes"] for m in listed["payload"]] == [{"offhours_id": "ack:1"}]

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"content": "x" * 150_001}, "Validation failed: Content is too long (maximum is 150000 characters)"),
            ({"content": ""}, "Validation failed: Content can't be blank"),
            ({}, "Validation failed: Content can't be blank"),
            ({"content": "hi", "message_type": "incoming"}, "Incoming messages are only allowed in Api inboxes"),
            ({"content": "hi", "message_type": "shout"}, "'shout' is not a valid message_type"),
        ],
    )
    async def test_create_refuses(self, cw: FakeChatwoot, session: aiohttp.ClientSession,
                                  body: dict[str, Any], expected: str) -> None:
        assert await call(session, cw, "POST", BASE + "/messages", body) == (422, {"error": expected})
        assert cw.conversation(1, 10).messages == []

    async def test_content_of_the_limit_is_accepted(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        assert (await call(session, cw, "POST", BASE + "/messages", {"content": "x" * 150_000}))[0] == 200

    async def test_public_message_outside_the_window_is_accepted_then_fails(
        self, cw: FakeChatwoot, session: aiohttp.ClientSession
    ) -> None:
        path = "/api/v1/accounts/1/conversations/11/messages"
        status, created = await call(session, cw, "POST", path, {"content": "hi"})
        assert status == 200 and created["status"] == "sent"  # Chatwoot answers before its channel job runs
        _, listed = await call(session, cw, "GET", path)
        assert listed["payload"][0]["status"] == "failed"
        assert listed["payload"][0]["content_attributes"]["external_error"] == "Message outside messaging window"
        status, note = await call(session, cw, "POST", path, {"content": "note", "private": True})
        assert status == 200
        assert cw.conversation(1, 11).messages[-1].status == "sent"

    async def test_paging(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        for number in range(130):
            await call(session, cw, "POST", BASE + "/messages", {"content": f"m{number}"})
        ids = [m.id for m in cw.conversation(1, 10).messages]
        _, latest = await call(session, cw, "GET", BASE + "/messages")
        assert [m["id"] for m in latest["payload"]] == ids[-20:]
        _, before = await call(session, cw, "GET", BASE + f"/messages?before={ids[-20]}")
        assert [m["id"] for m in before["payload"]] == ids[-40:-20]
        _, after = await call(session, cw, "GET", BASE + f"/messages?after={ids[0]}")
        assert [m["id"] for m in after["payload"]] == ids[1:101]


class TestConversationState:
    async def test_assign_member_and_unknown_user(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        status, agent = await call(session, cw, "POST", BASE + "/assignments", {"assignee_id": 42})
        assert status == 200 and agent["id"] == 42 and agent["role"] == "agent"
        _, shown = await call(session, cw, "GET", BASE)
        assert shown["meta"]["assignee"]["id"] == 42
        # Chatwoot answers null for an id it does not know, and leaves the conversation unassigned.
        assert await call(session, cw, "POST", BASE + "/assignments", {"assignee_id": 999}) == (200, None)
        assert cw.conversation(1, 10).assignee is None
        # A user of another account is unknown here too.
        assert await call(session, cw, "POST", BASE + "/assignments", {"assignee_id": 50}) == (200, None)

    async def test_assignable_agents(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        status, listed = await call(session, cw, "GET", "/api/v1/accounts/1/assignable_agents?inbox_ids[]=3")
        assert status == 200 and [a["id"] for a in listed["payload"]] == [1, 42]
        assert await call(session, cw, "GET", "/api/v1/accounts/1/assignable_agents?inbox_ids[]=99") == NOT_FOUND

    async def test_labels_replace_and_keep_only_defined(self, cw: FakeChatwoot,
                                                       session: aiohttp.ClientSession) -> None:
        assert await call(session, cw, "GET", BASE + "/labels") == (200, {"payload": ["vip"]})
        assert await call(session, cw, "POST", BASE + "/labels", {"labels": ["offhours"]}) == (
            200, {"payload": ["offhours"]})  # replaced: vip is gone
        assert await call(session, cw, "POST", BASE + "/labels", {"labels": ["offhours", "nope"]}) == (
            200, {"payload": ["offhours"]})

    @pytest.mark.parametrize("status", ["open", "pending", "resolved", "snoozed"])
    async def test_toggle_status(self, cw: FakeChatwoot, session: aiohttp.ClientSession, status: str) -> None:
        code, answer = await call(session, cw, "POST", BASE + "/toggle_status", {"status": status})
        assert code == 200 and answer["payload"]["current_status"] == status

    @pytest.mark.parametrize("value", ["closed", "Resolved", 1])
    async def test_toggle_status_refuses(self, cw: FakeChatwoot, session: aiohttp.ClientSession, value: object) -> None:
        assert (await call(session, cw, "POST", BASE + "/toggle_status", {"status": value}))[0] == 500
        assert cw.conversation(1, 10).status == "open"

    @pytest.mark.parametrize("value", ["urgent", "high", "medium", "low", None])
    async def test_toggle_priority(self, cw: FakeChatwoot, session: aiohttp.ClientSession, value: str | None) -> None:
        assert (await call(session, cw, "POST", BASE + "/toggle_priority", {"priority": value}))[0] == 200
        assert cw.conversation(1, 10).priority == value

    @pytest.mark.parametrize("value", ["none", "critical", "URGENT"])
    async def test_toggle_priority_refuses(self, cw: FakeChatwoot, session: aiohttp.ClientSession, value: str) -> None:
        assert (await call(session, cw, "POST", BASE + "/toggle_priority", {"priority": value}))[0] == 500


class TestScriptedFailures:
    @pytest.mark.parametrize(
        ("kind", "status"),
        [("unauthorized", 401), ("not_found", 404), ("unprocessable", 422), ("rate_limit", 429),
         ("server_error", 500)],
    )
    async def test_next_calls_fail(self, cw: FakeChatwoot, session: aiohttp.ClientSession,
                                   kind: Any, status: int) -> None:
        cw.fail_route("messages.create", kind, times=2)
        for _ in range(2):
            assert (await call(session, cw, "POST", BASE + "/messages", {"content": "hi"}))[0] == status
        assert (await call(session, cw, "POST", BASE + "/messages", {"content": "hi"}))[0] == 200
        assert len(cw.conversation(1, 10).messages) == 1

    async def test_rate_limit_has_retry_after(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        cw.fail_route("labels.index", "rate_limit")
        async with session.get(cw.url + BASE + "/labels", headers={"api_access_token": USER_TOKEN}) as answer:
            assert answer.status == 429 and answer.headers["Retry-After"] == "60"
            assert await answer.text() == "Retry later\n"

    async def test_timeout_after_applies_the_call(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        cw.fail_route("messages.create", "timeout_after")
        with pytest.raises(TimeoutError):
            async with session.post(cw.url + BASE + "/messages", json={"content": "hi"},
                                    headers={"api_access_token": USER_TOKEN},
                                    timeout=aiohttp.ClientTimeout(total=0.3)):
                pass
        assert [m.content for m in cw.conversation(1, 10).messages] == ["hi"]

    def test_unknown_route_or_kind(self) -> None:
        fake = desk()
        with pytest.raises(ValueError, match="route"):
            fake.fail_route("messages.delete", "server_error")
        with pytest.raises(ValueError, match="failure"):
            fake.fail_route("messages.create", "teapot")  # type: ignore[arg-type]


SECRET = "cw-webhook-secret-0123456789"


class TestWebhooks:
    async def test_agent_reply_is_signed_message_created(self, cw: FakeChatwoot, session: aiohttp.ClientSession,
                                                         serve: Any) -> None:
        async def ok(request: web.Request) -> web.Response:
            return web.Response(status=200)

        async with serve(ok) as (port, seen):
            cw.add_webhook(f"http://127.0.0.1:{port}/webhooks/chatwoot", SECRET)
            await cw.agent_replies(1, 10, 42, "Ciao, sono Marta", session=session)
            assert len(seen) == 1
            request = seen[0]
            raw = cw.webhook_deliveries[0].body
            timestamp = request.headers["X-Chatwoot-Timestamp"]
            assert timestamp == str(int(NOW.timestamp()))
            expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
            assert request.headers["X-Chatwoot-Signature"] == f"sha256={expected}"
            payload = orjson.loads(raw)
            assert payload["event"] == "message_created" and payload["message_type"] == "outgoing"
            assert payload["sender"]["type"] == "user" and payload["sender"]["id"] == 42
            assert payload["conversation"]["id"] == 10 and payload["conversation"]["can_reply"] is True
            assert payload["conversation"]["labels"] == ["vip"]
            assert payload["account"]["id"] == 1 and payload["inbox"]["id"] == 3

            delivery = cw.webhook_deliveries[0]
            assert await cw.redeliver(delivery, session) == 200
            assert seen[1].headers["X-Chatwoot-Delivery"] == seen[0].headers["X-Chatwoot-Delivery"]

    async def test_assign_and_resolve(self, cw: FakeChatwoot, session: aiohttp.ClientSession, serve: Any) -> None:
        async def ok(request: web.Request) -> web.Response:
            return web.Response(status=200)

        async with serve(ok) as (port, _):
            cw.add_webhook(f"http://127.0.0.1:{port}/hook", SECRET,
                           ("conversation_updated", "conversation_status_changed"))
            await cw.agent_assigns(1, 10, 42, session=session)
            await cw.agent_sets_status(1, 10, "resolved", session=session)
            events = [d.json() for d in cw.webhook_deliveries]
            assert [e["event"] for e in events] == [
                "conversation_updated", "conversation_status_changed", "conversation_updated"]
            assert events[0]["changed_attributes"] == [{"assignee_id": {"previous_value": None, "current_value": 42}}]
            assert events[0]["meta"]["assignee"]["id"] == 42
            assert events[1]["status"] == "resolved"

    async def test_api_changes_are_queued(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        await call(session, cw, "POST", BASE + "/messages",
                   {"content": "ack", "content_attributes": {"offhours_id": "ack:9"}})
        pending = cw.pending_events
        assert [e["event"] for e in pending] == ["message_created"]
        assert pending[0]["content_attributes"] == {"offhours_id": "ack:9"}
        assert pending[0]["sender"]["type"] == "user"
