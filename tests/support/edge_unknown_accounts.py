"""What ``tests/component/edge/test_unknown_accounts.py`` and ``tests/unit/edge/test_unknown_accounts.py`` share (they were one module, tests/edge/test_unknown_accounts.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


NOW = datetime(2026, 11, 23, 21, 14, 5, tzinfo=UTC)

