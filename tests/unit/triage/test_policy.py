"""Tests for triage.policy: one event and its conversation's state in, one decision out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from records.wire import AckRequest, Decision, Notify
from schedules import Coverage
from tests.support.policy_fixtures import (
    MONDAY_EVENING,
    MONDAY_OPEN,
    SUNDAY,
    event,
    event_data,
    example_coverage,
    local,
    small_coverage,
)
from triage.policy import Triage, TriageResult
from triage.state import ConversationState

# Conversations that differ only by the author's fame, at instants of every mode.
FAME_TIMES = (MONDAY_OPEN, MONDAY_EVENING, SUNDAY, "2026-12-25 10:00", "2026-11-28 12:00")
FAME_TEXTS = ("Il mio ordine non è arrivato", "Carta clonata, aiuto!", "")


@pytest.fixture(scope="module")
def triage() -> Triage:
    return Triage(example_coverage())


def decide_in_turn(triage: Triage, *raws: bytes) -> list[TriageResult]:
    """Decide events one after the other in one conversation, storing each new state."""
    state: ConversationState | None = None
    outcomes = []
    for raw in raws:
        outcome = triage.decide(raw, state)
        outcomes.append(outcome)
        state = outcome.state or state
    return outcomes


def summary(outcome: TriageResult) -> dict[str, Any]:
    decision = outcome.decision
    return {
        "action": decision.action,
        "mode": decision.mode,
        "route_to": decision.route_to,
        "acked": decision.ack is not None,
        "ack_suppressed": decision.ack_suppressed,
        "ack_sent": outcome.ack is not None,
        "route_sent": None if outcome.route is None else outcome.route.action,
    }


def expect(action: str, mode: str, route_to: list[str] | None = None, *, acked: bool, suppressed: str | None = None, route_sent: str | None = None) -> dict[str, Any]:
    return {
        "action": action,
        "mode": mode,
        "route_to": route_to or [],
        "acked": acked,
        "ack_suppressed": suppressed,
        "ack_sent": acked,
        "route_sent": route_sent,
    }


class TestTriageModes:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(event(MONDAY_OPEN), expect("queue", "open", acked=False), id="open_queue_no_ack"),
            pytest.param(event(MONDAY_EVENING), expect("route", "reduced", ["marta"], acked=True, route_sent="route"), id="reduced_route_on_call"),
            pytest.param(event(SUNDAY), expect("queue", "closed", acked=True), id="closed_queue_with_ack"),
            pytest.param(event("2026-12-08 11:00"), expect("queue", "closed", acked=True), id="holiday_closed"),
            pytest.param(event("2026-11-27 21:00"), expect("queue", "open", acked=False), id="override_open_black_friday"),
            pytest.param(event(SUNDAY, text="Mi hanno clonato la carta: carta clonata!"), expect("page", "closed", ["marta"], acked=True, route_sent="page"), id="closed_urgent_page"),
            pytest.param(event(MONDAY_EVENING, text="Il sito non funziona"), expect("page", "reduced", ["marta"], acked=True, route_sent="page"), id="reduced_urgent_page"),
            pytest.param(event(MONDAY_OPEN, text="Truffa sul conto!"), expect("page", "open", ["marta"], acked=False, route_sent="page"), id="open_urgent_page_whatever_the_mode"),
            pytest.param(event(MONDAY_EVENING, kind="agent_reply", author={"id": "marta"}), expect("ignore", "reduced", acked=False), id="agent_reply_ignore"),
        ],
    )
    def test_action_by_mode(self, triage: Triage, raw: bytes, expected: dict[str, Any]) -> None:
        """The mode at the event's own `at` decides queue/route/page; urgency pages on-call staff."""
        assert expected == summary(triage.decide(raw, None))

    @pytest.mark.parametrize(
        ("coverage", "raw", "expected", "reason_part"),
        [
            pytest.param(
                small_coverage("      reduced_staff: [bruno]\n", on_call=False),
                event(MONDAY_EVENING, account="desk.facebook"),
                expect("route", "reduced", ["bruno"], acked=True, route_sent="route"),
                "reduced staff: bruno",
                id="reduced_falls_back_to_reduced_staff",
            ),
            pytest.param(
                small_coverage("      reduced_staff: [bruno]\n", on_call=False),
                event(MONDAY_EVENING, account="desk.facebook", text="danger!"),
                expect("page", "reduced", ["bruno"], acked=True, route_sent="page"),
                "urgent (safety: danger); paging reduced staff: bruno",
                id="reduced_urgent_pages_reduced_staff",
            ),
            pytest.param(
                small_coverage(on_call=False),
                event(MONDAY_EVENING, account="desk.facebook"),
                expect("queue", "reduced", acked=True),
                "nobody is on call; queued for the handover",
                id="reduced_nobody_queue_with_ack",
            ),
            pytest.param(
                small_coverage(on_call=False),
                event(SUNDAY, account="desk.facebook", text="There is a gas leak"),
                expect("queue", "closed", acked=True),
                "urgent (safety: gas leak) but nobody is on call; queued for the handover",
                id="closed_urgent_nobody_queue",
            ),
            pytest.param(
                small_coverage("      ack_when_open: true\n"),
                event(MONDAY_OPEN, account="desk.facebook"),
                expect("queue", "open", acked=True),
                "open hours 09:00-19:00; queued for the team's inbox",
                id="ack_when_open",
            ),
        ],
    )
    def test_team_options(self, coverage: Coverage, raw: bytes, expected: dict[str, Any], reason_part: str) -> None:
        """reduced_staff, an empty rotation and ack_when_open change who gets the message and whether it is acknowledged."""
        outcome = Triage(coverage).decide(raw, None)
        assert (expected, True) == (summary(outcome), reason_part in outcome.decision.reason)

    @pytest.mark.parametrize(
        ("raw", "reason", "next_open"),
        [
            pytest.param(
                event(MONDAY_EVENING), "reduced hours 19:00-24:00; on call: marta", "2026-11-24T09:00:00+01:00", id="reduced"
            ),
            pytest.param(
                event("2026-12-25 10:00"),
                "closed (override: Natale) until lunedì 28 dicembre alle 09:00; queued for the handover",
                "2026-12-28T09:00:00+01:00",
                id="closed_override_natale",
            ),
            pytest.param(event(MONDAY_OPEN), "open hours 09:00-19:00; queued for the team's inbox", "2026-11-23T10:00:00+01:00", id="open_next_open_is_now"),
        ],
    )
    def test_reason_and_next_open(self, triage: Triage, raw: bytes, reason: str, next_open: str) -> None:
        """The reason says the mode, its stretch or the next opening, and where the message went; next_open is in the form of README: Command line."""
        decision = triage.decide(raw, None).decision
        assert (reason, next_open) == (decision.reason, decision.next_open)

    def test_reason_names_the_holiday(self, triage: Triage) -> None:
        """On a public holiday the reason names it, as the coverage engine does, and the next opening."""
        holiday = triage.coverage.teams["care-it"].at(local("2026-12-08 11:00")).note
        decision = triage.decide(event("2026-12-08 11:00"), None).decision
        expected = f"closed (holiday: {holiday}) until mercoledì 9 dicembre alle 09:00; queued for the handover"
        assert (expected, "2026-12-09T09:00:00+01:00") == (decision.reason, decision.next_open)


class TestTriageSuppression:
    @pytest.mark.parametrize(
        ("first", "second", "expected"),
        [
            pytest.param(
                event(MONDAY_EVENING),
                event("2026-11-23 22:30", id="fb:m_2"),
                expect("route", "reduced", ["marta"], acked=False, suppressed="duplicate"),
                id="repeat_within_cooldown_no_ack_no_new_route",
            ),
            pytest.param(
                event("2026-11-28 19:00"),
                event(SUNDAY, id="fb:m_2"),
                expect("queue", "closed", acked=True),
                id="repeat_after_cooldown_acked_again",
            ),
            pytest.param(
                event("2026-11-23 22:10", id="fb:staff_1", kind="agent_reply", author={"id": "marta"}),
                event(MONDAY_EVENING, id="fb:m_2"),
                expect("route", "reduced", ["marta"], acked=False, suppressed="agent_active", route_sent="route"),
                id="staff_replied_recently_agent_active",
            ),
            pytest.param(
                event("2026-11-23 21:00", id="fb:staff_1", kind="agent_reply", author={"id": "marta"}),
                event(MONDAY_EVENING, id="fb:m_2"),
                expect("route", "reduced", ["marta"], acked=True, route_sent="route"),
                id="staff_replied_long_ago_acked",
            ),
            pytest.param(
                event(MONDAY_EVENING),
                event("2026-11-23 22:30", id="fb:m_2", text="Ora mi hanno pure clonato la carta: carta clonata"),
                expect("page", "reduced", ["marta"], acked=False, suppressed="duplicate", route_sent="page"),
                id="page_never_suppressed",
            ),
        ],
    )
    def test_second_message(self, triage: Triage, first: bytes, second: bytes, expected: dict[str, Any]) -> None:
        """Repeated messages get no new acknowledgment or route; staff activity suppresses the acknowledgment; pages always go."""
        assert expected == summary(decide_in_turn(triage, first, second)[-1])

    def test_a_mode_that_never_changes_reads_as_such(self) -> None:
        """A team reduced around the clock: the reason names no stretch it does not have."""
        coverage = small_coverage(hours='      daily: ["00:00-24:00 reduced"]\n')
        reason = Triage(coverage).decide(event(MONDAY_EVENING, account="desk.facebook"), None).decision.reason
        assert reason.startswith("reduced at all hours (no change within 400 days); on call: anna"), reason

    def test_repeat_reason_says_why(self, triage: Triage) -> None:
        """The reason of a repeated message says the route is held and the acknowledgment withheld."""
        last = decide_in_turn(triage, event(MONDAY_EVENING), event("2026-11-23 22:30", id="fb:m_2"))[-1]
        expected = (
            "reduced hours 19:00-24:00; on call: marta; already routed to marta and unanswered: no new route; "
            "no acknowledgment: already acknowledged within 12 h"
        )
        assert expected == last.decision.reason

    def test_answered_conversation_is_routed_again(self) -> None:
        """After staff answered, a new message is routed again (acknowledgment still held while staff is active)."""
        triage = Triage(small_coverage("      agent_active: 5m\n"))
        outcomes = decide_in_turn(
            triage,
            event(MONDAY_EVENING, account="desk.facebook"),
            event("2026-11-23 22:20", account="desk.facebook", id="fb:staff", kind="agent_reply", author={"id": "anna"}),
            event("2026-11-23 22:40", account="desk.facebook", id="fb:m_3"),
        )
        assert expect("route", "reduced", ["anna"], acked=False, suppressed="duplicate", route_sent="route") == summary(outcomes[-1])

    def test_staff_reply_marks_conversation_answered(self, triage: Triage) -> None:
        """An agent_reply stores who answered and when, and marks the conversation answered."""
        outcome = triage.decide(event(MONDAY_EVENING, kind="agent_reply", author={"id": "marta"}), None)
        assert ConversationState(
            team="care-it", status="answered", staff_at=int(local(MONDAY_EVENING).timestamp()), staff_id="marta"
        ) == replace(outcome.state, recent=())


class TestTriageIdempotency:
    @pytest.mark.parametrize(
        "raws",
        [
            pytest.param((event(MONDAY_EVENING),), id="reduced_route_ack"),
            pytest.param((event(SUNDAY),), id="closed_ack"),
            pytest.param((event(SUNDAY, text="pericolo!"),), id="closed_page"),
            pytest.param((event(MONDAY_EVENING), event("2026-11-23 22:30", id="fb:m_2")), id="duplicate_route_held"),
            pytest.param(
                (event("2026-11-23 22:10", id="fb:s", kind="agent_reply", author={"id": "marta"}), event(MONDAY_EVENING)),
                id="agent_active",
            ),
            pytest.param((event(MONDAY_EVENING, kind="agent_reply", author={"id": "marta"}),), id="agent_reply"),
        ],
    )
    def test_redelivery_repeats_decision_and_outbox_records(self, triage: Triage, raws: tuple[bytes, ...]) -> None:
        """The same event decided again with the state it produced gets the same decision, no
        state change, and the very same acknowledgment and route requests (same ids: the
        delivery ledger sends each once), in case a crash lost them after the state was stored."""
        first = decide_in_turn(triage, *raws)[-1]
        again = triage.decide(raws[-1], first.state)
        assert (first.decision, None, first.ack, first.route) == (again.decision, again.state, again.ack, again.route)

    def test_redelivery_survives_the_wire_form(self, triage: Triage) -> None:
        """Redelivery is recognised after the state went through to_bytes/from_bytes."""
        first = triage.decide(event(MONDAY_EVENING), None)
        stored = ConversationState.from_bytes(first.state.to_bytes())
        again = triage.decide(event(MONDAY_EVENING), stored)
        assert (first.decision, None, first.ack) == (again.decision, again.state, again.ack)


class TestTriageRecords:
    def test_ack_request(self, triage: Triage) -> None:
        """The acknowledgment request is keyed by event id, addressed to the author, quoting the platform message id."""
        ack = triage.decide(event(MONDAY_EVENING), None).ack
        assert (
            "ack:fb:m_abc123", "fb:m_abc123", "care-it", "PSID_222", "m_abc123", "dm", "fb:PAGE_111:PSID_222",
            "2026-11-23T22:14:00+01:00", "2026-11-24T22:14:00+01:00", "it", False,
        ) == (
            ack.ack_id, ack.event_id, ack.team, ack.recipient, ack.reply_to, ack.kind, ack.conversation,
            ack.at, ack.window_closes, ack.lang, ack.public,
        )

    @pytest.mark.parametrize(
        ("event_id", "channel", "account", "reply_to", "window"),
        [
            pytest.param("fb:m_1", "facebook", "acme.it.facebook", "m_1", True, id="facebook"),
            pytest.param("ig:aWdfZ", "instagram", "acme.it.instagram", "aWdfZ", True, id="instagram"),
            pytest.param("wa:wamid.HBg", "whatsapp", "acme.it.whatsapp", "wamid.HBg", True, id="whatsapp"),
            pytest.param("x:1790000000000000000", "x", "acme_it_x", "1790000000000000000", False, id="x"),
            pytest.param("tg:6123456789:4182", "telegram", "acme_it_x", "4182", False, id="telegram"),
            pytest.param("crm-17", "generic", "acme_it_x", "crm-17", False, id="generic_without_prefix"),
        ],
    )
    def test_reply_to_and_window_by_channel(self, triage: Triage, event_id: str, channel: str, account: str, reply_to: str, window: bool) -> None:
        """reply_to drops the channel prefix; Meta channels close their reply window 24 h after the message."""
        ack = triage.decide(event(MONDAY_EVENING, id=event_id, channel=channel, account=account), None).ack
        assert (reply_to, "2026-11-24T22:14:00+01:00" if window else None) == (ack.reply_to, ack.window_closes)

    @pytest.mark.parametrize(
        ("changes", "recipient", "reply_to"),
        [
            pytest.param({"id": "tg:6123456789:4182", "kind": "dm", "conversation": "tg:acme_help_bot:6123456789",
                          "author": {"id": "6123456789", "name": "Kim"}}, "6123456789", "4182", id="telegram_private"),
            pytest.param({"id": "tg:-1001234567890:42", "kind": "mention", "conversation": "tg:acme_help_bot:-1001234567890",
                          "author": {"id": "6123456789", "name": "Kim"}}, "-1001234567890", "42", id="telegram_group"),
        ],
    )
    def test_telegram_reply_goes_to_the_chat(self, changes: dict[str, Any], recipient: str, reply_to: str) -> None:
        """A Telegram acknowledgment goes to the chat the customer wrote in, quoting the bare message id."""
        raw = event(MONDAY_EVENING, channel="telegram", account="desk_tg", **changes)
        outcome = Triage(small_coverage()).decide(raw, None)
        assert (recipient, reply_to) == (outcome.ack.recipient, outcome.ack.reply_to)

    def test_route_request(self, triage: Triage) -> None:
        """The route request names the staff with their notify URIs, and carries the decision's reason."""
        route = triage.decide(event(MONDAY_EVENING), None).route
        assert (
            "route:fb:m_abc123", "route",
            [Notify("marta", "Marta Rossi", ["slack:https://hooks.slack.example/T1/B1/abc", "mailto:marta@example.com"])],
            "reduced hours 19:00-24:00; on call: marta", "2026-11-24T09:00:00+01:00",
        ) == (route.route_id, route.action, route.to, route.reason, route.next_open)

    @pytest.mark.parametrize(
        ("coverage_triage", "changes", "expected"),
        [
            pytest.param("", {"kind": "mention", "channel": "x", "account": "desk_x"}, (True, True), id="mention_public_reply"),
            pytest.param("", {"kind": "comment"}, (True, True), id="comment_public_reply"),
            pytest.param("      public_reply: false\n", {"kind": "comment"}, (True, False), id="facebook_comment_private_reply"),
            pytest.param("      public_reply: false\n", {"kind": "comment", "channel": "instagram", "account": "desk.instagram"}, (True, False), id="instagram_comment_private_reply"),
            pytest.param("      public_reply: false\n", {"kind": "mention", "channel": "x", "account": "desk_x"}, (False, None), id="x_mention_no_private_path"),
        ],
    )
    def test_public_kinds(self, coverage_triage: str, changes: dict[str, Any], expected: tuple[bool, bool | None]) -> None:
        """Mentions and comments get the public acknowledgment, or a private one where the platform allows it."""
        raw = event(MONDAY_EVENING, **{"account": "desk.facebook", **changes})
        ack = Triage(small_coverage(coverage_triage)).decide(raw, None).decision.ack
        assert expected == (ack is not None, None if ack is None else ack.public)

    def test_public_ack_repeats_nothing_personal(self, triage: Triage) -> None:
        """A public acknowledgment contains neither the author's name nor any of their words."""
        raw = event(MONDAY_EVENING, kind="comment", author={"id": "u1", "name": "Zebedeo Quartararo"}, text="Ordine 99123 perso")
        text = triage.decide(raw, None).decision.ack.text
        assert [] == [word for word in ("Zebedeo", "Quartararo", "99123", "Ordine", "perso") if word in text]

    def test_customer_text_is_never_a_template(self, triage: Triage) -> None:
        """Template syntax in the customer's text is not evaluated anywhere in the outcome."""
        outcome = triage.decide(event(MONDAY_EVENING, text="{{ 7*7 }} {% for x in range(3) %}x{% endfor %}"), None)
        assert ("49" in outcome.decision.ack.text, "{{ 7*7 }} {% for x in range(3) %}x{% endfor %}") == (False, outcome.route.text)

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            pytest.param({"lang": "en"}, "en", id="event_language"),
            pytest.param({"lang": "pt"}, "it", id="unknown_language_team_locale"),
            pytest.param({"account": "acme.us.facebook", "at": "2026-11-23T23:00:00-05:00"}, "en", id="team_locale_en"),
        ],
    )
    def test_ack_language(self, triage: Triage, changes: dict[str, Any], expected: str) -> None:
        """The acknowledgment speaks the event's language when there is a template, else the team's."""
        raw = orjson.dumps({**event_data(MONDAY_EVENING), **changes})
        assert expected == triage.decide(raw, None).decision.ack.lang


class TestTriageRejects:
    @pytest.mark.parametrize(
        ("raw", "event_id", "reason"),
        [
            pytest.param(
                orjson.dumps({**event_data(), "at": "2026-11-23T21:14:05"}),
                "fb:m_abc123",
                "invalid event: at: needs a UTC offset or Z, e.g. 2026-11-23T21:14:05Z",
                id="naive_at",
            ),
            pytest.param(
                orjson.dumps({k: v for k, v in event_data().items() if k != "conversation"}),
                "fb:m_abc123",
                "invalid event: conversation: Field required",
                id="missing_conversation",
            ),
            pytest.param(b"{not json", None, "invalid event: not JSON", id="not_json"),
            pytest.param(
                event(text="a" * 10_001),
                "fb:m_abc123",
                "invalid event: text: String should have at most 10000 characters",
                id="text_over_10000_characters",
            ),
            pytest.param(
                orjson.dumps({**event_data(), "crm_notes": "x" * 70_000}),
                "fb:m_abc123",
                "invalid event: event of 70",
                id="event_over_64_kib",
            ),
            pytest.param(
                event(account="acme.fr.facebook"),
                "fb:m_abc123",
                "unknown account 'acme.fr.facebook': no team lists it under accounts",
                id="unknown_account",
            ),
        ],
    )
    def test_reject(self, triage: Triage, raw: bytes, event_id: str, reason: str) -> None:
        """Invalid events and unknown accounts are rejected with a reason naming the field or the account."""
        outcome = triage.decide(raw, None)
        expected = Decision(event_id, None, None, "reject", [], None, None, None, outcome.decision.reason)
        assert (expected, True, None, None, None) == (
            outcome.decision, outcome.decision.reason.startswith(reason), outcome.state, outcome.ack, outcome.route,
        )

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(event(), "fb:PAGE_111:PSID_222", id="event"),
            pytest.param(b"{not json", None, id="not_json"),
            pytest.param(b'{"conversation": 7}', None, id="not_a_string"),
        ],
    )
    def test_conversation_key(self, triage: Triage, raw: bytes, expected: str | None) -> None:
        """conversation_key reads the table key from the raw event, None when it has none."""
        assert expected == triage.conversation_key(raw)


class TestTriageFame:
    @settings(max_examples=60, deadline=None)
    @given(
        followers=st.tuples(st.one_of(st.none(), st.integers(0, 10**9)), st.one_of(st.none(), st.integers(0, 10**9))),
        at=st.sampled_from(FAME_TIMES),
        text=st.sampled_from(FAME_TEXTS),
        kind=st.sampled_from(("dm", "comment", "mention")),
        prior=st.booleans(),
    )
    def test_followers_never_change_the_outcome(
        self, triage: Triage, followers: tuple[int | None, int | None], at: str, text: str, kind: str, prior: bool
    ) -> None:
        """Two events that differ only in author.followers get equal decisions, acknowledgments and routes."""
        outcomes = []
        for count in followers:
            author = {"id": "PSID_222", "name": "Ana Lopez", "followers": count}
            state = None
            if prior:
                state = triage.decide(event(local(at) - timedelta(minutes=5), id="fb:m_0", author=author), None).state
            outcome = triage.decide(event(at, text=text, kind=kind, author=author), state)
            outcomes.append(outcome)
        assert outcomes[0] == outcomes[1]


PUBLIC_REPLY_OFF = "      public_reply: false\n"
FB_COMMENT = {"id": "fb:POST_9_CMT_7", "kind": "comment", "account": "desk.facebook", "author": {"id": "USER_333", "name": "Ana Lopez"}}
IG_COMMENT = {**FB_COMMENT, "id": "ig:17870913679156914", "channel": "instagram", "account": "desk.instagram"}


class TestTriageCommentReplies:
    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param(FB_COMMENT, id="facebook_comment"),
            pytest.param(IG_COMMENT, id="instagram_comment"),
            pytest.param({**FB_COMMENT, "lang": "en"}, id="in_the_event_language"),
            pytest.param({**FB_COMMENT, "text": "Carta clonata, aiuto!"}, id="urgent_comment_paged"),
        ],
    )
    def test_public_reply_carries_the_private_reply(self, changes: dict[str, Any]) -> None:
        """A Facebook/Instagram comment answered in public also carries the dm text the team would send privately."""
        public = Triage(small_coverage()).decide(event(MONDAY_EVENING, **changes), None)
        private_only = Triage(small_coverage(PUBLIC_REPLY_OFF)).decide(event(MONDAY_EVENING, **changes), None)
        assert (True, public.decision.ack.text, public.decision.ack.lang) == (
            public.ack.public, public.ack.text, public.ack.lang,
        )
        assert private_only.decision.ack.text == public.ack.private_text
        assert public.decision.ack.text != public.ack.private_text

    @pytest.mark.parametrize(
        ("team_triage", "changes"),
        [
            pytest.param("", {}, id="dm"),
            pytest.param("", {"kind": "mention", "channel": "x", "account": "desk_x"}, id="x_mention"),
            pytest.param("", {"kind": "mention", "account": "desk.facebook"}, id="facebook_mention"),
            pytest.param(PUBLIC_REPLY_OFF, FB_COMMENT, id="public_reply_off"),
        ],
    )
    def test_no_private_text_otherwise(self, team_triage: str, changes: dict[str, Any]) -> None:
        """Only a Facebook/Instagram comment answered in public has a private_text."""
        raw = event(MONDAY_EVENING, **{"account": "desk.facebook", **changes})
        ack = Triage(small_coverage(team_triage)).decide(raw, None).ack
        assert (True, None) == (ack is not None, ack.private_text)

    def test_decision_record_keeps_its_shape(self) -> None:
        """The private reply never reaches the decision record: its ack is the public text, with the keys of README: Decisions."""
        decision = Triage(small_coverage()).decide(event(MONDAY_EVENING, **FB_COMMENT), None).decision
        assert ({"text", "lang", "public"}, True) == (set(decision.to_dict()["ack"]), decision.ack.public)

    def test_same_event_same_replies(self) -> None:
        """Deciding the same event again, from the same state, gives the same decision and the same replies."""
        triage = Triage(small_coverage())
        first = triage.decide(event(MONDAY_EVENING, **FB_COMMENT), None)
        again = triage.decide(event(MONDAY_EVENING, **FB_COMMENT), None)
        redelivered = triage.decide(event(MONDAY_EVENING, **FB_COMMENT), first.state)
        assert (first.decision, first.ack) == (again.decision, again.ack)
        assert (first.decision, first.ack) == (redelivered.decision, redelivered.ack)

    @pytest.mark.parametrize(
        ("drop", "expected"),
        [
            pytest.param(False, "private", id="round_trip"),
            pytest.param(True, None, id="record_written_before_the_field"),
        ],
    )
    def test_wire_form(self, drop: bool, expected: str | None) -> None:
        """private_text survives the wire form, and an older record without it loads with None."""
        ack = replace(Triage(small_coverage()).decide(event(MONDAY_EVENING, **FB_COMMENT), None).ack, private_text="private")
        data = orjson.loads(ack.to_json())
        if drop:
            del data["private_text"]
        assert expected == AckRequest.from_json(orjson.dumps(data)).private_text


class TestTriageReplyWindowStamp:
    @pytest.mark.parametrize(
        ("changes", "days"),
        [
            pytest.param({"account": "desk.facebook"}, 1, id="messenger_dm_24h"),
            pytest.param(FB_COMMENT, 7, id="facebook_comment_private_reply_7d"),
            pytest.param(IG_COMMENT, 7, id="instagram_comment_private_reply_7d"),
        ],
    )
    def test_window_closes_follows_the_reply_allowed(self, changes: dict[str, Any], days: int) -> None:
        """A direct message may be answered for 24 h, a comment's one private reply for 7 days."""
        outcome = Triage(small_coverage()).decide(event(MONDAY_EVENING, **changes), None)
        sent = datetime.fromisoformat(outcome.ack.at)
        assert timedelta(days=days) == datetime.fromisoformat(outcome.ack.window_closes) - sent
