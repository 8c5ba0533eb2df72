"""What a staff notification says, independent of where it is sent.

A :class:`Notice` is one routed (or paged) message for one staff member through one
``notify`` URI. Every notifier renders the same facts: who wrote, on which channel
and account, what they wrote, how long they have waited, the team's mode, when the
platform's reply window closes, and the claim link the caller supplies. Rendering is
pure: the current instant is part of the notice, never read here.

The customer's name and words are untrusted: the name is kept to one line
(:func:`one_line`), the HTML part is autoescaped, and each notifier shows them as
plain text (Slack escapes them, Teams puts them in text runs, Telegram sends plain
text without ``parse_mode``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment

from streams.records import Notify, RouteRequest

MESSAGE_PREVIEW_CHARS = 1500

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_HTML = Environment(autoescape=True, keep_trailing_newline=False).from_string(
    "<html><body><h3>{{ title }}</h3>"
    "<blockquote>{{ message }}</blockquote>"
    "<table>{% for label, value in facts %}"
    "<tr><th align='left'>{{ label }}</th><td>{{ value }}</td></tr>"
    "{% endfor %}</table>"
    "{% if claim_url %}<p><a href=\"{{ claim_url }}\">Claim it</a></p>{% endif %}"
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


@dataclass(frozen=True, slots=True)
class Notice:
    """One routed message for one staff member through one ``notify`` URI."""

    route: RouteRequest
    member: Notify
    uri: str
    now: datetime
    claim_url: str | None = None

    @property
    def scheme(self) -> str:
        """The URI scheme that selects the notifier (``slack``, ``mailto``, …)."""
        return self.uri.split(":", 1)[0].lower()

    @property
    def address(self) -> str:
        """The URI without its scheme: a webhook URL, an e-mail address or a chat id."""
        return self.uri.split(":", 1)[1] if ":" in self.uri else ""

    @property
    def author(self) -> str:
        """The customer's name on one line (:func:`one_line`), or ``a customer``."""
        return one_line(self.route.author_name or "") or "a customer"

    @property
    def title(self) -> str:
        """One line that works as a push notification or an e-mail subject."""
        urgency = "URGENT" if self.route.action == "page" else "New message"
        return f"[{urgency}] {self.route.channel} message from {self.author} ({self.route.team})"

    def facts(self) -> list[tuple[str, str]]:
        """The labelled facts every notifier shows, in order."""
        route = self.route
        try:
            wait = waited(datetime.fromisoformat(route.at), self.now)
        except ValueError:
            wait = "unknown"
        facts = [
            ("From", self.author),
            ("Channel", f"{route.channel} ({route.account})"),
            ("Waiting", wait),
            ("Mode", route.mode),
            ("Reply window closes", route.window_closes or "no platform window"),
        ]
        if route.next_open:
            facts.append(("Team opens", route.next_open))
        if route.reason:
            facts.append(("Why you", route.reason))
        return facts

    @property
    def message(self) -> str:
        text = self.route.text or "(no text)"
        if len(text) > MESSAGE_PREVIEW_CHARS:
            text = text[:MESSAGE_PREVIEW_CHARS] + "…"
        return text

    def plain_text(self) -> str:
        """The notice as plain text (e-mail text part, Telegram)."""
        lines = [self.title, "", self.message, ""]
        lines += [f"{label}: {value}" for label, value in self.facts()]
        if self.claim_url:
            lines += ["", f"Claim it: {self.claim_url}"]
        return "\n".join(lines)

    def html(self) -> str:
        """The notice as a small HTML document (e-mail HTML part); every value autoescaped."""
        return _HTML.render(
            title=self.title, message=self.message, facts=self.facts(), claim_url=self.claim_url
        )

    def summary(self) -> dict[str, object]:
        """The notice as plain JSON data (generic webhooks)."""
        route = self.route
        return {
            "route_id": route.route_id,
            "event_id": route.event_id,
            "action": route.action,
            "team": route.team,
            "member": self.member.member,
            "title": self.title,
            "channel": route.channel,
            "account": route.account,
            "conversation": route.conversation,
            "author": route.author_name,
            "text": route.text,
            "at": route.at,
            "waited": dict(self.facts())["Waiting"],
            "mode": route.mode,
            "window_closes": route.window_closes,
            "next_open": route.next_open,
            "reason": route.reason,
            "claim_url": self.claim_url,
        }
