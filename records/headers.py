"""Kafka headers that offhours' records carry between topics.

- ``offhours-received``: set by the webhooks on each event they produce: the instant
  (POSIX seconds) it was received, for the receipt-to-decision latency.
- ``offhours-seq``: set by ``offhours replay`` on each input line (its 0-based index);
  copied onto the decision so replay prints decisions in input order.
- ``offhours-source``: set by the triage agent on every decision: the input record it
  decides, as ``PARTITION:OFFSET`` of the events topic.
- ``offhours-origin``: set by reconciliation on an input event it re-issues: the
  ``PARTITION:OFFSET`` of the original record, so that the copy's decision also
  accounts for the original.

Header values are bytes on the wire; these helpers keep the conversions in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

HEADER_RECEIVED = "offhours-received"
HEADER_SEQ = "offhours-seq"
HEADER_SOURCE = "offhours-source"
HEADER_ORIGIN = "offhours-origin"

Headers = list[tuple[str, bytes]]


def header_list(headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Headers:
    """Headers in aiokafka's wire form (a list of ``(str, bytes)``), from any Faust form."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    result: Headers = []
    for name, value in items:
        if isinstance(value, str):
            value = value.encode()
        result.append((str(name), bytes(value) if value is not None else b""))
    return result


def header_value(headers: Iterable[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """The last value of header ``name``, or None when absent."""
    found = None
    for key, value in headers or ():
        if key == name:
            found = value
    return found


def with_header(headers: Headers, name: str, value: str) -> Headers:
    """``headers`` with ``name`` set to ``value`` (replacing earlier values)."""
    return [(k, v) for k, v in headers if k != name] + [(name, value.encode())]


def position(partition: int, offset: int) -> str:
    """The ``PARTITION:OFFSET`` text of a record's position in the events topic."""
    return f"{partition}:{offset}"


def parse_position(raw: bytes | None) -> tuple[int, int] | None:
    """``(partition, offset)`` from a ``PARTITION:OFFSET`` header, None when absent or bad."""
    if not raw:
        return None
    try:
        partition, offset = raw.decode().split(":", 1)
        return int(partition), int(offset)
    except ValueError:
        return None
