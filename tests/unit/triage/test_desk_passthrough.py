"""An event's ``desk`` block travels with what the triage decides about it (issue 18).

A Chatwoot event (tests/support/chatwoot.py: care-es, Europe/Madrid, reduced Mon-Fri
18:00-22:00, pablo on call the week of 23 November) becomes an acknowledgment and a route
that carry its ``desk`` block, the decision's mode, the promise and each member's
``chatwoot_agent``; the route's pending escalation keeps the block, and so does every
escalation step and the page of a failed acknowledgment. Records without the block read
and write as before.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from promises.routes import pending_from_route
from promises.rules import PendingEscalation
from promises.ticks import (
    escalation_on_tick,
    reminder_on_tick,
    reminders_due,
    window_on_tick,
)
from records.actions import EscalationTick, ReminderTick, WindowTick
from records.wire import AckRequest, Notify, RouteRequest
from responders.fakes.samples import ack_request
from streams.outbox import failed_ack_route, unmasked
from tests.support.chatwoot import (
    ACCOUNT,
    CONVERSATION,
    FACEBOOK_INBOX,
    LUCIA,
    MESSAGE,
    PABLO,
    coverage,
)
from triage.policy import Triage

DESK = {"kind": "chatwoot", "account": ACCOUNT, "inbox": FACEBOOK_INBOX, "conversation": CONVERSATION,
        "message": MESSAGE, "can_reply": True, "status": "open", "assignee": None, "contact": 88213}
EVENING = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # Monday 21:30 in Madrid: reduced, pablo on call


def desk_event(**changes: object) -> bytes:
    event = {
        "id": f"cw:{ACCOUNT}:{MESSAGE}", "account": f"chatwoot:{ACCOUNT}/{FACEBOOK_INBOX}", "channel": "facebook",
        "kind": "dm", "conversation": f"cw:{ACCOUNT}:{CONVERSATION}",
        "author": {"id": "88213", "name": "Ana López", "followers": None},
        "text": "Hola, mi pedido 4471 no ha llegado", "lang": None, "at": EVENING.isoformat(),
        "in_reply_to": None, "desk": DESK, **changes,
    }
    return orjson.dumps(event)


def test_ack_and_route_carry_the_desk_block() -> None:
    outcome = Triage(coverage()).decide(desk_event(), None)
    assert ("route", ["pablo"]) == (outcome.decision.action, outcome.decision.route_to)
    assert (DESK, "reduced") == (outcome.ack.desk, outcome.ack.mode)
    route = outcome.route
    assert DESK == route.desk
    assert [Notify("pablo", "Pablo Ruiz", ["mailto:pablo@example.com"], chatwoot_agent=PABLO)] == route.to
    assert outcome.decision.ack.text == route.promised


def test_the_block_survives_the_wire() -> None:
    outcome = Triage(coverage()).decide(desk_event(), None)
    assert outcome.ack == AckRequest.from_json(outcome.ack.to_json())
    route = RouteRequest.from_json(outcome.route.to_json())
    assert (DESK, PABLO) == (route.desk, route.to[0].chatwoot_agent)
    assert orjson.loads(outcome.route.to_json())["desk"] == DESK


def test_a_platform_event_writes_no_desk_keys() -> None:
    """Without a desk block the records carry no ``desk`` key; records written before it read."""
    raw = orjson.loads(desk_event())
    del raw["desk"]
    outcome = Triage(coverage()).decide(orjson.dumps(raw), None)
    ack, route = orjson.loads(outcome.ack.to_json()), orjson.loads(outcome.route.to_json())
    assert (False, False, "reduced") == ("desk" in ack, "desk" in route, ack["mode"])
    old = orjson.loads(ack_request().to_json())
    assert ack_request() == AckRequest.from_json(orjson.dumps(old)) and "desk" not in old and "mode" not in old


def test_escalation_steps_keep_the_block() -> None:
    """The pending escalation stores the block; the step (to lucia, the next on call) carries it and her agent."""
    outcome = Triage(coverage()).decide(desk_event(), None)
    pending = PendingEscalation.from_bytes(pending_from_route(outcome.route).to_bytes())
    assert DESK == pending.desk
    tick = EscalationTick(conversation=pending.conversation, event_id=pending.event_id, sent=0,
                          at=EVENING + timedelta(minutes=16))
    step = escalation_on_tick(tick, pending, coverage().teams).route
    assert (f"esc:cw:{ACCOUNT}:{MESSAGE}:0", DESK) == (step.route_id, step.desk)
    assert [("lucia", LUCIA)] == [(n.member, n.chatwoot_agent) for n in step.to]


def test_rows_without_the_block_read() -> None:
    row = orjson.loads(pending_from_route(Triage(coverage()).decide(desk_event(), None).route).to_bytes())
    del row["desk"]
    assert None is PendingEscalation.from_bytes(orjson.dumps(row)).desk


def test_failed_ack_page_keeps_the_block_and_agents() -> None:
    ack = Triage(coverage()).decide(desk_event(), None).ack
    pablo = Notify("pablo", "Pablo Ruiz", ["mailto:pablo@example.com"], chatwoot_agent=PABLO)
    page = failed_ack_route(ack, [pablo], "reduced", "x")
    assert (DESK, "page") == (page.desk, page.action)
    back = unmasked(RouteRequest.from_json(page.to_json()), lambda team, member: ["mailto:pablo@example.com"])
    assert [pablo] == back.to


def test_the_promise_rules_routes_act_in_the_desk_too() -> None:
    """The conversation's state keeps the block: a reply-window route (Friday night: the window
    closes Saturday, the team opens Monday) and a reply-by reminder carry it."""
    friday = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # 21:00 in Madrid, reduced
    team = coverage().teams["care-es"]
    state = Triage(coverage()).decide(desk_event(at=friday.isoformat()), None).state
    state = replace(type(state).from_bytes(state.to_bytes()), channel="facebook")  # the triage agent adds it
    assert DESK == state.desk
    conversation = f"cw:{ACCOUNT}:{CONVERSATION}"
    window = window_on_tick(WindowTick(conversation=conversation, customer_at=state.customer_at,
                                       at=friday + timedelta(hours=22)), state, coverage().teams)
    assert (DESK, DESK) == (window.route.desk, window.escalation.desk)
    later = friday + timedelta(hours=2)
    [reminder] = reminders_due(conversation, state, team, later)
    result = reminder_on_tick(ReminderTick(conversation=conversation, reminder_id=reminder.id, at=later),
                              state, coverage().teams)
    assert DESK == result.route.desk
