"""The pure promise-keeping rules: escalation, reply windows, handover, follow-through, SLA."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promises.rules import (
    BacklogItem,
    FirstResponseStats,
    FollowUp,
    PendingEscalation,
    escalation_due,
    handover_digest,
    needs_early_route,
    next_escalation,
    next_on_call,
    next_opening,
    openings,
    overdue,
    promised_reply_within,
    reply_mechanism,
)
from records.platforms import window_closes
from records.wire import Notify
from schedules import Team
from tests.support.promises import coverage_of, rome
from tests.support.promises_rules import DST_TEAM

LUCA = Notify("luca", "Luca Bianchi", ["mailto:luca@example.com"])


GIULIA = Notify("giulia", "Giulia Verdi", ["webhook:https://pager.example/hook"])


ANNA = Notify("anna", "Anna Neri", ["mailto:anna@example.com"])


SLACK = Notify("", "escalation channel", ["slack:https://hooks.slack.example/T1/B9/esc"])


def pending(mode: str = "reduced", sent: int = 0, claimed: bool = False) -> PendingEscalation:
    """A message routed to marta on Monday 2026-11-23 at 21:00 (marta is on call that week)."""
    return PendingEscalation("fb:m1", "care-it", "fb:P:U", mode, rome("2026-11-23 21:00"), ("marta",), sent, claimed)


class TestNextEscalation:
    @pytest.mark.parametrize(
        ("escalation", "now", "expected"),
        [
            pytest.param(pending(), "2026-11-23 21:14", None, id="not_yet_due"),
            pytest.param(pending(), "2026-11-23 21:15", ("esc:fb:m1:0", (LUCA,)), id="first_step_next_on_call"),
            pytest.param(pending(sent=1), "2026-11-23 21:30", ("esc:fb:m1:1", (ANNA,)), id="second_step_lead"),
            pytest.param(pending(sent=2), "2026-11-23 21:45", ("esc:fb:m1:2", (SLACK,)), id="third_step_channel"),
            pytest.param(pending(sent=3), "2026-11-23 22:00", ("esc:fb:m1:3", (GIULIA,)), id="second_walk_next_member"),
            pytest.param(pending(sent=6), "2026-11-24 08:00", None, id="chain_walked_repeat_times"),
            pytest.param(pending(claimed=True), "2026-11-23 21:15", None, id="claimed_stops"),
            pytest.param(pending("closed"), "2026-11-23 21:10", ("esc:fb:m1:0", (LUCA,)), id="closed_chain_after_10m"),
            pytest.param(pending("closed", sent=2), "2026-11-24 08:00", None, id="closed_chain_once"),
            pytest.param(pending(sent=1), "2026-11-24 08:00", ("esc:fb:m1:1", (ANNA,)), id="late_sweep_sends_one_step"),
        ],
    )
    def test_step_due(self, care_it: Team, escalation: PendingEscalation, now: str, expected: tuple | None) -> None:
        """The step due now, its deterministic id and whom it notifies."""
        step = next_escalation(escalation, care_it, rome(now))
        assert expected == (None if step is None else (step.id, step.notify))

    def test_same_state_same_step(self, care_it: Team) -> None:
        """Asked twice (a redelivery, a second sweep), the same step comes back with the same id."""
        now = rome("2026-11-23 21:20")
        assert next_escalation(pending(), care_it, now) == next_escalation(pending(), care_it, now)

    def test_sent_step_is_not_sent_again(self, care_it: Team) -> None:
        """After a step is recorded as sent the next step is due one ``after`` later, not now."""
        escalation = pending()
        step = next_escalation(escalation, care_it, rome("2026-11-23 21:15"))
        assert step is not None
        later = escalation.after_sent(step)
        assert next_escalation(later, care_it, rome("2026-11-23 21:15")) is None
        assert rome("2026-11-23 21:30") == escalation_due(later, care_it)

    def test_unreachable_link_is_skipped(self) -> None:
        """Without a rotation, next_on_call reaches nobody and the lead is notified instead."""
        team = coverage_of(
            """
            teams:
              solo:
                timezone: Europe/Rome
                hours: {daily: ["09:00-18:00 open"]}
                staff: {anna: {notify: ["mailto:anna@example.com"]}}
                escalation:
                  closed: {after: 10m, chain: [next_on_call, lead:anna]}
            """
        ).teams["solo"]
        step = next_escalation(replace(pending("closed"), team="solo"), team, rome("2026-11-23 21:10"))
        assert ("esc:fb:m1:1", (Notify("anna", "anna", ["mailto:anna@example.com"]),)) == (step.id, step.notify)

    def test_pending_round_trips(self) -> None:
        """A pending escalation reads back from its table bytes unchanged."""
        escalation = pending(sent=2)
        assert escalation == PendingEscalation.from_bytes(escalation.to_bytes())

    @pytest.mark.parametrize(
        ("now", "walk", "expected"),
        [
            pytest.param("2026-11-23 21:00", 0, "luca", id="week_of_marta"),
            pytest.param("2026-11-23 21:00", 1, "giulia", id="second_walk"),
            pytest.param("2026-11-30 08:59", 0, "luca", id="just_before_handoff"),
            pytest.param("2026-11-30 09:00", 0, "giulia", id="at_handoff"),
        ],
    )
    def test_next_on_call(self, care_it: Team, now: str, walk: int, expected: str) -> None:
        """The member after the one on call, read from the rotation's upcoming shifts."""
        assert expected == next_on_call(care_it, rome(now), walk)


class TestReplyWindow:
    @pytest.mark.parametrize(
        ("channel", "human_agent", "expected"),
        [
            pytest.param("facebook", False, rome("2026-11-24 21:00"), id="facebook_24h"),
            pytest.param("instagram", False, rome("2026-11-24 21:00"), id="instagram_24h"),
            pytest.param("whatsapp", False, rome("2026-11-24 21:00"), id="whatsapp_24h"),
            pytest.param("facebook", True, rome("2026-11-30 21:00"), id="facebook_human_agent_7d"),
            pytest.param("whatsapp", True, rome("2026-11-24 21:00"), id="whatsapp_no_human_agent"),
            pytest.param("x", False, None, id="x_no_window"),
            pytest.param("telegram", False, None, id="telegram_no_window"),
        ],
    )
    def test_deadline(self, channel: str, human_agent: bool, expected: datetime | None) -> None:
        """When the platform stops accepting a free-form (or human-agent) reply."""
        assert expected == window_closes(channel, "dm", rome("2026-11-23 21:00"), human_agent=human_agent)

    @pytest.mark.parametrize(
        ("channel", "kind", "expected"),
        [
            pytest.param("facebook", "comment", rome("2026-11-30 21:00"), id="facebook_comment_private_reply_7d"),
            pytest.param("instagram", "comment", rome("2026-11-30 21:00"), id="instagram_comment_private_reply_7d"),
            pytest.param("facebook", "mention", rome("2026-11-24 21:00"), id="facebook_mention_24h"),
            pytest.param("x", "mention", None, id="x_mention_no_window"),
            pytest.param("facebook", None, rome("2026-11-24 21:00"), id="kind_not_recorded_read_as_dm"),
        ],
    )
    def test_deadline_by_kind(self, channel: str, kind: str | None, expected: datetime | None) -> None:
        """A comment's one private reply is allowed for 7 days; the sweep and the acknowledgment agree."""
        assert expected == window_closes(channel, kind, rome("2026-11-23 21:00"))

    @pytest.mark.parametrize(
        ("channel", "at", "expected"),
        [
            pytest.param("facebook", "2026-11-24 20:59", "free_form", id="inside_window"),
            pytest.param("facebook", "2026-11-24 21:00", "human_agent", id="facebook_after_24h"),
            pytest.param("instagram", "2026-11-30 20:59", "human_agent", id="instagram_within_7d"),
            pytest.param("facebook", "2026-11-30 21:00", "none", id="facebook_after_7d"),
            pytest.param("whatsapp", "2026-11-24 21:00", "template", id="whatsapp_after_24h"),
            pytest.param("x", "2026-12-31 21:00", "free_form", id="x_any_time"),
        ],
    )
    def test_mechanism(self, channel: str, at: str, expected: str) -> None:
        """How the human reply must be sent, depending on the time since the customer wrote."""
        assert expected == reply_mechanism(channel, "dm", rome("2026-11-23 21:00"), rome(at))

    @pytest.mark.parametrize(
        ("at", "expected"),
        [
            pytest.param("2026-11-30 20:59", "free_form", id="private_reply_within_7d"),
            pytest.param("2026-11-30 21:00", "public_reply", id="public_reply_after_7d"),
        ],
    )
    def test_comment_mechanism(self, at: str, expected: str) -> None:
        """A comment is answered privately for 7 days, then only in public under it."""
        assert expected == reply_mechanism("facebook", "comment", rome("2026-11-23 21:00"), rome(at))

    @pytest.mark.parametrize(
        ("channel", "customer_at", "now", "expected"),
        [
            pytest.param("whatsapp", "2026-11-28 20:00", "2026-11-29 17:59", False, id="weekend_before_margin"),
            pytest.param("whatsapp", "2026-11-28 20:00", "2026-11-29 18:00", True, id="weekend_at_margin"),
            pytest.param("facebook", "2026-11-28 20:00", "2026-11-29 19:59", True, id="weekend_late_sweep"),
            pytest.param("whatsapp", "2026-11-28 20:00", "2026-11-29 20:00", False, id="window_closed"),
            pytest.param("x", "2026-11-28 20:00", "2026-11-29 18:00", False, id="no_window"),
            pytest.param("facebook", "2026-11-23 21:00", "2026-11-24 08:00", False, id="opens_before_window_closes"),
            pytest.param("facebook", "2026-11-23 12:00", "2026-11-24 10:00", False, id="open_now"),
        ],
    )
    def test_needs_early_route(self, care_it: Team, channel: str, customer_at: str, now: str, expected: bool) -> None:
        """Route before the window closes (by the margin) when the next opening is too late."""
        actual = needs_early_route(care_it, channel, "dm", rome(customer_at), rome(now), timedelta(hours=2))
        assert expected == actual

    def test_a_comment_is_not_routed_at_24h(self, care_it: Team) -> None:
        """A Facebook comment's window is its 7-day private reply: no early route a day after it."""
        actual = needs_early_route(care_it, "facebook", "comment", rome("2026-11-28 20:00"), rome("2026-11-29 19:59"), timedelta(hours=2))
        assert actual is False


class TestOpenings:
    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            pytest.param("2026-03-28 00:00", "2026-03-29 00:00", ["2026-03-28T02:30:00+01:00"], id="winter_day"),
            pytest.param("2026-03-29 00:00", "2026-03-30 00:00", ["2026-03-29T03:00:00+02:00"], id="spring_skip_hour"),
            pytest.param("2026-10-25 00:00", "2026-10-26 00:00", ["2026-10-25T02:30:00+02:00"], id="fall_back_first_occurrence"),
            pytest.param("2026-03-28 02:30", "2026-03-28 03:00", ["2026-03-28T02:30:00+01:00"], id="start_is_inclusive"),
            pytest.param("2026-03-28 02:31", "2026-03-29 00:00", [], id="open_at_start_is_no_transition"),
        ],
    )
    def test_dst(self, start: str, end: str, expected: list[str]) -> None:
        """Each transition to open, at the instant the engine's daylight-saving policy gives."""
        team = coverage_of(DST_TEAM).teams["night"]
        assert expected == [o.isoformat() for o in openings(team, rome(start), rome(end))]

    def test_week_of_care_it(self, care_it: Team) -> None:
        """Monday to Friday at 09:00; Saturday is reduced only, Sunday closed."""
        expected = [rome(f"2026-11-{day} 09:00") for day in (23, 24, 25, 26, 27)]
        assert expected == openings(care_it, rome("2026-11-23 00:00"), rome("2026-11-30 00:00"))

    def test_override_that_extends_open_is_no_second_opening(self) -> None:
        """An open override adjacent to open hours merges with them: one opening, not two."""
        team = coverage_of(
            """
            teams:
              shop:
                timezone: Europe/Rome
                hours: {daily: ["09:00-19:00 open"]}
                overrides: [{from: "2026-11-27 19:00", to: "2026-11-28 02:00", mode: open}]
            """
        ).teams["shop"]
        expected = [rome("2026-11-27 09:00"), rome("2026-11-28 09:00")]
        assert expected == openings(team, rome("2026-11-27 00:00"), rome("2026-11-29 00:00"))

    @pytest.mark.parametrize(
        ("after", "expected"),
        [
            pytest.param("2026-11-23 21:00", "2026-11-24T09:00:00+01:00", id="from_reduced"),
            pytest.param("2026-11-24 09:00", "2026-11-25T09:00:00+01:00", id="at_opening_gives_next"),
            pytest.param("2026-11-27 12:00", "2026-11-30T09:00:00+01:00", id="over_the_weekend"),
        ],
    )
    def test_next_opening(self, care_it: Team, after: str, expected: str) -> None:
        """The first transition to open strictly after the instant."""
        assert expected == next_opening(care_it, rome(after)).isoformat()

    def test_next_opening_across_spring_forward(self) -> None:
        """Planned the day before, the next opening is the end of the spring-forward gap."""
        team = coverage_of(DST_TEAM).teams["night"]
        assert "2026-03-29T03:00:00+02:00" == next_opening(team, rome("2026-03-28 12:00")).isoformat()


def item(conversation: str, waiting_since: str, urgent: bool = False, followers: int | None = None) -> BacklogItem:
    return BacklogItem(conversation, "facebook", rome(waiting_since), urgent, "Ti rispondiamo entro le 10:00", rome("2026-11-24 10:00"), None, followers)


class TestHandoverDigest:
    def test_urgent_first_then_longest_waiting(self, care_it: Team) -> None:
        """Urgent conversations come first; within each group the longest waiting first."""
        backlog = [
            item("c-late", "2026-11-23 23:00"),
            item("c-urgent-late", "2026-11-23 22:00", urgent=True),
            item("c-early", "2026-11-23 19:30", followers=1_000_000),
            item("c-urgent-early", "2026-11-23 20:00", urgent=True),
        ]
        digest = handover_digest(care_it, backlog, rome("2026-11-24 09:00"))
        assert ["c-urgent-early", "c-urgent-late", "c-early", "c-late"] == [i.conversation for i in digest.items]

    def test_item_says_what_was_promised(self, care_it: Team) -> None:
        """Each item: how long it waited, what the customer was promised, no placeholder for a link
        (the notifier adds the claim link), and queue."""
        digest = handover_digest(care_it, [item("fb:P:U", "2026-11-23 21:00")], rome("2026-11-24 09:00"))
        first = digest.items[0]
        expected = (timedelta(hours=12), "Ti rispondiamo entro le 10:00", rome("2026-11-24 10:00"), None, "queue")
        assert expected == (first.waited, first.promised, first.reply_by, first.link, first.action)
        assert f"handover:care-it:{int(rome('2026-11-24 09:00').timestamp())}" == digest.id

    @given(
        st.lists(
            st.tuples(st.booleans(), st.integers(0, 48 * 60), st.integers(0, 10**9), st.integers(0, 10**9)),
            max_size=12,
        )
    )
    def test_order_never_depends_on_followers(self, entries: list[tuple[bool, int, int, int]]) -> None:
        """Two backlogs that differ only in followers give the same digest."""
        team = coverage_of("teams: {t: {timezone: Europe/Rome}}").teams["t"]
        start = rome("2026-11-22 09:00")

        def backlog(which: int) -> list[BacklogItem]:
            return [
                BacklogItem(f"c{index}", "x", start + timedelta(minutes=minutes), urgent, followers=counts[which])
                for index, (urgent, minutes, *counts) in enumerate(entries)
            ]

        opening = rome("2026-11-24 09:00")
        assert handover_digest(team, backlog(0), opening) == handover_digest(team, backlog(1), opening)


def follow_up(**changes: object) -> FollowUp:
    """Acknowledged Monday 21:00 with a promise of 21:40; nobody replied yet."""
    base = FollowUp("fb:P:U", "care-it", "fb:m1", "reduced", rome("2026-11-23 21:00"), rome("2026-11-23 21:40"))
    return replace(base, **changes)


REPLY_BY_ID = f"remind:reply_by:fb:P:U:{int(rome('2026-11-23 21:40').timestamp())}"


CLAIM_ID = f"remind:claim:fb:P:U:{int(rome('2026-11-23 21:35').timestamp())}"


class TestOverdue:
    @pytest.mark.parametrize(
        ("conversation", "now", "expected"),
        [
            pytest.param(follow_up(), "2026-11-23 21:39", [], id="promise_not_yet_due"),
            pytest.param(
                follow_up(), "2026-11-23 21:40",
                [(REPLY_BY_ID, "reply_by", ("marta",), True)], id="promise_broken",
            ),
            pytest.param(follow_up(staff_replied_at=rome("2026-11-23 21:30")), "2026-11-23 22:00", [], id="answered_in_time"),
            pytest.param(
                follow_up(staff_replied_at=rome("2026-11-23 21:50")), "2026-11-23 22:00",
                [(REPLY_BY_ID, "reply_by", ("marta",), True)], id="answered_late_is_a_breach",
            ),
            pytest.param(follow_up(sent=frozenset({REPLY_BY_ID})), "2026-11-23 22:00", [], id="already_reminded"),
            pytest.param(follow_up(answered=True), "2026-11-23 22:00", [], id="answered"),
            pytest.param(
                follow_up(reply_by=None, claimed_by="luca", claimed_at=rome("2026-11-23 21:05")), "2026-11-23 21:35",
                [(CLAIM_ID, "claim", ("luca",), False)], id="claim_not_answered",
            ),
            pytest.param(
                follow_up(reply_by=None, claimed_by="luca", claimed_at=rome("2026-11-23 21:05")), "2026-11-23 21:34", [],
                id="claim_within_limit",
            ),
            pytest.param(follow_up(team="gone"), "2026-11-23 22:00", [], id="team_left_coverage"),
        ],
    )
    def test_reminders(self, care_it: Team, conversation: FollowUp, now: str, expected: list[tuple]) -> None:
        """Reminders due now: broken promises (with a breach) and unanswered claims."""
        actual = overdue([conversation], {"care-it": care_it}, rome(now))
        assert expected == [(r.id, r.kind, r.to, r.breach) for r in actual]

    def test_unanswered_claim_starts_escalation(self, care_it: Team) -> None:
        """The claim reminder carries an escalation that follows the chain after the reminder."""
        conversation = follow_up(reply_by=None, claimed_by="luca", claimed_at=rome("2026-11-23 21:05"))
        (reminder,) = overdue([conversation], {"care-it": care_it}, rome("2026-11-23 21:35"))
        expected = PendingEscalation("fb:m1", "care-it", "fb:P:U", "reduced", rome("2026-11-23 21:35"), ("luca",))
        assert expected == reminder.escalation
        assert rome("2026-11-23 21:50") == escalation_due(reminder.escalation, care_it)


def stats_of(team: str, mode: str, minutes: list[int], start: datetime) -> FirstResponseStats:
    stats = FirstResponseStats()
    for index, minute in enumerate(minutes):
        customer_at = start + timedelta(hours=index)
        stats = stats.record(team, mode, customer_at, customer_at + timedelta(minutes=minute))
    return stats


class TestFirstResponse:
    def test_percentiles_and_breaches(self) -> None:
        """Nearest-rank percentiles, and breaches counted against the target."""
        stats = stats_of("care-it", "reduced", list(range(1, 101)), rome("2026-11-01 00:00"))
        summary = stats.summary("care-it", "reduced", target=timedelta(minutes=60))
        expected = (100, timedelta(minutes=50), timedelta(minutes=90), timedelta(minutes=99), 40)
        assert expected == (summary.count, summary.p50, summary.p90, summary.p99, summary.breaches)

    def test_teams_and_modes_are_apart(self) -> None:
        """Samples of one team and mode never count for another."""
        stats = stats_of("care-it", "reduced", [10, 20], rome("2026-11-01 00:00"))
        assert 0 == stats.summary("care-it", "closed").count

    def test_bounded_by_limit_and_window(self) -> None:
        """Only the latest samples within the window are kept."""
        stats = replace(FirstResponseStats(), limit=3, window=timedelta(days=1))
        start = rome("2026-11-01 00:00")
        for hours in (0, 30, 31, 32, 33):
            stats = stats.record("t", "open", start + timedelta(hours=hours), start + timedelta(hours=hours, minutes=hours))
        assert [31 * 60, 32 * 60, 33 * 60] == stats.durations("t", "open")

    def test_round_trips(self) -> None:
        """Stats read back from their table bytes unchanged."""
        stats = stats_of("care-it", "reduced", [10, 20, 30], rome("2026-11-01 00:00"))
        assert stats == FirstResponseStats.from_bytes(stats.to_bytes())

    @pytest.mark.parametrize(
        ("samples", "mode", "at", "expected"),
        [
            pytest.param([20] * 5, "reduced", "2026-11-23 21:00", timedelta(minutes=40), id="too_few_samples_configured"),
            pytest.param([20] * 30, "reduced", "2026-11-23 21:00", timedelta(minutes=20), id="measured_median"),
            pytest.param([180] * 30, "reduced", "2026-11-23 21:00", timedelta(hours=1), id="capped_by_target"),
            pytest.param([20] * 30, "closed", "2026-11-28 20:00", timedelta(hours=37), id="never_before_next_opening"),
        ],
    )
    def test_promised_reply_within(self, care_it: Team, samples: list[int], mode: str, at: str, expected: timedelta) -> None:
        """The promise: recent median, capped by the target, never before someone is there."""
        stats = stats_of("care-it", mode, samples, rome("2026-11-01 00:00"))
        actual = promised_reply_within(stats, care_it, mode, care_it.at(rome(at)), timedelta(minutes=40))
        assert expected == actual

