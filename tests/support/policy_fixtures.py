"""Shared builders for the triage policy tests: coverage files, events, local instants.

The default zone is Europe/Rome. In the example coverage file (examples/coverage.yaml) team
``care-it`` is open Mon-Fri 09:00-19:00, reduced 19:00-24:00 and Sat 10:00-18:00,
closed on Sundays; its weekly rotation has marta on call from Monday 2026-11-23 09:00
to Monday 2026-11-30 09:00.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from schedules import Coverage, load_coverage, load_coverage_text

ROME = ZoneInfo("Europe/Rome")
EXAMPLE_COVERAGE = Path(__file__).resolve().parents[2] / "examples" / "coverage.yaml"

# Instants in care-it's week with marta on call.
MONDAY_OPEN = "2026-11-23 10:00"
MONDAY_EVENING = "2026-11-23 22:14"
SUNDAY = "2026-11-29 10:00"


def local(text: str, zone: ZoneInfo = ROME) -> datetime:
    """``"YYYY-MM-DD HH:MM"`` as an aware instant in ``zone``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone)


def example_coverage() -> Coverage:
    """The README's example coverage file, loaded from examples/coverage.yaml."""
    return load_coverage(EXAMPLE_COVERAGE)


def small_coverage(triage: str = "", *, on_call: bool = True, hours: str = "") -> Coverage:
    """One team ``desk`` (Europe/Rome, it) answering ``desk.facebook``, ``desk.instagram``, ``desk_x``, ``desk.whatsapp`` and ``desk_tg``.

    Open Mon-Fri 09:00-19:00, reduced 19:00-24:00, closed at weekends; ``anna`` and
    ``bruno`` on staff, ``anna`` on call all along when ``on_call``. ``triage`` is the
    team's ``triage:`` mapping as YAML lines indented by six spaces.
    """
    rotation = (
        '    on_call:\n      rotation: {members: [anna], start: "2026-01-05 09:00", every: 1w}\n'
        if on_call
        else ""
    )
    text = (
        "teams:\n"
        "  desk:\n"
        "    name: Sportello\n"
        "    timezone: Europe/Rome\n"
        "    locale: it\n"
        "    accounts: [desk.facebook, desk.instagram, desk_x, desk.whatsapp, desk_tg]\n"
        "    hours:\n"
        + (hours or '      mon-fri: ["09:00-19:00 open", "19:00-24:00 reduced"]\n')
        + rotation
        + "    staff:\n"
        '      anna:  {name: Anna Neri, notify: ["mailto:anna@example.com"]}\n'
        '      bruno: {name: Bruno Gialli, notify: ["webhook:https://pager.example/bruno"]}\n'
        + (f"    triage:\n{triage}" if triage else "")
    )
    return load_coverage_text(text)


def event_data(at: str | datetime = MONDAY_EVENING, **changes: Any) -> dict[str, Any]:
    """A customer DM event (README: Events) to ``acme.it.facebook`` at local ``at``, with ``changes``."""
    instant = local(at) if isinstance(at, str) else at
    data: dict[str, Any] = {
        "id": "fb:m_abc123",
        "account": "acme.it.facebook",
        "channel": "facebook",
        "kind": "dm",
        "conversation": "fb:PAGE_111:PSID_222",
        "author": {"id": "PSID_222", "name": "Ana Lopez", "followers": 120},
        "text": "Il mio ordine non è arrivato",
        "lang": None,
        "at": instant.isoformat(),
        "in_reply_to": None,
    }
    data.update(changes)
    return data


def event(at: str | datetime = MONDAY_EVENING, **changes: Any) -> bytes:
    """:func:`event_data` as the raw Kafka message value."""
    return orjson.dumps(event_data(at, **changes))
