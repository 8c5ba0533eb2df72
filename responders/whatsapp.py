"""Acknowledgments on WhatsApp through the Cloud API.

A free-form text, quoting the customer's message with ``context.message_id``, is sent
only inside the 24 h customer-service window; outside it no request is made and the
outcome is Permanent ``"outside 24 h window: template or human needed"`` (an
automated template would not be an honest acknowledgment of a stale message).

Error codes (docs/platforms.md, "Sending") are keyed on ``error.code``: permanent 131047/131026/131049; retry
130429/131056/4/80007/1/2; stop and alert operations 131048/0/190/368.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

import aiohttp

from records.wire import AckRequest

from .base import (
    OPS_ALERT,
    Clock,
    Delivered,
    HttpAnswer,
    Limit,
    Outcome,
    Permanent,
    Retry,
    dumps,
    platform_says,
    post,
    retry_after,
)
from .config import ResponderSettings
from .messenger import reply_closes

OUTSIDE_WINDOW = "outside 24 h window: template or human needed"
NUMBER_PER_SECOND = 80.0
PAIR_INTERVAL = 6.0

WHATSAPP_PERMANENT = MappingProxyType({
    131047: OUTSIDE_WINDOW,
    131026: "message undeliverable",
    131049: "Meta chose not to deliver",
})
WHATSAPP_RETRY = MappingProxyType({
    130429: ("throughput limit reached", None),
    131056: ("pair rate limit (same recipient)", PAIR_INTERVAL),
    4: ("application request limit reached", None),
    80007: ("WABA rate limit reached", None),
    1: ("unknown error", None),
    2: ("service temporarily unavailable", None),
})
WHATSAPP_ALERT = MappingProxyType({
    131048: "spam rate limit",
    0: "authentication failed",
    190: "access token expired or invalid",
    368: "temporarily blocked for policy violations",
})


def whatsapp_outcome(answer: HttpAnswer, now: float, limit: float) -> Outcome:
    """Read a non-2xx Cloud API answer into an outcome (docs/platforms.md, "Sending")."""
    error = answer.json().get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    label = f"whatsapp: error {code}"
    says = platform_says(error.get("message"))
    wait = retry_after(answer.headers.get("Retry-After"), now, limit)
    if code in WHATSAPP_PERMANENT:
        return Permanent(f"{label} ({WHATSAPP_PERMANENT[code]}){says}")
    if code in WHATSAPP_RETRY:
        reason, default_wait = WHATSAPP_RETRY[code]
        return Retry(wait if wait is not None else default_wait, f"{label} ({reason})")
    if code in WHATSAPP_ALERT:
        return Permanent(f"{label} ({WHATSAPP_ALERT[code]}){says}: {OPS_ALERT}", alert_operations=True)
    if answer.status == 429 or answer.status >= 500:
        return Retry(wait, f"{label}: HTTP {answer.status}")
    return Permanent(f"{label}: HTTP {answer.status}{says}")


class WhatsAppSender:
    """Customer sender for the ``whatsapp`` channel."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def _number(self, request: AckRequest) -> str | None:
        credentials = self._settings.account(request.account)
        return credentials.phone_number_id if credentials else None

    def limits(self, request: AckRequest) -> Sequence[Limit]:
        number = self._number(request) or request.account
        return (
            Limit(f"whatsapp:number:{number}", NUMBER_PER_SECOND, NUMBER_PER_SECOND),
            Limit(f"whatsapp:pair:{number}:{request.recipient}", 1 / PAIR_INTERVAL, 1.0),
        )

    def body(self, request: AckRequest) -> dict[str, object]:
        """The Cloud API text message, quoting the customer's message when known."""
        body: dict[str, object] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": request.recipient,
            "type": "text",
            "text": {"body": request.text, "preview_url": False},
        }
        if request.reply_to:
            body["context"] = {"message_id": request.reply_to}
        return body

    async def send(self, request: AckRequest, session: aiohttp.ClientSession) -> Outcome:
        credentials = self._settings.account(request.account)
        number = self._number(request)
        if credentials is None or credentials.access_token is None or not number:
            return Permanent(
                f"whatsapp: no access token or phone_number_id for account {request.account}",
                alert_operations=True,
            )
        now = self._clock()
        closes = reply_closes(request)
        if closes is not None and closes.timestamp() <= now:
            return Permanent(f"whatsapp: {OUTSIDE_WINDOW}")
        answer = await post(
            session,
            self._settings.graph_url(number, "messages"),
            body=dumps(self.body(request)),
            headers={"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"},
            settings=self._settings,
            platform="whatsapp",
        )
        if not isinstance(answer, HttpAnswer):
            return answer
        if 200 <= answer.status < 300:
            messages = answer.json().get("messages") or [{}]
            message_id = messages[0].get("id") if isinstance(messages[0], dict) else None
            return Delivered(str(message_id) if message_id else None)
        return whatsapp_outcome(answer, now, self._settings.retry_after_max)
