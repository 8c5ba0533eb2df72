"""A fake Chatwoot desk: the Application API offhours calls, and the account webhooks it sends.

Chatwoot (the care desk a team may answer through) owns the channels; offhours reads its
webhooks and acts through its API (docs/platforms.md). Routes, all under
``/api/v1/accounts/{account}/conversations/{conversation}`` (``conversation`` is the
display id):

- ``GET ``: the conversation (``id``, ``inbox_id``, ``status``, ``priority``,
  ``labels``, ``can_reply``, ``meta.assignee``, ...);
- ``GET /messages``: ``{"meta": {...}, "payload": [message, ...]}``, the latest 20, or
  with ``after=<message id>`` up to 100 after it, with ``before=<message id>`` the 20
  before it; ``POST /messages``: ``content`` (at most 150,000 characters),
  ``message_type`` (``outgoing``; ``incoming`` only in an API inbox), ``private``,
  ``content_attributes`` (kept as sent, and echoed); answers the message;
- ``POST /assignments`` ``{"assignee_id": n}``: answers the agent, or ``null``;
- ``GET``/``POST /labels``: ``{"payload": [titles]}``; a POST **replaces** the labels,
  keeping only titles the account defines (others are dropped without an error);
- ``POST /toggle_status`` ``{"status": "open"|"pending"|"resolved"|"snoozed"}``;
- ``POST /toggle_priority`` ``{"priority": "urgent"|"high"|"medium"|"low"}`` or null;
- ``POST /custom_attributes`` ``{"custom_attributes": {...}}``: **replaces** the
  conversation's custom attributes (shown in the conversation and its webhooks);

and ``GET /api/v1/accounts/{account}/assignable_agents?inbox_ids[]=<inbox>``: the members
of the inbox and the account's administrators, ``{"payload": [agent, ...]}``.

What it refuses, as Chatwoot does:

- no ``api_access_token`` header: ``401 {"errors": ["You need to sign in or sign up
  before continuing."]}``; an unknown token: ``401 {"error": "Invalid Access Token"}``;
- an agent-bot token anywhere but the message create, the assignment, the status and
  the priority: ``401 {"error": "Access to this endpoint is not authorized for bots"}``
  (labels, reading the conversation or its messages need a user's token);
- an unknown account, or a conversation the account does not have: ``404 {"error":
  "Resource could not be found"}``; a user who is not in the account, or a bot attached
  to none of its inboxes: ``401 {"error": "You are not authorized to access this
  account"}``; an agent who is not a member of the conversation's inbox (an
  administrator sees every conversation): ``401 {"error": "You are not authorized to
  do this action"}``;
- a message over 150,000 characters, with no content, of an unknown ``message_type``,
  or ``incoming`` outside an API inbox: ``422 {"error": "..."}``;
- a status or a priority Chatwoot's enums do not have (``none`` included: the API
  clears a priority with ``null``): ``500``, as Rails answers an ``ArgumentError``.

Chatwoot does **not** refuse a public message when the platform's reply window is closed
(``can_reply`` false): it answers ``200`` with the message, and the channel's send job
then marks it ``status: failed`` with ``content_attributes.external_error``. The fake
does the same, at once (:data:`OUTSIDE_WINDOW`). An assignment to an id that is not a
user of the account also succeeds: Chatwoot sets the assignee to nobody and answers
``null``; the fake does too (the caller must check).

Scripted failures (:meth:`FakeChatwoot.fail_route`): the next N calls of one route
answer ``401``, ``404``, ``422``, ``429`` (``Retry later``, with ``Retry-After`` as
Chatwoot's Rack::Attack sends it), ``500``, or never answer (``timeout``: before the
call is applied; ``timeout_after``: after it was applied, the lost-answer case).

Webhooks (:meth:`FakeChatwoot.add_webhook`): ``message_created``,
``conversation_updated`` and ``conversation_status_changed`` bodies built from the
conversation's state, signed ``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret,
"<timestamp>." + raw body)>`` with ``X-Chatwoot-Timestamp`` and an
``X-Chatwoot-Delivery`` uuid kept across redeliveries. What the API changes is queued
and sent by :meth:`FakeChatwoot.deliver_pending`; the desk-side helpers
(:meth:`FakeChatwoot.customer_writes`, :meth:`FakeChatwoot.agent_replies`,
:meth:`FakeChatwoot.agent_assigns`, :meth:`FakeChatwoot.agent_sets_status`) send at once.
For a person watching a demo, ``POST /fake/accounts/{account}/conversations/{id}/customer_writes``
(:data:`CONTROL_ROUTE`, not a Chatwoot route) does what ``customer_writes`` does, from
another process: ``python -m responders.fakes customer-writes`` calls it (docs/chatwoot.md).
The webhook it names becomes the account's, and from then on the desk is *live*: what
an API call changes is sent to it at once, after the call's answer, as Chatwoot does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import orjson
from aiohttp import web

from .base import FailureKind, FakePlatform, json_response, log, parse_json

CONTENT_MAX_CHARS = 150_000
MESSAGES_PAGE = 20
MESSAGES_AFTER_PAGE = 100
STATUSES = ("open", "resolved", "pending", "snoozed")
PRIORITIES = ("low", "medium", "high", "urgent")
MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}
OUTSIDE_WINDOW = "Message outside messaging window"
RETRY_AFTER_SECONDS = 60
WEBHOOK_EVENTS = (
    "conversation_created", "conversation_status_changed", "conversation_updated",
    "message_created", "message_updated", "webwidget_triggered", "contact_created",
    "contact_updated",
)
CONTROL_ROUTE = "/fake/accounts/{account}/conversations/{conversation}/customer_writes"
"""Not Chatwoot's: the demo's way to make the conversation's customer write (see
``python -m responders.fakes customer-writes --help``)."""
CONTROL_SECRET_HEADER = "X-Fake-Webhook-Secret"
# The Application API routes a bot token may call (Chatwoot's BOT_ACCESSIBLE_ENDPOINTS).
BOT_ROUTES = frozenset({"messages.create", "assignments.create", "toggle_status", "toggle_priority"})
ROUTES = (
    "conversation.show", "messages.index", "messages.create", "assignments.create",
    "labels.index", "labels.create", "toggle_status", "toggle_priority", "assignable_agents",
    "custom_attributes",
)

RouteFailure = Literal["unauthorized", "not_found", "unprocessable", "rate_limit", "server_error",
                       "timeout", "timeout_after"]
ROUTE_FAILURES: tuple[RouteFailure, ...] = (
    "unauthorized", "not_found", "unprocessable", "rate_limit", "server_error", "timeout",
    "timeout_after",
)
_BASE_FAILURES: dict[FailureKind, RouteFailure] = {
    "rate_limit": "rate_limit", "server_error": "server_error", "permanent": "unprocessable",
    "ops_alert": "unauthorized",
}


def error(status: int, message: str) -> web.Response:
    """Chatwoot's error body: ``{"error": message}``."""
    return json_response({"error": message}, status)


def not_found() -> web.Response:
    return error(404, "Resource could not be found")


def internal_error() -> web.Response:
    return json_response({"status": 500, "error": "Internal Server Error"}, 500)


def rate_limited(retry_after: int) -> web.Response:
    return web.Response(
        status=429, text="Retry later\n", content_type="text/plain",
        headers={"Retry-After": str(retry_after)},
    )


@dataclass(slots=True)
class User:
    """An agent or administrator (a Chatwoot user) with their access token."""

    id: int
    name: str
    token: str | None
    role: Literal["agent", "administrator"] = "agent"
    accounts: set[int] = field(default_factory=set)
    email: str = ""

    def push(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "available_name": self.name, "avatar_url": "",
                "type": "user", "availability_status": "online", "thumbnail": ""}

    def agent_json(self, account: int) -> dict[str, Any]:
        return {"id": self.id, "account_id": account, "availability_status": "online",
                "auto_offline": True, "confirmed": True, "email": self.email or f"user{self.id}@example.com",
                "available_name": self.name, "name": self.name, "role": self.role, "thumbnail": ""}


@dataclass(slots=True)
class Bot:
    """An agent bot, its access token and the inboxes it is attached to, as (account, inbox)."""

    id: int
    name: str
    token: str
    inboxes: set[tuple[int, int]] = field(default_factory=set)


@dataclass(slots=True)
class Contact:
    id: int
    name: str

    def push(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "avatar": "", "thumbnail": "", "type": "contact",
                "additional_attributes": {}, "custom_attributes": {}, "email": None,
                "identifier": None, "phone_number": None}


@dataclass(slots=True)
class Inbox:
    id: int
    name: str
    channel: str
    members: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Message:
    """A message of a conversation, as Chatwoot stores it."""

    id: int
    content: str | None
    message_type: str
    private: bool
    created_at: float
    content_attributes: dict[str, Any]
    sender: User | Contact | Bot | None
    status: str = "sent"
    content_type: str = "text"
    source_id: str | None = None


@dataclass(slots=True)
class Account:
    id: int
    name: str
    inboxes: dict[int, Inbox] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)
    conversations: dict[int, Conversation] = field(default_factory=dict)


@dataclass(slots=True)
class Conversation:
    """A conversation's state; ``id`` is its display id (the one in API paths)."""

    account: Account
    id: int
    inbox: Inbox
    contact: Contact
    source_id: str
    status: str = "open"
    priority: str | None = None
    assignee: User | None = None
    labels: list[str] = field(default_factory=list)
    can_reply: bool = True
    messages: list[Message] = field(default_factory=list)
    created_at: float = 0.0
    last_activity_at: float = 0.0
    custom_attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One webhook delivery: its id (kept across redeliveries), event, raw body and answers."""

    delivery_id: str
    url: str
    event: str
    body: bytes
    statuses: list[int | None] = field(default_factory=list)
    answers: list[bytes | None] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass(slots=True)
class _Webhook:
    url: str
    secret: bytes
    subscriptions: frozenset[str]


@dataclass(slots=True)
class _Call:
    """What a handler needs once the caller is known."""

    account: Account
    conversation: Conversation
    caller: User | Bot
    body: dict[str, Any]


class FakeChatwoot(FakePlatform):
    """A Chatwoot install: accounts, users and bots with tokens, inboxes, conversations.

    ``clock`` (epoch seconds) dates messages and signs webhooks. A test seeds it with
    :meth:`add_account`, :meth:`add_user`, :meth:`add_bot`, :meth:`add_inbox`,
    :meth:`add_labels` and :meth:`add_conversation`; ``retry_after`` is what a scripted
    ``rate_limit`` asks.
    """

    def __init__(self, clock: Callable[[], float] = time.time, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__()
        self.clock = clock
        self.retry_after = retry_after
        self.accounts: dict[int, Account] = {}
        self.users: dict[int, User] = {}
        self.bots: dict[int, Bot] = {}
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhooks: list[_Webhook] = []
        self._pending: list[dict[str, Any]] = []
        self._route_failures: dict[str, deque[RouteFailure]] = {}
        self._next_message = 1000
        self._released = asyncio.Event()
        # Live (a webhook set through the control route): what the API changes is sent at
        # once, in order, as Chatwoot sends it; tests deliver with deliver_pending instead.
        self._live = False
        self._delivering = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- seeding -------------------------------------------------------------------------

    def add_account(self, account_id: int, name: str = "Acme") -> Account:
        return self.accounts.setdefault(account_id, Account(account_id, name))

    def add_user(
        self, user_id: int, name: str, *, token: str | None = None, accounts: tuple[int, ...] = (),
        role: Literal["agent", "administrator"] = "agent",
    ) -> User:
        """A user (agent or administrator) of ``accounts``; ``token`` is their access token."""
        for account in accounts:
            self._account(account)
        user = User(user_id, name, token, role, set(accounts))
        self.users[user_id] = user
        return user

    def add_bot(self, bot_id: int, name: str, *, token: str, inboxes: tuple[tuple[int, int], ...] = ()) -> Bot:
        """An agent bot attached to ``inboxes`` (``(account, inbox)`` pairs)."""
        bot = Bot(bot_id, name, token, set(inboxes))
        self.bots[bot_id] = bot
        return bot

    def add_inbox(
        self, account_id: int, inbox_id: int, name: str = "Acme Facebook",
        channel: str = "Channel::FacebookPage", members: tuple[int, ...] = (),
    ) -> Inbox:
        """An inbox of ``account_id``; ``members`` are the user ids of its agents."""
        for member in members:
            if account_id not in self.users[member].accounts:
                raise ValueError(f"user {member} is not in account {account_id}")
        inbox = Inbox(inbox_id, name, channel, set(members))
        self._account(account_id).inboxes[inbox_id] = inbox
        return inbox

    def add_labels(self, account_id: int, *titles: str) -> None:
        """Labels the account defines (Settings > Labels); only these can be put on a conversation."""
        self._account(account_id).labels.update(titles)

    def add_conversation(
        self, account_id: int, conversation_id: int, *, inbox: int, contact: tuple[int, str] = (14, "Ana Lopez"),
        source_id: str = "PSID_222", status: str = "open", can_reply: bool = True,
        assignee: int | None = None, labels: tuple[str, ...] = (), priority: str | None = None,
    ) -> Conversation:
        """A conversation (``conversation_id`` is its display id) in ``inbox`` of ``account_id``."""
        account = self._account(account_id)
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {STATUSES}")
        if priority is not None and priority not in PRIORITIES:
            raise ValueError(f"priority {priority!r} is not one of {PRIORITIES}")
        now = self.clock()
        conversation = Conversation(
            account, conversation_id, account.inboxes[inbox], Contact(*contact), source_id, status,
            priority, self.users[assignee] if assignee is not None else None, list(labels), can_reply,
            created_at=now, last_activity_at=now,
        )
        account.conversations[conversation_id] = conversation
        return conversation

    def conversation(self, account_id: int, conversation_id: int) -> Conversation:
        return self.accounts[account_id].conversations[conversation_id]

    def _account(self, account_id: int) -> Account:
        if account_id not in self.accounts:
            raise KeyError(f"no account {account_id}: add_account first")
        return self.accounts[account_id]

    # -- failures ------------------------------------------------------------------------

    def fail_route(self, route: str, kind: RouteFailure, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``route`` (one of :data:`ROUTES`) with ``kind``."""
        if route not in ROUTES:
            raise ValueError(f"route {route!r} is not one of {ROUTES}")
        if kind not in ROUTE_FAILURES:
            raise ValueError(f"failure {kind!r} is not one of {ROUTE_FAILURES}")
        self._route_failures.setdefault(route, deque()).extend([kind] * times)

    def _take_route_failure(self, route: str) -> RouteFailure | None:
        queue = self._route_failures.get(route)
        if queue:
            self.faults_injected += 1
            return queue.popleft()
        base = self.take_failure()
        return _BASE_FAILURES[base] if base is not None else None

    def _failure_answer(self, kind: RouteFailure) -> web.Response:
        return {
            "unauthorized": lambda: error(401, "Invalid Access Token"),
            "not_found": not_found,
            "unprocessable": lambda: error(422, "Validation failed"),
            "rate_limit": lambda: rate_limited(self.retry_after),
            "server_error": internal_error,
        }[kind]()  # type: ignore[index]

    async def _hang(self) -> web.Response:
        """Never answer (until the fake stops): the caller's timeout ends the exchange."""
        await self._released.wait()
        return internal_error()

    async def stop(self) -> None:
        self._released.set()
        for task in list(self._tasks):
            task.cancel()
        await super().stop()

    # -- routes --------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        base = "/api/v1/accounts/{account}/conversations/{conversation}"
        app.router.add_get(base, self._route("conversation.show", self._show))
        app.router.add_get(base + "/messages", self._route("messages.index", self._messages_index))
        app.router.add_post(base + "/messages", self._route("messages.create", self._messages_create))
        app.router.add_post(base + "/assignments", self._route("assignments.create", self._assign))
        app.router.add_get(base + "/labels", self._route("labels.index", self._labels_index))
        app.router.add_post(base + "/labels", self._route("labels.create", self._labels_create))
        app.router.add_post(base + "/toggle_status", self._route("toggle_status", self._toggle_status))
        app.router.add_post(base + "/toggle_priority", self._route("toggle_priority", self._toggle_priority))
        app.router.add_post(base + "/custom_attributes", self._route("custom_attributes", self._custom_attributes))
        app.router.add_get("/api/v1/accounts/{account}/assignable_agents", self._assignable_agents)
        app.router.add_post(CONTROL_ROUTE, self._control_customer_writes)

    async def _control_customer_writes(self, request: web.Request) -> web.Response:
        """The demo's control route (not Chatwoot's): the conversation's customer writes
        ``content``; with ``webhook`` (and the secret in :data:`CONTROL_SECRET_HEADER`, never
        in the logged body) that URL becomes the account webhook first. Answers the message
        id and each delivery made: event, delivery id, URL, the status and body answered."""
        body = parse_json(await request.read())
        if body is None or not isinstance(body.get("content"), str) or not body["content"]:
            return error(422, 'the body must be {"content": "<text>", "webhook": "<URL>"}')
        account_id = _int_or_none(request.match_info["account"])
        number = _int_or_none(request.match_info["conversation"])
        account = self.accounts.get(account_id) if account_id is not None else None
        if account is None or number is None or number not in account.conversations:
            return not_found()
        webhook = body.get("webhook")
        if isinstance(webhook, str) and webhook:
            secret = request.headers.get(CONTROL_SECRET_HEADER, "")
            if not secret:
                return error(422, f"a webhook needs its secret in the {CONTROL_SECRET_HEADER} header")
            self.use_webhook(webhook, secret)
        async with self._delivering:
            first = len(self.webhook_deliveries)
            message = await self.customer_writes(account.id, number, body["content"])
        deliveries = [
            {"event": d.event, "delivery": d.delivery_id, "url": d.url, "status": d.statuses[-1],
             "answer": (d.answers[-1] or b"").decode("utf-8", "replace")[:2000]}
            for d in self.webhook_deliveries[first:]
        ]
        return json_response({"message": message.id, "deliveries": deliveries})

    async def _assignable_agents(self, request: web.Request) -> web.Response:
        """``GET /api/v1/accounts/{a}/assignable_agents?inbox_ids[]=n``: the agents every listed
        inbox has as members, and the account's administrators (``{"payload": [agent, ...]}``)."""
        recorded = await self.record(request)
        failure = self._take_route_failure("assignable_agents")
        if failure == "timeout":
            return await self._hang()
        if failure is not None and failure != "timeout_after":
            return self._failure_answer(failure)
        caller = self._caller(request.headers.get("api_access_token"))
        if isinstance(caller, web.Response):
            return caller
        if isinstance(caller, Bot):
            return error(401, "Access to this endpoint is not authorized for bots")
        account_id = _int_or_none(request.match_info["account"])
        account = self.accounts.get(account_id) if account_id is not None else None
        if account is None:
            return not_found()
        if account.id not in caller.accounts:
            return error(401, "You are not authorized to access this account")
        del recorded
        ids = [_int_or_none(v) for v in request.query.getall("inbox_ids[]", [])]
        if not ids or any(i is None or i not in account.inboxes for i in ids):
            return not_found()
        inboxes = [account.inboxes[i] for i in ids if i is not None]
        if caller.role != "administrator" and any(caller.id not in inbox.members for inbox in inboxes):
            return error(401, "You are not authorized to do this action")
        members = set.intersection(*(inbox.members for inbox in inboxes))
        agents = [u for u in self.users.values() if account.id in u.accounts
                  and (u.id in members or u.role == "administrator")]
        return json_response({"payload": [u.agent_json(account.id) for u in sorted(agents, key=lambda u: u.id)]})

    def _caller(self, token: str | None) -> User | Bot | web.Response:
        if not token:
            return json_response({"errors": ["You need to sign in or sign up before continuing."]}, 401)
        caller: User | Bot | None = next((u for u in self.users.values() if u.token == token), None)
        if caller is None:
            caller = next((b for b in self.bots.values() if b.token == token), None)
        if caller is None:
            return error(401, "Invalid Access Token")
        return caller

    def _route(
        self, name: str, handler: Callable[[_Call, web.Request], web.Response]
    ) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.Response:
            recorded = await self.record(request)
            failure = self._take_route_failure(name)
            if failure == "timeout":
                return await self._hang()
            if failure is not None and failure != "timeout_after":
                return self._failure_answer(failure)
            call = self._authorize(request, name, recorded.body)
            if isinstance(call, web.Response):
                return call
            answer = handler(call, request)
            self._deliver_soon()
            if failure == "timeout_after":
                return await self._hang()
            return answer

        return serve

    def _authorize(self, request: web.Request, route: str, raw: bytes) -> _Call | web.Response:
        """Chatwoot's before-actions, in order: token, bot endpoints, account, conversation."""
        caller = self._caller(request.headers.get("api_access_token"))
        if isinstance(caller, web.Response):
            return caller
        if isinstance(caller, Bot) and route not in BOT_ROUTES:
            return error(401, "Access to this endpoint is not authorized for bots")
        account = _int_or_none(request.match_info["account"])
        if account is None or account not in self.accounts:
            return not_found()
        if isinstance(caller, User) and account not in caller.accounts:
            return error(401, "You are not authorized to access this account")
        if isinstance(caller, Bot) and not any(a == account for a, _ in caller.inboxes):
            return error(401, "You are not authorized to access this account")
        number = _int_or_none(request.match_info["conversation"])
        conversation = self.accounts[account].conversations.get(number) if number is not None else None
        if conversation is None:
            return not_found()
        if not _can_see(caller, conversation):
            return error(401, "You are not authorized to do this action")
        body = parse_json(raw) if raw else {}
        if body is None:
            return error(422, "Request body is not a JSON object")
        return _Call(self.accounts[account], conversation, caller, body)

    def _show(self, call: _Call, request: web.Request) -> web.Response:
        return json_response(self.conversation_json(call.conversation))

    def _messages_index(self, call: _Call, request: web.Request) -> web.Response:
        messages = call.conversation.messages
        after = _int_or_none(request.query.get("after", ""))
        before = _int_or_none(request.query.get("before", ""))
        if after is not None and before is not None:
            chosen = [m for m in messages if after <= m.id < before][:1000]
        elif before is not None:
            chosen = [m for m in messages if m.id < before][-MESSAGES_PAGE:]
        elif after is not None:
            chosen = [m for m in messages if m.id > after][:MESSAGES_AFTER_PAGE]
        else:
            chosen = messages[-MESSAGES_PAGE:]
        conversation = call.conversation
        meta: dict[str, Any] = {
            "labels": list(conversation.labels),
            "additional_attributes": {},
            "contact": conversation.contact.push(),
            "agent_last_seen_at": 0,
        }
        if conversation.assignee is not None:
            meta["assignee"] = conversation.assignee.push()
        return json_response({"meta": meta, "payload": [self.message_json(conversation, m) for m in chosen]})

    def _messages_create(self, call: _Call, request: web.Request) -> web.Response:
        body, conversation = call.body, call.conversation
        message_type = body.get("message_type", "outgoing")
        if message_type not in MESSAGE_TYPES:
            return error(422, f"'{message_type}' is not a valid message_type")
        if message_type == "incoming" and conversation.inbox.channel != "Channel::Api":
            return error(422, "Incoming messages are only allowed in Api inboxes")
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            content = orjson.dumps(content).decode()
        if not content:
            # Chatwoot creates a message with neither content nor attachment, which then
            # renders as nothing; the fake refuses it so that an empty post is a test failure.
            return error(422, "Validation failed: Content can't be blank")
        if len(content) > CONTENT_MAX_CHARS:
            return error(422, f"Validation failed: Content is too long (maximum is {CONTENT_MAX_CHARS} characters)")
        attributes = body.get("content_attributes", {})
        if isinstance(attributes, str):
            parsed = parse_json(attributes.encode())
            attributes = parsed if parsed is not None else {}
        if not isinstance(attributes, dict):
            attributes = {}
        private = body.get("private") in (True, "true", "1", 1)
        sender = call.caller if message_type == "outgoing" else conversation.contact
        message = self._add_message(
            conversation, content, message_type, private, dict(attributes), sender,
            source_id=body.get("source_id") if isinstance(body.get("source_id"), str) else None,
        )
        answer = self.message_json(conversation, message)
        if "echo_id" in body:
            answer["echo_id"] = body["echo_id"]
        if message_type == "outgoing" and not private and not conversation.can_reply:
            # The channel's send job refuses it afterwards: the answer still says "sent".
            message.status = "failed"
            message.content_attributes["external_error"] = OUTSIDE_WINDOW
            self._queue("message_updated", self.message_webhook(conversation, message))
        return json_response(answer)

    def _assign(self, call: _Call, request: web.Request) -> web.Response:
        body, conversation = call.body, call.conversation
        if "assignee_id" not in body:
            return json_response(None)  # a team assignment (not faked) or nothing: Chatwoot answers null
        assignee_id = _int_or_none(str(body["assignee_id"]))
        user = self.users.get(assignee_id) if assignee_id is not None else None
        if user is not None and conversation.account.id not in user.accounts:
            user = None
        self._set_assignee(conversation, user)
        return json_response(user.agent_json(conversation.account.id) if user else None)

    def _labels_index(self, call: _Call, request: web.Request) -> web.Response:
        return json_response({"payload": list(call.conversation.labels)})

    def _labels_create(self, call: _Call, request: web.Request) -> web.Response:
        posted = call.body.get("labels")
        titles = [t for t in posted if isinstance(t, str)] if isinstance(posted, list) else []
        kept = sorted({t for t in titles if t in call.account.labels})
        conversation = call.conversation
        if kept != sorted(conversation.labels):
            previous = list(conversation.labels)
            conversation.labels = kept
            self._queue_updated(conversation, {"label_list": (previous, kept)})
        return json_response({"payload": list(conversation.labels)})

    def _toggle_status(self, call: _Call, request: web.Request) -> web.Response:
        conversation, status = call.conversation, call.body.get("status")
        if status in (None, ""):
            status = "resolved" if conversation.status == "open" else "open"
        if status not in STATUSES:
            return internal_error()  # ArgumentError: 'x' is not a valid status
        self._set_status(conversation, str(status))
        return json_response({"meta": {}, "payload": {
            "success": True, "conversation_id": conversation.id,
            "current_status": conversation.status, "snoozed_until": None,
        }})

    def _toggle_priority(self, call: _Call, request: web.Request) -> web.Response:
        conversation, priority = call.conversation, call.body.get("priority")
        if priority == "":
            priority = None
        if priority is not None and priority not in PRIORITIES:
            return internal_error()  # ArgumentError: 'x' is not a valid priority
        if priority != conversation.priority:
            previous = conversation.priority
            conversation.priority = priority
            self._queue_updated(conversation, {"priority": (previous, priority)})
        return web.Response(status=200)

    def _custom_attributes(self, call: _Call, request: web.Request) -> web.Response:
        posted = call.body.get("custom_attributes")
        attributes = dict(posted) if isinstance(posted, dict) else {}
        conversation = call.conversation
        if attributes != conversation.custom_attributes:
            previous = dict(conversation.custom_attributes)
            conversation.custom_attributes = attributes
            self._queue_updated(conversation, {"custom_attributes": (previous, attributes)})
        return json_response({"custom_attributes": dict(conversation.custom_attributes)})

    # -- state changes -------------------------------------------------------------------

    def _add_message(
        self, conversation: Conversation, content: str, message_type: str, private: bool,
        attributes: dict[str, Any], sender: User | Contact | Bot | None, source_id: str | None = None,
    ) -> Message:
        self._next_message += 1
        now = self.clock()
        message = Message(self._next_message, content, message_type, private, now, attributes, sender,
                          source_id=source_id)
        conversation.messages.append(message)
        conversation.last_activity_at = now
        self._queue("message_created", self.message_webhook(conversation, message))
        return message

    def _set_assignee(self, conversation: Conversation, user: User | None) -> None:
        previous = conversation.assignee.id if conversation.assignee else None
        current = user.id if user else None
        conversation.assignee = user
        if previous != current:
            self._queue_updated(conversation, {"assignee_id": (previous, current)})

    def _set_status(self, conversation: Conversation, status: str) -> None:
        previous = conversation.status
        conversation.status = status
        if previous != status:
            changed = {"status": (previous, status)}
            self._queue("conversation_status_changed", self.conversation_webhook(conversation, changed))
            self._queue_updated(conversation, changed)

    def _queue_updated(self, conversation: Conversation, changed: dict[str, tuple[Any, Any]]) -> None:
        self._queue("conversation_updated", self.conversation_webhook(conversation, changed))

    def _queue(self, event: str, payload: dict[str, Any]) -> None:
        self._pending.append({**payload, "event": event})

    # -- the desk's own side -------------------------------------------------------------

    async def customer_writes(
        self, account_id: int, conversation_id: int, text: str, source_id: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> Message:
        """The customer writes (an incoming message); a resolved conversation reopens."""
        conversation = self.conversation(account_id, conversation_id)
        if conversation.status == "resolved":
            self._set_status(conversation, "open")
        message = self._add_message(conversation, text, "incoming", False, {}, conversation.contact, source_id)
        await self.deliver_pending(session)
        return message

    async def agent_replies(
        self, account_id: int, conversation_id: int, agent_id: int, text: str, *, private: bool = False,
        session: aiohttp.ClientSession | None = None,
    ) -> Message:
        """Agent ``agent_id`` replies in the desk: an outgoing ``message_created`` (sender a user)."""
        conversation = self.conversation(account_id, conversation_id)
        agent = self.users[agent_id]
        if not _can_see(agent, conversation):
            raise PermissionError(f"agent {agent_id} cannot see conversation {conversation_id}")
        message = self._add_message(conversation, text, "outgoing", private, {}, agent)
        await self.deliver_pending(session)
        return message

    async def agent_assigns(
        self, account_id: int, conversation_id: int, agent_id: int | None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        """The conversation is assigned to ``agent_id`` (None: unassigned): ``conversation_updated``."""
        conversation = self.conversation(account_id, conversation_id)
        self._set_assignee(conversation, self.users[agent_id] if agent_id is not None else None)
        await self.deliver_pending(session)

    async def agent_sets_status(
        self, account_id: int, conversation_id: int, status: str = "resolved",
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        """An agent resolves (or opens, pends, snoozes) the conversation."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {STATUSES}")
        self._set_status(self.conversation(account_id, conversation_id), status)
        await self.deliver_pending(session)

    # -- webhooks ------------------------------------------------------------------------

    def add_webhook(self, url: str, secret: str, subscriptions: tuple[str, ...] = WEBHOOK_EVENTS) -> None:
        """An account webhook: ``url`` receives the ``subscriptions`` events signed with ``secret``."""
        unknown = set(subscriptions) - set(WEBHOOK_EVENTS)
        if unknown:
            raise ValueError(f"unknown webhook events: {sorted(unknown)}")
        self._webhooks.append(_Webhook(url, secret.encode(), frozenset(subscriptions)))

    def use_webhook(self, url: str, secret: str) -> None:
        """Subscribe ``url`` to every event signed with ``secret``, replacing an earlier
        webhook of the same ``url`` (the demo's control route, :data:`CONTROL_ROUTE`)."""
        self._webhooks = [hook for hook in self._webhooks if hook.url != url]
        self.add_webhook(url, secret)
        self._live = True

    def _deliver_soon(self) -> None:
        """Live only: send what the API call queued, after its answer, in order."""
        if self._live and self._pending:
            task = asyncio.get_running_loop().create_task(self._deliver_in_order())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver_in_order(self) -> None:
        async with self._delivering:
            await self.deliver_pending()

    @property
    def pending_events(self) -> list[dict[str, Any]]:
        """The webhook payloads queued by API calls and not yet delivered."""
        return list(self._pending)

    async def deliver_pending(self, session: aiohttp.ClientSession | None = None) -> list[WebhookDelivery]:
        """Send every queued event to every webhook subscribed to it, in order."""
        pending, self._pending = self._pending, []
        sent: list[WebhookDelivery] = []
        for payload in pending:
            for hook in self._webhooks:
                if payload["event"] in hook.subscriptions:
                    delivery = WebhookDelivery(str(uuid.uuid4()), hook.url, payload["event"], orjson.dumps(payload))
                    self.webhook_deliveries.append(delivery)
                    await self._send(hook, delivery, session)
                    sent.append(delivery)
        return sent

    async def redeliver(
        self, delivery: WebhookDelivery, session: aiohttp.ClientSession | None = None
    ) -> int | None:
        """Send ``delivery`` again (Chatwoot's retry): same body and delivery id, a new timestamp."""
        hook = next(h for h in self._webhooks if h.url == delivery.url)
        return await self._send(hook, delivery, session)

    def signed_headers(self, secret: str | bytes, body: bytes, delivery_id: str) -> dict[str, str]:
        """The headers Chatwoot signs a webhook body with, at the fake's clock."""
        key = secret.encode() if isinstance(secret, str) else secret
        timestamp = str(int(self.clock()))
        digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "X-Chatwoot-Signature": f"sha256={digest}",
            "X-Chatwoot-Timestamp": timestamp,
            "X-Chatwoot-Delivery": delivery_id,
        }

    async def _send(
        self, hook: _Webhook, delivery: WebhookDelivery, session: aiohttp.ClientSession | None
    ) -> int | None:
        headers = self.signed_headers(hook.secret, delivery.body, delivery.delivery_id)
        own = session is None
        client = session or aiohttp.ClientSession()
        try:
            async with client.post(
                hook.url, data=delivery.body, headers=headers, timeout=aiohttp.ClientTimeout(total=5)
            ) as answer:
                text: bytes | None = await answer.read()
                status: int | None = answer.status
        except (TimeoutError, aiohttp.ClientError):
            status, text = None, None
        finally:
            if own:
                await client.close()
        delivery.statuses.append(status)
        delivery.answers.append(text)
        if self._live:
            log.info("FakeChatwoot webhook %s -> %s %s", delivery.event, status if status is not None else "no answer",
                     (text or b"").decode("utf-8", "replace")[:2000])
        return status

    # -- wire shapes ---------------------------------------------------------------------

    def conversation_json(self, conversation: Conversation) -> dict[str, Any]:
        """The conversation as ``GET .../conversations/{id}`` answers it."""
        last = conversation.messages[-1] if conversation.messages else None
        meta: dict[str, Any] = {
            "sender": conversation.contact.push(),
            "channel": conversation.inbox.channel,
            "hmac_verified": False,
        }
        if conversation.assignee is not None:
            meta["assignee"] = conversation.assignee.agent_json(conversation.account.id)
            meta["assignee_type"] = "User"
        return {
            "meta": meta,
            "id": conversation.id,
            "messages": [self.message_json(conversation, last)] if last else [],
            "account_id": conversation.account.id,
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{conversation.account.id}/{conversation.id}")),
            "additional_attributes": {},
            "agent_last_seen_at": 0,
            "assignee_last_seen_at": 0,
            "can_reply": conversation.can_reply,
            "contact_last_seen_at": 0,
            "custom_attributes": dict(conversation.custom_attributes),
            "inbox_id": conversation.inbox.id,
            "labels": list(conversation.labels),
            "muted": False,
            "snoozed_until": None,
            "status": conversation.status,
            "created_at": int(conversation.created_at),
            "timestamp": int(conversation.last_activity_at),
            "first_reply_created_at": 0,
            "unread_count": 0,
            "last_activity_at": int(conversation.last_activity_at),
            "priority": conversation.priority,
            "waiting_since": 0,
            "sla_policy_id": None,
        }

    def message_json(self, conversation: Conversation, message: Message) -> dict[str, Any]:
        """A message as the API answers it (``message_type`` as its number)."""
        data: dict[str, Any] = {
            "id": message.id,
            "content": message.content,
            "inbox_id": conversation.inbox.id,
            "conversation_id": conversation.id,
            "message_type": MESSAGE_TYPES[message.message_type],
            "content_type": message.content_type,
            "status": message.status,
            "content_attributes": dict(message.content_attributes),
            "created_at": int(message.created_at),
            "private": message.private,
            "source_id": message.source_id,
        }
        if message.sender is not None:
            data["sender"] = _push(message.sender)
        return data

    def message_webhook(self, conversation: Conversation, message: Message) -> dict[str, Any]:
        """``message_created`` / ``message_updated`` body (without ``event``): ``Message#webhook_data``."""
        sender = message.sender
        return {
            "account": {"id": conversation.account.id, "name": conversation.account.name},
            "additional_attributes": {},
            "content_attributes": dict(message.content_attributes),
            "content_type": message.content_type,
            "content": message.content,
            "conversation": self._conversation_push(conversation),
            "created_at": _iso(message.created_at),
            "id": message.id,
            "inbox": {"id": conversation.inbox.id, "name": conversation.inbox.name},
            "message_type": message.message_type,
            "private": message.private,
            "sender": _webhook_sender(sender) if sender is not None else None,
            "source_id": message.source_id,
        }

    def conversation_webhook(
        self, conversation: Conversation, changed: dict[str, tuple[Any, Any]] | None = None
    ) -> dict[str, Any]:
        """``conversation_*`` body (without ``event``): the conversation and what changed."""
        data = self._conversation_push(conversation)
        if changed is not None:
            data["changed_attributes"] = [
                {key: {"previous_value": old, "current_value": new}} for key, (old, new) in changed.items()
            ]
        return data

    def _conversation_push(self, conversation: Conversation) -> dict[str, Any]:
        public = [m for m in conversation.messages if not m.private and m.message_type != "activity"]
        return {
            "additional_attributes": {},
            "can_reply": conversation.can_reply,
            "channel": conversation.inbox.channel,
            "contact_inbox": {
                "contact_id": conversation.contact.id, "inbox_id": conversation.inbox.id,
                "source_id": conversation.source_id, "hmac_verified": False,
            },
            "id": conversation.id,
            "inbox_id": conversation.inbox.id,
            "messages": [self._message_push(conversation, public[-1])] if public else [],
            "labels": list(conversation.labels),
            "meta": {
                "sender": conversation.contact.push(),
                "assignee": conversation.assignee.push() if conversation.assignee else None,
                "assignee_type": "User" if conversation.assignee else None,
                "team": None,
                "hmac_verified": False,
            },
            "status": conversation.status,
            "custom_attributes": dict(conversation.custom_attributes),
            "snoozed_until": None,
            "unread_count": 0,
            "first_reply_created_at": None,
            "priority": conversation.priority,
            "waiting_since": 0,
            "agent_last_seen_at": 0,
            "contact_last_seen_at": 0,
            "last_activity_at": int(conversation.last_activity_at),
            "timestamp": int(conversation.last_activity_at),
            "created_at": int(conversation.created_at),
            "updated_at": float(conversation.last_activity_at),
        }

    def _message_push(self, conversation: Conversation, message: Message) -> dict[str, Any]:
        data = self.message_json(conversation, message)
        data["account_id"] = conversation.account.id
        data["sender_type"] = _sender_type(message.sender)
        data["sender_id"] = message.sender.id if message.sender is not None else None
        return data


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _can_see(caller: User | Bot, conversation: Conversation) -> bool:
    """Chatwoot's ``ConversationPolicy#show?``: administrators, inbox members, the assignee."""
    if isinstance(caller, Bot):
        return (conversation.account.id, conversation.inbox.id) in caller.inboxes
    if conversation.account.id not in caller.accounts:
        return False
    return (
        caller.role == "administrator"
        or caller.id in conversation.inbox.members
        or (conversation.assignee is not None and conversation.assignee.id == caller.id)
    )


def _sender_type(sender: User | Contact | Bot | None) -> str | None:
    if isinstance(sender, User):
        return "User"
    if isinstance(sender, Bot):
        return "AgentBot"
    if isinstance(sender, Contact):
        return "Contact"
    return None


def _push(sender: User | Contact | Bot) -> dict[str, Any]:
    if isinstance(sender, Bot):
        return {"id": sender.id, "name": sender.name, "avatar_url": "", "type": "agent_bot"}
    return sender.push()


def _webhook_sender(sender: User | Contact | Bot) -> dict[str, Any]:
    if isinstance(sender, User):
        return {"id": sender.id, "name": sender.name, "email": sender.email or f"user{sender.id}@example.com",
                "type": "user"}
    if isinstance(sender, Bot):
        return {"id": sender.id, "name": sender.name, "avatar_url": "", "type": "agent_bot"}
    return {**sender.push(), "account": None}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
