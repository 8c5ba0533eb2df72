"""Retention: conversations, pending escalations and delivery-ledger entries expire.

Pure rules first (which rows expire at ``now``, the ledger's wire form, the setting),
then the real embedded broker with an injected clock: rows decided at T are deleted
once the clock passes T + retention, with tombstones on the tables' changelogs, and a
restarted worker recovers without them; recent activity keeps a conversation; and an
acknowledgment redelivered within the retention is still not sent twice.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from responders.config import AccountCredentials
from responders.fakes import FakeGraph, FakeSlack
from schedules import load_coverage
from streams.retention import (
    LedgerEntry,
)
from streams.settings import Settings
from streams.worker import running_worker
from tests.support.streams_app import (
    MONDAY_MORNING,
    event,
    read_until,
    send,
)
from tests.support.streams_escalations import SWEEP_EVERY, WAIT, SteppedClock
from tests.support.streams_retention import RETENTION, T, seconds
from tests.support.streams_wiring import COVERAGE, TOKEN
from tests.support.workers import TopicReader
from triage.state import ConversationState

# -- on the broker --------------------------------------------------------------------

OLD = "fb:PAGE_111:PSID_222"  # writes at T (reduced: acknowledged, routed to luca)


RECENT = "fb:PAGE_111:PSID_333"  # wrote Monday morning (open: queued), a staff reply a day before T + retention


async def until(condition, what: str, tables: tuple = ()) -> None:
    """Return once ``condition()`` holds; fail after :data:`WAIT` seconds saying ``what``
    did not happen (and what ``tables`` hold then)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            rows = {table.name: dict(table.items()) for table in tables}
            raise AssertionError(f"not within {WAIT} s: {what}; tables: {rows}")
        await asyncio.sleep(0.05)


def retention_settings(stream_settings: Settings, graph: FakeGraph, coverage_file: Path, partitions: int) -> Settings:
    """Delivery to the fakes (one at a time: the outbox is handled in order), the test's retention."""
    responders = stream_settings.responders.model_copy(
        update={
            "graph_base_url": graph.url,
            "accounts": {"acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN)},
            "deliver": True,
            "concurrency": 1,
        }
    )
    if "egress_allow" in type(responders).model_fields:  # the fakes listen on loopback
        responders = responders.model_copy(update={"egress_allow": ("127.0.0.1",)})
    ops = stream_settings.ops.model_copy(update={"actions_topic": f"{stream_settings.app_id}.actions"})
    return stream_settings.with_overrides(partitions=partitions, responders=responders, ops=ops,
                                          coverage_file=coverage_file, retention=RETENTION)


def changelog(table) -> str:
    return table.changelog_topic.get_topic_name()


async def changelog_records(settings: Settings, table) -> list:
    async with TopicReader(settings, changelog(table)) as reader:
        return await reader.read_all()


def tombstones(records) -> dict[bytes, int]:
    """The keys deleted on a changelog and the partition of each tombstone."""
    return {record.key: record.partition for record in records if record.value is None}


def partitions_written(records) -> dict[bytes, int]:
    return {record.key: record.partition for record in records if record.value is not None}


def customer_event(event_id: str, at: datetime, psid: str, **changes) -> tuple[bytes, bytes, list]:
    conversation = f"fb:PAGE_111:{psid}"
    author = changes.pop("author", {"id": psid, "name": "Ana Lopez", "followers": 1})
    return conversation.encode(), event(event_id, at, conversation=conversation, author=author, **changes), []


@pytest.mark.broker
class TestRetentionOnTheBroker:
    async def test_rows_decided_at_T_are_deleted_after_the_retention_and_recent_ones_stay(
        self, stream_settings, tmp_path: Path
    ) -> None:
        """Past T + retention: the old conversation, its escalation and ledger entries are deleted with
        tombstones on their partitions, a restarted worker recovers without them; a recent one stays."""
        clock = SteppedClock(T)
        graph = FakeGraph({TOKEN}, clock=lambda: clock.now.timestamp())
        graph.add_customer("PSID_222", T)
        async with graph, FakeSlack() as slack:
            coverage_file = tmp_path / "coverage.yaml"
            coverage_file.write_text(COVERAGE.format(slack=slack.webhook_url))
            coverage = load_coverage(coverage_file)
            settings = retention_settings(stream_settings, graph, coverage_file, partitions=2)
            old, recent = OLD.encode(), RECENT.encode()
            async with running_worker(settings, coverage, reconcile=False, clock=clock, sweep_every=SWEEP_EVERY) as app:
                await send(settings,
                           customer_event("fb:m_old", T, "PSID_222"),
                           customer_event("fb:m_recent", MONDAY_MORNING, "PSID_333"),
                           customer_event("fb:r_recent", T + RETENTION - timedelta(days=1), "PSID_333",
                                          kind="agent_reply", author={"id": "marta", "name": "Marta Rossi"}))
                await graph.wait_for_requests(1, timeout=WAIT)
                await slack.wait_for_requests(1, timeout=WAIT)
                await until(lambda: sum(1 for _, v in app.deliveries.items() if v.startswith(b"delivered@")) == 2,
                            "the acknowledgment and the route delivered")
                # The recent conversation may sit on the other partition, decided after the old one's deliveries.
                await until(lambda: recent in app.conversations
                            and ConversationState.from_bytes(app.conversations[recent]).staff_at is not None,
                            "the recent conversation's message and reply decided")
                ledger_keys = sorted(key for key, _ in app.deliveries.items())
                before = (sorted(app.conversations.keys()), sorted(app.escalations.keys()))
                # Its last activity is the reply-by time promised, 40 minutes after T.
                clock.move_to(T + RETENTION + timedelta(hours=1))
                await until(lambda: old not in app.conversations and old not in app.escalations
                            and not list(app.deliveries.keys()), "the old rows deleted",
                            (app.conversations, app.escalations, app.deliveries))
                await clock.sweeps(5)
                after = (sorted(app.conversations.keys()), sorted(app.escalations.keys()), list(app.deliveries.keys()))
                kept = ConversationState.from_bytes(app.conversations[recent])
                logs = {name: await changelog_records(settings, table)
                        for name, table in (("conversations", app.conversations), ("escalations", app.escalations),
                                            ("deliveries", app.deliveries))}
            async with running_worker(settings, coverage, reconcile=False, clock=clock, promises=False) as again:
                recovered = (sorted(again.conversations.keys()), sorted(again.escalations.keys()),
                             list(again.deliveries.keys()))
            requests = len(graph.requests)
        assert ([old, recent], [old]) == before
        assert ([recent], [], []) == after
        assert seconds(T + RETENTION - timedelta(days=1)) == kept.staff_at
        assert ([recent], [], []) == recovered
        # One tombstone per deleted key, on the partition its rows were written to.
        written = {name: partitions_written(records) for name, records in logs.items()}
        assert {old: written["conversations"][old]} == tombstones(logs["conversations"])
        assert {old: written["escalations"][old]} == tombstones(logs["escalations"])
        assert {key: written["deliveries"][key] for key in ledger_keys} == tombstones(logs["deliveries"])
        assert 2 == len(ledger_keys)
        assert 1 == requests

    async def test_an_acknowledgment_redelivered_within_the_retention_is_not_sent_again(
        self, stream_settings, tmp_path: Path
    ) -> None:
        """A day before T + retention the ledger still holds the ack: its outbox record again sends nothing."""
        clock = SteppedClock(T)
        later = T + RETENTION - timedelta(hours=1)
        graph = FakeGraph({TOKEN}, clock=lambda: clock.now.timestamp())
        graph.add_customer("PSID_222", T)
        graph.add_customer("PSID_333", later)
        async with graph, FakeSlack() as slack:
            coverage_file = tmp_path / "coverage.yaml"
            coverage_file.write_text(COVERAGE.format(slack=slack.webhook_url))
            settings = retention_settings(stream_settings, graph, coverage_file, partitions=1)
            async with running_worker(settings, load_coverage(coverage_file), reconcile=False, clock=clock,
                                      sweep_every=SWEEP_EVERY) as app:
                await send(settings, customer_event("fb:m_again", T, "PSID_222"))
                await graph.wait_for_requests(1, timeout=WAIT)
                [ack_record] = await read_until(settings, settings.acks_topic, 1)
                clock.move_to(later)
                await clock.sweeps(5)
                kept = app.deliveries.get(b"ack:fb:m_again")
                producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
                await producer.start()
                try:
                    await producer.send_and_wait(settings.acks_topic, key=ack_record.key, value=ack_record.value)
                finally:
                    await producer.stop()
                # Another customer's acknowledgment after it, on the same partition and one
                # delivery at a time: when it arrives, the redelivered record was handled.
                await send(settings, customer_event("fb:m_other", later, "PSID_333"))
                requests = await graph.wait_for_requests(2, timeout=WAIT)
        assert LedgerEntry("delivered", seconds(T), 0) == LedgerEntry.parse(kept)
        assert ["PSID_222", "PSID_333"] == [request.json()["recipient"]["id"] for request in requests]

    async def test_a_ledger_entry_from_before_the_timed_format_is_stamped_then_expires(
        self, stream_settings, tmp_path: Path
    ) -> None:
        """A plain 'delivered' recovered from the changelog gets the time of the first sweep, then expires."""
        clock = SteppedClock(T)
        graph = FakeGraph({TOKEN}, clock=lambda: clock.now.timestamp())
        async with graph, FakeSlack() as slack:
            coverage_file = tmp_path / "coverage.yaml"
            coverage_file.write_text(COVERAGE.format(slack=slack.webhook_url))
            settings = retention_settings(stream_settings, graph, coverage_file, partitions=2)
            topic = f"{settings.app_id}-deliveries-changelog"
            admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
            await admin.start()
            try:
                await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
            finally:
                await admin.close()
            producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
            await producer.start()
            try:
                await producer.send_and_wait(topic, key=b"ack:fb:m_legacy", value=b"delivered", partition=1)
            finally:
                await producer.stop()
            async with running_worker(settings, load_coverage(coverage_file), reconcile=False, clock=clock,
                                      sweep_every=SWEEP_EVERY) as app:
                recovered = app.deliveries.get(b"ack:fb:m_legacy")
                await until(lambda: app.deliveries.get(b"ack:fb:m_legacy") != b"delivered", "the entry stamped")
                stamped = app.deliveries.get(b"ack:fb:m_legacy")
                clock.move_to(T + RETENTION + timedelta(seconds=1))
                await until(lambda: app.deliveries.get(b"ack:fb:m_legacy") is None, "the entry deleted")
                records = await changelog_records(settings, app.deliveries)
        assert (b"delivered", LedgerEntry("delivered", seconds(T), 1)) == (recovered, LedgerEntry.parse(stamped))
        assert [(b"delivered", 1), (stamped, 1), (None, 1)] == [(r.value, r.partition) for r in records]

