"""Table values and the records a worker writes cost their own length in memory, not orjson's 4 KiB buffer."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from promises.rules import PendingEscalation
from records.stored import exact_json
from records.wire import DeadLetter
from triage.policy import rejected
from triage.state import ConversationState, Processed, event_digest

COUNT = 2_000


def state(n: int) -> bytes:
    return ConversationState(
        team="care-it", customer_at=1_795_468_445 + n, ack_at=1_795_468_445 + n, routed_to=("marta",),
        text=f"Il mio ordine {n} non è arrivato", recent=(Processed(event_digest(f"fb:m_{n}"), None, False),),
    ).to_bytes()


def pending(n: int) -> bytes:
    return PendingEscalation(
        event_id=f"fb:m_{n}", team="care-it", conversation=f"fb:PAGE_1:PSID_{n}", mode="reduced",
        routed_at=datetime(2026, 11, 23, 20, 0, tzinfo=UTC), routed_to=("marta",),
    ).to_bytes()


def traced_per_value(make: Callable[[int], bytes]) -> tuple[float, int]:
    """Bytes of traced memory each of COUNT kept values costs, and one value's length."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(n) for n in range(COUNT)]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return grown / COUNT, len(kept[-1])


def test_exact_json_is_orjson_text() -> None:
    data = {"t": "care-it", "e": [[1, None, 0]], "x": "è"}
    assert orjson.dumps(data) == exact_json(data)


@pytest.mark.parametrize("make", [state, pending], ids=["conversation state", "pending escalation"])
def test_a_table_value_costs_about_its_length(make: Callable[[int], bytes]) -> None:
    """A value of a few hundred bytes costs a few hundred bytes kept (orjson's own bytes cost over 4 KiB)."""
    per_value, length = traced_per_value(make)
    assert length < 400
    assert per_value < length + 100, f"{per_value:.0f} B kept per value of {length} B"


def decision(n: int) -> bytes:
    return rejected(f"fb:m_{n}", "unknown account: acme.xx").decision.to_json()


def dead_letter(n: int) -> bytes:
    return DeadLetter.of(f'{{"id": "fb:m_{n}"}}'.encode(), "unknown account", "offhours.events").to_json()


@pytest.mark.parametrize("make", [decision, dead_letter], ids=["decision", "dead letter"])
def test_a_record_written_costs_about_its_length(make: Callable[[int], bytes]) -> None:
    """Records sent and dropped are exact-sized too: their 4 KiB buffers scattered the heap
    so that the memory of expired conversations was not reused (records.stored)."""
    per_value, length = traced_per_value(make)
    assert per_value < length + 100, f"{per_value:.0f} B kept per record of {length} B"
