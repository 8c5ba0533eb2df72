"""One contract each for the action sinks and the configuration stores, memory and Kafka.

Every test runs twice, on the memory fake (``[memory]``) and on the real one against
the embedded broker (``[kafka]``), with the same assertions: what the operations API
and the workers rely on.

Action sinks (:class:`MemoryActionSink`, :class:`KafkaActionSink`): an action is
recorded as its wire JSON keyed by conversation, in order; the same action twice is
recorded twice (consumers ignore repeats by ``action_id``); nothing is recorded before
``start()`` or after ``stop()`` (``RuntimeError``).

Configuration stores (:class:`MemoryConfigStore`, :class:`KafkaConfigStore`): the seed
is version 1 by ``system:seed``, audited, and applied (``followers.applied`` is 1); a publish with the current ETag (or none) is
the next version by its author, audited; a stale ETag (:class:`EtagMismatch`) or an
invalid draft (:class:`CoverageInvalid`) changes nothing and audits nothing; a follower
is called at once with the coverage in use and then with each new one; a follower that
raises is reported in ``followers`` and the store keeps the new version. (The memory
store tells its followers within ``publish``; the Kafka store when the record comes
back from the topic: the tests wait for either.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from brokers.tansu import EmbeddedBroker
from edge.actions import KafkaActionSink, MemoryActionSink, action_record
from edge.config_store import (
    SEEDED,
    ConfigDocument,
    EtagMismatch,
    FollowerState,
    KafkaConfigStore,
    MemoryConfigStore,
)
from schedules import Coverage, CoverageInvalid
from tests.support.ops import COVERAGE_TEXT, ROME, FixedClock

KINDS = ("memory", pytest.param("kafka", marks=pytest.mark.broker))
WITHIN = 10.0
AT = datetime(2026, 11, 23, 21, 30, tzinfo=ROME)
RENAMED = COVERAGE_TEXT.replace("Assistenza Italia", "Assistenza")


@pytest.fixture(scope="module")
def broker() -> AsyncIterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


async def read_topic(broker: EmbeddedBroker, topic: str, done: Callable[[list[Any]], bool]) -> list[Any]:
    """``(key, value)`` of the records of ``topic`` from its start, once ``done`` holds for them."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                group_id=f"contract-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    try:
        records: list[Any] = []
        async with asyncio.timeout(WITHIN):
            while not done(records):
                batch = await consumer.getmany(timeout_ms=500)
                records.extend((r.key, r.value) for rs in sorted(batch.items()) for r in rs[1])
        return records
    finally:
        await consumer.stop()


# -- action sinks -----------------------------------------------------------------------


@dataclass
class Actions:
    sink: MemoryActionSink | KafkaActionSink
    broker: EmbeddedBroker | None

    async def recorded(self, count: int) -> list[tuple[bytes, dict[str, Any]]]:
        """``(key, wire object)`` of the first ``count`` actions recorded."""
        if isinstance(self.sink, MemoryActionSink):
            return [(r.key, a) for r, a in zip(self.sink.records, self.sink.actions, strict=True)][:count]
        assert self.broker is not None
        records = await read_topic(self.broker, self.sink.topic, lambda found: len(found) >= count)
        return [(key, orjson.loads(value)) for key, value in records][:count]


@pytest.fixture(params=KINDS)
async def actions(request: pytest.FixtureRequest) -> AsyncIterator[Actions]:
    if request.param == "memory":
        yield Actions(MemoryActionSink(), None)
        return
    broker = request.getfixturevalue("broker")
    sink = KafkaActionSink(broker.bootstrap, f"contract.actions.{uuid.uuid4().hex[:12]}", partitions=1)
    try:
        yield Actions(sink, broker)
    finally:
        await sink.stop()


def claim(member: str = "marta", *, link_token: str | None = None) -> Any:
    return action_record(action="claim", conversation="fb:PAGE_111:PSID_222", member=member, by="ops:anna",
                         via="link" if link_token else "api", at=AT, link_token=link_token)


class TestActionSinkContract:
    async def test_actions_are_recorded_as_their_wire_form_keyed_and_in_order(self, actions: Actions) -> None:
        """A claim then an answered mark: both, in order, keyed by conversation, exactly their JSON."""
        first = claim()
        second = action_record(action="answered", conversation="fb:PAGE_111:PSID_222", member=None,
                               by="ops:anna", via="api", at=AT)
        await actions.sink.start()
        await actions.sink.record(first)
        await actions.sink.record(second)
        expected = [(a.key, orjson.loads(a.to_json())) for a in (first, second)]
        assert (expected, b"fb:PAGE_111:PSID_222") == (await actions.recorded(2), first.key)

    async def test_the_same_link_twice_is_recorded_twice_with_one_id(self, actions: Actions) -> None:
        """The sink does not dedupe: a link pressed twice is two records with the same ``action_id``."""
        await actions.sink.start()
        await actions.sink.record(claim(link_token="tok.sig"))
        await actions.sink.record(claim(link_token="tok.sig"))
        ids = [wire["action_id"] for _, wire in await actions.recorded(2)]
        assert (2, 1) == (len(ids), len(set(ids)))

    async def test_record_before_start_is_refused(self, actions: Actions) -> None:
        """An unstarted sink raises RuntimeError: the API answers 500 rather than lose the action."""
        with pytest.raises(RuntimeError):
            await actions.sink.record(claim())

    async def test_record_after_stop_is_refused(self, actions: Actions) -> None:
        await actions.sink.start()
        await actions.sink.stop()
        with pytest.raises(RuntimeError):
            await actions.sink.record(claim())


# -- configuration stores ---------------------------------------------------------------


@dataclass
class Store:
    store: MemoryConfigStore | KafkaConfigStore
    broker: EmbeddedBroker | None

    async def audit(self, count: int) -> list[dict[str, Any]]:
        """The first ``count`` audit events (at least that many must come)."""
        if isinstance(self.store, MemoryConfigStore):
            assert len(self.store.audit) >= count, self.store.audit
            return self.store.audit[:count]
        assert self.broker is not None
        records = await read_topic(self.broker, self.store.audit_topic, lambda found: len(found) >= count)
        return [orjson.loads(value) for _, value in records][:count]

    async def audit_count(self) -> int:
        """How many audit events there are, for a store at rest (Kafka: up to a marker written now)."""
        if isinstance(self.store, MemoryConfigStore):
            return len(self.store.audit)
        assert self.broker is not None and isinstance(self.store, KafkaConfigStore)
        marker = b'{"marker": true}'
        producer = self.store._producer
        assert producer is not None
        await producer.send_and_wait(self.store.audit_topic, value=marker, key=b"marker")
        records = await read_topic(self.broker, self.store.audit_topic, lambda found: (b"marker", marker) in found)
        return len(records) - 1


@pytest.fixture(params=KINDS)
async def seeded(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A store seeded with the test coverage at the fixed clock."""
    clock = FixedClock()
    if request.param == "memory":
        yield Store(MemoryConfigStore(COVERAGE_TEXT, clock=clock), None)
        return
    broker = request.getfixturevalue("broker")
    suffix = uuid.uuid4().hex[:12]
    store = KafkaConfigStore(broker.bootstrap, topic=f"contract.config.{suffix}",
                             audit_topic=f"contract.audit.{suffix}", clock=clock)
    try:
        await store.start(seed=COVERAGE_TEXT)
        yield Store(store, broker)
    finally:
        await store.stop()


class Follower:
    """Records each coverage a store calls back with; ``fail`` makes it raise instead."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[Coverage] = []
        self.fail = fail
        self._changed = asyncio.Condition()

    async def __call__(self, coverage: Coverage) -> None:
        async with self._changed:
            self.seen.append(coverage)
            self._changed.notify_all()
        if self.fail:
            raise LookupError("this follower refuses every coverage")

    async def until(self, count: int) -> list[Coverage]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.seen) >= count), WITHIN)
            return list(self.seen)


def name(coverage: Coverage) -> str:
    return coverage.teams["care-it"].name


class TestConfigStoreContract:
    async def test_the_seed_is_version_one_audited_and_applied(self, seeded: Store) -> None:
        document = seeded.store.current()
        [event] = await seeded.audit(1)
        assert (1, "system:seed", COVERAGE_TEXT, "Assistenza Italia", FollowerState(applied=1)) == (
            document.version, document.updated_by, document.yaml, name(seeded.store.coverage()),
            seeded.store.followers)
        assert ("system:seed", SEEDED, 1, "2026-11-23T20:00:00+01:00") == (
            event["who"], event["what"], event["version"], event["at"])

    async def test_a_publish_with_the_current_etag_is_the_next_version(self, seeded: Store) -> None:
        before = seeded.store.current()
        stored = await seeded.store.publish(ConfigDocument(yaml=RENAMED), expected_etag=before.etag,
                                            who="ops:anna", what="renamed the team")
        _, event = await seeded.audit(2)
        assert (2, "ops:anna", stored, "Assistenza") == (
            stored.version, stored.updated_by, seeded.store.current(), name(seeded.store.coverage()))
        assert ("ops:anna", "renamed the team", 2) == (event["who"], event["what"], event["version"])

    async def test_a_publish_without_an_etag_skips_the_check(self, seeded: Store) -> None:
        stored = await seeded.store.publish(ConfigDocument(yaml=RENAMED), expected_etag=None,
                                            who="ops:anna", what="renamed the team")
        assert (2, "Assistenza") == (stored.version, name(seeded.store.coverage()))

    async def test_a_stale_etag_changes_nothing(self, seeded: Store) -> None:
        before = seeded.store.current()
        with pytest.raises(EtagMismatch):
            await seeded.store.publish(ConfigDocument(yaml=RENAMED), expected_etag='"stale"',
                                       who="ops:anna", what="renamed the team")
        assert (before, 1) == (seeded.store.current(), await seeded.audit_count())

    async def test_an_invalid_draft_changes_nothing(self, seeded: Store) -> None:
        before = seeded.store.current()
        broken = COVERAGE_TEXT.replace("timezone: Europe/Rome ", "timezone: Europe/Roma ")
        assert broken != COVERAGE_TEXT
        with pytest.raises(CoverageInvalid):
            await seeded.store.publish(ConfigDocument(yaml=broken), expected_etag=before.etag,
                                       who="ops:anna", what="broke the zone")
        assert (before, "Assistenza Italia", 1) == (
            seeded.store.current(), name(seeded.store.coverage()), await seeded.audit_count())

    async def test_a_follower_gets_the_coverage_now_and_each_new_one(self, seeded: Store) -> None:
        follower = Follower()
        await seeded.store.follow(follower)
        now = await follower.until(1)
        await seeded.store.publish(ConfigDocument(yaml=RENAMED), expected_etag=None, who="ops:anna", what="renamed")
        later = await follower.until(2)
        assert (["Assistenza Italia"], ["Assistenza Italia", "Assistenza"], FollowerState(applied=2)) == (
            [name(c) for c in now], [name(c) for c in later], seeded.store.followers)

    async def test_a_follower_that_raises_is_reported_and_the_version_kept(self, seeded: Store) -> None:
        follower = Follower(fail=True)
        await seeded.store.follow(follower)
        await seeded.store.publish(ConfigDocument(yaml=RENAMED), expected_etag=None, who="ops:anna", what="renamed")
        await follower.until(2)
        async with asyncio.timeout(WITHIN):
            while seeded.store.followers.refused != 2:
                await asyncio.sleep(0.01)
        # Version 1 was taken before the follower came (no follower refused it).
        assert (FollowerState(applied=1, refused=2, error="LookupError"), 2) == (
            seeded.store.followers, seeded.store.current().version)
