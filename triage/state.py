"""Conversation state: what the triage policy remembers about one conversation.

One :class:`ConversationState` per conversation key lives in the triage agent's table.
It holds the few instants the suppression rules need (last customer message, last
acknowledgment, last staff reply), where the conversation was routed, who claimed it
and when (on-call actions), whether it is answered, what the handover at opening shows
(the channel and the kind of the customer's messages, which decide the reply window, whether a message was paged as urgent, the acknowledgment promised), what
the follow-through needs (since when a customer waits for a staff reply, the reply-by
time promised, the reminders already sent, the reply window already routed early and
how a human reply must be sent after it), who wrote last and what, on which account
(what a reminder, an early route and the handover tell staff; the words cut at
:data:`TEXT_KEPT` characters), and a bounded record of recently processed events (:class:`Processed`), so
that an event redelivered by Kafka (at-least-once) gets the same decision again and
never a second acknowledgment or route.

Instants are POSIX seconds (int). The wire form (:meth:`ConversationState.to_bytes`) is
compact JSON with short keys; event ids are kept as 64-bit digests, so a full record of
:data:`RECENT_LIMIT` events stays well under 1 KiB whatever the platforms' id lengths.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal

import orjson

from records.stored import exact_json

Status = Literal["open", "answered"]
Suppression = Literal["duplicate", "agent_active"]

RECENT_LIMIT = 16
"""How many recently processed events a conversation remembers for redelivery."""

TEXT_KEPT = 500
"""How much of the customer's latest message a conversation keeps for staff notices."""

REMINDERS_KEPT = 4
"""How many follow-through reminder ids a conversation remembers (each is sent once)."""

ACTIVITY_FIELDS = (
    "customer_at", "waiting_since", "ack_at", "reply_by", "staff_at", "routed_at", "claimed_at", "window_routed",
)
"""The instants of a :class:`ConversationState` that say when it was last active."""

_ACTIVITY_KEYS = ("c", "w", "k", "b", "r", "ra", "ca", "wr")  # their wire keys (to_bytes), in the same order


def last_activity_of(raw: bytes | str) -> int | None:
    """:meth:`ConversationState.last_activity` of a stored state, without building the state.

    The sweep reads every row of the table at each pass; this reads only the instants.
    """
    data = orjson.loads(raw)
    instants = [data.get(key) for key in _ACTIVITY_KEYS]
    return max((at for at in instants if isinstance(at, int)), default=None)


_SUPPRESSION_CODES: Mapping[str | None, int] = MappingProxyType({None: 0, "duplicate": 1, "agent_active": 2})
_SUPPRESSIONS: tuple[Suppression | None, ...] = (None, "duplicate", "agent_active")


def event_digest(event_id: str) -> str:
    """A short stable digest of an event id (11 characters, 64 bits)."""
    digest = hashlib.blake2b(event_id.encode("utf-8"), digest_size=8).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Processed:
    """One processed event and the state-dependent facts of its decision.

    Everything else in a decision follows from the event and the coverage; these two
    facts depended on the state *before* the event, which redelivery no longer sees:
    ``suppressed`` (why the acknowledgment was withheld, if it was) and ``route_held``
    (a route was decided but not sent again because the conversation was already routed).
    """

    digest: str
    suppressed: Suppression | None = None
    route_held: bool = False


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What the policy knows about one conversation (all instants in POSIX seconds).

    ``desk`` is the latest customer message's ``desk`` block when the conversation is a
    care desk's (README "Events"): the promise rules' routes about it act in the desk too.
    """

    team: str
    status: Status = "open"
    customer_at: int | None = None
    ack_at: int | None = None
    staff_at: int | None = None
    staff_id: str | None = None
    routed_to: tuple[str, ...] = ()
    routed_at: int | None = None
    recent: tuple[Processed, ...] = ()
    claimed_by: str | None = None
    claimed_at: int | None = None
    channel: str | None = None
    kind: str | None = None
    urgent: bool = False
    promised: str | None = None
    waiting_since: int | None = None
    reply_by: int | None = None
    reminded: tuple[str, ...] = ()
    window_routed: int | None = None
    reply_via: str | None = None
    author_name: str | None = None
    text: str | None = None
    account: str | None = None
    desk: dict[str, Any] | None = None

    def processed(self, event_id: str) -> Processed | None:
        """The record of ``event_id`` when it was processed recently, else None."""
        digest = event_digest(event_id)
        for entry in self.recent:
            if entry.digest == digest:
                return entry
        return None

    def remember(
        self,
        event_id: str,
        *,
        suppressed: Suppression | None = None,
        route_held: bool = False,
    ) -> ConversationState:
        """This state with ``event_id`` recorded, dropping the oldest beyond :data:`RECENT_LIMIT`."""
        return replace(self, recent=self.recent_with(event_id, suppressed=suppressed, route_held=route_held))

    def recent_with(
        self,
        event_id: str,
        *,
        suppressed: Suppression | None = None,
        route_held: bool = False,
    ) -> tuple[Processed, ...]:
        """The ``recent`` of :meth:`remember` (for a caller that changes more fields at once)."""
        entry = Processed(event_digest(event_id), suppressed, route_held)
        return (*self.recent, entry)[-RECENT_LIMIT:]

    def to_bytes(self) -> bytes:
        """The compact wire form (JSON, short keys, defaults left out)."""
        data: dict[str, Any] = {"t": self.team}
        if self.status != "open":
            data["s"] = "a"
        optional = {
            "c": self.customer_at,
            "k": self.ack_at,
            "r": self.staff_at,
            "ri": self.staff_id,
            "ra": self.routed_at,
            "cb": self.claimed_by,
            "ca": self.claimed_at,
            "ch": self.channel,
            "kd": self.kind,
            "p": self.promised,
            "w": self.waiting_since,
            "b": self.reply_by,
            "wr": self.window_routed,
            "v": self.reply_via,
            "an": self.author_name,
            "tx": self.text,
            "ac": self.account,
            "dk": self.desk,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        if self.urgent:
            data["u"] = 1
        if self.routed_to:
            data["rt"] = list(self.routed_to)
        if self.reminded:
            data["rm"] = list(self.reminded)
        if self.recent:
            data["e"] = [_entry_to_wire(entry) for entry in self.recent]
        return exact_json(data)  # lives on as the table's value

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> ConversationState:
        """Read :meth:`to_bytes` output back; unknown keys are ignored."""
        data = orjson.loads(raw)
        return cls(
            team=data["t"],
            status="answered" if data.get("s") == "a" else "open",
            customer_at=data.get("c"),
            ack_at=data.get("k"),
            staff_at=data.get("r"),
            staff_id=data.get("ri"),
            routed_to=tuple(data.get("rt", ())),
            routed_at=data.get("ra"),
            recent=tuple(_entry_from_wire(item) for item in data.get("e", ())),
            claimed_by=data.get("cb"),
            claimed_at=data.get("ca"),
            channel=data.get("ch"),
            kind=data.get("kd"),
            urgent=bool(data.get("u", 0)),
            promised=data.get("p"),
            waiting_since=data.get("w"),
            reply_by=data.get("b"),
            reminded=tuple(data.get("rm", ())),
            window_routed=data.get("wr"),
            reply_via=data.get("v"),
            author_name=data.get("an"),
            text=data.get("tx"),
            account=data.get("ac"),
            desk=data.get("dk"),
        )

    def claimed(self, member: str, at: int) -> ConversationState:
        """This state claimed by ``member`` at ``at``.

        A repeated claim by the claimer keeps the first time (an action redelivered by
        Kafka changes nothing); a claim by someone else takes the conversation over.
        """
        if self.claimed_by == member and self.claimed_at is not None:
            return self
        return replace(self, claimed_by=member, claimed_at=at)

    def waiting(self) -> bool:
        """True when a customer message waits for a staff reply (open, no reply since)."""
        return (
            self.status == "open"
            and self.customer_at is not None
            and (self.staff_at is None or self.staff_at < self.customer_at)
        )

    def wrote(self, author_name: str | None, text: str | None, account: str | None) -> ConversationState:
        """This state with the latest customer message's author, words (the first
        :data:`TEXT_KEPT` characters, then ``…``) and account."""
        text = kept_text(text)
        if (author_name, text, account) == (self.author_name, self.text, self.account):
            return self
        return replace(self, author_name=author_name, text=text, account=account)

    def promise(self) -> tuple[int | None, str | None]:
        """The reply-by time (POSIX seconds) and acknowledgment text promised to the customer
        who waits now; ``(None, None)`` when no acknowledgment was made since they started
        waiting (a promise of an earlier wait was kept or broken back then).

        A state written before ``waiting_since`` existed keeps its promise as stored.
        """
        if self.ack_at is None:
            return None, None
        start = self.waiting_since
        if start is not None and self.ack_at < start:
            return None, None
        return self.reply_by, self.promised

    def reminder_sent(self, reminder_id: str) -> ConversationState:
        """This state with a follow-through reminder recorded as sent (the latest few kept)."""
        if reminder_id in self.reminded:
            return self
        return replace(self, reminded=(*self.reminded, reminder_id)[-REMINDERS_KEPT:])

    def answered(self) -> ConversationState:
        """This state marked answered (an on-call member said a human replied)."""
        return replace(self, status="answered")

    def last_activity(self) -> int | None:
        """The latest instant this state records (POSIX seconds); None when it records none.

        Every instant counts: the customer's last message and since when they wait, the
        acknowledgment and the reply-by time it promised, the last staff reply, the
        route, the claim, the reply window routed early. The retention
        (:mod:`streams.retention`) is measured from it.
        """
        latest = None
        for at in (self.customer_at, self.waiting_since, self.ack_at, self.reply_by, self.staff_at,
                   self.routed_at, self.claimed_at, self.window_routed):  # ACTIVITY_FIELDS
            if at is not None and (latest is None or at > latest):
                latest = at
        return latest


def kept_text(text: str | None) -> str | None:
    """What a state keeps of a message's words: the first :data:`TEXT_KEPT` characters, then ``…``."""
    if text is not None and len(text) > TEXT_KEPT:
        return text[:TEXT_KEPT] + "…"
    return text


def _entry_to_wire(entry: Processed) -> str:
    # "<digest>.<suppression code><held>", e.g. "AbCdEfGhIjK.10": one short string each.
    return f"{entry.digest}.{_SUPPRESSION_CODES[entry.suppressed]}{int(entry.route_held)}"


def _entry_from_wire(item: str) -> Processed:
    digest, _, flags = item.partition(".")
    code, held = (flags + "00")[:2]
    return Processed(digest, _SUPPRESSIONS[int(code)], held == "1")
