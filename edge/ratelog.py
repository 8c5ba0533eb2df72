"""A warning logged at most once per interval per key, with how many were held back.

Refused webhook requests (a bad signature, a wrong verify token, a client over its
rate) come in floods when someone probes the service; one line per request would bury
everything else in the log. :class:`RateLimitedLog` writes the first refusal of a key
(a webhook) at once, then nothing for that key until ``interval`` has passed on the
injected monotonic clock; the next line it writes says how many were not written in
between. Counting every refusal is the metrics' job (``IngestStats.refused``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Key:
    last: float
    held: int = 0


class RateLimitedLog:
    """Warnings on ``logger``, at most one per ``interval`` seconds for each key."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = 1000,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._keys: dict[str, _Key] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``key`` was logged within the interval; True when logged."""
        now = self._clock()
        state = self._keys.get(key)
        if state is not None and now - state.last < self._interval:
            state.held += 1
            return False
        held = state.held if state is not None else 0
        if state is None and len(self._keys) >= self._max_keys:
            self._keys.pop(next(iter(self._keys)))
        self._keys[key] = _Key(last=now)
        if held:
            self._logger.warning(
                message + " (and %d more since the last such line)", *args, held
            )
        else:
            self._logger.warning(message, *args)
        return True
