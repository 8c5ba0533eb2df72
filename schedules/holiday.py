"""Holidays of a team: whole local days from the `holidays` package plus explicit dates.

Also where a coverage file's ``holidays.ics`` calendars are read from, a
:class:`CalendarSource`, chosen by whoever loads the coverage:

* :class:`FileCalendars` - the operator's own file (``offhours coverage check FILE``,
  ``offhours run --coverage FILE``): a path relative to the file's folder, or absolute;
  problems say precisely what is wrong (not found, cannot be read, ...).
* :class:`DirectoryCalendars` - coverage that arrives through the operations API or
  the config topic: a file *name* alone, in one configured folder; every fault gets the
  same answer, so an answer never tells whether a file exists.
* :class:`NoCalendars` - such coverage when no folder is configured: ``ics`` refused.

No source ever puts a calendar's content (or a parser's message, which may quote it)
into a problem.
"""

from __future__ import annotations

import functools
import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from datetime import date, tzinfo
from pathlib import Path
from typing import Protocol

import holidays as holiday_tables

from schedules.files import read_regular_file
from schedules.ical import holiday_dates_from_ics_bytes
from schedules.model import Mode

_YEARS_KEPT = 8


class HolidayCalendar:
    """Which local days are holidays for one team, and their names.

    Public holidays come from the `holidays` package (``country``, optional
    ``subdivision``); ``extra`` days (from the coverage file or an .ics file) are added.
    Years are looked up lazily and only the most recent few are kept.
    """

    __slots__ = ("country", "subdivision", "extra", "mode", "_years")

    def __init__(
        self,
        country: str | None = None,
        subdivision: str | None = None,
        extra: Iterable[date] = (),
        mode: Mode = "closed",
    ) -> None:
        self.country = country
        self.subdivision = subdivision
        self.extra = frozenset(extra)
        self.mode: Mode = mode
        self._years: OrderedDict[int, dict[date, str]] = OrderedDict()

    def name_of(self, day: date) -> str | None:
        """The holiday's name when ``day`` is a holiday, else None."""
        year = self._year(day.year)
        return year.get(day)

    def _year(self, year: int) -> dict[date, str]:
        found = self._years.get(year)
        if found is not None:
            self._years.move_to_end(year)
            return found
        days: dict[date, str] = {}
        if self.country:
            table = holiday_tables.country_holidays(
                self.country, subdiv=self.subdivision, years=year
            )
            days.update((day, str(name)) for day, name in table.items())
        for day in self.extra:
            if day.year == year:
                days.setdefault(day, "holiday")
        self._years[year] = days
        if len(self._years) > _YEARS_KEPT:
            self._years.popitem(last=False)
        return days


@functools.cache
def supported_countries() -> dict[str, list[str]]:
    """Country codes the `holidays` package knows, with their subdivision codes (read once)."""
    return {code: list(subdivisions) for code, subdivisions in holiday_tables.list_supported_countries().items()}


# -- where holidays.ics calendars come from ------------------------------------------------

MAX_CALENDAR_BYTES = 1024 * 1024
"""The largest .ics file read for a team's holidays."""

# Dates read from a holidays .ics file: a window wide enough for any schedule in use.
ICS_FIRST_DAY = date(2000, 1, 1)
ICS_LAST_DAY = date(2099, 12, 31)

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class CalendarUnavailable(Exception):
    """A holidays calendar that cannot be used: ``message`` and ``hint`` of the problem to report."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class CalendarSource(Protocol):
    """Turns the ``ics`` value of a coverage file into closed days, or says why not."""

    def days(self, name: str, timezone: tzinfo | None) -> set[date]:
        """The local days closed by calendar ``name``; :class:`CalendarUnavailable` when it cannot be used."""
        ...


def _size_text(max_bytes: int) -> str:
    return f"{max_bytes // (1024 * 1024)} MiB" if max_bytes % (1024 * 1024) == 0 else f"{max_bytes} bytes"


def _parse(raw: bytes, timezone: tzinfo | None) -> set[date]:
    return holiday_dates_from_ics_bytes(raw, ICS_FIRST_DAY, ICS_LAST_DAY, timezone=timezone)


class FileCalendars:
    """Calendars of the operator's own coverage file: a path relative to ``base_dir``, or absolute.

    Problems are precise (the operator is reading about their own files) and name the
    path looked at, but never quote the file.
    """

    def __init__(self, base_dir: Path, *, max_bytes: int = MAX_CALENDAR_BYTES) -> None:
        self.base_dir = Path(base_dir)
        self.max_bytes = max_bytes

    def days(self, name: str, timezone: tzinfo | None) -> set[date]:
        from schedules.ical import IcsInvalid

        path = Path(name)
        if not path.is_absolute():
            path = self.base_dir / path
        hint = "write a path to an .ics file, relative to the coverage file's folder"
        try:
            raw = read_regular_file(path, self.max_bytes)
        except FileNotFoundError:
            raise CalendarUnavailable(f"holiday calendar '{name}' not found (looked at {path})", hint) from None
        except PermissionError:
            raise CalendarUnavailable(f"holiday calendar '{name}' cannot be read (permission denied; looked at {path})",
                                      "check the file's permissions") from None
        except IsADirectoryError:
            raise CalendarUnavailable(f"holiday calendar '{name}' is a folder, not a file (looked at {path})", hint) from None
        except OSError as error:
            reason = error.strerror or type(error).__name__
            if reason.startswith("larger than"):
                reason = f"larger than {_size_text(self.max_bytes)}"
            raise CalendarUnavailable(f"holiday calendar '{name}' cannot be read: {reason} (looked at {path})",
                                      f"give a regular .ics file of at most {_size_text(self.max_bytes)}") from None
        try:
            return _parse(raw, timezone)
        except IcsInvalid as invalid:
            raise CalendarUnavailable(f"holiday calendar '{name}' cannot be used: {invalid.reason}",
                                      "give a valid iCalendar (.ics) file") from None


DIRECTORY_HINT = "put the .ics file in the holiday calendars folder and write its name alone, e.g. ics: closures.ics"


class DirectoryCalendars:
    """Calendars named in coverage from the operations API or the config topic: one folder, names only.

    ``name`` must be a file name alone (letters, digits, ``._-``; no folder, no ``..``),
    the file a regular file of at most ``max_bytes`` whose real path (symlinks followed)
    lies inside ``root``. Whatever is wrong - missing, unreadable, not a regular file,
    outside the folder, too large, not valid iCalendar - the problem is the same, so an
    answer never tells what exists on the host.
    """

    def __init__(self, root: Path, *, max_bytes: int = MAX_CALENDAR_BYTES, hint: str = DIRECTORY_HINT) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.hint = hint

    def days(self, name: str, timezone: tzinfo | None) -> set[date]:
        if not _PLAIN_NAME.fullmatch(name) or name in (".", ".."):
            raise CalendarUnavailable(
                "holiday calendar: 'ics' must be the name of a file in the holiday calendars folder, "
                "without a folder (no '/', no '..')", self.hint)
        unusable = CalendarUnavailable(
            f"holiday calendar '{name}' cannot be used: it must be a readable iCalendar (.ics) file "
            f"of at most {_size_text(self.max_bytes)} in the holiday calendars folder", self.hint)
        try:
            root = os.path.realpath(self.root)
            real = os.path.realpath(os.path.join(root, name))
            if real == root or os.path.commonpath([root, real]) != root:
                raise unusable
            raw = read_regular_file(real, self.max_bytes, follow_symlinks=False)
            return _parse(raw, timezone)
        except CalendarUnavailable:
            raise
        except Exception:  # every fault alike (module docstring)
            raise unusable from None


class NoCalendars:
    """No calendars from files: ``ics`` is refused, with ``hint`` saying how to allow it."""

    def __init__(self, hint: str = "holiday calendars from files are not enabled for this coverage; "
                 "list the days under 'extra' instead") -> None:
        self.hint = hint

    def days(self, name: str, timezone: tzinfo | None) -> set[date]:
        shown = f" '{name}'" if _PLAIN_NAME.fullmatch(name) else ""
        raise CalendarUnavailable(
            f"holiday calendar{shown} cannot be used: .ics files are not enabled for coverage sent "
            "through the operations API", self.hint)
