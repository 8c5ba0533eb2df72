"""On-call actions (claim, answered) applied to the conversation state by the worker."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest

from edge.actions import KafkaActionSink, action_record
from records.actions import ActionInvalid, StaffAction, decode_action
from records.wire import DeadLetter
from schedules import load_coverage
from streams.settings import Settings
from streams.worker import running_worker
from tests.conftest import EXAMPLE_COVERAGE
from tests.streams.test_app import MONDAY_EVENING, event, read_until, send
from triage.state import ConversationState

CONVERSATION = "fb:PAGE_111:PSID_222"
CLAIMED_AT = MONDAY_EVENING + timedelta(minutes=6)


@pytest.fixture
def settings(stream_settings: Settings) -> Settings:
    """Stream settings with this test's own actions topic and nothing delivered to platforms."""
    return stream_settings.with_overrides(
        ops=stream_settings.ops.model_copy(update={"actions_topic": f"{stream_settings.app_id}.actions"}),
        responders=stream_settings.responders.model_copy(update={"deliver": False}),
    )


async def record_actions(settings: Settings, *actions: StaffAction) -> None:
    """Produce actions the way the operations API does (edge.actions.KafkaActionSink)."""
    sink = KafkaActionSink(settings.bootstrap_servers, settings.ops.actions_topic, partitions=settings.partitions)
    await sink.start()
    try:
        for action in actions:
            await sink.record(action)
    finally:
        await sink.stop()


def claim(member: str | None, at: datetime = CLAIMED_AT) -> StaffAction:
    if member is None:  # what no writer can build any more: a claim without a member, as raw JSON
        return UnreadableClaim(at)
    return action_record(action="claim", conversation=CONVERSATION, member=member, by=f"link:{member}",
                         via="link", at=at, link_token=f"token-{member}")


class UnreadableClaim:
    """A claim record without a member, as a writer of before the typed records could produce it."""

    def __init__(self, at: datetime) -> None:
        self.key = CONVERSATION.encode()
        self._at = at

    def to_json(self) -> bytes:
        return orjson.dumps({"action_id": "claim:link:x", "action": "claim", "conversation": CONVERSATION,
                             "event_id": None, "member": None, "by": "link:None", "via": "link",
                             "at": self._at.isoformat(timespec="seconds")})


def changelog(app) -> str:
    return app.conversations.changelog_topic.get_topic_name()


def state_of(app) -> ConversationState:
    return ConversationState.from_bytes(app.conversations[CONVERSATION.encode()])


@pytest.mark.broker
class TestActionsAgent:
    async def test_claim_records_the_claimer_and_time_on_the_state(self, settings) -> None:
        """A claim for a decided conversation shows in its table state, the rest of the state intact."""
        async with running_worker(settings, load_coverage(EXAMPLE_COVERAGE), reconcile=False) as app:
            await send(settings, (CONVERSATION.encode(), event("fb:m_a1", MONDAY_EVENING), []))
            await read_until(settings, changelog(app), 1)
            await record_actions(settings, claim("marta"))
            await read_until(settings, changelog(app), 2)
            state = state_of(app)
        expected = ("care-it", "marta", int(CLAIMED_AT.timestamp()), int(MONDAY_EVENING.timestamp()))
        assert expected == (state.team, state.claimed_by, state.claimed_at, state.customer_at)

    async def test_answered_marks_the_conversation_answered(self, settings) -> None:
        """An answered action sets the conversation's status to answered."""
        answered = action_record(action="answered", conversation=CONVERSATION, member="marta", by="ops:anna",
                                 via="api", at=CLAIMED_AT)
        async with running_worker(settings, load_coverage(EXAMPLE_COVERAGE), reconcile=False) as app:
            await send(settings, (CONVERSATION.encode(), event("fb:m_a2", MONDAY_EVENING), []))
            await read_until(settings, changelog(app), 1)
            await record_actions(settings, answered)
            await read_until(settings, changelog(app), 2)
            assert "answered" == state_of(app).status

    async def test_unreadable_action_is_dead_lettered_and_the_next_applied(self, settings) -> None:
        """A claim without a member goes to the dead letters; the agent applies the following claim."""
        async with running_worker(settings, load_coverage(EXAMPLE_COVERAGE), reconcile=False) as app:
            await record_actions(settings, claim(None), claim("luca"))
            [letter_record] = await read_until(settings, settings.dead_letter_topic, 1)
            await read_until(settings, changelog(app), 1)
            state = state_of(app)
        letter = DeadLetter.from_json(letter_record.value)
        expected = ("invalid action: a claim needs a member", settings.ops.actions_topic, "luca")
        assert expected == (letter.reason, letter.topic, state.claimed_by)


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
