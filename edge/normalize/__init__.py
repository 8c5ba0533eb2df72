"""Normalizers: one platform's webhook payload in, CONTRACT §2 events out.

Each platform module has a pure ``normalize(payload, accounts, *, received_at, ...)``
returning :class:`Normalized`: the events to produce and the parts of the payload that
were skipped, each with the reason (delivery/read receipts, reactions, status
callbacks, our own acknowledgments echoed back, malformed items). One malformed item
never loses the rest of a batch. ``received_at`` is the clock of the request, used only
when a payload carries no time of its own.

Identifiers (``id`` and ``conversation``) carry the channel's prefix and keep the
platform's own ids recoverable for replies: their shapes, and who a reply goes to, are
defined once in :mod:`streams.platforms`.

A comment's thread is the top-level comment it belongs to (its own id when it is
top-level), so a page's reply under a customer's comment lands in the customer's
conversation as an ``agent_reply``.

Accounts: :func:`resolve_account` maps the platform identifier (page id, Instagram
account id, ``phone_number_id``, X ``for_user_id``, Telegram bot) to the coverage
account; an unmapped identifier becomes the account as it is, so the triage rejects
the event to the dead-letter topic with the reason instead of it vanishing here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from streams.records import SocialEvent

# Epoch values above this are milliseconds: as seconds they would lie after the year 5138.
_MS_THRESHOLD = 100_000_000_000


class InvalidPayload(ValueError):
    """The payload as a whole is not what the endpoint takes; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Skipped:
    """A part of a payload that produced no event: where it was and why."""

    ref: str
    reason: str


@dataclass(frozen=True, slots=True)
class Normalized:
    """The events a payload yields, in payload order, and what was skipped."""

    events: list[SocialEvent] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def resolve_account(accounts: Mapping[str, str], prefix: str, platform_id: str) -> str:
    """The coverage account of ``platform_id``: ``prefix:id`` first, then ``id``, else the id."""
    return accounts.get(f"{prefix}:{platform_id}") or accounts.get(platform_id) or platform_id


def text_id(value: Any, what: str) -> str:
    """A platform id as text (ids come as strings or numbers); empty or missing is an error."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ValueError(f"{what} is missing")
    return str(value)


def from_epoch_seconds(value: Any) -> datetime:
    """An instant from epoch seconds given as a number or a string of digits."""
    return datetime.fromtimestamp(int(value), UTC)


def from_epoch_ms(value: Any) -> datetime:
    """An instant from epoch milliseconds given as a number or a string of digits."""
    ms = int(value)
    return datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000)


def from_meta_time(value: Any) -> datetime:
    """Meta's times: epoch seconds or milliseconds (told apart by size), or ISO 8601."""
    if isinstance(value, str) and not value.isdigit():
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"time {value!r} has no UTC offset")
        return parsed.astimezone(UTC)
    number = int(value)
    return from_epoch_ms(number) if number >= _MS_THRESHOLD else from_epoch_seconds(number)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(event)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


class Collector:
    """Accumulates the events and skips of one payload; one bad item never spoils the rest."""

    def __init__(self) -> None:
        self._events: list[SocialEvent] = []
        self._skipped: list[Skipped] = []

    def add(self, **fields: Any) -> None:
        """Validate and keep one event (raises on invalid fields; use inside :meth:`item`)."""
        self._events.append(SocialEvent.model_validate(fields))

    def skip(self, ref: str, reason: str) -> None:
        self._skipped.append(Skipped(ref=ref, reason=reason))

    @contextlib.contextmanager
    def item(self, ref: str) -> Iterator[None]:
        """Run the handling of one payload item; a malformed item is skipped with the fault."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            self.skip(ref, f"malformed: {_reason(exc)}")

    def result(self) -> Normalized:
        return Normalized(events=list(self._events), skipped=list(self._skipped))


def as_list(value: Any, what: str) -> list[Any]:
    """A payload field that must be a list (absent means empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def require_object(payload: Any) -> dict[str, Any]:
    """The top-level payload, which every platform sends as a JSON object."""
    if not isinstance(payload, dict):
        raise InvalidPayload(f"expected a JSON object, got {type(payload).__name__}")
    return payload
