"""What the due-time index tests share (tests/unit/promises/test_next_tick.py,
tests/unit/streams/test_due_index.py): a coverage with every rule the sweep asks, row
strategies around a fixed week, and an app stand-in whose tables are dicts.

Every instant is relative to :data:`BASE` or drawn by the test: nothing reads the clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import strategies as st

from brokers.client import partition_of
from promises.rules import PendingEscalation
from schedules import Coverage, load_coverage_text
from triage.state import ConversationState

COVERAGE = """
teams:
  care-it:
    timezone: Europe/Rome
    accounts: [acme.it.facebook, acme.it.whatsapp]
    hours:
      mon-fri: ["09:00-19:00 open", "19:00-24:00 reduced"]
      sat: ["10:00-18:00 reduced"]
    on_call:
      rotation: {members: [marta, luca], start: "2026-11-02 09:00", every: 1w}
    staff:
      marta: {name: Marta Rossi, notify: ["mailto:marta@example.com"]}
      luca:  {name: Luca Bianchi, notify: ["mailto:luca@example.com"]}
      anna:  {name: Anna Neri, notify: ["mailto:anna@example.com"]}
    escalation:
      reduced: {after: 15m, chain: [next_on_call, lead:anna], repeat: 2}
      closed:  {after: 10m, chain: [next_on_call, lead:anna], repeat: 1}
      claim_limit: 30m
      window_margin: 2h
  care-es:
    timezone: Europe/Madrid
    chatwoot: {account: 7, inboxes: [12], hold: true}
    hours:
      mon-fri: ["09:00-18:00 open"]
    staff:
      ana: {name: Ana Ruiz, notify: ["mailto:ana@example.com"]}
    escalation:
      closed: {after: 20m, chain: [lead:ana], repeat: 1}
      claim_limit: 1h
"""

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
"""A Friday: the rows' instants and the sweeps' clocks lie within days of it."""

SPAN = 4 * 86400
"""Seconds either side of :data:`BASE` that the rows' instants take."""

TEAMS = ("care-it", "care-es", "gone")
"""The teams rows name; ``gone`` is none of the coverage's."""

PARTITIONS = 4
RETENTION = timedelta(days=3)


def coverage() -> Coverage:
    return load_coverage_text(COVERAGE, filename="due-index.yaml")


def at(offset: int) -> int:
    """POSIX seconds ``offset`` seconds after :data:`BASE`."""
    return int(BASE.timestamp()) + offset


def instant(offset: float) -> datetime:
    return BASE + timedelta(seconds=offset)


offsets = st.integers(min_value=-SPAN, max_value=SPAN)
maybe = st.none() | offsets


@st.composite
def states(draw: Any) -> ConversationState:
    """A conversation row: any mix of the instants and marks the rules read."""
    team = draw(st.sampled_from(TEAMS))
    customer = draw(maybe)
    staff = draw(maybe)
    ack = draw(maybe)
    reply_by = None if ack is None else draw(st.none() | st.integers(min_value=ack, max_value=ack + 86400))
    claimed = draw(maybe)
    desk = None
    if draw(st.booleans()):
        desk = {"kind": "chatwoot", "account": 7, "inbox": draw(st.sampled_from([12, 13])),
                "conversation": 1, "status": draw(st.sampled_from(["pending", "open"]))}
    state = ConversationState(
        team=team,
        status=draw(st.sampled_from(["open", "open", "answered"])),
        customer_at=None if customer is None else at(customer),
        waiting_since=None if customer is None or not draw(st.booleans()) else at(customer - draw(st.integers(0, 3600))),
        ack_at=None if ack is None else at(ack),
        reply_by=None if reply_by is None else at(reply_by),
        promised=None if ack is None else "soon",
        staff_at=None if staff is None else at(staff),
        routed_at=None if (routed := draw(maybe)) is None else at(routed),
        claimed_by=None if claimed is None else draw(st.sampled_from(["marta", "ana"])),
        claimed_at=None if claimed is None else at(claimed),
        channel=draw(st.sampled_from([None, "facebook", "whatsapp", "instagram", "x"])),
        kind=draw(st.sampled_from([None, "dm", "comment"])),
        desk=desk,
    )
    reminded = draw(st.lists(st.sampled_from(_reminder_ids(state)), max_size=2, unique=True))
    window_routed = state.customer_at if draw(st.booleans()) else None
    return ConversationState(**{**_fields(state), "reminded": tuple(reminded), "window_routed": window_routed})


def _fields(state: ConversationState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__dataclass_fields__}


def _reminder_ids(state: ConversationState) -> list[str]:
    ids = ["remind:reply_by:c:0"]
    if state.reply_by is not None:
        ids.append(f"remind:reply_by:c:{state.reply_by}")
    if state.claimed_at is not None:
        ids.extend(f"remind:claim:c:{state.claimed_at + limit}" for limit in (1800, 3600))
    return ids


@st.composite
def pendings(draw: Any) -> PendingEscalation:
    """An escalations row of the conversation ``c``."""
    return PendingEscalation(
        event_id=f"fb:m_{draw(st.integers(0, 9))}",
        team=draw(st.sampled_from(TEAMS)),
        conversation="c",
        mode=draw(st.sampled_from(["reduced", "closed", "open"])),
        routed_at=instant(draw(offsets)),
        sent=draw(st.integers(0, 4)),
        claimed=draw(st.booleans()),
    )


# -- generated tables ----------------------------------------------------------------------


def random_rows(rng: random.Random, count: int) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """``count`` conversations with rows of both tables, drawn by ``rng`` (the strategies' shapes)."""
    conversations: dict[bytes, bytes] = {}
    escalations: dict[bytes, bytes] = {}
    for n in range(count):
        key = f"fb:PAGE:{n}".encode()
        if rng.random() < 0.9:
            conversations[key] = random_state(rng).to_bytes()
        if rng.random() < 0.4 or key not in conversations:
            escalations[key] = random_pending(rng, key.decode()).to_bytes()
    return conversations, escalations


def _offset(rng: random.Random) -> int:
    return rng.randint(-SPAN, SPAN)


def random_state(rng: random.Random) -> ConversationState:
    pick = rng.random
    customer = at(_offset(rng)) if pick() < 0.9 else None
    ack = customer if customer is not None and pick() < 0.6 else None
    claimed = at(_offset(rng)) if pick() < 0.2 else None
    desk = ({"kind": "chatwoot", "account": 7, "inbox": 12, "conversation": 1, "status": "pending"}
            if pick() < 0.2 else None)
    return ConversationState(
        team=rng.choice(TEAMS),
        status="open" if pick() < 0.85 else "answered",
        customer_at=customer,
        waiting_since=customer,
        ack_at=ack,
        reply_by=None if ack is None else ack + rng.randint(600, 86400),
        promised=None if ack is None else "soon",
        staff_at=at(_offset(rng)) if pick() < 0.3 else None,
        routed_at=customer if customer is not None and pick() < 0.5 else None,
        claimed_by=None if claimed is None else "marta",
        claimed_at=claimed,
        channel=rng.choice([None, "facebook", "whatsapp", "x"]),
        kind=rng.choice([None, "dm", "comment"]),
        desk=desk,
    )


def random_pending(rng: random.Random, conversation: str) -> PendingEscalation:
    return PendingEscalation(
        event_id=f"fb:m_{rng.randint(0, 99)}", team=rng.choice(TEAMS), conversation=conversation,
        mode=rng.choice(["reduced", "closed"]), routed_at=instant(_offset(rng)),
        sent=rng.randint(0, 3), claimed=pick_claimed(rng),
    )


def pick_claimed(rng: random.Random) -> bool:
    return rng.random() < 0.1


# -- an app stand-in -----------------------------------------------------------------------


class DictTable(dict):
    """A table as the sweep reads it (``items``, ``keys``, ``get``), with writes it can watch."""


@dataclass
class Holder:
    coverage: Coverage
    listeners: list[Any] = field(default_factory=list)

    def on_swap(self, listener: Any) -> None:
        self.listeners.append(listener)

    def swap(self, coverage: Coverage) -> None:
        self.coverage = coverage
        for listener in self.listeners:
            listener(coverage)


def app_of(conversations: dict[bytes, bytes], escalations: dict[bytes, bytes], cover: Coverage | None = None) -> Any:
    """An app stand-in for the sweep's pure paths: two dict tables, the settings it reads, the coverage."""
    return SimpleNamespace(
        conversations=DictTable(conversations),
        escalations=DictTable(escalations),
        settings=SimpleNamespace(partitions=PARTITIONS, retention=RETENTION, sweep_interval=30.0),
        coverage=Holder(cover or coverage()),
        promise_timers=None,
    )


def held_keys(keys: Any, held: set[int]) -> set[bytes]:
    return {key for key in keys if partition_of(key, PARTITIONS) in held}
