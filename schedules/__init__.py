"""The coverage engine: which teams answer which accounts, when, in which mode, and who is on call.

Pure: configuration and aware instants in, frozen results out; no clock, no I/O beyond
reading the coverage file in :func:`load_coverage`. The file's rules are the README's
"The coverage file" section.

- :mod:`schedules.model`: the frozen data the loader builds and the engine reads
  (modes, spans, wall-clock times and the daylight-saving rule, triage options);
- :mod:`schedules.loader`: the coverage file, validated, every problem with its line;
- :mod:`schedules.coverage`: :class:`Team` and :class:`Coverage`, the engine's public face;
- :mod:`schedules.engine`: one team's timeline: mode, stretch and next opening by bisection;
- :mod:`schedules.rotation`: on-call rotations and on-call overrides, and their shifts;
- :mod:`schedules.holiday`: a team's holidays (the ``holidays`` package, dates, .ics);
- :mod:`schedules.gaps`: coverage gaps (presence promised, nobody there);
- :mod:`schedules.ical`: iCalendar export of coverage and import of closures;
- :mod:`schedules.templates`: the rules an acknowledgment template follows;
- :mod:`schedules.patterns`: urgent patterns whose cost is bounded;
- :mod:`schedules.files`: reading the operator's files safely.

Imports no other package of offhours (the bottom layer, beside :mod:`records`).
"""

from schedules.coverage import Coverage, Team
from schedules.loader import load_coverage, load_coverage_text
from schedules.model import (
    ChatwootDesk,
    CoverageAt,
    CoverageInvalid,
    Mode,
    Problem,
    Shift,
    Source,
    StaffMember,
    Stretch,
    TriageOptions,
    WallTime,
    chatwoot_account,
)

__all__ = [
    "ChatwootDesk",
    "Coverage",
    "CoverageAt",
    "CoverageInvalid",
    "Mode",
    "Problem",
    "Shift",
    "Source",
    "StaffMember",
    "Stretch",
    "Team",
    "TriageOptions",
    "WallTime",
    "chatwoot_account",
    "load_coverage",
    "load_coverage_text",
]
