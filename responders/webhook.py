"""Generic JSON webhooks: the ``generic`` customer channel and ``webhook:`` staff URIs.

Every request is a compact JSON body, signed and keyed for idempotency:

- ``X-Offhours-Signature: sha256=<lowercase hex HMAC-SHA256(secret, raw body)>`` —
  the receiver recomputes it over the raw bytes and compares in constant time;
- ``Idempotency-Key: "<id>"`` (a Structured Field String,
  draft-ietf-httpapi-idempotency-key-header): the same acknowledgment or notification
  always carries the same key, so a receiver that honours the header drops repeats.

Answers: 2xx Delivered (``id`` of a JSON body as the message id); 409 (original still
in flight), 429 and 5xx Retry (honouring ``Retry-After``); 401/403 Permanent with an
operations alert (secret or URL wrong); any other 4xx Permanent.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    fingerprint,
    post,
    retry_after,
    sf_string,
    sign,
)
from .config import ResponderSettings
from .notice import Notice

SIGNATURE_HEADER = "X-Offhours-Signature"
WEBHOOK_PER_SECOND = 10.0


def webhook_outcome(answer: HttpAnswer, now: float, limit: float) -> Outcome:
    """Read a webhook receiver's answer into an outcome."""
    if 200 <= answer.status < 300:
        message_id = answer.json().get("id")
        return Delivered(str(message_id) if message_id is not None else None)
    if answer.status in (409, 429) or answer.status >= 500:
        wait = retry_after(answer.headers.get("Retry-After"), now, limit)
        return Retry(wait, f"webhook: HTTP {answer.status}")
    if answer.status in (401, 403):
        return Permanent(f"webhook: HTTP {answer.status}: {OPS_ALERT}", alert_operations=True)
    return Permanent(f"webhook: HTTP {answer.status}")


async def post_signed(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, object],
    *,
    secret: bytes,
    key: str,
    settings: ResponderSettings,
    now: float,
) -> Outcome:
    """POST ``payload`` signed with ``secret`` and keyed by ``key``; read the outcome."""
    body = dumps(payload)
    answer = await post(
        session,
        url,
        body=body,
        headers={SIGNATURE_HEADER: sign(secret, body), "Idempotency-Key": sf_string(key)},
        settings=settings,
        platform="webhook",
    )
    if not isinstance(answer, HttpAnswer):
        return answer
    return webhook_outcome(answer, now, settings.retry_after_max)


class WebhookSender:
    """Customer sender for the ``generic`` channel: the account's ``webhook_url``."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def limits(self, request: AckRequest) -> Sequence[Limit]:
        return (
            Limit(f"webhook:account:{request.account}", WEBHOOK_PER_SECOND, WEBHOOK_PER_SECOND),
        )

    async def send(self, request: AckRequest, session: aiohttp.ClientSession) -> Outcome:
        credentials = self._settings.account(request.account)
        secret = (
            credentials.signing_secret if credentials else None
        ) or self._settings.signing_secret
        if credentials is None or not credentials.webhook_url or secret is None:
            return Permanent(
                f"webhook: no webhook_url or signing secret for account {request.account}",
                alert_operations=True,
            )
        payload = {
            "type": "acknowledgment",
            "ack_id": request.ack_id,
            "event_id": request.event_id,
            "account": request.account,
            "conversation": request.conversation,
            "recipient": request.recipient,
            "reply_to": request.reply_to,
            "text": request.text,
            "lang": request.lang,
            "public": request.public,
        }
        return await post_signed(
            session,
            credentials.webhook_url,
            payload,
            secret=secret.get_secret_value().encode(),
            key=request.ack_id,
            settings=self._settings,
            now=self._clock(),
        )


class WebhookNotifier:
    """Staff notifier for ``webhook:<url>`` URIs, signed with the global signing secret."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def limits(self, notice: Notice) -> Sequence[Limit]:
        return (
            Limit(
                f"webhook:url:{fingerprint(notice.address)}", WEBHOOK_PER_SECOND, WEBHOOK_PER_SECOND
            ),
        )

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        secret = self._settings.signing_secret
        if secret is None:
            return Permanent("webhook: no signing_secret configured", alert_operations=True)
        payload = {"type": "notification", **notice.summary()}
        return await post_signed(
            session,
            notice.address,
            payload,
            secret=secret.get_secret_value().encode(),
            key=f"{notice.route.route_id}:{notice.member.member}",
            settings=self._settings,
            now=self._clock(),
        )
