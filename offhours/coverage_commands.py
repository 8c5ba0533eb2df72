"""``offhours coverage ...``: check a coverage file, ask it about an instant, show a week.

The command line is where the clock is read (for ``now`` and default dates); the engine
never does. Each command takes the clock as a parameter so that tests can fix it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from schedules import ical
from schedules.coverage import Coverage, Team
from schedules.gaps import team_gaps
from schedules.loader import load_coverage
from schedules.model import CoverageInvalid, WallTime

EXIT_INVALID = 2
WARNING_DAYS = 28
NOW = "now"

Clock = Callable[[], datetime]
"""Returns the current instant, aware."""


def system_clock() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)


_FORMATTER = argparse.RawDescriptionHelpFormatter

ICS_EXAMPLE = """\
example:
  offhours coverage ics examples/coverage.yaml --team care-it --from 2026-12-01 \\
      --days 31 -o care-it-december.ics

Import the file into a calendar application (or serve it as a subscription): each
coverage stretch is one event per rule that decides it ("Open", "Reduced", "Closed",
"Closed (override: Natale)", "Closed (holiday: Easter Monday)") and each on-call shift
is one event ("On call: Marta Rossi"). Exporting again, for any window,
updates the same events rather than adding copies.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``offhours coverage`` and its subcommands to the ``offhours`` parser."""
    coverage = subparsers.add_parser(
        "coverage",
        help="check a coverage file and ask it who answers when",
        description=(
            "Work with a coverage file: the YAML that says, per team, which accounts it\n"
            "answers, its weekly hours (open, reduced, closed), holidays, overrides and\n"
            "on-call rotation."
        ),
        epilog="example:\n  offhours coverage check examples/coverage.yaml",
        formatter_class=_FORMATTER,
    )
    coverage_sub = coverage.add_subparsers(dest="coverage_command", metavar="SUBCOMMAND", required=True)

    check = coverage_sub.add_parser(
        "check",
        help="validate a coverage file",
        description=(
            "Validate a coverage file. Exit 0 and one line per team when it is valid\n"
            "(coverage gaps of the next weeks are printed as warnings on stderr);\n"
            "exit 2 and every problem, with its line and what to write instead, when not."
        ),
        epilog="example:\n  offhours coverage check examples/coverage.yaml\n"
        "  offhours coverage check examples/coverage.yaml --from 2026-12-01",
        formatter_class=_FORMATTER,
    )
    check.add_argument("file", metavar="FILE", help="the coverage YAML file")
    check.add_argument("--from", dest="start", metavar="DATE", help="first day checked for gaps (default: today)")
    check.set_defaults(handler=run_check)

    at = coverage_sub.add_parser(
        "at",
        help="a team's coverage at an instant, as JSON",
        description=(
            "Print one JSON object: the team's mode at TIME, since/until of that stretch,\n"
            "the next opening, who is on call and what decided the mode (hours, holiday,\n"
            "override). TIME is 'now' (the default) or ISO 8601; without an offset it is\n"
            "the team's local time. Instants print with the team's UTC offset, to the second."
        ),
        epilog="examples:\n"
        "  offhours coverage at examples/coverage.yaml --team care-it            # right now\n"
        "  offhours coverage at examples/coverage.yaml --team care-it --at now\n"
        "  offhours coverage at examples/coverage.yaml --team care-it --at 2026-11-23T21:14\n"
        "  offhours coverage at examples/coverage.yaml --team care-it --at 2026-11-23T20:14:05Z",
        formatter_class=_FORMATTER,
    )
    at.add_argument("file", metavar="FILE", help="the coverage YAML file")
    at.add_argument("--team", required=True, help="team id, as under 'teams:'")
    at.add_argument(
        "--at",
        dest="instant",
        default=NOW,
        metavar="TIME",
        help="'now' (default) or an ISO 8601 instant; without an offset, the team's local time",
    )
    at.set_defaults(handler=run_at)

    week = coverage_sub.add_parser(
        "week",
        help="a readable week of a team's coverage",
        description=(
            "Show seven days of a team's coverage, from DATE (default: today in the team's\n"
            "time zone): a row per day with its stretches, each mode with what decides it\n"
            "(a holiday's name, an override's note; nothing for the weekly hours), and who\n"
            "is on call, followed by coverage-gap warnings."
        ),
        epilog="examples:\n"
        "  offhours coverage week examples/coverage.yaml --team care-it              # from today\n"
        "  offhours coverage week examples/coverage.yaml --team care-it --from now\n"
        "  offhours coverage week examples/coverage.yaml --team care-it --from 2026-12-21",
        formatter_class=_FORMATTER,
    )
    week.add_argument("file", metavar="FILE", help="the coverage YAML file")
    week.add_argument("--team", required=True, help="team id, as under 'teams:'")
    week.add_argument(
        "--from",
        dest="start",
        default=NOW,
        metavar="DATE",
        help="first day shown: YYYY-MM-DD, or 'now'/'today' (default): today in the team's time zone",
    )
    week.set_defaults(handler=run_week)

    register_ics(coverage_sub)


def _load(path: str) -> Coverage | None:
    try:
        return load_coverage(path)
    except CoverageInvalid as invalid:
        count = len(invalid.problems)
        print(f"{path}: invalid coverage file, {count} problem{'s' if count != 1 else ''}:", file=sys.stderr)
        for problem in invalid.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _team(coverage: Coverage, team_id: str) -> Team | None:
    team = coverage.teams.get(team_id)
    if team is None:
        print(f"unknown team '{team_id}'; teams in {coverage.file}: {', '.join(coverage.teams)}", file=sys.stderr)
    return team


def _day(text: str | None) -> date | None:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        print(f"'{text}' is not a date; write YYYY-MM-DD, e.g. 2026-11-23", file=sys.stderr)
        return None


def _midnight(team: Team, day: date) -> datetime:
    return WallTime(datetime.combine(day, time())).to_instant(team.timezone).astimezone(team.timezone)


def parse_instant(text: str, team: Team) -> datetime | None:
    """An ISO 8601 instant; without an offset it is wall-clock time in the team's zone."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return WallTime(parsed).to_instant(team.timezone).astimezone(team.timezone)
    return parsed


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    """``offhours coverage check FILE``."""
    first = _day(args.start)
    coverage = _load(args.file)
    if coverage is None or first is None:
        return EXIT_INVALID
    warnings: list[str] = []
    for team in coverage.teams.values():
        print(_summary(team))
        start = _midnight(team, first)
        warnings.extend(str(w) for w in team_warnings(team, start, start + timedelta(days=WARNING_DAYS)))
    _print_warnings(warnings)
    return 0


def team_warnings(team: Team, start: datetime, end: datetime) -> list[str]:
    """Coverage-gap warnings of one team in ``[start, end)``."""
    return [str(gap) for gap in team_gaps(team, start, end)]


def _summary(team: Team) -> str:
    rotation = team.on_call.rotation
    on_call = (
        f"rotation {'/'.join(rotation.members)} every {rotation.every}{rotation.unit}" if rotation else "no rotation"
    )
    holidays = team.holidays.country or "no"
    if team.holidays.subdivision:
        holidays += f"-{team.holidays.subdivision}"
    return (
        f"{team.id} ({team.name}): {team.timezone.key}, locale {team.locale}, "
        f"{len(team.accounts)} accounts, {len(team.staff)} staff, {on_call}, "
        f"{holidays} holidays, {len(team.overrides)} overrides: ok"
    )


def _now(team: Team, clock: Clock) -> datetime:
    """The clock's instant in the team's zone, to the second (as it is printed)."""
    return clock().astimezone(team.timezone).replace(microsecond=0)


def run_at(args: argparse.Namespace, clock: Clock = system_clock) -> int:
    """``offhours coverage at FILE --team TEAM [--at TIME|now]``; ``clock`` gives ``now``."""
    coverage = _load(args.file)
    if coverage is None:
        return EXIT_INVALID
    team = _team(coverage, args.team)
    if team is None:
        return EXIT_INVALID
    if args.instant.strip().lower() == NOW:
        instant: datetime | None = _now(team, clock)
    else:
        instant = parse_instant(args.instant, team)
    if instant is None:
        print(
            f"--at '{args.instant}' is not an ISO 8601 time; write e.g. 2026-11-23T21:14:05+01:00, "
            "2026-11-23T20:14:05Z, 2026-11-23T21:14 (the team's local time) or now",
            file=sys.stderr,
        )
        return EXIT_INVALID
    print(json.dumps(team.at(instant).to_contract(), ensure_ascii=False))
    return 0


def _clock(moment: datetime, day_start: datetime) -> str:
    if moment.date() > day_start.date():
        return "24:00"
    return moment.strftime("%H:%M")


def run_week(args: argparse.Namespace, clock: Clock = system_clock) -> int:
    """``offhours coverage week FILE --team TEAM [--from DATE|now]``; ``clock`` gives today."""
    coverage = _load(args.file)
    if coverage is None:
        return EXIT_INVALID
    team = _team(coverage, args.team)
    if team is None:
        return EXIT_INVALID
    if args.start.strip().lower() in (NOW, "today"):
        first: date | None = _now(team, clock).date()
    else:
        first = _day(args.start)
    if first is None:
        return EXIT_INVALID
    print(f"{team.id} ({team.name}), {team.timezone.key}, week from {first.isoformat()}")
    for offset in range(7):
        day = first + timedelta(days=offset)
        start, end = _midnight(team, day), _midnight(team, day + timedelta(days=1))
        parts = []
        # One label per rule, so that a holiday or an override names only the hours it decides.
        for piece in team.pieces(start, end):
            label = f"{_clock(piece.start, start)}-{_clock(piece.end, start)} {piece.mode}"
            if piece.source != "hours":
                label += f" ({piece.note or piece.source})"
            parts.append(label)
        shifts = team.on_call_shifts(start, end)
        if not shifts:
            on_call = "nobody"
        elif len(shifts) == 1 and shifts[0].start == start and shifts[0].end == end:
            on_call = shifts[0].member
        else:
            on_call = ", ".join(f"{s.member} {_clock(s.start, start)}-{_clock(s.end, start)}" for s in shifts)
        print(f"{day.strftime('%a %Y-%m-%d')}  {' | '.join(parts)}  on call: {on_call}")
    week_start = _midnight(team, first)
    _print_warnings(team_warnings(team, week_start, _midnight(team, first + timedelta(days=7))))
    return 0


def register_ics(coverage_subparsers: argparse._SubParsersAction) -> None:
    """Add ``offhours coverage ics FILE --team TEAM --from DATE --days N [-o OUT]``."""
    parser = coverage_subparsers.add_parser(
        "ics",
        help="export a team's coverage and on-call shifts as an iCalendar (.ics) file",
        description=(
            "Export a team's coverage (open, reduced and closed stretches) and its "
            "on-call shifts over a window of whole local days as an iCalendar file, "
            "with the team's time zone. Writes to standard output unless -o is given."
        ),
        epilog=ICS_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="the coverage file (YAML)")
    parser.add_argument("--team", required=True, metavar="TEAM", help="team id, e.g. care-it")
    parser.add_argument(
        "--from",
        dest="from_date",
        required=True,
        metavar="DATE",
        help="first local day of the window, YYYY-MM-DD (starts at 00:00 in the team's zone)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=28,
        metavar="N",
        help="number of local days in the window (default: 28)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="write the calendar to this file instead of standard output",
    )
    parser.set_defaults(handler=_run_ics)


def _run_ics(args: argparse.Namespace) -> int:
    try:
        first_day = date.fromisoformat(args.from_date)
    except ValueError:
        print(f"--from: {args.from_date!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-01", file=sys.stderr)
        return 2
    if args.days < 1 or args.days > 3660:
        print(f"--days: {args.days} is out of range; give a number of days from 1 to 3660", file=sys.stderr)
        return 2
    try:
        coverage = load_coverage(args.file)
    except CoverageInvalid as error:
        print(str(error), file=sys.stderr)
        return 2
    team = coverage.teams.get(args.team)
    if team is None:
        known = ", ".join(sorted(coverage.teams)) or "none"
        print(f"--team: no team {args.team!r} in {args.file}; teams: {known}", file=sys.stderr)
        return 2
    start = _local_midnight(first_day, team.timezone)
    end = _local_midnight(first_day + timedelta(days=args.days), team.timezone)
    # The command line is where the clock is read: it stamps the export.
    payload = ical.export_ics(team, start, end, stamp=datetime.now(UTC))
    if args.output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    else:
        try:
            args.output.write_bytes(payload)
        except OSError as error:
            print(f"-o: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}: team {team.id}, {args.days} days from {first_day}", file=sys.stderr)
    return 0


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of ``day`` in ``zone``, by the coverage file's daylight-saving rule (README: The coverage file)."""
    return WallTime(datetime.combine(day, time(0))).to_instant(zone).astimezone(zone)
