"""responders.chatwoot against the fake Chatwoot: each write once, refusals read as outcomes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from responders.base import Delivered, Permanent, Retry
from responders.chatwoot import ChatwootDesk, DeskConversation, ReplyWindowClosed
from responders.config import ResponderSettings
from responders.fakes.chatwoot import FakeChatwoot
from responders.fakes.samples import fixed_clock

TOKEN = "cw-user-token-0123456789abcdef"
BOT_TOKEN = "cw-bot-token-0123456789abcdef"
CLOCK = fixed_clock()
CONVERSATION = DeskConversation(account=1, conversation=10, inbox=3)
CLOSED = DeskConversation(account=1, conversation=11, inbox=3)


def fake_desk() -> FakeChatwoot:
    fake = FakeChatwoot(clock=CLOCK, retry_after=17)
    fake.add_account(1)
    fake.add_user(42, "Marta Rossi", token=TOKEN, accounts=(1,))
    fake.add_user(43, "Luca Bianchi", accounts=(1,))
    fake.add_inbox(1, 3, members=(42, 43))
    fake.add_inbox(1, 4, "Acme WhatsApp", "Channel::Whatsapp")
    fake.add_user(44, "Giulia Verdi", accounts=(1,))  # in the account, no member of inbox 3
    fake.add_bot(7, "offhours", token=BOT_TOKEN, inboxes=((1, 3),))
    fake.add_labels(1, "offhours", "reduced", "vip")
    fake.add_conversation(1, 10, inbox=3, labels=("vip",))
    fake.add_conversation(1, 11, inbox=3, can_reply=False)
    return fake


@pytest.fixture
async def cw() -> AsyncIterator[FakeChatwoot]:
    async with fake_desk() as fake:
        yield fake


def client(fake: FakeChatwoot, token: str = TOKEN, timeout: float = 10.0) -> ChatwootDesk:
    settings = ResponderSettings(
        chatwoot_url=fake.url, chatwoot_token=token, egress_allow=("127.0.0.1",), http_timeout=timeout
    )
    return ChatwootDesk(settings, CLOCK)


def posted(fake: FakeChatwoot, conversation: int = 10) -> list[str | None]:
    return [m.content for m in fake.conversation(1, conversation).messages]


class TestMessages:
    async def test_ack_posted_once_with_marker(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        desk = client(cw)
        first = await desk.post_ack(session, CONVERSATION, "We answer from 09:00", "ack:fb:m_1")
        again = await desk.post_ack(session, CONVERSATION, "We answer from 09:00", "ack:fb:m_1")
        assert isinstance(first, Delivered) and again == first
        [message] = cw.conversation(1, 10).messages
        assert message.content_attributes == {"offhours_id": "ack:fb:m_1"}
        assert message.private is False and message.message_type == "outgoing"
        assert [r.method for r in cw.requests].count("POST") == 1

    async def test_retry_after_timeout_never_posts_twice(self, cw: FakeChatwoot,
                                                         session: aiohttp.ClientSession) -> None:
        desk = client(cw, timeout=0.5)
        cw.fail_route("messages.create", "timeout_after")  # created, but the answer never comes
        lost = await desk.post_ack(session, CONVERSATION, "We answer from 09:00", "ack:1")
        assert isinstance(lost, Retry)
        retried = await desk.post_ack(session, CONVERSATION, "We answer from 09:00", "ack:1")
        assert isinstance(retried, Delivered)
        assert retried.message_id == str(cw.conversation(1, 10).messages[0].id)
        assert posted(cw) == ["We answer from 09:00"]

    async def test_retry_after_server_error_posts_once(self, cw: FakeChatwoot,
                                                       session: aiohttp.ClientSession) -> None:
        desk = client(cw)
        cw.fail_route("messages.create", "server_error")
        assert isinstance(await desk.post_ack(session, CONVERSATION, "hi", "ack:2"), Retry)
        assert isinstance(await desk.post_ack(session, CONVERSATION, "hi", "ack:2"), Delivered)
        assert posted(cw) == ["hi"]

    async def test_marker_found_beyond_the_latest_page(self, cw: FakeChatwoot,
                                                       session: aiohttp.ClientSession) -> None:
        desk = client(cw)
        customer = await cw.customer_writes(1, 10, "help")
        assert isinstance(await desk.post_ack(session, CONVERSATION, "ack", "ack:3"), Delivered)
        for number in range(150):
            await cw.agent_replies(1, 10, 42, f"reply {number}")
        # Backwards from the latest (pages of 20) and forwards from the customer's message.
        for where in (CONVERSATION, DeskConversation(1, 10, 3, after_message=customer.id)):
            assert isinstance(await desk.post_ack(session, where, "ack", "ack:3"), Delivered)
        assert posted(cw).count("ack") == 1

    async def test_window_closed_falls_back_without_posting(self, cw: FakeChatwoot,
                                                            session: aiohttp.ClientSession) -> None:
        desk = client(cw)
        outcome = await desk.post_ack(session, CLOSED, "We answer from 09:00", "ack:4")
        assert isinstance(outcome, ReplyWindowClosed) and isinstance(outcome, Permanent)
        assert not outcome.alert_operations and "can_reply false" in outcome.reason
        assert posted(cw, 11) == []
        note = await desk.post_note(session, CLOSED, "Outside the window: answer by template", "note:4")
        assert isinstance(note, Delivered)
        [message] = cw.conversation(1, 11).messages
        assert message.private is True and message.content_attributes == {"offhours_id": "note:4"}

    async def test_earlier_attempt_failed_by_the_channel(self, cw: FakeChatwoot,
                                                         session: aiohttp.ClientSession) -> None:
        desk = client(cw, timeout=0.5)
        cw.fail_route("messages.create", "timeout_after")
        assert isinstance(await desk.post_ack(session, CONVERSATION, "hi", "ack:5"), Retry)
        # The window closed meanwhile: Chatwoot's channel job failed the message.
        message = cw.conversation(1, 10).messages[0]
        message.status = "failed"
        message.content_attributes["external_error"] = "Message outside messaging window"
        outcome = await desk.post_ack(session, CONVERSATION, "hi", "ack:5")
        assert isinstance(outcome, ReplyWindowClosed)
        assert "Message outside messaging window" in outcome.reason
        assert posted(cw) == ["hi"]

    async def test_text_too_long_is_refused_before_calling(self, cw: FakeChatwoot,
                                                           session: aiohttp.ClientSession) -> None:
        outcome = await client(cw).post_note(session, CONVERSATION, "x" * 150_001, "note:6")
        assert isinstance(outcome, Permanent) and cw.requests == []


class TestConversationState:
    async def test_labels_merged_not_overwritten(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        desk = client(cw)
        assert isinstance(await desk.merge_labels(session, CONVERSATION, ["offhours", "reduced"]), Delivered)
        assert cw.conversation(1, 10).labels == ["offhours", "reduced", "vip"]
        before = len(cw.requests)
        assert isinstance(await desk.merge_labels(session, CONVERSATION, ["offhours"]), Delivered)
        assert [r.method for r in cw.requests[before:]] == ["GET"]  # already there: nothing written

    async def test_undefined_label_alerts_operations(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        outcome = await client(cw).merge_labels(session, CONVERSATION, ["offhours", "after-hours"])
        assert isinstance(outcome, Permanent) and outcome.alert_operations
        assert "after-hours" in outcome.reason and "Settings > Labels" in outcome.reason
        assert cw.conversation(1, 10).labels == ["offhours", "vip"]

    async def test_assign(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        desk = client(cw)
        assert await desk.assign(session, CONVERSATION, 43) == Delivered("43")
        assert cw.conversation(1, 10).assignee is not None and cw.conversation(1, 10).assignee.id == 43
        posts = sum(r.method == "POST" for r in cw.requests)
        assert await desk.assign(session, CONVERSATION, 43) == Delivered("43")
        assert sum(r.method == "POST" for r in cw.requests) == posts

    @pytest.mark.parametrize("agent", [999, 44])
    async def test_assign_unknown_agent_is_permanent_and_leaves_assignee(
        self, cw: FakeChatwoot, session: aiohttp.ClientSession, agent: int
    ) -> None:
        await cw.agent_assigns(1, 10, 42)
        outcome = await client(cw).assign(session, CONVERSATION, agent)
        assert isinstance(outcome, Permanent) and not outcome.alert_operations
        assert f"user {agent} is not an agent of inbox 3" in outcome.reason
        assert "chatwoot_agent" in outcome.reason
        assert cw.conversation(1, 10).assignee is not None and cw.conversation(1, 10).assignee.id == 42

    async def test_priority_and_status(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        desk = client(cw)
        assert isinstance(await desk.set_priority(session, CONVERSATION, "urgent"), Delivered)
        assert cw.conversation(1, 10).priority == "urgent"
        assert isinstance(await desk.set_priority(session, CONVERSATION, "none"), Delivered)
        assert cw.conversation(1, 10).priority is None
        assert isinstance(await desk.set_priority(session, CONVERSATION, "critical"), Permanent)
        assert isinstance(await desk.set_status(session, CONVERSATION, "pending"), Delivered)
        assert cw.conversation(1, 10).status == "pending"
        posts = sum(r.method == "POST" for r in cw.requests)
        assert isinstance(await desk.set_status(session, CONVERSATION, "pending"), Delivered)
        assert sum(r.method == "POST" for r in cw.requests) == posts

    async def test_desk_block(self) -> None:
        desk = {"kind": "chatwoot", "account": 1, "inbox": 3, "conversation": 10, "message": 118,
                "can_reply": True, "status": "open", "assignee": None, "contact": 14}
        assert DeskConversation.from_desk(desk) == DeskConversation(1, 10, 3, 118)
        with pytest.raises(ValueError):
            DeskConversation.from_desk({**desk, "conversation": "10"})
        with pytest.raises(ValueError):
            DeskConversation.from_desk({**desk, "kind": "zendesk"})


class TestRefusals:
    async def test_401_alerts_operations(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        outcome = await client(cw, token="cw-revoked-token-0123456789").post_ack(session, CONVERSATION, "hi", "a")
        assert isinstance(outcome, Permanent) and outcome.alert_operations
        assert "HTTP 401" in outcome.reason and "Invalid Access Token" in outcome.reason

    async def test_bot_token_cannot_read_labels(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        outcome = await client(cw, token=BOT_TOKEN).merge_labels(session, CONVERSATION, ["offhours"])
        assert isinstance(outcome, Permanent) and outcome.alert_operations
        assert "not authorized for bots" in outcome.reason

    async def test_429_retries_after(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        cw.fail_route("messages.index", "rate_limit")
        outcome = await client(cw).post_ack(session, CONVERSATION, "hi", "ack:7")
        assert outcome == Retry(17.0, "chatwoot: reading messages: HTTP 429")
        assert posted(cw) == []

    async def test_404_unknown_conversation(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        outcome = await client(cw).set_status(session, DeskConversation(1, 999), "open")
        assert isinstance(outcome, Permanent) and not outcome.alert_operations
        assert "HTTP 404" in outcome.reason

    async def test_422_is_permanent(self, cw: FakeChatwoot, session: aiohttp.ClientSession) -> None:
        cw.fail_route("messages.create", "unprocessable")
        outcome = await client(cw).post_note(session, CONVERSATION, "hi", "note:8")
        assert isinstance(outcome, Permanent) and "HTTP 422" in outcome.reason

    async def test_not_configured(self, session: aiohttp.ClientSession) -> None:
        desk = ChatwootDesk(ResponderSettings(), CLOCK)
        outcome = await desk.post_ack(session, CONVERSATION, "hi", "a")
        assert isinstance(outcome, Permanent) and outcome.alert_operations
        assert "OFFHOURS_RESPONDERS__CHATWOOT_TOKEN" in outcome.reason

    async def test_token_never_in_reasons_or_logs(self, cw: FakeChatwoot, session: aiohttp.ClientSession,
                                                  caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        desk = client(cw, timeout=0.5)
        outcomes = []
        for route, kind in [("messages.index", "unauthorized"), ("conversation.show", "rate_limit"),
                            ("messages.create", "server_error"), ("messages.create", "timeout"),
                            ("labels.create", "unprocessable"), ("assignable_agents", "not_found")]:
            cw.fail_route(route, kind)  # type: ignore[arg-type]
        for _ in range(4):
            outcomes.append(await desk.post_ack(session, CONVERSATION, "hi", "ack:9"))
        outcomes.append(await desk.merge_labels(session, CONVERSATION, ["offhours"]))
        outcomes.append(await desk.assign(session, CONVERSATION, 43))
        outcomes.append(await client(cw, token="cw-wrong-token-0123456789abcdef").assign(session, CONVERSATION, 43))
        reasons = [o.reason for o in outcomes if isinstance(o, (Retry, Permanent))]
        assert len(reasons) == 7
        for text in [*reasons, caplog.text]:
            assert TOKEN not in text and "cw-wrong-token" not in text
