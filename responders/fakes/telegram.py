"""A fake Telegram Bot API: ``POST /bot<token>/sendMessage``.

The fake knows the chats the bot has seen and the messages in them
(:meth:`FakeTelegram.add_message`, :meth:`FakeTelegram.add_chat`), and refuses what
the Bot API refuses:

- ``chat_id`` is an integer (int64: groups and channels are negative, ``-100…`` for
  supergroups and channels, and ids exceed 32 bits), a string holding one, or a public
  channel's or supergroup's ``@username``; anything else, or a chat the bot does not
  know, is ``400 Bad Request: chat not found``;
- ``text`` is 1-4096 characters;
- ``reply_parameters.message_id`` is a JSON integer (not a string, not a boolean),
  else ``400 Bad Request: field "message_id" must be a valid Number``; a message the
  chat does not hold is ``400 Bad Request: message to be replied not found`` unless
  ``allow_sending_without_reply`` is true. The older top-level ``reply_to_message_id``
  (with a top-level ``allow_sending_without_reply``) is checked the same way.

An accepted message answers ``{"ok": true, "result": <Message>}`` whose ``chat.type``
is the known chat's type, and becomes a message of that chat (it can be replied to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .base import FakePlatform, json_response, parse_json

CHAT_TYPES = ("private", "group", "supergroup", "channel")
TEXT_MAX_CHARS = 4096
_INTEGER = re.compile(r"-?[0-9]+")
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")


def bot_error(
    code: int, description: str, parameters: dict[str, Any] | None = None
) -> web.Response:
    data: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        data["parameters"] = parameters
    return json_response(data, code)


def chat_not_found() -> web.Response:
    return bot_error(400, "Bad Request: chat not found")


def not_a_number(name: str) -> web.Response:
    return bot_error(400, f'Bad Request: field "{name}" must be a valid Number')


@dataclass(slots=True)
class Chat:
    """A chat the bot has seen: its type, public username (if any) and message ids."""

    id: int
    type: str
    username: str | None = None
    messages: set[int] = field(default_factory=set)


def _is_int(value: object) -> bool:
    # bool is a subclass of int in Python, never a number in JSON.
    return isinstance(value, int) and not isinstance(value, bool)


class FakeTelegram(FakePlatform):
    """Bot API fake accepting the bot ``tokens``; a rate limit asks ``retry_after`` seconds.

    ``chats`` holds every chat the bot has seen, by id (see the module doc for what is
    refused).
    """

    def __init__(self, tokens: set[str], retry_after: int = 17) -> None:
        super().__init__()
        self.tokens = tokens
        self.retry_after = retry_after
        self.chats: dict[int, Chat] = {}
        self._sent = 0

    def add_chat(self, chat_id: int, chat_type: str = "private", username: str | None = None) -> Chat:
        """The bot knows this chat (a user who started it, a group or channel it is in).

        Private chats have positive ids; groups, supergroups and channels negative ones.
        Only a supergroup or a channel has a public ``@username`` to be addressed by.
        Adding a known chat again changes nothing but its username (when given).
        """
        if not _is_int(chat_id):
            raise TypeError(f"chat_id must be an int, not {chat_id!r}")
        if chat_type not in CHAT_TYPES:
            raise ValueError(f"chat_type must be one of {CHAT_TYPES}, not {chat_type!r}")
        if chat_id == 0 or (chat_id > 0) != (chat_type == "private"):
            raise ValueError(f"a {chat_type} chat cannot have the id {chat_id}")
        if username is not None and (
            chat_type not in ("supergroup", "channel") or not _USERNAME.fullmatch(username)
        ):
            raise ValueError(f"a {chat_type} chat cannot have the username {username!r}")
        chat = self.chats.setdefault(chat_id, Chat(chat_id, chat_type))
        if chat.type != chat_type:
            raise ValueError(f"chat {chat_id} is known as {chat.type}, not {chat_type}")
        if username is not None:
            chat.username = username
        return chat

    def add_message(self, chat_id: int, message_id: int, chat_type: str = "private") -> None:
        """A message the bot has seen in the chat ``chat_id`` of type ``chat_type``."""
        if not _is_int(message_id) or message_id <= 0:
            raise ValueError(f"message_id must be a positive int, not {message_id!r}")
        self.add_chat(chat_id, chat_type).messages.add(message_id)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._method)

    def _chat(self, value: object) -> Chat | None:
        """The known chat a ``chat_id`` parameter names, or None."""
        if _is_int(value):
            return self.chats.get(value)  # type: ignore[arg-type]
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return self.chats.get(int(value))
        if isinstance(value, str) and value.startswith("@"):
            wanted = value.lower()
            return next(
                (c for c in self.chats.values() if c.username and c.username.lower() == wanted),
                None,
            )
        return None

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
        if body is None or body.get("chat_id") in (None, ""):
            return bot_error(400, "Bad Request: chat_id is empty")
        text = body.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= TEXT_MAX_CHARS:
            return bot_error(400, "Bad Request: message text is empty")
        reply = self._reply_target(body)
        if isinstance(reply, web.Response):
            return reply
        chat = self._chat(body["chat_id"])
        if chat is None:
            return chat_not_found()
        if reply is not None:
            message_id, without_reply = reply
            if message_id not in chat.messages and not without_reply:
                return bot_error(400, "Bad Request: message to be replied not found")
        self._sent += 1
        message_id = max(chat.messages, default=1000) + 1
        chat.messages.add(message_id)
        result: dict[str, Any] = {
            "message_id": message_id,
            "date": 1717000500,
            "chat": {"id": chat.id, "type": chat.type},
            "text": text,
        }
        if chat.username:
            result["chat"]["username"] = chat.username.removeprefix("@")
        return json_response({"ok": True, "result": result})

    @staticmethod
    def _reply_target(body: dict[str, Any]) -> tuple[int, bool] | None | web.Response:
        """The quoted message id and ``allow_sending_without_reply``, None without a
        quote, or the error answer for a malformed one."""
        if "reply_parameters" in body:
            parameters = body["reply_parameters"]
            if not isinstance(parameters, dict):
                return bot_error(400, "Bad Request: can't parse reply parameters JSON object")
            name = "message_id"
            message_id = parameters.get(name)
            without_reply = parameters.get("allow_sending_without_reply") is True
        elif "reply_to_message_id" in body:
            name = "reply_to_message_id"
            message_id = body[name]
            without_reply = body.get("allow_sending_without_reply") is True
        else:
            return None
        if not _is_int(message_id):
            return not_a_number(name)
        return message_id, without_reply
