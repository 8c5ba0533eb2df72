"""The generic webhook: the body is already a CONTRACT §2 event, or a JSON list of them.

Each item is validated with :func:`streams.records.parse_event`; an invalid item is
skipped with its reason (``[2] at: needs a UTC offset ...``). The edge answers 400 and
produces nothing when any item is invalid: the producer is ours to fix, and a partial
batch would be hard for it to retry.
"""

from __future__ import annotations

from typing import Any

from edge.normalize import InvalidPayload, Normalized, Skipped
from streams.records import InvalidEvent, SocialEvent, parse_event


def normalize(payload: Any) -> Normalized:
    """The events of a generic body: one event object or a list of them."""
    if isinstance(payload, dict):
        items: list[Any] = [payload]
    elif isinstance(payload, list):
        items = payload
    else:
        raise InvalidPayload(f"expected an event object or a list of them, got {type(payload).__name__}")
    events: list[SocialEvent] = []
    skipped: list[Skipped] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            skipped.append(Skipped(ref=f"[{i}]", reason=f"expected a JSON object, got {type(item).__name__}"))
            continue
        try:
            events.append(parse_event(item))
        except InvalidEvent as exc:
            skipped.append(Skipped(ref=f"[{i}]", reason=exc.reason))
    return Normalized(events=events, skipped=skipped)

