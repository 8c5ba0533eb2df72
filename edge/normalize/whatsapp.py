"""WhatsApp Cloud API webhooks (``object`` ``whatsapp_business_account``) to events.

Each ``entry[].changes[]`` of field ``messages`` carries, under ``value``, the business
number (``metadata.phone_number_id``), the customers' profiles (``contacts[]``) and
either customer ``messages[]`` (each a ``dm``) or ``statuses[]`` of our own sends
(``sent``/``delivered``/``read``/``failed``, skipped here: the responders' concern) or
``errors[]`` (skipped). Reactions and system notices are skipped. A message that is not
text keeps its caption (image, video, document), its button or list title, or no text.
``timestamp`` is epoch seconds as a string. Ids and conversations: docs/platforms.md.
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
    from_epoch_seconds,
    optional_id,
    optional_text,
    require_object,
    resolve_account,
    shown,
    text_id,
)
from records.platforms import ID_PREFIXES

PREFIX = ID_PREFIXES["whatsapp"]
_SKIPPED_TYPES = {"reaction": "reaction, not a message", "system": "system notice, not a message"}
_CAPTIONED = ("image", "video", "document")


def normalize(
    payload: Any, accounts: Mapping[str, str], *, received_at: datetime, limits: Limits = DEFAULT_LIMITS
) -> Normalized:
    """Events of one WhatsApp webhook payload (see the module docstring)."""
    payload = require_object(payload)
    if payload.get("object") != "whatsapp_business_account":
        raise InvalidPayload(f"object {shown(payload.get('object'))} is not 'whatsapp_business_account'")
    collector = Collector(limits)
    try:
        entries = as_list(payload.get("entry"), "entry")
    except ValueError as exc:
        raise InvalidPayload(str(exc)) from None
    for i, entry in enumerate(entries):
        with collector.item(f"entry[{i}]"):
            for j, change in enumerate(as_list(entry.get("changes"), "changes")):
                ref = f"entry[{i}].changes[{j}]"
                with collector.item(ref):
                    if change.get("field") != "messages":
                        collector.skip(ref, f"field {shown(change.get('field'))} carries no message")
                        continue
                    _value(collector, ref, change["value"], accounts)
    return collector.result()


def _value(collector: Collector, ref: str, value: dict[str, Any], accounts: Mapping[str, str]) -> None:
    number = text_id(value["metadata"]["phone_number_id"], "metadata.phone_number_id")
    account = resolve_account(accounts, PREFIX, number)
    names: dict[str, str | None] = {}
    for contact in as_list(value.get("contacts"), "contacts"):
        # A malformed contact costs its name only, never the messages.
        if isinstance(contact, dict) and (wa_id := optional_id(contact.get("wa_id"))) is not None:
            profile = contact.get("profile")
            names[wa_id] = optional_text(profile.get("name")) if isinstance(profile, dict) else None
    for k, message in enumerate(as_list(value.get("messages"), "messages")):
        with collector.item(f"{ref}.messages[{k}]"):
            kind = message.get("type")
            if isinstance(kind, str) and kind in _SKIPPED_TYPES:
                collector.skip(f"{ref}.messages[{k}]", _SKIPPED_TYPES[kind])
                continue
            customer = text_id(message.get("from"), "from")
            quoted = optional_id((message.get("context") or {}).get("id"))
            collector.add(
                id=f"{PREFIX}:{text_id(message.get('id'), 'id')}",
                account=account,
                channel="whatsapp",
                kind="dm",
                conversation=f"{PREFIX}:{number}:{customer}",
                author={"id": customer, "name": names.get(customer)},
                text=_text(message),
                at=from_epoch_seconds(message["timestamp"], "timestamp"),
                in_reply_to=f"{PREFIX}:{quoted}" if quoted else None,
            )
    for k, status in enumerate(as_list(value.get("statuses"), "statuses")):
        state = status.get("status") if isinstance(status, dict) else None
        collector.skip(f"{ref}.statuses[{k}]", f"status callback ({state if isinstance(state, str) else shown(state)})")
    for k, _ in enumerate(as_list(value.get("errors"), "errors")):
        collector.skip(f"{ref}.errors[{k}]", "error notice, not a message")


def _text(message: dict[str, Any]) -> str | None:
    kind = message.get("type")
    if kind == "text":
        return (message.get("text") or {}).get("body")
    if kind in _CAPTIONED:
        return (message.get(kind) or {}).get("caption")
    if kind == "button":
        return (message.get("button") or {}).get("text")
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
        return reply.get("title")
    return None
