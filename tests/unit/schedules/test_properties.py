"""Properties of the coverage engine over generated valid coverage files.

Hypothesis writes coverage YAML the way operations would (day ranges, midnight-crossing
spans, 24:00, holidays, overrides, rotations) in zones with daylight saving on both
hemispheres, and asks about instants that favour daylight-saving days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from hypothesis import given, settings
from hypothesis import strategies as st

from schedules import load_coverage_text
from schedules.ical import export_ics
from tests.support.coverage_strategies import (
    MODES,
    PROPERTY_SETTINGS,
    coverage_files,
    instants,
)

SECOND = timedelta(seconds=1)


HOUR = timedelta(hours=1)


DAY = timedelta(days=1)


MONTH = timedelta(days=30)


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC: compare instants there, since Python compares two datetimes of
    the same zone by wall clock, calling 02:00 of a fall-back night not before 02:00."""
    return moment.astimezone(UTC)


def later(moment: datetime, delta: timedelta) -> datetime:
    """``delta`` of elapsed time after ``moment`` (Python adds wall-clock time within a zone)."""
    return utc(moment) + delta


@st.composite
def team_and_instant(draw: st.DrawFn):
    generated = draw(coverage_files())
    coverage = load_coverage_text(generated.text)
    return coverage.teams["gen"], draw(instants(generated.zone)), generated.text


class TestCoverageProperties:
    @PROPERTY_SETTINGS
    @given(case=team_and_instant())
    def test_one_mode_inside_its_stretch(self, case):
        """Every instant has one mode, and since <= at < until bounds it."""
        team, at, text = case
        found = team.at(at)
        assert found.mode in MODES, (at, text)
        if found.since is not None:
            assert utc(found.since) <= utc(at), (at, text)
        if found.until is not None:
            assert utc(at) < utc(found.until), (at, text)
        containing = [s for s in team.stretches(later(at, -HOUR), later(at, HOUR)) if utc(s.start) <= utc(at) < utc(s.end)]
        assert [found.mode] == [s.mode for s in containing], (at, text)

    @PROPERTY_SETTINGS
    @given(case=team_and_instant(), fractions=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=5))
    def test_mode_constant_in_stretch_and_changes_at_its_ends(self, case, fractions):
        """The mode holds on [since, until) and differs at until and just before since."""
        team, at, text = case
        found = team.at(at)
        since = utc(found.since or later(at, -MONTH))
        until = utc(found.until or later(at, MONTH))
        points = [since, until - SECOND] + [since + (until - since - SECOND) * f for f in fractions]
        assert [found.mode] * len(points) == [team.at(p).mode for p in points], (at, text)
        if found.until is not None:
            assert found.mode != team.at(found.until).mode, (at, text)
        if found.since is not None:
            assert found.mode != team.at(later(found.since, -SECOND)).mode, (at, text)

    @PROPERTY_SETTINGS
    @given(case=team_and_instant())
    def test_next_open_is_the_first_open_instant(self, case):
        """next_open is open, and nothing between at and it is open."""
        team, at, text = case
        found = team.at(at)
        if found.mode == "open":
            assert utc(at) == utc(found.next_open), (at, text)
            return
        if found.next_open is None:
            window = team.stretches(at, later(at, timedelta(days=400)))
            assert [] == [s for s in window if s.mode == "open"], (at, text)
            return
        assert utc(at) < utc(found.next_open), (at, text)
        assert "open" == team.at(found.next_open).mode, (at, text)
        between = team.stretches(at, found.next_open)
        assert [] == [s for s in between if s.mode == "open"], (at, text)

    @settings(PROPERTY_SETTINGS, max_examples=60)
    @given(case=team_and_instant())
    def test_coverage_at_agrees_with_exported_calendar(self, case):
        """The exported VEVENT that contains at carries the mode that coverage at reports."""
        team, at, text = case
        found = team.at(at)
        calendar = icalendar.Calendar.from_ical(export_ics(team, later(at, -2 * DAY), later(at, 2 * DAY)))
        containing = [
            str(event["X-OFFHOURS-MODE"])
            for event in calendar.walk("VEVENT")
            if "X-OFFHOURS-MODE" in event and utc(event.start) <= utc(at) < utc(event.end)
        ]
        assert [found.mode] == containing, (at, text)

