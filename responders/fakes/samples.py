"""Sample outbox records and clocks for tests and benchmarks (time zone Europe/Rome)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from records.wire import AckRequest, Notify, RouteRequest

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 11, 23, 22, 14, 5, tzinfo=ROME)
WROTE_AT = NOW - timedelta(minutes=65)


def fixed_clock(at: datetime = NOW) -> Callable[[], float]:
    """A clock that always answers ``at`` (epoch seconds)."""
    return lambda: at.timestamp()


def running_clock(
    at: datetime = NOW, monotonic: Callable[[], float] = time.monotonic
) -> Callable[[], float]:
    """A clock (epoch seconds) that answers ``at`` when made and then advances with
    ``monotonic``: for code that must see time pass (timeouts, backoff) while the
    records' dates, and so their reply windows, stay where the samples put them."""
    start, origin = at.timestamp(), monotonic()
    return lambda: start + (monotonic() - origin)


def ack_request(**changes: object) -> AckRequest:
    """A Messenger DM acknowledgment written 65 minutes before ``NOW``."""
    base = AckRequest(
        ack_id="ack:fb:m_abc123",
        event_id="fb:m_abc123",
        team="care-it",
        account="acme.it.facebook",
        channel="facebook",
        kind="dm",
        conversation="fb:PAGE_111:PSID_222",
        recipient="PSID_222",
        reply_to="m_abc123",
        text="Grazie! Ti rispondiamo domani dalle 9:00.",
        lang="it",
        public=False,
        at=WROTE_AT.isoformat(),
        window_closes=(WROTE_AT + timedelta(hours=24)).isoformat(),
        author_name="Ana Lopez",
        customer_text="Il mio ordine non è arrivato",
    )
    return dataclasses.replace(base, **changes)


def route_request(uris: list[str], **changes: object) -> RouteRequest:
    """A route of a Messenger DM to marta through ``uris``."""
    base = RouteRequest(
        route_id="route:fb:m_abc123",
        event_id="fb:m_abc123",
        team="care-it",
        action="route",
        mode="reduced",
        to=[Notify(member="marta", name="Marta Rossi", uris=uris)],
        channel="facebook",
        account="acme.it.facebook",
        conversation="fb:PAGE_111:PSID_222",
        author_name="Ana Lopez",
        text="Il mio ordine non è arrivato",
        at=WROTE_AT.isoformat(),
        next_open=datetime(2026, 11, 24, 9, 0, tzinfo=ROME).isoformat(),
        window_closes=(WROTE_AT + timedelta(hours=24)).isoformat(),
        reason="reduced hours 19:00-24:00; on call: marta",
        extra={"kind": "dm"},
    )
    return dataclasses.replace(base, **changes)
