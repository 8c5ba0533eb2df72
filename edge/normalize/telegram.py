"""Telegram Bot API updates to events.

A ``message`` is a ``dm`` in a private chat and a ``mention`` in a group or supergroup
(public: with privacy mode the bot only sees what is addressed to it); the reply goes
to the chat the customer wrote in (:func:`records.platforms.reply_target`). Edited
messages (the original was handled), channel posts (a channel's own broadcasts, not a
customer writing), callback queries and messages from bots (our own included) are
skipped, each with its reason. Ids are ``tg:<chat_id>:<message_id>``: ``message_id`` is
unique only within a chat, and a redelivered update carries the same message. ``date``
is epoch seconds; ``chat.id`` may exceed 32 bits and is negative for groups (kept as
text).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge.normalize import (
    DEFAULT_LIMITS,
    Collector,
    Limits,
    Normalized,
    from_epoch_seconds,
    named,
    optional_id,
    optional_text,
    require_object,
    resolve_account,
    shown,
    text_id,
)
from records.platforms import ID_PREFIXES

PREFIX = ID_PREFIXES["telegram"]
_PRIVATE = "private"
_NOT_A_MESSAGE = {
    "channel_post": "channel_post: a channel's own post, not a customer writing",
    "edited_channel_post": "edited_channel_post: a channel's own post, not a customer writing",
}


def normalize(
    payload: Any,
    accounts: Mapping[str, str],
    *,
    received_at: datetime,
    bot: str,
    account: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Normalized:
    """Events of one update to ``bot``; ``account`` overrides the lookup of ``bot`` in ``accounts``."""
    update = require_object(payload)
    collector = Collector(limits)
    update_id = update.get("update_id")
    ref = f"update {optional_id(update_id) or shown(update_id)}"
    message = update.get("message")
    if message is None:
        other = sorted(set(update) - {"update_id"}) or ["unknown"]
        collector.skip(ref, _NOT_A_MESSAGE.get(other[0], f"{named(other[0])} is not a new message"))
        return collector.result()
    with collector.item(ref):
        sender = message.get("from") or message.get("sender_chat") or {}
        if sender.get("is_bot"):
            collector.skip(ref, "message from a bot")
            return collector.result()
        chat = message["chat"]
        chat_id = text_id(chat.get("id"), "chat.id")
        replied = optional_id((message.get("reply_to_message") or {}).get("message_id"))
        collector.add(
            id=f"{PREFIX}:{chat_id}:{text_id(message.get('message_id'), 'message_id')}",
            account=account or resolve_account(accounts, PREFIX, bot),
            channel="telegram",
            kind="dm" if chat.get("type") == _PRIVATE else "mention",
            conversation=f"{PREFIX}:{bot}:{chat_id}",
            author={"id": text_id(sender.get("id"), "from.id"), "name": _name(sender)},
            text=message.get("text") or message.get("caption"),
            at=from_epoch_seconds(message["date"], "date"),
            in_reply_to=f"{PREFIX}:{chat_id}:{replied}" if replied is not None else None,
        )
    return collector.result()


def _name(sender: dict[str, Any]) -> str | None:
    parts = (optional_text(sender.get("first_name")), optional_text(sender.get("last_name")))
    full = " ".join(part for part in parts if part)
    return full or optional_text(sender.get("title")) or optional_text(sender.get("username"))
