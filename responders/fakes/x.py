"""A fake X API v2: DMs (``/2/dm_conversations/with/{id}/messages``) and posts (``/2/tweets``).

Answers ``201 {"data": …}``; errors are problem JSON; a rate-limited answer is ``429``
with ``x-rate-limit-reset`` set ``reset_in`` seconds after the fake's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from .base import FakePlatform, json_response, parse_json


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(
        {"title": title, "detail": detail, "type": "about:blank", "status": status}, status, headers
    )


class FakeX(FakePlatform):
    """X API fake accepting the user-context Bearer ``tokens``."""

    def __init__(
        self, tokens: set[str], clock: Callable[[], float] = time.time, reset_in: int = 60
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.clock = clock
        self.reset_in = reset_in
        self._sent = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/2/dm_conversations/with/{participant}/messages", self._dm)
        app.router.add_post("/2/tweets", self._tweet)

    def _failure(self) -> web.Response | None:
        kind = self.take_failure()
        if kind == "rate_limit":
            reset = str(int(self.clock()) + self.reset_in)
            return problem(
                429,
                "Too Many Requests",
                "Too Many Requests",
                {"x-rate-limit-reset": reset, "x-rate-limit-remaining": "0"},
            )
        if kind == "server_error":
            return problem(503, "Service Unavailable", "Service Unavailable")
        if kind == "permanent":
            return problem(403, "Forbidden", "You are not permitted to send this message.")
        if kind == "ops_alert":
            return problem(401, "Unauthorized", "Unauthorized")
        return None

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    async def _checked_text(self, request: web.Request, limit: int) -> dict | web.Response:
        """The request body once recorded, not failed on purpose, authorised and with a text of 1..limit chars; else the error answer."""
        recorded = await self.record(request)
        failure = self._failure()
        if failure is not None:
            return failure
        if not self._authorised(request):
            return problem(401, "Unauthorized", "Unauthorized")
        body = parse_json(recorded.body)
        if body is None or not isinstance(body.get("text"), str) or not 1 <= len(body["text"]) <= limit:
            return problem(400, "Invalid Request", f"text is required (1-{limit} chars)")
        return body

    async def _dm(self, request: web.Request) -> web.Response:
        body = await self._checked_text(request, 10000)
        if isinstance(body, web.Response):
            return body
        self._sent += 1
        participant = request.match_info["participant"]
        return json_response(
            {
                "data": {
                    "dm_conversation_id": f"900-{participant}",
                    "dm_event_id": f"dm{self._sent}",
                }
            },
            201,
        )

    async def _tweet(self, request: web.Request) -> web.Response:
        body = await self._checked_text(request, 280)
        if isinstance(body, web.Response):
            return body
        reply = body.get("reply")
        if reply is not None and not (
            isinstance(reply, dict) and isinstance(reply.get("in_reply_to_tweet_id"), str)
        ):
            return problem(400, "Invalid Request", "reply.in_reply_to_tweet_id must be a string")
        self._sent += 1
        return json_response(
            {"data": {"id": f"17900000000000{self._sent:05d}", "text": body["text"]}}, 201
        )
