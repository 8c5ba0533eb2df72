"""The delivery loop: ledger idempotency, rate limits, bounded retries, dead letters."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import aiohttp
import pytest

from records.wire import AckRequest
from responders.buckets import TokenBuckets
from responders.config import AccountCredentials, ResponderSettings
from responders.delivery import (
    DEAD,
    DELIVERED,
    SENDING,
    DeliveryLoop,
    DeliveryOutcome,
    MemoryLedger,
    Responders,
    RetryPolicy,
)
from responders.fakes import FakeGraph, FakeSlack, FakeTelegram, FakeWebhook
from responders.fakes.samples import WROTE_AT, ack_request, fixed_clock, route_request
from responders.registry import build_registry
from tests.support.policy_fixtures import MONDAY_EVENING, event, small_coverage
from triage.policy import Triage

TOKEN = "EAAG-secret-page-token-123"


SIGNING = "whsec-very-secret"


COMMENT_ID = "POST_9_CMT_7"


IG_COMMENT_ID = "17870913679156914"


def fake_graph(hidden_comments: frozenset[str] = frozenset()) -> FakeGraph:
    """The fake Graph API at the samples' now, knowing the sample customers (who wrote
    65 minutes earlier) and comments."""
    fake = FakeGraph({TOKEN}, hidden_comments=hidden_comments, clock=fixed_clock())
    for customer in ("PSID_222", "447700900123"):
        fake.add_customer(customer, WROTE_AT)
    for comment in (COMMENT_ID, IG_COMMENT_ID):
        fake.add_comment(comment, WROTE_AT)
    return fake


def fake_telegram(**options: int) -> FakeTelegram:
    """The fake Bot API knowing the sample customer's chat and messages."""
    fake = FakeTelegram({TOKEN}, **options)
    for message_id in (42, 43):
        fake.add_message(123456, message_id)
    return fake


class SleepingClock:
    """Epoch seconds that move only when the code under test sleeps (which returns at once)."""

    def __init__(self) -> None:
        self.now = fixed_clock()()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclasses.dataclass
class Harness:
    """Responders wired to recording sinks and a sleep that returns at once."""

    responders: Responders
    ledger: MemoryLedger
    slept: list[float]
    dead_letters: list[tuple[bytes, str, str]]
    escalations: list[tuple[AckRequest, str]]
    outcomes: list[DeliveryOutcome]


def settings_for(base_url: str, **changes: object) -> ResponderSettings:
    return ResponderSettings(
        graph_base_url=base_url,
        telegram_base_url=base_url,
        egress_allow=("127.0.0.1",),
        signing_secret=SIGNING,
        max_attempts=3,
        backoff_base=1.0,
        accounts={
            "acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN),
            "acme.it.whatsapp": AccountCredentials(phone_number_id="PNID_5", access_token=TOKEN),
            "acme_it_bot": AccountCredentials(access_token=TOKEN),
        },
        **changes,
    )


def harness(
    settings: ResponderSettings, session: aiohttp.ClientSession, ledger: MemoryLedger | None = None
) -> Harness:
    clock = SleepingClock()
    dead: list[tuple[bytes, str, str]] = []
    escalations: list[tuple[AckRequest, str]] = []
    outcomes: list[DeliveryOutcome] = []

    async def dead_letter(raw: bytes, source: str, reason: str) -> None:
        dead.append((raw, source, reason))

    async def escalate(request: AckRequest, reason: str) -> None:
        escalations.append((request, reason))

    ledger = ledger or MemoryLedger()
    loop = DeliveryLoop(
        ledger=ledger,
        policy=RetryPolicy.from_settings(settings),
        buckets=TokenBuckets(clock),
        sleep=clock.sleep,
        jitter=lambda: 0.0,
    )
    responders = Responders(
        registry=build_registry(settings, clock),
        loop=loop,
        session=session,
        clock=clock,
        dead_letter=dead_letter,
        escalate=escalate,
        publish=_appender(outcomes),
    )
    return Harness(responders, ledger, clock.slept, dead, escalations, outcomes)


def _appender(outcomes: list[DeliveryOutcome]):
    async def publish(outcome: DeliveryOutcome) -> None:
        outcomes.append(outcome)

    return publish


class TestAcknowledge:
    async def test_same_ack_twice_makes_one_http_call(self, session: aiohttp.ClientSession) -> None:
        """A redelivered acknowledgment is found delivered in the ledger and not sent again."""
        async with fake_graph() as fake:
            h = harness(settings_for(fake.url), session)
            first = await h.responders.acknowledge(ack_request())
            second = await h.responders.acknowledge(ack_request())
        assert ("delivered", "skipped") == (first.status, second.status)
        assert 1 == len(fake.requests)
        assert DELIVERED == h.ledger.get("ack:fb:m_abc123")

    async def test_same_ack_in_flight_twice_makes_one_http_call(self, session: aiohttp.ClientSession) -> None:
        """Two copies of one acknowledgment delivered concurrently (outbox concurrency, a
        redelivered record): the second waits for the first and finds it delivered."""
        async with fake_graph() as fake:
            h = harness(settings_for(fake.url), session)
            reports = await asyncio.gather(
                h.responders.acknowledge(ack_request()), h.responders.acknowledge(ack_request())
            )
        assert ["delivered", "skipped"] == sorted(report.status for report in reports)
        assert 1 == len(fake.requests)
        assert ([], []) == (h.dead_letters, h.escalations)

    async def test_transient_failures_back_off_then_deliver(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Two 5xx answers are retried with exponential backoff, the third attempt delivers."""
        async with fake_graph() as fake:
            fake.fail_next("server_error", times=2)
            h = harness(settings_for(fake.url), session)
            report = await h.responders.acknowledge(ack_request())
        assert ("delivered", 3) == (report.status, report.attempts)
        assert [0.5, 1.0] == h.slept
        assert [] == h.dead_letters

    async def test_platform_requested_wait_is_honoured(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Telegram's parameters.retry_after is the wait before the next attempt."""
        async with fake_telegram(retry_after=17) as fake:
            fake.fail_next("rate_limit")
            h = harness(settings_for(fake.url), session)
            report = await h.responders.acknowledge(
                ack_request(
                    channel="telegram", account="acme_it_bot", recipient="123456", reply_to="42"
                )
            )
        assert "delivered" == report.status
        assert [17.0] == h.slept

    async def test_retries_are_bounded_then_dead_lettered_and_escalated(
        self, session: aiohttp.ClientSession
    ) -> None:
        """After max_attempts transient failures the ack is dead-lettered and a human is asked."""
        async with fake_graph() as fake:
            fake.fail_next("server_error", times=10)
            h = harness(settings_for(fake.url), session)
            report = await h.responders.acknowledge(ack_request())
        assert 3 == len(fake.requests)
        assert [0.5, 1.0] == h.slept
        assert "dead" == report.status
        [(raw, source, reason)] = h.dead_letters
        assert ("acks", ack_request()) == (source, AckRequest.from_json(raw))
        assert reason.startswith("gave up after 3 attempts: ")
        assert [ack_request().ack_id] == [request.ack_id for request, _ in h.escalations]

    async def test_permanent_failure_is_dead_lettered_once_and_escalated(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A permanent error is not retried: one request, a dead letter and an escalation."""
        async with fake_graph() as fake:
            fake.fail_next("permanent")
            h = harness(settings_for(fake.url), session)
            await h.responders.acknowledge(ack_request())
            again = await h.responders.acknowledge(ack_request())
        assert 1 == len(fake.requests)
        assert "skipped" == again.status
        assert ["facebook: graph error 10/2018278 (outside the allowed reply window): This message is sent outside of allowed window."] == [
            r for _, _, r in h.dead_letters
        ]
        assert 1 == len(h.escalations)

    async def test_whatsapp_outside_window_is_not_sent(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Past the 24 h window no request is made; the reason asks for a template or a human."""
        request = ack_request(
            channel="whatsapp",
            account="acme.it.whatsapp",
            recipient="447700900123",
            window_closes="2026-11-23T20:00:00+01:00",
        )
        async with fake_graph() as fake:
            h = harness(settings_for(fake.url), session)
            await h.responders.acknowledge(request)
        assert [] == fake.requests
        assert ["whatsapp: outside 24 h window: template or human needed"] == [
            r for _, _, r in h.dead_letters
        ]

    async def test_ack_left_sending_by_a_crash_is_not_repeated(
        self, session: aiohttp.ClientSession
    ) -> None:
        """An ack whose outcome is unknown is never sent twice; it goes to a human instead."""
        ledger = MemoryLedger()
        ledger.set("ack:fb:m_abc123", SENDING)
        async with fake_graph() as fake:
            h = harness(settings_for(fake.url), session, ledger)
            report = await h.responders.acknowledge(ack_request())
        assert [] == fake.requests
        assert ("dead", DEAD) == (report.status, ledger.get("ack:fb:m_abc123"))
        assert 1 == len(h.escalations)

    async def test_rate_limit_spaces_acks_to_the_same_chat(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Two acks to one Telegram chat in the same instant: the second waits one second."""
        first = ack_request(
            channel="telegram", account="acme_it_bot", recipient="123456", reply_to="42"
        )
        second = dataclasses.replace(first, ack_id="ack:tg:43", reply_to="43")
        async with fake_telegram() as fake:
            h = harness(settings_for(fake.url), session)
            await h.responders.acknowledge(first)
            await h.responders.acknowledge(second)
        assert 2 == len(fake.requests)
        assert [1.0] == h.slept

    async def test_unknown_channel_is_dead_lettered(self, session: aiohttp.ClientSession) -> None:
        """A channel without a sender is dead-lettered with the reason, not retried."""
        h = harness(settings_for("http://127.0.0.1:9"), session)
        report = await h.responders.acknowledge(ack_request(channel="myspace"))
        assert "dead" == report.status
        assert ["no sender for channel 'myspace'"] == [r for _, _, r in h.dead_letters]


class TestRoute:
    async def test_every_uri_of_every_member_is_notified(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A route goes to each notify URI of each member, each keyed in the ledger."""
        async with FakeSlack() as slack, FakeWebhook(SIGNING) as hook:
            h = harness(settings_for(slack.url), session)
            reports = await h.responders.route(
                route_request([f"slack:{slack.webhook_url}", f"webhook:{hook.hook_url}"])
            )
            again = await h.responders.route(
                route_request([f"slack:{slack.webhook_url}", f"webhook:{hook.hook_url}"])
            )
        assert ["delivered", "delivered"] == [r.status for r in reports]
        assert ["skipped", "skipped"] == [r.status for r in again]
        assert (1, 1) == (len(slack.requests), len(hook.deliveries))

    async def test_notification_left_sending_by_a_crash_is_repeated(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Staff notifications are at least once: an unknown outcome is sent again."""
        async with FakeSlack() as slack:
            h = harness(settings_for(slack.url), session)
            uri = f"slack:{slack.webhook_url}"
            first = await h.responders.route(route_request([uri]))
            h.ledger.set(first[0].key, SENDING)
            second = await h.responders.route(route_request([uri]))
        assert "delivered" == second[0].status
        assert 2 == len(slack.requests)

    async def test_unknown_scheme_is_dead_lettered(self, session: aiohttp.ClientSession) -> None:
        """A notify URI without a notifier is dead-lettered naming the member and scheme."""
        h = harness(settings_for("http://127.0.0.1:9"), session)
        await h.responders.route(route_request(["pigeon:loft-3"]))
        assert ["notify marta via pigeon: no notifier for scheme 'pigeon'"] == [
            r for _, _, r in h.dead_letters
        ]

    async def test_route_without_staff_is_dead_lettered(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A route with nobody to notify is dead-lettered."""
        h = harness(settings_for("http://127.0.0.1:9"), session)
        await h.responders.route(route_request([], to=[]))
        assert ["no staff to notify"] == [r for _, _, r in h.dead_letters]


class TestSecrets:
    async def test_tokens_and_webhook_urls_never_reach_logs_or_reasons(
        self, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Failures with credentials in headers, URLs and paths log and dead-letter no secret."""
        caplog.set_level(logging.DEBUG)
        async with (
            fake_graph() as graph,
            FakeSlack(path="/services/T9/B9/slack-secret-path") as slack,
            fake_telegram() as tg,
        ):
            graph.fail_next("ops_alert")
            slack.fail_next("server_error", times=5)
            h = harness(settings_for(graph.url), session)
            await h.responders.acknowledge(ack_request())
            await h.responders.route(route_request([f"slack:{slack.webhook_url}"]))
            await tg.stop()
            h2 = harness(settings_for(tg.url), session)
            await h2.responders.acknowledge(
                ack_request(channel="telegram", account="acme_it_bot", recipient="1", reply_to="2")
            )
        texts = (
            [caplog.text]
            + [r for _, _, r in h.dead_letters + h2.dead_letters]
            + list(h.ledger.statuses)
        )
        assert 3 == len(h.dead_letters + h2.dead_letters)
        for secret in (TOKEN, "slack-secret-path", SIGNING):
            assert [] == [text for text in texts if secret in text]

    def test_settings_never_print_secrets(self) -> None:
        """repr and JSON dumps of the settings mask every secret."""
        settings = settings_for("http://127.0.0.1:9")
        dumped = repr(settings) + settings.model_dump_json()
        assert TOKEN not in dumped and SIGNING not in dumped

    def test_secret_files_are_read_at_start(self, tmp_path) -> None:
        """A *_file field fills its secret from the file's stripped content."""
        token_file = tmp_path / "fb-token"
        token_file.write_text(TOKEN + "\n")
        credentials = AccountCredentials(access_token_file=token_file)
        assert TOKEN == credentials.access_token.get_secret_value()

    def test_unreadable_secret_file_names_the_path(self, tmp_path) -> None:
        """A missing secret file is a settings error naming the file."""
        missing = tmp_path / "nope"
        with pytest.raises(ValueError, match="access_token_file: cannot read"):
            AccountCredentials(access_token_file=missing)


class TestDeliveryOutcomes:
    @pytest.mark.parametrize(
        ("failures", "expected"),
        [
            pytest.param([], [("delivered", 1)], id="first_try"),
            pytest.param(["rate_limit"], [("retry", 1), ("delivered", 2)], id="retry_then_delivered"),
            pytest.param(["permanent"], [("permanent", 1), ("dead", 1)], id="outside_window"),
            pytest.param(
                ["server_error"] * 3,
                [("retry", 1), ("retry", 2), ("retry", 3), ("dead", 3)],
                id="retries_exhausted",
            ),
        ],
    )
    async def test_every_attempt_and_every_give_up_is_published(
        self, failures, expected, session: aiohttp.ClientSession
    ) -> None:
        """One outcome per attempt (delivered, retry, permanent) and one more (dead) when given up."""
        async with fake_graph() as fake:
            for kind in failures:
                fake.fail_next(kind)
            h = harness(settings_for(fake.url), session)
            await h.responders.acknowledge(ack_request())
        assert expected == [(o.status, o.attempt) for o in h.outcomes]
        assert {("ack:fb:m_abc123", "ack", "facebook")} == {(o.id, o.kind, o.channel) for o in h.outcomes}

    async def test_delivered_outcome_carries_the_platform_message_id(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A delivered acknowledgment's outcome names the platform's message id and the customer message."""
        async with fake_graph() as fake:
            h = harness(settings_for(fake.url), session)
            await h.responders.acknowledge(ack_request())
        [outcome] = h.outcomes
        expected = ("m_fake1", "fb:m_abc123", "care-it", "2026-11-23T21:14:05+00:00")
        assert expected == (outcome.message_id, outcome.event_id, outcome.team, outcome.at)

    async def test_ledger_skip_publishes_nothing(self, session: aiohttp.ClientSession) -> None:
        """A redelivered acknowledgment makes no attempt and so no outcome."""
        async with fake_graph() as fake:
            h = harness(settings_for(fake.url), session)
            await h.responders.acknowledge(ack_request())
            await h.responders.acknowledge(ack_request())
        assert ["delivered"] == [o.status for o in h.outcomes]

    async def test_notice_outcome_names_the_scheme_never_the_url(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A staff notice's outcome is kind notice on its scheme, and its id hides the webhook URL."""
        async with FakeSlack(path="/services/T9/B9/slack-secret-path") as slack:
            h = harness(settings_for(slack.url), session)
            await h.responders.route(route_request([f"slack:{slack.webhook_url}"]))
        [outcome] = h.outcomes
        assert ("notice", "slack", "delivered") == (outcome.kind, outcome.channel, outcome.status)
        assert "slack-secret-path" not in outcome.to_json().decode()

    def test_outcome_round_trips_through_json(self) -> None:
        """The wire form decodes to an equal record."""
        outcome = DeliveryOutcome(
            id="ack:fb:m_1", kind="ack", channel="facebook", status="retry", attempt=2,
            message_id=None, reason="Messenger 613", at="2026-11-23T20:00:00+00:00",
            event_id="fb:m_1", team="care-it", conversation="fb:PAGE_111:PSID_222",
        )
        assert outcome == DeliveryOutcome.from_json(outcome.to_json())


PUBLIC_TEXT = "Grazie per averci scritto! Scrivici in privato."


PRIVATE_TEXT = "Ciao Ana, grazie per averci scritto. Ti rispondiamo domani dalle 9:00."


def comment_request(**changes: object) -> AckRequest:
    """A Facebook comment acknowledged in public, with its private reply."""
    fields: dict[str, object] = {
        "ack_id": f"ack:fb:{COMMENT_ID}",
        "event_id": f"fb:{COMMENT_ID}",
        "kind": "comment",
        "recipient": "USER_333",
        "reply_to": COMMENT_ID,
        "text": PUBLIC_TEXT,
        "public": True,
        "private_text": PRIVATE_TEXT,
    }
    return ack_request(**{**fields, **changes})


def replies(fake: FakeGraph) -> list[tuple[bool, str]]:
    """What the fake accepted under comments, in order: (public, text)."""
    return [(reply.public, reply.text) for reply in fake.comment_replies]


class TestCommentReplies:
    @pytest.mark.parametrize(
        "failures",
        [
            pytest.param([], id="no_failure"),
            pytest.param(["rate_limit"], id="rate_limited_first"),
            pytest.param(["server_error", "rate_limit"], id="two_transient_failures"),
        ],
    )
    async def test_one_private_then_one_public_reply(
        self, failures: list, session: aiohttp.ClientSession
    ) -> None:
        """A comment gets exactly one private reply, then exactly one public reply, through 429/5xx answers."""
        async with fake_graph() as fake:
            for kind in failures:
                fake.fail_next(kind)
            h = harness(settings_for(fake.url), session)
            report = await h.responders.acknowledge(comment_request())
        assert [(False, PRIVATE_TEXT), (True, PUBLIC_TEXT)] == replies(fake)
        assert 2 == sum(1 for answer in fake.answers if answer.ok)
        assert (f"ack:fb:{COMMENT_ID}", "delivered") == (report.key, report.status)
        assert {f"ack:fb:{COMMENT_ID}": DELIVERED, f"ack:fb:{COMMENT_ID}:public": DELIVERED} == h.ledger.statuses
        assert ([], []) == (h.dead_letters, h.escalations)

    async def test_redelivery_sends_neither_reply_again(self, session: aiohttp.ClientSession) -> None:
        """The same request delivered twice (a Kafka redelivery) makes no second request of either kind."""
        async with fake_graph() as fake:
            h = harness(settings_for(fake.url), session)
            await h.responders.acknowledge(comment_request())
            again = await h.responders.acknowledge(comment_request())
        assert (2, "skipped") == (len(fake.requests), again.status)
        assert [(False, PRIVATE_TEXT), (True, PUBLIC_TEXT)] == replies(fake)

    async def test_restart_between_the_replies_sends_only_the_public_one(
        self, session: aiohttp.ClientSession
    ) -> None:
        """After a restart that followed the private reply, only the public reply is sent, retried through a 5xx."""
        ledger = MemoryLedger()
        ledger.set(f"ack:fb:{COMMENT_ID}", DELIVERED)
        async with fake_graph() as fake:
            fake.fail_next("server_error")
            h = harness(settings_for(fake.url), session, ledger)
            await h.responders.acknowledge(comment_request())
        assert [(True, PUBLIC_TEXT)] == replies(fake)
        assert DELIVERED == ledger.get(f"ack:fb:{COMMENT_ID}:public")

    async def test_dead_private_reply_is_escalated_and_the_public_one_still_sent(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A refused private reply is dead-lettered and escalated with its text; the public reply still goes."""
        async with fake_graph() as fake:
            fake.fail_next("permanent")
            h = harness(settings_for(fake.url), session)
            report = await h.responders.acknowledge(comment_request())
        assert ("dead", [(True, PUBLIC_TEXT)]) == (report.status, replies(fake))
        [(raw, _, reason)] = h.dead_letters
        assert (PRIVATE_TEXT, False) == (AckRequest.from_json(raw).text, AckRequest.from_json(raw).public)
        assert reason == "facebook: graph error 10/2018278 (outside the allowed reply window): This message is sent outside of allowed window."
        assert [PRIVATE_TEXT] == [request.text for request, _ in h.escalations]

    async def test_dead_public_reply_is_dead_lettered_without_escalation(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A refused public reply is a dead letter saying so; no staff page, the customer got the private reply."""
        async with fake_graph(hidden_comments=frozenset({COMMENT_ID})) as fake:
            h = harness(settings_for(fake.url), session)
            report = await h.responders.acknowledge(comment_request())
        assert ("delivered", [(False, PRIVATE_TEXT)]) == (report.status, replies(fake))
        [(raw, source, reason)] = h.dead_letters
        assert ("acks", PUBLIC_TEXT, True) == (source, AckRequest.from_json(raw).text, AckRequest.from_json(raw).public)
        assert reason.startswith("public reply: facebook: graph error 100/")
        assert [] == h.escalations
        assert {(f"ack:fb:{COMMENT_ID}:public", "dead")} == {
            (o.id, o.status) for o in h.outcomes if o.status == "dead"
        }

    @pytest.mark.parametrize(
        ("team_triage", "changes", "expected"),
        [
            pytest.param(
                "",
                {"id": f"fb:{COMMENT_ID}", "account": "desk.facebook"},
                [(False, "messages"), (True, "comments")],
                id="facebook_public_reply_wanted",
            ),
            pytest.param(
                "",
                {"id": f"ig:{IG_COMMENT_ID}", "channel": "instagram", "account": "desk.instagram"},
                [(False, "messages"), (True, "replies")],
                id="instagram_public_reply_wanted",
            ),
            pytest.param(
                "      public_reply: false\n",
                {"id": f"fb:{COMMENT_ID}", "account": "desk.facebook"},
                [(False, "messages")],
                id="facebook_public_reply_off",
            ),
            pytest.param(
                "      public_reply: false\n",
                {"id": f"ig:{IG_COMMENT_ID}", "channel": "instagram", "account": "desk.instagram"},
                [(False, "messages")],
                id="instagram_public_reply_off",
            ),
        ],
    )
    async def test_the_team_option_decides_the_replies(
        self, team_triage: str, changes: dict, expected: list, session: aiohttp.ClientSession
    ) -> None:
        """From the triage decision to the platform: public_reply adds the public reply, off leaves only the private one."""
        raw = event(MONDAY_EVENING, kind="comment", author={"id": "USER_333", "name": "Ana Lopez"}, **changes)
        outcome = Triage(small_coverage(team_triage)).decide(raw, None)
        async with fake_graph() as fake:
            settings = settings_for(fake.url).model_copy(
                update={
                    "accounts": {
                        "desk.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN),
                        "desk.instagram": AccountCredentials(access_token=TOKEN),
                    }
                }
            )
            h = harness(settings, session)
            await h.responders.acknowledge(outcome.ack)
        assert expected == [(reply.public, reply.edge) for reply in fake.comment_replies]
        public_texts = [reply.text for reply in fake.comment_replies if reply.public]
        assert public_texts == ([outcome.decision.ack.text] if outcome.decision.ack.public else [])

