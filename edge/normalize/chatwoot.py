"""Chatwoot account webhooks to events and desk signals.

A team that answers through a Chatwoot desk (the coverage file's ``chatwoot:`` block)
has the account names ``chatwoot:<account>/<inbox>``; the desk's account webhook posts
one JSON object per change, its kind in ``event``:

- ``message_created`` of ``message_type`` ``incoming``, not private, from a ``contact``:
  a ``dm`` event. ``outgoing``, not private, written by a ``user`` (an agent): an
  ``agent_reply``. Either is::

    {"id": "cw:<account>:<message id>", "account": "chatwoot:<account>/<inbox>",
     "channel": <conversation.channel, see CHANNELS>, "kind": "dm" | "agent_reply",
     "conversation": "cw:<account>:<conversation display id>",
     "author": {"id": "<sender id>", "name": <sender name>, "followers": null},
     "text": <content>, "lang": null, "at": <created_at>, "in_reply_to": null,
     "desk": {"kind": "chatwoot", "account": 1, "inbox": 3, "conversation": 10,
              "message": 118, "can_reply": true, "status": "open", "assignee": 42 | null,
              "contact": 14 | null}}

  ``desk`` is what a reply through the desk needs (README: Events keeps other keys as
  they are). offhours' own messages come back as ``outgoing`` too: one that carries
  ``content_attributes.offhours_id`` (what offhours writes with each message), or whose
  sender is one of ``own_senders`` (``"user:<id>"``, ``"agent_bot:<id>"``), is skipped as
  "offhours' own message"; any other agent bot's message is skipped as not written by
  staff. Private notes, ``activity`` and ``template`` messages are skipped.
- ``conversation_created``, ``conversation_updated``, ``conversation_status_changed``
  (and the agent bots' ``conversation_resolved``) produce no event: a conversation
  assigned to an agent is a claim by the staff member whose ``chatwoot_agent`` is that
  agent, in the team that answers the inbox; one resolved is answered
  (:mod:`records.actions`, ``via: chatwoot``). ``conversation_updated`` is read for
  assignments only (its ``changed_attributes``): a resolution also arrives as
  ``conversation_status_changed``, which is read for it. An assignment to the agent
  the conversation's custom attribute ``offhours_assignee`` names is offhours' own
  (it writes that attribute before it assigns): skipped, no claim.
- ``message_updated``, ``contact_created``, ``contact_updated``, ``webwidget_triggered``
  and anything else are skipped with the reason.

Times: a message's ``created_at`` is ISO 8601 (``2026-11-27T21:02:48.000Z``, what Rails
writes), ``"2026-11-27 21:02:48 UTC"`` (Chatwoot's documented sample) or POSIX seconds;
absent, the request's. Ids are 64-bit at most (account, inbox, conversation, message,
users); a string of digits is read as its number.

Conversation payloads carry the account only inside their ``messages`` (Chatwoot's
conversation objects have no ``account``): without one, the inbox is looked up among the
coverage's Chatwoot inboxes (inbox ids are unique in a Chatwoot installation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from edge.normalize import (
    DEFAULT_LIMITS,
    Collector,
    InvalidPayload,
    Limits,
    Normalized,
    from_epoch_seconds,
    from_iso,
    named,
    optional_text,
    require_object,
    shown,
    whole_number,
)
from records.actions import Answered, Claim, StaffAction
from schedules import Coverage, Team, chatwoot_account

PREFIX = "cw"
"""The prefix of the ids and conversations of events from a Chatwoot desk."""

CHANNELS = {
    "Channel::FacebookPage": "facebook",
    "Channel::Instagram": "instagram",
    "Channel::Whatsapp": "whatsapp",
    "Channel::TwitterProfile": "x",
    "Channel::Telegram": "telegram",
}
"""Chatwoot's inbox channel types and the channel of their events; any other (web widget,
API, e-mail, SMS, LINE, ...) is ``generic``."""

OWN_MARK = "offhours_id"
"""The ``content_attributes`` key offhours writes on every message it posts to the desk."""

OWN_MESSAGE = "offhours' own message"

OWN_ASSIGNEE = "offhours_assignee"
"""The conversation custom attribute in which offhours names the agent it assigns."""

_MAX_ID = 2**63 - 1
_MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}
_CONVERSATION_EVENTS = frozenset(
    {"conversation_created", "conversation_updated", "conversation_status_changed", "conversation_resolved"}
)
_NO_MESSAGE = {
    "message_updated": "message_updated: an edit or a delivery status of a message already received",
    "contact_created": "contact_created: a contact, no message",
    "contact_updated": "contact_updated: a contact, no message",
    "webwidget_triggered": "webwidget_triggered: a visitor opened the web widget, no message",
    "conversation_opened": "conversation_opened: nothing to record",
    "conversation_typing_on": "conversation_typing_on: typing, no message",
    "conversation_typing_off": "conversation_typing_off: typing, no message",
}
_UTC_SUFFIX = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?) ?UTC")
_DELIVERY = re.compile(r"[A-Za-z0-9-]{1,64}")


def normalize(
    payload: Any,
    *,
    received_at: datetime,
    coverage: Coverage | None = None,
    delivery: str | None = None,
    own_senders: Iterable[str] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> Normalized:
    """Events and desk signals of one Chatwoot webhook body (see the module docstring).

    ``coverage``: the coverage in force, to find the team of an inbox and the staff member
    of an agent (without it desk signals are skipped). ``delivery``: the
    ``X-Chatwoot-Delivery`` header, the id of the actions a delivery records.
    ``own_senders``: the desk identities offhours posts as, ``"user:<id>"`` or
    ``"agent_bot:<id>"``. ``received_at``: the request's clock (aware).
    """
    body = require_object(payload)
    event = body.get("event")
    if event is None:
        raise InvalidPayload("event is missing: not a Chatwoot webhook body")
    if not isinstance(event, str):
        raise InvalidPayload(f"event is not a string: {shown(event)}")
    collector = Collector(limits)
    context = _Context(collector, received_at, coverage, delivery, frozenset(own_senders))
    if event == "message_created":
        ref = f"message {shown(body.get('id'))}"
        with collector.item(ref):
            context.message(ref, body)
    elif event in _CONVERSATION_EVENTS:
        ref = f"{event} of conversation {shown(body.get('id'))}"
        with collector.item(ref):
            context.conversation(ref, event, body)
    else:
        collector.skip(named(event), _NO_MESSAGE.get(event, f"{named(event)} carries no customer message"))
    return collector.result()


def desk_id(value: Any, what: str) -> int:
    """A Chatwoot id: a positive whole number of at most 64 bits (a number or a string of digits)."""
    if value is None or value == "":
        raise ValueError(f"{what} is missing")
    if isinstance(value, float):
        raise ValueError(f"{what} is not a whole number: {shown(value)}")
    number = whole_number(value, what)
    if not 0 < number <= _MAX_ID:
        raise ValueError(f"{what} {shown(value)} is not a positive id of at most 64 bits")
    return number


def _optional_id(value: Any) -> int | None:
    try:
        return desk_id(value, "id")
    except ValueError:
        return None


def desk_time(value: Any, what: str = "created_at") -> datetime:
    """Chatwoot's times: ISO 8601, ``YYYY-MM-DD HH:MM:SS UTC`` or POSIX seconds."""
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return from_epoch_seconds(text, what)
        match = _UTC_SUFFIX.fullmatch(text)
        if match is not None:
            text = f"{match.group(1)}T{match.group(2)}+00:00"
        return from_iso(text, what)
    return from_epoch_seconds(value, what)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def _changes(body: dict[str, Any]) -> dict[str, Any] | None:
    """``changed_attributes`` as attribute -> current value; None when the body has none.

    Chatwoot writes ``[{"assignee_id": {"previous_value": 7, "current_value": 42}}, ...]``.
    """
    raw = body.get("changed_attributes")
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    changes: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("changed_attributes is not a list of objects")
        for name, change in item.items():
            changes[str(name)] = change.get("current_value") if isinstance(change, dict) else change
    return changes


class _Context:
    """What the handling of one body needs besides the body."""

    def __init__(
        self,
        collector: Collector,
        received_at: datetime,
        coverage: Coverage | None,
        delivery: str | None,
        own_senders: frozenset[str],
    ) -> None:
        self.collector = collector
        self.received_at = received_at
        self.coverage = coverage
        self.delivery = delivery if delivery is not None and _DELIVERY.fullmatch(delivery) else None
        self.own_senders = own_senders

    # -- messages ---------------------------------------------------------------------

    def message(self, ref: str, body: dict[str, Any]) -> None:
        if body.get("private") is True:
            self.collector.skip(ref, "private note: for staff only, the customer never sees it")
            return
        message_type = body.get("message_type")
        message_type = _MESSAGE_TYPES.get(message_type, message_type) if isinstance(message_type, int) else message_type
        if message_type in ("activity", "template"):
            what = "a line the desk writes itself" if message_type == "activity" else "a form or card the desk sends"
            self.collector.skip(ref, f"{message_type} message: {what}, not a customer or staff message")
            return
        sender = _mapping(body.get("sender"), "sender")
        sender_type = sender.get("type")
        sender_id = _optional_id(sender.get("id"))
        attributes = body.get("content_attributes")
        if message_type == "incoming":
            if sender_type != "contact":
                self.collector.skip(ref, f"incoming message not from a contact (sender type {shown(sender_type)})")
                return
            kind = "dm"
        elif message_type == "outgoing":
            if isinstance(attributes, dict) and attributes.get(OWN_MARK) is not None:
                self.collector.skip(ref, OWN_MESSAGE)
                return
            if sender_id is not None and f"{sender_type}:{sender_id}" in self.own_senders:
                self.collector.skip(ref, OWN_MESSAGE)
                return
            if sender_type != "user":
                self.collector.skip(
                    ref, f"outgoing message not written by staff (sender type {shown(sender_type)}): "
                    "a bot, an automation or a campaign",
                )
                return
            kind = "agent_reply"
        else:
            self.collector.skip(ref, f"message_type {shown(message_type)} is not incoming or outgoing")
            return
        conversation = _mapping(body.get("conversation"), "conversation")
        if not conversation:
            raise ValueError("conversation is missing")
        account = desk_id(_mapping(body.get("account"), "account").get("id"), "account.id")
        message = desk_id(body.get("id"), "id")
        inbox_value = _mapping(body.get("inbox"), "inbox").get("id")
        inbox = desk_id(inbox_value if inbox_value is not None else conversation.get("inbox_id"), "inbox.id")
        display = desk_id(conversation.get("id"), "conversation.id")
        author = desk_id(sender.get("id"), "sender.id")
        created = body.get("created_at")
        content = body.get("content")
        self.collector.add(
            id=f"{PREFIX}:{account}:{message}",
            account=chatwoot_account(account, inbox),
            channel=CHANNELS.get(conversation.get("channel"), "generic")
            if isinstance(conversation.get("channel"), str) else "generic",
            kind=kind,
            conversation=f"{PREFIX}:{account}:{display}",
            author={"id": str(author), "name": optional_text(sender.get("name")), "followers": None},
            text=content if isinstance(content, str) and content else None,
            lang=None,
            at=desk_time(created) if created is not None else self.received_at,
            in_reply_to=None,
            desk=self.desk(account, inbox, display, conversation, message=message,
                           contact=author if kind == "dm" else None),
        )

    def desk(
        self, account: int, inbox: int, display: int, conversation: dict[str, Any], *, message: int, contact: int | None
    ) -> dict[str, Any]:
        meta = _mapping(conversation.get("meta"), "conversation.meta")
        assignee = _mapping(meta.get("assignee"), "conversation.meta.assignee")
        if contact is None:
            contact_inbox = _mapping(conversation.get("contact_inbox"), "conversation.contact_inbox")
            contact = _optional_id(contact_inbox.get("contact_id"))
            if contact is None:
                contact = _optional_id(_mapping(meta.get("sender"), "conversation.meta.sender").get("id"))
        can_reply = conversation.get("can_reply")
        status = conversation.get("status")
        return {
            "kind": "chatwoot",
            "account": account,
            "inbox": inbox,
            "conversation": display,
            "message": message,
            # Chatwoot versions before can_reply did not close a conversation to replies.
            "can_reply": can_reply if isinstance(can_reply, bool) else True,
            "status": status if isinstance(status, str) else None,
            "assignee": _optional_id(assignee.get("id")),
            "contact": contact,
        }

    # -- conversations: desk signals ----------------------------------------------------

    def conversation(self, ref: str, event: str, body: dict[str, Any]) -> None:
        display = desk_id(body.get("id"), "id")
        inbox = desk_id(body.get("inbox_id"), "inbox_id")
        meta = _mapping(body.get("meta"), "meta")
        assignee = _optional_id(_mapping(meta.get("assignee"), "meta.assignee").get("id"))
        if event == "conversation_updated":
            changes = _changes(body)
            if changes is None:
                self.collector.skip(ref, "no changed_attributes: what changed is unknown (Chatwoot before 2.x?)")
                return
            if "assignee_id" not in changes:
                names = ", ".join(sorted(changes)) or "nothing"
                self.collector.skip(ref, f"changes {named(names, 80)}: no assignment (a resolution is read from "
                                    "conversation_status_changed)")
                return
            agent = _optional_id(changes["assignee_id"])
            if agent is None:
                self.collector.skip(ref, "unassigned: nothing to record")
                return
            custom = body.get("custom_attributes")
            if isinstance(custom, dict) and _optional_id(custom.get(OWN_ASSIGNEE)) == agent:
                self.collector.skip(ref, f"offhours' own assignment to agent {agent}: no claim")
                return
            self.signal(ref, "claim", body, display, inbox, agent)
        elif event == "conversation_created":
            if assignee is None:
                self.collector.skip(ref, "a new conversation: its messages arrive as message_created")
                return
            self.signal(ref, "claim", body, display, inbox, assignee)
        else:
            status = body.get("status")
            if event == "conversation_status_changed":
                changes = _changes(body) or {}
                status = changes.get("status", status)
            if event != "conversation_resolved" and status != "resolved":
                self.collector.skip(ref, f"status {shown(status)}: nothing to record (only resolved is answered)")
                return
            self.signal(ref, "answered", body, display, inbox, assignee)

    def signal(self, ref: str, action: str, body: dict[str, Any], display: int, inbox: int, agent: int | None) -> None:
        if self.coverage is None:
            self.collector.skip(ref, "no coverage known yet: the desk's agents cannot be told apart")
            return
        found = self.team(body, inbox)
        if found is None:
            self.collector.skip(ref, f"no team of the coverage answers Chatwoot inbox {inbox}")
            return
        account, team = found
        member = team.member_for_agent(agent) if agent is not None else None
        if action == "claim" and member is None:
            self.collector.skip(
                ref, f"Chatwoot agent {agent} is no staff member of team '{team.id}' (no chatwoot_agent: {agent})"
            )
            return
        conversation = f"{PREFIX}:{account}:{display}"
        fields: dict[str, Any] = {
            "conversation": conversation,
            "member": member,
            "at": self.received_at.astimezone(UTC).replace(microsecond=0),
            "by": f"chatwoot:agent:{agent}" if agent is not None else "chatwoot",
            "via": "chatwoot",
            "action_id": self.action_id(action, account, display, agent),
        }
        record: StaffAction = Claim(**fields) if action == "claim" else Answered(**fields)
        self.collector.act(record)

    def team(self, body: dict[str, Any], inbox: int) -> tuple[int, Team] | None:
        """The account and the team answering ``inbox``: the body's account, else the coverage's."""
        assert self.coverage is not None
        account = _optional_id(_mapping(body.get("account"), "account").get("id")) or _optional_id(body.get("account_id"))
        if account is None:
            for message in body.get("messages") or ():
                if isinstance(message, dict) and (account := _optional_id(message.get("account_id"))) is not None:
                    break
        if account is not None:
            team = self.coverage.team_for_account(chatwoot_account(account, inbox))
            return None if team is None else (account, team)
        found = [(team.chatwoot_account, team) for team in self.coverage.teams.values() if inbox in team.chatwoot_inboxes]
        if len(found) != 1 or found[0][0] is None:
            return None
        return found[0][0], found[0][1]

    def action_id(self, action: str, account: int, display: int, agent: int | None) -> str:
        """The record's id: the delivery's (stable across Chatwoot's retries), else from its content."""
        if self.delivery is not None:
            return f"{action}:chatwoot:{self.delivery}"
        seconds = int(self.received_at.timestamp())
        return f"{action}:chatwoot:{account}:{display}:{agent if agent is not None else '-'}:{seconds}"
