"""Load and validate a coverage file (README: The coverage file) into a :class:`~schedules.Coverage`.

The YAML is composed into PyYAML's node tree (not constructed into Python objects) so
that every problem can name its line, and so that YAML 1.1 surprises cannot creep in:
a scalar is read as the text written (``country: NO`` is Norway, not ``False``;
``09:00`` is a time, not 540). Validation never stops at the first fault: the file is
rejected as a whole with every problem found, each saying what to write instead.

Coverage may come from people other than the host's operator (the operations API), so
loading is bounded (:class:`LoadLimits`): the text's size, the nesting depth, the number
of nodes once YAML aliases are expanded (an "alias bomb" is refused before it is
walked), the number of teams and the number of problems reported. Holiday calendars
(``holidays.ics``) are read through a :class:`~schedules.holiday.CalendarSource` the
caller chooses: the operator's own files for :func:`load_coverage`, one folder or none
for coverage from elsewhere. Acknowledgment templates are checked by
:mod:`schedules.templates`, the rules the worker renders them by.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from yaml.composer import Composer
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from schedules.coverage import Coverage, Team
from schedules.files import read_regular_file
from schedules.holiday import (
    ICS_FIRST_DAY,
    ICS_LAST_DAY,
    CalendarSource,
    CalendarUnavailable,
    FileCalendars,
    HolidayCalendar,
    supported_countries,
)
from schedules.model import (
    ESCALATION_SCHEMES,
    MINUTES_PER_DAY,
    MODES,
    ChatwootDesk,
    CoverageInvalid,
    EscalationChain,
    EscalationLink,
    EscalationPolicy,
    Mode,
    OnCallOverride,
    Override,
    Problem,
    Span,
    StaffMember,
    TriageOptions,
    WallTime,
    WeeklyHours,
    chatwoot_account,
)
from schedules.patterns import pattern_problem
from schedules.rotation import OnCall, Rotation
from schedules.templates import TEMPLATE_KINDS, template_problem

__all__ = [
    "ICS_FIRST_DAY", "ICS_LAST_DAY", "LoadLimits", "load_coverage", "load_coverage_text",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NOTIFY_SCHEMES = ESCALATION_SCHEMES
"""The schemes of staff ``notify`` URIs: one notifier each in the responders."""
_URL_SCHEMES = ("slack", "teams", "webhook")
MAX_PATTERN_CHARS = 500


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """How much a coverage text may ask of the loader; beyond, it is refused with a problem.

    ``max_bytes``: the UTF-8 size of the text. ``max_depth``: how deeply collections nest
    (a coverage file needs about eight levels). ``max_nodes``: YAML nodes once every alias
    is expanded, i.e. what the loader would walk. ``max_teams``: teams in the file.
    ``max_problems``: problems reported (the rest are counted in one more problem).
    """

    max_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_nodes: int = 250_000
    max_teams: int = 1000
    max_problems: int = 200


DEFAULT_LIMITS = LoadLimits()

try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml
    _CParser = None  # type: ignore[assignment,misc]


def _size_text(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size} bytes"


class _Refused(yaml.YAMLError):
    """A text the bounded composer will not build: too deep, or aliases expanding too far."""

    def __init__(self, message: str, hint: str, mark: Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.mark = mark


class _BoundedLoader(Composer, Resolver):
    """PyYAML's composer with a bound on nesting, and the first alias remembered.

    Events come from libyaml when PyYAML has it (six times faster than the pure-Python
    scanner, with the same marks), else from PyYAML's own parser; either way the tree
    is built here, with the safe loader's resolver.
    """

    def __init__(self, text: str, limits: LoadLimits) -> None:
        self._events: Any = _CParser(text) if _CParser is not None else yaml.SafeLoader(text)
        Composer.__init__(self)
        Resolver.__init__(self)
        # Bound once: the composer asks for events a few times per node.
        self.check_event = self._events.check_event  # type: ignore[method-assign]
        self.peek_event = self._events.peek_event  # type: ignore[method-assign]
        self.get_event = self._events.get_event  # type: ignore[method-assign]
        self._limits = limits
        self._depth = 0
        self.first_alias: Mark | None = None

    def check_event(self, *choices: Any) -> bool:
        return bool(self._events.check_event(*choices))

    def peek_event(self) -> Any:
        return self._events.peek_event()

    def get_event(self) -> Any:
        return self._events.get_event()

    def dispose(self) -> None:
        self._events.dispose()

    def compose_node(self, parent: Node | None, index: object) -> Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            if self.first_alias is None:
                self.first_alias = self.peek_event().start_mark
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > self._limits.max_depth:
                raise _Refused(
                    f"nested deeper than {self._limits.max_depth} levels",
                    "a coverage file needs a few levels (teams, a team, its keys, their lists); remove the extra nesting",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose_bounded(text: str, limits: LoadLimits = DEFAULT_LIMITS) -> Node | None:
    """The YAML node tree of ``text``, refusing nesting and alias expansion beyond ``limits``.

    Raises ``yaml.YAMLError`` (its subclass ``_Refused`` for the bounds). Aliases are
    allowed as long as the tree they expand to has at most ``limits.max_nodes`` nodes
    and no alias refers to a collection that contains it.
    """
    loader = _BoundedLoader(text, limits)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    if root is not None and loader.first_alias is not None:
        _check_expansion(root, limits, loader.first_alias)
    return root


def _check_expansion(root: Node, limits: LoadLimits, first_alias: Mark) -> None:
    """Refuse a tree whose aliases expand beyond ``limits.max_nodes`` nodes, or into a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # Iterative post-order walk; a shared node is sized once (its size memoised).
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > limits.max_nodes:
                raise _Refused(
                    f"anchors and aliases expand to more than {limits.max_nodes} values",
                    "write the values out, or reuse an anchor less often; aliases are for small repeated parts",
                    first_alias,
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _Refused("an alias refers to a collection that contains it",
                           "remove the alias, or point it at another anchor", first_alias)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_SPAN = re.compile(r"\s*([^\s-]+)\s*-\s*([^\s-]+)(?:\s+(\S+))?\s*")
_DURATION = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")
_LOCALE = re.compile(r"[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,4})?")
_DURATION_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_TOP_KEYS = ("teams",)
_TEAM_KEYS = (
    "name", "timezone", "locale", "accounts", "hours", "holidays",
    "overrides", "on_call", "staff", "triage", "escalation", "chatwoot",
)
_CHATWOOT_KEYS = ("account", "inboxes", "hold")
_CHATWOOT_REQUIRED = ("account", "inboxes")
_MAX_ID = 2**63 - 1
_HOLIDAY_KEYS = ("country", "subdivision", "extra", "mode", "ics")
_OVERRIDE_KEYS = ("from", "to", "mode", "note")
_ON_CALL_KEYS = ("rotation", "overrides")
_ROTATION_KEYS = ("members", "start", "every")
_ON_CALL_OVERRIDE_KEYS = ("from", "to", "member")
_STAFF_KEYS = ("name", "notify", "chatwoot_agent")
_TRIAGE_KEYS = (
    "ack_cooldown", "agent_active", "reply_within", "ack_when_open", "reduced_staff",
    "public_reply", "urgent", "templates",
)
_URGENT_KEYS = ("defaults", "keywords", "patterns")
_TEMPLATE_KINDS = ("dm", "public")
_REPLY_MODES = ("open", "reduced")
_ESCALATION_KEYS = (*MODES, "claim_limit", "window_margin", "targets")
_CHAIN_KEYS = ("after", "chain", "repeat")
_CHAIN_EXAMPLE = '[next_on_call, lead:marta, "slack:https://hooks.slack.com/..."]'


def load_coverage(path: str | Path, *, limits: LoadLimits = DEFAULT_LIMITS) -> Coverage:
    """Load the coverage file at ``path``; raise :class:`CoverageInvalid` listing every problem.

    The operator's own file: its ``holidays.ics`` paths are relative to its folder (or
    absolute), and problems about them are precise (:class:`~schedules.holiday.FileCalendars`).
    """
    path = Path(path)
    name = str(path)
    try:
        raw = read_regular_file(path, limits.max_bytes)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise CoverageInvalid([Problem(name, None, "file not found", "check the path (e.g. examples/coverage.yaml)")]) from None
    except IsADirectoryError:
        raise CoverageInvalid([Problem(name, None, "is a folder, not a file", "name the coverage YAML file itself")]) from None
    except UnicodeDecodeError:
        raise CoverageInvalid([Problem(name, None, "is not UTF-8 text", "save the file as UTF-8 YAML")]) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if reason.startswith("larger than"):
            raise CoverageInvalid([Problem(name, None, f"is larger than {_size_text(limits.max_bytes)}",
                                           "a coverage file is far smaller; check that this is the right file")]) from None
        raise CoverageInvalid([Problem(name, None, f"cannot be read ({reason})", "check the file's permissions")]) from None
    return load_coverage_text(text, filename=name, base_dir=path.parent, limits=limits)


def load_coverage_text(
    text: str,
    filename: str = "<coverage>",
    base_dir: Path | None = None,
    *,
    calendars: CalendarSource | None = None,
    limits: LoadLimits = DEFAULT_LIMITS,
) -> Coverage:
    """Load coverage from YAML ``text``; raise :class:`CoverageInvalid` listing every problem.

    ``filename`` names it in problems. ``calendars`` reads ``holidays.ics`` calendars;
    None means the operator's own files, relative to ``base_dir`` (or absolute): pass a
    :class:`~schedules.holiday.DirectoryCalendars` or :class:`~schedules.holiday.NoCalendars`
    for coverage from anyone else. ``limits`` bound what the text may ask (:class:`LoadLimits`).
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_bytes:
        raise CoverageInvalid([Problem(
            filename, None, f"the coverage is {size} bytes long; at most {_size_text(limits.max_bytes)} is accepted",
            "a coverage file for a thousand teams fits; check that this is the right file",
        )])
    source = calendars if calendars is not None else FileCalendars(base_dir or Path("."))
    reader = _Reader(filename, source, limits)
    coverage = reader.read(text)
    if reader.problems or coverage is None:
        problems = sorted(reader.problems, key=lambda p: (p.line is None, p.line or 0))
        if len(problems) > limits.max_problems:
            more = len(problems) - limits.max_problems
            problems = problems[: limits.max_problems] + [
                Problem(filename, None, f"and {more} more problem(s)", "fix the ones above, then check again")
            ]
        raise CoverageInvalid(problems)
    return coverage


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _quoted(choices: Iterable[str]) -> str:
    return ", ".join(f"'{choice}'" for choice in choices)


def parse_duration(text: str, units: str = "mhd") -> timedelta | None:
    """``"12h"`` -> 12 hours; units among ``units`` (of m, h, d, w); None when invalid."""
    match = _DURATION.fullmatch(text)
    if not match or match.group(2) not in units or int(match.group(1)) <= 0:
        return None
    return timedelta(seconds=int(match.group(1)) * _DURATION_SECONDS[match.group(2)])


def parse_wall_time(text: str) -> WallTime | None:
    """``"2026-12-24 14:00"`` (also ``T``, seconds, a date alone, or ``24:00``) -> WallTime."""
    text = text.strip()
    next_day = False
    if text.endswith("24:00") and len(text) > 5:
        text, next_day = text[:-5] + "00:00", True
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        return None
    if local.tzinfo is not None:
        return None
    return WallTime(local + timedelta(days=1) if next_day else local)


class _Reader:
    """Walks the node tree once, collecting problems and building the model."""

    def __init__(self, filename: str, calendars: CalendarSource, limits: LoadLimits = DEFAULT_LIMITS) -> None:
        self.filename = filename
        self.calendars = calendars
        self.limits = limits
        self.problems: list[Problem] = []

    def problem(self, node: Node | None, message: str, hint: str = "") -> None:
        line = _line(node) if node is not None else None
        self.problems.append(Problem(self.filename, line, message, hint))

    # -- generic node readers ---------------------------------------------------

    def mapping(
        self, node: Node, where: str, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where} must be a mapping of 'key: value' lines", f"write it as e.g. {_quoted(allowed)} keys")
            return None
        allowed = tuple(allowed)
        found: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            # A key that is a list or mapping is named by its kind, never printed (it may be huge).
            key = key_node.value if isinstance(key_node, ScalarNode) else f"<a {key_node.id}>"
            if key in found:
                self.problem(key_node, f"{where}: key '{key}' is written twice (also line {_line(found[key][0])})", "keep one of them")
                continue
            if allowed and key not in allowed:
                self.problem(key_node, f"{where}: unknown key '{key}'", f"{_suggest(key, allowed)}allowed keys: {_quoted(allowed)}")
                continue
            found[key] = (key_node, value_node)
        for key in required:
            if key not in found:
                self.problem(node, f"{where}: '{key}' is missing", f"add '{key}:'")
        return found

    def entries(self, node: Node, where: str) -> list[tuple[str, Node, Node]] | None:
        """A mapping with free keys (team ids, day keys, staff ids), in file order."""
        found = self.mapping(node, where, ())
        if found is None:
            return None
        return [(key, key_node, value) for key, (key_node, value) in found.items()]

    def text(self, node: Node, where: str, example: str) -> str | None:
        if isinstance(node, ScalarNode) and not _is_null(node) and node.value.strip():
            return node.value.strip()
        self.problem(node, f"{where} must be a text value", f"write e.g. {example}")
        return None

    def sequence(self, node: Node, where: str, example: str, scalar_ok: bool = False) -> list[Node] | None:
        if isinstance(node, SequenceNode):
            return list(node.value)
        if scalar_ok and isinstance(node, ScalarNode) and not _is_null(node):
            return [node]
        self.problem(node, f"{where} must be a list", f"write e.g. {example}")
        return None

    def texts(self, node: Node, where: str, example: str) -> list[tuple[str, Node]]:
        items = self.sequence(node, where, example)
        found: list[tuple[str, Node]] = []
        for index, item in enumerate(items or ()):
            value = self.text(item, f"{where}[{index}]", example)
            if value is not None:
                found.append((value, item))
        return found

    def boolean(self, node: Node, where: str, default: bool) -> bool:
        if isinstance(node, ScalarNode) and node.tag == _BOOL_TAG:
            return node.value.lower() in ("true", "yes", "on")
        shown = f", not '{node.value[:40]}'" if isinstance(node, ScalarNode) else ""
        self.problem(node, f"{where} must be true or false{shown}", "write true or false")
        return default

    def positive_id(self, node: Node, where: str, example: str) -> int | None:
        """A positive whole number of at most 64 bits (a Chatwoot id), written as digits."""
        value = node.value.strip() if isinstance(node, ScalarNode) and not _is_null(node) else None
        if value is not None and value.isascii() and value.isdigit() and 0 < int(value) <= _MAX_ID:
            return int(value)
        shown = f", not '{value[:40]}'" if value is not None else ""
        self.problem(node, f"{where} must be a positive whole number{shown}", f"write the id Chatwoot shows, e.g. {example}")
        return None

    def mode(self, node: Node, where: str) -> Mode | None:
        value = self.text(node, where, "open, reduced or closed")
        if value is None:
            return None
        if value not in MODES:
            self.problem(node, f"{where}: unknown mode '{value}'", f"{_suggest(value, MODES)}write open, reduced or closed")
            return None
        return value  # type: ignore[return-value]

    def duration(self, node: Node, where: str, units: str = "mhd") -> timedelta | None:
        example = {"mhd": "'10m', '2h' or '1d'", "hdw": "'12h', '1d' or '1w'"}.get(units, "'2h'")
        value = self.text(node, where, example)
        if value is None:
            return None
        parsed = parse_duration(value, units)
        if parsed is None:
            self.problem(node, f"{where}: '{value}' is not a duration", f"write a whole number and a unit, e.g. {example}")
        return parsed

    def wall_time(self, node: Node, where: str) -> WallTime | None:
        value = self.text(node, where, '"2026-12-24 14:00"')
        if value is None:
            return None
        parsed = parse_wall_time(value)
        if parsed is None:
            self.problem(
                node,
                f"{where}: '{value}' is not a local date and time",
                'write "YYYY-MM-DD HH:MM" in the team\'s local time, without offset, e.g. "2026-12-24 14:00"',
            )
        return parsed

    # -- the file -----------------------------------------------------------------

    def read(self, text: str) -> Coverage | None:
        try:
            root = compose_bounded(text, self.limits)
        except _Refused as refused:
            line = refused.mark.line + 1 if refused.mark is not None else None
            self.problems.append(Problem(self.filename, line, refused.message, refused.hint))
            return None
        except RecursionError:
            self.problems.append(Problem(self.filename, None, "nested too deeply", "remove the extra nesting"))
            return None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            what = getattr(error, "problem", None) or "is not valid YAML"
            self.problems.append(
                Problem(
                    self.filename, line, f"not valid YAML: {what}",
                    "fix the YAML syntax; quote texts that contain ': ', '#' or start with '[', '{', '*' or '&'",
                )
            )
            return None
        if root is None:
            self.problems.append(Problem(self.filename, None, "the file is empty", "start with 'teams:' and one team under it (see examples/coverage.yaml)"))
            return None
        top = self.mapping(root, "the file", _TOP_KEYS, required=_TOP_KEYS)
        if top is None or "teams" not in top:
            return None
        teams_node = top["teams"][1]
        entries = self.entries(teams_node, "'teams'")
        if entries is None:
            return None
        if not entries:
            self.problem(teams_node, "'teams' lists no team", "add a team, e.g. 'care-it:' with its 'timezone' and 'hours'")
        if len(entries) > self.limits.max_teams:
            self.problem(teams_node, f"'teams' lists {len(entries)} teams; at most {self.limits.max_teams} are accepted",
                         "split the teams over several deployments, or raise the limit")
            return None
        teams: dict[str, Team] = {}
        accounts: dict[str, tuple[str, Node]] = {}
        for team_id, _key_node, team_node in entries:
            team = self.team(team_id, team_node, accounts)
            if team is not None:
                teams[team_id] = team
        if self.problems:
            return None
        return Coverage(teams, source_text=text, file=self.filename)

    def team(self, team_id: str, node: Node, accounts: dict[str, tuple[str, Node]]) -> Team | None:
        where = f"team '{team_id}'"
        fields = self.mapping(node, where, _TEAM_KEYS, required=("timezone",))
        if fields is None:
            return None
        before = len(self.problems)

        def value(key: str) -> Node | None:
            entry = fields.get(key)
            return None if entry is None or _is_null(entry[1]) else entry[1]

        name = team_id
        if (node_ := value("name")) is not None:
            name = self.text(node_, f"{where}, 'name'", "Assistenza Italia") or team_id
        zone = self.zone(value("timezone"), where) if "timezone" in fields else None
        locale = "en"
        if (node_ := value("locale")) is not None:
            locale_text = self.text(node_, f"{where}, 'locale'", "it")
            if locale_text is not None and not _LOCALE.fullmatch(locale_text):
                self.problem(node_, f"{where}, 'locale': '{locale_text}' is not a language code", "write a code such as it, en, es or pt_BR")
            locale = locale_text or locale
        team_accounts: list[str] = []
        if (node_ := value("accounts")) is not None:
            for account, item in self.texts(node_, f"{where}, 'accounts'", "[acme.it.facebook, acme_it_x]"):
                if account in accounts:
                    other, other_node = accounts[account]
                    self.problem(
                        item,
                        f"{where}: account '{account}' is already answered by team '{other}' (line {_line(other_node)})",
                        "give each account to one team only",
                    )
                    continue
                accounts[account] = (team_id, item)
                team_accounts.append(account)
        desk = self.chatwoot(value("chatwoot"), where, team_id, accounts)
        hours = self.hours(value("hours"), where)
        holidays = self.holidays(value("holidays"), where, zone)
        overrides = self.overrides(value("overrides"), where)
        staff = self.staff(value("staff"), where)
        rotation, on_call_overrides = self.on_call(value("on_call"), where, staff)
        triage = self.triage(value("triage"), where, staff, name)
        escalation = self.escalation(value("escalation"), where, staff)
        if len(self.problems) > before or zone is None:
            return None
        return Team(
            team_id,
            name=name,
            timezone=zone,
            locale=locale,
            accounts=tuple(team_accounts),
            hours=hours,
            holidays=holidays,
            overrides=overrides,
            on_call=OnCall(zone, rotation, on_call_overrides),
            staff=staff,
            triage=triage,
            escalation=escalation,
            chatwoot=desk,
        )

    def chatwoot(
        self, node: Node | None, where: str, team_id: str, accounts: dict[str, tuple[str, Node]]
    ) -> ChatwootDesk | None:
        """The team's ``chatwoot: {account: 1, inboxes: [3, 4], hold: false}``; each inbox
        becomes the account ``chatwoot:1/3``, claimed in ``accounts`` like a listed account.
        ``hold: true``: offhours is the inboxes' agent bot and releases their pending
        conversations (docs/chatwoot.md, "Hold mode")."""
        if node is None:
            return None
        where = f"{where}, 'chatwoot'"
        fields = self.mapping(node, where, _CHATWOOT_KEYS, required=_CHATWOOT_REQUIRED)
        if fields is None:
            return None
        account = self.positive_id(fields["account"][1], f"{where}, 'account'", "account: 1") if "account" in fields else None
        inboxes: list[int] = []
        if "inboxes" in fields:
            inboxes_node = fields["inboxes"][1]
            items = self.sequence(inboxes_node, f"{where}, 'inboxes'", "inboxes: [3, 4]") or []
            if isinstance(inboxes_node, SequenceNode) and not items:
                self.problem(inboxes_node, f"{where}: 'inboxes' is empty",
                             "list the ids of the Chatwoot inboxes this team answers, e.g. inboxes: [3, 4]")
            for index, item in enumerate(items):
                inbox = self.positive_id(item, f"{where}, 'inboxes'[{index}]", "inboxes: [3, 4]")
                if inbox is None or account is None:
                    continue
                name = chatwoot_account(account, inbox)
                if name in accounts:
                    other, other_node = accounts[name]
                    if other == team_id:
                        self.problem(item, f"{where}: inbox {inbox} is listed twice (also line {_line(other_node)})",
                                     "list each inbox once")
                    else:
                        self.problem(
                            item,
                            f"{where}: Chatwoot inbox {inbox} of account {account} ({name}) is already answered "
                            f"by team '{other}' (line {_line(other_node)})",
                            "give each inbox to one team only",
                        )
                    continue
                accounts[name] = (team_id, item)
                inboxes.append(inbox)
        hold = False
        if "hold" in fields and not _is_null(fields["hold"][1]):
            hold = self.boolean(fields["hold"][1], f"{where}, 'hold'", False)
        if account is None or not inboxes:
            return None
        return ChatwootDesk(account, tuple(inboxes), hold)

    def zone(self, node: Node | None, where: str) -> ZoneInfo | None:
        if node is None:
            self.problem(None, f"{where}: 'timezone' is empty", "write an IANA zone name, e.g. Europe/Rome")
            return None
        name = self.text(node, f"{where}, 'timezone'", "Europe/Rome")
        if name is None:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.problem(
                node,
                f"{where}: unknown time zone '{name}'",
                f"{_suggest(name, _zone_names())}write an IANA zone name such as Europe/Rome or America/New_York",
            )
            return None

    # -- hours --------------------------------------------------------------------

    def day_key(self, key: str, key_node: Node, where: str) -> list[int]:
        text = key.strip().lower()
        if text == "daily":
            return list(range(7))
        days: list[int] = []
        for part in text.split(","):
            part = part.strip()
            ends = [piece.strip() for piece in part.split("-")]
            if len(ends) > 2 or any(end not in DAYS for end in ends):
                self.problem(
                    key_node,
                    f"{where}: '{key}' is not a day key",
                    f"{_suggest(part, DAYS)}write mon ... sun, a range such as mon-fri or fri-mon, a list such as sat,sun, or daily",
                )
                return []
            first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
            days.append(first)
            while first != last:
                first = (first + 1) % 7
                days.append(first)
        return days

    def span(self, node: Node, where: str) -> Span | None:
        text = self.text(node, where, '"09:00-19:00 open"')
        if text is None:
            return None
        match = _SPAN.fullmatch(text)
        if match is None:
            self.problem(node, f'{where}: "{text}" is not a span', 'write "HH:MM-HH:MM MODE", e.g. "09:00-19:00 open"')
            return None
        start, end, mode = match.groups()
        start_minutes = self.clock(start, node, where, text, end_of_day=False)
        end_minutes = self.clock(end, node, where, text, end_of_day=True)
        if mode is None:
            self.problem(node, f'{where}: span "{text}" has no mode', f'add open, reduced or closed, e.g. "{text} open"')
            return None
        if mode not in MODES:
            self.problem(node, f'{where}: span "{text}" has unknown mode \'{mode}\'', f"{_suggest(mode, MODES)}write open, reduced or closed")
            return None
        if start_minutes is None or end_minutes is None:
            return None
        if end_minutes <= start_minutes and end_minutes != MINUTES_PER_DAY:
            end_minutes += MINUTES_PER_DAY
        return Span(start_minutes, end_minutes, mode, text)  # type: ignore[arg-type]

    def clock(self, value: str, node: Node, where: str, text: str, end_of_day: bool) -> int | None:
        match = _TIME.fullmatch(value)
        if match:
            hours, minutes = int(match.group(1)), int(match.group(2))
            if hours < 24 and minutes < 60:
                return hours * 60 + minutes
            if end_of_day and hours == 24 and minutes == 0:
                return MINUTES_PER_DAY
        limit = "00:00 to 24:00 (24:00 only as an end)" if end_of_day else "00:00 to 23:59"
        self.problem(node, f'{where}: span "{text}" has a bad time \'{value}\'', f'write HH:MM from {limit}, e.g. "09:00-19:00 open"')
        return None

    def hours(self, node: Node | None, where: str) -> WeeklyHours:
        days: list[list[tuple[Span, str, Node]]] = [[] for _ in DAYS]
        owner: dict[int, tuple[str, Node]] = {}
        entries = self.entries(node, f"{where}, 'hours'") if node is not None else []
        for key, key_node, spans_node in entries or ():
            key_where = f"{where}, hours '{key}'"
            weekdays = self.day_key(key, key_node, key_where)
            for weekday in weekdays:
                if weekday in owner:
                    other, other_node = owner[weekday]
                    self.problem(
                        key_node,
                        f"{where}: day '{DAYS[weekday]}' is named by both '{other}' (line {_line(other_node)}) and '{key}'",
                        f"name each day under one key only, e.g. split '{key}' or '{other}'",
                    )
                else:
                    owner[weekday] = (key, key_node)
            items = [] if _is_null(spans_node) else self.sequence(spans_node, key_where, '["09:00-19:00 open"]', scalar_ok=True)
            for index, item in enumerate(items or ()):
                span = self.span(item, f"{key_where}[{index}]")
                if span is None:
                    continue
                for weekday in weekdays:
                    if owner.get(weekday, (None,))[0] == key:
                        days[weekday].append((span, key, item))
        self.check_overlaps(days, where)
        return WeeklyHours(tuple(tuple(sorted((span for span, _, _ in day), key=lambda s: s.start)) for day in days))

    def check_overlaps(self, days: list[list[tuple[Span, str, Node]]], where: str) -> None:
        reported: set[tuple[int, int]] = set()

        def report(first: tuple[Span, str, Node], second: tuple[Span, str, Node], how: str) -> None:
            pair = (id(first[2]), id(second[2]))
            if pair in reported:
                return
            reported.add(pair)
            (span_a, key_a, node_a), (span_b, key_b, node_b) = first, second
            boundary = span_b.start % MINUTES_PER_DAY
            self.problem(
                node_b,
                f'{where}: span "{span_a.text}" of \'{key_a}\' (line {_line(node_a)}) {how} '
                f'span "{span_b.text}" of \'{key_b}\' (line {_line(node_b)})',
                f"make one span end where the other starts, e.g. end the first at {boundary // 60:02d}:{boundary % 60:02d}",
            )

        for weekday, day in enumerate(days):
            ordered = sorted(day, key=lambda entry: entry[0].start)
            for index, later in enumerate(ordered):
                for earlier in ordered[:index]:
                    if earlier[0].end > later[0].start:
                        report(earlier, later, "overlaps")
            following = days[(weekday + 1) % 7]
            for crossing in (entry for entry in day if entry[0].crosses_midnight):
                tail_end = crossing[0].end - MINUTES_PER_DAY
                for nxt in following:
                    if nxt[0].start < tail_end:
                        report(crossing, nxt, "crosses midnight and overlaps")

    # -- holidays and overrides ---------------------------------------------------

    def holidays(self, node: Node | None, where: str, zone: ZoneInfo | None) -> HolidayCalendar:
        if node is None:
            return HolidayCalendar()
        where = f"{where}, 'holidays'"
        fields = self.mapping(node, where, _HOLIDAY_KEYS)
        if fields is None:
            return HolidayCalendar()
        value = {key: entry[1] for key, entry in fields.items() if not _is_null(entry[1])}
        country = subdivision = None
        if "country" in value:
            country = self.country(value["country"], where)
        if "subdivision" in value:
            subdivision = self.text(value["subdivision"], f"{where}, 'subdivision'", "a region code such as '25'")
            if subdivision and country:
                known = supported_countries()[country]
                if subdivision not in known and subdivision.upper() in known:
                    subdivision = subdivision.upper()
                if subdivision not in known:
                    sample = _quoted(known[:8]) + (" ..." if len(known) > 8 else "")
                    hint = f"valid codes for {country}: {sample}" if known else f"{country} has no subdivisions; write null"
                    self.problem(value["subdivision"], f"{where}: unknown subdivision '{subdivision}' of {country}", hint)
            elif subdivision and "country" not in value:
                self.problem(value["subdivision"], f"{where}: a subdivision needs a country", "add 'country:', e.g. country: IT")
        extra: set[date] = set()
        if "extra" in value:
            for text, item in self.texts(value["extra"], f"{where}, 'extra'", '["2026-08-14"]'):
                try:
                    extra.add(date.fromisoformat(text))
                except ValueError:
                    self.problem(item, f"{where}, 'extra': '{text}' is not a date", 'write YYYY-MM-DD, e.g. "2026-08-14"')
        mode: Mode = "closed"
        if "mode" in value:
            mode = self.mode(value["mode"], f"{where}, 'mode'") or mode
        if "ics" in value:
            extra |= self.ics_days(value["ics"], where, zone)
        return HolidayCalendar(country, subdivision, extra, mode)

    def country(self, node: Node, where: str) -> str | None:
        code = self.text(node, f"{where}, 'country'", "IT")
        if code is None:
            return None
        countries = supported_countries()
        if code.upper() in countries:
            return code.upper()
        self.problem(
            node,
            f"{where}: unknown holiday country '{code}'",
            f"{_suggest(code.upper(), countries)}write an ISO 3166 country code known to the holidays package, e.g. IT, US, DE",
        )
        return None

    def ics_days(self, node: Node, where: str, zone: ZoneInfo | None) -> set[date]:
        text = self.text(node, f"{where}, 'ics'", "closures.ics")
        if text is None:
            return set()
        try:
            return set(self.calendars.days(text, zone))
        except CalendarUnavailable as unavailable:
            self.problem(node, f"{where}: {unavailable.message}", unavailable.hint)
            return set()

    def ranges(
        self, node: Node, where: str, keys: tuple[str, ...], example: str, extra: Callable[[dict[str, Node], str], Any]
    ) -> list[tuple[WallTime, WallTime, Any, Node]]:
        found: list[tuple[WallTime, WallTime, Any, Node]] = []
        for index, item in enumerate(self.sequence(node, where, example) or ()):
            item_where = f"{where}[{index}]"
            fields = self.mapping(item, item_where, keys, required=("from", "to"))
            if fields is None:
                continue
            value = {key: entry[1] for key, entry in fields.items()}
            start = self.wall_time(value["from"], f"{item_where}, 'from'") if "from" in value else None
            end = self.wall_time(value["to"], f"{item_where}, 'to'") if "to" in value else None
            payload = extra(value, item_where)
            if start is None or end is None or payload is None:
                continue
            if end <= start:
                self.problem(item, f"{item_where}: 'to' ({end}) is not after 'from' ({start})", "write a 'to' later than 'from'")
                continue
            found.append((start, end, payload, item))
        found.sort(key=lambda entry: entry[0])
        for index, later in enumerate(found):
            for earlier in found[:index]:
                if earlier[1] > later[0]:
                    self.problem(
                        later[3],
                        f"{where}: override {later[0]} to {later[1]} overlaps override {earlier[0]} to {earlier[1]} (line {_line(earlier[3])})",
                        f"make one end where the other starts, e.g. start the second at {earlier[1]}, or merge them",
                    )
        return found

    def overrides(self, node: Node | None, where: str) -> tuple[Override, ...]:
        if node is None:
            return ()

        def mode_and_note(value: dict[str, Node], item_where: str) -> tuple[Mode, str | None] | None:
            if "mode" not in value:
                self.problem(None if not value else next(iter(value.values())), f"{item_where}: 'mode' is missing", "add mode: open, reduced or closed")
                return None
            mode = self.mode(value["mode"], f"{item_where}, 'mode'")
            note = None
            if "note" in value and not _is_null(value["note"]):
                note = self.text(value["note"], f"{item_where}, 'note'", "Natale")
            return None if mode is None else (mode, note)

        found = self.ranges(
            node, f"{where}, 'overrides'", _OVERRIDE_KEYS,
            '[{from: "2026-12-24 14:00", to: "2026-12-27 00:00", mode: closed, note: Natale}]', mode_and_note,
        )
        return tuple(Override(start, end, payload[0], payload[1]) for start, end, payload, _ in found)

    # -- on call, staff, triage ---------------------------------------------------

    def staff(self, node: Node | None, where: str) -> dict[str, StaffMember]:
        members: dict[str, StaffMember] = {}
        agents: dict[int, tuple[str, Node]] = {}
        entries = self.entries(node, f"{where}, 'staff'") if node is not None else []
        for member_id, _, member_node in entries or ():
            member_where = f"{where}, staff '{member_id}'"
            if _is_null(member_node):
                members[member_id] = StaffMember(member_id, member_id)
                continue
            fields = self.mapping(member_node, member_where, _STAFF_KEYS)
            if fields is None:
                continue
            name = member_id
            if "name" in fields and not _is_null(fields["name"][1]):
                name = self.text(fields["name"][1], f"{member_where}, 'name'", "Marta Rossi") or member_id
            notify: list[str] = []
            if "notify" in fields and not _is_null(fields["notify"][1]):
                for target, item in self.texts(fields["notify"][1], f"{member_where}, 'notify'", '["mailto:marta@example.com"]'):
                    if self.notify_uri(target, item, f"{member_where}, 'notify'"):
                        notify.append(target)
            agent = None
            if "chatwoot_agent" in fields and not _is_null(agent_node := fields["chatwoot_agent"][1]):
                agent = self.positive_id(agent_node, f"{member_where}, 'chatwoot_agent'", "chatwoot_agent: 42")
                if agent is not None and agent in agents:
                    other, other_node = agents[agent]
                    self.problem(
                        agent_node,
                        f"{member_where}: chatwoot_agent {agent} is already staff '{other}' (line {_line(other_node)})",
                        "give each member their own Chatwoot user id (Settings, Agents in Chatwoot)",
                    )
                    agent = None
                elif agent is not None:
                    agents[agent] = (member_id, agent_node)
            members[member_id] = StaffMember(member_id, name, tuple(notify), agent)
        return members

    def notify_uri(self, target: str, node: Node, where: str) -> bool:
        """True when ``target`` is a URI some notifier sends to (the problem reported otherwise)."""
        example = "e.g. 'mailto:marta@example.com' or 'slack:https://hooks.slack.com/...'"
        if ":" not in target:
            self.problem(node, f"{where}: the target has no kind", f"write KIND:TARGET, {example}")
            return False
        scheme, _, address = target.partition(":")
        if scheme.lower() not in NOTIFY_SCHEMES:
            self.problem(node, f"{where}: '{scheme[:20]}:' is not a notify scheme",
                         f"{_suggest(scheme.lower(), NOTIFY_SCHEMES)}write one of {_quoted(NOTIFY_SCHEMES)}, {example}")
            return False
        if not address.strip():
            self.problem(node, f"{where}: '{scheme}:' names no target", f"write KIND:TARGET, {example}")
            return False
        if scheme.lower() in _URL_SCHEMES and not address.startswith(("https://", "http://")):
            self.problem(node, f"{where}: a '{scheme}:' target must be an http(s) URL",
                         f"write {scheme}:https://..., the URL the service posts to")
            return False
        return True

    def known_member(self, member: str, node: Node, where: str, staff: dict[str, StaffMember]) -> bool:
        if member in staff:
            return True
        known = _quoted(staff) if staff else "none yet"
        self.problem(node, f"{where}: '{member}' is not under 'staff'", f"{_suggest(member, staff)}add '{member}:' under the team's 'staff' (known: {known})")
        return False

    def on_call(
        self, node: Node | None, where: str, staff: dict[str, StaffMember]
    ) -> tuple[Rotation | None, tuple[OnCallOverride, ...]]:
        if node is None:
            return None, ()
        where = f"{where}, 'on_call'"
        fields = self.mapping(node, where, _ON_CALL_KEYS)
        if fields is None:
            return None, ()
        rotation = None
        if "rotation" in fields and not _is_null(fields["rotation"][1]):
            rotation = self.rotation(fields["rotation"][1], f"{where}, 'rotation'", staff)
        overrides: tuple[OnCallOverride, ...] = ()
        if "overrides" in fields and not _is_null(fields["overrides"][1]):

            def member(value: dict[str, Node], item_where: str) -> str | None:
                if "member" not in value:
                    self.problem(next(iter(value.values()), None), f"{item_where}: 'member' is missing", "add member: ID (an id under 'staff')")
                    return None
                member_id = self.text(value["member"], f"{item_where}, 'member'", "luca")
                if member_id is None or not self.known_member(member_id, value["member"], item_where, staff):
                    return None
                return member_id

            found = self.ranges(
                fields["overrides"][1], f"{where}, 'overrides'", _ON_CALL_OVERRIDE_KEYS,
                '[{from: "2026-12-31 18:00", to: "2027-01-01 10:00", member: luca}]', member,
            )
            overrides = tuple(OnCallOverride(start, end, member_id) for start, end, member_id, _ in found)
        return rotation, overrides

    def rotation(self, node: Node, where: str, staff: dict[str, StaffMember]) -> Rotation | None:
        fields = self.mapping(node, where, _ROTATION_KEYS, required=_ROTATION_KEYS)
        if fields is None:
            return None
        value = {key: entry[1] for key, entry in fields.items()}
        members: list[str] = []
        if "members" in value:
            for member_id, item in self.texts(value["members"], f"{where}, 'members'", "[marta, luca, giulia]"):
                if self.known_member(member_id, item, f"{where}, 'members'", staff):
                    members.append(member_id)
            if isinstance(value["members"], SequenceNode) and not value["members"].value:
                self.problem(value["members"], f"{where}: 'members' is empty", "list at least one staff id, e.g. [marta, luca]")
        start = self.wall_time(value["start"], f"{where}, 'start'") if "start" in value else None
        every = None
        if "every" in value:
            every_text = self.text(value["every"], f"{where}, 'every'", "1w")
            match = _DURATION.fullmatch(every_text or "")
            if every_text is not None and (match is None or match.group(2) not in "hdw" or int(match.group(1)) <= 0):
                self.problem(value["every"], f"{where}: 'every' is '{every_text}'", "write a whole number of hours, days or weeks, e.g. 12h, 1d or 1w")
            elif match is not None:
                every = (int(match.group(1)), match.group(2))
        if not members or start is None or every is None:
            return None
        return Rotation(tuple(members), start, every[0], every[1])  # type: ignore[arg-type]

    def triage(self, node: Node | None, where: str, staff: dict[str, StaffMember], team_name: str) -> TriageOptions:
        defaults = TriageOptions()
        if node is None:
            return defaults
        where = f"{where}, 'triage'"
        fields = self.mapping(node, where, _TRIAGE_KEYS)
        if fields is None:
            return defaults
        value = {key: entry[1] for key, entry in fields.items() if not _is_null(entry[1])}
        options: dict[str, Any] = {}
        for key in ("ack_cooldown", "agent_active"):
            if key in value:
                options[key] = self.duration(value[key], f"{where}, '{key}'") or getattr(defaults, key)
        for key in ("ack_when_open", "public_reply"):
            if key in value:
                options[key] = self.boolean(value[key], f"{where}, '{key}'", getattr(defaults, key))
        if "reply_within" in value:
            reply_within = dict(defaults.reply_within)
            fields_rw = self.mapping(value["reply_within"], f"{where}, 'reply_within'", _REPLY_MODES)
            for mode, (_, duration_node) in (fields_rw or {}).items():
                duration = self.duration(duration_node, f"{where}, reply_within '{mode}'")
                if duration is not None:
                    reply_within[mode] = duration
            options["reply_within"] = reply_within
        if "reduced_staff" in value:
            options["reduced_staff"] = tuple(
                member_id
                for member_id, item in self.texts(value["reduced_staff"], f"{where}, 'reduced_staff'", "[marta]")
                if self.known_member(member_id, item, f"{where}, 'reduced_staff'", staff)
            )
        if "urgent" in value:
            options.update(self.urgent(value["urgent"], f"{where}, 'urgent'", defaults))
        if "templates" in value:
            options["templates"] = self.templates(value["templates"], f"{where}, 'templates'", team_name)
        return TriageOptions(**{**_fields_of(defaults), **options})

    def urgent(self, node: Node, where: str, defaults: TriageOptions) -> dict[str, Any]:
        fields = self.mapping(node, where, _URGENT_KEYS)
        options: dict[str, Any] = {}
        value = {key: entry[1] for key, entry in (fields or {}).items() if not _is_null(entry[1])}
        if "defaults" in value:
            options["urgent_defaults"] = self.boolean(value["defaults"], f"{where}, 'defaults'", defaults.urgent_defaults)
        if "keywords" in value:
            options["urgent_keywords"] = tuple(word for word, _ in self.texts(value["keywords"], f"{where}, 'keywords'", "[guasto, blackout]"))
        if "patterns" in value:
            patterns: list[str] = []
            for pattern, item in self.texts(value["patterns"], f"{where}, 'patterns'", '["(?i)carta\\\\s+rubata"]'):
                if len(pattern) > MAX_PATTERN_CHARS:
                    self.problem(item, f"{where}, 'patterns': a pattern of {len(pattern)} characters is too long",
                                 f"keep each pattern within {MAX_PATTERN_CHARS} characters; list keywords instead")
                    continue
                try:
                    # As the worker compiles it (triage.urgency).
                    re.compile(pattern, re.IGNORECASE)
                except (re.error, RecursionError, OverflowError) as error:
                    self.problem(item, f"{where}, 'patterns': '{pattern}' is not a valid regular expression ({error})", "fix the pattern (Python re syntax); in double quotes write \\\\s for \\s")
                    continue
                refused = pattern_problem(pattern)
                if refused is not None:
                    self.problem(item, f"{where}, 'patterns': '{pattern}' {refused}",
                                 "simplify the pattern (no nested or overlapping repetitions, no backreferences), or list keywords instead")
                    continue
                patterns.append(pattern)
            options["urgent_patterns"] = tuple(patterns)
        return options

    def templates(self, node: Node, where: str, team_name: str) -> dict[str, dict[str, str]]:
        templates: dict[str, dict[str, str]] = {}
        for locale, _, kinds_node in self.entries(node, where) or ():
            kinds = self.mapping(kinds_node, f"{where} '{locale}'", TEMPLATE_KINDS)
            for kind, (_, text_node) in (kinds or {}).items():
                text = self.text(text_node, f"{where} '{locale}', '{kind}'", '"Ciao {{ first_name }}, ..."')
                if text is None:
                    continue
                refused = template_problem(text, kind, team_name)
                if refused is not None:
                    self.problem(text_node, f"{where} '{locale}', '{kind}': {refused[0]}", refused[1])
                    continue
                templates.setdefault(locale, {})[kind] = text
        return templates

    # -- escalation ---------------------------------------------------------------

    def escalation(self, node: Node | None, where: str, staff: dict[str, StaffMember]) -> EscalationPolicy:
        defaults = EscalationPolicy()
        if node is None:
            return defaults
        where = f"{where}, 'escalation'"
        fields = self.mapping(node, where, _ESCALATION_KEYS)
        if fields is None:
            return defaults
        value = {key: entry[1] for key, entry in fields.items() if not _is_null(entry[1])}
        chains = {
            mode: chain
            for mode in MODES
            if mode in value and (chain := self.chain(value[mode], f"{where}, '{mode}'", staff)) is not None
        }
        limits = {
            key: self.duration(value[key], f"{where}, '{key}'") or getattr(defaults, key)
            for key in ("claim_limit", "window_margin")
            if key in value
        }
        targets: dict[str, timedelta] = {}
        if "targets" in value:
            for mode, (_, duration_node) in (self.mapping(value["targets"], f"{where}, 'targets'", MODES) or {}).items():
                duration = self.duration(duration_node, f"{where}, targets '{mode}'")
                if duration is not None:
                    targets[mode] = duration
        return EscalationPolicy(chains=chains, targets=targets, **limits)

    def chain(self, node: Node, where: str, staff: dict[str, StaffMember]) -> EscalationChain | None:
        fields = self.mapping(node, where, _CHAIN_KEYS, required=("after", "chain"))
        if fields is None:
            return None
        value = {key: entry[1] for key, entry in fields.items()}
        after = self.duration(value["after"], f"{where}, 'after'") if "after" in value else None
        links: list[EscalationLink] = []
        if "chain" in value:
            items = self.texts(value["chain"], f"{where}, 'chain'", _CHAIN_EXAMPLE)
            if not items and isinstance(value["chain"], SequenceNode):
                self.problem(value["chain"], f"{where}: 'chain' is empty", f"list at least one step, e.g. {_CHAIN_EXAMPLE}")
            for text, item in items:
                link = self.chain_link(text, item, f"{where}, 'chain'", staff)
                if link is not None:
                    links.append(link)
        repeat = 1
        if "repeat" in value:
            repeat_text = self.text(value["repeat"], f"{where}, 'repeat'", "2")
            if repeat_text is not None and (not repeat_text.isdigit() or int(repeat_text) < 1):
                self.problem(value["repeat"], f"{where}: 'repeat' is '{repeat_text}'", "write how many times the chain is walked, a whole number from 1, e.g. 2")
            elif repeat_text is not None:
                repeat = int(repeat_text)
        if after is None or not links:
            return None
        return EscalationChain(after, tuple(links), repeat)

    def chain_link(self, text: str, node: Node, where: str, staff: dict[str, StaffMember]) -> EscalationLink | None:
        if text == "next_on_call":
            return EscalationLink("next_on_call")
        kind, _, target = text.partition(":")
        if kind == "lead":
            if target and self.known_member(target, node, where, staff):
                return EscalationLink("lead", target)
            if not target:
                self.problem(node, f"{where}: 'lead:' names nobody", "write lead:ID with an id under 'staff', e.g. lead:marta")
            return None
        if not target:
            self.problem(
                node, f"{where}: unknown step '{text}'",
                f"{_suggest(text, ('next_on_call', 'lead'))}write next_on_call, lead:ID or a notify URI such as 'slack:https://...'",
            )
            return None
        if kind not in ESCALATION_SCHEMES:
            self.problem(
                node, f"{where}: '{kind}:' is not a notify scheme",
                f"{_suggest(kind, ESCALATION_SCHEMES)}write one of {_quoted(ESCALATION_SCHEMES)}, e.g. 'slack:https://hooks.slack.com/...'",
            )
            return None
        return EscalationLink("channel", text)


def _fields_of(options: TriageOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in TriageOptions.__dataclass_fields__}
