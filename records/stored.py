"""JSON bytes exactly as long as their text: table values and every record the service writes.

orjson returns ``bytes`` that keep the whole write buffer it started with, at least
4 KiB whatever the JSON's length (``tracemalloc`` shows it; ``sys.getsizeof`` does not).
A value that lives on in a worker's table (a conversation's state, a pending
escalation) would then cost over 4 KiB instead of its few hundred bytes, for as long as
the conversation is open. The records sent and dropped at once (decisions, outbox
records, delivery outcomes) matter too: their 4 KiB buffers, taken and freed between
the long-lived values, scattered the heap so that the memory of expired conversations
was not reused (``python -m bench.memory``, the retention rounds: +20.9 MiB in a second
round with only the table values exact, +2.8 MiB with every record exact).
:func:`exact_json` copies the text into a ``bytes`` of its own size.
"""

from __future__ import annotations

from typing import Any

import orjson


def exact_json(data: Any) -> bytes:
    """``orjson.dumps(data)`` in a ``bytes`` object of the text's own size."""
    return memoryview(orjson.dumps(data)).tobytes()
