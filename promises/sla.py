"""First-response SLA: how long customers waited for a person, per team and mode.

Pure: events and a :class:`schedules.Coverage` in, frozen results and text out; no
Faust, broker, clock or environment. ``offhours sla report`` (:mod:`offhours.commands`) reads
the events and prints what these functions return; the live pipeline feeds the same
:class:`FirstResponse` to :func:`streams.metrics.observe_first_response`.

Definition of a *first response*, the one place it is decided:

* In a conversation, a first response is the first ``agent_reply`` after one or more
  customer messages (``dm``, ``mention``, ``comment``) that came after the previous
  staff reply (or the conversation's start). A second reply with no new customer
  message in between is not a first response; a reply with no customer message
  waiting is ignored.
* Its time (:attr:`FirstResponse.waited`) is the reply's ``at`` minus the ``at`` of the
  FIRST of those waiting customer messages: the customer has waited since then.
* Its team is the team whose ``accounts`` hold the reply's account; its mode is that
  team's mode (coverage engine) at the first waiting customer message, so an evening
  message answered the next morning counts in the evening's mode.
* Events are taken in ``at`` order within each conversation (input order breaks ties);
  an event id seen again is the same message and counts once.
* An input that is not an event (README: Events), or whose account no team answers, is
  skipped and recorded as a :class:`Skip` (where it was and why); nothing else stops.

Figures (:func:`sla_rows`) are per team and mode, over the responses whose customer
message falls in ``[start, end)``: count, median and p90 by the nearest-rank rule of
:meth:`promises.rules.FirstResponseStats.percentile`, and breaches, the responses
slower than the mode's target (``escalation: targets:``). A mode without a target
counts no breach. Durations are whole seconds, measured as real elapsed time, so a
wait across a daylight-saving change is what the customer lived, not the wall-clock
difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from promises.rules import FirstResponseStats
from records.wire import CUSTOMER_KINDS, InvalidEvent, SocialEvent, parse_event
from schedules import Coverage, Mode
from schedules.model import MODES


@dataclass(frozen=True, slots=True)
class FirstResponse:
    """One first response: ``team`` answered ``conversation`` at ``replied_at``.

    ``customer_at`` is the first customer message it answers; ``mode`` is the team's
    mode at that message.
    """

    team: str
    mode: Mode
    conversation: str
    customer_at: datetime
    replied_at: datetime

    @property
    def waited(self) -> timedelta:
        """How long the customer waited: ``replied_at - customer_at`` (real elapsed time)."""
        return self.replied_at - self.customer_at

    @property
    def seconds(self) -> int:
        """The wait in whole seconds, as :class:`FirstResponseStats` measures it (never negative)."""
        return max(int(self.replied_at.timestamp()) - int(self.customer_at.timestamp()), 0)

    def breaches(self, target: timedelta | None) -> bool:
        """True when the wait is longer than ``target``; never without a target."""
        return target is not None and self.seconds > target.total_seconds()


@dataclass(frozen=True, slots=True)
class Skip:
    """An input left out of the figures: ``where`` it was (``line 7``) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class _Message:
    """What the fold keeps of one event: its order keys, kind and team."""

    at: datetime
    seq: int
    kind: str
    team: str


@dataclass(slots=True)
class ResponseTracker:
    """Collects events, then folds each conversation into its first responses.

    Feed it with :meth:`add` (parsed events) or :meth:`add_raw` (one JSON line or
    record value); ask :meth:`responses` at the end. Events must all be in before the
    fold, because a conversation is read in ``at`` order whatever the input order.
    ``skipped`` lists the inputs left out; ``duplicates`` counts the repeated ids.
    """

    coverage: Coverage
    skipped: list[Skip] = field(default_factory=list)
    duplicates: int = 0
    _seen: set[str] = field(default_factory=set)
    _conversations: dict[str, list[_Message]] = field(default_factory=dict)

    def add_raw(self, raw: bytes | str, where: str) -> None:
        """Parse one event (README: Events) and :meth:`add` it; an invalid one is skipped."""
        try:
            event = parse_event(raw)
        except InvalidEvent as invalid:
            self.skipped.append(Skip(where, invalid.reason))
            return
        self.add(event, where)

    def add(self, event: SocialEvent, where: str) -> None:
        """Take one event; one whose account no team answers is skipped."""
        if event.id in self._seen:
            self.duplicates += 1
            return
        team = self.coverage.team_for_account(event.account)
        if team is None:
            self.skipped.append(Skip(where, f"account {event.account!r} is not under any team's accounts"))
            return
        self._seen.add(event.id)
        messages = self._conversations.setdefault(event.conversation, [])
        messages.append(_Message(event.at, len(self._seen), event.kind, team.id))

    def responses(self) -> list[FirstResponse]:
        """Every first response of the events taken so far, in the order of ``replied_at``."""
        found: list[FirstResponse] = []
        for conversation, messages in self._conversations.items():
            waiting_since: datetime | None = None
            for message in sorted(messages, key=lambda m: (m.at, m.seq)):
                if message.kind in CUSTOMER_KINDS:
                    if waiting_since is None:
                        waiting_since = message.at
                elif waiting_since is not None:
                    team = self.coverage.teams[message.team]
                    found.append(
                        FirstResponse(
                            team=team.id,
                            mode=team.mode_at(waiting_since),
                            conversation=conversation,
                            customer_at=waiting_since,
                            replied_at=message.at,
                        )
                    )
                    waiting_since = None
        found.sort(key=lambda r: (r.replied_at, r.conversation))
        return found


def first_responses(events: Iterable[SocialEvent], coverage: Coverage) -> Iterator[FirstResponse]:
    """The first responses in ``events`` (see the module docstring), by ``replied_at``.

    Events of unknown accounts are left out; use :class:`ResponseTracker` to learn which.
    """
    tracker = ResponseTracker(coverage)
    for n, event in enumerate(events, start=1):
        tracker.add(event, f"event {n}")
    yield from tracker.responses()


@dataclass(frozen=True, slots=True)
class SlaRow:
    """The first-response figures of one team in one mode.

    ``median`` and ``p90`` are None without responses; ``target`` is the mode's
    first-response target (None: none set, so ``breaches`` is 0).
    """

    team: str
    mode: Mode
    count: int
    median: timedelta | None
    p90: timedelta | None
    breaches: int
    target: timedelta | None


def sla_rows(
    responses: Iterable[FirstResponse],
    coverage: Coverage,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[SlaRow]:
    """One row per team and mode with at least one response whose ``customer_at`` is in ``[start, end)``.

    ``start``/``end`` None leave that side open. Rows are sorted by team id, then mode
    (open, reduced, closed). A response of a team no longer in ``coverage`` is left out.
    """
    samples: dict[tuple[str, Mode], list[tuple[int, int]]] = {}
    for response in responses:
        if start is not None and response.customer_at < start:
            continue
        if end is not None and response.customer_at >= end:
            continue
        if response.team not in coverage.teams:
            continue
        samples.setdefault((response.team, response.mode), []).append(
            (int(response.replied_at.timestamp()), response.seconds)
        )
    # Built directly rather than through record(): a report keeps every sample, with no
    # reservoir limit or recency window, and shares the percentile rule with the promises.
    stats = FirstResponseStats(samples={key: tuple(kept) for key, kept in samples.items()})
    rows = []
    for team_id, mode in sorted(samples, key=lambda key: (key[0], MODES.index(key[1]))):
        target = coverage.teams[team_id].escalation.target_for(mode)
        summary = stats.summary(team_id, mode, target)
        rows.append(
            SlaRow(
                team=team_id,
                mode=mode,
                count=summary.count,
                median=summary.p50,
                p90=summary.p90,
                breaches=summary.breaches,
                target=target,
            )
        )
    return rows


def format_duration(duration: timedelta | None) -> str:
    """A short reading of ``duration``: ``45s``, ``42m``, ``1h05m``, ``2d03h``; ``-`` for None.

    Truncated to the unit shown (59 min 59 s is ``59m``).
    """
    if duration is None:
        return "-"
    seconds = max(int(duration.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 24:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


TABLE_COLUMNS = ("team", "mode", "count", "median", "p90", "target", "breaches")


def render_table(rows: Iterable[SlaRow]) -> str:
    """An aligned text table, one line per row under a header (team and mode left-aligned)."""
    cells = [list(TABLE_COLUMNS)]
    for row in rows:
        cells.append(
            [
                row.team,
                row.mode,
                str(row.count),
                format_duration(row.median),
                format_duration(row.p90),
                format_duration(row.target),
                str(row.breaches),
            ]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_COLUMNS))]
    lines = []
    for line in cells:
        text = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)]
        lines.append("  ".join(text).rstrip())
    return "\n".join(lines) + "\n"


def _whole_seconds(duration: timedelta | None) -> int | None:
    return None if duration is None else int(duration.total_seconds())


def row_json(row: SlaRow) -> dict[str, object]:
    """The row as a JSON object: the table's columns, durations in whole seconds (null when none)."""
    return {
        "team": row.team,
        "mode": row.mode,
        "count": row.count,
        "median": _whole_seconds(row.median),
        "p90": _whole_seconds(row.p90),
        "target": _whole_seconds(row.target),
        "breaches": row.breaches,
    }


def render_json_lines(rows: Iterable[SlaRow], coverage_version: int | None = None) -> str:
    """One compact JSON object per row and line (:func:`row_json`), each with
    ``coverage_version``: the config topic's version the figures used (None: a file)."""
    return "".join(
        orjson.dumps({**row_json(row), "coverage_version": coverage_version}).decode() + "\n" for row in rows
    )
