"""A staff reply ends a pending escalation's steps (streams.sweeps.replied_since_routed)."""

from __future__ import annotations

from datetime import UTC, datetime

from promises.rules import PendingEscalation
from streams.sweeps import replied_since_routed
from triage.state import ConversationState

ROUTED = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
AT = int(ROUTED.timestamp())


def row(key: bytes) -> tuple[bytes, bytes]:
    return key, PendingEscalation(event_id="e", team="t", conversation=key.decode(), mode="reduced",
                                  routed_at=ROUTED).to_bytes()


def test_a_reply_at_or_after_the_routed_message_ends_it_an_earlier_one_does_not() -> None:
    conversations = [
        (b"replied", ConversationState(team="t", status="answered", staff_at=AT + 60)),
        (b"same_second", ConversationState(team="t", status="answered", staff_at=AT)),
        (b"replied_before", ConversationState(team="t", staff_at=AT - 60)),
        (b"reopened", ConversationState(team="t", status="open", customer_at=AT + 120, staff_at=AT + 60)),
        (b"no_reply", ConversationState(team="t")),
    ]
    keys = [key for key, _ in conversations] + [b"no_state"]
    assert {b"replied", b"same_second", b"reopened"} == replied_since_routed([row(k) for k in keys], conversations)
