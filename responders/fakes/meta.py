"""A fake Graph API: the Messenger/Instagram Send API, comment replies, WhatsApp Cloud API.

``POST /{version}/{node}/messages`` with ``Authorization: Bearer <token>``. A body with
``messaging_product: whatsapp`` is a WhatsApp send; anything else a Send API call, where
``recipient.comment_id`` is a private reply to a comment (one per comment, PLATFORMS
§1.7). ``POST /{version}/{comment-id}/comments`` (Facebook) and
``POST /{version}/{ig-comment-id}/replies`` (Instagram) with ``message`` (JSON body or
query) post a public reply under a comment and answer ``{"id": <new comment id>}``.
Errors use Graph's envelope with the codes of PLATFORMS §1.8 and §2.4.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from aiohttp import web

from .base import FailureKind, FakePlatform, Recorded, json_response, parse_json


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
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
    "permanent": lambda: graph_error(
        400, 10, "This message is sent outside of allowed window.", 2018278
    ),
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


class FakeGraph(FakePlatform):
    """Graph API fake; ``tokens`` are the access tokens it accepts.

    A Send API call to a recipient in ``outside_window`` (PSIDs, IGSIDs) is refused
    as Meta refuses a reply after the 24 h window: ``10/2018278``. ``comments`` are
    the comment ids that exist (None: every id exists); a reply to another one is
    refused ``100/33``. A public reply under a comment in ``hidden_comments`` is
    refused (Graph cannot reply to hidden comments; a private reply still can). A
    second private reply to the same comment is refused with code 10.
    ``comment_replies`` lists every reply accepted under a comment, public and
    private, in order.
    """

    def __init__(
        self,
        tokens: set[str],
        version: str = "v25.0",
        outside_window: frozenset[str] = frozenset(),
        comments: frozenset[str] | None = None,
        hidden_comments: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.version = version
        self.outside_window = outside_window
        self.comments = comments
        self.hidden_comments = hidden_comments
        self.comment_replies: list[CommentReply] = []
        self._sent = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{node}/messages", self._messages)
        app.router.add_post("/{version}/{comment}/comments", self._public_reply)
        app.router.add_post("/{version}/{comment}/replies", self._public_reply)

    def replies_to(self, comment_id: str) -> list[CommentReply]:
        """The replies accepted under ``comment_id``, in order."""
        return [reply for reply in self.comment_replies if reply.comment_id == comment_id]

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

    def _known(self, comment_id: str) -> bool:
        return self.comments is None or comment_id in self.comments

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
        self._sent += 1
        if whatsapp:
            return self._whatsapp(body)
        recipient = body.get("recipient")
        if isinstance(recipient, dict) and recipient.get("id") in self.outside_window:
            return MESSENGER_FAILURES["permanent"]()
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
        if not self._known(comment_id):
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
        problems = []
        if body.get("recipient_type", "individual") != "individual":
            problems.append("recipient_type")
        if not isinstance(body.get("to"), str) or not body["to"]:
            problems.append("to")
        if body.get("type") != "text":
            problems.append("type (only text in this fake)")
        if not isinstance(text.get("body"), str) or not 1 <= len(text["body"]) <= 4096:
            problems.append("text.body (1-4096 chars)")
        context = body.get("context")
        if context is not None and not (
            isinstance(context, dict) and isinstance(context.get("message_id"), str)
        ):
            problems.append("context.message_id")
        if problems:
            return graph_error(400, 100, f"(#100) Invalid parameter: {', '.join(problems)}")
        return json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": f"wamid.FAKE{self._sent}"}],
            }
        )

    def _send_api(self, body: dict[str, Any]) -> web.Response:
        recipient = body.get("recipient") if isinstance(body.get("recipient"), dict) else {}
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        problems = []
        text = message.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 2000:
            problems.append("message.text (1-2000 chars)")
        if "comment_id" in recipient or "post_id" in recipient:
            recipient_id = None
        elif isinstance(recipient.get("id"), str) and recipient["id"]:
            recipient_id = recipient["id"]
            kind = body.get("messaging_type")
            if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
                problems.append("messaging_type")
            if kind == "MESSAGE_TAG" and not body.get("tag"):
                problems.append("tag")
        else:
            recipient_id = None
            problems.append("recipient")
        if problems:
            return graph_error(400, 100, f"(#100) Invalid parameter: {', '.join(problems)}")
        message_id = f"m_fake{self._sent}"
        comment_id = recipient.get("comment_id")
        if isinstance(comment_id, str):
            if not self._known(comment_id):
                return unknown_object(comment_id)
            if any(not reply.public for reply in self.replies_to(comment_id)):
                return graph_error(400, 10, "(#10) Only one private reply can be sent per comment")
            self.comment_replies.append(CommentReply(comment_id, text, False, "messages", message_id))
        return json_response({"recipient_id": recipient_id, "message_id": message_id})
