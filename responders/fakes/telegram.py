"""A fake Telegram Bot API: ``POST /bot<token>/sendMessage`` (PLATFORMS §4)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .base import FakePlatform, json_response, parse_json


def bot_error(
    code: int, description: str, parameters: dict[str, Any] | None = None
) -> web.Response:
    data: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        data["parameters"] = parameters
    return json_response(data, code)


class FakeTelegram(FakePlatform):
    """Bot API fake accepting the bot ``tokens``; a rate limit asks ``retry_after`` seconds."""

    def __init__(self, tokens: set[str], retry_after: int = 17) -> None:
        super().__init__()
        self.tokens = tokens
        self.retry_after = retry_after
        self._sent = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._method)

    async def _method(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        kind = self.take_failure()
        if kind == "rate_limit":
            return bot_error(
                429,
                f"Too Many Requests: retry after {self.retry_after}",
                {"retry_after": self.retry_after},
            )
        if kind == "server_error":
            return bot_error(502, "Bad Gateway")
        if kind == "permanent":
            return bot_error(403, "Forbidden: bot was blocked by the user")
        if kind == "ops_alert" or request.match_info["token"] not in self.tokens:
            return bot_error(401, "Unauthorized")
        if request.match_info["method"] != "sendMessage":
            return bot_error(404, "Not Found")
        body = parse_json(recorded.body)
        if body is None or not isinstance(body.get("chat_id"), (int, str)):
            return bot_error(400, "Bad Request: chat_id is empty")
        text = body.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 4096:
            return bot_error(400, "Bad Request: message text is empty")
        reply = body.get("reply_parameters")
        if reply is not None and not (
            isinstance(reply, dict) and isinstance(reply.get("message_id"), int)
        ):
            return bot_error(400, "Bad Request: invalid reply parameters")
        self._sent += 1
        return json_response(
            {
                "ok": True,
                "result": {
                    "message_id": 1000 + self._sent,
                    "date": 1717000500,
                    "chat": {"id": body["chat_id"], "type": "private"},
                    "text": text,
                },
            }
        )
