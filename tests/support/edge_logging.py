"""What ``tests/component/edge/test_logging.py`` and ``tests/unit/edge/test_logging.py`` share (they were one module, tests/edge/test_logging.py).
"""

from __future__ import annotations


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

