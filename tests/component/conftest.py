"""The component tier: a Faust agent run in memory with ``agent.test_context()``.

No broker. ``test_context()`` gives an agent an in-memory channel for its input
instead of its topic; ``put`` hands it one record as a Kafka message would arrive
(key, value, partition, offset). What the agent writes to a table stays in the table
(its changelog record waits in the unstarted producer's buffer). What it sends to a
topic through ``topic.send`` needs the app's producer, which only a broker starts, so
the tests give :func:`streams.outbox.install` Faust's in-memory channels as its output
topics (``install`` takes ready topics) and read the records there. The HTTP side is
real: the local fake platforms of :mod:`responders.fakes`.

What this tier cannot drive, and why, is said in test_agents.py (the triage agent).
The integration tier (tests/integration/streams) runs the same agents on Kafka.
"""

from __future__ import annotations

import pytest

from schedules import Coverage, load_coverage
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.component import NO_BROKER, component_settings  # noqa: F401


@pytest.fixture(scope="session")
def coverage() -> Coverage:
    return load_coverage(EXAMPLE_COVERAGE)
