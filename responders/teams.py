"""Staff notifier for ``teams:<Workflows webhook URL>`` URIs (PLATFORMS §5.3).

Teams Workflows webhooks ("When a Teams webhook request is received") accept Adaptive
Cards only, wrapped in a ``message`` with one attachment. ``200``/``202`` is Delivered;
``429`` and ``5xx`` retry (honouring ``Retry-After``); ``401``/``403``/``404`` mean the
flow is gone or forbidden (operations alert); other 4xx are Permanent.
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

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
WEBHOOK_PER_SECOND = 1.0
WEBHOOK_BURST = 3.0


def teams_payload(notice: Notice) -> dict[str, object]:
    """A ``message`` carrying one Adaptive Card 1.4 with the notice."""
    body: list[dict[str, object]] = [
        {
            "type": "TextBlock",
            "text": notice.title,
            "wrap": True,
            "weight": "Bolder",
            "size": "Medium",
        },
        {"type": "TextBlock", "text": notice.message, "wrap": True},
        {
            "type": "FactSet",
            "facts": [{"title": label, "value": value} for label, value in notice.facts()],
        },
    ]
    card: dict[str, object] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if notice.claim_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Claim", "url": notice.claim_url}]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


class TeamsNotifier:
    """Posts a notice to a Teams Workflows webhook as an Adaptive Card."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def limits(self, notice: Notice) -> Sequence[Limit]:
        return (
            Limit(
                f"teams:webhook:{fingerprint(notice.address)}", WEBHOOK_PER_SECOND, WEBHOOK_BURST
            ),
        )

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        now = self._clock()
        answer = await post(
            session,
            notice.address,
            body=dumps(teams_payload(notice)),
            headers={},
            timeout=self._settings.http_timeout,
            platform="teams",
        )
        if isinstance(answer, Retry):
            return answer
        if 200 <= answer.status < 300:
            return Delivered(None)
        retry = transient(answer, "teams", now, self._settings.retry_after_max)
        if retry is not None:
            return retry
        if answer.status in (401, 403, 404):
            return Permanent(f"teams: HTTP {answer.status}: {OPS_ALERT}", alert_operations=True)
        return Permanent(f"teams: HTTP {answer.status}")
