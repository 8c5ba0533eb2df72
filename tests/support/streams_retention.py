"""What ``tests/integration/streams/test_retention.py`` and ``tests/unit/streams/test_retention.py`` share (they were one module, tests/streams/test_retention.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.support.streams_app import (
    MONDAY_EVENING,
)

RETENTION = timedelta(days=2)


T = MONDAY_EVENING  # 2026-11-23 21:14 Europe/Rome


def seconds(instant: datetime) -> int:
    return int(instant.timestamp())

