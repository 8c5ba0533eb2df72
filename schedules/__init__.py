"""The coverage engine: which teams answer which accounts, when, in which mode, and who is on call.

Pure: configuration and aware instants in, frozen results out; no clock, no I/O beyond
reading the coverage file in :func:`load_coverage`.
"""

from schedules.coverage import Coverage, Team
from schedules.loader import load_coverage, load_coverage_text
from schedules.model import (
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
)

__all__ = [
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
    "load_coverage",
    "load_coverage_text",
]
