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

from collections.abc import Sequence

import aiohttp

from .base import (
    OPS_ALERT,
    Clock,
    Delivered,
    Limit,
    Outcome,
    Permanent,
    Retry,
    dumps,
    fingerprint,
    post,
    transient,
)
from .config import ResponderSettings
from .notice import Notice

WEBHOOK_PER_SECOND = 1.0
WEBHOOK_BURST = 3.0
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


class SlackNotifier:
    """Posts a notice to a Slack incoming webhook."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def limits(self, notice: Notice) -> Sequence[Limit]:
        return (
            Limit(
                f"slack:webhook:{fingerprint(notice.address)}", WEBHOOK_PER_SECOND, WEBHOOK_BURST
            ),
        )

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        now = self._clock()
        answer = await post(
            session,
            notice.address,
            body=dumps(slack_payload(notice)),
            headers={},
            timeout=self._settings.http_timeout,
            platform="slack",
        )
        if isinstance(answer, Retry):
            return answer
        if 200 <= answer.status < 300:
            return Delivered(None)
        retry = transient(answer, "slack", now, self._settings.retry_after_max)
        if retry is not None:
            return retry
        word = answer.text()
        if word in GONE:
            return Permanent(f"slack: {word}: {OPS_ALERT}", alert_operations=True)
        return Permanent(f"slack: HTTP {answer.status} {word}")
