"""Every notice kind through every notifier reads like a message a person would send.

Each kind (:data:`responders.notice.NOTICE_KINDS`) is built by the code that makes it in
the service (:mod:`tests.support.notice_kinds`) and rendered by each notifier; the
text a person reads is compared whole, line by line: what happened, the customer's
words, the channel by its name, the account, the real wait, the team's mode, the reason
and the links to claim the conversation.
"""

from __future__ import annotations

import re
from dataclasses import replace
from email import message_from_bytes, policy

import aiohttp
import pytest

from records.wire import Notify
from responders.buckets import TokenBuckets
from responders.config import ResponderSettings
from responders.delivery import DeliveryLoop, MemoryLedger, Responders, RetryPolicy
from responders.fakes import FakeSlack, FakeTelegram
from responders.fakes.samples import fixed_clock
from responders.mail import mail_message
from responders.notice import NOTICE_KINDS
from responders.registry import build_registry
from responders.slack import slack_payload
from responders.teams import teams_payload
from responders.telegram import TelegramNotifier
from streams.metrics import Metrics
from streams.outbox import notification_counter
from tests.support.notice_kinds import CLAIM, built
from tests.support.responders_notice_kinds import EXPECTED

HANDOVER_BUTTONS = [
    ("Claim 1", "https://offhours.example/api/v1/actions/claim-3"),
    ("Claim 2", "https://offhours.example/api/v1/actions/claim-1"),
    ("Claim 3", "https://offhours.example/api/v1/actions/claim-2"),
]


def buttons(kind: str) -> list[tuple[str, str]]:
    """The links a card offers: one per waiting conversation of a digest, else the claim link."""
    return HANDOVER_BUTTONS if kind == "handover" else [("Claim it", CLAIM)]


def card_text(kind: str) -> str:
    """The expected text without the trailing claim line (a card shows it as a button)."""
    return EXPECTED[kind].split("\n\nClaim it: ")[0]


@pytest.mark.parametrize("kind", NOTICE_KINDS)
class TestEveryNotifier:
    def test_slack(self, kind: str) -> None:
        """Header, the customer's words, the facts, and one button per conversation to claim."""
        payload = slack_payload(built(kind).notice("slack:https://hooks.slack.example/T1/B1/abc"))
        blocks = payload["blocks"]
        texts = [block["text"]["text"] for block in blocks if block["type"] in ("header", "section")]
        shown = [(e["text"]["text"], e["url"]) for block in blocks if block["type"] == "actions" for e in block["elements"]]
        title = EXPECTED[kind].split("\n")[0]
        assert (title, card_text(kind), buttons(kind)) == (payload["text"], "\n\n".join(texts), shown)

    def test_teams(self, kind: str) -> None:
        """The same lines in text runs (never Markdown), the links as card actions."""
        card = teams_payload(built(kind).notice("teams:https://example.webhook.office.com/flow"))["attachments"][0]["content"]
        runs = ["".join(run["text"] for run in block["inlines"]) for block in card["body"]]
        title, message, *facts = runs
        shown = [(action["title"], action["url"]) for action in card.get("actions", [])]
        assert (card_text(kind), buttons(kind)) == ("\n\n".join([title, message, "\n".join(facts)]), shown)

    def test_mail(self, kind: str) -> None:
        """The subject is the title, the text part the whole notice, the HTML part links each conversation."""
        message = mail_message(built(kind).notice("mailto:marta@example.com"), "offhours@example.com")
        parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
        text = parsed.get_body(("plain",)).get_content().rstrip("\n")
        html = parsed.get_body(("html",)).get_content()
        links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', html)
        expected = (EXPECTED[kind].split("\n")[0], EXPECTED[kind], [(label, url) for label, url in buttons(kind)])
        assert expected == (str(parsed["Subject"]), text, [(label, url) for url, label in links])

    def test_webhook(self, kind: str) -> None:
        """The JSON carries the same text, the channel's name, the wait and the links."""
        summary = built(kind).notice("webhook:https://pager.example/hook").summary()
        links = [item["claim_url"] for item in summary["conversations"]] if kind == "handover" else [summary["claim_url"]]
        title = EXPECTED[kind].split("\n")[0]
        expected = (title, EXPECTED[kind], kind, [url for _, url in buttons(kind)])
        assert expected == (summary["title"], summary["text_plain"], summary["kind"], links)

    async def test_telegram(self, kind: str, session: aiohttp.ClientSession) -> None:
        """The Bot API gets the whole notice as plain text (no parse_mode)."""
        fake = FakeTelegram({"123:abc"})
        fake.add_message(99887766, 1)
        async with fake:
            settings = ResponderSettings(telegram_base_url=fake.url, telegram_notify_token="123:abc", egress_allow=["127.0.0.1"])
            await TelegramNotifier(settings, fixed_clock()).send(built(kind).notice("telegram:99887766"), session)
            [request] = await fake.wait_for_requests(1)
        assert (EXPECTED[kind], False) == (request.json()["text"], "parse_mode" in request.json())


def responders_for(slack: FakeSlack, session: aiohttp.ClientSession, metrics: Metrics) -> Responders:
    """The responders with a claim link per (conversation, member) and the service's counters."""
    clock = fixed_clock()

    async def nowhere(raw: bytes, source: str, reason: str) -> None:
        return None

    async def no_sleep(seconds: float) -> None:
        return None

    loop = DeliveryLoop(ledger=MemoryLedger(), policy=RetryPolicy(max_attempts=2), buckets=TokenBuckets(clock),
                        sleep=no_sleep, jitter=lambda: 0.0)
    return Responders(
        registry=build_registry(ResponderSettings(egress_allow=["127.0.0.1"]), clock), loop=loop, session=session,
        clock=clock, dead_letter=nowhere,
        claim_link=lambda route, notify: f"https://offhours.example/claim/{route.conversation}/{notify.member}",
        notified=notification_counter(metrics),
    )


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"offhours_notifications_{name}_total", labels) or 0.0


class TestDelivered:
    async def test_a_digest_links_every_conversation_for_its_reader(self, session: aiohttp.ClientSession) -> None:
        """The handover digest that reaches Slack has a signed claim link per conversation, no placeholder."""
        slack = FakeSlack()
        async with slack:
            route = replace(built("handover").route, to=[Notify("marta", "Marta Rossi", [f"slack:{slack.webhook_url}"])])
            await responders_for(slack, session, Metrics()).route(route)
            [request] = await slack.wait_for_requests(1)
        body = request.json()
        urls = [e["url"] for block in body["blocks"] if block["type"] == "actions" for e in block["elements"]]
        expected = [f"https://offhours.example/claim/{c}/marta" for c in ("tg:offhours_bot:4242", "fb:PAGE_111:PSID_888", "wa:PHONE_1:39333")]
        assert (expected, False) == (urls, "{link:" in str(body))

    async def test_a_failing_slack_webhook_is_counted(self, session: aiohttp.ClientSession) -> None:
        """A Slack webhook that refuses counts in notifications_failed{slack,kind}; one that accepts in _sent."""
        slack = FakeSlack()
        metrics = Metrics()
        async with slack:
            uri = f"slack:{slack.webhook_url}"
            slack.fail_next("permanent")
            page = replace(built("page").route, to=[Notify("marta", "Marta Rossi", [uri])])
            [failed] = await responders_for(slack, session, metrics).route(page)
            window = replace(built("window").route, to=[Notify("marta", "Marta Rossi", [uri])])
            [sent] = await responders_for(slack, session, metrics).route(window)
        expected = ("dead", "delivered", 1.0, 0.0, 1.0, 0.0)
        assert expected == (
            failed.status, sent.status,
            counted(metrics, "failed", notifier="slack", kind="page"), counted(metrics, "sent", notifier="slack", kind="page"),
            counted(metrics, "sent", notifier="slack", kind="window"), counted(metrics, "failed", notifier="slack", kind="window"),
        )

