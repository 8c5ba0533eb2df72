"""The one small interface every platform sender and staff notifier implements.

An adapter makes exactly one attempt and says what happened as an :data:`Outcome`:

- :class:`Delivered` — the platform accepted the message (its id when it gives one);
- :class:`Retry` — a transient failure (rate limit, 5xx, connection error); ``after`` is
  the wait the platform asked for in seconds, or None to let the caller back off;
- :class:`Permanent` — retrying cannot help (outside the reply window, blocked user,
  bad token); ``alert_operations`` is set when people must fix a credential or a
  permission.

Adapters never sleep, loop or retry: :mod:`responders.delivery` owns retries, backoff,
rate limits and dead letters. Adapters also declare the rate limits (:class:`Limit`)
a send counts against, so a new platform is one module plus one registry line.

Secrets (tokens, webhook URLs, which often embed a token) never appear in an outcome's
reason, in logs or in exception texts: reasons name the platform's error code and our
reading of it, never the URL or the platform's free text.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp
import orjson
from multidict import CIMultiDict

from streams.records import AckRequest

from .notice import Notice

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); injected so tests control time."""

OPS_ALERT = "token/permission: alert operations"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The platform accepted the message."""

    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure; ``after`` is the platform's requested wait in seconds, if any."""

    after: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Permanent:
    """Retrying cannot help; ``alert_operations`` asks people to fix credentials or policy."""

    reason: str
    alert_operations: bool = False


Outcome = Delivered | Retry | Permanent


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket a send counts against: ``rate`` sends per second, bursts of ``burst``."""

    key: str
    rate: float
    burst: float = 1.0


@runtime_checkable
class CustomerSender(Protocol):
    """Sends one acknowledgment to a customer on one channel."""

    def limits(self, request: AckRequest) -> Sequence[Limit]:
        """The rate limits this send counts against (per page, number, recipient, …)."""
        ...

    async def send(self, request: AckRequest, session: aiohttp.ClientSession) -> Outcome:
        """Make one attempt and say what happened; never sleeps or retries."""
        ...


@runtime_checkable
class StaffNotifier(Protocol):
    """Notifies one staff member through one ``notify`` URI of CONTRACT §1."""

    def limits(self, notice: Notice) -> Sequence[Limit]:
        """The rate limits this notification counts against."""
        ...

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        """Make one attempt and say what happened; never sleeps or retries."""
        ...


def clamp_wait(seconds: float, limit: float) -> float:
    """A requested wait bounded to ``[0, limit]``."""
    return min(max(0.0, seconds), limit)


def retry_after(value: str | None, now: float, limit: float) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (RFC 9110 §10.2.3).

    ``delay-seconds`` (ASCII digits) or an ``HTTP-date`` (relative to ``now``, epoch
    seconds); the result is clamped to ``[0, limit]``. None when the header is missing
    or unreadable: the caller then backs off on its own.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return clamp_wait(float(text), limit)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 HTTP-dates are always GMT.
        when = when.replace(tzinfo=UTC)
    return clamp_wait(when.timestamp() - now, limit)


def wait_until(epoch: str | float | None, now: float, limit: float) -> float | None:
    """The wait until an epoch-seconds reset time (X's ``x-rate-limit-reset``), clamped."""
    if epoch is None:
        return None
    try:
        reset = float(epoch)
    except (TypeError, ValueError):
        return None
    return clamp_wait(reset - now, limit)


def utc_from_epoch(now: float) -> datetime:
    """An aware UTC datetime for an epoch-seconds instant."""
    return datetime.fromtimestamp(now, UTC)


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Offhours-Signature`` value: ``sha256=<lowercase hex HMAC-SHA256(secret, body)>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def sf_string(value: str) -> str:
    """``value`` as an RFC 8941 Structured Field String (the Idempotency-Key form)."""
    printable = "".join(ch if " " <= ch <= "~" else "?" for ch in value)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fingerprint(secret_ish: str) -> str:
    """A short stable digest naming a URL or token without revealing it (for keys)."""
    return hashlib.sha256(secret_ish.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A platform's HTTP answer, read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or an empty dict when it is not one."""
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    def text(self, limit: int = 80) -> str:
        """The body as short plain text (Slack's error words), safe to put in a reason."""
        text = self.body.decode("utf-8", "replace").strip()[:limit]
        return "".join(ch for ch in text if ch.isalnum() or ch in "_-. ") or "(empty)"


async def post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    platform: str,
) -> HttpAnswer | Retry:
    """POST ``body`` and read the answer; a connection error or timeout is a Retry.

    The reason names only ``platform`` and the error class: the URL may hold a token.
    """
    try:
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            return HttpAnswer(response.status, CIMultiDict(response.headers), await response.read())
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Retry(None, f"{platform}: connection failed ({type(exc).__name__})")


def transient(answer: HttpAnswer, platform: str, now: float, limit: float) -> Retry | None:
    """Retry for HTTP 429 and any 5xx (honouring ``Retry-After``), else None."""
    if answer.status == 429 or answer.status >= 500:
        wait = retry_after(answer.headers.get("Retry-After"), now, limit)
        return Retry(wait, f"{platform}: HTTP {answer.status}")
    return None


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the body every adapter sends."""
    return orjson.dumps(data)
