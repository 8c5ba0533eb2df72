"""The pure parts of a stop (offhours.drain): deadlines, what is behind, what a line says,
the leftovers file; the guard and the drain loop with a fake backlog and an injected clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from offhours.drain import (
    HAND_BACK_RESERVE,
    LEFT_FILE,
    Draining,
    Guard,
    Left,
    Plan,
    append_lines,
    behind,
    customer_ids,
    drain,
    entry_record,
    left_entry,
    left_line,
    replayed,
)
from records.wire import AckRequest
from schedules import load_coverage_text

EVENTS = TopicPartition("social.events", 0)
ACKS = TopicPartition("offhours.acks", 0)

ACK = orjson.dumps({"ack_id": "ack:fb:m_1", "event_id": "fb:m_1", "channel": "facebook",
                    "conversation": "fb:PAGE:PSID", "text": "Ciao Ana, ti rispondiamo lunedì"})


class TestPlan:
    def test_the_cut_keeps_a_reserve_for_the_hand_back(self) -> None:
        plan = Plan(start=100.0, timeout=20.0)
        assert (115.0, 120.0) == (plan.cut, plan.end)

    def test_a_short_drain_keeps_a_quarter(self) -> None:
        plan = Plan(start=0.0, timeout=4.0)
        assert (3.0, 4.0) == (plan.cut, plan.end)
        assert HAND_BACK_RESERVE == Plan(0.0, 100.0).reserve


def test_behind_names_only_the_partitions_not_committed_up_to_their_target() -> None:
    assert {ACKS: 3} == behind({EVENTS: 10, ACKS: 7}, {EVENTS: 10, ACKS: 4})
    assert {EVENTS: 2} == behind({EVENTS: 2}, {})
    assert {} == behind({EVENTS: 5}, {EVENTS: 6})


class TestLines:
    def test_a_line_names_the_customer_by_ids_never_by_text(self) -> None:
        line = left_line("acks", ACK, "kept for the next start")
        assert "ack_id=ack:fb:m_1" in line and "conversation=fb:PAGE:PSID" in line
        assert "Ciao" not in line and line.endswith("kept for the next start")

    def test_an_event_and_an_unreadable_record(self) -> None:
        event = orjson.dumps({"id": "wa:wamid.1", "channel": "whatsapp", "conversation": "wa:1:2", "text": "rimborso"})
        assert {"id": "wa:wamid.1", "channel": "whatsapp", "conversation": "wa:1:2"} == customer_ids("events", event)
        assert "unreadable record" in left_line("events", b"\xff not json", "left")


class TestFile:
    def test_a_line_reads_back_as_the_record_it_was(self) -> None:
        left = Left("acks", b"fb:PAGE:PSID", ACK, "stopped", (("offhours-received", b"1764000000.5"),), "retrying")
        assert left == entry_record(left_entry(left))

    def test_a_value_that_is_not_text_survives(self) -> None:
        left = Left("events", None, b"\xff\x00", "stopped")
        assert left == entry_record(left_entry(left))

    def test_lines_are_added_to_what_is_there(self, tmp_path: Path) -> None:
        path = tmp_path / "data" / LEFT_FILE
        append_lines(path, [b"1"])
        append_lines(path, [b"2", b"3"])
        assert [b"1", b"2", b"3"] == path.read_bytes().splitlines()


def test_draining_is_set_once() -> None:
    draining = Draining()
    assert not draining.active
    draining.start(5.0)
    draining.start(9.0)
    assert (True, 5.0) == (draining.active, draining.since)


class TestGuard:
    async def test_a_delivery_goes_through_and_is_counted_while_in_flight(self) -> None:
        guard = Guard()
        release = asyncio.Event()

        async def delivery() -> str:
            await release.wait()
            return "delivered"

        task = asyncio.ensure_future(guard("acks", ACK, delivery()))
        await asyncio.sleep(0)
        assert 1 == len(guard.in_flight)
        release.set()
        assert "delivered" == await task
        assert ({}, []) == (guard.in_flight, guard.handed)

    async def test_the_cut_hands_back_what_is_in_flight_and_everything_after(self) -> None:
        guard = Guard(ledger=lambda source, raw: "retrying")

        async def waiting_for_a_retry() -> str:
            await asyncio.sleep(3600)
            return "delivered"

        task = asyncio.ensure_future(guard("acks", ACK, waiting_for_a_retry()))
        await asyncio.sleep(0)
        assert 1 == guard.cut()
        assert await task is None
        assert await guard("routes", b"{}", waiting_for_a_retry()) is None
        assert [("acks", b"fb:PAGE:PSID", "retrying"), ("routes", None, "retrying")] == [
            (left.role, left.key, left.ledger) for left in guard.handed
        ]


class FakeBacklog:
    """Committed offsets that move on by one per look, up to ``ends``."""

    def __init__(self, ends: dict[TopicPartition, int], committed: dict[TopicPartition, int], step: int = 1) -> None:
        self._ends = ends
        self._committed = committed
        self._step = step

    async def ends(self, tps: Any) -> dict[TopicPartition, int]:
        return {tp: self._ends[tp] for tp in tps}

    async def committed(self, tps: Any) -> dict[TopicPartition, int]:
        for tp in self._committed:
            self._committed[tp] = min(self._ends[tp], self._committed[tp] + self._step)
        return dict(self._committed)


class FakeApp:
    def __init__(self) -> None:
        self.settings = type("S", (), {"events_topic": EVENTS.topic, "acks_topic": ACKS.topic})()
        self.promise_timers = None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("offhours.drain.held_partitions", lambda app: [EVENTS, ACKS])


async def test_the_drain_ends_once_everything_is_committed(held: None) -> None:
    clock = Clock()
    backlog = FakeBacklog({EVENTS: 3, ACKS: 3}, {EVENTS: 0, ACKS: 0})
    outcome = await drain(FakeApp(), Guard(), backlog, Plan(0.0, 20.0), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert outcome.drained and outcome.seconds < 1.0


async def test_the_drain_is_bounded_and_cuts_at_the_deadline(held: None) -> None:
    clock = Clock()
    backlog = FakeBacklog({EVENTS: 3, ACKS: 3}, {EVENTS: 0, ACKS: 0}, step=0)  # a delivery that never ends
    guard = Guard()
    outcome = await drain(FakeApp(), guard, backlog, Plan(0.0, 8.0), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert not outcome.drained and guard.is_cut
    assert 8.0 <= outcome.seconds < 8.0 + 0.5


async def test_a_second_signal_cuts_at_once(held: None) -> None:
    clock = Clock()
    hurry = asyncio.Event()
    hurry.set()
    guard = Guard()
    backlog = FakeBacklog({EVENTS: 3, ACKS: 3}, {EVENTS: 0, ACKS: 0})
    await drain(FakeApp(), guard, backlog, Plan(0.0, 20.0), hurry=hurry, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert guard.is_cut and clock.now < 5.0


class TestReplayed:
    """What the next start puts back on the topics for the lines of the file."""

    def request(self) -> bytes:
        return AckRequest(
            ack_id="ack:fb:m_1", event_id="fb:m_1", team="care-it", account="acme.it.facebook", channel="facebook",
            kind="dm", conversation="fb:PAGE_111:PSID_1", recipient="PSID_1", reply_to="m_1",
            text="Ciao Ana, ti rispondiamo lunedì", lang="it", public=False, at="2026-11-22T21:14:05Z",
            author_name="Ana", customer_text="il mio ordine?",
        ).to_json()

    def coverage(self) -> Any:
        return load_coverage_text(
            "teams:\n  care-it:\n    timezone: Europe/Rome\n    accounts: [acme.it.facebook]\n"
            "    hours:\n      mon-fri: ['09:00-18:00 open']\n"
            "    on_call:\n      rotation: {members: [marta], start: '2020-01-06 09:00', every: 1w}\n"
            "    staff:\n      marta: {name: Marta Rossi, notify: ['mailto:marta@example.com']}\n"
        )

    def test_a_delivery_handed_back_goes_back_as_it_was(self) -> None:
        items = [Left("acks", b"k", self.request(), "stopped", ledger="retrying"), Left("events", b"k", b"{}", "stopped")]
        assert items == replayed(items, self.coverage(), 1_800_000_000.0)

    def test_an_acknowledgment_cut_while_sending_is_paged_to_staff_not_sent_again(self) -> None:
        [page] = replayed([Left("acks", b"k", self.request(), "stopped", ledger="sending")],
                          self.coverage(), 1_800_000_000.0)
        route = orjson.loads(page.value)
        assert ("routes", "escalation:ack:fb:m_1", ["marta"]) == (
            page.role, route["route_id"], [member["member"] for member in route["to"]])
        assert "may or may not have arrived" in route["reason"]
