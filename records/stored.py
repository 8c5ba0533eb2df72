"""JSON bytes that stay in memory (table values): exactly as long as their text.

orjson returns ``bytes`` that keep the whole write buffer it started with, at least
4 KiB whatever the JSON's length (``tracemalloc`` shows it; ``sys.getsizeof`` does not).
A value that lives on in a worker's table (a conversation's state, a pending
escalation) would then cost over 4 KiB instead of its few hundred bytes, for as long as
the conversation is open (``python -m bench.memory``). :func:`kept_json` copies the
text into a ``bytes`` of its own size. Values sent and dropped at once need no copy.
"""

from __future__ import annotations

from typing import Any

import orjson


def kept_json(data: Any) -> bytes:
    """``orjson.dumps(data)`` in a ``bytes`` object of the text's own size."""
    return memoryview(orjson.dumps(data)).tobytes()
