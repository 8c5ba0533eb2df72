"""On-call actions (claim, answered) applied to the conversation state by the worker."""

from __future__ import annotations

import orjson
import pytest

from records.actions import ActionInvalid, decode_action
from triage.state import ConversationState


class TestClaimedState:
    def test_repeated_claim_keeps_the_first_time(self) -> None:
        """The same member claiming again (a redelivered action) changes nothing."""
        state = ConversationState(team="care-it").claimed("marta", 100)
        assert state == state.claimed("marta", 200)

    def test_claim_by_another_member_takes_over(self) -> None:
        """A claim by someone else replaces the claimer and the time."""
        state = ConversationState(team="care-it").claimed("marta", 100).claimed("luca", 200)
        assert ("luca", 200) == (state.claimed_by, state.claimed_at)

    @pytest.mark.parametrize(
        "state",
        [
            pytest.param(ConversationState(team="care-it"), id="unclaimed"),
            pytest.param(ConversationState(team="care-it", claimed_by="marta", claimed_at=100), id="claimed"),
            pytest.param(ConversationState(team="care-it").answered(), id="answered"),
        ],
    )
    def test_wire_form_round_trips(self, state: ConversationState) -> None:
        """to_bytes then from_bytes gives the same state back."""
        assert state == ConversationState.from_bytes(state.to_bytes())

    def test_state_written_before_claims_still_reads(self) -> None:
        """Bytes without the claim keys (the earlier wire form) read as unclaimed."""
        state = ConversationState.from_bytes(b'{"t":"care-it","c":100}')
        assert ("care-it", 100, None, None) == (state.team, state.customer_at, state.claimed_by, state.claimed_at)

    def test_unclaimed_state_adds_no_bytes(self) -> None:
        """An unclaimed state's wire form carries no claim keys."""
        assert {"t": "care-it"} == orjson.loads(ConversationState(team="care-it").to_bytes())


class TestDecodeAction:
    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            pytest.param(b"not json", "not JSON", id="not_json"),
            pytest.param(b'{"action": "close", "conversation": "c", "at": "2026-11-23T21:00:00+01:00"}',
                         "action must be claim or answered", id="unknown_action"),
            pytest.param(b'{"action": "answered", "at": "2026-11-23T21:00:00+01:00"}', "conversation missing",
                         id="no_conversation"),
            pytest.param(b'{"action": "answered", "conversation": "c", "at": "2026-11-23T21:00:00"}',
                         "at needs a UTC offset", id="naive_time"),
        ],
    )
    def test_unreadable_records_say_why(self, raw: bytes, reason: str) -> None:
        """A record that is not an on-call action raises ActionInvalid naming the fault."""
        with pytest.raises(ActionInvalid) as caught:
            decode_action(raw)
        assert reason == str(caught.value)

