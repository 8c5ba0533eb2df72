"""Teams and the coverage snapshot: the public face of the engine.

A :class:`Coverage` is an immutable snapshot of one coverage file. Each :class:`Team`
answers, for any aware instant, its mode, the stretch around it, the next opening and
who is on call. Nothing here reads a clock: callers pass the instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from schedules.engine import Timeline
from schedules.gaps import coverage_gaps
from schedules.holiday import HolidayCalendar
from schedules.model import (
    ChatwootDesk,
    CoverageAt,
    EscalationPolicy,
    Mode,
    Override,
    Shift,
    StaffMember,
    Stretch,
    TriageOptions,
    WeeklyHours,
)
from schedules.rotation import OnCall


def _seconds(instant: datetime) -> float:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant.isoformat()} must be aware (carry a UTC offset)")
    return instant.timestamp()


class Team:
    """One team of the coverage file, with its zone, rules, rotation and staff.

    All datetimes it returns are aware and expressed in the team's zone. A team
    answering through a Chatwoot desk (``chatwoot``) also has the names of its inboxes
    (``chatwoot:<account>/<inbox>``) among its ``accounts``, after the ones listed.
    """

    __slots__ = (
        "id", "name", "timezone", "locale", "accounts", "staff", "triage",
        "hours", "holidays", "overrides", "on_call", "escalation", "chatwoot", "_timeline", "_agents",
    )

    def __init__(
        self,
        id: str,
        *,
        timezone: ZoneInfo,
        hours: WeeklyHours,
        name: str | None = None,
        locale: str = "en",
        accounts: tuple[str, ...] = (),
        holidays: HolidayCalendar | None = None,
        overrides: tuple[Override, ...] = (),
        on_call: OnCall | None = None,
        staff: Mapping[str, StaffMember] | None = None,
        triage: TriageOptions | None = None,
        escalation: EscalationPolicy | None = None,
        chatwoot: ChatwootDesk | None = None,
    ) -> None:
        self.id = id
        self.name = name or id
        self.timezone = timezone
        self.locale = locale
        self.chatwoot = chatwoot
        desk_accounts = chatwoot.accounts if chatwoot is not None else ()
        self.accounts = tuple(accounts) + tuple(name for name in desk_accounts if name not in accounts)
        self.hours = hours
        self.holidays = holidays or HolidayCalendar()
        self.overrides = tuple(overrides)
        self.on_call = on_call or OnCall(timezone, None)
        self.staff: Mapping[str, StaffMember] = MappingProxyType(dict(staff or {}))
        self.triage = triage or TriageOptions()
        self.escalation = escalation or EscalationPolicy()
        self._timeline = Timeline(timezone, hours, self.holidays, self.overrides)
        self._agents = {
            member.chatwoot_agent: member.id for member in self.staff.values() if member.chatwoot_agent is not None
        }

    def __repr__(self) -> str:
        return f"Team({self.id!r}, timezone={self.timezone.key!r})"

    @property
    def chatwoot_account(self) -> int | None:
        """The Chatwoot account id of the team's desk, or None without one."""
        return None if self.chatwoot is None else self.chatwoot.account

    @property
    def chatwoot_inboxes(self) -> tuple[int, ...]:
        """The Chatwoot inbox ids the team answers (empty without a desk)."""
        return () if self.chatwoot is None else self.chatwoot.inboxes

    def member_for_agent(self, agent: int) -> str | None:
        """The staff id whose ``chatwoot_agent`` is ``agent`` (a Chatwoot user id), or None."""
        return self._agents.get(agent)

    def agent_for(self, member: str) -> int | None:
        """The Chatwoot user id of staff ``member``, or None (no such member, or none given)."""
        staff = self.staff.get(member)
        return None if staff is None else staff.chatwoot_agent

    def _local(self, seconds: float | None) -> datetime | None:
        return None if seconds is None else datetime.fromtimestamp(seconds, self.timezone)

    def mode_at(self, instant: datetime) -> Mode:
        """The mode at ``instant`` (aware); the fast path for hot loops."""
        return self._timeline.mode_at(_seconds(instant))

    def at(self, instant: datetime) -> CoverageAt:
        """Coverage at ``instant``, which must be aware (``ValueError`` otherwise)."""
        seconds = _seconds(instant)
        mode, source, note = self._timeline.piece_at(seconds)
        since, until, next_open = self._timeline.stretch_bounds(seconds)
        return CoverageAt(
            team=self.id,
            at=instant.astimezone(self.timezone),
            mode=mode,
            source=source,
            since=self._local(since),
            until=self._local(until),
            next_open=instant.astimezone(self.timezone) if next_open == seconds else self._local(next_open),
            on_call=self.on_call.member_at(seconds),
            note=note,
        )

    def stretches(self, start: datetime, end: datetime) -> list[Stretch]:
        """Stretches of equal mode overlapping ``[start, end)``, merged and clipped."""
        return [
            Stretch(self._local(s), self._local(e), mode, source, note)  # type: ignore[arg-type]
            for s, e, mode, source, note in self._timeline.stretches(_seconds(start), _seconds(end))
        ]

    def pieces(self, start: datetime, end: datetime) -> list[Stretch]:
        """Runs of one mode and one rule overlapping ``[start, end)``, clipped, in order.

        Unlike :meth:`stretches`, a run ends where the rule changes even when the mode
        does not: weekly hours, each holiday (``note`` is its name) and each override
        (``note`` is its note) are pieces of their own, so each names only what it covers.
        """
        return [
            Stretch(self._local(s), self._local(e), mode, source, note)  # type: ignore[arg-type]
            for s, e, mode, source, note in self._timeline.pieces(_seconds(start), _seconds(end))
        ]

    def piece_since(self, instant: datetime) -> datetime | None:
        """Where the piece (run of one mode and one rule) at ``instant`` starts; None beyond 400 days."""
        return self._local(self._timeline.piece_since(_seconds(instant)))

    def on_call_shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """On-call shifts overlapping ``[start, end)``, clipped; overrides applied."""
        return [
            Shift(self._local(s), self._local(e), member)  # type: ignore[arg-type]
            for s, e, member in self.on_call.shifts(_seconds(start), _seconds(end))
        ]

    def on_call_at(self, instant: datetime) -> tuple[str, ...]:
        """Member ids on call at ``instant`` (empty before the rotation starts)."""
        return self.on_call.member_at(_seconds(instant))


class Coverage:
    """An immutable snapshot of one coverage file: its teams and the text it came from."""

    __slots__ = ("teams", "source_text", "file", "_by_account")

    def __init__(self, teams: Mapping[str, Team], source_text: str = "", file: str = "<coverage>") -> None:
        self.teams: Mapping[str, Team] = MappingProxyType(dict(teams))
        self.source_text = source_text
        self.file = file
        self._by_account = {account: team for team in self.teams.values() for account in team.accounts}

    def __repr__(self) -> str:
        return f"Coverage({self.file!r}, teams={list(self.teams)!r})"

    def team_for_account(self, account: str) -> Team | None:
        """The team that answers ``account``, or None when no team does."""
        return self._by_account.get(account)

    def warnings(self, start: datetime, end: datetime) -> list[str]:
        """Coverage gaps between ``start`` and ``end`` (warnings, not errors)."""
        return [str(gap) for gap in coverage_gaps(self, start, end)]
