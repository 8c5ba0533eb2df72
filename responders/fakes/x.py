"""A fake X API v2: DMs (``/2/dm_conversations/with/{id}/messages``) and posts (``/2/tweets``).

Answers ``201 {"data": …}``; errors are problem JSON (``title``, ``detail``, ``type``,
``status``); a rate-limited answer is ``429`` with ``x-rate-limit-reset`` set
``reset_in`` seconds after the fake's clock.

X ids are numeric strings. The fake knows the users who can be sent a DM
(:meth:`FakeX.add_user`) and the posts that exist (:meth:`FakeX.add_tweet`; its own
accepted posts join them): a DM to a participant that is not a numeric id or not a
known user, or a reply whose ``reply.in_reply_to_tweet_id`` is not a numeric string
naming a known post, is ``400 Invalid Request``. A post's text is 1-280 characters, a
DM's 1-10000.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from .base import FakePlatform, json_response, parse_json

TWEET_MAX_CHARS = 280
DM_MAX_CHARS = 10000


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(
        {"title": title, "detail": detail, "type": "about:blank", "status": status}, status, headers
    )


class FakeX(FakePlatform):
    """X API fake accepting the user-context Bearer ``tokens``; ``users`` and ``tweets``
    are the ids it knows."""

    def __init__(
        self, tokens: set[str], clock: Callable[[], float] = time.time, reset_in: int = 60
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.clock = clock
        self.reset_in = reset_in
        self.users: set[str] = set()
        self.tweets: set[str] = set()
        self._sent = 0

    def add_user(self, user_id: str) -> None:
        """A user the account can send a DM to (a numeric string id)."""
        self.users.add(_numeric(user_id, "user_id"))

    def add_tweet(self, tweet_id: str) -> None:
        """A post that exists and can be replied to (a numeric string id)."""
        self.tweets.add(_numeric(tweet_id, "tweet_id"))

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
        body = await self._checked_text(request, DM_MAX_CHARS)
        if isinstance(body, web.Response):
            return body
        participant = request.match_info["participant"]
        if not _is_numeric(participant):
            return problem(
                400,
                "Invalid Request",
                f"The `participant_id` path parameter value [{participant}] is not valid.",
            )
        if participant not in self.users:
            return problem(
                400, "Invalid Request", f"Could not find user with participant_id: [{participant}]."
            )
        self._sent += 1
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
        body = await self._checked_text(request, TWEET_MAX_CHARS)
        if isinstance(body, web.Response):
            return body
        reply = body.get("reply")
        if reply is not None:
            target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
            if not _is_numeric(target):
                return problem(
                    400,
                    "Invalid Request",
                    f"The `in_reply_to_tweet_id` value [{target}] is not valid: a numeric string.",
                )
            if target not in self.tweets:
                return problem(
                    400, "Invalid Request", f"Could not find tweet with in_reply_to_tweet_id: [{target}]."
                )
        self._sent += 1
        tweet_id = f"17900000000000{self._sent:05d}"
        self.tweets.add(tweet_id)
        return json_response({"data": {"id": tweet_id, "text": body["text"]}}, 201)


def _is_numeric(value: object) -> bool:
    """X ids are numeric strings (64-bit, written as decimal text)."""
    return isinstance(value, str) and value.isascii() and value.isdigit()


def _numeric(value: str, name: str) -> str:
    if not _is_numeric(value):
        raise ValueError(f"{name} must be a numeric string, not {value!r}")
    return value
