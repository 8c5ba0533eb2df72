"""The coverage engine: mode, source, stretch bounds and next opening at an instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from schedules import Stretch


def instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    return parsed


def minutes(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="minutes")


# (fixture, at, mode, source, since, until, next_open); "=" means next_open is `at` itself.
CASES = [
    pytest.param("rome", "2026-11-23T19:00+01:00", "reduced", "hours", "2026-11-23T19:00+01:00", "2026-11-24T00:00+01:00", "2026-11-24T09:00+01:00", id="span_start_is_inside"),
    pytest.param("rome", "2026-11-24T00:00+01:00", "closed", "hours", "2026-11-24T00:00+01:00", "2026-11-24T09:00+01:00", "2026-11-24T09:00+01:00", id="span_end_24_00_is_outside"),
    pytest.param("rome", "2026-11-24T08:59:59+01:00", "closed", "hours", "2026-11-24T00:00+01:00", "2026-11-24T09:00+01:00", "2026-11-24T09:00+01:00", id="just_before_opening"),
    pytest.param("rome", "2026-11-21T00:30+01:00", "reduced", "hours", "2026-11-20T19:00+01:00", "2026-11-21T01:00+01:00", "2026-11-23T09:00+01:00", id="midnight_crossing_tail"),
    pytest.param("rome", "2026-11-13T23:59+01:00", "reduced", "hours", "2026-11-13T19:00+01:00", "2026-11-14T00:00+01:00", "2026-11-16T09:00+01:00", id="crossing_span_stops_at_holiday_midnight"),
    pytest.param("rome", "2026-11-14T00:30+01:00", "closed", "holiday", "2026-11-14T00:00+01:00", "2026-11-16T09:00+01:00", "2026-11-16T09:00+01:00", id="holiday_cuts_crossing_tail_and_merges_with_closed_hours"),
    pytest.param("rome", "2026-12-08T11:00+01:00", "open", "override", "2026-12-08T10:00+01:00", "2026-12-08T13:00+01:00", "=", id="override_beats_holiday"),
    pytest.param("rome", "2026-12-08T09:30+01:00", "closed", "holiday", "2026-12-08T00:00+01:00", "2026-12-08T10:00+01:00", "2026-12-08T10:00+01:00", id="holiday_before_override"),
    pytest.param("rome", "2026-11-27T20:00+01:00", "open", "override", "2026-11-27T09:00+01:00", "2026-11-28T02:00+01:00", "=", id="override_merges_with_open_hours"),
    pytest.param("rome", "2026-11-22T12:00+01:00", "closed", "hours", "2026-11-22T02:30+01:00", "2026-11-23T09:00+01:00", "2026-11-23T09:00+01:00", id="closed_merges_across_days"),
    pytest.param("rome", "2026-04-03T20:00+02:00", "reduced", "hours", "2026-04-03T19:00+02:00", "2026-04-04T01:00+02:00", "2026-04-07T09:00+02:00", id="next_open_after_easter_long_weekend"),
    pytest.param("rome", "2026-03-29T01:30+01:00", "reduced", "hours", "2026-03-28T23:00+01:00", "2026-03-29T03:00+02:00", "2026-03-30T09:00+02:00", id="spring_skip_hour_span_end_in_gap"),
    pytest.param("rome", "2026-10-25T02:15+02:00", "reduced", "hours", "2026-10-24T23:00+02:00", "2026-10-25T02:30+02:00", "2026-10-26T09:00+01:00", id="fall_back_first_occurrence_inside"),
    pytest.param("rome", "2026-10-25T02:15+01:00", "closed", "hours", "2026-10-25T02:30+02:00", "2026-10-26T09:00+01:00", "2026-10-26T09:00+01:00", id="fall_back_second_occurrence_outside"),
    pytest.param("new_york", "2026-11-01T01:15-04:00", "reduced", "hours", "2026-10-31T20:00-04:00", "2026-11-01T01:30-04:00", "2026-11-02T08:00-05:00", id="ny_fall_back_first_occurrence_inside"),
    pytest.param("new_york", "2026-11-01T01:15-05:00", "closed", "hours", "2026-11-01T01:30-04:00", "2026-11-01T02:30-05:00", "2026-11-02T08:00-05:00", id="ny_fall_back_second_occurrence_outside"),
    pytest.param("new_york", "2026-03-08T01:45-05:00", "closed", "hours", "2026-03-08T01:30-05:00", "2026-03-08T03:00-04:00", "2026-03-09T08:00-04:00", id="ny_spring_skip_hour_span_start_in_gap"),
    pytest.param("new_york", "2026-03-08T03:00-04:00", "reduced", "hours", "2026-03-08T03:00-04:00", "2026-03-08T12:00-04:00", "2026-03-09T08:00-04:00", id="ny_spring_first_instant_after_gap"),
    pytest.param("sydney", "2026-10-04T01:59+10:00", "closed", "hours", "2026-10-03T17:00+10:00", "2026-10-04T03:00+11:00", "2026-10-04T03:00+11:00", id="sydney_spring_skip_hour"),
    pytest.param("sydney", "2026-04-05T02:45+10:00", "open", "hours", "2026-04-05T02:30+11:00", "2026-04-05T10:00+10:00", "=", id="sydney_fall_back_first_occurrence"),
]


class TestTeamAt:
    @pytest.mark.parametrize(("fixture", "at", "mode", "source", "since", "until", "next_open"), CASES)
    def test_coverage_at_instant(self, request, fixture, at, mode, source, since, until, next_open):
        """Mode, source, merged stretch bounds and next opening follow README: The coverage file and Command line."""
        coverage = request.getfixturevalue(fixture)
        team = next(iter(coverage.teams.values()))
        expected = (mode, source, since, until, at[:16] + at[-6:] if next_open == "=" else next_open)
        result = team.at(instant(at))
        actual = (result.mode, result.source, minutes(result.since), minutes(result.until), minutes(result.next_open))
        assert expected == actual

    def test_instants_are_in_team_zone(self, sydney):
        """Every instant returned is aware and expressed in the team's zone."""
        team = sydney.teams["syd"]
        result = team.at(datetime(2026, 10, 3, 20, 0, tzinfo=UTC))
        expected = ["Australia/Sydney"] * 4
        assert expected == [getattr(v.tzinfo, "key", None) for v in (result.at, result.since, result.until, result.next_open)]

    def test_naive_instant_is_refused(self, rome):
        """A naive datetime is not an instant: the engine refuses it."""
        with pytest.raises(ValueError, match="aware"):
            rome.teams["rome"].at(datetime(2026, 11, 23, 12, 0))

    def test_no_change_within_400_days_is_null(self, load):
        """A team that is always open has no since, until: both null."""
        team = load('teams: {always: {timezone: Europe/Rome, hours: {daily: ["00:00-24:00 open"]}}}').teams["always"]
        result = team.at(instant("2026-06-01T12:00+02:00"))
        expected = ("open", None, None, "2026-06-01T12:00+02:00")
        assert expected == (result.mode, result.since, result.until, minutes(result.next_open))

    def test_never_open_has_no_next_open(self, load):
        """A team with no hours at all is closed with no next opening."""
        team = load("teams: {never: {timezone: America/New_York}}").teams["never"]
        result = team.at(instant("2026-06-01T12:00-04:00"))
        expected = ("closed", None, None, None)
        assert expected == (result.mode, result.since, result.until, result.next_open)

    def test_far_override_found_across_chunks(self, load):
        """A lone opening months ahead is found as next_open and until, across chunks."""
        team = load(
            """
            teams:
              rare:
                timezone: Australia/Sydney
                overrides: [{from: "2027-02-01 09:00", to: "2027-02-01 10:00", mode: open}]
            """
        ).teams["rare"]
        result = team.at(instant("2026-06-01T12:00+10:00"))
        expected = (None, "2027-02-01T09:00+11:00", "2027-02-01T09:00+11:00")
        assert expected == (result.since, minutes(result.until), minutes(result.next_open))


class TestStretches:
    def test_merged_and_clipped(self, rome):
        """Stretches of equal mode merge across rules and are clipped to the range asked."""
        team = rome.teams["rome"]
        actual = team.stretches(instant("2026-11-27T12:00+01:00"), instant("2026-11-28T12:00+01:00"))
        expected = [
            ("2026-11-27T12:00+01:00", "2026-11-28T02:00+01:00", "open", "hours"),
            ("2026-11-28T02:00+01:00", "2026-11-28T10:00+01:00", "closed", "hours"),
            ("2026-11-28T10:00+01:00", "2026-11-28T12:00+01:00", "reduced", "hours"),
        ]
        assert expected == [(minutes(s.start), minutes(s.end), s.mode, s.source) for s in actual]

    def test_stretches_tile_a_year(self, new_york):
        """A year of stretches tiles the range without holes, and modes alternate."""
        team = new_york.teams["ny"]
        start = instant("2026-01-01T00:00-05:00")
        stretches: list[Stretch] = team.stretches(start, start + timedelta(days=365))
        assert [] == [(a, b) for a, b in pairwise(stretches) if a.end != b.start or a.mode == b.mode]


def piece_rows(pieces: list[Stretch]) -> list[tuple[str | None, str | None, str, str, str | None]]:
    return [(minutes(p.start), minutes(p.end), p.mode, p.source, p.note) for p in pieces]


class TestPieces:
    def test_split_where_the_rule_changes(self, rome):
        """Pieces split a stretch where the rule deciding it changes, each with its own source and note."""
        team = rome.teams["rome"]
        actual = team.pieces(instant("2026-11-27T12:00+01:00"), instant("2026-11-28T12:00+01:00"))
        expected = [
            ("2026-11-27T12:00+01:00", "2026-11-27T19:00+01:00", "open", "hours", None),
            ("2026-11-27T19:00+01:00", "2026-11-28T02:00+01:00", "open", "override", "Black Friday"),
            ("2026-11-28T02:00+01:00", "2026-11-28T10:00+01:00", "closed", "hours", None),
            ("2026-11-28T10:00+01:00", "2026-11-28T12:00+01:00", "reduced", "hours", None),
        ]
        assert expected == piece_rows(actual)

    def test_adjacent_holidays_keep_their_names(self, rome):
        """Easter Sunday and Easter Monday, one closed stretch, are two pieces named each by its holiday."""
        team = rome.teams["rome"]
        actual = team.pieces(instant("2026-04-04T14:00+02:00"), instant("2026-04-07T12:00+02:00"))
        expected = [
            ("2026-04-04T14:00+02:00", "2026-04-04T23:00+02:00", "closed", "hours", None),
            ("2026-04-04T23:00+02:00", "2026-04-05T00:00+02:00", "reduced", "hours", None),
            ("2026-04-05T00:00+02:00", "2026-04-06T00:00+02:00", "closed", "holiday", "Easter Sunday"),
            ("2026-04-06T00:00+02:00", "2026-04-07T00:00+02:00", "closed", "holiday", "Easter Monday"),
            ("2026-04-07T00:00+02:00", "2026-04-07T09:00+02:00", "closed", "hours", None),
            ("2026-04-07T09:00+02:00", "2026-04-07T12:00+02:00", "open", "hours", None),
        ]
        assert expected == piece_rows(actual)

    def test_pieces_join_into_the_stretches_over_a_year(self, rome):
        """A year of pieces tiles the range, never repeats a rule back to back, and joined by mode gives the stretches."""
        team = rome.teams["rome"]
        start = instant("2026-01-01T00:00+01:00")
        end = start + timedelta(days=365)
        pieces = team.pieces(start, end)
        assert [] == [
            (a, b) for a, b in pairwise(pieces)
            if a.end != b.start or (a.mode, a.source, a.note) == (b.mode, b.source, b.note)
        ]
        joined: list[tuple[datetime, datetime, str]] = []
        for piece in pieces:
            if joined and joined[-1][2] == piece.mode:
                joined[-1] = (joined[-1][0], piece.end, piece.mode)
            else:
                joined.append((piece.start, piece.end, piece.mode))
        assert [(s.start, s.end, s.mode) for s in team.stretches(start, end)] == joined

    def test_long_override_is_one_piece_across_chunks(self, load):
        """An override longer than the engine's chunks is one piece, and piece_since finds where it starts."""
        team = load(
            """
            teams:
              refit:
                timezone: Europe/Rome
                hours: {daily: ["09:00-17:00 open"]}
                overrides: [{from: "2026-02-01 00:00", to: "2026-08-01 00:00", mode: closed, note: refit}]
            """
        ).teams["refit"]
        actual = team.pieces(instant("2026-03-01T12:00+01:00"), instant("2026-08-01T12:00+02:00"))
        expected = [
            ("2026-03-01T12:00+01:00", "2026-08-01T00:00+02:00", "closed", "override", "refit"),
            ("2026-08-01T00:00+02:00", "2026-08-01T09:00+02:00", "closed", "hours", None),
            ("2026-08-01T09:00+02:00", "2026-08-01T12:00+02:00", "open", "hours", None),
        ]
        assert (expected, "2026-02-01T00:00+01:00") == (
            piece_rows(actual), minutes(team.piece_since(instant("2026-07-15T12:00+02:00")))
        )
