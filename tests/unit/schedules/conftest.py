"""The coverage engine's fixtures (tests/support/schedules.py) for its unit tests."""

from tests.support.schedules import load, new_york, rome, sydney  # noqa: F401
