"""Staff notifier for ``teams:<Workflows webhook URL>`` URIs.

Teams Workflows webhooks ("When a Teams webhook request is received") accept Adaptive
Cards only, wrapped in a ``message`` with one attachment. ``200``/``202`` is Delivered;
``429`` and ``5xx`` retry (honouring ``Retry-After``); ``401``/``403``/``404`` mean the
flow is gone or forbidden (operations alert); other 4xx are Permanent.
"""

from __future__ import annotations

from typing import Any

from .base import OPS_ALERT, HttpAnswer, Permanent
from .incoming_webhook import IncomingWebhookNotifier
from .notice import Notice

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def text_run(text: str, **style: str) -> dict[str, object]:
    """An Adaptive Card ``TextRun``: shown as written, never read as Markdown."""
    return {"type": "TextRun", "text": text, **style}


def teams_payload(notice: Notice) -> dict[str, object]:
    """A ``message`` carrying one Adaptive Card 1.4 with the notice.

    A ``TextBlock`` reads Markdown (links, bold, lists), so everything the customer or a
    platform wrote (the author's name in the title, the message, the facts) is in
    ``RichTextBlock`` text runs, which Adaptive Cards never read as Markdown.
    """
    body: list[dict[str, object]] = [
        {
            "type": "RichTextBlock",
            "inlines": [text_run(notice.title, weight="Bolder", size="Medium")],
        },
        {"type": "RichTextBlock", "inlines": [text_run(notice.message)]},
        *(
            {
                "type": "RichTextBlock",
                "inlines": [text_run(f"{label}: ", weight="Bolder"), text_run(value)],
            }
            for label, value in notice.facts()
        ),
    ]
    card: dict[str, object] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    links = notice.links_shown()
    if links:
        card["actions"] = [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


class TeamsNotifier(IncomingWebhookNotifier):
    """Posts a notice to a Teams Workflows webhook as an Adaptive Card."""

    platform = "teams"

    def payload(self, notice: Notice) -> dict[str, Any]:
        return teams_payload(notice)

    def permanent(self, answer: HttpAnswer) -> Permanent:
        if answer.status in (401, 403, 404):
            return Permanent(f"teams: HTTP {answer.status}: {OPS_ALERT}", alert_operations=True)
        return Permanent(f"teams: HTTP {answer.status}")
