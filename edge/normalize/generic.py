"""The generic webhook: the body is already an event (README: Events), or a JSON list of them.

Each item is validated with :func:`records.wire.parse_event` and
:func:`edge.normalize.check_event` (its time between 2000 and 2100, writable as JSON);
an invalid item is skipped with its reason (``[2] at: needs a UTC offset ...``). The edge answers 400 and
produces nothing when any item is invalid: the producer is ours to fix, and a partial
batch would be hard for it to retry.
"""

from __future__ import annotations

from typing import Any

from edge.normalize import (
    DEFAULT_LIMITS,
    InvalidPayload,
    Limits,
    Normalized,
    Skipped,
    check_event,
    check_text,
)
from records.wire import InvalidEvent, SocialEvent, parse_event


def normalize(payload: Any, *, limits: Limits = DEFAULT_LIMITS) -> Normalized:
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
            check_text(item.get("text"), limits)
            event = parse_event(item)
            check_event(event, limits)
        except InvalidEvent as exc:
            skipped.append(Skipped(ref=f"[{i}]", reason=exc.reason))
        except ValueError as exc:
            skipped.append(Skipped(ref=f"[{i}]", reason=str(exc)))
        else:
            events.append(event)
    return Normalized(events=events, skipped=skipped)

