"""The coverage model: plain, frozen data that the loader builds and the engine reads.

Two kinds of time never mix here. *Wall-clock* values (:class:`WallTime`, a span's
minutes of the day, a holiday's :class:`~datetime.date`) are what operations write in the
coverage file, in a team's zone. *Instants* are aware :class:`~datetime.datetime` values
(or, inside the engine, POSIX seconds). The only bridge from the first to the second is
:meth:`WallTime.to_instant`, which states the daylight-saving policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Mode = Literal["open", "reduced", "closed"]
Source = Literal["hours", "holiday", "override"]

MODES: tuple[Mode, ...] = ("open", "reduced", "closed")
MINUTES_PER_DAY = 24 * 60
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, order=True, slots=True)
class WallTime:
    """A local wall-clock date and time (minute precision) in a team's zone; not an instant."""

    local: datetime

    def __post_init__(self) -> None:
        if self.local.tzinfo is not None:
            raise ValueError("a wall-clock time is naive; it takes its team's zone")

    def to_instant(self, zone: ZoneInfo) -> datetime:
        """The instant at which this wall-clock time happens in ``zone`` (aware, UTC).

        Daylight-saving policy, the one place it is decided (README: The coverage file):

        * a wall-clock time inside a spring-forward gap (it does not exist that day, e.g.
          02:30 in Europe/Rome on the last Sunday of March) takes effect at the first
          instant after the gap (03:00 local, the transition itself);
        * an ambiguous wall-clock time in a fall-back overlap (e.g. 02:30 in Europe/Rome
          on the last Sunday of October) takes its first occurrence (02:30 +02:00).

        Every boundary the engine computes (spans, holidays, overrides, rotation handoffs)
        goes through this method, so the policy holds everywhere.
        """
        aware = self.local.replace(tzinfo=zone, fold=0)
        instant = aware.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == self.local:
            return instant
        # In a gap: walk to the first wall-clock minute that exists (gaps end on a minute).
        moment = self.local
        while True:
            moment += _MINUTE
            candidate = moment.replace(tzinfo=zone).astimezone(UTC)
            if candidate.astimezone(zone).replace(tzinfo=None) == moment:
                return candidate

    def __str__(self) -> str:
        return self.local.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class Span:
    """One weekly span: from ``start`` to ``end`` minutes of the local day, in ``mode``.

    ``end`` is above :data:`MINUTES_PER_DAY` when the span crosses midnight (its tail
    belongs to the next day) and equal to it for ``24:00``.
    """

    start: int
    end: int
    mode: Mode
    text: str = field(default="", compare=False)

    @property
    def crosses_midnight(self) -> bool:
        return self.end > MINUTES_PER_DAY


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Spans per weekday (Monday is 0), each day's spans sorted by start."""

    days: tuple[tuple[Span, ...], ...]

    def spans_on(self, day: date) -> tuple[Span, ...]:
        return self.days[day.weekday()]

    def has_open(self) -> bool:
        return any(span.mode == "open" for spans in self.days for span in spans)


@dataclass(frozen=True, slots=True)
class Override:
    """A coverage override: ``mode`` for the wall-clock range ``[start, end)``."""

    start: WallTime
    end: WallTime
    mode: Mode
    note: str | None = None


@dataclass(frozen=True, slots=True)
class OnCallOverride:
    """``member`` replaces the rotation's member for the wall-clock range ``[start, end)``."""

    start: WallTime
    end: WallTime
    member: str


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A person who can be on call; ``notify`` lists their notification targets.

    ``chatwoot_agent`` is their user id in the team's Chatwoot desk (``chatwoot:``), or None.
    """

    id: str
    name: str
    notify: tuple[str, ...] = ()
    chatwoot_agent: int | None = None


CHATWOOT_PREFIX = "chatwoot"
"""The scheme of the account names a team's ``chatwoot:`` block gives it."""


def chatwoot_account(account: int, inbox: int) -> str:
    """The coverage account of Chatwoot ``inbox`` of ``account``: ``chatwoot:<account>/<inbox>``.

    A team with ``chatwoot: {account: 1, inboxes: [3, 4]}`` answers ``chatwoot:1/3`` and
    ``chatwoot:1/4`` as if its ``accounts`` listed them; the Chatwoot webhook's events
    carry these names.
    """
    return f"{CHATWOOT_PREFIX}:{account}/{inbox}"


@dataclass(frozen=True, slots=True)
class ChatwootDesk:
    """A team's ``chatwoot:`` block: the Chatwoot ``account`` id and the ``inboxes`` it answers.

    ``hold``: offhours is the inboxes' agent bot, so their conversations start
    ``pending`` (hidden from the agents' default view); offhours releases them (status
    ``open``) at the opening, and at once during open hours (docs/chatwoot.md, "Hold mode").
    """

    account: int
    inboxes: tuple[int, ...]
    hold: bool = False

    @property
    def accounts(self) -> tuple[str, ...]:
        """The coverage account names of the inboxes, in the file's order."""
        return tuple(chatwoot_account(self.account, inbox) for inbox in self.inboxes)


@dataclass(frozen=True, slots=True)
class TriageOptions:
    """Per-team options of the triage policy (the ``triage:`` mapping of a team)."""

    ack_cooldown: timedelta = timedelta(hours=12)
    agent_active: timedelta = timedelta(minutes=10)
    reply_within: Mapping[str, timedelta] = field(
        default_factory=lambda: {"open": timedelta(hours=2), "reduced": timedelta(minutes=40)}
    )
    ack_when_open: bool = False
    reduced_staff: tuple[str, ...] = ()
    public_reply: bool = True
    urgent_defaults: bool = True
    urgent_keywords: tuple[str, ...] = ()
    urgent_patterns: tuple[str, ...] = ()
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stretch:
    """A contiguous stretch of one mode, ``[start, end)``, aware in the team's zone.

    Adjacent pieces of the same mode are merged; ``source`` is that of the first piece
    and ``note`` the first note among the pieces. :meth:`schedules.Team.pieces` returns
    stretches of one rule each, whose ``source`` and ``note`` hold for all of it.
    """

    start: datetime
    end: datetime
    mode: Mode
    source: Source
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Shift:
    """``member`` is on call for ``[start, end)``, aware in the team's zone."""

    start: datetime
    end: datetime
    member: str


def _instant_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class CoverageAt:
    """A team's coverage at one instant: the answer of :meth:`schedules.Team.at`.

    ``since``/``until`` bound the contiguous stretch of ``mode`` around ``at``;
    ``next_open`` is the first instant at or after ``at`` that is open. Each is None when
    no change lies within 400 days.
    """

    team: str
    at: datetime
    mode: Mode
    source: Source
    since: datetime | None
    until: datetime | None
    next_open: datetime | None
    on_call: tuple[str, ...]
    note: str | None = None

    def to_contract(self) -> dict:
        """Exactly the JSON object of ``offhours coverage at`` (README: Command line; instants as ISO 8601 to the second)."""
        return {
            "team": self.team,
            "at": _instant_text(self.at),
            "mode": self.mode,
            "since": _instant_text(self.since),
            "until": _instant_text(self.until),
            "next_open": _instant_text(self.next_open),
            "on_call": list(self.on_call),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault of a coverage file: where, what is wrong and what to write instead."""

    file: str
    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text


class CoverageInvalid(Exception):
    """A coverage file was rejected as a whole; ``problems`` lists every fault found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = list(problems)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


EscalationKind = Literal["next_on_call", "lead", "channel"]
ESCALATION_SCHEMES: tuple[str, ...] = ("slack", "teams", "mailto", "webhook", "telegram")
"""The notify URI schemes a fallback channel of an escalation chain may use."""


@dataclass(frozen=True, slots=True)
class EscalationLink:
    """One link of an escalation chain, as written in the coverage file.

    ``next_on_call`` (the rotation member after the one on call), ``lead`` (``target``
    is a staff id: ``lead:marta``) or ``channel`` (``target`` is a notify URI such as
    ``slack:https://...``).
    """

    kind: EscalationKind
    target: str | None = None

    def __str__(self) -> str:
        if self.kind == "next_on_call":
            return "next_on_call"
        if self.kind == "lead":
            return f"lead:{self.target}"
        # A channel URI may carry a secret (a webhook token): show its scheme only.
        return f"{(self.target or '').partition(':')[0]}:…"


@dataclass(frozen=True, slots=True)
class EscalationChain:
    """Who is notified when a routed or paged message stays unclaimed, for one mode.

    Every ``after`` without a claim the next link of ``chain`` is notified; the chain is
    walked ``repeat`` times in all, so at most ``len(chain) * repeat`` escalations.
    """

    after: timedelta
    chain: tuple[EscalationLink, ...]
    repeat: int = 1

    @property
    def steps(self) -> int:
        """How many escalations this chain sends at most."""
        return len(self.chain) * self.repeat


DEFAULT_ESCALATION_CHAIN = EscalationChain(timedelta(minutes=15), (EscalationLink("next_on_call"),), 1)
"""The chain of a mode the ``escalation:`` block leaves out: next on call after 15 min, once."""


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """A team's ``escalation:`` block: chains per mode, limits and first-response targets.

    Defaults (a team without the block, or a key left out): every mode escalates with
    :data:`DEFAULT_ESCALATION_CHAIN`; a claim must be answered within 30 minutes; a
    conversation on a windowed platform is routed 2 hours before its reply window
    closes; no first-response target (so no breach is counted) for a mode not listed.
    """

    chains: Mapping[str, EscalationChain] = field(default_factory=dict)
    claim_limit: timedelta = timedelta(minutes=30)
    window_margin: timedelta = timedelta(hours=2)
    targets: Mapping[str, timedelta] = field(default_factory=dict)

    def chain_for(self, mode: str) -> EscalationChain:
        """The chain of ``mode``, or :data:`DEFAULT_ESCALATION_CHAIN` when not configured."""
        return self.chains.get(mode, DEFAULT_ESCALATION_CHAIN)

    def target_for(self, mode: str) -> timedelta | None:
        """The first-response target of ``mode``, or None when none is set."""
        return self.targets.get(mode)
