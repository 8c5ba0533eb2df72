"""The coverage timeline of one team: mode lookups by bisection over precomputed chunks.

A team's rules (weekly spans, holidays, overrides) are expanded lazily, one chunk of
:data:`CHUNK_SECONDS` of UTC time at a time, into a sorted list of pieces
``[start, end)`` (POSIX seconds) with their mode and source, plus the merged stretches
of equal mode and, for each stretch, the start of the next open stretch. A lookup is a
dictionary hit and a ``bisect``; only the most recently used chunks are kept.

Rules, in order of precedence (README: The coverage file): overrides, then holidays (the whole local
day), then weekly spans (a span belongs to the day it starts on; one that crosses
midnight into a holiday stops at midnight). Time no span covers is closed. Every
wall-clock boundary becomes an instant through :meth:`WallTime.to_instant`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from schedules.holiday import HolidayCalendar
from schedules.model import (
    MINUTES_PER_DAY,
    Mode,
    Override,
    Source,
    WallTime,
    WeeklyHours,
)

CHUNK_SECONDS = 2**23  # about 97 days
HORIZON_SECONDS = 400 * 86400  # since/until/next_open are None beyond this
CHUNKS_KEPT = 24
_DAY = timedelta(days=1)

Piece = tuple[float, float, Mode, Source, "str | None"]


@dataclass(slots=True)
class Chunk:
    """Pieces and merged stretches covering ``[low, high)`` exactly, sorted."""

    low: float
    high: float
    starts: list[float]
    modes: list[Mode]
    sources: list[Source]
    notes: list[str | None]
    stretch_starts: list[float]
    stretch_ends: list[float]
    stretch_modes: list[Mode]
    stretch_sources: list[Source]
    stretch_notes: list[str | None]
    next_open: list[float | None]


class Timeline:
    """Mode, stretches and next opening of one team, for any instant (POSIX seconds)."""

    __slots__ = ("zone", "hours", "holidays", "_overrides", "_chunks", "_last_key", "_last_chunk")

    def __init__(
        self,
        zone: ZoneInfo,
        hours: WeeklyHours,
        holidays: HolidayCalendar,
        overrides: tuple[Override, ...] = (),
    ) -> None:
        self.zone = zone
        self.hours = hours
        self.holidays = holidays
        self._overrides = sorted(
            (o.start.to_instant(zone).timestamp(), o.end.to_instant(zone).timestamp(), o.mode, o.note)
            for o in overrides
        )
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._last_key: int | None = None
        self._last_chunk: Chunk | None = None

    # -- lookups ------------------------------------------------------------------

    def chunk_at(self, instant: float) -> Chunk:
        key = int(instant // CHUNK_SECONDS)
        if key == self._last_key:
            return self._last_chunk  # type: ignore[return-value]
        return self._chunk(key)

    def mode_at(self, instant: float) -> Mode:
        """The mode at ``instant``."""
        chunk = self.chunk_at(instant)
        return chunk.modes[bisect_right(chunk.starts, instant) - 1]

    def piece_at(self, instant: float) -> tuple[Mode, Source, str | None]:
        """Mode, source and note of the rule in force at ``instant``."""
        chunk = self.chunk_at(instant)
        index = bisect_right(chunk.starts, instant) - 1
        return chunk.modes[index], chunk.sources[index], chunk.notes[index]

    def stretch_bounds(self, instant: float) -> tuple[float | None, float | None, float | None]:
        """``(since, until, next_open)`` around ``instant``; None beyond the horizon."""
        chunk = self.chunk_at(instant)
        index = bisect_right(chunk.stretch_starts, instant) - 1
        mode = chunk.stretch_modes[index]
        since = self._since(chunk, index, instant)
        until = self._until(chunk, index, instant)
        if mode == "open":
            return since, until, instant
        return since, until, self._next_open(chunk, index, instant)

    def _since(self, chunk: Chunk, index: int, instant: float) -> float | None:
        mode = chunk.stretch_modes[index]
        since = chunk.stretch_starts[index]
        while since == chunk.low and instant - since <= HORIZON_SECONDS:
            chunk = self._chunk(int(chunk.low // CHUNK_SECONDS) - 1)
            if chunk.stretch_modes[-1] != mode:
                break
            since = chunk.stretch_starts[-1]
        return None if instant - since > HORIZON_SECONDS else since

    def _until(self, chunk: Chunk, index: int, instant: float) -> float | None:
        mode = chunk.stretch_modes[index]
        until = chunk.stretch_ends[index]
        while until == chunk.high and until - instant <= HORIZON_SECONDS:
            chunk = self._chunk(int(chunk.low // CHUNK_SECONDS) + 1)
            if chunk.stretch_modes[0] != mode:
                break
            until = chunk.stretch_ends[0]
        return None if until - instant > HORIZON_SECONDS else until

    def _next_open(self, chunk: Chunk, index: int, instant: float) -> float | None:
        found = chunk.next_open[index]
        while found is None and chunk.high - instant <= HORIZON_SECONDS:
            chunk = self._chunk(int(chunk.low // CHUNK_SECONDS) + 1)
            found = chunk.next_open[0]
        if found is None or found - instant > HORIZON_SECONDS:
            return None
        return found

    def stretches(self, start: float, end: float) -> list[tuple[float, float, Mode, Source, str | None]]:
        """Merged stretches overlapping ``[start, end)``, clipped to it, in order."""
        found: list[tuple[float, float, Mode, Source, str | None]] = []
        key = int(start // CHUNK_SECONDS)
        while key * CHUNK_SECONDS < end:
            chunk = self._chunk(key)
            first = max(bisect_right(chunk.stretch_starts, start) - 1, 0)
            for index in range(first, len(chunk.stretch_starts)):
                s_start, s_end = chunk.stretch_starts[index], chunk.stretch_ends[index]
                if s_start >= end:
                    break
                s_start, s_end = max(s_start, start), min(s_end, end)
                if s_end <= s_start:
                    continue
                mode = chunk.stretch_modes[index]
                if found and found[-1][2] == mode and found[-1][1] == s_start:
                    last = found[-1]
                    found[-1] = (last[0], s_end, mode, last[3], last[4] or chunk.stretch_notes[index])
                else:
                    found.append((s_start, s_end, mode, chunk.stretch_sources[index], chunk.stretch_notes[index]))
            key += 1
        return found

    def pieces(self, start: float, end: float) -> list[Piece]:
        """Pieces overlapping ``[start, end)``, clipped to it, in order.

        A piece is a run of one mode decided by one rule: weekly hours, one holiday
        (its name as the note) or one override (its note). Adjacent runs of the same
        mode, source and note are joined, also across chunks; runs of the same mode
        from different rules stay apart (a stretch may hold several pieces).
        """
        found: list[Piece] = []
        key = int(start // CHUNK_SECONDS)
        while key * CHUNK_SECONDS < end:
            chunk = self._chunk(key)
            first = max(bisect_right(chunk.starts, start) - 1, 0)
            for index in range(first, len(chunk.starts)):
                p_start = chunk.starts[index]
                if p_start >= end:
                    break
                p_end = chunk.starts[index + 1] if index + 1 < len(chunk.starts) else chunk.high
                p_start, p_end = max(p_start, start), min(p_end, end)
                if p_end <= p_start:
                    continue
                rule = (chunk.modes[index], chunk.sources[index], chunk.notes[index])
                if found and found[-1][2:] == rule and found[-1][1] == p_start:
                    found[-1] = (found[-1][0], p_end, *rule)
                else:
                    found.append((p_start, p_end, *rule))
            key += 1
        return found

    def piece_since(self, instant: float) -> float | None:
        """Where the piece at ``instant`` really starts (across chunks); None beyond the horizon."""
        chunk = self.chunk_at(instant)
        index = bisect_right(chunk.starts, instant) - 1
        rule = (chunk.modes[index], chunk.sources[index], chunk.notes[index])
        since = chunk.starts[index]
        while since == chunk.low and instant - since <= HORIZON_SECONDS:
            chunk = self._chunk(int(chunk.low // CHUNK_SECONDS) - 1)
            if (chunk.modes[-1], chunk.sources[-1], chunk.notes[-1]) != rule:
                break
            since = chunk.starts[-1]
        return None if instant - since > HORIZON_SECONDS else since

    # -- building -----------------------------------------------------------------

    def _chunk(self, key: int) -> Chunk:
        chunk = self._chunks.get(key)
        if chunk is None:
            chunk = self._build(key)
            self._chunks[key] = chunk
            if len(self._chunks) > CHUNKS_KEPT:
                self._chunks.popitem(last=False)
        else:
            self._chunks.move_to_end(key)
        self._last_key, self._last_chunk = key, chunk
        return chunk

    def _instant(self, day: date, minutes: int) -> float:
        local = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
        return WallTime(local).to_instant(self.zone).timestamp()

    def _day_pieces(self, day: date) -> list[Piece]:
        holiday = self.holidays.name_of(day)
        if holiday is not None:
            return [(self._instant(day, 0), self._instant(day, MINUTES_PER_DAY), self.holidays.mode, "holiday", holiday)]
        pieces: list[Piece] = []
        for span in self.hours.spans_on(day):
            end = span.end
            if span.crosses_midnight and self.holidays.name_of(day + _DAY) is not None:
                end = MINUTES_PER_DAY
            pieces.append((self._instant(day, span.start), self._instant(day, end), span.mode, "hours", None))
        return pieces

    def _build(self, key: int) -> Chunk:
        low, high = float(key * CHUNK_SECONDS), float((key + 1) * CHUNK_SECONDS)
        day = datetime.fromtimestamp(low, self.zone).date() - _DAY
        last = datetime.fromtimestamp(high, self.zone).date() + _DAY
        ruled: list[Piece] = []
        while day <= last:
            ruled.extend(self._day_pieces(day))
            day += _DAY
        ruled.sort(key=lambda piece: piece[0])

        pieces: list[Piece] = []
        cursor = low
        for p_start, p_end, mode, source, note in ruled:
            p_start, p_end = max(p_start, cursor), min(p_end, high)
            if p_end <= p_start:
                continue
            if p_start > cursor:
                pieces.append((cursor, p_start, "closed", "hours", None))
            pieces.append((p_start, p_end, mode, source, note))
            cursor = p_end
        if cursor < high:
            pieces.append((cursor, high, "closed", "hours", None))

        for o_start, o_end, mode, note in self._overrides:
            if o_end <= low or o_start >= high or o_end <= o_start:
                continue
            o_start, o_end = max(o_start, low), min(o_end, high)
            kept = [p for p in pieces if p[1] <= o_start or p[0] >= o_end]
            kept += [(p[0], o_start, *p[2:]) for p in pieces if p[0] < o_start < p[1]]
            kept += [(o_end, p[1], *p[2:]) for p in pieces if p[0] < o_end < p[1]]
            kept.append((o_start, o_end, mode, "override", note))
            pieces = sorted(kept, key=lambda piece: piece[0])

        return _chunk_of(low, high, pieces)


def _chunk_of(low: float, high: float, pieces: list[Piece]) -> Chunk:
    coalesced: list[Piece] = []
    for piece in pieces:
        if coalesced and coalesced[-1][2:] == piece[2:] and coalesced[-1][1] == piece[0]:
            coalesced[-1] = (coalesced[-1][0], piece[1], *piece[2:])
        else:
            coalesced.append(piece)

    s_starts: list[float] = []
    s_ends: list[float] = []
    s_modes: list[Mode] = []
    s_sources: list[Source] = []
    s_notes: list[str | None] = []
    for p_start, p_end, mode, source, note in coalesced:
        if s_modes and s_modes[-1] == mode:
            s_ends[-1] = p_end
            s_notes[-1] = s_notes[-1] or note
        else:
            s_starts.append(p_start)
            s_ends.append(p_end)
            s_modes.append(mode)
            s_sources.append(source)
            s_notes.append(note)

    next_open: list[float | None] = [None] * len(s_starts)
    upcoming: float | None = None
    for index in range(len(s_starts) - 1, -1, -1):
        if s_modes[index] == "open":
            upcoming = s_starts[index]
        next_open[index] = upcoming

    return Chunk(
        low=low,
        high=high,
        starts=[p[0] for p in coalesced],
        modes=[p[2] for p in coalesced],
        sources=[p[3] for p in coalesced],
        notes=[p[4] for p in coalesced],
        stretch_starts=s_starts,
        stretch_ends=s_ends,
        stretch_modes=s_modes,
        stretch_sources=s_sources,
        stretch_notes=s_notes,
        next_open=next_open,
    )
