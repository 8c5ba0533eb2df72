"""On-call actions (claim, answered) applied to the conversation state by the worker."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest

from edge.actions import action_record
from records.actions import StaffAction
from records.wire import DeadLetter
from schedules import load_coverage
from streams.worker import running_worker
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.streams_actions import record_actions
from tests.support.streams_app import MONDAY_EVENING, event, read_until, send
from triage.state import ConversationState

CONVERSATION = "fb:PAGE_111:PSID_222"


CLAIMED_AT = MONDAY_EVENING + timedelta(minutes=6)


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

