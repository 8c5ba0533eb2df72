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

Every HTTP request goes through :func:`post`, which applies the egress policy
(:mod:`responders.egress`: https to public addresses, or what ``egress_allow`` lists),
follows no redirect and reads at most :data:`MAX_ANSWER_BYTES` of an answer.

Secrets (tokens, webhook URLs, which often embed a token) never appear in an outcome's
reason, in logs or in exception texts: reasons name the platform's error code, our
reading of it and the platform's own description of the error (:func:`platform_says`:
one line, at most :data:`DESCRIPTION_CHARS`, anything shaped like a token or a URL
cut out), never the URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from records.wire import AckRequest

from .config import ResponderSettings
from .egress import Egress, EgressRefused, Route, egress_for
from .notice import Notice

log = logging.getLogger(__name__)

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
    """Notifies one staff member through one of their ``notify`` URIs (README: The coverage file)."""

    def limits(self, notice: Notice) -> Sequence[Limit]:
        """The rate limits this notification counts against."""
        ...

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        """Make one attempt and say what happened; never sleeps or retries."""
        ...


DESCRIPTION_CHARS = 160
"""The most of a platform's error description a reason quotes."""

_SECRET_SHAPED = re.compile(r"[a-z][a-z0-9+.-]*://\S+|[A-Za-z0-9_:\-]{24,}", re.IGNORECASE)


def platform_says(description: object, limit: int = DESCRIPTION_CHARS) -> str:
    """A platform's error description fit for a reason: ``: Bad Request: chat not found``.

    On one line (control characters become spaces), a URL or a token-shaped word
    (24 or more letters, digits, ``_``, ``-``, ``:``) replaced by ``…``, cut at
    ``limit`` characters; empty when there is no text description.
    """
    if not isinstance(description, str):
        return ""
    text = " ".join("".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in description).split())
    text = _SECRET_SHAPED.sub("…", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f": {text}" if text else ""


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


MAX_ANSWER_BYTES = 1024 * 1024
"""The most of a platform's answer body that is read (1 MiB); a longer one is not read."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A platform's HTTP answer: its status, headers and body (at most :data:`MAX_ANSWER_BYTES`).

    ``complete`` is False when the body was longer than that and was not read: ``body``
    is then empty, and the answer means what its status means.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool = True

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


async def read_capped(message: aiohttp.ClientResponse | web.BaseRequest, limit: int) -> bytes | None:
    """The body of an answer (or of a request the service serves), or None when it is
    longer than ``limit`` bytes: then it is not read on."""
    if message.content_length is not None and message.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in message.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    settings: ResponderSettings,
    platform: str,
    egress: Egress | None = None,
) -> HttpAnswer | Outcome:
    """POST ``body`` to ``url`` within the egress policy and read the answer.

    The one way the responders make an HTTP request (see :mod:`responders.egress`):

    - the destination must pass the policy (``egress``; by default the one of
      ``settings.egress_allow``): a refused one is Permanent with an operations alert,
      naming the host and why, never the URL;
    - the connection goes to the addresses the policy checked, first one first (the next
      only when connecting fails), the host name kept for ``Host`` and TLS;
    - redirects are not followed: a 3xx answer is Permanent with an operations alert;
    - at most :data:`MAX_ANSWER_BYTES` of the answer are read: a longer 2xx answer is
      Delivered without a message id, any other an :class:`HttpAnswer` with an empty body
      (``complete`` False) that the adapter reads by its status;
    - a connection error, a DNS failure or ``settings.http_timeout`` passing (for the
      whole exchange) is a Retry.

    Any outcome is returned as is; an :class:`HttpAnswer` is for the adapter to read.
    Reasons name only ``platform``, the host and the error class: the URL may hold a token.
    """
    return await _exchange(session, "POST", url, body, headers, settings, platform, egress)


async def get(
    session: aiohttp.ClientSession,
    url: str,
    *,
    headers: Mapping[str, str],
    settings: ResponderSettings,
    platform: str,
    egress: Egress | None = None,
) -> HttpAnswer | Outcome:
    """GET ``url`` under exactly the rules of :func:`post` (egress policy, no redirect,
    capped answer, timeout and connection errors as Retry).

    For adapters that must read before they write (a desk's conversation state, the
    messages already posted); a 2xx answer over :data:`MAX_ANSWER_BYTES` is an
    :class:`HttpAnswer` with ``complete`` False, never Delivered.
    """
    return await _exchange(session, "GET", url, b"", headers, settings, platform, egress)


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    settings: ResponderSettings,
    platform: str,
    egress: Egress | None,
) -> HttpAnswer | Outcome:
    policy = egress or egress_for(settings.egress_allow)
    try:
        async with asyncio.timeout(settings.http_timeout):
            routes = await policy.routes(url)
            return await _post_routes(session, routes, body, headers, platform, method)
    except EgressRefused as exc:
        return Permanent(f"{platform}: egress refused: {exc}", alert_operations=True)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Retry(None, f"{platform}: connection failed ({type(exc).__name__})")


async def _post_routes(
    session: aiohttp.ClientSession,
    routes: Sequence[Route],
    body: bytes,
    headers: Mapping[str, str],
    platform: str,
    method: str = "POST",
) -> HttpAnswer | Outcome:
    """Try each route in turn until one connects; read its answer (see :func:`post`)."""
    failure: aiohttp.ClientConnectorError | None = None
    for route in routes:
        sent = {"Content-Type": "application/json", **headers} if method == "POST" else dict(headers)
        if route.host_header is not None:
            sent["Host"] = route.host_header
        try:
            async with session.request(
                method,
                route.url,
                data=body,
                headers=sent,
                allow_redirects=False,
                server_hostname=route.server_hostname,
            ) as response:
                if 300 <= response.status < 400:
                    return Permanent(
                        f"{platform}: HTTP {response.status}: redirect not followed (egress policy)",
                        alert_operations=True,
                    )
                answer = await read_capped(response, MAX_ANSWER_BYTES)
                if answer is None:
                    response.close()
                    log.warning(
                        "%s: HTTP %d answer over %d bytes, not read",
                        platform, response.status, MAX_ANSWER_BYTES,
                    )
                    if 200 <= response.status < 300 and method == "POST":
                        return Delivered(None)
                    return HttpAnswer(response.status, CIMultiDict(response.headers), b"", False)
                return HttpAnswer(response.status, CIMultiDict(response.headers), answer)
        except aiohttp.ClientConnectorError as exc:
            failure = exc  # nothing was sent: the next address may answer
    if failure is None:
        raise OSError("no address to connect to")
    raise failure


def transient(answer: HttpAnswer, platform: str, now: float, limit: float) -> Retry | None:
    """Retry for HTTP 429 and any 5xx (honouring ``Retry-After``), else None."""
    if answer.status == 429 or answer.status >= 500:
        wait = retry_after(answer.headers.get("Retry-After"), now, limit)
        return Retry(wait, f"{platform}: HTTP {answer.status}")
    return None


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the body every adapter sends."""
    return orjson.dumps(data)
