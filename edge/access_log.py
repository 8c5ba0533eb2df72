"""The web server's access log, without the secrets requests carry.

aiohttp's default access line holds the whole request line and the ``Referer``, so
with ``-v`` it would record the Meta verify token (``?hub.verify_token=...``), X's
``crc_token`` and the token of a signed action link (``/api/v1/actions/<token>``, also
in the ``Referer`` of the form posted from that page). :class:`RedactingAccessLogger`
writes the same facts without them::

    127.0.0.1 "GET /webhooks/meta?hub.mode=***&hub.verify_token=***&hub.challenge=*** HTTP/1.1" 200 10 0.001s "curl/8.5.0"

Query parameter names stay (they say what the request was), every value is masked;
the path segment after ``/actions/`` is masked; the ``Referer`` is not written. Serve
an app with it: ``web.AppRunner(app, access_log_class=RedactingAccessLogger)``.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

MASK = "***"
_CAPABILITY_SEGMENTS = frozenset({"actions"})
"""Path segments followed by a bearer capability (the signed action links)."""


def redacted_target(request: BaseRequest) -> str:
    """The request's path and query with every query value and capability in the path masked."""
    segments = request.rel_url.raw_path.split("/")
    for i in range(1, len(segments)):
        if segments[i - 1] in _CAPABILITY_SEGMENTS and segments[i]:
            segments[i] = MASK
    path = "/".join(segments)
    names = list(request.rel_url.query.keys())
    if not names:
        return path
    return path + "?" + "&".join(f"{quote(name, safe='')}={MASK}" for name in names)


class RedactingAccessLogger(AbstractAccessLogger):
    """An aiohttp access logger whose lines hold no query values, link tokens or referrers."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        agent = request.headers.get("User-Agent", "-")
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote or "-",
            request.method,
            redacted_target(request),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
            agent.encode("unicode_escape").decode("ascii")[:200],
        )

    @property
    def enabled(self) -> bool:
        # Build the line only when it will be written (INFO, e.g. ``-v``).
        return self.logger.isEnabledFor(logging.INFO)
