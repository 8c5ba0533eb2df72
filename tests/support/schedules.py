"""The coverage engine tests' helpers and fixtures: teams written as YAML, instants parsed."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from schedules import Coverage, load_coverage_text


def coverage_of(yaml_text: str) -> Coverage:
    """Load a coverage file written inline (dedented)."""
    return load_coverage_text(textwrap.dedent(yaml_text), filename="test.yaml")


@pytest.fixture(scope="session")
def load() -> Callable[[str], Coverage]:
    """Load a coverage file written inline in a test (dedented), named test.yaml."""
    return coverage_of


@pytest.fixture(scope="session")
def rome() -> Coverage:
    """A Europe/Rome team with midnight-crossing spans, holidays and overrides."""
    return coverage_of(
        """
        teams:
          rome:
            timezone: Europe/Rome
            hours:
              mon-thu: ["09:00-19:00 open", "19:00-24:00 reduced"]
              fri: ["09:00-19:00 open", "19:00-01:00 reduced"]
              sat: ["10:00-14:00 reduced", "23:00-02:30 reduced"]
            holidays: {country: IT, extra: ["2026-11-14"]}
            overrides:
              - {from: "2026-12-08 10:00", to: "2026-12-08 13:00", mode: open, note: Immacolata desk}
              - {from: "2026-11-27 19:00", to: "2026-11-28 02:00", mode: open, note: Black Friday}
        """
    )


@pytest.fixture(scope="session")
def new_york() -> Coverage:
    """An America/New_York team whose boundaries sit on the daylight-saving changes."""
    return coverage_of(
        """
        teams:
          ny:
            timezone: America/New_York
            hours:
              mon-fri: ["08:00-20:00 open"]
              sat: ["20:00-01:30 reduced"]
              sun: ["02:30-12:00 reduced"]
        """
    )


@pytest.fixture(scope="session")
def sydney() -> Coverage:
    """An Australia/Sydney team (southern hemisphere: DST ends in April, starts in October)."""
    return coverage_of(
        """
        teams:
          syd:
            timezone: Australia/Sydney
            hours:
              sat: ["09:00-17:00 open"]
              sun: ["02:30-10:00 open"]
        """
    )
