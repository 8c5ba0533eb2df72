"""Holidays of a team: whole local days from the `holidays` package plus explicit dates."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import date

import holidays as holiday_tables

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


def supported_countries() -> dict[str, list[str]]:
    """Country codes the `holidays` package knows, with their subdivision codes."""
    return {code: list(subdivisions) for code, subdivisions in holiday_tables.list_supported_countries().items()}
