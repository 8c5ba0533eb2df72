"""Chatwoot's Application API: how offhours acts in a team's care desk.

When a team answers through Chatwoot the desk owns the channels; offhours posts its
acknowledgment into the conversation (Chatwoot sends it to the customer), leaves private
notes, assigns, sets the priority, labels and the status, all through
``/api/v1/accounts/{account}/conversations/{conversation}/...`` with the
``api_access_token`` header (``OFFHOURS_RESPONDERS__CHATWOOT_TOKEN``, a user's token:
an agent bot's token may not read messages, agents or labels).

Every call of :class:`ChatwootDesk` is one attempt and says what happened as an
:data:`~responders.base.Outcome` (the delivery loop retries): ``401`` is Permanent with
an operations alert (a bad or revoked token, or a user without access to the account or
inbox); ``404`` is Permanent (no such account or conversation); ``429`` and ``5xx`` are
Retry (``Retry-After`` honoured); any other refusal is Permanent with Chatwoot's
``error`` text. The token is sent only in the header: it is never in a URL, a reason or
a log line.

Every write is idempotent:

- each message offhours posts carries ``content_attributes.offhours_id`` (Chatwoot keeps
  a text message's ``content_attributes`` as sent, returns them in the message list and
  in its ``message_created`` webhook); before posting, the conversation's messages are
  read, and one that already carries the id is the earlier attempt: Delivered, and
  nothing is posted again. A retry after a timeout, a ``5xx`` or a redelivered webhook
  therefore never posts a second message;
- an assignment, a priority or a status already in place is not written again; labels
  are read and the union posted (Chatwoot's ``POST .../labels`` **replaces** them).

Chatwoot accepts a public message even when the platform's reply window is closed
(``can_reply`` false): it answers ``200`` and its channel job then marks the message
``failed`` (``content_attributes.external_error``). So :meth:`ChatwootDesk.post_ack`
reads ``can_reply`` first and, when it is false, or when the earlier attempt's message
is found ``failed``, answers :class:`ReplyWindowClosed` (a Permanent) without posting:
the caller falls back to a private note and a route to staff. An assignment to an id
that is not a user of the account would make Chatwoot *unassign* the conversation and
answer ``null``; :meth:`ChatwootDesk.assign` therefore checks the inbox's assignable
agents first.

Chatwoot's ``conversation_updated`` webhook does not say who assigned a conversation,
and offhours reads an assignment to a staff member as their claim
(:mod:`edge.normalize.chatwoot`). So before it assigns, :meth:`ChatwootDesk.assign`
writes the agent's id in the conversation's custom attribute
:data:`ASSIGNEE_MARK` (keeping the others: Chatwoot's ``POST .../custom_attributes``
replaces them); the webhook of that assignment carries it and is not read as a claim.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

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
    fingerprint,
    get,
    platform_says,
    post,
    transient,
)
from .config import ResponderSettings

log = logging.getLogger(__name__)

PLATFORM = "chatwoot"
MARKER = "offhours_id"
"""The ``content_attributes`` key that marks a message offhours posted (its action id)."""
ASSIGNEE_MARK = "offhours_assignee"
"""The conversation custom attribute that holds the agent offhours itself assigned."""

CONTENT_MAX_CHARS = 150_000
"""The longest message content Chatwoot's model accepts."""

PRIORITIES = ("urgent", "high", "medium", "low")
STATUSES = ("open", "pending", "resolved", "snoozed")

PER_INSTALL_PER_SECOND = 5.0
PER_INSTALL_BURST = 20.0
PER_CONVERSATION_PER_SECOND = 1.0
PER_CONVERSATION_BURST = 5.0

AFTER_PAGE = 100
"""Chatwoot's ``GET .../messages?after=<id>`` answers at most this many messages."""
LATEST_PAGE = 20
"""``GET .../messages`` (or ``?before=<id>``) answers at most this many."""
MAX_PAGES = 10
"""The most message pages read looking for an earlier attempt's marker."""


@dataclass(frozen=True, slots=True)
class DeskConversation:
    """A conversation of a Chatwoot account, as an event's ``desk`` names it.

    ``conversation`` is the display id (the one in API paths and webhooks);
    ``inbox`` the inbox it belongs to (needed to check an assignee); ``after_message``
    the customer message offhours answers, when known: whatever offhours posted about it
    comes after it, so the marker is searched from there.
    """

    account: int
    conversation: int
    inbox: int | None = None
    after_message: int | None = None

    @classmethod
    def from_desk(cls, desk: Mapping[str, Any]) -> DeskConversation:
        """From an event's ``desk`` block (``kind`` ``chatwoot``); ``ValueError`` otherwise."""
        if desk.get("kind") != "chatwoot":
            raise ValueError(f"not a Chatwoot desk: {desk.get('kind')!r}")
        try:
            return cls(
                account=_positive(desk["account"]),
                conversation=_positive(desk["conversation"]),
                inbox=_positive(desk["inbox"]) if desk.get("inbox") is not None else None,
                after_message=_positive(desk["message"]) if desk.get("message") is not None else None,
            )
        except KeyError as exc:
            raise ValueError(f"desk block without {exc.args[0]!r}") from None

    def __str__(self) -> str:
        return f"account {self.account} conversation {self.conversation}"


@dataclass(frozen=True, slots=True)
class ReplyWindowClosed(Permanent):
    """Chatwoot cannot send a public reply (``can_reply`` false, or its channel refused it):
    post a private note and route the message to staff instead."""


def _positive(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"not a positive integer id: {value!r}")
    return value


def chatwoot_refusal(answer: HttpAnswer, now: float, limit: float, what: str) -> Outcome | None:
    """None for a 2xx answer; otherwise the outcome of a Chatwoot refusal of ``what``."""
    if 200 <= answer.status < 300:
        return None
    retry = transient(answer, PLATFORM, now, limit)
    if retry is not None:
        return Retry(retry.after, f"{PLATFORM}: {what}: HTTP {answer.status}")
    data = answer.json()
    message = data.get("error")
    if message is None and isinstance(data.get("errors"), list) and data["errors"]:
        message = data["errors"][0]
    if message is None:
        message = data.get("message")
    says = platform_says(message)
    if answer.status == 401:
        return Permanent(f"{PLATFORM}: {what}: HTTP 401{says}: {OPS_ALERT}", alert_operations=True)
    if answer.status == 404:
        return Permanent(f"{PLATFORM}: {what}: HTTP 404{says} (no such account or conversation)")
    return Permanent(f"{PLATFORM}: {what}: HTTP {answer.status}{says}")


class ChatwootDesk:
    """The Application API calls offhours makes, each one attempt (see the module doc)."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    # -- limits --------------------------------------------------------------------------

    def limits(self, conversation: DeskConversation) -> Sequence[Limit]:
        """One bucket for the install (Chatwoot throttles per client), one per conversation."""
        install = fingerprint(self._settings.chatwoot_url or "")
        return (
            Limit(f"chatwoot:{install}", PER_INSTALL_PER_SECOND, PER_INSTALL_BURST),
            Limit(
                f"chatwoot:{install}:{conversation.account}:{conversation.conversation}",
                PER_CONVERSATION_PER_SECOND, PER_CONVERSATION_BURST,
            ),
        )

    # -- messages ------------------------------------------------------------------------

    async def post_ack(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, text: str, offhours_id: str
    ) -> Outcome:
        """Post the acknowledgment as a public outgoing message, once.

        Delivered (the message id) when posted now or by an earlier attempt;
        :class:`ReplyWindowClosed` when Chatwoot cannot reply on the channel now
        (nothing is posted: fall back to :meth:`post_note` and a route).
        """
        return await self._post_message(session, conversation, text, offhours_id, private=False)

    async def post_note(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, text: str, offhours_id: str
    ) -> Outcome:
        """Post a private note (staff only), once; Delivered with its id."""
        return await self._post_message(session, conversation, text, offhours_id, private=True)

    async def _post_message(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, text: str,
        offhours_id: str, *, private: bool,
    ) -> Outcome:
        what = "private note" if private else "acknowledgment"
        if not text or len(text) > CONTENT_MAX_CHARS:
            return Permanent(f"{PLATFORM}: {what}: the text must be 1-{CONTENT_MAX_CHARS} characters")
        if not offhours_id:
            return Permanent(f"{PLATFORM}: {what}: no offhours id to mark the message with")
        earlier = await self.find_marked(session, conversation, offhours_id)
        if not isinstance(earlier, (dict, type(None))):
            return earlier
        if earlier is not None:
            return self._earlier_attempt(earlier, what, private)
        if not private:
            state = await self.conversation(session, conversation)
            if not isinstance(state, dict):
                return state
            if state.get("can_reply") is False:
                return ReplyWindowClosed(
                    f"{PLATFORM}: {what}: {conversation} cannot be replied to on its channel now "
                    "(can_reply false: the platform's reply window is closed)"
                )
        body = {
            "content": text,
            "message_type": "outgoing",
            "private": private,
            "content_attributes": {MARKER: offhours_id},
        }
        answer = await self._send(session, "POST", self._path(conversation, "messages"), body, what)
        if not isinstance(answer, HttpAnswer):
            return answer
        data = answer.json()
        attributes = data.get("content_attributes")
        if not (isinstance(attributes, dict) and attributes.get(MARKER) == offhours_id):
            log.warning(
                "%s: %s posted in %s but Chatwoot did not keep its %s marker: a retry could not "
                "recognise it (upgrade Chatwoot)", PLATFORM, what, conversation, MARKER,
            )
        message_id = data.get("id")
        return Delivered(str(message_id) if message_id is not None else None)

    @staticmethod
    def _earlier_attempt(message: Mapping[str, Any], what: str, private: bool) -> Outcome:
        message_id = str(message.get("id")) if message.get("id") is not None else None
        if not private and message.get("status") == "failed":
            attributes = message.get("content_attributes")
            external = attributes.get("external_error") if isinstance(attributes, dict) else None
            return ReplyWindowClosed(
                f"{PLATFORM}: {what}: an earlier attempt (message {message_id}) was not sent "
                f"by the channel{platform_says(external)}"
            )
        return Delivered(message_id)

    async def find_marked(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, offhours_id: str
    ) -> dict[str, Any] | None | Outcome:
        """The conversation's message marked ``offhours_id``, None when there is none, or the
        outcome of a failed read.

        From ``after_message`` forward (pages of up to 100) when the conversation names
        it, else backwards from the latest (pages of 20); at most :data:`MAX_PAGES` pages.
        """
        after = conversation.after_message
        before: int | None = None
        for _ in range(MAX_PAGES):
            query = f"after={after}" if after is not None else (f"before={before}" if before else "")
            path = self._path(conversation, "messages") + (f"?{query}" if query else "")
            answer = await self._send(session, "GET", path, None, "reading messages")
            if not isinstance(answer, HttpAnswer):
                return answer
            payload = answer.json().get("payload")
            if not answer.complete or not isinstance(payload, list):
                return Retry(None, f"{PLATFORM}: reading messages: unreadable answer")
            messages = [m for m in payload if isinstance(m, dict)]
            for message in messages:
                attributes = message.get("content_attributes")
                if isinstance(attributes, dict) and attributes.get(MARKER) == offhours_id:
                    return message
            ids = [m["id"] for m in messages if isinstance(m.get("id"), int)]
            if after is not None:
                if len(messages) < AFTER_PAGE or not ids:
                    return None
                after = max(ids)
            else:
                if len(messages) < LATEST_PAGE or not ids:
                    return None
                before = min(ids)
        return None

    # -- conversation state --------------------------------------------------------------

    async def conversation(
        self, session: aiohttp.ClientSession, conversation: DeskConversation
    ) -> dict[str, Any] | Outcome:
        """The conversation as Chatwoot answers ``GET``, or the outcome of a failed read."""
        answer = await self._send(session, "GET", self._path(conversation), None, "reading the conversation")
        if not isinstance(answer, HttpAnswer):
            return answer
        data = answer.json()
        if not answer.complete or data.get("id") != conversation.conversation:
            return Retry(None, f"{PLATFORM}: reading the conversation: unreadable answer")
        return data

    async def assign(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, agent_id: int,
        *, keep_claim: bool = False,
    ) -> Outcome:
        """Assign the conversation to the Chatwoot user ``agent_id`` (a coverage file's
        ``chatwoot_agent``), who must be an agent of its inbox or an administrator.

        With ``keep_claim`` (the handover at the opening) a conversation assigned to someone
        other than the agent offhours itself assigned (:data:`ASSIGNEE_MARK`) is left
        with them: a person took it, which is their claim.
        """
        state = await self.conversation(session, conversation)
        if not isinstance(state, dict):
            return state
        assignee = (state.get("meta") or {}).get("assignee")
        current = assignee.get("id") if isinstance(assignee, dict) else None
        if current == agent_id:
            return Delivered(str(agent_id))
        own = state.get("custom_attributes")
        if keep_claim and current is not None and not (isinstance(own, dict) and own.get(ASSIGNEE_MARK) == current):
            log.info("%s: %s is assigned to user %s, not by offhours: left with them", PLATFORM, conversation, current)
            return Delivered(str(current))
        inbox = conversation.inbox or state.get("inbox_id")
        agents = await self._send(
            session, "GET", f"/api/v1/accounts/{conversation.account}/assignable_agents?inbox_ids[]={inbox}",
            None, "reading the inbox's agents",
        )
        if not isinstance(agents, HttpAnswer):
            return agents
        listed = agents.json().get("payload")
        if not isinstance(listed, list):
            return Retry(None, f"{PLATFORM}: reading the inbox's agents: unreadable answer")
        if not any(isinstance(a, dict) and a.get("id") == agent_id for a in listed):
            return Permanent(
                f"{PLATFORM}: assign: user {agent_id} is not an agent of inbox {inbox} of Chatwoot "
                f"account {conversation.account} (nor an administrator): check chatwoot_agent in "
                "the coverage file; the conversation was not assigned"
            )
        attributes = state.get("custom_attributes")
        attributes = dict(attributes) if isinstance(attributes, dict) else {}
        if attributes.get(ASSIGNEE_MARK) != agent_id:
            marked = await self._send(
                session, "POST", self._path(conversation, "custom_attributes"),
                {"custom_attributes": {**attributes, ASSIGNEE_MARK: agent_id}}, "marking the assignment",
            )
            if not isinstance(marked, HttpAnswer):
                return marked
        answer = await self._send(
            session, "POST", self._path(conversation, "assignments"), {"assignee_id": agent_id}, "assign"
        )
        if not isinstance(answer, HttpAnswer):
            return answer
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            data = None
        if not (isinstance(data, dict) and data.get("id") == agent_id):
            return Permanent(
                f"{PLATFORM}: assign: Chatwoot did not assign user {agent_id} in {conversation} "
                "(it answers null for a user it does not know, and leaves the conversation unassigned)"
            )
        return Delivered(str(agent_id))

    async def set_priority(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, priority: str | None
    ) -> Outcome:
        """Set the priority (``urgent``, ``high``, ``medium``, ``low``; None or ``none`` clears it)."""
        wanted = None if priority in (None, "none") else priority
        if wanted is not None and wanted not in PRIORITIES:
            return Permanent(f"{PLATFORM}: priority {priority!r} is not one of {PRIORITIES} or none")
        state = await self.conversation(session, conversation)
        if not isinstance(state, dict):
            return state
        if state.get("priority") == wanted:
            return Delivered(None)
        answer = await self._send(
            session, "POST", self._path(conversation, "toggle_priority"), {"priority": wanted}, "priority"
        )
        return answer if not isinstance(answer, HttpAnswer) else Delivered(None)

    async def set_status(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, status: str
    ) -> Outcome:
        """Set the status (``open``, ``pending``, ``resolved``, ``snoozed``)."""
        if status not in STATUSES:
            return Permanent(f"{PLATFORM}: status {status!r} is not one of {STATUSES}")
        state = await self.conversation(session, conversation)
        if not isinstance(state, dict):
            return state
        if state.get("status") == status:
            return Delivered(None)
        answer = await self._send(
            session, "POST", self._path(conversation, "toggle_status"), {"status": status}, "status"
        )
        if not isinstance(answer, HttpAnswer):
            return answer
        current = (answer.json().get("payload") or {}).get("current_status")
        if current != status:
            return Permanent(f"{PLATFORM}: status: Chatwoot answered {current!r}, not {status!r}")
        return Delivered(None)

    async def merge_labels(
        self, session: aiohttp.ClientSession, conversation: DeskConversation, labels: Iterable[str]
    ) -> Outcome:
        """Add ``labels`` to the conversation's, keeping those it has (read, then the union posted).

        Chatwoot keeps only labels the account defines: one it dropped is Permanent with an
        operations alert naming it (create it under Settings > Labels).
        """
        wanted = sorted({label for label in labels if label})
        if not wanted:
            return Delivered(None)
        answer = await self._send(session, "GET", self._path(conversation, "labels"), None, "reading labels")
        if not isinstance(answer, HttpAnswer):
            return answer
        current = answer.json().get("payload")
        if not isinstance(current, list):
            return Retry(None, f"{PLATFORM}: reading labels: unreadable answer")
        have = {label for label in current if isinstance(label, str)}
        if have.issuperset(wanted):
            return Delivered(None)
        union = sorted(have.union(wanted))
        answer = await self._send(session, "POST", self._path(conversation, "labels"), {"labels": union}, "labels")
        if not isinstance(answer, HttpAnswer):
            return answer
        kept = answer.json().get("payload")
        missing = [label for label in wanted if not (isinstance(kept, list) and label in kept)]
        if missing:
            return Permanent(
                f"{PLATFORM}: labels {', '.join(missing)} are not defined in Chatwoot account "
                f"{conversation.account} (create them under Settings > Labels): {OPS_ALERT}",
                alert_operations=True,
            )
        return Delivered(None)

    # -- HTTP ----------------------------------------------------------------------------

    @staticmethod
    def _path(conversation: DeskConversation, *tail: str) -> str:
        return "/".join(
            [f"/api/v1/accounts/{conversation.account}/conversations/{conversation.conversation}", *tail]
        )

    async def _send(
        self, session: aiohttp.ClientSession, method: str, path: str, body: Mapping[str, Any] | None, what: str
    ) -> HttpAnswer | Outcome:
        """One request; a 2xx :class:`HttpAnswer`, or the outcome of anything else."""
        base, token = self._settings.chatwoot_url, self._settings.chatwoot_token
        if not base or token is None:
            return Permanent(
                f"{PLATFORM}: not configured (set OFFHOURS_RESPONDERS__CHATWOOT_URL and "
                "OFFHOURS_RESPONDERS__CHATWOOT_TOKEN)", alert_operations=True,
            )
        now = self._clock()
        headers = {"api_access_token": token.get_secret_value(), "Accept": "application/json"}
        if method == "POST":
            answer = await post(
                session, base + path, body=dumps(body or {}), headers=headers,
                settings=self._settings, platform=PLATFORM,
            )
        else:
            answer = await get(session, base + path, headers=headers, settings=self._settings, platform=PLATFORM)
        if not isinstance(answer, HttpAnswer):
            if isinstance(answer, Delivered):  # a 2xx POST answer too long to read
                return HttpAnswer(200, {}, b"", complete=False)
            return _named(answer, what)
        refusal = chatwoot_refusal(answer, now, self._settings.retry_after_max, what)
        return answer if refusal is None else refusal


def _named(outcome: Outcome, what: str) -> Outcome:
    """``outcome`` with ``what`` said in its reason (``chatwoot: <what>: ...``)."""
    if isinstance(outcome, Retry):
        return Retry(outcome.after, outcome.reason.replace(f"{PLATFORM}: ", f"{PLATFORM}: {what}: ", 1))
    if isinstance(outcome, Permanent):
        return Permanent(
            outcome.reason.replace(f"{PLATFORM}: ", f"{PLATFORM}: {what}: ", 1), outcome.alert_operations
        )
    return outcome
