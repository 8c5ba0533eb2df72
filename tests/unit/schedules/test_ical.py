"""iCalendar export of coverage, import of closures from .ics files, `coverage ics`."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest

from schedules import load_coverage, load_coverage_text
from schedules.ical import IcsInvalid, export_ics, holiday_dates_from_ics
from tests.support.schedules_ical import EXAMPLE, ROME, ROOT, coverage_events, rome

DATA = ROOT / "tests" / "support" / "schedules_data" / "ical"


CLOSURES = DATA / "closures.ics"


@pytest.fixture(scope="module")
def care_it():
    return load_coverage(EXAMPLE).teams["care-it"]


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def on_call_events(calendar: icalendar.Calendar) -> list[icalendar.Event]:
    return [event for event in calendar.walk("VEVENT") if "X-OFFHOURS-ON-CALL" in event]


class TestExportIcs:
    def test_events_match_the_pieces(self, care_it):
        """Each coverage VEVENT is one piece (one mode, one rule): same start, end, mode and source, in order."""
        start, end = rome(2026, 12, 7), rome(2026, 12, 28)
        calendar = icalendar.Calendar.from_ical(export_ics(care_it, start, end))
        expected = [(s.start, s.end, s.mode, s.source) for s in care_it.pieces(start, end)]
        actual = [
            (e.start, e.end, str(e["X-OFFHOURS-MODE"]), str(e["X-OFFHOURS-SOURCE"])) for e in coverage_events(calendar)
        ]
        assert expected == actual

    def test_events_join_into_the_stretches(self, care_it):
        """Adjacent events of one mode, joined, are exactly the stretches: a split only ever falls where the rule changes."""
        start, end = rome(2026, 12, 7), rome(2026, 12, 28)
        joined: list[list] = []
        for event in coverage_events(icalendar.Calendar.from_ical(export_ics(care_it, start, end))):
            mode = str(event["X-OFFHOURS-MODE"])
            if joined and joined[-1][2] == mode and joined[-1][1] == event.start:
                joined[-1][1] = event.end
            else:
                joined.append([event.start, event.end, mode])
        assert [[s.start, s.end, s.mode] for s in care_it.stretches(start, end)] == joined

    @pytest.mark.parametrize(
        ("first_day", "expected"),
        [
            pytest.param(
                date(2026, 12, 24),
                [
                    ("Closed (override: Natale)", rome(2026, 12, 24, 14), rome(2026, 12, 27)),
                    ("Closed", rome(2026, 12, 27), rome(2026, 12, 28, 9)),
                ],
                id="override_ends_before_the_weekend",
            ),
            pytest.param(
                date(2026, 4, 4),
                [
                    ("Closed", rome(2026, 4, 4, 18), rome(2026, 4, 5)),
                    ("Closed (holiday: Easter Sunday)", rome(2026, 4, 5), rome(2026, 4, 6)),
                    ("Closed (holiday: Easter Monday)", rome(2026, 4, 6), rome(2026, 4, 7)),
                    ("Closed", rome(2026, 4, 7), rome(2026, 4, 7, 9)),
                ],
                id="adjacent_holidays",
            ),
        ],
    )
    def test_each_event_names_only_what_it_covers(self, care_it, first_day, expected):
        """A closed stretch made of several rules is one event per rule, each titled with its own reason."""
        start = rome(first_day.year, first_day.month, first_day.day)
        calendar = icalendar.Calendar.from_ical(export_ics(care_it, start, start + timedelta(days=5)))
        closed = [
            (str(e["SUMMARY"]), e.start, e.end) for e in coverage_events(calendar) if str(e["X-OFFHOURS-MODE"]) == "closed"
        ]
        assert expected == [c for c in closed if expected[0][1] <= c[1] < expected[-1][2]]

    @pytest.mark.parametrize(
        ("at", "summary"),
        [
            pytest.param(rome(2026, 12, 7, 10), "Open", id="weekday_open"),
            pytest.param(rome(2026, 12, 7, 20), "Reduced", id="weekday_evening_reduced"),
            pytest.param(rome(2026, 12, 8, 12), "Closed (holiday: Immaculate Conception)", id="public_holiday"),
            pytest.param(rome(2026, 12, 25, 12), "Closed (override: Natale)", id="override_with_note"),
            pytest.param(rome(2026, 12, 13, 12), "Closed", id="sunday_closed"),
        ],
    )
    def test_summary_names_mode_and_reason(self, care_it, at, summary):
        """The event containing an instant is titled with the mode and, for holidays and overrides, why."""
        calendar = icalendar.Calendar.from_ical(export_ics(care_it, rome(2026, 12, 7), rome(2026, 12, 28)))
        actual = [str(e["SUMMARY"]) for e in coverage_events(calendar) if utc(e.start) <= utc(at) < utc(e.end)]
        assert [summary] == actual

    def test_calendar_carries_the_team_timezone(self, care_it):
        """The calendar holds a VTIMEZONE for Europe/Rome and events refer to it by TZID."""
        payload = export_ics(care_it, rome(2026, 10, 20), rome(2026, 11, 3))
        calendar = icalendar.Calendar.from_ical(payload)
        assert ["Europe/Rome"] == [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")]
        assert b"DTSTART;TZID=Europe/Rome:20261020T090000" in payload
        assert str(calendar["PRODID"]).startswith("-//offhours//")
        assert all("DTSTAMP" in event for event in calendar.walk("VEVENT"))

    def test_on_call_shifts_name_the_member(self, care_it):
        """Each on-call shift is an event 'On call: NAME' over the shift's instants."""
        start, end = rome(2026, 11, 2), rome(2026, 11, 23)
        calendar = icalendar.Calendar.from_ical(export_ics(care_it, start, end))
        expected = [
            (s.start, s.end, f"On call: {care_it.staff[s.member].name}") for s in care_it.on_call_shifts(start, end)
        ]
        actual = [(e.start, e.end, str(e["SUMMARY"])) for e in on_call_events(calendar)]
        assert ["On call: Marta Rossi", "On call: Luca Bianchi", "On call: Giulia Verdi"] == [a[2] for a in actual]
        assert expected == actual

    def test_uids_are_stable_across_windows(self, care_it):
        """Exporting an overlapping window gives the same UIDs to the same stretches and shifts."""
        first = icalendar.Calendar.from_ical(export_ics(care_it, rome(2026, 12, 1), rome(2026, 12, 15)))
        second = icalendar.Calendar.from_ical(export_ics(care_it, rome(2026, 12, 3, 15), rome(2026, 12, 20)))
        first_uids = {str(e["UID"]): e.end for e in first.walk("VEVENT")}
        second_uids = [str(e["UID"]) for e in second.walk("VEVENT")]
        assert len(second_uids) == len(set(second_uids))
        shared = [uid for uid in second_uids if uid in first_uids]
        # Everything of the second export that starts before the first one ends is shared,
        # including the stretch and the shift the second window cuts at 15:00.
        expected = [str(e["UID"]) for e in second.walk("VEVENT") if e.start < rome(2026, 12, 15)]
        assert expected == shared

    def test_same_inputs_give_same_bytes(self, care_it):
        """Without a stamp the export is deterministic; the stamp only changes DTSTAMP."""
        start, end = rome(2026, 3, 23), rome(2026, 4, 6)
        assert export_ics(care_it, start, end) == export_ics(care_it, start, end)
        stamped = icalendar.Calendar.from_ical(export_ics(care_it, start, end, stamp=datetime(2026, 3, 1, tzinfo=UTC)))
        assert {datetime(2026, 3, 1, tzinfo=UTC)} == {e["DTSTAMP"].dt for e in stamped.walk("VEVENT")}

    def test_second_occurrence_of_fall_back_hour_kept_exact(self):
        """A handoff at the repeated 02:00 of a fall-back night is exported at its exact instant."""
        team = load_coverage_text(
            "teams:\n"
            "  night:\n"
            "    timezone: Europe/Rome\n"
            "    hours: {daily: [\"09:00-17:00 open\"]}\n"
            "    on_call:\n"
            "      rotation: {members: [marta, luca], start: \"2026-10-24 00:00\", every: 1h}\n"
            "    staff:\n"
            "      marta: {name: Marta Rossi, notify: [\"mailto:marta@example.com\"]}\n"
            "      luca: {name: Luca Bianchi, notify: [\"mailto:luca@example.com\"]}\n"
        ).teams["night"]
        start, end = rome(2026, 10, 25, 1), rome(2026, 10, 25, 4)
        calendar = icalendar.Calendar.from_ical(export_ics(team, start, end))
        # In UTC: Python never calls an instant of the repeated hour equal across zones.
        expected = [(utc(s.start), utc(s.end)) for s in team.on_call_shifts(start, end)]
        actual = [(utc(e.start), utc(e.end)) for e in on_call_events(calendar)]
        assert 4 == len(expected)
        assert expected == actual

    def test_rejects_an_empty_window(self, care_it):
        """A window whose end is not after its start is a ValueError."""
        with pytest.raises(ValueError, match="empty"):
            export_ics(care_it, rome(2026, 12, 7), rome(2026, 12, 7))


class TestHolidayDatesFromIcs:
    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            pytest.param(
                date(2026, 12, 1), date(2027, 12, 31), {date(2026, 12, 7), date(2027, 12, 7)}, id="yearly_rrule_expanded"
            ),
            pytest.param(
                date(2026, 10, 1), date(2026, 10, 31),
                {date(2026, 10, 7), date(2026, 10, 14), date(2026, 10, 28)},
                id="weekly_rrule_with_exdate",
            ),
            pytest.param(
                date(2026, 8, 1), date(2026, 8, 31),
                {date(2026, 8, 10), date(2026, 8, 11), date(2026, 8, 12)},
                id="all_day_event_end_exclusive",
            ),
            pytest.param(date(2026, 8, 11), date(2026, 8, 11), {date(2026, 8, 11)}, id="window_bounds_inclusive"),
            pytest.param(date(2026, 9, 1), date(2026, 9, 30), set(), id="cancelled_event_ignored"),
        ],
    )
    def test_days_closed_within_window(self, start, end, expected):
        """All-day and recurring events close the local days they cover, within [start, end]."""
        assert expected == holiday_dates_from_ics(CLOSURES, start, end, timezone=ROME)

    @pytest.mark.parametrize(
        ("timezone", "expected"),
        [
            pytest.param(ROME, {date(2026, 11, 6)}, id="team_zone_next_day"),
            pytest.param(None, {date(2026, 11, 5)}, id="event_own_wall_clock"),
        ],
    )
    def test_timed_event_closes_the_local_days_it_touches(self, timezone, expected):
        """A 20:00-22:00 New York event touches the next day in Rome."""
        assert expected == holiday_dates_from_ics(CLOSURES, date(2026, 11, 1), date(2026, 11, 30), timezone=timezone)

    def test_timed_event_across_midnight(self, tmp_path):
        """A timed event touches every local day it overlaps, not the day it ends at midnight."""
        path = tmp_path / "night.ics"
        path.write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
            "BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20260101T000000Z\r\n"
            "DTSTART;TZID=Europe/Rome:20260301T220000\r\nDTEND;TZID=Europe/Rome:20260302T010000\r\nEND:VEVENT\r\n"
            "BEGIN:VEVENT\r\nUID:b@t\r\nDTSTAMP:20260101T000000Z\r\n"
            "DTSTART;TZID=Europe/Rome:20260305T180000\r\nDTEND;TZID=Europe/Rome:20260306T000000\r\nEND:VEVENT\r\n"
            "END:VCALENDAR\r\n"
        )
        expected = {date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 5)}
        assert expected == holiday_dates_from_ics(path, date(2026, 3, 1), date(2026, 3, 31), timezone=ROME)

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            pytest.param("missing.ics", "cannot read", id="missing_file"),
            pytest.param("not_a_calendar.ics", "not a valid iCalendar file", id="not_icalendar"),
            pytest.param("bad_rule.ics", "cannot expand", id="invalid_rrule"),
        ],
    )
    def test_invalid_file_raises_with_reason(self, name, reason):
        """An unreadable or invalid file raises IcsInvalid (a ValueError) naming the file and why."""
        with pytest.raises(ValueError, match=reason) as raised:
            holiday_dates_from_ics(DATA / name, date(2026, 1, 1), date(2026, 12, 31))
        assert isinstance(raised.value, IcsInvalid)
        assert name in str(raised.value)


class TestIcsHolidaysInCoverage:
    def test_ics_closures_close_the_team(self, tmp_path):
        """A team with holidays from an .ics file is closed on its days, as a holiday."""
        shutil.copy(CLOSURES, tmp_path / "closures.ics")
        path = tmp_path / "coverage.yaml"
        path.write_text(
            "teams:\n"
            "  care-it:\n"
            "    timezone: Europe/Rome\n"
            "    hours: {mon-fri: [\"09:00-19:00 open\"]}\n"
            "    holidays: {ics: closures.ics}\n"
        )
        team = load_coverage(path).teams["care-it"]
        expected = [
            ("closed", "holiday"), ("closed", "holiday"), ("open", "hours"), ("closed", "holiday"), ("open", "hours"),
        ]
        actual = [
            (found.mode, found.source)
            for found in (
                team.at(rome(2026, 8, 11, 10)),
                team.at(rome(2026, 10, 14, 10)),
                team.at(rome(2026, 10, 21, 10)),
                team.at(rome(2026, 12, 7, 10)),
                team.at(rome(2026, 12, 9, 10)),
            )
        ]
        assert expected == actual

