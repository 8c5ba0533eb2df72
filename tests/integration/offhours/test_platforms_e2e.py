"""Every platform and kind end to end: a signed webhook, shaped as the platform documents
it, posted to the running edge; the acknowledgment accepted by the fake platform with the
right recipient and reply target; the staff notification at the fake Slack.

One embedded broker, one edge (the service's webhook app on a free port, producing to
the events topic) and one worker (triage and responders) serve the whole table. The
webhooks are signed here with the platforms' own schemes (HMAC over the raw body), not
with offhours' code. Every clock (the worker's, the fakes' windows) starts at the
customers' Monday evening and runs on with real time, so the test holds on any date.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from brokers.tansu import EmbeddedBroker
from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.sink import KafkaEventSink
from responders.config import AccountCredentials
from responders.fakes import FakeGraph, FakeSlack, FakeTelegram, FakeX
from responders.fakes.base import Answered
from responders.fakes.samples import running_clock
from schedules import load_coverage_text
from streams.worker import running_worker
from tests.conftest import settings_for

pytestmark = [pytest.mark.broker, pytest.mark.asyncio(loop_scope="module")]

ROME = ZoneInfo("Europe/Rome")
WROTE = datetime(2026, 11, 23, 22, 14, 5, tzinfo=ROME)  # Monday: care-it reduced, someone on call
EPOCH = int(WROTE.timestamp())

META_APP_SECRET = "e2e-meta-app-secret"
X_CONSUMER_SECRET = "e2e-x-consumer-secret"
TELEGRAM_SECRET = "e2e-telegram-secret_token"
GRAPH_TOKEN = "EAAG-e2e-page-token"
X_TOKEN = "e2e-x-user-token"
BOT_TOKEN = "7000000001:AAE2e-telegram-bot-token"

PAGE = "112233445566778"  # the Facebook Page; its Instagram account is linked to it
IG_ACCOUNT = "17841400000000001"
PHONE_NUMBER_ID = "106540352242922"
X_BRAND = "1590000000000000000"
BOT = "acme_help_bot"

COVERAGE = """\
teams:
  care-it:
    name: Assistenza Italia
    timezone: Europe/Rome
    locale: it
    accounts: [acme.it.facebook, acme.it.instagram, acme.it.whatsapp, acme_it_x, acme_it_bot]
    hours:
      mon-fri: ["09:00-19:00 open", "19:00-24:00 reduced"]
    on_call:
      rotation: {{members: [marta, luca], start: "2026-11-02 09:00", every: 1w}}
    staff:
      marta: {{name: Marta Rossi, notify: ["slack:{slack}"]}}
      luca:  {{name: Luca Bianchi, notify: ["slack:{slack}"]}}
"""


# -- webhook bodies, as each platform documents them -------------------------------------


def messenger_dm() -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": PAGE, "time": EPOCH * 1000 + 123, "messaging": [{
        "sender": {"id": "24680135791357913"}, "recipient": {"id": PAGE}, "timestamp": EPOCH * 1000,
        "message": {"mid": "m_AbC123dEf456gHi789jKl0mNoPqRsTuVwXyZ", "text": "Dov'è il mio ordine?"}}]}]}


def instagram_dm() -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": EPOCH * 1000 + 77, "messaging": [{
        "sender": {"id": "1234567890123456"}, "recipient": {"id": IG_ACCOUNT}, "timestamp": EPOCH * 1000,
        "message": {"mid": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDE", "text": "Il pacco non è arrivato"}}]}]}


def facebook_comment() -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": PAGE, "time": EPOCH, "changes": [{"field": "feed", "value": {
        "item": "comment", "verb": "add", "comment_id": f"{PAGE}_1200000000000001",
        "post_id": f"{PAGE}_987654321000001", "parent_id": f"{PAGE}_987654321000001",
        "from": {"id": "7000000000000001", "name": "Ana Lopez"}, "message": "Arrivato rotto",
        "created_time": EPOCH}}]}]}


def instagram_comment() -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": EPOCH, "changes": [{"field": "comments", "value": {
        "id": "17900000000000001", "text": "Nessuna risposta in chat",
        "from": {"id": "1234567890123457", "username": "sam.lee"},
        "media": {"id": "17800000000000001", "media_product_type": "FEED"}}}]}]}


def whatsapp_text() -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Sam Lee"}, "wa_id": "447700900123"}],
        "messages": [{"from": "447700900123", "id": "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggM0VCMEQ3RjM5QjQ1RjBGMjc0NTAA",
                      "timestamp": str(EPOCH), "type": "text", "text": {"body": "Vorrei un rimborso"}}]}}]}]}


def x_dm() -> dict[str, Any]:
    return {"for_user_id": X_BRAND, "direct_message_events": [{
        "type": "message_create", "id": "1790000000000000001", "created_timestamp": str(EPOCH * 1000),
        "message_create": {"target": {"recipient_id": X_BRAND}, "sender_id": "1234567890123456789",
                           "message_data": {"text": "Addebito doppio sulla carta"}}}],
        "users": {"1234567890123456789": {"id": "1234567890123456789", "screen_name": "cust_789"}}}


def x_mention() -> dict[str, Any]:
    return {"for_user_id": X_BRAND, "user_has_blocked": False, "tweet_create_events": [{
        "id_str": "1790000000000000002", "text": "@acme_help l'app si chiude al login",
        "created_at": WROTE.astimezone(ZoneInfo("UTC")).strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "user": {"id_str": "1234567890123456790", "screen_name": "cust_790"}, "in_reply_to_status_id_str": None}]}


def telegram_private() -> dict[str, Any]:
    return {"update_id": 873500001, "message": {
        "message_id": 4182, "date": EPOCH,
        "from": {"id": 6123456789, "is_bot": False, "first_name": "Kim", "username": "kim_t", "language_code": "it"},
        "chat": {"id": 6123456789, "type": "private", "first_name": "Kim", "username": "kim_t"},
        "text": "Il treno delle 21:40 è stato cancellato?"}}


def telegram_group() -> dict[str, Any]:
    text = f"@{BOT} il mio treno è stato soppresso"
    return {"update_id": 873500002, "message": {
        "message_id": 42, "date": EPOCH,
        "from": {"id": 6123456790, "is_bot": False, "first_name": "Luz", "username": "luz_r"},
        "chat": {"id": -1001234567890, "type": "supergroup", "title": "Acme viaggiatori"},
        "text": text, "entities": [{"offset": 0, "length": len(BOT) + 1, "type": "mention"}]}}


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One platform and kind: the webhook, and the acknowledgment the fake must accept."""

    webhook: str
    body: dict[str, Any]
    fake: str
    path: str
    sent: dict[str, Any]
    customer_text: str


def text_of(body: dict[str, Any]) -> str:
    for path in (("entry", 0, "messaging", 0, "message", "text"), ("entry", 0, "changes", 0, "value", "message"),
                 ("entry", 0, "changes", 0, "value", "text"),
                 ("entry", 0, "changes", 0, "value", "messages", 0, "text", "body"),
                 ("direct_message_events", 0, "message_create", "message_data", "text"),
                 ("tweet_create_events", 0, "text"), ("message", "text")):
        node: Any = body
        try:
            for step in path:
                node = node[step]
        except (KeyError, IndexError, TypeError):
            continue
        return node
    raise AssertionError("no customer text in the body")


def case(webhook: str, body: dict[str, Any], fake: str, path: str, sent: dict[str, Any]) -> Case:
    return Case(webhook, body, fake, path, sent, text_of(body))


CASES = [
    pytest.param(case("meta", messenger_dm(), "graph", f"/v25.0/{PAGE}/messages",
                      {"recipient": {"id": "24680135791357913"}, "messaging_type": "RESPONSE"}), id="messenger_dm"),
    pytest.param(case("meta", instagram_dm(), "graph", f"/v25.0/{PAGE}/messages",
                      {"recipient": {"id": "1234567890123456"}, "messaging_type": "RESPONSE"}), id="instagram_dm"),
    pytest.param(case("meta", facebook_comment(), "graph", f"/v25.0/{PAGE}/messages",
                      {"recipient": {"comment_id": f"{PAGE}_1200000000000001"}}), id="facebook_comment"),
    pytest.param(case("meta", instagram_comment(), "graph", f"/v25.0/{PAGE}/messages",
                      {"recipient": {"comment_id": "17900000000000001"}}), id="instagram_comment"),
    pytest.param(case("meta", whatsapp_text(), "graph", f"/v25.0/{PHONE_NUMBER_ID}/messages",
                      {"to": "447700900123",
                       "context": {"message_id": "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggM0VCMEQ3RjM5QjQ1RjBGMjc0NTAA"}}),
                 id="whatsapp_text"),
    pytest.param(case("x", x_dm(), "x", "/2/dm_conversations/with/1234567890123456789/messages", {}), id="x_dm"),
    pytest.param(case("x", x_mention(), "x", "/2/tweets",
                      {"reply": {"in_reply_to_tweet_id": "1790000000000000002"}}), id="x_mention"),
    pytest.param(case("telegram", telegram_private(), "telegram", f"/bot{BOT_TOKEN}/sendMessage",
                      {"chat_id": 6123456789, "reply_parameters": {"message_id": 4182, "allow_sending_without_reply": True}}),
                 id="telegram_private"),
    pytest.param(case("telegram", telegram_group(), "telegram", f"/bot{BOT_TOKEN}/sendMessage",
                      {"chat_id": -1001234567890, "reply_parameters": {"message_id": 42, "allow_sending_without_reply": True}}),
                 id="telegram_group_mention"),
]

PUBLIC_REPLIES = {"facebook_comment": f"/v25.0/{PAGE}_1200000000000001/comments",
                  "instagram_comment": "/v25.0/17900000000000001/replies"}


def contains(actual: Any, expected: Any) -> bool:
    """True when every key of ``expected`` is in ``actual`` with an equal (or contained) value."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    return actual == expected


def accepted(fake: Any, path: str, sent: dict[str, Any]) -> list[Answered]:
    return [a for a in fake.answers if a.ok and a.request.path == path and contains(a.request.json(), sent)]


# -- the running edge and worker ---------------------------------------------------------


@dataclass
class Running:
    edge_url: str
    fakes: dict[str, Any]
    slack: FakeSlack
    session: aiohttp.ClientSession

    async def post(self, webhook: str, body: dict[str, Any]) -> int:
        raw = orjson.dumps(body)
        headers = {"Content-Type": "application/json"}
        if webhook == "meta":
            digest = hmac.new(META_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        elif webhook == "x":
            digest = hmac.new(X_CONSUMER_SECRET.encode(), raw, hashlib.sha256).digest()
            headers["x-twitter-webhooks-signature"] = "sha256=" + base64.b64encode(digest).decode()
        else:
            headers["X-Telegram-Bot-Api-Secret-Token"] = TELEGRAM_SECRET
        async with self.session.post(f"{self.edge_url}/webhooks/{webhook}", data=raw, headers=headers) as answer:
            return answer.status


def the_world(clock: Callable[[], float]) -> tuple[FakeGraph, FakeX, FakeTelegram]:
    """The fake platforms, knowing the customers who wrote (as the real ones do)."""
    graph = FakeGraph({GRAPH_TOKEN}, clock=clock)
    for user in ("24680135791357913", "1234567890123456", "447700900123"):
        graph.add_customer(user, WROTE)
    graph.add_comment(f"{PAGE}_1200000000000001", WROTE)
    graph.add_comment("17900000000000001", WROTE)
    x = FakeX({X_TOKEN}, clock=clock)
    x.add_user("1234567890123456789")
    x.add_tweet("1790000000000000002")
    telegram = FakeTelegram({BOT_TOKEN})
    telegram.add_message(6123456789, 4182, "private")
    telegram.add_message(-1001234567890, 42, "supergroup")
    return graph, x, telegram


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    clock = running_clock(WROTE + timedelta(seconds=2))
    graph, x, telegram = the_world(clock)
    slack = FakeSlack()
    for fake in (graph, x, telegram, slack):
        await fake.start()
    base = settings_for(broker, f"platforms-e2e-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("e2e"))
    graph_account = {"page_id": PAGE, "access_token": GRAPH_TOKEN}
    responders = base.responders.model_copy(update={
        "deliver": True,
        "graph_base_url": graph.url,
        "x_base_url": x.url,
        "telegram_base_url": telegram.url,
        "egress_allow": ("127.0.0.1",),
        "accounts": {
            "acme.it.facebook": AccountCredentials(**graph_account),
            "acme.it.instagram": AccountCredentials(**graph_account),
            "acme.it.whatsapp": AccountCredentials(phone_number_id=PHONE_NUMBER_ID, access_token=GRAPH_TOKEN),
            "acme_it_x": AccountCredentials(access_token=X_TOKEN),
            "acme_it_bot": AccountCredentials(access_token=BOT_TOKEN),
        },
    })
    settings = base.with_overrides(partitions=1, responders=responders)
    edge_settings = EdgeSettings(
        meta_app_secret=META_APP_SECRET, x_consumer_secret=X_CONSUMER_SECRET, telegram_secret_token=TELEGRAM_SECRET,
        telegram_bot=BOT, telegram_bot_account="acme_it_bot",
        accounts={f"fb:{PAGE}": "acme.it.facebook", f"ig:{IG_ACCOUNT}": "acme.it.instagram",
                  f"wa:{PHONE_NUMBER_ID}": "acme.it.whatsapp", f"x:{X_BRAND}": "acme_it_x"},
    )
    coverage = load_coverage_text(COVERAGE.format(slack=slack.webhook_url))
    sink = KafkaEventSink(settings.bootstrap_servers, settings.events_topic)
    runner = web.AppRunner(build_webhooks(edge_settings, sink), access_log=None)
    try:
        async with running_worker(settings, coverage, reconcile=False, clock=clock):
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession() as session:
                yield Running(f"http://127.0.0.1:{port}", {"graph": graph, "x": x, "telegram": telegram}, slack, session)
    finally:
        await runner.cleanup()
        for fake in (graph, x, telegram, slack):
            await fake.stop()


def slack_texts(slack: FakeSlack) -> list[str]:
    return [orjson.dumps(a.request.json()).decode() for a in slack.answers if a.ok]


class TestEveryPlatformEndToEnd:
    @pytest.mark.parametrize("row", CASES)
    async def test_signed_webhook_to_accepted_acknowledgment(self, running: Running, row: Case, request: pytest.FixtureRequest) -> None:
        """The platform's own webhook shape, signed, becomes one acknowledgment the platform accepts, and a notice to staff."""
        assert 200 == await running.post(row.webhook, row.body)
        fake = running.fakes[row.fake]
        await fake.wait_until(lambda f: bool(accepted(f, row.path, row.sent)), timeout=30)
        refused = [(a.status, a.request.path, a.request.body[:200]) for a in fake.answers if not a.ok]
        assert [] == refused
        case_id = request.node.callspec.id
        if case_id in PUBLIC_REPLIES:
            await fake.wait_until(lambda f: bool(accepted(f, PUBLIC_REPLIES[case_id], {})), timeout=30)
        # The mode routes to the on-call member: a notice with the customer's words reaches Slack.
        quoted = orjson.dumps(row.customer_text).decode()[1:-1]
        await running.slack.wait_until(lambda s: any(quoted in text for text in slack_texts(s)), timeout=30)
