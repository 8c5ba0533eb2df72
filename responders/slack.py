"""Staff notifier for ``slack:<incoming webhook URL>`` URIs (PLATFORMS §5.1).

The body always carries ``text`` (the notification and accessibility fallback) and
``blocks`` (header, the customer's words, the facts, the claim link). Slack answers
``200 ok`` or a plain-text error word: ``429`` honours ``Retry-After``; ``5xx`` retries;
a webhook that is gone or disabled (``invalid_token``, ``no_service``,
``channel_not_found``, ``channel_is_archived``, ``action_prohibited``) is Permanent with
an operations alert; any other 4xx (``invalid_payload``, …) is Permanent. The webhook
URL is itself a secret: it appears in no reason, log or bucket key.
"""

from __future__ import annotations

from typing import Any

from .base import OPS_ALERT, HttpAnswer, Permanent
from .incoming_webhook import IncomingWebhookNotifier
from .notice import Notice

GONE = frozenset(
    {"invalid_token", "no_service", "channel_not_found", "channel_is_archived", "action_prohibited"}
)


def slack_payload(notice: Notice) -> dict[str, object]:
    """The incoming-webhook body: ``text`` fallback plus Block Kit ``blocks``."""
    facts = "\n".join(f"*{label}:* {value}" for label, value in notice.facts())
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
        {"type": "section", "text": {"type": "plain_text", "text": notice.message[:3000]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": facts[:3000]}},
    ]
    if notice.claim_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Claim"},
                        "url": notice.claim_url,
                    }
                ],
            }
        )
    return {"text": notice.title, "blocks": blocks}


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
