"""X Account Activity API webhooks to events (ids and conversations: docs/platforms.md).

The account subscribed is ``for_user_id``; every conversation is
``x:<for_user_id>:<customer user id>``.

- ``direct_message_events[]`` of type ``message_create``: a customer DM is a ``dm``; a
  DM sent by the account itself (``sender_id == for_user_id``) is an ``agent_reply`` in
  the recipient's conversation, unless our own app sent it (``source_app_id`` equal to
  ``app_id`` here: an acknowledgment of ours), which is skipped. ``created_timestamp`` is
  epoch ms as a string.
- ``tweet_create_events[]``: a customer's tweet is a ``mention`` (the long text of a
  ``truncated`` tweet is ``extended_tweet.full_text``); the account's own reply to a
  customer is an ``agent_reply`` in that customer's conversation; the account's own
  posts and everybody's retweets are skipped. ``created_at`` looks like
  ``Wed Jun 05 10:00:00 +0000 2024`` and is parsed without the locale.
- Every other key (favorites, follows, typing, read receipts, deletions...) is skipped.

The AAA is due to be replaced by the X Activity API with another payload: only this
module changes then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from edge.normalize import (
    DEFAULT_LIMITS,
    Collector,
    InvalidPayload,
    Limits,
    Normalized,
    as_list,
    from_epoch_ms,
    in_range,
    optional_count,
    optional_id,
    optional_text,
    require_object,
    resolve_account,
    shown,
    text_id,
)
from records.platforms import ID_PREFIXES

PREFIX = ID_PREFIXES["x"]
_ENVELOPE = frozenset({"for_user_id", "user_has_blocked", "users", "apps", "source"})
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_created_at(value: str) -> datetime:
    """X's v1.1 ``created_at`` (``Wed Jun 05 10:00:00 +0000 2024``) as an aware UTC instant."""
    if not isinstance(value, str):
        raise ValueError(f"created_at {shown(value)} is not like 'Wed Jun 05 10:00:00 +0000 2024'")
    try:
        _weekday, month, day, clock, offset, year = value.split()
        hour, minute, second = (int(part) for part in clock.split(":"))
        sign = -1 if offset[0] == "-" else 1
        shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * sign
        local = datetime(int(year), _MONTHS[month], int(day), hour, minute, second)
        at = local.replace(tzinfo=timezone(shift)).astimezone(UTC)
    except (ValueError, KeyError, IndexError, OverflowError):
        raise ValueError(f"created_at {shown(value)} is not like 'Wed Jun 05 10:00:00 +0000 2024'") from None
    return in_range(at, "created_at")


def normalize(
    payload: Any,
    accounts: Mapping[str, str],
    *,
    received_at: datetime,
    app_id: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Normalized:
    """Events of one Account Activity payload (see the module docstring)."""
    payload = require_object(payload)
    try:
        owner = text_id(payload.get("for_user_id"), "for_user_id")
    except ValueError as exc:
        raise InvalidPayload(str(exc)) from None
    account = resolve_account(accounts, PREFIX, owner)
    users = payload.get("users")
    if not isinstance(users, dict):
        users = {}
    collector = Collector(limits)
    for key in payload:
        if key in _ENVELOPE:
            continue
        try:
            items = as_list(payload[key], key)
        except ValueError as exc:
            collector.skip(key, f"malformed: {exc}")
            continue
        for i, item in enumerate(items):
            ref = f"{key}[{i}]"
            with collector.item(ref):
                if key == "direct_message_events":
                    _direct_message(collector, ref, item, owner, account, users, app_id)
                elif key == "tweet_create_events":
                    _tweet(collector, ref, item, owner, account)
                else:
                    collector.skip(ref, f"{key}: not a message")
    return collector.result()


def _direct_message(
    collector: Collector,
    ref: str,
    event: dict[str, Any],
    owner: str,
    account: str,
    users: dict[str, Any],
    app_id: str | None,
) -> None:
    if event.get("type") != "message_create":
        collector.skip(ref, f"direct message event {shown(event.get('type'))} is not a message")
        return
    create = event["message_create"]
    sender = text_id(create.get("sender_id"), "sender_id")
    if sender == owner:
        if app_id is not None and optional_id(create.get("source_app_id")) == app_id:
            collector.skip(ref, "our own acknowledgment")
            return
        customer = text_id(create["target"]["recipient_id"], "target.recipient_id")
        kind = "agent_reply"
    else:
        customer = sender
        kind = "dm"
    profile = users.get(sender)
    if not isinstance(profile, dict):
        profile = {}
    collector.add(
        id=f"{PREFIX}:{text_id(event.get('id'), 'id')}",
        account=account,
        channel="x",
        kind=kind,
        conversation=f"{PREFIX}:{owner}:{customer}",
        author={
            "id": sender,
            "name": optional_text(profile.get("name")) or optional_text(profile.get("screen_name")),
            "followers": optional_count(profile.get("followers_count")),
        },
        text=(create.get("message_data") or {}).get("text"),
        at=from_epoch_ms(event["created_timestamp"], "created_timestamp"),
    )


def _tweet(collector: Collector, ref: str, tweet: dict[str, Any], owner: str, account: str) -> None:
    if "retweeted_status" in tweet:
        collector.skip(ref, "retweet, not a message")
        return
    user = tweet["user"]
    author = text_id(user.get("id_str") or user.get("id"), "user.id_str")
    replied_user = optional_id(tweet.get("in_reply_to_user_id_str"))
    if author == owner:
        if not replied_user or replied_user == owner:
            collector.skip(ref, "own post, not a reply to a customer")
            return
        customer, kind = replied_user, "agent_reply"
    else:
        customer, kind = author, "mention"
    text = tweet.get("text")
    if tweet.get("truncated"):
        text = (tweet.get("extended_tweet") or {}).get("full_text") or text
    replied = optional_id(tweet.get("in_reply_to_status_id_str"))
    collector.add(
        id=f"{PREFIX}:{text_id(tweet.get('id_str') or tweet.get('id'), 'id_str')}",
        account=account,
        channel="x",
        kind=kind,
        conversation=f"{PREFIX}:{owner}:{customer}",
        author={
            "id": author,
            "name": optional_text(user.get("name")) or optional_text(user.get("screen_name")),
            "followers": optional_count(user.get("followers_count")),
        },
        text=text,
        at=parse_created_at(tweet["created_at"]),
        in_reply_to=f"{PREFIX}:{replied}" if replied else None,
    )
