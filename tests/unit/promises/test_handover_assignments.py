"""A handover's desk conversations: the wire form of their ``desk`` block and the assignment rule."""

from __future__ import annotations

import dataclasses

import orjson

from promises.routes import handover_assignments
from records.wire import HandoverItem, Notify, RouteRequest

DESK = {"kind": "chatwoot", "account": 7, "inbox": 12, "conversation": 4821}


def item(conversation: str, desk: dict[str, object] | None = None, urgent: bool = False) -> HandoverItem:
    return HandoverItem(conversation=conversation, channel="facebook", kind="dm", account=None, author_name=None,
                        text=None, urgent=urgent, waiting_since=None, waited_seconds=60, promised=None,
                        reply_by=None, link=None, action="queue", desk=desk)


def digest(items: list[HandoverItem], to: list[Notify]) -> RouteRequest:
    return RouteRequest(route_id="handover:t:1:p0", event_id="handover:t:1", team="t", action="route", mode="open",
                        to=to, channel="generic", account="", conversation="", author_name=None, text="",
                        at="2026-11-30T09:00:00+01:00", next_open=None, handover=tuple(items), partitions=(0,))


LUCIA, PABLO, MARTA = (Notify("lucia", "Lucía", [], 31), Notify("pablo", "Pablo", [], 32),
                       Notify("marta", "Marta", []))


def test_desk_on_the_wire_only_when_set_and_read_back() -> None:
    route = digest([item("a", DESK), item("b")], [LUCIA])
    wire = orjson.loads(route.to_json())["extra"]["handover"]
    assert ["desk" in entry for entry in wire] == [True, False]
    assert route.handover == RouteRequest.from_json(route.to_json()).handover


def test_round_robin_over_the_members_with_an_agent_in_the_digest_order() -> None:
    items = [item("a", DESK, urgent=True), item("b"), item("c", DESK), item("d", DESK)]
    found = handover_assignments(digest(items, [MARTA, LUCIA, PABLO]))
    assert [("a", 1, "lucia"), ("c", 3, "pablo"), ("d", 4, "lucia")] == [
        (a.item.conversation, a.position, a.member.member) for a in found]
    assert {4} == {a.total for a in found}


def test_nobody_with_an_agent_assigns_nothing() -> None:
    assert [] == handover_assignments(digest([item("a", DESK)], [MARTA]))
    assert [] == handover_assignments(dataclasses.replace(digest([item("a")], [LUCIA])))


# -- hold mode: the release of a held inbox's new conversation in open hours ------------------

HELD = """\
teams:
  care-es:
    timezone: Europe/Madrid
    chatwoot: {account: 7, inboxes: [12], hold: HOLD}
    hours:
      mon-fri: ["09:00-18:00 open", "18:00-22:00 reduced"]
"""


def test_release_only_while_open_pending_waiting_and_held() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from promises.routes import release_due, release_route
    from schedules import load_coverage_text
    from triage.state import ConversationState

    held = load_coverage_text(HELD.replace("HOLD", "true")).teams["care-es"]
    plain = load_coverage_text(HELD.replace("HOLD", "false")).teams["care-es"]
    open_at = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Europe/Madrid"))
    evening = datetime(2026, 11, 30, 19, 0, tzinfo=ZoneInfo("Europe/Madrid"))
    written = int(open_at.timestamp()) - 30
    state = ConversationState(team="care-es", customer_at=written,
                              desk={**DESK, "status": "pending", "inbox": 12})
    assert release_due(state, held, open_at)
    assert not release_due(state, plain, open_at)
    assert not release_due(state, held, evening)  # reduced, not routed (yet): held
    assert release_due(dataclasses.replace(state, routed_at=written), held, evening)  # routed: the on-call sees it
    assert not release_due(dataclasses.replace(state, desk={**DESK, "status": "open", "inbox": 12}), held, open_at)
    assert not release_due(dataclasses.replace(state, desk={**DESK, "status": "pending", "inbox": 13}), held, open_at)
    assert not release_due(dataclasses.replace(state, staff_at=written + 5), held, open_at)  # answered
    route = release_route(state, held, "cw:7:4821", open_at)
    assert (f"release:cw:7:4821:{written}", [], "2026-11-30T10:00:00+01:00") == (route.route_id, route.to, route.at)
