"""On-call rotation: handoffs at wall-clock time for d/w, fixed durations for h, overrides."""

from __future__ import annotations

from datetime import datetime

import pytest


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def minutes(value: datetime) -> str:
    return value.isoformat(timespec="minutes")


def team_with(load, zone: str, start: str, every: str, overrides: str = "[]"):
    return load(
        f"""
        teams:
          t:
            timezone: {zone}
            on_call:
              rotation: {{members: [ana, ben], start: "{start}", every: {every}}}
              overrides: {overrides}
            staff: {{ana: {{name: Ana}}, ben: {{name: Ben}}, cleo: {{name: Cleo}}}}
        """
    ).teams["t"]


# (zone, start, every, at, expected on call)
CASES = [
    pytest.param("Europe/Rome", "2026-03-23 09:00", "1w", "2026-03-30T08:59+02:00", ("ana",), id="rome_weekly_before_handoff_after_spring"),
    pytest.param("Europe/Rome", "2026-03-23 09:00", "1w", "2026-03-30T09:00+02:00", ("ben",), id="rome_weekly_handoff_same_wall_clock_after_spring"),
    pytest.param("Europe/Rome", "2026-03-23 09:00", "1w", "2026-03-23T08:59+01:00", (), id="nobody_before_start"),
    pytest.param("America/New_York", "2026-10-30 09:00", "1d", "2026-11-01T08:30-05:00", ("ben",), id="ny_daily_shift_is_25_hours_on_fall_back"),
    pytest.param("America/New_York", "2026-10-30 09:00", "1d", "2026-11-01T09:00-05:00", ("ana",), id="ny_daily_handoff_at_9_after_fall_back"),
    pytest.param("America/New_York", "2026-10-31 20:00", "12h", "2026-11-01T07:00-05:00", ("ben",), id="ny_hourly_is_fixed_duration"),
    pytest.param("America/New_York", "2026-10-31 20:00", "12h", "2026-11-01T06:59-05:00", ("ana",), id="ny_hourly_not_at_wall_clock"),
    pytest.param("America/New_York", "2026-03-01 02:30", "1w", "2026-03-08T03:00-04:00", ("ben",), id="ny_spring_skip_hour_handoff_after_gap"),
    pytest.param("America/New_York", "2026-03-01 02:30", "1w", "2026-03-08T01:59-05:00", ("ana",), id="ny_spring_before_gap"),
    pytest.param("Australia/Sydney", "2026-04-03 02:30", "1d", "2026-04-05T02:30+11:00", ("ana",), id="sydney_fall_back_handoff_first_occurrence"),
    pytest.param("Australia/Sydney", "2026-04-03 02:30", "1d", "2026-04-05T02:29+11:00", ("ben",), id="sydney_fall_back_before_handoff"),
]


class TestOnCallAt:
    @pytest.mark.parametrize(("zone", "start", "every", "at", "expected"), CASES)
    def test_member_on_call(self, load, zone, start, every, at, expected):
        """The rotation hands off per the coverage file's DST rule (README: The coverage file); nobody before start."""
        assert expected == team_with(load, zone, start, every).on_call_at(instant(at))

    def test_override_replaces_rotation_member(self, load):
        """An on-call override replaces the rotation's member for [from, to) only."""
        team = team_with(load, "Europe/Rome", "2026-11-02 09:00", "1w", '[{from: "2026-11-03 18:00", to: "2026-11-04 08:00", member: cleo}]')
        expected = [("ana",), ("cleo",), ("cleo",), ("ana",)]
        actual = [
            team.on_call_at(instant(t))
            for t in ("2026-11-03T17:59+01:00", "2026-11-03T18:00+01:00", "2026-11-04T07:59+01:00", "2026-11-04T08:00+01:00")
        ]
        assert expected == actual

    def test_override_before_start(self, load):
        """An on-call override applies even before the rotation starts."""
        team = team_with(load, "Europe/Rome", "2026-11-02 09:00", "1w", '[{from: "2026-11-01 00:00", to: "2026-11-01 12:00", member: cleo}]')
        assert ("cleo",) == team.on_call_at(instant("2026-11-01T06:00+01:00"))


class TestOnCallShifts:
    def test_shifts_with_fall_back_and_override(self, load):
        """Shifts are clipped, split by overrides and 25 hours long across fall-back."""
        team = team_with(load, "America/New_York", "2026-10-30 09:00", "1d", '[{from: "2026-11-01 12:00", to: "2026-11-01 14:00", member: cleo}]')
        shifts = team.on_call_shifts(instant("2026-10-31T00:00-04:00"), instant("2026-11-02T00:00-05:00"))
        expected = [
            ("2026-10-31T00:00-04:00", "2026-10-31T09:00-04:00", "ana"),
            ("2026-10-31T09:00-04:00", "2026-11-01T09:00-05:00", "ben"),
            ("2026-11-01T09:00-05:00", "2026-11-01T12:00-05:00", "ana"),
            ("2026-11-01T12:00-05:00", "2026-11-01T14:00-05:00", "cleo"),
            ("2026-11-01T14:00-05:00", "2026-11-02T00:00-05:00", "ana"),
        ]
        assert expected == [(minutes(s.start), minutes(s.end), s.member) for s in shifts]

    def test_no_shift_before_start(self, load):
        """Before the rotation's start there is no shift."""
        team = team_with(load, "Australia/Sydney", "2026-11-02 09:00", "1w")
        assert [] == team.on_call_shifts(instant("2026-10-01T00:00+10:00"), instant("2026-11-02T09:00+11:00"))
