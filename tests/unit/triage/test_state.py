"""Tests for triage.state: the conversation state and its compact wire form."""

from __future__ import annotations

import orjson
import pytest

from triage.state import (
    RECENT_LIMIT,
    TEXT_KEPT,
    ConversationState,
    Processed,
    event_digest,
)

FULL = ConversationState(
    team="care-it",
    status="answered",
    customer_at=1_795_468_445,
    ack_at=1_795_468_445,
    staff_at=1_795_469_000,
    staff_id="marta",
    routed_to=("marta", "luca"),
    routed_at=1_795_468_445,
    recent=(
        Processed(event_digest("fb:m_1"), None, False),
        Processed(event_digest("fb:m_2"), "duplicate", True),
        Processed(event_digest("fb:m_3"), "agent_active", False),
    ),
)


class TestConversationState:
    @pytest.mark.parametrize(
        "state",
        [
            pytest.param(ConversationState(team="care-it"), id="fresh"),
            pytest.param(FULL, id="every_field"),
        ],
    )
    def test_round_trip(self, state: ConversationState) -> None:
        """from_bytes(to_bytes()) gives back an equal state."""
        assert state == ConversationState.from_bytes(state.to_bytes())

    def test_wire_form_uses_short_keys(self) -> None:
        """The wire form leaves defaults out and uses short keys."""
        assert {"t": "care-it"} == orjson.loads(ConversationState(team="care-it").to_bytes())

    def test_unknown_keys_are_ignored(self) -> None:
        """A state written by a newer version with extra keys still reads."""
        assert ConversationState(team="care-it", customer_at=5) == ConversationState.from_bytes(
            b'{"t":"care-it","c":5,"zz":[1,2]}'
        )

    def test_full_state_fits_in_one_kibibyte(self) -> None:
        """A state with a full recent record of long platform ids stays within 1 KiB."""
        state = ConversationState(
            team="care-team-with-a-rather-long-name",
            customer_at=1_795_468_445,
            ack_at=1_795_468_445,
            staff_at=1_795_469_000,
            staff_id="staff-member-" + "x" * 40,
            routed_to=("marta", "luca", "giulia"),
            routed_at=1_795_468_445,
        )
        for n in range(RECENT_LIMIT * 2):
            state = state.remember("wa:wamid.HBgLMzkzNDc5NjQ2NjQ1FQIAEhggQzRGRkU5" + "A" * 60 + str(n), suppressed="duplicate")
        assert len(state.to_bytes()) <= 1024

    def test_recent_record_is_bounded(self) -> None:
        """Only the last RECENT_LIMIT events are remembered; the oldest go first."""
        state = ConversationState(team="care-it")
        for n in range(RECENT_LIMIT + 3):
            state = state.remember(f"fb:m_{n}")
        assert (RECENT_LIMIT, None, Processed(event_digest("fb:m_3"))) == (
            len(state.recent),
            state.processed("fb:m_2"),
            state.processed("fb:m_3"),
        )

    def test_processed_returns_the_recorded_facts(self) -> None:
        """processed() finds an event by id with the facts recorded for it."""
        state = ConversationState(team="care-it").remember("fb:m_9", suppressed="agent_active", route_held=True)
        assert Processed(event_digest("fb:m_9"), "agent_active", True) == state.processed("fb:m_9")

    def test_unseen_event_is_not_processed(self) -> None:
        """processed() is None for an id never remembered."""
        assert FULL.processed("fb:m_unknown") is None


class TestCustomerWordsAndPromise:
    def test_a_record_written_before_the_words_were_kept_still_reads(self) -> None:
        """An old record (no an/tx/ac keys) reads with no author, words or account; new ones round-trip."""
        old = ConversationState.from_bytes(b'{"t":"care-it","c":1764000000,"ch":"facebook"}')
        new = old.wrote("Ana", "Il mio ordine", "acme.it.facebook")
        expected = ((None, None, None), ("Ana", "Il mio ordine", "acme.it.facebook"))
        again = ConversationState.from_bytes(new.to_bytes())
        assert expected == ((old.author_name, old.text, old.account), (again.author_name, again.text, again.account))

    def test_words_are_kept_bounded(self) -> None:
        """Only the first TEXT_KEPT characters of a long message are kept, then an ellipsis."""
        state = ConversationState(team="care-it").wrote(None, "x" * (TEXT_KEPT + 50), None)
        assert ("x" * TEXT_KEPT + "…") == state.text

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            pytest.param({"ack_at": 100, "waiting_since": 100}, (900, "Ciao"), id="acknowledged_this_wait"),
            pytest.param({"ack_at": 50, "waiting_since": 100}, (None, None), id="acknowledged_an_earlier_wait"),
            pytest.param({"ack_at": None, "waiting_since": 100}, (None, None), id="never_acknowledged"),
            pytest.param({"ack_at": 50, "waiting_since": None}, (900, "Ciao"), id="record_before_waiting_since"),
        ],
    )
    def test_promise_is_only_that_of_the_current_wait(self, changes, expected) -> None:
        """A reply-by time is shown as promised only when an acknowledgment was made since the customer started waiting."""
        state = ConversationState(team="care-it", customer_at=100, reply_by=900, promised="Ciao", **changes)
        assert expected == state.promise()
