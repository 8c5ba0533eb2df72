"""Coverage engine benchmark: mode lookups and next openings per second, side by side
with the `businesstimedelta` library on the same schedule.

Run:  python -m bench.coverage [--budget SECONDS] [--profile]
      python bench/coverage.py

Issue 20's targets (:func:`run` returns them as :class:`bench.common.Target` rows for
``python -m bench``): at least 800,000 mode lookups per second, and next openings at
least 40 times as fast as businesstimedelta's.

The schedule is the care-it team of examples/coverage.yaml, its weekly hours and
holidays (Italian public holidays plus its extra day). Its coverage overrides and
on-call rotation are left out because the library has no equivalent of them.
Both sides answer questions about the same seeded list of random instants over one
year, one core, plain loop. Prints a markdown table with the date and the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import importlib.metadata
import io
import os
import platform
import pstats
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import businesstimedelta
import holidays as holiday_tables
import pytz
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # Run as `python bench/coverage.py`: make the project importable from the checkout.
    sys.path.insert(0, str(ROOT))

from bench.common import Target  # noqa: E402
from schedules import Team, load_coverage_text  # noqa: E402

EXAMPLE = ROOT / "examples" / "coverage.yaml"
TEAM = "care-it"
SEED = 2026
SAMPLE_SIZE = 200_000
YEAR_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR_SECONDS = 365 * 86400
TARGET_LOOKUPS = 800_000
TARGET_NEXT_OPEN_RATIO = 40.0

COMPARED = """\
What was compared (same seeded instants, one core, plain loop):
- mode lookup: offhours `team.mode_at(instant)` (open / reduced / closed) versus
  businesstimedelta, which knows only "business time or not": two rule sets, "open"
  (WorkDayRule mon-fri 09:00-19:00 + HolidayRule) and "reduced" (WorkDayRule mon-fri
  19:00-23:59:59.999999, WorkDayRule sat 10:00-18:00 + HolidayRule); the mode is "open" when the
  1-second interval [t, t+1s) is business time of the first, else "reduced" when it is
  business time of the second, else "closed".
- next opening: offhours `team.at(instant).next_open` (the full answer of `coverage at`:
  mode, source, since, until, next_open, on call) versus businesstimedelta
  `open_rules.next(t)[0]`, the start of the current or upcoming business-time block.
- schedule: care-it of examples/coverage.yaml, weekly hours and holidays (IT public
  holidays + 2026-08-14); its overrides and on-call rotation are left out (the library
  has no equivalent)."""


def care_it_team() -> Team:
    """The care-it team of the example file, without overrides and on-call rotation."""
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    team = document["teams"][TEAM]
    team.pop("overrides", None)
    team.pop("on_call", None)
    return load_coverage_text(yaml.safe_dump({"teams": {TEAM: team}})).teams[TEAM]


class LibrarySchedule:
    """The same weekly hours and holidays expressed as businesstimedelta rules."""

    def __init__(self, team: Team) -> None:
        zone = pytz.timezone(team.timezone.key)
        extra = [dt.date(2026, 8, 14)]
        closed_days = holiday_tables.country_holidays("IT", years=[2025, 2026, 2027, 2028])
        closed_days.update({day: "extra" for day in extra})
        closed = businesstimedelta.HolidayRule(closed_days, tz=zone)
        weekdays = [0, 1, 2, 3, 4]
        self.open_rules = businesstimedelta.Rules(
            [businesstimedelta.WorkDayRule(dt.time(9), dt.time(19), weekdays, tz=zone), closed]
        )
        self.reduced_rules = businesstimedelta.Rules(
            [
                # Not time(0), the library's overnight form: its next() skips an overnight
                # block once the block has started, so 19:00-24:00 would read as closed.
                businesstimedelta.WorkDayRule(dt.time(19), dt.time.max, weekdays, tz=zone),
                businesstimedelta.WorkDayRule(dt.time(10), dt.time(18), [5], tz=zone),
                closed,
            ]
        )

    def mode_at(self, instant: dt.datetime) -> str:
        after = instant + dt.timedelta(seconds=1)
        if self.open_rules.difference(instant, after).timedelta:
            return "open"
        if self.reduced_rules.difference(instant, after).timedelta:
            return "reduced"
        return "closed"

    def next_open(self, instant: dt.datetime) -> dt.datetime:
        return self.open_rules.next(instant)[0]


def seeded_instants(count: int) -> list[dt.datetime]:
    """``count`` random instants over 2026, to the second, the same on every run."""
    draw = random.Random(SEED)
    return [YEAR_START + dt.timedelta(seconds=draw.randrange(YEAR_SECONDS)) for _ in range(count)]


def rate(question: Callable[[dt.datetime], object], instants: Sequence[dt.datetime], budget: float) -> tuple[float, int]:
    """Questions answered per second, going through ``instants`` until the list or the
    time budget runs out; returns (rate, how many were asked)."""
    clock = time.perf_counter
    started = clock()
    deadline = started + budget
    asked = 0
    batch = 256
    total = len(instants)
    while asked < total:
        for instant in instants[asked : asked + batch]:
            question(instant)
        asked = min(asked + batch, total)
        if clock() >= deadline:
            break
    return asked / (clock() - started), asked


def agreement(
    ours: Callable[[dt.datetime], object], theirs: Callable[[dt.datetime], object], instants: Sequence[dt.datetime]
) -> tuple[int, int, list[dt.datetime]]:
    """How many of ``instants`` both sides answer alike; the first few that differ."""
    same = 0
    differing: list[dt.datetime] = []
    for instant in instants:
        if ours(instant) == theirs(instant):
            same += 1
        elif len(differing) < 3:
            differing.append(instant)
    return same, len(instants), differing


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def profile(question: Callable[[dt.datetime], object], instants: Sequence[dt.datetime], title: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for instant in instants:
        question(instant)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    print(f"\n### cProfile: {title} ({len(instants)} calls, sorted by own time)\n")
    print(out.getvalue())


def run(*, budget: float = 4.0, profile_engine: bool = False) -> list[Target]:
    """Measure, print the markdown section on stdout, return issue 20's two targets.

    ``budget``: seconds per measurement; ``profile_engine`` also prints the profile of
    the engine's two questions (printed anyway when a target is missed).
    """
    team = care_it_team()
    library = LibrarySchedule(team)
    instants = seeded_instants(SAMPLE_SIZE)

    # Warm both sides on a few instants (the engine builds its chunks lazily).
    for instant in instants[:1000]:
        team.mode_at(instant)
        team.at(instant)

    ours_mode, ours_mode_n = rate(team.mode_at, instants, budget)
    ours_next, ours_next_n = rate(lambda t: team.at(t).next_open, instants, budget)
    theirs_mode, theirs_mode_n = rate(library.mode_at, instants, budget)
    theirs_next, theirs_next_n = rate(library.next_open, instants, budget)

    checked = instants[:2000]
    mode_same, mode_total, mode_diff = agreement(team.mode_at, library.mode_at, checked)
    next_same, next_total, next_diff = agreement(lambda t: team.at(t).next_open, library.next_open, checked)

    lookups_ok = ours_mode >= TARGET_LOOKUPS
    next_ratio = ours_next / theirs_next
    print(f"## Coverage engine benchmark ({dt.date.today().isoformat()})\n")
    print(
        f"Machine: {os.cpu_count()} cores (nproc), {cpu_model()}; Python {platform.python_version()}; "
        f"businesstimedelta {importlib.metadata.version('businesstimedelta')}. "
        f"Seeded instants over 2026 (seed {SEED}); about {budget:g} s per measurement.\n"
    )
    print("| question | offhours engine | businesstimedelta | ratio | target |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| mode lookup | {ours_mode:,.0f}/s ({ours_mode_n:,}) | {theirs_mode:,.0f}/s ({theirs_mode_n:,}) "
        f"| {ours_mode / theirs_mode:,.0f}x | >= {TARGET_LOOKUPS:,}/s: {'met' if lookups_ok else 'MISSED'} |"
    )
    print(
        f"| next opening | {ours_next:,.0f}/s ({ours_next_n:,}) | {theirs_next:,.0f}/s ({theirs_next_n:,}) "
        f"| {next_ratio:,.0f}x | >= {TARGET_NEXT_OPEN_RATIO:g}x: "
        f"{'met' if next_ratio >= TARGET_NEXT_OPEN_RATIO else 'MISSED'} |"
    )
    print()
    print(f"Agreement on the first {mode_total:,} instants: mode {mode_same:,}/{mode_total:,}, "
          f"next opening {next_same:,}/{next_total:,}.")
    for instant in mode_diff + next_diff:
        local = instant.astimezone(team.timezone)
        print(
            f"- differs at {local.isoformat()}: engine {team.mode_at(instant)} / {team.at(instant).next_open}, "
            f"library {library.mode_at(instant)} / {library.next_open(instant)}"
        )
    print()
    print(COMPARED)

    if profile_engine or not lookups_ok or next_ratio < TARGET_NEXT_OPEN_RATIO:
        profile(team.mode_at, instants[:100_000], "team.mode_at")
        profile(team.at, instants[:50_000], "team.at (next opening)")
    return [
        Target(
            "coverage engine: mode lookups",
            f">= {TARGET_LOOKUPS:,}/s",
            f"{ours_mode:,.0f}/s (businesstimedelta {theirs_mode:,.0f}/s)",
            lookups_ok,
        ),
        Target(
            "coverage engine: next opening",
            f">= {TARGET_NEXT_OPEN_RATIO:g}x businesstimedelta",
            f"{next_ratio:,.0f}x ({ours_next:,.0f}/s vs {theirs_next:,.0f}/s)",
            next_ratio >= TARGET_NEXT_OPEN_RATIO,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=4.0, help="seconds per measurement (default 4)")
    parser.add_argument("--profile", action="store_true", help="also profile the engine's two questions")
    args = parser.parse_args(argv)
    run(budget=args.budget, profile_engine=args.profile)
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
