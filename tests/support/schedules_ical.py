"""What ``tests/component/schedules/test_ical.py`` and ``tests/unit/schedules/test_ical.py`` share (they were one module, tests/schedules/test_ical.py).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

ROME = ZoneInfo("Europe/Rome")


ROOT = Path(__file__).resolve().parents[2]


EXAMPLE = ROOT / "examples" / "coverage.yaml"


def rome(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=ROME)


def coverage_events(calendar: icalendar.Calendar) -> list[icalendar.Event]:
    return [event for event in calendar.walk("VEVENT") if "X-OFFHOURS-MODE" in event]

