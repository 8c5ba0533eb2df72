"""Acknowledgments end to end under injected platform faults: exactly once each, failures to staff.

Events go in on the real embedded broker, the worker decides them, and the responders
deliver to a fake Graph API that answers 30% of the requests with a rate limit or a
server error (seeded, so a failing run can be repeated). One customer is outside the
reply window as the platform sees it (its record of the customer's last message is
25 hours old: the event reached us late): that acknowledgment must end as a dead letter
and a notice to on-call staff at a fake Slack.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from records.wire import DeadLetter
from responders.config import AccountCredentials
from responders.delivery import DeliveryOutcome
from responders.fakes import FakeGraph, FakeSlack
from schedules import load_coverage
from streams.worker import running_worker
from tests.support.streams_app import ROME, event, read_until, send
from tests.support.streams_wiring import COVERAGE
from tests.support.workers import TopicReader

TOKEN = "EAAG-e2e-token"
SUNDAY_EVENING = datetime(2026, 11, 22, 21, 0, tzinfo=ROME)  # care-it closed (no Sunday hours)
CUSTOMERS = 50
FAULT_RATE = 0.3
UNREACHABLE = "PSID_LATE"


def customer_event(number: int, psid: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    conversation = f"fb:PAGE_111:{psid}"
    value = event(
        f"fb:m_e2e{number}",
        SUNDAY_EVENING,
        conversation=conversation,
        author={"id": psid, "name": f"Customer {number}", "followers": 1},
        text="Vorrei sapere lo stato della spedizione",
    )
    return conversation.encode(), value, []


async def final_outcomes(settings, wanted: set[str], timeout: float = 45.0) -> list[DeliveryOutcome]:
    """Every outcome on the deliveries topic, once each id in ``wanted`` ended (delivered or dead)."""
    deadline = time.monotonic() + timeout
    async with TopicReader(settings, settings.deliveries_topic) as reader:
        while time.monotonic() < deadline:
            outcomes = [DeliveryOutcome.from_json(record.value) for record in reader.records]
            ended = {o.id for o in outcomes if o.status in ("delivered", "dead")}
            if wanted <= ended:
                return outcomes
            await reader.poll(0.2)
    raise AssertionError(f"not ended in {timeout} s: {sorted(wanted - ended)[:5]}")


@pytest.mark.broker
class TestDeliveryUnderFaults:
    async def test_each_acknowledgment_delivered_exactly_once_and_the_refused_one_reaches_staff(
        self, stream_settings, tmp_path: Path
    ) -> None:
        """With 30% of platform answers 429/5xx every ack is delivered once, none twice; a refused one is a dead letter and a Slack notice."""
        clock = SUNDAY_EVENING.timestamp() + 5
        psids = [f"PSID_{number:03d}" for number in range(CUSTOMERS)]
        graph = FakeGraph({TOKEN}, clock=lambda: clock)
        for psid in psids:
            graph.add_customer(psid, SUNDAY_EVENING)
        graph.add_customer(UNREACHABLE, SUNDAY_EVENING - timedelta(hours=25))
        async with graph, FakeSlack() as slack:
            graph.fail_at_random(FAULT_RATE, rng=random.Random(20261122))
            coverage_file = tmp_path / "coverage.yaml"
            coverage_file.write_text(COVERAGE.format(slack=slack.webhook_url))
            responders = stream_settings.responders.model_copy(
                update={
                    "graph_base_url": graph.url,
                    "egress_allow": ("127.0.0.1",),
                    "accounts": {"acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN)},
                    "deliver": True,
                    # 0.3**10: an ack exhausting its retries by bad luck is one in ~170 000.
                    "max_attempts": 10,
                    "backoff_base": 0.01,
                    "backoff_max": 0.05,
                    "retry_after_max": 0.1,
                }
            )
            settings = stream_settings.with_overrides(
                partitions=1,
                coverage_file=coverage_file,
                responders=responders,
                deliveries_topic=f"{stream_settings.app_id}.deliveries",
                ops=stream_settings.ops.model_copy(update={"actions_topic": f"{stream_settings.app_id}.actions"}),
            )
            records = [customer_event(number, psid) for number, psid in enumerate(psids)]
            records.append(customer_event(CUSTOMERS, UNREACHABLE))
            ack_ids = {f"ack:fb:m_e2e{number}" for number in range(CUSTOMERS + 1)}
            async with running_worker(settings, load_coverage(coverage_file), reconcile=False, clock=lambda: clock):
                await send(settings, *records)
                outcomes = await final_outcomes(settings, ack_ids)
                await slack.wait_until(lambda fake: any(a.ok for a in fake.answers), timeout=30)
                [letter] = await read_until(settings, settings.dead_letter_topic, 1)
            answers = list(graph.answers)
            faults = graph.faults_injected
        delivered_per_recipient = Counter(a.request.json()["recipient"]["id"] for a in answers if a.ok)
        duplicates = sum(count - 1 for count in delivered_per_recipient.values() if count > 1)
        final = {o.id: o.status for o in outcomes if o.status in ("delivered", "dead")}
        print(
            f"\nfault injection: events={CUSTOMERS + 1} requests={len(answers)} faults_injected={faults} "
            f"deliveries={sum(delivered_per_recipient.values())} duplicates={duplicates} "
            f"outcome_records={len(outcomes)} dead={sorted(k for k, v in final.items() if v == 'dead')}"
        )
        assert {psid: 1 for psid in psids} == dict(delivered_per_recipient)
        assert 0 == duplicates
        assert faults > 0
        assert {f"ack:fb:m_e2e{CUSTOMERS}": "dead"} == {k: v for k, v in final.items() if v != "delivered"}
        dead_letter = DeadLetter.from_json(letter.value)
        assert (settings.acks_topic, True) == (dead_letter.topic, "2018278" in dead_letter.reason)
        notice = next(a.request.json() for a in slack.answers if a.ok)
        facts = " ".join(block["text"]["text"] for block in notice["blocks"] if "text" in block)
        assert "the customer did not get our acknowledgment because" in facts
        assert "2018278" in facts
