"""The records of the actions topic (``settings.ops.actions_topic``, ``offhours.actions``).

Three writers share the topic, keyed (or sent) to the partition of the conversation it
concerns, and one reader applies them: the worker's ``actions`` agent
(:func:`streams.app.apply_action`), which owns that partition of the tables.

- The operations API and the signed claim links (:mod:`edge.actions`): a staff member
  claims a conversation (:class:`Claim`) or marks it answered (:class:`Answered`)::

    {"action_id": "claim:link:5f0c…" | "claim:<uuid hex>", "action": "claim" | "answered",
     "conversation": "fb:PAGE_111:PSID_222", "event_id": "fb:m_abc123" | null,
     "member": "marta" | null, "by": "ops:anna" | "link:marta", "via": "api" | "link",
     "at": "2026-11-23T21:20:00+00:00"}

  ``at`` in whole seconds, with the offset it was given; a claim needs a ``member``.
- The Chatwoot webhook (:mod:`edge.normalize.chatwoot`): a conversation assigned in the
  desk to a staff member's ``chatwoot_agent`` is their claim, one resolved is answered;
  the same records with ``"via": "chatwoot"``, ``"by": "chatwoot:agent:<user id>"`` (or
  ``"chatwoot"`` when the desk names nobody) and ``"action_id": "<action>:chatwoot:<delivery>"``.
- The worker's sweep (:mod:`streams.sweeps`), ``at`` the sweep's instant in UTC
  (``datetime.isoformat()``, microseconds when there are any):

  - :class:`EscalationTick`: ``{"action": "escalate", "conversation": …, "event_id":
    <the routed event>, "sent": <steps sent when swept>, "at": …}``;
  - :class:`ReminderTick`: ``{"action": "remind", "conversation": …, "event_id": <the
    reminder id, remind:<kind>:<conversation>:<due>>, "at": …}``;
  - :class:`WindowTick`: ``{"action": "window", "conversation": …, "sent": <the
    customer message time, POSIX seconds>, "at": …}``.
- The retention sweep (:mod:`streams.retention`), sent to one partition each:

  - :class:`ExpireTick`: ``{"action": "expire", "conversation": "expire:p<N>",
    "expired": [[<conversation, Latin-1>, <last activity seen, POSIX seconds, or null>], …], "at": …}``;
  - :class:`LedgerExpireTick`: ``{"action": "expire_ledger", "conversation":
    "ledger:p<N>", "keys": [<delivery-ledger key>, …], "at": …}``.

Every record is encoded by its ``to_json`` and decoded by :func:`decode_action`, which
returns the typed record or raises :class:`ActionInvalid` naming what is wrong. The
reader ignores keys it does not know, so records from a newer writer still apply.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson

from records.stored import exact_json

CLAIM = "claim"
"""The ``action`` of a staff member claiming a conversation."""

ANSWERED = "answered"
"""The ``action`` of a staff member marking a conversation answered."""

ESCALATE = "escalate"
"""The ``action`` of an escalation tick on the actions topic."""

REMIND = "remind"
"""The ``action`` of a follow-through tick (a reminder due) on the actions topic."""

WINDOW = "window"
"""The ``action`` of a reply-window tick (route before the window closes) on the actions topic."""

EXPIRE = "expire"
"""The ``action`` of a conversation expiry tick on the actions topic."""

EXPIRE_LEDGER = "expire_ledger"
"""The ``action`` of a delivery-ledger expiry tick (one partition's keys) on the actions topic."""

STAFF_ACTIONS = (CLAIM, ANSWERED)
"""The actions staff take (operations API, claim links)."""

TICKS = (ESCALATE, REMIND, WINDOW, EXPIRE, EXPIRE_LEDGER)
"""The actions the workers' sweeps post."""

ActionKind = Literal["claim", "answered"]
ActionVia = Literal["api", "link", "chatwoot"]


class ActionInvalid(ValueError):
    """An actions-topic record that cannot be applied; the message says why."""


def _aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the time of an action must be aware")


class _Timed:
    """What every action record has: ``conversation`` and the aware instant ``at``."""

    __slots__ = ()
    action: ClassVar[str]
    conversation: str
    at: datetime

    @property
    def seconds(self) -> int:
        """``at`` in whole POSIX seconds: what the agent decides with."""
        return int(self.at.timestamp())

    @property
    def instant(self) -> datetime:
        """``at`` in whole seconds, as an aware instant in UTC."""
        return datetime.fromtimestamp(self.seconds, UTC)

    @property
    def key(self) -> bytes:
        """The record key: the conversation (or the partition name of an expiry tick)."""
        return self.conversation.encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> bytes:
        """The wire form: compact UTF-8 JSON, keys in the order of the module docstring."""
        return exact_json(self.to_dict())


def _tick_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


# -- staff actions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaffAction(_Timed):
    """A claim or an answered mark (:class:`Claim`, :class:`Answered`).

    ``action_id`` is deterministic for a link (the same link clicked twice gives the
    same id), so consumers can ignore repeats; an action through the API gets a fresh
    one (:meth:`new`). ``action_id``, ``by`` and ``via`` are None only in records
    written without them (the reader never needed them).
    """

    conversation: str
    member: str | None
    at: datetime
    event_id: str | None = None
    by: str | None = None
    via: str | None = None
    action_id: str | None = None

    def __post_init__(self) -> None:
        _aware(self.at)

    @classmethod
    def new(
        cls,
        *,
        conversation: str,
        member: str | None,
        by: str,
        via: ActionVia,
        at: datetime,
        event_id: str | None = None,
        link_token: str | None = None,
    ) -> StaffAction:
        """A new action with its ``action_id``: from the link's token, else a fresh one."""
        _aware(at)
        if link_token is not None:
            action_id = f"{cls.action}:link:{hashlib.sha256(link_token.encode('utf-8')).hexdigest()[:32]}"
        else:
            action_id = f"{cls.action}:{uuid.uuid4().hex}"
        return cls(conversation=conversation, member=member, at=at, event_id=event_id, by=by, via=via,
                   action_id=action_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "action": self.action,
            "conversation": self.conversation,
            "event_id": self.event_id,
            "member": self.member,
            "by": self.by,
            "via": self.via,
            "at": self.at.isoformat(timespec="seconds"),
        }


@dataclass(frozen=True, slots=True)
class Claim(StaffAction):
    """``member`` takes the conversation: its state records the claimer and the time."""

    action: ClassVar[str] = CLAIM

    def __post_init__(self) -> None:
        _aware(self.at)
        if not self.member:
            raise ValueError("a claim needs a member")


@dataclass(frozen=True, slots=True)
class Answered(StaffAction):
    """The conversation is answered (``member``, when given, says by whom)."""

    action: ClassVar[str] = ANSWERED


# -- the sweeps' ticks ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EscalationTick(_Timed):
    """Escalate the pending escalation of ``event_id`` at ``at``, if ``sent`` steps are still all sent.

    Two ticks of one sweep state never send two steps: the second finds more sent.
    """

    action: ClassVar[str] = ESCALATE
    conversation: str
    event_id: str
    sent: int
    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "conversation": self.conversation, "event_id": self.event_id,
                "sent": self.sent, "at": _tick_time(self.at)}


@dataclass(frozen=True, slots=True)
class ReminderTick(_Timed):
    """Send the follow-through reminder ``reminder_id`` (wire key ``event_id``) if still due and not sent."""

    action: ClassVar[str] = REMIND
    conversation: str
    reminder_id: str
    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "conversation": self.conversation, "event_id": self.reminder_id,
                "at": _tick_time(self.at)}


@dataclass(frozen=True, slots=True)
class WindowTick(_Timed):
    """Route the conversation early if its customer message of ``customer_at`` (wire key ``sent``,
    POSIX seconds) still waits and its reply window closes before the team opens."""

    action: ClassVar[str] = WINDOW
    conversation: str
    customer_at: int
    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "conversation": self.conversation, "sent": self.customer_at,
                "at": _tick_time(self.at)}


@dataclass(frozen=True, slots=True)
class ExpireTick(_Timed):
    """Delete the conversations named, each only while its last activity is still the one seen.

    ``conversation`` is the partition's name (``expire:p<N>``); ``expired`` pairs each
    conversation key (Latin-1 text: every byte round-trips) with its last activity as
    the sweep saw it (POSIX seconds, None when it records none).
    """

    action: ClassVar[str] = EXPIRE
    conversation: str
    expired: tuple[tuple[str, int | None], ...]
    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)

    @property
    def keys(self) -> tuple[str, ...]:
        """The conversation keys named (Latin-1 text)."""
        return tuple(name for name, _ in self.expired)

    @property
    def seen(self) -> tuple[int | None, ...]:
        """The last activity the sweep saw of each, in the order of :attr:`keys`."""
        return tuple(seen for _, seen in self.expired)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "conversation": self.conversation,
                "expired": [[name, seen] for name, seen in self.expired], "at": _tick_time(self.at)}


@dataclass(frozen=True, slots=True)
class LedgerExpireTick(_Timed):
    """Delete (or stamp, when unstamped) the delivery-ledger entries ``keys`` of the partition ``ledger:p<N>``."""

    action: ClassVar[str] = EXPIRE_LEDGER
    conversation: str
    keys: tuple[str, ...]
    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "conversation": self.conversation, "keys": list(self.keys),
                "at": _tick_time(self.at)}


ActionRecord = Claim | Answered | EscalationTick | ReminderTick | WindowTick | ExpireTick | LedgerExpireTick
"""Any record of the actions topic."""


# -- the one reader ---------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int)


def decode_action(raw: bytes | str) -> ActionRecord:
    """Read one actions-topic record, raising :class:`ActionInvalid` with what is wrong.

    Checked in this order, the first fault named: JSON, an object, a known ``action``,
    ``conversation``, ``member`` (a string or null; a claim needs one), ``at`` (ISO 8601
    with an offset), then the fields of the kind.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ActionInvalid("not JSON") from None
    if not isinstance(data, dict):
        raise ActionInvalid("not a JSON object")
    action = data.get("action")
    if action not in STAFF_ACTIONS and action not in TICKS:
        raise ActionInvalid("action must be claim or answered")
    conversation = data.get("conversation")
    if not isinstance(conversation, str) or not conversation:
        raise ActionInvalid("conversation missing")
    member = data.get("member")
    if member is not None and not isinstance(member, str):
        raise ActionInvalid("member must be a string")
    if action == CLAIM and not member:
        raise ActionInvalid("a claim needs a member")
    try:
        at = datetime.fromisoformat(str(data.get("at")))
    except ValueError:
        raise ActionInvalid("at must be ISO 8601") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise ActionInvalid("at needs a UTC offset")
    if action in STAFF_ACTIONS:
        return _staff_action(action, data, conversation, member, at)
    event_id, sent = data.get("event_id"), data.get("sent")
    if action == ESCALATE:
        if not isinstance(event_id, str) or not _is_int(sent):
            raise ActionInvalid("an escalation tick needs event_id and sent")
        return EscalationTick(conversation=conversation, event_id=event_id, sent=sent, at=at)
    if action == REMIND:
        if not isinstance(event_id, str):
            raise ActionInvalid("a reminder tick needs event_id (the reminder id)")
        return ReminderTick(conversation=conversation, reminder_id=event_id, at=at)
    if action == WINDOW:
        if not _is_int(sent):
            raise ActionInvalid("a reply-window tick needs sent (the customer message time)")
        return WindowTick(conversation=conversation, customer_at=sent, at=at)
    if action == EXPIRE:
        items = data.get("expired")
        if not isinstance(items, list) or not all(
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
            and (item[1] is None or _is_int(item[1])) for item in items
        ):
            raise ActionInvalid("an expiry tick needs expired: [conversation, last activity or null] pairs")
        return ExpireTick(conversation=conversation, expired=tuple((item[0], item[1]) for item in items), at=at)
    names = data.get("keys")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ActionInvalid("a ledger expiry tick needs keys (a list of ledger keys)")
    return LedgerExpireTick(conversation=conversation, keys=tuple(names), at=at)


def _text(data: dict[str, Any], name: str) -> str | None:
    # Never checked by the reader: a value that is not text reads as absent.
    value = data.get(name)
    return value if isinstance(value, str) else None


def _staff_action(action: str, data: dict[str, Any], conversation: str, member: str | None, at: datetime) -> StaffAction:
    kind = Claim if action == CLAIM else Answered
    return kind(conversation=conversation, member=member, at=at, event_id=_text(data, "event_id"),
                by=_text(data, "by"), via=_text(data, "via"), action_id=_text(data, "action_id"))
