"""What a staff notification says, independent of where it is sent.

A :class:`Notice` is one routed (or paged) message for one staff member through one
``notify`` URI. Every notifier renders the same facts: who wrote, on which channel
and account, what they wrote, how long they have waited, the team's mode, when the
platform's reply window closes, and the claim link the caller supplies. Rendering is
pure: the current instant is part of the notice, never read here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from streams.records import Notify, RouteRequest

MESSAGE_PREVIEW_CHARS = 1500


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
        return self.route.author_name or "a customer"

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
        """The notice as a small HTML document (e-mail HTML part); every value escaped."""
        rows = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in self.facts()
        )
        claim = (
            f'<p><a href="{html.escape(self.claim_url, quote=True)}">Claim it</a></p>'
            if self.claim_url
            else ""
        )
        return (
            f"<html><body><h3>{html.escape(self.title)}</h3>"
            f"<blockquote>{html.escape(self.message)}</blockquote>"
            f"<table>{rows}</table>{claim}</body></html>"
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
