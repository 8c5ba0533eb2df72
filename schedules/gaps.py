"""Coverage gaps: times a team promises some presence but nobody is there to answer.

Gaps are warnings, not errors: the file is valid, but operations should look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schedules.coverage import Coverage, Team

_FORMAT = "%a %Y-%m-%d %H:%M"


@dataclass(frozen=True, slots=True)
class Gap:
    """One warning for ``team``; ``start``/``end`` are None for a weekly-rule gap."""

    team: str
    message: str
    start: datetime | None = None
    end: datetime | None = None

    def __str__(self) -> str:
        if self.start is None or self.end is None:
            return f"team {self.team!r}: {self.message}"
        return (
            f"team {self.team!r}: {self.message} from {self.start.strftime(_FORMAT)} "
            f"to {self.end.strftime(_FORMAT)} ({self.start.tzname()})"
        )


def team_gaps(team: Team, start: datetime, end: datetime) -> list[Gap]:
    """Gaps of one team in ``[start, end)``.

    * the weekly hours have no open span at all;
    * a reduced or closed stretch (or part of one) with nobody on call; in reduced
      stretches the team's ``triage.reduced_staff`` count as someone to answer.
    """
    gaps: list[Gap] = []
    if not team.hours.has_open():
        gaps.append(Gap(team.id, "no open hours in the week; add an 'open' span to 'hours'"))
    uncovered = [
        stretch
        for stretch in team.stretches(start, end)
        if stretch.mode == "closed" or (stretch.mode == "reduced" and not team.triage.reduced_staff)
    ]
    if uncovered and not team.on_call.has_anyone:
        # One warning for the whole team beats one per night.
        modes = " and ".join(sorted({stretch.mode for stretch in uncovered}, reverse=True))
        gaps.append(Gap(team.id, f"nobody is ever on call in {modes} hours; add 'on_call' with a rotation"))
        return gaps
    shifts = team.on_call_shifts(start, end)
    for stretch in uncovered:
        cursor = stretch.start
        for shift in shifts:
            if shift.end <= cursor or shift.start >= stretch.end:
                continue
            if shift.start > cursor:
                gaps.append(Gap(team.id, f"{stretch.mode} with nobody on call", cursor, shift.start))
            cursor = max(cursor, shift.end)
        if cursor < stretch.end:
            gaps.append(Gap(team.id, f"{stretch.mode} with nobody on call", cursor, stretch.end))
    return gaps


def coverage_gaps(coverage: Coverage, start: datetime, end: datetime) -> list[Gap]:
    """Gaps of every team in ``[start, end)``, team by team in file order."""
    return [gap for team in coverage.teams.values() for gap in team_gaps(team, start, end)]
