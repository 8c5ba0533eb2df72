"""Chatwoot account-webhook bodies as a Chatwoot 4.x desk sends them, and a coverage that answers them.

The shapes follow Chatwoot's ``Message#webhook_data`` (``message_created``: the message,
its ``sender``, ``inbox``, ``account`` and the whole ``conversation``) and
``Conversations::EventDataPresenter#push_data`` (``conversation_*``: the conversation at
the top level, no ``account``, ``meta.assignee`` as the user's push data, and
``changed_attributes`` as ``[{attr: {previous_value, current_value}}]``). Ids are of the
sizes a busy desk has. Shared by the normalizer's unit tests and the route's component
tests.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from schedules import Coverage, load_coverage_text

ACCOUNT = 7
FACEBOOK_INBOX = 12
WHATSAPP_INBOX = 15
WIDGET_INBOX = 19
OTHER_TEAM_INBOX = 21
CONVERSATION = 4821
MESSAGE = 1902837
CONTACT = 88213
LUCIA, PABLO, STRANGER = 31, 32, 77
BOT = 3
CREATED = datetime(2026, 11, 27, 21, 2, 48, 123000, tzinfo=UTC)
CREATED_S = 1795813368

COVERAGE_TEXT = f"""\
teams:
  care-es:
    name: Atención al cliente
    timezone: Europe/Madrid
    locale: es
    chatwoot: {{account: {ACCOUNT}, inboxes: [{FACEBOOK_INBOX}, 13, {WHATSAPP_INBOX}, {WIDGET_INBOX}]}}
    hours:
      mon-fri: ["09:00-18:00 open", "18:00-22:00 reduced"]
    on_call:
      rotation: {{members: [lucia, pablo], start: "2026-11-02 09:00", every: 1w}}
    staff:
      lucia: {{name: Lucía Fernández, chatwoot_agent: {LUCIA}, notify: ["mailto:lucia@example.com"]}}
      pablo: {{name: Pablo Ruiz, chatwoot_agent: {PABLO}, notify: ["mailto:pablo@example.com"]}}
  care-pt:
    timezone: Europe/Lisbon
    chatwoot: {{account: {ACCOUNT}, inboxes: [{OTHER_TEAM_INBOX}]}}
    staff:
      joao: {{chatwoot_agent: {LUCIA}}}
"""


def coverage() -> Coverage:
    return load_coverage_text(COVERAGE_TEXT, filename="chatwoot-coverage.yaml")


def contact_push() -> dict[str, Any]:
    return {
        "additional_attributes": {}, "custom_attributes": {}, "email": None, "id": CONTACT,
        "identifier": None, "name": "Ana López", "phone_number": None,
        "thumbnail": "", "blocked": False, "type": "contact",
    }


def user_push(user: int, name: str = "Pablo Ruiz") -> dict[str, Any]:
    return {"id": user, "name": name, "available_name": name, "avatar_url": "", "type": "user",
            "availability_status": "online", "thumbnail": ""}


def conversation_data(
    *, inbox: int = FACEBOOK_INBOX, channel: str = "Channel::FacebookPage", status: str = "open",
    assignee: int | None = None, can_reply: bool = True,
) -> dict[str, Any]:
    """``conversation.webhook_data``: what ``message_created`` nests and ``conversation_*`` send."""
    return {
        "additional_attributes": {},
        "can_reply": can_reply,
        "channel": channel,
        "contact_inbox": {
            "id": 90517, "contact_id": CONTACT, "inbox_id": inbox, "source_id": "6624503787636295",
            "created_at": "2026-11-27T21:02:47.911Z", "updated_at": "2026-11-27T21:02:47.911Z",
            "hmac_verified": False, "pubsub_token": "pZ4kG8Qn3tM7yW1vB6xC2hJd",
        },
        "id": CONVERSATION,
        "inbox_id": inbox,
        "messages": [{
            "id": MESSAGE, "content": "Hola, mi pedido 4471 no ha llegado", "account_id": ACCOUNT,
            "inbox_id": inbox, "conversation_id": CONVERSATION, "message_type": 0, "created_at": CREATED_S,
            "updated_at": "2026-11-27T21:02:48.123Z", "private": False, "status": "sent",
            "source_id": "m_AbCdEf0123456789", "content_type": "text", "content_attributes": {},
            "sender_type": "Contact", "sender_id": CONTACT, "external_source_ids": {},
            "additional_attributes": {}, "processed_message_content": "Hola, mi pedido 4471 no ha llegado",
            "sentiment": {}, "conversation": {"assignee_id": assignee, "unread_count": 1,
                                              "last_activity_at": CREATED_S, "contact_inbox": {"source_id": "6624503787636295"}},
            "sender": contact_push(),
        }],
        "labels": [],
        "meta": {
            "sender": contact_push(),
            "assignee": user_push(assignee) if assignee is not None else None,
            "team": None,
            "hmac_verified": False,
        },
        "status": status,
        "custom_attributes": {},
        "snoozed_until": None,
        "unread_count": 1,
        "first_reply_created_at": None,
        "priority": None,
        "waiting_since": CREATED_S,
        "agent_last_seen_at": 0,
        "contact_last_seen_at": 0,
        "last_activity_at": CREATED_S,
        "timestamp": CREATED_S,
        "created_at": CREATED_S,
        "updated_at": 1795813368.2,
    }


def message_created(
    *, message_type: str = "incoming", sender: dict[str, Any] | None = None, private: bool = False,
    content: str | None = "Hola, mi pedido 4471 no ha llegado", content_attributes: dict[str, Any] | None = None,
    message: int = MESSAGE, **conversation: Any,
) -> dict[str, Any]:
    """A ``message_created`` body (``Message#webhook_data`` and ``event``)."""
    convo = conversation_data(**conversation)
    return {
        "account": {"id": ACCOUNT, "name": "Acme España"},
        "additional_attributes": {},
        "content_attributes": content_attributes if content_attributes is not None else {},
        "content_type": "text",
        "content": content,
        "conversation": convo,
        "created_at": "2026-11-27T21:02:48.123Z",
        "id": message,
        "inbox": {"id": convo["inbox_id"], "name": "Acme España Facebook"},
        "message_type": message_type,
        "private": private,
        "sender": sender if sender is not None else {
            "account": {"id": ACCOUNT, "name": "Acme España"}, **contact_push(),
            "avatar": "", "blocked": False,
        },
        "source_id": "m_AbCdEf0123456789",
        "event": "message_created",
    }


def agent(user: int = PABLO, name: str = "Pablo Ruiz") -> dict[str, Any]:
    """``User#webhook_data``: an agent as a message's sender."""
    return {"id": user, "name": name, "email": "pablo@acme.example", "type": "user"}


def agent_bot(bot: int = BOT) -> dict[str, Any]:
    """``AgentBot#webhook_data``: an agent bot as a message's sender."""
    return {"id": bot, "name": "offhours", "type": "agent_bot"}


def conversation_event(
    event: str, *, changed: dict[str, tuple[Any, Any]] | None = None, **conversation: Any
) -> dict[str, Any]:
    """A ``conversation_*`` body: the conversation at the top level, with ``changed_attributes``."""
    body = copy.deepcopy(conversation_data(**conversation))
    if changed is not None:
        body["changed_attributes"] = [
            {name: {"previous_value": before, "current_value": after}} for name, (before, after) in changed.items()
        ]
    body["event"] = event
    return body
