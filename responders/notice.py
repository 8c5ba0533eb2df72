"""What a staff notification says, independent of where it is sent.

A :class:`Notice` is one message for one staff member through one ``notify`` URI. The
route it carries is one of :data:`NOTICE_KINDS` (:func:`notice_kind`): a routed or
paged customer message, an escalation step, a follow-through reminder, the handover
digest at an opening, an acknowledgment that could not be delivered, or a route before
a platform's reply window closes. Every notifier renders the same facts: what
happened (the title), who wrote, on which channel and account (by its human name:
"Facebook Messenger", "WhatsApp"), what they wrote, how long they have waited, the
team's mode, when the platform's reply window closes, why this person gets it, and the
links the caller supplies (the claim link; one per conversation of a digest).
Rendering is pure: the current instant is part of the notice, never read here.

The customer's name and words are untrusted: the name is kept to one line
(:func:`one_line`), the HTML part is autoescaped, and each notifier shows them as
plain text (Slack escapes them, Teams puts them in text runs, Telegram sends plain
text without ``parse_mode``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from jinja2 import Environment

from records.wire import Notify, RouteRequest

MESSAGE_PREVIEW_CHARS = 1500
ITEM_PREVIEW_CHARS = 100
"""How much of each customer's words a handover digest line quotes."""
DIGEST_ITEMS_SHOWN = 10
"""How many conversations a handover digest lists (the first: urgent, then longest
waiting); the rest are counted. Keeps it within Slack's 3,000-character section and
Telegram's 4,096-character message."""

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

NoticeKind = Literal["route", "page", "escalation", "reminder", "handover", "ack_failed", "window"]
NOTICE_KINDS: tuple[NoticeKind, ...] = ("route", "page", "escalation", "reminder", "handover", "ack_failed", "window")

CHANNEL_NAMES: Mapping[tuple[str, str | None], str] = MappingProxyType({
    ("facebook", "dm"): "Facebook Messenger",
    ("facebook", "comment"): "Facebook comment",
    ("facebook", None): "Facebook",
    ("instagram", "dm"): "Instagram Direct",
    ("instagram", "comment"): "Instagram comment",
    ("instagram", None): "Instagram",
    ("whatsapp", None): "WhatsApp",
    ("x", "dm"): "X direct message",
    ("x", "mention"): "X mention",
    ("x", None): "X",
    ("telegram", "mention"): "Telegram group",
    ("telegram", None): "Telegram",
    ("generic", None): "Generic webhook",
})
"""The channel as people call it, by (channel, kind); ``None``: any other or unknown kind."""

_HTML = Environment(autoescape=True, keep_trailing_newline=False).from_string(
    "<html><body><h3>{{ title }}</h3>"
    "<blockquote>{% for line in message.splitlines() %}{{ line }}<br>{% endfor %}</blockquote>"
    "<table>{% for label, value in facts %}"
    "<tr><th align='left'>{{ label }}</th><td>{{ value }}</td></tr>"
    "{% endfor %}</table>"
    "{% for label, url in links %}<p><a href=\"{{ url }}\">{{ label }}</a></p>{% endfor %}"
    "</body></html>"
)
"""The e-mail HTML part: autoescaped, so no value (the customer's name and words, the
reasons) can add markup."""


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and other control characters become spaces and
    bidirectional overrides are dropped (a name cannot add a header line or reverse text)."""
    kept = (
        " " if unicodedata.category(ch) == "Cc" else ch for ch in text if ch not in BIDI_CONTROLS
    )
    return " ".join("".join(kept).split())


def waited(since: datetime, now: datetime) -> str:
    """A short human duration such as ``2 h 05 min``, ``12 min`` or ``3 d 4 h``."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


def local_time(value: str | None) -> str | None:
    """An ISO 8601 instant as people read it, in the offset it carries: ``Tue 24 Nov 21:09``.

    The routes write their instants in the team's zone, so this is the team's local
    time. A value that is not an instant is returned as is; None stays None.
    """
    if not value:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return value
    return instant.strftime("%a %d %b %H:%M")


def channel_name(channel: str, kind: str | None = None) -> str:
    """The channel as people call it (:data:`CHANNEL_NAMES`); an unknown one as written."""
    return CHANNEL_NAMES.get((channel, kind)) or CHANNEL_NAMES.get((channel, None)) or channel


def notice_kind(route: RouteRequest) -> NoticeKind:
    """What a route is, read from the route its producer wrote (:data:`NOTICE_KINDS`).

    An acknowledgment that failed is ``escalation:<ack id>`` with the ``ack_id`` in
    ``extra``; the promise rules mark theirs with an ``extra`` entry of their name
    (``escalation``, ``reminder``, ``handover``, ``window``); the triage's own are
    ``page`` or ``route`` by their action.
    """
    extra = route.extra
    if "ack_id" in extra:
        return "ack_failed"
    for kind in ("handover", "escalation", "reminder", "window"):
        if kind in extra:
            return kind  # type: ignore[return-value]
    return "page" if route.action == "page" else "route"


def _preview(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


_TITLES: Mapping[str, str] = MappingProxyType({
    "route": "New message",
    "page": "URGENT",
    "escalation": "Not claimed",
    "ack_failed": "Acknowledgment failed",
    "window": "Reply window closing",
})


@dataclass(frozen=True, slots=True)
class Notice:
    """One route for one staff member through one ``notify`` URI.

    ``claim_url`` claims the route's conversation; ``links`` holds one claim link per
    conversation of a handover digest (by conversation), none when no link signer is
    configured.
    """

    route: RouteRequest
    member: Notify
    uri: str
    now: datetime
    claim_url: str | None = None
    links: Mapping[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        """The URI scheme that selects the notifier (``slack``, ``mailto``, …)."""
        return self.uri.split(":", 1)[0].lower()

    @property
    def address(self) -> str:
        """The URI without its scheme: a webhook URL, an e-mail address or a chat id."""
        return self.uri.split(":", 1)[1] if ":" in self.uri else ""

    @property
    def kind(self) -> NoticeKind:
        """What happened (:func:`notice_kind`)."""
        return notice_kind(self.route)

    @property
    def author(self) -> str:
        """The customer's name on one line (:func:`one_line`), or ``a customer``."""
        return one_line(self.route.author_name or "") or "a customer"

    @property
    def channel_name(self) -> str:
        """The customer's channel as people call it (``Facebook Messenger``)."""
        return channel_name(self.route.channel, self.route.extra.get("kind"))

    @property
    def title(self) -> str:
        """One line that says what happened; works as a push notification or an e-mail subject."""
        route = self.route
        kind = self.kind
        if kind == "handover":
            count = len(route.extra.get("handover", ()))
            noun = "conversation" if count == 1 else "conversations"
            return f"[Handover] {count} {noun} waiting for {route.team}"
        if kind == "reminder":
            reminder = route.extra.get("reminder", {})
            label = "Reply overdue" if reminder.get("kind") == "reply_by" else "Claimed, not answered"
        else:
            label = _TITLES[kind]
        return f"[{label}] {self.channel_name} message from {self.author} ({route.team})"

    def _wait(self, since: str | None) -> str:
        try:
            return waited(datetime.fromisoformat(since or ""), self.now)
        except ValueError:
            return "unknown"

    @property
    def waiting(self) -> str:
        """How long the customer has waited: from ``extra["waiting_since"]``, else the route's ``at``."""
        return self._wait(self.route.extra.get("waiting_since") or self.route.at)

    def facts(self) -> list[tuple[str, str]]:
        """The labelled facts every notifier shows, in order."""
        route = self.route
        kind = self.kind
        if kind == "handover":
            facts = [("Team", route.team), ("Opened", local_time(route.at) or route.at)]
            if route.reason:
                facts.append(("Why you", route.reason))
            return facts
        channel = f"{self.channel_name} ({route.account})" if route.account else self.channel_name
        facts = [("From", self.author), ("Channel", channel), ("Waiting", self.waiting)]
        if route.mode:
            facts.append(("Mode", route.mode))
        facts.append(("Reply window closes", local_time(route.window_closes) or "no platform window"))
        if route.next_open:
            facts.append(("Team opens", local_time(route.next_open) or route.next_open))
        if kind == "ack_failed":
            ack_text = route.extra.get("ack_text")
            if ack_text:
                facts.append(("Not delivered", one_line(ack_text)))
            if route.reason:
                facts.append(("What happened", route.reason))
        elif route.reason:
            facts.append(("Why you", route.reason))
        return facts

    @property
    def message(self) -> str:
        """The customer's words (cut at :data:`MESSAGE_PREVIEW_CHARS`), or a digest's lines."""
        if self.kind == "handover":
            return "\n".join(self._digest_lines())
        return _preview(self.route.text, MESSAGE_PREVIEW_CHARS) or "(the message has no text)"

    def _digest_items(self) -> list[dict[str, Any]]:
        return list(self.route.extra.get("handover", ()))[:DIGEST_ITEMS_SHOWN]

    def _digest_lines(self) -> list[str]:
        lines: list[str] = []
        for number, item in enumerate(self._digest_items(), start=1):
            parts = [channel_name(item.get("channel", ""), item.get("kind"))]
            if item.get("urgent"):
                parts.insert(0, "URGENT")
            parts.append(one_line(item.get("author_name") or "") or "a customer")
            parts.append(f"waiting {self._wait(item.get('waiting_since'))}")
            reply_by = local_time(item.get("reply_by"))
            parts.append(f"promised a reply by {reply_by}" if reply_by else "no reply time promised")
            lines.append(f"{number}. " + ", ".join(parts))
            words = _preview(one_line(item.get("text") or ""), ITEM_PREVIEW_CHARS)
            if words:
                lines.append(f"   “{words}”")
            link = self.links.get(item.get("conversation", ""))
            if link:
                lines.append(f"   Claim it: {link}")
        more = len(self.route.extra.get("handover", ())) - DIGEST_ITEMS_SHOWN
        if more > 0:
            lines.append(f"… and {more} more in the team's inbox")
        return lines

    def links_shown(self) -> list[tuple[str, str]]:
        """The links to press, ``(label, url)``: the claim link, or one per digest item that has one."""
        if self.kind == "handover":
            items = self._digest_items()
            return [
                (f"Claim {number}", self.links[item["conversation"]])
                for number, item in enumerate(items, start=1)
                if item.get("conversation") in self.links
            ]
        return [("Claim it", self.claim_url)] if self.claim_url else []

    def plain_text(self) -> str:
        """The notice as plain text (e-mail text part, Telegram)."""
        lines = [self.title, "", self.message, ""]
        lines += [f"{label}: {value}" for label, value in self.facts()]
        if self.claim_url and self.kind != "handover":
            lines += ["", f"Claim it: {self.claim_url}"]
        return "\n".join(lines)

    def html(self) -> str:
        """The notice as a small HTML document (e-mail HTML part); every value autoescaped."""
        return _HTML.render(
            title=self.title, message=self.message, facts=self.facts(), links=self.links_shown()
        )

    def summary(self) -> dict[str, object]:
        """The notice as plain JSON data (generic webhooks); ``text_plain`` is :meth:`plain_text`."""
        route = self.route
        summary: dict[str, Any] = {
            "route_id": route.route_id,
            "event_id": route.event_id,
            "kind": self.kind,
            "action": route.action,
            "team": route.team,
            "member": self.member.member,
            "title": self.title,
            "channel": route.channel,
            "channel_name": self.channel_name,
            "account": route.account,
            "conversation": route.conversation,
            "author": route.author_name,
            "text": route.text,
            "at": route.at,
            "waited": None if self.kind == "handover" else self.waiting,
            "mode": route.mode,
            "window_closes": route.window_closes,
            "next_open": route.next_open,
            "reason": route.reason,
            "claim_url": self.claim_url,
            "text_plain": self.plain_text(),
        }
        if self.kind == "handover":
            summary["conversations"] = [
                {**item, "claim_url": self.links.get(item.get("conversation", ""))}
                for item in route.extra.get("handover", ())
            ]
        return summary
