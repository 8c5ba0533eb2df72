"""Acknowledgments on X through API v2 (docs/platforms.md: ids, windows, refusals).

A direct message is answered in the customer's DM conversation
(``POST /2/dm_conversations/with/{participant_id}/messages``); a mention gets a reply
post (``POST /2/tweets`` with ``reply.in_reply_to_tweet_id``). The account's
user-context OAuth 2 token is sent as a Bearer token.

Rate limits: ``429`` waits until ``x-rate-limit-reset`` (epoch seconds), falling back
to ``Retry-After``. ``401`` is a bad token (alert operations); other 4xx are Permanent
(e.g. the customer does not accept DMs from us).
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
    platform_says,
    post,
    retry_after,
    wait_until,
)
from .config import ResponderSettings

SENDS_PER_WINDOW = 200
WINDOW_SECONDS = 15 * 60


def x_outcome(answer: HttpAnswer, now: float, limit: float) -> Outcome:
    """Read a non-2xx X answer into an outcome."""
    if answer.status == 429:
        wait = wait_until(answer.headers.get("x-rate-limit-reset"), now, limit)
        if wait is None:
            wait = retry_after(answer.headers.get("Retry-After"), now, limit)
        return Retry(wait, "x: rate limit exceeded (HTTP 429)")
    if answer.status >= 500:
        return Retry(
            retry_after(answer.headers.get("Retry-After"), now, limit), f"x: HTTP {answer.status}"
        )
    data = answer.json()
    says = platform_says(data.get("detail") or data.get("title"))
    if answer.status == 401:
        return Permanent(f"x: HTTP 401{says}: {OPS_ALERT}", alert_operations=True)
    return Permanent(f"x: HTTP {answer.status}{says}")


class XSender:
    """Customer sender for the ``x`` channel."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def limits(self, request: AckRequest) -> Sequence[Limit]:
        return (
            Limit(f"x:user:{request.account}", SENDS_PER_WINDOW / WINDOW_SECONDS, SENDS_PER_WINDOW),
        )

    def endpoint(self, request: AckRequest) -> tuple[str, dict[str, object]]:
        """The v2 path and body: a reply post to a mention, else a DM."""
        base = self._settings.x_base_url.rstrip("/")
        if request.kind == "mention" and request.reply_to:
            return f"{base}/2/tweets", {
                "text": request.text,
                "reply": {"in_reply_to_tweet_id": request.reply_to},
            }
        return f"{base}/2/dm_conversations/with/{request.recipient}/messages", {
            "text": request.text
        }

    async def send(self, request: AckRequest, session: aiohttp.ClientSession) -> Outcome:
        credentials = self._settings.account(request.account)
        if credentials is None or credentials.access_token is None:
            return Permanent(
                f"x: no access token for account {request.account}", alert_operations=True
            )
        now = self._clock()
        url, body = self.endpoint(request)
        answer = await post(
            session,
            url,
            body=dumps(body),
            headers={"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"},
            settings=self._settings,
            platform="x",
        )
        if not isinstance(answer, HttpAnswer):
            return answer
        if 200 <= answer.status < 300:
            data = answer.json().get("data")
            data = data if isinstance(data, dict) else {}
            message_id = data.get("dm_event_id") or data.get("id")
            return Delivered(str(message_id) if message_id else None)
        return x_outcome(answer, now, self._settings.retry_after_max)
