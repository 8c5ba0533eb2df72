"""Messenger and Instagram webhooks (``object`` ``page`` or ``instagram``) to events.

Handled (ids and conversations: docs/platforms.md, "Event ids and conversations"):

- ``entry[].messaging[]`` (and Instagram's ``changes[]`` of field ``messages``) with a
  ``message``: a customer message is a ``dm``; an echo (``message.is_echo``) of a
  message the page sent is an ``agent_reply`` in the customer's conversation, with the
  page (or Instagram account) as author, unless our own app sent it (``app_id`` equal
  to ``app_id`` here: an acknowledgment of ours, not a staff reply), which is skipped.
  Deleted messages, delivery, read, reaction, postback and other callbacks are skipped.
- ``changes[]`` of field ``feed`` with ``item == "comment"`` and ``verb == "add"``
  (Facebook) or of field ``comments`` / ``live_comments`` (Instagram): a ``comment``, or
  an ``agent_reply`` when written by the page itself. Edits, removals, reactions, posts
  and mentions are skipped.

Times: ``messaging[].timestamp`` is epoch ms; ``created_time`` and ``entry[].time`` are
epoch s, epoch ms or ISO 8601 (all seen); a comment without ``created_time`` takes the
entry's time, and without that the request's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge.normalize import (
    DEFAULT_LIMITS,
    Collector,
    InvalidPayload,
    Limits,
    Normalized,
    as_list,
    from_epoch_ms,
    from_meta_time,
    named,
    optional_id,
    optional_text,
    require_object,
    resolve_account,
    shown,
    text_id,
)
from records.platforms import ID_PREFIXES

CHANNELS = {"page": ("facebook", ID_PREFIXES["facebook"]), "instagram": ("instagram", ID_PREFIXES["instagram"])}
_ENVELOPE = frozenset({"sender", "recipient", "timestamp"})
_INSTAGRAM_COMMENT_FIELDS = frozenset({"comments", "live_comments"})


def normalize(
    payload: Any,
    accounts: Mapping[str, str],
    *,
    received_at: datetime,
    app_id: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Normalized:
    """Events of one Messenger or Instagram webhook payload (see the module docstring)."""
    payload = require_object(payload)
    kind_of_object = payload.get("object")
    if not isinstance(kind_of_object, str) or kind_of_object not in CHANNELS:
        raise InvalidPayload(f"object {shown(kind_of_object)} is not 'page' or 'instagram'")
    channel, prefix = CHANNELS[kind_of_object]
    collector = Collector(limits)
    try:
        entries = as_list(payload.get("entry"), "entry")
    except ValueError as exc:
        raise InvalidPayload(str(exc)) from None
    for i, entry in enumerate(entries):
        with collector.item(f"entry[{i}]"):
            owner = text_id(entry["id"], "entry.id")
            context = _Entry(
                collector, channel, prefix, owner, resolve_account(accounts, prefix, owner), app_id
            )
            fallback = _entry_time(entry.get("time"), received_at)
            for j, messaging in enumerate(as_list(entry.get("messaging"), "messaging")):
                with collector.item(f"entry[{i}].messaging[{j}]"):
                    context.messaging(f"entry[{i}].messaging[{j}]", messaging)
            for j, _ in enumerate(as_list(entry.get("standby"), "standby")):
                collector.skip(f"entry[{i}].standby[{j}]", "standby: another app owns the thread")
            for j, change in enumerate(as_list(entry.get("changes"), "changes")):
                ref = f"entry[{i}].changes[{j}]"
                with collector.item(ref):
                    context.change(ref, change, fallback)
    return collector.result()


def _entry_time(value: Any, received_at: datetime) -> datetime:
    """The entry's time (only the fallback of a comment without its own), else the request's."""
    if value is None:
        return received_at
    try:
        return from_meta_time(value, "entry.time")
    except ValueError:
        return received_at


class _Entry:
    """The handling of one ``entry[]``: its page or Instagram account and coverage account."""

    def __init__(
        self,
        collector: Collector,
        channel: str,
        prefix: str,
        owner: str,
        account: str,
        app_id: str | None,
    ) -> None:
        self.collector = collector
        self.channel = channel
        self.prefix = prefix
        self.owner = owner
        self.account = account
        self.app_id = app_id

    def messaging(self, ref: str, item: dict[str, Any]) -> None:
        message = item.get("message")
        if message is None:
            other = sorted(str(key) for key in set(item) - _ENVELOPE) or ["unknown"]
            self.collector.skip(ref, f"{named(other[0])} callback, not a message")
            return
        if message.get("is_deleted"):
            self.collector.skip(ref, "message deleted by its author")
            return
        mid = text_id(message.get("mid"), "message.mid")
        sender = text_id(item["sender"]["id"], "sender.id")
        if message.get("is_echo"):
            if self.app_id is not None and optional_id(message.get("app_id")) == self.app_id:
                self.collector.skip(ref, "echo of our own acknowledgment")
                return
            customer = text_id(item["recipient"]["id"], "recipient.id")
            kind = "agent_reply"
        else:
            customer = sender
            kind = "dm"
        reply_to = optional_id((message.get("reply_to") or {}).get("mid"))
        self.collector.add(
            id=f"{self.prefix}:{mid}",
            account=self.account,
            channel=self.channel,
            kind=kind,
            conversation=f"{self.prefix}:{self.owner}:{customer}",
            author={"id": sender},
            text=message.get("text"),
            at=from_epoch_ms(item["timestamp"], "timestamp"),
            in_reply_to=f"{self.prefix}:{reply_to}" if reply_to else None,
        )

    def change(self, ref: str, change: dict[str, Any], fallback: datetime) -> None:
        field = change.get("field")
        value = change.get("value") or {}
        if field == "messages" and "message" in value:
            self.messaging(ref, value)
        elif field == "feed" and self.channel == "facebook":
            self._feed(ref, value, fallback)
        elif field in _INSTAGRAM_COMMENT_FIELDS and self.channel == "instagram":
            self._comment(
                ref,
                comment_id=value.get("id"),
                parent_id=value.get("parent_id"),
                author=value.get("from") or {},
                name_key="username",
                text=value.get("text"),
                at=fallback,
            )
        else:
            self.collector.skip(ref, f"field {shown(field)} carries no customer message")

    def _feed(self, ref: str, value: dict[str, Any], fallback: datetime) -> None:
        item, verb = value.get("item"), value.get("verb")
        if item != "comment" or verb != "add":
            self.collector.skip(ref, f"feed {named(item)}/{named(verb)} is not a new comment")
            return
        post_id = optional_id(value.get("post_id"))
        parent_id = optional_id(value.get("parent_id"))
        created = value.get("created_time")
        self._comment(
            ref,
            comment_id=value.get("comment_id"),
            parent_id=parent_id if parent_id != post_id else None,
            author=value.get("from") or {},
            name_key="name",
            text=value.get("message"),
            at=from_meta_time(created, "created_time") if created is not None else fallback,
            replied=parent_id or post_id,
        )

    def _comment(
        self,
        ref: str,
        *,
        comment_id: Any,
        parent_id: Any,
        author: dict[str, Any],
        name_key: str,
        text: str | None,
        at: datetime,
        replied: Any = None,
    ) -> None:
        comment = text_id(comment_id, "comment id")
        author_id = text_id(author.get("id"), "from.id")
        parent_id = optional_id(parent_id)
        thread = parent_id or comment
        replied = optional_id(replied) or parent_id
        self.collector.add(
            id=f"{self.prefix}:{comment}",
            account=self.account,
            channel=self.channel,
            kind="agent_reply" if author_id == self.owner else "comment",
            conversation=f"{self.prefix}:{self.owner}:{thread}",
            author={"id": author_id, "name": optional_text(author.get(name_key))},
            text=text,
            at=at,
            in_reply_to=f"{self.prefix}:{replied}" if replied else None,
        )
