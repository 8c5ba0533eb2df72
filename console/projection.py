"""The queue's view of all partitions, kept in the web process (docs/console.md "The queue").

The workers keep each conversation's state and pending escalation in tables split by
partition; no process holds all of them, and ``offhours ingest`` holds none. The
console therefore builds its own copy from the topics every process can read, with the
worker's own pure code:

- each event of the events topic goes through :meth:`triage.policy.Triage.decide` with
  the conversation's state and the partition's recent first responses, exactly as the
  triage agent calls it; the state gets the handover facts the agent adds (channel, the
  promise, urgency) and a route starts a pending escalation
  (:func:`promises.routes.pending_from_route`), unless the conversation is claimed;
- a claim or an answered mark of the actions topic updates the state
  (:meth:`ConversationState.claimed`, :meth:`ConversationState.answered`) and ends the
  pending escalation, as the actions agent does;
- an escalation step on the routes topic (``esc:<event>:<n>``) is recorded as sent
  (:meth:`PendingEscalation.after_sent`), so the next step's time is
  :func:`promises.rules.escalation_due` of what the workers really sent.

Pure: records in, state out; no Kafka here (:mod:`console.feed` reads the topics).
The decisions are made with the coverage in force now, so a conversation decided
before an override changed differs from the worker's decision until its next message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from promises.routes import pending_from_route
from promises.rules import FirstResponseStats, PendingEscalation
from promises.sla import FirstResponse
from records.actions import ActionInvalid, Answered, Claim, decode_action
from records.wire import RouteRequest, raw_field
from schedules import Coverage
from triage.policy import Triage, TriageResult, handover_facts
from triage.state import ConversationState

MESSAGES_KEPT = 200_000
"""How many customer messages the heatmap remembers (time and team only)."""

RESPONSES_KEPT = 100_000
"""How many first responses the reply-times page remembers."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One first response, with what the customer had been promised (None: no promise)."""

    response: FirstResponse
    promised_by: datetime | None

    @property
    def kept(self) -> bool | None:
        """Whether the reply came by the promised time; None without a promise."""
        if self.promised_by is None:
            return None
        return self.response.replied_at <= self.promised_by


class Projection:
    """Conversations, pending escalations and first responses of every partition."""

    def __init__(self, coverage: Callable[[], Coverage | None]) -> None:
        self._coverage = coverage
        self._triage: Triage | None = None
        self.states: dict[str, ConversationState] = {}
        self.pending: dict[str, PendingEscalation] = {}
        self.stats: dict[int, FirstResponseStats] = {}
        self.answers: deque[Answer] = deque(maxlen=RESPONSES_KEPT)
        self.messages: deque[tuple[str, float]] = deque(maxlen=MESSAGES_KEPT)
        self.applied = 0

    def triage(self) -> Triage | None:
        """The policy of the coverage in force (rebuilt when the coverage changes)."""
        coverage = self._coverage()
        if coverage is None:
            return None
        if self._triage is None or self._triage.coverage is not coverage:
            self._triage = Triage(coverage)
        return self._triage

    def apply_event(self, raw: bytes, partition: int = 0) -> TriageResult | None:
        """One record of the events topic (``partition`` keys its recent first responses)."""
        triage = self.triage()
        if triage is None:
            return None
        key = triage.conversation_key(raw)
        before = self.states.get(key) if key is not None else None
        stats = self.stats.get(partition)
        outcome = triage.decide(raw, before, stats)
        self.applied += 1
        decision = outcome.decision
        if key is not None and outcome.state is not None:
            state = handover_facts(outcome.state, outcome)
            self.states[key] = state
            route = outcome.route
            if route is not None and state.claimed_by is None:
                current = self.pending.get(key)
                if current is None or current.event_id != route.event_id:
                    self.pending[key] = pending_from_route(route)
            if decision.action in ("queue", "route", "page") and decision.team is not None:
                at = raw_field(raw, "at")
                if at is not None:
                    try:
                        self.messages.append((decision.team, datetime.fromisoformat(at).timestamp()))
                    except ValueError:
                        pass
        response = outcome.first_response
        if response is not None:
            self.stats[partition] = (stats or FirstResponseStats()).record(
                response.team, response.mode, response.customer_at, response.replied_at
            )
            reply_by = before.promise()[0] if before is not None else None
            promised = None if reply_by is None else datetime.fromtimestamp(reply_by, response.replied_at.tzinfo)
            self.answers.append(Answer(response, promised))
        return outcome

    def apply_action(self, key: bytes | None, raw: bytes) -> None:
        """One record of the actions topic: claims and answered marks; ticks are the workers' business."""
        if key is None:
            return
        try:
            action = decode_action(raw)
        except ActionInvalid:
            return
        if not isinstance(action, Claim | Answered):
            return
        conversation = key.decode("utf-8", "replace")
        state = self.states.get(conversation) or ConversationState(team="")
        self.pending.pop(conversation, None)
        if isinstance(action, Claim):
            self.states[conversation] = state.claimed(action.member or "", action.seconds)
        else:
            self.states[conversation] = state.answered()
        self.applied += 1

    def apply_route(self, raw: bytes) -> None:
        """One record of the routes topic: an escalation step sent moves the next one on."""
        try:
            route = RouteRequest.from_json(raw)
        except Exception:
            return
        if route.escalation is None or not route.route_id.startswith("esc:"):
            return
        pending = self.pending.get(route.conversation)
        if pending is None or pending.event_id != route.event_id:
            return
        step = route.route_id.rpartition(":")[2]
        if step.isdigit():
            self.pending[route.conversation] = replace(pending, sent=max(pending.sent, int(step) + 1))
        self.applied += 1

    def promise_stats(self) -> FirstResponseStats:
        """The partitions' recent first responses together (what a promise is measured from)."""
        merged: dict[tuple[str, str], tuple[tuple[int, int], ...]] = {}
        for stats in self.stats.values():
            for key, samples in stats.samples.items():
                merged[key] = tuple(sorted((*merged.get(key, ()), *samples)))
        return FirstResponseStats(samples=merged)

    def open_conversations(self) -> Iterator[tuple[str, ConversationState]]:
        """Conversations where a customer waits for a person."""
        for conversation, state in self.states.items():
            if state.waiting():
                yield conversation, state

    def forget_before(self, instant: datetime, retention: timedelta) -> int:
        """Drop conversations whose last activity is older than ``retention`` before ``instant``."""
        limit = (instant - retention).timestamp()
        old = [key for key, state in self.states.items() if (state.last_activity() or 0) < limit]
        for key in old:
            del self.states[key]
            self.pending.pop(key, None)
        return len(old)
