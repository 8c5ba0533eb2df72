"""The first-response SLA (promises/sla.py): the definition, the figures and their rendering.

Instants are written in the team's zone (Europe/Rome, America/New_York); the test
process runs in Asia/Kolkata, so nothing may depend on the machine's zone.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from promises.sla import (
    FirstResponse,
    ResponseTracker,
    SlaRow,
    first_responses,
    format_duration,
    render_json_lines,
    render_table,
    row_json,
    sla_rows,
)
from records.wire import SocialEvent, parse_event
from schedules import Coverage, load_coverage_text
from streams.metrics import Metrics, observe_first_response
from tests.support.sla import COVERAGE

ROME = ZoneInfo("Europe/Rome")


@pytest.fixture(scope="module")
def coverage() -> Coverage:
    """Two teams: care-it (Rome, with targets) and care-us (New York, no targets)."""
    return load_coverage_text(textwrap.dedent(COVERAGE), filename="test.yaml")


def rome(text: str) -> datetime:
    """``"2026-11-23 21:14"`` as an aware instant in Europe/Rome."""
    return datetime.fromisoformat(text).replace(tzinfo=ROME)


def event(
    id: str,
    kind: str,
    at: datetime,
    conversation: str = "fb:P:c1",
    account: str = "acme.it.facebook",
) -> SocialEvent:
    """An event (README: Events) with only what the SLA reads filled in meaningfully."""
    return parse_event(
        {
            "id": id, "account": account, "channel": "facebook", "kind": kind,
            "conversation": conversation, "author": {"id": "someone"}, "text": "…",
            "at": at.isoformat(), "in_reply_to": None,
        }
    )


def waits(responses: list[FirstResponse]) -> list[tuple[datetime, datetime]]:
    return [(r.customer_at, r.replied_at) for r in responses]


def response(team: str, mode: str, customer_at: datetime, waited: timedelta, conversation: str = "c") -> FirstResponse:
    return FirstResponse(team, mode, conversation, customer_at, customer_at + waited)  # type: ignore[arg-type]


class TestFirstResponses:
    """Which replies are first responses, and from when they count."""

    @pytest.mark.parametrize(
        ("events", "expected"),
        [
            pytest.param(
                [("m1", "dm", "10:00"), ("m2", "dm", "10:30"), ("m3", "comment", "10:40"), ("r1", "agent_reply", "11:00")],
                [("10:00", "11:00")],
                id="several_messages_count_from_the_first",
            ),
            pytest.param(
                [("m1", "dm", "10:00"), ("r1", "agent_reply", "10:20"), ("r2", "agent_reply", "10:40")],
                [("10:00", "10:20")],
                id="second_reply_without_new_message_is_not_first",
            ),
            pytest.param(
                [("r0", "agent_reply", "09:30"), ("m1", "mention", "10:05"), ("r1", "agent_reply", "10:35")],
                [("10:05", "10:35")],
                id="reply_with_nothing_waiting_is_ignored",
            ),
            pytest.param(
                [("m1", "dm", "10:00"), ("r1", "agent_reply", "10:20"), ("m2", "dm", "11:00"), ("r2", "agent_reply", "12:00")],
                [("10:00", "10:20"), ("11:00", "12:00")],
                id="message_after_a_reply_starts_a_new_wait",
            ),
            pytest.param(
                [("r1", "agent_reply", "11:00"), ("m2", "dm", "10:30"), ("m1", "dm", "10:00")],
                [("10:00", "11:00")],
                id="taken_in_at_order_not_input_order",
            ),
            pytest.param(
                [("m1", "dm", "10:00"), ("m2", "dm", "10:30")],
                [],
                id="unanswered_is_no_response",
            ),
        ],
    )
    def test_first_responses_of_one_conversation(self, coverage, events, expected):
        """A first response answers the messages since the last staff reply and counts from the first of them."""
        day = "2026-11-23 "
        stream = [event(id, kind, rome(day + hhmm)) for id, kind, hhmm in events]
        expected_waits = [(rome(day + start), rome(day + end)) for start, end in expected]
        assert expected_waits == waits(list(first_responses(stream, coverage)))

    @pytest.mark.parametrize(
        ("customer_at", "replied_at", "expected"),
        [
            pytest.param("2026-11-23 10:00", "2026-11-23 10:30", "open", id="weekday_morning_open"),
            pytest.param("2026-11-23 21:00", "2026-11-24 09:30", "reduced", id="evening_answered_next_morning"),
            pytest.param("2026-11-27 20:00", "2026-11-30 09:10", "reduced", id="friday_evening_answered_monday"),
            pytest.param("2026-11-29 11:00", "2026-11-30 09:05", "closed", id="sunday_answered_monday"),
        ],
    )
    def test_mode_is_taken_at_the_customer_message(self, coverage, customer_at, replied_at, expected):
        """The mode of a response is the team's mode when the customer wrote, not when staff replied."""
        stream = [event("m1", "dm", rome(customer_at)), event("r1", "agent_reply", rome(replied_at))]
        assert [expected] == [r.mode for r in first_responses(stream, coverage)]

    @pytest.mark.parametrize(
        ("customer_at", "replied_at", "expected_mode", "expected_waited"),
        [
            pytest.param(
                "2026-03-08T08:30:00-04:00", "2026-03-08T09:00:00-04:00", "open", timedelta(minutes=30),
                id="dst_sunday_morning_open",
            ),
            pytest.param(
                "2026-03-07T07:30:00-05:00", "2026-03-07T08:00:00-05:00", "closed", timedelta(minutes=30),
                id="same_utc_time_day_before_closed",
            ),
            pytest.param(
                "2026-03-08T01:30:00-05:00", "2026-03-08T09:30:00-04:00", "reduced", timedelta(hours=7),
                id="wait_across_spring_forward_is_real_time",
            ),
            pytest.param(
                "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "reduced", timedelta(hours=1),
                id="fall_back_repeated_hour",
            ),
        ],
    )
    def test_daylight_saving_in_a_non_utc_team(self, coverage, customer_at, replied_at, expected_mode, expected_waited):
        """Modes follow the team's wall clock on DST days; waits are real elapsed time."""
        stream = [
            event("m1", "dm", datetime.fromisoformat(customer_at), account="acme.us.facebook"),
            event("r1", "agent_reply", datetime.fromisoformat(replied_at), account="acme.us.facebook"),
        ]
        found = list(first_responses(stream, coverage))
        assert [("care-us", expected_mode, expected_waited)] == [(r.team, r.mode, r.waited) for r in found]

    def test_team_is_the_one_answering_the_account(self, coverage):
        """Each response belongs to the team whose accounts hold the reply's account."""
        stream = [
            event("m1", "dm", rome("2026-11-23 10:00"), "c-it", "acme_it_x"),
            event("m2", "dm", rome("2026-11-23 10:00"), "c-us", "acme.us.facebook"),
            event("r1", "agent_reply", rome("2026-11-23 10:10"), "c-it", "acme_it_x"),
            event("r2", "agent_reply", rome("2026-11-23 10:20"), "c-us", "acme.us.facebook"),
        ]
        expected = [("care-it", "c-it"), ("care-us", "c-us")]
        assert expected == [(r.team, r.conversation) for r in first_responses(stream, coverage)]

    def test_repeated_event_id_counts_once(self, coverage):
        """A reply seen again (same id, later time) is the same message and answers nothing new."""
        tracker = ResponseTracker(coverage)
        for n, item in enumerate(
            [
                event("m1", "dm", rome("2026-11-23 10:00")),
                event("r1", "agent_reply", rome("2026-11-23 10:30")),
                event("m2", "dm", rome("2026-11-23 11:00")),
                event("r1", "agent_reply", rome("2026-11-23 11:10")),
                event("m1", "dm", rome("2026-11-23 10:00")),
                event("r2", "agent_reply", rome("2026-11-23 12:00")),
            ],
            start=1,
        ):
            tracker.add(item, f"line {n}")
        expected = ([(rome("2026-11-23 10:00"), rome("2026-11-23 10:30")), (rome("2026-11-23 11:00"), rome("2026-11-23 12:00"))], 2)
        assert expected == (waits(tracker.responses()), tracker.duplicates)


class TestResponseTracker:
    """Inputs the SLA cannot use are skipped and reported, never fatal."""

    def test_invalid_lines_and_unknown_accounts_are_skipped_with_where(self, coverage):
        """Not JSON, not an event and an account no team answers each give one skip naming the line."""
        tracker = ResponseTracker(coverage)
        good = event("m1", "dm", rome("2026-11-23 10:00"))
        tracker.add_raw(good.to_json(), "line 1")
        tracker.add_raw(b"{not json", "line 2")
        tracker.add_raw(b'{"id": "x"}', "line 3")
        tracker.add_raw(event("m9", "dm", rome("2026-11-23 10:05"), account="acme.fr.telegram").to_json(), "line 4")
        tracker.add_raw(event("r1", "agent_reply", rome("2026-11-23 10:45")).to_json(), "line 5")
        expected = (["line 2", "line 3", "line 4"], [timedelta(minutes=45)])
        assert expected == ([s.where for s in tracker.skipped], [r.waited for r in tracker.responses()])

    def test_skip_says_why(self, coverage):
        """The skip of an unknown account names the account."""
        tracker = ResponseTracker(coverage)
        tracker.add(event("m9", "dm", rome("2026-11-23 10:05"), account="acme.fr.telegram"), "line 4")
        assert ["line 4: account 'acme.fr.telegram' is not under any team's accounts"] == [str(s) for s in tracker.skipped]


class TestFirstResponse:
    """The wait and the breach rule of one response."""

    @pytest.mark.parametrize(
        ("waited", "target", "expected"),
        [
            pytest.param(timedelta(minutes=59), timedelta(hours=1), False, id="faster_than_target"),
            pytest.param(timedelta(hours=1), timedelta(hours=1), False, id="exactly_the_target_is_kept"),
            pytest.param(timedelta(hours=1, seconds=1), timedelta(hours=1), True, id="one_second_late_breaches"),
            pytest.param(timedelta(days=3), None, False, id="no_target_no_breach"),
        ],
    )
    def test_breaches(self, waited, target, expected):
        """A response breaches only when strictly slower than the target."""
        assert expected == response("care-it", "reduced", rome("2026-11-23 21:00"), waited).breaches(target)


class TestSlaRows:
    """Figures per team and mode over a window of customer messages."""

    def test_count_percentiles_breaches_and_target(self, coverage):
        """Median and p90 by nearest rank; breaches against the mode's target."""
        start = rome("2026-11-23 10:00")
        responses = [response("care-it", "open", start, timedelta(minutes=m)) for m in (10, 20, 30, 40, 50, 60, 70, 80, 130, 200)]
        expected = [SlaRow("care-it", "open", 10, timedelta(minutes=50), timedelta(minutes=130), 2, timedelta(hours=2))]
        assert expected == sla_rows(responses, coverage, None, None)

    def test_no_target_counts_no_breach(self, coverage):
        """A team without targets shows none and counts no breach, however slow."""
        responses = [response("care-us", "closed", rome("2026-11-23 10:00"), timedelta(days=2))]
        expected = [SlaRow("care-us", "closed", 1, timedelta(days=2), timedelta(days=2), 0, None)]
        assert expected == sla_rows(responses, coverage)

    def test_sorted_by_team_then_mode(self, coverage):
        """Rows are by team id, then open, reduced, closed; only pairs with responses appear."""
        at = rome("2026-11-23 10:00")
        responses = [
            response("care-us", "open", at, timedelta(minutes=5)),
            response("care-it", "closed", at, timedelta(minutes=5)),
            response("care-it", "open", at, timedelta(minutes=5)),
            response("care-it", "reduced", at, timedelta(minutes=5)),
        ]
        expected = [("care-it", "open"), ("care-it", "reduced"), ("care-it", "closed"), ("care-us", "open")]
        assert expected == [(row.team, row.mode) for row in sla_rows(responses, coverage)]

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            pytest.param(None, None, 3, id="no_window"),
            pytest.param("2026-11-23 10:00", None, 2, id="from_is_inclusive"),
            pytest.param(None, "2026-11-24 10:00", 2, id="to_is_exclusive"),
            pytest.param("2026-11-23 09:00", "2026-11-23 12:00", 1, id="by_customer_time_not_reply_time"),
            pytest.param("2026-12-01 00:00", None, 0, id="empty_window"),
        ],
    )
    def test_window_by_customer_message(self, coverage, start, end, expected):
        """A response is in ``[start, end)`` by when the customer wrote."""
        responses = [
            response("care-it", "open", rome("2026-11-22 23:00"), timedelta(hours=11)),
            response("care-it", "open", rome("2026-11-23 10:00"), timedelta(hours=3)),
            response("care-it", "open", rome("2026-11-24 10:00"), timedelta(minutes=5)),
        ]
        rows = sla_rows(responses, coverage, start and rome(start), end and rome(end))
        assert expected == sum(row.count for row in rows)


class TestRendering:
    """The table and the JSON lines."""

    @pytest.mark.parametrize(
        ("duration", "expected"),
        [
            pytest.param(None, "-", id="none"),
            pytest.param(timedelta(0), "0s", id="zero"),
            pytest.param(timedelta(seconds=45), "45s", id="seconds"),
            pytest.param(timedelta(minutes=42, seconds=59), "42m", id="minutes_truncated"),
            pytest.param(timedelta(hours=1), "1h00m", id="one_hour"),
            pytest.param(timedelta(hours=1, minutes=5), "1h05m", id="hours_minutes"),
            pytest.param(timedelta(days=2, hours=3, minutes=59), "2d03h", id="days_hours"),
        ],
    )
    def test_format_duration(self, duration, expected):
        """Durations read as the largest two units, truncated."""
        assert expected == format_duration(duration)

    def test_table_is_aligned(self):
        """A header then one row per team and mode, columns aligned."""
        rows = [
            SlaRow("care-it", "open", 42, timedelta(minutes=18), timedelta(minutes=55), 0, None),
            SlaRow("care-it", "reduced", 9, timedelta(minutes=34), timedelta(hours=1, minutes=20), 2, timedelta(hours=1)),
        ]
        expected = (
            "team     mode     count  median    p90  target  breaches\n"
            "care-it  open        42     18m    55m       -         0\n"
            "care-it  reduced      9     34m  1h20m   1h00m         2\n"
        )
        assert expected == render_table(rows)

    def test_json_lines_in_seconds(self):
        """One object per row; durations in whole seconds, null when none."""
        rows = [SlaRow("care-us", "closed", 1, timedelta(days=2), timedelta(days=2), 0, None)]
        expected = [{"team": "care-us", "mode": "closed", "count": 1, "median": 172800, "p90": 172800, "target": None, "breaches": 0}]
        lines = [orjson.loads(line) for line in render_json_lines(rows, coverage_version=7).splitlines()]
        assert [{**expected[0], "coverage_version": 7}] == lines
        assert expected[0] == row_json(rows[0])


class TestObserveFirstResponse:
    """The metrics the live pipeline records per first response."""

    @pytest.mark.parametrize(
        ("waited", "target", "expected_breaches"),
        [
            pytest.param(timedelta(minutes=30), timedelta(hours=1), 0.0, id="in_time"),
            pytest.param(timedelta(hours=2), timedelta(hours=1), 1.0, id="late"),
            pytest.param(timedelta(hours=2), None, 0.0, id="no_target"),
        ],
    )
    def test_histogram_and_breaches(self, waited, target, expected_breaches):
        """The wait goes into the histogram by team and mode; a late one also counts a breach."""
        metrics = Metrics()
        observe_first_response(metrics, response("care-it", "reduced", rome("2026-11-23 21:00"), waited), target)
        labels = {"team": "care-it", "mode": "reduced"}
        sample = metrics.registry.get_sample_value
        expected = (1.0, waited.total_seconds(), expected_breaches)
        actual = (
            sample("offhours_first_response_seconds_count", labels),
            sample("offhours_first_response_seconds_sum", labels),
            sample("offhours_first_response_breaches_total", labels) or 0.0,
        )
        assert expected == actual

