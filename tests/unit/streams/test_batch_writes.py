"""The triage agent's batch (:func:`streams.app.decide_batch`) without Faust or a broker.

A batch writes each conversation's state to the table once, at its end, with the
conversation's last event that changed it current (Faust sends a table write to the changelog partition
of the current event); the events are acknowledged after those writes; the decisions
are those of deciding every event in a batch of its own; a claim that lands while the
batch runs is kept.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import orjson
from faust.streams import current_event

from schedules import load_coverage
from streams.app import CoverageHolder, decide_batch
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.streams_app import MONDAY_EVENING, event
from triage.state import ConversationState

ANA = b"fb:PAGE_111:PSID_222"
BEN = b"fb:PAGE_111:PSID_333"


class Event:
    """What the agent reads of a Faust event (weak-referenceable, as Faust's current event is)."""

    def __init__(self, key: bytes, value: bytes, offset: int) -> None:
        self.key, self.value = key, value
        self.message = SimpleNamespace(partition=0, offset=offset, headers=[], topic="events", timestamp=None)


class Table(dict):
    """A table that records each write and the event current at it, as Faust's would use it."""

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.log = log

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.log.append(("write", (key, current_event())))
        super().__setitem__(key, value)


class Producer:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.on_send: Any = None

    async def send(self, topic: str, key: bytes | None, value: bytes, *_: Any) -> None:
        self.sent.append((topic, key, value))
        if self.on_send is not None:
            self.on_send(topic, key, value)


class Stream:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log

    async def ack(self, event: Event) -> bool:
        self.log.append(("ack", event))
        return True


def app() -> SimpleNamespace:
    log: list[tuple[str, Any]] = []
    topics = {name: SimpleNamespace(get_topic_name=lambda name=name: name) for name in ("acks", "routes", "decisions", "dead_letters")}
    return SimpleNamespace(
        log=log,
        conversations=Table(log),
        escalations={},
        reply_times={},
        decoded_reply_times={},
        producer=Producer(log),
        stream_topics=SimpleNamespace(**topics),
        coverage=CoverageHolder(load_coverage(EXAMPLE_COVERAGE)),
        metrics=None,
        progress=None,
    )


def burst() -> list[Event]:
    """Ana writes three times in a minute (then a redelivery of her first), Ben once in between."""
    values = [
        (ANA, event("m_1", MONDAY_EVENING)),
        (BEN, event("m_2", MONDAY_EVENING, conversation=BEN.decode(), author={"id": "PSID_333", "name": "Ben"})),
        (ANA, event("m_3", MONDAY_EVENING + timedelta(seconds=20))),
        (ANA, event("m_4", MONDAY_EVENING + timedelta(seconds=40))),
        (ANA, event("m_1", MONDAY_EVENING)),
    ]
    return [Event(key, value, offset) for offset, (key, value) in enumerate(values)]


def decisions(target: SimpleNamespace) -> list[dict[str, Any]]:
    return [orjson.loads(value) for topic, _key, value in target.producer.sent if topic == "decisions"]


class TestBatchWrites:
    async def test_one_write_per_conversation_with_its_last_event_then_the_acks(self) -> None:
        """Ana's three messages and a redelivery cost one write, made with the last event that changed
        her state (the redelivery changes nothing); Ben's with his; the acks follow the writes."""
        target, events = app(), burst()
        await decide_batch(target, Stream(target.log), events)
        writes = [entry for kind, entry in target.log if kind == "write"]
        assert [(ANA, events[3]), (BEN, events[1])] == writes
        assert ["write", "write", "ack", "ack", "ack", "ack", "ack"] == [kind for kind, _ in target.log]
        assert [e for kind, e in target.log if kind == "ack"] == events
        state = ConversationState.from_bytes(target.conversations[ANA])
        assert 3 == len(state.recent)

    async def test_the_decisions_are_those_of_one_event_per_batch(self) -> None:
        """Deciding the burst in one batch gives byte for byte the records and states of five batches of one."""
        together, apart = app(), app()
        await decide_batch(together, Stream(together.log), burst())
        for one in burst():
            await decide_batch(apart, Stream(apart.log), [one])
        assert apart.producer.sent == together.producer.sent
        assert dict(apart.conversations) == dict(together.conversations)
        assert [None, None, "duplicate", "duplicate", None] == [d["ack_suppressed"] for d in decisions(together)]

    async def test_a_claim_landing_during_the_batch_is_kept(self) -> None:
        """The actions agent claims Ana's conversation while the batch runs: the batch's write keeps the claim."""
        target = app()

        def claim_after_first_decision(topic: str, key: bytes | None, _value: bytes) -> None:
            if topic == "decisions" and key == ANA and ANA in target.conversations:
                return
            if topic == "decisions" and key == ANA:
                stored = ConversationState(team="care-it").claimed("marta", 1_700_000_000)
                dict.__setitem__(target.conversations, ANA, stored.to_bytes())

        target.producer.on_send = claim_after_first_decision
        await decide_batch(target, Stream(target.log), burst())
        state = ConversationState.from_bytes(target.conversations[ANA])
        assert ("marta", 3) == (state.claimed_by, len(state.recent))
