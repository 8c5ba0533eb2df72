"""iCalendar export of coverage and import of closures from .ics files.

Export: ``export_ics`` turns a team's coverage over a window into a VCALENDAR that
calendar applications open: one event per coverage piece (a run of one mode decided
by one rule: the weekly hours, a holiday, an override) and one per on-call shift, with
the team's VTIMEZONE. UIDs are derived from the team, the kind of event and the
instant the piece or shift really starts (not where the window clips it), so
exporting again updates the events a calendar already holds instead of duplicating them.

Import: ``holiday_dates_from_ics`` reads an .ics file saved on disk (a company closure
calendar, a public-holiday feed) and returns the whole local days its events touch,
recurring events expanded; ``holiday_dates_from_ics_bytes`` does the same for text
already read (the loader reads calendars through a :class:`schedules.holiday.CalendarSource`).

The command ``offhours coverage ics`` lives in :mod:`offhours.coverage_commands`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import icalendar
import recurring_ical_events

from schedules.files import read_regular_file

if TYPE_CHECKING:
    from schedules.coverage import Team

PRODID = "-//offhours//coverage export//EN"
UID_DOMAIN = "offhours"
COVERAGE = "coverage"
ON_CALL = "on-call"

# How far before the window an on-call shift is searched for, to find where the shift
# that is running when the window opens really started (its UID depends on it).
SHIFT_LOOKBACK = timedelta(days=35)



MAX_ICS_BYTES = 1024 * 1024
"""The largest .ics file read for holidays."""


class IcsInvalid(ValueError):
    """An .ics file that cannot be read or is not a valid iCalendar file.

    ``str(error)`` names the file (when known) and says what is wrong with it, in words
    of its own: never the parser's message, which may quote the file's content.
    """

    def __init__(self, path: Path | None, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path is not None else reason)
        self.path = path
        self.reason = reason


def export_ics(
    team: Team, start: datetime, end: datetime, *, stamp: datetime | None = None
) -> bytes:
    """The team's coverage and on-call shifts over ``[start, end)`` as iCalendar bytes.

    - One VEVENT per coverage piece (``team.pieces``: a run of one mode decided by one
      rule, clipped to the window): SUMMARY ``Open``, ``Reduced``, ``Closed``, with the
      source and its note when the piece comes from a holiday or an override, e.g.
      ``Closed (override: Natale)``, ``Closed (holiday: Easter Monday)``. A closed
      stretch that runs from weekly hours into a holiday and back is several events,
      each naming only what it covers. ``X-OFFHOURS-MODE`` and ``X-OFFHOURS-SOURCE``
      carry the mode and source for programs.
    - One VEVENT per on-call shift (``team.on_call_shifts``): ``On call: Marta Rossi``.
    - DTSTART/DTEND carry the team's TZID, and the calendar holds the matching
      VTIMEZONE. An instant that is the second occurrence of an ambiguous fall-back
      wall-clock time cannot be written with a TZID (readers take the first
      occurrence), so it is written in UTC instead.
    - UIDs are deterministic: team, kind (coverage or on-call) and the UTC instant the
      piece or shift really starts, also when the window cuts it.
    - DTSTAMP is ``stamp`` (the moment of the export, given by the caller since this
      package never reads the clock); without it, ``start``, so that the same inputs
      always give the same bytes.

    ``start`` and ``end`` must be aware datetimes with ``start < end``.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("export_ics needs aware datetimes for start and end")
    if not start < end:
        raise ValueError(f"export window is empty: {start.isoformat()} is not before {end.isoformat()}")
    zone = team.timezone
    dtstamp = (stamp if stamp is not None else start).astimezone(UTC)
    calendar = icalendar.Calendar.new(
        prodid=PRODID,
        uid=f"{team.id}@{UID_DOMAIN}",
        name=f"Coverage: {team.name or team.id}",
    )
    for event in _coverage_events(team, start, end, dtstamp):
        calendar.add_component(event)
    for event in _on_call_events(team, start, end, dtstamp):
        calendar.add_component(event)
    # The VTIMEZONE only needs to describe the offsets within the exported window;
    # a margin on each side keeps the first and last transitions in it.
    calendar.add_missing_timezones(
        first_date=(start.astimezone(zone) - timedelta(days=400)).date(),
        last_date=(end.astimezone(zone) + timedelta(days=400)).date(),
    )
    if zone.key not in {tz.tz_name for tz in calendar.timezones}:
        calendar.add_component(icalendar.Timezone.from_tzinfo(zone, tzid=zone.key))
    return calendar.to_ical()


def _coverage_events(
    team: Team, start: datetime, end: datetime, dtstamp: datetime
) -> Iterable[icalendar.Event]:
    for index, piece in enumerate(team.pieces(start, end)):
        true_start = piece.start
        if index == 0:
            since = team.piece_since(start)
            if since is not None:
                true_start = since
        summary = _mode_title(piece.mode)
        if piece.source in ("holiday", "override"):
            summary += f" ({piece.source}: {piece.note})" if piece.note else f" ({piece.source})"
        event = _event(
            team,
            COVERAGE,
            true_start,
            piece.start,
            piece.end,
            summary,
            dtstamp,
        )
        event.add("X-OFFHOURS-MODE", piece.mode)
        event.add("X-OFFHOURS-SOURCE", piece.source)
        if piece.note:
            event.add("DESCRIPTION", piece.note)
        yield event


def _on_call_events(
    team: Team, start: datetime, end: datetime, dtstamp: datetime
) -> Iterable[icalendar.Event]:
    # Compared in UTC: within one zone Python compares wall clocks, ignoring the fold.
    window_start = start.astimezone(UTC)
    for shift in team.on_call_shifts(window_start - SHIFT_LOOKBACK, end):
        if shift.end.astimezone(UTC) <= window_start:
            continue
        member = team.staff[shift.member].name if shift.member in team.staff else shift.member
        event = _event(
            team,
            ON_CALL,
            shift.start,
            max(shift.start.astimezone(UTC), window_start),
            shift.end,
            f"On call: {member or shift.member}",
            dtstamp,
        )
        event.add("X-OFFHOURS-ON-CALL", shift.member)
        yield event


def _event(
    team: Team,
    kind: str,
    true_start: datetime,
    start: datetime,
    end: datetime,
    summary: str,
    dtstamp: datetime,
) -> icalendar.Event:
    anchor = true_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    event = icalendar.Event.new(
        uid=f"{anchor}-{kind}-{team.id}@{UID_DOMAIN}",
        summary=summary,
        stamp=dtstamp,
    )
    event.add("DTSTART", _calendar_instant(start, team.timezone))
    event.add("DTEND", _calendar_instant(end, team.timezone))
    event.add("TRANSP", "TRANSPARENT")
    return event


def _calendar_instant(instant: datetime, zone: tzinfo) -> datetime:
    """``instant`` in the team's zone, or in UTC when a TZID would misplace it."""
    local = instant.astimezone(zone)
    if local.replace(fold=0).astimezone(UTC) != instant.astimezone(UTC):
        return instant.astimezone(UTC)
    return local


def _mode_title(mode: str) -> str:
    return mode.capitalize()


def holiday_dates_from_ics(
    path: Path, start: date, end: date, *, timezone: tzinfo | None = None
) -> set[date]:
    """Whole local days closed by the events of the .ics file at ``path``, within
    ``[start, end]`` (both included); :func:`holiday_dates_from_ics_bytes` says which.

    The file must be a regular file of at most :data:`MAX_ICS_BYTES`. Raises
    ``IcsInvalid`` (a ``ValueError``) naming the file and the reason when it cannot be
    read or is not a valid iCalendar file; the reason never quotes the file's content.
    """
    path = Path(path)
    try:
        raw = read_regular_file(path, MAX_ICS_BYTES)
    except OSError as error:
        raise IcsInvalid(path, f"cannot read the file ({error.strerror or type(error).__name__})") from None
    try:
        return holiday_dates_from_ics_bytes(raw, start, end, timezone=timezone)
    except IcsInvalid as invalid:
        raise IcsInvalid(path, invalid.reason) from None


def holiday_dates_from_ics_bytes(
    raw: bytes, start: date, end: date, *, timezone: tzinfo | None = None
) -> set[date]:
    """Whole local days closed by the events of the iCalendar text ``raw``, within
    ``[start, end]`` (both included).

    - An all-day event closes each day from its start up to, not including, its end
      date (one day when it has no end).
    - A timed event closes every local day it touches: from the day it starts to the
      day it ends, not counting the end's day when it ends exactly at midnight. Local
      means ``timezone`` when given (the team's zone), else the event's own wall
      clock (its TZID; floating times as written).
    - Recurring events (RRULE, RDATE, EXDATE, modified occurrences) are expanded within
      the window; cancelled events and occurrences close nothing.

    Raises ``IcsInvalid`` with a fixed reason (never the parser's message, which may
    quote the text) when ``raw`` is not a valid iCalendar file.
    """
    try:
        calendar = icalendar.Calendar.from_ical(raw)
    except Exception:  # any fault of a foreign file; its message may quote the file
        raise IcsInvalid(None, "not a valid iCalendar file") from None
    if not isinstance(calendar, icalendar.Component) or calendar.name != "VCALENDAR":
        raise IcsInvalid(None, "not a valid iCalendar file: it must start with BEGIN:VCALENDAR")
    try:
        occurrences = recurring_ical_events.of(calendar).between(start, end + timedelta(days=1))
        closed: set[date] = set()
        for occurrence in occurrences:
            if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
                continue
            closed.update(
                day for day in _days_touched(occurrence, timezone) if start <= day <= end
            )
    except Exception:  # as above: recurring_ical_events' messages quote rules and dates
        raise IcsInvalid(None, "a valid iCalendar file whose events cannot expand (check each RRULE, RDATE and EXDATE)") from None
    return closed


def _days_touched(event: icalendar.Event, timezone: tzinfo | None) -> Iterable[date]:
    begin = event.get("DTSTART")
    if begin is None:
        return ()
    first = begin.dt
    finish = event.get("DTEND")
    last = finish.dt if finish is not None else None
    if not isinstance(first, datetime):
        # All-day event: DTEND is exclusive; recurring_ical_events fills it in.
        stop = last if isinstance(last, date) and not isinstance(last, datetime) else first
        stop = max(stop, first + timedelta(days=1))
        return _date_range(first, stop)
    if last is None or not isinstance(last, datetime):
        last = first
    if timezone is not None:
        first = _in_zone(first, timezone)
        last = _in_zone(last, timezone)
    if last <= first:
        return (first.date(),)
    # The end is exclusive: an event that ends at midnight does not touch that day.
    last_day = (last - timedelta(microseconds=1)).date()
    return _date_range(first.date(), last_day + timedelta(days=1))


def _in_zone(moment: datetime, timezone: tzinfo) -> datetime:
    # A floating time (no TZID) is wall-clock time wherever it is read: the team's.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone)
    return moment.astimezone(timezone)


def _date_range(first: date, stop_exclusive: date) -> Iterable[date]:
    day = first
    while day < stop_exclusive:
        yield day
        day += timedelta(days=1)
