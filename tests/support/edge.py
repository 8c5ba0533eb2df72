"""The edge tests' fixtures: a non-UTC local zone and the embedded broker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from brokers.tansu import EmbeddedBroker


@pytest.fixture(autouse=True)
def rome_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run every edge test with a non-UTC local zone: no result may depend on it."""
    monkeypatch.setenv("TZ", "Europe/Rome")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def edge_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    """The session's embedded broker when the suite has one, else one for this module."""
    try:
        shared = request.getfixturevalue("broker")
    except pytest.FixtureLookupError:
        shared = None
    if isinstance(shared, EmbeddedBroker):
        yield shared
        return
    with EmbeddedBroker() as broker:
        yield broker

