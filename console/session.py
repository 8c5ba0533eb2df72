"""Sign-in with an operations token, the session cookie and CSRF tokens (docs/console.md "Access").

The console signs in with a token of ``OFFHOURS_OPS__TOKENS``; its identity and scope
are the operations API's (:class:`edge.ops_config.Principal`). The session cookie holds
no token: it is ``<payload>.<mac>``, the payload the identity, an expiry and a short
fingerprint of the token, the MAC an HMAC-SHA256 under a key derived from the link
secret (``OFFHOURS_OPS__LINK_SECRET``, the same on every process), so any replica
accepts it and a token that is removed or changed ends its sessions. The cookie is
``HttpOnly``, ``SameSite=Strict``, ``Path=/console`` (``Secure`` behind HTTPS).

Every form that changes something carries a CSRF token, an HMAC of the session cookie
(:meth:`Sessions.csrf`), checked with :meth:`Sessions.csrf_ok` together with the
``Origin`` header when the browser sends one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from edge.ops_config import SCOPES, Principal

COOKIE = "offhours_console"
DEFAULT_TTL = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in operator: the token's identity and scope, and the bearer token itself (server side only)."""

    identity: str
    scope: str
    token: str
    expires: int

    def may(self, needed: str) -> bool:
        """Whether the scope includes ``needed`` (read < operate < admin)."""
        return SCOPES.index(self.scope) >= SCOPES.index(needed)  # type: ignore[arg-type]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


class Sessions:
    """Signs and reads session cookies against the configured tokens (token -> :class:`Principal`)."""

    def __init__(self, tokens: Mapping[str, Principal], secret: str, clock: Callable[[], datetime],
                 ttl: timedelta = DEFAULT_TTL) -> None:
        self._tokens = dict(tokens)
        self._by_identity = {who.identity: (token, who) for token, who in self._tokens.items()}
        self._key = hmac.new(secret.encode("utf-8"), b"offhours console session", hashlib.sha256).digest()
        self._clock = clock
        self.ttl = ttl

    def principal(self, presented: str) -> tuple[str, Principal] | None:
        """The token and who it stands for, compared with every token in constant time; None when unknown."""
        candidate = presented.strip().encode("utf-8")
        found = None
        for token, who in self._tokens.items():
            if hmac.compare_digest(candidate, token.encode("utf-8")):
                found = (token, who)
        return found

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def cookie(self, token: str, who: Principal) -> str:
        """A new session cookie value for the token's identity."""
        expires = int((self._clock() + self.ttl).timestamp())
        payload = _b64(orjson.dumps({"i": who.identity, "e": expires, "f": _fingerprint(token)}))
        return f"{payload}.{self._mac(payload)}"

    def read(self, value: str | None) -> Session | None:
        """The session of a cookie value, or None (unsigned, expired, or its token gone or changed)."""
        if not value or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._mac(payload).encode("ascii")):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            identity, expires, fingerprint = data["i"], int(data["e"]), data["f"]
        except (ValueError, KeyError, TypeError):
            return None
        if expires <= self._clock().timestamp():
            return None
        known = self._by_identity.get(identity)
        if known is None or not hmac.compare_digest(_fingerprint(known[0]), str(fingerprint)):
            return None
        token, who = known
        return Session(identity=who.identity, scope=who.scope, token=token, expires=expires)

    def csrf(self, cookie_value: str) -> str:
        """The CSRF token of a session (an HMAC of its cookie)."""
        return self._mac("csrf:" + cookie_value)

    def csrf_ok(self, cookie_value: str, presented: str | None) -> bool:
        """Whether ``presented`` is the session's CSRF token."""
        if not presented:
            return False
        return hmac.compare_digest(presented.encode("ascii", "replace"), self.csrf(cookie_value).encode("ascii"))
