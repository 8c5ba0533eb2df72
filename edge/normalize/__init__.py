"""Normalizers: one platform's webhook payload in, events (README: Events) out.

Each platform module has a pure ``normalize(payload, accounts, *, received_at, ...)``
returning :class:`Normalized`: the events to produce and the parts of the payload that
were skipped, each with the reason (delivery/read receipts, reactions, status
callbacks, our own acknowledgments echoed back, malformed items). One malformed item
never loses the rest of a batch. ``received_at`` is the clock of the request, used only
when a payload carries no time of its own.

Identifiers (``id`` and ``conversation``) carry the channel's prefix and keep the
platform's own ids recoverable for replies: their shapes, and who a reply goes to, are
defined once in :mod:`records.platforms`.

A comment's thread is the top-level comment it belongs to (its own id when it is
top-level), so a page's reply under a customer's comment lands in the customer's
conversation as an ``agent_reply``.

Odd values never fail a request: a time that is not a time between
:data:`EARLIEST` and :data:`LATEST` (year 1, year 9999, a number beyond any clock), an id
that is an object, an event that cannot be written as JSON (an integer beyond 64 bits)
makes its item skipped with the reason, and the rest of the batch is produced. Optional
details that are malformed (an author's name that is not text, a follower count that is
negative or beyond 64 bits, a reply reference that is not an id) are dropped instead:
the customer's message matters more than them.

Limits (:class:`Limits`, from ``OFFHOURS_EDGE__MAX_TEXT_CHARS`` and
``OFFHOURS_EDGE__MAX_EVENT_BYTES``): an item whose text is longer, or whose event as JSON
is larger, is skipped with the reason and never produced, so every event on the topic
is one the triage worker takes (:data:`records.wire.MAX_TEXT_CHARS`,
:data:`records.wire.MAX_EVENT_BYTES`) and far below the broker's message size.

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

from records.actions import StaffAction
from records.wire import MAX_EVENT_BYTES, MAX_TEXT_CHARS, SocialEvent

# Epoch values above this are milliseconds: as seconds they would lie after the year 5138.
_MS_THRESHOLD = 100_000_000_000

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""An event's time must lie in ``[EARLIEST, LATEST)``: no platform message is older,
and every later computation (reply windows, schedules, holidays) stays far from the
ends of :class:`datetime`."""

_EARLIEST_S = int(EARLIEST.timestamp())
_LATEST_S = int(LATEST.timestamp())
_MAX_COUNT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest event the edge produces: its text in characters, its JSON in bytes."""

    max_text_chars: int = MAX_TEXT_CHARS
    max_event_bytes: int = MAX_EVENT_BYTES


DEFAULT_LIMITS = Limits()


class OverLimit(ValueError):
    """An item is well formed but larger than the edge produces; the message is the reason."""


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
    """The events a payload yields, in payload order, and what was skipped.

    ``actions``: staff actions the payload reports (a care desk's assignment or
    resolution, :mod:`edge.normalize.chatwoot`), for the actions topic; the platforms'
    own webhooks report none.
    """

    events: list[SocialEvent] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    actions: list[StaffAction] = field(default_factory=list)


def resolve_account(accounts: Mapping[str, str], prefix: str, platform_id: str) -> str:
    """The coverage account of ``platform_id``: ``prefix:id`` first, then ``id``, else the id."""
    return accounts.get(f"{prefix}:{platform_id}") or accounts.get(platform_id) or platform_id


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for reasons that quote the sender's input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def named(value: Any, limit: int = 40) -> str:
    """A short text as it is (a field or callback name), anything else as :func:`shown`."""
    return value if isinstance(value, str) and len(value) <= limit else shown(value, limit)


def text_id(value: Any, what: str) -> str:
    """A platform id as text (ids come as strings or numbers); empty or missing is an error."""
    if value is None or value == "":
        raise ValueError(f"{what} is missing")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what} is not a string or an integer: {shown(value)}")
    return str(value)


def optional_id(value: Any) -> str | None:
    """A reference to another message or user as text, or None when absent or not an id."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def optional_text(value: Any) -> str | None:
    """A descriptive text (a name) when it is one, else None."""
    return value if isinstance(value, str) and value else None


def optional_count(value: Any) -> int | None:
    """A count (followers) when it is a whole number that fits 64 bits, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        return None
    return value


def whole_number(value: Any, what: str) -> int:
    """An integer given as a number (a fraction is cut) or a string of ASCII digits."""
    if isinstance(value, bool):
        raise ValueError(f"{what} is not a number: {shown(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return int(value)
    if isinstance(value, str):
        digits = value.strip()
        if 0 < len(digits) <= 30 and digits.isascii() and digits.removeprefix("-").isdigit():
            return int(digits)
    raise ValueError(f"{what} is not a whole number: {shown(value)}")


def in_range(at: datetime, what: str) -> datetime:
    """``at`` when it lies in ``[EARLIEST, LATEST)``; raises :class:`ValueError` otherwise."""
    if not EARLIEST <= at < LATEST:
        raise ValueError(f"{what} {at.isoformat()} is not between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return at


def _out_of_range(value: Any, what: str) -> ValueError:
    return ValueError(f"{what} {shown(value)} is not a time between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")


def from_epoch_seconds(value: Any, what: str = "time") -> datetime:
    """An instant from epoch seconds given as a number or a string of digits."""
    seconds = whole_number(value, what)
    if not _EARLIEST_S <= seconds < _LATEST_S:
        raise _out_of_range(value, what)
    return datetime.fromtimestamp(seconds, UTC)


def from_epoch_ms(value: Any, what: str = "time") -> datetime:
    """An instant from epoch milliseconds given as a number or a string of digits."""
    ms = whole_number(value, what)
    if not _EARLIEST_S * 1000 <= ms < _LATEST_S * 1000:
        raise _out_of_range(value, what)
    return datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000)


def from_iso(value: str, what: str = "time") -> datetime:
    """An instant from ISO 8601 text with a UTC offset."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError(f"{what} {shown(value)} has no UTC offset")
        return in_range(parsed.astimezone(UTC), what)
    except OverflowError:
        raise _out_of_range(value, what) from None


def from_meta_time(value: Any, what: str = "time") -> datetime:
    """Meta's times: epoch seconds or milliseconds (told apart by size), or ISO 8601."""
    if isinstance(value, str) and not value.strip().removeprefix("-").isdigit():
        return from_iso(value, what)
    number = whole_number(value, what)
    return from_epoch_ms(number, what) if number >= _MS_THRESHOLD else from_epoch_seconds(number, what)


def check_text(text: Any, limits: Limits) -> None:
    """Raise :class:`OverLimit` when ``text`` is longer than ``limits`` allow."""
    if isinstance(text, str) and len(text) > limits.max_text_chars:
        raise OverLimit(
            f"text of {len(text)} characters is over the limit of {limits.max_text_chars} "
            "(OFFHOURS_EDGE__MAX_TEXT_CHARS)"
        )


def check_event(event: SocialEvent, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The event as the JSON written to the topic; raises :class:`ValueError` when it cannot be.

    Its time must lie in ``[EARLIEST, LATEST)``, it must serialize (an integer beyond 64
    bits among its extra fields, or nesting too deep, does not) and fit ``limits``
    (:class:`OverLimit` otherwise).
    """
    check_text(event.text, limits)
    in_range(event.at, "at")
    try:
        raw = event.to_json()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot be written as JSON: {exc}") from None
    if len(raw) > limits.max_event_bytes:
        raise OverLimit(
            f"event of {len(raw)} bytes as JSON is over the limit of {limits.max_event_bytes} "
            "(OFFHOURS_EDGE__MAX_EVENT_BYTES)"
        )
    return raw


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

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._events: list[SocialEvent] = []
        self._skipped: list[Skipped] = []
        self._actions: list[StaffAction] = []

    def add(self, **fields: Any) -> None:
        """Validate and keep one event (raises on invalid fields or limits; use inside :meth:`item`)."""
        check_text(fields.get("text"), self._limits)
        event = SocialEvent.model_validate(fields)
        check_event(event, self._limits)
        self._events.append(event)

    def skip(self, ref: str, reason: str) -> None:
        self._skipped.append(Skipped(ref=ref, reason=reason))

    def act(self, action: StaffAction) -> None:
        """Keep one staff action the payload reports."""
        self._actions.append(action)

    @contextlib.contextmanager
    def item(self, ref: str) -> Iterator[None]:
        """Run the handling of one payload item; a malformed item is skipped with the fault."""
        try:
            yield
        except OverLimit as exc:
            self.skip(ref, str(exc))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError, RecursionError) as exc:
            self.skip(ref, f"malformed: {_reason(exc)}")

    def result(self) -> Normalized:
        return Normalized(events=list(self._events), skipped=list(self._skipped), actions=list(self._actions))


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
