"""The Faust wiring of the responders: its rules without a broker, then on the real embedded broker (Tansu)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from brokers.tansu import EmbeddedBroker
from records.wire import DeadLetter
from responders.config import AccountCredentials, ResponderSettings
from responders.fakes import FakeGraph
from responders.fakes.samples import WROTE_AT, ack_request, running_clock
from streams.app import faust_options
from streams.outbox import (
    install,
)
from streams.settings import Settings
from streams.worker import create_topics

TOKEN = "EAAG-outbox-token"


def fake_graph() -> FakeGraph:
    """The fake Graph API on a clock that starts at the samples' now and runs, knowing
    the two customers the tests acknowledge (they wrote 65 minutes before)."""
    graph = FakeGraph({TOKEN}, clock=running_clock())
    for customer in ("PSID_A", "PSID_C"):
        graph.add_customer(customer, WROTE_AT)
    return graph


async def outbox_app(
    broker: EmbeddedBroker, graph: FakeGraph, data_dir: Path, **responders: object
) -> tuple[Settings, faust.App]:
    """Fresh one-partition topics on ``broker`` and an app with only the responders
    installed, sending to ``graph`` for acme.it.facebook (``responders``: more settings).
    The responders share the fake's clock, so the samples' reply windows are open
    whatever today's date."""
    unique = uuid.uuid4().hex[:8]
    settings = Settings(
        broker_url=broker.url,
        app_id=f"outbox-test-{unique}",
        events_topic=f"events-{unique}",
        decisions_topic=f"decisions-{unique}",
        acks_topic=f"acks-{unique}",
        routes_topic=f"routes-{unique}",
        dead_letter_topic=f"dead-{unique}",
        config_topic=f"config-{unique}",
        partitions=1,
        session_timeout=2.0,
        data_dir=data_dir,
        responders=ResponderSettings(
            graph_base_url=graph.url,
            egress_allow=("127.0.0.1",),
            accounts={"acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN)},
            **responders,
        ),
    )
    await create_topics(settings)
    app = faust.App(settings.app_id, **faust_options(settings))
    install(app, None, settings, clock=graph.clock)
    return settings, app


@pytest.mark.broker
class TestOutboxOnBroker:
    async def test_acks_are_sent_once_and_undecodable_records_dead_lettered(
        self, any_broker, tmp_path: Path
    ) -> None:
        """A duplicated ack record costs one Send API call; garbage goes to the dead-letter
        topic; on Tansu and on Apache Kafka."""
        broker = any_broker
        async with fake_graph() as graph:
            settings, app = await outbox_app(broker, graph, tmp_path)
            first = ack_request(recipient="PSID_A")
            second = dataclasses.replace(
                ack_request(recipient="PSID_C"), ack_id="ack:fb:m_c", event_id="fb:m_c"
            )
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            consumer = AIOKafkaConsumer(
                settings.dead_letter_topic,
                bootstrap_servers=broker.bootstrap,
                auto_offset_reset="earliest",
            )
            await app.start()
            await producer.start()
            await consumer.start()
            try:
                await asyncio.wait_for(app.tables.recovery.completed.wait(), 60)
                key = first.conversation.encode()
                for value in (first.to_json(), first.to_json(), b"not json", second.to_json()):
                    await producer.send_and_wait(settings.acks_topic, key=key, value=value)
                requests = await graph.wait_for_requests(2, timeout=60)
                letter = DeadLetter.from_json((await asyncio.wait_for(consumer.getone(), 60)).value)
            finally:
                await consumer.stop()
                await producer.stop()
                await app.stop()
        assert ["PSID_A", "PSID_C"] == [request.json()["recipient"]["id"] for request in requests]
        assert ("not json", settings.acks_topic) == (letter.raw, letter.topic)
        assert letter.reason.startswith("undecodable AckRequest")

    async def test_a_delivery_waiting_to_retry_holds_back_no_other(self, tmp_path: Path) -> None:
        """One acknowledgment waits for its retry (a 5xx, then a long backoff); the next
        one on the same partition is delivered meanwhile (``responders.concurrency``)."""
        async with EmbeddedBroker() as broker, fake_graph() as graph:
            settings, app = await outbox_app(broker, graph, tmp_path, backoff_base=20.0)  # the retry waits 10-20 s
            waiting = ack_request(recipient="PSID_A")
            other = dataclasses.replace(ack_request(recipient="PSID_C"), ack_id="ack:fb:m_c", event_id="fb:m_c")
            graph.fail_next("server_error")
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await app.start()
            await producer.start()
            try:
                await asyncio.wait_for(app.tables.recovery.completed.wait(), 60)
                key = waiting.conversation.encode()
                for request in (waiting, other):
                    await producer.send_and_wait(settings.acks_topic, key=key, value=request.to_json())
                await graph.wait_until(lambda fake: len(fake.answers) >= 2, timeout=8)
                answered = [(a.request.json()["recipient"]["id"], a.status) for a in graph.answers]
            finally:
                await producer.stop()
                await app.stop()
        assert [("PSID_A", 500), ("PSID_C", 200)] == answered

