"""The private notes offhours leaves in a care desk (responders.desk), by kind of route."""

from __future__ import annotations

import dataclasses

from records.wire import EscalationNote, Notify, ReminderNote, WindowNote
from responders.desk import assignee_of, route_note, window_note
from responders.fakes.samples import ack_request, route_request

MARTA = Notify("marta", "Marta Rossi", ["mailto:marta@example.com"])
PABLO = Notify("pablo", "Pablo Ruiz", ["mailto:pablo@example.com"], chatwoot_agent=32)


def route(**changes: object):
    return dataclasses.replace(route_request([], to=[MARTA, PABLO]), **changes)


def test_route_names_staff_reason_and_promise() -> None:
    note = route_note(route(promised="Ti rispondiamo."))
    assert note.splitlines() == [
        "offhours routed this conversation to Marta Rossi, Pablo Ruiz (reduced hours)",
        "Why: reduced hours 19:00-24:00; on call: marta",
        "The customer was promised: Ti rispondiamo.",
    ]


def test_page_without_acknowledgment_says_so() -> None:
    lines = route_note(route(action="page")).splitlines()
    assert (lines[0].startswith("offhours paged"), lines[-1]) == (True, "The customer got no acknowledgment from offhours.")


def test_failed_acknowledgment_quotes_what_was_not_delivered() -> None:
    assert "Not delivered to the customer: Ciao" in route_note(route(action="page", ack_id="ack:1", ack_text="Ciao"))


def test_reminder_and_window_routes_quote_their_promise() -> None:
    reminder = route_note(route(reminder=ReminderNote("reply_by", True, "Ciao")))
    window = route_note(route(window=WindowNote("2026-11-24T21:14:00+01:00", "human_agent", None)))
    assert (reminder.splitlines()[0], reminder.splitlines()[-1]) == (
        "offhours reminded Marta Rossi, Pablo Ruiz of this conversation (reduced hours)", "The customer was promised: Ciao")
    assert "before its reply window closes" in window and "acknowledgment" not in window


def test_escalation_step_says_how_long_nobody_claimed_it() -> None:
    step = route(to=[PABLO], at="2026-11-23T21:44:00+01:00",
                 escalation=EscalationNote(1, "lead:pablo", "2026-11-23T21:14:00+01:00"))
    assert "escalated: nobody claimed it in 30 minutes; now with Pablo Ruiz." == route_note(step)


def test_the_first_member_with_an_agent_is_assigned() -> None:
    assert (("Pablo Ruiz", 32), None) == (assignee_of(route()), assignee_of(route(to=[MARTA])))


def test_window_note_says_why_and_what() -> None:
    note = window_note(ack_request(), "can_reply false")
    assert "can_reply false" in note and note.endswith(ack_request().text)
