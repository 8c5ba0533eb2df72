"""Staff notifier for ``slack:<incoming webhook URL>`` URIs.

The body always carries ``text`` (the notification and accessibility fallback) and
``blocks`` (header, the customer's words, the facts, the claim buttons). Slack answers
``200 ok`` or a plain-text error word: ``429`` honours ``Retry-After``; ``5xx`` retries;
a webhook that is gone or disabled (``invalid_token``, ``no_service``,
``channel_not_found``, ``channel_is_archived``, ``action_prohibited``) is Permanent with
an operations alert; any other 4xx (``invalid_payload``, …) is Permanent. The webhook
URL is itself a secret: it appears in no reason, log or bucket key. Customer text is
escaped and never mrkdwn (:func:`slack_payload`).
"""

from __future__ import annotations

from typing import Any

from .base import OPS_ALERT, HttpAnswer, Permanent
from .incoming_webhook import IncomingWebhookNotifier
from .notice import Notice

SLACK_BUTTONS_PER_BLOCK = 25
"""Slack's limit of elements in one actions block (a digest's claim buttons take several)."""

GONE = frozenset(
    {"invalid_token", "no_service", "channel_not_found", "channel_is_archived", "action_prohibited"}
)


def slack_escape(value: str) -> str:
    """``value`` with Slack's three control characters as entities (``&``, ``<``, ``>``).

    Slack reads ``<…>`` in any text object as a link, a mention (``<!channel>``,
    ``<@U…>``) or a disguised link (``<https://evil|click here>``); escaped, the
    characters are shown as written.
    """
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(value: str, limit: int) -> str:
    """``value`` escaped, cut (with ``…``) so the escaped text fits in ``limit`` characters."""
    escaped = slack_escape(value)
    if len(escaped) <= limit:
        return escaped
    kept, size = [], 0
    for ch in value:
        part = slack_escape(ch)
        if size + len(part) > limit - 1:
            break
        kept.append(part)
        size += len(part)
    return "".join(kept) + "…"


def slack_payload(notice: Notice) -> dict[str, object]:
    """The incoming-webhook body: ``text`` fallback plus Block Kit ``blocks``.

    Everything the customer or a platform wrote (the author's name, the message, the
    facts and reasons) is escaped and sits in ``plain_text`` objects: it is shown as
    written, never read as mentions, links or formatting.
    """
    facts = "\n".join(f"{label}: {value}" for label, value in notice.facts())
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": slack_text(notice.title, 150)}},
        {"type": "section", "text": {"type": "plain_text", "text": slack_text(notice.message, 3000)}},
        {"type": "section", "text": {"type": "plain_text", "text": slack_text(facts, 3000)}},
    ]
    links = notice.links_shown()
    for start in range(0, len(links), SLACK_BUTTONS_PER_BLOCK):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                    for label, url in links[start:start + SLACK_BUTTONS_PER_BLOCK]
                ],
            }
        )
    return {"text": slack_escape(notice.title), "blocks": blocks}


class SlackNotifier(IncomingWebhookNotifier):
    """Posts a notice to a Slack incoming webhook."""

    platform = "slack"

    def payload(self, notice: Notice) -> dict[str, Any]:
        return slack_payload(notice)

    def permanent(self, answer: HttpAnswer) -> Permanent:
        word = answer.text()
        if word in GONE:
            return Permanent(f"slack: {word}: {OPS_ALERT}", alert_operations=True)
        return Permanent(f"slack: HTTP {answer.status} {word}")
