"""Platform facts, defined once: event ids, reply targets, recipients and reply windows.

The edge builds event ids from these prefixes, the triage policy takes the reply target
of each acknowledgment and route from :func:`reply_target`, the promise sweeps and the
senders take every reply window from :func:`window_closes`. Nothing else in offhours
knows how a platform names a message or how long it accepts a reply.

Event ids and conversations (docs/platforms.md has the same table for operators):

=========  ================================  ==============================================
channel    ``id``                            ``conversation``
=========  ================================  ==============================================
facebook   ``fb:<mid>`` / ``fb:<comment>``   DM ``fb:<page>:<PSID>``; comment
                                             ``fb:<page>:<thread>``
instagram  ``ig:<mid>`` / ``ig:<comment>``   DM ``ig:<ig account>:<IGSID>``; comment
                                             ``ig:<ig account>:<thread>``
whatsapp   ``wa:<wamid>``                    ``wa:<phone_number_id>:<wa_id>``
x          ``x:<event or tweet id>``         ``x:<for_user_id>:<customer user id>``
telegram   ``tg:<chat_id>:<message_id>``     ``tg:<bot>:<chat_id>``
=========  ================================  ==============================================

Who a reply goes to (:func:`reply_target`):

* a DM (Messenger, Instagram, WhatsApp, X): the customer, the last part of the
  conversation (PSID, IGSID, ``wa_id``, X user id); it quotes or answers the message id;
* a public comment or mention (Facebook, Instagram, X): its author; the message id is
  the comment (for a private or public reply) or the tweet (for a reply post);
* Telegram, private chat or group alike: the chat the customer wrote in (negative for
  groups and supergroups, beyond 32 bits), quoting the message by its integer
  ``message_id``, which is unique only within that chat.

Reply windows (:func:`reply_window`): Facebook, Instagram and WhatsApp accept a
free-form reply for 24 h after the customer's last message. A Facebook/Instagram
comment can be answered with one private reply for 7 days, and a
human-written Messenger/Instagram reply tagged ``HUMAN_AGENT`` is accepted for 7 days.
WhatsApp has no such tag: after 24 h only an approved template can be sent. X and
Telegram have no window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from records.wire import SocialEvent

ID_PREFIXES = MappingProxyType(
    {"facebook": "fb", "instagram": "ig", "whatsapp": "wa", "x": "x", "telegram": "tg"}
)
"""The prefix each channel's event ids and conversations carry (``fb:m_abc123``)."""

STANDARD_WINDOW = timedelta(hours=24)
WINDOWED_CHANNELS = frozenset({"facebook", "instagram", "whatsapp"})
"""Platforms that stop accepting a free-form reply 24 h after the customer's last message."""

PRIVATE_REPLY_WINDOW = timedelta(days=7)
PRIVATE_REPLY_CHANNELS = frozenset({"facebook", "instagram"})
"""Where a public comment can be answered with one private message, and for how long."""

HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT_CHANNELS = frozenset({"facebook", "instagram"})
"""Where a human-written reply tagged HUMAN_AGENT is accepted after 24 h, and until when."""

_PREFIXES = tuple(f"{prefix}:" for prefix in ID_PREFIXES.values())


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """The platform ids a reply to an event needs.

    ``recipient``: where the reply goes (PSID, IGSID, ``wa_id``, X user id, Telegram
    chat id); ``message_id``: the platform's id of the customer's message (``mid``,
    comment id, wamid, X event or tweet id, Telegram ``message_id``) to quote, answer or
    privately reply to.
    """

    recipient: str
    message_id: str


def platform_message_id(event_id: str) -> str:
    """The platform's own id of a message from its event id (``fb:m_abc`` -> ``m_abc``).

    Telegram's ``tg:<chat_id>:<message_id>`` gives the ``message_id``; an id without a
    channel prefix (``generic`` events) is returned as it is.
    """
    if event_id.startswith("tg:"):
        return event_id.rsplit(":", 1)[1]
    for prefix in _PREFIXES:
        if event_id.startswith(prefix):
            return event_id[len(prefix):]
    return event_id


def reply_target(event: SocialEvent) -> ReplyTarget:
    """Where a reply to ``event`` goes and which message it answers (see the module doc)."""
    message_id = platform_message_id(event.id)
    if event.channel == "telegram" and event.id.count(":") >= 2:
        return ReplyTarget(recipient=event.id.split(":")[1], message_id=message_id)
    if event.kind == "dm" and ":" in event.conversation:
        return ReplyTarget(recipient=event.conversation.rsplit(":", 1)[1], message_id=message_id)
    return ReplyTarget(recipient=event.author.id, message_id=message_id)


def is_private_reply(channel: str, kind: str) -> bool:
    """True when our reply to a ``kind`` message on ``channel`` is a private reply to a public comment."""
    return kind == "comment" and channel in PRIVATE_REPLY_CHANNELS


def reply_window(channel: str, kind: str, *, human_agent: bool = False) -> timedelta | None:
    """How long after the customer's last message the platform accepts our reply.

    None when the platform has no window (X, Telegram, generic). A Facebook/Instagram
    comment: 7 days (its one private reply). With ``human_agent`` (a
    human-written reply tagged HUMAN_AGENT): 7 days on Facebook and Instagram, 24 h on
    WhatsApp. Otherwise 24 h.
    """
    if channel not in WINDOWED_CHANNELS:
        return None
    if is_private_reply(channel, kind):
        return PRIVATE_REPLY_WINDOW
    if human_agent and channel in HUMAN_AGENT_CHANNELS:
        return HUMAN_AGENT_WINDOW
    return STANDARD_WINDOW


def window_closes(
    channel: str, kind: str | None, last_customer_at: datetime, *, human_agent: bool = False
) -> datetime | None:
    """When the platform stops accepting our reply to a message written at ``last_customer_at``.

    ``kind`` None (a conversation whose kind was not recorded) is read as a direct message,
    the shorter window.
    """
    window = reply_window(channel, kind or "dm", human_agent=human_agent)
    return None if window is None else last_customer_at + window
