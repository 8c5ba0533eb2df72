"""A fake Graph API: the Messenger/Instagram Send API, comment replies, WhatsApp Cloud API.

``POST /{version}/{node}/messages`` with ``Authorization: Bearer <token>``. A body with
``messaging_product: whatsapp`` is a WhatsApp send; anything else a Send API call, where
``recipient.id`` is a customer (PSID, IGSID) and ``recipient.comment_id`` a private
reply to a comment. ``POST /{version}/{comment-id}/comments`` (Facebook) and
``POST /{version}/{ig-comment-id}/replies`` (Instagram) with ``message`` (JSON body or
query) post a public reply under a comment and answer ``{"id": <new comment id>}``.

Like Graph, the fake only reaches people who wrote first and only within Meta's
windows, measured by its ``clock`` from what it was told with
:meth:`FakeGraph.add_customer` and :meth:`FakeGraph.add_comment`:

- Send API to a customer it does not know: ``100/2018001`` "No matching user found";
  a customer whose last message is more than 24 h old: ``10/2018278`` (outside the
  allowed window). ``MESSAGE_TAG`` with ``HUMAN_AGENT`` stretches the window to 7
  days; the fake knows no other tag (an invalid parameter).
- A private reply to a comment it does not know: ``100/33`` (unknown object); to a
  comment more than 7 days old: ``10/2018278``; a second private reply to the same
  comment: code 10. A visitor post (``recipient.post_id``) is treated like a comment. A public reply needs a known comment that is not hidden.
- WhatsApp: ``to`` is a wa_id (digits only) of a customer it knows, else ``131026``
  "Message Undeliverable."; free-form text to a customer whose last message is more
  than 24 h old is ``131047`` "Re-engagement message"; ``context.message_id`` must be a
  WhatsApp message id (``wamid.`` then base64 characters), else code 100.

Errors use Graph's envelope (``{"error": {"message", "type", "code",
"error_subcode"?, "error_data"?, "fbtrace_id"}}``), mostly with HTTP 400.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from aiohttp import web

from .base import FailureKind, FakePlatform, Recorded, json_response, parse_json

DAY = 24 * 3600.0
MESSAGING_WINDOW = DAY  # a customer's last message opens 24 h of free replies
HUMAN_AGENT_WINDOW = 7 * DAY  # the HUMAN_AGENT tag: 7 days, human replies only
PRIVATE_REPLY_WINDOW = 7 * DAY  # a comment takes its one private reply for 7 days
SEND_API_MAX_CHARS = 2000
WHATSAPP_MAX_CHARS = 4096
WA_ID = re.compile(r"[0-9]+")
WAMID = re.compile(r"wamid\.[A-Za-z0-9+/=_-]+")


def graph_error(
    status: int,
    code: int,
    message: str,
    subcode: int | None = None,
    details: str | None = None,
) -> web.Response:
    """Graph's error envelope; ``details`` adds WhatsApp's ``error_data``."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return json_response({"error": error}, status=status)


# The longest public reply each comment edge takes (Facebook comments, Instagram replies).
PUBLIC_REPLY_MAX_CHARS = MappingProxyType({"comments": 8000, "replies": 2200})


def unknown_object(node: str) -> web.Response:
    """Graph's answer for a node that does not exist (or is not visible to the token)."""
    return graph_error(
        400,
        100,
        f"Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        33,
    )


def invalid_parameter(*names: str) -> web.Response:
    return graph_error(400, 100, f"(#100) Invalid parameter: {', '.join(names)}")


def outside_window() -> web.Response:
    return graph_error(400, 10, "This message is sent outside of allowed window.", 2018278)


def no_matching_user() -> web.Response:
    return graph_error(400, 100, "(#100) No matching user found", 2018001)


def undeliverable(to: str) -> web.Response:
    return graph_error(
        400, 131026, "Message Undeliverable.",
        details=f"The recipient {to} has not messaged this business number.",
    )


def re_engagement() -> web.Response:
    return graph_error(
        400, 131047, "Re-engagement message",
        details="More than 24 hours have passed since the recipient last replied to the sender number.",
    )


@dataclass(frozen=True, slots=True)
class CommentReply:
    """A reply the fake accepted under a comment.

    ``public`` replies came through a comment edge (``edge`` is ``comments`` or
    ``replies``); private ones through the Send API (``edge`` is ``messages``). ``id``
    is what the fake answered: the new comment's id, or the private message's id.
    """

    comment_id: str
    text: str
    public: bool
    edge: str
    id: str


MESSENGER_FAILURES = MappingProxyType({
    "rate_limit": lambda: graph_error(400, 613, "Calls to this api have exceeded the rate limit."),
    "server_error": lambda: graph_error(
        500, 2, "An unexpected error has occurred. Please retry your request later."
    ),
    "permanent": outside_window,
    "ops_alert": lambda: graph_error(
        400, 190, "Error validating access token: Session has expired."
    ),
})
WHATSAPP_FAILURES = MappingProxyType({
    "rate_limit": lambda: graph_error(429, 130429, "(#130429) Rate limit hit"),
    "server_error": lambda: graph_error(503, 2, "Service temporarily unavailable"),
    "permanent": lambda: graph_error(400, 131026, "Message Undeliverable."),
    "ops_alert": lambda: graph_error(401, 190, "Error validating access token"),
})


def _epoch(at: datetime) -> float:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a time zone is needed to place {at} on the fake's clock")
    return at.timestamp()


class FakeGraph(FakePlatform):
    """Graph API fake; ``tokens`` are the access tokens it accepts, ``version`` the
    API version in the path, ``clock`` (epoch seconds) the now its windows end at.

    It knows the customers who wrote (:meth:`add_customer`: PSIDs, IGSIDs, WhatsApp
    wa_ids, with the time of their last message) and the comments that exist
    (:meth:`add_comment`), and refuses the rest as the module doc says. A public reply
    under a comment in ``hidden_comments`` is refused (Graph cannot reply to hidden
    comments; a private reply still can). ``comment_replies`` lists every reply
    accepted under a comment, public and private, in order.
    """

    def __init__(
        self,
        tokens: set[str],
        version: str = "v25.0",
        hidden_comments: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.version = version
        self.hidden_comments = hidden_comments
        self.clock = clock
        self.customers: dict[str, float] = {}
        self.comments: dict[str, float] = {}
        self.comment_replies: list[CommentReply] = []
        self._sent = 0

    def add_customer(self, user_id: str, last_message_at: datetime) -> None:
        """``user_id`` (PSID, IGSID or wa_id) last wrote at ``last_message_at`` (aware);
        a later call is a newer message and moves the window."""
        self.customers[user_id] = _epoch(last_message_at)

    def add_comment(self, comment_id: str, created_at: datetime) -> None:
        """The comment (or visitor post) ``comment_id`` exists, written at ``created_at`` (aware)."""
        self.comments[comment_id] = _epoch(created_at)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{node}/messages", self._messages)
        app.router.add_post("/{version}/{comment}/comments", self._public_reply)
        app.router.add_post("/{version}/{comment}/replies", self._public_reply)

    def replies_to(self, comment_id: str) -> list[CommentReply]:
        """The replies accepted under ``comment_id``, in order."""
        return [reply for reply in self.comment_replies if reply.comment_id == comment_id]

    def _age(self, written_at: float) -> float:
        return self.clock() - written_at

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer to a request with a wrong API version or token, else None."""
        if request.match_info["version"] != self.version:
            return graph_error(400, 2635, f"Unknown API version {request.match_info['version']}")
        auth = request.headers.get("Authorization", "")
        token = (
            auth.removeprefix("Bearer ")
            if auth.startswith("Bearer ")
            else request.query.get("access_token")
        )
        if token not in self.tokens:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        return None

    async def _messages(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        body = parse_json(recorded.body)
        whatsapp = bool(body) and body.get("messaging_product") == "whatsapp"
        failure: FailureKind | None = self.take_failure()
        if failure is not None:
            return (WHATSAPP_FAILURES if whatsapp else MESSENGER_FAILURES)[failure]()
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if body is None:
            return graph_error(400, 100, "Invalid parameter: body is not a JSON object")
        if whatsapp:
            return self._whatsapp(body)
        return self._send_api(body)

    async def _public_reply(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        failure = self.take_failure()
        if failure is not None:
            return MESSENGER_FAILURES[failure]()
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        comment_id = request.match_info["comment"]
        edge = request.path.rsplit("/", 1)[-1]
        message = self._public_message(recorded, request)
        if not isinstance(message, str) or not 1 <= len(message) <= PUBLIC_REPLY_MAX_CHARS[edge]:
            return graph_error(
                400, 100, f"(#100) Invalid parameter: message (1-{PUBLIC_REPLY_MAX_CHARS[edge]} chars)"
            )
        if comment_id not in self.comments:
            return unknown_object(comment_id)
        if comment_id in self.hidden_comments:
            return graph_error(400, 100, "(#100) Cannot reply to a hidden comment")
        self._sent += 1
        reply = CommentReply(comment_id, message, True, edge, f"fake_comment_{self._sent}")
        self.comment_replies.append(reply)
        return json_response({"id": reply.id})

    @staticmethod
    def _public_message(recorded: Recorded, request: web.Request) -> object:
        # Graph takes parameters as a JSON body, a form or the query string.
        body = parse_json(recorded.body)
        if body is not None and "message" in body:
            return body["message"]
        return request.query.get("message")

    def _whatsapp(self, body: dict[str, Any]) -> web.Response:
        text = body.get("text") if isinstance(body.get("text"), dict) else {}
        to = body.get("to")
        problems = []
        if body.get("recipient_type", "individual") != "individual":
            problems.append("recipient_type")
        if not isinstance(to, str) or not WA_ID.fullmatch(to):
            problems.append("to (a wa_id: digits only)")
        if body.get("type") != "text":
            problems.append("type (only text in this fake)")
        if not isinstance(text.get("body"), str) or not 1 <= len(text["body"]) <= WHATSAPP_MAX_CHARS:
            problems.append(f"text.body (1-{WHATSAPP_MAX_CHARS} chars)")
        context = body.get("context")
        if context is not None and not (
            isinstance(context, dict)
            and isinstance(context.get("message_id"), str)
            and WAMID.fullmatch(context["message_id"])
        ):
            problems.append("context.message_id (a wamid)")
        if problems:
            return invalid_parameter(*problems)
        assert isinstance(to, str)
        last_message = self.customers.get(to)
        if last_message is None:
            return undeliverable(to)
        if self._age(last_message) > MESSAGING_WINDOW:
            return re_engagement()
        self._sent += 1
        return json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.FAKE{self._sent}"}],
            }
        )

    def _send_api(self, body: dict[str, Any]) -> web.Response:
        recipient = body.get("recipient") if isinstance(body.get("recipient"), dict) else {}
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        problems = []
        text = message.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= SEND_API_MAX_CHARS:
            problems.append(f"message.text (1-{SEND_API_MAX_CHARS} chars)")
        comment_id = recipient.get("comment_id", recipient.get("post_id"))
        recipient_id = recipient.get("id")
        window = MESSAGING_WINDOW
        if comment_id is not None:
            if not isinstance(comment_id, str) or not comment_id:
                problems.append("recipient")
        elif isinstance(recipient_id, str) and recipient_id:
            kind = body.get("messaging_type")
            tag = body.get("tag")
            if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
                problems.append("messaging_type")
            if kind == "MESSAGE_TAG":
                if tag == "HUMAN_AGENT":
                    window = HUMAN_AGENT_WINDOW
                else:
                    problems.append("tag (only HUMAN_AGENT in this fake)")
        else:
            problems.append("recipient")
        if problems:
            return invalid_parameter(*problems)
        if comment_id is not None:
            return self._private_reply(comment_id, text)
        last_message = self.customers.get(recipient_id)
        if last_message is None:
            return no_matching_user()
        if self._age(last_message) > window:
            return outside_window()
        self._sent += 1
        return json_response({"recipient_id": recipient_id, "message_id": f"m_fake{self._sent}"})

    def _private_reply(self, comment_id: str, text: str) -> web.Response:
        created_at = self.comments.get(comment_id)
        if created_at is None:
            return unknown_object(comment_id)
        if self._age(created_at) > PRIVATE_REPLY_WINDOW:
            return outside_window()
        if any(not reply.public for reply in self.replies_to(comment_id)):
            return graph_error(400, 10, "(#10) Only one private reply can be sent per comment")
        self._sent += 1
        message_id = f"m_fake{self._sent}"
        self.comment_replies.append(CommentReply(comment_id, text, False, "messages", message_id))
        return json_response({"recipient_id": None, "message_id": message_id})
