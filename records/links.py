"""Signed, expiring action links: "claim this conversation" in a notification.

A link carries ``action|conversation|member|expiry`` (expiry in POSIX seconds) and an
HMAC-SHA256 of exactly that text under the link secret; both parts are URL-safe base64
without padding, joined by a dot::

    <base64url(payload)>.<base64url(hmac)>

Whoever holds the link may perform that one action, for that conversation, as that
member, until the expiry: the signature is the authorisation, so no bearer token is
needed. Verification compares signatures in constant time and checks the expiry
against the injected clock, never the system's.

Each link has exactly one spelling: both parts must be canonical unpadded URL-safe
base64 (decoded and encoded again, they must give back the same text), so no
``=``, no ``+`` or ``/``, no stray bits in the last character. A link is used once:
:class:`UsedLinks` remembers the signatures of used links until they expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

LinkAction = Literal["claim", "answered"]
LINK_ACTIONS: tuple[LinkAction, ...] = ("claim", "answered")
_SEPARATOR = "|"


class LinkInvalid(Exception):
    """A link that does not authorise anything; ``reason`` is ``malformed``, ``tampered`` or ``expired``."""

    def __init__(self, reason: Literal["malformed", "tampered", "expired"]) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ActionLink:
    """What a valid link authorises: ``action`` on ``conversation`` by ``member`` until ``expires``."""

    action: LinkAction
    conversation: str
    member: str
    expires: datetime
    signature: str = field(default="", compare=False)
    """The link's signature part, as presented (what :class:`UsedLinks` remembers)."""


_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """The bytes of canonical unpadded URL-safe base64 ``text``; ``ValueError`` for any other spelling."""
    if not _URL_SAFE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded URL-safe base64")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise ValueError("not the canonical spelling")  # stray bits in the last character
    return raw


class LinkSigner:
    """Makes and verifies action links with one secret, one lifetime and one clock.

    ``clock`` returns the current aware instant; it decides both the expiry written
    into new links and whether a presented link has expired (valid while
    ``now < expiry``). ``base_url`` is the public URL of the actions endpoint
    (``https://offhours.example/api/v1/actions``); :meth:`url` appends the token.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime],
        base_url: str = "",
    ) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if not key:
            raise ValueError("the link secret is empty")
        if ttl <= timedelta(0):
            raise ValueError("the link lifetime must be positive")
        self._key = key
        self.ttl = ttl
        self._clock = clock
        self.base_url = base_url.rstrip("/")

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def token(
        self,
        action: LinkAction,
        conversation: str,
        member: str,
        *,
        expires: datetime | None = None,
    ) -> str:
        """A signed token for ``action``; it expires ``ttl`` from now unless ``expires`` says when.

        Raises ``ValueError`` for an unknown action, an empty value, or a ``|`` in the
        conversation or member (the separator of the signed text).
        """
        if action not in LINK_ACTIONS:
            raise ValueError(f"unknown link action {action!r}; use one of {', '.join(LINK_ACTIONS)}")
        for name, value in (("conversation", conversation), ("member", member)):
            if not value or _SEPARATOR in value:
                raise ValueError(f"the {name} of a link must be non-empty and without '|'")
        deadline = expires if expires is not None else self._clock() + self.ttl
        expiry = int(deadline.timestamp())
        payload = _SEPARATOR.join((action, conversation, member, str(expiry))).encode("utf-8")
        return f"{_b64encode(payload)}.{_b64encode(self._mac(payload))}"

    def url(self, action: LinkAction, conversation: str, member: str) -> str:
        """The full link to put in a notification: ``base_url/<token>``."""
        return f"{self.base_url}/{self.token(action, conversation, member)}"

    def verify(self, token: str) -> ActionLink:
        """The action a token authorises, or :class:`LinkInvalid` saying why not.

        The signature is checked (in constant time) before anything in the payload is
        trusted, and the expiry after it, so a forged link never reads as "expired".
        """
        encoded_payload, dot, encoded_mac = token.partition(".")
        if not dot or not encoded_payload or not encoded_mac:
            raise LinkInvalid("malformed")
        try:
            payload = _b64decode(encoded_payload)
            mac = _b64decode(encoded_mac)
        except (binascii.Error, ValueError):
            raise LinkInvalid("malformed") from None
        if not hmac.compare_digest(self._mac(payload), mac):
            raise LinkInvalid("tampered")
        try:
            action, conversation, member, expiry_text = payload.decode("utf-8").split(_SEPARATOR)
            expires = datetime.fromtimestamp(int(expiry_text), UTC)
        except (UnicodeDecodeError, ValueError, OverflowError, OSError):
            # Signed by us but not in our format: only a changed format could do that.
            raise LinkInvalid("malformed") from None
        if action not in LINK_ACTIONS:
            raise LinkInvalid("malformed")
        if self._clock() >= expires:
            raise LinkInvalid("expired")
        return ActionLink(action=action, conversation=conversation, member=member, expires=expires,  # type: ignore[arg-type]
                          signature=encoded_mac)


class UsedLinks:
    """The signatures of the links used in this process, each kept until its link expires.

    :meth:`use` is check-and-set in one step (no ``await`` inside), so two clicks at
    once use a link once. At most ``capacity`` signatures are kept: expired ones go
    first, then, when still full, the one that expires soonest (that link could then
    be used again; 100,000 links of a 12-hour lifetime is more than a day of pages).
    Memory is per process: another replica has its own and accepts the link once
    more; the action it records has the same deterministic ``action_id``.
    """

    def __init__(self, clock: Callable[[], datetime], *, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._clock = clock
        self._capacity = capacity
        self._used: dict[str, datetime] = {}
        self._expiries: list[tuple[datetime, str]] = []

    def __len__(self) -> int:
        return len(self._used)

    def used(self, link: ActionLink) -> bool:
        """True when ``link`` was used already."""
        return link.signature in self._used

    def use(self, link: ActionLink) -> bool:
        """Mark ``link`` used; False when it was used already (nothing changes then)."""
        self._forget_expired()
        if link.signature in self._used:
            return False
        while len(self._used) >= self._capacity and self._expiries:
            _, oldest = heapq.heappop(self._expiries)
            self._used.pop(oldest, None)
        self._used[link.signature] = link.expires
        heapq.heappush(self._expiries, (link.expires, link.signature))
        return True

    def release(self, link: ActionLink) -> None:
        """Forget ``link`` (its action could not be recorded: it may be used again)."""
        self._used.pop(link.signature, None)

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            _, signature = heapq.heappop(self._expiries)
            if self._used.get(signature) is not None and self._used[signature] <= now:
                del self._used[signature]
