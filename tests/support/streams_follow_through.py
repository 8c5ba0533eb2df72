"""What ``tests/integration/streams/test_follow_through.py`` and ``tests/unit/streams/test_follow_through.py`` share (they were one module, tests/streams/test_follow_through.py).
"""

from __future__ import annotations

from datetime import datetime

from tests.support.streams_app import (
    ROME,
    event,
)

FRIDAY_EVENING = datetime(2026, 11, 20, 20, 0, tzinfo=ROME)  # reduced; giulia on call


SATURDAY_18 = datetime(2026, 11, 21, 18, 0, tzinfo=ROME)  # window (Sat 20:00) minus the 2 h margin


WA_CONVERSATION = "wa:PHONE_1:39333"


def seconds(instant: datetime) -> int:
    return int(instant.timestamp())


def whatsapp(event_id: str, at: datetime, **changes) -> bytes:
    return event(event_id, at, conversation=WA_CONVERSATION, account="acme.it.whatsapp", channel="whatsapp",
                 author={"id": "39333", "name": "Ana"}, **changes)

