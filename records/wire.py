"""The records that travel on offhours' topics.

Plain data, no Faust: the ingest edge produces :class:`SocialEvent` (CONTRACT §2),
the triage agent produces :class:`Decision` (CONTRACT §4) and the two outbox records
:class:`AckRequest` and :class:`RouteRequest`, which the responders consume. Every record
has a ``to_json``/``from_json`` pair; the wire form is compact UTF-8 JSON.

Ids are deterministic so that a redelivered event produces records with the same ids:
``AckRequest.ack_id == "ack:" + event_id`` and ``RouteRequest.route_id == "route:" + event_id``.
The responders' delivery ledger is keyed by those ids.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from records.secrets import mask_value

Channel = Literal["facebook", "instagram", "whatsapp", "x", "telegram", "generic"]
Kind = Literal["dm", "mention", "comment", "agent_reply"]
Action = Literal["queue", "route", "page", "ignore", "reject"]
Mode = Literal["open", "reduced", "closed"]

MAX_TEXT_CHARS = 10_000
"""The longest message text an event may carry: no platform sends longer (X DMs: 10,000).

The edge skips a longer item with this reason and the worker rejects it, so every
record derived from an event (acknowledgment, route, dead letter) stays far below the
broker's message size (1 MiB by default).
"""

MAX_EVENT_BYTES = 64 * 1024
"""The largest event, as JSON, that the worker decides: a larger input is rejected
(decision ``reject``, one dead letter carrying its first bytes) and the partition goes on."""

CUSTOMER_KINDS = frozenset({"dm", "mention", "comment"})
PUBLIC_KINDS = frozenset({"mention", "comment"})


class Author(BaseModel):
    """Who wrote the message. ``followers`` is carried but never used to decide."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1)
    name: str | None = None
    followers: int | None = None


class SocialEvent(BaseModel):
    """One customer (or staff) message, exactly the shape of CONTRACT §2."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1)
    account: str = Field(min_length=1)
    channel: Channel
    kind: Kind
    conversation: str = Field(min_length=1)
    author: Author
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    lang: str | None = None
    at: datetime
    in_reply_to: str | None = None

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("needs a UTC offset or Z, e.g. 2026-11-23T21:14:05Z")
        return value

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=False))


def raw_field(raw: bytes | str, name: str) -> str | None:
    """The top-level ``name`` of a raw record when it is JSON with a non-empty string there, else None.

    For input that may not parse as an event at all (the key of an unreadable line, the
    id of a rejected one).
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


class InvalidEvent(ValueError):
    """An input that is not a CONTRACT §2 event; ``reason`` names the field and the fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_event(raw: bytes | str | dict[str, Any]) -> SocialEvent:
    """Decode and validate one event, raising :class:`InvalidEvent` with a readable reason."""
    if isinstance(raw, dict):
        data = raw
    else:
        size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
        if size > MAX_EVENT_BYTES:
            raise InvalidEvent(f"event of {size} bytes is over the limit of {MAX_EVENT_BYTES} bytes")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(data).__name__}")
    try:
        return SocialEvent.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "(event)"
            problems.append(f"{where}: {err['msg']}")
        raise InvalidEvent("; ".join(problems)) from None


@dataclass(frozen=True, slots=True)
class Ack:
    """The acknowledgment text chosen for a customer (CONTRACT §4 ``ack``)."""

    text: str
    lang: str
    public: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision per event, exactly the keys of CONTRACT §4.

    ``event_id`` is null only for an input that has no usable id (not JSON, or no ``id``).
    """

    event_id: str | None
    team: str | None
    mode: Mode | None
    action: Action
    route_to: list[str]
    ack: Ack | None
    ack_suppressed: Literal["duplicate", "agent_active"] | None
    next_open: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        ack = data.get("ack")
        return cls(**{**data, "ack": Ack(**ack) if ack else None})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Decision:
        return cls.from_dict(orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class AckRequest:
    """An acknowledgment to send to a customer: one record on the acks outbox.

    ``reply_to`` is the platform's id of the customer's message (to quote or reply to);
    ``recipient`` is the platform's id of the customer (PSID, IGSID, wa_id, X user id,
    Telegram chat id). ``window_closes`` is when the platform stops accepting a
    free-form reply (ISO 8601), or None when the platform has no such window.
    ``author_name`` and ``customer_text`` are who wrote and what (None when unknown,
    e.g. records written before they existed): a failed acknowledgment hands them to
    the on-call staff so they can answer without looking the message up.
    ``private_text`` is the private reply's text for a Facebook/Instagram comment whose
    team also wants a public reply (``text`` is then the public reply); None otherwise.
    The responders deliver such a request as two replies, the private one first.
    """

    ack_id: str
    event_id: str
    team: str
    account: str
    channel: str
    kind: str
    conversation: str
    recipient: str
    reply_to: str | None
    text: str
    lang: str
    public: bool
    at: str
    window_closes: str | None = None
    author_name: str | None = None
    customer_text: str | None = None
    private_text: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> AckRequest:
        return cls(**orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class Notify:
    """A staff member to notify and the ``notify`` URIs of CONTRACT §1 to use."""

    member: str
    name: str
    uris: list[str]


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """A message routed (``route``) or paged (``page``) to staff: one record on the routes outbox."""

    route_id: str
    event_id: str
    team: str
    action: Literal["route", "page"]
    mode: str
    to: list[Notify]
    channel: str
    account: str
    conversation: str
    author_name: str | None
    text: str | None
    at: str
    next_open: str | None
    window_closes: str | None = None
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The wire form, with the notify URIs masked: a topic never carries a webhook URL
        (:mod:`records.secrets`); the responders find the URI again in the coverage."""
        masked = [Notify(n.member, n.name, [mask_value(uri) for uri in n.uris]) for n in self.to]
        return orjson.dumps(replace(self, to=masked))

    @classmethod
    def from_json(cls, raw: bytes | str) -> RouteRequest:
        data = orjson.loads(raw)
        data["to"] = [Notify(**n) for n in data.get("to", [])]
        return cls(**data)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input that could not be decided: the raw bytes (as text) and the reason.

    :meth:`of` keeps at most :data:`MAX_EVENT_BYTES` of the input, so a dead letter is
    always small enough to publish, whatever the input was.
    """

    raw: str
    reason: str
    topic: str
    at: str | None = None

    @classmethod
    def of(cls, raw: bytes, reason: str, topic: str, at: str | None = None) -> DeadLetter:
        """The dead letter of ``raw``, cut to its first :data:`MAX_EVENT_BYTES` with a note of the size."""
        if len(raw) <= MAX_EVENT_BYTES:
            return cls(raw=raw.decode("utf-8", "replace"), reason=reason, topic=topic, at=at)
        kept = raw[:MAX_EVENT_BYTES].decode("utf-8", "ignore")
        return cls(raw=f"{kept}… (cut: {len(raw)} bytes in all)", reason=reason, topic=topic, at=at)

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        return cls(**orjson.loads(raw))
