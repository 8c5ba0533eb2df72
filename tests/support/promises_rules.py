"""What ``tests/unit/promises/test_promises.py`` and ``tests/unit/promises/test_timers.py`` share (they were one module, tests/promises/test_promises.py).
"""

from __future__ import annotations

DST_TEAM = """
teams:
  night:
    timezone: Europe/Rome
    hours: {daily: ["00:00-02:30 reduced", "02:30-04:00 open"]}
"""

