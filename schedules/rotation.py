"""On-call rotation and on-call overrides: who is on call at an instant, and shifts.

Instants inside this module are POSIX seconds (floats); wall-clock values are
:class:`~schedules.model.WallTime` and become instants only through
:meth:`WallTime.to_instant`, which carries the daylight-saving policy.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from schedules.model import OnCallOverride, WallTime

Unit = Literal["h", "d", "w"]
HANDOFFS_KEPT = 4096
"""Wall-clock handoff instants an on-call schedule remembers (a day rotation: 11 years)."""

_UNIT_DAYS = {"d": 1, "w": 7}


@dataclass(frozen=True, slots=True)
class Rotation:
    """``members`` take turns, ``members[0]`` from ``start``, each for ``every`` ``unit``.

    With ``d`` and ``w`` every handoff happens at the same local wall-clock time as
    ``start`` (so a shift is 23 or 25 hours long across a daylight-saving change);
    with ``h`` a shift is a fixed duration.
    """

    members: tuple[str, ...]
    start: WallTime
    every: int
    unit: Unit

    @property
    def period(self) -> timedelta:
        if self.unit == "h":
            return timedelta(hours=self.every)
        return timedelta(days=self.every * _UNIT_DAYS[self.unit])


class OnCall:
    """Who is on call for one team: a rotation (optional) with on-call overrides on top."""

    __slots__ = ("zone", "rotation", "_start", "_period", "_handoffs", "_override_starts", "_overrides")

    def __init__(
        self,
        zone: ZoneInfo,
        rotation: Rotation | None,
        overrides: tuple[OnCallOverride, ...] = (),
    ) -> None:
        self.zone = zone
        self.rotation = rotation
        self._start = rotation.start.to_instant(zone).timestamp() if rotation else math.inf
        self._period = rotation.period.total_seconds() if rotation else 0.0
        self._handoffs: dict[int, float] = {}
        spans = sorted(
            (o.start.to_instant(zone).timestamp(), o.end.to_instant(zone).timestamp(), o.member)
            for o in overrides
        )
        self._overrides = [span for span in spans if span[1] > span[0]]
        self._override_starts = [span[0] for span in self._overrides]

    @property
    def has_anyone(self) -> bool:
        """True when a rotation or at least one on-call override exists."""
        return self.rotation is not None or bool(self._overrides)

    def handoff(self, turn: int) -> float:
        """The instant (POSIX seconds) at which turn number ``turn`` begins."""
        rotation = self.rotation
        assert rotation is not None
        if rotation.unit == "h":
            return self._start + turn * self._period
        found = self._handoffs.get(turn)
        if found is None:
            # Wall-clock handoffs take a time-zone conversion each; every message asks.
            if len(self._handoffs) >= HANDOFFS_KEPT:
                self._handoffs.clear()
            found = WallTime(rotation.start.local + turn * rotation.period).to_instant(self.zone).timestamp()
            self._handoffs[turn] = found
        return found

    def turn_at(self, instant: float) -> int | None:
        """The rotation turn running at ``instant``; None before the rotation starts."""
        rotation = self.rotation
        if rotation is None or instant < self._start:
            return None
        if rotation.unit == "h":
            return int((instant - self._start) // self._period)
        local = datetime.fromtimestamp(instant, self.zone).replace(tzinfo=None)
        turn = (local - rotation.start.local) // rotation.period
        # Wall-clock arithmetic is off by at most one turn around a daylight-saving change.
        while turn > 0 and self.handoff(turn) > instant:
            turn -= 1
        while self.handoff(turn + 1) <= instant:
            turn += 1
        return turn

    def member_at(self, instant: float) -> tuple[str, ...]:
        """Member ids on call at ``instant`` (an on-call override beats the rotation)."""
        index = bisect_right(self._override_starts, instant) - 1
        if index >= 0 and instant < self._overrides[index][1]:
            return (self._overrides[index][2],)
        turn = self.turn_at(instant)
        if turn is None:
            return ()
        members = self.rotation.members  # type: ignore[union-attr]
        return (members[turn % len(members)],)

    def shifts(self, start: float, end: float) -> list[tuple[float, float, str]]:
        """``(start, end, member)`` on-call shifts clipped to ``[start, end)``, merged."""
        pieces: list[tuple[float, float, str]] = []
        rotation = self.rotation
        if rotation is not None and end > self._start:
            turn = self.turn_at(max(start, self._start)) or 0
            begin = self.handoff(turn)
            while begin < end:
                finish = self.handoff(turn + 1)
                pieces.append((begin, finish, rotation.members[turn % len(rotation.members)]))
                turn, begin = turn + 1, finish
        for o_start, o_end, member in self._overrides:
            if o_end <= start or o_start >= end:
                continue
            kept = [p for p in pieces if p[1] <= o_start or p[0] >= o_end]
            kept += [(p[0], o_start, p[2]) for p in pieces if p[0] < o_start < p[1]]
            kept += [(o_end, p[1], p[2]) for p in pieces if p[0] < o_end < p[1]]
            kept.append((o_start, o_end, member))
            pieces = sorted(kept)
        merged: list[tuple[float, float, str]] = []
        for p_start, p_end, member in pieces:
            p_start, p_end = max(p_start, start), min(p_end, end)
            if p_end <= p_start:
                continue
            if merged and merged[-1][2] == member and merged[-1][1] == p_start:
                merged[-1] = (merged[-1][0], p_end, member)
            else:
                merged.append((p_start, p_end, member))
        return merged
