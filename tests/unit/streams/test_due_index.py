"""The sweeps' due-time index (streams.due_index, streams.sweeps.indexed_due) against the full scan.

The full scan (streams.sweeps.scanned_due, how every sweep worked before the index)
is the reference: on generated tables, swept at a run of clocks with rows written and
deleted in between and partitions given away and taken over, the index finds exactly
the same ticks, releases and expiries. Then the index on its own (writes, deletes,
stale entries, revoked partitions, a takeover) and its hooks on a real Faust table.
Every clock is given; nothing reads today's date.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from brokers.client import partition_of
from promises.rules import PendingEscalation
from schedules import load_coverage_text
from streams import sweeps
from streams.due_index import DueIndex, conversation_due, expiry_at
from streams.retention import expired
from streams.sweeps import (
    DueWork,
    due_index_of,
    indexed_due,
    scanned_due,
    sync_partitions,
)
from tests.support.due_index import (
    BASE,
    COVERAGE,
    PARTITIONS,
    RETENTION,
    SPAN,
    app_of,
    at,
    coverage,
    instant,
    random_pending,
    random_rows,
    random_state,
)
from triage.state import ConversationState

ALL = {0, 1, 2, 3}


def seen(work: DueWork) -> dict[str, list[Any]]:
    """A sweep's work in a form to compare: every tick as sent, every release id, every expiry."""
    return {
        "escalations": sorted((key, tick.to_json()) for key, tick in work.escalations),
        "promises": sorted((key, tick.to_json()) for key, tick in work.promises),
        "releases": sorted((key, route.route_id) for key, route in work.releases),
        "expiring": sorted(work.expiring, key=lambda item: item[0]),
    }


def mutate(rng: random.Random, apps: list[Any], index: DueIndex, count: int) -> None:
    """Write or delete rows of a few conversations in every app's tables, telling the index (as the hooks do)."""
    keys = sorted(set(apps[0].conversations) | set(apps[0].escalations))
    for _ in range(count):
        key = rng.choice(keys) if rng.random() < 0.8 else f"new:{rng.randint(0, 10**6)}".encode()
        roll = rng.random()
        state, pending = random_state(rng).to_bytes(), random_pending(rng, key.decode()).to_bytes()
        for app in apps:
            if roll < 0.4:
                app.conversations[key] = state
            elif roll < 0.6:
                app.escalations[key] = pending
            elif roll < 0.8:
                app.conversations.pop(key, None)
            else:
                app.escalations.pop(key, None)
        index.touch(key)


class TestAgainstTheFullScan:
    def test_the_index_finds_exactly_what_the_scan_finds(self) -> None:
        """300 conversations swept 80 times over ten days (retention 3 days), rows changing in between."""
        rng = random.Random(20)
        conversations, escalations = random_rows(rng, 300)
        scan, indexed = app_of(conversations, escalations), app_of(conversations, escalations)
        index = due_index_of(indexed)
        now = BASE - timedelta(seconds=SPAN)
        compared = due = 0
        for sweep in range(80):
            held = ALL if sweep < 40 else ({0, 1} if sweep < 55 else {0, 1, 2})
            expected = seen(scanned_due(scan, held, now))
            assert expected == seen(indexed_due(indexed, held, now)), f"sweep {sweep} at {now.isoformat()}"
            compared += 1
            due += sum(len(part) for part in expected.values())
            mutate(rng, [scan, indexed], index, rng.randint(0, 8))
            now += timedelta(seconds=rng.choice([1, 30, 600, 3600, 4 * 3600, 9 * 3600]))
        assert compared == 80 and due > 100  # the run did find work to compare

    def test_a_sweep_reads_only_what_is_due(self) -> None:
        """Once built, a sweep with nothing due and nothing written reads no conversation."""
        wrote = at(0)
        rows = {f"c{n}".encode(): ConversationState(team="care-it", status="answered", customer_at=wrote).to_bytes()
                for n in range(200)}
        app = app_of(rows, {})
        indexed_due(app, ALL, BASE)  # builds: looks at all once
        index = due_index_of(app)
        assert (200, []) == (len(index), index.pop_due(ALL, BASE.timestamp() + 60))
        # Their expiry is their instant, but no wake: the periodic sweep takes expiries, batched.
        assert (expiry_at(wrote, RETENTION), None) == (index.instant_of(b"c0"), index.next_due(ALL))
        assert 200 == len(index.pop_due(ALL, float(expiry_at(wrote, RETENTION))))


class Topic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.sent.append((key, value))


class TestTheSweep:
    def test_a_sweep_in_chunks_sends_what_the_scan_finds_once_each(self, monkeypatch: Any) -> None:
        """sweep_promises looks at the index's conversations 7 at a time (returning to the loop in
        between): every tick the scan finds is sent once, and the sweep ends although the ticks
        it sent leave their conversations due."""
        monkeypatch.setattr(sweeps, "SWEEP_CHUNK", 7)
        conversations, escalations = random_rows(random.Random(7), 200)
        now = BASE + timedelta(days=1)
        expected = seen(scanned_due(app_of(conversations, escalations), ALL, now))
        assert len(expected["escalations"]) + len(expected["promises"]) > 7  # more than one chunk
        app = app_of(conversations, escalations)
        app.settings.events_topic = "events"
        app.consumer = SimpleNamespace(assignment=lambda: [TP("events", p) for p in ALL])
        app.stream_topics = SimpleNamespace(actions=Topic(), routes=Topic())
        for _ in range(2):  # the second sweep sends the same ticks again: nothing was applied
            app.stream_topics.actions.sent.clear()
            asyncio.run(sweeps.sweep_promises(app, now))
            ticks = sorted((key, value) for key, value in app.stream_topics.actions.sent if not key.startswith(b"expire:"))
            assert sorted(expected["escalations"] + expected["promises"]) == ticks


class TestTheIndex:
    def index(self) -> DueIndex:
        index = DueIndex(lambda key: partition_of(key, PARTITIONS))
        for partition in ALL:
            index.build(partition, [])
        return index

    def test_a_written_key_is_looked_at_by_the_next_sweep(self) -> None:
        index = self.index()
        index.touch(b"a")
        assert ([b"a"], []) == (index.pop_due(ALL, 0.0), index.pop_due(ALL, 0.0))

    def test_due_keys_come_out_at_their_instant_and_not_before(self) -> None:
        index = self.index()
        index.put(b"a", 100.0, 0.0)
        index.put(b"b", 200.0, 0.0)
        assert ([], [b"a"], [b"b"]) == (index.pop_due(ALL, 99.0), index.pop_due(ALL, 150.0), index.pop_due(ALL, 250.0))

    def test_a_newer_instant_makes_the_older_entry_stale(self) -> None:
        index = self.index()
        index.put(b"a", 100.0, 0.0)
        index.put(b"a", 300.0, 0.0)
        assert ([], 300.0, [b"a"]) == (index.pop_due(ALL, 200.0), index.next_due(ALL), index.pop_due(ALL, 300.0))

    def test_a_deleted_conversation_leaves_the_index(self) -> None:
        app = app_of({b"a": ConversationState(team="care-it", customer_at=at(0)).to_bytes()}, {})
        indexed_due(app, ALL, BASE)
        index = due_index_of(app)
        assert index.instant_of(b"a") is not None
        del app.conversations[b"a"]
        index.touch(b"a")
        indexed_due(app, ALL, BASE)
        assert (None, 0) == (index.instant_of(b"a"), len(index))

    def test_a_quiet_instant_comes_out_but_wakes_nobody(self) -> None:
        index = self.index()
        index.put(b"a", 100.0, 0.0, wake=False)
        index.put(b"b", 200.0, 0.0)
        assert (200.0, [b"a"]) == (index.next_due(ALL), index.pop_due(ALL, 150.0))

    def test_a_key_still_due_is_looked_at_again_but_is_no_instant_to_wake_for(self) -> None:
        index = self.index()
        index.put(b"a", 50.0, 100.0)
        assert (None, [b"a"]) == (index.next_due(ALL), index.pop_due(ALL, 100.0))

    def test_stale_entries_are_compacted(self) -> None:
        index = self.index()
        for n in range(1000):
            index.put(b"a", float(n + 10), 0.0)
        assert len(index._heaps[partition_of(b"a", PARTITIONS)]) < 100

    def test_a_revoked_partition_is_dropped_and_its_dirty_keys_forgotten(self) -> None:
        index = self.index()
        key = next(f"k{n}".encode() for n in range(100) if partition_of(f"k{n}".encode(), PARTITIONS) == 2)
        index.put(key, 10.0, 0.0)
        index.drop({2})
        index.touch(key)
        assert (frozenset({0, 1, 3}), [], 0) == (index.partitions, index.pop_due(ALL, 100.0), index.dirty)

    def test_only_held_partitions_are_swept(self) -> None:
        index = self.index()
        keys = {partition_of(f"k{n}".encode(), PARTITIONS): f"k{n}".encode() for n in range(100)}
        for key in keys.values():
            index.put(key, 10.0, 0.0)
        assert [keys[1]] == index.pop_due({1}, 100.0)


class TestTakeover:
    def pending(self, key: bytes, routed: datetime) -> bytes:
        return PendingEscalation(event_id="fb:m_1", team="care-it", conversation=key.decode(), mode="reduced",
                                 routed_at=routed).to_bytes()

    def test_a_partition_taken_over_is_built_and_its_due_escalation_sent(self) -> None:
        """A worker holding {0, 1} takes over 2 (a failover): the first sweep finds 2's due escalation."""
        key = next(f"fb:{n}".encode() for n in range(100) if partition_of(f"fb:{n}".encode(), PARTITIONS) == 2)
        routed = BASE - timedelta(minutes=20)  # care-it's reduced chain: step 0 due after 15 minutes
        app = app_of({}, {key: self.pending(key, routed)})
        assert [] == indexed_due(app, {0, 1}, BASE).escalations
        work = indexed_due(app, {0, 1, 2}, BASE)
        assert [key] == [k for k, _ in work.escalations]

    def test_a_partition_given_away_and_back_is_rebuilt_from_the_tables(self) -> None:
        key = next(f"fb:{n}".encode() for n in range(100) if partition_of(f"fb:{n}".encode(), PARTITIONS) == 3)
        app = app_of({}, {})
        index = due_index_of(app)
        indexed_due(app, ALL, BASE)
        sync_partitions(app, index, {0, 1, 2})
        app.escalations[key] = self.pending(key, BASE)  # written by another worker meanwhile: recovered here
        assert 3 not in index.partitions
        indexed_due(app, ALL, BASE)
        assert index.instant_of(key) == (BASE + timedelta(minutes=15)).timestamp()


class TestConversationDue:
    def test_the_expiry_is_the_first_second_the_retention_calls_expired(self) -> None:
        for last in (at(0), at(1)):
            first = expiry_at(last, RETENTION)
            assert (False, True) == (expired(last, instant(first - 1 - BASE.timestamp()), RETENTION),
                                     expired(last, instant(first - BASE.timestamp()), RETENTION))

    def test_a_row_without_an_instant_is_due_at_once_until_first_seen(self) -> None:
        state = ConversationState(team="care-it", status="answered")
        assert float("-inf") == conversation_due(b"a", state, None, coverage().teams, RETENTION, BASE)

    def test_no_row_is_never_due(self) -> None:
        assert conversation_due(b"a", None, None, coverage().teams, RETENTION, BASE) is None


class TestFaustHooks:
    """The hooks on the app's real Faust tables (streams.app.create_app; no broker is started)."""

    def app(self, tmp_path: Path) -> Any:
        from streams.app import create_app
        from tests.support.component import component_settings

        return create_app(component_settings(tmp_path / "data"), coverage())

    def event(self, key: bytes, value: bytes | None, partition: int) -> Any:
        return SimpleNamespace(key=key, value=value, message=SimpleNamespace(key=key, value=value, partition=partition))

    def test_changelog_records_of_indexed_partitions_mark_their_keys_and_recovery_builds(self, tmp_path: Path) -> None:
        app = self.app(tmp_path)
        index = due_index_of(app)
        key = b"fb:PAGE:1"
        partition = partition_of(key, app.settings.partitions)
        pending = PendingEscalation(event_id="fb:m_1", team="care-it", conversation="fb:PAGE:1", mode="reduced",
                                    routed_at=BASE).to_bytes()
        app.escalations.apply_changelog_batch([self.event(key, pending, partition)])  # a standby's: not indexed
        assert (0, b"fb:PAGE:1" in app.escalations.keys()) == (index.dirty, True)
        index.build(partition, [])
        app.escalations.apply_changelog_batch([self.event(key, pending, partition)])  # an active partition's
        assert 1 == index.dirty
        active = {TP(app.escalations.changelog_topic_name, partition)}
        asyncio.run(app.escalations.on_recovery_completed(active, set()))
        assert partition in index.partitions
        held = {partition}
        assert [] == indexed_due(app, held, BASE).escalations
        assert index.instant_of(key) == (BASE + timedelta(minutes=15)).timestamp()

    def test_a_rebalance_drops_the_revoked_partitions(self, tmp_path: Path) -> None:
        app = self.app(tmp_path)
        index = due_index_of(app)
        for partition in range(app.settings.partitions):
            index.build(partition, [])
        revoked = {TP(app.settings.events_topic, 0), TP("someone-else", 1)}
        asyncio.run(app.conversations.on_rebalance(set(), revoked, set()))
        assert 0 not in index.partitions and 1 in index.partitions

    def test_a_coverage_swap_looks_at_every_conversation_again(self, tmp_path: Path) -> None:
        app = self.app(tmp_path)
        key = b"fb:1"
        partition = partition_of(key, app.settings.partitions)
        pending = PendingEscalation(event_id="fb:m_1", team="care-it", conversation="fb:1", mode="reduced",
                                    routed_at=BASE).to_bytes()
        app.escalations.apply_changelog_batch([self.event(key, pending, partition)])
        indexed_due(app, {partition}, BASE)
        slower = load_coverage_text(COVERAGE.replace("after: 15m", "after: 45m"), filename="slower.yaml")
        app.coverage.swap(slower)
        indexed_due(app, {partition}, BASE)
        assert due_index_of(app).instant_of(key) == (BASE + timedelta(minutes=45)).timestamp()
