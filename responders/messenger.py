"""Acknowledgments on Facebook Messenger and Instagram through the Graph API.

A direct message is answered with ``messaging_type: RESPONSE`` to the customer's id
(PSID or IGSID) while the 24 h standard window is open. A comment request with
``public`` False gets the one private reply addressed by ``recipient.comment_id`` (7
days), through the Send API; the windows are :mod:`records.platforms`'. When the window has
closed no request is made: an automated acknowledgment is not allowed there
(HUMAN_AGENT is for humans only), so the outcome is Permanent and the caller routes
the message to staff.

A comment request with ``public`` True is a public reply under the customer's comment:
Facebook ``POST /{comment-id}/comments``, Instagram ``POST /{ig-comment-id}/replies``,
each with ``{"message": text}``; Graph answers ``{"id": <new comment id>}``, the
delivered message id. A public reply has no messaging window.

Rate limits: every Send API call counts against the Page's 300/s; private replies also
against the 750 per hour per Page or IG account, as a bucket of
:data:`PRIVATE_REPLY_BURST` refilled so that no rolling hour ever holds more than 750.

Graph errors are read from the ``error`` envelope by :func:`graph_outcome`. Both are in
docs/platforms.md, "Sending: rate limits and what a refusal means".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import MappingProxyType
from urllib.parse import quote

import aiohttp

from records.platforms import is_private_reply, window_closes
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

SEND_API_PER_SECOND = 300.0
PRIVATE_REPLIES_PER_HOUR = 750
# A burst of b plus a refill of r per second holds at most b + 3600 r sends in any
# hour: with r = (750 - b) / 3600 that is exactly 750, and b lets a backlog start at once.
PRIVATE_REPLY_BURST = 50.0
PRIVATE_REPLY_RATE = (PRIVATE_REPLIES_PER_HOUR - PRIVATE_REPLY_BURST) / 3600
# The Graph edge that creates a public reply under a comment, per channel.
PUBLIC_REPLY_EDGES = MappingProxyType({"facebook": "comments", "instagram": "replies"})

GRAPH_PERMANENT = MappingProxyType({
    (10, 2018278): "outside the allowed reply window",
    (551, 1545041): "this person isn't available right now",
    (100, 2018001): "no matching user",
})
GRAPH_RETRY = MappingProxyType({
    1: "unknown error",
    2: "service temporarily unavailable",
    4: "application request limit reached",
    613: "rate limit exceeded",
})


def graph_outcome(answer: HttpAnswer, platform: str, now: float, limit: float) -> Outcome:
    """Read a non-2xx Graph answer into an outcome (docs/platforms.md, "Sending").

    Permanent: 10/2018278, 551/1545041, 100/2018001. Retry: codes 1, 2, 4, 613, and any
    5xx or 429. Code 190 or 200–299: Permanent with ``"token/permission: alert
    operations"``. Anything else on a 4xx is Permanent (retrying a rejected request
    cannot help).
    """
    error = answer.json().get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    subcode = error.get("error_subcode")
    says = platform_says(error.get("message"))
    label = f"{platform}: graph error {code}/{subcode}" if code is not None else f"{platform}"
    wait = retry_after(answer.headers.get("Retry-After"), now, limit)
    if code in GRAPH_RETRY:
        return Retry(wait, f"{label} ({GRAPH_RETRY[code]})")
    if code == 190 or (isinstance(code, int) and 200 <= code <= 299):
        return Permanent(f"{label}{says}: {OPS_ALERT}", alert_operations=True)
    if (code, subcode) in GRAPH_PERMANENT:
        return Permanent(f"{label} ({GRAPH_PERMANENT[(code, subcode)]}){says}")
    if answer.status == 429 or answer.status >= 500:
        return Retry(wait, f"{label}: HTTP {answer.status}")
    return Permanent(f"{label}: HTTP {answer.status}{says}")


def reply_closes(request: AckRequest) -> datetime | None:
    """When the request's reply window closes: its own value, else the platform's window
    (:func:`records.platforms.window_closes`) from the customer's message; None for no window."""
    try:
        if request.window_closes:
            return datetime.fromisoformat(request.window_closes)
        return window_closes(request.channel, request.kind, datetime.fromisoformat(request.at))
    except ValueError:
        return None


class MessengerSender:
    """Customer sender for the ``facebook`` and ``instagram`` channels (Graph API)."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def limits(self, request: AckRequest) -> Sequence[Limit]:
        """The Page's Send API bucket; a private reply also its private-reply bucket.

        A public comment reply is not a Send API call and has no documented limit of its
        own: the platform's rate-limit answers (codes 4, 613) make it wait.
        """
        if self._is_public_reply(request):
            return ()
        page = self._page_id(request)
        send_api = Limit(
            f"messenger:page:{request.account}:{page}", SEND_API_PER_SECOND, SEND_API_PER_SECOND
        )
        if not self._is_private_reply(request):
            return (send_api,)
        private = Limit(
            f"messenger:private-replies:{request.account}:{page}",
            PRIVATE_REPLY_RATE,
            PRIVATE_REPLY_BURST,
        )
        return (send_api, private)

    def _page_id(self, request: AckRequest) -> str:
        credentials = self._settings.account(request.account)
        return (credentials.page_id if credentials else None) or "me"

    def _is_public_reply(self, request: AckRequest) -> bool:
        return (
            request.public
            and request.kind == "comment"
            and request.channel in PUBLIC_REPLY_EDGES
            and bool(request.reply_to)
        )

    def _is_private_reply(self, request: AckRequest) -> bool:
        return (
            is_private_reply(request.channel, request.kind)
            and bool(request.reply_to)
            and not self._is_public_reply(request)
        )

    def url(self, request: AckRequest) -> str:
        """Where the request goes: the comment's reply edge, else the Page's Send API."""
        if self._is_public_reply(request):
            # The comment id comes from a webhook: quoted, it can only name one node.
            comment = quote(request.reply_to or "", safe="")
            return self._settings.graph_url(comment, PUBLIC_REPLY_EDGES[request.channel])
        return self._settings.graph_url(self._page_id(request), "messages")

    def body(self, request: AckRequest) -> dict[str, object]:
        """The body: a public comment reply, a private reply to a comment, else a RESPONSE message."""
        if self._is_public_reply(request):
            return {"message": request.text}
        message = {"text": request.text}
        if self._is_private_reply(request):
            return {"recipient": {"comment_id": request.reply_to}, "message": message}
        return {
            "recipient": {"id": request.recipient},
            "messaging_type": "RESPONSE",
            "message": message,
        }

    async def send(self, request: AckRequest, session: aiohttp.ClientSession) -> Outcome:
        platform = request.channel
        credentials = self._settings.account(request.account)
        if credentials is None or credentials.access_token is None:
            return Permanent(f"{platform}: no access token for account {request.account}", True)
        now = self._clock()
        public = self._is_public_reply(request)
        if not public:
            closes = reply_closes(request)
            if closes is not None and closes.timestamp() <= now:
                return Permanent(f"{platform}: outside the reply window: human needed")
        answer = await post(
            session,
            self.url(request),
            body=dumps(self.body(request)),
            headers={"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"},
            settings=self._settings,
            platform=platform,
        )
        if not isinstance(answer, HttpAnswer):
            return answer
        if 200 <= answer.status < 300:
            message_id = answer.json().get("id" if public else "message_id")
            return Delivered(str(message_id) if message_id is not None else None)
        return graph_outcome(answer, platform, now, self._settings.retry_after_max)
