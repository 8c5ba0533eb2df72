"""The records that travel on offhours' topics.

Plain data, no Faust: the ingest edge produces :class:`SocialEvent` (README "Events"),
the triage agent produces :class:`Decision` (README "Decisions") and the two outbox records
:class:`AckRequest` and :class:`RouteRequest`, which the responders consume. Every record
has a ``to_json``/``from_json`` pair; the wire form is compact UTF-8 JSON.

Ids are deterministic so that a redelivered event produces records with the same ids:
``AckRequest.ack_id == "ack:" + event_id`` and ``RouteRequest.route_id == "route:" + event_id``.
The responders' delivery ledger is keyed by those ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from records.secrets import mask_value
from records.stored import exact_json

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
    """One customer (or staff) message, exactly the shape of README "Events"."""

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
        return exact_json(self.model_dump(mode="json", exclude_none=False))


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
    """An input that is not an event (README "Events"); ``reason`` names the field and the fault."""

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
    """The acknowledgment text chosen for a customer (the decision's ``ack``, README "Decisions")."""

    text: str
    lang: str
    public: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision per event, exactly the keys of README "Decisions".

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
        return exact_json(self)

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
    ``desk`` is the event's ``desk`` block when the message came through a care desk
    (``{"kind": "chatwoot", "account": 7, "conversation": 4821, ...}``, README "Events"):
    the responders then act through the desk instead of the platform. ``mode`` is the
    decision's mode (the desk labels the conversation with it). Both are None in
    records written before they existed, and for messages that came straight from a platform.
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
    desk: dict[str, Any] | None = None
    mode: str | None = None

    def to_json(self) -> bytes:
        """The wire form; ``desk`` and ``mode`` only when set (records without them stay as they were)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("desk", "mode"):
            if data[name] is None:
                del data[name]
        return exact_json(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> AckRequest:
        return cls(**orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class Notify:
    """A staff member to notify and the ``notify`` URIs (README "The coverage file") to use.

    ``chatwoot_agent`` is the member's user id in the team's Chatwoot desk (the coverage
    file's ``chatwoot_agent``), or None; on the wire only when set.
    """

    member: str
    name: str
    uris: list[str]
    chatwoot_agent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"member": self.member, "name": self.name, "uris": list(self.uris)}
        if self.chatwoot_agent is not None:
            data["chatwoot_agent"] = self.chatwoot_agent
        return data


@dataclass(frozen=True, slots=True)
class EscalationNote:
    """An escalation step's route (``extra.escalation``): the step (0 first), its claim link
    and when the escalated message was routed (ISO 8601)."""

    step: int
    link: str | None
    routed_at: str


@dataclass(frozen=True, slots=True)
class ReminderNote:
    """A follow-through reminder's route (``extra.reminder``): ``reply_by`` (a promise to the
    customer passed: ``breach``) or ``claim`` (claimed, not answered); the promise made."""

    kind: str
    breach: bool
    promised: str | None


@dataclass(frozen=True, slots=True)
class WindowNote:
    """An early route before a reply window closes (``extra.window``): when it closes (ISO
    8601), how a reply must go after it (``human_agent``, ``template``, ``public_reply``,
    ``none``) and the promise made."""

    closes: str
    after: str
    promised: str | None


@dataclass(frozen=True, slots=True)
class HandoverItem:
    """One waiting conversation of a handover digest (``extra.handover``); instants ISO 8601.

    ``desk`` is the conversation's ``desk`` block when it came through a care desk (see
    :class:`AckRequest`; ``hold: true`` added when its team holds the inbox, docs/chatwoot.md):
    the responders then assign it in the desk (:mod:`responders.desk`). On the wire only
    when set, so items without it stay as they were.
    """

    conversation: str
    channel: str
    kind: str | None
    account: str | None
    author_name: str | None
    text: str | None
    urgent: bool
    waiting_since: str | None
    waited_seconds: int
    promised: str | None
    reply_by: str | None
    link: str | None
    action: str
    desk: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire object: every field, ``desk`` only when set."""
        data = asdict(self)
        if self.desk is None:
            del data["desk"]
        return data


_NOTES: dict[str, type] = {"escalation": EscalationNote, "reminder": ReminderNote, "window": WindowNote}
_TEXT_NOTES = ("reply_to", "ack_id", "ack_text")
_TRAILING_NOTES = ("kind", "urgent_rule", "waiting_since", "promised")
EXTRA_KEYS = (*_TEXT_NOTES, "escalation", "reminder", "window", "handover", "partitions", *_TRAILING_NOTES)
"""The keys of a route's ``extra`` object that :class:`RouteRequest` types, in the order it writes them."""


def _note_of(kind: type, value: object) -> Any:
    """``value`` as a ``kind`` note when it has exactly the note's keys, else None (kept as it came)."""
    names = [f.name for f in fields(kind)]
    if isinstance(value, dict) and sorted(value) == sorted(names):
        return kind(**value)
    return None


_ITEM_KEYS = sorted(f.name for f in fields(HandoverItem) if f.name != "desk")


def _item_of(value: object) -> HandoverItem | None:
    """``value`` as a :class:`HandoverItem` when it has exactly its keys (``desk`` optional,
    an object or null), else None."""
    if not isinstance(value, dict):
        return None
    desk = value.get("desk")
    if sorted(k for k in value if k != "desk") != _ITEM_KEYS or not (desk is None or isinstance(desk, dict)):
        return None
    return HandoverItem(**value)


def _items_of(value: object) -> tuple[HandoverItem, ...] | None:
    if not isinstance(value, list):
        return None
    items = [_item_of(item) for item in value]
    return None if any(item is None for item in items) else tuple(items)


def _partitions_of(value: object) -> tuple[int, ...] | None:
    if isinstance(value, list) and all(isinstance(item, int) for item in value):
        return tuple(value)
    return None


def _text_of(value: object) -> str | None:
    return value if isinstance(value, str) else None


_READERS: dict[str, Callable[[object], Any]] = {
    **{name: _text_of for name in (*_TEXT_NOTES, *_TRAILING_NOTES)},
    **{name: (lambda value, kind=kind: _note_of(kind, value)) for name, kind in _NOTES.items()},
    "handover": _items_of,
    "partitions": _partitions_of,
}


@dataclass(frozen=True, slots=True, init=False)
class RouteRequest:
    """A message routed (``route``) or paged (``page``) to staff: one record on the routes outbox.

    What a route says beyond the message travels in the JSON object ``extra``; its keys
    are typed here, each None when the route has none:

    - ``reply_to``: the platform's id of the customer's message (the triage's routes);
    - ``kind``: the message's kind (``dm``, ``comment``, ...), so a notice names the channel;
    - ``urgent_rule``: the urgency rule that paged;
    - ``waiting_since``: since when the customer waits (ISO 8601), for the promise rules' routes;
    - ``promised``: the acknowledgment the customer is sent with the triage's route, if any;
    - ``ack_id`` and ``ack_text``: the acknowledgment that could not be delivered (a page
      ``escalation:<ack id>``);
    - ``escalation``, ``reminder``, ``window``: the promise rules' notes
      (:class:`EscalationNote`, :class:`ReminderNote`, :class:`WindowNote`);
    - ``handover`` and ``partitions``: a handover digest's conversations
      (:class:`HandoverItem`) and the worker partitions it covers.

    ``more`` keeps the keys of ``extra`` this version does not know (or whose value has
    another shape), as they came, so a route passes through unchanged. :attr:`extra` is
    the wire object, built from all of them: keys in the order of :data:`EXTRA_KEYS`, a
    None one left out, then ``more``. A route can still be made from an ``extra`` dict
    (``RouteRequest(..., extra={...})``, ``dataclasses.replace(route, extra={...})``):
    the dict is read as :meth:`from_json` reads it and replaces all the typed keys.
    ``keep_null`` names typed keys written as null when None (kept in ``more``), for
    writers whose routes always carried them.

    ``desk`` is the routed event's ``desk`` block (a care desk's conversation, see
    :class:`AckRequest`), or None; on the wire a top-level key, only when set. The
    responders then also act in the desk (assign, note, priority).
    """

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
    window_closes: str | None
    reason: str
    reply_to: str | None
    kind: str | None
    urgent_rule: str | None
    waiting_since: str | None
    ack_id: str | None
    ack_text: str | None
    promised: str | None
    escalation: EscalationNote | None
    reminder: ReminderNote | None
    window: WindowNote | None
    handover: tuple[HandoverItem, ...] | None
    partitions: tuple[int, ...] | None
    more: dict[str, Any]
    desk: dict[str, Any] | None

    def __init__(
        self,
        route_id: str,
        event_id: str,
        team: str,
        action: Literal["route", "page"],
        mode: str,
        to: list[Notify],
        channel: str,
        account: str,
        conversation: str,
        author_name: str | None,
        text: str | None,
        at: str,
        next_open: str | None,
        window_closes: str | None = None,
        reason: str = "",
        extra: dict[str, Any] | None = None,
        *,
        reply_to: str | None = None,
        kind: str | None = None,
        urgent_rule: str | None = None,
        waiting_since: str | None = None,
        ack_id: str | None = None,
        ack_text: str | None = None,
        promised: str | None = None,
        escalation: EscalationNote | None = None,
        reminder: ReminderNote | None = None,
        window: WindowNote | None = None,
        handover: tuple[HandoverItem, ...] | None = None,
        partitions: tuple[int, ...] | None = None,
        more: dict[str, Any] | None = None,
        keep_null: Iterable[str] = (),
        desk: dict[str, Any] | None = None,
    ) -> None:
        notes: dict[str, Any] = {
            "reply_to": reply_to, "kind": kind, "urgent_rule": urgent_rule, "waiting_since": waiting_since,
            "ack_id": ack_id, "ack_text": ack_text, "promised": promised, "escalation": escalation, "reminder": reminder,
            "window": window, "handover": None if handover is None else tuple(handover),
            "partitions": None if partitions is None else tuple(partitions), "more": dict(more or {}),
        }
        for name in keep_null:
            if notes[name] is None:
                notes["more"].setdefault(name, None)
        if extra is not None:
            notes = _notes_of(extra)
        values = {
            "route_id": route_id, "event_id": event_id, "team": team, "action": action, "mode": mode, "to": to,
            "channel": channel, "account": account, "conversation": conversation, "author_name": author_name,
            "text": text, "at": at, "next_open": next_open, "window_closes": window_closes, "reason": reason,
            **notes, "desk": desk,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def extra(self) -> dict[str, Any]:
        """The wire object ``extra``: the typed keys that are set, in :data:`EXTRA_KEYS` order
        (a key of ``more`` with such a name in its place), then the rest of ``more``."""
        extra: dict[str, Any] = {}
        for name in EXTRA_KEYS:
            value = getattr(self, name)
            if value is None:
                if name in self.more:  # null, or of a shape this version does not type: where it was
                    extra[name] = self.more[name]
                continue
            if name == "handover":
                value = [item.to_dict() for item in value]
            elif name == "partitions":
                value = list(value)
            elif name in _NOTES:
                value = asdict(value)
            extra[name] = value
        for name, value in self.more.items():
            extra.setdefault(name, value)
        return extra

    def to_dict(self) -> dict[str, Any]:
        """The wire object (notify URIs as they are; :meth:`to_json` masks them)."""
        data = {
            "route_id": self.route_id, "event_id": self.event_id, "team": self.team, "action": self.action,
            "mode": self.mode, "to": [notify.to_dict() for notify in self.to], "channel": self.channel,
            "account": self.account, "conversation": self.conversation, "author_name": self.author_name,
            "text": self.text, "at": self.at, "next_open": self.next_open, "window_closes": self.window_closes,
            "reason": self.reason, "extra": self.extra,
        }
        if self.desk is not None:
            data["desk"] = self.desk
        return data

    def to_json(self) -> bytes:
        """The wire form, with the notify URIs masked: a topic never carries a webhook URL
        (:mod:`records.secrets`); the responders find the URI again in the coverage."""
        masked = [replace(n, uris=[mask_value(uri) for uri in n.uris]) for n in self.to]
        return exact_json({**self.to_dict(), "to": [notify.to_dict() for notify in masked]})

    @classmethod
    def from_json(cls, raw: bytes | str) -> RouteRequest:
        """Read a route; ``extra`` (absent in none written so far) is read into the typed keys and ``more``."""
        data = orjson.loads(raw)
        data["to"] = [Notify(**n) for n in data.get("to", [])]
        data["extra"] = data.get("extra") or {}
        return cls(**data)


def _notes_of(extra: dict[str, Any]) -> dict[str, Any]:
    """The typed keys of an ``extra`` object, and ``more`` for the rest (unknown, null or of another shape)."""
    notes: dict[str, Any] = {name: None for name in EXTRA_KEYS}
    more: dict[str, Any] = {}
    for name, value in extra.items():
        reader = _READERS.get(name)
        typed = None if reader is None else reader(value)
        if typed is None:
            more[name] = value
        else:
            notes[name] = typed
    notes["more"] = more
    return notes


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
        return exact_json(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        return cls(**orjson.loads(raw))
