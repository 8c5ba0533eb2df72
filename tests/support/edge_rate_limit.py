"""What ``tests/component/edge/test_rate_limit.py`` and ``tests/unit/edge/test_rate_limit.py`` share (they were one module, tests/edge/test_rate_limit.py).
"""

from __future__ import annotations


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

