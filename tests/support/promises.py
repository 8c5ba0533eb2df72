"""The promise-keeping helpers: an inline coverage file (care-it), Rome instants, the care_it fixture."""

from __future__ import annotations

import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from schedules import Coverage, Team, load_coverage_text

ROME = ZoneInfo("Europe/Rome")

CARE_IT = """
teams:
  care-it:
    timezone: Europe/Rome
    accounts: [acme.it.facebook, acme.it.whatsapp, acme_it_x]
    hours:
      mon-fri: ["09:00-19:00 open", "19:00-24:00 reduced"]
      sat: ["10:00-18:00 reduced"]
    on_call:
      rotation: {members: [marta, luca, giulia], start: "2026-11-02 09:00", every: 1w}
    staff:
      marta:  {name: Marta Rossi,  notify: ["mailto:marta@example.com"]}
      luca:   {name: Luca Bianchi, notify: ["mailto:luca@example.com"]}
      giulia: {name: Giulia Verdi, notify: ["webhook:https://pager.example/hook"]}
      anna:   {name: Anna Neri,    notify: ["mailto:anna@example.com"]}
    escalation:
      reduced: {after: 15m, chain: [next_on_call, lead:anna, "slack:https://hooks.slack.example/T1/B9/esc"], repeat: 2}
      closed:  {after: 10m, chain: [next_on_call, lead:anna], repeat: 1}
      claim_limit: 30m
      window_margin: 2h
      targets: {reduced: 1h, closed: 12h}
"""


def coverage_of(text: str) -> Coverage:
    """Load a coverage file written inline (dedented), named test.yaml."""
    return load_coverage_text(textwrap.dedent(text), filename="test.yaml")


def rome(text: str) -> datetime:
    """``"2026-11-23 21:14"`` as an aware instant in Europe/Rome."""
    return datetime.fromisoformat(text).replace(tzinfo=ROME)


@pytest.fixture(scope="session")
def care_it() -> Team:
    """The Italian care team, with a weekly rotation and an escalation block."""
    return coverage_of(CARE_IT).teams["care-it"]
