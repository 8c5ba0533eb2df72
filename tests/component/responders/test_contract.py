"""One contract suite, run against every fake platform with every real adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

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
from responders.telegram import TelegramNotifier, TelegramSender
from responders.webhook import WebhookNotifier, WebhookSender
from responders.whatsapp import WhatsAppSender
from responders.x import XSender

TOKEN = "EAAG-test-page-token"
SECRET = "whsec-test-signing"
CLOCK = fixed_clock()
LOCAL = ("127.0.0.1",)
"""The fakes listen on loopback: the egress policy must allow it."""


def graph() -> FakeGraph:
    """The fake Graph API at the samples' now, knowing the customers and comments the cases answer."""
    fake = FakeGraph({TOKEN}, clock=CLOCK)
    for customer in ("PSID_222", "IGSID_9", "447700900123"):
        fake.add_customer(customer, WROTE_AT)
    for comment in ("POST_9_CMT_7", "17870913679156914"):
        fake.add_comment(comment, WROTE_AT)
    return fake


def x() -> FakeX:
    """The fake X API knowing the customer the DM goes to and the post the reply answers."""
    fake = FakeX({TOKEN}, clock=CLOCK, reset_in=60)
    fake.add_user("777")
    fake.add_tweet("1790000000000000002")
    return fake


def telegram() -> FakeTelegram:
    """The fake Bot API knowing the customer's chat and message, and the staff member's chat."""
    fake = FakeTelegram({TOKEN}, retry_after=17)
    fake.add_message(123456, 42)
    fake.add_message(99887766, 1)
    return fake


def graph_settings(fake: FakePlatform, token: str = TOKEN) -> ResponderSettings:
    return ResponderSettings(
        graph_base_url=fake.url,
        egress_allow=LOCAL,
        accounts={
            "acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=token),
            "acme.it.instagram": AccountCredentials(access_token=token),
            "acme.it.whatsapp": AccountCredentials(phone_number_id="PNID_5", access_token=token),
        },
    )


def x_settings(fake: FakePlatform, token: str = TOKEN) -> ResponderSettings:
    return ResponderSettings(
        x_base_url=fake.url,
        egress_allow=LOCAL,
        accounts={"acme_it_x": AccountCredentials(access_token=token)},
    )


def telegram_settings(fake: FakePlatform, token: str = TOKEN) -> ResponderSettings:
    return ResponderSettings(
        telegram_base_url=fake.url,
        egress_allow=LOCAL,
        telegram_notify_token=token,
        accounts={"acme_it_bot": AccountCredentials(access_token=token)},
    )


def webhook_settings(fake: FakePlatform, token: str = SECRET) -> ResponderSettings:
    assert isinstance(fake, FakeWebhook)
    return ResponderSettings(
        signing_secret=token,
        egress_allow=LOCAL,
        accounts={"acme.crm": AccountCredentials(webhook_url=fake.hook_url, signing_secret=token)},
    )


def plain_settings(fake: FakePlatform, token: str = TOKEN) -> ResponderSettings:
    return ResponderSettings(egress_allow=LOCAL)


def notice(uri: str) -> Notice:
    request = route_request([uri])
    return Notice(
        route=request,
        member=request.to[0],
        uri=uri,
        now=NOW,
        claim_url="https://offhours.example/claim/abc",
    )


@dataclass(frozen=True)
class Case:
    """One adapter against its fake: how to build both, what to send, what the wire shows."""

    make_fake: Callable[[], FakePlatform]
    make_settings: Callable[..., ResponderSettings]
    adapter: Callable[[ResponderSettings, Callable[[], float]], Any]
    message: Callable[[FakePlatform, bool], Any]
    path: str
    wire: dict[str, Any]
    rate_limit_wait: float | None
    has_message_id: bool = True


def slack_uri(fake: FakePlatform, valid: bool) -> Notice:
    assert isinstance(fake, FakeSlack)
    return notice("slack:" + (fake.webhook_url if valid else fake.url + "/services/T1/B1/wrong"))


def teams_uri(fake: FakePlatform, valid: bool) -> Notice:
    assert isinstance(fake, FakeTeams)
    url = fake.webhook_url if valid else fake.webhook_url.replace("s3cret", "wrong")
    return notice("teams:" + url)


def webhook_uri(fake: FakePlatform, valid: bool) -> Notice:
    assert isinstance(fake, FakeWebhook)
    return notice("webhook:" + fake.hook_url)


CASES = [
    pytest.param(
        Case(
            graph,
            graph_settings,
            MessengerSender,
            lambda fake, valid: ack_request(),
            "/v25.0/PAGE_111/messages",
            {
                "recipient": {"id": "PSID_222"},
                "messaging_type": "RESPONSE",
                "message": {"text": ack_request().text},
            },
            None,
        ),
        id="messenger_dm",
    ),
    pytest.param(
        Case(
            graph,
            graph_settings,
            MessengerSender,
            lambda fake, valid: ack_request(
                kind="comment", reply_to="POST_9_CMT_7", recipient="USER_333"
            ),
            "/v25.0/PAGE_111/messages",
            {"recipient": {"comment_id": "POST_9_CMT_7"}, "message": {"text": ack_request().text}},
            None,
        ),
        id="messenger_comment_private_reply",
    ),
    pytest.param(
        Case(
            graph,
            graph_settings,
            MessengerSender,
            lambda fake, valid: ack_request(
                channel="instagram", account="acme.it.instagram", recipient="IGSID_9"
            ),
            "/v25.0/me/messages",
            {"recipient": {"id": "IGSID_9"}, "messaging_type": "RESPONSE"},
            None,
        ),
        id="instagram_dm",
    ),
    pytest.param(
        Case(
            graph,
            graph_settings,
            MessengerSender,
            lambda fake, valid: ack_request(
                kind="comment", reply_to="POST_9_CMT_7", recipient="USER_333", public=True
            ),
            "/v25.0/POST_9_CMT_7/comments",
            {"message": ack_request().text},
            None,
        ),
        id="facebook_comment_public_reply",
    ),
    pytest.param(
        Case(
            graph,
            graph_settings,
            MessengerSender,
            lambda fake, valid: ack_request(
                channel="instagram",
                account="acme.it.instagram",
                kind="comment",
                reply_to="17870913679156914",
                recipient="IGSID_9",
                public=True,
            ),
            "/v25.0/17870913679156914/replies",
            {"message": ack_request().text},
            None,
        ),
        id="instagram_comment_public_reply",
    ),
    pytest.param(
        Case(
            graph,
            graph_settings,
            WhatsAppSender,
            lambda fake, valid: ack_request(
                channel="whatsapp",
                account="acme.it.whatsapp",
                recipient="447700900123",
                reply_to="wamid.TEST1",
            ),
            "/v25.0/PNID_5/messages",
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "447700900123",
                "type": "text",
                "text": {"body": ack_request().text, "preview_url": False},
                "context": {"message_id": "wamid.TEST1"},
            },
            None,
        ),
        id="whatsapp_text",
    ),
    pytest.param(
        Case(
            x,
            x_settings,
            XSender,
            lambda fake, valid: ack_request(
                channel="x", account="acme_it_x", recipient="777", reply_to="1790000000000000001"
            ),
            "/2/dm_conversations/with/777/messages",
            {"text": ack_request().text},
            60.0,
        ),
        id="x_dm",
    ),
    pytest.param(
        Case(
            x,
            x_settings,
            XSender,
            lambda fake, valid: ack_request(
                channel="x",
                account="acme_it_x",
                kind="mention",
                recipient="777",
                reply_to="1790000000000000002",
                public=True,
            ),
            "/2/tweets",
            {"text": ack_request().text, "reply": {"in_reply_to_tweet_id": "1790000000000000002"}},
            60.0,
        ),
        id="x_mention_reply",
    ),
    pytest.param(
        Case(
            telegram,
            telegram_settings,
            TelegramSender,
            lambda fake, valid: ack_request(
                channel="telegram", account="acme_it_bot", recipient="123456", reply_to="42"
            ),
            f"/bot{TOKEN}/sendMessage",
            {
                "chat_id": 123456,
                "reply_parameters": {"message_id": 42, "allow_sending_without_reply": True},
            },
            17.0,
        ),
        id="telegram_ack",
    ),
    pytest.param(
        Case(
            lambda: FakeWebhook(SECRET, retry_after=3),
            webhook_settings,
            WebhookSender,
            lambda fake, valid: ack_request(
                channel="generic", account="acme.crm", recipient="crm-user-1"
            ),
            "/hook",
            {"type": "acknowledgment", "ack_id": "ack:fb:m_abc123", "recipient": "crm-user-1"},
            3.0,
        ),
        id="generic_webhook_ack",
    ),
    pytest.param(
        Case(
            lambda: FakeSlack(retry_after=1),
            plain_settings,
            SlackNotifier,
            slack_uri,
            "/services/T1/B1/abc",
            {"text": "[New message] Facebook Messenger message from Ana Lopez (care-it)"},
            1.0,
            has_message_id=False,
        ),
        id="slack_notice",
    ),
    pytest.param(
        Case(
            lambda: FakeTeams(retry_after=2),
            plain_settings,
            TeamsNotifier,
            teams_uri,
            "/workflows/flow-1/triggers/manual/paths/invoke",
            {"type": "message"},
            2.0,
            has_message_id=False,
        ),
        id="teams_notice",
    ),
    pytest.param(
        Case(
            lambda: FakeWebhook(SECRET, retry_after=3),
            webhook_settings,
            WebhookNotifier,
            webhook_uri,
            "/hook",
            {
                "type": "notification",
                "member": "marta",
                "author": "Ana Lopez",
                "mode": "reduced",
                "waited": "1 h 05 min",
            },
            3.0,
        ),
        id="webhook_notice",
    ),
    pytest.param(
        Case(
            telegram,
            telegram_settings,
            TelegramNotifier,
            lambda fake, valid: notice("telegram:99887766"),
            f"/bot{TOKEN}/sendMessage",
            {"chat_id": 99887766},
            17.0,
        ),
        id="telegram_notice",
    ),
]


def subset(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """The part of ``actual`` with the keys of ``expected`` (nested dicts compared whole)."""
    return {key: actual.get(key) for key in expected}


async def attempt(
    case: Case,
    fake: FakePlatform,
    session: aiohttp.ClientSession,
    *,
    token: str | None = None,
    valid: bool = True,
) -> Outcome:
    settings = case.make_settings(fake, token) if token is not None else case.make_settings(fake)
    adapter = case.adapter(settings, CLOCK)
    return await adapter.send(case.message(fake, valid), session)


@pytest.mark.parametrize("case", CASES)
class TestPlatformContract:
    async def test_accepted_message_is_delivered_in_the_wire_format(
        self, case: Case, session: aiohttp.ClientSession
    ) -> None:
        """A valid send is Delivered, once, to the platform's path with the platform's body."""
        async with case.make_fake() as fake:
            outcome = await attempt(case, fake, session)
            [request] = await fake.wait_for_requests(1)
        assert isinstance(outcome, Delivered)
        assert case.has_message_id == (outcome.message_id is not None)
        assert case.path == request.path
        assert case.wire == subset(case.wire, request.json())

    async def test_rate_limit_is_retry_after_the_platform_wait(
        self, case: Case, session: aiohttp.ClientSession
    ) -> None:
        """A rate-limited send is a Retry carrying the wait the platform asked for."""
        async with case.make_fake() as fake:
            fake.fail_next("rate_limit")
            outcome = await attempt(case, fake, session)
        assert isinstance(outcome, Retry)
        assert case.rate_limit_wait == outcome.after

    async def test_server_error_is_retry(self, case: Case, session: aiohttp.ClientSession) -> None:
        """A 5xx answer is a Retry."""
        async with case.make_fake() as fake:
            fake.fail_next("server_error")
            outcome = await attempt(case, fake, session)
        assert isinstance(outcome, Retry)

    async def test_permanent_error_is_permanent_without_alert(
        self, case: Case, session: aiohttp.ClientSession
    ) -> None:
        """A refusal that retrying cannot fix is Permanent and needs no operations alert."""
        async with case.make_fake() as fake:
            fake.fail_next("permanent")
            outcome = await attempt(case, fake, session)
        assert isinstance(outcome, Permanent)
        assert not outcome.alert_operations

    async def test_credential_error_alerts_operations(
        self, case: Case, session: aiohttp.ClientSession
    ) -> None:
        """A token, permission or gone-endpoint error is Permanent and alerts operations."""
        async with case.make_fake() as fake:
            fake.fail_next("ops_alert")
            outcome = await attempt(case, fake, session)
        assert isinstance(outcome, Permanent)
        assert outcome.alert_operations

    async def test_fake_refuses_wrong_credentials(
        self, case: Case, session: aiohttp.ClientSession
    ) -> None:
        """The fake checks credentials as the platform does: a wrong one is an alerting Permanent."""
        async with case.make_fake() as fake:
            outcome = await attempt(case, fake, session, token="wrong-token", valid=False)
        assert isinstance(outcome, Permanent)
        assert outcome.alert_operations

    async def test_fake_refuses_a_malformed_body(
        self, case: Case, session: aiohttp.ClientSession
    ) -> None:
        """The fake validates the body: an empty JSON object is answered 4xx."""
        async with case.make_fake() as fake:
            async with session.post(
                fake.url + case.path, json={}, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as answer:
                status = answer.status
        assert 400 <= status < 500

    async def test_unreachable_platform_is_retry(
        self, case: Case, session: aiohttp.ClientSession
    ) -> None:
        """A connection failure is a Retry whose reason does not reveal the URL."""
        fake = await case.make_fake().start()
        await fake.stop()
        outcome = await attempt(case, fake, session)
        assert isinstance(outcome, Retry)
        assert "127.0.0.1" not in outcome.reason
