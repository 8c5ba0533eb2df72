"""Telegram Bot API: customer acknowledgments and staff notifications.

Both send ``sendMessage``; an acknowledgment goes to the chat the customer wrote in
(``recipient``: a private chat, or a group's negative id) and quotes the customer's
message with the integer ``reply_parameters.message_id`` (``allow_sending_without_reply``
so a deleted message does not fail the acknowledgment). The bot token is part of the URL path, so URLs are
never logged or put in a reason.

Answers: ``{"ok": true, "result": {...}}`` is Delivered; ``429`` waits
``parameters.retry_after`` seconds (never parsed from the description); ``401``/``404``
is a bad token (alert operations); ``5xx`` retries; other errors (``403`` blocked by
the user, ``400`` chat not found) are Permanent, with the Bot API's ``description``.
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
    clamp_wait,
    dumps,
    fingerprint,
    platform_says,
    post,
    retry_after,
)
from .config import ResponderSettings
from .notice import Notice

PER_CHAT_PER_SECOND = 1.0
BULK_PER_SECOND = 30.0


def telegram_outcome(answer: HttpAnswer, now: float, limit: float) -> Outcome:
    """Read a Bot API answer into an outcome."""
    data = answer.json()
    if 200 <= answer.status < 300 and data.get("ok") is True:
        result = data.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return Delivered(str(message_id) if message_id is not None else None)
    code = data.get("error_code", answer.status)
    if code == 429 or answer.status == 429:
        parameters = data.get("parameters")
        after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        wait = (
            clamp_wait(float(after), limit)
            if isinstance(after, (int, float))
            else retry_after(answer.headers.get("Retry-After"), now, limit)
        )
        return Retry(wait, "telegram: too many requests (429)")
    if answer.status >= 500:
        wait = retry_after(answer.headers.get("Retry-After"), now, limit)
        return Retry(wait, f"telegram: HTTP {answer.status}")
    says = platform_says(data.get("description"))
    if code in (401, 404):
        return Permanent(f"telegram: error {code}{says}: {OPS_ALERT}", alert_operations=True)
    return Permanent(f"telegram: error {code}{says}")


def _chat_id(value: str) -> int | str:
    """Chat ids are int64 (negative for groups); channel usernames (``@name``) stay strings."""
    try:
        return int(value)
    except ValueError:
        return value


def _message_id(value: str | None) -> int | None:
    """A message id to quote: the Bot API takes only an integer; anything else is not quoted."""
    try:
        return int(value) if value else None
    except ValueError:
        return None


class _Bot:
    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    async def _send_message(
        self, token: str, body: dict[str, object], session: aiohttp.ClientSession
    ) -> Outcome:
        now = self._clock()
        base = self._settings.telegram_base_url.rstrip("/")
        answer = await post(
            session,
            f"{base}/bot{token}/sendMessage",
            body=dumps(body),
            headers={},
            settings=self._settings,
            platform="telegram",
        )
        if not isinstance(answer, HttpAnswer):
            return answer
        return telegram_outcome(answer, now, self._settings.retry_after_max)


class TelegramSender(_Bot):
    """Customer sender for the ``telegram`` channel (the account's bot token)."""

    def limits(self, request: AckRequest) -> Sequence[Limit]:
        return (
            Limit(f"telegram:chat:{request.account}:{request.recipient}", PER_CHAT_PER_SECOND, 1.0),
            Limit(f"telegram:bot:{request.account}", BULK_PER_SECOND, BULK_PER_SECOND),
        )

    def body(self, request: AckRequest) -> dict[str, object]:
        body: dict[str, object] = {"chat_id": _chat_id(request.recipient), "text": request.text}
        quoted = _message_id(request.reply_to)
        if quoted is not None:
            body["reply_parameters"] = {"message_id": quoted, "allow_sending_without_reply": True}
        return body

    async def send(self, request: AckRequest, session: aiohttp.ClientSession) -> Outcome:
        credentials = self._settings.account(request.account)
        if credentials is None or credentials.access_token is None:
            return Permanent(
                f"telegram: no bot token for account {request.account}", alert_operations=True
            )
        return await self._send_message(
            credentials.access_token.get_secret_value(), self.body(request), session
        )


class TelegramNotifier(_Bot):
    """Staff notifier for ``telegram:<chat id>`` URIs (the ``telegram_notify_token`` bot)."""

    def limits(self, notice: Notice) -> Sequence[Limit]:
        token = self._settings.telegram_notify_token
        bot = fingerprint(token.get_secret_value()) if token else "none"
        return (
            Limit(f"telegram:chat:{bot}:{notice.address}", PER_CHAT_PER_SECOND, 1.0),
            Limit(f"telegram:bot:{bot}", BULK_PER_SECOND, BULK_PER_SECOND),
        )

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        token = self._settings.telegram_notify_token
        if token is None:
            return Permanent("telegram: no telegram_notify_token configured", alert_operations=True)
        body = {"chat_id": _chat_id(notice.address), "text": notice.plain_text()}
        return await self._send_message(token.get_secret_value(), body, session)
