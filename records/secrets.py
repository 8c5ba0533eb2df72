"""Secrets inside coverage values: the URLs that are credentials, and how they are masked.

A ``slack:``, ``teams:`` or ``webhook:`` notify URI is itself the credential (whoever
has the URL can post to the channel), and any URL may carry credentials or signed query
values (Teams workflow URLs sign with ``sig=``). :func:`mask_value` hides those parts and
keeps enough to recognise the target (``slack:https://hooks.slack.com/services/T…/B…/****``).

Masked values are what leaves the process: operations API answers, and the routes,
dead-letter and deliveries topics (a route carries its notify URIs masked; the
responders find the secret again in the coverage in use).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "****"
_URL_SECRET_SCHEMES = ("slack", "teams", "webhook")
_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>\]\[{},]+")


def _mask_url(url: str, *, path: bool) -> str:
    """``url`` with its credentials and query values masked, and with ``path`` its path too.

    The path keeps its first segment; later ones keep their first character
    (``T…``), the last one is :data:`MASK`:
    ``https://hooks.slack.com/services/T…/B…/****``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    new_path = parts.path
    if path:
        segments = parts.path.split("/")
        last = max((i for i, segment in enumerate(segments) if segment), default=0)
        if last >= 1:
            masked = []
            for index, segment in enumerate(segments):
                if index <= 1 and index != last or not segment:
                    masked.append(segment)
                elif index == last:
                    masked.append(MASK)
                else:
                    masked.append(segment if segment.endswith("…") and len(segment) <= 2 else f"{segment[0]}…")
            new_path = "/".join(masked)
    query = "&".join(
        f"{pair.partition('=')[0]}={MASK}" if "=" in pair else pair for pair in parts.query.split("&")
    ) if parts.query else ""
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, new_path, query, fragment))


def mask_value(value: str) -> str:
    """``value`` with its secrets masked (itself when it holds none).

    Secrets: the path, query and credentials of ``slack:``, ``teams:`` and ``webhook:``
    URLs (their URL is the credential), and the credentials and query values of any
    other URL in the text (Teams workflow URLs sign with ``sig=``). Masking a masked
    value changes nothing.
    """
    scheme, colon, rest = value.partition(":")
    if colon and scheme.lower() in _URL_SECRET_SCHEMES and rest.startswith(("https://", "http://")):
        return f"{scheme}:{_mask_url(rest, path=True)}"
    if "://" not in value:
        return value
    return _URL_IN_TEXT.sub(lambda match: _mask_url(match.group(0), path=False), value)

